use std::path::PathBuf;
use std::time::Duration;

/// What went wrong talking to a registry or a layout. Every variant names what it was
/// about (a reference, a URL path, a file) so one line tells the user where to look.
/// Credentials never appear here: requests carry them in headers, not URLs.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot reach {host}: {detail}")]
    Unreachable { host: String, detail: String },
    #[error("{what}: authentication failed (401){detail}; check the credentials for this registry")]
    Unauthorized { what: String, detail: String },
    #[error("{what}: access denied (403){detail}")]
    Denied { what: String, detail: String },
    #[error("{what}: not found (404){detail}")]
    NotFound { what: String, detail: String },
    #[error("{what}: registry answered {status}{detail}")]
    Status {
        what: String,
        status: u16,
        detail: String,
        /// How long the registry asked to wait before trying again (`Retry-After`, on a
        /// 429 or 5xx), so a retry of the whole operation waits as a retry of one request does.
        retry_after: Option<Duration>,
    },
    #[error("{what}: content has digest {actual}, expected {expected}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("{what}: {actual} bytes received, descriptor says {expected}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },
    #[error("{what}: manifest is larger than the {limit} byte limit")]
    ManifestTooLarge { what: String, limit: usize },
    #[error("{what}: larger than the {limit} byte limit")]
    TooLarge { what: String, limit: usize },
    #[error("{what}: not a valid manifest: {reason}")]
    InvalidManifest { what: String, reason: String },
    #[error("{what}: {reason}")]
    Unsupported { what: String, reason: String },
    #[error("layout {path}: {reason}")]
    Layout { path: PathBuf, reason: String },
    /// The I/O error is part of the message rather than a `source`, so printing the
    /// cause chain does not say it twice.
    #[error("{}: {error}", path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    #[error("credentials: {0}")]
    Credentials(String),
    #[error("{what}: transfer failed: {detail}")]
    Transfer { what: String, detail: String },
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// Whether trying the same thing again may succeed: network failures, 5xx and 429.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Unreachable { .. } | Error::Transfer { .. } => true,
            Error::Status { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }

    /// The wait the registry asked for with `Retry-After`, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            error: source,
        }
    }
}

/// The whole cause chain of an error in one line, for messages about transport failures.
pub(crate) fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
