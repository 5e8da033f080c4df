//! End to end in network namespaces: client — Mux (XDP, IPIP) — three backends (host agent:
//! decap XDP, VIP on lo, ARP sysctls) running a real HTTP server on the VIP. Replies go
//! straight back to the client (DSR). Root only.
mod netns;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use netns::{backend_host, get, in_ns, serve, sh, spawn_in_ns, Lab};
use tenbin_core::ServerState;
use tenbin_testkit::skip;
use tenbin_xdp::abi::{stat_index, Mode};
use tenbin_xdp::control::{BackendSpec, Controller, MaglevRings, MuxSpec, VipSpec};
use tenbin_xdp::loader::{Attached, Program};

const VIP: &str = "10.99.100.1";

fn connect(client_ns: &str) -> TcpStream {
    let s = in_ns(client_ns, || {
        TcpStream::connect_timeout(
            &SocketAddr::new(VIP.parse().unwrap(), 80),
            Duration::from_secs(3),
        )
    })
    .expect("connect through the VIP");
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    s
}

fn spec(backends: &[(IpAddr, [u8; 6])]) -> MuxSpec {
    MuxSpec {
        seed: 7,
        mtu: 1500,
        udp_idle: Duration::from_secs(30),
        flow_cap: 0,
        src4: (Ipv4Addr::new(10, 99, 0, 1), 32),
        src6: ("fd00::".parse().unwrap(), 96),
        egress: None,
        vips: vec![VipSpec {
            addr: VIP.parse().unwrap(),
            port: 80,
            proto: 6,
            mode: Mode::Ipip,
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
    }
}

#[test]
fn http_through_the_vip_with_dsr_replies() {
    if !skip::need_root("network namespaces, XDP") || !skip::need_tools(&["ip", "curl", "ethtool"])
    {
        return;
    }
    let mut lab = Lab::new("tx");
    let sw = lab.add_ns("sw");
    sh(&format!(
        "ip -n {sw} link add br0 type bridge && ip -n {sw} link set br0 up"
    ));
    let cl = lab.plug(&sw, "cl", "10.99.0.100/24");
    let mx = lab.plug(&sw, "mx", "10.99.0.1/24");
    sh(&format!("ip -n {cl} route add {VIP}/32 via 10.99.0.1"));
    let stop = Arc::new(AtomicBool::new(false));
    let mut service_stop = Vec::new();
    let vip: IpAddr = VIP.parse().unwrap();
    let mut backends = Vec::new();
    let mut agents = Vec::new();
    for i in 1..=3u8 {
        let ns = lab.plug(&sw, &format!("b{i}"), &format!("10.99.0.1{i}/24"));
        let (listener, decap) = backend_host(&ns, vip);
        let own = Arc::new(AtomicBool::new(false));
        serve(listener, format!("backend-{i}"), own.clone());
        service_stop.push(own);
        backends.push((IpAddr::V4(Ipv4Addr::new(10, 99, 0, 10 + i)), Lab::mac(&ns)));
        agents.push(decap);
    }
    // XDP_TX into a veth is delivered only if the peer runs XDP: pass-through on the bridge port.
    let _peer = in_ns(&sw, || {
        let mut p = Program::pass().unwrap();
        p.attach("p-mx").unwrap();
        p
    });
    let prog = in_ns(&mx, || {
        let mut p = Program::mux(65_536).expect("load mux");
        let how = p.attach("eth0").expect("attach mux");
        assert_eq!(how, Attached::Driver, "veth supports native XDP");
        p
    });
    let mut mux = Controller::new(prog, MaglevRings);
    mux.apply(&spec(&backends)).unwrap();

    // curl through the VIP works.
    let out = sh(&format!(
        "ip netns exec {cl} curl -s --max-time 5 http://{VIP}/"
    ));
    assert!(out.starts_with("backend-"), "{out}");

    // Long-lived connections spread over all three backends.
    let mut conns: Vec<(TcpStream, String)> = (0..24)
        .map(|_| {
            let mut s = connect(&cl);
            let who = get(&mut s).expect("first response");
            (s, who)
        })
        .collect();
    let mut names: Vec<&str> = conns.iter().map(|c| c.1.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names, ["backend-1", "backend-2", "backend-3"]);

    // Remove backend 2: connections to the others keep working, on the same backend.
    mux.apply(&spec(&[backends[0], backends[2]])).unwrap();
    for (s, who) in conns.iter_mut().filter(|c| c.1 != "backend-2") {
        assert_eq!(&get(s).expect("established connection survives"), who);
    }
    for _ in 0..12 {
        let mut s = connect(&cl);
        assert_ne!(get(&mut s).expect("new connection"), "backend-2");
    }

    // Every frame the Mux saw was client traffic it forwarded, or ARP: no reply crossed it.
    let st = mux.writer().stats().unwrap();
    let n = |k: &str| st[stat_index(k).unwrap()];
    assert!(n("tx") > 0);
    assert_eq!(
        n("pass_not_vip"),
        0,
        "a reply (or other IP traffic) reached the Mux: {st:?}"
    );
    // The rest is ARP and link-local chatter (IGMP, ICMP), never TCP from the VIP.
    assert_eq!(
        n("rx"),
        n("tx") + n("pass_not_ip") + n("pass_other_proto") + n("pass_icmp"),
        "{st:?}"
    );
    let vip_id = mux.vip_id(vip, 80, 6).unwrap();
    let per_backend: u64 = (0..3)
        .map(|i| mux.writer().backend_counters(i).unwrap().packets)
        .sum();
    assert_eq!(
        mux.writer().vip_counters(vip_id).unwrap().packets,
        per_backend
    );
    for a in &agents {
        assert!(
            a.decap_stats().unwrap()[0] > 0,
            "every backend decapsulated traffic"
        );
    }
    // Host agents report their service's health to the Mux; stopping backend 3's HTTP server
    // is noticed by its agent and the Mux stops sending it new flows.
    let key = tenbin_xdp::report::key(b"tenbin e2e shared report key").unwrap();
    let inbox = in_ns(&mx, || {
        std::net::UdpSocket::bind("10.99.0.1:7946").expect("report socket")
    });
    inbox
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut senders = Vec::new();
    for (i, (addr, _)) in backends.iter().enumerate() {
        let (addr, key, stop) = (*addr, key.clone(), stop.clone());
        senders.push(spawn_in_ns(&lab.ns(&format!("b{}", i + 1)), move || {
            let out = std::net::UdpSocket::bind((addr, 0)).unwrap();
            for seq in 1..=600u64 {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                // The agent's check: the local service behind the VIP accepts connections.
                let healthy = TcpStream::connect_timeout(
                    &SocketAddr::new(vip, 80),
                    Duration::from_millis(200),
                )
                .is_ok();
                let r = tenbin_xdp::report::Report {
                    seq,
                    backend: addr,
                    services: vec![tenbin_xdp::report::ServiceHealth {
                        vip,
                        port: 80,
                        proto: 6,
                        healthy,
                    }],
                };
                let _ = out.send_to(&r.encode(&key).unwrap(), "10.99.0.1:7946");
                std::thread::sleep(Duration::from_millis(50));
            }
        }));
    }
    let live = [backends[0], backends[2]];
    let mut book = tenbin_xdp::report::HealthBook::new(Duration::from_secs(2));
    let t0 = std::time::Instant::now();
    service_stop[2].store(true, Ordering::Relaxed);
    let mut noticed = false;
    for _ in 0..200 {
        let mut buf = [0u8; 512];
        if let Ok(n) = inbox.recv(&mut buf) {
            if let Ok(r) = tenbin_xdp::report::Report::decode(&buf[..n], &key) {
                book.on_report(&r, t0.elapsed());
            }
        }
        let mut s = spec(&live);
        book.overlay(&mut s, t0.elapsed());
        mux.apply(&s).unwrap();
        if book.verdict(backends[2].0, vip, 80, 6, t0.elapsed())
            == tenbin_xdp::report::Verdict::Failing
        {
            noticed = true;
            break;
        }
    }
    assert!(
        noticed,
        "backend 3's agent never reported its stopped service"
    );
    assert_eq!(
        book.verdict(backends[0].0, vip, 80, 6, t0.elapsed()),
        tenbin_xdp::report::Verdict::Healthy
    );
    for _ in 0..12 {
        let mut s = connect(&cl);
        assert_eq!(
            get(&mut s).expect("new connection"),
            "backend-1",
            "only backend 1 is left"
        );
    }

    stop.store(true, Ordering::Relaxed);
    for f in &service_stop {
        f.store(true, Ordering::Relaxed);
    }
    for s in senders {
        let _ = s.join();
    }
    drop(conns);
    drop(mux);
    drop(agents);
}
