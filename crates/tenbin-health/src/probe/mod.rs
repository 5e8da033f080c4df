//! The probers. Each takes an address and a time budget and says pass or why not; none of
//! them knows about hysteresis or publication.

pub mod agent;
pub mod dns;
pub mod http;
pub mod icmp;
pub mod tcp;

use std::net::SocketAddr;
use std::time::Duration;

use tokio::time::Instant;

use crate::outcome::ProbeError;
use crate::spec::CheckKind;

/// Run one check of `kind` against `addr` within `timeout`; `Ok` carries a short pass reason.
pub async fn run(
    kind: &CheckKind,
    addr: SocketAddr,
    timeout: Duration,
) -> Result<String, ProbeError> {
    let deadline = Instant::now() + timeout;
    match kind {
        CheckKind::Icmp => icmp::ping(addr.ip(), deadline)
            .await
            .map(|seq| format!("echo reply seq {seq}")),
        CheckKind::Tcp => tcp::connect(addr, deadline)
            .await
            .map(|_| "tcp connect ok".to_string()),
        CheckKind::Http(h) => http::check(h, addr, deadline).await,
    }
}

/// Time left until `deadline` (zero once passed).
pub(crate) fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}
