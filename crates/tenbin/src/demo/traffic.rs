//! The demo's load driver and its per-server table.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use indicatif::ProgressBar;

/// What a run observed, by the server that answered.
#[derive(Debug, Default)]
pub struct Tally {
    pub per_server: BTreeMap<String, Vec<Duration>>,
    /// Requests that did not get a 200 from some server.
    pub failed: u64,
}

/// How to drive one run.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub requests: u64,
    pub concurrency: usize,
    /// Pause between a worker's requests, to stretch a run over time.
    pub pace: Duration,
}

/// Sends `load.requests` GETs through the proxy at `proxy`, each as one of 64 users
/// (header `x-user`, for hashing pools), and ticks `bar` per request.
pub async fn drive(proxy: SocketAddr, load: Load, bar: &ProgressBar) -> Tally {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build(connector);
    let next = Arc::new(AtomicU64::new(0));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let mut workers = Vec::new();
    for _ in 0..load.concurrency {
        let (client, next, tally, bar) = (
            client.clone(),
            Arc::clone(&next),
            Arc::clone(&tally),
            bar.clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= load.requests {
                    break;
                }
                let outcome = one(&client, proxy, i).await;
                {
                    let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
                    match outcome {
                        Some((server, latency)) => {
                            t.per_server.entry(server).or_default().push(latency)
                        }
                        None => t.failed += 1,
                    }
                }
                bar.inc(1);
                if !load.pace.is_zero() {
                    tokio::time::sleep(load.pace).await;
                }
            }
        }));
    }
    for w in workers {
        let _ = w.await;
    }
    Arc::try_unwrap(tally)
        .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
        .unwrap_or_default()
}

async fn one(
    client: &Client<HttpConnector, Full<Bytes>>,
    proxy: SocketAddr,
    i: u64,
) -> Option<(String, Duration)> {
    let req = Request::get(format!("http://{proxy}/"))
        .header("x-user", format!("user-{}", i % 64))
        .body(Full::new(Bytes::new()))
        .ok()?;
    let started = Instant::now();
    let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .ok()?
        .ok()?;
    if !resp.status().is_success() {
        return None;
    }
    let server = resp.headers().get("x-server")?.to_str().ok()?.to_string();
    resp.into_body().collect().await.ok()?;
    Some((server, started.elapsed()))
}

impl Tally {
    pub fn total(&self) -> usize {
        self.per_server.values().map(Vec::len).sum::<usize>() + self.failed as usize
    }

    /// The per-server table: requests, share, mean and p99 latency.
    pub fn table(&self, servers: &[String]) -> String {
        let total = self.total().max(1) as f64;
        let mut out = format!(
            "    {:<10} {:>8} {:>7} {:>10} {:>10}\n",
            "server", "requests", "share", "mean", "p99"
        );
        for name in servers {
            let mut lat = self.per_server.get(name).cloned().unwrap_or_default();
            lat.sort();
            let n = lat.len();
            let mean = if n == 0 {
                Duration::ZERO
            } else {
                lat.iter().sum::<Duration>() / n as u32
            };
            let p99 = lat
                .get((n * 99 / 100).min(n.saturating_sub(1)))
                .copied()
                .unwrap_or_default();
            let bar = "#".repeat((n as f64 / total * 40.0).round() as usize);
            out.push_str(&format!(
                "    {:<10} {:>8} {:>6.1}% {:>10} {:>10}  {bar}\n",
                name,
                n,
                n as f64 / total * 100.0,
                fmt_ms(mean),
                fmt_ms(p99),
            ));
        }
        out.push_str(&format!("    {:<10} {:>8}\n", "failed", self.failed));
        out
    }
}

fn fmt_ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}
