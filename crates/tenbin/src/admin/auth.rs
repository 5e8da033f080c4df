//! The bearer token check, compared in constant time so the answer's timing does not tell
//! how much of a guess was right.

use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::errors::ApiError;
use crate::node::Control;

/// Lets the request through when no token is configured, when it presents the token, for
/// `/healthz` (a liveness probe that says nothing about the node), or for the dashboard's
/// page and assets (the same bytes on every node; its data calls carry the token).
pub async fn require_token(State(control): State<Control>, req: Request, next: Next) -> Response {
    if req.uri().path() == "/healthz" || super::ui::is_public(req.uri().path()) {
        return next.run(req).await;
    }
    let Some(token) = control.admin_section().await.and_then(|a| a.token) else {
        return next.run(req).await;
    };
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    match presented {
        Some(p) if same(p.as_bytes(), token.expose().as_bytes()) => next.run(req).await,
        Some(_) => ApiError::unauthorized("wrong bearer token").into_response(),
        None => ApiError::unauthorized("this node's admin API needs `Authorization: Bearer TOKEN`")
            .into_response(),
    }
}

/// Equality whose running time depends only on the lengths, not on where bytes differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    let mut diff = u8::from(a.len() != b.len());
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= std::hint::black_box(x ^ y);
    }
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn equal_only_when_every_byte_and_the_length_match() {
        assert!(same(b"s3cret", b"s3cret"));
        assert!(!same(b"s3cret", b"s3creT"));
        assert!(!same(b"s3cret", b"s3cre"));
        assert!(!same(b"s3cre", b"s3cret"));
        assert!(!same(b"", b"x"));
        assert!(same(b"", b""));
    }
}
