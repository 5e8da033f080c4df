//! Header handling on the way through: hop-by-hop stripping, forwarding headers
//! (X-Forwarded-* and RFC 7239 `Forwarded`) and configured add/set/delete rules.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};

/// Which forwarding headers the proxy adds to requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ForwardedMode {
    #[default]
    XForwarded,
    Rfc7239,
    Both,
    None,
}

/// Configured header edits for one direction, applied in the order delete, set, add.
#[derive(Clone, Debug, Default)]
pub struct HeaderRules {
    /// Replace every value of the header with this one.
    pub set: Vec<(HeaderName, HeaderValue)>,
    /// Append one more value.
    pub add: Vec<(HeaderName, HeaderValue)>,
    pub delete: Vec<HeaderName>,
}

/// Why a configured header rule is not usable.
#[derive(Debug, thiserror::Error)]
pub enum HeaderRuleError {
    #[error("bad header name {0:?}")]
    Name(String),
    #[error("bad value for header {0:?}")]
    Value(String),
}

impl HeaderRules {
    /// Builds rules from plain strings (as configuration carries them).
    pub fn from_strings<'a>(
        set: impl IntoIterator<Item = (&'a str, &'a str)>,
        add: impl IntoIterator<Item = (&'a str, &'a str)>,
        delete: impl IntoIterator<Item = &'a str>,
    ) -> Result<HeaderRules, HeaderRuleError> {
        let pair = |(n, v): (&str, &str)| {
            let name = HeaderName::from_bytes(n.as_bytes())
                .map_err(|_| HeaderRuleError::Name(n.into()))?;
            let value = HeaderValue::from_str(v).map_err(|_| HeaderRuleError::Value(n.into()))?;
            Ok((name, value))
        };
        Ok(HeaderRules {
            set: set.into_iter().map(pair).collect::<Result<_, _>>()?,
            add: add.into_iter().map(pair).collect::<Result<_, _>>()?,
            delete: delete
                .into_iter()
                .map(|n| {
                    HeaderName::from_bytes(n.as_bytes())
                        .map_err(|_| HeaderRuleError::Name(n.into()))
                })
                .collect::<Result<_, _>>()?,
        })
    }

    pub fn apply(&self, headers: &mut HeaderMap) {
        for name in &self.delete {
            headers.remove(name);
        }
        for (name, value) in &self.set {
            headers.insert(name.clone(), value.clone());
        }
        for (name, value) in &self.add {
            headers.append(name.clone(), value.clone());
        }
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.add.is_empty() && self.delete.is_empty()
    }
}

/// Headers that describe one connection and must not be forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("proxy-connection"),
    HeaderName::from_static("keep-alive"),
    header::TE,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// Whether a raw field name (any case) is one of [`HOP_BY_HOP`]; for parsers that see
/// names before they become a `HeaderMap` (`upstream::wire`).
pub fn is_hop_by_hop(name: &[u8]) -> bool {
    HOP_BY_HOP
        .iter()
        .any(|h| h.as_str().as_bytes().eq_ignore_ascii_case(name))
}

/// Removes hop-by-hop headers, including every header the `Connection` header names. When
/// `keep_upgrade` is set (a tunnelled Upgrade exchange), `Upgrade` and `Connection: upgrade`
/// survive so the next hop sees the same request.
pub fn strip_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    // Many messages carry none of them: one pass over the names they have is cheaper than
    // hashing every hop-by-hop name to remove it.
    if !keep_upgrade && !headers.keys().any(|k| HOP_BY_HOP.contains(k)) {
        return;
    }
    // Names listed in Connection are few; collect them before editing the map.
    let mut listed: Vec<HeaderName> = Vec::new();
    for value in headers.get_all(header::CONNECTION) {
        let Ok(s) = value.to_str() else { continue };
        for token in s.split(',') {
            let token = token.trim();
            if token.is_empty() || (keep_upgrade && token.eq_ignore_ascii_case("upgrade")) {
                continue;
            }
            if let Ok(name) = HeaderName::from_bytes(token.as_bytes()) {
                listed.push(name);
            }
        }
    }
    for name in listed {
        headers.remove(name);
    }
    for name in &HOP_BY_HOP {
        if keep_upgrade && (name == header::UPGRADE || name == header::CONNECTION) {
            continue;
        }
        headers.remove(name);
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    }
}

/// Whether a comma-separated field value (`Connection`'s) lists `token`, in any case.
pub fn lists_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|b| *b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// Whether a request asks to switch protocols (`Connection: upgrade` and an `Upgrade` header).
pub fn wants_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .any(|v| lists_token(v.as_bytes(), b"upgrade"))
}

/// Adds the configured forwarding headers for a request from `client` that arrived over
/// `proto` ("http" or "https") with the given original host.
pub fn add_forwarded(
    headers: &mut HeaderMap,
    mode: ForwardedMode,
    client: SocketAddr,
    proto: &'static str,
    host: Option<&str>,
) {
    let ip = client.ip().to_canonical();
    if matches!(mode, ForwardedMode::XForwarded | ForwardedMode::Both) {
        let xff = HeaderName::from_static("x-forwarded-for");
        let joined = append_ip(headers, &xff, ip);
        // The string's buffer becomes the value: no second copy.
        if let Ok(v) = HeaderValue::from_maybe_shared(Bytes::from(joined)) {
            headers.insert(xff, v);
        }
        headers.insert(
            HeaderName::from_static("x-forwarded-proto"),
            HeaderValue::from_static(proto),
        );
        if let Some(v) = host.and_then(|h| HeaderValue::from_str(h).ok()) {
            headers.insert(HeaderName::from_static("x-forwarded-host"), v);
        }
    }
    if matches!(mode, ForwardedMode::Rfc7239 | ForwardedMode::Both) {
        let mut element = format!("for={};proto={proto}", forwarded_node(ip));
        if let Some(h) = host {
            // host is a token only if it has no characters needing quotes; quote always.
            element.push_str(&format!(";host=\"{}\"", h.replace(['"', '\\'], "")));
        }
        let joined = append_element(headers, &header::FORWARDED, element);
        if let Ok(v) = HeaderValue::from_str(&joined) {
            headers.insert(header::FORWARDED, v);
        }
    }
}

/// Every earlier hop's value of a list header (all its lines, in order), then ours.
/// `ours` is formatted straight into the result (one allocation a header).
fn append_element(headers: &HeaderMap, name: &HeaderName, ours: impl std::fmt::Display) -> String {
    let mut out = earlier(headers, name);
    let _ = write!(out, "{ours}");
    out
}

/// [`append_element`] for a client address: IPv4 written octet by octet (`Display` for
/// addresses goes through the formatter's padding machinery, which showed in profiles).
fn append_ip(headers: &HeaderMap, name: &HeaderName, ip: IpAddr) -> String {
    let IpAddr::V4(v4) = ip else {
        return append_element(headers, name, ip);
    };
    let mut out = earlier(headers, name);
    let mut digits = itoa::Buffer::new();
    for (i, octet) in v4.octets().into_iter().enumerate() {
        if i > 0 {
            out.push('.');
        }
        out.push_str(digits.format(octet));
    }
    out
}

fn earlier(headers: &HeaderMap, name: &HeaderName) -> String {
    let mut out = String::with_capacity(48);
    for prev in headers.get_all(name).iter().filter_map(|v| v.to_str().ok()) {
        out.push_str(prev);
        out.push_str(", ");
    }
    out
}

/// RFC 7239 §6: IPv6 addresses are bracketed and, containing ':', quoted.
fn forwarded_node(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("\"[{v6}]\""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn hop_by_hop_and_connection_listed_headers_go() {
        let mut h = map(&[
            ("connection", "keep-alive, X-Secret"),
            ("keep-alive", "timeout=5"),
            ("x-secret", "1"),
            ("te", "trailers"),
            ("x-kept", "yes"),
        ]);
        strip_hop_by_hop(&mut h, false);
        assert_eq!(h.len(), 1);
        assert_eq!(h["x-kept"], "yes");
    }

    #[test]
    fn upgrade_survives_when_tunnelling() {
        let mut h = map(&[
            ("connection", "Upgrade, x-a"),
            ("upgrade", "websocket"),
            ("x-a", "1"),
        ]);
        assert!(wants_upgrade(&h));
        strip_hop_by_hop(&mut h, true);
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["connection"], "upgrade");
        assert!(!h.contains_key("x-a"));
    }

    #[test]
    fn x_forwarded_appends_to_an_existing_chain() {
        let mut h = map(&[
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-for", "198.51.100.1, 192.0.2.3"),
        ]);
        let client: SocketAddr = "127.0.0.7:5000".parse().unwrap();
        add_forwarded(
            &mut h,
            ForwardedMode::XForwarded,
            client,
            "http",
            Some("a.test"),
        );
        assert_eq!(
            h.get_all("x-forwarded-for").iter().collect::<Vec<_>>(),
            ["203.0.113.9, 198.51.100.1, 192.0.2.3, 127.0.0.7"]
        );
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["x-forwarded-host"], "a.test");
        assert!(!h.contains_key("forwarded"));
    }

    #[test]
    fn rfc7239_quotes_ipv6_and_none_adds_nothing() {
        let mut h = HeaderMap::new();
        let client: SocketAddr = "[::1]:5000".parse().unwrap();
        add_forwarded(
            &mut h,
            ForwardedMode::Rfc7239,
            client,
            "http",
            Some("a.test"),
        );
        assert_eq!(h["forwarded"], "for=\"[::1]\";proto=http;host=\"a.test\"");
        assert!(!h.contains_key("x-forwarded-for"));
        let mut h = HeaderMap::new();
        add_forwarded(&mut h, ForwardedMode::None, client, "http", None);
        assert!(h.is_empty());
    }

    #[test]
    fn rules_delete_then_set_then_add() {
        let rules = HeaderRules::from_strings(
            [("x-via", "tenbin")],
            [("x-tag", "b")],
            ["x-debug", "x-tag"],
        )
        .unwrap();
        let mut h = map(&[
            ("x-debug", "1"),
            ("x-via", "old"),
            ("x-via", "old2"),
            ("x-tag", "a"),
        ]);
        rules.apply(&mut h);
        assert!(!h.contains_key("x-debug"));
        assert_eq!(h.get_all("x-via").iter().count(), 1);
        assert_eq!(h["x-via"], "tenbin");
        assert_eq!(h.get_all("x-tag").iter().collect::<Vec<_>>(), ["b"]);
        assert!(HeaderRules::from_strings([("bad name", "v")], [], []).is_err());
    }
}
