//! `[mux]` and `[agent]` checks: what the schema accepts but the XDP tier cannot use (MAC
//! syntax, prefix lengths, DSR address families, duplicate VIPs, report keys).

use std::collections::HashSet;

use super::invalid::{Invalid, SectionError};
use crate::mux::{parse_mac, AgentSection, Forward, MuxSection, Protocol};

/// Shortest shared secret for signed agent reports.
const MIN_REPORT_KEY: usize = 16;

impl MuxSection {
    /// The checks `Config::parse` runs on `[mux]`, for a section built another way.
    pub fn validate(&self) -> Result<(), SectionError> {
        mux(self).map_err(SectionError::from)
    }
}

impl AgentSection {
    /// The checks `Config::parse` runs on `[agent]`, for a section built another way.
    pub fn validate(&self) -> Result<(), SectionError> {
        agent(self).map_err(SectionError::from)
    }
}

fn report_key_ok(key: &Option<String>) -> bool {
    key.as_ref().is_some_and(|k| k.len() >= MIN_REPORT_KEY)
}

pub(crate) fn mux(m: &MuxSection) -> Result<(), Invalid> {
    if m.source_v6.prefix_len() < 96 {
        return Err(Invalid::at(
            "mux.source_v6",
            format!(
                "must be at least a /96 (only the last 32 bits vary), got /{}",
                m.source_v6.prefix_len()
            ),
        ));
    }
    if m.mtu < 1280 {
        return Err(Invalid::at(
            "mux.mtu",
            format!("{} is below the IPv6 minimum of 1280", m.mtu),
        ));
    }
    if m.flow_table == 0 {
        return Err(Invalid::at("mux.flow_table", "must be at least 1"));
    }
    if m.report_listen.is_some() && !report_key_ok(&m.report_key) {
        return Err(Invalid::at(
            "mux.report_key",
            format!("must be set and at least {MIN_REPORT_KEY} bytes long when report_listen is"),
        ));
    }
    let mut seen = HashSet::new();
    for (i, v) in m.vip.iter().enumerate() {
        if !seen.insert((v.address, v.port, v.protocol.number())) {
            return Err(Invalid::at(
                format!("mux.vip[{i}].address"),
                "duplicates an earlier VIP (same address, port and protocol)",
            ));
        }
        for (j, b) in v.backend.iter().enumerate() {
            let key = |k: &str| format!("mux.vip[{i}].backend[{j}].{k}");
            if parse_mac(&b.mac).is_none() {
                return Err(Invalid::at(
                    key("mac"),
                    format!("`{}` is not a MAC address (aa:bb:cc:dd:ee:ff)", b.mac),
                ));
            }
            if v.forward == Forward::Dsr && b.address.is_ipv4() != v.address.is_ipv4() {
                return Err(Invalid::at(
                    key("address"),
                    format!(
                        "the VIP forwards by dsr, so {} must be of the VIP's address family",
                        b.address
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Checks are bounded like a pool's and a UDP service says how it is probed; reports need a
/// key, an identity and somewhere to go.
pub(crate) fn agent(a: &AgentSection) -> Result<(), Invalid> {
    for (i, c) in a.check.iter().enumerate() {
        match &c.health {
            Some(hc) => super::pool::health(hc, &format!("agent.check[{i}].health"))?,
            None if c.protocol == Protocol::Udp => {
                return Err(Invalid::at(
                    format!("agent.check[{i}].protocol"),
                    "a UDP service needs [agent.check.health] (kind icmp, or tcp/http on a port)",
                ))
            }
            None => {}
        }
    }
    if a.report_to.is_empty() {
        return Ok(());
    }
    if !report_key_ok(&a.report_key) {
        return Err(Invalid::at(
            "agent.report_key",
            format!("must be set and at least {MIN_REPORT_KEY} bytes long when report_to is"),
        ));
    }
    if a.backend_address.is_none() {
        return Err(Invalid::at(
            "agent.backend_address",
            "must be set when report_to is (the Muxes know this host by it)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::mux::{AgentSection, MuxSection};

    const MUX: &str = "interface = \"eth0\"\n[[vip]]\naddress = \"10.0.0.1\"\nport = 80\nprotocol = \"tcp\"\nforward = \"gre\"\n[[vip.backend]]\naddress = \"10.1.0.1\"\nmac = \"02:be:00:00:00:01\"\n";

    fn mux(text: &str) -> Result<(), String> {
        let m: MuxSection = toml::from_str(text).map_err(|e| e.to_string())?;
        m.validate().map_err(|e| e.to_string())
    }

    #[test]
    fn mux_mistakes_name_their_key() {
        assert_eq!(mux(MUX), Ok(()));
        for (bad, key) in [
            (MUX.replace(":01\"", "\""), "mux.vip[0].backend[0].mac"),
            (format!("source_v6 = \"fd00::/64\"\n{MUX}"), "mux.source_v6"),
            (format!("mtu = 1000\n{MUX}"), "mux.mtu"),
            (format!("flow_table = 0\n{MUX}"), "mux.flow_table"),
            (
                format!("report_listen = \"127.0.0.1:1\"\nreport_key = \"short\"\n{MUX}"),
                "mux.report_key",
            ),
            (
                MUX.replace("\"gre\"", "\"dsr\"")
                    .replace("10.1.0.1", "2001:db8::1"),
                "mux.vip[0].backend[0].address",
            ),
            (
                format!("{MUX}{}", &MUX[MUX.find("[[vip]]").unwrap()..]),
                "mux.vip[1].address",
            ),
        ] {
            let e = mux(&bad).unwrap_err();
            assert!(e.starts_with(&format!("key `{key}`: ")), "{bad}\n=> {e}");
        }
    }

    #[test]
    fn agent_reports_need_a_key_and_an_identity() {
        let mut a: AgentSection =
            toml::from_str("interface = \"eth0\"\nvips = [\"10.0.0.1\"]").unwrap();
        assert_eq!(a.validate(), Ok(()));
        a.report_to = vec!["10.0.0.9:7946".parse().unwrap()];
        assert_eq!(a.validate().unwrap_err().key, "agent.report_key");
        a.report_key = Some("sixteen bytes at least".into());
        assert_eq!(a.validate().unwrap_err().key, "agent.backend_address");
        a.backend_address = Some("10.1.0.1".parse().unwrap());
        assert_eq!(a.validate(), Ok(()));
    }

    #[test]
    fn agent_checks_are_bounded_like_a_pools() {
        let base = "interface = \"eth0\"\nvips = [\"10.0.0.1\"]\n[[check]]\nvip = \"10.0.0.1\"\nport = 53\n";
        let check = |text: &str| {
            toml::from_str::<AgentSection>(text)
                .unwrap()
                .validate()
                .map_err(|e| e.key)
        };
        assert_eq!(check(base), Ok(()));
        assert_eq!(
            check(&format!("{base}protocol = \"udp\"\n")),
            Err("agent.check[0].protocol".into())
        );
        assert_eq!(
            check(&format!(
                "{base}protocol = \"udp\"\n[check.health]\nkind = \"icmp\"\n"
            )),
            Ok(())
        );
        assert_eq!(
            check(&format!(
                "{base}[check.health]\nkind = \"http\"\nfall = 0\n"
            )),
            Err("agent.check[0].health.fall".into())
        );
    }
}
