//! A TCP echo backend: optionally greets with its name, echoes every byte, and closes its
//! sending side when the client closes its own (so half-close can be observed).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::{bind_tcp, loopback, Lifecycle};

/// Bytes kept per connection for [`TcpBackend::received`]; the echo itself is unbounded.
const RECORD_LIMIT: usize = 64 * 1024;

/// Two ends of one loopback TCP connection: the connecting one first, then the accepted one.
pub async fn tcp_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind(loopback())
        .await
        .expect("bind a loopback listener");
    let addr = listener.local_addr().expect("local addr");
    let (connected, accepted) = tokio::join!(TcpStream::connect(addr), listener.accept());
    (
        connected.expect("connect on loopback"),
        accepted.expect("accept on loopback").0,
    )
}

pub fn tcp_echo() -> TcpBuilder {
    TcpBuilder {
        name: "tcp".into(),
        greet: false,
        addr: loopback(),
    }
}

#[derive(Clone, Debug)]
pub struct TcpBuilder {
    name: String,
    greet: bool,
    addr: SocketAddr,
}

impl TcpBuilder {
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Send `name\n` as soon as a connection is accepted.
    pub fn greet(mut self) -> Self {
        self.greet = true;
        self
    }

    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    pub async fn spawn(self) -> TcpBackend {
        let listener = bind_tcp(self.addr).expect("bind tcp backend");
        let addr = listener.local_addr().expect("local addr");
        let state = Arc::new(TcpState {
            name: self.name,
            greet: self.greet,
            accepted: AtomicUsize::new(0),
            received: Mutex::new(Vec::new()),
        });
        let task = tokio::spawn(serve(listener, state.clone()));
        TcpBackend {
            life: Lifecycle::new(addr, task),
            state,
        }
    }
}

#[derive(Debug)]
struct TcpState {
    name: String,
    greet: bool,
    accepted: AtomicUsize,
    received: Mutex<Vec<Vec<u8>>>,
}

#[derive(Debug)]
pub struct TcpBackend {
    life: Lifecycle,
    state: Arc<TcpState>,
}

impl TcpBackend {
    pub fn addr(&self) -> SocketAddr {
        self.life.addr
    }

    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// Connections accepted since spawn.
    pub fn accepted(&self) -> usize {
        self.state.accepted.load(Ordering::SeqCst)
    }

    /// The first bytes each connection sent, in accept order.
    pub fn received(&self) -> Vec<Vec<u8>> {
        self.state
            .received
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn is_running(&self) -> bool {
        self.life.is_running()
    }

    pub async fn stop(&self) {
        self.life.stop().await;
    }

    pub async fn start(&self) {
        if self.is_running() {
            return;
        }
        let listener = bind_tcp(self.life.addr).expect("rebind tcp backend");
        self.life
            .set(tokio::spawn(serve(listener, self.state.clone())));
    }
}

async fn serve(listener: TcpListener, state: Arc<TcpState>) {
    let mut conns = JoinSet::new();
    while let Ok((stream, _)) = listener.accept().await {
        while conns.try_join_next().is_some() {}
        let slot = {
            let mut r = state.received.lock().unwrap_or_else(|e| e.into_inner());
            r.push(Vec::new());
            r.len() - 1
        };
        state.accepted.fetch_add(1, Ordering::SeqCst);
        conns.spawn(echo(stream, state.clone(), slot));
    }
}

async fn echo(mut stream: TcpStream, state: Arc<TcpState>, slot: usize) {
    let _ = stream.set_nodelay(true);
    if state.greet
        && stream
            .write_all(format!("{}\n", state.name).as_bytes())
            .await
            .is_err()
    {
        return;
    }
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        {
            let mut r = state.received.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(rec) = r.get_mut(slot) {
                let room = RECORD_LIMIT.saturating_sub(rec.len()).min(n);
                rec.extend_from_slice(&buf[..room]);
            }
        }
        if stream.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
    let _ = stream.shutdown().await;
}
