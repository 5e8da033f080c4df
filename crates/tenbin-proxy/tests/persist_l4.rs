//! Source-address persistence on a `mode tcp` frontend started from config (`l4::serve`):
//! every connection from one client address reaches one server though the pool rotates,
//! different clients still spread, and a down server's clients move and re-stick.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};

use tenbin_core::ServerState;
use tenbin_proxy::l4::{pools, serve};
use tenbin_testkit::backend::tcp_echo;
use tokio::io::AsyncReadExt;
use tokio::net::TcpSocket;

/// The greeting (server name) seen by a connection from `source`.
async fn who(source: [u8; 4], to: SocketAddr) -> String {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::new(IpAddr::from(source), 0)).unwrap();
    let mut c = s.connect(to).await.unwrap();
    let mut line = Vec::new();
    let mut b = [0u8; 1];
    while line.len() < 64 && c.read(&mut b).await.unwrap_or(0) == 1 && b[0] != b'\n' {
        line.push(b[0]);
    }
    String::from_utf8(line).unwrap()
}

#[tokio::test]
async fn tcp_clients_stick_by_source_address() {
    let mut backends = Vec::new();
    for n in ["t0", "t1", "t2"] {
        backends.push(tcp_echo().name(n).greet().spawn().await);
    }
    let mut text = String::from(
        "[[frontend]]\nname = \"l4\"\nbind = [\"127.0.0.1:0\"]\nmode = \"tcp\"\ndefault_pool = \"p\"\n\
         [[pool]]\nname = \"p\"\nalgorithm = \"roundrobin\"\n\
         [pool.persistence]\nmode = \"source\"\ntable_size = 100\n",
    );
    for b in &backends {
        text += &format!(
            "[[pool.server]]\nname = \"{}\"\naddress = \"{}\"\n",
            b.name(),
            b.addr()
        );
    }
    let config = tenbin_config::Config::parse(&text, "l4.toml").unwrap();
    let pools = pools(&config);
    let (tx, rx) = tokio::sync::watch::channel(false);
    let listeners = serve(&config, &pools, rx).await.unwrap();
    let addr = listeners[0].addr;

    let mut homes = BTreeSet::new();
    let mut home_of = Vec::new();
    // Placement hashes over the servers' ephemeral addresses: 12 clients make "all on one"
    // a 3^-11 chance, not a flake.
    for c in 0..12u8 {
        let src = [127, 0, 0, 20 + c];
        let mut seen = BTreeSet::new();
        for _ in 0..8 {
            seen.insert(who(src, addr).await);
        }
        assert_eq!(seen.len(), 1, "client {c} moved: {seen:?}");
        let home = seen.into_iter().next().unwrap();
        homes.insert(home.clone());
        home_of.push(home);
    }
    assert!(homes.len() > 1, "clients spread: {homes:?}");

    // The first client's server goes down: it moves once, then sticks to the new one.
    let pool = &pools["p"];
    pool.apply_health(pool.id_of(&home_of[0]).unwrap(), ServerState::Down, 100);
    let moved = who([127, 0, 0, 20], addr).await;
    assert_ne!(moved, home_of[0]);
    for _ in 0..6 {
        assert_eq!(who([127, 0, 0, 20], addr).await, moved);
    }
    tx.send(true).unwrap();
}
