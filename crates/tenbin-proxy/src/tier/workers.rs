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
    /// Starts `n` worker threads that end once `shutdown` is cancelled and `tracker` is
    /// closed and empty.
    pub(super) fn start(
        n: usize,
        shutdown: &CancellationToken,
        tracker: &TaskTracker,
    ) -> io::Result<Workers> {
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            handles.push(runtime.handle().clone());
            let (shutdown, tracker) = (shutdown.clone(), tracker.clone());
            std::thread::Builder::new()
                .name(format!("tenbin-proxy-{i}"))
                .spawn(move || {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_worker_gets_a_listener_on_one_port_nobody_else_can_take() {
        let (shutdown, tracker) = (CancellationToken::new(), TaskTracker::new());
        let workers = Workers::start(2, &shutdown, &tracker).unwrap();
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
}
