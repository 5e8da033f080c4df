//! Authoritative zone data compiled from config into hickory records, looked up
//! case-insensitively, with empty non-terminals so NODATA and NXDOMAIN are told apart.

use crate::fasthash::FastMap;
use crate::records::{self, absolute, RecordError};
use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{LowerName, Name, RData, Record, RecordType};
use tenbin_config::dns::DnsSection;

/// Why a zone could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZoneError {
    #[error("dns config: {0}")]
    Config(#[from] tenbin_config::SectionError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("dns: `{0}` has a CNAME and other data (RFC 1034 §3.6.2)")]
    CnameAndOther(String),
    /// The `[dns.geoip]` database cannot be read (the message names the file and the cause).
    #[error("{0}")]
    GeoIp(String),
}

/// The data at one owner name.
#[derive(Debug, Clone, Default)]
pub struct Node {
    pub rrsets: Vec<(RecordType, Vec<Record>)>,
    /// Index into the compiled GSLB names.
    pub gslb: Option<usize>,
}

impl Node {
    pub fn rrset(&self, t: RecordType) -> Option<&[Record]> {
        self.rrsets
            .iter()
            .find(|(k, _)| *k == t)
            .map(|(_, v)| v.as_slice())
    }
}

/// One zone: its apex SOA and its nodes.
#[derive(Debug, Clone)]
pub struct Zone {
    pub origin: LowerName,
    pub soa: Record,
    pub nodes: FastMap<LowerName, Node>,
}

/// Every zone served.
#[derive(Debug, Clone, Default)]
pub struct Zones {
    zones: Vec<Zone>,
}

/// Where a name falls.
#[derive(Debug)]
pub enum Lookup<'a> {
    /// Not in any zone of ours.
    Refused,
    /// The zone has no such name (nor anything below it).
    NxDomain(&'a Zone),
    Found(&'a Zone, &'a Node),
}

impl Zones {
    /// Compiles the zones and hangs the GSLB names (by index) on their nodes.
    pub fn new(cfg: &DnsSection) -> Result<Zones, ZoneError> {
        cfg.validate()?;
        let mut zones = Vec::new();
        for z in &cfg.zones {
            let origin = absolute(&z.origin, None)?;
            let soa_cfg = &z.soa;
            let soa = SOA::new(
                absolute(&soa_cfg.mname, Some(&origin))?,
                absolute(&soa_cfg.rname, Some(&origin))?,
                soa_cfg.serial,
                soa_cfg.refresh as i32,
                soa_cfg.retry as i32,
                soa_cfg.expire as i32,
                soa_cfg.minimum,
            );
            let soa = Record::from_rdata(origin.clone(), z.ttl, RData::SOA(soa));
            let mut zone = Zone {
                origin: LowerName::from(&origin),
                soa: soa.clone(),
                nodes: FastMap::default(),
            };
            zone.add(soa);
            for r in &z.records {
                let owner = records::owner(&r.name, &origin)?;
                let data = records::rdata(r, &origin)?;
                zone.add(Record::from_rdata(owner, r.ttl.unwrap_or(z.ttl), data));
            }
            zones.push(zone);
        }
        let mut zs = Zones { zones };
        for (i, g) in cfg.gslb.iter().enumerate() {
            let n = absolute(&g.name, None)?;
            let lower = LowerName::from(&n);
            if let Some(z) = zs.zone_mut(&lower) {
                z.touch(&n).gslb = Some(i);
            }
        }
        for z in &zs.zones {
            for (owner, node) in &z.nodes {
                let has_cname = node.rrset(RecordType::CNAME).is_some();
                if has_cname && (node.rrsets.len() > 1 || node.gslb.is_some()) {
                    return Err(ZoneError::CnameAndOther(owner.to_string()));
                }
            }
        }
        Ok(zs)
    }

    fn zone_mut(&mut self, n: &LowerName) -> Option<&mut Zone> {
        let i = self.zone_index(n)?;
        Some(&mut self.zones[i])
    }

    fn zone_index(&self, n: &LowerName) -> Option<usize> {
        self.zones
            .iter()
            .enumerate()
            .filter(|(_, z)| z.origin.zone_of(n))
            .max_by_key(|(_, z)| z.origin.num_labels())
            .map(|(i, _)| i)
    }

    /// Every name a query reaches as a GSLB name, with its GSLB id.
    pub fn gslb_names(&self) -> Vec<(LowerName, usize)> {
        self.zones
            .iter()
            .flat_map(|z| z.nodes.iter())
            .filter_map(|(n, node)| Some((n.clone(), node.gslb?)))
            .filter(|(n, id)| {
                matches!(self.lookup(n), Lookup::Found(_, node) if node.gslb == Some(*id))
            })
            .collect()
    }

    /// Finds the zone and node for `qname`.
    pub fn lookup(&self, qname: &LowerName) -> Lookup<'_> {
        let Some(i) = self.zone_index(qname) else {
            return Lookup::Refused;
        };
        let z = &self.zones[i];
        match z.nodes.get(qname) {
            Some(node) => Lookup::Found(z, node),
            None => Lookup::NxDomain(z),
        }
    }
}

impl Zone {
    /// The node at `owner`, creating it and the empty non-terminals above it.
    fn touch(&mut self, owner: &Name) -> &mut Node {
        let mut up = owner.base_name();
        while up.num_labels() > self.origin.num_labels() {
            self.nodes.entry(LowerName::from(&up)).or_default();
            up = up.base_name();
        }
        self.nodes.entry(LowerName::from(owner)).or_default()
    }

    fn add(&mut self, r: Record) {
        let t = r.record_type();
        let node = self.touch(&r.name.clone());
        match node.rrsets.iter_mut().find(|(k, _)| *k == t) {
            Some((_, set)) => {
                // An RRset's TTLs must agree (RFC 2181 §5.2): the first one sets it.
                let mut r = r;
                r.ttl = set[0].ttl;
                if !set.iter().any(|x| x.data == r.data) {
                    set.push(r);
                }
            }
            None => node.rrsets.push((t, vec![r])),
        }
    }

    /// The SOA for the authority section of a negative answer: TTL is min(SOA TTL, minimum)
    /// per RFC 2308 §3.
    pub fn negative_soa(&self) -> Record {
        let mut soa = self.soa.clone();
        if let RData::SOA(s) = &soa.data {
            soa.ttl = soa.ttl.min(s.minimum);
        }
        soa
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zones() -> Zones {
        let cfg: DnsSection = toml::from_str(
            r#"
            [[datacenters]]
            name = "fra"
            [[zones]]
            origin = "Example.TEST."
            soa = { mname = "ns1", rname = "hostmaster", minimum = 30 }
            records = [
              { name = "@", type = "NS", data = "ns1" },
              { name = "ns1", type = "A", data = "192.0.2.53" },
              { name = "ns1", type = "A", data = "192.0.2.54", ttl = 5 },
              { name = "a.b.c", type = "TXT", data = "deep" },
              { name = "alias", type = "CNAME", data = "ns1" },
              { name = "@", type = "CAA", data = "0 issue \"ca.example\"" },
            ]
            [[gslb]]
            name = "www.example.test."
            pools = [ { datacenter = "fra", addresses = ["192.0.2.1"] } ]
            "#,
        )
        .unwrap();
        Zones::new(&cfg).unwrap()
    }

    fn q(s: &str) -> LowerName {
        LowerName::from(&Name::from_ascii(s).unwrap())
    }

    #[test]
    fn lookups_distinguish_refused_nxdomain_and_empty_non_terminals() {
        let z = zones();
        assert!(matches!(z.lookup(&q("other.test.")), Lookup::Refused));
        assert!(matches!(
            z.lookup(&q("nope.example.test.")),
            Lookup::NxDomain(_)
        ));
        match z.lookup(&q("B.C.example.test.")) {
            Lookup::Found(_, n) => assert!(n.rrsets.is_empty() && n.gslb.is_none()),
            other => panic!("{other:?}"),
        }
        match z.lookup(&q("WWW.example.test.")) {
            Lookup::Found(_, n) => assert_eq!(n.gslb, Some(0)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rrsets_merge_with_one_ttl_and_caa_is_wire_form() {
        let z = zones();
        let Lookup::Found(zone, n) = z.lookup(&q("ns1.example.test.")) else {
            panic!()
        };
        let a = n.rrset(RecordType::A).unwrap();
        assert_eq!(a.len(), 2);
        assert!(a.iter().all(|r| r.ttl == 300));
        assert_eq!(zone.negative_soa().ttl, 30);
        let Lookup::Found(_, apex) = z.lookup(&q("example.test.")) else {
            panic!()
        };
        let caa = &apex.rrset(RecordType::CAA).unwrap()[0];
        let RData::Unknown { rdata, .. } = &caa.data else {
            panic!()
        };
        assert_eq!(&rdata.anything[..7], b"\x00\x05issue");
    }

    #[test]
    fn cname_beside_other_data_is_rejected() {
        let mut cfg: DnsSection = toml::from_str(
            r#"
            [[zones]]
            origin = "example.test."
            soa = { mname = "ns1", rname = "hostmaster" }
            records = [
              { name = "x", type = "CNAME", data = "y" },
              { name = "x", type = "A", data = "192.0.2.1" },
            ]
            "#,
        )
        .unwrap();
        assert!(matches!(Zones::new(&cfg), Err(ZoneError::CnameAndOther(_))));
        cfg.zones[0].records.pop();
        assert!(Zones::new(&cfg).is_ok());
    }
}
