//! The sans-IO sync engine.
//!
//! [`Engine`] is a plain state machine that speaks the automerge-repo protocol for
//! many documents over many connections. It never reads the clock, touches a socket or
//! a file, or spawns anything: time and randomness are arguments, and everything it
//! wants done comes out of [`Engine::poll_output`]: frames to send, connections to
//! close, store loads and writes, and events. Store results come back through
//! [`Engine::handle_load`] and [`Engine::handle_commit`].
//!
//! The durability rule lives here: a document's sync messages are generated only when
//! every change the document holds has been committed, so no peer is ever told of
//! heads that the store does not have.

mod document;
mod engine;

use std::time::Duration;

use automerge::ChangeHash;

use crate::id::{DocumentId, PeerId, StorageId};
use crate::protocol::Message;
use crate::store::StoreWrite;

pub use engine::{CURSOR_KEY_PREFIX, Engine};

/// A transport connection, numbered by the driver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

/// A store operation, numbered by the engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OpId(pub u64);

/// Which side of the protocol the engine plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Waits for `join`, answers `peer`, never announces documents: it answers what
    /// peers ask and pushes later changes to peers that asked.
    Server,
    /// Sends `join`, and syncs every document it holds with the server.
    Client,
}

/// The engine's settings.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// Server or client.
    pub role: Role,
    /// Our peer ID.
    pub peer_id: PeerId,
    /// Our storage ID, announced to peers so they persist sync state against it.
    pub storage_id: Option<StorageId>,
    /// Messages sent for one (document, connection) without any progress before the
    /// engine stops answering and resets the sync later (automerge #772, #1284).
    pub max_rounds_without_progress: u32,
    /// A sync waiting this long for an answer, or stopped by the round cap, is reset
    /// from its last shared heads and restarted.
    pub stall_timeout: Duration,
    /// A document untouched this long is dropped from memory (reloaded on demand).
    pub evict_after: Duration,
    /// Incremental chunks after which a document is compacted into one snapshot.
    pub compact_after_chunks: usize,
    /// The largest document accepted, in stored bytes.
    pub max_document_bytes: usize,
    /// Server: the most documents one user may own (create); the next creation is
    /// refused with an error.
    pub max_documents_per_user: u64,
    /// Server: the most bytes the documents one user owns may hold in the store; a
    /// sync that would go past it is refused with an error.
    pub max_bytes_per_user: u64,
    /// A server closes connections that have not sent `join` within this time.
    pub join_timeout: Duration,
    /// How often timers are checked.
    pub tick: Duration,
    /// Speak the `manifest/1` extension with peers that announce it (see
    /// `docs/PROTOCOL.md`); off, every reconnect syncs document by document.
    pub manifest: bool,
    /// Server: for how long after a purge every reconnecting device whose user could
    /// read the document is told of it (devices offline longer learn of it when
    /// they next sync the document itself).
    pub purge_notice: Duration,
}

impl EngineConfig {
    /// Defaults for a role.
    pub fn new(role: Role, peer_id: PeerId, storage_id: Option<StorageId>) -> Self {
        Self {
            role,
            peer_id,
            storage_id,
            max_rounds_without_progress: 16,
            stall_timeout: Duration::from_secs(15),
            evict_after: Duration::from_secs(300),
            compact_after_chunks: 64,
            max_document_bytes: 64 * 1024 * 1024,
            max_documents_per_user: 100_000,
            max_bytes_per_user: 1024 * 1024 * 1024,
            join_timeout: Duration::from_secs(10),
            tick: Duration::from_millis(500),
            manifest: true,
            purge_notice: Duration::from_secs(365 * 86_400),
        }
    }
}

/// Something the engine wants done, or wants known.
#[derive(Debug)]
pub enum Output {
    /// Send a message on a connection.
    Send {
        /// The connection.
        conn: ConnId,
        /// The message.
        message: Message,
    },
    /// Close a connection (after sending what was queued before this).
    Close {
        /// The connection.
        conn: ConnId,
        /// Why, for the log.
        reason: String,
    },
    /// Read a document; answer with [`Engine::handle_load`].
    Load {
        /// The operation.
        op: OpId,
        /// The document.
        document: DocumentId,
    },
    /// Read a stored document's heads only (`Store::heads`); answer with
    /// [`Engine::handle_heads`].
    LoadHeads {
        /// The operation.
        op: OpId,
        /// The document.
        document: DocumentId,
    },
    /// Server: find the documents changed after a client's manifest cursor that it
    /// lacks ([`Store::changed_since`](crate::store::Store::changed_since)); answer
    /// with [`Engine::handle_changed_since`].
    ChangedSince {
        /// The operation.
        op: OpId,
        /// The client's cursor.
        since: u64,
        /// The client's storage.
        peer: StorageId,
    },
    /// Write durably, in order with every other commit; answer with
    /// [`Engine::handle_commit`]. Consecutive commits may share one store batch.
    Commit {
        /// The operation.
        op: OpId,
        /// The write.
        write: StoreWrite,
    },
    /// Something happened.
    Event(Event),
}

/// What the engine reports.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// A peer finished the handshake on a connection.
    PeerJoined {
        /// The connection.
        conn: ConnId,
        /// The peer.
        peer: PeerId,
    },
    /// A document's content changed, through a local edit or a peer's.
    DocumentChanged {
        /// The document.
        document: DocumentId,
        /// Its new heads.
        heads: Vec<ChangeHash>,
    },
    /// A change is durably stored: the document's stored heads.
    DocumentStored {
        /// The document.
        document: DocumentId,
        /// Heads now on disk.
        heads: Vec<ChangeHash>,
    },
    /// Client: the server reported the heads it holds of a document, in a sync
    /// message or by confirming a manifest entry. A server announces only heads it
    /// has stored, so these are what the server would still have after a crash.
    PeerHeads {
        /// The document.
        document: DocumentId,
        /// The connection.
        conn: ConnId,
        /// The peer's heads.
        heads: Vec<ChangeHash>,
    },
    /// Client: the server answered our manifest and every document it named is in
    /// sync: every document the server holds that we hold is up to date on both
    /// sides (as of the answer).
    CaughtUp {
        /// The connection.
        conn: ConnId,
    },
    /// A peer said it cannot provide a document we asked for.
    DocumentUnavailable {
        /// The document.
        document: DocumentId,
    },
    /// An ephemeral message arrived (client role; servers relay them).
    Ephemeral {
        /// The document.
        document: DocumentId,
        /// The original author.
        sender: PeerId,
        /// The application's payload.
        data: Vec<u8>,
    },
    /// A peer's input was refused; the connection was closed.
    Rejected {
        /// The connection.
        conn: ConnId,
        /// Why.
        reason: String,
    },
    /// A stored document does not load; it was put aside, not deleted.
    Quarantined {
        /// The document.
        document: DocumentId,
        /// Why.
        reason: String,
    },
    /// A sync hit the round cap or timed out and will be reset.
    Stalled {
        /// The document.
        document: DocumentId,
        /// The connection.
        conn: ConnId,
    },
    /// Client: the server purged a document; its copy here is gone (memory, and the
    /// store through an [`Output::Commit`] of [`StoreWrite::Delete`]).
    DocumentPurged {
        /// The document.
        document: DocumentId,
    },
    /// Server: a peer asked for, or sent changes to, a document it may not read or
    /// write. The peer was told what it would be told of a missing document (or its
    /// changes were left out); reported once per connection and document, for the
    /// audit log.
    Refused {
        /// The connection.
        conn: ConnId,
        /// Who is behind it (a user's name, or `anonymous`).
        who: String,
        /// The document.
        document: DocumentId,
        /// What was refused: `read`, `write` or `create`.
        action: &'static str,
    },
    /// Server: a signed-in user's connection synced a document for the first time
    /// (once per connection and document), for the document's access log.
    Opened {
        /// The connection.
        conn: ConnId,
        /// The user's name.
        who: String,
        /// The document.
        document: DocumentId,
    },
    /// A store operation failed.
    StoreFailed {
        /// The document.
        document: DocumentId,
        /// The error.
        error: String,
    },
}
