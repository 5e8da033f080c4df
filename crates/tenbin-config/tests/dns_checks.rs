//! `DnsSection::validate`: every check of `[dns]` names the key it is about (the located form,
//! with line and column, is in `section_errors.rs`).

use tenbin_config::dns::DnsSection;

const SAMPLE: &str = r#"
    default_region = "eu"
    [[datacenters]]
    name = "fra"
    [[datacenters]]
    name = "nrt"
    [[regions]]
    name = "eu"
    prefer = ["fra", "nrt"]
    [[networks]]
    cidr = "10.1.0.0/16"
    region = "eu"
    [[zones]]
    origin = "example.test."
    soa = { mname = "ns1", rname = "hostmaster" }
    records = [
      { name = "@", type = "NS", data = "ns1" },
      { name = "ns1", type = "A", data = "192.0.2.53" },
      { name = "_sip._tcp", type = "SRV", data = "0 5 5060 sip.example.test." },
    ]
    [[gslb]]
    name = "www.example.test."
    pools = [ { datacenter = "fra", addresses = ["192.0.2.1"] } ]
"#;

/// The key and message of the first error in `SAMPLE` changed by `edit`.
fn error(edit: impl FnOnce(&mut DnsSection)) -> (String, String) {
    let mut s: DnsSection = toml::from_str(SAMPLE).unwrap();
    edit(&mut s);
    let e = s.validate().unwrap_err();
    (e.key, e.message)
}

fn extra(toml_text: &str) -> Result<(), String> {
    let s: DnsSection =
        toml::from_str(&format!("{SAMPLE}\n{toml_text}")).map_err(|e| e.to_string())?;
    s.validate().map_err(|e| e.key)
}

#[test]
fn dangling_references_name_their_key_and_the_defined_names() {
    toml::from_str::<DnsSection>(SAMPLE)
        .unwrap()
        .validate()
        .unwrap();
    let (key, msg) = error(|s| s.networks[0].region = "mars".into());
    assert_eq!(key, "dns.networks[0].region");
    assert!(
        msg.contains("undefined region `mars`; defined: eu"),
        "{msg}"
    );
    let (key, msg) = error(|s| s.gslb[0].pools[0].datacenter = "nowhere".into());
    assert_eq!(key, "dns.gslb[0].pools[0].datacenter");
    assert!(msg.contains("defined: fra, nrt"), "{msg}");
    assert_eq!(
        error(|s| s.regions[0].prefer[1] = "x".into()).0,
        "dns.regions[0].prefer[1]"
    );
    assert_eq!(
        error(|s| s.default_region = Some("x".into())).0,
        "dns.default_region"
    );
    let (key, msg) = error(|s| s.gslb[0].name = "www.other.test.".into());
    assert_eq!(key, "dns.gslb[0].name");
    assert!(msg.contains("outside every zone"), "{msg}");
}

#[test]
fn duplicates_names_and_data_are_checked() {
    let (key, msg) = error(|s| s.datacenters[1].name = "FRA".into());
    assert_eq!(key, "dns.datacenters[1].name");
    assert!(msg.contains("defined twice"), "{msg}");
    let (key, msg) = error(|s| s.zones[0].records[1].data = "not-an-ip".into());
    assert_eq!(key, "dns.zones[0].records[1].data");
    assert!(msg.contains("not an IPv4 address"), "{msg}");
    assert_eq!(
        error(|s| s.zones[0].records[2].name = "a..b".into()).0,
        "dns.zones[0].records[2].name"
    );
    assert_eq!(
        error(|s| s.zones[0].soa.mname = "a b".into()).0,
        "dns.zones[0].soa.mname"
    );
    assert_eq!(
        error(|s| s.zones.push(s.zones[0].clone())).0,
        "dns.zones[1].origin"
    );
    assert_eq!(
        error(|s| s.gslb.push(s.gslb[0].clone())).0,
        "dns.gslb[1].name"
    );
    assert_eq!(error(|s| s.gslb[0].pools.clear()).0, "dns.gslb[0].pools");
    assert_eq!(
        error(|s| s.gslb[0].sticky_prefix_v6 = 129).0,
        "dns.gslb[0].sticky_prefix_v6"
    );
    assert_eq!(
        error(|s| s.gslb[0].pools[0].capacity = Some(0.0)).0,
        "dns.gslb[0].pools[0].capacity"
    );
    assert_eq!(error(|s| s.ttl.min = 7200).0, "dns.ttl.min");
    assert_eq!(error(|s| s.edns_udp_max = 100).0, "dns.edns_udp_max");
}

#[test]
fn vip_checks_need_a_port_and_the_bounds_of_pool_checks() {
    assert_eq!(
        extra(r#"check = { kind = "tcp", port = 80, fall = 2 }"#),
        Ok(())
    );
    assert_eq!(extra(r#"check = { kind = "icmp" }"#), Ok(()));
    assert_eq!(
        extra(r#"check = { kind = "tcp" }"#),
        Err("dns.gslb[0].check.port".into())
    );
    assert_eq!(
        extra(r#"check = { kind = "icmp", rise = 0 }"#),
        Err("dns.gslb[0].check.rise".into())
    );
    let own = r#"pools = [ { datacenter = "fra", addresses = ["192.0.2.1"], check = { kind = "http", interval = "0s", port = 80 } } ]"#;
    let text = SAMPLE.replace(
        r#"pools = [ { datacenter = "fra", addresses = ["192.0.2.1"] } ]"#,
        own,
    );
    let s: DnsSection = toml::from_str(&text).unwrap();
    assert_eq!(
        s.validate().unwrap_err().key,
        "dns.gslb[0].pools[0].check.interval"
    );
}

#[test]
fn geoip_regions_must_exist_and_fields_be_paths() {
    let geo = |body: &str| {
        let text = format!("geoip = {{ db = \"x.mmdb\", {body} }}\n{SAMPLE}");
        toml::from_str::<DnsSection>(&text)
            .unwrap()
            .validate()
            .map_err(|e| e.key)
    };
    assert_eq!(geo(r#"regions = { JP = "eu" }"#), Ok(()));
    assert_eq!(
        geo(r#"regions = { JP = "mars" }"#),
        Err("dns.geoip.regions.JP".into())
    );
    assert_eq!(
        geo(r#"regions = {}, fields = ["a..b"]"#),
        Err("dns.geoip.fields".into())
    );
}
