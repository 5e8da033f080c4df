//! Human output: the node's state as tables, a change as the lines it applied.

use std::fmt::Write as _;

use serde_json::Value;
use tenbin_config::api::{Applied, NodeState};

use super::client::Failure;

/// `GET /api/v1/state` as tables: frontends, each pool's servers, DNS datacenters.
pub fn status(reply: &Value) -> Result<String, Failure> {
    let state: NodeState = serde_json::from_value(reply.clone())
        .map_err(|e| Failure::Unreachable(format!("the node's state does not parse: {e}")))?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "node: {} (generation {}), tiers: {}",
        state.config,
        state.generation,
        state.tiers.join(", ")
    );
    let mut rows = vec![row(["FRONTEND", "MODE", "LISTEN", "POOLS"])];
    for f in &state.frontends {
        let listen: Vec<String> = f.listen.iter().map(ToString::to_string).collect();
        rows.push(vec![
            f.name.clone(),
            f.mode.clone(),
            listen.join(","),
            f.pools.join(","),
        ]);
    }
    table(&mut out, &rows);
    for p in &state.pools {
        let _ = writeln!(
            out,
            "\npool {} ({}{}{})",
            p.name,
            p.algorithm,
            if p.queued > 0 {
                format!(", {} queued", p.queued)
            } else {
                String::new()
            },
            if p.panic { ", PANIC" } else { "" }
        );
        let mut rows = vec![row([
            "SERVER",
            "ADDRESS",
            "STATE",
            "ADMIN",
            "WEIGHT",
            "EFFECTIVE",
            "ACTIVE",
            "CHECK",
        ])];
        for s in &p.servers {
            rows.push(vec![
                s.name.clone(),
                s.address.to_string(),
                s.state.clone(),
                serde_json::to_value(s.admin)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                s.weight.to_string(),
                s.effective_weight.to_string(),
                s.active.to_string(),
                s.check.clone().unwrap_or_else(|| "-".into()),
            ]);
        }
        table(&mut out, &rows);
    }
    if let Some(dns) = &state.dns {
        out.push('\n');
        let mut rows = vec![row(["DATACENTER", "ADMIN", "LOAD", "VIPS"])];
        for dc in &dns.datacenters {
            let vips: Vec<String> = dc
                .vips
                .iter()
                .map(|v| format!("{} {}", v.address, v.state))
                .collect();
            rows.push(vec![
                dc.name.clone(),
                dc.admin
                    .and_then(|a| serde_json::to_value(a).ok())
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_else(|| "-".into()),
                dc.load.to_string(),
                vips.join(", "),
            ]);
        }
        table(&mut out, &rows);
    }
    if let Some(vrrp) = &state.vrrp {
        out.push('\n');
        vrrp_table(&mut out, vrrp);
    }
    if let Some(bgp) = &state.bgp {
        bgp_table(&mut out, bgp);
    }
    Ok(out)
}

/// One row per virtual router: state, priority in force (configured), master, tracked
/// objects down, transitions, adverts and drops.
fn vrrp_table(out: &mut String, vrrp: &tenbin_config::api::VrrpState) {
    let mut rows = vec![row([
        "VRRP",
        "IFACE",
        "VRID",
        "STATE",
        "PRIORITY",
        "MASTER",
        "TRACKED DOWN",
        "TRANSITIONS",
        "SENT",
        "RECEIVED",
        "DROPPED (ttl/malformed/checksum/other vrid)",
    ])];
    for i in &vrrp.instances {
        let d = &i.drops;
        rows.push(vec![
            i.name.clone(),
            i.interface.clone(),
            i.vrid.to_string(),
            i.state.clone(),
            if i.priority == i.configured_priority {
                i.priority.to_string()
            } else {
                format!("{} ({})", i.priority, i.configured_priority)
            },
            i.master.map_or_else(|| "-".into(), |m| m.to_string()),
            if i.tracked_down.is_empty() {
                "-".into()
            } else {
                i.tracked_down.join(",")
            },
            i.transitions.to_string(),
            i.adverts_sent.to_string(),
            i.adverts_received.to_string(),
            format!("{}/{}/{}/{}", d.ttl, d.malformed, d.checksum, d.other_vrid),
        ]);
    }
    table(out, &rows);
}

fn bgp_table(out: &mut String, bgp: &tenbin_config::api::bgp::BgpState) {
    out.push('\n');
    let mut rows = vec![row([
        "NEIGHBOR",
        "AS",
        "STATE",
        "UPTIME",
        "PREFIXES",
        "FLAPS",
        "LAST ERROR",
    ])];
    for n in &bgp.neighbors {
        rows.push(vec![
            n.address.to_string(),
            n.remote_as.to_string(),
            n.state.clone(),
            n.uptime_secs
                .map_or_else(|| "-".into(), |s| format!("{}s", s.round())),
            n.prefixes_announced.to_string(),
            n.flaps.to_string(),
            n.last_error.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    table(out, &rows);
    let prefixes: Vec<String> = bgp
        .prefixes
        .iter()
        .map(|p| format!("{} ({})", p.prefix, p.source))
        .collect();
    out.push_str(&format!(
        "announcing: {}{}\n",
        if prefixes.is_empty() {
            "nothing".to_string()
        } else {
            prefixes.join(", ")
        },
        if bgp.mux_drained { "; mux drained" } else { "" }
    ));
}

/// What a change did: one line per applied change, or that nothing changed.
pub fn applied(reply: &Value) -> String {
    match serde_json::from_value::<Applied>(reply.clone()) {
        Ok(a) if a.changes.is_empty() => format!("no change (generation {})\n", a.generation),
        Ok(a) => {
            let mut out = String::new();
            for c in &a.changes {
                let _ = writeln!(out, "{c}");
            }
            let _ = writeln!(out, "generation {}", a.generation);
            out
        }
        Err(_) => "ok\n".to_string(),
    }
}

fn row<const N: usize>(cells: [&str; N]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_string()).collect()
}

/// Left-aligned columns, two spaces apart.
fn table(out: &mut String, rows: &[Vec<String>]) {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 == r.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ", w = widths[i]);
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}
