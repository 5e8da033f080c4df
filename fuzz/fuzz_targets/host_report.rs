//! Fuzz the host agent's signed health reports as the Mux receives them: any datagram as it
//! is, the same bytes signed with the right key (so decoding gets past the HMAC), and the
//! report those bytes describe when read as field values.
//! Invariants: no panic; a report that decodes re-encodes to one that decodes to it again;
//! a report built from fields decodes to itself under its key, and is refused (`Auth`) under
//! another key and after any one bit of it is flipped.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use libfuzzer_sys::arbitrary::{self, Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use ring::hmac;
use tenbin_xdp::report::{key, Report, ReportError, ServiceHealth, MAX_SERVICES};

#[derive(Arbitrary, Debug)]
struct Fields {
    seq: u64,
    backend: ([u8; 16], bool),
    services: Vec<(([u8; 16], bool), u16, u8, bool)>,
    flip: u16,
}

fn keys() -> &'static (hmac::Key, hmac::Key) {
    static K: OnceLock<(hmac::Key, hmac::Key)> = OnceLock::new();
    K.get_or_init(|| {
        (
            key(b"fuzz-secret-0123456789").expect("long enough"),
            key(b"another-secret-0123456789").expect("long enough"),
        )
    })
}

fn ip((o, v4): ([u8; 16], bool)) -> IpAddr {
    if v4 {
        IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], o[3]))
    } else {
        IpAddr::V6(Ipv6Addr::from(o))
    }
}

fn round_trips(r: &Report) {
    let (k, _) = keys();
    let again = r.encode(k).expect("a decoded report encodes");
    assert_eq!(Report::decode(&again, k).as_ref(), Ok(r));
}

fuzz_target!(|data: &[u8]| {
    let (k, _) = keys();
    if let Ok(r) = Report::decode(data, k) {
        round_trips(&r);
    }
    // A datagram whose last 32 bytes are the tag: replace them with the right one.
    let body = &data[..data.len().saturating_sub(32)];
    let mut signed = body.to_vec();
    signed.extend_from_slice(hmac::sign(k, body).as_ref());
    if let Ok(r) = Report::decode(&signed, k) {
        assert!(r.services.len() <= MAX_SERVICES);
        round_trips(&r);
    }
    if let Ok(f) = Fields::arbitrary(&mut Unstructured::new(data)) {
        encode_and_decode(f);
    }
});

fn encode_and_decode(
    Fields {
        seq,
        backend,
        services,
        flip,
    }: Fields,
) {
    let (k, other) = keys();
    let r = Report {
        seq,
        backend: ip(backend),
        services: services
            .into_iter()
            .take(MAX_SERVICES)
            .map(|(vip, port, proto, healthy)| ServiceHealth {
                vip: ip(vip),
                port,
                proto,
                healthy,
            })
            .collect(),
    };
    let wire = r.encode(k).expect("at most MAX_SERVICES");
    assert_eq!(Report::decode(&wire, k).as_ref(), Ok(&r));
    assert_eq!(Report::decode(&wire, other), Err(ReportError::Auth));
    let mut bad = wire.clone();
    let bit = usize::from(flip) % (bad.len() * 8);
    bad[bit / 8] ^= 1 << (bit % 8);
    assert!(
        Report::decode(&bad, k).is_err(),
        "bit {bit} flipped and accepted"
    );
}
