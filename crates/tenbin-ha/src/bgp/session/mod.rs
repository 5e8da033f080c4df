//! One neighbour's BGP-4 finite state machine (RFC 4271 §8), sans-IO.
//!
//! The driver tells it about the connection (`connected`, `closed`) and hands it bytes
//! (`handle_input`) and time (`handle_timeout`); it answers with [`Output`]s: open a
//! connection, send bytes, close, and [`Event`]s. Only one connection exists per neighbour
//! (an active one only connects, a passive one only accepts), so the collision detection of
//! §6.8 never has two to choose from. After a failure an active session waits a backoff
//! (doubling from `connect_retry` to `connect_retry_max`) before it connects again.

use std::collections::{BTreeMap, VecDeque};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use ipnet::IpNet;

use super::error::{cease, code, fsm, Notification};
use super::rib::{Announcer, Route, RouteAttrs};

mod negotiate;
use super::wire::{Capability, Context, Message, Open, AFI_IPV4, AFI_IPV6, AS_TRANS, SAFI_UNICAST};

/// Hold time while waiting for the peer's OPEN (§8: "a large value", suggested 4 minutes).
const OPEN_HOLD: Duration = Duration::from_secs(240);

/// What one neighbour session is configured with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConfig {
    pub local_as: u32,
    pub remote_as: u32,
    pub router_id: Ipv4Addr,
    /// Proposed hold time in seconds: 0 (no keepalives) or at least 3.
    pub hold_time: u16,
    /// Only accept connections; never connect.
    pub passive: bool,
    pub connect_retry: Duration,
    pub connect_retry_max: Duration,
    /// Families offered (Multiprotocol capability).
    pub ipv4: bool,
    pub ipv6: bool,
    /// Next hops announced; default: the session's local address of that family.
    pub next_hop_v4: Option<Ipv4Addr>,
    pub next_hop_v6: Option<Ipv6Addr>,
}

impl PeerConfig {
    pub fn ibgp(&self) -> bool {
        self.local_as == self.remote_as
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

/// Why a session left OpenSent or later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Down {
    /// We sent this NOTIFICATION (malformed input, hold timer, FSM error, stop).
    Sent(Notification),
    Received(Notification),
    ConnectionClosed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    State {
        from: State,
        to: State,
    },
    Established {
        hold_time: u16,
        peer_id: Ipv4Addr,
    },
    Down(Down),
    Announced(IpNet),
    Withdrawn(IpNet),
    /// The peer sent a valid UPDATE (ignored: announce only).
    Received {
        announced: usize,
        withdrawn: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Open a TCP connection to the peer (abandoning any attempt under way).
    Connect,
    Send(Vec<u8>),
    /// Close the connection (after sending what was queued).
    Close,
    Event(Event),
}

/// Counters for status pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    pub flaps: u64,
    pub updates_sent: u64,
    pub updates_received: u64,
}

#[derive(Debug)]
pub struct Session {
    cfg: PeerConfig,
    state: State,
    wanted: BTreeMap<IpNet, RouteAttrs>,
    sent: BTreeMap<IpNet, RouteAttrs>,
    drained: bool,
    buf: Vec<u8>,
    out: VecDeque<Output>,
    ctx: Context,
    local: Option<SocketAddr>,
    announcer: Option<Announcer>,
    peer_id: Ipv4Addr,
    hold: Duration,
    keepalive: Duration,
    retry_at: Option<Instant>,
    hold_at: Option<Instant>,
    keepalive_at: Option<Instant>,
    backoff: Duration,
    stats: Stats,
}

impl Session {
    pub fn new(cfg: PeerConfig) -> Session {
        let backoff = cfg.connect_retry;
        Session {
            cfg,
            state: State::Idle,
            wanted: BTreeMap::new(),
            sent: BTreeMap::new(),
            drained: false,
            buf: Vec::new(),
            out: VecDeque::new(),
            ctx: Context::default(),
            local: None,
            announcer: None,
            peer_id: Ipv4Addr::UNSPECIFIED,
            hold: Duration::ZERO,
            keepalive: Duration::ZERO,
            retry_at: None,
            hold_at: None,
            keepalive_at: None,
            backoff,
            stats: Stats::default(),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn config(&self) -> &PeerConfig {
        &self.cfg
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Negotiated hold time (zero before OpenConfirm or when none).
    pub fn hold_time(&self) -> Duration {
        self.hold
    }

    /// Prefixes the peer currently has from us.
    pub fn announced(&self) -> impl Iterator<Item = &IpNet> {
        self.sent.keys()
    }

    /// ManualStart (§8.1.2): connect (active) or wait for the peer (passive).
    pub fn start(&mut self, now: Instant) {
        if self.state == State::Idle {
            self.backoff = self.cfg.connect_retry;
            self.begin(now);
        }
    }

    /// ManualStop: Cease / Administrative Shutdown if connected, then Idle for good.
    pub fn stop(&mut self) {
        match self.state {
            State::Idle => return,
            State::Connect => self.out.push_back(Output::Close),
            State::Active => {}
            State::OpenSent | State::OpenConfirm | State::Established => {
                let n = Notification::new(code::CEASE, cease::ADMINISTRATIVE_SHUTDOWN);
                self.send(Message::Notification(n.clone()));
                self.out.push_back(Output::Close);
                self.down(Down::Sent(n));
            }
        }
        self.retry_at = None;
        self.forget_connection();
        self.set_state(State::Idle);
    }

    /// Ends a connected session from outside (BFD saw the peer go down): sends `n`, closes
    /// and retries like any failure.
    pub fn abort(&mut self, n: Notification, now: Instant) {
        if self.is_connected() {
            self.fail(n, now);
        }
    }

    /// Announces (or re-announces with new attributes) a prefix.
    pub fn announce(&mut self, route: Route, now: Instant) {
        self.wanted.insert(route.prefix, route.attrs);
        self.sync(now);
    }

    pub fn withdraw(&mut self, prefix: IpNet, now: Instant) {
        self.wanted.remove(&prefix);
        self.sync(now);
    }

    /// Drained: every prefix withdrawn while the session stays up; undrained: announced again.
    pub fn set_drained(&mut self, drained: bool, now: Instant) {
        self.drained = drained;
        self.sync(now);
    }

    /// Whether an incoming connection may be taken now (a passive session waiting for one).
    pub fn accepts(&self) -> bool {
        self.cfg.passive && self.state == State::Active
    }

    /// The TCP connection is up (ours completed, or the peer's accepted): send OPEN.
    pub fn connected(&mut self, local: SocketAddr, now: Instant) {
        if !matches!(self.state, State::Connect | State::Active) {
            self.out.push_back(Output::Close);
            return;
        }
        self.local = Some(local);
        self.buf.clear();
        self.retry_at = None;
        let my_as = u16::try_from(self.cfg.local_as).unwrap_or(AS_TRANS);
        let mut capabilities = Vec::new();
        for (on, afi) in [(self.cfg.ipv4, AFI_IPV4), (self.cfg.ipv6, AFI_IPV6)] {
            if on {
                capabilities.push(Capability::Multiprotocol {
                    afi,
                    safi: SAFI_UNICAST,
                });
            }
        }
        capabilities.push(Capability::RouteRefresh);
        capabilities.push(Capability::FourOctetAs(self.cfg.local_as));
        self.send(Message::Open(Open {
            version: 4,
            my_as,
            hold_time: self.cfg.hold_time,
            bgp_id: self.cfg.router_id,
            capabilities,
        }));
        self.hold_at = Some(now + OPEN_HOLD);
        self.set_state(State::OpenSent);
    }

    /// The connection failed or closed.
    pub fn closed(&mut self, now: Instant) {
        match self.state {
            State::Idle => {}
            State::Connect | State::Active => self.retry_later(now),
            State::OpenSent | State::OpenConfirm | State::Established => {
                self.down(Down::ConnectionClosed);
                self.retry_later(now);
            }
        }
    }

    /// Bytes read from the connection.
    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) {
        if !matches!(
            self.state,
            State::OpenSent | State::OpenConfirm | State::Established
        ) {
            return;
        }
        self.buf.extend_from_slice(bytes);
        let mut at = 0;
        while self.is_connected() {
            match Message::decode(&self.buf[at..], self.ctx) {
                Ok(None) => break,
                Ok(Some((m, n))) => {
                    at += n;
                    self.on_message(m, now);
                }
                Err(n) => {
                    self.fail(n, now);
                    break;
                }
            }
        }
        if self.is_connected() {
            self.buf.drain(..at);
        } else {
            self.buf.clear();
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.hold_at.is_some_and(|t| now >= t) {
            self.fail(Notification::new(code::HOLD_TIMER_EXPIRED, 0), now);
        }
        if self.keepalive_at.is_some_and(|t| now >= t) {
            self.send(Message::Keepalive);
            self.keepalive_at = Some(now + self.keepalive);
        }
        if self.retry_at.is_some_and(|t| now >= t) {
            // ConnectRetryTimer: abandon an attempt still under way and try again.
            if self.state == State::Connect {
                self.out.push_back(Output::Close);
                self.backoff = (self.backoff * 2).min(self.cfg.connect_retry_max);
            }
            self.connect(now);
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.hold_at, self.keepalive_at, self.retry_at]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn is_connected(&self) -> bool {
        matches!(
            self.state,
            State::OpenSent | State::OpenConfirm | State::Established
        )
    }

    fn begin(&mut self, now: Instant) {
        if self.cfg.passive {
            self.set_state(State::Active);
        } else {
            self.connect(now);
        }
    }

    fn connect(&mut self, now: Instant) {
        self.out.push_back(Output::Connect);
        self.retry_at = Some(now + self.backoff);
        self.set_state(State::Connect);
    }

    /// After a failure: passive sessions listen again at once; active ones wait the backoff.
    fn retry_later(&mut self, now: Instant) {
        self.forget_connection();
        if self.cfg.passive {
            self.retry_at = None;
            self.set_state(State::Active);
        } else {
            self.retry_at = Some(now + self.backoff);
            self.backoff = (self.backoff * 2).min(self.cfg.connect_retry_max);
            self.set_state(State::Active);
        }
    }

    fn forget_connection(&mut self) {
        self.hold_at = None;
        self.keepalive_at = None;
        self.announcer = None;
        self.hold = Duration::ZERO;
        self.ctx = Context::default();
        self.sent.clear();
    }

    /// Sends a NOTIFICATION, closes and goes back to retrying.
    fn fail(&mut self, n: Notification, now: Instant) {
        self.send(Message::Notification(n.clone()));
        self.out.push_back(Output::Close);
        self.down(Down::Sent(n));
        self.retry_later(now);
    }

    fn down(&mut self, why: Down) {
        if self.state == State::Established {
            self.stats.flaps += 1;
            for p in std::mem::take(&mut self.sent).into_keys() {
                self.out.push_back(Output::Event(Event::Withdrawn(p)));
            }
        }
        self.out.push_back(Output::Event(Event::Down(why)));
    }

    fn send(&mut self, m: Message) {
        self.out.push_back(Output::Send(m.emit(self.ctx)));
    }

    fn set_state(&mut self, to: State) {
        let from = std::mem::replace(&mut self.state, to);
        if from != to {
            self.out.push_back(Output::Event(Event::State { from, to }));
        }
    }

    fn on_message(&mut self, m: Message, now: Instant) {
        if let Message::Notification(n) = m {
            self.out.push_back(Output::Close);
            self.down(Down::Received(n));
            self.retry_later(now);
            return;
        }
        if self.hold > Duration::ZERO {
            self.hold_at = Some(now + self.hold);
        }
        match (self.state, m) {
            (State::OpenSent, Message::Open(o)) => self.on_open(o, now),
            (State::OpenConfirm, Message::Keepalive) => {
                self.backoff = self.cfg.connect_retry;
                self.set_state(State::Established);
                self.out.push_back(Output::Event(Event::Established {
                    hold_time: u16::try_from(self.hold.as_secs()).unwrap_or(u16::MAX),
                    peer_id: self.peer_id,
                }));
                self.sync(now);
            }
            (State::Established, Message::Keepalive) => {}
            (State::Established, Message::Update(u)) => self.on_update(&u, now),
            (State::Established, Message::RouteRefresh { afi, safi }) => {
                // RFC 2918 §4: send the family's routes again.
                if safi == SAFI_UNICAST && (afi == AFI_IPV4 || afi == AFI_IPV6) {
                    self.sent
                        .retain(|p, _| p.addr().is_ipv4() != (afi == AFI_IPV4));
                    self.sync(now);
                }
            }
            (state, _) => {
                let sub = match state {
                    State::OpenSent => fsm::UNEXPECTED_IN_OPEN_SENT,
                    State::OpenConfirm => fsm::UNEXPECTED_IN_OPEN_CONFIRM,
                    _ => fsm::UNEXPECTED_IN_ESTABLISHED,
                };
                self.fail(Notification::new(code::FSM, sub), now);
            }
        }
    }
}
