//! `[[pool]]`: groups of servers, the algorithm that spreads load over them, and their checks.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;
use serde_spanned::Spanned;

/// A named set of servers with one balancing algorithm.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    pub name: Spanned<String>,
    #[serde(default)]
    pub algorithm: AlgorithmName,
    /// What the hashing algorithms hash: `source`, `header:NAME`, `cookie:NAME`, `query:NAME`.
    pub hash_on: Option<Spanned<String>>,
    #[serde(default = "default_prefix_v4")]
    pub source_prefix_v4: Spanned<u8>,
    #[serde(default = "default_prefix_v6")]
    pub source_prefix_v6: Spanned<u8>,
    /// Peak-EWMA decay window.
    #[serde(default = "default_decay", with = "humantime_serde")]
    pub ewma_decay: Duration,
    /// Least-request: exponent on active requests.
    #[serde(default = "default_bias")]
    pub least_request_bias: f64,
    /// Maglev table size (prime).
    #[serde(default = "default_table_size")]
    pub maglev_table_size: Spanned<u32>,
    /// Weight ramp after a server comes up; zero disables.
    #[serde(default, with = "humantime_serde")]
    pub slow_start: Duration,
    /// Bounded FIFO of requests waiting when every server is at maxconn.
    #[serde(default = "default_queue_size")]
    pub queue_size: u32,
    pub server: Vec<Server>,
    pub health: Option<HealthCheck>,
    pub agent: Option<AgentCheck>,
    pub outlier: Option<Outlier>,
    pub persistence: Option<crate::persist::Persistence>,
    /// Re-encrypt to the servers.
    pub tls: Option<crate::tls::PoolTls>,
}

fn default_prefix_v4() -> Spanned<u8> {
    Spanned::new(0..0, 32)
}
fn default_prefix_v6() -> Spanned<u8> {
    Spanned::new(0..0, 128)
}
fn default_decay() -> Duration {
    Duration::from_secs(10)
}
fn default_bias() -> f64 {
    1.0
}
fn default_table_size() -> Spanned<u32> {
    Spanned::new(0..0, 65537)
}
fn default_queue_size() -> u32 {
    1024
}

/// The algorithm names accepted in `algorithm = "..."`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum AlgorithmName {
    #[default]
    Roundrobin,
    Wrr,
    Leastconn,
    PeakEwma,
    LeastRequest,
    SourceHash,
    Maglev,
    Ketama,
}

impl AlgorithmName {
    pub fn is_hashing(self) -> bool {
        matches!(
            self,
            AlgorithmName::SourceHash | AlgorithmName::Maglev | AlgorithmName::Ketama
        )
    }
}

/// Admin state a server is configured in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum AdminState {
    #[default]
    Active,
    Draining,
    Maintenance,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Server {
    pub name: Spanned<String>,
    pub address: Spanned<SocketAddr>,
    #[serde(default = "default_weight")]
    pub weight: Spanned<u32>,
    /// Priority group: 0 is served first, higher groups take the overflow (backup servers).
    #[serde(default)]
    pub group: u8,
    pub maxconn: Option<Spanned<u32>>,
    #[serde(default)]
    pub state: AdminState,
}

fn default_weight() -> Spanned<u32> {
    Spanned::new(0..0, 1)
}

/// Active health check of a pool's servers: the seeds' levels 1–4.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheck {
    pub kind: CheckKind,
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    /// Fraction of the interval randomly added or removed, 0.0..=0.5.
    #[serde(default = "default_jitter")]
    pub jitter: Spanned<f64>,
    #[serde(default = "default_check_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    #[serde(default = "default_rise")]
    pub rise: Spanned<u32>,
    #[serde(default = "default_fall")]
    pub fall: Spanned<u32>,
    /// Check another port than the server's service port.
    pub port: Option<u16>,
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default = "default_path")]
    pub path: String,
    pub host: Option<String>,
    #[serde(default = "default_statuses")]
    pub expect_status: Vec<u16>,
    /// Content check: the body must contain this string.
    pub expect_body: Option<String>,
    /// Content check: the body must match this regex.
    pub expect_regex: Option<Spanned<String>>,
}

/// The seeds' four levels: ping, TCP port, protocol (HTTP status) and content (HTTP body).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckKind {
    Icmp,
    Tcp,
    Http,
}

fn default_interval() -> Duration {
    Duration::from_secs(2)
}
fn default_jitter() -> Spanned<f64> {
    Spanned::new(0..0, 0.1)
}
fn default_check_timeout() -> Duration {
    Duration::from_secs(1)
}
fn default_rise() -> Spanned<u32> {
    Spanned::new(0..0, 2)
}
fn default_fall() -> Spanned<u32> {
    Spanned::new(0..0, 3)
}
fn default_method() -> String {
    "GET".into()
}
fn default_path() -> String {
    "/".into()
}
fn default_statuses() -> Vec<u16> {
    vec![200]
}

/// HAProxy-compatible agent check: a TCP agent on each server reports load or state.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentCheck {
    pub port: u16,
    #[serde(default = "default_interval", with = "humantime_serde")]
    pub interval: Duration,
    #[serde(default = "default_check_timeout", with = "humantime_serde")]
    pub timeout: Duration,
    /// Sent to the agent after connecting, if any.
    pub send: Option<String>,
}

/// Passive outlier detection from live traffic.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Outlier {
    pub consecutive_errors: u32,
    #[serde(with = "humantime_serde")]
    pub base_ejection: Duration,
    #[serde(with = "humantime_serde")]
    pub max_ejection: Duration,
    pub max_ejected_percent: u8,
    /// Below this share of healthy servers, health is ignored and all servers are used.
    pub panic_threshold_percent: u8,
}

impl Default for Outlier {
    fn default() -> Self {
        Outlier {
            consecutive_errors: 5,
            base_ejection: Duration::from_secs(30),
            max_ejection: Duration::from_secs(300),
            max_ejected_percent: 50,
            panic_threshold_percent: 50,
        }
    }
}
