//! The domain's one error type. It says what went wrong in the registry's terms;
//! each surface (`http::oci`, the Harbor API) renders it in its own format.

use oci::ErrorCode;

/// A domain failure.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A protocol-level refusal with the OCI code that names it.
    #[error("{message}")]
    Oci { code: ErrorCode, message: String },
    /// A request refused as malformed (400) with this code, whatever status the code has elsewhere.
    #[error("{message}")]
    Refused { code: ErrorCode, message: String },
    /// A registry token that does not carry the action: the client should fetch one that does.
    #[error("insufficient scope")]
    InsufficientScope,
    /// The resource does not exist, or the caller may not know that it does.
    #[error("{0}")]
    NotFound(String),
    /// The change conflicts with what exists (a name already taken).
    #[error("{0}")]
    Conflict(String),
    /// The request is malformed or breaks a rule; the message says which.
    #[error("{0}")]
    Invalid(String),
    /// The change is refused in the resource's current state (a project that still holds repositories).
    #[error("{0}")]
    Precondition(String),
    /// A parameter is out of its allowed range.
    #[error("{0}")]
    Unprocessable(String),
    /// The caller is known but not allowed, with a reason to show.
    #[error("{0}")]
    Forbidden(String),
    /// A chunk that does not start where the upload stands; `size` is the upload's current size.
    #[error("chunk does not start at the upload's current size {size}")]
    RangeInvalid { size: u64 },
    /// A body larger than allowed.
    #[error("{0}")]
    TooLarge(String),
    /// The caller holds no credentials and must authenticate.
    #[error("authentication required")]
    Unauthenticated,
    /// The caller is known but not allowed.
    #[error("requested access to the resource is denied")]
    Denied,
    /// Credentials were given and are wrong.
    #[error("invalid credentials")]
    BadCredentials,
    /// Something broke inside: logged once, never shown to clients in detail.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn oci(code: ErrorCode, message: impl Into<String>) -> Error {
        Error::Oci { code, message: message.into() }
    }
    pub fn internal(e: impl std::fmt::Display) -> Error {
        Error::Internal(e.to_string())
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Internal(format!("database: {e}"))
    }
}

impl From<opendal::Error> for Error {
    fn from(e: opendal::Error) -> Self {
        Error::Internal(format!("storage: {e}"))
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
