//! uniffi bindings of `coachsync-core` for Kotlin (Android), Swift (iOS) and Python.
//!
//! A thin layer: it converts types and errors, owns the tokio runtime the device runs
//! on, and delivers callbacks on a thread of its own; the logic lives in
//! `coachsync-core`. The generated module is named `coachsync` (Python `coachsync`,
//! Kotlin `org.coachsync`, Swift `Coachsync`).

uniffi::setup_scaffolding!("coachsync");

mod coachsync_error;
mod device;
mod dispatcher;
mod logging;
mod runtime;

pub use coachsync_error::CoachsyncError;
pub use device::{
    ConnectionState, Device, DocStatus, DocSummary, DocumentListener, StatusListener, Subscription,
    SyncResult, SyncState,
};
pub use dispatcher::stop_callbacks;
pub use logging::{LogLevel, Logger, set_logger};

/// The version of the coachsync core these bindings were built from.
#[uniffi::export]
pub fn core_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}

/// Whether a string is a valid `automerge:` document URL.
#[uniffi::export]
pub fn is_valid_document_url(url: String) -> bool {
    url.parse::<coachsync_core::AutomergeUrl>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_document_urls() {
        let id = coachsync_core::DocumentId::from_random([3; 16]);
        assert!(is_valid_document_url(id.url().to_string()));
        assert!(!is_valid_document_url("automerge:not-an-id".into()));
        assert!(!core_version().is_empty());
    }
}
