//! Locality stage: the client's network → a region (network map, longest prefix; then the
//! optional MaxMind database) → datacenters in the region's order (configured preference, then
//! great-circle distance, then config order).

use crate::geoip::GeoIp;
use crate::netmap::PrefixMap;
use std::net::IpAddr;
use std::sync::Arc;
use tenbin_config::dns::{DnsSection, GeoPoint};

/// Datacenter preference per region plus the network map.
#[derive(Debug, Clone, Default)]
pub struct Locality {
    /// Datacenter names (lower case), indexed by datacenter id.
    pub datacenters: Vec<String>,
    /// For each region, datacenter ids best first (every datacenter appears once).
    orders: Vec<Vec<usize>>,
    networks: PrefixMap<usize>,
    default_region: Option<usize>,
    /// Resolver user-base table.
    users: PrefixMap<u64>,
    /// Consulted for clients the network map does not place.
    pub geoip: Option<Arc<GeoIp>>,
}

/// Where a client is and how far that conclusion reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Placement {
    pub region: Option<usize>,
    /// Shortest prefix around the client with the same region (the ECS scope).
    pub scope: u8,
}

impl Locality {
    /// Builds from a validated section.
    pub fn new(cfg: &DnsSection) -> Locality {
        let datacenters: Vec<String> = cfg
            .datacenters
            .iter()
            .map(|d| d.name.to_ascii_lowercase())
            .collect();
        let dc_id = |n: &str| {
            datacenters
                .iter()
                .position(|d| *d == n.to_ascii_lowercase())
        };
        let region_id = |n: &str| {
            cfg.regions
                .iter()
                .position(|r| r.name.eq_ignore_ascii_case(n))
        };
        let orders = cfg
            .regions
            .iter()
            .map(|r| {
                let mut order: Vec<usize> = r.prefer.iter().filter_map(|p| dc_id(p)).collect();
                let mut rest: Vec<usize> = (0..datacenters.len())
                    .filter(|i| !order.contains(i))
                    .collect();
                if let Some(here) = r.location {
                    // Stable sort: datacenters without a location keep config order, last.
                    rest.sort_by(|&a, &b| {
                        let da = cfg.datacenters[a].location.map(|l| distance_km(here, l));
                        let db = cfg.datacenters[b].location.map(|l| distance_km(here, l));
                        match (da, db) {
                            (Some(x), Some(y)) => x.total_cmp(&y),
                            (Some(_), None) => std::cmp::Ordering::Less,
                            (None, Some(_)) => std::cmp::Ordering::Greater,
                            (None, None) => std::cmp::Ordering::Equal,
                        }
                    });
                }
                order.extend(rest);
                order
            })
            .collect();
        Locality {
            orders,
            networks: PrefixMap::new(
                cfg.networks
                    .iter()
                    .filter_map(|n| region_id(&n.region).map(|r| (n.cidr, r))),
            ),
            default_region: cfg.default_region.as_deref().and_then(region_id),
            users: PrefixMap::new(cfg.resolvers.iter().map(|r| (r.cidr, r.users))),
            datacenters,
            geoip: None,
        }
    }

    /// Region of a client address, with the ECS scope of that conclusion: the network map
    /// first; for a client it does not hold, the database, whose network must then also be
    /// covered by the scope.
    pub fn place(&self, client: IpAddr) -> Placement {
        let scope = self.networks.scope(client);
        if let Some((r, _)) = self.networks.lookup(client) {
            return Placement {
                region: Some(*r),
                scope,
            };
        }
        let (region, scope) = match &self.geoip {
            Some(g) => {
                let (region, len) = g.place(client);
                (region, scope.max(len))
            }
            None => (None, scope),
        };
        Placement {
            region: region.or(self.default_region),
            scope,
        }
    }

    /// Region id of a configured region name.
    pub fn region_id(cfg: &DnsSection, name: &str) -> Option<usize> {
        cfg.regions
            .iter()
            .position(|r| r.name.eq_ignore_ascii_case(name))
    }

    /// Datacenter ids best first for a region (`None`: config order).
    pub fn order(&self, region: Option<usize>) -> Option<&[usize]> {
        region.and_then(|r| self.orders.get(r)).map(Vec::as_slice)
    }

    /// Estimated users behind a resolver (1 when not in the table).
    pub fn users(&self, resolver: IpAddr) -> f64 {
        self.users
            .lookup(resolver)
            .map(|(u, _)| (*u).max(1) as f64)
            .unwrap_or(1.0)
    }

    pub fn dc_id(&self, name: &str) -> Option<usize> {
        self.datacenters
            .iter()
            .position(|d| d.eq_ignore_ascii_case(name))
    }
}

/// Great-circle distance (haversine, spherical Earth).
pub fn distance_km(a: GeoPoint, b: GeoPoint) -> f64 {
    const R: f64 = 6371.0;
    let (la1, la2) = (a.lat.to_radians(), b.lat.to_radians());
    let dlat = la2 - la1;
    let dlon = (b.lon - a.lon).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * R * h.sqrt().clamp(0.0, 1.0).asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> DnsSection {
        toml::from_str(
            r#"
            default_region = "eu"
            [[datacenters]]
            name = "nrt"
            location = { lat = 35.76, lon = 140.39 }
            [[datacenters]]
            name = "fra"
            location = { lat = 50.03, lon = 8.57 }
            [[datacenters]]
            name = "iad"
            location = { lat = 38.95, lon = -77.45 }
            [[regions]]
            name = "eu"
            prefer = ["fra"]
            location = { lat = 51.5, lon = -0.12 }
            [[regions]]
            name = "asia"
            location = { lat = 37.5, lon = 127.0 }
            [[networks]]
            cidr = "10.0.0.0/8"
            region = "asia"
            [[resolvers]]
            cidr = "10.9.9.0/24"
            users = 5000
            "#,
        )
        .unwrap()
    }

    #[test]
    fn haversine_matches_known_distances() {
        let d = distance_km(
            GeoPoint {
                lat: 51.5,
                lon: -0.12,
            },
            GeoPoint {
                lat: 40.71,
                lon: -74.0,
            },
        );
        assert!((5550.0..5600.0).contains(&d), "London-New York {d}");
    }

    #[test]
    fn regions_order_by_preference_then_distance() {
        let l = Locality::new(&cfg());
        // eu: fra preferred, then London → iad (5.9k km) before nrt (9.6k km).
        assert_eq!(l.order(Some(0)).unwrap(), &[1, 2, 0]);
        // asia: Seoul → nrt, fra, iad.
        assert_eq!(l.order(Some(1)).unwrap(), &[0, 1, 2]);
    }

    #[test]
    fn clients_are_placed_by_network_or_default() {
        let l = Locality::new(&cfg());
        let p = l.place("10.2.3.4".parse().unwrap());
        assert_eq!((p.region, p.scope), (Some(1), 8));
        let p = l.place("192.0.2.1".parse().unwrap());
        assert_eq!((p.region, p.scope), (Some(0), 1));
        assert_eq!(l.users("10.9.9.53".parse().unwrap()), 5000.0);
        assert_eq!(l.users("10.9.8.53".parse().unwrap()), 1.0);
    }
}
