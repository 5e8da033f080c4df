//! The agent check: connect to the agent port, optionally send a line, read one line back.

use std::net::SocketAddr;

use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use super::{left, tcp};
use crate::agent::{AgentParseError, AgentReply};
use crate::outcome::ProbeError;

const MAX_LINE: usize = 1024;

#[derive(Debug, Error)]
pub enum AgentError {
    #[error("agent unreachable: {0}")]
    Probe(#[from] ProbeError),
    #[error("agent reply: {0}")]
    Parse(#[from] AgentParseError),
}

/// Ask the agent at `addr`; the line ends at a newline, at the peer's close, or at 1 KiB.
pub async fn query(
    addr: SocketAddr,
    send: &[u8],
    deadline: Instant,
) -> Result<AgentReply, AgentError> {
    let mut s = tcp::connect(addr, deadline).await?;
    let budget = left(deadline);
    let exchange = async {
        if !send.is_empty() {
            s.write_all(send).await.map_err(ProbeError::Io)?;
        }
        let mut line = Vec::with_capacity(64);
        let mut chunk = [0u8; 256];
        while line.len() < MAX_LINE && !line.contains(&b'\n') {
            let n = s.read(&mut chunk).await.map_err(ProbeError::Io)?;
            if n == 0 {
                break;
            }
            line.extend_from_slice(&chunk[..n]);
        }
        Ok::<_, AgentError>(line)
    };
    let line = match tokio::time::timeout_at(deadline, exchange).await {
        Err(_) => return Err(ProbeError::ResponseTimeout(budget).into()),
        Ok(r) => r?,
    };
    Ok(AgentReply::parse(&line)?)
}
