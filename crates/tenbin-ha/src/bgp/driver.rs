//! The tokio driver: one task per neighbour owning its [`Session`], its TCP connection and
//! its timer, and one listener task handing accepted connections to passive neighbours.
//!
//! The node talks to a [`Speaker`] in plain inputs (announce, withdraw, drain, shutdown) and
//! reads [`SpeakerEvent`]s (`subscribe`) and each neighbour's [`PeerStatus`] (`status`).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::error::{cease, code, Notification};
use super::rib::Route;
use super::session::{Down, Event, Output, PeerConfig, Session, State, Stats};
use crate::bfd::driver::{Bfd, BfdPeer};
use crate::bfd::{BfdConfig, State as BfdState};

/// One neighbour: where it is and how the session behaves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Neighbor {
    pub address: IpAddr,
    pub port: u16,
    /// Source address of our connections; default: chosen by the kernel.
    pub local_address: Option<IpAddr>,
    pub session: PeerConfig,
    /// Run BFD with this neighbour (IPv4 only); its Up → Down ends the BGP session.
    pub bfd: Option<BfdConfig>,
}

/// What a speaker runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeakerConfig {
    pub neighbors: Vec<Neighbor>,
    /// Where passive neighbours connect to; needed only when one is passive.
    pub listen: Option<SocketAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpeakerEvent {
    pub peer: IpAddr,
    pub event: Event,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStatus {
    pub peer: IpAddr,
    pub state: State,
    pub hold_time: Duration,
    pub announced: usize,
    pub stats: Stats,
    /// When the session last reached Established; `None` while it is not.
    pub established_at: Option<std::time::Instant>,
    /// Why the session last went down (a NOTIFICATION sent or received, or the connection
    /// closing), kept after it comes back up.
    pub last_error: Option<String>,
}

#[derive(Debug)]
enum Command {
    Announce(Route),
    Withdraw(IpNet),
    Drain(bool),
    /// BFD saw the neighbour go down.
    PeerDown,
    Stop,
}

/// A running set of neighbour sessions.
#[derive(Debug)]
pub struct Speaker {
    peers: Vec<(mpsc::UnboundedSender<Command>, JoinHandle<()>)>,
    listener: Option<JoinHandle<()>>,
    bfd: Option<(Bfd, JoinHandle<()>)>,
    events: broadcast::Sender<SpeakerEvent>,
    status: watch::Receiver<Vec<PeerStatus>>,
}

impl Speaker {
    /// Binds the listener (if a neighbour is passive) and starts every session.
    pub async fn start(cfg: SpeakerConfig) -> io::Result<Speaker> {
        let (events, _) = broadcast::channel(1024);
        let initial = cfg.neighbors.iter().map(|n| idle(n.address)).collect();
        let (status_tx, status) = watch::channel(initial);
        let mut inboxes = HashMap::new();
        let mut peers = Vec::new();
        for (i, n) in cfg.neighbors.iter().cloned().enumerate() {
            let (tx, rx) = mpsc::unbounded_channel();
            let (in_tx, in_rx) = mpsc::channel(4);
            inboxes.insert(n.address, in_tx);
            let task = Task {
                session: Session::new(n.session.clone()),
                n,
                index: i,
                established_at: None,
                last_error: None,
                events: events.clone(),
                status: status_tx.clone(),
            };
            peers.push((tx, tokio::spawn(task.run(rx, in_rx))));
        }
        let bfd_peers: Vec<BfdPeer> = cfg
            .neighbors
            .iter()
            .filter_map(|n| match (n.address, n.local_address, n.bfd) {
                (IpAddr::V4(peer), local, Some(cfg)) => Some(BfdPeer {
                    peer,
                    local: match local {
                        Some(IpAddr::V4(l)) => Some(l),
                        _ => None,
                    },
                    cfg,
                }),
                _ => None,
            })
            .collect();
        let bfd = if bfd_peers.is_empty() {
            None
        } else {
            let b = Bfd::start(bfd_peers).await?;
            let mut rx = b.subscribe();
            let tell: HashMap<IpAddr, mpsc::UnboundedSender<Command>> = cfg
                .neighbors
                .iter()
                .zip(&peers)
                .map(|(n, (tx, _))| (n.address, tx.clone()))
                .collect();
            let forward = tokio::spawn(async move {
                while let Ok(e) = rx.recv().await {
                    if e.from == BfdState::Up && e.to == BfdState::Down {
                        if let Some(tx) = tell.get(&IpAddr::V4(e.peer)) {
                            let _ = tx.send(Command::PeerDown);
                        }
                    }
                }
            });
            Some((b, forward))
        };
        let listener = match cfg.listen {
            Some(addr) => {
                let l = TcpListener::bind(addr).await?;
                Some(tokio::spawn(accept(l, inboxes)))
            }
            None => None,
        };
        Ok(Speaker {
            peers,
            listener,
            bfd,
            events,
            status,
        })
    }

    pub fn announce(&self, route: Route) {
        self.each(|| Command::Announce(route.clone()));
    }

    pub fn withdraw(&self, prefix: IpNet) {
        self.each(|| Command::Withdraw(prefix));
    }

    /// Withdraws everything while keeping sessions up (`false` announces again).
    pub fn drain(&self, drained: bool) {
        self.each(|| Command::Drain(drained));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<SpeakerEvent> {
        self.events.subscribe()
    }

    pub fn status(&self) -> watch::Receiver<Vec<PeerStatus>> {
        self.status.clone()
    }

    /// Ends every session with Cease / Administrative Shutdown and waits for the tasks.
    pub async fn shutdown(self) {
        self.each(|| Command::Stop);
        for (_, task) in self.peers {
            let _ = task.await;
        }
        if let Some(l) = self.listener {
            l.abort();
        }
        if let Some((b, forward)) = self.bfd {
            forward.abort();
            b.shutdown().await;
        }
    }

    fn each(&self, command: impl Fn() -> Command) {
        for (tx, _) in &self.peers {
            let _ = tx.send(command());
        }
    }
}

fn idle(peer: IpAddr) -> PeerStatus {
    PeerStatus {
        peer,
        state: State::Idle,
        hold_time: Duration::ZERO,
        announced: 0,
        stats: Stats::default(),
        established_at: None,
        last_error: None,
    }
}

/// Hands each accepted connection to its neighbour; strangers are closed at once.
async fn accept(l: TcpListener, inboxes: HashMap<IpAddr, mpsc::Sender<TcpStream>>) {
    loop {
        let (stream, from) = match l.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors and the like: wait rather than spin.
                tracing::warn!("BGP accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let ip = from.ip().to_canonical();
        match inboxes.get(&ip) {
            Some(tx) => {
                let _ = tx.try_send(stream);
            }
            None => tracing::warn!(%from, "BGP connection from an unknown peer refused"),
        }
    }
}

type Conn = (OwnedReadHalf, OwnedWriteHalf);

struct Task {
    n: Neighbor,
    index: usize,
    established_at: Option<std::time::Instant>,
    last_error: Option<String>,
    session: Session,
    events: broadcast::Sender<SpeakerEvent>,
    status: watch::Sender<Vec<PeerStatus>>,
}

impl Task {
    async fn run(
        mut self,
        mut commands: mpsc::UnboundedReceiver<Command>,
        mut incoming: mpsc::Receiver<TcpStream>,
    ) {
        let mut conn: Option<Conn> = None;
        let mut connecting: Option<oneshot::Receiver<io::Result<TcpStream>>> = None;
        let mut stopping = false;
        let mut buf = vec![0u8; 8192];
        self.session.start(now());
        loop {
            self.flush(&mut conn, &mut connecting).await;
            if stopping {
                return;
            }
            let deadline = self.session.poll_timeout().map(Instant::from_std);
            tokio::select! {
                c = commands.recv() => match c {
                    Some(Command::Announce(r)) => self.session.announce(r, now()),
                    Some(Command::Withdraw(p)) => self.session.withdraw(p, now()),
                    Some(Command::Drain(d)) => self.session.set_drained(d, now()),
                    Some(Command::PeerDown) => self.session.abort(
                        Notification::new(code::CEASE, cease::BFD_DOWN),
                        now(),
                    ),
                    Some(Command::Stop) | None => {
                        self.session.stop();
                        stopping = true;
                    }
                },
                r = async { connecting.as_mut().expect("guarded").await }, if connecting.is_some() => {
                    connecting = None;
                    match r {
                        Ok(Ok(s)) => self.attach(s, &mut conn),
                        Ok(Err(e)) => {
                            tracing::debug!(peer = %self.n.address, "connect failed: {e}");
                            self.session.closed(now());
                        }
                        Err(_) => self.session.closed(now()),
                    }
                }
                Some(s) = incoming.recv() => {
                    if self.session.accepts() {
                        self.attach(s, &mut conn);
                    }
                }
                r = async { conn.as_mut().expect("guarded").0.read(&mut buf).await }, if conn.is_some() => {
                    match r {
                        Ok(0) | Err(_) => {
                            conn = None;
                            self.session.closed(now());
                        }
                        Ok(n) => self.session.handle_input(&buf[..n], now()),
                    }
                }
                () = sleep_until(deadline) => self.session.handle_timeout(now()),
            }
        }
    }

    fn attach(&mut self, s: TcpStream, conn: &mut Option<Conn>) {
        let _ = s.set_nodelay(true);
        match s.local_addr() {
            Ok(local) => {
                *conn = Some(s.into_split());
                self.session.connected(local, now());
            }
            Err(_) => self.session.closed(now()),
        }
    }

    /// Carries out what the session asked for, then publishes its status.
    async fn flush(
        &mut self,
        conn: &mut Option<Conn>,
        connecting: &mut Option<oneshot::Receiver<io::Result<TcpStream>>>,
    ) {
        while let Some(o) = self.session.poll_output() {
            match o {
                Output::Connect => *connecting = Some(self.connect()),
                Output::Send(bytes) => {
                    let Some((_, w)) = conn.as_mut() else {
                        continue;
                    };
                    let write = tokio::time::timeout(WRITE_TIMEOUT, w.write_all(&bytes)).await;
                    if !matches!(write, Ok(Ok(()))) {
                        *conn = None;
                        self.session.closed(now());
                    }
                }
                Output::Close => {
                    *connecting = None;
                    if let Some((_, mut w)) = conn.take() {
                        let _ = tokio::time::timeout(WRITE_TIMEOUT, w.shutdown()).await;
                    }
                }
                Output::Event(event) => {
                    tracing::info!(peer = %self.n.address, ?event, "bgp");
                    match &event {
                        Event::Established { .. } => self.established_at = Some(now()),
                        Event::Down(d) => {
                            self.established_at = None;
                            self.last_error = Some(match d {
                                Down::Sent(n) => format!("sent {n}"),
                                Down::Received(n) => format!("received {n}"),
                                Down::ConnectionClosed => "connection closed".to_string(),
                            });
                        }
                        _ => {}
                    }
                    let _ = self.events.send(SpeakerEvent {
                        peer: self.n.address,
                        event,
                    });
                }
            }
        }
        let s = PeerStatus {
            peer: self.n.address,
            state: self.session.state(),
            hold_time: self.session.hold_time(),
            announced: self.session.announced().count(),
            stats: self.session.stats(),
            established_at: self
                .established_at
                .filter(|_| self.session.state() == State::Established),
            last_error: self.last_error.clone(),
        };
        self.status.send_if_modified(|all| {
            let changed = all.get(self.index) != Some(&s);
            if let Some(slot) = all.get_mut(self.index) {
                *slot = s;
            }
            changed
        });
    }

    /// Connects on a task of its own, so the session keeps its timers meanwhile; dropping
    /// the receiver abandons the attempt.
    fn connect(&self) -> oneshot::Receiver<io::Result<TcpStream>> {
        let (mut tx, rx) = oneshot::channel();
        let to = SocketAddr::new(self.n.address, self.n.port);
        let from = self.n.local_address;
        tokio::spawn(async move {
            let attempt = async {
                let s = if to.is_ipv4() {
                    TcpSocket::new_v4()?
                } else {
                    TcpSocket::new_v6()?
                };
                if let Some(ip) = from {
                    s.bind(SocketAddr::new(ip, 0))?;
                }
                s.connect(to).await
            };
            let r = tokio::select! {
                r = attempt => Some(r),
                () = tx.closed() => None,
            };
            if let Some(r) = r {
                let _ = tx.send(r);
            }
        });
        rx
    }
}

const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

fn now() -> std::time::Instant {
    Instant::now().into_std()
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
