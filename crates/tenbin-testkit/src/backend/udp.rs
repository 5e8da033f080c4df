//! A UDP echo backend: answers each datagram with `name:` followed by the payload, and
//! remembers which source addresses it heard from.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::UdpSocket;

use super::{loopback, Lifecycle};

pub fn udp_echo() -> UdpBuilder {
    UdpBuilder {
        name: "udp".into(),
        addr: loopback(),
    }
}

#[derive(Clone, Debug)]
pub struct UdpBuilder {
    name: String,
    addr: SocketAddr,
}

impl UdpBuilder {
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.addr = addr;
        self
    }

    pub async fn spawn(self) -> UdpBackend {
        let socket = UdpSocket::bind(self.addr).await.expect("bind udp backend");
        let addr = socket.local_addr().expect("local addr");
        let state = Arc::new(UdpState {
            name: self.name,
            datagrams: AtomicUsize::new(0),
            peers: Mutex::new(BTreeSet::new()),
        });
        let task = tokio::spawn(serve(socket, state.clone()));
        UdpBackend {
            life: Lifecycle::new(addr, task),
            state,
        }
    }
}

#[derive(Debug)]
struct UdpState {
    name: String,
    datagrams: AtomicUsize,
    peers: Mutex<BTreeSet<SocketAddr>>,
}

#[derive(Debug)]
pub struct UdpBackend {
    life: Lifecycle,
    state: Arc<UdpState>,
}

impl UdpBackend {
    pub fn addr(&self) -> SocketAddr {
        self.life.addr
    }

    pub fn name(&self) -> &str {
        &self.state.name
    }

    pub fn datagrams(&self) -> usize {
        self.state.datagrams.load(Ordering::SeqCst)
    }

    /// Distinct source addresses seen (a proxy's upstream sockets).
    pub fn peers(&self) -> BTreeSet<SocketAddr> {
        self.state
            .peers
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
        let socket = UdpSocket::bind(self.life.addr)
            .await
            .expect("rebind udp backend");
        self.life
            .set(tokio::spawn(serve(socket, self.state.clone())));
    }
}

async fn serve(socket: UdpSocket, state: Arc<UdpState>) {
    let mut buf = vec![0u8; 65536];
    let prefix = format!("{}:", state.name);
    while let Ok((n, from)) = socket.recv_from(&mut buf).await {
        state.datagrams.fetch_add(1, Ordering::SeqCst);
        state
            .peers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(from);
        let mut reply = Vec::with_capacity(prefix.len() + n);
        reply.extend_from_slice(prefix.as_bytes());
        reply.extend_from_slice(&buf[..n]);
        let _ = socket.send_to(&reply, from).await;
    }
}
