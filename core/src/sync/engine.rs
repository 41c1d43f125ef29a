//! The engine: connections, documents, and the messages between them.

use std::collections::{HashMap, HashSet, VecDeque};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Instant;

use automerge::sync::SyncDoc;
use automerge::{Automerge, ChangeHash};

use super::document::{Content, DocState, PeerSync};
use super::{ConnId, EngineConfig, Event, OpId, Output, Role};
use crate::access::{
    Access, AccessBook, AccessChange, Audience, Decision, Principal, Relationship, Subject,
    UserRole, Who,
};
use crate::error::{Error, Result};
use crate::id::{DocumentId, PeerId, StorageId};
use crate::protocol::{
    HeadsDigest, MANIFEST_EXTENSION, Message, PROTOCOL_VERSION, PURGE_EXTENSION, PeerMetadata,
    SyncEnvelope, heads_digest,
};
use crate::store::{ChangedSince, StoreWrite, StoredDocument};

/// The store meta key prefix of a client's manifest cursors, one per server storage.
pub const CURSOR_KEY_PREFIX: &str = "manifest/cursor/";

/// How many ephemeral message IDs are remembered for de-duplication.
const EPHEMERAL_MEMORY: usize = 4096;

enum ConnPhase {
    /// Server: waiting for `join`. Client: `join` sent, waiting for `peer`.
    Handshake { since: Instant },
    Ready {
        peer: PeerId,
        storage_id: Option<StorageId>,
    },
}

struct Conn {
    phase: ConnPhase,
    /// Who the transport authenticated.
    who: Who,
    /// Server: documents this connection was refused (`read`, `write`, `create`)
    /// or opened (`open`), each reported once.
    refused: HashSet<(DocumentId, &'static str)>,
    documents: HashSet<DocumentId>,
    /// The peer speaks the `manifest/1` extension.
    manifest: bool,
    /// The peer speaks the `purge/1` extension.
    purge: bool,
    /// Client: a manifest was sent and not yet answered; the heads each entry named.
    manifest_sent: Option<HashMap<DocumentId, Vec<ChangeHash>>>,
    /// Client: documents the manifest's answer named that are not yet in sync, and
    /// the cursor to keep once they are.
    catching_up: Option<(HashSet<DocumentId>, Option<u64>)>,
}

/// Server: a manifest waiting for the stored heads of some of its documents.
struct PendingManifest {
    conn: ConnId,
    entries: Vec<(DocumentId, HeadsDigest)>,
    /// Documents whose heads are being read from the store.
    waiting: HashSet<DocumentId>,
    /// The change-log read for the manifest's cursor.
    changed: Option<ChangeRead>,
}

/// A server's read of its change log for one manifest.
enum ChangeRead {
    Pending(OpId),
    Done(ChangedSince),
    /// Answered without a cursor: the client keeps its old one and asks again next
    /// time, so nothing is missed.
    Failed,
}

enum PendingOp {
    Load(DocumentId),
    /// Server: a reread of a document in memory, for changes another server stored.
    Refresh(DocumentId),
    Heads(DocumentId),
    ChangedSince,
    Append {
        document: DocumentId,
        heads: Vec<ChangeHash>,
    },
    Compact(DocumentId),
    Other,
}

/// The sans-IO sync engine. See the [module docs](super).
pub struct Engine {
    config: EngineConfig,
    conns: HashMap<ConnId, Conn>,
    peers: HashMap<PeerId, ConnId>,
    docs: HashMap<DocumentId, DocState>,
    ops: HashMap<OpId, PendingOp>,
    next_op: u64,
    outputs: VecDeque<Output>,
    ephemeral_seen: HashSet<(PeerId, String, u64)>,
    next_tick: Option<Instant>,
    manifests: Vec<PendingManifest>,
    /// Client: per server storage, the change cursor caught up with.
    cursors: HashMap<StorageId, u64>,
    /// Server: the connection of each client storage that sent a manifest, so that
    /// documents it holds but did not list are pushed to it when they change.
    subscribers: HashMap<StorageId, ConnId>,
    /// Client: documents removed from this client; a server pushing changes to
    /// them must not bring them back.
    deleted: HashSet<DocumentId>,
    /// Server: who may read and write what.
    access: AccessBook,
    /// The wall-clock time the driver last gave, for the records the engine writes.
    wall_clock_ms: i64,
}

impl Engine {
    /// A new engine with no connections and no documents.
    pub fn new(config: EngineConfig) -> Self {
        Self {
            config,
            conns: HashMap::new(),
            peers: HashMap::new(),
            docs: HashMap::new(),
            ops: HashMap::new(),
            next_op: 0,
            outputs: VecDeque::new(),
            ephemeral_seen: HashSet::new(),
            next_tick: None,
            manifests: Vec::new(),
            cursors: HashMap::new(),
            subscribers: HashMap::new(),
            deleted: HashSet::new(),
            access: AccessBook::new(),
            wall_clock_ms: 0,
        }
    }

    /// The wall-clock time now, in milliseconds since 1970: stamped on the records
    /// the engine writes (who created a document, when). The engine never reads a
    /// clock itself.
    pub fn handle_wall_clock(&mut self, unix_ms: i64) {
        self.wall_clock_ms = unix_ms;
        self.access.set_now(unix_ms);
    }

    /// The engine's settings.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// The next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`handle_timeout`](Self::handle_timeout) should next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.next_tick
    }

    /// Documents held in memory.
    pub fn loaded_documents(&self) -> usize {
        self.docs
            .values()
            .filter(|d| matches!(d.content, Content::Ready(_)))
            .count()
    }

    /// Connections that finished the handshake.
    pub fn joined_connections(&self) -> usize {
        self.conns
            .values()
            .filter(|c| matches!(c.phase, ConnPhase::Ready { .. }))
            .count()
    }

    /// A document's content, if it is in memory.
    pub fn document(&self, document: &DocumentId) -> Option<&Automerge> {
        self.docs.get(document).and_then(DocState::doc)
    }

    /// The heads a connected peer last reported for a document, if any.
    pub fn peer_heads(&self, document: &DocumentId, conn: ConnId) -> Option<&[ChangeHash]> {
        self.docs
            .get(document)?
            .peers
            .get(&conn)?
            .state
            .their_heads
            .as_deref()
    }

    /// Client: the heads the server behind `conn` last confirmed holding of a
    /// document, over this connection or an earlier one to the same storage.
    pub fn confirmed_heads(&self, document: &DocumentId, conn: ConnId) -> Option<&[ChangeHash]> {
        let storage = self.peer_storage_id(conn)?;
        self.docs
            .get(document)?
            .confirmed
            .get(storage)
            .map(Vec::as_slice)
    }

    /// The storage ID a joined peer announced, unless it is ephemeral.
    pub fn peer_storage_id(&self, conn: ConnId) -> Option<&StorageId> {
        match &self.conns.get(&conn)?.phase {
            ConnPhase::Ready { storage_id, .. } => storage_id.as_ref(),
            ConnPhase::Handshake { .. } => None,
        }
    }

    /// The heads of a document known to be durable in the store.
    pub fn durable_heads(&self, document: &DocumentId) -> Option<&[ChangeHash]> {
        self.docs.get(document).map(|d| d.durable_heads.as_slice())
    }

    fn op(&mut self, pending: PendingOp) -> OpId {
        let op = OpId(self.next_op);
        self.next_op += 1;
        self.ops.insert(op, pending);
        op
    }

    fn arm_tick(&mut self, now: Instant) {
        if self.next_tick.is_none() {
            self.next_tick = Some(now + self.config.tick);
        }
    }

    fn send(&mut self, conn: ConnId, message: Message) {
        self.outputs.push_back(Output::Send { conn, message });
    }

    fn event(&mut self, event: Event) {
        self.outputs.push_back(Output::Event(event));
    }

    // ----- connections -------------------------------------------------------------

    /// A transport connection is up. A client sends `join` on it at once. On a
    /// server the peer is anonymous: see [`handle_connect_as`](Self::handle_connect_as).
    pub fn handle_connect(&mut self, now: Instant, conn: ConnId) {
        self.handle_connect_as(now, conn, Who::Anonymous);
    }

    /// Server: a transport connection is up, authenticated as `who`; everything on it
    /// is decided by what `who` may read and write.
    pub fn handle_connect_as(&mut self, now: Instant, conn: ConnId, who: Who) {
        self.conns.insert(
            conn,
            Conn {
                phase: ConnPhase::Handshake { since: now },
                who,
                refused: HashSet::new(),
                documents: HashSet::new(),
                manifest: false,
                purge: false,
                manifest_sent: None,
                catching_up: None,
            },
        );
        if self.config.role == Role::Client {
            self.send(
                conn,
                Message::Join {
                    sender_id: self.config.peer_id.clone(),
                    supported_protocol_versions: vec![PROTOCOL_VERSION.to_owned()],
                    peer_metadata: Some(self.our_metadata(None)),
                },
            );
        }
        self.arm_tick(now);
    }

    /// The extensions this engine speaks.
    fn extensions(&self) -> Vec<&'static str> {
        let mut extensions = Vec::new();
        if self.config.manifest {
            extensions.push(MANIFEST_EXTENSION);
        }
        extensions.push(PURGE_EXTENSION);
        extensions
    }

    /// What we say about ourselves: every extension we speak in a `join`; in a
    /// `peer`, only those the joining peer listed too, so that other implementations
    /// see the metadata they expect.
    fn our_metadata(&self, peer_extensions: Option<&[String]>) -> PeerMetadata {
        PeerMetadata {
            storage_id: self.config.storage_id.clone(),
            is_ephemeral: self.config.storage_id.is_none(),
            extensions: self
                .extensions()
                .into_iter()
                .filter(|x| peer_extensions.is_none_or(|theirs| theirs.iter().any(|t| t == x)))
                .map(str::to_owned)
                .collect(),
        }
    }

    /// A transport connection is gone.
    pub fn handle_disconnect(&mut self, _now: Instant, conn: ConnId) {
        self.forget_conn(conn);
    }

    /// Refuse a peer's input: say why, close, report. A connection that is already
    /// gone (it left while its input waited for the store) hears nothing.
    fn reject(&mut self, conn: ConnId, reason: String) {
        if !self.conns.contains_key(&conn) {
            tracing::debug!(conn = conn.0, %reason, "input of a closed connection refused");
            return;
        }
        tracing::warn!(conn = conn.0, %reason, "closing connection after bad input");
        let sender_id = Some(self.config.peer_id.clone());
        let target_id = match self.conns.get(&conn).map(|c| &c.phase) {
            Some(ConnPhase::Ready { peer, .. }) => Some(peer.clone()),
            _ => None,
        };
        self.send(
            conn,
            Message::Error {
                message: reason.clone(),
                sender_id,
                target_id,
            },
        );
        self.close(conn, reason.clone());
        self.event(Event::Rejected { conn, reason });
    }

    fn close(&mut self, conn: ConnId, reason: String) {
        self.outputs.push_back(Output::Close { conn, reason });
        self.forget_conn(conn);
    }

    fn forget_conn(&mut self, conn: ConnId) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        if let ConnPhase::Ready { peer, .. } = &c.phase
            && self.peers.get(peer) == Some(&conn)
        {
            self.peers.remove(peer);
        }
        self.subscribers.retain(|_, c| *c != conn);
        for document in c.documents {
            if let Some(doc) = self.docs.get_mut(&document) {
                doc.peers.remove(&conn);
            }
        }
    }

    /// A frame arrived. Frames that do not decode are refused (error, then close).
    pub fn handle_frame(&mut self, now: Instant, conn: ConnId, frame: &[u8]) {
        if !self.conns.contains_key(&conn) {
            return;
        }
        match Message::decode(frame) {
            Ok(message) => self.handle_message(now, conn, message),
            Err(e) => self.reject(conn, e.to_string()),
        }
    }

    /// A decoded message arrived.
    pub fn handle_message(&mut self, now: Instant, conn: ConnId, message: Message) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let ready_peer = match &c.phase {
            ConnPhase::Ready { peer, .. } => Some(peer.clone()),
            ConnPhase::Handshake { .. } => None,
        };
        match (self.config.role, ready_peer, message) {
            (_, _, Message::Unknown { kind }) => {
                tracing::debug!(conn = conn.0, %kind, "ignoring a message of unknown type");
            }
            (_, _, Message::Error { message, .. }) => {
                tracing::info!(conn = conn.0, %message, "peer sent an error");
                self.close(conn, format!("peer error: {message}"));
            }
            (_, _, Message::Leave { .. }) => self.close(conn, "peer left".into()),
            (
                Role::Server,
                None,
                Message::Join {
                    sender_id,
                    supported_protocol_versions,
                    peer_metadata,
                },
            ) => self.on_join(conn, sender_id, supported_protocol_versions, peer_metadata),
            (Role::Server, Some(_), Message::Join { .. }) => {
                tracing::debug!(conn = conn.0, "ignoring a second join on one connection");
            }
            (
                Role::Client,
                None,
                Message::Peer {
                    sender_id,
                    selected_protocol_version,
                    peer_metadata,
                    ..
                },
            ) => self.on_peer(
                now,
                conn,
                sender_id,
                selected_protocol_version,
                peer_metadata,
            ),
            (_, None, other) => {
                self.reject(
                    conn,
                    format!("expected a handshake before {}", other.kind()),
                );
            }
            (role, Some(peer), message) => {
                // Relayed ephemeral messages keep their author's ID; a client hears them
                // from its server. Everything else speaks only for its sender.
                let relayed = role == Role::Client && matches!(message, Message::Ephemeral { .. });
                if !relayed && message.sender_id() != Some(&peer) {
                    // Strict about who is talking: a peer speaks only for itself.
                    tracing::warn!(
                        conn = conn.0,
                        kind = message.kind(),
                        "dropping a message whose senderId is not the joined peer"
                    );
                    return;
                }
                self.on_peer_message(now, conn, peer, message);
            }
        }
    }

    fn on_join(
        &mut self,
        conn: ConnId,
        peer: PeerId,
        versions: Vec<String>,
        metadata: Option<PeerMetadata>,
    ) {
        if !versions.iter().any(|v| v == PROTOCOL_VERSION) {
            self.reject(conn, format!("unsupported protocol version: {versions:?}"));
            return;
        }
        if let Some(old) = self.peers.get(&peer).copied()
            && old != conn
        {
            let same_user =
                self.conns.get(&old).map(|c| &c.who) == self.conns.get(&conn).map(|c| &c.who);
            if !same_user {
                // A peer ID is bound to the user whose connection holds it: nobody
                // knocks another user's device off by claiming its ID.
                self.reject(conn, format!("peer ID {peer} is in use by another user"));
                return;
            }
            self.close(
                old,
                "replaced by a new connection from the same peer".into(),
            );
        }
        let theirs = metadata
            .as_ref()
            .map(|m| m.extensions.clone())
            .unwrap_or_default();
        self.mark_ready(conn, &peer, metadata);
        self.send(
            conn,
            Message::Peer {
                sender_id: self.config.peer_id.clone(),
                target_id: peer.clone(),
                selected_protocol_version: PROTOCOL_VERSION.to_owned(),
                peer_metadata: Some(self.our_metadata(Some(&theirs))),
            },
        );
    }

    /// The handshake is done: the connection speaks for `peer`, whose sync state is
    /// persisted under its storage ID unless it is ephemeral.
    /// Returns whether the peer speaks the manifest extension.
    fn mark_ready(&mut self, conn: ConnId, peer: &PeerId, metadata: Option<PeerMetadata>) -> bool {
        let metadata = metadata.unwrap_or_default();
        let speaks = |x: &str| metadata.extensions.iter().any(|e| e == x);
        let manifest = self.config.manifest && speaks(MANIFEST_EXTENSION);
        let purge = speaks(PURGE_EXTENSION);
        let storage_id = if metadata.is_ephemeral {
            None
        } else {
            metadata.storage_id
        };
        self.peers.insert(peer.clone(), conn);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.phase = ConnPhase::Ready {
                peer: peer.clone(),
                storage_id,
            };
            c.manifest = manifest;
            c.purge = purge;
        }
        self.event(Event::PeerJoined {
            conn,
            peer: peer.clone(),
        });
        manifest
    }

    fn on_peer(
        &mut self,
        now: Instant,
        conn: ConnId,
        peer: PeerId,
        version: String,
        metadata: Option<PeerMetadata>,
    ) {
        if version != PROTOCOL_VERSION {
            self.reject(conn, format!("unsupported protocol version: {version}"));
            return;
        }
        let manifest = self.mark_ready(conn, &peer, metadata);
        // A client syncs everything it holds or wants with its server: through one
        // manifest when the server speaks it, else document by document.
        let mut documents: Vec<DocumentId> = self
            .docs
            .iter()
            .filter(|(_, d)| d.wanted || !d.saved_heads.is_empty())
            .map(|(id, _)| id.clone())
            .collect();
        documents.sort();
        if manifest {
            // With a cursor from this server, list only what changed since it
            // confirmed it; the server names what changed on its side.
            let storage = self.peer_storage_id(conn).cloned();
            let since = storage.as_ref().and_then(|s| self.cursors.get(s)).copied();
            let mut sent = HashMap::new();
            let mut entries = Vec::new();
            for document in documents {
                let doc = &self.docs[&document];
                let confirmed = storage
                    .as_ref()
                    .and_then(|s| doc.confirmed.get(s))
                    .is_some_and(|c| same_heads(c, &doc.saved_heads));
                if since.is_some() && confirmed {
                    continue;
                }
                let heads = doc.saved_heads.clone();
                self.attach(&document, conn);
                entries.push((document.clone(), heads_digest(&heads)));
                sent.insert(document, heads);
            }
            if let Some(c) = self.conns.get_mut(&conn) {
                c.manifest_sent = Some(sent);
            }
            self.send(
                conn,
                Message::Manifest {
                    sender_id: self.config.peer_id.clone(),
                    target_id: peer,
                    entries,
                    since,
                },
            );
        } else {
            for document in documents {
                self.attach(&document, conn);
                self.sync_document(now, &document);
            }
        }
    }

    /// Start syncing a document with a connection, from the persisted state if the
    /// peer has storage.
    fn attach(&mut self, document: &DocumentId, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let ConnPhase::Ready { storage_id, .. } = &c.phase else {
            return;
        };
        c.documents.insert(document.clone());
        let storage_id = storage_id.clone();
        if let Some(doc) = self.docs.get_mut(document) {
            doc.peers.entry(conn).or_insert_with(|| {
                let persisted = storage_id
                    .as_ref()
                    .and_then(|s| doc.persisted.get(s))
                    .map(Vec::as_slice);
                PeerSync::new(persisted)
            });
        }
    }

    fn on_peer_message(&mut self, now: Instant, conn: ConnId, peer: PeerId, message: Message) {
        match message {
            Message::Request(env) => self.on_sync(now, conn, env, true),
            Message::Sync(env) => self.on_sync(now, conn, env, false),
            Message::DocUnavailable { document_id, .. } => {
                if let Some(doc) = self.docs.get_mut(&document_id)
                    && let Some(ps) = doc.peers.get_mut(&conn)
                {
                    ps.sent_at = None;
                }
                if self.config.role == Role::Client {
                    self.event(Event::DocumentUnavailable {
                        document: document_id,
                    });
                }
            }
            Message::Ephemeral {
                sender_id,
                count,
                session_id,
                document_id,
                data,
                ..
            } => self.on_ephemeral(conn, sender_id, count, session_id, document_id, data),
            Message::RemoteSubscriptionChange { .. } | Message::RemoteHeadsChanged { .. } => {
                // Heads gossip is optional in the protocol; we answer what peers ask.
                tracing::debug!(conn = conn.0, %peer, "ignoring heads gossip");
            }
            Message::Join { .. } | Message::Peer { .. } => {
                tracing::debug!(conn = conn.0, "ignoring a repeated handshake message");
            }
            Message::Manifest { entries, since, .. } if self.config.role == Role::Server => {
                self.on_manifest(now, conn, entries, since);
            }
            Message::ManifestReply { differ, cursor, .. } if self.config.role == Role::Client => {
                self.on_manifest_reply(now, conn, differ, cursor);
            }
            Message::Manifest { .. } | Message::ManifestReply { .. } => {
                tracing::debug!(
                    conn = conn.0,
                    "ignoring a manifest message meant for the other role"
                );
            }
            Message::DocPurged { document_id, .. } if self.config.role == Role::Client => {
                if self.docs.contains_key(&document_id) && !self.deleted.contains(&document_id) {
                    tracing::info!(document = %document_id, "the server purged a document; dropping the copy here");
                    self.forget(&document_id);
                    self.event(Event::DocumentPurged {
                        document: document_id,
                    });
                }
            }
            Message::DocPurged { .. } => {
                tracing::debug!(conn = conn.0, "ignoring a purge notice sent to a server");
            }
            Message::Error { .. } | Message::Leave { .. } | Message::Unknown { .. } => {}
        }
    }

    fn on_ephemeral(
        &mut self,
        conn: ConnId,
        sender: PeerId,
        count: u64,
        session_id: String,
        document: DocumentId,
        data: Vec<u8>,
    ) {
        let key = (sender.clone(), session_id.clone(), count);
        if self.ephemeral_seen.contains(&key) {
            return;
        }
        if self.ephemeral_seen.len() >= EPHEMERAL_MEMORY {
            self.ephemeral_seen.clear();
        }
        self.ephemeral_seen.insert(key);
        match self.config.role {
            Role::Client => self.event(Event::Ephemeral {
                document,
                sender,
                data,
            }),
            Role::Server => {
                if !self.may_read(conn, &document) {
                    return;
                }
                let Some(doc) = self.docs.get(&document) else {
                    return;
                };
                let targets: Vec<(ConnId, PeerId)> = doc
                    .peers
                    .keys()
                    .filter(|c| **c != conn)
                    .copied()
                    .collect::<Vec<_>>()
                    .into_iter()
                    .filter(|c| self.may_read(*c, &document))
                    .filter_map(|c| match self.conns.get(&c).map(|c| &c.phase) {
                        Some(ConnPhase::Ready { peer, .. }) => Some((c, peer.clone())),
                        _ => None,
                    })
                    .collect();
                for (target_conn, target_id) in targets {
                    self.send(
                        target_conn,
                        Message::Ephemeral {
                            sender_id: sender.clone(),
                            target_id,
                            count,
                            session_id: session_id.clone(),
                            document_id: document.clone(),
                            data: data.clone(),
                        },
                    );
                }
            }
        }
    }

    /// Make sure a document's content is in memory: returns `false` (and queues the
    /// message) while a load is under way.
    fn ensure_loaded(&mut self, now: Instant, conn: ConnId, message: Message) -> Option<Message> {
        let document = message
            .document_id()
            .expect("sync messages name a document")
            .clone();
        match self.docs.get_mut(&document) {
            Some(doc) => {
                doc.last_used = now;
                match &mut doc.content {
                    Content::Ready(_) | Content::Quarantined => Some(message),
                    Content::Loading { queued, .. } => {
                        queued.push((conn, message));
                        None
                    }
                    Content::Evicted => {
                        self.start_load(now, &document, vec![(conn, message)]);
                        None
                    }
                }
            }
            None => {
                self.start_load(now, &document, vec![(conn, message)]);
                None
            }
        }
    }

    /// Ask the store for a document, holding `queued` messages until it arrives.
    fn start_load(&mut self, now: Instant, document: &DocumentId, queued: Vec<(ConnId, Message)>) {
        let op = self.op(PendingOp::Load(document.clone()));
        let content = Content::Loading { op, queued };
        match self.docs.get_mut(document) {
            Some(doc) => doc.content = content,
            None => {
                self.docs
                    .insert(document.clone(), DocState::new(content, now));
            }
        }
        self.outputs.push_back(Output::Load {
            op,
            document: document.clone(),
        });
        self.arm_tick(now);
    }

    fn on_sync(&mut self, now: Instant, conn: ConnId, env: SyncEnvelope, is_request: bool) {
        if self.deleted.contains(&env.document_id) {
            tracing::debug!(document = %env.document_id, "ignoring a sync of a document removed here");
            return;
        }
        if self.config.role == Role::Server && self.access.is_purged(&env.document_id) {
            self.tell_purged(conn, &env.document_id);
            return;
        }
        // A document with a record needs no load to be refused: nothing is read
        // for a peer that may not see it.
        if self.config.role == Role::Server
            && self.access.record(&env.document_id).is_some()
            && self.decide(conn, &env.document_id) == Decision::Denied
        {
            let document = env.document_id.clone();
            match automerge::sync::Message::decode(&env.data) {
                Ok(message) => self.answer_as_missing(conn, &document, message),
                Err(e) => self.reject(conn, format!("document {document}: bad sync message: {e}")),
            }
            return;
        }
        let message = if is_request {
            Message::Request(env)
        } else {
            Message::Sync(env)
        };
        let Some(message) = self.ensure_loaded(now, conn, message) else {
            return;
        };
        let (Message::Request(env) | Message::Sync(env)) = message else {
            unreachable!("only sync messages are routed here");
        };
        let document = env.document_id.clone();
        let quarantined = matches!(
            self.docs.get(&document).map(|d| &d.content),
            Some(Content::Quarantined)
        );
        if quarantined {
            self.send_unavailable(conn, &document);
            return;
        }
        let sync_message = match automerge::sync::Message::decode(&env.data) {
            Ok(m) => m,
            Err(e) => {
                self.reject(conn, format!("document {document}: bad sync message: {e}"));
                return;
            }
        };
        let incoming_bytes: usize = sync_message.changes.iter().map(|c| c.len()).sum();
        let decision = self.decide(conn, &document);
        let claimant = match decision {
            Decision::Denied => {
                self.answer_as_missing(conn, &document, sync_message);
                return;
            }
            Decision::Read if incoming_bytes > 0 => {
                // automerge's read-only sync leaves the changes out and stops asking
                // for them; the peer keeps them as its own.
                self.refused(conn, &document, "write");
                None
            }
            Decision::Unclaimed if incoming_bytes > 0 => {
                match self.conns.get(&conn).and_then(|c| c.who.user()).cloned() {
                    Some(user) => {
                        let owned = self.access.owned_by(&user.name);
                        if owned >= self.config.max_documents_per_user {
                            self.refused(conn, &document, "create");
                            self.reject(
                                conn,
                                format!(
                                    "{} owns {owned} documents, the most one user may own",
                                    user.name
                                ),
                            );
                            return;
                        }
                        Some(user)
                    }
                    None => None,
                }
            }
            Decision::Read | Decision::Write | Decision::Unclaimed => None,
        };
        // The owner (or the creator to be) is charged for what the document stores.
        let payer = self
            .access
            .record(&document)
            .and_then(|r| r.owner.clone())
            .or_else(|| claimant.as_ref().map(|u| u.name.clone()));
        if let Some(payer) = payer
            && decision != Decision::Read
            && incoming_bytes > 0
        {
            let held = self.access.bytes_of(&payer);
            let limit = self.config.max_bytes_per_user;
            if held.saturating_add(incoming_bytes as u64) > limit {
                self.refused(conn, &document, "write");
                self.reject(
                    conn,
                    format!(
                        "the documents {payer} owns hold {held} bytes; {incoming_bytes} more is over the limit of {limit} bytes per user"
                    ),
                );
                return;
            }
        }
        if matches!(decision, Decision::Read | Decision::Write) {
            self.opened(conn, &document);
        }
        self.attach(&document, conn);
        let max_bytes = self.config.max_document_bytes;
        let doc = self.docs.get_mut(&document).expect("loaded above");
        if doc.stored_bytes + incoming_bytes > max_bytes {
            let actual = doc.stored_bytes + incoming_bytes;
            self.reject(
                conn,
                Error::TooLarge {
                    what: "document",
                    actual,
                    limit: max_bytes,
                }
                .to_string(),
            );
            return;
        }
        let Content::Ready(automerge) = &mut doc.content else {
            unreachable!("loaded above");
        };
        let waiting_for_store = !doc.pending_writes.is_empty();
        let Some(ps) = doc.peers.get_mut(&conn) else {
            return;
        };
        let before = automerge.get_heads();
        let their_before = ps.state.their_heads.clone();
        ps.state.set_read_only(decision == Decision::Read);
        let result = catch_unwind(AssertUnwindSafe(|| {
            automerge.receive_sync_message(&mut ps.state, sync_message)
        }));
        match result {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                self.reject(conn, format!("document {document}: {e}"));
                return;
            }
            Err(_) => {
                // automerge may be left inconsistent: drop the in-memory copy (the
                // store has everything acknowledged) and refuse the sender.
                tracing::error!(%document, "automerge panicked on a sync message");
                self.unload_after_failure(&document);
                self.reject(
                    conn,
                    Error::AutomergePanic(document.to_string()).to_string(),
                );
                return;
            }
        }
        ps.sent_at = None;
        let after = automerge.get_heads();
        // Progress: changes arrived, the peer's heads moved, or ours moved since the
        // last exchange (a local edit). Anything else is a round of a possible loop.
        let progressed =
            before != after || ps.state.their_heads != their_before || before != ps.last_our_heads;
        if progressed {
            ps.rounds_without_progress = 0;
            ps.stalled_at = None;
        }
        ps.last_our_heads = after.clone();
        if before != after || waiting_for_store {
            // Our answer waits for the store. automerge would treat a later message
            // from this peer that already names our new heads as an answer to one we
            // never sent, and stay silent; the peer must still hear that its changes
            // are stored.
            ps.owes_reply = true;
        }
        tracing::trace!(%document, conn = conn.0, ?before, ?after, is_request, "received a sync message");
        let empty = after.is_empty();
        let their_heads = (self.config.role == Role::Client
            && ps.state.their_heads != their_before)
            .then(|| ps.state.their_heads.clone())
            .flatten();
        if before != after {
            if let Some(user) = claimant
                && before.is_empty()
            {
                self.claim(&document, &user);
            } else {
                self.classify(&document);
            }
            self.document_changed(now, &document);
        }
        if let Some(heads) = their_heads {
            self.peer_confirmed(&document, conn, heads);
        }
        if self.config.role == Role::Client {
            self.check_caught_up(&document, conn);
        }
        self.persist_sync_state(&document, conn);
        if empty && is_request {
            // As the 2.x JS server does: an empty-heads sync (so the requester's sync
            // state is answered and it can later push changes directly), then
            // doc-unavailable.
            self.sync_document(now, &document);
            self.send_unavailable(conn, &document);
            return;
        }
        self.sync_document(now, &document);
    }

    fn send_unavailable(&mut self, conn: ConnId, document: &DocumentId) {
        let Some(ConnPhase::Ready { peer, .. }) = self.conns.get(&conn).map(|c| &c.phase) else {
            return;
        };
        let target_id = peer.clone();
        if let Some(ps) = self
            .docs
            .get_mut(document)
            .and_then(|d| d.peers.get_mut(&conn))
        {
            ps.told_unavailable = true;
        }
        self.send(
            conn,
            Message::DocUnavailable {
                sender_id: self.config.peer_id.clone(),
                target_id,
                document_id: document.clone(),
            },
        );
    }

    /// Persist a peer's shared heads if they moved. Ordered after the append of the
    /// changes they name, so a stored sync state never points past stored changes.
    fn persist_sync_state(&mut self, document: &DocumentId, conn: ConnId) {
        let Some(ConnPhase::Ready {
            storage_id: Some(storage_id),
            ..
        }) = self.conns.get(&conn).map(|c| &c.phase)
        else {
            return;
        };
        let storage_id = storage_id.clone();
        let Some(doc) = self.docs.get_mut(document) else {
            return;
        };
        let Some(ps) = doc.peers.get_mut(&conn) else {
            return;
        };
        if ps.state.shared_heads == ps.persisted_heads {
            return;
        }
        ps.persisted_heads = ps.state.shared_heads.clone();
        let state = ps.state.encode();
        doc.persisted.insert(storage_id.clone(), state.clone());
        let op = self.op(PendingOp::Other);
        self.outputs.push_back(Output::Commit {
            op,
            write: StoreWrite::SyncState {
                document: document.clone(),
                storage_id,
                state,
            },
        });
    }

    /// The document's content changed: store the new changes and tell the app.
    fn document_changed(&mut self, now: Instant, document: &DocumentId) {
        let Some(doc) = self.docs.get_mut(document) else {
            return;
        };
        let Content::Ready(automerge) = &doc.content else {
            return;
        };
        doc.last_used = now;
        let heads = automerge.get_heads();
        let data = automerge.save_after(&doc.saved_heads);
        doc.saved_heads = heads.clone();
        let stored_heads = heads.clone();
        doc.stored_bytes += data.len();
        let stored_bytes = doc.stored_bytes as u64;
        if self.config.role == Role::Server {
            self.access.record_size(document, stored_bytes);
        }
        let op = self.op(PendingOp::Append {
            document: document.clone(),
            heads: heads.clone(),
        });
        let doc = self.docs.get_mut(document).expect("present");
        doc.pending_writes.insert(op);
        self.outputs.push_back(Output::Commit {
            op,
            write: StoreWrite::Append {
                document: document.clone(),
                data,
                heads: stored_heads,
            },
        });
        self.event(Event::DocumentChanged {
            document: document.clone(),
            heads,
        });
        if self.config.role == Role::Server {
            self.attach_subscribers(document);
        }
    }

    /// Server: attach the connections of clients that synced this document before
    /// and subscribed with a manifest without listing it, so its changes reach them.
    fn attach_subscribers(&mut self, document: &DocumentId) {
        if self.subscribers.is_empty() {
            return;
        }
        let Some(doc) = self.docs.get(document) else {
            return;
        };
        let conns: Vec<ConnId> = doc
            .persisted
            .keys()
            .filter_map(|storage| self.subscribers.get(storage).copied())
            .filter(|conn| !doc.peers.contains_key(conn))
            .collect();
        for conn in conns {
            if !self.may_read(conn, document) {
                continue;
            }
            self.attach(document, conn);
        }
    }

    /// Generate and send sync messages for a document to every connection that takes
    /// part in it, if everything it holds is durable.
    fn sync_document(&mut self, now: Instant, document: &DocumentId) {
        let role = self.config.role;
        let max_rounds = self.config.max_rounds_without_progress;
        let our_id = self.config.peer_id.clone();
        let Some(doc) = self.docs.get_mut(document) else {
            return;
        };
        if !doc.is_durable() {
            tracing::trace!(%document, pending = doc.pending_writes.len(), "sync waits for the store");
            return;
        }
        if matches!(doc.content, Content::Evicted) && !doc.peers.is_empty() {
            // Peers are waiting on a document that left memory: bring it back, and
            // sync once it is loaded.
            self.start_load(now, document, Vec::new());
            return;
        }
        let Content::Ready(automerge) = &doc.content else {
            return;
        };
        let our_heads = automerge.get_heads();
        let empty = our_heads.is_empty();
        let mut sends = Vec::new();
        let mut stalls = Vec::new();
        let mut conns: Vec<ConnId> = doc.peers.keys().copied().collect();
        conns.sort();
        let exists = !our_heads.is_empty();
        let mut detach = Vec::new();
        for conn in conns {
            let Some(c) = self.conns.get(&conn) else {
                continue;
            };
            let ConnPhase::Ready { peer, .. } = &c.phase else {
                continue;
            };
            if role == Role::Server && !self.access.may_read(&c.who, document, exists) {
                // Every send is checked: a peer that asked before the document was
                // created by someone else, or whose grant was revoked, gets nothing.
                detach.push(conn);
                continue;
            }
            let ps = doc.peers.get_mut(&conn).expect("listed above");
            if ps.stalled_at.is_some() {
                tracing::trace!(%document, conn = conn.0, "sync held back by the round cap");
                continue;
            }
            let they_have_nothing = ps.state.their_heads.as_ref().is_none_or(Vec::is_empty);
            if role == Role::Server && empty && ps.told_unavailable && they_have_nothing {
                // Nothing to push yet, and the peer already knows it is unavailable.
                continue;
            }
            if std::mem::take(&mut ps.owes_reply) {
                ps.state.have_responded = false;
            }
            let generated = catch_unwind(AssertUnwindSafe(|| {
                automerge.generate_sync_message(&mut ps.state)
            }));
            let Ok(Some(message)) = generated else {
                tracing::trace!(%document, conn = conn.0, "nothing to send");
                continue;
            };
            ps.rounds_without_progress += 1;
            if ps.rounds_without_progress > max_rounds {
                ps.stalled_at = Some(now);
                stalls.push(conn);
                continue;
            }
            // Wait for an answer (and reset the sync if none comes) only when one is
            // due: the last message of a finished exchange is never answered.
            let in_step = ps.state.their_heads.as_ref() == Some(&our_heads)
                && message.changes.is_empty()
                && message.need.is_empty();
            ps.sent_at = if in_step { None } else { Some(now) };
            if !empty {
                ps.told_unavailable = false;
            }
            let env = SyncEnvelope {
                sender_id: our_id.clone(),
                target_id: peer.clone(),
                document_id: document.clone(),
                data: message.encode(),
            };
            let message = if role == Role::Client && empty && doc.wanted {
                Message::Request(env)
            } else {
                Message::Sync(env)
            };
            sends.push((conn, message));
        }
        for conn in detach {
            doc.peers.remove(&conn);
            if let Some(c) = self.conns.get_mut(&conn) {
                c.documents.remove(document);
            }
        }
        for (conn, message) in sends {
            self.send(conn, message);
        }
        for conn in stalls {
            tracing::warn!(%document, conn = conn.0, "sync made no progress for too many rounds; holding it back");
            self.event(Event::Stalled {
                document: document.clone(),
                conn,
            });
        }
        self.arm_tick(now);
    }

    // ----- access ------------------------------------------------------------------

    /// What the peer on `conn` may do with `document`, as far as the engine knows
    /// whether it exists. A client decides nothing: its server does.
    fn decide(&self, conn: ConnId, document: &DocumentId) -> Decision {
        let exists = self
            .docs
            .get(document)
            .is_some_and(|d| !d.saved_heads.is_empty());
        self.decide_with(conn, document, exists)
    }

    fn decide_with(&self, conn: ConnId, document: &DocumentId, exists: bool) -> Decision {
        if self.config.role == Role::Client {
            return Decision::Write;
        }
        match self.conns.get(&conn) {
            Some(c) => self.access.decide(&c.who, document, exists),
            None => Decision::Denied,
        }
    }

    fn may_read(&self, conn: ConnId, document: &DocumentId) -> bool {
        self.decide(conn, document) != Decision::Denied
    }

    /// [`may_read`](Self::may_read) for a document known to be stored.
    fn may_read_stored(&self, conn: ConnId, document: &DocumentId) -> bool {
        self.decide_with(conn, document, true) != Decision::Denied
    }

    /// Report a refusal once per connection, document and action.
    fn refused(&mut self, conn: ConnId, document: &DocumentId, action: &'static str) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if !c.refused.insert((document.clone(), action)) {
            return;
        }
        let who = c.who.label().to_owned();
        tracing::info!(conn = conn.0, %who, %document, action, "refused access");
        self.event(Event::Refused {
            conn,
            who,
            document: document.clone(),
            action,
        });
    }

    /// Report a user's first sync of a document on a connection.
    fn opened(&mut self, conn: ConnId, document: &DocumentId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let Some(user) = c.who.user() else {
            return;
        };
        let who = user.name.clone();
        if c.refused.insert((document.clone(), "open")) {
            self.event(Event::Opened {
                conn,
                who,
                document: document.clone(),
            });
        }
    }

    /// Answer a peer that may not read a document exactly as a missing document is
    /// answered: the sync message of an empty document (once), then
    /// `doc-unavailable`. Nothing the peer sent is kept.
    fn answer_as_missing(
        &mut self,
        conn: ConnId,
        document: &DocumentId,
        mut message: automerge::sync::Message,
    ) {
        let Some(ConnPhase::Ready { peer, .. }) = self.conns.get(&conn).map(|c| &c.phase) else {
            return;
        };
        let peer = peer.clone();
        let first = !self
            .conns
            .get(&conn)
            .is_some_and(|c| c.refused.contains(&(document.clone(), "read")));
        self.refused(conn, document, "read");
        if first {
            message.changes = Vec::<Vec<u8>>::new().into();
            let mut empty = Automerge::new();
            let mut state = automerge::sync::State::new();
            let reply = catch_unwind(AssertUnwindSafe(|| {
                empty
                    .receive_sync_message(&mut state, message)
                    .ok()
                    .and_then(|()| empty.generate_sync_message(&mut state))
            }));
            if let Ok(Some(reply)) = reply {
                self.send(
                    conn,
                    Message::Sync(SyncEnvelope {
                        sender_id: self.config.peer_id.clone(),
                        target_id: peer.clone(),
                        document_id: document.clone(),
                        data: reply.encode(),
                    }),
                );
            }
        }
        self.send(
            conn,
            Message::DocUnavailable {
                sender_id: self.config.peer_id.clone(),
                target_id: peer,
                document_id: document.clone(),
            },
        );
    }

    /// `user` created `document`: record them as its owner, in the same store batch
    /// as (and before) its first change.
    fn claim(&mut self, document: &DocumentId, user: &Principal) {
        let fields = self
            .document(document)
            .map(access_fields)
            .unwrap_or_default();
        let AccessChange { write } = self
            .access
            .claim(document, user, fields, self.wall_clock_ms);
        let op = self.op(PendingOp::Other);
        self.outputs.push_back(Output::Commit { op, write });
    }

    /// A document stored without a known `schema` takes the class of the first one it
    /// gets, and one without a relationship the first it names that its owner is in.
    fn classify(&mut self, document: &DocumentId) {
        if self
            .access
            .record(document)
            .is_none_or(|r| r.visibility.is_some() && r.relationship.is_some())
        {
            return;
        }
        let Some(fields) = self.document(document).map(access_fields) else {
            return;
        };
        if let Some(AccessChange { write }) = self.access.classify(
            document,
            fields.kind,
            fields.visibility,
            fields.relationship.as_deref(),
        ) {
            let op = self.op(PendingOp::Other);
            self.outputs.push_back(Output::Commit { op, write });
        }
    }

    /// Server: take back the access records stored earlier (`Store::meta` under
    /// [`ACCESS_KEY_PREFIX`](crate::access::ACCESS_KEY_PREFIX)). Returns how many
    /// did not decode (their documents stay closed).
    pub fn restore_access(
        &mut self,
        records: impl IntoIterator<Item = (String, Vec<u8>)>,
    ) -> usize {
        self.access.restore(records)
    }

    /// Server: the stored size of every document
    /// ([`Store::document_sizes`](crate::store::Store::document_sizes)), so that
    /// each owner's limit counts what was stored before a restart.
    pub fn restore_sizes(&mut self, sizes: impl IntoIterator<Item = (DocumentId, u64)>) {
        self.access.restore_sizes(sizes);
    }

    /// Server: the coaching relationships stored earlier (`Store::meta` under
    /// [`RELATIONSHIP_KEY_PREFIX`](crate::access::RELATIONSHIP_KEY_PREFIX)).
    pub fn restore_relationships(
        &mut self,
        records: impl IntoIterator<Item = (String, Vec<u8>)>,
    ) -> usize {
        self.access.restore_relationships(records)
    }

    /// Server: a relationship was added or changed (a member removed, the
    /// relationship ended): connections of users who may no longer read its
    /// documents stop receiving them at once.
    pub fn handle_relationship(&mut self, now: Instant, relationship: Relationship) {
        let id = relationship.id.clone();
        self.access.set_relationship(relationship);
        for document in self.access.documents_of(&id) {
            self.handle_access_changed(now, &document);
        }
    }

    /// Server: a departing user's documents (all but their private ones) pass to
    /// `to` (see [`AccessBook::transfer`]); the departing user's connections stop
    /// receiving them at once. The caller persists the returned writes.
    pub fn transfer_documents(
        &mut self,
        now: Instant,
        from: &str,
        to: &Principal,
    ) -> Vec<StoreWrite> {
        let moved = self.access.transfer(from, to);
        let mut writes = Vec::with_capacity(moved.len());
        for (document, write) in moved {
            self.handle_access_changed(now, &document);
            writes.push(write);
        }
        writes
    }

    /// Server: who may read and write what.
    pub fn access(&self) -> &AccessBook {
        &self.access
    }

    /// Server: `granter` gives `subject` `access` to `document` (see
    /// [`AccessBook::grant`]). Applied at once; the caller persists the returned
    /// write before telling anyone it is done.
    pub fn grant(
        &mut self,
        granter: &Principal,
        document: &DocumentId,
        subject: Subject,
        subject_role: Option<UserRole>,
        access: Access,
    ) -> Result<AccessChange> {
        self.access
            .grant(granter, document, subject, subject_role, access)
    }

    /// Server: `granter` takes back `subject`'s grant on `document`. Connections that
    /// may no longer read it stop receiving it at once; the caller persists the
    /// returned write.
    pub fn revoke(
        &mut self,
        now: Instant,
        granter: &Principal,
        document: &DocumentId,
        subject: &Subject,
    ) -> Result<AccessChange> {
        let change = self.access.revoke(granter, document, subject)?;
        self.handle_access_changed(now, document);
        Ok(change)
    }

    /// Server: purge a document for good. It leaves memory at once; every
    /// connection on it is told (`coachsync-doc-purged` to former readers that speak
    /// `purge/1`, `doc-unavailable` to the rest), and from now on it is answered
    /// that way and never stored again. Returns the writes the caller commits: the
    /// content's delete and the purge record in place of the access record (after
    /// which [`Store::vacuum`](crate::store::Store::vacuum) clears the files).
    pub fn purge(&mut self, _now: Instant, document: &DocumentId, by: &str) -> Vec<StoreWrite> {
        let mut conns: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.documents.contains(document))
            .map(|(id, _)| *id)
            .chain(
                self.docs
                    .get(document)
                    .map(|d| d.peers.keys().copied().collect::<Vec<_>>())
                    .unwrap_or_default(),
            )
            .collect();
        conns.sort();
        conns.dedup();
        self.docs.remove(document);
        let mut writes = vec![StoreWrite::Delete {
            document: document.clone(),
        }];
        writes.extend(self.access.purge(document, by, self.wall_clock_ms));
        for conn in conns {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.documents.remove(document);
            }
            self.tell_purged(conn, document);
        }
        writes
    }

    /// Server: documents purged earlier (`Store::meta(PURGED_KEY_PREFIX)`), read at
    /// start.
    pub fn restore_purged(&mut self, records: impl IntoIterator<Item = (String, Vec<u8>)>) {
        self.access.restore_purged(records);
    }

    /// Answer a message about a purged document.
    fn tell_purged(&mut self, conn: ConnId, document: &DocumentId) {
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let ConnPhase::Ready { peer, .. } = &c.phase else {
            return;
        };
        let (sender_id, target_id, document_id) =
            (self.config.peer_id.clone(), peer.clone(), document.clone());
        let message = if c.purge && self.access.could_read_purged(&c.who, document) {
            Message::DocPurged {
                sender_id,
                target_id,
                document_id,
            }
        } else {
            Message::DocUnavailable {
                sender_id,
                target_id,
                document_id,
            }
        };
        self.send(conn, message);
    }

    /// Server: access to `document` changed (here or elsewhere): detach every
    /// connection that may no longer read it, and sync the rest.
    pub fn handle_access_changed(&mut self, now: Instant, document: &DocumentId) {
        let Some(doc) = self.docs.get(document) else {
            return;
        };
        let conns: Vec<ConnId> = doc.peers.keys().copied().collect();
        for conn in conns {
            if !self.may_read(conn, document) {
                if let Some(doc) = self.docs.get_mut(document) {
                    doc.peers.remove(&conn);
                }
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.documents.remove(document);
                }
            }
        }
        self.sync_document(now, document);
    }

    fn unload_after_failure(&mut self, document: &DocumentId) {
        let Some(doc) = self.docs.get_mut(document) else {
            return;
        };
        let conns: Vec<ConnId> = doc.peers.keys().copied().collect();
        doc.peers.clear();
        doc.content = Content::Evicted;
        for conn in conns {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.documents.remove(document);
            }
        }
    }

    // ----- the manifest extension ---------------------------------------------------

    /// Server: a client lists its documents with digests of their heads. Load what is
    /// not in memory, then answer with the documents whose heads differ.
    fn on_manifest(
        &mut self,
        now: Instant,
        conn: ConnId,
        entries: Vec<(DocumentId, HeadsDigest)>,
        since: Option<u64>,
    ) {
        let storage = self.peer_storage_id(conn).cloned();
        if let Some(storage) = &storage {
            self.subscribers.insert(storage.clone(), conn);
        }
        // A manifest with a cursor leaves out what the device holds unchanged, and a
        // purge leaves nothing in the change log: tell every device of a recent
        // purge its user could read, listed or not. (A device that no longer holds
        // the document ignores the notice.)
        let mut told = HashSet::new();
        if let Some(c) = self.conns.get(&conn).filter(|c| c.purge) {
            let since = self.wall_clock_ms.saturating_sub(
                i64::try_from(self.config.purge_notice.as_millis()).unwrap_or(i64::MAX),
            );
            told.extend(self.access.purged_for(&c.who, since));
        }
        let entries: Vec<(DocumentId, HeadsDigest)> = entries
            .into_iter()
            .filter(|(document, _)| {
                if self.access.is_purged(document) {
                    told.insert(document.clone());
                    false
                } else {
                    true
                }
            })
            .collect();
        let mut told: Vec<DocumentId> = told.into_iter().collect();
        told.sort();
        for document in told {
            self.tell_purged(conn, &document);
        }
        // Every answer carries the change cursor, so the client's next manifest can
        // list only what it changed; with no `since` nothing is read from the log
        // but the cursor.
        let changed = storage.map(|peer| {
            let op = self.op(PendingOp::ChangedSince);
            self.outputs.push_back(Output::ChangedSince {
                op,
                since: since.unwrap_or(u64::MAX),
                peer,
            });
            ChangeRead::Pending(op)
        });
        let mut waiting = HashSet::new();
        for (document, _) in &entries {
            // Documents held (in memory or evicted) know their stored heads; for the
            // rest only the heads are read, not the documents.
            if !self.docs.contains_key(document) && waiting.insert(document.clone()) {
                let op = self.op(PendingOp::Heads(document.clone()));
                self.outputs.push_back(Output::LoadHeads {
                    op,
                    document: document.clone(),
                });
            }
        }
        self.manifests.push(PendingManifest {
            conn,
            entries,
            waiting,
            changed,
        });
        self.finish_manifests();
        self.arm_tick(now);
    }

    /// The result of an [`Output::LoadHeads`].
    pub fn handle_heads(
        &mut self,
        now: Instant,
        op: OpId,
        result: Result<Option<Vec<ChangeHash>>>,
    ) {
        let Some(PendingOp::Heads(document)) = self.ops.remove(&op) else {
            return;
        };
        match result {
            Ok(Some(heads)) if !heads.is_empty() => {
                // Stored and not in memory: what an evicted document is.
                self.docs.entry(document.clone()).or_insert_with(|| {
                    let mut doc = DocState::new(Content::Evicted, now);
                    doc.saved_heads = heads.clone();
                    doc.durable_heads = heads;
                    doc
                });
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(%document, error = %e, "reading stored heads failed"),
        }
        for manifest in &mut self.manifests {
            manifest.waiting.remove(&document);
        }
        self.finish_manifests();
    }

    /// The result of an [`Output::ChangedSince`].
    pub fn handle_changed_since(&mut self, _now: Instant, op: OpId, result: Result<ChangedSince>) {
        if !matches!(self.ops.remove(&op), Some(PendingOp::ChangedSince)) {
            return;
        }
        let read = match result {
            Ok(changed) => ChangeRead::Done(changed),
            Err(e) => {
                tracing::warn!(error = %e, "reading the change log failed");
                ChangeRead::Failed
            }
        };
        if let Some(manifest) = self
            .manifests
            .iter_mut()
            .find(|m| matches!(m.changed, Some(ChangeRead::Pending(p)) if p == op))
        {
            manifest.changed = Some(read);
        }
        self.finish_manifests();
    }

    /// Answer every manifest whose documents are all loaded.
    fn finish_manifests(&mut self) {
        let (waiting, ready): (Vec<_>, Vec<_>) = std::mem::take(&mut self.manifests)
            .into_iter()
            .partition(|m| {
                !m.waiting.is_empty()
                    || matches!(m.changed, Some(ChangeRead::Pending(_)))
                    || m.entries.iter().any(|(d, _)| {
                        matches!(
                            self.docs.get(d).map(|d| &d.content),
                            Some(Content::Loading { .. })
                        )
                    })
            });
        self.manifests = waiting;
        for manifest in ready {
            self.answer_manifest(manifest);
        }
    }

    fn answer_manifest(&mut self, manifest: PendingManifest) {
        let conn = manifest.conn;
        let Some(ConnPhase::Ready { peer, .. }) = self.conns.get(&conn).map(|c| &c.phase) else {
            return;
        };
        let target_id = peer.clone();
        let mut differ = Vec::new();
        let listed: HashSet<DocumentId> = manifest.entries.iter().map(|(d, _)| d.clone()).collect();
        let mut cursor = None;
        if let Some(ChangeRead::Done(changed)) = manifest.changed {
            cursor = Some(changed.cursor);
            for document in changed.documents {
                if !listed.contains(&document) && self.may_read_stored(conn, &document) {
                    self.attach(&document, conn);
                    differ.push(document);
                }
            }
        }
        for (document, digest) in manifest.entries {
            if self.config.role == Role::Server && !self.may_read(conn, &document) {
                // Named as differing, so the client does not count it as stored; its
                // sync then gets what a missing document gets.
                differ.push(document);
                continue;
            }
            self.attach(&document, conn);
            let Some(doc) = self.docs.get_mut(&document) else {
                differ.push(document);
                continue;
            };
            // Only stored heads count: the client may treat these documents as safe.
            let same = matches!(doc.content, Content::Ready(_) | Content::Evicted)
                && doc.is_durable()
                && !doc.durable_heads.is_empty()
                && heads_digest(&doc.durable_heads) == digest;
            if !same {
                differ.push(document);
                continue;
            }
            let heads = doc.durable_heads.clone();
            if let Some(ps) = doc.peers.get_mut(&conn) {
                ps.state.shared_heads = heads.clone();
                ps.state.their_heads = Some(heads.clone());
                // Not written back: the next manifest proves these heads again, and a
                // stored state that lags only costs a longer exchange if the client
                // ever syncs without one. Writing would cost a store write per
                // document on every reconnect.
                ps.persisted_heads = heads;
            }
        }
        self.send(
            conn,
            Message::ManifestReply {
                sender_id: self.config.peer_id.clone(),
                target_id,
                differ,
                cursor,
            },
        );
    }

    /// Client: the server named the documents that differ; every other one it holds
    /// at the heads the manifest gave.
    fn on_manifest_reply(
        &mut self,
        now: Instant,
        conn: ConnId,
        differ: Vec<DocumentId>,
        cursor: Option<u64>,
    ) {
        let Some(sent) = self
            .conns
            .get_mut(&conn)
            .and_then(|c| c.manifest_sent.take())
        else {
            return;
        };
        // Documents to bring in sync before the cursor is kept: those the server
        // named that we hold (one we do not hold cannot be caught up with).
        let mut differ: Vec<DocumentId> = differ
            .into_iter()
            .filter(|d| {
                self.docs
                    .get(d)
                    .is_some_and(|doc| !matches!(doc.content, Content::Quarantined))
            })
            .collect();
        differ.sort();
        differ.dedup();
        if let Some(c) = self.conns.get_mut(&conn) {
            c.catching_up = Some((differ.iter().cloned().collect(), cursor));
        }
        for document in &differ {
            // Listed or not, a named document syncs the ordinary way.
            self.attach(document, conn);
            self.sync_document(now, document);
        }
        let differ: HashSet<DocumentId> = differ.into_iter().collect();
        let mut sent: Vec<(DocumentId, Vec<ChangeHash>)> = sent.into_iter().collect();
        sent.sort();
        for (document, heads) in sent {
            if differ.contains(&document) {
                continue;
            }
            let Some(doc) = self.docs.get_mut(&document) else {
                continue;
            };
            let changed_since = doc.saved_heads != heads;
            if let Some(ps) = doc.peers.get_mut(&conn) {
                ps.state.shared_heads = heads.clone();
                ps.state.their_heads = Some(heads.clone());
            }
            self.persist_sync_state(&document, conn);
            self.peer_confirmed(&document, conn, heads);
            if changed_since {
                self.sync_document(now, &document);
            }
        }
        self.finish_catching_up(conn);
    }

    /// Client: the server holds a document at `heads`.
    fn peer_confirmed(&mut self, document: &DocumentId, conn: ConnId, heads: Vec<ChangeHash>) {
        if let Some(storage) = self.peer_storage_id(conn).cloned()
            && let Some(doc) = self.docs.get_mut(document)
        {
            let mut sorted = heads.clone();
            sorted.sort();
            doc.confirmed.insert(storage, sorted);
        }
        self.event(Event::PeerHeads {
            document: document.clone(),
            conn,
            heads,
        });
    }

    /// Client: a document the manifest's answer named may now be in sync.
    fn check_caught_up(&mut self, document: &DocumentId, conn: ConnId) {
        let in_sync = self.docs.get(document).is_some_and(|doc| {
            let ours = doc.doc().map(Automerge::get_heads);
            let theirs = doc
                .peers
                .get(&conn)
                .and_then(|ps| ps.state.their_heads.as_ref());
            matches!((ours, theirs), (Some(ours), Some(theirs)) if same_heads(&ours, theirs))
        });
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if let Some((pending, _)) = &mut c.catching_up
            && in_sync
            && pending.remove(document)
        {
            self.finish_catching_up(conn);
        }
    }

    /// Client: once every document the answer named is in sync, keep its cursor and
    /// say so.
    fn finish_catching_up(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if !c.catching_up.as_ref().is_some_and(|(p, _)| p.is_empty()) {
            return;
        }
        let Some((_, cursor)) = c.catching_up.take() else {
            return;
        };
        if let (Some(cursor), Some(storage)) = (cursor, self.peer_storage_id(conn).cloned()) {
            self.cursors.insert(storage.clone(), cursor);
            let op = self.op(PendingOp::Other);
            self.outputs.push_back(Output::Commit {
                op,
                write: StoreWrite::Meta {
                    key: format!("{CURSOR_KEY_PREFIX}{storage}"),
                    value: cursor.to_be_bytes().to_vec(),
                },
            });
        }
        self.event(Event::CaughtUp { conn });
    }

    // ----- store results -----------------------------------------------------------

    /// Server: another server that shares this store stored changes of `document`,
    /// up to `heads`. A document in memory that lacks them is reread from the store
    /// and its peers here are sent what is new; one that is not in memory will be read
    /// whole when next needed.
    pub fn handle_stored_elsewhere(
        &mut self,
        now: Instant,
        document: &DocumentId,
        heads: &[ChangeHash],
    ) {
        let Some(doc) = self.docs.get_mut(document) else {
            return;
        };
        let lacking = match &doc.content {
            Content::Ready(automerge) => heads
                .iter()
                .any(|h| automerge::ReadDoc::get_change_by_hash(automerge.as_ref(), h).is_none()),
            // A load under way may have read the store before these were stored.
            Content::Loading { .. } => true,
            Content::Evicted | Content::Quarantined => false,
        };
        if lacking {
            self.refresh(document);
            self.arm_tick(now);
        }
    }

    /// Reread a document in memory from the store: one reread at a time, and one
    /// more after it when asked again meanwhile (something was stored since it read).
    fn refresh(&mut self, document: &DocumentId) {
        let Some(doc) = self.docs.get_mut(document) else {
            return;
        };
        if doc.refreshing {
            doc.refresh_again = true;
            return;
        }
        doc.refreshing = true;
        let op = self.op(PendingOp::Refresh(document.clone()));
        self.outputs.push_back(Output::Load {
            op,
            document: document.clone(),
        });
    }

    /// Server: notices of what other servers stored may have been missed (the
    /// connection that hears them was lost): reread every document in memory.
    pub fn handle_store_resync(&mut self, now: Instant) {
        let mut loaded: Vec<DocumentId> = self
            .docs
            .iter()
            .filter(|(_, d)| matches!(d.content, Content::Ready(_)))
            .map(|(id, _)| id.clone())
            .collect();
        loaded.sort();
        for document in loaded {
            self.refresh(&document);
        }
        self.arm_tick(now);
    }

    /// A reread for [`handle_stored_elsewhere`](Self::handle_stored_elsewhere): merge
    /// what the store holds into memory, then read again if more was stored
    /// meanwhile.
    fn handle_refresh(
        &mut self,
        now: Instant,
        document: DocumentId,
        result: Result<Option<StoredDocument>>,
    ) {
        let Some(doc) = self.docs.get_mut(&document) else {
            return;
        };
        doc.refreshing = false;
        let again = std::mem::take(&mut doc.refresh_again);
        match result {
            Ok(Some(stored)) if stored.quarantined.is_none() => {
                self.merge_stored(now, &document, &stored);
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(%document, error = %e, "rereading a document changed elsewhere failed");
            }
        }
        if again {
            self.refresh(&document);
        }
    }

    /// Merge a stored copy into a document in memory. Everything merged is durable
    /// already, so nothing is appended; peers here get it at once.
    fn merge_stored(&mut self, now: Instant, document: &DocumentId, stored: &StoredDocument) {
        let Some(doc) = self.docs.get_mut(document) else {
            return;
        };
        let Content::Ready(automerge) = &mut doc.content else {
            return;
        };
        let before = automerge.get_heads();
        let merged = catch_unwind(AssertUnwindSafe(|| {
            automerge.load_incremental(&stored.data)
        }));
        if !matches!(merged, Ok(Ok(_))) {
            tracing::error!(%document, "a document changed elsewhere does not load; keeping what is in memory");
            return;
        }
        let heads = automerge.get_heads();
        if heads == before {
            return;
        }
        doc.stored_bytes = stored.data.len();
        doc.incremental_chunks = stored.incremental_chunks;
        // Every change in memory was handed to the store by this server or read back
        // from it.
        doc.saved_heads = heads.clone();
        self.after_write(document);
        self.event(Event::DocumentChanged {
            document: document.clone(),
            heads,
        });
        self.attach_subscribers(document);
        self.sync_document(now, document);
    }

    /// The result of an [`Output::Load`].
    pub fn handle_load(&mut self, now: Instant, op: OpId, result: Result<Option<StoredDocument>>) {
        let document = match self.ops.remove(&op) {
            Some(PendingOp::Load(document)) => document,
            Some(PendingOp::Refresh(document)) => {
                self.handle_refresh(now, document, result);
                return;
            }
            Some(other) => {
                self.ops.insert(op, other);
                return;
            }
            None => return,
        };
        let Some(doc) = self.docs.get_mut(&document) else {
            return;
        };
        let queued = match std::mem::replace(&mut doc.content, Content::Evicted) {
            Content::Loading {
                op: current,
                queued,
            } if current == op => queued,
            other => {
                doc.content = other;
                return;
            }
        };
        let stored = match result {
            Ok(stored) => stored,
            Err(e) => {
                tracing::error!(%document, error = %e, "loading a document failed");
                if doc.peers.is_empty() {
                    self.docs.remove(&document);
                }
                self.event(Event::StoreFailed {
                    document: document.clone(),
                    error: e.to_string(),
                });
                for conn in queued.iter().map(|(c, _)| *c).collect::<HashSet<_>>() {
                    self.reject(
                        conn,
                        format!("the server could not read document {document}"),
                    );
                }
                return;
            }
        };
        match stored {
            None => {
                doc.content = Content::Ready(Box::new(Automerge::new()));
            }
            Some(stored) => {
                doc.stored_bytes = stored.data.len();
                doc.incremental_chunks = stored.incremental_chunks;
                doc.persisted = stored.sync_states.into_iter().collect();
                // Peers attached before the document was loaded started from nothing;
                // give them the sync state persisted for their storage.
                for (conn, ps) in &mut doc.peers {
                    let fresh = ps.state.shared_heads.is_empty() && ps.state.their_heads.is_none();
                    let storage = match self.conns.get(conn).map(|c| &c.phase) {
                        Some(ConnPhase::Ready {
                            storage_id: Some(storage),
                            ..
                        }) => Some(storage),
                        _ => None,
                    };
                    if let Some(saved) = storage.and_then(|s| doc.persisted.get(s))
                        && fresh
                    {
                        *ps = PeerSync::new(Some(saved));
                    }
                }
                if let Some(reason) = stored.quarantined {
                    tracing::warn!(%document, %reason, "document is quarantined");
                    doc.content = Content::Quarantined;
                } else {
                    match crate::store::load_document(&stored.data) {
                        Ok(automerge) => {
                            let heads = automerge.get_heads();
                            doc.saved_heads = heads.clone();
                            doc.durable_heads = heads;
                            doc.content = Content::Ready(Box::new(automerge));
                        }
                        Err(reason) => {
                            tracing::error!(%document, %reason, "stored document does not load; quarantining it");
                            doc.content = Content::Quarantined;
                            let op = self.op(PendingOp::Other);
                            self.outputs.push_back(Output::Commit {
                                op,
                                write: StoreWrite::Quarantine {
                                    document: document.clone(),
                                    reason: reason.clone(),
                                },
                            });
                            self.event(Event::Quarantined {
                                document: document.clone(),
                                reason,
                            });
                        }
                    }
                }
            }
        }
        // Peers that stayed attached while the content was evicted keep their sync
        // states: the content is what it was when it left.
        for (conn, message) in queued {
            self.handle_message(now, conn, message);
        }
        if self.config.role == Role::Client {
            self.after_client_load(now, &document);
        } else {
            self.sync_document(now, &document);
            self.finish_manifests();
        }
    }

    /// The result of an [`Output::Commit`].
    pub fn handle_commit(&mut self, now: Instant, op: OpId, result: Result<()>) {
        let Some(pending) = self.ops.remove(&op) else {
            return;
        };
        match (pending, result) {
            (PendingOp::Append { document, heads }, Ok(())) => {
                let compact_after = self.config.compact_after_chunks;
                let Some(doc) = self.docs.get_mut(&document) else {
                    return;
                };
                doc.pending_writes.remove(&op);
                doc.incremental_chunks += 1;
                // The last append hands over everything in memory, unless changes
                // another server stored were merged in meanwhile (those are stored).
                debug_assert!(
                    doc.saved_heads == heads
                        || !doc.pending_writes.is_empty()
                        || doc.doc().is_some_and(|d| heads
                            .iter()
                            .all(|h| automerge::ReadDoc::get_change_by_hash(d, h).is_some()))
                );
                self.after_write(&document);
                let Some(doc) = self.docs.get_mut(&document) else {
                    return;
                };
                if doc.compacting.is_none() && doc.incremental_chunks >= compact_after {
                    self.compact(&document);
                }
                self.sync_document(now, &document);
            }
            (PendingOp::Compact(document), Ok(())) => {
                if let Some(doc) = self.docs.get_mut(&document)
                    && let Some((_, replaced)) = doc.compacting.take()
                {
                    doc.pending_writes.remove(&op);
                    doc.incremental_chunks = doc.incremental_chunks.saturating_sub(replaced);
                    self.after_write(&document);
                    self.sync_document(now, &document);
                }
            }
            (PendingOp::Append { document, .. } | PendingOp::Compact(document), Err(e)) => {
                // What is in memory is not stored and was never announced. Close every
                // connection on the document: their peers still hold the changes and
                // will send them again after reconnecting.
                tracing::error!(%document, error = %e, "storing a document failed");
                self.event(Event::StoreFailed {
                    document: document.clone(),
                    error: e.to_string(),
                });
                let conns: Vec<ConnId> = self
                    .docs
                    .get(&document)
                    .map(|d| d.peers.keys().copied().collect())
                    .unwrap_or_default();
                for conn in conns {
                    self.reject(
                        conn,
                        format!("the server could not store document {document}"),
                    );
                }
                if let Some(doc) = self.docs.get_mut(&document) {
                    doc.pending_writes.clear();
                    doc.compacting = None;
                    doc.content = Content::Evicted;
                    doc.saved_heads = doc.durable_heads.clone();
                }
            }
            (PendingOp::Other, Err(e)) => {
                tracing::warn!(error = %e, "a store write failed");
            }
            (
                PendingOp::Other
                | PendingOp::Load(_)
                | PendingOp::Refresh(_)
                | PendingOp::Heads(_)
                | PendingOp::ChangedSince,
                _,
            ) => {}
        }
    }

    /// A write of the document finished: once none is left, everything handed to
    /// the store is durable, whichever write finished last.
    fn after_write(&mut self, document: &DocumentId) {
        let Some(doc) = self.docs.get_mut(document) else {
            return;
        };
        if !doc.pending_writes.is_empty() || doc.durable_heads == doc.saved_heads {
            return;
        }
        doc.durable_heads = doc.saved_heads.clone();
        let heads = doc.durable_heads.clone();
        self.event(Event::DocumentStored {
            document: document.clone(),
            heads,
        });
    }

    fn compact(&mut self, document: &DocumentId) {
        let Some(doc) = self.docs.get(document) else {
            return;
        };
        let Content::Ready(automerge) = &doc.content else {
            return;
        };
        let snapshot = automerge.save();
        let heads = automerge.get_heads();
        let replaced = doc.incremental_chunks;
        let size = snapshot.len();
        let op = self.op(PendingOp::Compact(document.clone()));
        let doc = self.docs.get_mut(document).expect("present");
        doc.compacting = Some((op, replaced));
        doc.pending_writes.insert(op);
        doc.stored_bytes = size;
        if self.config.role == Role::Server {
            self.access.record_size(document, size as u64);
        }
        self.outputs.push_back(Output::Commit {
            op,
            write: StoreWrite::Compact {
                document: document.clone(),
                snapshot,
                heads,
            },
        });
    }

    // ----- timers ------------------------------------------------------------------

    /// Run what is due: reset stalled syncs, close connections that never joined,
    /// evict idle documents.
    pub fn handle_timeout(&mut self, now: Instant) {
        match self.next_tick {
            Some(t) if t <= now => {}
            _ => return,
        }
        self.next_tick = None;
        let mut keep_ticking = false;

        let join_timeout = self.config.join_timeout;
        let unjoined: Vec<ConnId> = self
            .conns
            .iter()
            .filter_map(|(id, c)| match c.phase {
                ConnPhase::Handshake { since } => {
                    keep_ticking = true;
                    (now.duration_since(since) >= join_timeout).then_some(*id)
                }
                _ => None,
            })
            .collect();
        for conn in unjoined {
            self.reject(conn, "no join within the handshake timeout".into());
        }

        let stall = self.config.stall_timeout;
        let evict_after = self.config.evict_after;
        let mut resync = Vec::new();
        let mut evict = Vec::new();
        let mut forget = Vec::new();
        for (id, doc) in &mut self.docs {
            for (conn, ps) in &mut doc.peers {
                let since = ps.stalled_at.or(ps.sent_at);
                if let Some(since) = since {
                    keep_ticking = true;
                    if now.duration_since(since) >= stall {
                        ps.reset();
                        resync.push((id.clone(), *conn));
                    }
                }
            }
            match doc.content {
                Content::Ready(_) => {
                    keep_ticking = true;
                    if doc.is_durable() && now.duration_since(doc.last_used) >= evict_after {
                        evict.push(id.clone());
                    }
                }
                Content::Loading { .. } => keep_ticking = true,
                Content::Evicted | Content::Quarantined => {
                    if doc.peers.is_empty() && !doc.wanted && doc.pending_writes.is_empty() {
                        forget.push(id.clone());
                    }
                }
            }
        }
        for (document, conn) in resync {
            self.event(Event::Stalled {
                document: document.clone(),
                conn,
            });
            self.sync_document(now, &document);
        }
        for document in evict {
            if let Some(doc) = self.docs.get_mut(&document) {
                doc.content = Content::Evicted;
                if doc.peers.is_empty() && !doc.wanted {
                    forget.push(document.clone());
                }
            }
            tracing::debug!(%document, "evicted an idle document from memory");
        }
        for document in forget {
            self.docs.remove(&document);
        }
        if keep_ticking {
            self.next_tick = Some(now + self.config.tick);
        }
    }

    // ----- commands ----------------------------------------------------------------

    /// Create a new, empty document with an ID from the given random bytes.
    pub fn create_document(&mut self, now: Instant, random: [u8; 16]) -> DocumentId {
        let document = DocumentId::from_random(random);
        let mut state = DocState::new(Content::Ready(Box::new(Automerge::new())), now);
        // A client syncs what it creates with its server, even after the document
        // has left memory.
        state.wanted = self.config.role == Role::Client;
        self.docs.insert(document.clone(), state);
        self.arm_tick(now);
        document
    }

    /// Change a document in memory. The change is stored (see [`Output::Commit`])
    /// and then synced with every connected peer taking part in the document.
    pub fn change<R>(
        &mut self,
        now: Instant,
        document: &DocumentId,
        f: impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<R>,
    ) -> Result<R> {
        self.change_at(now, None, document, f)
    }

    /// [`change`](Self::change), recording the wall-clock time of the change
    /// (milliseconds since 1970) in it, as JavaScript peers do; apps show it as the
    /// time a document was last edited.
    pub fn change_at<R>(
        &mut self,
        now: Instant,
        unix_ms: Option<i64>,
        document: &DocumentId,
        f: impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> Result<R>,
    ) -> Result<R> {
        let doc = self
            .docs
            .get_mut(document)
            .ok_or_else(|| Error::Protocol(format!("document {document} is not loaded")))?;
        let Content::Ready(automerge) = &mut doc.content else {
            return Err(Error::Protocol(format!(
                "document {document} is not loaded"
            )));
        };
        use automerge::transaction::Transactable as _;
        let automerge_is_new = automerge.get_heads().is_empty();
        let mut tx = automerge.transaction();
        let out = match f(&mut tx) {
            Ok(out) => out,
            Err(e) => {
                tx.rollback();
                return Err(e);
            }
        };
        match (tx.pending_ops(), automerge_is_new) {
            (0, true) => {
                // A document that exists has at least one change, as automerge-repo's
                // `create` makes: an empty one would be unavailable to every peer.
                tx.rollback();
                automerge.empty_commit(commit_options(unix_ms));
            }
            (0, false) => {
                // Nothing changed: nothing to store or send.
                tx.rollback();
                return Ok(out);
            }
            _ => {
                tx.commit_with(commit_options(unix_ms));
            }
        }
        self.document_changed(now, document);
        if self.config.role == Role::Client {
            let conns: Vec<ConnId> = self.ready_conns();
            for conn in conns {
                self.attach(document, conn);
            }
        }
        self.sync_document(now, document);
        Ok(out)
    }

    fn ready_conns(&self) -> Vec<ConnId> {
        let mut conns: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| matches!(c.phase, ConnPhase::Ready { .. }))
            .map(|(id, _)| *id)
            .collect();
        conns.sort();
        conns
    }

    /// Client: take over documents already in the local store (from
    /// [`Store::stored_heads`](crate::store::Store::stored_heads)) without loading
    /// them, so that the next connection syncs every one whose heads the server lacks:
    /// the outbox survives a restart.
    pub fn register_stored(
        &mut self,
        now: Instant,
        documents: impl IntoIterator<Item = (DocumentId, Vec<ChangeHash>)>,
    ) {
        for (document, heads) in documents {
            if heads.is_empty() {
                continue;
            }
            self.docs.entry(document).or_insert_with(|| {
                let mut doc = DocState::new(Content::Evicted, now);
                doc.saved_heads = heads.clone();
                doc.durable_heads = heads;
                doc.wanted = true;
                doc
            });
        }
    }

    /// Client: the manifest cursor kept for a server storage (read back from the
    /// store's meta records under [`CURSOR_KEY_PREFIX`]).
    pub fn restore_cursor(&mut self, server: StorageId, cursor: u64) {
        self.cursors.insert(server, cursor);
    }

    /// Client: the heads a server storage last confirmed for documents registered
    /// with [`register_stored`](Self::register_stored), as the app recorded them;
    /// with a cursor, a reconnect lists only documents whose heads moved since.
    pub fn register_confirmed(
        &mut self,
        server: &StorageId,
        documents: impl IntoIterator<Item = (DocumentId, Vec<ChangeHash>)>,
    ) {
        for (document, mut heads) in documents {
            if let Some(doc) = self.docs.get_mut(&document) {
                heads.sort();
                doc.confirmed.insert(server.clone(), heads);
            }
        }
    }

    /// Client: remove a document from this client: from memory and (through an
    /// [`Output::Commit`] of [`StoreWrite::Delete`]) from the store. Later syncs of it
    /// from the server are ignored until it is opened again with
    /// [`find`](Self::find). The server and other peers keep their copies.
    pub fn forget(&mut self, document: &DocumentId) {
        let mut conns: Vec<ConnId> = self.conns.keys().copied().collect();
        conns.sort();
        self.docs.remove(document);
        for conn in conns {
            if let Some(c) = self.conns.get_mut(&conn) {
                c.documents.remove(document);
                if let Some((pending, _)) = &mut c.catching_up
                    && pending.remove(document)
                {
                    self.finish_catching_up(conn);
                }
            }
        }
        self.deleted.insert(document.clone());
        let op = self.op(PendingOp::Other);
        self.outputs.push_back(Output::Commit {
            op,
            write: StoreWrite::Delete {
                document: document.clone(),
            },
        });
    }

    /// Client: whether a document was removed with [`forget`](Self::forget) (and
    /// not opened again since).
    pub fn is_forgotten(&self, document: &DocumentId) -> bool {
        self.deleted.contains(document)
    }

    /// Client: documents removed earlier (as the app recorded them), so that the
    /// server's pushes do not bring them back.
    pub fn register_deleted(&mut self, documents: impl IntoIterator<Item = DocumentId>) {
        self.deleted.extend(documents);
    }

    /// Client: open a document, from the local store or else from the server.
    /// Reports [`Event::DocumentChanged`] when content arrives and
    /// [`Event::DocumentUnavailable`] when the server has none.
    pub fn find(&mut self, now: Instant, document: &DocumentId) {
        self.deleted.remove(document);
        let Some(doc) = self.docs.get_mut(document) else {
            self.start_load(now, document, Vec::new());
            self.docs.get_mut(document).expect("just added").wanted = true;
            return;
        };
        doc.wanted = true;
        doc.last_used = now;
        if doc.saved_heads.is_empty() {
            // Asked again for a document we still lack (the server said it was
            // unavailable, and may since have been given it or granted it to us):
            // start the exchange afresh, or automerge thinks both sides are in step
            // at nothing and sends no request.
            for ps in doc.peers.values_mut() {
                ps.reset();
            }
        }
        match doc.content {
            Content::Ready(_) => self.after_client_load(now, document),
            Content::Loading { .. } => {}
            Content::Evicted => self.start_load(now, document, Vec::new()),
            Content::Quarantined => self.event(Event::DocumentUnavailable {
                document: document.clone(),
            }),
        }
    }

    fn after_client_load(&mut self, now: Instant, document: &DocumentId) {
        let Some(doc) = self.docs.get(document) else {
            return;
        };
        if !doc.wanted && doc.saved_heads.is_empty() {
            return;
        }
        for conn in self.ready_conns() {
            self.attach(document, conn);
        }
        self.sync_document(now, document);
    }

    /// Client: send an ephemeral message about a document to the server.
    pub fn broadcast(
        &mut self,
        document: &DocumentId,
        session_id: &str,
        count: u64,
        data: Vec<u8>,
    ) {
        for conn in self.ready_conns() {
            let Some(ConnPhase::Ready { peer, .. }) = self.conns.get(&conn).map(|c| &c.phase)
            else {
                continue;
            };
            let target_id = peer.clone();
            self.send(
                conn,
                Message::Ephemeral {
                    sender_id: self.config.peer_id.clone(),
                    target_id,
                    count,
                    session_id: session_id.to_owned(),
                    document_id: document.clone(),
                    data: data.clone(),
                },
            );
        }
    }
}

fn access_fields(doc: &Automerge) -> Audience {
    let kind = root_string(doc, "schema");
    let visibility = kind
        .as_deref()
        .and_then(crate::domain::kind)
        .map(|k| k.visibility);
    Audience {
        kind,
        visibility,
        relationship: root_string(doc, "relationship"),
        group: root_string(doc, "group"),
    }
}

/// A root field that is a string (scalar or text), as automerge-repo clients write
/// either.
fn root_string(doc: &Automerge, key: &str) -> Option<String> {
    use automerge::ReadDoc as _;
    match doc.get(automerge::ROOT, key) {
        Ok(Some((automerge::Value::Scalar(s), _))) => match s.as_ref() {
            automerge::ScalarValue::Str(s) => Some(s.to_string()),
            _ => None,
        },
        Ok(Some((automerge::Value::Object(automerge::ObjType::Text), id))) => doc.text(&id).ok(),
        _ => None,
    }
}

fn commit_options(unix_ms: Option<i64>) -> automerge::transaction::CommitOptions {
    let options = automerge::transaction::CommitOptions::default();
    match unix_ms {
        Some(ms) => options.with_time(ms),
        None => options,
    }
}

/// The same set of heads, whatever the order.
fn same_heads(a: &[ChangeHash], b: &[ChangeHash]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if a == b {
        return true;
    }
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort();
    b.sort();
    a == b
}
