//! The admin API on `[admin].listen`, a thin HTTP shell over [`Control`]: every change goes
//! through `Control::apply`, the path a reload takes.
//!
//! - `GET /healthz` → `200 ok`
//! - `GET /state` → `200` and the node's state as JSON (`tenbin_config::api::NodeState`)
//! - `POST /commands` with a `tenbin_config::api::Command` as JSON (`{"command":
//!   "set-server-state", "pool": "app", "server": "a", "state": "draining"}`) → `200` and
//!   the `Applied` JSON; `400` with the `ApplyError` JSON for a command that cannot apply
//!   (or a file that does not validate), `404` for an unknown pool, server or datacenter
//! - `POST /reload` → the same as the `reload` command
//! - `PUT /dns/datacenters/{name}/load` with a number as the body → `204`: the datacenter's
//!   current load, in the unit of its GSLB pools' `capacity`, which the DNS tier's capacity
//!   stage weighs against it. `400` for a body that is not a finite number >= 0, `404` for an
//!   unknown datacenter or when no `[dns]` tier runs.
//!
//! Bodies above 64 KiB are refused with `413`.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tenbin_config::api::{ApplyError, Command};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::node::Control;

const MAX_BODY: usize = 64 * 1024;

/// Serves the admin API on `listener` until `stop` is cancelled. The future is boxed: a
/// command that moves `[admin]` starts this same server from inside a request to it.
pub fn serve(
    listener: TcpListener,
    control: Control,
    stop: CancellationToken,
) -> Pin<Box<dyn Future<Output = io::Result<()>> + Send>> {
    Box::pin(serve_loop(listener, control, stop))
}

async fn serve_loop(
    listener: TcpListener,
    control: Control,
    stop: CancellationToken,
) -> io::Result<()> {
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => r?,
            () = stop.cancelled() => return Ok(()),
        };
        let (control, stop) = (control.clone(), stop.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let control = control.clone();
                async move { Ok::<_, Infallible>(handle(req, &control).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = stop.cancelled() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
}

async fn handle(req: Request<Incoming>, control: &Control) -> Response<Full<Bytes>> {
    let path: Vec<String> = req
        .uri()
        .path()
        .trim_matches('/')
        .split('/')
        .map(str::to_string)
        .collect();
    let path: Vec<&str> = path.iter().map(String::as_str).collect();
    match (req.method().clone(), path.as_slice()) {
        (Method::GET, ["healthz"]) => reply(StatusCode::OK, "ok\n"),
        (Method::GET, ["state"]) => json(StatusCode::OK, &control.state().await),
        (Method::POST, ["reload"]) => command(control, Command::Reload).await,
        (Method::POST, ["commands"]) => {
            let body = match body(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            match serde_json::from_slice::<Command>(&body) {
                Ok(cmd) => command(control, cmd).await,
                Err(e) => json(
                    StatusCode::BAD_REQUEST,
                    &ApplyError::rejected(format!("not a command: {e}")),
                ),
            }
        }
        (Method::PUT, ["dns", "datacenters", dc, "load"]) => {
            let datacenter = (*dc).to_string();
            let body = match body(req).await {
                Ok(b) => b,
                Err(r) => return r,
            };
            let Some(load) = std::str::from_utf8(&body)
                .ok()
                .and_then(|s| s.trim().parse::<f64>().ok())
            else {
                return reply(StatusCode::BAD_REQUEST, "body must be a number\n");
            };
            match control
                .apply(Command::SetDatacenterLoad { datacenter, load })
                .await
            {
                Ok(_) => reply(StatusCode::NO_CONTENT, ""),
                Err(e) => reply(status_of(&e), &format!("{e}\n")),
            }
        }
        (_, ["healthz" | "state" | "reload" | "commands"])
        | (_, ["dns", "datacenters", _, "load"]) => {
            reply(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        }
        _ => reply(StatusCode::NOT_FOUND, "not found\n"),
    }
}

async fn command(control: &Control, cmd: Command) -> Response<Full<Bytes>> {
    match control.apply(cmd).await {
        Ok(applied) => json(StatusCode::OK, &applied),
        Err(e) => json(status_of(&e), &e),
    }
}

fn status_of(e: &ApplyError) -> StatusCode {
    match e {
        ApplyError::NotFound { .. } => StatusCode::NOT_FOUND,
        ApplyError::InvalidConfig { .. } | ApplyError::Rejected { .. } => StatusCode::BAD_REQUEST,
        ApplyError::Failed { .. } => StatusCode::CONFLICT,
    }
}

async fn body(req: Request<Incoming>) -> Result<Bytes, Response<Full<Bytes>>> {
    match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(_) => Err(reply(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n")),
    }
}

fn json(status: StatusCode, value: &impl serde::Serialize) -> Response<Full<Bytes>> {
    let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
    body.push(b'\n');
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn reply(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r
}
