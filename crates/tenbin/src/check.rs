//! `tenbin check -c FILE`: validate a config and print what it describes.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use tenbin_config::{Config, Mode};

/// Reads and validates `path`. The error, if any, already names file, line, column and key.
pub fn load(path: &Path) -> anyhow::Result<Config> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let file = path.display().to_string();
    let mut config = Config::parse(&text, &file)?;
    config.load_admin_token(&text, &file, |p| std::fs::read_to_string(p))?;
    config.load_sync_key(&text, &file, |p| std::fs::read_to_string(p))?;
    Ok(config)
}

pub fn run(path: &Path) -> anyhow::Result<()> {
    let config = load(path)?;
    print!("{}", summary(&config));
    println!("{}: ok", path.display());
    Ok(())
}

/// A human summary of what a valid config will run.
pub fn summary(config: &Config) -> String {
    let mut out = String::new();
    for fe in &config.frontend {
        let binds: Vec<String> = fe.bind.iter().map(|b| b.get_ref().to_string()).collect();
        let mode = match fe.mode {
            Mode::Http => "http",
            Mode::Tcp => "tcp",
            Mode::Udp => "udp",
        };
        let _ = write!(
            out,
            "frontend {} ({mode}) on {}",
            fe.name.get_ref(),
            binds.join(", ")
        );
        if let Some(p) = &fe.default_pool {
            let _ = write!(out, " -> {}", p.get_ref());
        }
        let _ = writeln!(out, ", {} rule(s)", fe.rule.len());
    }
    for pool in &config.pool {
        let check = pool
            .health
            .as_ref()
            .map_or("no active check".to_string(), |h| {
                format!("{:?} check", h.kind).to_lowercase()
            });
        let _ = writeln!(
            out,
            "pool {}: {:?}, {} server(s), {check}{}",
            pool.name.get_ref(),
            pool.algorithm,
            pool.server.len(),
            if pool.agent.is_some() { ", agent" } else { "" },
        );
        for s in &pool.server {
            let _ = writeln!(
                out,
                "  server {} {} weight {} group {}{}",
                s.name.get_ref(),
                s.address.get_ref(),
                s.weight.get_ref(),
                s.group,
                s.maxconn
                    .as_ref()
                    .map_or(String::new(), |m| format!(" maxconn {}", m.get_ref())),
            );
        }
    }
    if let Some(dns) = &config.dns {
        let listen: Vec<String> = dns.listen.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            out,
            "dns on {}: {} zone(s), {} gslb name(s), {} datacenter(s)",
            listen.join(", "),
            dns.zones.len(),
            dns.gslb.len(),
            dns.datacenters.len()
        );
    }
    if let Some(mux) = &config.mux {
        for vip in &mux.vip {
            let _ = writeln!(
                out,
                "mux on {}: vip {}:{} {:?} {:?}, {} backend(s)",
                mux.interface,
                vip.address,
                vip.port,
                vip.protocol,
                vip.forward,
                vip.backend.len()
            );
        }
    }
    if let Some(agent) = &config.agent {
        let vips: Vec<String> = agent.vips.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            out,
            "agent on {}: vips {}, {} local check(s)",
            agent.interface,
            vips.join(", "),
            agent.check.len()
        );
    }
    for i in config.vrrp.iter().flat_map(|v| &v.instance) {
        let vips: Vec<String> = i.vips.get_ref().iter().map(|v| v.0.to_string()).collect();
        let _ = writeln!(
            out,
            "vrrp {} on {}: vrid {}, priority {}, vips {}",
            i.name.get_ref(),
            i.interface.get_ref(),
            i.vrid.get_ref(),
            i.priority.get_ref(),
            vips.join(", ")
        );
    }
    if let Some(admin) = &config.admin {
        let _ = writeln!(out, "admin on {}", admin.listen);
    }
    out
}
