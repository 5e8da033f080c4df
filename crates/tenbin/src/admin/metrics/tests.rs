//! The rendering against hand-built stats: exact lines for what a scrape must show.

use tenbin_config::api::{
    DatacenterState, DnsState, NodeState, PoolState, ServerStatus as ApiServer, VipState,
};
use tenbin_config::pool::AdminState;
use tenbin_core::counter::HistogramSnapshot;
use tenbin_core::{BackendId, ServerState};
use tenbin_proxy::http::TrafficSnapshot;
use tenbin_proxy::pool::{Server, ServerStatus, ServerTraffic};
use tenbin_proxy::tier::{FrontendStats, FrontendTraffic, L4Snapshot, PoolStats, ProxyStats};

use super::render;
use crate::node::{NodeStats, ProcessStats};

fn stats() -> NodeStats {
    let server = ServerStatus {
        server: Server {
            id: BackendId(0),
            name: "a\"b".into(),
            addr: "127.0.0.1:80".parse().unwrap(),
        },
        state: ServerState::Draining,
        active: 2,
        weight: 10,
        effective_weight: 0,
        traffic: ServerTraffic {
            requests: 7,
            failures: [1, 0, 0, 2],
            retries: 1,
        },
    };
    let traffic = TrafficSnapshot {
        accepted: 3,
        moved: 2,
        responses: [0, 5, 0, 1, 0],
        duration: HistogramSnapshot {
            cumulative: vec![(0.001, 1), (0.01, 4), (1.0, 5)],
            count: 6,
            sum_seconds: 9.5,
        },
        ..TrafficSnapshot::default()
    };
    NodeStats {
        state: NodeState {
            pools: vec![PoolState {
                name: "web".into(),
                algorithm: "roundrobin".into(),
                queued: 0,
                panic: false,
                servers: vec![ApiServer {
                    name: "a\"b".into(),
                    address: "127.0.0.1:80".parse().unwrap(),
                    state: "draining".into(),
                    admin: AdminState::Draining,
                    weight: 10,
                    effective_weight: 0,
                    active: 2,
                    check: None,
                    since_change_secs: None,
                }],
            }],
            dns: Some(DnsState {
                listen: Vec::new(),
                datacenters: vec![DatacenterState {
                    name: "tokyo".into(),
                    admin: None,
                    load: 0.25,
                    vips: vec![VipState {
                        address: "192.0.2.1".parse().unwrap(),
                        state: "down".into(),
                    }],
                }],
            }),
            ..NodeState::default()
        },
        proxy: ProxyStats {
            frontends: vec![FrontendStats {
                name: "edge".into(),
                mode: "http",
                traffic: FrontendTraffic::Http {
                    traffic,
                    open: 2,
                    rejected: vec![("host", 4)],
                },
            }],
            pools: vec![PoolStats {
                name: "web".into(),
                queued: 1,
                servers: vec![server],
                persistence: None,
            }],
        },
        mux: None,
        dns: Some(tenbin_dns::Stats {
            answers_per_dc: vec![("tokyo".into(), 9)],
            paths: vec![("udp", "fast", 8)],
            ..tenbin_dns::Stats::default()
        }),
        process: ProcessStats {
            started: 1.5,
            reloads_ok: 2,
            reloads_failed: 1,
            config_hash: 0xab,
            generation: 4,
        },
    }
}

#[test]
fn every_tier_renders_its_series() {
    let text = render(stats()).unwrap();
    for line in [
        "# TYPE tenbin_frontend_connections_total counter",
        "tenbin_frontend_connections_total{frontend=\"edge\"} 3",
        "# TYPE tenbin_frontend_connections gauge",
        "tenbin_frontend_connections{frontend=\"edge\"} 2",
        "tenbin_frontend_requests_total{frontend=\"edge\",class=\"2xx\"} 5",
        "tenbin_frontend_requests_total{frontend=\"edge\",class=\"4xx\"} 1",
        "tenbin_frontend_rejected_total{frontend=\"edge\",reason=\"host\"} 4",
        "tenbin_request_duration_seconds_bucket{frontend=\"edge\",le=\"0.01\"} 4",
        "tenbin_request_duration_seconds_bucket{frontend=\"edge\",le=\"1\"} 5",
        "tenbin_request_duration_seconds_bucket{frontend=\"edge\",le=\"+Inf\"} 6",
        "tenbin_request_duration_seconds_count{frontend=\"edge\"} 6",
        "tenbin_server_requests_total{pool=\"web\",server=\"a\\\"b\"} 7",
        "tenbin_server_up{pool=\"web\",server=\"a\\\"b\"} 1",
        "tenbin_server_state{pool=\"web\",server=\"a\\\"b\",state=\"draining\"} 1",
        "tenbin_server_state{pool=\"web\",server=\"a\\\"b\",state=\"active\"} 0",
        "tenbin_server_weight{pool=\"web\",server=\"a\\\"b\",kind=\"effective\"} 0",
        "tenbin_server_errors_total{pool=\"web\",server=\"a\\\"b\",kind=\"server_error\"} 2",
        "tenbin_server_retries_total{pool=\"web\",server=\"a\\\"b\"} 1",
        "tenbin_pool_queue_length{pool=\"web\"} 1",
        "tenbin_dns_queries_total{transport=\"udp\",path=\"fast\"} 8",
        "tenbin_dns_answers_total{dc=\"tokyo\"} 9",
        "tenbin_dns_datacenter_load{dc=\"tokyo\"} 0.25",
        "tenbin_dns_datacenter_up{dc=\"tokyo\"} 0",
        "tenbin_dns_vip_up{dc=\"tokyo\",vip=\"192.0.2.1\"} 0",
        "tenbin_config_reloads_total{result=\"ok\"} 2",
        "tenbin_config_reloads_total{result=\"failed\"} 1",
        "tenbin_config_info{hash=\"00000000000000ab\"} 1",
        "tenbin_config_generation 4",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
    assert!(text.contains("tenbin_build_info{version=\""));
}

#[test]
fn a_tcp_frontend_renders_its_session_counters() {
    let mut s = stats();
    s.proxy.frontends.push(FrontendStats {
        name: "bulk".into(),
        mode: "tcp",
        traffic: FrontendTraffic::Stream(L4Snapshot {
            accepted: 9,
            active: 1,
            failed: 2,
            idle_closed: 3,
            moved: 4,
            bytes_in: 10,
            bytes_out: 20,
        }),
    });
    let text = render(s).unwrap();
    for line in [
        "tenbin_frontend_failed_connections_total{frontend=\"bulk\"} 2",
        "tenbin_frontend_idle_closed_total{frontend=\"bulk\"} 3",
        "# TYPE tenbin_frontend_worker_moves_total counter",
        "tenbin_frontend_worker_moves_total{frontend=\"bulk\"} 4",
        // The HTTP frontend's keep-alive connections moved, in the same family.
        "tenbin_frontend_worker_moves_total{frontend=\"edge\"} 2",
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
}

#[test]
fn families_without_series_are_left_out() {
    let mut s = stats();
    s.dns = None;
    s.proxy.frontends.clear();
    let text = render(s).unwrap();
    assert!(!text.contains("tenbin_dns_queries"), "{text}");
    assert!(!text.contains("tenbin_request_duration_seconds"), "{text}");
    assert!(!text.contains("tenbin_frontend_tls"), "{text}");
    assert!(text.contains("tenbin_server_requests_total"));
}

/// A node running every role: each role's `NodeState` field, as the roles publish it.
fn with_roles() -> NodeStats {
    let mut s = stats();
    let roles: NodeState = serde_json::from_value(serde_json::json!({
        "config": "x", "generation": 1, "tiers": [], "frontends": [], "pools": [],
        "dns": null, "admin": null,
        "readiness": [{"tier": "proxy", "ready": true, "detail": ""},
                      {"tier": "mux", "ready": false, "detail": ""}],
        "mux": {"interface": "eth0", "attached": true,
                "vips": [{"address": "198.51.100.7", "port": 80, "protocol": "tcp",
                          "healthy": true, "packets": 11, "bytes": 1200, "new_flows": 3}],
                "packets": {"tx": 11, "pass": 2}, "updates": 4, "apply_errors": 0,
                "reports_accepted": 5, "reports_ignored": 0, "reports_refused": 1},
        "agent": {"interface": "eth0", "vips": ["198.51.100.7"],
                  "checks": [{"vip": "198.51.100.7", "port": 80, "protocol": "tcp",
                              "state": "up", "probes": 9, "failures": 1, "last_error": null}],
                  "reports_sent": 9, "send_errors": 0, "decapsulated": 11, "passed": 0,
                  "dropped": 0, "not_local": 0},
        "bgp": {"router_id": "10.0.0.1", "local_as": 65001,
                "neighbors": [{"address": "10.0.0.254", "remote_as": 65000,
                               "state": "established", "uptime_secs": 3.0,
                               "hold_time_secs": 9, "prefixes_announced": 1, "flaps": 2,
                               "updates_sent": 3, "updates_received": 1, "last_error": null}],
                "prefixes": [{"prefix": "198.51.100.7/32", "source": "mux",
                              "address": "198.51.100.7"}],
                "mux_drained": false},
        "vrrp": {"instances": [{"name": "v1", "interface": "eth0", "vrid": 51,
                                "state": "master", "priority": 90, "configured_priority": 100,
                                "master": "10.0.0.1", "tracked_down": ["pool/web"],
                                "transitions": 2, "adverts_sent": 40, "adverts_received": 3,
                                "drops": {"ttl": 1, "malformed": 0, "checksum": 2,
                                          "other_vrid": 0}}]},
        "sync": {"listen": "127.0.0.1:7400", "feed_lost": 0,
                 "peers": [{"direction": "out", "address": "127.0.0.1:7401", "name": "b",
                            "state": "established", "entries_sent": 24,
                            "entries_received": 0, "resyncs": 1, "overflows": 0,
                            "queued": 0, "unacked": 0, "lag_ms": 250, "connects": 1,
                            "errors": 0, "last_error": null}]}
    }))
    .expect("the roles' state as JSON");
    s.state.readiness = roles.readiness;
    s.state.mux = roles.mux;
    s.state.agent = roles.agent;
    s.state.bgp = roles.bgp;
    s.state.vrrp = roles.vrrp;
    s.state.sync = roles.sync;
    let c = tenbin_xdp::abi::Counters {
        packets: 11,
        bytes: 1200,
        new_flows: 3,
    };
    s.mux = Some(tenbin_xdp::metrics::MuxCounters {
        verdicts: vec![11; tenbin_xdp::abi::STAT_NAMES.len()],
        vips: vec![("198.51.100.7:80/tcp".into(), c)],
        backends: vec![("10.0.0.2".into(), c)],
    });
    s
}

#[test]
fn every_role_renders_its_series() {
    let text = render(with_roles()).unwrap();
    let vip = "vip=\"198.51.100.7\",port=\"80\",protocol=\"tcp\"";
    let mux_vip = "vip=\"198.51.100.7:80/tcp\"";
    let vr = "instance=\"v1\",interface=\"eth0\",vrid=\"51\"";
    let peer = "peer=\"b\",direction=\"out\"";
    for line in [
        "tenbin_tier_ready{tier=\"proxy\"} 1".to_string(),
        "tenbin_tier_ready{tier=\"mux\"} 0".to_string(),
        "tenbin_mux_attached 1".to_string(),
        format!("tenbin_mux_vip_up{{{mux_vip}}} 1"),
        format!("tenbin_mux_vip_new_flows_total{{{mux_vip}}} 3"),
        "tenbin_mux_backend_packets_total{backend=\"10.0.0.2\"} 11".to_string(),
        "tenbin_mux_reports_total{result=\"refused\"} 1".to_string(),
        format!("tenbin_agent_check_up{{{vip}}} 1"),
        format!("tenbin_agent_check_failures_total{{{vip}}} 1"),
        "tenbin_agent_packets_total{outcome=\"decapsulated\"} 11".to_string(),
        "tenbin_bgp_session_established{peer=\"10.0.0.254\"} 1".to_string(),
        "tenbin_bgp_flaps_total{peer=\"10.0.0.254\"} 2".to_string(),
        "tenbin_bgp_announced{prefix=\"198.51.100.7/32\",source=\"mux\"} 1".to_string(),
        "tenbin_bgp_mux_drained 0".to_string(),
        format!("tenbin_vrrp_master{{{vr}}} 1"),
        format!("tenbin_vrrp_state{{{vr},state=\"backup\"}} 0"),
        format!("tenbin_vrrp_priority{{{vr},kind=\"effective\"}} 90"),
        format!("tenbin_vrrp_tracked_down{{{vr}}} 1"),
        format!("tenbin_vrrp_dropped_total{{{vr},reason=\"checksum\"}} 2"),
        format!("tenbin_sync_peer_up{{{peer}}} 1"),
        format!("tenbin_sync_entries_total{{{peer},way=\"sent\"}} 24"),
        format!("tenbin_sync_lag_seconds{{{peer}}} 0.25"),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "missing `{line}` in:\n{text}"
        );
    }
}

/// What promtool (Debian's prometheus package) says about a scrape with every role: no
/// errors and no lint warnings, like the live node's in `tests/cli_metrics.rs`.
#[test]
fn promtool_accepts_every_roles_families() {
    use std::io::Write as _;
    if !tenbin_testkit::skip::need_tools(&["promtool"]) {
        return;
    }
    let text = render(with_roles()).unwrap();
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("promtool");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}\n{text}"
    );
}
