//! The shared core of coachsync: identifiers, the automerge-repo wire protocol, the
//! sans-IO sync engine, access rules, storage, the JSON bridge and the device runtime.

pub mod access;
pub mod device;
pub mod domain;
pub mod error;
pub mod id;
pub mod json;
pub mod protocol;
pub mod store;
pub mod sync;
pub mod utc;

pub use device::{Device, DeviceConfig, DocumentStatus, DocumentSummary, Status};
pub use error::{Error, Result};
pub use id::{AutomergeUrl, DocumentId, PeerId, StorageId};
pub use protocol::{Message, PeerMetadata, SyncEnvelope};
