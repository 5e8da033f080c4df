//! Anycast authoritative DNS (the SRE book's anycast name servers): with
//! `[bgp].announce_dns`, each `[dns].listen` address is announced while the DNS tier answers
//! there and withdrawn while it does not, so routers send queries only to nodes that answer.
//!
//! "Answers" is [`dns_answers`]: an authoritative NOERROR reply to a UDP query for the first
//! zone's SOA, sent to the address itself every `dns_check_interval`. It is the one function
//! to re-point once the health bus publishes the DNS tier's readiness. An address is
//! announced after one answered query and withdrawn after two missed in a row (one lost
//! datagram must not move every resolver's traffic).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tenbin_config::dns::DnsSection;
use tenbin_core::health::{HealthState, Hysteresis};
use tokio::task::JoinHandle;

/// Checks sent to an address before it is withdrawn.
const FALL: u32 = 2;

/// Whether the DNS tier answers at `addr` for `zone` within `timeout`.
pub async fn dns_answers(addr: SocketAddr, zone: &str, id: u16, timeout: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + timeout;
    match tenbin_health::probe::dns::query(addr, zone, id, deadline).await {
        Ok(()) => true,
        Err(e) => {
            tracing::debug!(%addr, "dns self-check failed: {e}");
            false
        }
    }
}

/// Checks `dns`'s listen addresses every `interval` and hands `publish` the set that
/// answers after every round, until it returns `false`. `None` when `dns` has no zone to ask
/// for (validation refuses that with `announce_dns`).
pub fn watch(
    dns: &DnsSection,
    interval: Duration,
    mut publish: impl FnMut(BTreeSet<IpAddr>) -> bool + Send + 'static,
) -> Option<JoinHandle<()>> {
    let zone = dns.zones.first()?.origin.clone();
    let listen = dns.listen.clone();
    Some(tokio::spawn(async move {
        let mut hysteresis: BTreeMap<SocketAddr, Hysteresis> = listen
            .iter()
            .map(|a| (*a, Hysteresis::new(1, FALL)))
            .collect();
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut id: u16 = rand::random();
        loop {
            tick.tick().await;
            let mut checks = tokio::task::JoinSet::new();
            for addr in &listen {
                id = id.wrapping_add(1);
                let (addr, zone) = (*addr, zone.clone());
                checks.spawn(async move { (addr, dns_answers(addr, &zone, id, interval).await) });
            }
            while let Some(Ok((addr, ok))) = checks.join_next().await {
                if let Some(s) = hysteresis.get_mut(&addr).and_then(|h| h.observe(ok)) {
                    tracing::info!(%addr, state = ?s, "anycast dns");
                }
            }
            if !publish(answering(&hysteresis)) {
                return;
            }
        }
    }))
}

/// The addresses whose every listening port answers.
fn answering(h: &BTreeMap<SocketAddr, Hysteresis>) -> BTreeSet<IpAddr> {
    let mut by_ip: BTreeMap<IpAddr, bool> = BTreeMap::new();
    for (addr, h) in h {
        let up = h.state() == HealthState::Up;
        *by_ip.entry(addr.ip()).or_insert(true) &= up;
    }
    by_ip
        .into_iter()
        .filter(|(_, up)| *up)
        .map(|(ip, _)| ip)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_is_announced_after_one_answer_and_withdrawn_after_two_misses() {
        let a: SocketAddr = "10.53.0.1:53".parse().unwrap();
        let b: SocketAddr = "10.53.0.1:5353".parse().unwrap();
        let c: SocketAddr = "10.53.0.2:53".parse().unwrap();
        let mut h: BTreeMap<_, _> = [a, b, c]
            .into_iter()
            .map(|x| (x, Hysteresis::new(1, FALL)))
            .collect();
        assert!(answering(&h).is_empty(), "nothing before the first answer");
        for x in [a, b, c] {
            h.get_mut(&x).unwrap().observe(true);
        }
        assert_eq!(answering(&h).len(), 2);
        h.get_mut(&b).unwrap().observe(false);
        assert_eq!(answering(&h).len(), 2, "one miss withdraws nothing");
        h.get_mut(&b).unwrap().observe(false);
        let left = answering(&h);
        assert_eq!(
            left.into_iter().collect::<Vec<_>>(),
            [c.ip()],
            "one port of an address not answering withdraws the address"
        );
    }
}
