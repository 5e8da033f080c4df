//! IPv6 end to end in namespaces: curl to an IPv6 VIP through the XDP Mux over GRE
//! (IPv6-in-GRE-in-IPv6) to decapsulating backends that answer directly. Root only.
mod netns;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use netns::{backend_host, in_ns, serve, sh, Lab};
use tenbin_core::ServerState;
use tenbin_testkit::skip;
use tenbin_xdp::abi::{stat_index, Mode};
use tenbin_xdp::control::{BackendSpec, Controller, MaglevRings, MuxSpec, VipSpec};
use tenbin_xdp::loader::Program;

const VIP: &str = "fd99:100::1";

#[test]
fn curl_to_an_ipv6_vip_over_gre() {
    if !skip::need_root("network namespaces, XDP") || !skip::need_tools(&["ip", "curl", "ethtool"])
    {
        return;
    }
    let mut lab = Lab::new("tv");
    lab.ipv6 = true;
    let sw = lab.add_ns("sw");
    sh(&format!(
        "ip -n {sw} link add br0 type bridge && ip -n {sw} link set br0 up"
    ));
    let cl = lab.plug(&sw, "cl", "fd99::100/64 nodad");
    let mx = lab.plug(&sw, "mx", "fd99::1/64 nodad");
    sh(&format!("ip -n {cl} -6 route add {VIP}/128 via fd99::1"));
    let vip: IpAddr = VIP.parse().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut backends = Vec::new();
    let mut decaps = Vec::new();
    for i in 1..=2u8 {
        let ns = lab.plug(&sw, &format!("b{i}"), &format!("fd99::1{i}/64 nodad"));
        let (listener, decap) = backend_host(&ns, vip);
        serve(listener, format!("backend-{i}"), stop.clone());
        backends.push((
            IpAddr::V6(format!("fd99::1{i}").parse().unwrap()),
            Lab::mac(&ns),
        ));
        decaps.push(decap);
    }
    let _peer = in_ns(&sw, || {
        let mut p = Program::pass().unwrap();
        p.attach("p-mx").unwrap();
        p
    });
    let prog = in_ns(&mx, || {
        let mut p = Program::mux(4096).unwrap();
        p.attach("eth0").unwrap();
        p
    });
    let mut mux = Controller::new(prog, MaglevRings);
    mux.apply(&MuxSpec {
        seed: 3,
        mtu: 1500,
        udp_idle: Duration::from_secs(30),
        flow_cap: 0,
        src4: (Ipv4Addr::UNSPECIFIED, 0),
        src6: ("fd99::1".parse().unwrap(), 128),
        egress: None,
        vips: vec![VipSpec {
            addr: vip,
            port: 80,
            proto: 6,
            mode: Mode::Gre,
            backends: backends
                .iter()
                .map(|(addr, mac)| BackendSpec {
                    addr: *addr,
                    mac: *mac,
                    weight: 1,
                    state: ServerState::Active,
                })
                .collect(),
        }],
    })
    .unwrap();
    // Distinct client ports until both backends have answered (bounded).
    let mut seen = std::collections::BTreeSet::new();
    for port in 0..40u16 {
        let out = std::process::Command::new("ip")
            .args([
                "netns",
                "exec",
                &cl,
                "curl",
                "-s",
                "--max-time",
                "2",
                "--local-port",
                &(41000 + port).to_string(),
            ])
            .arg(format!("http://[{VIP}]/"))
            .output()
            .unwrap();
        let body = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if body.starts_with("backend-") {
            seen.insert(body);
        } else {
            std::thread::sleep(Duration::from_millis(100));
        }
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(
        seen.len(),
        2,
        "both IPv6 backends answered through the VIP: {seen:?}"
    );
    let st = mux.writer().stats().unwrap();
    assert!(st[stat_index("tx").unwrap()] > 0);
    for d in &decaps {
        assert!(d.decap_stats().unwrap()[0] > 0);
    }
    stop.store(true, Ordering::Relaxed);
}
