//! The dashboard in a real browser: `tenbin run` with an admin token and HTTP and DNS load,
//! Debian's chromium driven through chromedriver (a child of the test, on loopback) with
//! fantoccini. The page loads without the token and asks for it, shows live numbers once it
//! is typed in (read twice: they move), drains a server from its row, and then not one of
//! the next requests reaches that server; a weight set and an enable from the page apply
//! too. Screenshots go to `target/test-output/`.

mod common;
#[path = "support/traffic.rs"]
mod traffic;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Daemon;
use fantoccini::{Client, ClientBuilder, Locator};
use tenbin_testkit::backend::http;
use tenbin_testkit::skip;

const TOKEN: &str = "dash-s3cret";
/// Bound on every wait for the page (a debug build on a busy 2-core host is slow).
const PAGE_WAIT: Duration = Duration::from_secs(30);

fn config(servers: &[(&str, SocketAddr)]) -> String {
    let mut c = format!(
        r#"
[admin]
listen = "127.0.0.1:0"
token = "{TOKEN}"

[[frontend]]
name = "web"
bind = ["127.0.0.1:0"]
default_pool = "app"

[[pool]]
name = "app"
"#
    );
    for (name, addr) in servers {
        c.push_str(&format!(
            "[[pool.server]]\nname = \"{name}\"\naddress = \"{addr}\"\n"
        ));
    }
    c.push_str(
        r#"
[dns]
listen = ["127.0.0.1:0"]
udp_sockets = 1
[[dns.datacenters]]
name = "fra"
[[dns.datacenters]]
name = "nrt"
[[dns.zones]]
origin = "example.test."
soa = { mname = "ns1", rname = "hostmaster", serial = 1, minimum = 60 }
records = [{ name = "ns1", type = "A", data = "192.0.2.53" }]
[[dns.gslb]]
name = "www.example.test."
policy = "weighted"
pools = [
  { datacenter = "fra", addresses = ["198.51.100.1"], capacity = 100.0 },
  { datacenter = "nrt", addresses = ["203.0.113.1"], capacity = 50.0 },
]
"#,
    );
    c
}

/// `chromedriver --port=0` as the test's child in a process group of its own, which the
/// browsers it starts join: dropping it ends the whole group, so a failed test leaves no
/// chromium behind. Its port is read from its first lines ("... started successfully on
/// port N.").
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Driver {
        let mut child = Command::new("chromedriver")
            .args(["--port=0", "--allowed-ips=127.0.0.1"])
            .process_group(0)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .stdin(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let out = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(p) = line.split("started successfully on port ").nth(1) {
                    let _ = tx.send(p.trim_end_matches('.').parse::<u16>().ok());
                }
            }
        });
        let port = rx.recv_timeout(PAGE_WAIT).ok().flatten();
        let mut driver = Driver { child, port: 0 };
        driver.port = port.expect("chromedriver reports its port");
        driver
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::killpg(group, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver, profile: &std::path::Path) -> Client {
    let mut args = vec![
        "--headless=new".to_string(),
        "--disable-gpu".to_string(),
        "--disable-dev-shm-usage".to_string(),
        "--window-size=1366,768".to_string(),
        "--hide-scrollbars".to_string(),
        format!("--user-data-dir={}", profile.display()),
    ];
    // Chromium's sandbox refuses to run as root.
    if skip::is_root() {
        args.push("--no-sandbox".to_string());
    }
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".to_string(),
        serde_json::json!({ "args": args, "binary": "/usr/bin/chromium" }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a chromium session")
}

/// Sizes the window so the page itself (the viewport) is `width` x `height`, as on a laptop
/// screen: the window is larger by whatever frame the browser draws.
async fn viewport(c: &Client, width: u32, height: u32) {
    c.set_window_size(width, height).await.unwrap();
    let frame = c
        .execute(
            "return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight]",
            vec![],
        )
        .await
        .unwrap();
    let extra = |i: usize| frame[i].as_u64().unwrap_or(0) as u32;
    c.set_window_size(width + extra(0), height + extra(1))
        .await
        .unwrap();
}

/// The text of the first element `css` selects, `None` while there is none.
async fn text(c: &Client, css: &str) -> Option<String> {
    c.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

/// Polls `css`'s text until `ok` holds (bounded by [`PAGE_WAIT`]) and returns it.
async fn wait_text(c: &Client, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + PAGE_WAIT;
    loop {
        let t = text(c, css).await;
        if let Some(t) = t.as_deref().filter(|t| ok(t)) {
            return t.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "{what}: `{css}` reads {t:?} after {PAGE_WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Polls `script`'s value until `ok` holds (bounded by [`PAGE_WAIT`]).
async fn wait_js(c: &Client, script: &str, what: &str, ok: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + PAGE_WAIT;
    loop {
        let v = c.execute(script, vec![]).await.ok();
        if v.as_ref().is_some_and(&ok) {
            return;
        }
        assert!(Instant::now() < deadline, "{what}: `{script}` gives {v:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// "1.23k" → 1230: the page's number format back to a number.
fn number(t: &str) -> Option<f64> {
    let (digits, scale) = match t.chars().last()? {
        'k' => (&t[..t.len() - 1], 1e3),
        'M' => (&t[..t.len() - 1], 1e6),
        'G' => (&t[..t.len() - 1], 1e9),
        _ => (t, 1.0),
    };
    digits.parse::<f64>().ok().map(|v| v * scale)
}

/// Bounded UDP DNS load (one query in flight, each waited for at most 1 s) until `stop`.
fn dns_load(addr: SocketAddr, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        let sock = std::net::UdpSocket::bind("127.0.0.1:0").expect("a UDP socket");
        sock.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let mut query = vec![0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        for label in ["www", "example", "test"] {
            query.push(label.len() as u8);
            query.extend_from_slice(label.as_bytes());
        }
        query.extend_from_slice(&[0, 0, 1, 0, 1]);
        let mut buf = [0u8; 512];
        for id in 0..200_000u32 {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            query[..2].copy_from_slice(&(id as u16).to_be_bytes());
            let _ = sock.send_to(&query, addr);
            let _ = sock.recv(&mut buf);
            std::thread::sleep(Duration::from_millis(5));
        }
    });
}

/// The page's exposition parser, run in the browser on hand-written bytes with known
/// answers: escapes in label values, a timestamp, an unreadable line, a counter reset, and
/// histogram quantiles interpolated inside a bucket and capped at the last finite bound.
async fn prom_js_reads_the_exposition_format(page: &Client) {
    let before = concat!(
        "# HELP x_total Things.\n# TYPE x_total counter\n",
        "x_total{l=\"a\"} 10\n",
        "x_total{l=\"q\\\"u,o\\\\te\\nd\",} 5 1700000000000\n",
        "h_bucket{le=\"0.1\"} 0\nh_bucket{le=\"0.2\"} 0\nh_bucket{le=\"+Inf\"} 0\n",
        "x_total{l=\"b\" 3\n",
        "# EOF\n",
    );
    let after = concat!(
        "x_total{l=\"a\"} 30\n",
        "x_total{l=\"q\\\"u,o\\\\te\\nd\"} 2\n",
        "h_bucket{le=\"0.1\"} 50\nh_bucket{le=\"0.2\"} 90\nh_bucket{le=\"+Inf\"} 100\n",
    );
    let script = "const [a, b] = arguments; return import('/ui/prom.js').then((p) => { \
        const x = p.parse(a, 0), y = p.parse(b, 2000); \
        return { bad: x.bad, labels: x.values('x_total', 'l'), all: p.rate(x, y, 'x_total'), \
          a: p.rate(x, y, 'x_total', { l: 'a' }), p50: p.quantile(0.5, x, y, 'h'), \
          p70: p.quantile(0.7, x, y, 'h'), p99: p.quantile(0.99, x, y, 'h'), \
          idle: p.quantile(0.5, x, x, 'h'), missing: p.rate(x, y, 'nothing_total') }; })";
    let got = page
        .execute(script, vec![before.into(), after.into()])
        .await
        .expect("prom.js runs");
    let want = serde_json::json!({
        "bad": 1,
        "labels": ["a", "q\"u,o\\te\nd"],
        // a: +20; the escaped series went 5 → 2, a reset: +2. Over 2 s.
        "all": 11,
        "a": 10,
        "p50": 0.1,
        "idle": null,
        "missing": null,
    });
    for (k, v) in want.as_object().unwrap() {
        assert_eq!(&got[k], v, "prom.js {k}: {got}");
    }
    // 70th of 100: 20 of the 40 in (0.1, 0.2] → 0.15; the 99th falls in +Inf → 0.2.
    let close = |k: &str, v: f64| got[k].as_f64().is_some_and(|g| (g - v).abs() < 1e-9);
    assert!(close("p70", 0.15) && close("p99", 0.2), "{got}");
}

fn output_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target dir")
        .join("test-output");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_live_numbers_and_drains_a_server_from_the_page() {
    if !skip::need_tools(&["chromium", "chromedriver"]) {
        return;
    }
    let a = http().name("a").spawn().await;
    let b = http().name("b").spawn().await;
    let c = http().name("c").spawn().await;
    let node = Daemon::start(
        &config(&[("a", a.addr()), ("b", b.addr()), ("c", c.addr())]),
        "dashboard",
    );
    let admin = node.bound("admin", None);
    let web = node.bound("http", Some("web"));
    let dns = node.bound("dns", None);
    let load = traffic::keep_alive(web);
    let stop_dns = Arc::new(AtomicBool::new(false));
    dns_load(dns, stop_dns.clone());

    let driver = Driver::start();
    let profile = node.path("chromium-profile");
    let page = browser(&driver, &profile).await;
    page.goto(&format!("http://{admin}/")).await.unwrap();
    viewport(&page, 1366, 768).await;

    // The page and its scripts load without the token; the data calls are refused until the
    // operator gives it.
    wait_text(&page, "#status", "asks for the token", |t| {
        t == "token needed"
    })
    .await;
    let input = page.find(Locator::Id("token")).await.unwrap();
    input.send_keys(TOKEN).await.unwrap();
    page.find(Locator::Id("token-save"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_text(&page, "#status", "goes live", |t| t.starts_with("live")).await;

    prom_js_reads_the_exposition_format(&page).await;

    // Live numbers: server a's request count read twice moves up, and the rates show.
    let a_total = "tr[data-pool='app'][data-server='a'] td[data-cell='total']";
    let first = wait_text(&page, a_total, "a's requests", |t| number(t).is_some()).await;
    let first = number(&first).unwrap();
    let second = wait_text(&page, a_total, "a's requests grow", |t| {
        number(t).is_some_and(|v| v > first)
    })
    .await;
    println!("server a's requests on the page: {first} then {second}");
    wait_text(&page, "#card-rps", "requests/s", |t| {
        number(t).is_some_and(|v| v > 0.0)
    })
    .await;
    wait_text(&page, "#card-dns", "DNS queries/s", |t| {
        number(t).is_some_and(|v| v > 0.0)
    })
    .await;

    // The node's own exposition: prom.js reads every sample line of it.
    let (status, exposition) = common::admin::call(
        admin.port(),
        "GET",
        "/metrics",
        &format!("authorization: Bearer {TOKEN}\r\n"),
        "",
    );
    assert_eq!(status, 200, "{exposition}");
    let lines = exposition
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .count();
    let read = page
        .execute(
            "return import('/ui/prom.js').then((p) => { const s = p.parse(arguments[0]); \
             return { bad: s.bad, samples: [...s.byName.values()].reduce((n, l) => n + l.length, 0) }; })",
            vec![exposition.clone().into()],
        )
        .await
        .expect("prom.js runs");
    assert_eq!(read["bad"], 0, "lines prom.js could not read: {exposition}");
    assert_eq!(read["samples"], lines, "{exposition}");

    // Drain b from its row; the page shows the state the node reports.
    let b_row = "tr[data-pool='app'][data-server='b']";
    page.find(Locator::Css(&format!(
        "{b_row} button[data-action='draining']"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    wait_text(
        &page,
        &format!("{b_row} td[data-cell='state']"),
        "b drains",
        |t| t == "draining",
    )
    .await;
    wait_text(&page, "#toast", "the action's answer", |t| {
        t.contains("app/b")
    })
    .await;

    // A request already in flight at the drain may still land on b: skip a few, then not one
    // of the next 300 may reach it.
    let settled = load.count() + 20;
    load.next_answers(settled - 20, 20).await;
    let b_hits = b.hits();
    let answers = load.next_answers(settled, 300).await;
    assert!(
        answers.iter().all(|n| n == "a" || n == "c"),
        "answers after the drain: {answers:?}"
    );
    assert_eq!(b.hits(), b_hits, "a request reached the drained server b");
    assert!(load.failures().is_empty(), "{:?}", load.failures());
    // b's rate on the page falls to zero while a's goes on.
    wait_text(
        &page,
        &format!("{b_row} td[data-cell='rps']"),
        "b's rate",
        |t| t == "0",
    )
    .await;

    let dir = output_dir();
    let shot = dir.join("dashboard.png");
    std::fs::write(&shot, page.screenshot().await.unwrap()).unwrap();
    println!("screenshot (1366x768): {}", shot.display());
    viewport(&page, 1920, 1080).await;
    // The charts take the page's width on the resize: wait for the wider drawing.
    let width = "return Number(document.querySelector('#chart-rps svg').getAttribute('width'))";
    wait_js(&page, width, "charts redrawn at 1920", |v| {
        v.as_f64() > Some(500.0)
    })
    .await;
    let wide = dir.join("dashboard-1920.png");
    std::fs::write(&wide, page.screenshot().await.unwrap()).unwrap();
    println!("screenshot (1920x1080): {}", wide.display());

    // The other actions: a weight typed into c's row, then b enabled again takes requests.
    let c_row = "tr[data-pool='app'][data-server='c']";
    let weight = page
        .find(Locator::Css(&format!("{c_row} input.weight")))
        .await
        .unwrap();
    weight.clear().await.unwrap();
    weight.send_keys("3").await.unwrap();
    page.find(Locator::Css(&format!(
        "{c_row} button[data-action='weight']"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    wait_text(
        &page,
        &format!("{c_row} td[data-cell='weight']"),
        "c's weight",
        |t| t == "3",
    )
    .await;
    page.find(Locator::Css(&format!(
        "{b_row} button[data-action='active']"
    )))
    .await
    .unwrap()
    .click()
    .await
    .unwrap();
    wait_text(
        &page,
        &format!("{b_row} td[data-cell='state']"),
        "b enabled",
        |t| t != "draining",
    )
    .await;
    let from = load.count();
    let answers = load.next_answers(from, 300).await;
    assert!(
        answers.iter().any(|n| n == "b"),
        "b, enabled again, gets none of the next 300 requests"
    );

    let status = text(&page, "#status").await.unwrap_or_default();
    assert!(status.starts_with("live"), "the page reports: {status}");

    page.close().await.unwrap();
    load.stop();
    stop_dns.store(true, Ordering::Relaxed);
}
