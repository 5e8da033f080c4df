//! `GET /metrics` of a running `tenbin run` that served HTTP, TCP and DNS traffic:
//! Debian's `promtool check metrics` finds nothing to complain about, the counters equal
//! the traffic sent, and a real Prometheus server scraping the node every second reads a
//! per-server request rate that matches the rate the test paced its client at.
//! Needs `promtool`, `prometheus` and `dig` (scripts/install-deps).

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{admin_request, Daemon, TempDir};
use tenbin_testkit::{backend, skip};

/// Every sample of an exposition, keyed by `name{labels}` exactly as written.
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

fn scrape(admin: SocketAddr) -> String {
    let (status, body) = admin_request(admin, "GET", "/metrics", "");
    assert_eq!(status, 200, "{body}");
    body
}

/// One HTTP/1.0 GET on a connection of its own; the status.
fn get(addr: SocketAddr) -> u16 {
    admin_request(addr, "GET", "/", "").0
}

const DNS: &str = r#"
[dns]
listen = ["127.0.0.1:0"]
default_region = "eu"
[[dns.datacenters]]
name = "fra"
[[dns.regions]]
name = "eu"
prefer = ["fra"]
[[dns.zones]]
origin = "example.test."
soa = { mname = "ns1", rname = "hostmaster" }
[[dns.gslb]]
name = "www.example.test."
pools = [{ datacenter = "fra", addresses = ["198.51.100.1"] }]
"#;

fn config(a: SocketAddr, b: SocketAddr, echo: Option<SocketAddr>, dns: bool) -> String {
    let mut c = format!(
        r#"
[admin]
listen = "127.0.0.1:0"
[[frontend]]
name = "web"
bind = ["127.0.0.1:0"]
mode = "http"
default_pool = "web"
[[pool]]
name = "web"
algorithm = "roundrobin"
[[pool.server]]
name = "a"
address = "{a}"
[[pool.server]]
name = "b"
address = "{b}"
"#
    );
    if let Some(e) = echo {
        c.push_str(&format!(
            r#"
[[frontend]]
name = "raw"
bind = ["127.0.0.1:0"]
mode = "tcp"
default_pool = "echo"
[[pool]]
name = "echo"
[[pool.server]]
name = "e"
address = "{e}"
"#
        ));
    }
    if dns {
        c.push_str(DNS);
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_accepts_the_scrape_and_counters_match_the_traffic() {
    if !skip::need_tools(&["promtool", "dig"]) {
        return;
    }
    let a = backend::http().name("a").spawn().await;
    let b = backend::http().name("b").spawn().await;
    let echo = backend::tcp_echo().name("e").spawn().await;
    let daemon = Daemon::start(
        &config(a.addr(), b.addr(), Some(echo.addr()), true),
        "metrics-promtool",
    );
    let (web, raw) = (
        daemon.bound("http", Some("web")),
        daemon.bound("tcp", Some("raw")),
    );
    let (dns, admin) = (daemon.bound("dns", None), daemon.bound("admin", None));

    const HTTP: usize = 10;
    const TCP: usize = 3;
    const QUERIES: usize = 4;
    let sent = tokio::task::spawn_blocking(move || {
        for _ in 0..HTTP {
            assert_eq!(get(web), 200);
        }
        for _ in 0..TCP {
            let mut s = TcpStream::connect(raw).unwrap();
            s.write_all(b"ping").unwrap();
            let mut buf = [0u8; 4];
            std::io::Read::read_exact(&mut s, &mut buf).unwrap();
            assert_eq!(&buf, b"ping");
        }
        for _ in 0..QUERIES {
            assert_eq!(common::dig(dns, "www.example.test."), "198.51.100.1");
        }
    });
    sent.await.unwrap();
    assert_eq!((a.hits(), b.hits()), (HTTP / 2, HTTP / 2), "round robin");

    // Connections count their bytes when they end: wait until none is open (the tcp
    // sessions end once the backend closes after the client).
    let text = tokio::task::spawn_blocking(move || {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let text = scrape(admin);
            let s = samples(&text);
            let closed = |f: &str| {
                s.get(&format!(r#"tenbin_frontend_connections{{frontend="{f}"}}"#)) == Some(&0.0)
            };
            if closed("raw") && closed("web") {
                return text;
            }
            assert!(Instant::now() < deadline, "connections still open:\n{text}");
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await
    .unwrap();

    let dir = TempDir::new("metrics-promtool");
    let file = dir.write("scrape.txt", &text);
    let out = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool check metrics: {:?}\n{said}\n---\n{text}",
        out.status
    );

    let s = samples(&text);
    let n = |series: &str| -> f64 {
        *s.get(series)
            .unwrap_or_else(|| panic!("no `{series}` in:\n{text}"))
    };
    let h = HTTP as f64;
    assert_eq!(n(r#"tenbin_frontend_connections_total{frontend="web"}"#), h);
    assert_eq!(
        n(r#"tenbin_frontend_requests_total{frontend="web",class="2xx"}"#),
        h
    );
    assert_eq!(
        n(r#"tenbin_frontend_requests_total{frontend="web",class="5xx"}"#),
        0.0
    );
    assert_eq!(
        n(r#"tenbin_request_duration_seconds_count{frontend="web"}"#),
        h
    );
    assert_eq!(
        n(r#"tenbin_request_duration_seconds_bucket{frontend="web",le="+Inf"}"#),
        h
    );
    assert_eq!(
        n(r#"tenbin_server_requests_total{pool="web",server="a"}"#),
        h / 2.0
    );
    assert_eq!(
        n(r#"tenbin_server_requests_total{pool="web",server="b"}"#),
        h / 2.0
    );
    assert_eq!(n(r#"tenbin_server_up{pool="web",server="a"}"#), 1.0);
    assert_eq!(
        n(r#"tenbin_server_weight{pool="web",server="a",kind="configured"}"#),
        1.0
    );
    // Every request line the client sent is in the bytes received.
    let request = "GET / HTTP/1.0\r\nHost: admin\r\nContent-Length: 0\r\n\r\n".len() as f64;
    assert_eq!(
        n(r#"tenbin_frontend_received_bytes_total{frontend="web"}"#),
        h * request
    );
    assert!(n(r#"tenbin_frontend_sent_bytes_total{frontend="web"}"#) > 0.0);

    let t = TCP as f64;
    assert_eq!(n(r#"tenbin_frontend_connections_total{frontend="raw"}"#), t);
    assert_eq!(
        n(r#"tenbin_server_requests_total{pool="echo",server="e"}"#),
        t
    );
    assert_eq!(
        n(r#"tenbin_frontend_received_bytes_total{frontend="raw"}"#),
        t * 4.0
    );
    assert_eq!(
        n(r#"tenbin_frontend_sent_bytes_total{frontend="raw"}"#),
        t * 4.0
    );

    let q = QUERIES as f64;
    let answered: f64 = ["fast", "full"]
        .iter()
        .map(|p| {
            n(&format!(
                r#"tenbin_dns_queries_total{{transport="udp",path="{p}"}}"#
            ))
        })
        .sum();
    assert_eq!(answered, q);
    assert_eq!(n(r#"tenbin_dns_answers_total{dc="fra"}"#), q);
    assert_eq!(n(r#"tenbin_config_reloads_total{result="ok"}"#), 0.0);
    assert_eq!(n("tenbin_config_generation"), 1.0);
}

/// A Prometheus server on a free loopback port, killed (its data removed) on drop.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    log: std::path::PathBuf,
}

impl Prometheus {
    /// Starts Prometheus scraping `target` every second. Its port is found by binding port 0
    /// and releasing it, which another process may take meanwhile: a start that exits is
    /// retried on a new port, a bounded number of times.
    fn start(dir: &TempDir, target: SocketAddr) -> Prometheus {
        let config = dir.write(
            "prometheus.yml",
            &format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: tenbin\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        );
        for attempt in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let log = dir.0.join(format!("prometheus-{attempt}.log"));
            let child = Command::new("prometheus")
                .arg(format!("--config.file={}", config.display()))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.0.join("tsdb").display()
                ))
                .arg(format!("--web.listen-address={addr}"))
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .expect("prometheus starts");
            let mut p = Prometheus { child, addr, log };
            if p.wait_ready() {
                return p;
            }
        }
        panic!("prometheus did not start in 5 attempts");
    }

    /// Waits (bounded, 30 s) for `/-/ready`; `false` when the process exited first.
    fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            if admin_request(self.addr, "GET", "/-/ready", "").0 == 200 {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "prometheus not ready:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }

    /// The instant vector of `query`: (labels, value) per series.
    fn query(&self, query: &str) -> Vec<(serde_json::Value, f64)> {
        let enc: String = query
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let (status, body) =
            admin_request(self.addr, "GET", &format!("/api/v1/query?query={enc}"), "");
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|r| {
                let value = r["value"][1].as_str()?.parse().ok()?;
                Some((r["metric"].clone(), value))
            })
            .collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- prometheus log ----\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

/// The paced client's rate: 20 requests/s over two round-robin servers, 10/s each.
const PER_SECOND: f64 = 20.0;
/// Each server's rate as Prometheus computes it must be within this fraction of 10/s: a
/// 5 s window at a 1 s scrape interval sees 4 to 5 intervals, so one request's worth of
/// jitter at either edge is well inside it.
const TOLERANCE: f64 = 0.2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_reads_the_per_server_rate_the_client_sent() {
    if !skip::need_tools(&["prometheus"]) {
        return;
    }
    let a = backend::http().name("a").spawn().await;
    let b = backend::http().name("b").spawn().await;
    let daemon = Daemon::start(
        &config(a.addr(), b.addr(), None, false),
        "metrics-prometheus",
    );
    let (web, admin) = (
        daemon.bound("http", Some("web")),
        daemon.bound("admin", None),
    );
    let dir = TempDir::new("metrics-prometheus");

    let rates = tokio::task::spawn_blocking(move || {
        let prom = Prometheus::start(&dir, admin);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        // Paced, bounded client: at most 60 s of traffic; it stops once the test has its answer.
        let client = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let start = Instant::now();
                for i in 0..(PER_SECOND as u32 * 60) {
                    if stop.load(std::sync::atomic::Ordering::Relaxed) {
                        return;
                    }
                    let due = start + Duration::from_secs_f64(f64::from(i) / PER_SECOND);
                    std::thread::sleep(due.saturating_duration_since(Instant::now()));
                    assert_eq!(get(web), 200);
                }
            })
        };
        let query = r#"rate(tenbin_server_requests_total{pool="web"}[5s])"#;
        let want = PER_SECOND / 2.0;
        let deadline = Instant::now() + Duration::from_secs(50);
        let (found, last) = loop {
            // Rates over windows that include the start of traffic are lower; wait for one
            // whose every sample is under load, for both servers.
            let last = prom.query(query);
            let ok = last.len() == 2
                && last
                    .iter()
                    .all(|(_, r)| (r - want).abs() <= want * TOLERANCE);
            if ok || Instant::now() >= deadline {
                break (ok, last);
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        client.join().unwrap();
        (found, last)
    })
    .await
    .unwrap();
    let (found, last) = rates;
    assert!(
        found,
        "Prometheus never read {} ± {}% per server; last: {last:?}",
        PER_SECOND / 2.0,
        TOLERANCE * 100.0
    );
    let servers: Vec<&str> = last
        .iter()
        .filter_map(|(m, _)| m["server"].as_str())
        .collect();
    assert_eq!(servers.len(), 2);
    assert!(
        servers.contains(&"a") && servers.contains(&"b"),
        "{servers:?}"
    );
}
