//! Fuzz the client side's plain HTTP/1.1 head reader (`tenbin_proxy::http::read_plain_head`),
//! which serves bodiless requests without hyper and hands everything else to hyper.
//! Invariants: no panic; a head it refuses or that is incomplete leaves the buffer exactly
//! as it was (hyper must see every byte); a head it serves is what httparse reads at the
//! front of the input (method, target, every field and value, in order), is HTTP/1.1, not
//! CONNECT, has no Content-Length, Transfer-Encoding, Upgrade or Expect field, and leaves
//! exactly the bytes after it (an origin-form target reads as itself, less a fragment);
//! any shorter prefix of a served head reads as incomplete.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tenbin_fuzz::cuts;
use tenbin_proxy::http::read_plain_head;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    let Ok(Some((parts, close))) = read_plain_head(&mut buf) else {
        assert_eq!(&buf[..], data, "a head not served must leave its bytes");
        return;
    };
    let mut fields = [httparse::EMPTY_HEADER; 64];
    let mut raw = httparse::Request::new(&mut fields);
    let Ok(httparse::Status::Complete(used)) = raw.parse(data) else {
        panic!("served a head httparse does not complete");
    };
    assert_eq!(&buf[..], &data[used..], "the bytes after the head stay");
    assert_eq!(raw.version, Some(1));
    assert_eq!(parts.version, http::Version::HTTP_11);
    assert_eq!(Some(parts.method.as_str()), raw.method);
    assert_ne!(parts.method, http::Method::CONNECT);
    // An origin-form target reads as itself, but for a fragment (dropped, as hyper does).
    if let Some(path) = raw.path.filter(|p| p.starts_with('/')) {
        let unfragmented = path.split('#').next().unwrap_or(path);
        assert_eq!(parts.uri.to_string(), unfragmented);
    }
    let served: Vec<(&str, &[u8])> = parts
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_bytes()))
        .collect();
    assert_eq!(served.len(), raw.headers.len());
    let mut asked_close = false;
    for h in raw.headers.iter() {
        let name = h.name.to_ascii_lowercase();
        assert!(
            !matches!(
                name.as_str(),
                "content-length" | "transfer-encoding" | "upgrade" | "expect"
            ),
            "served a head with {name}"
        );
        if name == "connection" {
            asked_close |= h
                .value
                .split(|b| *b == b',')
                .any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
        }
    }
    assert_eq!(close, asked_close);
    // Same fields in the same order for each name (a HeaderMap groups by name).
    for (name, value) in &served {
        let raw_values: Vec<&[u8]> = raw
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
            .collect();
        let ours: Vec<&[u8]> = parts
            .headers
            .get_all(*name)
            .iter()
            .map(|v| v.as_bytes())
            .collect();
        assert_eq!(ours, raw_values, "{name}: {value:?}");
    }
    for cut in cuts(used) {
        let mut part = BytesMut::from(&data[..cut]);
        assert!(
            matches!(read_plain_head(&mut part), Ok(None)),
            "a prefix of a served head at {cut} did not read as incomplete"
        );
        assert_eq!(&part[..], &data[..cut]);
    }
});
