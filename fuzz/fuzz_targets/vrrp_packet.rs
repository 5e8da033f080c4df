//! Fuzz the VRRP receive path: the IPv4 header split the driver does, the advertisement
//! decoder in every checksum mode and both families, and a state machine fed the result.
//! Invariants: no panic; whatever parses re-emits to bytes that parse to the same meaning;
//! every packet the machine sees is counted exactly once (received or dropped or ignored).
#![no_main]

use std::net::IpAddr;
use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use tenbin_ha::vrrp::driver::socket::parse_ipv4;
use tenbin_ha::vrrp::packet::{Packet, Repr, GROUP_V6};
use tenbin_ha::vrrp::{ChecksumMode, Machine, Received, Settings};

const MODES: [ChecksumMode; 3] = [
    ChecksumMode::PseudoHeader,
    ChecksumMode::VrrpOnly,
    ChecksumMode::PseudoHeaderGroup,
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let mode = MODES[usize::from(sel) % 3];
    // Seeds from the wire are whole IPv4 packets; anything else is a bare VRRP payload.
    let (src, dst, ttl, payload): (IpAddr, IpAddr, u8, Vec<u8>) = match parse_ipv4(rest) {
        Some(d) => (d.src, d.dst, d.ttl, d.payload),
        None if sel & 0x80 != 0 => (
            "fe80::1".parse().unwrap(),
            IpAddr::V6(GROUP_V6),
            255,
            rest.to_vec(),
        ),
        None => (
            "10.0.0.1".parse().unwrap(),
            "224.0.0.18".parse().unwrap(),
            255,
            rest.to_vec(),
        ),
    };
    if let Ok(r) = Packet::new_checked(&payload[..]).and_then(|p| Repr::parse(&p, src, dst, mode)) {
        let again = r.emit(src, dst, mode);
        let p = Packet::new_checked(&again[..]).expect("emitted header");
        assert_eq!(Repr::parse(&p, src, dst, mode).as_ref(), Ok(&r));
    }
    let t0 = Instant::now();
    let primary = if src.is_ipv4() { "10.0.0.2" } else { "fe80::2" };
    let mut m = Machine::new(
        Settings {
            vrid: 51,
            priority: 100,
            interval: 10,
            preempt: true,
            preempt_delay: Duration::ZERO,
            primary: primary.parse().unwrap(),
            vips: vec![if src.is_ipv4() {
                "10.0.0.100"
            } else {
                "2001:db8::1"
            }
            .parse()
            .unwrap()],
            checksum: mode,
            probe: sel & 0x40 != 0,
        },
        t0,
    );
    m.startup(t0);
    m.handle_input(
        &Received {
            src,
            dst,
            ttl,
            payload: &payload,
        },
        t0,
    );
    let c = m.counters();
    let seen = c.own
        + c.received
        + c.dropped_ttl
        + c.dropped_malformed
        + c.dropped_checksum
        + c.other_vrid;
    assert_eq!(seen, 1);
    if let Some(t) = m.poll_timeout() {
        m.handle_timeout(t);
    }
    while m.poll_output().is_some() {}
});
