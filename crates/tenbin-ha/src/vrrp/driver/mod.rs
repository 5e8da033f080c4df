//! The thin I/O shell around [`Machine`]s: one thread, one `poll(2)` over each virtual
//! router's raw socket, a netlink link watch and a wake-up socket for the node's inputs.
//!
//! - Start: stale VIPs (left by a crashed run) are removed, link state is read, machines
//!   start.
//! - Inputs ([`Handle::send`]): a tracked object up or down, node fault on/off, a live
//!   config change ([`InstanceConfig::live_change`]), shutdown (a master then sends
//!   priority 0 and keeps its VIPs until the new master's first advert arrives, at most two
//!   intervals, so no packet to a VIP finds nobody; then releases them and
//!   [`Driver::run`] returns).
//! - Status ([`Handle::status`]): each router's state, priority, master and counters.
//! - Outputs: adverts to the group or the unicast peers, VIPs through netlink (with a
//!   lifetime the master refreshes), gratuitous ARP / unsolicited NA on takeover, probes run
//!   on a short-lived thread, the notify script, and an [`Event`] per state change.
//! - [`guard_until_eof`]: the body of a separate guard process that removes the VIPs when
//!   the driver's process dies without releasing them.

pub mod arp;
pub mod netlink;
mod notify;
pub mod socket;
mod status;
pub mod track;

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use pnet_datalink::NetworkInterface;

use super::machine::Counters;
use super::{ChecksumMode, Machine, Output, Probe, Received, Settings, State};
pub use status::Status;
use track::{Track, Tracking};

/// One virtual router as the driver runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceConfig {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub priority: u8,
    /// Centiseconds.
    pub interval: u16,
    pub preempt: bool,
    pub preempt_delay: Duration,
    /// All of one family.
    pub vips: Vec<IpNet>,
    pub checksum: ChecksumMode,
    /// Send adverts to these instead of the multicast group.
    pub unicast_peers: Vec<IpAddr>,
    /// Our primary address; default: the interface's first IPv4 (or link-local IPv6)
    /// address that is not a VIP.
    pub source: Option<IpAddr>,
    /// Cable-safe promotion: gateways or peers that must answer ARP before a takeover on
    /// missed adverts. Empty: no probe.
    pub probe_targets: Vec<Ipv4Addr>,
    /// Also refuse takeover while another host answers ARP for a VIP (one-way advert loss).
    pub probe_vips: bool,
    /// Other interfaces whose link loss means Fault (the instance's own always does).
    pub track_interfaces: Vec<String>,
    pub track: Vec<Track>,
    /// Run as `SCRIPT INSTANCE NAME STATE PRIORITY` on each state change (keepalived's).
    pub notify: Option<PathBuf>,
    /// Valid lifetime of VIPs in seconds, refreshed while master; 0: permanent.
    pub vip_lifetime: u32,
    pub garp_repeat: u32,
}

/// What the node tells the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// A tracked object (a pool, a frontend, ...) is up or down.
    Tracked { name: String, up: bool },
    /// The node cannot serve (or can again): every instance to Fault (or out of it).
    Fault(bool),
    /// The routers' new configs, matched by name; only the fields
    /// [`InstanceConfig::live_change`] accepts are taken, the rest is ignored.
    Reconfigure(Vec<InstanceConfig>),
    /// Graceful stop: masters send priority 0 and release.
    Shutdown,
}

/// What the driver tells the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    State {
        instance: String,
        vrid: u8,
        from: State,
        to: State,
        reason: &'static str,
    },
}

enum Msg {
    Input(Input),
    Probe(usize, Probe),
}

/// Feeds a running [`Driver`]; cheap to clone.
#[derive(Debug, Clone)]
pub struct Handle {
    tx: Sender<Msg>,
    wake: Arc<UnixStream>,
    status: Arc<Mutex<Vec<Status>>>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Msg::Input(i) => write!(f, "{i:?}"),
            Msg::Probe(i, p) => write!(f, "probe {i}: {p:?}"),
        }
    }
}

impl Handle {
    pub fn send(&self, input: Input) {
        self.post(Msg::Input(input));
    }

    /// Every router's state as of the driver's last wake-up.
    pub fn status(&self) -> Vec<Status> {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn post(&self, m: Msg) {
        if self.tx.send(m).is_ok() {
            // A full wake socket already means "wake up".
            let _ = (&*self.wake).write(&[1]);
        }
    }
}

struct Instance {
    cfg: InstanceConfig,
    machine: Machine,
    sock: socket::VrrpSocket,
    iface: NetworkInterface,
    tracking: Tracking,
    /// Tracked interface indexes that are down.
    links_down: Vec<u32>,
    tracked_links: Vec<u32>,
    refreshed: Option<Instant>,
    transitions: u64,
    /// Shutting down as master: the VIPs go when an advert from the new master arrives
    /// (`received` passes this count) or at the deadline.
    handover: Option<(u64, Instant)>,
}

/// The running VRRP speaker of a node.
#[derive(Debug)]
pub struct Driver {
    instances: Vec<Instance>,
    nl: netlink::Netlink,
    links: netlink::LinkWatch,
    rx: Receiver<Msg>,
    wake_rx: UnixStream,
    handle: Handle,
}

impl std::fmt::Debug for Instance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instance")
            .field("name", &self.cfg.name)
            .finish()
    }
}

impl Driver {
    /// Opens every socket; nothing is sent before [`Driver::run`].
    pub fn new(configs: Vec<InstanceConfig>) -> io::Result<(Driver, Handle)> {
        let (tx, rx) = mpsc::channel();
        let (wake_rx, wake_tx) = UnixStream::pair()?;
        wake_rx.set_nonblocking(true)?;
        wake_tx.set_nonblocking(true)?;
        let status = configs.iter().map(Status::new).collect();
        let handle = Handle {
            tx,
            wake: Arc::new(wake_tx),
            status: Arc::new(Mutex::new(status)),
        };
        let mut nl = netlink::Netlink::new()?;
        let links = netlink::LinkWatch::new()?;
        let all = pnet_datalink::interfaces();
        let now = Instant::now();
        let mut instances = Vec::new();
        for cfg in configs {
            let find = |name: &str| {
                all.iter().find(|i| i.name == name).cloned().ok_or_else(|| {
                    io::Error::other(format!("vrrp {}: no interface {name}", cfg.name))
                })
            };
            let iface = find(&cfg.interface)?;
            let primary = match cfg.source {
                Some(s) => s,
                None => primary_of(&iface, &cfg.vips).ok_or_else(|| {
                    io::Error::other(format!(
                        "vrrp {}: {} has no usable address",
                        cfg.name, iface.name
                    ))
                })?,
            };
            let sock = socket::VrrpSocket::open(&iface.name, iface.index, primary)?;
            let mut tracked_links = vec![iface.index];
            for t in &cfg.track_interfaces {
                tracked_links.push(find(t)?.index);
            }
            let settings = Settings {
                vrid: cfg.vrid,
                priority: cfg.priority,
                interval: cfg.interval,
                preempt: cfg.preempt,
                preempt_delay: cfg.preempt_delay,
                primary,
                vips: cfg.vips.iter().map(|v| v.addr()).collect(),
                checksum: cfg.checksum,
                probe: !cfg.probe_targets.is_empty(),
            };
            let mut links_down = Vec::new();
            for &ix in &tracked_links {
                if !nl.link_up(ix)? {
                    links_down.push(ix);
                }
            }
            instances.push(Instance {
                tracking: Tracking::new(cfg.track.clone()),
                machine: Machine::new(settings, now),
                cfg,
                sock,
                iface,
                links_down,
                tracked_links,
                refreshed: None,
                transitions: 0,
                handover: None,
            });
        }
        let driver = Driver {
            instances,
            nl,
            links,
            rx,
            wake_rx,
            handle: handle.clone(),
        };
        Ok((driver, handle))
    }

    /// Runs until [`Input::Shutdown`]; `events` hears every state change.
    pub fn run(mut self, mut events: impl FnMut(Event)) -> io::Result<Vec<(String, Counters)>> {
        // Inputs sent before the start (the node's tracked objects) count from the start,
        // so a node that cannot serve starts in Fault instead of passing through Backup.
        let mut stopping = false;
        while let Ok(m) = self.rx.try_recv() {
            stopping |= self.on_msg(m, Instant::now());
        }
        for i in 0..self.instances.len() {
            let inst = &self.instances[i];
            for vip in &inst.cfg.vips {
                self.nl.del_vip(inst.iface.index, *vip)?;
            }
            let now = Instant::now();
            let inst = &mut self.instances[i];
            let fault = !inst.links_down.is_empty() || inst.tracking.fault();
            inst.machine.set_priority_delta(inst.tracking.delta());
            inst.machine.set_fault(fault, now);
            inst.machine.startup(now);
        }
        loop {
            for i in 0..self.instances.len() {
                self.flush(i, &mut events);
            }
            if stopping && self.handed_over(Instant::now())? {
                self.publish();
                break;
            }
            self.publish();
            let timeout = self
                .instances
                .iter()
                .filter_map(|i| match i.handover {
                    Some((_, deadline)) => Some(deadline),
                    None => i.machine.poll_timeout(),
                })
                .min();
            let wait = match timeout {
                None => PollTimeout::NONE,
                Some(t) => {
                    let us = t.saturating_duration_since(Instant::now()).as_micros();
                    PollTimeout::from(u16::try_from(us.div_ceil(1000)).unwrap_or(u16::MAX))
                }
            };
            let mut fds = vec![
                PollFd::new(self.wake_rx.as_fd(), PollFlags::POLLIN),
                PollFd::new(self.links.as_fd(), PollFlags::POLLIN),
            ];
            fds.extend(
                self.instances
                    .iter()
                    .map(|i| PollFd::new(i.sock.as_fd(), PollFlags::POLLIN)),
            );
            match poll(&mut fds, wait) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            }
            drop(fds);
            let now = Instant::now();
            let mut drained = [0u8; 64];
            while matches!((&self.wake_rx).read(&mut drained), Ok(n) if n > 0) {}
            while let Ok(m) = self.rx.try_recv() {
                stopping |= self.on_msg(m, now);
            }
            for (ix, up) in self.links.drain() {
                self.on_link(ix, up, now);
            }
            for inst in &mut self.instances {
                inst.receive(now)?;
                if inst.machine.poll_timeout().is_some_and(|t| t <= now) {
                    inst.machine.handle_timeout(now);
                }
            }
        }
        Ok(self
            .instances
            .iter()
            .map(|i| (i.cfg.name.clone(), i.machine.counters().clone()))
            .collect())
    }

    fn on_msg(&mut self, m: Msg, now: Instant) -> bool {
        match m {
            Msg::Probe(i, p) => {
                if let Some(inst) = self.instances.get_mut(i) {
                    if p == Probe::VipInUse {
                        tracing::warn!(instance = %inst.cfg.name, "vrrp: a VIP answers from another host although no advert arrives: staying backup");
                    }
                    inst.machine.handle_probe(p, now);
                }
            }
            Msg::Input(Input::Shutdown) => {
                for inst in &mut self.instances {
                    if inst.machine.state() == State::Master {
                        let wait = Duration::from_millis(u64::from(inst.cfg.interval) * 20);
                        inst.handover = Some((inst.machine.counters().received, now + wait));
                        // No more adverts, so no more refreshes: the VIPs' lifetime must
                        // outlast the handover, or they expire before the successor is up.
                        if inst.cfg.vip_lifetime > 0 {
                            let life = inst.cfg.vip_lifetime + wait.as_secs() as u32 + 1;
                            for vip in &inst.cfg.vips {
                                if let Err(e) = self.nl.add_vip(inst.iface.index, *vip, life) {
                                    tracing::warn!(instance = %inst.cfg.name, error = %e, "vrrp: VIP not refreshed for the handover");
                                }
                            }
                        }
                    }
                    inst.machine.shutdown(now);
                }
                return true;
            }
            Msg::Input(Input::Reconfigure(configs)) => {
                for inst in &mut self.instances {
                    let Some(new) = configs.iter().find(|c| c.name == inst.cfg.name) else {
                        continue;
                    };
                    if inst.cfg.live_change(new) != Some(true) {
                        continue;
                    }
                    inst.machine
                        .reconfigure(new.priority, new.preempt, new.preempt_delay);
                    inst.tracking.respec(new.track.clone());
                    inst.machine.set_priority_delta(inst.tracking.delta());
                    inst.machine.set_fault(inst.is_faulty(), now);
                    inst.cfg = new.clone();
                    tracing::info!(instance = %inst.cfg.name, priority = inst.machine.priority(), "vrrp: reconfigured");
                }
            }
            Msg::Input(Input::Fault(on)) => {
                for inst in &mut self.instances {
                    inst.machine.set_fault(on || inst.is_faulty(), now);
                }
            }
            Msg::Input(Input::Tracked { name, up }) => {
                for inst in &mut self.instances {
                    if inst.tracking.set(&name, up) {
                        inst.machine.set_priority_delta(inst.tracking.delta());
                        inst.machine.set_fault(inst.is_faulty(), now);
                    }
                }
            }
        }
        false
    }

    fn on_link(&mut self, ix: u32, up: bool, now: Instant) {
        for inst in &mut self.instances {
            if !inst.tracked_links.contains(&ix) {
                continue;
            }
            inst.links_down.retain(|&d| d != ix);
            if !up {
                inst.links_down.push(ix);
            }
            inst.machine.set_fault(inst.is_faulty(), now);
        }
    }

    fn flush(&mut self, i: usize, events: &mut impl FnMut(Event)) {
        while let Some(out) = self.instances[i].machine.poll_output() {
            if let Err(e) = self.apply(i, out, events) {
                tracing::warn!(instance = %self.instances[i].cfg.name, error = %e, "vrrp output failed");
            }
        }
    }

    fn apply(&mut self, i: usize, out: Output, events: &mut impl FnMut(Event)) -> io::Result<()> {
        let inst = &mut self.instances[i];
        match out {
            Output::Advertise(repr) => {
                let src = inst.machine.settings().primary;
                let dsts = if inst.cfg.unicast_peers.is_empty() {
                    vec![inst.sock.group()]
                } else {
                    inst.cfg.unicast_peers.clone()
                };
                for dst in dsts {
                    inst.sock
                        .send(&repr.emit(src, dst, inst.cfg.checksum), dst)?;
                }
                let life = inst.cfg.vip_lifetime;
                let due = inst
                    .refreshed
                    .is_some_and(|r| r.elapsed() >= Duration::from_secs(u64::from(life)) / 3);
                if inst.machine.state() == State::Master && life > 0 && due {
                    inst.refreshed = Some(Instant::now());
                    for vip in &inst.cfg.vips {
                        self.nl.add_vip(inst.iface.index, *vip, life)?;
                    }
                }
            }
            Output::TakeOver => {
                for vip in &inst.cfg.vips {
                    self.nl
                        .add_vip(inst.iface.index, *vip, inst.cfg.vip_lifetime)?;
                }
                inst.refreshed = Some(Instant::now());
                let (v4, v6) = split_families(&inst.cfg.vips);
                if !v4.is_empty() {
                    arp::announce_v4(&inst.iface, &v4, inst.cfg.garp_repeat)?;
                }
                if !v6.is_empty() {
                    arp::announce_v6(&inst.iface, &v6, inst.cfg.garp_repeat)?;
                }
            }
            Output::Release if inst.handover.is_some() => {
                // Kept until the new master is heard (see `handed_over`).
            }
            Output::Release => {
                inst.refreshed = None;
                for vip in &inst.cfg.vips {
                    self.nl.del_vip(inst.iface.index, *vip)?;
                }
            }
            Output::Probe => {
                let spec = arp::ProbeSpec {
                    targets: inst.cfg.probe_targets.clone(),
                    vips: if inst.cfg.probe_vips {
                        split_families(&inst.cfg.vips).0
                    } else {
                        Vec::new()
                    },
                    source: match inst.machine.settings().primary {
                        IpAddr::V4(a) => a,
                        IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
                    },
                };
                let budget =
                    Duration::from_millis(u64::from(inst.machine.master_adver_interval()) * 10);
                let iface = inst.iface.clone();
                let handle = self.handle.clone();
                std::thread::spawn(move || {
                    handle.post(Msg::Probe(i, arp::probe(&iface, &spec, budget)))
                });
            }
            Output::Transition { from, to, reason } => {
                inst.transitions += 1;
                let prio = inst.machine.priority();
                tracing::info!(instance = %inst.cfg.name, vrid = inst.cfg.vrid, from = from.name(), to = to.name(), reason, "vrrp state");
                if let Some(script) = &inst.cfg.notify {
                    notify::run(script, &inst.cfg.name, to, prio);
                }
                events(Event::State {
                    instance: inst.cfg.name.clone(),
                    vrid: inst.cfg.vrid,
                    from,
                    to,
                    reason,
                });
            }
        }
        Ok(())
    }
}

impl Driver {
    /// While stopping: releases the VIPs of each former master whose successor has been
    /// heard (or whose deadline passed); whether every one is done.
    fn handed_over(&mut self, now: Instant) -> io::Result<bool> {
        let mut done = true;
        for inst in &mut self.instances {
            inst.receive(now)?;
            let Some((seen, deadline)) = inst.handover else {
                continue;
            };
            let heard = inst.machine.counters().received > seen;
            if heard || now >= deadline {
                inst.handover = None;
                inst.refreshed = None;
                tracing::info!(instance = %inst.cfg.name, successor_heard = heard, "vrrp: VIPs released after the handover");
                for vip in &inst.cfg.vips {
                    self.nl.del_vip(inst.iface.index, *vip)?;
                }
            } else {
                done = false;
            }
        }
        Ok(done)
    }

    fn publish(&self) {
        let all = self
            .instances
            .iter()
            .map(|i| Status {
                name: i.cfg.name.clone(),
                interface: i.cfg.interface.clone(),
                vrid: i.cfg.vrid,
                state: i.machine.state(),
                priority: i.machine.priority(),
                configured_priority: i.cfg.priority,
                master: i.machine.master(),
                tracked_down: i.tracking.down(),
                transitions: i.transitions,
                counters: i.machine.counters().clone(),
            })
            .collect();
        *self.handle.status.lock().unwrap_or_else(|e| e.into_inner()) = all;
    }
}

impl Instance {
    /// Feeds every advertisement waiting on the socket to the machine.
    fn receive(&mut self, now: Instant) -> io::Result<()> {
        while let Some(d) = self.sock.recv()? {
            let rx = Received {
                src: d.src,
                dst: d.dst,
                ttl: d.ttl,
                payload: &d.payload,
            };
            self.machine.handle_input(&rx, now);
        }
        Ok(())
    }

    fn is_faulty(&self) -> bool {
        !self.links_down.is_empty() || self.tracking.fault()
    }
}

fn primary_of(iface: &NetworkInterface, vips: &[IpNet]) -> Option<IpAddr> {
    let v6 = vips.first().is_some_and(|v| matches!(v, IpNet::V6(_)));
    iface.ips.iter().map(|n| n.ip()).find(|a| {
        !vips.iter().any(|v| v.addr() == *a)
            && match a {
                IpAddr::V4(_) => !v6,
                IpAddr::V6(a) => v6 && a.segments()[0] & 0xffc0 == 0xfe80,
            }
    })
}

/// The VIP guard: blocks until `parent` reaches end of file (the driver's process is gone,
/// whatever killed it, since the kernel closes its end of the pipe), then removes every VIP
/// of `configs`. Run in a separate process, it takes a SIGKILLed master's VIPs away at once
/// instead of at the end of their lifetime, so a backup's probe finds them free. Where it
/// removed VIPs (that router was master and did not hand over), it then sends the priority
/// 0 advert the dead master could not (§6.4.3), so the backup takes over after Skew_Time
/// instead of Master_Down_Interval.
pub fn guard_until_eof(mut parent: impl Read, configs: &[InstanceConfig]) -> io::Result<()> {
    let mut buf = [0u8; 64];
    loop {
        match parent.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    let mut nl = netlink::Netlink::new()?;
    let mut orphaned = Vec::new();
    for cfg in configs {
        let Ok(ix) = nix::net::if_::if_nametoindex(cfg.interface.as_str()) else {
            continue;
        };
        let mut held = false;
        for vip in &cfg.vips {
            held |= nl.remove_vip(ix, *vip)?;
        }
        if held {
            orphaned.push(cfg);
        }
    }
    if !orphaned.is_empty() {
        let all = pnet_datalink::interfaces();
        for cfg in orphaned {
            if let Err(e) = resign(cfg, &all) {
                tracing::warn!(instance = %cfg.name, "vrrp guard: no priority 0 advert: {e}");
            }
        }
    }
    Ok(())
}

/// Sends one priority 0 advert for `cfg` from its primary address, as its master would on
/// shutdown.
fn resign(cfg: &InstanceConfig, all: &[NetworkInterface]) -> io::Result<()> {
    let iface = all
        .iter()
        .find(|i| i.name == cfg.interface)
        .ok_or_else(|| io::Error::other(format!("no interface {}", cfg.interface)))?;
    let primary = cfg
        .source
        .or_else(|| primary_of(iface, &cfg.vips))
        .ok_or_else(|| io::Error::other(format!("{} has no usable address", iface.name)))?;
    let sock = socket::VrrpSocket::open(&iface.name, iface.index, primary)?;
    let repr = super::packet::Repr {
        vrid: cfg.vrid,
        priority: 0,
        max_adver_int: cfg.interval,
        addrs: cfg.vips.iter().map(|v| v.addr()).collect(),
    };
    let dsts = if cfg.unicast_peers.is_empty() {
        vec![sock.group()]
    } else {
        cfg.unicast_peers.clone()
    };
    for dst in dsts {
        sock.send(&repr.emit(primary, dst, cfg.checksum), dst)?;
    }
    Ok(())
}

fn split_families(vips: &[IpNet]) -> (Vec<Ipv4Addr>, Vec<std::net::Ipv6Addr>) {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for v in vips {
        match v {
            IpNet::V4(n) => v4.push(n.addr()),
            IpNet::V6(n) => v6.push(n.addr()),
        }
    }
    (v4, v6)
}
