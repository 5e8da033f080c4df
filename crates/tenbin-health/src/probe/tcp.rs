//! TCP connect check: the handshake completes within the budget.

use std::net::SocketAddr;

use tokio::net::TcpStream;
use tokio::time::Instant;

use super::left;
use crate::outcome::ProbeError;

/// Connect to `addr` before `deadline`. A handshake that does not finish in time is a
/// [`ProbeError::ConnectTimeout`] (a full accept queue: overloaded, so drain).
pub async fn connect(addr: SocketAddr, deadline: Instant) -> Result<TcpStream, ProbeError> {
    let budget = left(deadline);
    match tokio::time::timeout_at(deadline, TcpStream::connect(addr)).await {
        Err(_) => Err(ProbeError::ConnectTimeout(budget)),
        Ok(Err(e)) => Err(ProbeError::from_connect(e)),
        Ok(Ok(s)) => {
            // A check should not linger in TIME_WAIT on the server side either way; no delay
            // matters for small requests.
            let _ = s.set_nodelay(true);
            Ok(s)
        }
    }
}
