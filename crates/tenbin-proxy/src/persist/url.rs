//! A session or server id carried in the URL, for clients without cookies (the seeds' mobile
//! case): a query parameter (`?sid=s1`) or a path parameter (`/cart;jsessionid=abc?x=1`).

use http::header::LOCATION;
use http::{HeaderMap, HeaderValue, Uri};

/// The value of parameter `name` in `uri`: the `;name=` path parameter first (servlet style),
/// then the query.
pub fn param(uri: &Uri, name: &str) -> Option<String> {
    let path = uri.path();
    for seg in path.split('/') {
        for p in seg.split(';').skip(1) {
            if let Some((n, v)) = p.split_once('=') {
                if n == name && !v.is_empty() {
                    return Some(v.to_owned());
                }
            }
        }
    }
    query_param(uri.query()?, name)
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(n, v)| *n == name && !v.is_empty())
        .map(|(_, v)| v.to_owned())
}

/// Appends `name=value` to the `Location` of a redirect that does not carry the parameter yet,
/// so a cookie-less client keeps its server across the redirect. Returns whether it did.
pub fn append_to_redirect(headers: &mut HeaderMap, name: &str, value: &str) -> bool {
    let Some(loc) = headers.get(LOCATION).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let (before_frag, frag) = match loc.find('#') {
        Some(i) => (&loc[..i], &loc[i..]),
        None => (loc, ""),
    };
    let present = before_frag
        .split(['?', '&', ';'])
        .skip(1)
        .any(|kv| kv.split_once('=').is_some_and(|(n, _)| n == name));
    if present {
        return false;
    }
    let sep = if before_frag.contains('?') { '&' } else { '?' };
    let new = format!("{before_frag}{sep}{name}={value}{frag}");
    match HeaderValue::from_str(&new) {
        Ok(v) => {
            headers.insert(LOCATION, v);
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_parameter_wins_over_query() {
        let uri: Uri = "/shop/cart;jsessionid=abc123?jsessionid=zzz&x=1"
            .parse()
            .unwrap();
        assert_eq!(param(&uri, "jsessionid").as_deref(), Some("abc123"));
        let uri: Uri = "/shop?x=1&sid=s2".parse().unwrap();
        assert_eq!(param(&uri, "sid").as_deref(), Some("s2"));
        assert_eq!(param(&uri, "nope"), None);
        let uri: Uri = "/a;sid=?sid=".parse().unwrap();
        assert_eq!(param(&uri, "sid"), None);
    }

    #[test]
    fn redirects_gain_the_parameter_once() {
        let mut h = HeaderMap::new();
        h.insert(LOCATION, HeaderValue::from_static("/next?a=1#top"));
        assert!(append_to_redirect(&mut h, "sid", "s1"));
        assert_eq!(h.get(LOCATION).unwrap(), "/next?a=1&sid=s1#top");
        assert!(!append_to_redirect(&mut h, "sid", "s2"));
        h.insert(LOCATION, HeaderValue::from_static("http://x.test/p"));
        assert!(append_to_redirect(&mut h, "sid", "s1"));
        assert_eq!(h.get(LOCATION).unwrap(), "http://x.test/p?sid=s1");
        assert!(!append_to_redirect(&mut HeaderMap::new(), "sid", "s1"));
    }
}
