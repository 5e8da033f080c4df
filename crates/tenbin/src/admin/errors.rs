//! Failures as `{"error": "..."}` (plus `known` for an unknown name) with the status a
//! script can act on: 400 bad input, 401 no or wrong token, 404 unknown route or name, 405
//! wrong method, 409 a valid change the node could not run, 413 body too large.

use axum::extract::rejection::BytesRejection;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use tenbin_config::api::ApplyError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub known: Option<Vec<String>>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            known: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, message)
    }

    /// `e` from `Control::apply`; `pool` names the pool the request addressed, so an
    /// unknown server reads "unknown server `x` in pool `web`; known: a, b".
    pub fn from_apply(e: ApplyError, pool: Option<&str>) -> ApiError {
        match e {
            ApplyError::NotFound { kind, name, known } => {
                // The node may already say where ("server in pool app").
                let (kind, within) = match kind.split_once(" in pool ") {
                    Some((k, p)) => (k.to_string(), format!(" in pool `{p}`")),
                    None => match pool {
                        Some(p) if kind == "server" => (kind, format!(" in pool `{p}`")),
                        _ => (kind, String::new()),
                    },
                };
                let list = if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                };
                ApiError {
                    status: StatusCode::NOT_FOUND,
                    message: format!("unknown {kind} `{name}`{within}; known: {list}"),
                    known: Some(known),
                }
            }
            ApplyError::InvalidConfig { message } => ApiError::bad_request(message),
            ApplyError::Rejected { reason } => ApiError::bad_request(reason),
            ApplyError::Failed { reason } => ApiError::new(StatusCode::CONFLICT, reason),
        }
    }

    /// A body that could not be read: 413 past the size limit, else 400.
    pub fn from_body(e: BytesRejection) -> ApiError {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body larger than {} bytes", super::MAX_BODY),
            )
        } else {
            ApiError::bad_request(format!("cannot read the body: {}", e.body_text()))
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "error": self.message });
        if let Some(known) = self.known {
            body["known"] = known.into();
        }
        (self.status, Json(body)).into_response()
    }
}

pub async fn no_route(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "no route {method} {}; see GET /api/v1/openapi.json",
            uri.path()
        ),
    )
}

pub async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} does not take {method}", uri.path()),
    )
}
