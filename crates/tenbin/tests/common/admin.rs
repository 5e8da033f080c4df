//! Helpers for the admin API and `tenbin ctl` tests.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A config file of this test's own, removed when dropped.
pub struct Written(pub std::path::PathBuf);

impl Written {
    pub fn new(tag: &str, text: &str) -> Written {
        let p = std::env::temp_dir().join(format!("tenbin-{tag}-{}.toml", std::process::id()));
        std::fs::write(&p, text).unwrap();
        Written(p)
    }
}

impl Drop for Written {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// One request (connection closed after it): status and body. The connect is retried
/// (bounded, 5 s) while the node starts.
pub fn call(port: u16, method: &str, path: &str, headers: &str, body: &str) -> (u16, String) {
    let (status, _head, body) = exchange(port, method, path, headers, body);
    (status, body)
}

/// [`call`], with the response head (status line and headers, lowercased) as well.
pub fn exchange(
    port: u16,
    method: &str,
    path: &str,
    headers: &str,
    body: &str,
) -> (u16, String, String) {
    let mut conn = None;
    for _ in 0..100 {
        if let Ok(c) = TcpStream::connect(("127.0.0.1", port)) {
            conn = Some(c);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut s = conn.expect("the admin API listens");
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: admin\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let out = String::from_utf8_lossy(&out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    (status, head.to_lowercase(), body.to_string())
}
