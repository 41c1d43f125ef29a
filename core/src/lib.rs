//! The shared core of coachsync: identifiers, the automerge-repo wire protocol, the
//! sans-IO sync engine and storage.

pub mod error;
pub mod id;
pub mod protocol;
pub mod store;
pub mod sync;

pub use error::{Error, Result};
pub use id::{AutomergeUrl, DocumentId, PeerId, StorageId};
pub use protocol::{Message, PeerMetadata, SyncEnvelope};
