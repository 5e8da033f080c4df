//! tenbin-config: one TOML file describes the whole system; this crate turns it into a
//! validated [`Config`] and computes change diffs between two configs.
//!
//! The pipeline is file text → strict schema (`deny_unknown_fields` everywhere) → semantic
//! validation → [`Config`]; [`diff::ConfigDiff`] then says what changed so a running node (or
//! the admin API) can apply only that. Every error is a [`ConfigError`] naming file, line,
//! column and the key's dotted path, and saying what would be accepted.
//!
//! The schema modules ([`Config`] and its sections [`frontend`], [`pool`], [`persist`],
//! [`tls`], [`dns`], [`mux`], [`sync`]) are plain serde types with their defaults and import only each
//! other. The checks live in the private `validate` modules, one per section, which read the
//! schema and are read by nothing but [`Config::parse`]. A check names the key it is about;
//! when it has no span at hand, `spans` finds where that key stands in the text.
//!
//! It does no I/O beyond parsing the text it is handed: the binary reads files.
#![forbid(unsafe_code)]

pub mod admin;
pub mod api;
pub mod bgp;
mod config;
pub mod diff;
pub mod dns;
mod error;
pub mod frontend;
pub mod limits;
pub mod mux;
pub mod persist;
pub mod pool;
mod spans;
pub mod sync;
pub mod tls;
mod validate;
pub mod vrrp;

pub use admin::Admin;
pub use config::Config;
pub use error::ConfigError;
pub use frontend::{Frontend, Mode};
pub use pool::{AlgorithmName, Pool, Server};
pub use validate::SectionError;

impl Config {
    /// Parses and validates `text`; `file` only names the source in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let de = toml::Deserializer::new(text);
        let config: Config = serde_path_to_error::deserialize(de).map_err(|e| {
            // Spanned<T> shows up as a private map key in the path; users never wrote it.
            let path = e
                .path()
                .to_string()
                .replace(".$__serde_spanned_private_value", "");
            let inner = e.into_inner();
            let span = inner.span().or_else(|| spans::span_of(text, &path));
            ConfigError::at(file, text, span, path, inner.message())
        })?;
        validate::validate(&config).map_err(|v| {
            let span = v.span.or_else(|| spans::span_of(text, &v.key));
            ConfigError::at(file, text, span, v.key, v.message)
        })?;
        Ok(config)
    }
}
