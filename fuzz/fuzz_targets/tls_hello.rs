//! Fuzz the passthrough ClientHello/ServerHello readers with any bytes, and with the hello the
//! same bytes describe when read as field values (this target's own encoder, split over
//! records of any size).
//! Invariants: no panic; every field returned is a substring of the handshake bytes (the
//! record payloads joined), the SNI up to ASCII case; a hello read from some bytes reads the
//! same from any longer input and is `Incomplete`, never another result, from shorter
//! prefixes; a hello built from chosen fields reads back with exactly those fields.
#![no_main]

use libfuzzer_sys::arbitrary::{self, Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use tenbin_fuzz::cuts;
use tenbin_proxy::tls::hello::{parse_client_hello, parse_server_hello, ClientHello, HelloError};

#[derive(Arbitrary, Debug)]
struct Fields {
    sni: Option<String>,
    alpn: Vec<Vec<u8>>,
    session_id: Vec<u8>,
    versions: Vec<u16>,
    /// Extensions this parser skips, placed before the ones it reads.
    other: Vec<(u16, Vec<u8>)>,
    record_size: u16,
}

fuzz_target!(|data: &[u8]| {
    check_bytes(data);
    if let Ok(f) = Fields::arbitrary(&mut Unstructured::new(data)) {
        build_and_read(f);
    }
});

fn build_and_read(
    Fields {
        sni,
        alpn,
        session_id,
        versions,
        other,
        record_size,
    }: Fields,
) {
    let sni = sni.filter(|s| !s.is_empty() && s.len() < 256);
    let alpn: Vec<Vec<u8>> = alpn
        .into_iter()
        .filter(|p| !p.is_empty() && p.len() < 256)
        .take(8)
        .collect();
    let session_id: Vec<u8> = session_id.into_iter().take(32).collect();
    let versions: Vec<u16> = versions.into_iter().take(16).collect();
    let other: Vec<_> = other
        .into_iter()
        .filter(|(ty, _)| ![0, 16, 43].contains(ty))
        .map(|(ty, d)| (ty, d.into_iter().take(512).collect::<Vec<u8>>()))
        .take(8)
        .collect();
    let wire = encode(
        sni.as_deref(),
        &alpn,
        &session_id,
        &versions,
        &other,
        usize::from(record_size.max(1)).min(1 << 14),
    );
    let want = ClientHello {
        sni: sni.map(|s| s.to_ascii_lowercase()),
        alpn,
        session_id,
        versions,
    };
    assert_eq!(parse_client_hello(&wire), Ok(want));
    check_bytes(&wire);
}

fn check_bytes(buf: &[u8]) {
    let joined = payloads(buf);
    let client = parse_client_hello(buf);
    if let Ok(h) = &client {
        let lower = joined.to_ascii_lowercase();
        if let Some(sni) = &h.sni {
            assert!(
                contains(&lower, sni.as_bytes()),
                "SNI {sni:?} not in the input"
            );
        }
        assert!(contains(&joined, &h.session_id));
        for p in &h.alpn {
            assert!(contains(&joined, p));
        }
    }
    let server = parse_server_hello(buf);
    if let Ok(h) = &server {
        assert!(contains(&joined, &h.session_id));
        assert!(contains(&joined, &h.version.to_be_bytes()));
    }
    for cut in cuts(buf.len()) {
        let c = parse_client_hello(&buf[..cut]);
        assert!(
            c == Err(HelloError::Incomplete) || c == client,
            "client cut {cut}: {c:?}"
        );
        let s = parse_server_hello(&buf[..cut]);
        assert!(
            s == Err(HelloError::Incomplete) || s == server,
            "server cut {cut}: {s:?}"
        );
    }
}

/// The handshake bytes: every record's payload in order, as far as the records go.
fn payloads(mut buf: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while buf.len() >= 5 {
        let len = usize::from(u16::from_be_bytes([buf[3], buf[4]]));
        let end = (5 + len).min(buf.len());
        out.extend_from_slice(&buf[5..end]);
        buf = &buf[end..];
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

/// A ClientHello (RFC 8446 §4.1.2) with the given fields, in records of `record_size` bytes.
fn encode(
    sni: Option<&str>,
    alpn: &[Vec<u8>],
    session_id: &[u8],
    versions: &[u16],
    other: &[(u16, Vec<u8>)],
    record_size: usize,
) -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend([0x5a; 32]);
    vec8(&mut body, session_id);
    vec16(&mut body, &[0x13, 0x01, 0xc0, 0x2f]);
    vec8(&mut body, &[0]);
    let mut exts = Vec::new();
    for (ty, data) in other {
        ext(&mut exts, *ty, data);
    }
    if let Some(name) = sni {
        let mut entry = vec![0];
        vec16(&mut entry, name.as_bytes());
        let mut list = Vec::new();
        vec16(&mut list, &entry);
        ext(&mut exts, 0, &list);
    }
    if !alpn.is_empty() {
        let mut protos = Vec::new();
        for p in alpn {
            vec8(&mut protos, p);
        }
        let mut list = Vec::new();
        vec16(&mut list, &protos);
        ext(&mut exts, 16, &list);
    }
    if !versions.is_empty() {
        let raw: Vec<u8> = versions.iter().flat_map(|v| v.to_be_bytes()).collect();
        let mut list = Vec::new();
        vec8(&mut list, &raw);
        ext(&mut exts, 43, &list);
    }
    vec16(&mut body, &exts);
    let mut hs = vec![1];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend(body);
    let mut out = Vec::new();
    for chunk in hs.chunks(record_size) {
        out.extend([22, 3, 1]);
        vec16(&mut out, chunk);
    }
    out
}

fn ext(out: &mut Vec<u8>, ty: u16, data: &[u8]) {
    out.extend(ty.to_be_bytes());
    vec16(out, data);
}

fn vec8(out: &mut Vec<u8>, data: &[u8]) {
    out.push(data.len() as u8);
    out.extend_from_slice(data);
}

fn vec16(out: &mut Vec<u8>, data: &[u8]) {
    out.extend((data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
}
