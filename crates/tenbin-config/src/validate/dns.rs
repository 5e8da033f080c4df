//! `[dns]` checks: every cross reference (regions, datacenters, zones) resolves, names and
//! record data have the syntax the DNS tier reads, bounds hold, and VIP checks can run. Each
//! error names the key it is about, e.g. `dns.gslb[0].pools[1].datacenter`.

use std::collections::HashSet;

use super::invalid::{Invalid, SectionError};
use super::pool::health;
use super::records::{full_name, in_zone, owner, record_data};
use crate::dns::DnsSection;
use crate::pool::{CheckKind, HealthCheck};

impl DnsSection {
    /// The checks `Config::parse` runs on `[dns]`, for a section built another way.
    pub fn validate(&self) -> Result<(), SectionError> {
        dns(self).map_err(SectionError::from)
    }
}

pub(crate) fn dns(s: &DnsSection) -> Result<(), Invalid> {
    if s.max_answers == 0 {
        return Err(Invalid::at("dns.max_answers", "must be at least 1"));
    }
    if s.edns_udp_max < 512 {
        return Err(Invalid::at("dns.edns_udp_max", "must be at least 512"));
    }
    if s.ttl.min > s.ttl.max {
        return Err(Invalid::at("dns.ttl.min", "must not exceed ttl.max"));
    }
    let dcs = unique(
        "datacenter",
        s.datacenters
            .iter()
            .enumerate()
            .map(|(i, d)| (format!("dns.datacenters[{i}].name"), d.name.as_str())),
    )?;
    let regions = unique(
        "region",
        s.regions
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("dns.regions[{i}].name"), r.name.as_str())),
    )?;
    for (i, r) in s.regions.iter().enumerate() {
        for (j, p) in r.prefer.iter().enumerate() {
            known(
                "datacenter",
                &dcs,
                p,
                format!("dns.regions[{i}].prefer[{j}]"),
            )?;
        }
    }
    for (i, n) in s.networks.iter().enumerate() {
        known(
            "region",
            &regions,
            &n.region,
            format!("dns.networks[{i}].region"),
        )?;
    }
    if let Some(r) = &s.default_region {
        known("region", &regions, r, "dns.default_region".into())?;
    }
    if let Some(g) = &s.geoip {
        for (value, r) in &g.regions {
            known("region", &regions, r, format!("dns.geoip.regions.{value}"))?;
        }
        let bad_path = |f: &String| f.is_empty() || f.split('.').any(str::is_empty);
        if g.fields.is_empty() || g.fields.iter().any(bad_path) {
            return Err(Invalid::at(
                "dns.geoip.fields",
                "dotted paths like country.iso_code, at least one",
            ));
        }
    }
    let origins = zones(s)?;
    gslb(s, &origins, &dcs)
}

/// Checks every zone; returns their full origins.
fn zones(s: &DnsSection) -> Result<Vec<String>, Invalid> {
    let mut origins = Vec::new();
    for (i, z) in s.zones.iter().enumerate() {
        let key = |k: &str| format!("dns.zones[{i}].{k}");
        let origin = full_name(&z.origin, None).map_err(|m| Invalid::at(key("origin"), m))?;
        full_name(&z.soa.mname, Some(&origin)).map_err(|m| Invalid::at(key("soa.mname"), m))?;
        full_name(&z.soa.rname, Some(&origin)).map_err(|m| Invalid::at(key("soa.rname"), m))?;
        for (j, r) in z.records.iter().enumerate() {
            let rk = |k: &str| key(&format!("records[{j}].{k}"));
            owner(&r.name, &origin).map_err(|m| Invalid::at(rk("name"), m))?;
            record_data(r.kind, &r.data, &origin).map_err(|why| {
                Invalid::at(
                    rk("data"),
                    format!("bad {:?} data `{}`: {why}", r.kind, r.data),
                )
            })?;
        }
        origins.push(origin);
    }
    let keyed = origins.iter().enumerate();
    unique(
        "zone",
        keyed.map(|(i, o)| (format!("dns.zones[{i}].origin"), o.as_str())),
    )?;
    Ok(origins)
}

fn gslb(s: &DnsSection, origins: &[String], dcs: &HashSet<String>) -> Result<(), Invalid> {
    let mut names = HashSet::new();
    for (i, g) in s.gslb.iter().enumerate() {
        let key = |k: &str| format!("dns.gslb[{i}].{k}");
        let name = full_name(&g.name, None).map_err(|m| Invalid::at(key("name"), m))?;
        if !origins.iter().any(|o| in_zone(&name, o)) {
            return Err(Invalid::at(
                key("name"),
                format!("`{}` is outside every zone", g.name),
            ));
        }
        if !names.insert(name.to_ascii_lowercase()) {
            return Err(Invalid::at(
                key("name"),
                format!("gslb name `{name}` is defined twice"),
            ));
        }
        if g.pools.is_empty() {
            return Err(Invalid::at(key("pools"), "needs at least one pool"));
        }
        if g.sticky_prefix_v4 > 32 {
            return Err(Invalid::at(
                key("sticky_prefix_v4"),
                "must be within 0..=32",
            ));
        }
        if g.sticky_prefix_v6 > 128 {
            return Err(Invalid::at(
                key("sticky_prefix_v6"),
                "must be within 0..=128",
            ));
        }
        if let Some(c) = &g.check {
            vip_check(c, &key("check"))?;
        }
        for (j, p) in g.pools.iter().enumerate() {
            let pk = |k: &str| key(&format!("pools[{j}].{k}"));
            known("datacenter", dcs, &p.datacenter, pk("datacenter"))?;
            if p.capacity.is_some_and(|c| !(c.is_finite() && c > 0.0)) {
                return Err(Invalid::at(pk("capacity"), "must be a positive number"));
            }
            if let Some(c) = &p.check {
                vip_check(c, &pk("check"))?;
            }
        }
    }
    Ok(())
}

/// A VIP check has the bounds of `[pool.health]`, and a port when it connects: a VIP has no
/// service port of its own.
fn vip_check(c: &HealthCheck, key: &str) -> Result<(), Invalid> {
    health(c, key)?;
    if c.kind != CheckKind::Icmp && c.port.is_none() {
        return Err(Invalid::at(
            format!("{key}.port"),
            "tcp and http checks of a VIP need a port",
        ));
    }
    Ok(())
}

/// The set of `names` (ASCII case-insensitive); an error at the key of the second of two.
fn unique<'a>(
    what: &str,
    names: impl Iterator<Item = (String, &'a str)>,
) -> Result<HashSet<String>, Invalid> {
    let mut seen = HashSet::new();
    for (key, n) in names {
        if !seen.insert(n.to_ascii_lowercase()) {
            return Err(Invalid::at(key, format!("{what} `{n}` is defined twice")));
        }
    }
    Ok(seen)
}

fn known(what: &str, set: &HashSet<String>, name: &str, key: String) -> Result<(), Invalid> {
    if set.contains(&name.to_ascii_lowercase()) {
        return Ok(());
    }
    let mut defined: Vec<_> = set.iter().map(String::as_str).collect();
    defined.sort_unstable();
    Err(Invalid::at(
        key,
        format!("undefined {what} `{name}`; defined: {}", defined.join(", ")),
    ))
}
