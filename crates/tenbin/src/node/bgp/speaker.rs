//! `[bgp]` as the tenbin-ha driver's configuration.

use std::net::SocketAddr;

use tenbin_config::bgp::BgpSection;
use tenbin_ha::bfd::BfdConfig;
use tenbin_ha::bgp::driver::{Neighbor, SpeakerConfig};
use tenbin_ha::bgp::PeerConfig;

pub(super) fn speaker_config(b: &BgpSection) -> SpeakerConfig {
    let neighbors: Vec<Neighbor> = b
        .neighbor
        .iter()
        .enumerate()
        .map(|(i, n)| Neighbor {
            address: *n.address.get_ref(),
            port: n.port,
            local_address: n.local_address.as_ref().map(|a| *a.get_ref()),
            session: PeerConfig {
                local_as: *b.local_as.get_ref(),
                remote_as: *n.remote_as.get_ref(),
                router_id: *b.router_id.get_ref(),
                hold_time: *n.hold_time.as_ref().unwrap_or(&b.hold_time).get_ref(),
                passive: n.passive,
                connect_retry: b.connect_retry,
                connect_retry_max: b.connect_retry_max,
                ipv4: n.ipv4,
                ipv6: n.ipv6,
                next_hop_v4: b.next_hop_v4,
                next_hop_v6: b.next_hop_v6,
            },
            bfd: n.bfd.then(|| BfdConfig {
                desired_min_tx: b.bfd_interval,
                required_min_rx: b.bfd_interval,
                detect_mult: *b.bfd_multiplier.get_ref(),
                local_discr: u32::try_from(i + 1).unwrap_or(u32::MAX),
                // Jitter only needs to differ between nodes and sessions.
                seed: u64::from(u32::from(*b.router_id.get_ref())) << 8 | i as u64,
            }),
        })
        .collect();
    let passive = neighbors.iter().any(|n| n.session.passive);
    SpeakerConfig {
        listen: passive.then(|| b.listen.unwrap_or(SocketAddr::from(([0u16; 8], 179)))),
        neighbors,
    }
}
