//! Access log: one line per request, as JSON or in the Apache/NGINX "combined" format.

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How access log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AccessLogFormat {
    Json,
    Combined,
    #[default]
    Off,
}

/// Where finished lines go. Called on the data path: keep it cheap.
pub trait AccessLogSink: Send + Sync + std::fmt::Debug {
    fn write_line(&self, line: &str);
}

/// Writes lines to standard output.
#[derive(Debug, Default, Clone, Copy)]
pub struct StdoutSink;

impl AccessLogSink for StdoutSink {
    fn write_line(&self, line: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
    }
}

/// What is known about a request when its response head goes out.
#[derive(Debug, Clone)]
pub struct Entry<'a> {
    pub time: SystemTime,
    pub frontend: &'a str,
    pub client: SocketAddr,
    pub method: &'a str,
    pub uri: &'a str,
    pub version: http::Version,
    pub status: u16,
    /// Response Content-Length when known.
    pub bytes: Option<u64>,
    pub pool: &'a str,
    /// The server that answered, if any did.
    pub server: Option<&'a str>,
    pub attempts: u32,
    pub duration: Duration,
    pub referer: Option<&'a str>,
    pub user_agent: Option<&'a str>,
}

impl Entry<'_> {
    pub fn format(&self, format: AccessLogFormat) -> Option<String> {
        match format {
            AccessLogFormat::Off => None,
            AccessLogFormat::Json => Some(self.json()),
            AccessLogFormat::Combined => Some(self.combined()),
        }
    }

    fn json(&self) -> String {
        let secs = self
            .time
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        serde_json::json!({
            "ts": secs,
            "frontend": self.frontend,
            "client": self.client.ip().to_string(),
            "method": self.method,
            "uri": self.uri,
            "proto": format!("{:?}", self.version),
            "status": self.status,
            "bytes": self.bytes,
            "pool": self.pool,
            "server": self.server,
            "attempts": self.attempts,
            "duration_ms": self.duration.as_secs_f64() * 1000.0,
            "referer": self.referer,
            "user_agent": self.user_agent,
        })
        .to_string()
    }

    fn combined(&self) -> String {
        let quote = |s: Option<&str>| s.unwrap_or("-").replace('"', "\\\"");
        format!(
            "{} - - [{}] \"{} {} {:?}\" {} {} \"{}\" \"{}\"",
            self.client.ip(),
            clf_time(self.time),
            self.method,
            self.uri.replace('"', "%22"),
            self.version,
            self.status,
            self.bytes.map_or("-".to_string(), |b| b.to_string()),
            quote(self.referer),
            quote(self.user_agent),
        )
    }
}

/// Common Log Format time in UTC: `10/Oct/2000:13:55:36 +0000`.
fn clf_time(t: SystemTime) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{d:02}/{}/{y}:{:02}:{:02}:{:02} +0000",
        MONTHS[(m - 1) as usize],
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month 1..=12, day 1..=31), proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> Entry<'static> {
        Entry {
            time: UNIX_EPOCH + Duration::from_secs(971_186_136),
            frontend: "web",
            client: "127.0.0.1:4000".parse().unwrap(),
            method: "GET",
            uri: "/a?b=1",
            version: http::Version::HTTP_11,
            status: 200,
            bytes: Some(12),
            pool: "app",
            server: Some("a"),
            attempts: 1,
            duration: Duration::from_millis(3),
            referer: None,
            user_agent: Some("curl/8"),
        }
    }

    #[test]
    fn combined_line_has_every_field() {
        let line = entry().format(AccessLogFormat::Combined).unwrap();
        assert_eq!(
            line,
            "127.0.0.1 - - [10/Oct/2000:13:55:36 +0000] \"GET /a?b=1 HTTP/1.1\" 200 12 \"-\" \"curl/8\""
        );
    }

    #[test]
    fn json_line_parses_back() {
        let line = entry().format(AccessLogFormat::Json).unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["status"], 200);
        assert_eq!(v["server"], "a");
        assert_eq!(v["pool"], "app");
        assert_eq!(v["referer"], serde_json::Value::Null);
        assert!(entry().format(AccessLogFormat::Off).is_none());
    }

    #[test]
    fn calendar_conversion_handles_leap_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
    }
}
