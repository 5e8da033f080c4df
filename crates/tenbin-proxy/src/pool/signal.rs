//! Passive health signals: what live traffic tells about a server.
//!
//! The pool does not judge servers from traffic itself; it forwards each outcome to a
//! [`SignalSink`] (tenbin-health's outlier detector, a metrics counter, a test recorder),
//! which may answer later through [`super::Pool::apply_health`].

use std::time::Duration;

use super::Server;

/// How one attempt on a server went, as the proxy saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The connection was refused or reset before it was established.
    ConnectFailed,
    /// The connection was not established within the connect timeout.
    ConnectTimeout,
    /// The server accepted but did not answer (or stayed silent) within its timeout.
    Timeout,
    /// The server answered with an error of its own (HTTP 5xx, a reset mid-response).
    ServerError,
    /// The attempt succeeded; `latency` is connect time (L4) or time to first byte (L7).
    Success { latency: Duration },
}

impl Outcome {
    /// Whether the outcome counts against the server.
    pub fn is_failure(self) -> bool {
        !matches!(self, Outcome::Success { .. })
    }
}

/// Receives passive signals. Called on the data path: keep it cheap and non-blocking.
pub trait SignalSink: Send + Sync + std::fmt::Debug {
    fn observe(&self, pool: &str, server: &Server, outcome: Outcome);
}
