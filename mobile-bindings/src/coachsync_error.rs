//! The one error type apps see.

/// What went wrong, in a form an app can act on. Each case carries a message for
/// people (the exception's message in Kotlin and Swift, `str(e)` in Python).
#[derive(Debug, thiserror::Error, uniffi::Error)]
#[uniffi(flat_error)]
pub enum CoachsyncError {
    /// The app passed something unusable: JSON that does not parse, a malformed URL
    /// or path, a coaching document that does not fit its kind, a document with
    /// changes the server lacks where they would be lost. Nothing changed.
    #[error("{0}")]
    InvalidInput(String),
    /// No such document on this device (or on the server, for a fetch).
    #[error("{0}")]
    NotFound(String),
    /// The device's storage failed.
    #[error("{0}")]
    Storage(String),
    /// The server could not be reached in time.
    #[error("{0}")]
    Network(String),
    /// Anything else, such as a device used after `close`.
    #[error("{0}")]
    Internal(String),
}

impl From<coachsync_core::Error> for CoachsyncError {
    fn from(e: coachsync_core::Error) -> Self {
        use coachsync_core::Error as E;
        let message = e.to_string();
        match e {
            E::InvalidDocumentId { .. }
            | E::InvalidUrl { .. }
            | E::InvalidId { .. }
            | E::Edit { .. }
            | E::InvalidPath { .. }
            | E::InvalidJson(_)
            | E::Invalid { .. }
            | E::UnknownKind(_)
            | E::Published { .. }
            | E::Config(_)
            | E::NoServer
            | E::Unsynced(_)
            | E::TooLarge { .. }
            | E::Access(_)
            | E::Forbidden(_) => Self::InvalidInput(message),
            E::UnknownDocument(_) | E::Unavailable(_) | E::NotFound(_) => Self::NotFound(message),
            E::Storage(_) | E::StorageIo { .. } | E::Corrupt { .. } => Self::Storage(message),
            _ => Self::Internal(message),
        }
    }
}

/// A listener or logger that threw: its exception comes back as an error value
/// rather than a panic, so one broken callback never stops the others.
impl From<uniffi::UnexpectedUniFFICallbackError> for CoachsyncError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        Self::Internal(format!("a callback failed: {}", e.reason))
    }
}
