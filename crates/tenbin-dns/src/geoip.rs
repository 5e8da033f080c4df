//! The optional MaxMind-format locality source (`[dns.geoip]`): client address → database
//! record → region, consulted after the configured network map.
//!
//! The database is read whole when the configuration is compiled (a reload reads it again),
//! so the query path never touches the file system. A lookup yields the region and the prefix
//! length of the database network holding the client: inside that network every client gets
//! the same record, hence the same region, which is what the ECS scope needs.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use maxminddb::{PathElement, Reader};
use tenbin_config::dns::GeoIpConfig;

/// Why a database cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum GeoIpError {
    #[error("dns: geoip database {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("dns: geoip database {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: maxminddb::MaxMindDbError,
    },
}

/// An opened database with its field paths and value → region table.
pub struct GeoIp {
    reader: Reader<Vec<u8>>,
    /// Dotted paths, split into keys.
    fields: Vec<Vec<String>>,
    /// Field value, ASCII lower case → region id.
    regions: HashMap<String, usize>,
}

impl std::fmt::Debug for GeoIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeoIp")
            .field("database", &self.reader.metadata().database_type)
            .field("fields", &self.fields)
            .field("regions", &self.regions)
            .finish()
    }
}

impl GeoIp {
    /// Opens `cfg.db`; `region_id` resolves region names (unknown names are dropped, the config
    /// validation already refused them).
    pub fn open(
        cfg: &GeoIpConfig,
        region_id: impl Fn(&str) -> Option<usize>,
    ) -> Result<GeoIp, GeoIpError> {
        let bytes = std::fs::read(&cfg.db).map_err(|source| GeoIpError::Read {
            path: cfg.db.clone(),
            source,
        })?;
        Self::from_bytes(bytes, cfg, region_id).map_err(|e| open_error(&cfg.db, e))
    }

    /// [`GeoIp::open`] over bytes already in memory.
    pub fn from_bytes(
        bytes: Vec<u8>,
        cfg: &GeoIpConfig,
        region_id: impl Fn(&str) -> Option<usize>,
    ) -> Result<GeoIp, maxminddb::MaxMindDbError> {
        let reader = Reader::from_source(bytes)?;
        Ok(GeoIp {
            reader,
            fields: cfg
                .fields
                .iter()
                .map(|f| f.split('.').map(str::to_string).collect())
                .collect(),
            regions: cfg
                .regions
                .iter()
                .filter_map(|(v, r)| Some((v.to_ascii_lowercase(), region_id(r)?)))
                .collect(),
        })
    }

    /// The region the database gives `client` (if a field maps to one) and the prefix length
    /// over which that conclusion holds.
    pub fn place(&self, client: IpAddr) -> (Option<usize>, u8) {
        let full = if client.is_ipv4() { 32 } else { 128 };
        let Ok(hit) = self.reader.lookup(client) else {
            // A damaged database: claim nothing beyond this one address.
            return (None, full);
        };
        let scope = match hit.network() {
            Ok(net) if net.is_ipv4() == client.is_ipv4() => net.prefix(),
            // Matched above the IPv4 subtree: the same for every IPv4 address.
            Ok(_) => 0,
            Err(_) => full,
        };
        let region = self.fields.iter().find_map(|path| {
            let path: Vec<PathElement<'_>> = path.iter().map(|k| PathElement::Key(k)).collect();
            let value: String = hit.decode_path(&path).ok().flatten()?;
            self.regions.get(&value.to_ascii_lowercase()).copied()
        });
        (region, scope)
    }
}

fn open_error(path: &Path, source: maxminddb::MaxMindDbError) -> GeoIpError {
    GeoIpError::Open {
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn db() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/geoip-test.mmdb")
    }

    /// Regions: 0 = eu, 1 = asia.
    fn geoip(fields: &[&str], map: &[(&str, &str)]) -> GeoIp {
        let cfg = GeoIpConfig {
            db: db(),
            fields: fields.iter().map(|f| f.to_string()).collect(),
            regions: map
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
        };
        GeoIp::open(&cfg, |r| ["eu", "asia"].iter().position(|n| *n == r)).unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn country_then_continent_with_the_network_as_scope() {
        let g = geoip(
            &["country.iso_code", "continent.code"],
            &[("jp", "asia"), ("EU", "eu")],
        );
        assert_eq!(
            g.place(ip("127.0.4.9")),
            (Some(1), 24),
            "JP, case-insensitive"
        );
        assert_eq!(
            g.place(ip("127.0.6.1")),
            (Some(0), 24),
            "FR: by continent EU"
        );
        assert_eq!(
            g.place(ip("127.0.7.1")),
            (None, 24),
            "AQ/AN: mapped by nothing"
        );
        assert_eq!(g.place(ip("203.0.113.5")), (Some(0), 25));
        assert_eq!(g.place(ip("2001:db8:1::5")), (Some(1), 48));
        assert_eq!(g.place(ip("2001:db8:2:ffff::1")), (Some(0), 48));
        let (region, scope) = g.place(ip("192.0.2.1"));
        assert_eq!(region, None, "not in the database");
        assert!(
            (1..=32).contains(&scope),
            "an empty network still has an extent: {scope}"
        );
    }

    #[test]
    fn a_custom_field_maps_and_other_fields_are_ignored() {
        let g = geoip(&["pop"], &[("nrt", "asia"), ("JP", "eu")]);
        assert_eq!(g.place(ip("127.0.8.1")), (Some(1), 25));
        assert_eq!(g.place(ip("127.0.4.1")).0, None, "only `pop` is read");
    }

    #[test]
    fn a_missing_or_corrupt_database_is_an_error_not_a_panic() {
        let cfg = GeoIpConfig {
            db: db().with_file_name("absent.mmdb"),
            fields: vec!["country.iso_code".into()],
            regions: BTreeMap::new(),
        };
        let e = GeoIp::open(&cfg, |_| None).unwrap_err();
        assert!(e.to_string().contains("absent.mmdb"), "{e}");
        let bytes = std::fs::read(db()).unwrap();
        for junk in [Vec::new(), vec![0u8; 64], bytes[..bytes.len() / 2].to_vec()] {
            assert!(GeoIp::from_bytes(junk, &cfg, |_| None).is_err());
        }
    }
}
