//! Shared rig for the L4 loopback tests: a proxy on 127.0.0.1:0 in front of testkit backends.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tenbin_core::pick::Algorithm;
use tenbin_proxy::l4::{tcp, udp, TcpFrontend, UdpFrontend};
use tenbin_proxy::pool::{Outcome, Pool, PoolConfig, Server, ServerConfig, SignalSink};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use tokio::sync::oneshot;

/// Hang guard for awaits on real sockets: a broken proxy fails the test instead of hanging it.
pub const GUARD: Duration = Duration::from_secs(10);

pub fn pool(algorithm: Algorithm, servers: Vec<ServerConfig>) -> Pool {
    Pool::with_seed(PoolConfig::new("p", algorithm, servers), 42)
}

pub fn servers(addrs: &[(&str, SocketAddr)]) -> Vec<ServerConfig> {
    addrs
        .iter()
        .map(|(n, a)| ServerConfig::new(*n, *a))
        .collect()
}

/// A running proxy; dropping it stops accepting.
pub struct Proxy {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Proxy {
    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        let t = &mut self.task;
        tokio::time::timeout(GUARD, t)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn tcp_proxy(fe: TcpFrontend) -> (Proxy, Arc<TcpFrontend>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let fe = Arc::new(fe);
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(tcp::run(listener, fe.clone(), async move {
        let _ = rx.await;
    }));
    (
        Proxy {
            addr,
            stop: Some(tx),
            task,
        },
        fe,
    )
}

pub async fn udp_proxy(fe: UdpFrontend) -> (Proxy, Arc<UdpFrontend>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let fe = Arc::new(fe);
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(udp::run(socket, fe.clone(), async move {
        let _ = rx.await;
    }));
    (
        Proxy {
            addr,
            stop: Some(tx),
            task,
        },
        fe,
    )
}

/// Connects from `source` (any 127/8 address works on lo) to the proxy.
pub async fn connect_from(source: [u8; 4], to: SocketAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::from((source, 0))).unwrap();
    tokio::time::timeout(GUARD, s.connect(to))
        .await
        .unwrap()
        .unwrap()
}

/// Reads the greeting line of a testkit tcp backend (its name); `None` on EOF first.
pub async fn greeting(s: &mut TcpStream) -> Option<String> {
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    loop {
        let n = tokio::time::timeout(GUARD, s.read(&mut b))
            .await
            .unwrap()
            .ok()?;
        if n == 0 {
            return None;
        }
        if b[0] == b'\n' {
            return Some(String::from_utf8(line).unwrap());
        }
        line.push(b[0]);
    }
}

/// One connection through the proxy: the name of the backend that answered.
pub async fn who(from: [u8; 4], proxy: SocketAddr) -> Option<String> {
    let mut s = connect_from(from, proxy).await;
    greeting(&mut s).await
}

/// Records passive signals by server name.
#[derive(Debug, Default)]
pub struct Signals(pub Mutex<Vec<(String, Outcome)>>);

impl SignalSink for Signals {
    fn observe(&self, _pool: &str, server: &Server, outcome: Outcome) {
        self.0.lock().unwrap().push((server.name.clone(), outcome));
    }
}

impl Signals {
    pub fn of(&self, name: &str) -> Vec<Outcome> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, o)| *o)
            .collect()
    }
}

/// An address where nothing listens (connects are refused).
pub async fn dead_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

/// A listener whose accept queue is full and never drained: further SYNs are dropped, so
/// connects to it hang until the caller's timeout. Keep the returned value alive.
pub async fn blackhole() -> (SocketAddr, Vec<TcpStream>, tokio::net::TcpListener) {
    let s = TcpSocket::new_v4().unwrap();
    s.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    // listen(0): Linux queues exactly one connection and drops SYNs while the queue is over
    // its limit, so one connection that is never accepted fills it, with no timing involved.
    let l = s.listen(0).unwrap();
    let addr = l.local_addr().unwrap();
    let filler = tokio::time::timeout(GUARD, TcpStream::connect(addr))
        .await
        .expect("the first connect to a listen(0) socket completes")
        .unwrap();
    (addr, vec![filler], l)
}

/// Polls `cond` every 5 ms, at most 1000 times.
pub async fn wait_until(mut cond: impl FnMut() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("condition not reached");
}
