//! What both XDP roles' façades share: the context they start in and the errors of starting
//! and applying.

use tokio_util::sync::CancellationToken;

use crate::control::ControlError;
use crate::host::AgentError;
use crate::loader::LoadError;

/// What a role is started with. Cancelling `cancel` stops the role as
/// `shutdown()` does (the node runtime holds one token for every tier).
#[derive(Clone, Debug, Default)]
pub struct TierContext {
    pub cancel: CancellationToken,
}

/// Why a role did not start or a new section was refused. A refused section changes
/// nothing: the role keeps running with the one it had.
#[derive(Debug, thiserror::Error)]
pub enum TierError {
    #[error(transparent)]
    Config(#[from] tenbin_config::SectionError),
    #[error("{0} needs root (BPF, XDP attach, addresses)")]
    NotRoot(&'static str),
    #[error("{what}: {source}")]
    Load {
        what: String,
        #[source]
        source: Box<LoadError>,
    },
    #[error(transparent)]
    Host(#[from] AgentError),
    #[error(transparent)]
    Control(Box<ControlError>),
    #[error("binding {addr}: {source}")]
    Bind {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("key `{key}`: {message}")]
    Invalid { key: &'static str, message: String },
    #[error("key `{0}` cannot change while the role runs; restart it to change it")]
    NeedsRestart(&'static str),
    #[error("start must be called inside a tokio runtime")]
    NoRuntime,
    #[error("the role has stopped")]
    Stopped,
}

/// `start` refusing.
pub type StartError = TierError;
/// `apply` refusing.
pub type ApplyError = TierError;

pub(crate) fn load(what: impl Into<String>) -> impl FnOnce(LoadError) -> TierError {
    let what = what.into();
    move |source| TierError::Load {
        what,
        source: Box::new(source),
    }
}

impl From<ControlError> for TierError {
    fn from(e: ControlError) -> TierError {
        TierError::Control(Box::new(e))
    }
}

pub(crate) fn runtime() -> Result<tokio::runtime::Handle, TierError> {
    tokio::runtime::Handle::try_current().map_err(|_| TierError::NoRuntime)
}

/// The HMAC key of agent reports from the section's secret.
pub(crate) fn report_key(
    secret: Option<&str>,
    key: &'static str,
) -> Result<crate::report::ReportKey, TierError> {
    crate::report::key(secret.unwrap_or_default().as_bytes()).ok_or(TierError::Invalid {
        key,
        message: "must be at least 16 bytes long".into(),
    })
}
