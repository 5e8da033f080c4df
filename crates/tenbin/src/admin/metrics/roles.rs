//! The node roles' families, read from their `NodeState` fields (plain data each role
//! publishes): tier readiness from the health bus, the XDP Mux's control side (the data
//! plane's own counters are `tenbin_xdp::metrics`'s), the host agent, BGP, VRRP and session
//! sync. A role that does not run has no field, so its families are left out.

use prometheus_client::encoding::DescriptorEncoder;

use super::{counter, gauge, label, Labels};
use crate::node::NodeStats;
use tenbin_config::api::NodeState;

type Out = Result<(), std::fmt::Error>;

pub(super) fn encode(s: &NodeStats, enc: &mut DescriptorEncoder<'_>) -> Out {
    let st = &s.state;
    gauge(
        enc,
        "tenbin_tier_ready",
        "Whether a running tier is ready on the node's health bus (1) or not (0).",
        st.readiness
            .iter()
            .map(|r| (label("tier", r.tier.clone()), u64::from(r.ready))),
    )?;
    mux(st, enc)?;
    agent(st, enc)?;
    if let Some(b) = &st.bgp {
        bgp(b, enc)?;
    }
    vrrp(st, enc)?;
    sync(st, enc)
}

fn with(mut l: Labels, name: &'static str, value: impl Into<String>) -> Labels {
    l.push((name, value.into()));
    l
}

fn mux(st: &NodeState, enc: &mut DescriptorEncoder<'_>) -> Out {
    let Some(m) = &st.mux else { return Ok(()) };
    // The data plane's label for a VIP (`tenbin_xdp::metrics`: `addr:port/proto`), so these
    // series join its `tenbin_mux_vip_*_total`.
    let vip = |v: &tenbin_config::api::MuxVipState| {
        let addr = match v.address {
            std::net::IpAddr::V6(a) => format!("[{a}]"),
            a => a.to_string(),
        };
        label("vip", format!("{addr}:{}/{}", v.port, v.protocol))
    };
    gauge(
        enc,
        "tenbin_mux_attached",
        "Whether the Mux's XDP program is attached and its last desired state written.",
        [(Labels::new(), u64::from(m.attached))],
    )?;
    gauge(
        enc,
        "tenbin_mux_vip_up",
        "Whether a Mux VIP has a backend taking new flows (what BGP announces).",
        m.vips.iter().map(|v| (vip(v), u64::from(v.healthy))),
    )?;
    counter(
        enc,
        "tenbin_mux_reports",
        "Host-agent reports the Mux received, by result.",
        [
            (label("result", "accepted"), m.reports_accepted),
            (label("result", "ignored"), m.reports_ignored),
            (label("result", "refused"), m.reports_refused),
        ],
    )?;
    counter(
        enc,
        "tenbin_mux_state_writes",
        "Desired states written to the Mux's maps, by result.",
        [
            (label("result", "ok"), m.updates),
            (label("result", "failed"), m.apply_errors),
        ],
    )
}

fn agent(st: &NodeState, enc: &mut DescriptorEncoder<'_>) -> Out {
    let Some(a) = &st.agent else { return Ok(()) };
    let check = |c: &tenbin_config::api::AgentCheckState| {
        with(
            with(label("vip", c.vip.to_string()), "port", c.port.to_string()),
            "protocol",
            c.protocol.clone(),
        )
    };
    gauge(
        enc,
        "tenbin_agent_check_up",
        "Whether a host-agent check passes (its VIP's service is reported healthy).",
        a.checks
            .iter()
            .map(|c| (check(c), u64::from(c.state == "up"))),
    )?;
    counter(
        enc,
        "tenbin_agent_check_probes",
        "Probes a host-agent check ran.",
        a.checks.iter().map(|c| (check(c), c.probes)),
    )?;
    counter(
        enc,
        "tenbin_agent_check_failures",
        "Probes of a host-agent check that failed.",
        a.checks.iter().map(|c| (check(c), c.failures)),
    )?;
    counter(
        enc,
        "tenbin_agent_reports",
        "Signed health reports the agent sent to its Muxes, by result.",
        [
            (label("result", "sent"), a.reports_sent),
            (label("result", "failed"), a.send_errors),
        ],
    )?;
    counter(
        enc,
        "tenbin_agent_packets",
        "Packets the agent's decapsulation program handled, by outcome.",
        [
            (label("outcome", "decapsulated"), a.decapsulated),
            (label("outcome", "passed"), a.passed),
            (label("outcome", "dropped"), a.dropped),
            (label("outcome", "not_local"), a.not_local),
        ],
    )
}

/// Also what `tenbin mux run --metrics` serves (`super::render_bgp`).
pub(super) fn bgp(b: &tenbin_config::api::bgp::BgpState, enc: &mut DescriptorEncoder<'_>) -> Out {
    let nb = |n: &tenbin_config::api::bgp::BgpNeighborState| label("peer", n.address.to_string());
    gauge(
        enc,
        "tenbin_bgp_session_established",
        "Whether the BGP session with a neighbour is Established.",
        b.neighbors
            .iter()
            .map(|n| (nb(n), u64::from(n.state == "established"))),
    )?;
    gauge(
        enc,
        "tenbin_bgp_session_info",
        "A BGP session's FSM state (always 1, the state as a label).",
        b.neighbors
            .iter()
            .map(|n| (with(nb(n), "state", n.state.clone()), 1u64)),
    )?;
    gauge(
        enc,
        "tenbin_bgp_prefixes_announced",
        "Prefixes announced to a neighbour now.",
        b.neighbors.iter().map(|n| (nb(n), n.prefixes_announced)),
    )?;
    counter(
        enc,
        "tenbin_bgp_flaps",
        "Times a session left Established.",
        b.neighbors.iter().map(|n| (nb(n), n.flaps)),
    )?;
    counter(
        enc,
        "tenbin_bgp_updates",
        "UPDATE messages exchanged with a neighbour, by direction.",
        b.neighbors.iter().flat_map(|n| {
            [
                (with(nb(n), "direction", "sent"), n.updates_sent),
                (with(nb(n), "direction", "received"), n.updates_received),
            ]
        }),
    )?;
    gauge(
        enc,
        "tenbin_bgp_announced",
        "A prefix the speaker wants announced (always 1), with what it comes from (mux or dns).",
        b.prefixes.iter().map(|p| {
            (
                with(
                    label("prefix", p.prefix.clone()),
                    "source",
                    p.source.clone(),
                ),
                1u64,
            )
        }),
    )?;
    gauge(
        enc,
        "tenbin_bgp_mux_drained",
        "Whether the Mux's VIPs are withdrawn by an operator's drain-mux.",
        [(Labels::new(), u64::from(b.mux_drained))],
    )
}

fn vrrp(st: &NodeState, enc: &mut DescriptorEncoder<'_>) -> Out {
    let Some(v) = &st.vrrp else { return Ok(()) };
    let vr = |i: &tenbin_config::api::VrrpInstanceState| {
        with(
            with(
                label("instance", i.name.clone()),
                "interface",
                i.interface.clone(),
            ),
            "vrid",
            i.vrid.to_string(),
        )
    };
    gauge(
        enc,
        "tenbin_vrrp_master",
        "Whether this node is master of a virtual router (owns its VIPs).",
        v.instances
            .iter()
            .map(|i| (vr(i), u64::from(i.state == "master"))),
    )?;
    gauge(
        enc,
        "tenbin_vrrp_state",
        "A virtual router's state (1 for the state it is in, 0 for the others).",
        v.instances.iter().flat_map(|i| {
            ["initialize", "backup", "master", "fault"]
                .map(|s| (with(vr(i), "state", s), u64::from(i.state == s)))
        }),
    )?;
    gauge(
        enc,
        "tenbin_vrrp_priority",
        "A virtual router's priority in force, by kind (effective after tracking, configured).",
        v.instances.iter().flat_map(|i| {
            [
                (with(vr(i), "kind", "effective"), u64::from(i.priority)),
                (
                    with(vr(i), "kind", "configured"),
                    u64::from(i.configured_priority),
                ),
            ]
        }),
    )?;
    gauge(
        enc,
        "tenbin_vrrp_tracked_down",
        "Tracked objects of a virtual router that are down now.",
        v.instances
            .iter()
            .map(|i| (vr(i), i.tracked_down.len() as u64)),
    )?;
    counter(
        enc,
        "tenbin_vrrp_transitions",
        "State changes of a virtual router.",
        v.instances.iter().map(|i| (vr(i), i.transitions)),
    )?;
    counter(
        enc,
        "tenbin_vrrp_adverts",
        "VRRP advertisements, by direction.",
        v.instances.iter().flat_map(|i| {
            [
                (with(vr(i), "direction", "sent"), i.adverts_sent),
                (with(vr(i), "direction", "received"), i.adverts_received),
            ]
        }),
    )?;
    counter(
        enc,
        "tenbin_vrrp_dropped",
        "VRRP packets dropped, by reason.",
        v.instances.iter().flat_map(|i| {
            let d = &i.drops;
            [
                (with(vr(i), "reason", "ttl"), d.ttl),
                (with(vr(i), "reason", "malformed"), d.malformed),
                (with(vr(i), "reason", "checksum"), d.checksum),
                (with(vr(i), "reason", "other_vrid"), d.other_vrid),
            ]
        }),
    )
}

fn sync(st: &NodeState, enc: &mut DescriptorEncoder<'_>) -> Out {
    let Some(s) = &st.sync else { return Ok(()) };
    let peer = |p: &tenbin_config::api::SyncPeerState| {
        let who = p
            .name
            .clone()
            .or_else(|| p.address.map(|a| a.to_string()))
            .unwrap_or_default();
        with(label("peer", who), "direction", p.direction.clone())
    };
    counter(
        enc,
        "tenbin_sync_feed_lost",
        "Persistence changes the sync feed dropped when full (each schedules a full resync).",
        [(Labels::new(), s.feed_lost)],
    )?;
    gauge(
        enc,
        "tenbin_sync_peer_up",
        "Whether a session-sync connection is established and authenticated.",
        s.peers
            .iter()
            .map(|p| (peer(p), u64::from(p.state == "established"))),
    )?;
    counter(
        enc,
        "tenbin_sync_entries",
        "Persistence entries exchanged with a peer, by way (sent, received).",
        s.peers.iter().flat_map(|p| {
            [
                (with(peer(p), "way", "sent"), p.entries_sent),
                (with(peer(p), "way", "received"), p.entries_received),
            ]
        }),
    )?;
    counter(
        enc,
        "tenbin_sync_resyncs",
        "Full resyncs with a peer (each connect, each queue overflow).",
        s.peers.iter().map(|p| (peer(p), p.resyncs)),
    )?;
    counter(
        enc,
        "tenbin_sync_overflows",
        "Times a peer's bounded change queue overflowed.",
        s.peers.iter().map(|p| (peer(p), p.overflows)),
    )?;
    gauge(
        enc,
        "tenbin_sync_queued",
        "Changes waiting to be sent to a peer.",
        s.peers.iter().map(|p| (peer(p), p.queued)),
    )?;
    gauge(
        enc,
        "tenbin_sync_lag_seconds",
        "Age of the oldest change a peer has not acknowledged.",
        s.peers.iter().map(|p| (peer(p), p.lag_ms as f64 / 1000.0)),
    )?;
    counter(
        enc,
        "tenbin_sync_connects",
        "Connections made with a peer.",
        s.peers.iter().map(|p| (peer(p), p.connects)),
    )?;
    counter(
        enc,
        "tenbin_sync_errors",
        "Errors on a peer's connection (authentication, framing, I/O).",
        s.peers.iter().map(|p| (peer(p), p.errors)),
    )
}
