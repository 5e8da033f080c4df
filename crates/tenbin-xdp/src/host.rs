//! Host-agent setup on a backend: VIPs on `lo` and the ARP sysctls of L2 DSR, so the kernel
//! accepts decapsulated (or MAC-rewritten) packets for the VIP and answers the client directly
//! from it, without ever answering ARP for the VIP (that is the Mux's or router's job).
//!
//! It changes the network namespace of the calling thread, through `ip` and `/proc/sys`.

use std::net::IpAddr;
use std::process::Command;

/// A host change that failed.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("writing {path}: {source}")]
    Sysctl {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`ip {args}` failed: {stderr}")]
    Ip { args: String, stderr: String },
    #[error("running `ip`: {0}")]
    Spawn(#[from] std::io::Error),
}

/// The sysctls DSR needs, as (path under /proc/sys/net/ipv4/conf, value):
/// `arp_ignore=1` answers ARP only for addresses on the receiving interface (not the VIP on
/// `lo`), `arp_announce=2` never uses the VIP as ARP source, `rp_filter=2` (loose) accepts
/// clients whose route goes elsewhere.
pub fn sysctls(iface: &str) -> Vec<(String, &'static str)> {
    let mut v = Vec::new();
    for dev in ["all", iface] {
        v.push((format!("{dev}/arp_ignore"), "1"));
        v.push((format!("{dev}/arp_announce"), "2"));
        v.push((format!("{dev}/rp_filter"), "2"));
    }
    v
}

/// Puts `vips` on `lo` (idempotent) and sets the DSR sysctls for `iface`.
pub fn configure(iface: &str, vips: &[IpAddr]) -> Result<(), AgentError> {
    for (rel, value) in sysctls(iface) {
        let path = format!("/proc/sys/net/ipv4/conf/{rel}");
        std::fs::write(&path, value).map_err(|source| AgentError::Sysctl { path, source })?;
    }
    for vip in vips {
        let prefix = if vip.is_ipv4() { 32 } else { 128 };
        ip(&["addr", "replace", &format!("{vip}/{prefix}"), "dev", "lo"])?;
    }
    ip(&["link", "set", "lo", "up"])
}

/// Removes `vips` from `lo` (missing ones are fine).
pub fn unconfigure(vips: &[IpAddr]) {
    for vip in vips {
        let prefix = if vip.is_ipv4() { 32 } else { 128 };
        let _ = ip(&["addr", "del", &format!("{vip}/{prefix}"), "dev", "lo"]);
    }
}

fn ip(args: &[&str]) -> Result<(), AgentError> {
    let out = Command::new("ip").args(args).output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(AgentError::Ip {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}
