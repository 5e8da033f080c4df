//! Real clients (`dig`, `kdig`) and a real resolver (`unbound` with subnetcache) against the
//! running server on 127.0.0.1 with OS-chosen ports. Needs the Debian packages from
//! scripts/install-deps; without them a test skips (fails under `TENBIN_REQUIRE_PRIVILEGED=1`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Arc;
use std::time::Duration;
use tenbin_config::dns::DnsSection;
use tenbin_core::ServerState;
use tenbin_dns::{Engine, HealthSnapshot, Sockets};
use tenbin_testkit::skip;
use tokio::sync::{oneshot, watch};

const CONFIG: &str = r#"
listen = ["127.0.0.1:0"]
max_answers = 40
ttl = { min = 1, max = 3600, degraded = 1 }
[[datacenters]]
name = "fra"
[[datacenters]]
name = "nrt"
[[regions]]
name = "eu"
prefer = ["fra", "nrt"]
[[regions]]
name = "asia"
prefer = ["nrt", "fra"]
[[networks]]
cidr = "10.0.0.0/8"
region = "eu"
[[networks]]
cidr = "127.0.2.0/24"
region = "eu"
[[networks]]
cidr = "172.16.0.0/12"
region = "asia"
[[networks]]
cidr = "127.0.3.0/24"
region = "asia"
[[zones]]
origin = "example.test."
soa = { mname = "ns1", rname = "hostmaster", minimum = 1 }
records = [
  { name = "ns1", type = "A", data = "192.0.2.53" },
  { name = "big", type = "TXT", data = "BIGTEXT" },
]
[[gslb]]
name = "www.example.test."
ttl = 2
pools = [
  { datacenter = "fra", addresses = ["198.51.100.1"] },
  { datacenter = "nrt", addresses = ["203.0.113.1"] },
]
[[gslb]]
name = "many.example.test."
pools = [ { datacenter = "fra", addresses = [MANY] } ]
"#;

fn config() -> DnsSection {
    let many: Vec<String> = (1..=40).map(|i| format!("\"192.0.2.{i}\"")).collect();
    let text = CONFIG
        .replace("BIGTEXT", &"y".repeat(900))
        .replace("MANY", &many.join(","));
    toml::from_str(&text).unwrap()
}

/// A running tenbin DNS server; stops when dropped.
struct Server {
    addr: SocketAddr,
    health: watch::Sender<Arc<HealthSnapshot>>,
    stop: Option<oneshot::Sender<()>>,
    engine: Arc<Engine>,
}

impl Server {
    fn start() -> Server {
        let cfg = config();
        let engine = Arc::new(Engine::new(&cfg).unwrap());
        let sockets = Sockets::bind(&cfg.listen, 2).unwrap();
        let addr = sockets.udp[0].local_addr().unwrap();
        let (health, rx) = watch::channel(Arc::new(HealthSnapshot::default()));
        let (stop, stopped) = oneshot::channel::<()>();
        let e = engine.clone();
        tokio::spawn(async move {
            tenbin_dns::serve(e, rx, sockets, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        Server {
            addr,
            health,
            stop: Some(stop),
            engine,
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

async fn run(cmd: &str, args: &[String]) -> (String, String) {
    let out = tokio::process::Command::new(cmd)
        .args(args)
        .output()
        .await
        .unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

fn at(addr: SocketAddr) -> Vec<String> {
    args(&[
        &format!("@{}", addr.ip()),
        "-p",
        &addr.port().to_string(),
        "+time=2",
        "+retry=1",
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dig_sees_authoritative_answers_and_ecs_scope() {
    if !skip::need_tools(&["dig"]) {
        return;
    }
    let s = Server::start();
    let mut a = at(s.addr);
    a.extend(args(&[
        "www.example.test",
        "A",
        "+norec",
        "+subnet=172.16.5.0/24",
    ]));
    let (out, _) = run("dig", &a).await;
    assert!(out.contains("status: NOERROR"), "{out}");
    assert!(out.contains("flags: qr aa;"), "{out}");
    assert!(out.contains("CLIENT-SUBNET: 172.16.5.0/24/12"), "{out}");
    assert!(out.contains("IN\tA\t203.0.113.1"), "{out}");
    let mut a = at(s.addr);
    a.extend(args(&[
        "www.example.test",
        "A",
        "+subnet=10.9.0.0/16",
        "+short",
    ]));
    assert_eq!(run("dig", &a).await.0.trim(), "198.51.100.1");
    let mut a = at(s.addr);
    a.extend(args(&["nothere.example.test", "A"]));
    let (out, _) = run("dig", &a).await;
    assert!(
        out.contains("status: NXDOMAIN") && out.contains("SOA"),
        "{out}"
    );
    let mut a = at(s.addr);
    a.extend(args(&["www.example.org", "A"]));
    assert!(run("dig", &a).await.0.contains("status: REFUSED"));
    assert!(s.engine.stats().ecs_present >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kdig_tcp_and_tc_retry_get_the_whole_answer() {
    if !skip::need_tools(&["kdig", "dig"]) {
        return;
    }
    let s = Server::start();
    // Over UDP without EDNS the 900-byte TXT cannot fit: TC, then kdig retries over TCP.
    let mut a = at(s.addr);
    a.extend(args(&["big.example.test", "TXT", "+noedns"]));
    let (out, err) = run("kdig", &a).await;
    assert!(err.contains("truncated reply"), "{err}");
    assert!(
        out.contains("(TCP)") && out.contains(&"y".repeat(200)),
        "{out}"
    );
    // dig does the same TC → TCP retry.
    let mut a = at(s.addr);
    a.extend(args(&["big.example.test", "TXT", "+noedns"]));
    let (out, _) = run("dig", &a).await;
    assert!(out.contains("Truncated, retrying in TCP mode"), "{out}");
    assert!(out.contains("(TCP)"), "{out}");
    // 40 addresses: UDP without EDNS fits 29, TCP carries all 40.
    let mut a = at(s.addr);
    a.extend(args(&["many.example.test", "A", "+noedns", "+short"]));
    assert_eq!(run("dig", &a).await.0.lines().count(), 29);
    let mut a = at(s.addr);
    a.extend(args(&["many.example.test", "A", "+tcp", "+short"]));
    assert_eq!(run("kdig", &a).await.0.lines().count(), 40);
    let mut a = at(s.addr);
    a.extend(args(&[
        "www.example.test",
        "A",
        "+tcp",
        "+subnet=127.0.3.0/24",
    ]));
    let (out, _) = run("kdig", &a).await;
    assert!(
        out.contains("203.0.113.1") && out.contains("(TCP)"),
        "{out}"
    );
    assert!(s.engine.stats().truncated >= 2);
}

/// An unbound process in its own temp dir, logging to a file there; killed and cleaned up on
/// drop, its log printed when the test failed.
struct Unbound {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Unbound {
    /// What unbound wrote before it opened its log file, then the log file.
    fn log(&self) -> String {
        ["unbound.early.log", "unbound.log"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(self.dir.join(f)).ok())
            .collect()
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- unbound log ----\n{}---- end ----", self.log());
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_udp_port() -> u16 {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let t = std::net::TcpListener::bind(("127.0.0.1", s.local_addr().unwrap().port()));
    match t {
        Ok(_) => s.local_addr().unwrap().port(),
        Err(_) => free_udp_port(),
    }
}

/// unbound takes a port number, not port 0: a free one is chosen, and when something took it
/// before unbound bound it (unbound exits, saying so in its log), another is tried.
fn start_unbound(upstream: SocketAddr, dir: &Path) -> Unbound {
    for _ in 0..5 {
        let mut u = spawn_unbound(upstream, dir);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if u.log().contains("start of service") {
                return u;
            }
            if let Some(status) = u.child.try_wait().unwrap() {
                assert!(
                    u.log().contains("can't bind socket"),
                    "unbound exited ({status}):\n{}",
                    u.log()
                );
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "unbound did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    panic!("unbound found no free port in 5 tries");
}

fn spawn_unbound(upstream: SocketAddr, dir: &Path) -> Unbound {
    std::fs::create_dir_all(dir).unwrap();
    let port = free_udp_port();
    let conf = format!(
        r#"server:
  interface: 127.0.0.1
  port: {port}
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "{d}"
  pidfile: "{d}/unbound.pid"
  use-syslog: no
  verbosity: 1
  logfile: "{d}/unbound.log"
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  module-config: "subnetcache iterator"
  send-client-subnet: 127.0.0.1
  client-subnet-always-forward: yes
  max-client-subnet-ipv4: 24
  qname-minimisation: no
  num-threads: 1
  # unbound answers the RFC 6761 `test.` names itself unless told not to
  local-zone: "test." nodefault
  cache-min-ttl: 0
  infra-host-ttl: 60
forward-zone:
  name: "example.test."
  forward-addr: {ip}@{up}
remote-control:
  control-enable: no
"#,
        d = dir.display(),
        ip = upstream.ip(),
        up = upstream.port(),
    );
    let path = dir.join("unbound.conf");
    std::fs::write(&path, conf).unwrap();
    let log = std::fs::File::create(dir.join("unbound.early.log")).unwrap();
    let child = Command::new("unbound")
        .args(["-d", "-c"])
        .arg(&path)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap();
    Unbound {
        child,
        dir: dir.to_path_buf(),
        port,
    }
}

async fn via_unbound(u: &Unbound, client: &str, name: &str) -> String {
    let a = args(&[
        "@127.0.0.1",
        "-p",
        &u.port.to_string(),
        "-b",
        client,
        name,
        "A",
        "+short",
        "+time=1",
        "+retry=0",
    ]);
    run("dig", &a).await.0.trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unbound_in_front_keeps_networks_apart_and_follows_a_down_datacenter() {
    if !skip::need_tools(&["unbound", "dig"]) {
        return;
    }
    let s = Server::start();
    let dir = std::env::temp_dir().join(format!("tenbin-dns-unbound-{}", std::process::id()));
    let u = start_unbound(s.addr, &dir);
    // Wait (bounded) for unbound to answer at all.
    let mut eu = String::new();
    for _ in 0..150 {
        eu = via_unbound(&u, "127.0.2.2", "www.example.test").await;
        if eu.parse::<std::net::IpAddr>().is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(eu, "198.51.100.1", "client in 127.0.2/24 (eu) gets fra");
    let asia = via_unbound(&u, "127.0.3.2", "www.example.test").await;
    assert_eq!(
        asia, "203.0.113.1",
        "client in 127.0.3/24 (asia) gets nrt through the same unbound"
    );
    // Cached per subnet: asking again from eu still gives fra.
    assert_eq!(
        via_unbound(&u, "127.0.2.9", "www.example.test").await,
        "198.51.100.1"
    );
    assert!(s.engine.stats().ecs_present >= 2, "unbound forwarded ECS");

    // fra goes down: tenbin answers nrt at once, and unbound within the 2 s TTL.
    s.health
        .send(Arc::new(HealthSnapshot::default().with_addr(
            "198.51.100.1".parse().unwrap(),
            ServerState::Down,
        )))
        .expect("the server follows health");
    let mut direct = at(s.addr);
    direct.extend(args(&[
        "www.example.test",
        "A",
        "+short",
        "+subnet=127.0.2.0/24",
    ]));
    let mut now = String::new();
    for _ in 0..50 {
        now = run("dig", &direct).await.0.trim().to_string();
        if now == "203.0.113.1" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(now, "203.0.113.1");
    // unbound may serve fra from its cache until the 2 s TTL runs out (on its whole-second
    // clock); then it must ask again and move. Wait for that, bounded far above the TTL.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let a = via_unbound(&u, "127.0.2.2", "www.example.test").await;
        if a == "203.0.113.1" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "unbound never moved off fra; its log:\n{}",
            u.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(u);
    assert!(!dir.exists());
}
