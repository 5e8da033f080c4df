//! The admin API on `[admin].listen`: an axum router over [`Control`]. Every change goes
//! through `Control::apply`, the path a reload takes, and shows in `GET /api/v1/state` at
//! once.
//!
//! - `routes`: the route table ([`routes::ROUTES`]) the router is built from, and handlers.
//! - `auth`: the bearer token check.
//! - `errors`: failures as `{"error": "..."}` with 400, 401, 404, 405, 409 or 413.
//! - `metrics`: `GET /metrics`, every tier's counters in the Prometheus text format.
//! - `ui`: the dashboard at `/` and its embedded assets at `/ui/{asset}`.
//! - `openapi`: `openapi.json`, the API's description, served at `GET /api/v1/openapi.json`
//!   and checked against the route table by a test.
//!
//! Auth: when `[admin]` has a token (required off loopback, see tenbin-config), every route
//! but `/healthz` and the dashboard's page and assets (`/`, `/ui/...`: static, naming nothing
//! about the node) demands `Authorization: Bearer TOKEN`, reads included: the state names
//! every backend address. Without a token (loopback only) every route is open, as any local
//! process could reach the node anyway. The token is looked up on every request, so a
//! reload that changes it applies at once.

mod auth;
mod errors;
pub(crate) mod metrics;
mod openapi;
mod routes;
mod ui;

use std::future::Future;
use std::io;
use std::pin::Pin;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::node::Control;

/// Bodies above this are refused with `413` (a command is a few hundred bytes).
const MAX_BODY: usize = 64 * 1024;

/// The whole admin API as one router (also what the tests drive).
pub fn router(control: Control) -> Router {
    routes::ROUTES
        .iter()
        .fold(Router::new(), |r, route| {
            r.route(route.path, route.method_router())
        })
        .fallback(errors::no_route)
        .method_not_allowed_fallback(errors::wrong_method)
        .layer(axum::middleware::from_fn_with_state(
            control.clone(),
            auth::require_token,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(control)
}

/// Serves the admin API on `listener` until `stop` is cancelled, then lets requests in
/// flight finish. The future is boxed: a command that moves `[admin]` starts this same
/// server from inside a request to it.
pub fn serve(
    listener: TcpListener,
    control: Control,
    stop: CancellationToken,
) -> Pin<Box<dyn Future<Output = io::Result<()>> + Send>> {
    Box::pin(async move {
        axum::serve(listener, router(control))
            .with_graceful_shutdown(stop.cancelled_owned())
            .await
    })
}
