//! What a failed check returns: the key's path, the message, and the span when the value
//! was read with one.

use std::ops::Range;

use serde_spanned::Spanned;

/// A semantic error before it is placed in the file.
#[derive(Debug)]
pub(crate) struct Invalid {
    /// `None`: placed by looking `key` up in the text.
    pub span: Option<Range<usize>>,
    pub key: String,
    pub message: String,
}

impl Invalid {
    /// An error at `key`, to be placed by its path.
    pub(crate) fn at(key: impl Into<String>, message: impl Into<String>) -> Invalid {
        Invalid {
            span: None,
            key: key.into(),
            message: message.into(),
        }
    }
}

/// A section that fails its checks, outside any file: the key's path and what is wrong.
/// `Config::parse` reports the same error as a located `ConfigError`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key `{key}`: {message}")]
pub struct SectionError {
    pub key: String,
    pub message: String,
}

impl From<Invalid> for SectionError {
    fn from(v: Invalid) -> SectionError {
        SectionError {
            key: v.key,
            message: v.message,
        }
    }
}

/// An error at a spanned value; a default (empty span) is placed by `key` instead.
pub(crate) fn invalid<T>(at: &Spanned<T>, key: String, message: impl Into<String>) -> Invalid {
    spanned(at.span(), key, message)
}

pub(crate) fn spanned(span: Range<usize>, key: String, message: impl Into<String>) -> Invalid {
    Invalid {
        span: (span != (0..0)).then_some(span),
        key,
        message: message.into(),
    }
}

pub(crate) fn check_regex(re: &Spanned<String>, key: String) -> Result<(), Invalid> {
    regex::Regex::new(re.get_ref())
        .map(|_| ())
        .map_err(|e| invalid(re, key, format!("invalid regex: {e}")))
}
