//! `GET /metrics`: every tier's counters in the Prometheus text format (0.0.4), encoded
//! with `prometheus-client` from one [`NodeStats`] read per scrape. Nothing is registered
//! ahead: the tiers count on their own hot-path counters and the scrape renders what
//! their `stats()` return, so the families always match what runs now (a removed server's
//! series end with it).
//!
//! - `process`: build info, start time, reloads, the config's hash and generation;
//! - `proxy`: frontends, pools, servers, persistence tables;
//! - `dns`: queries by transport and path, types, rcodes, answers and health per datacenter;
//! - `roles`: tier readiness, the XDP Mux's control side and the host agent, BGP, VRRP and
//!   session sync, from their `NodeState` fields;
//! - the Mux data plane's counters (verdicts, per VIP and per backend), appended as
//!   `tenbin_xdp::metrics` renders them, the text `tenbin mux run --metrics` serves too.
//!
//! Names follow Prometheus conventions (`_total` counters, `_seconds`, `_bytes`), and
//! `promtool check metrics` (in `tests/cli_metrics.rs`) holds the output to them.

mod dns;
mod process;
mod proxy;
mod roles;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeGaugeValue, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::node::{Control, NodeStats};

/// Label pairs of one series.
type Labels = Vec<(&'static str, String)>;

/// The handler: one read of the node, rendered.
pub async fn serve(State(control): State<Control>) -> Response {
    let stats = control.stats().await;
    match render(stats) {
        Ok(text) => (
            [(
                CONTENT_TYPE,
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            )],
            text,
        )
            .into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "cannot encode metrics\n").into_response(),
    }
}

/// The text exposition of `stats`.
pub fn render(stats: NodeStats) -> Result<String, std::fmt::Error> {
    let mux = stats.mux.as_ref().map(|c| c.render());
    let mut out = encode(Snapshot(stats))?;
    if let Some(mux) = mux {
        out.push_str(&mux);
    }
    Ok(out)
}

/// The BGP role's families alone (what `tenbin mux run --metrics` adds to the Mux's).
pub fn render_bgp(state: &tenbin_config::api::bgp::BgpState) -> Result<String, std::fmt::Error> {
    encode(Bgp(state.clone()))
}

fn encode(collector: impl Collector + 'static) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(collector));
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)?;
    Ok(out)
}

#[derive(Debug)]
struct Bgp(tenbin_config::api::bgp::BgpState);

impl Collector for Bgp {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        roles::bgp(&self.0, &mut enc)
    }
}

/// One scrape's data as a collector.
#[derive(Debug)]
struct Snapshot(NodeStats);

impl Collector for Snapshot {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        process::encode(&self.0, &mut enc)?;
        proxy::encode(&self.0, &mut enc)?;
        dns::encode(&self.0, &mut enc)?;
        roles::encode(&self.0, &mut enc)
    }
}

/// A counter family (the encoder appends `_total` to `name`); skipped when it has no series.
fn counter(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels, u64)>,
) -> Result<(), std::fmt::Error> {
    let rows: Vec<_> = rows.into_iter().collect();
    if rows.is_empty() {
        return Ok(());
    }
    let mut family = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in &rows {
        family
            .encode_family(labels)?
            .encode_counter::<NoLabelSet, _, u64>(v, None)?;
    }
    Ok(())
}

/// A gauge family (integers stay integers in the text); skipped when it has no series.
fn gauge<V: EncodeGaugeValue>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    rows: impl IntoIterator<Item = (Labels, V)>,
) -> Result<(), std::fmt::Error> {
    let rows: Vec<_> = rows.into_iter().collect();
    if rows.is_empty() {
        return Ok(());
    }
    let mut family = enc.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, v) in &rows {
        family.encode_family(labels)?.encode_gauge(v)?;
    }
    Ok(())
}

fn label(name: &'static str, value: impl Into<String>) -> Labels {
    vec![(name, value.into())]
}

#[cfg(test)]
mod tests;
