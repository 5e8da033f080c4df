//! TLS: termination (offload) with certificates chosen by SNI, re-encryption towards servers,
//! and passthrough that routes on the unencrypted ClientHello.
//!
//! - [`certs`]: the [`CertStore`] rustls asks for a certificate on each handshake (exact and
//!   wildcard names, a default), reloaded from disk by swapping the whole index.
//! - [`server`]: a rustls `ServerConfig` from [`TerminateConfig`] (ALPN, versions, suites)
//!   and [`terminate_tcp`], TLS offload in front of a plain TCP pool, its handshake and
//!   connect bounded by [`OffloadTimeouts`].
//! - [`upstream`]: the [`Upstream`] connector (CA bundle, optional client certificate, SNI).
//! - [`hello`]: non-panicking ClientHello/ServerHello parsers.
//! - [`passthrough`]: mode tcp without decrypting: SNI routes to pools, TLS 1.2 sessions stick
//!   by session id.
//! - [`l4`]: both of the above for a `mode tcp` frontend, built from validated config.
//!
//! All of it uses rustls with the *ring* provider; nothing reads configuration files other
//! than the certificate and key paths it is handed.

pub mod certs;
pub mod connector;
pub mod hello;
pub mod l4;
pub mod passthrough;
pub mod server;
pub mod upstream;

use std::path::PathBuf;

pub use certs::{CertFiles, CertStore};
pub use server::{terminate_tcp, OffloadTimeouts, TerminateConfig, TlsVersion};
pub use upstream::{Upstream, UpstreamConfig};

/// What went wrong setting TLS up; each names the file or setting at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{0}: {1}")]
    Pem(PathBuf, String),
    #[error("{0}: unusable private key: {1}")]
    Key(PathBuf, rustls::Error),
    #[error("{0}: unusable certificate: {1}")]
    Certificate(PathBuf, String),
    #[error("unknown cipher suite `{0}`; known: {1}")]
    UnknownSuite(String, String),
    #[error("unknown TLS version `{0}`; accepted: 1.2, 1.3")]
    UnknownVersion(String),
    #[error("min version is above max version")]
    VersionRange,
    #[error("no cipher suite left for the configured versions")]
    NoSuites,
    #[error("invalid server name `{0}`")]
    ServerName(String),
    #[error("pool `{0}` is not defined")]
    UnknownPool(String),
    #[error("tls: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The crypto provider every tenbin TLS endpoint uses.
pub fn provider() -> rustls::crypto::CryptoProvider {
    rustls::crypto::ring::default_provider()
}
