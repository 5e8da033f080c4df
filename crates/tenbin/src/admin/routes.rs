//! The route table the router is built from (and the OpenAPI test checks), and the
//! handlers: each turns a request into one `Command` for `Control::apply`.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{on, MethodFilter, MethodRouter};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use tenbin_config::api::{Applied, Command, DcAdminState, NewServer, NodeState};
use tenbin_config::pool::AdminState;

use super::errors::ApiError;
use crate::node::Control;

/// One method on one path. `path` uses axum's (and OpenAPI's) `{param}` syntax; the
/// router serves `handler` for exactly `method`.
pub struct Route {
    pub method: &'static str,
    pub path: &'static str,
    pub handler: fn(MethodFilter) -> MethodRouter<Control>,
}

impl Route {
    pub fn method_router(&self) -> MethodRouter<Control> {
        let filter = match self.method {
            "GET" => MethodFilter::GET,
            "PUT" => MethodFilter::PUT,
            "POST" => MethodFilter::POST,
            "DELETE" => MethodFilter::DELETE,
            other => unreachable!("no route uses {other}"),
        };
        (self.handler)(filter)
    }
}

/// Every route the admin API serves; the last four are the first API's paths, kept for
/// scripts written against it.
pub const ROUTES: &[Route] = &[
    route("GET", "/healthz", |m| on(m, healthz)),
    route("GET", "/", |m| on(m, super::ui::index)),
    route("GET", "/ui/{asset}", |m| on(m, super::ui::serve)),
    route("GET", "/api/v1/state", |m| on(m, state)),
    route("GET", "/metrics", |m| on(m, super::metrics::serve)),
    route("GET", "/api/v1/openapi.json", |m| {
        on(m, super::openapi::serve)
    }),
    route("POST", "/api/v1/reload", |m| on(m, reload)),
    route("PUT", "/api/v1/pools/{pool}/servers/{server}/state", |m| {
        on(m, server_state)
    }),
    route("PUT", "/api/v1/pools/{pool}/servers/{server}/weight", |m| {
        on(m, server_weight)
    }),
    route("POST", "/api/v1/pools/{pool}/servers", |m| {
        on(m, add_server)
    }),
    route("DELETE", "/api/v1/pools/{pool}/servers/{server}", |m| {
        on(m, remove_server)
    }),
    route("PUT", "/api/v1/dns/datacenters/{dc}/load", |m| {
        on(m, dc_load)
    }),
    route("PUT", "/api/v1/dns/datacenters/{dc}/admin", |m| {
        on(m, dc_admin)
    }),
    route("POST", "/api/v1/mux/drain", |m| on(m, drain_mux)),
    route("POST", "/api/v1/mux/undrain", |m| on(m, undrain_mux)),
    route("GET", "/state", |m| on(m, state)),
    route("POST", "/reload", |m| on(m, reload)),
    route("POST", "/commands", |m| on(m, command)),
    route("PUT", "/dns/datacenters/{dc}/load", |m| {
        on(m, dc_load_plain)
    }),
];

const fn route(
    method: &'static str,
    path: &'static str,
    handler: fn(MethodFilter) -> MethodRouter<Control>,
) -> Route {
    Route {
        method,
        path,
        handler,
    }
}

type Reply = Result<Json<Applied>, ApiError>;

async fn healthz() -> &'static str {
    "ok\n"
}

async fn state(State(control): State<Control>) -> Json<NodeState> {
    Json(control.state().await)
}

async fn reload(State(control): State<Control>) -> Reply {
    apply(&control, Command::Reload, None).await
}

async fn drain_mux(State(control): State<Control>) -> Reply {
    apply(&control, Command::DrainMux, None).await
}

async fn undrain_mux(State(control): State<Control>) -> Reply {
    apply(&control, Command::UndrainMux, None).await
}

/// `{"state": "..."}`: `active` (or `enable`), `draining` (or `drain`), `maintenance` (or
/// `maint`, `disable`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StateBody {
    state: StateName,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum StateName {
    #[serde(alias = "enable", alias = "enabled")]
    Active,
    #[serde(alias = "drain")]
    Draining,
    #[serde(alias = "maint", alias = "disable", alias = "disabled")]
    Maintenance,
}

async fn server_state(
    State(control): State<Control>,
    Path((pool, server)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let StateBody { state } = parse(body)?;
    let state = match state {
        StateName::Active => AdminState::Active,
        StateName::Draining => AdminState::Draining,
        StateName::Maintenance => AdminState::Maintenance,
    };
    let cmd = Command::SetServerState {
        pool: pool.clone(),
        server,
        state,
    };
    apply(&control, cmd, Some(&pool)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WeightBody {
    weight: u32,
}

async fn server_weight(
    State(control): State<Control>,
    Path((pool, server)): Path<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let WeightBody { weight } = parse(body)?;
    let cmd = Command::SetWeight {
        pool: pool.clone(),
        server,
        weight,
    };
    apply(&control, cmd, Some(&pool)).await
}

async fn add_server(
    State(control): State<Control>,
    Path(pool): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let server: NewServer = parse(body)?;
    let cmd = Command::AddServer {
        pool: pool.clone(),
        server,
    };
    let applied = apply(&control, cmd, Some(&pool)).await?;
    Ok((StatusCode::CREATED, applied).into_response())
}

async fn remove_server(
    State(control): State<Control>,
    Path((pool, server)): Path<(String, String)>,
) -> Reply {
    let cmd = Command::RemoveServer {
        pool: pool.clone(),
        server,
    };
    apply(&control, cmd, Some(&pool)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoadBody {
    load: f64,
}

async fn dc_load(
    State(control): State<Control>,
    Path(datacenter): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let LoadBody { load } = parse(body)?;
    let cmd = Command::SetDatacenterLoad { datacenter, load };
    apply(&control, cmd, None).await
}

/// `{"state": "force-up" | "force-down" | "drain" | null}`; `null` returns the datacenter
/// to its health.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DcAdminBody {
    state: Option<DcAdminState>,
}

async fn dc_admin(
    State(control): State<Control>,
    Path(datacenter): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Reply {
    let DcAdminBody { state } = parse(body)?;
    let cmd = Command::SetDatacenterAdmin { datacenter, state };
    apply(&control, cmd, None).await
}

/// Any [`Command`] as JSON (`{"command": "set-weight", ...}`).
async fn command(State(control): State<Control>, body: Result<Bytes, BytesRejection>) -> Reply {
    let cmd: Command = parse(body)?;
    let pool = match &cmd {
        Command::SetServerState { pool, .. }
        | Command::SetWeight { pool, .. }
        | Command::AddServer { pool, .. }
        | Command::RemoveServer { pool, .. } => Some(pool.clone()),
        _ => None,
    };
    apply(&control, cmd, pool.as_deref()).await
}

/// The first API's load push: the body is a bare number, the answer `204`.
async fn dc_load_plain(
    State(control): State<Control>,
    Path(datacenter): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<StatusCode, ApiError> {
    let body = body.map_err(ApiError::from_body)?;
    let load = std::str::from_utf8(&body)
        .ok()
        .and_then(|s| s.trim().parse::<f64>().ok())
        .ok_or_else(|| ApiError::bad_request("the body must be a number"))?;
    let _applied = apply(
        &control,
        Command::SetDatacenterLoad { datacenter, load },
        None,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn apply(control: &Control, cmd: Command, pool: Option<&str>) -> Reply {
    control
        .apply(cmd)
        .await
        .map(Json)
        .map_err(|e| ApiError::from_apply(e, pool))
}

/// A JSON body, whatever its `Content-Type` says (curl's `-d` sends a form type).
fn parse<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let body = body.map_err(ApiError::from_body)?;
    serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(format!("bad JSON body: {e}")))
}
