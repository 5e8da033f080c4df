//! PROXY protocol byte vectors: encoder output against hand-written bytes from the spec's
//! layout, and the parser on those bytes, truncations and garbage.

use std::net::SocketAddr;

use tenbin_proxy::proxy_protocol::{Header, ParseError, Transport, Version, V2_SIGNATURE};

fn sa(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

#[test]
fn v1_tcp4_line() {
    let h = Header::tcp(sa("192.0.2.10:56324"), sa("198.51.100.1:443"));
    assert_eq!(
        h.encode_v1(),
        b"PROXY TCP4 192.0.2.10 198.51.100.1 56324 443\r\n".to_vec()
    );
}

#[test]
fn v1_tcp6_line_and_mixed_families_become_v6() {
    let h = Header::tcp(sa("[2001:db8::1]:1000"), sa("[2001:db8::2]:80"));
    assert_eq!(
        h.encode_v1(),
        b"PROXY TCP6 2001:db8::1 2001:db8::2 1000 80\r\n".to_vec()
    );
    let mixed = Header::tcp(sa("192.0.2.1:1000"), sa("[2001:db8::2]:80"));
    assert_eq!(
        mixed.encode_v1(),
        b"PROXY TCP6 ::ffff:192.0.2.1 2001:db8::2 1000 80\r\n".to_vec()
    );
}

#[test]
fn v1_cannot_say_udp_or_local() {
    let udp = Header::Proxy {
        transport: Transport::Udp,
        source: sa("192.0.2.1:1"),
        destination: sa("192.0.2.2:2"),
    };
    assert_eq!(udp.encode_v1(), b"PROXY UNKNOWN\r\n".to_vec());
    assert_eq!(Header::Local.encode_v1(), b"PROXY UNKNOWN\r\n".to_vec());
}

#[test]
fn v2_tcp4_bytes() {
    let h = Header::tcp(sa("192.0.2.10:56324"), sa("198.51.100.1:443"));
    let mut want = vec![
        0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, // signature
        0x21, // version 2, PROXY
        0x11, // AF_INET, STREAM
        0x00, 0x0c, // 12 address bytes
    ];
    want.extend_from_slice(&[192, 0, 2, 10, 198, 51, 100, 1]);
    want.extend_from_slice(&[0xdc, 0x04, 0x01, 0xbb]); // 56324, 443
    assert_eq!(h.encode_v2(), want);
    assert_eq!(h.encode(Version::V2), want);
}

#[test]
fn v2_tcp6_and_udp4_and_local_bytes() {
    let h = Header::tcp(sa("[2001:db8::1]:1"), sa("[::1]:2"));
    let b = h.encode_v2();
    assert_eq!(&b[12..16], &[0x21, 0x21, 0x00, 36]);
    assert_eq!(b.len(), 16 + 36);
    assert_eq!(&b[16..18], &[0x20, 0x01]);
    assert_eq!(b[16 + 31], 0x01);
    assert_eq!(&b[48..52], &[0, 1, 0, 2]);

    let udp = Header::Proxy {
        transport: Transport::Udp,
        source: sa("10.0.0.1:53"),
        destination: sa("10.0.0.2:5353"),
    };
    assert_eq!(&udp.encode_v2()[12..16], &[0x21, 0x12, 0x00, 12]);

    let mut local = V2_SIGNATURE.to_vec();
    local.extend_from_slice(&[0x20, 0x00, 0x00, 0x00]);
    assert_eq!(Header::Local.encode_v2(), local);
}

#[test]
fn both_versions_round_trip_through_the_parser() {
    let cases = [
        Header::tcp(sa("192.0.2.10:56324"), sa("198.51.100.1:443")),
        Header::tcp(sa("[2001:db8::1]:65535"), sa("[2001:db8::2]:1")),
    ];
    for h in cases {
        for v in [Version::V1, Version::V2] {
            let mut bytes = h.encode(v);
            let used = bytes.len();
            bytes.extend_from_slice(b"GET / HTTP/1.1\r\n");
            assert_eq!(Header::parse(&bytes), Ok((h, used)), "{v:?} {h:?}");
        }
    }
    let udp = Header::Proxy {
        transport: Transport::Udp,
        source: sa("10.0.0.1:53"),
        destination: sa("10.0.0.2:5353"),
    };
    assert_eq!(Header::parse(&udp.encode_v2()), Ok((udp, 28)));
    assert_eq!(
        Header::parse(&Header::Local.encode_v2()),
        Ok((Header::Local, 16))
    );
}

#[test]
fn every_truncation_is_incomplete_never_a_panic() {
    let h = Header::tcp(sa("[2001:db8::1]:1000"), sa("[2001:db8::2]:80"));
    for v in [Version::V1, Version::V2] {
        let bytes = h.encode(v);
        for cut in 0..bytes.len() {
            assert_eq!(
                Header::parse(&bytes[..cut]),
                Err(ParseError::Incomplete),
                "{v:?} cut {cut}"
            );
        }
    }
}

#[test]
fn malformed_headers_are_rejected() {
    assert_eq!(
        Header::parse(b"GET / HTTP/1.1\r\n"),
        Err(ParseError::NotProxy)
    );
    assert_eq!(
        Header::parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n"),
        Err(ParseError::BadV1)
    );
    assert_eq!(
        Header::parse(b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n"),
        Err(ParseError::BadV1)
    );
    assert_eq!(
        Header::parse(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 99999\r\n"),
        Err(ParseError::BadV1)
    );
    assert_eq!(
        Header::parse(b"PROXY SCTP 1.2.3.4 5.6.7.8 1 2\r\n"),
        Err(ParseError::BadV1)
    );
    let long = [b"PROXY ".as_slice(), &[b'x'; 200]].concat();
    assert_eq!(Header::parse(&long), Err(ParseError::BadV1));

    let mut bad_cmd = V2_SIGNATURE.to_vec();
    bad_cmd.extend_from_slice(&[0x31, 0x11, 0, 0]);
    assert_eq!(Header::parse(&bad_cmd), Err(ParseError::BadV2Command(0x31)));
    let mut short = V2_SIGNATURE.to_vec();
    short.extend_from_slice(&[0x21, 0x11, 0, 4, 1, 2, 3, 4]);
    assert_eq!(Header::parse(&short), Err(ParseError::ShortV2Addresses));
    let mut bad_fam = V2_SIGNATURE.to_vec();
    bad_fam.extend_from_slice(&[0x21, 0x31, 0, 0]);
    assert_eq!(Header::parse(&bad_fam), Err(ParseError::BadV2Family(0x31)));
}

#[test]
fn arbitrary_bytes_never_panic() {
    // A deterministic sweep of byte patterns behind both prefixes.
    let mut x: u32 = 0x1234_5678;
    for _ in 0..2000 {
        let mut buf = if x & 1 == 0 {
            V2_SIGNATURE.to_vec()
        } else {
            b"PROXY ".to_vec()
        };
        let len = (x % 64) as usize;
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            buf.push((x & 0xff) as u8);
        }
        let _ = Header::parse(&buf);
        x = x.wrapping_add(0x9e37_79b9);
    }
}
