//! Fuzz session persistence as the L7 path drives it: any request (URI, `Cookie` headers, a
//! persistence header) and any response (`Set-Cookie`, `Location`, cache headers, status)
//! through `Persistence::route` and `on_response`, in every mode and option; then one round
//! trip in that mode with a cookie or parameter value from the input.
//! Invariants: no panic; a request is pinned only to a member of the pool; and what a
//! response teaches the client brings it back: the inserted cookie, the prefixed cookie (whose
//! prefix is stripped again before the server sees it), the learned passive cookie and the
//! parameter appended to a redirect each pin the next request to the server that answered.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use http::header::{COOKIE, LOCATION, SET_COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode, Uri};
use libfuzzer_sys::fuzz_target;
use tenbin_core::{BackendId, ServerState};
use tenbin_proxy::persist::{Member, PersistConfig, PersistMode, Persistence, ServerSet};

const MODES: [PersistMode; 9] = [
    PersistMode::Source,
    PersistMode::CookieInsert,
    PersistMode::CookieRewrite,
    PersistMode::CookiePassive,
    PersistMode::CookiePrefix,
    PersistMode::CookieHash,
    PersistMode::UrlParam,
    PersistMode::Header,
    PersistMode::TlsSession,
];
const NOW: Duration = Duration::from_secs(1_700_000_000);

/// The input is text, so seeds are readable (see `corpus/persist`):
///
/// ```text
/// mode=cookie-insert name=SRV indirect maxidle=60 server=1 states=adDmu value=abc
/// GET /cart;jsessionid=abc?sid=s1
/// Cookie: SRV=s1|1700000000|1699999000
///
/// 302
/// Set-Cookie: JS=abc; Path=/
/// Location: /next
/// ```
///
/// Line 1: options (flags `indirect nocache redirects learn tableless redispatch`); then the
/// request line and headers; after a blank line the response status and headers.
#[derive(Debug)]
struct Input {
    mode: PersistMode,
    name: String,
    indirect: bool,
    nocache: bool,
    redirects: bool,
    learn: bool,
    tableless: bool,
    redispatch: bool,
    maxidle: Option<u64>,
    prefix_v4: u8,
    states: [ServerState; 3],
    server: u32,
    client: Option<IpAddr>,
    /// The value of the round trip; replaced by `v` unless it is a cookie value.
    value: String,
    uri: String,
    request: Vec<(String, Vec<u8>)>,
    status: u16,
    response: Vec<(String, Vec<u8>)>,
}

impl Input {
    fn read(text: &str) -> Input {
        let mut i = Input {
            mode: PersistMode::CookieInsert,
            name: String::new(),
            indirect: false,
            nocache: false,
            redirects: false,
            learn: false,
            tableless: false,
            redispatch: false,
            maxidle: None,
            prefix_v4: 32,
            states: [ServerState::Active; 3],
            server: 0,
            client: None,
            value: String::new(),
            uri: "/".into(),
            request: Vec::new(),
            status: 200,
            response: Vec::new(),
        };
        let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
        for word in lines.next().unwrap_or_default().split(' ') {
            let (k, v) = word.split_once('=').unwrap_or((word, ""));
            match k {
                "mode" => i.mode = mode_named(v).unwrap_or(i.mode),
                "name" => i.name = v.to_string(),
                "indirect" => i.indirect = true,
                "nocache" => i.nocache = true,
                "redirects" => i.redirects = true,
                "learn" => i.learn = true,
                "tableless" => i.tableless = true,
                "redispatch" => i.redispatch = true,
                "maxidle" => i.maxidle = v.parse().ok(),
                "prefix" => i.prefix_v4 = v.parse().unwrap_or(32).min(32),
                "server" => i.server = v.parse().unwrap_or(0) % 3,
                "client" => i.client = v.parse().ok(),
                "value" => i.value = v.to_string(),
                "states" => {
                    for (n, c) in v.chars().take(3).enumerate() {
                        i.states[n] = match c {
                            'd' => ServerState::Draining,
                            'D' => ServerState::Down,
                            'm' => ServerState::Maintenance,
                            'u' => ServerState::Unchecked,
                            _ => ServerState::Active,
                        };
                    }
                }
                _ => {}
            }
        }
        i.uri = lines
            .next()
            .and_then(|l| l.split_once(' '))
            .map_or("/".into(), |(_, u)| u.to_string());
        for l in lines.by_ref() {
            match l.split_once(':') {
                Some((n, v)) => i
                    .request
                    .push((n.to_string(), v.trim_start().as_bytes().to_vec())),
                None => break,
            }
        }
        i.status = lines
            .next()
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(200);
        for l in lines {
            if let Some((n, v)) = l.split_once(':') {
                i.response
                    .push((n.to_string(), v.trim_start().as_bytes().to_vec()));
            }
        }
        i
    }
}

/// `cookie-insert` names `CookieInsert`: the config file's spelling of the mode.
fn mode_named(name: &str) -> Option<PersistMode> {
    let flat = name.replace('-', "");
    MODES
        .iter()
        .find(|m| format!("{m:?}").eq_ignore_ascii_case(&flat))
        .copied()
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn header_map(pairs: &[(String, Vec<u8>)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in pairs.iter().take(16) {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(n.as_bytes()),
            HeaderValue::from_bytes(v),
        ) {
            h.append(n, v);
        }
    }
    h
}

fn get(uri: &str, cookie: Option<&str>) -> Option<Request<()>> {
    let mut b = Request::builder().uri(uri.parse::<Uri>().ok()?);
    if let Some(c) = cookie {
        b = b.header(COOKIE, HeaderValue::from_str(c).ok()?);
    }
    b.body(()).ok()
}

fuzz_target!(|data: &[u8]| {
    let i = Input::read(&String::from_utf8_lossy(data));
    let mode = i.mode;
    let name = if is_token(&i.name) {
        i.name.clone()
    } else {
        "SRV".into()
    };
    let mut config = PersistConfig::new(mode, name.clone());
    config.insert.indirect = i.indirect;
    config.insert.nocache = i.nocache;
    config.append_to_redirects = i.redirects;
    config.learn = i.learn;
    config.tableless = i.tableless;
    config.redispatch = i.redispatch;
    config.insert.maxidle = i.maxidle.map(|s| Duration::from_secs(s.clamp(1, 1 << 32)));
    config.source_prefix_v4 = i.prefix_v4;
    config.table_size = 64;
    let p = Persistence::new(config);
    let servers = ServerSet::new(
        (0..3u32)
            .map(|n| Member {
                id: BackendId(n),
                cookie: format!("s{n}"),
                hash_key: format!("10.0.0.{n}:80"),
                weight: 1,
                state: i.states[n as usize],
            })
            .collect(),
    );
    let client = i.client.unwrap_or(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)));
    let server = BackendId(i.server);

    // The request and response as given: nothing panics, pins name members.
    if let Ok(uri) = i.uri.parse::<Uri>() {
        let mut req = Request::new(());
        *req.uri_mut() = uri;
        *req.headers_mut() = header_map(&i.request);
        let d = p.route(&mut req, client, &servers, NOW);
        if let Some(id) = d.pinned {
            assert!(
                servers.cookie_of(id).is_some(),
                "pinned to a stranger {id:?}"
            );
        }
        let _ = d.target(&servers);
        let mut resp = header_map(&i.response);
        let status = StatusCode::from_u16(i.status).unwrap_or(StatusCode::OK);
        p.on_response(&d, &mut resp, status, server, &servers, NOW);
    }

    // The round trip, towards a server that takes persisted sessions.
    if !servers.accepts_persisted(server) {
        return;
    }
    let value = if !i.value.is_empty()
        && i.value
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"\";,\\~|".contains(&b))
        && !servers.members().iter().any(|m| m.cookie == i.value)
    {
        i.value.clone()
    } else {
        "v".into()
    };
    let srv = servers.cookie_of(server).expect("member").to_string();
    let pinned_by = |cookie: Option<&str>, uri: &str| -> Option<(Option<BackendId>, HeaderMap)> {
        let mut req = get(uri, cookie)?;
        let d = p.route(&mut req, client, &servers, NOW);
        Some((d.pinned, req.headers().clone()))
    };
    let d = {
        let mut req = get("/", None).expect("plain request");
        p.route(&mut req, client, &servers, NOW)
    };
    match mode {
        PersistMode::CookieInsert if !p.config().insert.nocache => {
            let mut resp = HeaderMap::new();
            p.on_response(&d, &mut resp, StatusCode::OK, server, &servers, NOW);
            let set = resp.get(SET_COOKIE).expect("insert mode sets a cookie");
            let pair = set
                .to_str()
                .expect("ascii")
                .split(';')
                .next()
                .expect("pair");
            let (back, _) = pinned_by(Some(pair), "/").expect("cookie request");
            assert_eq!(back, Some(server), "inserted {pair:?} does not come back");
        }
        PersistMode::CookiePrefix => {
            let mut resp = HeaderMap::new();
            let own = format!("{name}={value}; Path=/; HttpOnly");
            resp.append(SET_COOKIE, HeaderValue::from_str(&own).expect("token"));
            p.on_response(&d, &mut resp, StatusCode::OK, server, &servers, NOW);
            let set = resp.get(SET_COOKIE).expect("kept").to_str().expect("ascii");
            assert_eq!(set, format!("{name}={srv}~{value}; Path=/; HttpOnly"));
            let pair = format!("{name}={srv}~{value}");
            let (back, fwd) = pinned_by(Some(&pair), "/").expect("cookie request");
            assert_eq!(back, Some(server));
            assert_eq!(
                fwd.get(COOKIE).map(|v| v.as_bytes()),
                Some(format!("{name}={value}").as_bytes()),
                "prefix not stripped"
            );
        }
        PersistMode::CookiePassive => {
            let mut resp = HeaderMap::new();
            let own = format!("{name}={value}; Path=/");
            resp.append(SET_COOKIE, HeaderValue::from_str(&own).expect("token"));
            p.on_response(&d, &mut resp, StatusCode::OK, server, &servers, NOW);
            let (back, _) = pinned_by(Some(&format!("{name}={value}")), "/").expect("request");
            assert_eq!(back, Some(server), "learned {value:?} does not come back");
        }
        PersistMode::UrlParam if p.config().append_to_redirects => {
            let mut resp = HeaderMap::new();
            resp.insert(LOCATION, HeaderValue::from_static("/next"));
            p.on_response(&d, &mut resp, StatusCode::FOUND, server, &servers, NOW);
            let loc = resp.get(LOCATION).expect("kept").to_str().expect("ascii");
            assert_eq!(loc, format!("/next?{name}={srv}"));
            let (back, _) = pinned_by(None, loc).expect("redirect target");
            assert_eq!(back, Some(server), "{loc} does not come back");
        }
        _ => {}
    }
});
