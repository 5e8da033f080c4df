//! Every persistence mode through a real HTTP client and server on loopback: all requests of a
//! session land on one server while different sessions still spread, a down server's sessions
//! are redispatched and re-stuck, a draining server keeps only its persisted sessions, and the
//! table stays bounded and expires.

mod persist_common;

use std::collections::BTreeSet;
use std::net::IpAddr;
use std::time::Duration;

use persist_common::{proxy, three, Behaviour, Session};
use tenbin_core::ServerState;
use tenbin_proxy::persist::{PersistConfig, PersistMode};

const REQUESTS: usize = 25;
/// Hashed modes place keys on a ring built from the servers' ephemeral addresses, so the spread
/// check is random: with 12 sessions over 3 servers, all on one happens with p = 3^-11.
const SESSIONS: usize = 12;

fn cookie_behaviour(name: &str, placeholder: &str) -> Behaviour {
    Behaviour {
        session_cookie: Some((name.into(), placeholder.into())),
    }
}

/// Runs `SESSIONS` sessions of `REQUESTS` requests; each must stay on one server, and the
/// sessions together must use more than one server. Returns each session's server.
async fn sessions_stick(
    mut make: impl FnMut(usize) -> (Session, String),
    first: Option<&str>,
) -> Vec<String> {
    let mut homes = Vec::new();
    for i in 0..SESSIONS {
        let (mut s, path) = make(i);
        if let Some(f) = first {
            s.get(f).await;
        }
        let seen = s.many(&path, REQUESTS).await;
        assert_eq!(seen.len(), 1, "session {i} moved between {seen:?}");
        homes.push(seen.into_iter().next().unwrap());
    }
    let distinct: BTreeSet<_> = homes.iter().collect();
    assert!(
        distinct.len() > 1,
        "all sessions landed on one server: {homes:?}"
    );
    homes
}

#[tokio::test]
async fn without_persistence_a_session_moves() {
    let b = three(Behaviour::default()).await;
    let p = proxy(&b, None).await;
    let seen = Session::new(&p, None).many("/", 6).await;
    assert_eq!(
        seen.len(),
        3,
        "the control case: round robin spreads one client"
    );
}

#[tokio::test]
async fn source_address_with_table() {
    let b = three(Behaviour::default()).await;
    let p = proxy(&b, Some(PersistConfig::new(PersistMode::Source, ""))).await;
    let homes = sessions_stick(
        |i| {
            (
                Session::new(&p, Some(IpAddr::from([127, 0, 0, 10 + i as u8]))),
                "/".into(),
            )
        },
        None,
    )
    .await;
    assert_eq!(homes.len(), SESSIONS);
    assert_eq!(p.persist.as_ref().unwrap().table_len(), SESSIONS);
}

#[tokio::test]
async fn source_prefix_groups_a_proxy_farm_tableless() {
    let b = three(Behaviour::default()).await;
    let mut cfg = PersistConfig::new(PersistMode::Source, "");
    cfg.tableless = true;
    cfg.source_prefix_v4 = 24;
    let p = proxy(&b, Some(cfg)).await;
    // 127.0.0.10 .. 127.0.0.21 share a /24: one server for the whole farm.
    let mut all = BTreeSet::new();
    for i in 0..SESSIONS {
        let mut s = Session::new(&p, Some(IpAddr::from([127, 0, 0, 10 + i as u8])));
        all.extend(s.many("/", 5).await);
    }
    assert_eq!(all.len(), 1, "{all:?}");
    // Different /24s are hashed over the servers.
    let mut farms = BTreeSet::new();
    for net in 1..=12u8 {
        let mut s = Session::new(&p, Some(IpAddr::from([127, net, 0, 1])));
        let seen = s.many("/", 3).await;
        assert_eq!(seen.len(), 1);
        farms.extend(seen);
    }
    assert!(farms.len() > 1, "{farms:?}");
    assert_eq!(p.persist.as_ref().unwrap().table_len(), 0);
}

#[tokio::test]
async fn cookie_insert_indirect_hides_the_cookie_from_servers() {
    let b = three(Behaviour::default()).await;
    let mut cfg = PersistConfig::new(PersistMode::CookieInsert, "SRV");
    cfg.insert.indirect = true;
    cfg.insert.attrs.httponly = true;
    let p = proxy(&b, Some(cfg)).await;
    sessions_stick(|_| (Session::new(&p, None), "/".into()), None).await;
    for backend in &b {
        let seen = backend.cookies_seen.lock().unwrap();
        assert!(
            seen.iter().all(|c| !c.contains("SRV=")),
            "{} saw {seen:?}",
            backend.name
        );
    }
    let mut s = Session::new(&p, None);
    let first = s.get("/").await;
    assert_eq!(
        first.set_cookies,
        [format!("SRV={}; Path=/; HttpOnly", first.backend)]
    );
    assert!(
        s.get("/").await.set_cookies.is_empty(),
        "indirect: not re-sent"
    );
}

#[tokio::test]
async fn cookie_insert_nocache_marks_responses_private() {
    let b = three(Behaviour::default()).await;
    let mut cfg = PersistConfig::new(PersistMode::CookieInsert, "SRV");
    cfg.insert.nocache = true;
    let p = proxy(&b, Some(cfg)).await;
    let a = Session::new(&p, None).get("/").await;
    assert_eq!(a.cache_control.as_deref(), Some("private"));
    assert_eq!(a.set_cookies.len(), 1);
}

#[tokio::test]
async fn cookie_rewrite_passive_prefix_and_hash() {
    // rewrite: the server sets SERVERID=XXX; tenbin writes the server id in.
    let b = three(cookie_behaviour("SERVERID", "XXX")).await;
    let p = proxy(
        &b,
        Some(PersistConfig::new(PersistMode::CookieRewrite, "SERVERID")),
    )
    .await;
    let homes = sessions_stick(|_| (Session::new(&p, None), "/".into()), Some("/login")).await;
    let mut s = Session::new(&p, None);
    let login = s.get("/login").await;
    assert_eq!(
        login.set_cookies,
        [format!("SERVERID={}; Path=/", login.backend)]
    );
    drop(homes);

    // passive: the server's own session cookie is learned.
    let b = three(cookie_behaviour("JSESSIONID", "")).await;
    let p = proxy(
        &b,
        Some(PersistConfig::new(PersistMode::CookiePassive, "JSESSIONID")),
    )
    .await;
    sessions_stick(|_| (Session::new(&p, None), "/cart".into()), Some("/login")).await;

    // prefix: JSESSIONID=<server>~<app value>; the server sees its own value only.
    let b = three(cookie_behaviour("JSESSIONID", "")).await;
    let p = proxy(
        &b,
        Some(PersistConfig::new(PersistMode::CookiePrefix, "JSESSIONID")),
    )
    .await;
    sessions_stick(|_| (Session::new(&p, None), "/cart".into()), Some("/login")).await;
    let mut s = Session::new(&p, None);
    let login = s.get("/login").await;
    assert!(login.set_cookies[0]
        .starts_with(&format!("JSESSIONID={}~{}.", login.backend, login.backend)));
    s.get("/cart").await;
    let server = b.iter().find(|x| x.name == login.backend).unwrap();
    let last = server.cookies_seen.lock().unwrap().last().cloned().unwrap();
    assert!(
        last.starts_with(&format!("JSESSIONID={}.", login.backend)),
        "{last}"
    );

    // cookie hash: a client-chosen session value is hashed (and learned).
    let b = three(Behaviour::default()).await;
    let p = proxy(
        &b,
        Some(PersistConfig::new(PersistMode::CookieHash, "JSESSIONID")),
    )
    .await;
    sessions_stick(
        |i| {
            let mut s = Session::new(&p, None);
            s.jar
                .insert("JSESSIONID".into(), format!("app-session-{i}"));
            (s, "/".into())
        },
        None,
    )
    .await;
}

#[tokio::test]
async fn url_parameter_for_clients_without_cookies() {
    let b = three(Behaviour::default()).await;
    let mut cfg = PersistConfig::new(PersistMode::UrlParam, "sid");
    cfg.append_to_redirects = true;
    let p = proxy(&b, Some(cfg)).await;
    let mut homes = BTreeSet::new();
    for _ in 0..SESSIONS {
        let mut s = Session::new(&p, None);
        let r = s.get("/redirect").await;
        let loc = r.location.unwrap();
        assert_eq!(loc, format!("/next?sid={}", r.backend));
        let seen = s.many(&loc, REQUESTS).await;
        assert_eq!(seen, BTreeSet::from([r.backend.clone()]));
        homes.insert(r.backend);
    }
    assert!(homes.len() > 1, "{homes:?}");
    // A servlet-style session id in the path is learned on first use.
    let mut s = Session::new(&p, None);
    let seen = s.many("/shop;sid=ABCDEF0123", REQUESTS).await;
    assert_eq!(seen.len(), 1);
}

#[tokio::test]
async fn header_identity_hashed_and_learned() {
    for learn in [false, true] {
        let b = three(Behaviour::default()).await;
        let mut cfg = PersistConfig::new(PersistMode::Header, "x-subscriber-id");
        cfg.learn = learn;
        let p = proxy(&b, Some(cfg)).await;
        sessions_stick(
            |i| {
                let mut s = Session::new(&p, None);
                s.headers
                    .push(("x-subscriber-id".into(), format!("44{i:08}")));
                (s, "/".into())
            },
            None,
        )
        .await;
        let table = p.persist.as_ref().unwrap().table_len();
        assert_eq!(table, if learn { SESSIONS } else { 0 });
    }
}

#[tokio::test]
async fn down_server_sessions_are_redispatched_and_restuck() {
    let b = three(Behaviour::default()).await;
    let p = proxy(
        &b,
        Some(PersistConfig::new(PersistMode::CookieInsert, "SRV")),
    )
    .await;
    let mut s = Session::new(&p, None);
    let home = s.get("/").await.backend;
    p.pool
        .apply_health(p.server_id(&home), ServerState::Down, 100);
    let moved = s.get("/").await;
    assert_ne!(moved.backend, home);
    assert!(moved.set_cookies[0].starts_with(&format!("SRV={};", moved.backend)));
    let seen = s.many("/", REQUESTS).await;
    assert_eq!(
        seen,
        BTreeSet::from([moved.backend]),
        "re-stuck to the new server"
    );
}

#[tokio::test]
async fn redispatch_off_answers_503_for_a_down_server() {
    let b = three(Behaviour::default()).await;
    let mut cfg = PersistConfig::new(PersistMode::CookieInsert, "SRV");
    cfg.redispatch = false;
    let p = proxy(&b, Some(cfg)).await;
    let mut s = Session::new(&p, None);
    let home = s.get("/").await.backend;
    p.pool
        .apply_health(p.server_id(&home), ServerState::Down, 100);
    assert_eq!(
        s.get("/").await.status,
        http::StatusCode::SERVICE_UNAVAILABLE
    );
}

#[tokio::test]
async fn draining_server_keeps_persisted_sessions_only() {
    let b = three(Behaviour::default()).await;
    let p = proxy(
        &b,
        Some(PersistConfig::new(PersistMode::CookieInsert, "SRV")),
    )
    .await;
    let mut s = Session::new(&p, None);
    let home = s.get("/").await.backend;
    p.pool
        .apply_health(p.server_id(&home), ServerState::Draining, 100);
    assert_eq!(s.many("/", REQUESTS).await, BTreeSet::from([home.clone()]));
    for _ in 0..12 {
        let fresh = Session::new(&p, None).get("/").await;
        assert_ne!(
            fresh.backend, home,
            "a new session went to the draining server"
        );
    }
}

#[tokio::test]
async fn table_is_bounded_and_idle_sessions_expire() {
    let b = three(Behaviour::default()).await;
    let mut cfg = PersistConfig::new(PersistMode::Header, "x-id");
    cfg.table_size = 4;
    cfg.idle_timeout = Duration::from_secs(600);
    let p = proxy(&b, Some(cfg)).await;
    let table = p.persist.as_ref().unwrap().clone();
    let mut sessions = Vec::new();
    for i in 0..10 {
        let mut s = Session::new(&p, None);
        s.headers.push(("x-id".into(), format!("terminal-{i}")));
        s.get("/").await;
        assert!(
            table.table_len() <= 4,
            "bound exceeded: {}",
            table.table_len()
        );
        sessions.push(s);
    }
    assert_eq!(table.table_len(), 4);
    // The last session is remembered; after the idle timeout it is forgotten.
    let home = sessions[9].get("/").await.backend;
    assert_eq!(sessions[9].many("/", 5).await, BTreeSet::from([home]));
    // Past the idle timeout the session's entry is void: it is picked and learned afresh,
    // and the other three idle entries go at the next sweep.
    p.advance(Duration::from_secs(601));
    sessions[9].get("/").await;
    assert_eq!(table.expire(p.now()), 3);
    assert_eq!(table.table_len(), 1);
}
