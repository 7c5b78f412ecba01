//! Git for source-controller, on libgit2: authentication from a Secret with Flux's keys ([`auth`]), refs
//! resolved with Flux's precedence and revision format ([`reference`]), and one bare repository per URL
//! shared by every object that uses it ([`cache`]): a remote is asked for its refs first, so an unchanged
//! revision costs one round trip and no fetch. Commit and push for image automation ([`push`]).
#![warn(missing_docs)]

pub mod auth;
pub mod cache;
pub mod known_hosts;
pub mod push;
pub mod reference;
pub mod sign;
pub mod tls;
pub mod verify;

pub use self::{
    auth::Auth,
    cache::{Cache, Checkout, Options},
    push::{Author, Worktree},
    reference::{Reference, Resolved},
    sign::Signer,
    verify::Keyring,
};

/// A Git operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Authentication failed or credentials are missing (reason `AuthenticationFailed`).
    #[error("authentication failed for '{url}': {message}")]
    Auth {
        /// The repository.
        url: String,
        /// What was wrong.
        message: String,
    },
    /// The reference does not exist, or no tag matches the semver range.
    #[error("{0}")]
    RefNotFound(String),
    /// The spec is invalid (bad semver range, bad URL).
    #[error("{0}")]
    Invalid(String),
    /// libgit2 failed (network, protocol, repository).
    #[error("{context}: {}", source.message())]
    Git {
        /// What was being done.
        context: String,
        /// Why it failed.
        #[source]
        source: git2::Error,
    },
    /// A local file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// A signature is missing, invalid, or made by a key not in the Secret (reason `VerificationError`).
    #[error("{0}")]
    Verification(String),
    /// The bridge's connection failed (an untrusted certificate, a refused client certificate, a proxy
    /// that refused or did not answer).
    #[error("connection to '{url}' failed: {message}")]
    Connection {
        /// The repository.
        url: String,
        /// Why.
        message: String,
    },
    /// The remote refused a push: the branch moved (not a fast-forward), or a hook declined it.
    #[error("{0}")]
    Rejected(String),
    /// The operation took longer than the timeout.
    #[error("timeout after {0:?} talking to the Git server")]
    Timeout(std::time::Duration),
}

impl Error {
    /// Whether the error is an authentication problem (Flux reason `AuthenticationFailed`).
    pub fn is_auth(&self) -> bool {
        matches!(self, Error::Auth { .. })
            || matches!(self, Error::Git { source, .. } if source.class() == git2::ErrorClass::Ssh && source.code() == git2::ErrorCode::Auth
                || source.code() == git2::ErrorCode::Auth
                || source.code() == git2::ErrorCode::Certificate)
    }
}

/// `Result` with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
