//! `tenbin run` with a `[dns]` section whose VIPs are health-checked: the answers follow the
//! checks. VIPs are loopback addresses (all of 127.0.0.0/8 works on `lo`), each with a TCP
//! listener this test owns; closing fra's listeners must move the answer to nrt, reopening
//! them must bring fra back. Needs `dig` (scripts/install-deps).

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Kills the daemon even when an assertion fails.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
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
    let out = Command::new("dig")
        .args(["@127.0.0.1", "-p", &port.to_string(), "+short", "+tries=1"])
        .args(["+time=1", name, "A"])
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
    let dns_port = UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
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
    let dir = std::env::temp_dir().join(format!("tenbin-run-dns-health-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("run.toml");
    std::fs::write(&file, config).unwrap();
    let _daemon = Daemon(
        Command::new(env!("CARGO_BIN_EXE_tenbin"))
            .args(["run", "-c"])
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let fra_set: BTreeSet<String> = fra.iter().cloned().collect();
    let nrt_set: BTreeSet<String> = nrt.iter().cloned().collect();

    wait_for_answer(dns_port, &fra_set, "fra is preferred while its VIPs pass");
    std::fs::remove_dir_all(&dir).ok();

    drop(fra_listeners);
    wait_for_answer(dns_port, &nrt_set, "fra's VIPs refuse connections");

    let _fra_again = listen(&fra, check_port);
    wait_for_answer(dns_port, &fra_set, "fra's VIPs accept again (rise = 1)");
}
