//! HAProxy's agent-check text protocol, parsed without I/O.
//!
//! An agent on the server answers one ASCII line of words separated by spaces, tabs or commas:
//! - `75%`: the server's weight as a percentage of its configured weight (load factor);
//! - `maxconn:30`: a new connection limit;
//! - `ready`, `drain`, `maint`: administrative state (ready leaves drain and maintenance);
//! - `up`, `down`, `fail`, `stopped`: operational state (the last three mean down);
//! - `#` starts a free-text reason that runs to the end of the line.
//!
//! Words are case-insensitive; unknown words are kept aside and otherwise ignored, as HAProxy
//! does, so a newer agent never takes a server down by saying something we do not know.

use thiserror::Error;

/// The largest percentage accepted: HAProxy scales the configured weight, so values above 100
/// make sense, but not without bound.
pub const MAX_PERCENT: u32 = 1000;

/// Administrative state asked for by the agent. It stays until the agent says otherwise.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum AgentAdmin {
    Ready,
    Drain,
    Maint,
}

/// Operational state reported by the agent.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum AgentOper {
    Up,
    /// `down`, `fail` or `stopped`.
    Down,
}

/// The meaning of one agent line.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct AgentReply {
    pub percent: Option<u32>,
    pub maxconn: Option<u32>,
    pub admin: Option<AgentAdmin>,
    pub oper: Option<AgentOper>,
    pub reason: Option<String>,
    pub ignored: Vec<String>,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum AgentParseError {
    #[error("agent sent an empty reply")]
    Empty,
    #[error("bad percentage {0:?} (0..={MAX_PERCENT}% accepted)")]
    Percent(String),
    #[error("bad maxconn {0:?}")]
    Maxconn(String),
}

impl AgentReply {
    /// Parse the first line of `bytes` (the rest, if any, is ignored). Never panics.
    pub fn parse(bytes: &[u8]) -> Result<AgentReply, AgentParseError> {
        let line_end = bytes
            .iter()
            .position(|&b| b == b'\n' || b == b'\r' || b == 0)
            .unwrap_or(bytes.len());
        let line = String::from_utf8_lossy(&bytes[..line_end]);
        let (words, reason) = match line.split_once('#') {
            Some((w, r)) => (w, Some(r.trim().to_string())),
            None => (&*line, None),
        };
        let mut reply = AgentReply {
            reason: reason.filter(|r| !r.is_empty()),
            ..AgentReply::default()
        };
        let mut any = false;
        for word in words.split([' ', '\t', ',']).filter(|w| !w.is_empty()) {
            any = true;
            let lower = word.to_ascii_lowercase();
            if let Some(num) = lower.strip_suffix('%') {
                let p = num
                    .parse::<u32>()
                    .ok()
                    .filter(|p| *p <= MAX_PERCENT)
                    .ok_or_else(|| AgentParseError::Percent(word.to_string()))?;
                reply.percent = Some(p);
            } else if let Some(num) = lower.strip_prefix("maxconn:") {
                let m = num
                    .parse::<u32>()
                    .map_err(|_| AgentParseError::Maxconn(word.to_string()))?;
                reply.maxconn = Some(m);
            } else {
                match lower.as_str() {
                    "ready" => reply.admin = Some(AgentAdmin::Ready),
                    "drain" => reply.admin = Some(AgentAdmin::Drain),
                    "maint" => reply.admin = Some(AgentAdmin::Maint),
                    "up" => reply.oper = Some(AgentOper::Up),
                    "down" | "fail" | "failed" | "stopped" => reply.oper = Some(AgentOper::Down),
                    _ => reply.ignored.push(word.to_string()),
                }
            }
        }
        if !any && reply.reason.is_none() {
            return Err(AgentParseError::Empty);
        }
        Ok(reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentage_and_state_words() {
        let r = AgentReply::parse(b"75%\n").unwrap();
        assert_eq!(r.percent, Some(75));
        assert_eq!(r.admin, None);
        let r = AgentReply::parse(b"UP 50%, maxconn:30\r\n").unwrap();
        assert_eq!(
            (r.oper, r.percent, r.maxconn),
            (Some(AgentOper::Up), Some(50), Some(30))
        );
        for (w, admin) in [
            ("drain", AgentAdmin::Drain),
            ("MAINT", AgentAdmin::Maint),
            ("ready", AgentAdmin::Ready),
        ] {
            assert_eq!(
                AgentReply::parse(w.as_bytes()).unwrap().admin,
                Some(admin),
                "{w}"
            );
        }
        for w in ["down", "fail", "stopped"] {
            assert_eq!(
                AgentReply::parse(w.as_bytes()).unwrap().oper,
                Some(AgentOper::Down)
            );
        }
    }

    #[test]
    fn reason_runs_to_end_of_line() {
        let r = AgentReply::parse(b"down #disk full, 0 bytes left\nnext").unwrap();
        assert_eq!(r.oper, Some(AgentOper::Down));
        assert_eq!(r.reason.as_deref(), Some("disk full, 0 bytes left"));
    }

    #[test]
    fn unknown_words_are_ignored_bad_numbers_rejected() {
        let r = AgentReply::parse(b"up frobnicate").unwrap();
        assert_eq!(r.ignored, vec!["frobnicate".to_string()]);
        assert_eq!(
            AgentReply::parse(b"x%"),
            Err(AgentParseError::Percent("x%".into()))
        );
        assert!(AgentReply::parse(b"5000%").is_err());
        assert!(AgentReply::parse(b"maxconn:-1").is_err());
        assert_eq!(AgentReply::parse(b"\n"), Err(AgentParseError::Empty));
        assert_eq!(AgentReply::parse(b""), Err(AgentParseError::Empty));
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        let mut x: u32 = 0x1234_5678;
        for len in 0..300usize {
            let buf: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    (x & 0xff) as u8
                })
                .collect();
            let _ = AgentReply::parse(&buf);
        }
    }
}
