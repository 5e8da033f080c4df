//! UDP and TCP listeners around the [`Engine`]. Sockets and shutdown are injected: the caller
//! (the binary, or a test on `127.0.0.1:0`) binds, we serve until told to stop.

use crate::batch::Batch;
use crate::engine::Engine;
use crate::health::HealthSnapshot;
use crate::state::Transport;
use crate::tcp::{tcp_loop, TcpLimits};
use rand::rngs::StdRng;
use rand::SeedableRng;
use socket2::{Domain, Protocol, Socket, Type};
use std::future::Future;
use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use tokio::io::Interest;
use tokio::sync::watch;
use tokio::task::JoinSet;

/// Bound sockets to serve on.
#[derive(Debug, Default)]
pub struct Sockets {
    pub udp: Vec<UdpSocket>,
    pub tcp: Vec<TcpListener>,
}

impl Sockets {
    /// Binds `udp_per_addr` UDP sockets (SO_REUSEPORT; 0 = one per core) and one TCP listener
    /// per address. Port 0 is resolved once, so every socket of an address shares the port.
    pub fn bind(addrs: &[SocketAddr], udp_per_addr: usize) -> io::Result<Sockets> {
        let n = if udp_per_addr == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            udp_per_addr
        };
        let mut s = Sockets::default();
        for addr in addrs {
            // Port 0: the UDP port the system picks may be taken for TCP (an outgoing
            // connection's local port); pick again, a bounded number of times.
            let tries = if addr.port() == 0 { 16 } else { 1 };
            let mut last = None;
            for _ in 0..tries {
                match bind_one(*addr, n) {
                    Ok((udp, tcp)) => {
                        s.udp.extend(udp);
                        s.tcp.push(tcp);
                        last = None;
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = Some(e),
                    Err(e) => return Err(e),
                }
            }
            if let Some(e) = last {
                return Err(e);
            }
        }
        Ok(s)
    }
}

/// `n` UDP sockets and a TCP listener on one address (port 0: the port of the first socket).
fn bind_one(addr: SocketAddr, n: usize) -> io::Result<(Vec<UdpSocket>, TcpListener)> {
    let first = udp_socket(addr)?;
    let addr = first.local_addr()?;
    let mut udp = vec![first];
    for _ in 1..n {
        udp.push(udp_socket(addr)?);
    }
    let tcp = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    tcp.set_reuse_address(true)?;
    tcp.set_nonblocking(true)?;
    tcp.bind(&addr.into())?;
    tcp.listen(1024)?;
    Ok((udp, tcp.into()))
}

fn udp_socket(addr: SocketAddr) -> io::Result<UdpSocket> {
    let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.bind(&addr.into())?;
    Ok(s.into())
}

/// Serves until `shutdown` completes, following `health` (each new snapshot is applied).
/// Reloads go through [`Engine::reload`] on the same `engine` while this runs. TCP runs under
/// the default [`TcpLimits`].
pub async fn serve(
    engine: Arc<Engine>,
    health: watch::Receiver<Arc<HealthSnapshot>>,
    sockets: Sockets,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    serve_with(engine, health, sockets, TcpLimits::default(), shutdown).await
}

/// [`serve`] with the given TCP timeouts and connection cap.
pub async fn serve_with(
    engine: Arc<Engine>,
    mut health: watch::Receiver<Arc<HealthSnapshot>>,
    sockets: Sockets,
    tcp_limits: TcpLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    engine.set_health(health.borrow_and_update().clone());
    {
        let engine = engine.clone();
        let mut stop = stop_rx.clone();
        tasks.spawn(async move {
            loop {
                tokio::select! {
                    changed = health.changed() => {
                        if changed.is_err() { break; }
                        let snap = health.borrow_and_update().clone();
                        engine.set_health(snap);
                    }
                    _ = stop.changed() => break,
                }
            }
            Ok(())
        });
    }
    for (i, u) in sockets.udp.into_iter().enumerate() {
        let sock = tokio::net::UdpSocket::from_std(u)?;
        tasks.spawn(udp_loop(engine.clone(), sock, stop_rx.clone(), i as u64));
    }
    for t in sockets.tcp {
        let l = tokio::net::TcpListener::from_std(t)?;
        tasks.spawn(tcp_loop(engine.clone(), l, tcp_limits, stop_rx.clone()));
    }
    shutdown.await;
    let _ = stop_tx.send(true);
    let mut result = Ok(());
    while let Some(r) = tasks.join_next().await {
        if let Ok(Err(e)) = r {
            result = Err(e);
        }
    }
    result
}

/// Batches handled back to back before the loop yields to other tasks on its thread.
const UDP_BURST: u32 = 8;

async fn udp_loop(
    engine: Arc<Engine>,
    sock: tokio::net::UdpSocket,
    mut stop: watch::Receiver<bool>,
    seed: u64,
) -> io::Result<()> {
    let mut rng = StdRng::seed_from_u64(rand::random::<u64>() ^ seed);
    let fd = sock.as_raw_fd();
    let mut batch = Batch::default();
    let mut burst = 0u32;
    loop {
        // Read while data is queued; only an empty socket waits in the reactor (where the
        // shutdown signal is watched too), so a busy socket pays no waker registration per
        // datagram and one system call per batch.
        match sock.try_io(Interest::READABLE, || batch.recv(fd)) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                burst = 0;
                tokio::select! {
                    r = sock.readable() => r?,
                    _ = stop.changed() => return Ok(()),
                }
                continue;
            }
            // ICMP errors from earlier sends surface here; they are not ours to stop on.
            Err(_) => continue,
        }
        batch.out.clear();
        for i in 0..batch.got.len() {
            let (q, peer) = batch.datagram(i);
            if let Some(resp) = engine.respond(q, peer.ip(), Transport::Udp, &mut rng) {
                batch.out.push((resp, peer));
            }
        }
        let mut sent = 0;
        while sent < batch.out.len() {
            match sock.try_io(Interest::WRITABLE, || batch.send(fd, sent)) {
                Ok(n) => sent += n.max(1),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let (resp, peer) = &batch.out[sent];
                    let _ = sock.send_to(resp, *peer).await;
                    sent += 1;
                }
                // An unreachable peer fails only its own datagram.
                Err(_) => sent += 1,
            }
        }
        burst += 1;
        if burst >= UDP_BURST {
            burst = 0;
            if *stop.borrow() {
                return Ok(());
            }
            tokio::task::yield_now().await;
        }
    }
}
