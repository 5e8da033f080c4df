use std::net::IpAddr;
use std::time::Duration;

use http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use tenbin_core::{BackendId, ServerState};

use super::*;

const T0: Duration = Duration::from_secs(1_700_000_000);

fn set(states: &[ServerState]) -> ServerSet {
    ServerSet::new(
        states
            .iter()
            .enumerate()
            .map(|(i, &state)| Member {
                id: BackendId(i as u32),
                cookie: format!("s{i}"),
                hash_key: format!("10.0.0.{i}:80"),
                weight: 1,
                state,
            })
            .collect(),
    )
}

fn all_active() -> ServerSet {
    set(&[ServerState::Active; 3])
}

fn req(cookie: Option<&str>) -> Request<()> {
    let mut b = Request::builder().uri("/");
    if let Some(c) = cookie {
        b = b.header(COOKIE, c);
    }
    b.body(()).unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn set_cookies(h: &HeaderMap) -> Vec<String> {
    h.get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

#[test]
fn source_prefix_groups_a_proxy_farm() {
    assert_eq!(
        source_key(ip("192.0.2.7"), 24, 64),
        source_key(ip("192.0.2.200"), 24, 64)
    );
    assert_ne!(
        source_key(ip("192.0.2.7"), 24, 64),
        source_key(ip("192.0.3.7"), 24, 64)
    );
    assert_ne!(
        source_key(ip("192.0.2.7"), 32, 64),
        source_key(ip("192.0.2.8"), 32, 64)
    );
    assert_eq!(
        source_key(ip("2001:db8::1"), 32, 64),
        source_key(ip("2001:db8::ffff"), 32, 64)
    );
    assert_ne!(
        source_key(ip("2001:db8:0:1::1"), 32, 64),
        source_key(ip("2001:db8::1"), 32, 64)
    );
    // /25 keeps the top bit of the last octet.
    assert_ne!(
        source_key(ip("10.0.0.1"), 25, 64),
        source_key(ip("10.0.0.129"), 25, 64)
    );
}

#[test]
fn source_table_learns_then_pins_and_redispatches_when_down() {
    let mut cfg = PersistConfig::new(PersistMode::Source, "");
    cfg.source_prefix_v4 = 24;
    let p = Persistence::new(cfg);
    let servers = all_active();
    let d = p.route(&mut req(None), ip("198.51.100.4"), &servers, T0);
    assert_eq!(d.target(&servers), Target::Any);
    p.on_response(
        &d,
        &mut HeaderMap::new(),
        StatusCode::OK,
        BackendId(2),
        &servers,
        T0,
    );
    let d = p.route(&mut req(None), ip("198.51.100.99"), &servers, T0);
    assert_eq!(d.target(&servers), Target::Server(BackendId(2)));
    let down = set(&[ServerState::Active, ServerState::Active, ServerState::Down]);
    assert_eq!(d.target(&down), Target::Any);
    let draining = set(&[
        ServerState::Active,
        ServerState::Active,
        ServerState::Draining,
    ]);
    assert_eq!(d.target(&draining), Target::Server(BackendId(2)));
}

#[test]
fn redispatch_off_refuses_a_down_server() {
    let mut cfg = PersistConfig::new(PersistMode::CookieRewrite, "SRV");
    cfg.redispatch = false;
    let p = Persistence::new(cfg);
    let down = set(&[ServerState::Active, ServerState::Down]);
    let d = p.route(&mut req(Some("SRV=s1")), ip("::1"), &down, T0);
    assert_eq!(d.target(&down), Target::Unavailable);
}

#[test]
fn tableless_source_hashing_is_stable_and_skips_draining() {
    let mut cfg = PersistConfig::new(PersistMode::Source, "");
    cfg.tableless = true;
    let p = Persistence::new(cfg);
    let servers = all_active();
    let mut hits = [0; 3];
    for i in 0..60u8 {
        let client = IpAddr::from([10, 1, i, 1]);
        let a = p
            .route(&mut req(None), client, &servers, T0)
            .target(&servers);
        let b = p
            .route(&mut req(None), client, &servers, T0)
            .target(&servers);
        assert_eq!(a, b);
        let Target::Server(id) = a else {
            panic!("hashing chose nothing")
        };
        hits[id.0 as usize] += 1;
        let draining = set(&[
            ServerState::Active,
            ServerState::Draining,
            ServerState::Active,
        ]);
        let c = p
            .route(&mut req(None), client, &draining, T0)
            .target(&draining);
        assert_ne!(c, Target::Server(BackendId(1)));
    }
    assert!(hits.iter().all(|&h| h > 0), "{hits:?}");
    assert_eq!(p.table_len(), 0);
}

#[test]
fn insert_sets_cookie_with_attributes_and_honours_indirect() {
    let mut cfg = PersistConfig::new(PersistMode::CookieInsert, "SRV");
    cfg.insert.indirect = true;
    cfg.insert.attrs = SetCookieAttrs {
        domain: None,
        httponly: true,
        secure: true,
        samesite: Some("Strict"),
    };
    let p = Persistence::new(cfg);
    let servers = all_active();
    let d = p.route(&mut req(None), ip("::1"), &servers, T0);
    assert_eq!(d.target(&servers), Target::Any);
    let mut h = HeaderMap::new();
    p.on_response(&d, &mut h, StatusCode::OK, BackendId(1), &servers, T0);
    assert_eq!(
        set_cookies(&h),
        ["SRV=s1; Path=/; HttpOnly; Secure; SameSite=Strict"]
    );

    let mut r = req(Some("a=1; SRV=s1"));
    let d = p.route(&mut r, ip("::1"), &servers, T0);
    assert_eq!(d.target(&servers), Target::Server(BackendId(1)));
    assert_eq!(
        r.headers().get(COOKIE).unwrap(),
        "a=1",
        "indirect strips our cookie"
    );
    let mut h = HeaderMap::new();
    h.append(SET_COOKIE, HeaderValue::from_static("SRV=forged"));
    p.on_response(&d, &mut h, StatusCode::OK, BackendId(1), &servers, T0);
    assert!(set_cookies(&h).is_empty(), "valid cookie is not re-sent");
    // Redispatched elsewhere: the cookie follows the new server.
    let mut h = HeaderMap::new();
    p.on_response(&d, &mut h, StatusCode::OK, BackendId(0), &servers, T0);
    assert_eq!(set_cookies(&h).len(), 1);
    assert!(set_cookies(&h)[0].starts_with("SRV=s0;"));
}

#[test]
fn insert_without_indirect_forwards_and_resends() {
    let p = Persistence::new(PersistConfig::new(PersistMode::CookieInsert, "SRV"));
    let servers = all_active();
    let mut r = req(Some("SRV=s2"));
    let d = p.route(&mut r, ip("::1"), &servers, T0);
    assert_eq!(r.headers().get(COOKIE).unwrap(), "SRV=s2");
    let mut h = HeaderMap::new();
    p.on_response(&d, &mut h, StatusCode::OK, BackendId(2), &servers, T0);
    assert_eq!(set_cookies(&h), ["SRV=s2; Path=/"]);
    let unknown = p.route(&mut req(Some("SRV=nobody")), ip("::1"), &servers, T0);
    assert_eq!(unknown.target(&servers), Target::Any);
}

#[test]
fn insert_nocache_only_on_uncacheable_or_listed_types() {
    let mut cfg = PersistConfig::new(PersistMode::CookieInsert, "SRV");
    cfg.insert.nocache = true;
    let p = Persistence::new(cfg);
    let servers = all_active();
    let d = p.route(&mut req(None), ip("::1"), &servers, T0);
    let mut image = HeaderMap::new();
    image.insert(CONTENT_TYPE, HeaderValue::from_static("image/png"));
    p.on_response(&d, &mut image, StatusCode::OK, BackendId(0), &servers, T0);
    assert!(set_cookies(&image).is_empty());
    assert!(image.get(CACHE_CONTROL).is_none());
    let mut page = HeaderMap::new();
    page.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    p.on_response(&d, &mut page, StatusCode::OK, BackendId(0), &servers, T0);
    assert_eq!(set_cookies(&page).len(), 1);
    assert_eq!(page.get(CACHE_CONTROL).unwrap(), "private");
    let mut nostore = HeaderMap::new();
    nostore.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    nostore.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    p.on_response(&d, &mut nostore, StatusCode::OK, BackendId(0), &servers, T0);
    assert_eq!(set_cookies(&nostore).len(), 1);
}

#[test]
fn insert_dates_enforce_maxidle_and_maxlife() {
    let mut cfg = PersistConfig::new(PersistMode::CookieInsert, "SRV");
    cfg.insert.maxidle = Some(Duration::from_secs(600));
    cfg.insert.maxlife = Some(Duration::from_secs(3600));
    cfg.insert.indirect = true;
    let p = Persistence::new(cfg);
    let servers = all_active();
    let t0 = T0.as_secs();
    let d = p.route(&mut req(None), ip("::1"), &servers, T0);
    let mut h = HeaderMap::new();
    p.on_response(&d, &mut h, StatusCode::OK, BackendId(1), &servers, T0);
    assert_eq!(set_cookies(&h), [format!("SRV=s1|{t0}|{t0}; Path=/")]);

    let cookie = format!("SRV=s1|{t0}|{t0}");
    let at = |secs: u64| T0 + Duration::from_secs(secs);
    let pinned = |now| {
        p.route(&mut req(Some(&cookie)), ip("::1"), &servers, now)
            .pinned
    };
    assert_eq!(pinned(at(599)), Some(BackendId(1)));
    assert_eq!(pinned(at(600)), None, "idle too long");
    // A refreshed cookie keeps its first date; maxlife still ends it.
    let d = p.route(&mut req(Some(&cookie)), ip("::1"), &servers, at(300));
    let mut h = HeaderMap::new();
    p.on_response(&d, &mut h, StatusCode::OK, BackendId(1), &servers, at(300));
    assert_eq!(
        set_cookies(&h),
        [format!("SRV=s1|{}|{t0}; Path=/", t0 + 300)]
    );
    let old = format!("SRV=s1|{}|{t0}", t0 + 3500);
    let d = p.route(&mut req(Some(&old)), ip("::1"), &servers, at(3599));
    assert_eq!(d.pinned, Some(BackendId(1)));
    let d = p.route(&mut req(Some(&old)), ip("::1"), &servers, at(3600));
    assert_eq!(d.pinned, None, "lived too long");
    let junk = p.route(&mut req(Some("SRV=s1|x|y")), ip("::1"), &servers, T0);
    assert_eq!(junk.pinned, None);
}

#[test]
fn rewrite_replaces_the_placeholder_with_the_server_id() {
    let p = Persistence::new(PersistConfig::new(PersistMode::CookieRewrite, "SERVERID"));
    let servers = all_active();
    let d = p.route(&mut req(None), ip("::1"), &servers, T0);
    let mut h = HeaderMap::new();
    h.append(
        SET_COOKIE,
        HeaderValue::from_static("SERVERID=XXX; Path=/; HttpOnly"),
    );
    p.on_response(&d, &mut h, StatusCode::OK, BackendId(2), &servers, T0);
    assert_eq!(set_cookies(&h), ["SERVERID=s2; Path=/; HttpOnly"]);
    let d = p.route(&mut req(Some("SERVERID=s2")), ip("::1"), &servers, T0);
    assert_eq!(d.target(&servers), Target::Server(BackendId(2)));
}

#[test]
fn passive_learns_the_servers_cookie() {
    let p = Persistence::new(PersistConfig::new(PersistMode::CookiePassive, "JSESSIONID"));
    let servers = all_active();
    let d = p.route(&mut req(None), ip("::1"), &servers, T0);
    let mut h = HeaderMap::new();
    h.append(
        SET_COOKIE,
        HeaderValue::from_static("JSESSIONID=abc.node; Path=/"),
    );
    p.on_response(&d, &mut h, StatusCode::OK, BackendId(1), &servers, T0);
    assert_eq!(
        set_cookies(&h),
        ["JSESSIONID=abc.node; Path=/"],
        "passive never edits"
    );
    let d = p.route(
        &mut req(Some("JSESSIONID=abc.node")),
        ip("::1"),
        &servers,
        T0,
    );
    assert_eq!(d.target(&servers), Target::Server(BackendId(1)));
    let d = p.route(&mut req(Some("JSESSIONID=other")), ip("::1"), &servers, T0);
    assert_eq!(d.target(&servers), Target::Any);
}

#[test]
fn prefix_adds_and_strips_the_server_id() {
    let p = Persistence::new(PersistConfig::new(PersistMode::CookiePrefix, "JSESSIONID"));
    let servers = all_active();
    let d = p.route(&mut req(None), ip("::1"), &servers, T0);
    let mut h = HeaderMap::new();
    h.append(
        SET_COOKIE,
        HeaderValue::from_static("JSESSIONID=abc; Path=/"),
    );
    p.on_response(&d, &mut h, StatusCode::OK, BackendId(0), &servers, T0);
    assert_eq!(set_cookies(&h), ["JSESSIONID=s0~abc; Path=/"]);
    let mut r = req(Some("x=1; JSESSIONID=s0~abc"));
    let d = p.route(&mut r, ip("::1"), &servers, T0);
    assert_eq!(d.target(&servers), Target::Server(BackendId(0)));
    assert_eq!(r.headers().get(COOKIE).unwrap(), "x=1; JSESSIONID=abc");
}

#[test]
fn cookie_hash_places_consistently_and_learn_survives_server_changes() {
    let p = Persistence::new(PersistConfig::new(PersistMode::CookieHash, "JSESSIONID"));
    let servers = all_active();
    let r = |v: &str| req(Some(&format!("JSESSIONID={v}")));
    let d = p.route(&mut r("sess-1"), ip("::1"), &servers, T0);
    let Target::Server(first) = d.target(&servers) else {
        panic!("not hashed")
    };
    p.on_response(
        &d,
        &mut HeaderMap::new(),
        StatusCode::OK,
        first,
        &servers,
        T0,
    );
    // Adding a server moves some hash placements; the learned session stays put.
    let mut members = servers.members().to_vec();
    for i in 3..8 {
        members.push(Member {
            id: BackendId(i),
            cookie: format!("s{i}"),
            hash_key: format!("10.0.0.{i}:80"),
            weight: 1,
            state: ServerState::Active,
        });
    }
    let bigger = ServerSet::new(members);
    let d = p.route(&mut r("sess-1"), ip("::1"), &bigger, T0);
    assert_eq!(d.target(&bigger), Target::Server(first));
}

#[test]
fn url_param_routes_by_server_id_or_session_and_extends_redirects() {
    let mut cfg = PersistConfig::new(PersistMode::UrlParam, "sid");
    cfg.append_to_redirects = true;
    let p = Persistence::new(cfg);
    let servers = all_active();
    let mut r = Request::get("/cart?sid=s2").body(()).unwrap();
    let d = p.route(&mut r, ip("::1"), &servers, T0);
    assert_eq!(d.target(&servers), Target::Server(BackendId(2)));

    let d = p.route(
        &mut Request::get("/a").body(()).unwrap(),
        ip("::1"),
        &servers,
        T0,
    );
    let mut h = HeaderMap::new();
    h.insert(LOCATION, HeaderValue::from_static("/next"));
    p.on_response(&d, &mut h, StatusCode::FOUND, BackendId(1), &servers, T0);
    assert_eq!(h.get(LOCATION).unwrap(), "/next?sid=s1");
    let mut ok = HeaderMap::new();
    ok.insert(LOCATION, HeaderValue::from_static("/next"));
    p.on_response(&d, &mut ok, StatusCode::OK, BackendId(1), &servers, T0);
    assert_eq!(ok.get(LOCATION).unwrap(), "/next", "only redirects");

    // A servlet session id in the path is learned and carried into redirects.
    let mut r = Request::get("/shop;sid=ABC123").body(()).unwrap();
    let d = p.route(&mut r, ip("::1"), &servers, T0);
    assert_eq!(d.target(&servers), Target::Any);
    let mut h = HeaderMap::new();
    h.insert(LOCATION, HeaderValue::from_static("/pay"));
    p.on_response(
        &d,
        &mut h,
        StatusCode::SEE_OTHER,
        BackendId(0),
        &servers,
        T0,
    );
    assert_eq!(h.get(LOCATION).unwrap(), "/pay?sid=ABC123");
    let d = p.route(
        &mut Request::get("/pay?sid=ABC123").body(()).unwrap(),
        ip("::1"),
        &servers,
        T0,
    );
    assert_eq!(d.target(&servers), Target::Server(BackendId(0)));
}

#[test]
fn header_identity_hashed_or_learned() {
    let servers = all_active();
    let mut hashed = PersistConfig::new(PersistMode::Header, "x-subscriber-id");
    hashed.learn = false;
    let p = Persistence::new(hashed);
    let r = |v: &str| {
        Request::get("/")
            .header("x-subscriber-id", v)
            .body(())
            .unwrap()
    };
    let a = p
        .route(&mut r("4401234"), ip("::1"), &servers, T0)
        .target(&servers);
    assert!(matches!(a, Target::Server(_)));
    assert_eq!(
        a,
        p.route(&mut r("4401234"), ip("::2"), &servers, T0)
            .target(&servers)
    );
    assert_eq!(
        p.route(&mut req(None), ip("::1"), &servers, T0)
            .target(&servers),
        Target::Any
    );

    let learned = Persistence::new(PersistConfig::new(PersistMode::Header, "x-subscriber-id"));
    let d = learned.route(&mut r("t-9"), ip("::1"), &servers, T0);
    assert_eq!(d.target(&servers), Target::Any);
    learned.on_response(
        &d,
        &mut HeaderMap::new(),
        StatusCode::OK,
        BackendId(2),
        &servers,
        T0,
    );
    let d = learned.route(&mut r("t-9"), ip("::1"), &servers, T0);
    assert_eq!(d.target(&servers), Target::Server(BackendId(2)));
}

#[test]
fn table_is_bounded_and_entries_expire() {
    let mut cfg = PersistConfig::new(PersistMode::Header, "x-id");
    cfg.table_size = 4;
    cfg.idle_timeout = Duration::from_secs(60);
    let p = Persistence::new(cfg);
    let servers = all_active();
    for i in 0..10 {
        let mut r = Request::get("/")
            .header("x-id", i.to_string())
            .body(())
            .unwrap();
        let d = p.route(&mut r, ip("::1"), &servers, T0);
        p.on_response(
            &d,
            &mut HeaderMap::new(),
            StatusCode::OK,
            BackendId(0),
            &servers,
            T0,
        );
        assert!(p.table_len() <= 4);
    }
    assert_eq!(p.table_len(), 4);
    assert_eq!(p.expire(T0 + Duration::from_secs(60)), 4);
}
