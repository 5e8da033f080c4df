//! `tenbin demo`: the whole proxy tier on loopback, needing nothing but this binary.
//!
//! It starts four embedded HTTP backends with different latencies, puts the L7 proxy in front,
//! drives bounded traffic through it with several algorithms and prints who served what, then
//! crashes one backend mid-run while an HTTP health check (tenbin-health) watches: the check
//! takes the server out and retries keep every client request successful meanwhile.

mod backend;
mod traffic;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::SeedableRng;
use tenbin_core::pick::Algorithm;
use tenbin_core::ServerState;
use tenbin_health::hub::TargetOptions;
use tenbin_health::scheduler::{spawn_check, SharedRng};
use tenbin_health::{CheckKind, CheckSpec, HealthHub, HealthSnapshot, HttpCheck, TargetKey};
use tenbin_proxy::http::HttpFrontend;
use tenbin_proxy::pool::{HashOn, Pool, PoolConfig, ServerConfig};
use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};

use backend::DemoBackend;
use traffic::{drive, Load};

/// Arguments of `tenbin demo`.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// Requests per algorithm in the first part.
    #[arg(long, default_value_t = 400, value_parser = clap::value_parser!(u64).range(10..=100_000))]
    pub requests: u64,
}

/// (name, latency in ms, weight) of the embedded backends.
const BACKENDS: [(&str, u64, u32); 4] = [
    ("alpha", 1, 1),
    ("bravo", 2, 1),
    ("charlie", 4, 2),
    ("delta", 8, 4),
];

pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    rt.block_on(demo(args))
}

async fn demo(args: DemoArgs) -> anyhow::Result<()> {
    println!(
        "tenbin demo: {} HTTP backends on 127.0.0.1 and the L7 proxy in front.\n",
        BACKENDS.len()
    );
    let mut backends = Vec::new();
    for (name, ms, weight) in BACKENDS {
        let b = DemoBackend::start(name, Duration::from_millis(ms)).await?;
        println!(
            "  backend {:<8} {}  latency {ms} ms, weight {weight}",
            b.name, b.addr
        );
        backends.push(b);
    }
    let names: Vec<String> = backends.iter().map(|b| b.name.clone()).collect();
    println!();

    let algorithms = [
        ("roundrobin", Algorithm::RoundRobin),
        ("wrr (weights 1:1:2:4)", Algorithm::WeightedRoundRobin),
        ("leastconn", Algorithm::LeastConn),
        (
            "peak-ewma",
            Algorithm::PeakEwma {
                decay: Duration::from_secs(10),
            },
        ),
        (
            "maglev on header x-user",
            Algorithm::Maglev { table_size: 65_537 },
        ),
    ];
    let load = Load {
        requests: args.requests,
        concurrency: 8,
        pace: Duration::ZERO,
    };
    for (label, algorithm) in algorithms {
        let mut cfg = PoolConfig::new("app", algorithm, servers(&backends));
        // Only hashing algorithms look at it: 64 demo users, each kept on one server.
        cfg.hash_on = HashOn::Header("x-user".into());
        let (addr, stop) = start_proxy(Pool::new(cfg)).await?;
        let bar = progress(label, load.requests);
        let tally = drive(addr, load, &bar).await;
        bar.finish_and_clear();
        println!("  {label}: {} requests, 8 at a time", tally.total());
        print!("{}", tally.table(&names));
        println!();
        let _ = stop.send(());
    }

    failover(&backends, &names).await?;

    println!("Run tenbin on a real config:");
    println!("  tenbin check -c examples/l7-content-switching.toml   # validate and summarise");
    println!("  tenbin run -c examples/l7-content-switching.toml     # serve until interrupted");
    println!("(point the [[pool.server]] addresses at your own servers first)");
    Ok(())
}

/// Part two: an HTTP health check watches the pool while one backend crashes mid-run.
async fn failover(backends: &[DemoBackend], names: &[String]) -> anyhow::Result<()> {
    let victim = &backends[2];
    println!(
        "Failover: round robin, HTTP health check GET /health expecting \"OK\" every 100 ms \
         (fall 2), 2 retries; {} crashes a third of the way in.",
        victim.name
    );
    let pool = Pool::new(PoolConfig::new(
        "app",
        Algorithm::RoundRobin,
        servers(backends),
    ));
    let hub = HealthHub::new();
    let now = Instant::now();
    hub.add_pool("app", None, now);
    let spec = CheckSpec {
        interval: Duration::from_millis(100),
        jitter: 0.1,
        timeout: Duration::from_millis(500),
        rise: 1,
        fall: 2,
        ..CheckSpec::new(CheckKind::Http(HttpCheck {
            path: "/health".into(),
            expect_body: Some("OK".into()),
            ..HttpCheck::default()
        }))
    };
    let opts = TargetOptions {
        checked: true,
        rise: spec.rise,
        fall: spec.fall,
        admin: ServerState::Active,
    };
    let rng: SharedRng = Arc::new(Mutex::new(StdRng::seed_from_u64(1)));
    let mut checks = Vec::new();
    for b in backends {
        let key = TargetKey::new("app", &b.name);
        hub.add_target(&key, opts, now);
        let check = spawn_check(
            Arc::clone(&hub),
            key,
            b.addr,
            spec.clone(),
            Arc::clone(&rng),
        );
        checks.push(check);
    }
    wait_all_active(hub.subscribe(), backends).await?;

    let load = Load {
        requests: 1200,
        concurrency: 4,
        pace: Duration::from_millis(4),
    };
    let bar = progress("failover", load.requests);
    let applier = tokio::spawn(apply_health(
        hub.subscribe(),
        pool.clone(),
        victim.name.clone(),
        bar.clone(),
    ));
    let (addr, stop) = start_proxy(pool.clone()).await?;
    let crash_at = load.requests / 3;
    let crash = async {
        while bar.position() < crash_at {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        victim.stop();
        say(
            &bar,
            format!(
                "  request #{}: {} crashed (listener closed, connections cut)",
                bar.position(),
                victim.name
            ),
        );
    };
    let (tally, ()) = tokio::join!(drive(addr, load, &bar), crash);
    bar.finish_and_clear();
    applier.abort();
    for c in checks {
        c.abort();
    }
    let _ = stop.send(());
    print!("{}", tally.table(names));
    let state = pool
        .servers()
        .into_iter()
        .find(|(s, _, _)| s.name == victim.name)
        .map_or("unknown".to_string(), |(_, st, _)| st.to_string());
    println!(
        "  {} is now {state}; failed client requests: {}{}\n",
        victim.name,
        tally.failed,
        if tally.failed == 0 {
            " (retries covered the gap until the check noticed)"
        } else {
            ""
        },
    );
    if tally.failed > 0 {
        anyhow::bail!("{} requests failed across the backend stop", tally.failed);
    }
    Ok(())
}

/// Waits (bounded) until every backend passed its first check.
async fn wait_all_active(
    mut rx: watch::Receiver<Arc<HealthSnapshot>>,
    backends: &[DemoBackend],
) -> anyhow::Result<()> {
    let all_up = async {
        loop {
            let up = {
                let snap = rx.borrow_and_update();
                backends.iter().all(|b| {
                    snap.state(&TargetKey::new("app", &b.name)) == Some(ServerState::Active)
                })
            };
            if up || rx.changed().await.is_err() {
                return up;
            }
        }
    };
    match tokio::time::timeout(Duration::from_secs(5), all_up).await {
        Ok(true) => Ok(()),
        _ => anyhow::bail!("the backends did not pass their first health check"),
    }
}

/// Applies every published health view to the pool and narrates the victim's fall.
async fn apply_health(
    mut rx: watch::Receiver<Arc<HealthSnapshot>>,
    pool: Pool,
    victim: String,
    bar: ProgressBar,
) {
    let mut reported = false;
    while rx.changed().await.is_ok() {
        let snap = Arc::clone(&rx.borrow_and_update());
        for (server, _, _) in pool.servers() {
            let Some(t) = snap.target(&TargetKey::new("app", &server.name)) else {
                continue;
            };
            pool.apply_health(server.id, t.state, t.load_percent);
            if server.name == victim && !t.state.accepts_new() && !reported {
                reported = true;
                say(
                    &bar,
                    format!(
                        "  request #{}: the health check marks {victim} {} ({})",
                        bar.position(),
                        t.state,
                        t.reason
                    ),
                );
            }
        }
    }
}

fn servers(backends: &[DemoBackend]) -> Vec<ServerConfig> {
    backends
        .iter()
        .zip(BACKENDS)
        .map(|(b, (_, _, weight))| {
            let mut s = ServerConfig::new(b.name.clone(), b.addr);
            s.weight = weight;
            s
        })
        .collect()
}

async fn start_proxy(pool: Pool) -> anyhow::Result<(SocketAddr, oneshot::Sender<()>)> {
    let mut fe = HttpFrontend::new("demo", &[], Some("app"), vec![pool])?;
    fe.retries = 2;
    fe.timeouts.connect = Duration::from_millis(500);
    fe.timeouts.server = Duration::from_secs(2);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(tenbin_proxy::http::serve(listener, fe, async {
        let _ = rx.await;
    }));
    Ok((addr, tx))
}

/// A line above the progress bar, also when the bar is hidden (output not a terminal).
fn say(bar: &ProgressBar, line: String) {
    bar.suspend(|| println!("{line}"));
}

fn progress(label: &str, len: u64) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if let Ok(style) =
        ProgressStyle::with_template("  {prefix:<24} [{bar:40}] {pos}/{len} {per_sec}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(label.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole demo, shortened: it fails if any client request failed across the crash.
    #[test]
    fn demo_runs_with_zero_failed_requests() {
        run(DemoArgs { requests: 40 }).unwrap();
    }
}
