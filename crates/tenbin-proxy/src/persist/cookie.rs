//! Reading and editing cookies in header maps (RFC 6265 syntax, leniently read).
//!
//! Requests carry `Cookie: a=1; b=2` (possibly split over several headers); responses carry one
//! `Set-Cookie: name=value; attr; attr=x` per cookie. Editing keeps every other cookie and
//! attribute byte for byte. Values we cannot re-encode as a header are left untouched.

use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderValue};

/// The value of the first cookie `name` in the request's `Cookie` headers.
pub fn request_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| unquote(v).to_owned())
}

/// Rewrites every `name=` pair of the request's `Cookie` headers: `edit` returns the new value
/// or `None` to drop the pair. Headers left empty are removed.
pub fn edit_request_cookie(
    headers: &mut HeaderMap,
    name: &str,
    mut edit: impl FnMut(&str) -> Option<String>,
) {
    let old: Vec<HeaderValue> = headers.get_all(COOKIE).iter().cloned().collect();
    if old.is_empty() {
        return;
    }
    let mut rebuilt = Vec::with_capacity(old.len());
    for value in old {
        let Ok(text) = value.to_str() else {
            rebuilt.push(value);
            continue;
        };
        let pairs: Vec<String> = text
            .split(';')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .filter_map(|pair| match pair.split_once('=') {
                Some((n, v)) if n == name => edit(unquote(v)).map(|nv| format!("{n}={nv}")),
                _ => Some(pair.to_owned()),
            })
            .collect();
        if pairs.is_empty() {
            continue;
        }
        match HeaderValue::from_str(&pairs.join("; ")) {
            Ok(v) => rebuilt.push(v),
            Err(_) => rebuilt.push(value),
        }
    }
    headers.remove(COOKIE);
    for v in rebuilt {
        headers.append(COOKIE, v);
    }
}

/// The value the response sets for cookie `name` (the last `Set-Cookie` for it wins).
pub fn response_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(split_set_cookie)
        .rfind(|(n, _, _)| *n == name)
        .map(|(_, v, _)| v.to_owned())
}

/// Rewrites the value of every `Set-Cookie` for `name`; `edit` gets the old value and returns
/// the new one (`None` keeps it). Attributes are kept. Returns whether anything changed.
pub fn edit_response_cookie(
    headers: &mut HeaderMap,
    name: &str,
    mut edit: impl FnMut(&str) -> Option<String>,
) -> bool {
    let mut changed = false;
    let http::header::Entry::Occupied(mut entry) = headers.entry(SET_COOKIE) else {
        return false;
    };
    for value in entry.iter_mut() {
        let Ok(text) = value.to_str() else { continue };
        let Some((n, v, rest)) = split_set_cookie(text) else {
            continue;
        };
        if n != name {
            continue;
        }
        let Some(nv) = edit(v) else { continue };
        if let Ok(new) = HeaderValue::from_str(&format!("{n}={nv}{rest}")) {
            *value = new;
            changed = true;
        }
    }
    changed
}

/// Attributes of a cookie tenbin sets itself.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetCookieAttrs {
    pub domain: Option<String>,
    pub httponly: bool,
    pub secure: bool,
    pub samesite: Option<&'static str>,
}

/// `name=value; Path=/` plus the configured attributes.
pub fn build_set_cookie(name: &str, value: &str, attrs: &SetCookieAttrs) -> Option<HeaderValue> {
    let mut s = format!("{name}={value}; Path=/");
    if let Some(d) = &attrs.domain {
        s.push_str("; Domain=");
        s.push_str(d);
    }
    if attrs.httponly {
        s.push_str("; HttpOnly");
    }
    if attrs.secure {
        s.push_str("; Secure");
    }
    if let Some(ss) = attrs.samesite {
        s.push_str("; SameSite=");
        s.push_str(ss);
    }
    HeaderValue::from_str(&s).ok()
}

/// `name=value; rest` → (name, value, "; rest" with its leading separator).
fn split_set_cookie(text: &str) -> Option<(&str, &str, &str)> {
    let (pair, rest_start) = match text.find(';') {
        Some(i) => (&text[..i], i),
        None => (text, text.len()),
    };
    let (n, v) = pair.split_once('=')?;
    Some((n.trim(), unquote(v.trim()), &text[rest_start..]))
}

fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(cookies: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for c in cookies {
            h.append(COOKIE, HeaderValue::from_str(c).unwrap());
        }
        h
    }

    #[test]
    fn reads_a_cookie_across_headers() {
        let h = req(&["a=1; SRV=\"s2\"", "b=3"]);
        assert_eq!(request_cookie(&h, "SRV").as_deref(), Some("s2"));
        assert_eq!(request_cookie(&h, "b").as_deref(), Some("3"));
        assert_eq!(request_cookie(&h, "c"), None);
    }

    #[test]
    fn strips_and_rewrites_request_pairs() {
        let mut h = req(&["a=1; SRV=s2; b=2", "SRV=x"]);
        edit_request_cookie(&mut h, "SRV", |_| None);
        let all: Vec<_> = h
            .get_all(COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(all, ["a=1; b=2"]);
        edit_request_cookie(&mut h, "b", |v| Some(format!("{v}{v}")));
        assert_eq!(h.get(COOKIE).unwrap(), "a=1; b=22");
    }

    #[test]
    fn set_cookie_values_are_read_and_rewritten_keeping_attributes() {
        let mut h = HeaderMap::new();
        h.append(
            SET_COOKIE,
            HeaderValue::from_static("JS=abc; Path=/app; HttpOnly"),
        );
        h.append(SET_COOKIE, HeaderValue::from_static("other=1"));
        assert_eq!(response_cookie(&h, "JS").as_deref(), Some("abc"));
        assert!(edit_response_cookie(&mut h, "JS", |v| Some(format!(
            "s1~{v}"
        ))));
        let first = h.get_all(SET_COOKIE).iter().next().unwrap().clone();
        assert_eq!(first, "JS=s1~abc; Path=/app; HttpOnly");
        assert!(!edit_response_cookie(&mut h, "missing", |_| Some(
            "x".into()
        )));
    }

    #[test]
    fn builds_attributes_in_order() {
        let attrs = SetCookieAttrs {
            domain: Some("example.test".into()),
            httponly: true,
            secure: true,
            samesite: Some("Lax"),
        };
        let v = build_set_cookie("SRV", "a", &attrs).unwrap();
        assert_eq!(
            v,
            "SRV=a; Path=/; Domain=example.test; HttpOnly; Secure; SameSite=Lax"
        );
        assert!(build_set_cookie("SRV", "bad\nvalue", &attrs).is_none());
    }

    #[test]
    fn malformed_input_is_ignored() {
        let h = req(&["garbage;;==;=x; SRV"]);
        assert_eq!(request_cookie(&h, "SRV"), None);
        assert_eq!(request_cookie(&h, "garbage"), None);
    }
}
