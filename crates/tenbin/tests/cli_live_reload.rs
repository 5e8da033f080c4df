//! `tenbin run` through ten config changes under load: HTTP keep-alive and new-connection
//! clients, HTTPS and a TCP frontend keep running while pools, servers, weights, headers,
//! algorithms, certificates and listeners change, and a broken file is refused. Not one
//! request may fail, and every change must show in the traffic.

mod common;
#[path = "support/traffic.rs"]
mod traffic;

use std::net::SocketAddr;
use std::time::Duration;

use common::{admin_request, wait_refused, LoggedDaemon, TempDir};
use tenbin_testkit::backend::{http, tcp_echo, HttpBackend, TcpBackend};

/// The knobs the ten steps turn.
#[derive(Clone)]
struct Knobs {
    gen: u32,
    weights: (u32, u32),
    with_b: bool,
    extra: bool,
    web2_binds: Vec<&'static str>,
    cert: usize,
    algorithm: &'static str,
    with_t3: bool,
    /// An extra frontend on an address someone else holds (a reload that cannot bind).
    busy: Option<SocketAddr>,
}

struct World {
    a: HttpBackend,
    b: HttpBackend,
    d: HttpBackend,
    t: [TcpBackend; 3],
    certs: [(String, String); 2],
}

fn config(w: &World, k: &Knobs) -> String {
    let mut c = format!(
        r#"[admin]
listen = "127.0.0.1:0"

[[frontend]]
name = "web"
bind = ["127.0.0.1:0"]
mode = "http"
default_pool = "app"
[frontend.headers]
response_set = {{ "X-Gen" = "{gen}" }}

[[frontend]]
name = "secure"
bind = ["127.0.0.1:0"]
mode = "http"
default_pool = "app"
[frontend.tls]
certificate = [{{ cert = "{cert}", key = "{key}" }}]

[[frontend]]
name = "tcp"
bind = ["127.0.0.1:0"]
mode = "tcp"
default_pool = "echo"
"#,
        gen = k.gen,
        cert = w.certs[k.cert].0,
        key = w.certs[k.cert].1,
    );
    if let Some(addr) = k.busy {
        c += &format!(
            "\n[[frontend]]\nname = \"web3\"\nbind = [\"{addr}\"]\nmode = \"http\"\ndefault_pool = \"app\"\n"
        );
    }
    if k.extra {
        let binds: Vec<String> = k.web2_binds.iter().map(|b| format!("\"{b}\"")).collect();
        c += &format!(
            "\n[[frontend]]\nname = \"web2\"\nbind = [{}]\nmode = \"http\"\ndefault_pool = \"extra\"\n",
            binds.join(", ")
        );
        c += &format!(
            "\n[[pool]]\nname = \"extra\"\n[[pool.server]]\nname = \"d\"\naddress = \"{}\"\n",
            w.d.addr()
        );
    }
    c += &format!(
        "\n[[pool]]\nname = \"app\"\nalgorithm = \"{}\"\n[[pool.server]]\nname = \"a\"\naddress = \"{}\"\nweight = {}\n",
        k.algorithm,
        w.a.addr(),
        k.weights.0
    );
    if k.with_b {
        c += &format!(
            "[[pool.server]]\nname = \"b\"\naddress = \"{}\"\nweight = {}\n",
            w.b.addr(),
            k.weights.1
        );
    }
    c += "\n[[pool]]\nname = \"echo\"\n";
    let n = if k.with_t3 { 3 } else { 2 };
    for (i, t) in w.t.iter().take(n).enumerate() {
        c += &format!(
            "[[pool.server]]\nname = \"t{}\"\naddress = \"{}\"\n",
            i + 1,
            t.addr()
        );
    }
    c
}

fn cert_pair(dir: &TempDir, tag: &str) -> ((String, String), Vec<u8>) {
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["www.tenbin.test".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let c = dir.write(&format!("{tag}.crt"), &cert.pem());
    let k = dir.write(&format!("{tag}.key"), &key.serialize_pem());
    (
        (c.display().to_string(), k.display().to_string()),
        cert.der().to_vec(),
    )
}

async fn admin(addr: SocketAddr, method: &'static str, path: &'static str) -> (u16, String) {
    tokio::task::spawn_blocking(move || admin_request(addr, method, path, ""))
        .await
        .unwrap()
}

async fn generation(addr: SocketAddr) -> u64 {
    let (status, body) = admin(addr, "GET", "/state").await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["generation"].as_u64().unwrap()
}

/// Waits (bounded) for the node to report a generation after `since`.
async fn applied_after(addr: SocketAddr, since: u64) -> u64 {
    for _ in 0..500 {
        let g = generation(addr).await;
        if g > since {
            return g;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the change was never applied (still generation {since})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_reloads_under_load_fail_no_request() {
    let dir = TempDir::new("live-reload");
    let (c1, der1) = cert_pair(&dir, "one");
    let (c2, der2) = cert_pair(&dir, "two");
    let (_, der3) = cert_pair(&dir, "three");
    let w = World {
        a: http().name("a").spawn().await,
        b: http().name("b").spawn().await,
        d: http().name("d").spawn().await,
        t: [
            tcp_echo().name("t1").greet().spawn().await,
            tcp_echo().name("t2").greet().spawn().await,
            tcp_echo().name("t3").greet().spawn().await,
        ],
        certs: [c1, c2],
    };
    let mut k = Knobs {
        gen: 1,
        weights: (1, 1),
        with_b: true,
        extra: false,
        web2_binds: vec!["127.0.0.1:0"],
        cert: 0,
        algorithm: "wrr",
        with_t3: false,
        busy: None,
    };
    let file = dir.write("tenbin.toml", &config(&w, &k));
    let daemon = LoggedDaemon::run(&file, &dir.0.join("tenbin.log"), &["--grace", "3s"]);
    let admin_addr = daemon.admin();
    let web = daemon.listening("web", 0);
    let secure = daemon.listening("secure", 0);
    let tcp_fe = daemon.listening("tcp", 0);

    let mut roots = rustls::RootCertStore::empty();
    roots.add(der1.clone().into()).unwrap();
    roots.add(der2.clone().into()).unwrap();
    roots.add(der3.clone().into()).unwrap();
    let ka = traffic::keep_alive(web);
    let fresh = traffic::fresh(web);
    let tcp = traffic::tcp(tcp_fe);
    let tls = traffic::https(secure, roots, vec![der1, der2, der3]);
    let clients = [&ka, &fresh, &tcp, &tls];
    for c in clients {
        c.next_answers(0, 20).await;
    }
    let mut gen = generation(admin_addr).await;
    let apply = |k: &Knobs, how: &'static str| {
        dir.write("tenbin.toml", &config(&w, k));
        // Otherwise the file watcher sees the rename on its own.
        if how == "hup" {
            daemon.signal("HUP");
        }
    };

    // 1. Header rules: the keep-alive connection sees the new response header.
    k.gen = 2;
    apply(&k, "hup");
    gen = applied_after(admin_addr, gen).await;
    ka.wait_for(ka.count(), "X-Gen: 2 on the open connection", |_, t| {
        t == "2"
    })
    .await;

    // 2. Weights 3:1: the split follows.
    k.weights = (3, 1);
    apply(&k, "watch");
    gen = applied_after(admin_addr, gen).await;
    let seen = ka.next_answers(ka.count(), 400).await;
    let a = seen.iter().filter(|n| *n == "a").count() as f64 / 400.0;
    assert!((0.65..=0.85).contains(&a), "a's share after 3:1 is {a}");

    // 3. A new pool and a new frontend.
    k.extra = true;
    apply(&k, "hup");
    gen = applied_after(admin_addr, gen).await;
    let web2 = daemon.listening("web2", 0);
    assert_eq!(traffic::get_once(web2).await.unwrap(), "d");

    // 4. Server b leaves the pool: no more answers from it.
    k.with_b = false;
    apply(&k, "hup");
    gen = applied_after(admin_addr, gen).await;
    let (from_ka, from_fresh) = (ka.count() + 1, fresh.count() + 1);
    let seen = ka.next_answers(from_ka, 200).await;
    assert!(seen.iter().all(|n| n == "a"), "b still answers: {seen:?}");
    let seen = fresh.next_answers(from_fresh, 100).await;
    assert!(seen.iter().all(|n| n == "a"), "b still answers: {seen:?}");

    // 5. The HTTPS frontend points at another certificate.
    k.cert = 1;
    apply(&k, "watch");
    gen = applied_after(admin_addr, gen).await;
    tls.wait_for(tls.count(), "the second certificate", |c, _| c == "cert2")
        .await;
    let seen = tls.next_answers(tls.count() + 1, 10).await;
    assert!(seen.iter().all(|c| c == "cert2"), "{seen:?}");

    // 6. A broken file: refused with file:line:column, nothing changes.
    let good = config(&w, &k);
    dir.write(
        "tenbin.toml",
        &good.replace("mode = \"tcp\"", "mode = \"tcp\"\nbogus = 1"),
    );
    let (status, body) = admin(admin_addr, "POST", "/reload").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("tenbin.toml:") && body.contains("bogus"),
        "{body}"
    );
    assert_eq!(
        generation(admin_addr).await,
        gen,
        "a broken file changed the node"
    );
    let n = ka.count();
    ka.next_answers(n, 50).await;

    // 7. The pool's algorithm changes (with its counts kept).
    k.algorithm = "leastconn";
    apply(&k, "hup");
    gen = applied_after(admin_addr, gen).await;
    let (_, state) = admin(admin_addr, "GET", "/state").await;
    let state: serde_json::Value = serde_json::from_str(&state).unwrap();
    let app = state["pools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "app")
        .unwrap();
    assert_eq!(app["algorithm"], "leastconn");
    let n = ka.count();
    ka.next_answers(n, 50).await;

    // 8. A third TCP server joins: sessions reach it.
    k.with_t3 = true;
    apply(&k, "watch");
    gen = applied_after(admin_addr, gen).await;
    tcp.wait_for(tcp.count(), "a session on t3", |n, _| n == "t3")
        .await;

    // 9. web2 binds a second address; the first keeps serving.
    k.web2_binds = vec!["127.0.0.1:0", "127.0.0.2:0"];
    apply(&k, "hup");
    gen = applied_after(admin_addr, gen).await;
    let web2b = daemon.listening("web2", 1);
    assert_eq!(web2b.ip().to_string(), "127.0.0.2");
    assert_eq!(traffic::get_once(web2b).await.unwrap(), "d");
    assert_eq!(traffic::get_once(web2).await.unwrap(), "d");

    // 10. web2 and its pool go away: its listeners close.
    k.extra = false;
    apply(&k, "hup");
    gen = applied_after(admin_addr, gen).await;
    assert!(gen >= 10, "ten reloads, generation {gen}");
    for addr in [web2, web2b] {
        assert!(
            wait_refused(addr).await,
            "{addr} still accepts after web2 was removed"
        );
    }

    // Beyond the ten: a file whose new frontend cannot bind is refused whole.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    k.busy = Some(held.local_addr().unwrap());
    dir.write("tenbin.toml", &config(&w, &k));
    let (status, body) = admin(admin_addr, "POST", "/reload").await;
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("cannot bind"), "{body}");
    assert_eq!(
        generation(admin_addr).await,
        gen,
        "a failed bind changed the node"
    );
    k.busy = None;
    dir.write("tenbin.toml", &config(&w, &k));

    // The certificate file rewritten in place: the watcher reloads it, no config change.
    let three = std::fs::read(dir.0.join("three.crt")).unwrap();
    let three_key = std::fs::read(dir.0.join("three.key")).unwrap();
    dir.write("two.key", &String::from_utf8(three_key).unwrap());
    dir.write("two.crt", &String::from_utf8(three).unwrap());
    tls.wait_for(tls.count(), "the rewritten certificate", |c, _| {
        c == "cert3"
    })
    .await;

    for c in clients {
        let n = c.count();
        c.next_answers(n, 10).await;
        c.stop();
    }
    for (name, c) in ["keep-alive", "fresh", "tcp", "https"].iter().zip(clients) {
        println!(
            "{name}: {} answers, {} failures",
            c.count(),
            c.failures().len()
        );
        assert!(c.failures().is_empty(), "{name}: {:?}", c.failures());
        assert!(c.count() > 100, "{name}: only {} answers", c.count());
    }
}
