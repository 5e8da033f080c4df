//! Runtime check specifications. Plain data with public fields, so the binary builds them from
//! the config file's `[pool.health]`, `[pool.agent]` and `[pool.outlier]` with a plain
//! conversion, and tests build them directly.

use std::time::Duration;

use regex::Regex;

/// How a server is checked actively.
#[derive(Clone, Debug)]
pub enum CheckKind {
    /// ICMP echo to the server's address (needs CAP_NET_RAW).
    Icmp,
    /// A TCP handshake that completes.
    Tcp,
    /// An HTTP/1.1 request; with `expect_body`/`expect_regex` it is the content check.
    Http(HttpCheck),
}

/// The HTTP (and content) check.
#[derive(Clone, Debug)]
pub struct HttpCheck {
    pub method: String,
    pub path: String,
    /// The Host header; the server's address when `None`.
    pub host: Option<String>,
    /// Accepted statuses; empty means any 2xx or 3xx.
    pub expect_status: Vec<u16>,
    pub expect_body: Option<String>,
    pub expect_regex: Option<Regex>,
    /// Bytes of body read at most when matching content.
    pub max_body: usize,
}

impl Default for HttpCheck {
    fn default() -> Self {
        HttpCheck {
            method: "GET".into(),
            path: "/".into(),
            host: None,
            expect_status: Vec::new(),
            expect_body: None,
            expect_regex: None,
            max_body: 64 * 1024,
        }
    }
}

impl HttpCheck {
    pub fn status_ok(&self, status: u16) -> bool {
        if self.expect_status.is_empty() {
            (200..400).contains(&status)
        } else {
            self.expect_status.contains(&status)
        }
    }

    /// The request line and Host must not be able to smuggle a second header or request.
    pub fn validate(&self) -> Result<(), &'static str> {
        let token = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
        if self.method.is_empty() || !self.method.chars().all(token) {
            return Err("method must be an HTTP token");
        }
        if !self.path.starts_with('/')
            || self
                .path
                .chars()
                .any(|c| c.is_ascii_whitespace() || c.is_control())
        {
            return Err("path must start with '/' and hold no spaces or control characters");
        }
        if self.host.as_deref().is_some_and(|h| {
            h.is_empty() || h.chars().any(|c| c.is_ascii_whitespace() || c.is_control())
        }) {
            return Err("host must hold no spaces or control characters");
        }
        Ok(())
    }

    pub fn wants_body(&self) -> bool {
        self.expect_body.is_some() || self.expect_regex.is_some()
    }
}

/// An active check of a pool: what, how often, how long to wait, and hysteresis.
#[derive(Clone, Debug)]
pub struct CheckSpec {
    pub kind: CheckKind,
    pub interval: Duration,
    /// Fraction of `interval` (0.0..=1.0) by which each wait is randomly shortened or lengthened.
    pub jitter: f64,
    pub timeout: Duration,
    pub rise: u32,
    pub fall: u32,
    /// Check this port instead of the server's.
    pub port: Option<u16>,
}

impl CheckSpec {
    pub fn new(kind: CheckKind) -> Self {
        CheckSpec {
            kind,
            interval: Duration::from_secs(2),
            jitter: 0.1,
            timeout: Duration::from_secs(1),
            rise: 2,
            fall: 3,
            port: None,
        }
    }
}

/// HAProxy-compatible agent check of a pool.
#[derive(Clone, Debug)]
pub struct AgentSpec {
    pub port: u16,
    pub interval: Duration,
    pub timeout: Duration,
    /// Sent after connecting (may be empty: most agents speak first).
    pub send: Vec<u8>,
}

/// Passive outlier detection of a pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutlierSpec {
    /// Consecutive failures that eject; 0 disables ejection.
    pub consecutive_errors: u32,
    pub base_ejection: Duration,
    pub max_ejection: Duration,
    pub max_ejected_percent: u32,
    pub panic_threshold_percent: u32,
}

impl Default for OutlierSpec {
    fn default() -> Self {
        OutlierSpec {
            consecutive_errors: 5,
            base_ejection: Duration::from_secs(30),
            max_ejection: Duration::from_secs(300),
            max_ejected_percent: 50,
            panic_threshold_percent: 50,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_smuggling_is_refused() {
        let ok = HttpCheck {
            path: "/health?x=1".into(),
            host: Some("app.local".into()),
            ..HttpCheck::default()
        };
        assert_eq!(ok.validate(), Ok(()));
        let bad = [
            HttpCheck {
                method: "GET /x".into(),
                ..ok.clone()
            },
            HttpCheck {
                method: String::new(),
                ..ok.clone()
            },
            HttpCheck {
                path: "/a HTTP/1.1\r\nX: y".into(),
                ..ok.clone()
            },
            HttpCheck {
                path: "health".into(),
                ..ok.clone()
            },
            HttpCheck {
                host: Some("a\r\nEvil: 1".into()),
                ..ok.clone()
            },
        ];
        for b in bad {
            assert!(b.validate().is_err(), "{b:?}");
        }
    }

    #[test]
    fn default_statuses_are_2xx_and_3xx() {
        let h = HttpCheck::default();
        assert!(h.status_ok(200) && h.status_ok(301) && !h.status_ok(404) && !h.status_ok(199));
        let h = HttpCheck {
            expect_status: vec![204],
            ..h
        };
        assert!(h.status_ok(204) && !h.status_ok(200));
    }
}
