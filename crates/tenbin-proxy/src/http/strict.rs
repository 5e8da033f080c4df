//! Checks on a parsed request head that hyper's parser leaves to the proxy (RFC 9112 §3.2,
//! §6, RFC 9110 §9.3.6): Host, Transfer-Encoding across lines, the request line's length,
//! the declared body size and CONNECT.
//!
//! What hyper already refuses with its own 400 (found with raw-socket tests, see
//! `tests/http_strict.rs`): obs-fold, whitespace between a field name and its colon, CR, LF
//! or NUL in a value, an invalid Content-Length, several differing ones, Transfer-Encoding
//! whose last line does not end in `chunked`, and Transfer-Encoding on HTTP/1.0. With both
//! Transfer-Encoding and Content-Length, hyper removes Content-Length, frames by chunked and
//! closes the connection after the response (RFC 9112 §6.3 allows either that or 400).
//! Invalid chunks surface later, from the body (`body::GuardedBody`).

use http::{header, HeaderMap, Method, Request, Uri, Version};

use super::limits::HttpLimits;
use super::stats::Reject;

/// Whether a parsed request head may be forwarded, or which rule refuses it. The proxy calls
/// it before routing; it is public for the fuzz target and for other front ends.
pub fn check<B>(req: &Request<B>, limits: &HttpLimits) -> Result<(), Reject> {
    if req.method() == Method::CONNECT {
        return Err(Reject::Connect);
    }
    let line = request_line_len(req.method(), req.uri());
    if line > limits.max_request_line {
        return Err(Reject::RequestLine);
    }
    if line + header_bytes(req.headers()) > limits.max_header_bytes {
        return Err(Reject::HeaderTooLarge);
    }
    host(req.version(), req.uri(), req.headers())?;
    transfer_encoding(req.headers())?;
    if limits.max_body_bytes > 0 {
        if let Some(len) = req.headers().get(header::CONTENT_LENGTH) {
            let len: u64 = len
                .to_str()
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(u64::MAX);
            if len > limits.max_body_bytes {
                return Err(Reject::BodyTooLarge);
            }
        }
    }
    Ok(())
}

/// `METHOD SP target SP HTTP/1.1`, from the parsed parts.
fn request_line_len(method: &Method, uri: &Uri) -> usize {
    let path = uri.path_and_query().map_or(1, |p| p.as_str().len());
    let absolute = match (uri.scheme_str(), uri.authority()) {
        (Some(s), Some(a)) => s.len() + 3 + a.as_str().len(),
        (None, Some(a)) => a.as_str().len(),
        _ => 0,
    };
    method.as_str().len() + 1 + absolute + path + 1 + "HTTP/1.1".len()
}

/// The header block as it was on the wire (`name: value` CRLF each, the final CRLF), near
/// enough: hyper does not keep optional whitespace.
fn header_bytes(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum::<usize>()
        + 2
}

/// Exactly one Host on HTTP/1.1 (at most one otherwise), agreeing with the target's
/// authority when the target is in absolute form (or with HTTP/2's `:authority`).
fn host(version: Version, uri: &Uri, headers: &HeaderMap) -> Result<(), Reject> {
    let mut hosts = headers.get_all(header::HOST).iter();
    let first = hosts.next();
    if hosts.next().is_some() {
        return Err(Reject::Host);
    }
    if let Some(authority) = uri.authority() {
        if authority.as_str().contains('@') {
            return Err(Reject::Host);
        }
        return match first {
            Some(h) if !same_authority(uri, h.as_bytes()) => Err(Reject::Host),
            _ => Ok(()),
        };
    }
    match first {
        None if version == Version::HTTP_11 => Err(Reject::Host),
        Some(h) if h.is_empty() && version == Version::HTTP_11 => Err(Reject::Host),
        _ => Ok(()),
    }
}

/// Host names compare case-insensitively; the scheme's default port may be left out.
fn same_authority(uri: &Uri, host: &[u8]) -> bool {
    let Some(a) = uri.authority() else {
        return true;
    };
    let default = if uri.scheme_str() == Some("https") {
        443
    } else {
        80
    };
    let (name, port) = split_port(host);
    a.host().as_bytes().eq_ignore_ascii_case(name)
        && a.port_u16().unwrap_or(default) == port.unwrap_or(default)
}

/// `name[:port]`; an unreadable port is `Some(0)`, which no target carries.
fn split_port(host: &[u8]) -> (&[u8], Option<u16>) {
    let colon = host.iter().rposition(|b| *b == b':');
    let close = host.iter().rposition(|b| *b == b']');
    match colon {
        Some(c) if close.is_none_or(|b| c > b) => {
            let port = std::str::from_utf8(&host[c + 1..])
                .ok()
                .and_then(|p| p.parse().ok());
            (&host[..c], port.or(Some(0)))
        }
        _ => (host, None),
    }
}

/// Across every Transfer-Encoding line: `chunked` exactly once and last; any other coding
/// is one tenbin does not implement (501).
fn transfer_encoding(headers: &HeaderMap) -> Result<(), Reject> {
    let mut lines = headers.get_all(header::TRANSFER_ENCODING).iter().peekable();
    if lines.peek().is_none() {
        return Ok(());
    }
    let mut codings = 0;
    let mut chunked_at = None;
    let mut unknown = false;
    for line in lines {
        for coding in line.as_bytes().split(|b| *b == b',') {
            let coding = coding.trim_ascii();
            if coding.is_empty() {
                continue;
            }
            codings += 1;
            if coding.eq_ignore_ascii_case(b"chunked") {
                if chunked_at.is_some() {
                    return Err(Reject::Framing);
                }
                chunked_at = Some(codings);
            } else {
                unknown = true;
            }
        }
    }
    match chunked_at {
        Some(at) if at == codings && !unknown => Ok(()),
        Some(at) if at == codings => Err(Reject::UnknownCoding),
        _ => Err(Reject::Framing),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(target: &str, version: Version, headers: &[(&str, &str)]) -> Request<()> {
        let mut b = Request::get(target).version(version);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap()
    }

    fn check11(target: &str, headers: &[(&str, &str)]) -> Result<(), Reject> {
        check(
            &req(target, Version::HTTP_11, headers),
            &HttpLimits::default(),
        )
    }

    #[test]
    fn rfc9112_3_2_host() {
        assert_eq!(check11("/", &[("host", "a")]), Ok(()));
        assert_eq!(check11("/", &[]), Err(Reject::Host));
        assert_eq!(check11("/", &[("host", "")]), Err(Reject::Host));
        assert_eq!(
            check11("/", &[("host", "a"), ("host", "a")]),
            Err(Reject::Host)
        );
        let v10 = req("/", Version::HTTP_10, &[]);
        assert_eq!(check(&v10, &HttpLimits::default()), Ok(()));
        assert_eq!(check11("http://a/", &[("host", "a")]), Ok(()));
        assert_eq!(check11("http://A:80/", &[("host", "a")]), Ok(()));
        assert_eq!(check11("http://a/", &[("host", "a:80")]), Ok(()));
        assert_eq!(
            check11("http://a/", &[]),
            Ok(()),
            "the target names the host"
        );
        assert_eq!(check11("http://a/", &[("host", "b")]), Err(Reject::Host));
        assert_eq!(
            check11("http://a:8080/", &[("host", "a")]),
            Err(Reject::Host)
        );
        assert_eq!(
            check11("http://a/", &[("host", "a:8080")]),
            Err(Reject::Host)
        );
        assert_eq!(check11("http://u@a/", &[("host", "a")]), Err(Reject::Host));
        assert_eq!(check11("http://[::1]/", &[("host", "[::1]:80")]), Ok(()));
    }

    #[test]
    fn rfc9112_6_transfer_codings() {
        let te = |v: &[&str]| {
            let h: Vec<_> = v.iter().map(|v| ("transfer-encoding", *v)).collect();
            check11("/", &[&[("host", "a")], &h[..]].concat())
        };
        assert_eq!(te(&["chunked"]), Ok(()));
        assert_eq!(te(&["Chunked "]), Ok(()));
        assert_eq!(te(&["gzip, chunked"]), Err(Reject::UnknownCoding));
        assert_eq!(te(&["gzip", "chunked"]), Err(Reject::UnknownCoding));
        assert_eq!(te(&["chunked, chunked"]), Err(Reject::Framing));
        assert_eq!(te(&["chunked", "chunked"]), Err(Reject::Framing));
        assert_eq!(te(&["chunked", "gzip"]), Err(Reject::Framing));
        assert_eq!(te(&[","]), Err(Reject::Framing));
    }

    #[test]
    fn connect_request_line_and_declared_body() {
        let connect = Request::connect("a:443")
            .header("host", "a:443")
            .body(())
            .unwrap();
        assert_eq!(
            check(&connect, &HttpLimits::default()),
            Err(Reject::Connect)
        );
        let limits = HttpLimits {
            max_request_line: 30,
            max_body_bytes: 10,
            ..HttpLimits::default()
        };
        let at = |target: &str| check(&req(target, Version::HTTP_11, &[("host", "a")]), &limits);
        // "GET " + target + " HTTP/1.1" is 13 bytes around the target.
        assert_eq!(at(&format!("/{}", "a".repeat(16))), Ok(()));
        assert_eq!(
            at(&format!("/{}", "a".repeat(17))),
            Err(Reject::RequestLine)
        );
        let body = |n: &str| {
            check(
                &req(
                    "/",
                    Version::HTTP_11,
                    &[("host", "a"), ("content-length", n)],
                ),
                &limits,
            )
        };
        assert_eq!(body("10"), Ok(()));
        assert_eq!(body("11"), Err(Reject::BodyTooLarge));
        let small = HttpLimits {
            max_header_bytes: 40,
            ..HttpLimits::default()
        };
        // 14 (request line) + 9 (host) + 4 + len(x) + 2 (the blank line).
        let r = |v: &str| {
            check(
                &req("/", Version::HTTP_11, &[("host", "a"), ("x", v)]),
                &small,
            )
        };
        assert_eq!(r(&"v".repeat(10)), Ok(()));
        assert_eq!(r(&"v".repeat(11)), Err(Reject::HeaderTooLarge));
    }
}
