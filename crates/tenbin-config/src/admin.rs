//! `[admin]`: where the admin API listens and the bearer token it demands.
//!
//! The token is written inline (`token`) or read from a file (`token_file`, first line,
//! surrounding whitespace trimmed) so that it can stay out of a config kept in version
//! control. This crate does no I/O: [`Config::load_admin_token`] is handed the reader.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_spanned::Spanned;

use crate::{Config, ConfigError};

/// `[admin]`: where the admin API listens and the token it asks for.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    pub listen: SocketAddr,
    /// The bearer token requests must present (inline, or read from `token_file`).
    #[serde(default)]
    pub token: Option<Token>,
    #[serde(default)]
    pub token_file: Option<Spanned<PathBuf>>,
}

/// A bearer token. Its `Debug` does not print it, so logged configs do not leak it.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Token(Spanned<String>);

impl Token {
    pub fn new(value: impl Into<String>) -> Token {
        Token(Spanned::new(0..0, value.into()))
    }

    pub fn expose(&self) -> &str {
        self.0.get_ref()
    }

    /// The token with where it was written, for validation errors.
    pub(crate) fn spanned(&self) -> &Spanned<String> {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl Config {
    /// Reads `[admin].token_file` with `read` into `[admin].token`, so the node sees one
    /// token however it was written. The error names the file's position of `token_file`.
    pub fn load_admin_token(
        &mut self,
        text: &str,
        file: &str,
        read: impl FnOnce(&Path) -> std::io::Result<String>,
    ) -> Result<(), ConfigError> {
        let Some(admin) = self.admin.as_mut() else {
            return Ok(());
        };
        let Some(path) = &admin.token_file else {
            return Ok(());
        };
        let token = read_secret(text, file, path, "admin.token_file", 1, read)?;
        admin.token = Some(Token::new(token));
        Ok(())
    }
}

/// The first line of the file `path` names, trimmed, read with `read`: a secret kept out of
/// the config (`[admin].token_file`, `[sync].key_file`). Errors name `key` at `path`'s place.
pub(crate) fn read_secret(
    text: &str,
    file: &str,
    path: &Spanned<PathBuf>,
    key: &str,
    min_len: usize,
    read: impl FnOnce(&Path) -> std::io::Result<String>,
) -> Result<String, ConfigError> {
    let fail = |message: String| ConfigError::at(file, text, Some(path.span()), key, message);
    let shown = path.get_ref().display();
    let content = read(path.get_ref()).map_err(|e| fail(format!("cannot read {shown}: {e}")))?;
    let secret = content.lines().next().unwrap_or("").trim();
    if secret.is_empty() {
        return Err(fail(format!(
            "{shown} holds nothing (its first line is empty)"
        )));
    }
    if secret.len() < min_len {
        return Err(fail(format!(
            "{shown} must hold at least {min_len} bytes on its first line"
        )));
    }
    Ok(secret.to_string())
}
