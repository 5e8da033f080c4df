//! `tenbin run` with a `[dns]` section whose VIPs are health-checked: the answers follow the
//! checks. VIPs are loopback addresses (all of 127.0.0.0/8 works on `lo`), each with a TCP
//! listener this test owns; closing fra's listeners must move the answer to nrt, reopening
//! them must bring fra back. Needs `dig` (scripts/install-deps).

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Kills the daemon and removes its config directory, even when an assertion fails.
struct Daemon(Child, PathBuf);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn have_dig() -> bool {
    let found = Command::new("sh")
        .args(["-c", "command -v dig"])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !found {
        println!("skipped: needs dig (scripts/install-deps)");
    }
    found
}

/// The A records `dig` gets for `name` from 127.0.0.1:`port` (empty on any failure).
fn dig(port: u16, name: &str) -> BTreeSet<String> {
    dig_with(port, name, &[])
}

fn dig_with(port: u16, name: &str, extra: &[&str]) -> BTreeSet<String> {
    let out = Command::new("dig")
        .args(["@127.0.0.1", "-p", &port.to_string(), "+short", "+tries=1"])
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

/// Polls `dig` until the answer is `want` (bounded: about 30 s, far above interval × fall).
fn wait_for_answer(port: u16, want: &BTreeSet<String>, what: &str) {
    let mut last = BTreeSet::new();
    for _ in 0..300 {
        last = dig(port, "www.example.test.");
        if &last == want {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what}: wanted {want:?}, last answer {last:?}");
}

/// TCP listeners on every VIP at `port`, accepting (and dropping) check connections.
fn listen(vips: &[String], port: u16) -> Vec<TcpListener> {
    vips.iter()
        .map(|v| TcpListener::bind((v.as_str(), port)).expect("bind a loopback VIP"))
        .collect()
}

/// Starts `tenbin run` on `config` (written to a temp file).
fn run(config: &str, tag: &str) -> Daemon {
    let dir = std::env::temp_dir().join(format!("tenbin-run-dns-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("run.toml");
    std::fs::write(&file, config).unwrap();
    Daemon(
        Command::new(env!("CARGO_BIN_EXE_tenbin"))
            .args(["run", "-c"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
        dir,
    )
}

fn free_udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn answers_follow_vip_tcp_checks() {
    if !have_dig() {
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
    let dns_port = free_udp_port();
    let quoted = |v: &[String]| {
        v.iter()
            .map(|a| format!("\"{a}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let config = format!(
        r#"
[dns]
listen = ["127.0.0.1:{dns_port}"]
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
check = {{ kind = "tcp", port = {check_port}, interval = "200ms", timeout = "500ms", rise = 1, fall = 2 }}
pools = [
  {{ datacenter = "fra", addresses = [{fra}] }},
  {{ datacenter = "nrt", addresses = [{nrt}] }},
]
"#,
        fra = quoted(&fra),
        nrt = quoted(&nrt),
    );
    let _daemon = run(&config, "health");
    let fra_set: BTreeSet<String> = fra.iter().cloned().collect();
    let nrt_set: BTreeSet<String> = nrt.iter().cloned().collect();

    wait_for_answer(dns_port, &fra_set, "fra is preferred while its VIPs pass");

    drop(fra_listeners);
    wait_for_answer(dns_port, &nrt_set, "fra's VIPs refuse connections");

    let _fra_again = listen(&fra, check_port);
    wait_for_answer(dns_port, &fra_set, "fra's VIPs accept again (rise = 1)");
}

/// `[dns.geoip]` through the binary: dig's ECS subnets are placed by the committed synthetic
/// database of tenbin-dns (127.0.4.0/24 is JP, 127.0.5.0/24 is DE in it).
#[test]
fn geoip_database_places_ecs_subnets() {
    if !have_dig() {
        return;
    }
    let db = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tenbin-dns/tests/data/geoip-test.mmdb"
    );
    let dns_port = free_udp_port();
    let config = format!(
        r#"
[dns]
listen = ["127.0.0.1:{dns_port}"]
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
    let _daemon = run(&config, "geoip");
    let one = |a: &str| BTreeSet::from([a.to_string()]);
    let mut asia = BTreeSet::new();
    for _ in 0..100 {
        asia = dig_with(dns_port, "www.example.test.", &["+subnet=127.0.4.0/24"]);
        if !asia.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(asia, one("203.0.113.1"), "JP -> asia -> nrt");
    let eu = dig_with(dns_port, "www.example.test.", &["+subnet=127.0.5.0/24"]);
    assert_eq!(eu, one("198.51.100.1"), "DE, continent EU -> fra");
}
