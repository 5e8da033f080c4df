//! `[frontend.tls]`, `[[frontend.sni_route]]` and `[pool.tls]`: TLS offload, passthrough and
//! re-encryption towards servers.
//!
//! The schema only; the checks are in `validate/tls.rs`.

use std::path::PathBuf;

use serde::Deserialize;
use serde_spanned::Spanned;

/// The cipher suites tenbin's TLS provider (rustls with *ring*) implements, by rustls name.
pub const CIPHER_SUITES: &[&str] = &[
    "TLS13_AES_256_GCM_SHA384",
    "TLS13_AES_128_GCM_SHA256",
    "TLS13_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
];

/// TLS on a frontend: terminate (mode http or tcp) or pass through untouched (mode tcp).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrontendTls {
    #[serde(default)]
    pub mode: TlsMode,
    /// terminate: certificate chains and keys (PEM); chosen by SNI from each certificate's
    /// names (exact and wildcard); the first is the default.
    #[serde(default)]
    pub certificate: Vec<CertificateFiles>,
    #[serde(default = "default_alpn")]
    pub alpn: Vec<String>,
    #[serde(default = "default_min")]
    pub min_version: Spanned<String>,
    #[serde(default = "default_max")]
    pub max_version: Spanned<String>,
    /// rustls cipher suite names; empty = rustls defaults.
    #[serde(default)]
    pub cipher_suites: Vec<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    #[default]
    Terminate,
    Passthrough,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertificateFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Passthrough: route by the ClientHello's SNI (exact or `*.suffix`) to a pool.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SniRoute {
    pub sni: Spanned<String>,
    pub pool: Spanned<String>,
}

/// Re-encryption from the proxy to a pool's servers.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolTls {
    /// CA bundle to verify servers against; absent = the system roots are not used, so it is
    /// required when `verify` is true.
    pub ca_file: Option<PathBuf>,
    #[serde(default = "default_verify")]
    pub verify: bool,
    pub client_cert: Option<PathBuf>,
    pub client_key: Option<PathBuf>,
    /// SNI and verification name sent to servers.
    pub sni: Option<String>,
    #[serde(default = "default_upstream_alpn")]
    pub alpn: Vec<String>,
}

fn default_alpn() -> Vec<String> {
    vec!["h2".into(), "http/1.1".into()]
}
fn default_upstream_alpn() -> Vec<String> {
    vec!["http/1.1".into()]
}
fn default_min() -> Spanned<String> {
    Spanned::new(0..0, "1.2".into())
}
fn default_max() -> Spanned<String> {
    Spanned::new(0..0, "1.3".into())
}
fn default_verify() -> bool {
    true
}
