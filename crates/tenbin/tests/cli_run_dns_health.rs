//! `tenbin run` with a `[dns]` section whose VIPs are health-checked: the answers follow the
//! checks. VIPs are loopback addresses (all of 127.0.0.0/8 works on `lo`), each with a TCP
//! listener this test owns; closing fra's listeners must move the answer to nrt, reopening
//! them must bring fra back. Needs `dig` (scripts/install-deps).

mod common;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::process::Command;

use common::Daemon;
use tenbin_testkit::skip;

/// The A records `dig` gets for `name` from 127.0.0.1:`port` (empty on any failure).
fn dig(server: SocketAddr, name: &str) -> BTreeSet<String> {
    dig_with(server, name, &[])
}

fn dig_with(server: SocketAddr, name: &str, extra: &[&str]) -> BTreeSet<String> {
    let out = Command::new("dig")
        .arg(format!("@{}", server.ip()))
        .args(["-p", &server.port().to_string(), "+short", "+tries=1"])
        .args(["+time=1", name, "A"])
        .args(extra)
        .output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .filter(|l| l.parse::<Ipv4Addr>().is_ok())
            .map(str::to_string)
            .collect(),
        _ => BTreeSet::new(),
    }
}

/// Polls `dig` until the answer is `want` (bounded: far above interval × fall).
fn wait_for_answer(daemon: &Daemon, dns: SocketAddr, want: &BTreeSet<String>, what: &str) {
    daemon.wait_for(&format!("{what}: answer {want:?}"), || {
        (&dig(dns, "www.example.test.") == want).then_some(())
    });
}

/// TCP listeners on every VIP at `port`, accepting (and dropping) check connections.
fn listen(vips: &[String], port: u16) -> Vec<TcpListener> {
    vips.iter()
        .map(|v| TcpListener::bind((v.as_str(), port)).expect("bind a loopback VIP"))
        .collect()
}

#[test]
fn answers_follow_vip_tcp_checks() {
    if !skip::need_tools(&["dig"]) {
        return;
    }
    // Loopback VIPs unique to this run, so parallel runs do not check each other's listeners.
    let x = 100 + std::process::id() % 100;
    let fra = vec![format!("127.{x}.1.1"), format!("127.{x}.1.2")];
    let nrt = vec![format!("127.{x}.2.1"), format!("127.{x}.2.2")];
    let first = TcpListener::bind((fra[0].as_str(), 0)).unwrap();
    let check_port = first.local_addr().unwrap().port();
    let mut fra_listeners = vec![first];
    fra_listeners.extend(listen(&fra[1..], check_port));
    let _nrt_listeners = listen(&nrt, check_port);
    let quoted = |v: &[String]| {
        v.iter()
            .map(|a| format!("\"{a}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let config = format!(
        r#"
[dns]
listen = ["127.0.0.1:0"]
default_region = "eu"
[[dns.datacenters]]
name = "fra"
[[dns.datacenters]]
name = "nrt"
[[dns.regions]]
name = "eu"
prefer = ["fra", "nrt"]
[[dns.zones]]
origin = "example.test."
soa = {{ mname = "ns1", rname = "hostmaster" }}
[[dns.gslb]]
name = "www.example.test."
check = {{ kind = "tcp", port = {check_port}, interval = "200ms", timeout = "5s", rise = 1, fall = 2 }}
pools = [
  {{ datacenter = "fra", addresses = [{fra}] }},
  {{ datacenter = "nrt", addresses = [{nrt}] }},
]
"#,
        fra = quoted(&fra),
        nrt = quoted(&nrt),
    );
    let daemon = Daemon::start(&config, "dns-health");
    let dns = daemon.bound("dns", None);
    let fra_set: BTreeSet<String> = fra.iter().cloned().collect();
    let nrt_set: BTreeSet<String> = nrt.iter().cloned().collect();

    wait_for_answer(
        &daemon,
        dns,
        &fra_set,
        "fra is preferred while its VIPs pass",
    );

    drop(fra_listeners);
    wait_for_answer(&daemon, dns, &nrt_set, "fra's VIPs refuse connections");

    let _fra_again = listen(&fra, check_port);
    wait_for_answer(&daemon, dns, &fra_set, "fra's VIPs accept again (rise = 1)");
}

/// `[dns.geoip]` through the binary: dig's ECS subnets are placed by the committed synthetic
/// database of tenbin-dns (127.0.4.0/24 is JP, 127.0.5.0/24 is DE in it).
#[test]
fn geoip_database_places_ecs_subnets() {
    if !skip::need_tools(&["dig"]) {
        return;
    }
    let db = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tenbin-dns/tests/data/geoip-test.mmdb"
    );
    let config = format!(
        r#"
[dns]
listen = ["127.0.0.1:0"]
default_region = "eu"
geoip = {{ db = "{db}", regions = {{ JP = "asia", EU = "eu" }} }}
[[dns.datacenters]]
name = "fra"
[[dns.datacenters]]
name = "nrt"
[[dns.regions]]
name = "eu"
prefer = ["fra", "nrt"]
[[dns.regions]]
name = "asia"
prefer = ["nrt", "fra"]
[[dns.zones]]
origin = "example.test."
soa = {{ mname = "ns1", rname = "hostmaster" }}
[[dns.gslb]]
name = "www.example.test."
pools = [
  {{ datacenter = "fra", addresses = ["198.51.100.1"] }},
  {{ datacenter = "nrt", addresses = ["203.0.113.1"] }},
]
"#
    );
    let daemon = Daemon::start(&config, "dns-geoip");
    let dns = daemon.bound("dns", None);
    let one = |a: &str| BTreeSet::from([a.to_string()]);
    let asia = dig_with(dns, "www.example.test.", &["+subnet=127.0.4.0/24"]);
    assert_eq!(asia, one("203.0.113.1"), "JP -> asia -> nrt");
    let eu = dig_with(dns, "www.example.test.", &["+subnet=127.0.5.0/24"]);
    assert_eq!(eu, one("198.51.100.1"), "DE, continent EU -> fra");
}
