//! One request to the admin API: a plain hyper HTTP/1.1 handshake over a TCP stream, with a
//! bounded time for the whole exchange.

use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::TcpStream;

/// How long connecting, sending and reading the answer may take together. A reload that
/// binds listeners answers well within it.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Why a ctl command did not succeed; each maps to one exit code (see `ctl`'s docs).
#[derive(Debug)]
pub enum Failure {
    /// The node answered and refused; its message.
    Refused(String),
    Usage(String),
    Unreachable(String),
}

impl Failure {
    pub fn code(&self) -> u8 {
        match self {
            Failure::Refused(_) => 1,
            Failure::Usage(_) => 2,
            Failure::Unreachable(_) => 3,
        }
    }

    pub fn message(&self) -> &str {
        match self {
            Failure::Refused(m) | Failure::Usage(m) | Failure::Unreachable(m) => m,
        }
    }
}

pub struct Request {
    method: Method,
    path: String,
    body: Option<Value>,
}

impl Request {
    pub fn get(path: impl Into<String>) -> Request {
        Request {
            method: Method::GET,
            path: path.into(),
            body: None,
        }
    }

    pub fn put(path: impl Into<String>, body: Value) -> Request {
        Request {
            method: Method::PUT,
            path: path.into(),
            body: Some(body),
        }
    }

    pub fn post(path: impl Into<String>, body: Value) -> Request {
        Request {
            method: Method::POST,
            path: path.into(),
            body: (!body.is_null()).then_some(body),
        }
    }

    pub fn delete(path: impl Into<String>) -> Request {
        Request {
            method: Method::DELETE,
            path: path.into(),
            body: None,
        }
    }
}

/// `name` as one URL path segment (percent-encoding all but RFC 3986's unreserved bytes).
pub fn segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Sends `req` to the admin API at `addr`; a 2xx answer's JSON (`null` for no body).
pub async fn send(addr: &str, token: Option<&str>, req: &Request) -> Result<Value, Failure> {
    match tokio::time::timeout(TIMEOUT, exchange(addr, token, req)).await {
        Ok(r) => r,
        Err(_) => Err(Failure::Unreachable(format!(
            "{addr}: no answer within {TIMEOUT:?}"
        ))),
    }
}

async fn exchange(addr: &str, token: Option<&str>, req: &Request) -> Result<Value, Failure> {
    let unreachable = |what: &str, e: &dyn std::fmt::Display| {
        Failure::Unreachable(format!("admin API at {addr}: {what}: {e}"))
    };
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| unreachable("cannot connect", &e))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| unreachable("handshake", &e))?;
    tokio::spawn(conn);
    let body = req
        .body
        .as_ref()
        .map(|v| Bytes::from(v.to_string()))
        .unwrap_or_default();
    let mut builder = hyper::Request::builder()
        .method(req.method.clone())
        .uri(&req.path)
        .header(HOST, addr)
        .header(CONTENT_TYPE, "application/json");
    if let Some(t) = token {
        builder = builder.header(AUTHORIZATION, format!("Bearer {t}"));
    }
    let request = builder
        .body(Full::new(body))
        .map_err(|e| Failure::Usage(format!("cannot build the request: {e}")))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| unreachable("request failed", &e))?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| unreachable("reading the answer", &e))?
        .to_bytes();
    interpret(addr, status, &bytes)
}

/// A 2xx answer's JSON; a refusal's `error` message; anything else is not our API.
fn interpret(addr: &str, status: StatusCode, body: &[u8]) -> Result<Value, Failure> {
    let json = if body.is_empty() {
        Ok(Value::Null)
    } else {
        serde_json::from_slice::<Value>(body)
    };
    match (status.is_success(), json) {
        (true, Ok(v)) => Ok(v),
        (false, Ok(v)) if v["error"].is_string() => Err(Failure::Refused(format!(
            "{} ({})",
            v["error"].as_str().unwrap_or_default(),
            status
        ))),
        _ => Err(Failure::Unreachable(format!(
            "{addr} answered {status} with {} bytes that are not the admin API's JSON",
            body.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(segment("web-1.a_b~"), "web-1.a_b~");
        assert_eq!(segment("a b/c"), "a%20b%2Fc");
    }

    #[test]
    fn answers_map_to_exit_codes() {
        let ok = interpret("x", StatusCode::OK, br#"{"generation":2,"changes":[]}"#).unwrap();
        assert_eq!(ok["generation"], 2);
        assert_eq!(
            interpret("x", StatusCode::NO_CONTENT, b"").unwrap(),
            Value::Null
        );
        let refused = interpret(
            "x",
            StatusCode::NOT_FOUND,
            br#"{"error":"unknown pool `p`"}"#,
        );
        assert_eq!(refused.as_ref().unwrap_err().code(), 1);
        assert!(refused.unwrap_err().message().contains("unknown pool `p`"));
        let other = interpret("x", StatusCode::NOT_FOUND, b"<html>not found</html>");
        assert_eq!(other.unwrap_err().code(), 3);
        let garbled = interpret("x", StatusCode::OK, b"\xff\x00");
        assert_eq!(garbled.unwrap_err().code(), 3);
    }
}
