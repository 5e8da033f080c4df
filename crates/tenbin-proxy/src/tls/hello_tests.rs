use std::sync::Arc;

use proptest::prelude::*;

use super::*;

/// A ClientHello built field by field (RFC 8446 §4.1.2), wrapped in one record.
fn client_hello(sni: &str, session: &[u8], alpn: &[&[u8]]) -> Vec<u8> {
    let mut body = vec![0x03, 0x03];
    body.extend([7u8; 32]);
    body.push(session.len() as u8);
    body.extend(session);
    body.extend([0, 2, 0x13, 0x01]); // one suite
    body.extend([1, 0]); // null compression
    let mut exts = Vec::new();
    let mut names = vec![0u8];
    names.extend((sni.len() as u16).to_be_bytes());
    names.extend(sni.as_bytes());
    let mut sn = (names.len() as u16).to_be_bytes().to_vec();
    sn.extend(names);
    ext(&mut exts, EXT_SERVER_NAME, &sn);
    let mut protos = Vec::new();
    for p in alpn {
        protos.push(p.len() as u8);
        protos.extend(*p);
    }
    let mut al = (protos.len() as u16).to_be_bytes().to_vec();
    al.extend(protos);
    ext(&mut exts, EXT_ALPN, &al);
    ext(
        &mut exts,
        EXT_SUPPORTED_VERSIONS,
        &[4, 0x03, 0x04, 0x03, 0x03],
    );
    body.extend((exts.len() as u16).to_be_bytes());
    body.extend(exts);
    records(CLIENT_HELLO, &body, 1 << 14)
}

fn ext(out: &mut Vec<u8>, ty: u16, data: &[u8]) {
    out.extend(ty.to_be_bytes());
    out.extend((data.len() as u16).to_be_bytes());
    out.extend(data);
}

/// A handshake message split into records of at most `max` bytes.
fn records(ty: u8, body: &[u8], max: usize) -> Vec<u8> {
    let mut hs = vec![ty];
    hs.extend(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend(body);
    let mut out = Vec::new();
    for chunk in hs.chunks(max) {
        out.extend([CONTENT_HANDSHAKE, 3, 1]);
        out.extend((chunk.len() as u16).to_be_bytes());
        out.extend(chunk);
    }
    out
}

fn server_hello(session: &[u8], selected: Option<u16>) -> Vec<u8> {
    let mut body = vec![0x03, 0x03];
    body.extend([9u8; 32]);
    body.push(session.len() as u8);
    body.extend(session);
    body.extend([0xc0, 0x2f, 0]);
    let mut exts = Vec::new();
    if let Some(v) = selected {
        ext(&mut exts, EXT_SUPPORTED_VERSIONS, &v.to_be_bytes());
    }
    body.extend((exts.len() as u16).to_be_bytes());
    body.extend(exts);
    records(SERVER_HELLO, &body, 1 << 14)
}

#[test]
fn client_hello_fields_rfc6066_rfc7301_rfc8446() {
    let bytes = client_hello("Shop.Example.TEST", &[1, 2, 3], &[b"h2", b"http/1.1"]);
    let h = parse_client_hello(&bytes).unwrap();
    assert_eq!(h.sni.as_deref(), Some("shop.example.test"));
    assert_eq!(h.session_id, [1, 2, 3]);
    assert_eq!(h.alpn, [b"h2".to_vec(), b"http/1.1".to_vec()]);
    assert_eq!(h.versions, [TLS13, TLS12]);
}

#[test]
fn handshake_split_over_records_is_reassembled() {
    let one = client_hello("a.test", &[], &[b"h2"]);
    let body = &one[5 + 4..];
    let split = records(CLIENT_HELLO, body, 7);
    assert_eq!(parse_client_hello(&split), parse_client_hello(&one));
}

#[test]
fn every_truncation_asks_for_more() {
    let bytes = client_hello("a.test", &[5; 32], &[b"h2"]);
    for n in 0..bytes.len() {
        assert_eq!(
            parse_client_hello(&bytes[..n]),
            Err(HelloError::Incomplete),
            "at {n}"
        );
    }
}

#[test]
fn rejects_what_is_not_a_client_hello() {
    assert_eq!(
        parse_client_hello(b"GET / HTTP/1.1\r\n"),
        Err(HelloError::NotHandshake)
    );
    let sh = server_hello(&[1], None);
    assert_eq!(
        parse_client_hello(&sh),
        Err(HelloError::UnexpectedMessage(SERVER_HELLO))
    );
    let mut bad = client_hello("a.test", &[], &[]);
    bad[5 + 4 + 34] = 200; // session id length beyond the message
    assert!(matches!(
        parse_client_hello(&bad),
        Err(HelloError::Malformed(_))
    ));
    let huge = [
        CONTENT_HANDSHAKE,
        3,
        1,
        0,
        4,
        CLIENT_HELLO,
        0xff,
        0xff,
        0xff,
    ];
    assert_eq!(parse_client_hello(&huge), Err(HelloError::TooLarge));
}

#[test]
fn server_hello_session_ids_stick_only_in_tls12() {
    let h = parse_server_hello(&server_hello(&[0xab; 32], None)).unwrap();
    assert_eq!(h.version, TLS12);
    assert_eq!(h.sticky_session_id(), Some(&[0xab; 32][..]));
    let h13 = parse_server_hello(&server_hello(&[0xab; 32], Some(TLS13))).unwrap();
    assert_eq!(h13.version, TLS13);
    assert_eq!(h13.sticky_session_id(), None);
    let empty = parse_server_hello(&server_hello(&[], None)).unwrap();
    assert_eq!(empty.sticky_session_id(), None);
}

#[test]
fn reads_a_real_rustls_client_hello() {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let name = rustls_pki_types::ServerName::try_from("api.example.test").unwrap();
    let mut conn = rustls::ClientConnection::new(Arc::new(cfg), name).unwrap();
    let mut wire = Vec::new();
    conn.write_tls(&mut wire).unwrap();
    let h = parse_client_hello(&wire).unwrap();
    assert_eq!(h.sni.as_deref(), Some("api.example.test"));
    assert_eq!(h.alpn, [b"h2".to_vec()]);
    assert!(h.versions.contains(&TLS13));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = parse_client_hello(&bytes);
        let _ = parse_server_hello(&bytes);
    }

    #[test]
    fn mutated_hellos_never_panic(pos in 0usize..120, val in any::<u8>()) {
        let mut bytes = client_hello("x.test", &[1; 16], &[b"h2"]);
        let i = pos % bytes.len();
        bytes[i] = val;
        let _ = parse_client_hello(&bytes);
    }
}
