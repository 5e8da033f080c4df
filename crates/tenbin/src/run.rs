//! `tenbin run -c FILE`: size the async runtime and run the node (`crate::node`) the config
//! describes until SIGTERM or SIGINT.
//!
//! Today that is the proxy tier (L4 tcp/udp and L7 http frontends over shared, health-checked
//! pools), the GSLB DNS tier, the XDP roles (`[mux]`, `[agent]`; `tenbin mux run` and `tenbin
//! agent` run one of them alone), the `[vrrp]` virtual routers, `[sync]` and the admin API.

use std::path::Path;

use anyhow::Context as _;

use crate::node::RunOptions;

/// What `tenbin run`'s flags ask for.
#[derive(Debug)]
pub struct Flags {
    /// `--threads`.
    pub threads: Option<usize>,
    /// `--pin-workers`.
    pub pin_workers: bool,
    /// `--grace`.
    pub grace: std::time::Duration,
    /// Not `--no-watch`.
    pub watch: bool,
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

pub fn run(path: &Path, flags: Flags) -> anyhow::Result<()> {
    // Fail on a bad file before starting threads.
    crate::check::load(path)?;
    let threads = worker_threads(flags.threads)?;
    // The proxy tier runs thread per core on as many workers of its own (each a
    // current-thread runtime with its own listeners and upstream connections); the runtime
    // below keeps the control plane, health checks, the admin API and DNS.
    let options = RunOptions {
        grace: flags.grace,
        watch: flags.watch,
        admin: crate::admin::serve,
        threads: tenbin_proxy::tier::Threads {
            count: threads.unwrap_or_else(|| {
                std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
            }),
            pin: flags.pin_workers,
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
    runtime.block_on(crate::node::run(path, options))
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
