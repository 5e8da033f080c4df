//! Neighbour traffic of the driver: gratuitous ARP and unsolicited NA on takeover (so
//! switches and hosts move the VIPs to our MAC at once), and the reachability probe of
//! cable-safe promotion (ARP who-has for the gateways and for the VIPs).
//!
//! Frames are built and parsed here as plain bytes; the AF_PACKET socket is pnet_datalink's.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use pnet_datalink::{Channel, Config as ChannelConfig, NetworkInterface};

use crate::vrrp::Probe;

const ETHERTYPE_ARP: u16 = 0x0806;
const BROADCAST: [u8; 6] = [0xff; 6];

/// An ARP request frame (Ethernet + ARP) from `mac`/`sender` asking for `target`. With
/// `sender == target` it is a gratuitous ARP.
pub fn arp_request(mac: [u8; 6], sender: Ipv4Addr, target: Ipv4Addr) -> [u8; 42] {
    let mut f = [0u8; 42];
    f[0..6].copy_from_slice(&BROADCAST);
    f[6..12].copy_from_slice(&mac);
    f[12..14].copy_from_slice(&ETHERTYPE_ARP.to_be_bytes());
    // htype 1 (Ethernet), ptype IPv4, hlen 6, plen 4, op 1 (request).
    f[14..22].copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    f[22..28].copy_from_slice(&mac);
    f[28..32].copy_from_slice(&sender.octets());
    f[38..42].copy_from_slice(&target.octets());
    f
}

/// The sender of an ARP reply in `frame`, if it is one: (MAC, IPv4 address).
pub fn arp_reply_sender(frame: &[u8]) -> Option<([u8; 6], Ipv4Addr)> {
    let arp = frame.get(14..42)?;
    if frame[12..14] != ETHERTYPE_ARP.to_be_bytes() || arp[0..8] != [0, 1, 0x08, 0x00, 6, 4, 0, 2] {
        return None;
    }
    let mac: [u8; 6] = arp[8..14].try_into().ok()?;
    let ip: [u8; 4] = arp[14..18].try_into().ok()?;
    Some((mac, Ipv4Addr::from(ip)))
}

/// An unsolicited neighbour advertisement (RFC 4861 §7.2.6) for `target`, ICMPv6 body only
/// (the kernel fills the checksum of raw ICMPv6 sockets).
pub fn unsolicited_na(mac: [u8; 6], target: Ipv6Addr) -> [u8; 32] {
    let mut p = [0u8; 32];
    p[0] = 136;
    // Override flag: replace whatever the neighbours cached.
    p[4] = 0x20;
    p[8..24].copy_from_slice(&target.octets());
    // Option 2: target link-layer address, length 1 (8 bytes).
    p[24] = 2;
    p[25] = 1;
    p[26..32].copy_from_slice(&mac);
    p
}

fn open(iface: &NetworkInterface, read_timeout: Duration) -> io::Result<Channel> {
    pnet_datalink::channel(
        iface,
        ChannelConfig {
            read_timeout: Some(read_timeout),
            promiscuous: false,
            ..ChannelConfig::default()
        },
    )
}

/// Sends `repeat` gratuitous ARPs for each IPv4 VIP.
pub fn announce_v4(iface: &NetworkInterface, vips: &[Ipv4Addr], repeat: u32) -> io::Result<()> {
    let mac = mac_of(iface)?;
    let Channel::Ethernet(mut tx, _rx) = open(iface, Duration::from_millis(1))? else {
        return Err(io::Error::other("not an Ethernet channel"));
    };
    for _ in 0..repeat {
        for vip in vips {
            if let Some(r) = tx.send_to(&arp_request(mac, *vip, *vip), None) {
                r?;
            }
        }
    }
    Ok(())
}

/// Sends `repeat` unsolicited NAs for each IPv6 VIP to all nodes, hop limit 255.
pub fn announce_v6(iface: &NetworkInterface, vips: &[Ipv6Addr], repeat: u32) -> io::Result<()> {
    use socket2::{Domain, Protocol, SockAddr, Socket, Type};
    let mac = mac_of(iface)?;
    let s = Socket::new(Domain::IPV6, Type::RAW, Some(Protocol::ICMPV6))?;
    s.bind_device(Some(iface.name.as_bytes()))?;
    s.set_multicast_hops_v6(255)?;
    s.set_multicast_if_v6(iface.index)?;
    let all_nodes = std::net::SocketAddrV6::new(
        Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1),
        0,
        0,
        iface.index,
    );
    for _ in 0..repeat {
        for vip in vips {
            s.send_to(&unsolicited_na(mac, *vip), &SockAddr::from(all_nodes))?;
        }
    }
    Ok(())
}

/// What the probe asks the network.
#[derive(Debug, Clone)]
pub struct ProbeSpec {
    /// Gateways or peers: one answer proves we are connected.
    pub targets: Vec<Ipv4Addr>,
    /// VIPs: an answer from another MAC means another node holds them.
    pub vips: Vec<Ipv4Addr>,
    pub source: Ipv4Addr,
}

/// Runs the probe within `budget`; errors opening the socket count as isolation.
pub fn probe(iface: &NetworkInterface, spec: &ProbeSpec, budget: Duration) -> Probe {
    match probe_inner(iface, spec, budget) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!(interface = %iface.name, error = %e, "vrrp probe failed to run");
            Probe::Isolated
        }
    }
}

fn probe_inner(iface: &NetworkInterface, spec: &ProbeSpec, budget: Duration) -> io::Result<Probe> {
    let start = Instant::now();
    let mac = mac_of(iface)?;
    let Channel::Ethernet(mut tx, mut rx) = open(iface, Duration::from_millis(5))? else {
        return Err(io::Error::other("not an Ethernet channel"));
    };
    for t in spec.targets.iter().chain(&spec.vips) {
        if let Some(r) = tx.send_to(&arp_request(mac, spec.source, *t), None) {
            r?;
        }
    }
    let mut deadline = start + budget;
    let mut reached = false;
    while Instant::now() < deadline {
        let frame = match rx.next() {
            Ok(f) => f,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                ) =>
            {
                continue
            }
            Err(e) => return Err(e),
        };
        let Some((from_mac, from_ip)) = arp_reply_sender(frame) else {
            continue;
        };
        if from_mac == mac {
            continue;
        }
        if spec.vips.contains(&from_ip) {
            return Ok(Probe::VipInUse);
        }
        if !reached && spec.targets.contains(&from_ip) {
            reached = true;
            // A VIP holder sits on the same segment as the gateway: give its answer as long
            // again as the gateway's took, at least 5 ms, then decide.
            let waited = start.elapsed().max(Duration::from_millis(5));
            deadline = deadline.min(Instant::now() + waited);
        }
    }
    Ok(if reached {
        Probe::Clear
    } else {
        Probe::Isolated
    })
}

fn mac_of(iface: &NetworkInterface) -> io::Result<[u8; 6]> {
    iface
        .mac
        .map(|m| m.octets())
        .ok_or_else(|| io::Error::other(format!("{} has no MAC address", iface.name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gratuitous_arp_bytes() {
        let mac = [2, 0, 0, 0, 0, 1];
        let vip = Ipv4Addr::new(10, 77, 0, 100);
        let f = arp_request(mac, vip, vip);
        assert_eq!(&f[0..6], &[0xff; 6]);
        assert_eq!(&f[12..22], &[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
        assert_eq!(&f[28..32], &[10, 77, 0, 100]);
        assert_eq!(&f[38..42], &[10, 77, 0, 100]);
        assert_eq!(arp_reply_sender(&f), None, "a request is not a reply");
    }

    #[test]
    fn reads_an_arp_reply_and_ignores_garbage() {
        let mut f = arp_request(
            [2, 0, 0, 0, 0, 9],
            Ipv4Addr::new(10, 0, 0, 9),
            Ipv4Addr::new(10, 0, 0, 1),
        );
        f[21] = 2;
        assert_eq!(
            arp_reply_sender(&f),
            Some(([2, 0, 0, 0, 0, 9], Ipv4Addr::new(10, 0, 0, 9)))
        );
        assert_eq!(arp_reply_sender(&f[..30]), None);
        assert_eq!(arp_reply_sender(&[]), None);
    }

    #[test]
    fn unsolicited_na_sets_override_and_the_target_link_layer_option() {
        let na = unsolicited_na([2, 0, 0, 0, 0, 1], "2001:db8::100".parse().unwrap());
        assert_eq!((na[0], na[1], na[4]), (136, 0, 0x20));
        assert_eq!(&na[24..32], &[2, 1, 2, 0, 0, 0, 0, 1]);
    }
}
