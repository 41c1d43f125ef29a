//! The one error type apps see.

/// What went wrong, in a form an app can act on.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum CoachsyncError {
    /// The app passed something unusable: JSON that does not parse, a malformed URL
    /// or path, a coaching document that does not fit its kind. Nothing changed.
    #[error("{message}")]
    InvalidInput {
        /// Why.
        message: String,
    },
    /// No such document on this device (or on the server, for a fetch).
    #[error("{message}")]
    NotFound {
        /// Which.
        message: String,
    },
    /// The device's storage failed.
    #[error("{message}")]
    Storage {
        /// Why.
        message: String,
    },
    /// The server could not be reached in time.
    #[error("{message}")]
    Network {
        /// Why.
        message: String,
    },
    /// Anything else, such as a device used after `close`.
    #[error("{message}")]
    Internal {
        /// Why.
        message: String,
    },
}

impl CoachsyncError {
    /// An invalid-input error.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidInput {
            message: message.into(),
        }
    }
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
            | E::Published { .. }
            | E::Config(_)
            | E::NoServer
            | E::Unsynced(_)
            | E::TooLarge { .. } => Self::InvalidInput { message },
            E::UnknownDocument(_) | E::Unavailable(_) => Self::NotFound { message },
            E::Storage(_) | E::StorageIo { .. } | E::Corrupt { .. } => Self::Storage { message },
            _ => Self::Internal { message },
        }
    }
}
