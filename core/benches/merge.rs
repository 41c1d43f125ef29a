//! Merging a batch of 1,000 changes into a document holding 100k characters of text.
//!
//! The document: one splice of 100,000 characters plus 200 small edits of history. A
//! fork of it makes 1,000 single-character insertions at random positions (seeded),
//! each its own commit. Measured:
//! - `load_incremental`: the batch as `save_after` writes it, into a clone of the
//!   original;
//! - `apply_changes`: the same changes as `get_changes` returns them;
//! - `engine`: a `sync` frame carrying those changes, received by a `Role::Server`
//!   engine that holds the original (loaded from its store beforehand), through
//!   decoding, applying, storing the new changes and generating the answer.

#![allow(clippy::print_stderr, missing_docs)]

#[path = "support/driver.rs"]
mod driver;

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use automerge::sync::SyncDoc;
use automerge::transaction::Transactable;
use automerge::{ActorId, Automerge, ObjType, ROOT, ReadDoc};
use coachsync_core::store::{MemoryStore, Store, StoreWrite};
use coachsync_core::sync::{ConnId, EngineConfig, Role};
use coachsync_core::{DocumentId, Message, PeerId, StorageId, SyncEnvelope};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use driver::Node;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const TEXT_CHARS: usize = 100_000;
const HISTORY_EDITS: usize = 200;
const BATCH_CHANGES: usize = 1_000;

struct Docs {
    original: Automerge,
    fork: Automerge,
}

fn documents() -> Docs {
    let mut rng = StdRng::seed_from_u64(0x3e7);
    let mut original = Automerge::new().with_actor(ActorId::from([1u8; 16]));
    let text: String = (0..TEXT_CHARS)
        .map(|_| {
            let c = rng.random_range(0..27u8);
            if c == 26 { ' ' } else { (b'a' + c) as char }
        })
        .collect();
    let mut tx = original.transaction();
    let notes = tx.put_object(ROOT, "notes", ObjType::Text).unwrap();
    tx.splice_text(&notes, 0, 0, &text).unwrap();
    tx.commit();
    for _ in 0..HISTORY_EDITS {
        let len = original.length(&notes);
        let pos = rng.random_range(0..len);
        let mut tx = original.transaction();
        if rng.random_bool(0.5) {
            tx.splice_text(&notes, pos, 1, "").unwrap();
        } else {
            tx.splice_text(&notes, pos, 0, "edit ").unwrap();
        }
        tx.commit();
    }

    let mut fork = original.fork().with_actor(ActorId::from([2u8; 16]));
    for _ in 0..BATCH_CHANGES {
        let len = fork.length(&notes);
        let pos = rng.random_range(0..=len);
        let mut tx = fork.transaction();
        tx.splice_text(&notes, pos, 0, "x").unwrap();
        tx.commit();
    }
    assert_eq!(fork.length(&notes), original.length(&notes) + BATCH_CHANGES);
    Docs { original, fork }
}

/// A server engine with the original document loaded from its store and a client
/// (the fork's side) joined and past its first sync exchange.
struct ServerReady {
    server: Node,
    conn: ConnId,
    /// The server's answers so far.
    sent: VecDeque<(ConnId, Vec<u8>)>,
}

fn server_ready(
    now: Instant,
    document: &DocumentId,
    original_save: &[u8],
    join: &[u8],
    hello: &[u8],
) -> ServerReady {
    let storage = StorageId::new("server-storage").unwrap();
    let store = MemoryStore::new(storage.clone());
    let original_heads = Automerge::load(original_save).unwrap().get_heads();
    store
        .commit(&[StoreWrite::Append {
            document: document.clone(),
            data: original_save.to_vec(),
            heads: original_heads.clone(),
        }])
        .unwrap();
    let config = EngineConfig::new(Role::Server, PeerId::new("server").unwrap(), Some(storage));
    let mut server = Node::with_store(config, store);
    let conn = ConnId(1);
    let mut sent = VecDeque::new();
    server.engine.handle_connect(now, conn);
    server.engine.handle_frame(now, conn, join);
    server.pump(now, &mut sent);
    server.engine.handle_frame(now, conn, hello);
    server.pump(now, &mut sent);
    assert_eq!(
        server.loads, 1,
        "the server loads the document from its store"
    );
    ServerReady { server, conn, sent }
}

fn bench_merge(c: &mut Criterion) {
    let Docs { original, fork } = documents();
    let base = original.get_heads();
    let batch = fork.save_after(&base);
    let changes = fork.get_changes(&base);
    assert_eq!(changes.len(), BATCH_CHANGES);
    eprintln!(
        "merge: original {} B saved ({} changes), batch of {} changes is {} B as save_after",
        original.save().len(),
        original.get_changes(&[]).len(),
        changes.len(),
        batch.len()
    );

    let mut group = c.benchmark_group("merge");

    let mut check = original.clone();
    check.load_incremental(&batch).unwrap();
    assert_eq!(check.get_heads(), fork.get_heads());
    group.bench_function("load_incremental", |b| {
        b.iter_batched(
            || original.clone(),
            |mut doc| {
                doc.load_incremental(&batch).unwrap();
                doc
            },
            BatchSize::LargeInput,
        )
    });

    group.bench_function("apply_changes", |b| {
        b.iter_batched(
            || (original.clone(), changes.clone()),
            |(mut doc, changes)| {
                doc.apply_changes(changes).unwrap();
                doc
            },
            BatchSize::LargeInput,
        )
    });

    // The engine path: the fork's side is a plain automerge peer speaking the
    // protocol by hand.
    let now = Instant::now();
    let document = DocumentId::from_random([7; 16]);
    let client_id = PeerId::new("client").unwrap();
    let server_id = PeerId::new("server").unwrap();
    let envelope = |data: Vec<u8>| {
        Message::Sync(SyncEnvelope {
            sender_id: client_id.clone(),
            target_id: server_id.clone(),
            document_id: document.clone(),
            data,
        })
        .encode()
    };
    let join = Message::Join {
        sender_id: client_id.clone(),
        supported_protocol_versions: vec!["1".into()],
        peer_metadata: None,
    }
    .encode();
    let mut client_state = automerge::sync::State::new();
    let hello = envelope(
        fork.generate_sync_message(&mut client_state)
            .unwrap()
            .encode(),
    );
    let original_save = original.save();
    // One exchange to learn what the server answers, and so what the fork sends.
    let ready = server_ready(now, &document, &original_save, &join, &hello);
    let answer = ready
        .sent
        .iter()
        .filter(|(c, _)| *c == ready.conn)
        .find_map(|(_, frame)| match Message::decode(frame).unwrap() {
            Message::Sync(env) => Some(env.data),
            _ => None,
        })
        .expect("the server answers the hello");
    fork.clone()
        .receive_sync_message(
            &mut client_state,
            automerge::sync::Message::decode(&answer).unwrap(),
        )
        .unwrap();
    let carrying = fork.generate_sync_message(&mut client_state).unwrap();
    assert!(!carrying.changes.is_empty(), "the fork sends its changes");
    let carrying = envelope(carrying.encode());
    eprintln!(
        "merge/engine: the sync frame carrying the batch is {} B",
        carrying.len()
    );

    let receive = |ready: &mut ServerReady| {
        let before = ready.sent.len();
        ready.server.engine.handle_frame(now, ready.conn, &carrying);
        ready.server.pump(now, &mut ready.sent);
        assert!(ready.sent.len() > before, "the server answers");
    };
    // Check the path once: merged in memory, stored, and answered.
    let mut checked = server_ready(now, &document, &original_save, &join, &hello);
    receive(&mut checked);
    let merged = checked.server.engine.document(&document).unwrap();
    assert_eq!(merged.get_heads(), fork.get_heads());
    assert_eq!(
        checked.server.engine.durable_heads(&document),
        Some(fork.get_heads().as_slice())
    );
    let stored = checked.server.store.load(&document).unwrap().unwrap();
    assert_eq!(
        Automerge::load(&stored.data).unwrap().get_heads(),
        fork.get_heads()
    );

    group.bench_function("engine", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut ready = server_ready(now, &document, &original_save, &join, &hello);
                let started = Instant::now();
                receive(&mut ready);
                total += started.elapsed();
                drop(ready);
            }
            total
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = bench_merge
}
criterion_main!(benches);
