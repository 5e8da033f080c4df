//! The scale-out lab of #12, in network namespaces: a BIRD 2 router (multipath, L4 hash),
//! three `tenbin mux run` Muxes (XDP, IPIP, `[bgp]`), three backends running `tenbin agent`
//! (decap, VIP on lo, health reports) and a keep-alive HTTP server, and a client.
//! Checked: new flows spread over the three Muxes; kill -9 of a Mux leaves established
//! connections working through the others (same backend: every Mux hashes alike); a
//! graceful drain (SIGTERM) fails no request; a stopped service leaves the ring without a
//! withdrawal, and the VIP is withdrawn when its last backend fails; with the Muxes run by
//! `tenbin run` instead, `tenbin ctl drain-mux` withdraws a Mux's VIP with its session up and
//! fails no request, and `undrain-mux` announces it again. Root only.
mod bgp_lab;

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgp_lab::netns::get;
use bgp_lab::{in_ns, nexthops, serve, sh, wait_for, Lab, VIP4};
use tenbin_testkit::skip::{need_root, need_tools};

const LIMIT: Duration = Duration::from_secs(20);
const KEY: &str = "tenbin scale-out lab report key";
const CONNS: usize = 48;

fn mux_config(i: u8, seed: u32, bfd: bool, backends: &[(String, String)]) -> String {
    let mut c = format!(
        r#"
[mux]
interface = "eth0"
seed = {seed}
report_listen = "10.88.0.1{i}:7946"
report_key = "{KEY}"
report_timeout = "2s"

[[mux.vip]]
address = "{VIP4}"
port = 80
protocol = "tcp"
forward = "ipip"
"#
    );
    for (addr, mac) in backends {
        c.push_str(&format!(
            "[[mux.vip.backend]]\naddress = \"{addr}\"\nmac = \"{mac}\"\n"
        ));
    }
    c.push_str(&format!(
        r#"
[bgp]
router_id = "10.88.0.1{i}"
local_as = 65001
hold_time = 3
connect_retry = "1s"
connect_retry_max = "2s"
linger = "2s"
bfd_interval = "200ms"

[[bgp.neighbor]]
address = "10.88.0.1"
remote_as = 65000
ipv6 = false
bfd = {bfd}
"#
    ));
    c
}

fn agent_config(i: u8) -> String {
    format!(
        r#"
[agent]
interface = "eth0"
vips = ["{VIP4}"]
backend_address = "10.88.0.2{i}"
report_to = ["10.88.0.11:7946", "10.88.0.12:7946", "10.88.0.13:7946"]
report_key = "{KEY}"
report_interval = "200ms"

[[agent.check]]
vip = "{VIP4}"
port = 80
"#
    )
}

fn bird_config(bfd: bool) -> String {
    let (proto, on) = if bfd {
        (
            "protocol bfd { interface \"*\" { min rx interval 200 ms; min tx interval 200 ms; multiplier 3; }; }",
            "bfd on;",
        )
    } else {
        ("", "")
    };
    format!(
        r#"
router id 10.88.0.1;
protocol device {{ scan time 10; }}
protocol kernel {{ ipv4 {{ import none; export all; }}; merge paths yes limit 16; }}
{proto}
template bgp mux {{
  local as 65000; hold time 3; keepalive time 1;
  connect retry time 1; error wait time 1, 5; {on}
  ipv4 {{ import all; export none; }};
}}
protocol bgp m1 from mux {{ neighbor 10.88.0.11 as 65001; }}
protocol bgp m2 from mux {{ neighbor 10.88.0.12 as 65001; }}
protocol bgp m3 from mux {{ neighbor 10.88.0.13 as 65001; }}
"#
    )
}

fn connect(client: &str) -> std::io::Result<TcpStream> {
    let s = in_ns(client, || {
        TcpStream::connect_timeout(
            &SocketAddr::new(VIP4.parse().unwrap(), 80),
            Duration::from_secs(2),
        )
    })?;
    s.set_read_timeout(Some(Duration::from_secs(2)))?;
    Ok(s)
}

/// New flows the Mux in `ns` saw (first packets without a flow entry: SYNs).
fn new_flows(ns: &str) -> u64 {
    let text = sh(&format!(
        "ip netns exec {ns} curl -s --max-time 2 http://127.0.0.1:9100/metrics"
    ));
    text.lines()
        .find_map(|l| l.strip_prefix("tenbin_mux_packets_total{verdict=\"lru_miss_syn\"} "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Requests on every connection; returns how many answered from the same backend.
fn still_served(conns: &mut [(TcpStream, String)]) -> usize {
    let mut ok = 0;
    for (s, who) in conns.iter_mut() {
        if get(s).is_ok_and(|b| b == *who) {
            ok += 1;
        }
    }
    ok
}

/// The running lab: namespaces and processes, the backends' service switches, the
/// pass-through programs on the Muxes' bridge ports, and where BIRD and the client are.
struct ScaleOut {
    lab: Lab,
    router: String,
    client: String,
    bridge: String,
    services: Vec<Arc<AtomicBool>>,
    _passes: Vec<tenbin_xdp::loader::Program>,
}

const ALL: [&str; 3] = ["10.88.0.11", "10.88.0.12", "10.88.0.13"];

/// What runs each Mux: the `tenbin mux run` shell (counters on :9100), or the node
/// (`tenbin run`, admin API on 127.0.0.1:9180 in the Mux's namespace).
#[derive(Clone, Copy, PartialEq)]
enum Runner {
    MuxRun,
    Node,
}

impl ScaleOut {
    /// Builds the lab with per-Mux flow-hash seeds and waits for the 3-way ECMP route.
    fn start(tag: &str, seeds: [u32; 3], bfd: bool, runner: Runner) -> Option<ScaleOut> {
        if !need_root("network namespaces, XDP, BIRD")
            || !need_tools(&["bird", "birdc", "ip", "curl", "ethtool", "nft"])
        {
            return None;
        }
        let mut lab = Lab::empty(tag);
        let sw = lab.net.add_ns("sw");
        sh(&format!(
            "ip -n {sw} link add br0 type bridge && ip -n {sw} link set br0 up"
        ));
        let r = lab.net.plug(&sw, "r", "10.88.0.1/24");
        bgp_lab::router_sysctls(&r);
        // The client sits behind the router on a link of its own.
        let cl = lab.net.add_ns("cl");
        let p = lab.prefix().to_string();
        sh(&format!(
            "ip link add {p}-c type veth peer name rc netns {r} && ip link set {p}-c netns {cl} && \
             ip -n {cl} link set {p}-c name eth0 && ip -n {cl} addr add 10.66.0.2/24 dev eth0 && \
             ip -n {cl} link set eth0 up && ip -n {r} addr add 10.66.0.1/24 dev rc && ip -n {r} link set rc up && \
             ip -n {cl} route add default via 10.66.0.1 && \
             ip netns exec {cl} ethtool -K eth0 tx off >/dev/null && ip netns exec {r} ethtool -K rc tx off >/dev/null"
        ));
        let mut backends = Vec::new();
        let mut services = Vec::new();
        for i in 1..=3u8 {
            let b = lab
                .net
                .plug(&sw, &format!("b{i}"), &format!("10.88.0.2{i}/24"));
            sh(&format!("ip -n {b} route add default via 10.88.0.1"));
            let mac = bgp_lab::netns::Lab::mac(&b);
            let mac = mac
                .iter()
                .map(|x| format!("{x:02x}"))
                .collect::<Vec<_>>()
                .join(":");
            backends.push((format!("10.88.0.2{i}"), mac));
            let conf = lab.write(&format!("agent{i}.toml"), &agent_config(i));
            lab.spawn(
                &format!("agent{i}"),
                &b,
                &[env!("CARGO_BIN_EXE_tenbin"), "agent", "-c", &conf],
            );
            wait_for("the agent's VIP on lo", LIMIT, || {
                sh(&format!("ip -n {b} addr show dev lo"))
                    .contains(VIP4)
                    .then_some(())
            });
            let listener = in_ns(&b, || {
                std::net::TcpListener::bind((VIP4, 80)).expect("bind VIP")
            });
            let stop = Arc::new(AtomicBool::new(false));
            serve(listener, format!("backend-{i}"), stop.clone());
            services.push(stop);
        }
        // XDP_TX into a veth is delivered only if the peer runs XDP: pass-through on Mux ports.
        let mut passes = Vec::new();
        for i in 1..=3u8 {
            let m = lab
                .net
                .plug(&sw, &format!("m{i}"), &format!("10.88.0.1{i}/24"));
            let port = format!("p-m{i}");
            passes.push(in_ns(&sw, || {
                let mut p = tenbin_xdp::loader::Program::pass().expect("pass program");
                p.attach(&port).expect("attach pass");
                p
            }));
            let mut text = mux_config(i, seeds[usize::from(i - 1)], bfd, &backends);
            if runner == Runner::Node {
                text.push_str("\n[admin]\nlisten = \"127.0.0.1:9180\"\n");
            }
            let conf = lab.write(&format!("mux{i}.toml"), &text);
            let tenbin = env!("CARGO_BIN_EXE_tenbin");
            let argv: &[&str] = match runner {
                Runner::MuxRun => &[
                    tenbin,
                    "mux",
                    "run",
                    "-c",
                    &conf,
                    "--metrics",
                    "127.0.0.1:9100",
                ],
                Runner::Node => &[tenbin, "run", "-c", &conf],
            };
            lab.spawn(&format!("mux{i}"), &m, argv);
        }
        let bird_conf = lab.write("bird.conf", &bird_config(bfd));
        let ctl = lab.path("bird.ctl").display().to_string();
        lab.spawn("bird", &r, &["bird", "-f", "-c", &bird_conf, "-s", &ctl]);
        let up = Instant::now();
        wait_for("three next hops", LIMIT, || {
            (nexthops(&r, VIP4, false) == ALL).then_some(())
        });
        println!("ECMP route with 3 next hops after {:?}", up.elapsed());

        Some(ScaleOut {
            lab,
            router: r,
            client: cl,
            bridge: sw,
            services,
            _passes: passes,
        })
    }

    /// Opens `CONNS` keep-alive connections through the VIP, each with one answered request.
    fn connections(&self) -> Vec<(TcpStream, String)> {
        (0..CONNS)
            .map(|_| {
                let mut s = connect(&self.client).expect("connect through the VIP");
                let who = get(&mut s).expect("first response");
                (s, who)
            })
            .collect()
    }

    fn hops(&self) -> Vec<String> {
        nexthops(&self.router, VIP4, false)
    }
}

#[test]
fn three_muxes_behind_bird_survive_a_kill_a_drain_and_backend_failures() {
    let Some(mut x) = ScaleOut::start("bgs", [7, 7, 7], false, Runner::MuxRun) else {
        return;
    };
    // New flows spread over the three Muxes and the three backends.
    let mut conns = x.connections();
    let cl = x.client.clone();
    // The counters are exported once per control-loop turn: wait for all the SYNs.
    let flows = wait_for("every connection counted on a Mux", LIMIT, || {
        let f: Vec<u64> = (1..=3).map(|i| new_flows(&x.lab.mux(i))).collect();
        (f.iter().sum::<u64>() >= CONNS as u64).then_some(f)
    });
    println!("new flows per Mux: {flows:?}");
    for i in 1..=3 {
        let text = sh(&format!(
            "ip netns exec {} curl -s --max-time 2 http://127.0.0.1:9100/metrics",
            x.lab.mux(i)
        ));
        for want in [
            "tenbin_bgp_session_established{peer=\"10.88.0.1\"} 1",
            "tenbin_bgp_prefixes_announced{peer=\"10.88.0.1\"} 1",
            "tenbin_bgp_flaps_total{peer=\"10.88.0.1\"} 0",
        ] {
            assert!(text.contains(want), "Mux {i} lacks `{want}`:\n{text}");
        }
    }
    assert!(
        flows.iter().all(|&f| f > 0),
        "every Mux took new flows: {flows:?}"
    );
    let mut names: Vec<&str> = conns.iter().map(|c| c.1.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names, ["backend-1", "backend-2", "backend-3"]);

    // kill -9 of Mux 2: BIRD drops its next hop, and flows it carried move to the others,
    // which pick the same backend (same seed, same ring).
    let killed = Instant::now();
    x.lab.signal("mux2", "KILL");
    wait_for("Mux 2's next hop to go", LIMIT, || {
        (x.hops() == ["10.88.0.11", "10.88.0.13"]).then_some(())
    });
    let recovered = killed.elapsed();
    let survived = still_served(&mut conns);
    println!(
        "kill -9: route gone after {recovered:?}; {survived}/{CONNS} established connections kept working"
    );
    assert_eq!(
        survived, CONNS,
        "established connections survive a Mux loss"
    );
    for _ in 0..12 {
        let mut s = connect(&cl).expect("a new connection after the loss");
        get(&mut s).expect("answered");
    }

    // Graceful drain of Mux 3 (SIGTERM: withdraw, linger, close): requests keep flowing on
    // every connection the whole time, and none fails.
    x.lab.signal("mux3", "TERM");
    let mut failed = 0;
    let mut rounds = 0;
    let drain = Instant::now();
    while drain.elapsed() < LIMIT {
        rounds += 1;
        failed += CONNS - still_served(&mut conns);
        if x.hops() == ["10.88.0.11"] && x.lab.exited("mux3") {
            break;
        }
    }
    assert!(x.lab.wait_exit("mux3", LIMIT), "{}", x.lab.log("mux3"));
    failed += CONNS - still_served(&mut conns);
    println!("graceful drain: {rounds} rounds of {CONNS} requests, {failed} failed");
    assert_eq!(failed, 0);

    // A stopped service leaves the ring (its agent reports it), the VIP stays announced.
    x.services[0].store(true, Ordering::Relaxed);
    wait_for("new flows to avoid backend 1", LIMIT, || {
        (0..6)
            .all(|_| {
                connect(&cl)
                    .and_then(|mut s| get(&mut s))
                    .is_ok_and(|b| b != "backend-1")
            })
            .then_some(())
    });
    assert_eq!(x.hops(), ["10.88.0.11"], "nothing withdrawn");
    // The last backends failing withdraw the VIP.
    x.services[1].store(true, Ordering::Relaxed);
    x.services[2].store(true, Ordering::Relaxed);
    wait_for("the VIP's withdrawal", LIMIT, || {
        x.hops().is_empty().then_some(())
    });
}

/// Cuts Mux 2 off at its bridge port (everything dropped both ways: no FIN, no RST, the
/// process lives on) and returns how long the router kept its route, and how many
/// established connections kept working on their backend.
fn cut_off_mux_2(x: &mut ScaleOut) -> (Duration, usize) {
    let mut conns = x.connections();
    let sw = &x.bridge;
    sh(&format!(
        "ip netns exec {sw} nft add table bridge cut && \
         ip netns exec {sw} nft add chain bridge cut fw '{{ type filter hook forward priority 0; }}' && \
         ip netns exec {sw} nft add rule bridge cut fw iifname p-m2 drop && \
         ip netns exec {sw} nft add rule bridge cut fw oifname p-m2 drop"
    ));
    let cut = Instant::now();
    wait_for("the router to drop Mux 2", LIMIT, || {
        (x.hops() == ["10.88.0.11", "10.88.0.13"]).then_some(())
    });
    let recovered = cut.elapsed();
    // Connections through Mux 2 lost packets meanwhile; TCP retransmits them through the
    // survivors, to the same backend.
    let survived = still_served(&mut conns);
    assert!(!x.lab.exited("mux2"), "the cut-off Mux is still running");
    (recovered, survived)
}

#[test]
fn a_silently_cut_off_mux_leaves_the_route_within_the_hold_time() {
    let Some(mut x) = ScaleOut::start("bgq", [7, 7, 7], false, Runner::MuxRun) else {
        return;
    };
    let (recovered, survived) = cut_off_mux_2(&mut x);
    println!(
        "silent failure: route gone after {recovered:?} (hold time 3 s); {survived}/{CONNS} established connections kept working"
    );
    // BIRD's hold timer is 3 s; the margin is for a loaded machine, not a tolerance.
    assert!(recovered < Duration::from_secs(5), "{recovered:?}");
    assert_eq!(survived, CONNS);
}

#[test]
fn with_bfd_a_silently_cut_off_mux_leaves_in_a_detection_time() {
    let Some(mut x) = ScaleOut::start("bgd", [7, 7, 7], true, Runner::MuxRun) else {
        return;
    };
    let ctl = x.lab.path("bird.ctl").display().to_string();
    let r = x.router.clone();
    wait_for("three BFD sessions Up in BIRD", LIMIT, || {
        let out = sh(&format!(
            "ip netns exec {r} birdc -s {ctl} show bfd sessions"
        ));
        (out.matches(" Up ").count() == 3).then_some(())
    });
    let (recovered, survived) = cut_off_mux_2(&mut x);
    println!(
        "silent failure with BFD: route gone after {recovered:?} (3 x 200 ms); {survived}/{CONNS} established connections kept working"
    );
    assert!(
        recovered < Duration::from_secs(2),
        "BFD, not the hold time: {recovered:?}"
    );
    assert_eq!(survived, CONNS);
}

#[test]
fn without_a_shared_flow_hash_connections_moved_by_ecmp_break() {
    // Plain ECMP in front of Muxes that do not hash alike: what the shared seed avoids.
    let Some(mut x) = ScaleOut::start("bgn", [7, 8, 9], false, Runner::MuxRun) else {
        return;
    };
    let mut conns = x.connections();
    x.lab.signal("mux2", "KILL");
    wait_for("Mux 2's next hop to go", LIMIT, || {
        (x.hops() == ["10.88.0.11", "10.88.0.13"]).then_some(())
    });
    let survived = still_served(&mut conns);
    println!(
        "kill -9 without a shared flow hash: {survived}/{CONNS} established connections kept working"
    );
    assert!(
        survived < CONNS,
        "some moved connections reach another backend"
    );
}

/// `tenbin ctl` against the node running Mux `i`; exit status and output.
fn ctl(x: &ScaleOut, i: u8, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &x.lab.mux(i), env!("CARGO_BIN_EXE_tenbin")])
        .args(["ctl", "--admin", "127.0.0.1:9180"])
        .args(args)
        .output()
        .expect("tenbin ctl runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn drain_mux_withdraws_the_vip_keeps_forwarding_and_fails_no_request() {
    let Some(x) = ScaleOut::start("bgm", [7, 7, 7], false, Runner::Node) else {
        return;
    };
    let mut conns = x.connections();
    let (ok, out) = ctl(&x, 3, &["drain-mux"]);
    assert!(ok && out.contains("mux drained"), "{out}");
    // Requests on every connection the whole time: those the router still sends to Mux 3
    // are forwarded by it, those it moves reach the same backend through the others.
    let mut failed = 0;
    let mut rounds = 0;
    let drain = Instant::now();
    while x.hops() != ["10.88.0.11", "10.88.0.12"] {
        assert!(
            drain.elapsed() < LIMIT,
            "Mux 3 kept its route: {:?}",
            x.hops()
        );
        rounds += 1;
        failed += CONNS - still_served(&mut conns);
    }
    for _ in 0..3 {
        rounds += 1;
        failed += CONNS - still_served(&mut conns);
    }
    println!(
        "drain-mux: route gone after {:?}; {rounds} rounds of {CONNS} requests, {failed} failed",
        drain.elapsed()
    );
    assert_eq!(failed, 0);
    let ctl_path = x.lab.path("bird.ctl").display().to_string();
    assert!(bgp_lab::birdc(&x.lab, &ctl_path, "show protocols m3").contains("Established"));
    let (_, status) = ctl(&x, 3, &["status"]);
    println!("{status}");
    assert!(status.contains("established"), "{status}");
    assert!(
        status.contains("announcing: nothing; mux drained"),
        "{status}"
    );
    let (_, again) = ctl(&x, 3, &["drain-mux"]);
    assert!(again.contains("no change"), "{again}");

    let (ok, out) = ctl(&x, 3, &["undrain-mux"]);
    assert!(ok && out.contains("mux undrained"), "{out}");
    wait_for("Mux 3's route back", LIMIT, || {
        (x.hops() == ALL).then_some(())
    });
    assert_eq!(still_served(&mut conns), CONNS);
    // The state names why each prefix is announced.
    let (_, status) = ctl(&x, 1, &["status"]);
    assert!(status.contains(&format!("{VIP4}/32 (mux)")), "{status}");
}
