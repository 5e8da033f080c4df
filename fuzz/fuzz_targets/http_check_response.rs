//! Fuzz the HTTP health check's response decoders (head via httparse, chunked body our own)
//! with any bytes: as a response head (for GET and HEAD), as a chunked body, and, read as
//! field values, as a body this target chunks itself.
//! Invariants: no panic; a complete head has a status in 100..=599 (RFC 9110 §15) and ends
//! inside the input; a shorter prefix reads as "need more" or the same head; the chunked decoder's output from a
//! prefix is a prefix of its output from the whole, and a body chunked any way (sizes in
//! either case, extensions, trailers) decodes to itself, finished.
#![no_main]

use libfuzzer_sys::arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use tenbin_fuzz::{cuts, ChunkedBody};
use tenbin_health::probe::http::{decode_chunked, parse_head, Framing};

fuzz_target!(|data: &[u8]| {
    head(data, false);
    head(data, true);
    // A response's body is what follows its head; try the bytes after it, else all of them.
    let body = match parse_head(data, "GET") {
        Ok(Some((_, _, len))) => &data[len..],
        _ => data,
    };
    chunked(body);
    if let Ok(b) = ChunkedBody::arbitrary(&mut Unstructured::new(data)) {
        chunk_and_decode(b);
    }
});

fn head(buf: &[u8], head: bool) {
    let method = if head { "HEAD" } else { "GET" };
    let full = parse_head(buf, method);
    if let Ok(Some((status, framing, len))) = &full {
        assert!((100..=599).contains(status) && *len <= buf.len());
        if head || matches!(status, 204 | 304) {
            assert_eq!(*framing, Framing::Length(0));
        }
    }
    if full.is_ok() {
        for cut in cuts(buf.len()) {
            let p = parse_head(&buf[..cut], method);
            assert!(
                matches!(p, Ok(None)) || p.as_ref().ok() == full.as_ref().ok(),
                "cut {cut}"
            );
        }
    }
}

fn chunked(raw: &[u8]) {
    let Ok((out, done)) = decode_chunked(raw) else {
        return;
    };
    assert!(out.len() <= raw.len());
    for cut in cuts(raw.len()) {
        let (p, pdone) = decode_chunked(&raw[..cut]).expect("a prefix of a good body is good");
        assert!(out.starts_with(&p), "cut {cut}");
        assert!(!pdone || (done && p == out), "cut {cut}");
    }
}

fn chunk_and_decode(b: ChunkedBody) {
    let raw = b.encode();
    assert_eq!(decode_chunked(&raw).expect("well-formed"), (b.body, true));
}
