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
//! floating, 1.8-2.4 ms pinned; HAProxy 1.8-2.6 ms either way). What pinning gives up, the
//! scheduler moving work off a contended CPU, `crate::placement` does for bulk tcp relays:
//! every worker publishes its thread's share of time waiting for its CPU.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::runtime::Handle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::placement::{self, Registry};

/// The worker runtimes of a tier (none: everything runs on the caller's runtime).
#[derive(Clone, Debug, Default)]
pub(super) struct Workers {
    handles: Vec<Handle>,
    #[cfg(test)]
    registry: Option<Arc<Registry>>,
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
        let runtimes = (0..n)
            .map(|_| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
            })
            .collect::<io::Result<Vec<_>>>()?;
        let handles: Vec<Handle> = runtimes.iter().map(|r| r.handle().clone()).collect();
        let registry = Registry::new(handles.clone());
        for (i, runtime) in runtimes.into_iter().enumerate() {
            let cpu = (!cpus.is_empty()).then(|| cpus[i % cpus.len()]);
            let (shutdown, tracker) = (shutdown.clone(), tracker.clone());
            let registry = Arc::clone(&registry);
            std::thread::Builder::new()
                .name(format!("tenbin-proxy-{i}"))
                .spawn(move || {
                    if let Some(cpu) = cpu {
                        if let Err(e) = pin_to(cpu) {
                            tracing::warn!(worker = i, cpu, "cannot pin the worker: {e}");
                        }
                    }
                    placement::enter(i, Arc::clone(&registry));
                    runtime.block_on(async move {
                        tokio::select! {
                            () = async {
                                shutdown.cancelled().await;
                                tracker.wait().await;
                            } => {}
                            // This worker's idle upstream connections (never ends).
                            () = crate::http::keep_idle() => {}
                            // How contended this worker is, for bulk sessions (never ends).
                            () = placement::sample(i, registry, placement::SAMPLE) => {}
                        }
                    });
                })?;
        }
        Ok(Workers {
            handles,
            #[cfg(test)]
            registry: Some(registry),
        })
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

    #[test]
    fn a_bulk_session_on_a_contended_worker_moves_and_loses_no_byte() {
        bulk_session_moves(false);
    }

    #[test]
    fn a_spliced_bulk_session_moves_too() {
        bulk_session_moves(true);
    }

    fn bulk_session_moves(splice: bool) {
        use crate::l4::L4Stats;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let (workers, shutdown, tracker) = contended_pair();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let (fe, addr, session, _echo) = tcp_session_on_worker_0(&workers, splice).await;
            // Three checks' worth each way, echoed back while it is sent.
            let size = 3 * crate::placement::CHECK_BYTES as usize;
            let data: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (mut r, mut w) = c.split();
            let send = async {
                w.write_all(&data).await.unwrap();
                w.shutdown().await.unwrap();
            };
            let mut back = Vec::with_capacity(size);
            let guard = std::time::Duration::from_secs(60);
            let (_, n) = tokio::time::timeout(guard, async {
                tokio::join!(send, r.read_to_end(&mut back))
            })
            .await
            .expect("the relay finished");
            n.unwrap();
            assert_eq!(back.len(), size);
            assert!(back == data, "bytes differ after the move");
            tokio::time::timeout(guard, session).await.unwrap().unwrap();
            // Moved once: on worker 1 nothing waits, so it stays.
            assert_eq!(L4Stats::get(&fe.stats.moved), 1);
            assert_eq!(L4Stats::get(&fe.stats.bytes_in), size as u64);
            assert_eq!(L4Stats::get(&fe.stats.bytes_out), size as u64);
        });
        shutdown.cancel();
        tracker.close();
    }

    /// Two workers, worker 0 waiting for its CPU 40% of the time and worker 1 idle (loads
    /// frozen: the samplers publish nothing else).
    fn contended_pair() -> (Workers, CancellationToken, TaskTracker) {
        use crate::placement::Load;
        use std::sync::atomic::Ordering;
        let (shutdown, tracker) = (CancellationToken::new(), TaskTracker::new());
        let workers = Workers::start(2, false, &shutdown, &tracker).unwrap();
        let registry = workers.registry.clone().unwrap();
        registry.frozen.store(true, Ordering::Relaxed);
        let contended = Load {
            running: 0.45,
            waiting: 0.4,
        };
        registry.publish(0, contended);
        registry.publish(1, Load::default());
        (workers, shutdown, tracker)
    }

    /// A mode tcp frontend over an echo backend, and the task on worker 0 that accepts one
    /// client on the returned address and relays it (the backend runs while its handle does).
    async fn tcp_session_on_worker_0(
        workers: &Workers,
        splice: bool,
    ) -> (
        Arc<crate::l4::TcpFrontend>,
        SocketAddr,
        tokio::task::JoinHandle<()>,
        impl Sized,
    ) {
        use crate::l4::{tcp, TcpFrontend};
        use crate::pool::{Pool, PoolConfig, ServerConfig};
        let echo = tenbin_testkit::backend::tcp_echo().spawn().await;
        let servers = vec![ServerConfig::new("e", echo.addr())];
        let pool = Pool::new(PoolConfig::new(
            "p",
            tenbin_core::pick::Algorithm::RoundRobin,
            servers,
        ));
        let mut fe = TcpFrontend::new("t", pool);
        fe.splice = splice;
        let fe = Arc::new(fe);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let on_worker = Arc::clone(&fe);
        let session = workers.handles()[0].spawn(async move {
            let l = TcpListener::from_std(listener).unwrap();
            let (s, peer) = l.accept().await.unwrap();
            tcp::serve_connection(s, peer, on_worker).await;
        });
        (fe, addr, session, echo)
    }

    /// Request-sized exchanges on a mode tcp session: it asks every `CHECK_REQUESTS` small
    /// chunks, so it leaves the contended worker long before a bulk session would.
    #[test]
    fn an_interactive_tcp_session_on_a_contended_worker_moves_between_exchanges() {
        use crate::l4::L4Stats;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};

        let (workers, shutdown, tracker) = contended_pair();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let (fe, addr, session, _echo) = tcp_session_on_worker_0(&workers, false).await;
            let guard = std::time::Duration::from_secs(60);
            let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
            let exchanges = 3 * crate::placement::CHECK_REQUESTS as usize;
            tokio::time::timeout(guard, async {
                for i in 0..exchanges {
                    let ask = format!("request {i:04}");
                    c.write_all(ask.as_bytes()).await.unwrap();
                    let mut back = vec![0u8; ask.len()];
                    c.read_exact(&mut back).await.unwrap();
                    assert_eq!(back, ask.as_bytes(), "exchange {i}");
                }
                c.shutdown().await.unwrap();
                let mut rest = Vec::new();
                c.read_to_end(&mut rest).await.unwrap();
                assert!(rest.is_empty());
            })
            .await
            .expect("every exchange answered");
            tokio::time::timeout(guard, session).await.unwrap().unwrap();
            // Moved once: on worker 1 nothing waits, so it stays.
            assert_eq!(L4Stats::get(&fe.stats.moved), 1);
        });
        shutdown.cancel();
        tracker.close();
    }

    /// A plain keep-alive HTTP/1.1 connection leaves the contended worker between two
    /// requests; the client sees every answer on the same connection.
    #[test]
    fn a_keep_alive_http_connection_on_a_contended_worker_moves_between_requests() {
        use crate::http::{HttpFrontend, HttpService};
        use crate::pool::{Pool, PoolConfig, ServerConfig};
        use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

        let (workers, shutdown, tracker) = contended_pair();
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let backend = tenbin_testkit::backend::http().name("b").spawn().await;
            let servers = vec![ServerConfig::new("b", backend.addr())];
            let pool = Pool::new(PoolConfig::new(
                "web",
                tenbin_core::pick::Algorithm::RoundRobin,
                servers,
            ));
            let fe = HttpFrontend::new("h", &[], Some("web"), vec![pool]).unwrap();
            let service = HttpService::new(fe);
            let stats = service.stats();
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.set_nonblocking(true).unwrap();
            let addr = listener.local_addr().unwrap();
            let stop = CancellationToken::new();
            let on_worker = stop.clone();
            let session = workers.handles()[0].spawn(async move {
                let l = TcpListener::from_std(listener).unwrap();
                let (s, peer) = l.accept().await.unwrap();
                service.serve_connection(s, peer, false, on_worker).await;
            });
            let guard = std::time::Duration::from_secs(60);
            let c = tokio::net::TcpStream::connect(addr).await.unwrap();
            let mut c = tokio::io::BufReader::new(c);
            let requests = 3 * crate::placement::CHECK_REQUESTS as usize;
            tokio::time::timeout(guard, async {
                for i in 0..requests {
                    let req = format!("GET /{i} HTTP/1.1\r\nhost: x\r\n\r\n");
                    c.get_mut().write_all(req.as_bytes()).await.unwrap();
                    let mut length = None;
                    let mut line = String::new();
                    c.read_line(&mut line).await.unwrap();
                    assert!(line.starts_with("HTTP/1.1 200"), "request {i}: {line:?}");
                    loop {
                        line.clear();
                        c.read_line(&mut line).await.unwrap();
                        if line == "\r\n" {
                            break;
                        }
                        let lower = line.to_ascii_lowercase();
                        if let Some(v) = lower.strip_prefix("content-length:") {
                            length = Some(v.trim().parse::<usize>().unwrap());
                        }
                    }
                    let mut body = vec![0u8; length.expect("a sized answer")];
                    c.read_exact(&mut body).await.unwrap();
                    assert_eq!(body, b"b", "request {i}");
                }
            })
            .await
            .expect("every request answered");
            assert_eq!(stats.traffic.snapshot().moved, 1);
            drop(c);
            tokio::time::timeout(guard, session).await.unwrap().unwrap();
        });
        shutdown.cancel();
        tracker.close();
    }
}
