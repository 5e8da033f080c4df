//! `tenbin agent -c FILE` honours every `[[agent.check]]`: in a network namespace of its own,
//! the real binary checks HTTP backends run by this test (which count the probes they get)
//! and its signed reports are read from a UDP socket in the namespace. HTTP status with
//! rise/fall, HTTP content, ICMP and the default TCP connect are each observed in the
//! reports; the intervals are checked by the probes' counts; SIGTERM exits 0.

use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tenbin_xdp::report::{key, Report, ReportKey};
use xdp_lab::{in_ns, Lab, Tenbin};

mod xdp_lab;

const SECRET: &str = "agent checks test shared secret";
const VIP: &str = "10.77.0.1";
/// Backends' answers.
const OK: u8 = 0;
const UNAVAILABLE: u8 = 1;
const STARTING: u8 = 2;

/// An HTTP backend in the namespace answering every request as `mode` says, counting them.
struct Backend {
    mode: Arc<AtomicU8>,
    /// Requests answered: all, and those answered while not OK.
    served: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    port: u16,
    ns: String,
}

impl Backend {
    fn start(ns: &str, port: u16) -> Backend {
        let listener = in_ns(ns, || TcpListener::bind(("0.0.0.0", port)).expect("bind"));
        let b = Backend {
            mode: Arc::new(AtomicU8::new(OK)),
            served: Arc::default(),
            failed: Arc::default(),
            stop: Arc::default(),
            port,
            ns: ns.to_string(),
        };
        let (mode, served, failed, stop) = (
            b.mode.clone(),
            b.served.clone(),
            b.failed.clone(),
            b.stop.clone(),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(mut conn) = conn else { continue };
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                if !read_head(&mut conn) {
                    continue; // a TCP connect check: no request
                }
                let m = mode.load(Ordering::SeqCst);
                if m != OK {
                    failed.fetch_add(1, Ordering::SeqCst);
                }
                served.fetch_add(1, Ordering::SeqCst);
                let (status, body) = match m {
                    OK => ("200 OK", "ready"),
                    UNAVAILABLE => ("503 Service Unavailable", "stopping"),
                    _ => ("200 OK", "starting"),
                };
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        b
    }

    fn set(&self, mode: u8) -> (u64, u64) {
        // Counted under the new mode from here on.
        self.mode.store(mode, Ordering::SeqCst);
        self.counts()
    }

    fn counts(&self) -> (u64, u64) {
        (
            self.served.load(Ordering::SeqCst),
            self.failed.load(Ordering::SeqCst),
        )
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let port = self.port;
        // Wake the accept loop so the thread ends.
        in_ns(&self.ns, || {
            TcpStream::connect(("127.0.0.1", port)).map(|_| ()).ok()
        });
    }
}

/// Reads up to the end of a request head; false on EOF or timeout first.
fn read_head(conn: &mut TcpStream) -> bool {
    let mut head = Vec::new();
    let mut buf = [0u8; 512];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 8192 {
            return false;
        }
    }
    true
}

/// The reports arriving in the namespace.
struct Inbox {
    socket: UdpSocket,
    key: ReportKey,
    log: std::path::PathBuf,
}

impl Inbox {
    /// The first report (within a bound) for which `ok` holds; `each` sees every report.
    fn until(&self, what: &str, mut ok: impl FnMut(&Report) -> bool) -> Report {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut buf = [0u8; 2048];
        while Instant::now() < deadline {
            let Ok(n) = self.socket.recv(&mut buf) else {
                continue; // read timeout: look at the deadline again
            };
            let r = Report::decode(&buf[..n], &self.key).expect("a valid signed report");
            if ok(&r) {
                return r;
            }
        }
        panic!(
            "no report where {what}; agent log:\n{}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        );
    }
}

/// The report's word on the service at `port`: None when it is left out (unchecked).
fn healthy(r: &Report, port: u16, proto: u8) -> Option<bool> {
    r.services
        .iter()
        .find(|s| s.port == port && s.proto == proto)
        .map(|s| s.healthy)
}

const STATUS: u16 = 8081;
const CONTENT: u16 = 8082;
const SLOW: u16 = 8083;
const CONNECT: u16 = 8084;
const FALL: u64 = 4;
const RISE: u64 = 3;

fn config(report_port: u16) -> String {
    format!(
        r#"
[agent]
interface = "eth0"
vips = ["{VIP}"]
backend_address = "10.1.0.1"
report_to = ["127.0.0.1:{report_port}"]
report_key = "{SECRET}"
report_interval = "100ms"

[[agent.check]]
vip = "{VIP}"
port = {STATUS}
[agent.check.health]
kind = "http"
path = "/health"
interval = "50ms"
jitter = 0.0
timeout = "1s"
rise = {RISE}
fall = {FALL}

[[agent.check]]
vip = "{VIP}"
port = {CONTENT}
[agent.check.health]
kind = "http"
expect_body = "ready"
interval = "50ms"
jitter = 0.0
rise = 1
fall = 1

[[agent.check]]
vip = "{VIP}"
port = {SLOW}
[agent.check.health]
kind = "http"
interval = "400ms"
jitter = 0.0

[[agent.check]]
vip = "{VIP}"
port = 53
protocol = "udp"
[agent.check.health]
kind = "icmp"
interval = "100ms"

# No health table: a TCP connect.
[[agent.check]]
vip = "{VIP}"
port = {CONNECT}
"#
    )
}

#[test]
fn agent_checks_follow_their_kind_interval_rise_and_fall() {
    if !tenbin_testkit::skip::need_root("network namespaces, XDP, raw ICMP")
        || !tenbin_testkit::skip::need_tools(&["ip"])
    {
        return;
    }
    let lab = Lab::new("tbag");
    let ns = lab.0.clone();
    let status = Backend::start(&ns, STATUS);
    let content = Backend::start(&ns, CONTENT);
    let slow = Backend::start(&ns, SLOW);
    let connect = Backend::start(&ns, CONNECT);
    let socket = in_ns(&ns, || {
        UdpSocket::bind("127.0.0.1:0").expect("report socket")
    });
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let dir = std::env::temp_dir().join(format!("tenbin-agent-checks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("agent.toml");
    std::fs::write(&file, config(socket.local_addr().unwrap().port())).unwrap();
    let log = dir.join("agent.log");
    let inbox = Inbox {
        socket,
        key: key(SECRET.as_bytes()).unwrap(),
        log: log.clone(),
    };
    let mut agent = Tenbin::start(&ns, &["agent"], &file, &log);

    // Every kind passes against healthy services (the VIP is on lo once the agent is up).
    let first = inbox.until("every service is up", |r| {
        [(STATUS, 6), (CONTENT, 6), (SLOW, 6), (53, 17), (CONNECT, 6)]
            .iter()
            .all(|(p, proto)| healthy(r, *p, *proto) == Some(true))
    });
    assert_eq!(first.backend, "10.1.0.1".parse::<IpAddr>().unwrap());
    assert_eq!(first.services.len(), 5, "{first:?}");

    // Intervals: the 50 ms check probes about 8 times as often as the 400 ms one.
    let (slow0, _) = slow.counts();
    let (fast0, _) = status.counts();
    inbox.until("the slow check has probed 5 more times", |_| {
        slow.counts().0 >= slow0 + 5
    });
    let fast = status.counts().0 - fast0;
    let slow_n = slow.counts().0 - slow0;
    eprintln!("{fast} probes at 50 ms while {slow_n} at 400 ms");
    assert!(
        (4 * (slow_n - 1)..=12 * (slow_n + 1)).contains(&fast),
        "{fast} probes at 50 ms while {slow_n} at 400 ms"
    );

    // HTTP status with fall: down only once `fall` failed probes were answered.
    let (_, failed0) = status.set(UNAVAILABLE);
    inbox.until("the status check is down", |r| {
        if healthy(r, STATUS, 6) == Some(false) {
            let failed = status.counts().1 - failed0;
            assert!(
                failed >= FALL,
                "down after {failed} failures, fall is {FALL}"
            );
            eprintln!("down after {failed} failed probes (fall {FALL})");
            return true;
        }
        false
    });
    // ... and up again only after `rise` passing probes.
    let (served0, failed1) = status.set(OK);
    inbox.until("the status check is up again", |r| {
        if healthy(r, STATUS, 6) == Some(true) {
            let (served, failed) = status.counts();
            let passed = (served - served0) - (failed - failed1);
            assert!(passed >= RISE, "up after {passed} passes, rise is {RISE}");
            eprintln!("up after {passed} passing probes (rise {RISE})");
            return true;
        }
        false
    });

    // Content: a 200 without the expected body fails it.
    content.set(STARTING);
    let r = inbox.until("the content check is down", |r| {
        healthy(r, CONTENT, 6) == Some(false)
    });
    assert_eq!(healthy(&r, STATUS, 6), Some(true));
    content.set(OK);
    // The TCP connect check never sent a request.
    assert_eq!(connect.counts().0, 0);
    inbox.until("the content check is up again", |r| {
        healthy(r, CONTENT, 6) == Some(true)
    });

    // An edit of the file applies live: the TCP connect check leaves the reports, the others
    // keep their state (no service turns unchecked).
    let text = config(inbox.socket.local_addr().unwrap().port());
    let cut = text.find("# No health table").unwrap();
    let edited = dir.join("agent.toml.new");
    std::fs::write(&edited, &text[..cut]).unwrap();
    std::fs::rename(&edited, &file).unwrap();
    let r = inbox.until("the removed check leaves the reports", |r| {
        healthy(r, CONNECT, 6).is_none()
    });
    assert_eq!(r.services.len(), 4, "{r:?}");
    assert!(r.services.iter().all(|s| s.healthy), "{r:?}");

    let exit = agent.terminate().expect("the agent stops on SIGTERM");
    assert!(exit.success(), "exit status {exit}");
    let _ = std::fs::remove_dir_all(&dir);
}
