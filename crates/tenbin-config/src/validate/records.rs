//! The syntax of `[dns]` names and record data, checked without interpreting it: enough that a
//! file that validates only holds names and data the DNS tier can read, and that a mistake is
//! refused with its line. What the text means (names against an origin, record data as DNS
//! data) is the DNS tier's (`tenbin-dns`'s `records`).

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::dns::RecordKind;

/// Longest TXT data accepted, in bytes (split into 255-byte strings by the DNS tier).
const MAX_TXT: usize = 4000;

/// `name` joined to `origin` when it has no final dot (`None`: the root), for comparing names
/// across zones; labels as [`label_ok`] says, 255 bytes in all.
pub(crate) fn full_name(name: &str, origin: Option<&str>) -> Result<String, String> {
    let bad = || {
        format!(
            "`{name}` is not a domain name (labels of 1..=63 letters, digits, `_`, `-` but not \
             first, `*` only first; 255 bytes in all)"
        )
    };
    let full = match (name, origin) {
        (".", _) => ".".to_string(),
        (n, _) if n.ends_with('.') => n.to_string(),
        (n, Some(".") | None) => format!("{n}."),
        (n, Some(o)) => format!("{n}.{o}"),
    };
    if full.len() > 254 {
        return Err(bad());
    }
    let labels = full.strip_suffix('.').filter(|l| !l.is_empty());
    for label in labels.into_iter().flat_map(|l| l.split('.')) {
        if !label_ok(label) {
            return Err(bad());
        }
    }
    Ok(full)
}

/// The labels the DNS tier can load (hickory's `Name::from_ascii`): 1..=63 ASCII letters,
/// digits and `_`, with `-` anywhere but first and `*` only first. Checked here so that a name
/// the tier would refuse at start is refused with its file position instead (found by
/// fuzz/fuzz_targets/config.rs).
fn label_ok(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && label.bytes().enumerate().all(|(i, b)| {
            b.is_ascii_alphanumeric() || b == b'_' || (b == b'-' && i > 0) || (b == b'*' && i == 0)
        })
}

/// A record's owner: `@` is the origin itself.
pub(crate) fn owner(name: &str, origin: &str) -> Result<String, String> {
    match name {
        "@" => Ok(origin.to_string()),
        n => full_name(n, Some(origin)),
    }
}

/// Whether full `name` is at or below full `origin` (ASCII case-insensitive).
pub(crate) fn in_zone(name: &str, origin: &str) -> bool {
    let (n, o) = (name.to_ascii_lowercase(), origin.to_ascii_lowercase());
    o == "." || n == o || n.ends_with(&format!(".{o}"))
}

/// Whether `data` has the fields `kind` needs: addresses, numbers in range, names.
pub(crate) fn record_data(kind: RecordKind, data: &str, origin: &str) -> Result<(), &'static str> {
    let d = data.trim();
    let f: Vec<&str> = d.split_whitespace().collect();
    let name = |s: &str| {
        full_name(s, Some(origin))
            .map(drop)
            .map_err(|_| "bad domain name")
    };
    let num = |s: &str| s.parse::<u16>().map(drop).map_err(|_| "bad number");
    match kind {
        RecordKind::A => d
            .parse::<Ipv4Addr>()
            .map(drop)
            .map_err(|_| "not an IPv4 address"),
        RecordKind::Aaaa => d
            .parse::<Ipv6Addr>()
            .map(drop)
            .map_err(|_| "not an IPv6 address"),
        RecordKind::Cname | RecordKind::Ns => name(d),
        RecordKind::Mx => match f.as_slice() {
            [p, x] => num(p).and(name(x)),
            _ => Err("expected `preference exchange`"),
        },
        RecordKind::Txt if d.len() > MAX_TXT => Err("text longer than 4000 bytes"),
        RecordKind::Txt => Ok(()),
        RecordKind::Srv => match f.as_slice() {
            [p, w, port, t] => num(p).and(num(w)).and(num(port)).and(name(t)),
            _ => Err("expected `priority weight port target`"),
        },
        RecordKind::Caa => {
            let mut it = d.splitn(3, char::is_whitespace);
            let flags = it.next().is_some_and(|s| s.parse::<u8>().is_ok());
            let tag = it.next().is_some_and(|t| {
                !t.is_empty() && t.len() < 16 && t.bytes().all(|b| b.is_ascii_alphanumeric())
            });
            let value = it
                .next()
                .is_some_and(|v| v.trim().trim_matches('"').len() < 1024);
            (flags && tag && value)
                .then_some(())
                .ok_or("expected `flags tag \"value\"`")
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_the_dns_tier_cannot_load_are_refused_here() {
        // Found by fuzz/fuzz_targets/config.rs: `_sipҨudp` passed validation, then the DNS
        // engine refused it at start, without a file position.
        assert!(super::full_name("_sip\u{4a8}udp", Some("example.test.")).is_err());
        for bad in ["a b", "a\\.b", "-a", "a*", "a!b", "a..b", "caf\u{e9}"] {
            assert!(
                super::full_name(bad, Some("example.test.")).is_err(),
                "{bad}"
            );
        }
        for good in ["_sip._udp", "a-b", "*", "*.x", "xn--caf-dma", "A1", "a-"] {
            assert!(
                super::full_name(good, Some("example.test.")).is_ok(),
                "{good}"
            );
        }
    }

    use super::*;

    #[test]
    fn names_are_joined_to_their_origin_and_bounded() {
        assert_eq!(
            full_name("www", Some("example.test.")).unwrap(),
            "www.example.test."
        );
        assert_eq!(
            full_name("www.other.", Some("example.test.")).unwrap(),
            "www.other."
        );
        assert_eq!(full_name("example.test", None).unwrap(), "example.test.");
        assert_eq!(owner("@", "example.test.").unwrap(), "example.test.");
        assert!(full_name(&"a".repeat(64), None).is_err());
        assert!(full_name("a..b", None).is_err());
        assert!(full_name("a b", None).is_err());
        assert!(full_name(&format!("{}.", ["a"; 128].join(".")), None).is_err());
        assert!(in_zone("WWW.Example.test.", "example.TEST."));
        assert!(!in_zone("www.badexample.test.", "example.test."));
        assert!(in_zone("anything.", "."));
    }

    #[test]
    fn record_data_needs_the_fields_of_its_type() {
        let ok = |k, d| record_data(k, d, "example.test.");
        assert_eq!(ok(RecordKind::A, "192.0.2.1"), Ok(()));
        assert_eq!(ok(RecordKind::A, "2001:db8::1"), Err("not an IPv4 address"));
        assert_eq!(ok(RecordKind::Aaaa, "2001:db8::1"), Ok(()));
        assert_eq!(ok(RecordKind::Mx, "10 mail"), Ok(()));
        assert_eq!(
            ok(RecordKind::Mx, "mail"),
            Err("expected `preference exchange`")
        );
        assert_eq!(ok(RecordKind::Mx, "70000 mail"), Err("bad number"));
        assert_eq!(ok(RecordKind::Srv, "0 5 5060 sip."), Ok(()));
        assert_eq!(
            ok(RecordKind::Srv, "0 5 sip."),
            Err("expected `priority weight port target`")
        );
        assert_eq!(ok(RecordKind::Caa, "0 issue \"ca.example\""), Ok(()));
        assert!(ok(RecordKind::Caa, "0 is-sue \"ca\"").is_err());
        assert_eq!(ok(RecordKind::Cname, "a..b"), Err("bad domain name"));
        assert!(ok(RecordKind::Txt, &"x".repeat(4001)).is_err());
    }
}
