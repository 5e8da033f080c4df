//! The rendering against hand-built stats: exact lines for what a scrape must show.

use tenbin_config::api::{
    DatacenterState, DnsState, NodeState, PoolState, ServerStatus as ApiServer, VipState,
};
use tenbin_config::pool::AdminState;
use tenbin_core::counter::HistogramSnapshot;
use tenbin_core::{BackendId, ServerState};
use tenbin_proxy::http::TrafficSnapshot;
use tenbin_proxy::pool::{Server, ServerStatus, ServerTraffic};
use tenbin_proxy::tier::{FrontendStats, FrontendTraffic, PoolStats, ProxyStats};

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
