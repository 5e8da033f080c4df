//! One BFD session in asynchronous mode (RFC 5880 §6.8), sans-IO: packets and time in,
//! packets to send and state changes out. While not Up it transmits at most once a second
//! (§6.8.3); reaching Up it switches to the configured interval with a Poll sequence.
//! Transmit jitter (75–100 %, §6.8.7) comes from a generator seeded by the caller.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::packet::{diag, Control, Refused, State};

const SLOW: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BfdConfig {
    pub desired_min_tx: Duration,
    pub required_min_rx: Duration,
    pub detect_mult: u8,
    /// Nonzero and unique among this system's sessions.
    pub local_discr: u32,
    /// Seeds the transmit jitter.
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BfdOutput {
    Send([u8; super::packet::LEN]),
    State { from: State, to: State, diag: u8 },
}

#[derive(Debug)]
pub struct BfdSession {
    cfg: BfdConfig,
    state: State,
    diag: u8,
    remote_discr: u32,
    remote_min_rx: Duration,
    remote_desired_tx: Duration,
    remote_mult: u8,
    desired_tx: Duration,
    polling: bool,
    next_tx: Option<Instant>,
    detect_at: Option<Instant>,
    rng: u64,
    out: VecDeque<BfdOutput>,
}

impl BfdSession {
    pub fn new(cfg: BfdConfig, now: Instant) -> BfdSession {
        BfdSession {
            cfg,
            state: State::Down,
            diag: diag::NONE,
            remote_discr: 0,
            // §6.8.1: initialised to 1 µs so that the first packets go out.
            remote_min_rx: Duration::from_micros(1),
            remote_desired_tx: Duration::ZERO,
            remote_mult: 0,
            desired_tx: cfg.desired_min_tx.max(SLOW),
            polling: false,
            next_tx: Some(now),
            detect_at: None,
            rng: cfg.seed | 1,
            out: VecDeque::new(),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn local_discr(&self) -> u32 {
        self.cfg.local_discr
    }

    /// The time without packets after which the session goes down (§6.8.4).
    pub fn detection_time(&self) -> Duration {
        self.cfg.required_min_rx.max(self.remote_desired_tx) * u32::from(self.remote_mult)
    }

    /// A received packet; refused ones change nothing and say why.
    pub fn handle_input(&mut self, bytes: &[u8], now: Instant) -> Result<(), Refused> {
        let c = Control::parse(bytes)?;
        if c.your_discr != 0 && c.your_discr != self.cfg.local_discr {
            return Err(Refused::YourDiscriminator);
        }
        self.remote_discr = c.my_discr;
        self.remote_min_rx = c.required_min_rx;
        self.remote_desired_tx = c.desired_min_tx;
        self.remote_mult = c.detect_mult;
        if c.final_ {
            self.polling = false;
        }
        if self.state == State::AdminDown {
            return Ok(());
        }
        let to = match (self.state, c.state) {
            (_, State::AdminDown) if self.state != State::Down => {
                Some((State::Down, diag::NEIGHBOR_DOWN))
            }
            (State::Down, State::Down) => Some((State::Init, diag::NONE)),
            (State::Down, State::Init) | (State::Init, State::Init | State::Up) => {
                Some((State::Up, diag::NONE))
            }
            (State::Up, State::Down) => Some((State::Down, diag::NEIGHBOR_DOWN)),
            _ => None,
        };
        if let Some((to, d)) = to {
            self.set_state(to, d, now);
        }
        if c.poll {
            self.send(false, true);
        }
        let detect = self.detection_time();
        self.detect_at = (self.state != State::Down && !detect.is_zero()).then(|| now + detect);
        if self.next_tx.is_none() && !self.remote_min_rx.is_zero() {
            self.schedule(now);
        }
        Ok(())
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.detect_at.is_some_and(|t| now >= t) {
            self.detect_at = None;
            self.remote_discr = 0;
            self.set_state(State::Down, diag::DETECTION_TIME_EXPIRED, now);
        }
        if self.next_tx.is_some_and(|t| now >= t) {
            self.send(self.polling, false);
            self.schedule(now);
        }
    }

    /// AdminDown (§6.8.16): the peer is told, and nothing it says brings the session up.
    pub fn admin_down(&mut self, now: Instant) {
        self.set_state(State::AdminDown, diag::ADMIN_DOWN, now);
        self.detect_at = None;
        self.send(false, false);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.next_tx, self.detect_at].into_iter().flatten().min()
    }

    pub fn poll_output(&mut self) -> Option<BfdOutput> {
        self.out.pop_front()
    }

    fn set_state(&mut self, to: State, d: u8, now: Instant) {
        let from = std::mem::replace(&mut self.state, to);
        if from == to {
            return;
        }
        self.diag = d;
        // Slow while not Up, the configured rate once Up; either change is announced with
        // a Poll sequence (§6.8.3).
        let tx = if to == State::Up {
            self.cfg.desired_min_tx
        } else {
            self.cfg.desired_min_tx.max(SLOW)
        };
        if tx != self.desired_tx {
            self.desired_tx = tx;
            self.polling = true;
            self.next_tx = Some(now);
        }
        self.out.push_back(BfdOutput::State { from, to, diag: d });
    }

    fn send(&mut self, poll: bool, final_: bool) {
        let c = Control {
            diag: self.diag,
            state: self.state,
            poll,
            final_,
            detect_mult: self.cfg.detect_mult,
            my_discr: self.cfg.local_discr,
            your_discr: self.remote_discr,
            desired_min_tx: self.desired_tx,
            required_min_rx: self.cfg.required_min_rx,
        };
        self.out.push_back(BfdOutput::Send(c.emit()));
    }

    /// Next periodic packet: max(desired, remote min rx), less 0–25 % (0–10 % more with a
    /// multiplier of 1). A remote min rx of zero asks for no periodic packets.
    fn schedule(&mut self, now: Instant) {
        if self.remote_min_rx.is_zero() {
            self.next_tx = None;
            return;
        }
        let interval = self.desired_tx.max(self.remote_min_rx);
        // xorshift64: enough spread for jitter, deterministic under a seed.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let (lo, span) = if self.cfg.detect_mult == 1 {
            (75, 15)
        } else {
            (75, 25)
        };
        let pct = lo + u32::try_from(self.rng % (span + 1)).unwrap_or(0);
        self.next_tx = Some(now + interval * pct / 100);
    }
}
