//! What the engine keeps per document and per (document, connection).

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use automerge::{Automerge, ChangeHash, sync};

use super::{ConnId, OpId};
use crate::id::StorageId;
use crate::protocol::Message;

/// Where a document's content is.
pub(super) enum Content {
    /// A load is under way; messages for the document wait here.
    Loading {
        op: OpId,
        queued: Vec<(ConnId, Message)>,
    },
    /// In memory. An empty document (no heads) is one the store has never had.
    Ready(Box<Automerge>),
    /// Dropped from memory; everything it holds is stored.
    Evicted,
    /// Stored but does not load; served as unavailable.
    Quarantined,
}

/// The sync of one document with one connection.
pub(super) struct PeerSync {
    pub state: sync::State,
    /// The shared heads last persisted for this peer's storage.
    pub persisted_heads: Vec<ChangeHash>,
    /// We told this peer the document is unavailable; push it when it appears.
    pub told_unavailable: bool,
    /// A message from the peer arrived while our answer had to wait for the store.
    pub owes_reply: bool,
    /// Messages sent with nothing changing, for the round cap.
    pub rounds_without_progress: u32,
    /// Set while this sync is held back by the round cap.
    pub stalled_at: Option<Instant>,
    /// When we last sent a message that is still unanswered.
    pub sent_at: Option<Instant>,
    /// Heads seen at the last exchange, to tell progress from a loop.
    pub last_their_heads: Option<Vec<ChangeHash>>,
    pub last_our_heads: Vec<ChangeHash>,
}

impl PeerSync {
    /// Start from a persisted state (only the shared heads survive encoding) or from
    /// nothing.
    pub fn new(persisted: Option<&[u8]>) -> Self {
        let state = persisted
            .and_then(|bytes| sync::State::decode(bytes).ok())
            .unwrap_or_default();
        Self {
            persisted_heads: state.shared_heads.clone(),
            state,
            told_unavailable: false,
            owes_reply: false,
            rounds_without_progress: 0,
            stalled_at: None,
            sent_at: None,
            last_their_heads: None,
            last_our_heads: Vec::new(),
        }
    }

    /// Start again from the shared heads, dropping in-flight state: how a lost or
    /// looping exchange is recovered.
    pub fn reset(&mut self) {
        let shared = std::mem::take(&mut self.state.shared_heads);
        self.state = sync::State::new();
        self.state.shared_heads = shared;
        self.rounds_without_progress = 0;
        self.stalled_at = None;
        self.sent_at = None;
        self.last_their_heads = None;
    }
}

/// Everything the engine keeps about one document.
pub(super) struct DocState {
    pub content: Content,
    /// The heads handed to the store (whether or not the write has finished).
    pub saved_heads: Vec<ChangeHash>,
    /// Heads known durable.
    pub durable_heads: Vec<ChangeHash>,
    /// Appends and compactions not yet acknowledged by the store.
    pub pending_writes: HashSet<OpId>,
    /// A compaction in flight, and how many incremental chunks it replaces.
    pub compacting: Option<(OpId, usize)>,
    /// Stored bytes and incremental chunks, for limits and compaction.
    pub stored_bytes: usize,
    pub incremental_chunks: usize,
    /// Sync with each connection that takes part in this document.
    pub peers: HashMap<ConnId, PeerSync>,
    /// Sync states persisted per peer storage, as loaded.
    pub persisted: HashMap<StorageId, Vec<u8>>,
    /// A client that wants this document from its server.
    pub wanted: bool,
    /// Client: the heads each server storage last confirmed holding, sorted.
    pub confirmed: HashMap<StorageId, Vec<ChangeHash>>,
    pub last_used: Instant,
    /// Server: a reread for changes stored by another server is under way.
    pub refreshing: bool,
    /// Server: more was stored elsewhere while it ran; read again after it.
    pub refresh_again: bool,
}

impl DocState {
    pub fn new(content: Content, now: Instant) -> Self {
        Self {
            content,
            saved_heads: Vec::new(),
            durable_heads: Vec::new(),
            pending_writes: HashSet::new(),
            compacting: None,
            stored_bytes: 0,
            incremental_chunks: 0,
            peers: HashMap::new(),
            persisted: HashMap::new(),
            wanted: false,
            confirmed: HashMap::new(),
            last_used: now,
            refreshing: false,
            refresh_again: false,
        }
    }

    pub fn doc(&self) -> Option<&Automerge> {
        match &self.content {
            Content::Ready(doc) => Some(doc),
            _ => None,
        }
    }

    /// Whether everything in memory is durable, so sync messages may be generated.
    pub fn is_durable(&self) -> bool {
        self.pending_writes.is_empty()
    }
}
