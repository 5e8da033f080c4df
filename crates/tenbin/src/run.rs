//! `tenbin run -c FILE`: size the async runtime and run the node (`crate::node`) the config
//! describes until SIGTERM or SIGINT.
//!
//! Today that is the proxy tier (L4 tcp/udp and L7 http frontends over shared, health-checked
//! pools), the GSLB DNS tier, the XDP roles (`[mux]`, `[agent]`; `tenbin mux run` and `tenbin
//! agent` run one of them alone), the `[vrrp]` virtual routers, `[sync]` and the admin API.

use std::path::PathBuf;

use anyhow::Context as _;

use crate::node::RunOptions;

/// Arguments of `tenbin run`.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[arg(short, long)]
    config: PathBuf,
    /// Worker threads: the proxy tier's (thread per core, one listener each) and the
    /// control runtime's (default: env TENBIN_THREADS, else one per core).
    #[arg(long)]
    threads: Option<usize>,
    /// Pin proxy worker i to the i-th CPU this process may run on (as NGINX's
    /// `worker_cpu_affinity auto`); with `taskset -c 2,3`, workers go to CPUs 2 and 3.
    #[arg(long)]
    pin_workers: bool,
    /// How long in-flight requests may take to finish at shutdown (and a removed
    /// frontend's connections after a reload), e.g. `10s`, `500ms`.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    grace: std::time::Duration,
    /// Do not watch the config and certificate files (SIGHUP still reloads).
    #[arg(long)]
    no_watch: bool,
}

/// `--threads`, else the `TENBIN_THREADS` environment variable, else none: one worker per
/// core (tokio's default). On the 2-core bench host (wrk, backends and proxy sharing the
/// cores) one multi-thread worker did not beat two (mode http 32k/42k req/s vs 46k/41k).
fn worker_threads(flag: Option<usize>) -> anyhow::Result<Option<usize>> {
    let n = match flag {
        Some(n) => n,
        None => match std::env::var("TENBIN_THREADS") {
            Ok(v) => v
                .trim()
                .parse()
                .with_context(|| format!("TENBIN_THREADS={v:?}: not a number"))?,
            Err(_) => return Ok(None),
        },
    };
    anyhow::ensure!(n >= 1, "worker threads must be at least 1");
    Ok(Some(n))
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    // Fail on a bad file before starting threads.
    crate::check::load(&args.config)?;
    let threads = worker_threads(args.threads)?;
    // The proxy tier runs thread per core on as many workers of its own (each a
    // current-thread runtime with its own listeners and upstream connections); the runtime
    // below keeps the control plane, health checks, the admin API and DNS.
    let options = RunOptions {
        grace: args.grace,
        watch: !args.no_watch,
        admin: crate::admin::serve,
        threads: tenbin_proxy::tier::Threads {
            count: threads.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            }),
            pin: args.pin_workers,
        },
    };
    // One thread: a current-thread runtime, which drives its I/O itself instead of handing
    // wakeups between a worker and the driver. Alone on loopback (wrk -c64, 3 nginx
    // backends) that served mode http at 60-62k req/s, p99 1.5-2.3 ms, where a multi-thread
    // runtime with one or two workers served 51k, p99 2.2-4.5 ms. Inside bench/proxy.sh,
    // sharing 2 cores with every peer, it was not steadier (20k and 47k), so it is not the
    // default.
    let mut builder = match threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(n);
            b
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    let runtime = builder
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(crate::node::run(&args.config, options))
}

#[cfg(test)]
mod tests {
    use super::worker_threads;

    #[test]
    fn threads_flag_wins_and_zero_is_refused() {
        assert_eq!(worker_threads(Some(3)).unwrap(), Some(3));
        assert!(worker_threads(Some(0)).is_err());
    }
}
