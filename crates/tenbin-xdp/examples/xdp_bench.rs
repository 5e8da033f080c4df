//! Mux cost per packet through BPF_PROG_TEST_RUN (root), next to a baseline measured in the
//! same run: `pass.bpf.o`, a program that returns a fixed verdict (XDP_PASS) without reading
//! the frame. Every Mux figure is also printed as a ratio to that baseline, so the figures of
//! a loaded or different machine can be compared by their ratios.
//!
//! `repeat` runs the program over the same buffer without restoring it, so the repeated
//! figures use L2 DSR VIPs (the frame keeps its shape; only the MAC changes) and one key. New
//! flows need a distinct key per packet, and encapsulation grows the frame, so those are timed
//! one run per syscall and averaged, against the baseline timed the same way (the kernel's
//! per-run timer overhead is in both). New flows go into a flow table that already holds
//! `FILL` flows of its `TABLE` entries.
//!
//! Run: `bench/xdp.sh` or `cargo run --release -p tenbin-xdp --example xdp_bench`.
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use tenbin_core::flow::{FlowAddrs, FlowKey};
use tenbin_core::ServerState;
use tenbin_xdp::abi::Mode;
use tenbin_xdp::control::{BackendSpec, Controller, MaglevRings, MuxSpec, VipSpec};
use tenbin_xdp::loader::{is_root, Program, XDP_PASS, XDP_TX};
use tenbin_xdp::packet::{Frame, ACK, RST, SYN};

const REPEAT: u32 = 2_000_000;
const SINGLE_RUNS: u32 = 20_000;
/// Flow-table size, flows put in before the new-flow rows, and distinct new flows per row
/// (five rows: the table ends at FILL + 5 * NEW_FLOWS <= TABLE).
const TABLE: u32 = 1 << 16;
const FILL: u32 = 60_000;
const NEW_FLOWS: u32 = 1_000;

fn main() -> anyhow::Result<()> {
    // A benchmark that measured nothing must not look like one that passed.
    anyhow::ensure!(is_root(), "xdp_bench needs root (BPF_PROG_TEST_RUN)");
    let b4: Vec<BackendSpec> = (1..=16u8)
        .map(|i| backend(Ipv4Addr::new(10, 1, 0, i).into(), i))
        .collect();
    let b6: Vec<BackendSpec> = (1..=16u16)
        .map(|i| {
            backend(
                Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, i).into(),
                i as u8,
            )
        })
        .collect();
    let v = |addr: &str, mode, backends: &Vec<BackendSpec>| VipSpec {
        addr: addr.parse().unwrap(),
        port: 0,
        proto: 6,
        mode,
        backends: backends.clone(),
    };
    let spec = MuxSpec {
        seed: 1,
        mtu: 9000,
        udp_idle: Duration::from_secs(30),
        flow_cap: 0,
        src4: (Ipv4Addr::new(172, 16, 0, 0), 16),
        src6: ("fd00::".parse().unwrap(), 96),
        egress: None,
        vips: vec![
            v("10.0.0.1", Mode::Dsr, &b4),
            v("2001:db8:ffff::1", Mode::Dsr, &b6),
            v("10.0.0.2", Mode::Ipip, &b4),
            v("10.0.0.3", Mode::Gre, &b4),
            v("2001:db8:ffff::2", Mode::Ipip, &b6),
        ],
    };
    let mut mux = Controller::new(Program::mux(TABLE)?, MaglevRings);
    mux.apply(&spec)?;
    let p = mux.writer();
    let c4 = Ipv4Addr::new(198, 51, 100, 7);
    let c6: Ipv6Addr = "2001:db8:c::7".parse()?;
    let k4 = |vip: [u8; 4]| FlowKey::v4(c4, 40_000, Ipv4Addr::from(vip), 443, 6);
    let k6 = |last: u16| {
        FlowKey::v6(
            c6,
            40_000,
            Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, last),
            443,
            6,
        )
    };

    // Baseline: a fixed verdict, the same 64-byte-payload frame, repeated and single runs.
    let pass = Program::pass()?;
    let frame = Frame::new(k4([10, 0, 0, 1])).flags(ACK).payload(64).build();
    let base_rep = pass.run(&frame, REPEAT)?;
    anyhow::ensure!(base_rep.action == XDP_PASS, "baseline did not pass");
    let base_single = mean_single(
        &pass,
        std::iter::repeat_n(frame, SINGLE_RUNS as usize),
        XDP_PASS,
    )?;
    let x_rep = |ns: u128| ratio(ns, base_rep.ns_per_run);
    let x_single = |ns: u128| ratio(ns, base_single);

    println!("tenbin Mux, BPF_PROG_TEST_RUN, mean ns per packet (64-byte payload), this machine");
    println!(
        "  baseline (pass.bpf.o: returns XDP_PASS, reads nothing) {:>5} ns [repeat {REPEAT}]   {:>5} ns [{SINGLE_RUNS} single runs]",
        base_rep.ns_per_run, base_single
    );
    for (name, key) in [("IPv4", k4([10, 0, 0, 1])), ("IPv6", k6(1))] {
        let ack = Frame::new(key).flags(ACK).payload(64).build();
        // Creates the flow the ACKs then hit.
        anyhow::ensure!(
            p.run(&Frame::new(key).flags(SYN).payload(64).build(), 1)?
                .action
                == XDP_TX
        );
        let hit = p.run(&ack, REPEAT)?;
        anyhow::ensure!(hit.action == XDP_TX, "{name} ACK not forwarded");
        // RST of an unknown flow: flow-table miss and ring, no insert.
        let mut other = key;
        other.src_port += 1;
        let rst = p.run(&Frame::new(other).flags(RST).payload(64).build(), REPEAT)?;
        println!(
            "  {name} L2 DSR   flow-table hit {:>5} ns (x{})   miss + ring, no insert {:>5} ns (x{})   [repeat {REPEAT}]",
            hit.ns_per_run,
            x_rep(hit.ns_per_run),
            rst.ns_per_run,
            x_rep(rst.ns_per_run)
        );
    }

    // Fill the table with distinct flows, then time distinct new flows into it.
    let mut next = 0u32;
    let mut syn = |vip: &FlowKey| {
        next += 1;
        let (port, host) = (1024 + (next % 60_000) as u16, next / 60_000);
        let addrs = match vip.addrs {
            FlowAddrs::V4 { dst, .. } => FlowAddrs::V4 {
                src: Ipv4Addr::from(0x6440_0000 + host),
                dst,
            },
            FlowAddrs::V6 { dst, .. } => FlowAddrs::V6 {
                src: Ipv6Addr::from((0x2001_0db8_00cc_u128 << 80) | u128::from(host)),
                dst,
            },
        };
        let k = FlowKey {
            addrs,
            src_port: port,
            ..*vip
        };
        Frame::new(k).flags(SYN).payload(64).build()
    };
    let fill_key = k4([10, 0, 0, 1]);
    for _ in 0..FILL {
        anyhow::ensure!(
            p.run(&syn(&fill_key), 1)?.action == XDP_TX,
            "fill SYN not forwarded"
        );
    }
    println!(
        "  single runs; new flow = {NEW_FLOWS} SYNs of distinct flows into a table of {TABLE} entries already holding {FILL}:"
    );
    for (name, key) in [
        ("IPv4 DSR ", k4([10, 0, 0, 1])),
        ("IPv6 DSR ", k6(1)),
        ("IPv4 IPIP", k4([10, 0, 0, 2])),
        ("IPv4 GRE ", k4([10, 0, 0, 3])),
        ("IPv6 IPIP", k6(2)),
    ] {
        anyhow::ensure!(
            p.run(&Frame::new(key).flags(SYN).payload(64).build(), 1)?
                .action
                == XDP_TX
        );
        let ack = Frame::new(key).flags(ACK).payload(64).build();
        let hit = mean_single(p, std::iter::repeat_n(ack, SINGLE_RUNS as usize), XDP_TX)?;
        let syns: Vec<Vec<u8>> = (0..NEW_FLOWS).map(|_| syn(&key)).collect();
        let new = mean_single(p, syns, XDP_TX)?;
        println!(
            "  {name} flow-table hit {:>5} ns (x{})   new flow (ring + insert) {:>5} ns (x{})",
            hit,
            x_single(hit),
            new,
            x_single(new)
        );
    }
    drop(mux);
    veth_pps()
}

/// Mean kernel-reported ns of one run per frame, each run checked for `want`.
fn mean_single(
    p: &Program,
    frames: impl IntoIterator<Item = Vec<u8>>,
    want: u32,
) -> anyhow::Result<u128> {
    let (mut sum, mut n) = (0u128, 0u128);
    for f in frames {
        let r = p.run(&f, 1)?;
        anyhow::ensure!(r.action == want, "verdict {} instead of {want}", r.action);
        sum += r.ns_per_run;
        n += 1;
    }
    Ok(sum / n.max(1))
}

fn ratio(ns: u128, base: u128) -> String {
    if base == 0 {
        return "n/a".into();
    }
    format!("{:.1}", ns as f64 / base as f64)
}

/// End to end on veth: a client namespace sends UDP datagrams to a VIP through the Mux (native
/// XDP, IPIP) to a backend that decapsulates them and receives them on a socket.
fn veth_pps() -> anyhow::Result<()> {
    use netns::{in_ns, sh, spawn_in_ns, Lab};
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;

    const DATAGRAMS: u64 = 300_000;
    let mut lab = Lab::new("xb");
    let sw = lab.add_ns("sw");
    sh(&format!(
        "ip -n {sw} link add br0 type bridge && ip -n {sw} link set br0 up"
    ));
    let cl = lab.plug(&sw, "cl", "10.98.0.100/24");
    let mx = lab.plug(&sw, "mx", "10.98.0.1/24");
    let be = lab.plug(&sw, "be", "10.98.0.11/24");
    let vip: std::net::IpAddr = "10.98.100.1".parse()?;
    sh(&format!("ip -n {cl} route add {vip}/32 via 10.98.0.1"));
    let (rx, _decap) = in_ns(&be, || -> anyhow::Result<_> {
        tenbin_xdp::agent::configure("eth0", &[vip])?;
        let mut d = Program::decap()?;
        d.attach("eth0")?;
        let s = std::net::UdpSocket::bind((vip, 9))?;
        s.set_read_timeout(Some(Duration::from_millis(200)))?;
        Ok((s, d))
    })?;
    let _peer = in_ns(&sw, || -> anyhow::Result<Program> {
        let mut p = Program::pass()?;
        p.attach("p-mx")?;
        Ok(p)
    })?;
    let prog = in_ns(&mx, || -> anyhow::Result<Program> {
        let mut p = Program::mux(1 << 16)?;
        p.attach("eth0")?;
        Ok(p)
    })?;
    let mut mux = Controller::new(prog, MaglevRings);
    mux.apply(&MuxSpec {
        seed: 1,
        mtu: 1500,
        udp_idle: Duration::from_secs(30),
        flow_cap: 0,
        src4: (Ipv4Addr::new(10, 98, 0, 1), 32),
        src6: ("fd00::".parse()?, 96),
        egress: None,
        vips: vec![VipSpec {
            addr: vip,
            port: 9,
            proto: 17,
            mode: Mode::Ipip,
            backends: vec![BackendSpec {
                addr: "10.98.0.11".parse()?,
                mac: Lab::mac(&be),
                weight: 1,
                state: ServerState::Active,
            }],
        }],
    })?;
    let received = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let (r2, d2) = (received.clone(), done.clone());
    let counter = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while !d2.load(Ordering::Relaxed) {
            if rx.recv(&mut buf).is_ok() {
                r2.fetch_add(1, Ordering::Relaxed);
            }
        }
    });
    let tx_before = mux.writer().stats()?[tenbin_xdp::abi::stat_index("tx").unwrap_or(1)];
    let sender = spawn_in_ns(&cl, move || -> anyhow::Result<Duration> {
        let s = std::net::UdpSocket::bind("10.98.0.100:0")?;
        s.connect((vip, 9))?;
        let payload = [0u8; 64];
        let start = std::time::Instant::now();
        for _ in 0..DATAGRAMS {
            let _ = s.send(&payload);
        }
        Ok(start.elapsed())
    });
    let elapsed = sender
        .join()
        .map_err(|_| anyhow::anyhow!("sender panicked"))??;
    std::thread::sleep(Duration::from_millis(300));
    done.store(true, Ordering::Relaxed);
    let _ = counter.join();
    let forwarded =
        mux.writer().stats()?[tenbin_xdp::abi::stat_index("tx").unwrap_or(1)] - tx_before;
    let secs = elapsed.as_secs_f64();
    println!(
        "veth end to end (client -> XDP Mux, IPIP -> decap -> UDP socket), {DATAGRAMS} datagrams of 64 bytes from one sender thread:"
    );
    println!(
        "  Mux forwarded {forwarded} ({:.0} pps), backend socket received {} ({:.0} pps); sender-bound: one userspace thread",
        forwarded as f64 / secs,
        received.load(Ordering::Relaxed),
        received.load(Ordering::Relaxed) as f64 / secs
    );
    Ok(())
}

// The namespace lab of the tests, shared rather than copied.
#[path = "../tests/netns/mod.rs"]
mod netns;

fn backend(addr: std::net::IpAddr, i: u8) -> BackendSpec {
    BackendSpec {
        addr,
        mac: [2, 0xbe, 0, 0, 0, i],
        weight: 1,
        state: ServerState::Active,
    }
}
