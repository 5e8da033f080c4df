//! tenbin-config: one TOML file describes the whole system; this crate turns it into a
//! validated [`Config`] and computes change diffs between two configs.
//!
//! The pipeline is file text → strict schema (`deny_unknown_fields` everywhere) → semantic
//! validation → [`Config`]; [`diff::ConfigDiff`] then says what changed so a running node (or
//! the admin API) can apply only that. Every error is a [`ConfigError`] naming file, line,
//! column and the key's dotted path, and saying what would be accepted.
//!
//! It does no I/O beyond parsing the text it is handed: the binary reads files.
#![forbid(unsafe_code)]

pub mod admin;
pub mod api;
pub mod diff;
pub mod dns;
mod error;
pub mod frontend;
pub mod mux;
pub mod persist;
pub mod pool;
pub mod tls;
mod validate;

use serde::Deserialize;

pub use admin::Admin;
pub use error::ConfigError;
pub use frontend::{Frontend, Mode};
pub use pool::{AlgorithmName, Pool, Server};

/// The configuration of a whole tenbin node. Each tier's section is optional: a node may run
/// only the proxy, only the Mux, only the DNS, or any mix.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub admin: Option<Admin>,
    #[serde(default)]
    pub frontend: Vec<Frontend>,
    #[serde(default)]
    pub pool: Vec<Pool>,
    pub dns: Option<dns::DnsSection>,
    pub mux: Option<mux::MuxSection>,
    pub agent: Option<mux::AgentSection>,
}

impl Config {
    /// Parses and validates `text`; `file` only names the source in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let de = toml::Deserializer::new(text);
        let mut config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            // Spanned<T> shows up as a private map key in the path; users never wrote it.
            let path = e
                .path()
                .to_string()
                .replace(".$__serde_spanned_private_value", "");
            let inner = e.into_inner();
            ConfigError::at(file, text, inner.span(), path, inner.message())
        })?;
        if let Some(admin) = config.admin.as_mut() {
            admin.at.listen = admin::listen_span(text);
        }
        validate::validate(&config)
            .map_err(|v| ConfigError::at(file, text, v.span, v.key, v.message))?;
        Ok(config)
    }

    pub fn pool(&self, name: &str) -> Option<&Pool> {
        self.pool.iter().find(|p| p.name.get_ref() == name)
    }
}
