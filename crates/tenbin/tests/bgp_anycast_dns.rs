//! Anycast authoritative DNS: two `tenbin run` DNS nodes behind a BIRD 2 router (multipath)
//! listen on the same address (on each node's `lo`) and announce it with
//! `[bgp].announce_dns`; a client namespace asks with `dig` through the router.
//!
//! Both nodes answer (ECMP); a node whose DNS tier stops answering (UDP/53 dropped by nftables
//! in its namespace, the process and its BGP session alive) withdraws the address and takes
//! it back once it answers again; kill -9 of one node keeps `dig` answering from the other;
//! SIGTERM withdraws, lingers with the session up, then exits 0. Root only.
mod bgp_lab;

use std::time::{Duration, Instant};

use bgp_lab::{birdc, nexthops, sh, wait_for, Lab};
use tenbin_testkit::skip::{need_root, need_tools};

const LIMIT: Duration = Duration::from_secs(20);
const ANYCAST: &str = "10.53.0.1";

fn bird_config() -> String {
    let mut c = String::from(
        r#"
router id 10.88.1.1;
protocol device { scan time 10; }
protocol kernel k4 { ipv4 { import none; export all; }; merge paths yes limit 16; }
template bgp dns {
  local as 65000; hold time 3; keepalive time 1;
  connect retry time 1; error wait time 1, 5;
  ipv4 { import all; export none; };
}
"#,
    );
    for i in 1..=2 {
        c.push_str(&format!(
            "protocol bgp n{i} from dns {{ neighbor 10.88.1{i}.2 as 65001; }}\n"
        ));
    }
    c
}

/// Node `i`: the zone with a TXT record naming the node, `[bgp]` announcing the DNS
/// address, the admin API on the namespace's own loopback.
fn node_config(i: u8) -> String {
    format!(
        r#"
[admin]
listen = "127.0.0.1:9180"

[dns]
listen = ["{ANYCAST}:53"]
udp_sockets = 1

[[dns.zones]]
origin = "anycast.test."
soa = {{ mname = "ns1", rname = "hostmaster" }}
records = [
  {{ name = "@", type = "NS", data = "ns1" }},
  {{ name = "ns1", type = "A", data = "{ANYCAST}" }},
  {{ name = "who", type = "TXT", data = "node{i}" }},
]

"#
    ) + &bgp_lab::bgp_section(
        i,
        "announce_dns = true\ndns_check_interval = \"200ms\"\n",
        "remote_as = 65000\nipv6 = false\n",
    )
}

/// One `dig` from the client through the router (3 tries, 1 s each); the node that
/// answered, or None.
fn dig(client: &str) -> Option<String> {
    let out = sh(&format!(
        "ip netns exec {client} dig @{ANYCAST} who.anycast.test TXT +short +tries=3 +time=1 || true"
    ));
    // A try that met the dead node prints `;; communications error ...` before the answer
    // a later try got: the answer is the line that names a node, wherever it is.
    out.lines()
        .map(|l| l.trim().trim_matches('"'))
        .find(|l| l.starts_with("node"))
        .map(str::to_string)
}

/// `tenbin ctl status` run in node `i`'s namespace.
fn status(lab: &Lab, i: u8) -> String {
    tenbin_ctl(lab, i, "status").1
}

/// `tenbin ctl COMMAND` run in node `i`'s namespace: its exit code and output.
fn tenbin_ctl(lab: &Lab, i: u8, command: &str) -> (Option<i32>, String) {
    let out = std::process::Command::new("ip")
        .args(["netns", "exec", &lab.mux(i), env!("CARGO_BIN_EXE_tenbin")])
        .args(["ctl", "--admin", "127.0.0.1:9180", command])
        .output()
        .expect("tenbin ctl runs");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

#[test]
fn two_dns_nodes_share_an_anycast_address_and_withdraw_when_they_stop_answering() {
    if !need_root("network namespaces, BIRD") || !need_tools(&["bird", "birdc", "ip", "dig", "nft"])
    {
        return;
    }
    let mut lab = Lab::new("bad");
    let r = lab.router();
    for i in 1..=2u8 {
        let n = lab.add_mux(i);
        sh(&format!(
            "ip -n {n} addr add {ANYCAST}/32 dev lo && ip -n {n} route add default via 10.88.1{i}.1"
        ));
    }
    let c = lab.net.add_ns("c");
    let p = lab.prefix().to_string();
    sh(&format!(
        "ip link add {p}-c type veth peer name rc netns {r} && ip link set {p}-c netns {c} && \
         ip -n {c} link set {p}-c name eth0 && ip -n {c} addr add 10.66.0.2/24 dev eth0 && \
         ip -n {c} link set eth0 up && ip -n {r} addr add 10.66.0.1/24 dev rc && \
         ip -n {r} link set rc up && ip -n {c} route add default via 10.66.0.1"
    ));
    let conf = lab.write("bird.conf", &bird_config());
    let ctl = lab.path("bird.ctl").display().to_string();
    lab.spawn("bird", &r, &["bird", "-f", "-c", &conf, "-s", &ctl]);
    for i in 1..=2u8 {
        let conf = lab.write(&format!("node{i}.toml"), &node_config(i));
        let ns = lab.mux(i);
        lab.spawn(
            &format!("node{i}"),
            &ns,
            &[env!("CARGO_BIN_EXE_tenbin"), "run", "-c", &conf],
        );
    }
    let both = ["10.88.11.2", "10.88.12.2"];
    wait_for("two next hops for the anycast address", LIMIT, || {
        (nexthops(&r, ANYCAST, false) == both).then_some(())
    });
    println!("{}", sh(&format!("ip -n {r} route show {ANYCAST}")));

    // ECMP with an L4 hash: dig's random source ports reach both nodes.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..60 {
        seen.insert(dig(&c).expect("an answer through the router"));
        if seen.len() == 2 {
            break;
        }
    }
    assert_eq!(seen.len(), 2, "answers came only from {seen:?}");
    let s = status(&lab, 1);
    println!("{s}");
    assert!(s.contains("established"), "{s}");
    assert!(s.contains(&format!("{ANYCAST}/32 (dns)")), "{s}");
    // drain-mux on a node without [mux] is refused (exit 1) and withdraws nothing.
    let (code, out) = tenbin_ctl(&lab, 1, "drain-mux");
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("no [mux]"), "{out}");
    assert_eq!(nexthops(&r, ANYCAST, false), both);

    // Node 2's DNS tier stops answering (the process and its session live on): it withdraws.
    let n2 = lab.mux(2);
    sh(&format!(
        "ip netns exec {n2} nft add table inet mute && \
         ip netns exec {n2} nft add chain inet mute input '{{ type filter hook input priority 0; }}' && \
         ip netns exec {n2} nft add rule inet mute input udp dport 53 drop"
    ));
    let muted = Instant::now();
    wait_for("node 2 to withdraw", LIMIT, || {
        (nexthops(&r, ANYCAST, false) == ["10.88.11.2"]).then_some(())
    });
    println!("silent DNS failure: withdrawn after {:?}", muted.elapsed());
    assert!(birdc(&lab, &ctl, "show protocols n2").contains("Established"));
    let s = status(&lab, 2);
    assert!(s.contains("announcing: nothing"), "{s}");
    for _ in 0..10 {
        assert_eq!(dig(&c).as_deref(), Some("node1"));
    }
    sh(&format!("ip netns exec {n2} nft delete table inet mute"));
    wait_for("node 2 to announce again", LIMIT, || {
        (nexthops(&r, ANYCAST, false) == both).then_some(())
    });

    // kill -9 of node 2 while a client keeps asking: every dig (bounded retries) is
    // answered, and once the router has dropped the dead node only node 1 answers.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let asker = {
        let (stop, c) = (stop.clone(), c.clone());
        std::thread::spawn(move || {
            let mut answers = Vec::new();
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && answers.len() < 500 {
                answers.push(dig(&c));
            }
            answers
        })
    };
    wait_for("the client's first answers", LIMIT, || dig(&c));
    let killed = Instant::now();
    lab.signal("node2", "KILL");
    wait_for("the dead node's next hop to go", LIMIT, || {
        (nexthops(&r, ANYCAST, false) == ["10.88.11.2"]).then_some(())
    });
    println!("kill -9: next hop gone after {:?}", killed.elapsed());
    for _ in 0..10 {
        assert_eq!(dig(&c).as_deref(), Some("node1"));
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let answers = asker.join().expect("the asking thread");
    let lost = answers.iter().filter(|a| a.is_none()).count();
    println!(
        "kill -9: {} queries during the failover, {lost} unanswered",
        answers.len()
    );
    assert_eq!(lost, 0, "queries went unanswered across kill -9");

    // SIGTERM: withdraw while the session stays up (linger), then Cease and exit 0.
    lab.signal("node1", "TERM");
    wait_for("the withdrawal on SIGTERM", LIMIT, || {
        nexthops(&r, ANYCAST, false).is_empty().then_some(())
    });
    assert!(
        birdc(&lab, &ctl, "show protocols n1").contains("Established"),
        "the address leaves before the session does"
    );
    assert!(lab.wait_exit("node1", LIMIT), "{}", lab.log("node1"));
}
