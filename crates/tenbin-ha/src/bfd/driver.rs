//! The UDP driver for single-hop BFD over IPv4 (RFC 5881): control packets to port 3784
//! from a source port in 49152–65535 with TTL 255; received ones are taken only with TTL
//! 255 (read with IP_RECVTTL), matched by Your Discriminator or, while it is zero, by the
//! source address. One task runs every session.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::AsRawFd;

use nix::sys::socket::{recvmsg, setsockopt, sockopt, ControlMessageOwned, MsgFlags, SockaddrIn};
use tokio::io::Interest;
use tokio::net::UdpSocket;
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::packet::State;
use super::session::{BfdConfig, BfdOutput, BfdSession};

pub const CONTROL_PORT: u16 = 3784;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BfdPeer {
    pub peer: Ipv4Addr,
    /// Source address; default: any.
    pub local: Option<Ipv4Addr>,
    pub cfg: BfdConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BfdEvent {
    pub peer: Ipv4Addr,
    pub from: State,
    pub to: State,
    pub diag: u8,
}

/// Running BFD sessions.
#[derive(Debug)]
pub struct Bfd {
    stop: mpsc::Sender<()>,
    task: JoinHandle<()>,
    events: broadcast::Sender<BfdEvent>,
}

struct Peer {
    addr: Ipv4Addr,
    session: BfdSession,
    tx: UdpSocket,
}

impl Bfd {
    pub async fn start(peers: Vec<BfdPeer>) -> io::Result<Bfd> {
        let rx = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, CONTROL_PORT)).await?;
        setsockopt(&rx, sockopt::Ipv4RecvTtl, &true).map_err(io::Error::from)?;
        let now = Instant::now().into_std();
        let mut all = Vec::new();
        for p in peers {
            let tx =
                bind_source(p.local.unwrap_or(Ipv4Addr::UNSPECIFIED), p.cfg.local_discr).await?;
            tx.set_ttl(255)?;
            all.push(Peer {
                addr: p.peer,
                session: BfdSession::new(p.cfg, now),
                tx,
            });
        }
        let (events, _) = broadcast::channel(256);
        let (stop, stop_rx) = mpsc::channel(1);
        let task = tokio::spawn(run(rx, all, events.clone(), stop_rx));
        Ok(Bfd { stop, task, events })
    }

    pub fn subscribe(&self) -> broadcast::Receiver<BfdEvent> {
        self.events.subscribe()
    }

    /// Tells every peer AdminDown, then stops.
    pub async fn shutdown(self) {
        let _ = self.stop.send(()).await;
        let _ = self.task.await;
    }
}

/// A source port in the range RFC 5881 §4 asks for, spread by discriminator.
async fn bind_source(ip: Ipv4Addr, discr: u32) -> io::Result<UdpSocket> {
    let mut last = io::Error::other("no source port free");
    for i in 0..64u32 {
        let port = 49152 + u16::try_from((discr.wrapping_add(i * 257)) % 16384).unwrap_or(0);
        match UdpSocket::bind((ip, port)).await {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

async fn run(
    rx: UdpSocket,
    mut peers: Vec<Peer>,
    events: broadcast::Sender<BfdEvent>,
    mut stop: mpsc::Receiver<()>,
) {
    let by_discr: HashMap<u32, usize> = peers
        .iter()
        .enumerate()
        .map(|(i, p)| (p.session.local_discr(), i))
        .collect();
    let mut buf = [0u8; 128];
    loop {
        for p in &mut peers {
            flush(p, &events).await;
        }
        let deadline = peers
            .iter()
            .filter_map(|p| p.session.poll_timeout())
            .min()
            .map(Instant::from_std);
        tokio::select! {
            _ = stop.recv() => {
                let now = Instant::now().into_std();
                for p in &mut peers {
                    p.session.admin_down(now);
                    flush(p, &events).await;
                }
                return;
            }
            r = rx.async_io(Interest::READABLE, || receive(&rx, &mut buf)) => {
                let Ok((n, from, ttl)) = r else { continue };
                // GTSM (RFC 5881 §5): only a neighbour one hop away can send TTL 255.
                if ttl != Some(255) {
                    continue;
                }
                let your = buf.get(8..12).map_or(0, |b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
                let at = by_discr
                    .get(&your)
                    .copied()
                    .or_else(|| peers.iter().position(|p| p.addr == *from.ip()));
                if let Some(p) = at.and_then(|i| peers.get_mut(i)) {
                    if let Err(e) = p.session.handle_input(&buf[..n], Instant::now().into_std()) {
                        tracing::debug!(peer = %from, "bfd packet refused: {e}");
                    }
                }
            }
            () = sleep_until(deadline) => {
                let now = Instant::now().into_std();
                for p in &mut peers {
                    p.session.handle_timeout(now);
                }
            }
        }
    }
}

/// One datagram with its TTL (IP_RECVTTL).
fn receive(rx: &UdpSocket, buf: &mut [u8]) -> io::Result<(usize, SocketAddrV4, Option<i32>)> {
    let mut iov = [io::IoSliceMut::new(buf)];
    let mut cmsg = nix::cmsg_space!(i32);
    let m = recvmsg::<SockaddrIn>(rx.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::empty())
        .map_err(io::Error::from)?;
    let mut ttl = None;
    for c in m.cmsgs().map_err(io::Error::from)? {
        if let ControlMessageOwned::Ipv4Ttl(t) = c {
            ttl = Some(t);
        }
    }
    let from = m
        .address
        .map(|a| SocketAddrV4::new(a.ip(), a.port()))
        .ok_or_else(|| io::Error::other("no source address"))?;
    Ok((m.bytes, from, ttl))
}

async fn flush(p: &mut Peer, events: &broadcast::Sender<BfdEvent>) {
    while let Some(o) = p.session.poll_output() {
        match o {
            BfdOutput::Send(b) => {
                let to = SocketAddr::from((p.addr, CONTROL_PORT));
                if let Err(e) = p.tx.send_to(&b, to).await {
                    tracing::debug!(peer = %p.addr, "bfd send: {e}");
                }
            }
            BfdOutput::State { from, to, diag } => {
                tracing::info!(peer = %p.addr, ?from, ?to, diag, "bfd");
                let _ = events.send(BfdEvent {
                    peer: p.addr,
                    from,
                    to,
                    diag,
                });
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
