//! Durable storage of documents and sync states.
//!
//! The engine never touches a store: it asks for loads and writes as outputs, and a
//! driver runs them here. [`Store::commit`] applies a batch of writes atomically and
//! returns only once they are durable, which is how writes from many connections are
//! group-committed with one fsync.
//!
//! A document is stored as chunks: one snapshot (a whole `save()`) and the incremental
//! changes appended after it. Each chunk is split into parts of at most
//! [`MAX_VALUE_BYTES`], so that no stored value is large enough for sled to write it
//! as a separate, never-fsynced blob file. Compaction replaces every chunk of a
//! document with one new snapshot in a single transaction.

mod layout;
mod memory_store;
mod sled_store;
mod store_worker;

use automerge::ChangeHash;

use crate::error::Result;
use crate::id::{DocumentId, StorageId};

pub use layout::{DocMeta, MAX_VALUE_BYTES, Table};
pub use memory_store::MemoryStore;
pub use sled_store::{SEGMENT_SIZE, SledOptions, SledStore};
pub use store_worker::{CommitReport, StoreWorker};

/// A document as read from a store.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StoredDocument {
    /// Every chunk, snapshot first, concatenated: what `Automerge::load` takes.
    pub data: Vec<u8>,
    /// How many chunks `data` was made of.
    pub chunks: usize,
    /// How many of those are incremental (written after the last snapshot).
    pub incremental_chunks: usize,
    /// Bytes in incremental chunks.
    pub incremental_bytes: usize,
    /// Persisted sync states, one per peer storage ID.
    pub sync_states: Vec<(StorageId, Vec<u8>)>,
    /// Set when the document failed to load once and was put aside.
    pub quarantined: Option<String>,
}

/// One write of a batch given to [`Store::commit`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreWrite {
    /// Append changes (the output of `save_after`) as a new incremental chunk.
    Append {
        /// The document.
        document: DocumentId,
        /// The changes.
        data: Vec<u8>,
        /// The document's heads with these changes, kept beside the chunks so that
        /// heads can be read without loading the document.
        heads: Vec<ChangeHash>,
    },
    /// Replace every chunk of the document with this snapshot, if loading the
    /// snapshot gives `heads` (otherwise the write is skipped and logged).
    Compact {
        /// The document.
        document: DocumentId,
        /// A whole `save()` of the document.
        snapshot: Vec<u8>,
        /// The heads the snapshot must load to.
        heads: Vec<ChangeHash>,
    },
    /// Persist the sync state of a document with one peer storage.
    SyncState {
        /// The document.
        document: DocumentId,
        /// The peer's storage.
        storage_id: StorageId,
        /// `sync::State::encode()`.
        state: Vec<u8>,
    },
    /// Put a document aside: it stays stored but is no longer served.
    Quarantine {
        /// The document.
        document: DocumentId,
        /// Why, for the operator.
        reason: String,
    },
    /// Set a small record of the application's own (a device keeps what its server
    /// confirmed here), written in order with the document writes around it.
    Meta {
        /// The record's key.
        key: String,
        /// Its new value.
        value: Vec<u8>,
    },
    /// Remove a record written with [`StoreWrite::Meta`].
    RemoveMeta {
        /// The record's key.
        key: String,
    },
    /// Remove a document: its chunks, its record, its sync states and its entry in
    /// the change log.
    Delete {
        /// The document.
        document: DocumentId,
    },
}

impl StoreWrite {
    /// The document the write is about, if it is about one.
    pub fn document(&self) -> Option<&DocumentId> {
        match self {
            StoreWrite::Append { document, .. }
            | StoreWrite::Compact { document, .. }
            | StoreWrite::SyncState { document, .. }
            | StoreWrite::Quarantine { document, .. }
            | StoreWrite::Delete { document } => Some(document),
            StoreWrite::Meta { .. } | StoreWrite::RemoveMeta { .. } => None,
        }
    }
}

/// A place where documents are kept.
///
/// Implementations must make [`commit`](Store::commit) atomic (all writes of a batch
/// or none) and durable when it returns `Ok`, and apply batches in the order they are
/// given.
pub trait Store: Send + Sync + 'static {
    /// Read a document, or `None` if it was never stored.
    fn load(&self, document: &DocumentId) -> Result<Option<StoredDocument>>;

    /// A stored document's heads, without reading its chunks; `None` if it was never
    /// stored. A quarantined document has no heads.
    fn heads(&self, document: &DocumentId) -> Result<Option<Vec<ChangeHash>>>;

    /// Apply a batch of writes atomically and durably.
    fn commit(&self, writes: &[StoreWrite]) -> Result<()>;

    /// The IDs of every stored document.
    fn document_ids(&self) -> Result<Vec<DocumentId>>;

    /// Every stored document with its heads (none for a quarantined one), read from
    /// the per-document records alone: what a device registers when it starts.
    fn stored_heads(&self) -> Result<Vec<(DocumentId, Vec<ChangeHash>)>>;

    /// Every stored document with the bytes its chunks hold, read from the
    /// per-document records alone: what a server counts against each owner's limit.
    fn document_sizes(&self) -> Result<Vec<(DocumentId, u64)>>;

    /// This store's own storage ID, created once and kept.
    fn storage_id(&self) -> StorageId;

    /// Every record written with [`StoreWrite::Meta`] whose key starts with
    /// `prefix`, in key order.
    fn meta(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>>;

    /// Up to `limit` records whose key starts with `prefix` and sorts after
    /// `after`, in key order: a page of a long list (such as the audit log) without
    /// reading the rest.
    fn meta_after(&self, prefix: &str, after: &str, limit: usize)
    -> Result<Vec<(String, Vec<u8>)>>;

    /// The record with the greatest key that starts with `prefix`, if any.
    fn last_meta(&self, prefix: &str) -> Result<Option<(String, Vec<u8>)>>;

    /// The documents appended to after change sequence `since` that `peer` synced
    /// before and lacks some of (its persisted sync state's shared heads are not
    /// the stored heads), and the latest sequence number, read before the log so
    /// that nothing at or below it is missed.
    fn changed_since(&self, since: u64, peer: &StorageId) -> Result<ChangedSince>;

    /// Rewrite the store so that nothing removed from it remains in its files: after
    /// a [`StoreWrite::Delete`], a log-structured store still holds the old bytes
    /// until it reuses the space. Reads and writes wait while it runs; it is for
    /// rare deliberate removals (a purge), not routine deletes.
    fn vacuum(&self) -> Result<VacuumReport>;

    /// Whether the store answers now: for a store in another process (a database),
    /// a round trip to it. In-process stores always answer.
    fn check(&self) -> Result<()> {
        Ok(())
    }
}

/// What [`Store::vacuum`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VacuumReport {
    /// Bytes in the store's files before.
    pub bytes_before: u64,
    /// Bytes in the store's files after.
    pub bytes_after: u64,
}

/// What [`Store::changed_since`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChangedSince {
    /// Documents the peer lacks changes of.
    pub documents: Vec<DocumentId>,
    /// The change sequence they were read at: the peer's next `since`.
    pub cursor: u64,
}

/// Check a compaction before it replaces anything: the snapshot must load, and to
/// the expected heads. Every store calls it before a [`StoreWrite::Compact`] touches
/// the document, and skips the write (logging it) when it fails.
pub fn verify_snapshot(snapshot: &[u8], heads: &[ChangeHash]) -> bool {
    match load_document(snapshot) {
        Ok(doc) => {
            let mut got = doc.get_heads();
            let mut want = heads.to_vec();
            got.sort();
            want.sort();
            got == want
        }
        Err(_) => false,
    }
}

/// Load stored bytes (chunks concatenated, as [`StoredDocument::data`] holds them) into
/// a document. Bytes a store hands back may be torn or hostile, and automerge's decoder
/// can panic on some: a panic is an error like any other here, with a reason to log.
pub fn load_document(bytes: &[u8]) -> std::result::Result<automerge::Automerge, String> {
    match std::panic::catch_unwind(|| automerge::Automerge::load(bytes)) {
        Ok(Ok(doc)) => Ok(doc),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("automerge panicked while loading it".to_owned()),
    }
}
