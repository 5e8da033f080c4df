//! Fuzz what the proxy reads from servers (`tenbin_proxy::http::upstream_wire`): any bytes
//! as a response head (for GET and HEAD) and as a chunked body, fed whole and at every cut.
//! Invariants: no panic; a complete head ends inside the input and any shorter prefix reads
//! as "need more" or the same head; a HEAD response, 204 and 304 have no body; the chunked
//! decoder gives the same bytes and the same end however its input is split, and a body
//! chunked any way (sizes in either case, extensions, trailers) decodes to itself.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use tenbin_fuzz::{cuts, ChunkedBody};
use tenbin_proxy::http::upstream_wire::{
    parse_response_head, ChunkDecoder, Decoded, ResponseFraming,
};

fuzz_target!(|data: &[u8]| {
    head(data, false);
    head(data, true);
    let body = match parse_response_head(data, false) {
        Ok(Some((used, _))) => &data[used..],
        _ => data,
    };
    let whole = decode(body, &[]);
    for cut in cuts(body.len()) {
        assert_eq!(decode(body, &[cut]), whole, "cut {cut}");
    }
    if let Ok(b) = ChunkedBody::arbitrary(&mut Unstructured::new(data)) {
        chunk_and_decode(b);
    }
});

type Summary = (u16, ResponseFraming, bool, usize);

fn summary(buf: &[u8], head: bool) -> Result<Option<Summary>, ()> {
    match parse_response_head(buf, head) {
        Ok(Some((used, h))) => Ok(Some((h.status.as_u16(), h.framing, h.keep_alive, used))),
        Ok(None) => Ok(None),
        Err(_) => Err(()),
    }
}

fn head(buf: &[u8], head: bool) {
    let full = summary(buf, head);
    let Ok(Some((status, framing, _, used))) = full else {
        return;
    };
    assert!(used <= buf.len());
    if head || matches!(status, 100..=199 | 204 | 304) {
        assert_eq!(framing, ResponseFraming::Empty);
    }
    for cut in cuts(used) {
        let p = summary(&buf[..cut], head);
        assert!(p == Ok(None) || p == full, "cut {cut}");
    }
}

/// Decodes `raw` handed over in pieces split at `cuts`: the data, whether it ended (and
/// what was left after the end), or where it failed.
fn decode(raw: &[u8], cuts: &[usize]) -> (Vec<u8>, Result<Option<usize>, ()>) {
    let mut dec = ChunkDecoder::default();
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut from = 0;
    for &to in cuts.iter().chain(std::iter::once(&raw.len())) {
        buf.extend_from_slice(&raw[from..to]);
        from = to;
        loop {
            match dec.decode(&mut buf) {
                Ok(Decoded::Data(d)) => out.extend_from_slice(&d),
                Ok(Decoded::NeedMore) => break,
                Ok(Decoded::End) => {
                    return (out, Ok(Some(buf.len() + raw.len() - from)));
                }
                Err(_) => return (out, Err(())),
            }
        }
    }
    (out, Ok(None))
}

fn chunk_and_decode(b: ChunkedBody) {
    let raw = b.encode();
    assert_eq!(decode(&raw, &[]), (b.body, Ok(Some(0))));
}
