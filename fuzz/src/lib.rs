//! What the coachsync fuzz targets share: the engine target's input format and the
//! harness that drives a server-role [`Engine`] with it.
//!
//! The seed generator (`examples/seeds.rs`) uses the same harness, so the committed
//! seeds are real conversations with the engine.
//!
//! # Input format of the `engine` target
//!
//! A sequence of records, each `control: u8, len: u16 (little endian), frame: [u8; len]`
//! (a short last record takes what is left). The control byte:
//!
//! | bits | meaning |
//! | --- | --- |
//! | 0-1 | connection slot 0, 1 or 2; 3 delivers no frame (the other bits still act) |
//! | 2 | hold the store: leave its operations queued until a later record |
//! | 3 | every store operation answered in this record fails |
//! | 4-5 | let time pass first: none, one tick, past the stall timeout, past eviction |
//! | 6 | drop the slot's connection first and open a new one |
//! | 7 | a new connection sends no automatic `join`: the frame is its first message |
//!
//! Every slot starts connected and joined, each as a different kind of peer (the
//! first two as one user's devices, the third as another user: see [`slot_who`]),
//! so the fuzzer
//! starts out where sync messages and access decisions are handled rather than in
//! the handshake.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use automerge::ReadDoc;

use coachsync_core::access::{Principal, UserRole, Who};
use coachsync_core::protocol::{MANIFEST_EXTENSION, PROTOCOL_VERSION};
use coachsync_core::store::{MemoryStore, Store, StoreWrite};
use coachsync_core::sync::{ConnId, Engine, EngineConfig, OpId, Output, Role};
use coachsync_core::{DocumentId, Error, Message, PeerId, PeerMetadata, StorageId};

/// Connection slots a fuzz input can address.
pub const SLOTS: usize = 3;

/// The server's peer ID.
pub const SERVER_PEER: &str = "server";

/// Control bits of a record (see the [crate docs](crate)).
pub mod control {
    /// Deliver no frame: only the other bits act.
    pub const NO_FRAME: u8 = 0b0000_0011;
    /// Leave store operations queued.
    pub const HOLD_STORE: u8 = 0b0000_0100;
    /// Store operations answered in this record fail.
    pub const FAIL_STORE: u8 = 0b0000_1000;
    /// Let one tick pass first.
    pub const ADVANCE_TICK: u8 = 0b0001_0000;
    /// Let the stall timeout pass first.
    pub const ADVANCE_STALL: u8 = 0b0010_0000;
    /// Let the eviction time pass first.
    pub const ADVANCE_EVICT: u8 = 0b0011_0000;
    /// Drop the slot's connection and open a new one first.
    pub const RECONNECT: u8 = 0b0100_0000;
    /// A new connection sends no automatic `join`.
    pub const NO_JOIN: u8 = 0b1000_0000;
}

/// One record of an `engine` input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// The control byte.
    pub control: u8,
    /// The frame (ignored with [`control::NO_FRAME`]).
    pub frame: &'a [u8],
}

impl<'a> Record<'a> {
    /// The slot the record addresses, `None` for no frame.
    pub fn slot(&self) -> Option<usize> {
        match self.control & 0b11 {
            3 => None,
            slot => Some(slot as usize),
        }
    }

    fn has(&self, bit: u8) -> bool {
        self.control & bit != 0
    }

    /// Split an input into records.
    pub fn parse(mut data: &'a [u8]) -> impl Iterator<Item = Record<'a>> {
        std::iter::from_fn(move || {
            let (&control, rest) = data.split_first()?;
            let (len, rest) = match rest {
                [lo, hi, rest @ ..] => (usize::from(u16::from_le_bytes([*lo, *hi])), rest),
                _ => (0, &[][..]),
            };
            let (frame, rest) = rest.split_at(len.min(rest.len()));
            data = rest;
            Some(Record { control, frame })
        })
    }

    /// The record's bytes, as [`parse`](Self::parse) reads them.
    ///
    /// # Panics
    ///
    /// If the frame is longer than a record can hold (64 KiB).
    pub fn encode(&self) -> Vec<u8> {
        let len = u16::try_from(self.frame.len()).expect("a record's frame is under 64 KiB");
        let mut out = Vec::with_capacity(3 + self.frame.len());
        out.push(self.control);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(self.frame);
        out
    }
}

/// The peer ID of a slot.
pub fn slot_peer(slot: usize) -> PeerId {
    PeerId::new(&format!("peer-{slot}")).expect("a valid peer id")
}

/// Who a slot's connections are signed in as: slots 0 and 1 are one coach's two
/// devices (so documents sync between them), slot 2 another user, who is refused
/// the coach's documents (and the coach theirs).
pub fn slot_who(slot: usize) -> Who {
    let (name, role) = match slot {
        0 | 1 => ("coach", UserRole::Coach),
        _ => ("client", UserRole::Client),
    };
    Who::User(std::sync::Arc::new(Principal {
        name: name.to_owned(),
        role,
        org: "district".to_owned(),
        groups: Default::default(),
    }))
}

/// The `join` a slot's connection opens with. The slots are the three kinds of
/// client: with storage and the manifest extension (a device), with storage only
/// (automerge-repo in a browser), and ephemeral (no storage, nothing persisted).
pub fn join_frame(slot: usize) -> Vec<u8> {
    let peer_metadata = match slot {
        0 => PeerMetadata {
            storage_id: Some(StorageId::new("storage-0").expect("valid")),
            is_ephemeral: false,
            extensions: vec![MANIFEST_EXTENSION.to_owned()],
        },
        1 => PeerMetadata {
            storage_id: Some(StorageId::new("storage-1").expect("valid")),
            is_ephemeral: false,
            extensions: Vec::new(),
        },
        _ => PeerMetadata {
            storage_id: None,
            is_ephemeral: true,
            extensions: Vec::new(),
        },
    };
    Message::Join {
        sender_id: slot_peer(slot),
        supported_protocol_versions: vec![PROTOCOL_VERSION.to_owned()],
        peer_metadata: Some(peer_metadata),
    }
    .encode()
}

/// A store operation the engine asked for, waiting for its answer.
enum StoreOp {
    Load(OpId, DocumentId),
    Heads(OpId, DocumentId),
    ChangedSince(OpId, u64, StorageId),
    Commit(OpId, StoreWrite),
}

/// Rounds of "answer the store, collect the outputs" after which an engine that is
/// still busy is taken to loop: a server given no input has a bounded amount to do.
const MAX_SETTLE_ROUNDS: usize = 10_000;

/// A server engine, its store, and up to [`SLOTS`] client connections, driven in one
/// thread with no real time or I/O. Every output is checked as it comes out.
pub struct Harness {
    engine: Engine,
    store: MemoryStore,
    queue: VecDeque<StoreOp>,
    now: Instant,
    /// The connection each slot currently has; `None` once it was closed.
    slots: [Option<ConnId>; SLOTS],
    /// Connections open from the engine's point of view: connected and neither
    /// closed by the engine nor disconnected by us.
    live: HashSet<ConnId>,
    slot_of: HashMap<ConnId, usize>,
    next_conn: u64,
    /// Messages sent to each slot, kept only when recording (for the seed generator).
    recorded: Option<Vec<(usize, Message)>>,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}

impl Harness {
    /// A server engine with every slot connected and joined.
    pub fn new() -> Self {
        let storage = StorageId::new("server-storage").expect("valid");
        let mut config = EngineConfig::new(
            Role::Server,
            PeerId::new(SERVER_PEER).expect("valid"),
            Some(storage.clone()),
        );
        // Smaller limits than production, so that short inputs reach compaction, the
        // round cap and the document size limit.
        config.compact_after_chunks = 4;
        config.max_rounds_without_progress = 4;
        config.max_document_bytes = 64 * 1024;
        let mut harness = Self {
            engine: Engine::new(config),
            store: MemoryStore::new(storage),
            queue: VecDeque::new(),
            now: Instant::now(),
            slots: [None; SLOTS],
            live: HashSet::new(),
            slot_of: HashMap::new(),
            next_conn: 1,
            recorded: None,
        };
        for slot in 0..SLOTS {
            harness.connect(slot, true);
        }
        harness.pump(false, false);
        harness
    }

    /// Keep every message sent from now on, for [`take_sent`](Self::take_sent).
    pub fn record(&mut self) {
        self.recorded = Some(Vec::new());
    }

    /// The messages sent since the last call, with the slot they went to.
    pub fn take_sent(&mut self) -> Vec<(usize, Message)> {
        self.recorded
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Run a whole fuzz input, then let every pending store operation and timer run.
    pub fn run(data: &[u8]) {
        let mut harness = Self::new();
        for record in Record::parse(data) {
            harness.step(record);
        }
        harness.finish();
    }

    /// Carry out one record.
    pub fn step(&mut self, record: Record<'_>) {
        let hold = record.has(control::HOLD_STORE);
        let fail = record.has(control::FAIL_STORE);
        let config = self.engine.config();
        let advance = match record.control & control::ADVANCE_EVICT {
            0 => None,
            control::ADVANCE_TICK => Some(config.tick),
            control::ADVANCE_STALL => Some(config.stall_timeout),
            _ => Some(config.evict_after),
        };
        if let Some(by) = advance {
            self.advance(by, fail, hold);
        }
        if let Some(slot) = record.slot() {
            if record.has(control::RECONNECT) {
                self.disconnect(slot);
            }
            let conn = match self.slots[slot] {
                Some(conn) => conn,
                None => self.connect(slot, !record.has(control::NO_JOIN)),
            };
            self.engine.handle_frame(self.now, conn, record.frame);
        }
        self.pump(fail, hold);
    }

    /// Answer everything still queued, successfully, and run the timers: past the
    /// stall timeout (resets and resends) and past eviction (documents leave memory).
    pub fn finish(&mut self) {
        self.pump(false, false);
        let config = self.engine.config();
        for by in [config.stall_timeout, config.evict_after] {
            self.advance(by, false, false);
        }
    }

    /// Let a time pass (a millisecond more than `by`, so a timer of exactly `by` is
    /// due) and run the engine's timers.
    fn advance(&mut self, by: Duration, fail: bool, hold: bool) {
        self.now += by + Duration::from_millis(1);
        self.engine.handle_timeout(self.now);
        self.pump(fail, hold);
    }

    /// Open a new connection for a slot, with its `join` unless told not to.
    fn connect(&mut self, slot: usize, join: bool) -> ConnId {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.slots[slot] = Some(conn);
        self.live.insert(conn);
        self.slot_of.insert(conn, slot);
        self.engine
            .handle_connect_as(self.now, conn, slot_who(slot));
        if join {
            self.engine.handle_frame(self.now, conn, &join_frame(slot));
        }
        conn
    }

    /// The transport of a slot's connection went away.
    fn disconnect(&mut self, slot: usize) {
        if let Some(conn) = self.slots[slot].take() {
            self.live.remove(&conn);
            self.engine.handle_disconnect(self.now, conn);
        }
    }

    /// Collect outputs and, unless `hold`, answer the store until the engine has
    /// nothing left to do; store answers fail if `fail` is set.
    fn pump(&mut self, fail: bool, hold: bool) {
        for _ in 0..MAX_SETTLE_ROUNDS {
            self.collect();
            if hold || self.queue.is_empty() {
                return;
            }
            self.answer_store(fail);
        }
        panic!("the engine kept asking for store operations after {MAX_SETTLE_ROUNDS} rounds");
    }

    /// Take every output, checking each: what is sent goes only to open connections,
    /// encodes to a frame that decodes back to it, and names no heads the store does
    /// not hold. Store operations are queued; closes are carried out.
    fn collect(&mut self) {
        while let Some(output) = self.engine.poll_output() {
            match output {
                Output::Send { conn, message } => {
                    assert!(
                        self.live.contains(&conn),
                        "the engine sent {} to connection {} which is not connected: {message:?}",
                        message.kind(),
                        conn.0,
                    );
                    let frame = message.encode();
                    let decoded = Message::decode(&frame)
                        .unwrap_or_else(|e| panic!("a sent {message:?} does not decode: {e}"));
                    assert_eq!(decoded, message, "a sent message changes through the codec");
                    self.check_durable(&message);
                    if let Some(recorded) = &mut self.recorded {
                        recorded.push((self.slot_of[&conn], message));
                    }
                }
                Output::Close { conn, .. } => {
                    // As the server's driver does: close the socket, whose task then
                    // reports the disconnect.
                    if self.live.remove(&conn) {
                        let slot = self.slot_of[&conn];
                        self.slots[slot] = None;
                        self.engine.handle_disconnect(self.now, conn);
                    }
                }
                Output::Load { op, document } => self.queue.push_back(StoreOp::Load(op, document)),
                Output::LoadHeads { op, document } => {
                    self.queue.push_back(StoreOp::Heads(op, document))
                }
                Output::ChangedSince { op, since, peer } => {
                    self.queue.push_back(StoreOp::ChangedSince(op, since, peer))
                }
                Output::Commit { op, write } => self.queue.push_back(StoreOp::Commit(op, write)),
                Output::Event(_) => {}
            }
        }
    }

    /// The durability rule: a server announces only heads that its store holds.
    fn check_durable(&self, message: &Message) {
        let Message::Sync(env) = message else {
            return;
        };
        let sync = automerge::sync::Message::decode(&env.data)
            .unwrap_or_else(|e| panic!("the engine sent a sync message that does not decode: {e}"));
        if sync.heads.is_empty() {
            return;
        }
        let stored = self
            .store
            .load(&env.document_id)
            .expect("the memory store reads")
            .unwrap_or_else(|| panic!("announced heads of {} before storing it", env.document_id));
        let doc = automerge::Automerge::load(&stored.data).expect("a stored document loads");
        for head in &sync.heads {
            assert!(
                doc.get_change_by_hash(head).is_some(),
                "announced head {head} of {} before storing it",
                env.document_id
            );
        }
    }

    /// Answer every queued store operation in order, as a driver with a store worker
    /// does: consecutive commits are one batch, which succeeds or fails whole.
    fn answer_store(&mut self, fail: bool) {
        let failed = || Error::Storage("injected store failure".into());
        while let Some(op) = self.queue.pop_front() {
            match op {
                StoreOp::Load(op, document) => {
                    let result = if fail {
                        Err(failed())
                    } else {
                        self.store.load(&document)
                    };
                    self.engine.handle_load(self.now, op, result);
                }
                StoreOp::Heads(op, document) => {
                    let result = if fail {
                        Err(failed())
                    } else {
                        self.store.heads(&document)
                    };
                    self.engine.handle_heads(self.now, op, result);
                }
                StoreOp::ChangedSince(op, since, peer) => {
                    let result = if fail {
                        Err(failed())
                    } else {
                        self.store.changed_since(since, &peer)
                    };
                    self.engine.handle_changed_since(self.now, op, result);
                }
                StoreOp::Commit(op, write) => {
                    let mut batch = vec![(op, write)];
                    while let Some(StoreOp::Commit(..)) = self.queue.front() {
                        let Some(StoreOp::Commit(op, write)) = self.queue.pop_front() else {
                            unreachable!("checked above");
                        };
                        batch.push((op, write));
                    }
                    let result = if fail {
                        Err(failed())
                    } else {
                        let writes: Vec<StoreWrite> =
                            batch.iter().map(|(_, write)| write.clone()).collect();
                        self.store.commit(&writes)
                    };
                    for (op, _) in batch {
                        let result = match &result {
                            Ok(()) => Ok(()),
                            Err(e) => Err(Error::Storage(e.to_string())),
                        };
                        self.engine.handle_commit(self.now, op, result);
                    }
                }
            }
        }
    }
}
