//! What a running driver reports per virtual router ([`Status`], read through
//! [`super::Handle::status`]) and which config changes it takes without a restart
//! ([`InstanceConfig::live_change`]).

use std::net::IpAddr;

use super::InstanceConfig;
use crate::vrrp::machine::Counters;
use crate::vrrp::State;

/// One virtual router as the driver last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub state: State,
    /// The priority in force (configured minus failed tracked objects).
    pub priority: u8,
    pub configured_priority: u8,
    /// The master's primary address: ours while master, the advertiser's while backup.
    pub master: Option<IpAddr>,
    /// Tracked objects down now.
    pub tracked_down: Vec<String>,
    /// State changes since start.
    pub transitions: u64,
    pub counters: Counters,
}

impl Status {
    pub(super) fn new(cfg: &InstanceConfig) -> Status {
        Status {
            name: cfg.name.clone(),
            interface: cfg.interface.clone(),
            vrid: cfg.vrid,
            state: State::Initialize,
            priority: cfg.priority,
            configured_priority: cfg.priority,
            master: None,
            tracked_down: Vec::new(),
            transitions: 0,
            counters: Counters::default(),
        }
    }
}

impl InstanceConfig {
    /// Whether `new` differs from `self` only in what a running virtual router can change
    /// in place (priority, preemption, tracked objects, notify script, GARP repeat); `None`
    /// when nothing differs. Anything else (interface, VRID, VIPs, interval, checksum,
    /// peers, probes, lifetimes) needs the router restarted, which a node does not do on
    /// its own since it would hand the VIPs over.
    pub fn live_change(&self, new: &InstanceConfig) -> Option<bool> {
        if self == new {
            return None;
        }
        let mut masked = new.clone();
        masked.priority = self.priority;
        masked.preempt = self.preempt;
        masked.preempt_delay = self.preempt_delay;
        masked.track = self.track.clone();
        masked.notify = self.notify.clone();
        masked.garp_repeat = self.garp_repeat;
        Some(masked == *self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vrrp::ChecksumMode;
    use std::time::Duration;

    fn cfg() -> InstanceConfig {
        InstanceConfig {
            name: "web".into(),
            interface: "eth0".into(),
            vrid: 51,
            priority: 100,
            interval: 100,
            preempt: true,
            preempt_delay: Duration::ZERO,
            vips: vec!["10.0.0.100/24".parse().unwrap()],
            checksum: ChecksumMode::PseudoHeader,
            unicast_peers: Vec::new(),
            source: None,
            probe_targets: Vec::new(),
            probe_vips: true,
            track_interfaces: Vec::new(),
            track: Vec::new(),
            notify: None,
            vip_lifetime: 3,
            garp_repeat: 2,
        }
    }

    #[test]
    fn priority_and_preemption_change_live_addresses_do_not() {
        let old = cfg();
        assert_eq!(old.live_change(&old), None);
        let mut new = old.clone();
        new.priority = 150;
        new.preempt = false;
        new.garp_repeat = 5;
        assert_eq!(old.live_change(&new), Some(true));
        new.vips = vec!["10.0.0.101/24".parse().unwrap()];
        assert_eq!(old.live_change(&new), Some(false));
        let mut new = old.clone();
        new.interval = 10;
        assert_eq!(old.live_change(&new), Some(false));
    }
}
