//! What a probe says, and how a failure is classified.
//!
//! The seeds' caution: a server that is slow because it is overloaded must be drained (no new
//! sessions, pinned ones kept), not cut off; a server that refuses, cannot be reached or answers
//! wrongly is down. So a timeout while waiting for a TCP handshake or an HTTP answer drains;
//! everything else that fails is down. An ICMP echo is answered by the kernel even under load,
//! so a lost echo means down.

use std::io;
use thiserror::Error;

/// The classification of one check result.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Verdict {
    /// The check passed.
    Pass,
    /// Slow under load: stop new sessions, keep pinned ones.
    Drain,
    /// Broken: stop everything.
    Down,
}

/// Why a probe did not pass.
#[derive(Debug, Error)]
pub enum ProbeError {
    #[error("connect timed out after {0:?}")]
    ConnectTimeout(std::time::Duration),
    #[error("no response within {0:?}")]
    ResponseTimeout(std::time::Duration),
    #[error("no echo reply within {0:?}")]
    EchoTimeout(std::time::Duration),
    #[error("connection refused")]
    Refused,
    #[error("connect failed: {0}")]
    Connect(io::Error),
    #[error("i/o error: {0}")]
    Io(io::Error),
    #[error("unexpected status {got} (expected one of {expected:?})")]
    Status { got: u16, expected: Vec<u16> },
    #[error("body does not contain {0:?}")]
    BodyMismatch(String),
    #[error("body does not match /{0}/")]
    RegexMismatch(String),
    #[error("malformed response: {0}")]
    Malformed(&'static str),
    /// A DNS server answered with this RCODE instead of NOERROR.
    #[error("dns rcode {0}")]
    DnsRcode(u8),
    /// The checker itself cannot run (e.g. no CAP_NET_RAW for ICMP): this says nothing about the
    /// server, so it must not change the server's state.
    #[error("check cannot run: {0}")]
    Unavailable(String),
}

impl ProbeError {
    /// Drain vs down, or `None` when the failure is ours and says nothing about the server.
    pub fn verdict(&self) -> Option<Verdict> {
        match self {
            ProbeError::ConnectTimeout(_) | ProbeError::ResponseTimeout(_) => Some(Verdict::Drain),
            ProbeError::Unavailable(_) => None,
            _ => Some(Verdict::Down),
        }
    }

    /// Map a connect error: refused is named, the rest kept.
    pub fn from_connect(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::ConnectionRefused {
            ProbeError::Refused
        } else {
            ProbeError::Connect(e)
        }
    }
}

/// A finished check: a verdict and a reason fit for a status page.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CheckResult {
    pub verdict: Verdict,
    pub reason: String,
}

impl CheckResult {
    pub fn pass(reason: impl Into<String>) -> Self {
        CheckResult {
            verdict: Verdict::Pass,
            reason: reason.into(),
        }
    }

    /// `None` when the error is the checker's own (see [`ProbeError::Unavailable`]).
    pub fn from_error(e: &ProbeError) -> Option<Self> {
        e.verdict().map(|verdict| CheckResult {
            verdict,
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn timeouts_under_load_drain_but_broken_servers_are_down() {
        let d = Duration::from_secs(1);
        assert_eq!(
            ProbeError::ConnectTimeout(d).verdict(),
            Some(Verdict::Drain)
        );
        assert_eq!(
            ProbeError::ResponseTimeout(d).verdict(),
            Some(Verdict::Drain)
        );
        assert_eq!(ProbeError::EchoTimeout(d).verdict(), Some(Verdict::Down));
        assert_eq!(ProbeError::Refused.verdict(), Some(Verdict::Down));
        let st = ProbeError::Status {
            got: 500,
            expected: vec![200],
        };
        assert_eq!(st.verdict(), Some(Verdict::Down));
        assert_eq!(
            ProbeError::BodyMismatch("OK".into()).verdict(),
            Some(Verdict::Down)
        );
        assert_eq!(ProbeError::Unavailable("no cap".into()).verdict(), None);
    }

    #[test]
    fn refused_connect_is_named() {
        let e = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert!(matches!(ProbeError::from_connect(e), ProbeError::Refused));
        let e = io::Error::from(io::ErrorKind::HostUnreachable);
        assert!(matches!(
            ProbeError::from_connect(e),
            ProbeError::Connect(_)
        ));
    }
}
