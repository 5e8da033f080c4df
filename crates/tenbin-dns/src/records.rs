//! What a zone's text means: owner names made absolute against the zone's origin (`@` is the
//! origin, a name without a final dot is relative), and presentation data (`192.0.2.1`,
//! `10 mail`, `0 5 443 host.`, `0 issue "ca.example"`) as hickory record data.
//!
//! tenbin-config checks the same text's syntax, so that a bad file is refused with its line and
//! key before it gets here; this module is where the text is interpreted.

use hickory_proto::rr::rdata::{A, AAAA, CNAME, MX, NS, NULL, SRV, TXT};
use hickory_proto::rr::{Name, RData, RecordType};
use tenbin_config::dns::{RecordConfig, RecordKind};

/// Text of a `[dns]` zone that is not a name or record data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("dns: `{0}` is not a domain name")]
    Name(String),
    #[error("dns: record `{name}` {kind:?}: bad data `{data}` ({why})")]
    Data {
        name: String,
        kind: RecordKind,
        data: String,
        why: &'static str,
    },
}

/// `name` made absolute: joined to `origin` unless it ends in a dot (`None`: at the root).
pub fn absolute(name: &str, origin: Option<&Name>) -> Result<Name, RecordError> {
    let bad = || RecordError::Name(name.to_string());
    let mut n = Name::from_ascii(name).map_err(|_| bad())?;
    match origin {
        _ if n.is_fqdn() => Ok(n),
        Some(o) => n.append_domain(o).map_err(|_| bad()),
        None => {
            n.set_fqdn(true);
            Ok(n)
        }
    }
}

/// A record's owner: `@` is the origin itself.
pub fn owner(name: &str, origin: &Name) -> Result<Name, RecordError> {
    match name {
        "@" => Ok(origin.clone()),
        n => absolute(n, Some(origin)),
    }
}

/// The record data `r.data` stands for, names taken relative to `origin`.
pub fn rdata(r: &RecordConfig, origin: &Name) -> Result<RData, RecordError> {
    let err = |why| RecordError::Data {
        name: r.name.clone(),
        kind: r.kind,
        data: r.data.clone(),
        why,
    };
    let d = r.data.trim();
    let f: Vec<&str> = d.split_whitespace().collect();
    let name = |s: &str| absolute(s, Some(origin)).map_err(|_| err("bad domain name"));
    let num = |s: &str| s.parse::<u16>().map_err(|_| err("bad number"));
    Ok(match r.kind {
        RecordKind::A => RData::A(A(d.parse().map_err(|_| err("not an IPv4 address"))?)),
        RecordKind::Aaaa => RData::AAAA(AAAA(d.parse().map_err(|_| err("not an IPv6 address"))?)),
        RecordKind::Cname => RData::CNAME(CNAME(name(d)?)),
        RecordKind::Ns => RData::NS(NS(name(d)?)),
        RecordKind::Mx => match f.as_slice() {
            [p, x] => RData::MX(MX::new(num(p)?, name(x)?)),
            _ => return Err(err("expected `preference exchange`")),
        },
        // The text as written, untrimmed: spaces may be part of it.
        RecordKind::Txt => RData::TXT(TXT::new(txt_chunks(&r.data))),
        RecordKind::Srv => match f.as_slice() {
            [p, w, port, t] => RData::SRV(SRV::new(num(p)?, num(w)?, num(port)?, name(t)?)),
            _ => return Err(err("expected `priority weight port target`")),
        },
        RecordKind::Caa => caa(d).ok_or_else(|| err("expected `flags tag \"value\"`"))?,
    })
}

/// RFC 8659 §4.1 wire form, kept opaque: flags, tag length, lower-case tag, value.
fn caa(d: &str) -> Option<RData> {
    let mut it = d.splitn(3, char::is_whitespace);
    let flags = it.next()?.parse::<u8>().ok()?;
    let tag = it.next().filter(|t| {
        !t.is_empty() && t.len() < 16 && t.bytes().all(|b| b.is_ascii_alphanumeric())
    })?;
    let value = it.next()?.trim().trim_matches('"');
    let mut b = vec![flags, tag.len() as u8];
    b.extend(tag.bytes().map(|c| c.to_ascii_lowercase()));
    b.extend_from_slice(value.as_bytes());
    Some(RData::Unknown {
        code: RecordType::CAA,
        rdata: NULL::with(b),
    })
}

/// TXT strings are at most 255 bytes each; split on character boundaries.
fn txt_chunks(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for c in s.chars() {
        if cur.len() + c.len_utf8() > 255 {
            out.push(std::mem::take(&mut cur));
        }
        cur.push(c);
    }
    out.push(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(kind: RecordKind, data: &str) -> RecordConfig {
        RecordConfig {
            name: "x".into(),
            kind,
            ttl: None,
            data: data.into(),
        }
    }

    fn n(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    #[test]
    fn names_are_relative_to_the_origin_unless_they_end_in_a_dot() {
        let origin = n("example.test.");
        assert_eq!(owner("@", &origin).unwrap(), origin);
        assert_eq!(owner("www", &origin).unwrap(), n("www.example.test."));
        assert_eq!(owner("www.other.", &origin).unwrap(), n("www.other."));
        assert_eq!(absolute("example.test", None).unwrap(), origin);
        assert!(absolute("example.test", None).unwrap().is_fqdn());
        assert!(absolute(&"a".repeat(64), None).is_err());
    }

    #[test]
    fn record_data_becomes_rdata() {
        let origin = n("example.test.");
        let mx = rdata(&record(RecordKind::Mx, "10 mail"), &origin).unwrap();
        assert_eq!(mx, RData::MX(MX::new(10, n("mail.example.test."))));
        let srv = rdata(&record(RecordKind::Srv, "0 5 5060 sip."), &origin).unwrap();
        assert_eq!(srv, RData::SRV(SRV::new(0, 5, 5060, n("sip."))));
        let RData::Unknown { rdata: caa, .. } =
            rdata(&record(RecordKind::Caa, "0 ISSUE \"ca.example\""), &origin).unwrap()
        else {
            panic!("CAA is kept opaque")
        };
        assert_eq!(caa.anything, b"\x00\x05issueca.example");
        assert!(matches!(
            rdata(&record(RecordKind::A, "not-an-ip"), &origin),
            Err(RecordError::Data {
                why: "not an IPv4 address",
                ..
            })
        ));
        assert_eq!(txt_chunks(&"x".repeat(600)).len(), 3);
    }
}
