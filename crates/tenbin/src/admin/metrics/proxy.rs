//! The proxy tier's families: frontends (connections, bytes, responses, latency, TLS,
//! refusals), pools (queue, panic mode, persistence) and servers (state, weights, sessions,
//! requests, errors, retries, last transition).

use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use tenbin_core::ServerState;
use tenbin_proxy::http::traffic::{CLASSES, TLS_FAILURES};
use tenbin_proxy::http::TrafficSnapshot;
use tenbin_proxy::pool::FAILURE_KINDS;
use tenbin_proxy::tier::{FrontendStats, FrontendTraffic, L4Snapshot};

use super::{counter, gauge, label, Labels};
use crate::node::NodeStats;

pub(super) fn encode(
    s: &NodeStats,
    enc: &mut DescriptorEncoder<'_>,
) -> Result<(), std::fmt::Error> {
    frontends(&s.proxy.frontends, enc)?;
    pools(s, enc)?;
    servers(s, enc)
}

fn fe(f: &FrontendStats) -> Labels {
    label("frontend", f.name.clone())
}

/// An HTTP frontend's traffic, open connections and refusals.
type HttpView<'a> = (&'a TrafficSnapshot, usize, &'a [(&'static str, u64)]);

fn http(f: &FrontendStats) -> Option<HttpView<'_>> {
    match &f.traffic {
        FrontendTraffic::Http {
            traffic,
            open,
            rejected,
        } => Some((traffic, *open, rejected)),
        FrontendTraffic::Stream(_) => None,
    }
}

fn l4(f: &FrontendStats) -> Option<&L4Snapshot> {
    match &f.traffic {
        FrontendTraffic::Stream(s) => Some(s),
        FrontendTraffic::Http { .. } => None,
    }
}

fn frontends(fs: &[FrontendStats], enc: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
    gauge(
        enc,
        "tenbin_frontend_info",
        "Every frontend with its mode (always 1).",
        fs.iter().map(|f| {
            let mut l = fe(f);
            l.push(("mode", f.mode.to_string()));
            (l, 1u64)
        }),
    )?;
    let accepted = |f: &FrontendStats| match &f.traffic {
        FrontendTraffic::Http { traffic, .. } => traffic.accepted,
        FrontendTraffic::Stream(s) => s.accepted,
    };
    counter(
        enc,
        "tenbin_frontend_connections",
        "Client connections accepted (udp: sessions created); rate() is new connections per second.",
        fs.iter().map(|f| (fe(f), accepted(f))),
    )?;
    let open = |f: &FrontendStats| match &f.traffic {
        FrontendTraffic::Http { open, .. } => *open as u64,
        FrontendTraffic::Stream(s) => s.active,
    };
    gauge(
        enc,
        "tenbin_frontend_connections",
        "Client connections (udp: sessions) open now.",
        fs.iter().map(|f| (fe(f), open(f))),
    )?;
    let bytes = |f: &FrontendStats, inbound: bool| match &f.traffic {
        FrontendTraffic::Http { traffic, .. } if inbound => traffic.bytes_in,
        FrontendTraffic::Http { traffic, .. } => traffic.bytes_out,
        FrontendTraffic::Stream(s) if inbound => s.bytes_in,
        FrontendTraffic::Stream(s) => s.bytes_out,
    };
    counter(
        enc,
        "tenbin_frontend_received_bytes",
        "Bytes received from clients (HTTP after TLS decryption; tcp and udp: relayed to servers).",
        fs.iter().map(|f| (fe(f), bytes(f, true))),
    )?;
    counter(
        enc,
        "tenbin_frontend_sent_bytes",
        "Bytes sent to clients (HTTP before TLS encryption; tcp and udp: relayed from servers).",
        fs.iter().map(|f| (fe(f), bytes(f, false))),
    )?;
    counter(
        enc,
        "tenbin_frontend_requests",
        "HTTP responses by status class, refusals included.",
        fs.iter()
            .filter_map(|f| Some((f, http(f)?.0)))
            .flat_map(|(f, t)| {
                CLASSES.iter().zip(t.responses).map(move |(c, n)| {
                    let mut l = fe(f);
                    l.push(("class", c.to_string()));
                    (l, n)
                })
            }),
    )?;
    durations(fs, enc)?;
    let tls: Vec<_> = fs
        .iter()
        .filter(|f| f.mode == "https")
        .filter_map(|f| Some((f, http(f)?.0)))
        .collect();
    counter(
        enc,
        "tenbin_frontend_tls_handshakes",
        "TLS handshakes completed by HTTPS frontends.",
        tls.iter().map(|(f, t)| (fe(f), t.tls_ok)),
    )?;
    counter(
        enc,
        "tenbin_frontend_tls_handshake_failures",
        "TLS handshakes that failed, by reason (timeout, protocol error, client closed).",
        tls.iter().flat_map(|(f, t)| {
            TLS_FAILURES.iter().zip(t.tls_failed).map(move |(r, n)| {
                let mut l = fe(f);
                l.push(("reason", r.to_string()));
                (l, n)
            })
        }),
    )?;
    counter(
        enc,
        "tenbin_frontend_rejected",
        "Requests and connections an HTTP frontend refused, by reason (limits, framing, timeouts).",
        fs.iter()
            .filter_map(|f| Some((f, http(f)?.2)))
            .flat_map(|(f, r)| {
                r.iter().map(move |(reason, n)| {
                    let mut l = fe(f);
                    l.push(("reason", reason.to_string()));
                    (l, *n)
                })
            }),
    )?;
    counter(
        enc,
        "tenbin_frontend_failed_connections",
        "tcp, tls and udp connections that never reached a server (no server, queue, connect).",
        fs.iter().filter_map(|f| Some((fe(f), l4(f)?.failed))),
    )?;
    counter(
        enc,
        "tenbin_frontend_idle_closed",
        "tcp and udp sessions ended by the idle timeout.",
        fs.iter().filter_map(|f| Some((fe(f), l4(f)?.idle_closed))),
    )?;
    counter(
        enc,
        "tenbin_frontend_worker_moves",
        "tcp sessions and keep-alive HTTP connections moved from a worker whose CPU was contended to one with room.",
        fs.iter().filter_map(|f| {
            let moved = l4(f).map(|s| s.moved).or_else(|| Some(http(f)?.0.moved))?;
            Some((fe(f), moved))
        }),
    )
}

fn durations(fs: &[FrontendStats], enc: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
    let rows: Vec<_> = fs.iter().filter_map(|f| Some((f, http(f)?.0))).collect();
    if rows.is_empty() {
        return Ok(());
    }
    let mut family = enc.encode_descriptor(
        "tenbin_request_duration_seconds",
        "Time from an HTTP request's arrival to its response head.",
        None,
        MetricType::Histogram,
    )?;
    for (f, t) in rows {
        let d = &t.duration;
        // The encoder wants each bucket's own count and adds them up itself.
        let mut below = 0;
        let buckets: Vec<(f64, u64)> = d
            .cumulative
            .iter()
            .map(|(b, c)| {
                let own = c - below;
                below = *c;
                (*b, own)
            })
            .collect();
        family
            .encode_family(&fe(f))?
            .encode_histogram::<NoLabelSet>(d.sum_seconds, d.count, &buckets, None)?;
    }
    Ok(())
}

fn pools(s: &NodeStats, enc: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
    let pool = |name: &str| label("pool", name.to_string());
    gauge(
        enc,
        "tenbin_pool_queue_length",
        "Callers waiting because every eligible server is at maxconn.",
        s.proxy
            .pools
            .iter()
            .map(|p| (pool(&p.name), p.queued as u64)),
    )?;
    gauge(
        enc,
        "tenbin_pool_panic",
        "1 while too few servers are usable and health is ignored (panic mode).",
        s.state
            .pools
            .iter()
            .map(|p| (pool(&p.name), u64::from(u8::from(p.panic)))),
    )?;
    let tables: Vec<_> = s
        .proxy
        .pools
        .iter()
        .filter_map(|p| Some((p.name.as_str(), p.persistence?)))
        .collect();
    gauge(
        enc,
        "tenbin_persistence_entries",
        "Entries in the pool's persistence table.",
        tables.iter().map(|(n, t)| (pool(n), t.entries as u64)),
    )?;
    gauge(
        enc,
        "tenbin_persistence_capacity",
        "Entries the pool's persistence table holds at most.",
        tables.iter().map(|(n, t)| (pool(n), t.capacity as u64)),
    )?;
    counter(
        enc,
        "tenbin_persistence_lookups",
        "Persistence table lookups, by whether they found a pinned server.",
        tables.iter().flat_map(|(n, t)| {
            [("hit", t.hits), ("miss", t.misses)].map(|(r, v)| {
                let mut l = pool(n);
                l.push(("result", r.to_string()));
                (l, v)
            })
        }),
    )?;
    counter(
        enc,
        "tenbin_persistence_evictions",
        "Persistence entries pushed out by a full table.",
        tables.iter().map(|(n, t)| (pool(n), t.evictions)),
    )
}

const STATES: [(ServerState, &str); 5] = [
    (ServerState::Active, "active"),
    (ServerState::Draining, "draining"),
    (ServerState::Down, "down"),
    (ServerState::Maintenance, "maintenance"),
    (ServerState::Unchecked, "unchecked"),
];

fn servers(s: &NodeStats, enc: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
    let rows: Vec<_> = s
        .proxy
        .pools
        .iter()
        .flat_map(|p| p.servers.iter().map(move |v| (p.name.as_str(), v)))
        .collect();
    let id = |pool: &str, server: &str| -> Labels {
        vec![("pool", pool.to_string()), ("server", server.to_string())]
    };
    let with = |pool: &str, server: &str, k: &'static str, v: &str| {
        let mut l = id(pool, server);
        l.push((k, v.to_string()));
        l
    };
    gauge(
        enc,
        "tenbin_server_up",
        "1 while the server takes sessions (active or draining), else 0.",
        rows.iter().map(|(p, v)| {
            let up = matches!(v.state, ServerState::Active | ServerState::Draining);
            (id(p, &v.server.name), u64::from(u8::from(up)))
        }),
    )?;
    gauge(
        enc,
        "tenbin_server_state",
        "1 for the state picking acts on now, 0 for the others.",
        rows.iter().flat_map(|(p, v)| {
            STATES.iter().map(move |(st, name)| {
                let on = u64::from(u8::from(v.state == *st));
                (with(p, &v.server.name, "state", name), on)
            })
        }),
    )?;
    gauge(
        enc,
        "tenbin_server_weight",
        "Weight as configured, and as picking uses it now (load factor, slow start).",
        rows.iter().flat_map(|(p, v)| {
            [
                (
                    with(p, &v.server.name, "kind", "configured"),
                    u64::from(v.weight),
                ),
                (
                    with(p, &v.server.name, "kind", "effective"),
                    u64::from(v.effective_weight),
                ),
            ]
        }),
    )?;
    gauge(
        enc,
        "tenbin_server_active_connections",
        "Sessions on the server now.",
        rows.iter()
            .map(|(p, v)| (id(p, &v.server.name), u64::from(v.active))),
    )?;
    counter(
        enc,
        "tenbin_server_requests",
        "Sessions handed to the server (HTTP: request attempts; tcp, udp: connections, sessions).",
        rows.iter()
            .map(|(p, v)| (id(p, &v.server.name), v.traffic.requests)),
    )?;
    counter(
        enc,
        "tenbin_server_errors",
        "Failed attempts on the server, by kind.",
        rows.iter().flat_map(|(p, v)| {
            FAILURE_KINDS
                .iter()
                .zip(v.traffic.failures)
                .map(move |(k, n)| (with(p, &v.server.name, "kind", k), n))
        }),
    )?;
    counter(
        enc,
        "tenbin_server_retries",
        "Failed HTTP attempts on the server that were retried on another server.",
        rows.iter()
            .map(|(p, v)| (id(p, &v.server.name), v.traffic.retries)),
    )?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    gauge(
        enc,
        "tenbin_server_last_transition_timestamp_seconds",
        "When the server's health state last changed (checked servers only).",
        s.state.pools.iter().flat_map(|p| {
            p.servers.iter().filter_map(move |v| {
                let since = v.since_change_secs?;
                Some((id(&p.name, &v.name), now - since))
            })
        }),
    )
}
