//! Loopback backends that tests can stop and start again on the same address.
//!
//! Each builder binds `127.0.0.1:0` (or a given address) on `spawn()`; the handle's `stop()`
//! closes the listener and every open connection, `start()` binds the same address again.

mod http;
mod tcp;
mod udp;

use std::net::SocketAddr;
use std::sync::Mutex;

use tokio::net::{TcpListener, TcpSocket};
use tokio::task::JoinHandle;

pub use http::{http, HttpBackend, HttpBuilder, RecordedRequest};
pub use tcp::{tcp_echo, tcp_pair, TcpBackend, TcpBuilder};
pub use udp::{udp_echo, UdpBackend, UdpBuilder};

/// The running/stopped switch every backend shares.
#[derive(Debug)]
struct Lifecycle {
    addr: SocketAddr,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Lifecycle {
    fn new(addr: SocketAddr, task: JoinHandle<()>) -> Self {
        Lifecycle {
            addr,
            task: Mutex::new(Some(task)),
        }
    }

    fn is_running(&self) -> bool {
        self.task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|t| !t.is_finished())
    }

    /// Aborts the serving task (its listener and connections close with it) and waits until
    /// they are gone, so the port is free when this returns.
    async fn stop(&self) {
        let task = self.task.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    fn set(&self, task: JoinHandle<()>) {
        *self.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
    }
}

impl Drop for Lifecycle {
    fn drop(&mut self) {
        if let Some(task) = self
            .task
            .get_mut()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            task.abort();
        }
    }
}

/// Binds a TCP listener that may take over the port of a listener just closed.
fn bind_tcp(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}
