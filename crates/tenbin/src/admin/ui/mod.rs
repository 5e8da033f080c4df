//! The dashboard: a page an operator leaves open, served at `GET /` with its scripts and
//! style at `GET /ui/{asset}`. Every asset is compiled into the binary (no CDN, no fonts to
//! fetch), so it works on a host without internet.
//!
//! The page and its assets are public: they are the same bytes on every node and name
//! nothing about this one. Everything the page shows comes from the token-protected API
//! (`/api/v1/state` for structure and states, `/metrics` for counters, polled), and every
//! action goes through the existing `/api/v1/pools/{pool}/servers/{server}/state|weight`
//! routes; the operator types the token into the page, which keeps it in `sessionStorage`
//! (gone when the tab closes) and sends it as `Authorization: Bearer` on each data call.
//!
//! The scripts are ES modules: `app.js` polls and keeps the history, `api.js` makes the
//! calls (with the token), `prom.js` parses the Prometheus text format and computes rates
//! and histogram quantiles, `derive.js` turns state and scrapes into one frame of numbers,
//! `render.js` draws the sections, `charts.js` the inline SVG charts, `view.js` the DOM
//! helpers.

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::errors::ApiError;

/// One embedded file under `/ui/`.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static str,
}

const INDEX: &str = include_str!("assets/index.html");

const ASSETS: &[Asset] = &[
    asset(
        "app.css",
        "text/css; charset=utf-8",
        include_str!("assets/app.css"),
    ),
    asset("app.js", JS, include_str!("assets/app.js")),
    asset("api.js", JS, include_str!("assets/api.js")),
    asset("prom.js", JS, include_str!("assets/prom.js")),
    asset("derive.js", JS, include_str!("assets/derive.js")),
    asset("render.js", JS, include_str!("assets/render.js")),
    asset("charts.js", JS, include_str!("assets/charts.js")),
    asset("view.js", JS, include_str!("assets/view.js")),
    asset(
        "favicon.svg",
        "image/svg+xml",
        include_str!("assets/favicon.svg"),
    ),
];

const JS: &str = "text/javascript; charset=utf-8";

const fn asset(name: &'static str, content_type: &'static str, body: &'static str) -> Asset {
    Asset {
        name,
        content_type,
        body,
    }
}

/// Only this origin's scripts, styles and API: an injected `<script>` or a link to another
/// host does not run or load. Inline SVG charts are DOM nodes, not images, so `img-src`
/// needs nothing beyond `'self'` (the favicon).
const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Paths served without the token: the page and its assets.
pub fn is_public(path: &str) -> bool {
    path == "/" || path.starts_with("/ui/")
}

pub async fn index() -> Response {
    page("text/html; charset=utf-8", INDEX)
}

pub async fn serve(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => page(a.content_type, a.body),
        None => {
            let known: Vec<String> = ASSETS.iter().map(|a| a.name.to_string()).collect();
            ApiError {
                status: StatusCode::NOT_FOUND,
                message: format!("no dashboard asset `{name}`; known: {}", known.join(", ")),
                known: Some(known),
            }
            .into_response()
        }
    }
}

fn page(content_type: &'static str, body: &'static str) -> Response {
    // `no-cache` revalidates on every load, so a node upgraded in place serves its own page.
    let headers = [
        (CONTENT_TYPE, HeaderValue::from_static(content_type)),
        (CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP)),
        (
            HeaderName::from_static("x-content-type-options"),
            HeaderValue::from_static("nosniff"),
        ),
    ];
    (headers, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::{is_public, ASSETS, INDEX};

    fn all() -> impl Iterator<Item = (&'static str, &'static str)> {
        std::iter::once(("index.html", INDEX)).chain(ASSETS.iter().map(|a| (a.name, a.body)))
    }

    /// Every `/ui/NAME` the page links and every `./NAME.js` a module imports is embedded.
    #[test]
    fn every_referenced_asset_is_embedded() {
        let mut referenced = Vec::new();
        for (file, text) in all() {
            for part in text.split("/ui/").skip(1) {
                let name: String = part
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '.' || *c == '-')
                    .collect();
                referenced.push((file, name));
            }
            for part in text.split("from \"./").skip(1) {
                let name = part.split('"').next().unwrap_or_default().to_string();
                referenced.push((file, name));
            }
        }
        assert!(referenced.len() >= ASSETS.len(), "{referenced:?}");
        for (file, name) in referenced {
            assert!(
                ASSETS.iter().any(|a| a.name == name),
                "{file} references /ui/{name}, which is not embedded"
            );
        }
    }

    /// Nothing is fetched from another host: no absolute URL outside the SVG namespace.
    #[test]
    fn no_asset_loads_anything_from_another_host() {
        for (file, text) in all() {
            for scheme in ["http://", "https://", "//fonts.", "@import"] {
                let stray = text
                    .match_indices(scheme)
                    .filter(|(i, _)| !text[*i..].starts_with("http://www.w3.org/2000/svg"))
                    .count();
                assert_eq!(stray, 0, "{file} contains {scheme}");
            }
        }
    }

    #[test]
    fn only_the_page_and_its_assets_are_public() {
        assert!(is_public("/"));
        assert!(is_public("/ui/app.js"));
        for p in [
            "/api/v1/state",
            "/metrics",
            "/state",
            "/uix",
            "//ui/x",
            "/api/ui/",
        ] {
            assert!(!is_public(p), "{p}");
        }
    }
}
