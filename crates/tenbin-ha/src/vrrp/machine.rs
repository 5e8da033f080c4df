//! One virtual router's state machine (RFC 5798 §6.4), sans-IO, with Fault and cable-safe
//! promotion added.
//!
//! The driver passes received advertisements with their IP addresses and TTL
//! ([`Machine::handle_input`]), calls [`Machine::handle_timeout`] at [`Machine::poll_timeout`],
//! and drains [`Machine::poll_output`]: advertisements to send, VIPs to take or release,
//! reachability probes to run, state changes to report. Time is an argument.
//!
//! Cable-safe promotion: with `probe` on, a backup asks for a probe one Master_Adver_Interval
//! before its Master_Down_Timer fires. At the timer it becomes master only on
//! [`Probe::Clear`] (the network answers and nobody else answers for the VIPs); on
//! [`Probe::Isolated`] (or no answer in time) it goes to Fault until a probe succeeds or an
//! advertisement arrives; on [`Probe::VipInUse`] it stays backup (adverts are lost one way,
//! the master is alive) and tries again a Master_Down_Interval later.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::packet::{ChecksumMode, Packet, Repr, TTL};

/// One virtual router's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub vrid: u8,
    /// 1..=254, or 255 for the owner of the addresses.
    pub priority: u8,
    /// Advertisement_Interval in centiseconds, 1..=4095.
    pub interval: u16,
    pub preempt: bool,
    /// A backup does not preempt a lower-priority master before this long in Backup.
    pub preempt_delay: Duration,
    /// This router's primary address: source of its adverts, tie-breaker.
    pub primary: IpAddr,
    pub vips: Vec<IpAddr>,
    pub checksum: ChecksumMode,
    /// Cable-safe promotion: probe the network before taking over on missed adverts.
    pub probe: bool,
}

/// RFC 5798 states plus Fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Initialize,
    Backup,
    Master,
    Fault,
}

impl State {
    /// The keepalived spelling, for notify scripts.
    pub fn name(self) -> &'static str {
        match self {
            State::Initialize => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        }
    }
}

/// The answer to [`Output::Probe`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// A configured gateway or peer answered and no other host answers for the VIPs.
    Clear,
    /// Another host answers for a VIP: the master lives, its adverts do not reach us.
    VipInUse,
    /// Nothing answered: this node is cut off and must not take the VIPs.
    Isolated,
}

/// An advertisement received, with what the IP layer said about it.
#[derive(Debug, Clone, Copy)]
pub struct Received<'a> {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL (IPv4) or hop limit (IPv6).
    pub ttl: u8,
    pub payload: &'a [u8],
}

/// Something for the driver to do or report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this advertisement to the group (or the unicast peers).
    Advertise(Repr),
    /// Add the VIPs and announce them (gratuitous ARP, unsolicited NA).
    TakeOver,
    /// Remove the VIPs.
    Release,
    /// Run the reachability probe and answer with [`Machine::handle_probe`].
    Probe,
    /// The state changed.
    Transition {
        from: State,
        to: State,
        reason: &'static str,
    },
}

/// What was received and dropped, by cause.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub received: u64,
    pub sent: u64,
    pub dropped_ttl: u64,
    pub dropped_malformed: u64,
    pub dropped_checksum: u64,
    pub other_vrid: u64,
    pub own: u64,
    /// Accepted, but the address list differs from ours (§7.1 allows logging it).
    pub addr_mismatch: u64,
    pub priority_zero_received: u64,
    pub priority_zero_sent: u64,
    pub promotions_refused: u64,
    pub isolated: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ProbeState {
    Idle,
    Pending,
    Done(Probe),
}

/// A virtual router.
#[derive(Debug)]
pub struct Machine {
    s: Settings,
    state: State,
    /// Subtracted from the configured priority (tracked objects down); never below 1.
    delta: u8,
    /// Fault asked for from outside (interface down, node cannot serve).
    fault: bool,
    master_adver_interval: u16,
    /// Adver_Timer (Master) or Master_Down_Timer (Backup) or probe retry (isolated Fault).
    timer: Option<Instant>,
    probe_at: Option<Instant>,
    probe: ProbeState,
    /// While waiting past Master_Down_Timer for a late probe answer: until when.
    probe_wait: Option<Instant>,
    /// Last advertisement of this VRID heard, accepted or not (preemption vs one-way loss).
    heard_at: Option<Instant>,
    isolated: bool,
    /// The current master's primary address: ours in Master, the last accepted advert's
    /// source in Backup.
    master: Option<IpAddr>,
    backup_since: Instant,
    out: VecDeque<Output>,
    counters: Counters,
}

const fn centis(c: u32) -> Duration {
    Duration::from_millis(c as u64 * 10)
}

impl Machine {
    pub fn new(settings: Settings, now: Instant) -> Machine {
        Machine {
            master_adver_interval: settings.interval,
            s: settings,
            state: State::Initialize,
            delta: 0,
            fault: false,
            timer: None,
            probe_at: None,
            probe: ProbeState::Idle,
            probe_wait: None,
            heard_at: None,
            isolated: false,
            master: None,
            backup_since: now,
            out: VecDeque::new(),
            counters: Counters::default(),
        }
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn settings(&self) -> &Settings {
        &self.s
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The master's primary address as far as this router knows (ours while master).
    pub fn master(&self) -> Option<IpAddr> {
        match self.state {
            State::Master => Some(self.s.primary),
            State::Backup => self.master,
            State::Initialize | State::Fault => None,
        }
    }

    /// Changes what can change without a restart: the configured priority and preemption.
    /// A master that no longer owns the addresses (255 to less) keeps running as master
    /// until a higher priority advert arrives, as after any priority change (§6.4.3).
    pub fn reconfigure(&mut self, priority: u8, preempt: bool, preempt_delay: Duration) {
        self.s.priority = priority;
        self.s.preempt = preempt;
        self.s.preempt_delay = preempt_delay;
    }

    /// The interval learned from the master (§6.4.2), centiseconds.
    pub fn master_adver_interval(&self) -> u16 {
        self.master_adver_interval
    }

    /// The priority in force: the owner's 255 is never lowered.
    pub fn priority(&self) -> u8 {
        if self.s.priority == 255 {
            255
        } else {
            self.s.priority.saturating_sub(self.delta).max(1)
        }
    }

    /// Skew_Time (§6.1): ((256 - Priority) * Master_Adver_Interval) / 256.
    pub fn skew_time(&self) -> Duration {
        let c = (256 - u32::from(self.priority())) * u32::from(self.master_adver_interval);
        Duration::from_micros(u64::from(c) * 10_000 / 256)
    }

    /// Master_Down_Interval (§6.1): 3 * Master_Adver_Interval + Skew_Time.
    pub fn master_down_interval(&self) -> Duration {
        centis(3 * u32::from(self.master_adver_interval)) + self.skew_time()
    }

    /// §6.4.1 Startup.
    pub fn startup(&mut self, now: Instant) {
        if self.state != State::Initialize {
            return;
        }
        if self.fault {
            self.goto(State::Fault, "tracked object failed");
        } else {
            self.enter_from_init(now, "startup");
        }
    }

    /// §6.4.2/§6.4.3 Shutdown: a master sends priority 0 so backups take over at once.
    pub fn shutdown(&mut self, _now: Instant) {
        match self.state {
            State::Master => {
                self.send(0);
                self.out.push_back(Output::Release);
            }
            State::Initialize => return,
            State::Backup | State::Fault => {}
        }
        self.timer = None;
        self.probe_at = None;
        self.goto(State::Initialize, "shutdown");
    }

    /// Fault on or off from outside (tracked interface, node health).
    pub fn set_fault(&mut self, fault: bool, now: Instant) {
        if self.fault == fault {
            return;
        }
        self.fault = fault;
        if fault {
            self.enter_fault("tracked object failed");
        } else if self.state == State::Fault && !self.isolated {
            self.enter_from_init(now, "fault cleared");
        }
    }

    /// How much below its configured priority this router runs (failed tracked objects).
    pub fn set_priority_delta(&mut self, delta: u8) {
        self.delta = delta;
    }

    /// §6.4.2/§6.4.3 ADVERTISEMENT received, after the checks of §7.1.
    pub fn handle_input(&mut self, rx: &Received<'_>, now: Instant) {
        if rx.src == self.s.primary {
            self.counters.own += 1;
            return;
        }
        if rx.ttl != TTL {
            self.counters.dropped_ttl += 1;
            return;
        }
        let repr = match Packet::new_checked(rx.payload)
            .and_then(|p| Repr::parse(&p, rx.src, rx.dst, self.s.checksum))
        {
            Ok(r) => r,
            Err(super::packet::ParseError::Checksum) => {
                self.counters.dropped_checksum += 1;
                return;
            }
            Err(_) => {
                self.counters.dropped_malformed += 1;
                return;
            }
        };
        if repr.vrid != self.s.vrid {
            self.counters.other_vrid += 1;
            return;
        }
        self.counters.received += 1;
        if !same_addrs(&repr.addrs, &self.s.vips) {
            self.counters.addr_mismatch += 1;
        }
        if repr.priority == 0 {
            self.counters.priority_zero_received += 1;
        }
        match self.state {
            State::Initialize => {}
            State::Fault => {
                if self.isolated && !self.fault {
                    // Hearing the master proves the network is back.
                    self.isolated = false;
                    self.enter_backup(now, "advertisement heard again");
                    self.master = Some(rx.src);
                    self.learn(&repr, now);
                }
            }
            State::Backup => {
                self.heard_at = Some(now);
                self.master = (repr.priority != 0).then_some(rx.src);
                self.backup_advert(&repr, now);
            }
            State::Master => self.master_advert(&repr, rx.src, now),
        }
    }

    /// The driver's answer to [`Output::Probe`].
    pub fn handle_probe(&mut self, result: Probe, now: Instant) {
        match self.state {
            State::Backup if self.probe == ProbeState::Pending => {
                self.probe = ProbeState::Done(result);
                if self.timer.is_some_and(|t| now >= t) {
                    self.master_down(now);
                }
            }
            State::Fault if self.isolated && !self.fault && result != Probe::Isolated => {
                self.isolated = false;
                self.enter_backup(now, "network reachable again");
            }
            _ => {}
        }
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        match (self.timer, self.probe_at) {
            (Some(t), Some(p)) => Some(t.min(p)),
            (t, p) => t.or(p),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if self.probe_at.is_some_and(|p| now >= p) {
            self.probe_at = None;
            self.probe = ProbeState::Pending;
            self.out.push_back(Output::Probe);
        }
        let Some(t) = self.timer else { return };
        if now < t {
            return;
        }
        match self.state {
            State::Master => {
                self.send(self.priority());
                self.timer = Some(now + centis(self.s.interval.into()));
            }
            State::Backup => self.master_down(now),
            State::Fault if self.isolated => {
                self.out.push_back(Output::Probe);
                self.probe = ProbeState::Pending;
                self.timer = Some(now + centis(self.master_adver_interval.into()));
            }
            State::Fault | State::Initialize => self.timer = None,
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    fn backup_advert(&mut self, repr: &Repr, now: Instant) {
        if repr.priority == 0 {
            // §6.4.2: the master resigned; take over after Skew_Time only.
            let at = now + self.skew_time();
            self.arm_master_down(at, now);
            return;
        }
        let preempting = self.s.preempt
            && self.priority() > repr.priority
            && now >= self.backup_since + self.s.preempt_delay;
        if !preempting {
            self.learn(repr, now);
        }
    }

    fn master_advert(&mut self, repr: &Repr, src: IpAddr, now: Instant) {
        if repr.priority == 0 {
            // §6.4.3: another master resigned; assert ourselves at once.
            self.send(self.priority());
            self.timer = Some(now + centis(self.s.interval.into()));
            return;
        }
        let mine = self.priority();
        if repr.priority > mine || (repr.priority == mine && addr_gt(src, self.s.primary)) {
            self.out.push_back(Output::Release);
            self.enter_backup(now, "higher priority master");
            self.master = Some(src);
            self.learn(repr, now);
        }
    }

    /// §6.4.2: adopt the master's interval and restart Master_Down_Timer.
    fn learn(&mut self, repr: &Repr, now: Instant) {
        self.master_adver_interval = repr.max_adver_int;
        let at = now + self.master_down_interval();
        self.arm_master_down(at, now);
    }

    fn heard_recently(&self, now: Instant) -> bool {
        self.heard_at
            .is_some_and(|h| now.saturating_duration_since(h) < self.master_down_interval())
    }

    fn arm_master_down(&mut self, at: Instant, now: Instant) {
        self.timer = Some(at);
        self.probe = ProbeState::Idle;
        self.probe_wait = None;
        self.probe_at = self.s.probe.then(|| {
            let lead = centis(self.master_adver_interval.into());
            at.checked_sub(lead).unwrap_or(now).max(now)
        });
    }

    fn master_down(&mut self, now: Instant) {
        if !self.s.probe {
            return self.become_master(now, "master down");
        }
        match self.probe {
            ProbeState::Done(Probe::Clear) => self.become_master(now, "master down, network clear"),
            ProbeState::Done(Probe::VipInUse) if self.heard_recently(now) => {
                // We hear the master and preempt it: it yields on our first advert.
                self.become_master(now, "preempting a lower priority master")
            }
            ProbeState::Done(Probe::VipInUse) => {
                self.counters.promotions_refused += 1;
                let at = now + self.master_down_interval();
                self.arm_master_down(at, now);
            }
            ProbeState::Done(Probe::Isolated) => self.isolate(now),
            ProbeState::Pending => match self.probe_wait {
                // No answer one interval past the timer counts as isolated.
                Some(until) if now >= until => self.isolate(now),
                Some(_) => {}
                None => {
                    let until = now + centis(self.master_adver_interval.into());
                    self.probe_wait = Some(until);
                    self.timer = Some(until);
                }
            },
            ProbeState::Idle => {
                self.probe = ProbeState::Pending;
                self.out.push_back(Output::Probe);
                self.timer = Some(now + centis(self.master_adver_interval.into()));
            }
        }
    }

    fn isolate(&mut self, now: Instant) {
        self.counters.isolated += 1;
        self.isolated = true;
        self.probe_at = None;
        self.probe = ProbeState::Idle;
        self.goto(State::Fault, "isolated: no gateway or peer answers");
        self.timer = Some(now + centis(self.master_adver_interval.into()));
    }

    fn become_master(&mut self, now: Instant, reason: &'static str) {
        self.probe_at = None;
        self.probe = ProbeState::Idle;
        self.send(self.priority());
        self.out.push_back(Output::TakeOver);
        self.timer = Some(now + centis(self.s.interval.into()));
        self.goto(State::Master, reason);
    }

    fn enter_from_init(&mut self, now: Instant, reason: &'static str) {
        if self.priority() == 255 {
            self.become_master(now, reason);
        } else {
            self.enter_backup(now, reason);
        }
    }

    fn enter_backup(&mut self, now: Instant, reason: &'static str) {
        self.master = None;
        self.master_adver_interval = self.s.interval;
        self.backup_since = now;
        let at = now + self.master_down_interval();
        self.arm_master_down(at, now);
        self.goto(State::Backup, reason);
    }

    fn enter_fault(&mut self, reason: &'static str) {
        if self.state == State::Master {
            self.send(0);
            self.out.push_back(Output::Release);
        }
        self.timer = None;
        self.probe_at = None;
        self.probe = ProbeState::Idle;
        self.goto(State::Fault, reason);
    }

    fn send(&mut self, priority: u8) {
        if priority == 0 {
            self.counters.priority_zero_sent += 1;
        }
        self.counters.sent += 1;
        self.out.push_back(Output::Advertise(Repr {
            vrid: self.s.vrid,
            priority,
            max_adver_int: self.s.interval,
            addrs: self.s.vips.clone(),
        }));
    }

    fn goto(&mut self, to: State, reason: &'static str) {
        if self.state != to {
            let from = std::mem::replace(&mut self.state, to);
            self.out.push_back(Output::Transition { from, to, reason });
        }
    }
}

/// §6.4.3: "the primary IP address of the sender is greater than the local primary IP
/// address", as unsigned integers.
fn addr_gt(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => u32::from(a) > u32::from(b),
        (IpAddr::V6(a), IpAddr::V6(b)) => u128::from(a) > u128::from(b),
        _ => false,
    }
}

fn same_addrs(got: &[IpAddr], want: &[IpAddr]) -> bool {
    let v4 = got.first().is_some_and(|g| g.is_ipv4());
    let mut w: Vec<&IpAddr> = want.iter().filter(|a| a.is_ipv4() == v4).collect();
    let mut g: Vec<&IpAddr> = got.iter().collect();
    w.sort();
    g.sort();
    w == g
}
