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

use crate::validate::{invalid, Invalid};
use crate::{Config, ConfigError};

/// `[admin]`: the admin API, `/metrics` and the dashboard.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Admin {
    pub listen: SocketAddr,
    /// The bearer token requests must present (inline, or read from `token_file`).
    #[serde(default)]
    pub token: Option<Token>,
    #[serde(default)]
    pub token_file: Option<Spanned<PathBuf>>,
    /// Where `listen` and `token` were written, for validation errors (equality ignores it).
    #[serde(skip)]
    pub(crate) at: Spans,
}

/// The positions of `[admin]`'s keys; set by [`Config::parse`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Spans {
    pub listen: Option<std::ops::Range<usize>>,
}

impl PartialEq for Spans {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}
impl Eq for Spans {}

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
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// The admin API changes the node: off loopback it must ask for a token.
pub(crate) fn validate(admin: &Admin) -> Result<(), Invalid> {
    if let (Some(_), Some(file)) = (&admin.token, &admin.token_file) {
        return Err(invalid(
            file,
            "admin.token_file".into(),
            "set either `token` or `token_file`, not both",
        ));
    }
    if let Some(t) = &admin.token {
        if t.expose().trim().is_empty() {
            return Err(invalid(&t.0, "admin.token".into(), "the token is empty"));
        }
    }
    if !admin.listen.ip().is_loopback() && admin.token.is_none() && admin.token_file.is_none() {
        return Err(Invalid {
            span: admin.at.listen.clone(),
            key: "admin.listen".into(),
            message: format!(
                "{} is not a loopback address: the admin API changes the node, so off \
                 loopback it needs `token` or `token_file`",
                admin.listen
            ),
        });
    }
    Ok(())
}

/// Finds the span of `[admin] listen`'s value in `text` (the schema keeps `listen` a plain
/// address for the runtime; this re-reads the one table).
pub(crate) fn listen_span(text: &str) -> Option<std::ops::Range<usize>> {
    #[derive(Deserialize)]
    struct Outer {
        admin: Option<Inner>,
    }
    #[derive(Deserialize)]
    struct Inner {
        listen: Spanned<toml::Value>,
    }
    let outer: Outer = toml::from_str(text).ok()?;
    Some(outer.admin?.listen.span())
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
        let fail = |message: String| {
            ConfigError::at(file, text, Some(path.span()), "admin.token_file", message)
        };
        let content = read(path.get_ref())
            .map_err(|e| fail(format!("cannot read {}: {e}", path.get_ref().display())))?;
        let token = content.lines().next().unwrap_or("").trim();
        if token.is_empty() {
            return Err(fail(format!(
                "{} holds no token (its first line is empty)",
                path.get_ref().display()
            )));
        }
        admin.token = Some(Token::new(token));
        Ok(())
    }
}
