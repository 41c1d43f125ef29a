//! Deterministic, seeded simulations of several engines on an in-memory network.
//!
//! One server engine and several client engines exchange encoded frames through
//! links that can drop, duplicate and reorder them; stores answer in order after
//! random delays. Every failure prints its seed; `SIM_SEED=<n>` replays one, and
//! `SIM_TRACE=1` prints every sync message the engines send.

#![allow(clippy::print_stderr)]

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use automerge::{ChangeHash, ObjType, ReadDoc, ScalarValue, transaction::Transactable};
use coachsync_core::access::{Access, Principal, Relationship, Subject, UserRole, Who};
use coachsync_core::store::{MemoryStore, Store, StoreWrite};
use coachsync_core::sync::{
    CURSOR_KEY_PREFIX, ConnId, Engine, EngineConfig, Event, OpId, Output, Role,
};
use coachsync_core::{DocumentId, Message, PeerId, StorageId};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[derive(Clone, Copy, Default)]
struct Faults {
    drop: f64,
    duplicate: f64,
    reorder: f64,
}

enum StoreOp {
    Load(OpId, DocumentId),
    Heads(OpId, DocumentId),
    ChangedSince(OpId, u64, StorageId),
    Commit(OpId, StoreWrite),
}

struct Node {
    engine: Engine,
    store: MemoryStore,
    store_queue: VecDeque<StoreOp>,
    events: Vec<Event>,
    /// Whole-document loads run so far.
    loads: usize,
}

impl Node {
    fn new(role: Role, name: &str) -> Self {
        let storage = StorageId::new(&format!("{name}-storage")).unwrap();
        let mut config = EngineConfig::new(role, PeerId::new(name).unwrap(), Some(storage.clone()));
        config.compact_after_chunks = 8;
        Self {
            engine: Engine::new(config),
            store: MemoryStore::new(storage),
            store_queue: VecDeque::new(),
            events: Vec::new(),
            loads: 0,
        }
    }
}

/// Frames in flight on one connection, each way.
struct Link {
    conn: ConnId,
    client: usize,
    to_server: VecDeque<Vec<u8>>,
    to_client: VecDeque<Vec<u8>>,
    faults: Faults,
    /// Frames wait on a held link until it is released.
    held: bool,
}

struct Sim {
    rng: StdRng,
    now: Instant,
    server: Node,
    clients: Vec<Node>,
    links: Vec<Link>,
    next_conn: u64,
    /// Frames and bytes each way, for cost assertions.
    frames_to_server: usize,
    frames_to_client: usize,
    bytes_on_wire: usize,
    seed: u64,
    /// Chance that a store holds its next operation back for a step.
    store_hold: f64,
    /// The server's store answers nothing while paused.
    server_store_paused: bool,
    /// Manifests clients sent: (client, entries, since).
    manifests: Vec<(usize, usize, Option<u64>)>,
}

impl Sim {
    fn new(seed: u64, clients: usize) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            now: Instant::now(),
            server: Node::new(Role::Server, "server"),
            clients: (0..clients)
                .map(|i| Node::new(Role::Client, &format!("client-{i}")))
                .collect(),
            links: Vec::new(),
            next_conn: 1,
            frames_to_server: 0,
            frames_to_client: 0,
            bytes_on_wire: 0,
            seed,
            store_hold: 0.3,
            server_store_paused: false,
            manifests: Vec::new(),
        }
    }

    fn connect(&mut self, client: usize, faults: Faults) {
        self.connect_as(client, faults, Who::Anonymous);
    }

    /// Connect a client as a signed-in user (or anonymously).
    fn connect_as(&mut self, client: usize, faults: Faults, who: Who) {
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.links.push(Link {
            conn,
            client,
            to_server: VecDeque::new(),
            to_client: VecDeque::new(),
            faults,
            held: false,
        });
        self.server.engine.handle_connect_as(self.now, conn, who);
        self.clients[client].engine.handle_connect(self.now, conn);
    }

    fn disconnect(&mut self, client: usize) {
        let now = self.now;
        let links: Vec<ConnId> = self
            .links
            .iter()
            .filter(|l| l.client == client)
            .map(|l| l.conn)
            .collect();
        self.links.retain(|l| l.client != client);
        for conn in links {
            self.server.engine.handle_disconnect(now, conn);
            self.clients[client].engine.handle_disconnect(now, conn);
        }
    }

    fn node(&mut self, who: Option<usize>) -> &mut Node {
        match who {
            None => &mut self.server,
            Some(i) => &mut self.clients[i],
        }
    }

    /// Move every output of one node to where it goes. Returns whether anything moved.
    fn drain(&mut self, who: Option<usize>) -> bool {
        let mut moved = false;
        while let Some(out) = self.node(who).engine.poll_output() {
            moved = true;
            match out {
                Output::Send { conn, message } => {
                    if who.is_none() {
                        self.check_durable_before_visible(&message);
                    }
                    if let (Some(client), Message::Manifest { entries, since, .. }) =
                        (who, &message)
                    {
                        self.manifests.push((client, entries.len(), *since));
                    }
                    if std::env::var("SIM_TRACE").is_ok()
                        && let Message::Sync(env) | Message::Request(env) = &message
                    {
                        let m = automerge::sync::Message::decode(&env.data).unwrap();
                        let short = |h: &[ChangeHash]| {
                            h.iter()
                                .map(|h| h.to_string()[..6].to_owned())
                                .collect::<Vec<_>>()
                        };
                        eprintln!(
                            "{who:?} -> conn {} heads={:?} need={:?} changes={}",
                            conn.0,
                            short(&m.heads),
                            short(&m.need),
                            m.changes.len()
                        );
                    }
                    let frame = message.encode();
                    self.bytes_on_wire += frame.len();
                    let Some(link) = self.links.iter_mut().find(|l| l.conn == conn) else {
                        continue;
                    };
                    let faults = link.faults;
                    let queue = if who.is_none() {
                        self.frames_to_client += 1;
                        &mut link.to_client
                    } else {
                        self.frames_to_server += 1;
                        &mut link.to_server
                    };
                    if self.rng.random_bool(faults.drop) {
                        continue;
                    }
                    if self.rng.random_bool(faults.duplicate) {
                        queue.push_back(frame.clone());
                    }
                    if !queue.is_empty() && self.rng.random_bool(faults.reorder) {
                        let at = self.rng.random_range(0..queue.len());
                        queue.insert(at, frame);
                    } else {
                        queue.push_back(frame);
                    }
                }
                Output::Close { conn, .. } => {
                    let Some(pos) = self.links.iter().position(|l| l.conn == conn) else {
                        continue;
                    };
                    let link = self.links.remove(pos);
                    let now = self.now;
                    self.server.engine.handle_disconnect(now, conn);
                    self.clients[link.client]
                        .engine
                        .handle_disconnect(now, conn);
                }
                Output::Load { op, document } => self
                    .node(who)
                    .store_queue
                    .push_back(StoreOp::Load(op, document)),
                Output::LoadHeads { op, document } => self
                    .node(who)
                    .store_queue
                    .push_back(StoreOp::Heads(op, document)),
                Output::ChangedSince { op, since, peer } => self
                    .node(who)
                    .store_queue
                    .push_back(StoreOp::ChangedSince(op, since, peer)),
                Output::Commit { op, write } => self
                    .node(who)
                    .store_queue
                    .push_back(StoreOp::Commit(op, write)),
                Output::Event(e) => self.node(who).events.push(e),
            }
        }
        moved
    }

    /// The server may only announce heads that its store holds.
    fn check_durable_before_visible(&self, message: &Message) {
        let Message::Sync(env) = message else { return };
        let sync = automerge::sync::Message::decode(&env.data).unwrap();
        if sync.heads.is_empty() {
            return;
        }
        let stored = self
            .server
            .store
            .load(&env.document_id)
            .unwrap()
            .unwrap_or_else(|| {
                panic!(
                    "seed {}: server announced heads of a document it never stored",
                    self.seed
                )
            });
        let doc = automerge::Automerge::load(&stored.data).unwrap();
        for head in &sync.heads {
            assert!(
                doc.get_change_by_hash(head).is_some(),
                "seed {}: server announced head {head} before storing it",
                self.seed
            );
        }
    }

    /// Run store operations: each node's queue in order, some held back at random.
    fn run_stores(&mut self, who: Option<usize>, all: bool) -> bool {
        let mut moved = false;
        if who.is_none() && self.server_store_paused {
            return false;
        }
        loop {
            let hold = !all && self.rng.random_bool(self.store_hold);
            let now = self.now;
            let node = self.node(who);
            if hold {
                break;
            }
            // Consecutive commits form one batch, as a driver's group commit does.
            let mut batch = Vec::new();
            while let Some(StoreOp::Commit(..)) = node.store_queue.front() {
                let Some(StoreOp::Commit(op, write)) = node.store_queue.pop_front() else {
                    unreachable!()
                };
                batch.push((op, write));
            }
            if !batch.is_empty() {
                let writes: Vec<StoreWrite> = batch.iter().map(|(_, w)| w.clone()).collect();
                node.store.commit(&writes).unwrap();
                for (op, _) in batch {
                    node.engine.handle_commit(now, op, Ok(()));
                }
                moved = true;
                continue;
            }
            match node.store_queue.pop_front() {
                Some(StoreOp::Load(op, document)) => {
                    node.loads += 1;
                    let loaded = node.store.load(&document);
                    node.engine.handle_load(now, op, loaded);
                    moved = true;
                }
                Some(StoreOp::Heads(op, document)) => {
                    let heads = node.store.heads(&document);
                    node.engine.handle_heads(now, op, heads);
                    moved = true;
                }
                Some(StoreOp::ChangedSince(op, since, peer)) => {
                    let changed = node.store.changed_since(since, &peer);
                    node.engine.handle_changed_since(now, op, changed);
                    moved = true;
                }
                Some(StoreOp::Commit(..)) => unreachable!(),
                None => break,
            }
        }
        moved
    }

    fn deliver(&mut self) -> bool {
        let mut moved = false;
        let now = self.now;
        for i in 0..self.links.len() {
            let Some(link) = self.links.get_mut(i) else {
                break;
            };
            if link.held {
                continue;
            }
            let (conn, client) = (link.conn, link.client);
            if let Some(frame) = link.to_server.pop_front() {
                self.server.engine.handle_frame(now, conn, &frame);
                moved = true;
            }
            let Some(link) = self.links.get_mut(i) else {
                break;
            };
            if let Some(frame) = link.to_client.pop_front() {
                self.clients[client].engine.handle_frame(now, conn, &frame);
                moved = true;
            }
        }
        moved
    }

    /// Run until nothing moves (or a bound is hit), advancing time a little per step.
    fn run(&mut self) {
        for _ in 0..20_000 {
            self.now += Duration::from_millis(1);
            let mut moved = self.drain(None);
            for i in 0..self.clients.len() {
                moved |= self.drain(Some(i));
            }
            moved |= self.run_stores(None, false);
            for i in 0..self.clients.len() {
                moved |= self.run_stores(Some(i), false);
            }
            moved |= self.deliver();
            if !moved {
                // Let stores finish, then confirm quiet.
                let mut more = self.run_stores(None, true);
                for i in 0..self.clients.len() {
                    more |= self.run_stores(Some(i), true);
                }
                if !more {
                    return;
                }
            }
        }
        panic!("seed {}: the simulation did not settle", self.seed);
    }

    /// Let time pass so that timers (stall resets) fire.
    fn advance(&mut self, by: Duration) {
        self.now += by;
        let now = self.now;
        self.server.engine.handle_timeout(now);
        for c in &mut self.clients {
            c.engine.handle_timeout(now);
        }
        self.run();
    }

    fn heads(&self, who: Option<usize>, doc: &DocumentId) -> Vec<ChangeHash> {
        let node = match who {
            None => &self.server,
            Some(i) => &self.clients[i],
        };
        node.engine
            .document(doc)
            .map(|d| d.get_heads())
            .unwrap_or_default()
    }
}

fn put(sim: &mut Sim, client: usize, doc: &DocumentId, key: &str, value: i64) {
    let now = sim.now;
    sim.clients[client]
        .engine
        .change(now, doc, |tx| {
            tx.put(automerge::ROOT, key, value)?;
            Ok(())
        })
        .unwrap();
}

fn value(sim: &Sim, client: usize, doc: &DocumentId, key: &str) -> Option<i64> {
    let d = sim.clients[client].engine.document(doc)?;
    match d.get(automerge::ROOT, key).unwrap()?.0 {
        automerge::Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Int(i) => Some(*i),
            _ => None,
        },
        _ => None,
    }
}

fn seeds() -> Vec<u64> {
    match std::env::var("SIM_SEED") {
        Ok(s) => vec![s.parse().expect("SIM_SEED is a number")],
        Err(_) => (1..=24).collect(),
    }
}

/// A simulation with every client connected and holding one shared document.
fn connected_with_shared_document(seed: u64, clients: usize) -> (Sim, DocumentId) {
    let mut sim = Sim::new(seed, clients);
    for i in 0..clients {
        sim.connect(i, Faults::default());
    }
    sim.run();
    let doc = shared_document(&mut sim);
    (sim, doc)
}

/// Client 0 creates a document and syncs it; every client then finds it.
fn shared_document(sim: &mut Sim) -> DocumentId {
    let now = sim.now;
    let doc = sim.clients[0].engine.create_document(now, sim.rng.random());
    put(sim, 0, &doc, "created", 1);
    sim.run();
    for i in 1..sim.clients.len() {
        let now = sim.now;
        sim.clients[i].engine.find(now, &doc);
    }
    sim.run();
    for i in 0..sim.clients.len() {
        assert_eq!(
            value(sim, i, &doc, "created"),
            Some(1),
            "seed {}: client {i} has the document",
            sim.seed
        );
    }
    doc
}

#[test]
fn offline_concurrent_edits_converge_through_the_server() {
    for seed in seeds() {
        let (mut sim, doc) = connected_with_shared_document(seed, 3);
        for i in 0..3 {
            sim.disconnect(i);
        }
        // Everyone edits offline, concurrently, several times.
        for round in 0..5 {
            for i in 0..3 {
                put(
                    &mut sim,
                    i,
                    &doc,
                    &format!("c{i}-r{round}"),
                    (i * 10 + round) as i64,
                );
            }
            sim.run();
        }
        let order: Vec<usize> = {
            let mut o = vec![0, 1, 2];
            let k = sim.rng.random_range(0..3);
            o.rotate_left(k);
            o
        };
        for i in order {
            sim.connect(i, Faults::default());
            sim.run();
        }
        // A second pass lets earlier clients pull what later ones brought.
        sim.advance(Duration::from_secs(1));
        let server = sim.heads(None, &doc);
        for i in 0..3 {
            assert_eq!(
                sim.heads(Some(i), &doc),
                server,
                "seed {seed}: client {i} converged"
            );
            for j in 0..3 {
                for round in 0..5 {
                    assert_eq!(
                        value(&sim, i, &doc, &format!("c{j}-r{round}")),
                        Some((j * 10 + round) as i64),
                        "seed {seed}: client {i} has client {j}'s edit {round}"
                    );
                }
            }
        }
        // And the server's store has it all, not just its memory.
        let stored = sim.server.store.load(&doc).unwrap().unwrap();
        let mut stored_heads = automerge::Automerge::load(&stored.data)
            .unwrap()
            .get_heads();
        let mut want = server.clone();
        stored_heads.sort();
        want.sort();
        assert_eq!(
            stored_heads, want,
            "seed {seed}: the server stored every change"
        );
    }
}

#[test]
fn dropped_duplicated_and_reordered_messages_converge_after_reconnect() {
    let faults = Faults {
        drop: 0.15,
        duplicate: 0.1,
        reorder: 0.2,
    };
    for seed in seeds() {
        let (mut sim, doc) = connected_with_shared_document(seed, 2);
        sim.disconnect(0);
        sim.disconnect(1);
        sim.connect(0, faults);
        sim.connect(1, faults);
        sim.run();
        for round in 0..10 {
            put(
                &mut sim,
                round % 2,
                &doc,
                &format!("k{round}"),
                round as i64,
            );
            sim.run();
        }
        // A lossy link may drop the handshake itself; a fresh, clean connection
        // (what a reconnect gives) must bring everyone together.
        sim.disconnect(0);
        sim.disconnect(1);
        sim.connect(0, Faults::default());
        sim.connect(1, Faults::default());
        sim.run();
        sim.advance(Duration::from_secs(1));
        let server = sim.heads(None, &doc);
        for i in 0..2 {
            assert_eq!(
                sim.heads(Some(i), &doc),
                server,
                "seed {seed}: client {i} converged"
            );
            for round in 0..10 {
                assert_eq!(
                    value(&sim, i, &doc, &format!("k{round}")),
                    Some(round as i64),
                    "seed {seed}: client {i} edit {round}"
                );
            }
        }
    }
}

#[test]
fn lost_messages_are_recovered_by_the_stall_timer_without_reconnecting() {
    for seed in seeds() {
        let (mut sim, doc) = connected_with_shared_document(seed, 2);
        // Client 0's link now loses everything, for a while.
        sim.links
            .iter_mut()
            .find(|l| l.client == 0)
            .unwrap()
            .faults
            .drop = 1.0;
        put(&mut sim, 0, &doc, "late", 7);
        sim.run();
        assert_eq!(value(&sim, 1, &doc, "late"), None);
        sim.links
            .iter_mut()
            .find(|l| l.client == 0)
            .unwrap()
            .faults
            .drop = 0.0;
        let stall = sim.clients[0].engine.config().stall_timeout;
        sim.advance(stall + Duration::from_secs(1));
        sim.advance(stall + Duration::from_secs(1));
        assert_eq!(
            value(&sim, 1, &doc, "late"),
            Some(7),
            "seed {seed}: the lost change arrived"
        );
    }
}

#[test]
fn a_reconnect_with_nothing_new_costs_a_few_small_messages() {
    let mut sim = Sim::new(7, 1);
    sim.connect(0, Faults::default());
    sim.run();
    let mut docs = Vec::new();
    for _ in 0..20 {
        let now = sim.now;
        let doc = sim.clients[0].engine.create_document(now, sim.rng.random());
        put(&mut sim, 0, &doc, "x", 1);
        docs.push(doc);
    }
    sim.run();
    sim.disconnect(0);
    let (to_server, to_client, bytes) = (
        sim.frames_to_server,
        sim.frames_to_client,
        sim.bytes_on_wire,
    );
    sim.connect(0, Faults::default());
    sim.run();
    let up = sim.frames_to_server - to_server;
    let down = sim.frames_to_client - to_client;
    let wire = sim.bytes_on_wire - bytes;
    // join + one message per document up; peer + one answer per document down.
    assert!(up <= 1 + docs.len(), "{up} frames to the server");
    assert!(down <= 1 + docs.len(), "{down} frames to the client");
    assert!(
        wire < 400 * docs.len(),
        "{wire} bytes for {} documents",
        docs.len()
    );
    for doc in &docs {
        assert_eq!(sim.heads(Some(0), doc), sim.heads(None, doc));
    }
}

#[test]
fn unknown_documents_are_reported_unavailable_and_pushed_when_they_appear() {
    let mut sim = Sim::new(3, 2);
    sim.connect(0, Faults::default());
    sim.connect(1, Faults::default());
    sim.run();
    let doc = DocumentId::from_random([42; 16]);
    let now = sim.now;
    sim.clients[1].engine.find(now, &doc);
    sim.run();
    assert!(
        sim.clients[1].events.contains(&Event::DocumentUnavailable {
            document: doc.clone()
        }),
        "the finder hears the document is unavailable"
    );
    // Nothing was stored for a document nobody had.
    assert!(sim.server.store.load(&doc).unwrap().is_none());
    // Client 0 now creates it under that ID; the waiting finder gets it pushed.
    let now = sim.now;
    sim.clients[0].engine.find(now, &doc);
    sim.run();
    put(&mut sim, 0, &doc, "hello", 5);
    sim.run();
    assert_eq!(value(&sim, 1, &doc, "hello"), Some(5));
}

#[test]
fn a_new_connection_from_the_same_peer_replaces_the_old_one() {
    let mut sim = Sim::new(5, 1);
    sim.connect(0, Faults::default());
    sim.run();
    let old = sim.links[0].conn;
    // The client opens a second connection without closing the first (as the JS
    // client's retry timer does); the server closes the first.
    sim.connect(0, Faults::default());
    sim.run();
    assert!(
        sim.links.iter().all(|l| l.conn != old),
        "the old connection was closed"
    );
    assert_eq!(sim.links.len(), 1);
}

#[test]
fn ephemeral_messages_are_relayed_with_sender_session_and_count_unchanged() {
    let (mut sim, doc) = connected_with_shared_document(11, 3);
    sim.clients[0]
        .engine
        .broadcast(&doc, "session-a", 1u64 << 40, vec![0xa1, 0x01, 0x02]);
    sim.run();
    for i in 1..3 {
        let got: Vec<&Event> = sim.clients[i]
            .events
            .iter()
            .filter(|e| matches!(e, Event::Ephemeral { .. }))
            .collect();
        assert_eq!(
            got,
            vec![&Event::Ephemeral {
                document: doc.clone(),
                sender: PeerId::new("client-0").unwrap(),
                data: vec![0xa1, 0x01, 0x02],
            }],
            "client {i}"
        );
    }
    assert!(
        !sim.clients[0]
            .events
            .iter()
            .any(|e| matches!(e, Event::Ephemeral { .. })),
        "no echo to the sender"
    );
}

#[test]
fn a_looping_peer_is_held_back_by_the_round_cap() {
    // A peer that replays the same sync message forever makes no progress; the
    // server answers a bounded number of times and then stalls the sync.
    let mut sim = Sim::new(13, 1);
    sim.connect(0, Faults::default());
    sim.run();
    let now = sim.now;
    let doc = sim.clients[0].engine.create_document(now, [1; 16]);
    put(&mut sim, 0, &doc, "x", 1);
    sim.run();
    let conn = sim.links[0].conn;
    let replay = Message::Sync(coachsync_core::SyncEnvelope {
        sender_id: PeerId::new("client-0").unwrap(),
        target_id: PeerId::new("server").unwrap(),
        document_id: doc.clone(),
        data: automerge::sync::Message {
            heads: vec![],
            need: vec![],
            have: vec![],
            changes: Vec::<Vec<u8>>::new().into(),
            flags: None,
            version: automerge::sync::MessageVersion::V1,
        }
        .encode(),
    });
    let before = sim.frames_to_client;
    for _ in 0..200 {
        let now = sim.now;
        sim.server.engine.handle_message(now, conn, replay.clone());
        sim.drain(None);
        sim.links[0].to_client.clear();
    }
    let answered = sim.frames_to_client - before;
    let cap = sim.server.engine.config().max_rounds_without_progress as usize;
    assert!(
        answered <= cap + 1,
        "answered {answered} times with a cap of {cap}"
    );
    assert!(
        sim.server
            .events
            .iter()
            .any(|e| matches!(e, Event::Stalled { .. }))
    );
}

#[test]
fn compaction_keeps_every_change_and_bounds_the_chunks() {
    let mut sim = Sim::new(17, 1);
    sim.connect(0, Faults::default());
    sim.run();
    let now = sim.now;
    let doc = sim.clients[0].engine.create_document(now, [2; 16]);
    let now = sim.now;
    sim.clients[0]
        .engine
        .change(now, &doc, |tx| {
            tx.put_object(automerge::ROOT, "list", ObjType::List)?;
            Ok(())
        })
        .unwrap();
    for i in 0..50 {
        put(&mut sim, 0, &doc, &format!("k{i}"), i);
        sim.run();
    }
    let stored = sim.server.store.load(&doc).unwrap().unwrap();
    assert!(
        stored.chunks <= 9,
        "{} chunks after compaction",
        stored.chunks
    );
    let loaded = automerge::Automerge::load(&stored.data).unwrap();
    let mut a = loaded.get_heads();
    let mut b = sim.heads(None, &doc);
    a.sort();
    b.sort();
    assert_eq!(a, b);
}

impl Sim {
    /// Whether the heads the server last reported to a client cover every change the
    /// client has (ARCHITECTURE §4).
    fn server_covers(&self, client: usize, doc: &DocumentId) -> bool {
        let Some(link) = self.links.iter().find(|l| l.client == client) else {
            return false;
        };
        let engine = &self.clients[client].engine;
        let (Some(d), Some(server_heads)) =
            (engine.document(doc), engine.confirmed_heads(doc, link.conn))
        else {
            return false;
        };
        let known: Vec<ChangeHash> = server_heads
            .iter()
            .filter(|h| d.get_change_by_hash(h).is_some())
            .copied()
            .collect();
        known.len() == server_heads.len() && d.get_changes(&known).is_empty()
    }
}

#[test]
fn every_client_hears_that_its_changes_are_stored_after_a_simultaneous_reconnect() {
    for seed in seeds() {
        let (mut sim, doc) = connected_with_shared_document(seed, 3);
        for i in 0..3 {
            sim.disconnect(i);
            put(&mut sim, i, &doc, &format!("offline-{i}"), i as i64);
        }
        // Slow stores: the server's answers wait while more messages arrive.
        sim.store_hold = 0.9;
        // All reconnect at once: their messages interleave with the server's store
        // writes, which answer after random delays.
        for i in 0..3 {
            sim.connect(i, Faults::default());
        }
        sim.run();
        for i in 0..3 {
            assert!(
                sim.server_covers(i, &doc),
                "seed {seed}: client {i} was told its change is stored"
            );
            assert_eq!(
                sim.heads(Some(i), &doc),
                sim.heads(None, &doc),
                "seed {seed}: client {i} converged"
            );
        }
    }
}

#[test]
fn an_idle_connection_stays_quiet() {
    let (mut sim, doc) = connected_with_shared_document(19, 2);
    put(&mut sim, 1, &doc, "more", 2);
    sim.run();
    let frames = sim.frames_to_client + sim.frames_to_server;
    let stall = sim.server.engine.config().stall_timeout;
    for _ in 0..4 {
        sim.advance(stall + Duration::from_secs(1));
    }
    assert_eq!(
        sim.frames_to_client + sim.frames_to_server,
        frames,
        "nothing is sent when nothing changes"
    );
    assert!(
        !sim.server
            .events
            .iter()
            .any(|e| matches!(e, Event::Stalled { .. }))
    );
}

#[test]
fn documents_that_left_a_clients_memory_still_sync_when_it_reconnects() {
    let (mut sim, doc) = connected_with_shared_document(23, 2);
    sim.disconnect(0);
    put(&mut sim, 0, &doc, "offline", 9);
    sim.run();
    // Long enough offline for the client to drop the document from memory.
    let evict = sim.clients[0].engine.config().evict_after;
    sim.advance(evict + Duration::from_secs(1));
    assert!(
        sim.clients[0].engine.document(&doc).is_none(),
        "the document left memory"
    );
    sim.connect(0, Faults::default());
    sim.run();
    assert_eq!(
        value(&sim, 1, &doc, "offline"),
        Some(9),
        "the offline edit reached the other client"
    );
}

impl Sim {
    fn hold(&mut self, client: usize, held: bool) {
        for link in self.links.iter_mut().filter(|l| l.client == client) {
            link.held = held;
        }
    }
}

#[test]
fn a_peer_is_told_its_changes_are_stored_even_when_it_caught_up_while_the_store_was_busy() {
    // The interleaving that once left a client waiting forever: its changes reach the
    // server while the server's store is busy, and before the server answers, the
    // client (having merged another peer's change) names the server's new heads.
    // automerge then takes the exchange as finished; the server must answer anyway.
    let (mut sim, doc) = connected_with_shared_document(29, 2);
    sim.hold(1, true);
    put(&mut sim, 1, &doc, "bob", 2);
    sim.run();
    put(&mut sim, 0, &doc, "alice", 1);
    sim.run();
    // The server has stored alice's change and queued it for bob; bob's own change is
    // waiting on his link. Now the store gets busy and bob's link opens.
    sim.server_store_paused = true;
    sim.hold(1, false);
    sim.run();
    sim.server_store_paused = false;
    sim.run();
    assert!(
        sim.server_covers(1, &doc),
        "bob heard that the server stored his change"
    );
    assert!(
        sim.server_covers(0, &doc),
        "alice heard that the server stored her change"
    );
    assert_eq!(value(&sim, 0, &doc, "bob"), Some(2));
}

/// 100 documents, 3 changed offline, then a reconnect: frames up, frames down, bytes.
fn reconnect_cost(seed: u64, manifest: bool) -> (usize, usize, usize) {
    let mut sim = Sim::new(seed, 1);
    sim.server.engine = Engine::new(EngineConfig {
        manifest,
        ..sim.server.engine.config().clone()
    });
    sim.clients[0].engine = Engine::new(EngineConfig {
        manifest,
        ..sim.clients[0].engine.config().clone()
    });
    sim.connect(0, Faults::default());
    sim.run();
    let mut docs = Vec::new();
    for i in 0..100 {
        let now = sim.now;
        let doc = sim.clients[0].engine.create_document(now, sim.rng.random());
        put(&mut sim, 0, &doc, "i", i);
        docs.push(doc);
    }
    sim.run();
    sim.disconnect(0);
    for doc in docs.iter().take(3) {
        put(&mut sim, 0, doc, "offline", 1);
    }
    sim.run();
    let (up, down, bytes) = (
        sim.frames_to_server,
        sim.frames_to_client,
        sim.bytes_on_wire,
    );
    sim.connect(0, Faults::default());
    sim.run();
    for doc in &docs {
        assert!(
            sim.server_covers(0, doc),
            "seed {seed}: the client knows the server has {doc}"
        );
        assert_eq!(sim.heads(None, doc), sim.heads(Some(0), doc), "seed {seed}");
    }
    (
        sim.frames_to_server - up,
        sim.frames_to_client - down,
        sim.bytes_on_wire - bytes,
    )
}

#[test]
fn a_reconnect_syncs_only_the_documents_that_changed_through_one_manifest() {
    for seed in seeds().into_iter().take(4) {
        let (up, down, bytes) = reconnect_cost(seed, true);
        let (_, _, per_document) = reconnect_cost(seed, false);
        // join + manifest + a short exchange for each of the 3 changed documents.
        assert!(up <= 2 + 3 * 3, "seed {seed}: {up} frames to the server");
        assert!(
            down <= 2 + 3 * 3,
            "seed {seed}: {down} frames to the client"
        );
        assert!(
            bytes * 5 < per_document,
            "seed {seed}: {bytes} bytes with the manifest, {per_document} document by document"
        );
    }
}

#[test]
fn after_a_manifest_reconnect_the_server_still_pushes_other_peers_changes() {
    let (mut sim, doc) = connected_with_shared_document(31, 2);
    // Client 1 reconnects with nothing new: the manifest says its copy is current.
    sim.disconnect(1);
    sim.connect(1, Faults::default());
    sim.run();
    put(&mut sim, 0, &doc, "later", 3);
    sim.run();
    assert_eq!(
        value(&sim, 1, &doc, "later"),
        Some(3),
        "the change was pushed to the reconnected client"
    );
}

#[test]
fn after_a_server_restart_a_manifest_reconnect_loads_nothing_and_still_gets_pushes() {
    let (mut sim, doc) = connected_with_shared_document(37, 2);
    sim.disconnect(0);
    sim.disconnect(1);
    // The server restarts: a new engine over the same store.
    let config = sim.server.engine.config().clone();
    sim.server.engine = Engine::new(config);
    let loads = sim.server.loads;
    sim.connect(0, Faults::default());
    sim.connect(1, Faults::default());
    sim.run();
    assert_eq!(
        sim.server.loads, loads,
        "comparing heads loaded no document"
    );
    assert!(sim.server_covers(0, &doc) && sim.server_covers(1, &doc));
    put(&mut sim, 0, &doc, "after-restart", 4);
    sim.run();
    assert_eq!(
        value(&sim, 1, &doc, "after-restart"),
        Some(4),
        "pushed to the other client"
    );
}

#[test]
fn an_edit_stored_before_a_client_restart_reaches_the_server_without_being_opened() {
    for seed in seeds().into_iter().take(6) {
        let (mut sim, doc) = connected_with_shared_document(seed, 2);
        let mut others = Vec::new();
        for i in 0..20 {
            let now = sim.now;
            let other = sim.clients[0].engine.create_document(now, sim.rng.random());
            put(&mut sim, 0, &other, "i", i);
            others.push(other);
        }
        sim.run();
        sim.disconnect(0);
        put(&mut sim, 0, &doc, "offline", 8);
        sim.run();
        // The app closes: the client engine is gone, its store stays. It starts again
        // and registers what the store holds, opening nothing.
        let config = sim.clients[0].engine.config().clone();
        sim.clients[0].engine = Engine::new(config);
        let stored = sim.clients[0].store.stored_heads().unwrap();
        let now = sim.now;
        sim.clients[0].engine.register_stored(now, stored);
        let loads = sim.clients[0].loads;
        sim.connect(0, Faults::default());
        sim.run();
        assert_eq!(
            value(&sim, 1, &doc, "offline"),
            Some(8),
            "seed {seed}: the edit reached the other client"
        );
        assert!(
            sim.server_covers(0, &doc),
            "seed {seed}: the client knows the server has it"
        );
        assert_eq!(
            sim.clients[0].loads - loads,
            1,
            "seed {seed}: only the changed document was loaded"
        );
    }
}

/// Client 0 creates `n` documents and every other client finds them all.
fn many_shared_documents(sim: &mut Sim, n: usize) -> Vec<DocumentId> {
    let mut docs = Vec::new();
    for i in 0..n {
        let now = sim.now;
        let doc = sim.clients[0].engine.create_document(now, sim.rng.random());
        put(sim, 0, &doc, "i", i as i64);
        docs.push(doc);
    }
    sim.run();
    for c in 1..sim.clients.len() {
        for doc in &docs {
            let now = sim.now;
            sim.clients[c].engine.find(now, doc);
        }
    }
    sim.run();
    docs
}

#[test]
fn with_a_cursor_a_reconnect_lists_only_local_changes_and_still_gets_every_remote_one() {
    for seed in seeds().into_iter().take(8) {
        let mut sim = Sim::new(seed, 2);
        sim.connect(0, Faults::default());
        sim.connect(1, Faults::default());
        sim.run();
        let docs = many_shared_documents(&mut sim, 30);

        sim.disconnect(0);
        for doc in &docs[0..3] {
            put(&mut sim, 1, doc, "by-1", 1);
        }
        for doc in &docs[10..12] {
            put(&mut sim, 0, doc, "offline", 2);
        }
        sim.run();
        sim.manifests.clear();
        sim.connect(0, Faults::default());
        sim.run();
        let [(0, entries, since)] = sim.manifests[..] else {
            panic!("seed {seed}: one manifest, got {:?}", sim.manifests);
        };
        assert_eq!(
            entries, 2,
            "seed {seed}: only the two documents changed offline"
        );
        assert!(
            since.is_some(),
            "seed {seed}: with the cursor of the last sync"
        );
        for doc in &docs[0..3] {
            assert_eq!(value(&sim, 0, doc, "by-1"), Some(1), "seed {seed}: pulled");
        }
        for doc in &docs[10..12] {
            assert_eq!(
                value(&sim, 1, doc, "offline"),
                Some(2),
                "seed {seed}: pushed"
            );
            assert!(sim.server_covers(0, doc), "seed {seed}");
        }

        // A document the reconnect did not list still gets later changes live.
        put(&mut sim, 1, &docs[20], "live", 3);
        sim.run();
        assert_eq!(
            value(&sim, 0, &docs[20], "live"),
            Some(3),
            "seed {seed}: live push"
        );
    }
}

#[test]
fn a_restarted_client_keeps_its_cursor_and_lists_only_what_it_changed() {
    for seed in seeds().into_iter().take(8) {
        let mut sim = Sim::new(seed, 2);
        sim.connect(0, Faults::default());
        sim.connect(1, Faults::default());
        sim.run();
        let docs = many_shared_documents(&mut sim, 20);
        sim.disconnect(0);

        // The app closes and starts again: a new engine over the same store,
        // told what it stored, what the server confirmed (as a device records it)
        // and the cursor the engine kept in the store.
        let config = sim.clients[0].engine.config().clone();
        let server_storage = StorageId::new("server-storage").unwrap();
        let mut engine = Engine::new(config);
        let store = &sim.clients[0].store;
        engine.register_stored(sim.now, store.stored_heads().unwrap());
        let confirmed: Vec<(DocumentId, Vec<ChangeHash>)> = docs
            .iter()
            .map(|d| {
                let stored = store.load(d).unwrap().unwrap();
                let (_, state) = stored
                    .sync_states
                    .iter()
                    .find(|(s, _)| *s == server_storage)
                    .expect("a persisted sync state");
                let state = automerge::sync::State::decode(state).unwrap();
                (d.clone(), state.shared_heads)
            })
            .collect();
        engine.register_confirmed(&server_storage, confirmed);
        let cursors = store.meta(CURSOR_KEY_PREFIX).unwrap();
        assert_eq!(
            cursors.len(),
            1,
            "seed {seed}: one cursor, for the one server"
        );
        let (key, value_bytes) = &cursors[0];
        assert_eq!(key, &format!("{CURSOR_KEY_PREFIX}{server_storage}"));
        engine.restore_cursor(
            server_storage.clone(),
            u64::from_be_bytes(value_bytes[..].try_into().unwrap()),
        );
        sim.clients[0].engine = engine;

        put(&mut sim, 1, &docs[0], "by-1", 1);
        sim.run();
        let now = sim.now;
        sim.clients[0].engine.find(now, &docs[5]);
        sim.run();
        put(&mut sim, 0, &docs[5], "offline", 2);
        sim.run();
        let loads = sim.clients[0].loads;
        sim.manifests.clear();
        sim.connect(0, Faults::default());
        sim.run();
        assert_eq!(
            sim.manifests
                .iter()
                .map(|(_, entries, since)| (*entries, since.is_some()))
                .collect::<Vec<_>>(),
            vec![(1, true)],
            "seed {seed}: the one edited document, with the kept cursor"
        );
        assert_eq!(value(&sim, 0, &docs[0], "by-1"), Some(1), "seed {seed}");
        assert_eq!(value(&sim, 1, &docs[5], "offline"), Some(2), "seed {seed}");
        assert_eq!(
            sim.clients[0].loads - loads,
            1,
            "seed {seed}: only the document the server changed was loaded"
        );
    }
}

// ----- access ----------------------------------------------------------------------

fn user(name: &str, role: UserRole) -> Principal {
    Principal {
        name: name.into(),
        role,
        org: "district".into(),
        groups: Default::default(),
    }
}

/// Clients 0.. connected as the given users; client 0 creates a document and it is
/// stored.
fn signed_in(seed: u64, users: &[Principal]) -> (Sim, DocumentId) {
    let mut sim = Sim::new(seed, users.len());
    for (i, u) in users.iter().enumerate() {
        sim.connect_as(i, Faults::default(), Who::User(u.clone().into()));
    }
    sim.run();
    let now = sim.now;
    let doc = sim.clients[0].engine.create_document(now, sim.rng.random());
    put(&mut sim, 0, &doc, "created", 1);
    sim.run();
    (sim, doc)
}

fn refusals(sim: &Sim, action: &str) -> Vec<String> {
    sim.server
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Refused { who, action: a, .. } if *a == action => Some(who.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_private_document_is_unavailable_to_everyone_but_its_owner_as_if_missing() {
    for seed in seeds() {
        let coach = user("coach-a", UserRole::Coach);
        let others = [
            user("coach-b", UserRole::Coach),
            user("supervisor", UserRole::Evaluator),
            user("root", UserRole::Admin),
        ];
        let mut users = vec![coach.clone()];
        users.extend(others.iter().cloned());
        let (mut sim, doc) = signed_in(seed, &users);
        let missing = DocumentId::from_random([7; 16]);
        for i in 1..users.len() {
            let now = sim.now;
            sim.clients[i].engine.find(now, &doc);
            sim.clients[i].engine.find(now, &missing);
        }
        sim.run();
        // Everything after the first write: another change reaches nobody else either.
        put(&mut sim, 0, &doc, "later", 2);
        sim.run();
        for i in 1..users.len() {
            assert_eq!(
                value(&sim, i, &doc, "created"),
                None,
                "seed {seed}: client {i}"
            );
            let unavailable: Vec<&DocumentId> = sim.clients[i]
                .events
                .iter()
                .filter_map(|e| match e {
                    Event::DocumentUnavailable { document } => Some(document),
                    _ => None,
                })
                .collect();
            assert!(
                unavailable.contains(&&doc) && unavailable.contains(&&missing),
                "seed {seed}: client {i} hears the same of both"
            );
        }
        let record = sim.server.engine.access().record(&doc).unwrap();
        assert_eq!(record.owner.as_deref(), Some("coach-a"));
        let mut refused = refusals(&sim, "read");
        refused.sort();
        assert_eq!(refused, ["coach-b", "root", "supervisor"], "seed {seed}");
    }
}

#[test]
fn a_grant_lets_a_client_read_its_edits_never_reach_others_and_a_revoke_stops_updates() {
    for seed in seeds() {
        let coach = user("coach", UserRole::Coach);
        let principal = user("principal", UserRole::Client);
        let (mut sim, doc) = signed_in(seed, &[coach.clone(), principal.clone()]);
        sim.server
            .engine
            .grant(
                &coach,
                &doc,
                Subject::User("principal".into()),
                Some(UserRole::Client),
                Access::Read,
            )
            .unwrap();
        let now = sim.now;
        sim.clients[1].engine.find(now, &doc);
        sim.run();
        assert_eq!(
            value(&sim, 1, &doc, "created"),
            Some(1),
            "seed {seed}: read"
        );
        // The reader's own edit stays on its device.
        put(&mut sim, 1, &doc, "by-reader", 9);
        sim.run();
        assert_eq!(value(&sim, 0, &doc, "by-reader"), None, "seed {seed}");
        let stored = sim.server.engine.document(&doc).map(|d| d.get_heads());
        assert_eq!(
            stored,
            Some(sim.heads(Some(0), &doc)),
            "seed {seed}: server unchanged"
        );
        // automerge's read-only sync: the server says it is read-only to this peer,
        // which then does not even send its changes; any it sends are left out.
        assert!(refusals(&sim, "write").iter().all(|w| w == "principal"));
        // The coach's edits keep reaching the reader until the grant is revoked.
        put(&mut sim, 0, &doc, "shared", 2);
        sim.run();
        assert_eq!(value(&sim, 1, &doc, "shared"), Some(2), "seed {seed}");
        let now = sim.now;
        sim.server
            .engine
            .revoke(now, &coach, &doc, &Subject::User("principal".into()))
            .unwrap();
        put(&mut sim, 0, &doc, "after-revoke", 3);
        sim.run();
        assert_eq!(value(&sim, 1, &doc, "after-revoke"), None, "seed {seed}");
    }
}

#[test]
fn grants_follow_the_confidentiality_rules() {
    let coach = user("coach", UserRole::Coach);
    let client = user("principal", UserRole::Client);
    let admin = user("root", UserRole::Admin);
    let (mut sim, doc) = signed_in(1, std::slice::from_ref(&coach));
    let now = sim.now;
    sim.clients[0]
        .engine
        .change(now, &doc, |tx| {
            tx.put(automerge::ROOT, "schema", "observation-private-notes")?;
            Ok(())
        })
        .unwrap();
    sim.run();
    // The first schema fixed the class: private notes, never shared.
    let engine = &mut sim.server.engine;
    let err = engine
        .grant(
            &coach,
            &doc,
            Subject::User("principal".into()),
            Some(UserRole::Client),
            Access::Read,
        )
        .unwrap_err();
    assert!(err.to_string().contains("private"), "{err}");
    // An admin who may not read it cannot learn that it exists.
    let err = engine
        .grant(
            &admin,
            &doc,
            Subject::User("root".into()),
            Some(UserRole::Admin),
            Access::Read,
        )
        .unwrap_err();
    assert!(matches!(err, coachsync_core::Error::NotFound(_)), "{err}");
    let _ = client;
}

#[test]
fn coaching_content_reaches_an_evaluator_only_when_its_client_shares_it() {
    let coach = user("coach", UserRole::Coach);
    let client = user("principal", UserRole::Client);
    let mut sim = Sim::new(2, 1);
    sim.connect_as(0, Faults::default(), Who::User(coach.clone().into()));
    sim.run();
    let now = sim.now;
    let doc = sim.clients[0].engine.create_document(now, sim.rng.random());
    sim.clients[0]
        .engine
        .change(now, &doc, |tx| {
            tx.put(automerge::ROOT, "schema", "work-plan")?;
            Ok(())
        })
        .unwrap();
    sim.run();
    let engine = &mut sim.server.engine;
    assert_eq!(
        engine.access().record(&doc).unwrap().kind.as_deref(),
        Some("work-plan")
    );
    let evaluator = Subject::User("supervisor".into());
    let err = engine
        .grant(
            &coach,
            &doc,
            evaluator.clone(),
            Some(UserRole::Evaluator),
            Access::Read,
        )
        .unwrap_err();
    assert!(err.to_string().contains("client"), "{err}");
    engine
        .grant(
            &coach,
            &doc,
            Subject::User("principal".into()),
            Some(UserRole::Client),
            Access::Write,
        )
        .unwrap();
    engine
        .grant(
            &client,
            &doc,
            evaluator.clone(),
            Some(UserRole::Evaluator),
            Access::Read,
        )
        .unwrap();
    let supervisor = user("supervisor", UserRole::Evaluator);
    assert_eq!(
        engine
            .access()
            .decide(&Who::User(supervisor.into()), &doc, true),
        coachsync_core::access::Decision::Read
    );
}

#[test]
fn a_user_cannot_take_over_another_users_peer_id() {
    let mut sim = Sim::new(4, 2);
    sim.connect_as(
        0,
        Faults::default(),
        Who::User(user("a", UserRole::Coach).into()),
    );
    sim.run();
    // Client 1 pretends to be client 0 (same peer ID) as another user.
    let conn = ConnId(99);
    sim.links.push(Link {
        conn,
        client: 0,
        to_server: VecDeque::new(),
        to_client: VecDeque::new(),
        faults: Faults::default(),
        held: false,
    });
    let now = sim.now;
    sim.server
        .engine
        .handle_connect_as(now, conn, Who::User(user("b", UserRole::Coach).into()));
    sim.clients[0].engine.handle_connect(now, conn);
    sim.run();
    assert!(
        sim.links.iter().any(|l| l.conn == ConnId(1)),
        "the first connection stays"
    );
    assert!(
        sim.links.iter().all(|l| l.conn != conn),
        "the impostor was closed"
    );
}

#[test]
fn a_connection_that_left_while_its_document_loaded_hears_nothing_when_the_load_fails() {
    let mut server = Node::new(Role::Server, "server");
    let now = Instant::now();
    let conn = ConnId(1);
    let peer = PeerId::new("gone").unwrap();
    server.engine.handle_connect(now, conn);
    let join = Message::Join {
        sender_id: peer.clone(),
        supported_protocol_versions: vec!["1".into()],
        peer_metadata: None,
    };
    server.engine.handle_frame(now, conn, &join.encode());
    let empty = automerge::Automerge::new();
    let mut state = automerge::sync::State::new();
    let request = automerge::sync::SyncDoc::generate_sync_message(&empty, &mut state).unwrap();
    let document = DocumentId::from_random([5; 16]);
    let sync = Message::Request(coachsync_core::SyncEnvelope {
        sender_id: peer,
        target_id: PeerId::new("server").unwrap(),
        document_id: document.clone(),
        data: request.encode(),
    });
    server.engine.handle_frame(now, conn, &sync.encode());
    let mut load = None;
    while let Some(out) = server.engine.poll_output() {
        if let Output::Load { op, .. } = out {
            load = Some(op);
        }
    }
    let load = load.expect("the engine asks for the document");
    server.engine.handle_disconnect(now, conn);
    server.engine.handle_load(
        now,
        load,
        Err(coachsync_core::Error::Storage("disk gone".into())),
    );
    // A frame after the close is ignored too.
    server.engine.handle_frame(now, conn, b"garbage");
    while let Some(out) = server.engine.poll_output() {
        assert!(
            !matches!(
                out,
                Output::Send { .. } | Output::Close { .. } | Output::Event(Event::Rejected { .. })
            ),
            "the engine acted on a closed connection: {out:?}"
        );
    }
}

// ----- coaching relationships --------------------------------------------------------

fn relationship(id: &str, coaches: &[&str], clients: &[&str]) -> Relationship {
    Relationship {
        id: id.into(),
        org: "district".into(),
        coaches: coaches.iter().map(|s| s.to_string()).collect(),
        clients: clients.iter().map(|s| s.to_string()).collect(),
        client_groups: Default::default(),
        school: "north".into(),
        focus: None,
        start: "2026-09-01".into(),
        ended_ms: None,
        read_after_end_days: 0,
        created_ms: 0,
    }
}

/// Client 0 creates a document of `kind` naming its audience (`tie`: the
/// `relationship` or `group` field and its value) in its first change.
fn tied_document(sim: &mut Sim, kind: &str, tie: (&str, &str)) -> DocumentId {
    let now = sim.now;
    let doc = sim.clients[0].engine.create_document(now, sim.rng.random());
    sim.clients[0]
        .engine
        .change(now, &doc, |tx| {
            tx.put(automerge::ROOT, "schema", kind)?;
            tx.put(automerge::ROOT, tie.0, tie.1)?;
            tx.put(automerge::ROOT, "created", 1)?;
            Ok(())
        })
        .unwrap();
    sim.run();
    doc
}

fn find_all(sim: &mut Sim, doc: &DocumentId) {
    for i in 1..sim.clients.len() {
        let now = sim.now;
        sim.clients[i].engine.find(now, doc);
    }
    sim.run();
}

#[test]
fn a_relationships_members_share_its_coaching_documents_without_grants() {
    for seed in seeds() {
        let users = [
            user("coach", UserRole::Coach),
            user("principal", UserRole::Client),
            user("supervisor", UserRole::Evaluator),
            user("other-coach", UserRole::Coach),
        ];
        let mut sim = Sim::new(seed, users.len());
        sim.server
            .engine
            .handle_relationship(sim.now, relationship("rel-1", &["coach"], &["principal"]));
        for (i, u) in users.iter().enumerate() {
            sim.connect_as(i, Faults::default(), Who::User(u.clone().into()));
        }
        sim.run();
        let doc = tied_document(&mut sim, "work-plan", ("relationship", "rel-1"));
        find_all(&mut sim, &doc);
        assert_eq!(
            value(&sim, 1, &doc, "created"),
            Some(1),
            "seed {seed}: the client reads"
        );
        assert_eq!(
            value(&sim, 2, &doc, "created"),
            None,
            "seed {seed}: the supervisor"
        );
        assert_eq!(
            value(&sim, 3, &doc, "created"),
            None,
            "seed {seed}: another coach"
        );
        // The client writes, and the coach sees it.
        put(&mut sim, 1, &doc, "by-client", 7);
        sim.run();
        assert_eq!(value(&sim, 0, &doc, "by-client"), Some(7), "seed {seed}");
        // The coach cannot take it out of the relationship; the client can.
        let supervisor = Subject::User("supervisor".into());
        let engine = &mut sim.server.engine;
        let err = engine
            .grant(
                &users[0],
                &doc,
                supervisor.clone(),
                Some(UserRole::Evaluator),
                Access::Read,
            )
            .unwrap_err();
        assert!(err.to_string().contains("client"), "{err}");
        engine
            .grant(
                &users[1],
                &doc,
                supervisor,
                Some(UserRole::Evaluator),
                Access::Read,
            )
            .unwrap();
        let now = sim.now;
        sim.clients[2].engine.find(now, &doc);
        sim.run();
        assert_eq!(
            value(&sim, 2, &doc, "by-client"),
            Some(7),
            "seed {seed}: shared by the client"
        );
    }
}

#[test]
fn a_document_cannot_join_a_relationship_its_creator_is_not_in() {
    let users = [
        user("other-coach", UserRole::Coach),
        user("principal", UserRole::Client),
    ];
    let mut sim = Sim::new(1, 2);
    sim.server
        .engine
        .handle_relationship(sim.now, relationship("rel-1", &["coach"], &["principal"]));
    for (i, u) in users.iter().enumerate() {
        sim.connect_as(i, Faults::default(), Who::User(u.clone().into()));
    }
    sim.run();
    let doc = tied_document(&mut sim, "work-plan", ("relationship", "rel-1"));
    find_all(&mut sim, &doc);
    assert_eq!(
        value(&sim, 1, &doc, "created"),
        None,
        "not shared by naming a relationship"
    );
    assert_eq!(
        sim.server
            .engine
            .access()
            .record(&doc)
            .unwrap()
            .relationship,
        None
    );
}

#[test]
fn ending_a_relationship_or_removing_a_member_stops_their_updates() {
    for seed in seeds() {
        let users = [
            user("coach", UserRole::Coach),
            user("principal", UserRole::Client),
            user("teacher-leader", UserRole::Client),
        ];
        let mut sim = Sim::new(seed, users.len());
        let mut rel = relationship("rel-1", &["coach"], &["principal", "teacher-leader"]);
        sim.server.engine.handle_relationship(sim.now, rel.clone());
        for (i, u) in users.iter().enumerate() {
            sim.connect_as(i, Faults::default(), Who::User(u.clone().into()));
        }
        sim.run();
        let doc = tied_document(&mut sim, "coaching-log", ("relationship", "rel-1"));
        find_all(&mut sim, &doc);
        assert_eq!(value(&sim, 2, &doc, "created"), Some(1), "seed {seed}");
        // The teacher leader leaves the relationship.
        rel.clients.remove("teacher-leader");
        sim.server.engine.handle_relationship(sim.now, rel.clone());
        put(&mut sim, 0, &doc, "after-removal", 1);
        sim.run();
        assert_eq!(
            value(&sim, 1, &doc, "after-removal"),
            Some(1),
            "seed {seed}"
        );
        assert_eq!(
            value(&sim, 2, &doc, "after-removal"),
            None,
            "seed {seed}: removed"
        );
        // It ends, with no read period: the principal stops hearing too.
        rel.ended_ms = Some(0);
        sim.server.engine.handle_relationship(sim.now, rel);
        put(&mut sim, 0, &doc, "after-end", 1);
        sim.run();
        assert_eq!(
            value(&sim, 1, &doc, "after-end"),
            None,
            "seed {seed}: ended"
        );
    }
}

#[test]
fn a_team_document_is_read_and_written_by_its_teams_members() {
    for seed in seeds() {
        let member = |name: &str, groups: &[&str]| Principal {
            name: name.into(),
            role: UserRole::TeamMember,
            org: "district".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        };
        let users = [
            member("amara", &["north-grade3"]),
            member("tom", &["north-grade3"]),
            member("outsider", &["south-grade6"]),
        ];
        let mut sim = Sim::new(seed, users.len());
        for (i, u) in users.iter().enumerate() {
            sim.connect_as(i, Faults::default(), Who::User(u.clone().into()));
        }
        sim.run();
        let doc = tied_document(&mut sim, "pdsa-cycle", ("group", "north-grade3"));
        find_all(&mut sim, &doc);
        assert_eq!(
            value(&sim, 1, &doc, "created"),
            Some(1),
            "seed {seed}: a team member"
        );
        assert_eq!(
            value(&sim, 2, &doc, "created"),
            None,
            "seed {seed}: another team"
        );
        put(&mut sim, 1, &doc, "by-tom", 3);
        sim.run();
        assert_eq!(
            value(&sim, 0, &doc, "by-tom"),
            Some(3),
            "seed {seed}: written by a member"
        );
    }
}

fn purged_events(sim: &Sim, client: usize) -> Vec<DocumentId> {
    sim.clients[client]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::DocumentPurged { document } => Some(document.clone()),
            _ => None,
        })
        .collect()
}

fn unavailable_events(sim: &Sim, client: usize) -> Vec<DocumentId> {
    sim.clients[client]
        .events
        .iter()
        .filter_map(|e| match e {
            Event::DocumentUnavailable { document } => Some(document.clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn a_purged_document_leaves_every_device_that_could_read_it_and_is_never_stored_again() {
    for seed in seeds() {
        let coach = user("coach", UserRole::Coach);
        let principal = user("principal", UserRole::Client);
        let outsider = user("coach-b", UserRole::Coach);
        let (mut sim, doc) = signed_in(seed, &[coach.clone(), principal.clone(), outsider.clone()]);
        sim.server
            .engine
            .grant(
                &coach,
                &doc,
                Subject::User("principal".into()),
                Some(UserRole::Client),
                Access::Read,
            )
            .unwrap();
        let now = sim.now;
        sim.clients[1].engine.find(now, &doc);
        sim.run();
        assert_eq!(value(&sim, 1, &doc, "created"), Some(1), "seed {seed}");

        // The principal's phone is offline when the document is purged.
        sim.disconnect(1);
        let now = sim.now;
        let writes = sim.server.engine.purge(now, &doc, "operator");
        sim.server.store.commit(&writes).unwrap();
        sim.run();
        assert_eq!(sim.server.store.load(&doc).unwrap(), None, "seed {seed}");
        assert_eq!(sim.server.store.meta("purged/").unwrap().len(), 1);
        assert!(sim.server.engine.access().record(&doc).is_none());

        // The coach's device was connected: it drops the document at once.
        assert_eq!(
            purged_events(&sim, 0),
            std::slice::from_ref(&doc),
            "seed {seed}"
        );
        assert!(sim.clients[0].engine.document(&doc).is_none());
        assert_eq!(
            sim.clients[0].store.load(&doc).unwrap(),
            None,
            "seed {seed}"
        );

        // The principal's phone hears of it when it reconnects.
        sim.connect_as(1, Faults::default(), Who::User(principal.clone().into()));
        sim.run();
        assert_eq!(
            purged_events(&sim, 1),
            std::slice::from_ref(&doc),
            "seed {seed}"
        );
        assert_eq!(
            sim.clients[1].store.load(&doc).unwrap(),
            None,
            "seed {seed}"
        );

        // Someone who could never read it hears only that it is unavailable, as of
        // any unknown ID.
        let now = sim.now;
        sim.clients[2].engine.find(now, &doc);
        sim.run();
        assert!(purged_events(&sim, 2).is_empty(), "seed {seed}");
        assert!(unavailable_events(&sim, 2).contains(&doc), "seed {seed}");

        // Writing to the ID again stores nothing: the coach opens it afresh and edits
        // at once, and is told again that it is gone.
        let now = sim.now;
        sim.clients[0].engine.find(now, &doc);
        sim.drain(Some(0));
        sim.run_stores(Some(0), true);
        put(&mut sim, 0, &doc, "again", 1);
        sim.run();
        assert_eq!(purged_events(&sim, 0).len(), 2, "seed {seed}");
        assert_eq!(sim.server.store.load(&doc).unwrap(), None, "seed {seed}");
        assert!(sim.server.engine.document(&doc).is_none(), "seed {seed}");
    }
}
