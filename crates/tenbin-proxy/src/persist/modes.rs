//! The per-mode request and response rules behind [`Persistence::route`] and
//! [`Persistence::on_response`].

use std::net::IpAddr;
use std::time::Duration;

use http::header::{CACHE_CONTROL, CONTENT_TYPE, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use tenbin_core::persist::PersistKey;
use tenbin_core::BackendId;

use super::cookie::{
    build_set_cookie, edit_request_cookie, edit_response_cookie, request_cookie, response_cookie,
};
use super::{url, Decision, PersistMode, Persistence, ServerSet};

/// Key domains, so one value means different keys in different modes.
const COOKIE_DOMAIN: u8 = 1;
const URL_DOMAIN: u8 = 3;
const HEADER_DOMAIN: u8 = 4;
/// Separator of cookie-prefix mode (`server~application value`), as HAProxy's.
const PREFIX_SEP: char = '~';

impl Persistence {
    /// Reads the request's persistence information and prepares it for the server (strips
    /// our cookie in indirect insert mode, the server prefix in prefix mode).
    pub fn route<B>(
        &self,
        req: &mut Request<B>,
        client: IpAddr,
        servers: &ServerSet,
        now: Duration,
    ) -> Decision {
        let c = &self.config;
        let mut d = Decision {
            redispatch: c.redispatch,
            ..Decision::default()
        };
        let name = c.name.as_str();
        match c.mode {
            PersistMode::Source => {
                let key = self.source_key(client);
                d.key = Some(key);
                if c.tableless {
                    d.hashed = true;
                } else {
                    d.pinned = self.lookup(key, now);
                }
            }
            PersistMode::CookieInsert => {
                if let Some(v) = request_cookie(req.headers(), name) {
                    d.cookie = self.valid_insert_cookie(&v, servers, now);
                    d.pinned = d.cookie.map(|(id, _, _)| id);
                }
                if c.insert.indirect {
                    edit_request_cookie(req.headers_mut(), name, |_| None);
                }
            }
            PersistMode::CookieRewrite => {
                d.pinned = request_cookie(req.headers(), name).and_then(|v| servers.by_cookie(&v));
            }
            PersistMode::CookiePassive => {
                if let Some(v) = request_cookie(req.headers(), name) {
                    let key = PersistKey::from_bytes(COOKIE_DOMAIN, v.as_bytes());
                    d.key = Some(key);
                    d.pinned = self.lookup(key, now);
                }
            }
            PersistMode::CookiePrefix => {
                let v = request_cookie(req.headers(), name);
                if let Some((srv, _)) = v.as_deref().and_then(|v| v.split_once(PREFIX_SEP)) {
                    d.pinned = servers.by_cookie(srv);
                    edit_request_cookie(req.headers_mut(), name, |v| {
                        Some(
                            v.split_once(PREFIX_SEP)
                                .map_or(v, |(_, app)| app)
                                .to_owned(),
                        )
                    });
                }
            }
            PersistMode::CookieHash => {
                if let Some(v) = request_cookie(req.headers(), name) {
                    let key = PersistKey::from_bytes(COOKIE_DOMAIN, v.as_bytes());
                    d.key = Some(key);
                    d.hashed = true;
                    if c.learn {
                        d.pinned = self.lookup(key, now);
                    }
                }
            }
            PersistMode::UrlParam => {
                if let Some(v) = url::param(req.uri(), name) {
                    if let Some(id) = servers.by_cookie(&v) {
                        d.pinned = Some(id);
                    } else {
                        let key = PersistKey::from_bytes(URL_DOMAIN, v.as_bytes());
                        d.key = Some(key);
                        d.hashed = !c.learn;
                        if c.learn {
                            d.pinned = self.lookup(key, now);
                        }
                        d.session_param = Some(v);
                    }
                }
            }
            PersistMode::Header => {
                let v = req.headers().get(name).map(HeaderValue::as_bytes);
                if let Some(v) = v.filter(|v| !v.is_empty()) {
                    let key = PersistKey::from_bytes(HEADER_DOMAIN, v);
                    d.key = Some(key);
                    d.hashed = !c.learn;
                    if c.learn {
                        d.pinned = self.lookup(key, now);
                    }
                }
            }
            PersistMode::TlsSession => {}
        }
        d
    }

    /// Records where the request went and edits the response so the client comes back there:
    /// learns table entries, inserts or rewrites cookies, extends redirects.
    pub fn on_response(
        &self,
        d: &Decision,
        headers: &mut HeaderMap,
        status: StatusCode,
        server: BackendId,
        servers: &ServerSet,
        now: Duration,
    ) {
        let c = &self.config;
        let name = c.name.as_str();
        let learns = match c.mode {
            PersistMode::Source => !c.tableless,
            PersistMode::CookiePassive | PersistMode::TlsSession => true,
            PersistMode::CookieHash | PersistMode::UrlParam | PersistMode::Header => c.learn,
            _ => false,
        };
        if let (true, Some(key)) = (learns, d.key) {
            self.learn(key, server, now);
        }
        let Some(srv) = servers.cookie_of(server) else {
            return;
        };
        match c.mode {
            PersistMode::CookieInsert => self.insert_cookie(d, headers, server, srv, now),
            PersistMode::CookieRewrite => {
                edit_response_cookie(headers, name, |_| Some(srv.to_owned()));
            }
            PersistMode::CookiePassive => {
                if let Some(v) = response_cookie(headers, name) {
                    self.learn(
                        PersistKey::from_bytes(COOKIE_DOMAIN, v.as_bytes()),
                        server,
                        now,
                    );
                }
            }
            PersistMode::CookieHash if c.learn => {
                if let Some(v) = response_cookie(headers, name) {
                    self.learn(
                        PersistKey::from_bytes(COOKIE_DOMAIN, v.as_bytes()),
                        server,
                        now,
                    );
                }
            }
            PersistMode::CookiePrefix => {
                edit_response_cookie(headers, name, |v| Some(format!("{srv}{PREFIX_SEP}{v}")));
            }
            PersistMode::UrlParam if c.append_to_redirects && status.is_redirection() => {
                let value = d.session_param.as_deref().unwrap_or(srv);
                url::append_to_redirect(headers, name, value);
            }
            _ => {}
        }
    }

    /// `srv` or `srv|last|first` (seconds since the epoch), checked against maxidle/maxlife.
    fn valid_insert_cookie(
        &self,
        value: &str,
        servers: &ServerSet,
        now: Duration,
    ) -> Option<(BackendId, u64, u64)> {
        let o = &self.config.insert;
        let mut parts = value.split('|');
        let id = servers.by_cookie(parts.next()?)?;
        let now = now.as_secs();
        let dated = o.maxidle.is_some() || o.maxlife.is_some();
        if !dated {
            return Some((id, now, now));
        }
        let last: u64 = parts.next()?.parse().ok()?;
        let first: u64 = parts.next()?.parse().ok()?;
        let fresh = |since: u64, max: Option<Duration>| {
            max.is_none_or(|m| since <= now && now - since < m.as_secs())
        };
        (fresh(last, o.maxidle) && fresh(first, o.maxlife)).then_some((id, last, first))
    }

    fn insert_cookie(
        &self,
        d: &Decision,
        headers: &mut HeaderMap,
        server: BackendId,
        srv: &str,
        now: Duration,
    ) {
        let o = &self.config.insert;
        let now = now.as_secs();
        let same = d.cookie.filter(|(id, _, _)| *id == server);
        if o.indirect {
            // The server must not set our cookie behind our back.
            strip_set_cookie(headers, &self.config.name);
            let stale = |last: u64| {
                o.maxidle
                    .is_some_and(|m| now.saturating_sub(last) >= (m.as_secs() / 4).max(1))
            };
            if same.is_some_and(|(_, last, _)| !stale(last)) {
                return;
            }
        }
        if o.nocache && !cacheability_allows_insert(headers, &o.content_types) {
            return;
        }
        let value = if o.maxidle.is_some() || o.maxlife.is_some() {
            let first = same.map_or(now, |(_, _, first)| first);
            format!("{srv}|{now}|{first}")
        } else {
            srv.to_owned()
        };
        if let Some(v) = build_set_cookie(&self.config.name, &value, &o.attrs) {
            headers.append(SET_COOKIE, v);
            if o.nocache {
                add_private(headers);
            }
        }
    }
}

/// nocache: insert only on responses nobody may cache anyway, or of the configured types.
fn cacheability_allows_insert(headers: &HeaderMap, types: &[String]) -> bool {
    let uncacheable = headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|d| d.trim().to_ascii_lowercase())
        .any(|d| d == "private" || d == "no-store" || d == "no-cache");
    let ctype = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    uncacheable || ctype.is_some_and(|ct| types.iter().any(|t| t.eq_ignore_ascii_case(&ct)))
}

fn add_private(headers: &mut HeaderMap) {
    let has = headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|d| d.trim().eq_ignore_ascii_case("private"))
        });
    if !has {
        headers.append(CACHE_CONTROL, HeaderValue::from_static("private"));
    }
}

fn strip_set_cookie(headers: &mut HeaderMap, name: &str) {
    let keep: Vec<HeaderValue> = headers
        .get_all(SET_COOKIE)
        .iter()
        .filter(|v| {
            v.to_str().map_or(true, |s| {
                s.split_once('=').is_none_or(|(n, _)| n.trim() != name)
            })
        })
        .cloned()
        .collect();
    headers.remove(SET_COOKIE);
    for v in keep {
        headers.append(SET_COOKIE, v);
    }
}
