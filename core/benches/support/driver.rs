//! An in-process driver for benchmarks (and the tests of engines sharing a store):
//! engines whose store operations are answered at once from a store (a
//! `MemoryStore`, perhaps shared by several engines) and whose frames are encoded,
//! counted and delivered in order over one connection.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

use automerge::ChangeHash;
use coachsync_core::store::{MemoryStore, Store, StoreWrite};
use coachsync_core::sync::{ConnId, Engine, EngineConfig, Event, OpId, Output, Role};
use coachsync_core::{DocumentId, PeerId, StorageId};

/// An engine with its store, and counts of what it asked the store for.
pub struct Node {
    pub engine: Engine,
    pub store: Arc<dyn Store>,
    pub loads: usize,
    pub heads_reads: usize,
    pub commits: usize,
    pub events: Vec<Event>,
    /// Every append committed, with its heads: what a server sharing the store would
    /// announce to the others.
    pub stored: Vec<(DocumentId, Vec<ChangeHash>)>,
}

impl Node {
    pub fn new(role: Role, name: &str) -> Self {
        let storage = StorageId::new(&format!("{name}-storage")).unwrap();
        let config = EngineConfig::new(role, PeerId::new(name).unwrap(), Some(storage.clone()));
        Self::with_store(config, MemoryStore::new(storage))
    }

    pub fn with_store(config: EngineConfig, store: MemoryStore) -> Self {
        Self::sharing(config, Arc::new(store))
    }

    /// An engine on a store that other engines may use too.
    pub fn sharing(config: EngineConfig, store: Arc<dyn Store>) -> Self {
        Self {
            engine: Engine::new(config),
            store,
            loads: 0,
            heads_reads: 0,
            commits: 0,
            events: Vec::new(),
            stored: Vec::new(),
        }
    }

    /// Take every output: frames go to `sent` (encoded), loads are answered at once,
    /// commits are applied as one batch (a group commit) and then acknowledged.
    /// Returns whether anything happened.
    pub fn pump(&mut self, now: Instant, sent: &mut VecDeque<(ConnId, Vec<u8>)>) -> bool {
        let mut moved = false;
        loop {
            let mut batch: Vec<(OpId, StoreWrite)> = Vec::new();
            while let Some(out) = self.engine.poll_output() {
                moved = true;
                match out {
                    Output::Send { conn, message } => sent.push_back((conn, message.encode())),
                    Output::Load { op, document } => {
                        self.loads += 1;
                        let loaded = self.store.load(&document);
                        self.engine.handle_load(now, op, loaded);
                    }
                    Output::LoadHeads { op, document } => {
                        self.heads_reads += 1;
                        let heads = self.store.heads(&document);
                        self.engine.handle_heads(now, op, heads);
                    }
                    Output::ChangedSince { op, since, peer } => {
                        let changed = self.store.changed_since(since, &peer);
                        self.engine.handle_changed_since(now, op, changed);
                    }
                    Output::Commit { op, write } => batch.push((op, write)),
                    Output::Close { conn, reason } => {
                        panic!("connection {conn:?} closed: {reason}")
                    }
                    Output::Event(event) => self.events.push(event),
                }
            }
            if batch.is_empty() {
                return moved;
            }
            self.commits += batch.len();
            let writes: Vec<StoreWrite> = batch.iter().map(|(_, w)| w.clone()).collect();
            self.store.commit(&writes).unwrap();
            for write in &writes {
                if let StoreWrite::Append {
                    document, heads, ..
                } = write
                {
                    self.stored.push((document.clone(), heads.clone()));
                }
            }
            for (op, _) in batch {
                self.engine.handle_commit(now, op, Ok(()));
            }
        }
    }
}

/// Frames and bytes that crossed the wire, each way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Wire {
    pub frames_to_server: usize,
    pub frames_to_client: usize,
    pub bytes_to_server: usize,
    pub bytes_to_client: usize,
}

impl Wire {
    pub fn bytes(&self) -> usize {
        self.bytes_to_server + self.bytes_to_client
    }
}

/// Run a client and a server until neither has anything left to do.
pub fn run_until_quiet(now: Instant, server: &mut Node, client: &mut Node, wire: &mut Wire) {
    let mut to_server = VecDeque::new();
    let mut to_client = VecDeque::new();
    for _ in 0..1_000_000 {
        let mut moved = client.pump(now, &mut to_server);
        moved |= server.pump(now, &mut to_client);
        while let Some((conn, frame)) = to_server.pop_front() {
            moved = true;
            wire.frames_to_server += 1;
            wire.bytes_to_server += frame.len();
            server.engine.handle_frame(now, conn, &frame);
        }
        while let Some((conn, frame)) = to_client.pop_front() {
            moved = true;
            wire.frames_to_client += 1;
            wire.bytes_to_client += frame.len();
            client.engine.handle_frame(now, conn, &frame);
        }
        if !moved {
            return;
        }
    }
    panic!("the engines did not settle");
}

/// Connect a client to a server on `conn`.
pub fn connect(now: Instant, server: &mut Node, client: &mut Node, conn: ConnId) {
    server.engine.handle_connect(now, conn);
    client.engine.handle_connect(now, conn);
}

/// Drop the connection `conn` on both sides.
pub fn disconnect(now: Instant, server: &mut Node, client: &mut Node, conn: ConnId) {
    server.engine.handle_disconnect(now, conn);
    client.engine.handle_disconnect(now, conn);
}
