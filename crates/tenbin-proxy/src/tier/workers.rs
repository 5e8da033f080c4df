//! Thread per core: N worker threads, each running its own current-thread runtime, each with
//! its own `SO_REUSEPORT` listener per TCP frontend address (the kernel spreads connections
//! over them). A connection lives on the worker that accepted it: its client side, its
//! upstream connections (the idle lists of `http::upstream` are per thread) and its timers,
//! so a request never wakes another thread. The HAProxy and NGINX model; a work-stealing
//! runtime instead hands wake-ups between threads.
//!
//! What workers share is what the tier shares anyway: pools (the balancer behind its lock),
//! persistence tables, admission and the handlers swapped in by a reload. Workers run until
//! the node's `shutdown` token is cancelled and its task tracker is closed and empty, so
//! draining connections finish on the thread they started on.
//!
//! Pinned (`Threads::pin`), worker `i` runs only on the `i`-th CPU of the process's affinity
//! mask (round robin when there are more workers than CPUs). Unpinned, the scheduler may put
//! two busy workers on one CPU for a while: on the 2-core bench host, where the load shares a
//! core with one worker, that more than doubled mode http's p99 at 2 workers (4.6-5.2 ms
//! floating, 1.8-2.4 ms pinned; HAProxy 1.8-2.6 ms either way).

use std::io;
use std::net::SocketAddr;

use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The worker runtimes of a tier (none: everything runs on the caller's runtime).
#[derive(Clone, Debug, Default)]
pub(super) struct Workers {
    handles: Vec<Handle>,
}

impl Workers {
    /// Starts `n` worker threads, each pinned to a CPU of its own if `pin`, that end once
    /// `shutdown` is cancelled and `tracker` is closed and empty.
    pub(super) fn start(
        n: usize,
        pin: bool,
        shutdown: &CancellationToken,
        tracker: &TaskTracker,
    ) -> io::Result<Workers> {
        let cpus = if pin { allowed_cpus()? } else { Vec::new() };
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let cpu = (!cpus.is_empty()).then(|| cpus[i % cpus.len()]);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            handles.push(runtime.handle().clone());
            let (shutdown, tracker) = (shutdown.clone(), tracker.clone());
            std::thread::Builder::new()
                .name(format!("tenbin-proxy-{i}"))
                .spawn(move || {
                    if let Some(cpu) = cpu {
                        if let Err(e) = pin_to(cpu) {
                            tracing::warn!(worker = i, cpu, "cannot pin the worker: {e}");
                        }
                    }
                    runtime.block_on(async move {
                        tokio::select! {
                            () = async {
                                shutdown.cancelled().await;
                                tracker.wait().await;
                            } => {}
                            // This worker's idle upstream connections (never ends).
                            () = crate::http::keep_idle() => {}
                        }
                    });
                })?;
        }
        Ok(Workers { handles })
    }

    pub(super) fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    pub(super) fn handles(&self) -> &[Handle] {
        &self.handles
    }

    /// One listener per worker on `addr`, each registered with its worker's runtime, all in
    /// one `SO_REUSEPORT` group (port 0: the port the first one got).
    pub(super) fn bind(&self, addr: SocketAddr) -> io::Result<Vec<TcpListener>> {
        let mut out: Vec<TcpListener> = Vec::with_capacity(self.handles.len());
        let mut at = addr;
        for h in &self.handles {
            let _in_worker = h.enter();
            let l = crate::l4::serve::bind_tcp_shared(at, true)?;
            at = l.local_addr()?;
            out.push(l);
        }
        Ok(out)
    }
}

/// The CPUs this process may run on (`taskset`, cgroups), in ascending order.
fn allowed_cpus() -> io::Result<Vec<usize>> {
    let set = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))?;
    Ok((0..nix::sched::CpuSet::count())
        .filter(|&c| set.is_set(c).unwrap_or(false))
        .collect())
}

/// Pins the calling thread to `cpu`.
fn pin_to(cpu: usize) -> io::Result<()> {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu)?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_worker_gets_a_listener_on_one_port_nobody_else_can_take() {
        let (shutdown, tracker) = (CancellationToken::new(), TaskTracker::new());
        let workers = Workers::start(2, false, &shutdown, &tracker).unwrap();
        let listeners = workers.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        assert_eq!(listeners.len(), 2);
        let port = listeners[0].local_addr().unwrap().port();
        assert_ne!(port, 0);
        assert!(listeners
            .iter()
            .all(|l| l.local_addr().unwrap().port() == port));
        // Only the group shares the port: a plain bind still fails.
        assert!(std::net::TcpListener::bind(("127.0.0.1", port)).is_err());
        shutdown.cancel();
        tracker.close();
    }

    #[test]
    fn a_pinned_worker_runs_only_on_its_own_cpu() {
        let cpus = allowed_cpus().unwrap();
        assert!(!cpus.is_empty());
        let (shutdown, tracker) = (CancellationToken::new(), TaskTracker::new());
        let workers = Workers::start(cpus.len() + 1, true, &shutdown, &tracker).unwrap();
        for (i, h) in workers.handles().iter().enumerate() {
            let (tx, rx) = std::sync::mpsc::channel();
            h.spawn(async move { tx.send(allowed_cpus().unwrap()).unwrap() });
            let seen = rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap();
            // One more worker than CPUs: the last one shares the first CPU.
            assert_eq!(seen, vec![cpus[i % cpus.len()]], "worker {i}");
        }
        // This thread's own mask is untouched.
        assert_eq!(allowed_cpus().unwrap(), cpus);
        shutdown.cancel();
        tracker.close();
    }
}
