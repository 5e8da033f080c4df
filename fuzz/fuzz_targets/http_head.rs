//! Arbitrary bytes parsed as a request head (httparse, the parser hyper uses), then through
//! tenbin's strict head checks. Nothing may panic, and what is accepted must keep the
//! promises `tenbin_proxy::http::strict` makes.
#![no_main]

use http::{header, Method, Request, Version};
use libfuzzer_sys::fuzz_target;
use tenbin_proxy::http::{check_head, HttpLimits};

fuzz_target!(|data: &[u8]| {
    let mut headers = [httparse::EMPTY_HEADER; 128];
    let mut parsed = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(_)) = parsed.parse(data) else {
        return;
    };
    let (Some(method), Some(path), Some(v)) = (parsed.method, parsed.path, parsed.version) else {
        return;
    };
    let version = if v == 1 { Version::HTTP_11 } else { Version::HTTP_10 };
    let mut b = Request::builder().method(method).uri(path).version(version);
    for h in parsed.headers.iter() {
        b = b.header(h.name, h.value);
    }
    let Ok(req) = b.body(()) else {
        return;
    };
    let limits = HttpLimits::default();
    if check_head(&req, &limits).is_err() {
        return;
    }
    assert_ne!(req.method(), Method::CONNECT);
    let hosts = req.headers().get_all(header::HOST).iter().count();
    assert!(hosts <= 1);
    if version == Version::HTTP_11 && req.uri().authority().is_none() {
        assert_eq!(hosts, 1);
    }
    let codings: Vec<Vec<u8>> = req
        .headers()
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b',').map(|c| c.trim_ascii().to_vec()))
        .filter(|c| !c.is_empty())
        .collect();
    if !codings.is_empty() {
        assert_eq!(codings.len(), 1);
        assert!(codings[0].eq_ignore_ascii_case(b"chunked"));
    }
});
