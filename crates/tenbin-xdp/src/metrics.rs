//! The Mux's counters in the Prometheus text format: data-plane verdicts, and traffic per VIP
//! and per backend (packets, bytes, new flows), summed over CPUs.

use std::fmt::Write as _;
use std::net::IpAddr;

use crate::abi::{Counters, STAT_NAMES};
use crate::control::{Controller, RingBuilder};
use crate::loader::{LoadError, Program};

/// Renders the counters. `vips` and `backends` pair a label value with its counters.
pub fn render(
    stats: &[u64],
    vips: &[(String, Counters)],
    backends: &[(String, Counters)],
) -> String {
    let mut out = String::new();
    out.push_str("# HELP tenbin_mux_packets_total Packets by data-plane verdict.\n");
    out.push_str("# TYPE tenbin_mux_packets_total counter\n");
    for (name, v) in STAT_NAMES.iter().zip(stats) {
        let _ = writeln!(out, "tenbin_mux_packets_total{{verdict=\"{name}\"}} {v}");
    }
    for (what, label, rows) in [("vip", "vip", vips), ("backend", "backend", backends)] {
        for (metric, help, get) in [
            (
                "packets",
                "Packets forwarded",
                (|c: &Counters| c.packets) as fn(&Counters) -> u64,
            ),
            (
                "bytes",
                "IP bytes forwarded (before encapsulation)",
                |c: &Counters| c.bytes,
            ),
            ("new_flows", "Flow-table entries created", |c: &Counters| {
                c.new_flows
            }),
        ] {
            let _ = writeln!(
                out,
                "# HELP tenbin_mux_{what}_{metric}_total {help} per {what}."
            );
            let _ = writeln!(out, "# TYPE tenbin_mux_{what}_{metric}_total counter");
            for (name, c) in rows {
                let _ = writeln!(
                    out,
                    "tenbin_mux_{what}_{metric}_total{{{label}=\"{name}\"}} {}",
                    get(c)
                );
            }
        }
    }
    out
}

/// A running Mux's counters as data: per verdict (in [`STAT_NAMES`] order), per VIP
/// (`addr:port/proto`) and per backend address, summed over CPUs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MuxCounters {
    pub verdicts: Vec<u64>,
    pub vips: Vec<(String, Counters)>,
    pub backends: Vec<(String, Counters)>,
}

impl MuxCounters {
    /// The Prometheus text of these counters.
    pub fn render(&self) -> String {
        render(&self.verdicts, &self.vips, &self.backends)
    }
}

/// Collects and renders a running Mux's counters.
pub fn collect<R: RingBuilder>(mux: &Controller<Program, R>) -> Result<String, LoadError> {
    read(mux).map(|c| c.render())
}

/// Reads a running Mux's counters.
pub fn read<R: RingBuilder>(mux: &Controller<Program, R>) -> Result<MuxCounters, LoadError> {
    let p = mux.writer();
    let stats = p.stats()?;
    let mut vips = Vec::new();
    for (key, id) in mux.vips() {
        let proto = match key.2 {
            6 => "tcp",
            17 => "udp",
            _ => "ip",
        };
        let addr = match key.0 {
            IpAddr::V6(a) => format!("[{a}]"),
            a => a.to_string(),
        };
        vips.push((format!("{addr}:{}/{proto}", key.1), p.vip_counters(id)?));
    }
    let mut backends = Vec::new();
    for (addr, id) in mux.backends() {
        backends.push((addr.to_string(), p.backend_counters(id)?));
    }
    Ok(MuxCounters {
        verdicts: stats,
        vips,
        backends,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_series_with_its_labels() {
        let mut stats = vec![0u64; STAT_NAMES.len()];
        stats[0] = 42;
        let c = Counters {
            packets: 3,
            bytes: 300,
            new_flows: 1,
        };
        let text = render(
            &stats,
            &[("10.0.0.1:80/tcp".into(), c)],
            &[("10.1.0.1".into(), c)],
        );
        assert!(text.contains("tenbin_mux_packets_total{verdict=\"rx\"} 42\n"));
        assert!(text.contains("tenbin_mux_vip_bytes_total{vip=\"10.0.0.1:80/tcp\"} 300\n"));
        assert!(text.contains("tenbin_mux_backend_new_flows_total{backend=\"10.1.0.1\"} 1\n"));
        assert_eq!(text.matches("# TYPE").count(), 7);
    }
}
