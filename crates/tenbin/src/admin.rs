//! The admin API on `[admin].listen`: the operator's (and other tiers') way to push state into
//! a running node.
//!
//! - `GET /healthz` → `200 ok`
//! - `PUT /dns/datacenters/{name}/load` with a number as the body → `204`: the datacenter's
//!   current load, in the unit of its GSLB pools' `capacity`, which the DNS tier's capacity
//!   stage weighs against it. `400` for a body that is not a finite number >= 0, `404` for an
//!   unknown datacenter or when no `[dns]` tier runs.

use std::convert::Infallible;
use std::io;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::wiring::{DcLoads, LoadError};

/// What the admin API can reach.
#[derive(Clone, Debug, Default)]
pub struct AdminState {
    pub dns_loads: Option<DcLoads>,
}

/// Serves the admin API on `listener` until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    state: AdminState,
    mut stop: watch::Receiver<bool>,
) -> io::Result<()> {
    loop {
        let (stream, _) = tokio::select! {
            r = listener.accept() => r?,
            _ = stop.wait_for(|v| *v) => return Ok(()),
        };
        let state = state.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, Infallible>(handle(req, &state).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn handle(req: Request<Incoming>, state: &AdminState) -> Response<Full<Bytes>> {
    let path: Vec<&str> = req.uri().path().trim_matches('/').split('/').collect();
    match (req.method(), path.as_slice()) {
        (&Method::GET, ["healthz"]) => reply(StatusCode::OK, "ok\n"),
        (&Method::PUT, ["dns", "datacenters", dc, "load"]) => {
            let dc = (*dc).to_string();
            let Some(loads) = &state.dns_loads else {
                return reply(StatusCode::NOT_FOUND, "no [dns] tier runs on this node\n");
            };
            // A load is a short number: refuse anything longer than a line.
            let body = match Limited::new(req.into_body(), 64).collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => return reply(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n"),
            };
            let Some(load) = std::str::from_utf8(&body)
                .ok()
                .and_then(|s| s.trim().parse::<f64>().ok())
            else {
                return reply(StatusCode::BAD_REQUEST, "body must be a number\n");
            };
            match loads.set(&dc, load) {
                Ok(()) => reply(StatusCode::NO_CONTENT, ""),
                Err(e @ LoadError::UnknownDatacenter(_)) => {
                    reply(StatusCode::NOT_FOUND, &format!("{e}\n"))
                }
                Err(e @ LoadError::Invalid(_)) => reply(StatusCode::BAD_REQUEST, &format!("{e}\n")),
            }
        }
        (_, ["healthz"]) | (_, ["dns", "datacenters", _, "load"]) => {
            reply(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n")
        }
        _ => reply(StatusCode::NOT_FOUND, "not found\n"),
    }
}

fn reply(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())));
    *r.status_mut() = status;
    r
}
