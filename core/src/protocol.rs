//! The automerge-repo wire protocol, version "1": one CBOR map per WebSocket frame.
//!
//! [`Message`] is every message type that automerge-repo 1.x/2.x and samod send;
//! [`Message::decode`] and [`Message::encode`] are the codec. Decoding is lenient about
//! format (floats for integers, `undefined` for absent, unknown keys and types) and
//! strict about shape (a frame that is not a map of the expected fields is an error).

mod codec;

use std::collections::BTreeMap;

use crate::id::{DocumentId, PeerId, StorageId};

pub use codec::MAX_NESTING;

/// The only protocol version there is.
pub const PROTOCOL_VERSION: &str = "1";

/// What a peer says about itself when it joins (`peerMetadata`, or `metadata` in
/// older text).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerMetadata {
    /// The ID of the peer's persistent storage; absent for peers with no storage.
    pub storage_id: Option<StorageId>,
    /// An ephemeral peer keeps nothing, so no sync state is persisted for it.
    pub is_ephemeral: bool,
    /// coachsync protocol extensions the peer speaks (`coachsyncExtensions`; other
    /// implementations skip the key).
    pub extensions: Vec<String>,
}

/// The extension that batches reconnects: [`Message::Manifest`] and
/// [`Message::ManifestReply`].
pub const MANIFEST_EXTENSION: &str = "manifest/1";

/// The extension that tells devices a document was purged: [`Message::DocPurged`].
pub const PURGE_EXTENSION: &str = "purge/1";

/// A digest of a document's heads, as a manifest carries it: the first 8 bytes of
/// sha256 over the sorted heads. Equal digests mean equal heads (a collision would
/// only skip one sync, which the next change repairs).
pub type HeadsDigest = [u8; 8];

/// The [`HeadsDigest`] of some heads, in any order.
pub fn heads_digest(heads: &[automerge::ChangeHash]) -> HeadsDigest {
    use sha2::Digest;
    let mut sorted = heads.to_vec();
    sorted.sort();
    let mut hasher = sha2::Sha256::new();
    for head in &sorted {
        hasher.update(head.0);
    }
    let full = hasher.finalize();
    let mut digest = [0; 8];
    digest.copy_from_slice(&full[..8]);
    digest
}

/// A `request` or `sync` message: an automerge sync message for one document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncEnvelope {
    /// Who sent it.
    pub sender_id: PeerId,
    /// Who it is for.
    pub target_id: PeerId,
    /// The document.
    pub document_id: DocumentId,
    /// The encoded automerge sync message.
    pub data: Vec<u8>,
}

/// One heads announcement inside `remote-heads-changed`.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteHeads {
    /// bs58check change hashes.
    pub heads: Vec<String>,
    /// Milliseconds since the epoch, as the sender's clock had it.
    pub timestamp: f64,
}

/// A message of the protocol.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// A client's first message on every connection.
    Join {
        /// The client's peer ID.
        sender_id: PeerId,
        /// The versions it speaks; a missing list means `["1"]`.
        supported_protocol_versions: Vec<String>,
        /// What the client says about itself.
        peer_metadata: Option<PeerMetadata>,
    },
    /// The server's answer to `join`.
    Peer {
        /// The server's peer ID.
        sender_id: PeerId,
        /// The client.
        target_id: PeerId,
        /// Always "1".
        selected_protocol_version: String,
        /// What the server says about itself.
        peer_metadata: Option<PeerMetadata>,
    },
    /// A 1.x client leaving; a clean close.
    Leave {
        /// Who is leaving.
        sender_id: PeerId,
    },
    /// A fatal problem; the sender closes the connection after it.
    Error {
        /// What went wrong.
        message: String,
        /// Sent by the JS server, absent from samod.
        sender_id: Option<PeerId>,
        /// Sent by the JS server, absent from samod.
        target_id: Option<PeerId>,
    },
    /// "I don't have this document: send it or tell me it is unavailable."
    Request(SyncEnvelope),
    /// A sync message for a document both sides know of.
    Sync(SyncEnvelope),
    /// Neither this peer nor anyone it asked has the document.
    DocUnavailable {
        /// Who sent it.
        sender_id: PeerId,
        /// Who it is for.
        target_id: PeerId,
        /// The document.
        document_id: DocumentId,
    },
    /// An application message about a document, relayed but never stored.
    Ephemeral {
        /// The original author; relays keep it.
        sender_id: PeerId,
        /// Rewritten on each hop.
        target_id: PeerId,
        /// Per-session counter; with `session_id` and `sender_id` it de-duplicates.
        count: u64,
        /// The author's session.
        session_id: String,
        /// The document it is about.
        document_id: DocumentId,
        /// The application's CBOR payload, passed on untouched.
        data: Vec<u8>,
    },
    /// Subscribe to or unsubscribe from heads gossip about storage IDs.
    RemoteSubscriptionChange {
        /// Who sent it.
        sender_id: PeerId,
        /// Who it is for.
        target_id: PeerId,
        /// Storage IDs to add.
        add: Option<Vec<StorageId>>,
        /// Storage IDs to remove.
        remove: Option<Vec<StorageId>>,
    },
    /// Heads gossip: what heads some storage has for a document.
    RemoteHeadsChanged {
        /// Who sent it.
        sender_id: PeerId,
        /// Who it is for.
        target_id: PeerId,
        /// The document.
        document_id: DocumentId,
        /// Heads per storage ID.
        new_heads: BTreeMap<StorageId, RemoteHeads>,
    },
    /// Extension (`manifest/1`): documents a client holds, each with a digest of its
    /// heads, so that a reconnect syncs only those that differ. With `since`, the
    /// client lists only documents that changed since the server confirmed them, and
    /// asks for the documents the server changed after that cursor.
    Manifest {
        /// Who sent it.
        sender_id: PeerId,
        /// Who it is for.
        target_id: PeerId,
        /// Document and heads digest.
        entries: Vec<(DocumentId, HeadsDigest)>,
        /// The cursor of the server's last reply that the client caught up with;
        /// absent, `entries` lists every document the client holds.
        since: Option<u64>,
    },
    /// Extension (`manifest/1`): the answer to a manifest, the documents whose heads
    /// differ (or that the server lacks, or changed since the manifest's cursor).
    ManifestReply {
        /// Who sent it.
        sender_id: PeerId,
        /// Who it is for.
        target_id: PeerId,
        /// The documents to sync.
        differ: Vec<DocumentId>,
        /// The server's change cursor as of this reply, for the client's next
        /// manifest once it has synced every document in `differ`.
        cursor: Option<u64>,
    },
    /// Extension (`purge/1`), server to client: the organisation removed this
    /// document from the server for good; the client drops its copy and never
    /// offers it again. Sent only to peers that listed the extension and could read
    /// the document; others get `doc-unavailable`.
    DocPurged {
        /// Who sent it.
        sender_id: PeerId,
        /// Who it is for.
        target_id: PeerId,
        /// The document.
        document_id: DocumentId,
    },
    /// A message type this implementation does not know; ignored, never a reason to
    /// close.
    Unknown {
        /// Its `type` field.
        kind: String,
    },
}

impl Message {
    /// The `type` string of the message.
    pub fn kind(&self) -> &str {
        match self {
            Message::Join { .. } => "join",
            Message::Peer { .. } => "peer",
            Message::Leave { .. } => "leave",
            Message::Error { .. } => "error",
            Message::Request(_) => "request",
            Message::Sync(_) => "sync",
            Message::DocUnavailable { .. } => "doc-unavailable",
            Message::Ephemeral { .. } => "ephemeral",
            Message::RemoteSubscriptionChange { .. } => "remote-subscription-change",
            Message::RemoteHeadsChanged { .. } => "remote-heads-changed",
            Message::Manifest { .. } => "coachsync-manifest",
            Message::ManifestReply { .. } => "coachsync-manifest-reply",
            Message::DocPurged { .. } => "coachsync-doc-purged",
            Message::Unknown { kind } => kind,
        }
    }

    /// The peer that says it sent the message, if the message names one.
    pub fn sender_id(&self) -> Option<&PeerId> {
        match self {
            Message::Join { sender_id, .. }
            | Message::Peer { sender_id, .. }
            | Message::Leave { sender_id }
            | Message::DocUnavailable { sender_id, .. }
            | Message::Ephemeral { sender_id, .. }
            | Message::RemoteSubscriptionChange { sender_id, .. }
            | Message::RemoteHeadsChanged { sender_id, .. }
            | Message::Manifest { sender_id, .. }
            | Message::ManifestReply { sender_id, .. }
            | Message::DocPurged { sender_id, .. } => Some(sender_id),
            Message::Request(env) | Message::Sync(env) => Some(&env.sender_id),
            Message::Error { sender_id, .. } => sender_id.as_ref(),
            Message::Unknown { .. } => None,
        }
    }

    /// The document the message is about, if any.
    pub fn document_id(&self) -> Option<&DocumentId> {
        match self {
            Message::Request(env) | Message::Sync(env) => Some(&env.document_id),
            Message::DocUnavailable { document_id, .. }
            | Message::DocPurged { document_id, .. }
            | Message::Ephemeral { document_id, .. }
            | Message::RemoteHeadsChanged { document_id, .. } => Some(document_id),
            _ => None,
        }
    }
}
