//! What the node asks to announce ([`Route`]) and the UPDATEs that bring a peer from what it
//! was sent to what is wanted now: withdrawals first, then announcements grouped by identical
//! attributes, each message well under the 4096-byte limit.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

use super::update::{Attributes, MpReach, MpUnreach, Origin, Segment, Update, AS_SEQUENCE};
use super::wire::{AFI_IPV6, SAFI_UNICAST};

/// The attributes a route carries besides those the session derives (AS_PATH, NEXT_HOP).
/// Every Mux of a pool must announce the same ones, or routers leave some out of ECMP.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct RouteAttrs {
    pub origin: Origin,
    pub med: Option<u32>,
    /// Sent to internal peers only (default 100 there).
    pub local_pref: Option<u32>,
    pub communities: Vec<u32>,
    pub large_communities: Vec<[u32; 3]>,
}

/// A prefix to announce and its attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub prefix: IpNet,
    pub attrs: RouteAttrs,
}

/// How this session announces: derived at Established from both OPENs and the local address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Announcer {
    pub local_as: u32,
    pub ibgp: bool,
    /// IPv4 unicast negotiated and a next hop known.
    pub v4: Option<Ipv4Addr>,
    pub v6: Option<Ipv6Addr>,
}

// Prefixes per message: 5 bytes (IPv4) or 17 (IPv6) each at most, so these stay below 2 KB
// and leave room for the attributes (config caps communities).
const V4_PER_MESSAGE: usize = 300;
const V6_PER_MESSAGE: usize = 100;

impl Announcer {
    /// Whether this session can carry `p` at all.
    pub fn carries(&self, p: &IpNet) -> bool {
        match p {
            IpNet::V4(_) => self.v4.is_some(),
            IpNet::V6(_) => self.v6.is_some(),
        }
    }

    fn attributes(&self, a: &RouteAttrs) -> Attributes {
        let as_path = if self.ibgp {
            Vec::new()
        } else {
            vec![Segment {
                kind: AS_SEQUENCE,
                asns: vec![self.local_as],
            }]
        };
        Attributes {
            origin: Some(a.origin),
            as_path: Some(as_path),
            med: a.med,
            local_pref: self.ibgp.then(|| a.local_pref.unwrap_or(100)),
            communities: a.communities.clone(),
            large_communities: a.large_communities.clone(),
            ..Attributes::default()
        }
    }

    /// UPDATEs taking the peer from `sent` to `wanted` (the carried part of it); `sent` is
    /// updated. Returns the messages and the prefixes announced and withdrawn.
    pub fn sync(
        &self,
        wanted: &BTreeMap<IpNet, RouteAttrs>,
        sent: &mut BTreeMap<IpNet, RouteAttrs>,
    ) -> (Vec<Update>, Vec<IpNet>, Vec<IpNet>) {
        let gone: Vec<IpNet> = sent
            .keys()
            .filter(|p| !wanted.contains_key(p) || !self.carries(p))
            .copied()
            .collect();
        let mut groups: BTreeMap<&RouteAttrs, Vec<IpNet>> = BTreeMap::new();
        for (p, a) in wanted {
            if self.carries(p) && sent.get(p) != Some(a) {
                groups.entry(a).or_default().push(*p);
            }
        }
        let mut out = Vec::new();
        let (w4, w6): (Vec<IpNet>, Vec<IpNet>) = gone.iter().partition(|p| p.addr().is_ipv4());
        for chunk in w4.chunks(V4_PER_MESSAGE) {
            out.push(Update {
                withdrawn: chunk.iter().filter_map(as_v4).collect(),
                ..Update::default()
            });
        }
        for chunk in w6.chunks(V6_PER_MESSAGE) {
            out.push(Update {
                attrs: Attributes {
                    mp_unreach: Some(MpUnreach {
                        afi: AFI_IPV6,
                        safi: SAFI_UNICAST,
                        withdrawn: chunk.to_vec(),
                    }),
                    ..Attributes::default()
                },
                ..Update::default()
            });
        }
        for p in &gone {
            sent.remove(p);
        }
        let mut announced = Vec::new();
        for (a, prefixes) in groups {
            let (p4, p6): (Vec<IpNet>, Vec<IpNet>) =
                prefixes.iter().partition(|p| p.addr().is_ipv4());
            for chunk in p4.chunks(V4_PER_MESSAGE) {
                let mut attrs = self.attributes(a);
                attrs.next_hop = self.v4;
                out.push(Update {
                    attrs,
                    nlri: chunk.iter().filter_map(as_v4).collect(),
                    ..Update::default()
                });
            }
            for chunk in p6.chunks(V6_PER_MESSAGE) {
                let mut attrs = self.attributes(a);
                attrs.mp_reach = Some(MpReach {
                    afi: AFI_IPV6,
                    safi: SAFI_UNICAST,
                    next_hop: self.v6.map(|a| a.octets().to_vec()).unwrap_or_default(),
                    nlri: chunk.to_vec(),
                });
                out.push(Update {
                    attrs,
                    ..Update::default()
                });
            }
            for p in prefixes {
                sent.insert(p, a.clone());
                announced.push(p);
            }
        }
        (out, announced, gone)
    }
}

fn as_v4(p: &IpNet) -> Option<ipnet::Ipv4Net> {
    match p {
        IpNet::V4(n) => Some(*n),
        IpNet::V6(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announcer(ibgp: bool) -> Announcer {
        Announcer {
            local_as: 65001,
            ibgp,
            v4: Some(Ipv4Addr::new(10, 0, 0, 2)),
            v6: Some("fd00::2".parse().unwrap()),
        }
    }

    #[test]
    fn groups_by_attributes_and_withdraws_what_left() {
        let mut wanted = BTreeMap::new();
        let a = RouteAttrs::default();
        let b = RouteAttrs {
            med: Some(10),
            ..RouteAttrs::default()
        };
        wanted.insert("10.0.0.1/32".parse().unwrap(), a.clone());
        wanted.insert("10.0.0.2/32".parse().unwrap(), a.clone());
        wanted.insert("fd00::1/128".parse().unwrap(), b.clone());
        let mut sent = BTreeMap::new();
        let (u, ann, gone) = announcer(false).sync(&wanted, &mut sent);
        assert_eq!((u.len(), ann.len(), gone.len()), (2, 3, 0));
        assert_eq!(u[0].nlri.len(), 2);
        assert_eq!(u[0].attrs.next_hop, Some(Ipv4Addr::new(10, 0, 0, 2)));
        assert_eq!(
            u[0].attrs.local_pref, None,
            "no LOCAL_PREF to external peers"
        );
        assert_eq!(u[1].attrs.mp_reach.as_ref().unwrap().nlri.len(), 1);
        // Nothing changed: nothing sent.
        assert!(announcer(false).sync(&wanted, &mut sent).0.is_empty());
        wanted.remove(&"fd00::1/128".parse().unwrap());
        let (u, _, gone) = announcer(false).sync(&wanted, &mut sent);
        assert_eq!(gone, vec!["fd00::1/128".parse::<IpNet>().unwrap()]);
        assert_eq!(u[0].attrs.mp_unreach.as_ref().unwrap().withdrawn.len(), 1);
    }

    #[test]
    fn internal_peers_get_local_pref_and_an_empty_path() {
        let mut wanted = BTreeMap::new();
        wanted.insert("10.0.0.1/32".parse().unwrap(), RouteAttrs::default());
        let (u, _, _) = announcer(true).sync(&wanted, &mut BTreeMap::new());
        assert_eq!(u[0].attrs.local_pref, Some(100));
        assert_eq!(u[0].attrs.as_path, Some(Vec::new()));
    }

    #[test]
    fn families_without_next_hop_are_not_carried() {
        let mut wanted = BTreeMap::new();
        wanted.insert("fd00::1/128".parse().unwrap(), RouteAttrs::default());
        let only4 = Announcer {
            v6: None,
            ..announcer(false)
        };
        let (u, ann, _) = only4.sync(&wanted, &mut BTreeMap::new());
        assert!(u.is_empty() && ann.is_empty());
    }
}
