//! The session's checks of the peer's OPEN (§6.2) and UPDATEs (§6.3 beyond syntax), the
//! negotiation of hold time, AS width and families, and sending the routes.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::{Event, Output, Session, State};
use crate::bgp::error::{code, open, update as upd, Notification};
use crate::bgp::rib::Announcer;
use crate::bgp::update::{Update, AS_SEQUENCE};
use crate::bgp::wire::{Capability, Message, Open, AFI_IPV4, AFI_IPV6, SAFI_UNICAST};

impl Session {
    pub(super) fn on_open(&mut self, o: Open, now: Instant) {
        let bad = |sub| Notification::new(code::OPEN, sub);
        if o.asn() != self.cfg.remote_as {
            return self.fail(bad(open::BAD_PEER_AS), now);
        }
        if o.hold_time == 1 || o.hold_time == 2 {
            return self.fail(bad(open::UNACCEPTABLE_HOLD_TIME), now);
        }
        // RFC 6286 §2.2: zero is never valid; an internal peer may not share ours.
        if o.bgp_id.is_unspecified() || (self.cfg.ibgp() && o.bgp_id == self.cfg.router_id) {
            return self.fail(bad(open::BAD_BGP_IDENTIFIER), now);
        }
        let hold = self.cfg.hold_time.min(o.hold_time);
        self.hold = Duration::from_secs(u64::from(hold));
        self.keepalive = (self.hold / 3).max(Duration::from_secs(1));
        if hold == 0 {
            self.hold_at = None;
            self.keepalive_at = None;
        } else {
            self.hold_at = Some(now + self.hold);
            self.keepalive_at = Some(now + self.keepalive);
        }
        self.ctx.four_octet_as = o
            .capabilities
            .iter()
            .any(|c| matches!(c, Capability::FourOctetAs(_)));
        let mp = |afi| {
            o.has(&Capability::Multiprotocol {
                afi,
                safi: SAFI_UNICAST,
            })
        };
        let v4 = self.cfg.ipv4 && (o.no_multiprotocol() || mp(AFI_IPV4));
        let v6 = self.cfg.ipv6 && mp(AFI_IPV6);
        let local = self.local.map(|l| l.ip());
        let local4 = match local {
            Some(IpAddr::V4(a)) => Some(a),
            _ => None,
        };
        let local6 = match local {
            Some(IpAddr::V6(a)) if a.to_ipv4_mapped().is_none() => Some(a),
            _ => None,
        };
        self.announcer = Some(Announcer {
            local_as: self.cfg.local_as,
            ibgp: self.cfg.ibgp(),
            v4: v4.then(|| self.cfg.next_hop_v4.or(local4)).flatten(),
            v6: v6.then(|| self.cfg.next_hop_v6.or(local6)).flatten(),
        });
        self.peer_id = o.bgp_id;
        self.send(Message::Keepalive);
        self.set_state(State::OpenConfirm);
    }

    pub(super) fn on_update(&mut self, u: &Update, now: Instant) {
        self.stats.updates_received += 1;
        // §6.3: an external peer's path must start with its own AS.
        if u.announces() && !self.cfg.ibgp() {
            let first = u
                .attrs
                .as_path
                .as_ref()
                .and_then(|p| p.first())
                .filter(|s| s.kind == AS_SEQUENCE)
                .and_then(|s| s.asns.first());
            if first != Some(&self.cfg.remote_as) {
                return self.fail(Notification::new(code::UPDATE, upd::MALFORMED_AS_PATH), now);
            }
        }
        let mp_ann = u.attrs.mp_reach.as_ref().map_or(0, |m| m.nlri.len());
        let mp_wd = u.attrs.mp_unreach.as_ref().map_or(0, |m| m.withdrawn.len());
        self.out.push_back(Output::Event(Event::Received {
            announced: u.nlri.len() + mp_ann,
            withdrawn: u.withdrawn.len() + mp_wd,
        }));
    }

    /// Brings the peer to what is wanted now (nothing while drained).
    pub(super) fn sync(&mut self, now: Instant) {
        let Some(a) = self.announcer.filter(|_| self.state == State::Established) else {
            return;
        };
        let empty = BTreeMap::new();
        let wanted = if self.drained { &empty } else { &self.wanted };
        let (updates, announced, withdrawn) = a.sync(wanted, &mut self.sent);
        if updates.is_empty() {
            return;
        }
        for u in updates {
            self.stats.updates_sent += 1;
            self.send(Message::Update(Box::new(u)));
        }
        if self.hold > Duration::ZERO {
            self.keepalive_at = Some(now + self.keepalive);
        }
        for p in withdrawn {
            self.out.push_back(Output::Event(Event::Withdrawn(p)));
        }
        for p in announced {
            self.out.push_back(Output::Event(Event::Announced(p)));
        }
    }
}
