//! What access control costs the server: a signed-in peer fetching 100 of 1,000
//! stored documents, each a `request` answered with the document, measured side by
//! side with the same fetch by an anonymous peer on a server without access records
//! (`anonymous`, what the server did before accounts), by the documents' owner
//! (`owner`), and by another user who may read none of them (`refused`: each
//! answered as a missing document).
//!
//! `cargo bench -p coachsync-core --bench access`

#![allow(clippy::print_stderr, missing_docs)]

#[path = "support/driver.rs"]
mod driver;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use automerge::sync::SyncDoc;
use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT};
use coachsync_core::access::{ACCESS_KEY_PREFIX, DocAccess, Principal, UserRole, Who};
use coachsync_core::store::{MemoryStore, Store, StoreWrite};
use coachsync_core::sync::{ConnId, EngineConfig, Role};
use coachsync_core::{DocumentId, Message, PeerId, StorageId, SyncEnvelope};
use criterion::{Criterion, criterion_group, criterion_main};
use driver::Node;

const STORED: usize = 1_000;
const FETCHED: usize = 100;

fn user(name: &str) -> Principal {
    Principal {
        name: name.into(),
        role: UserRole::Coach,
        org: "district".into(),
        groups: Default::default(),
    }
}

/// Access records as the store keeps them: key and value.
type Records = Vec<(String, Vec<u8>)>;

/// One way of fetching: who asks, of which server.
struct Case<'a> {
    name: &'a str,
    writes: &'a [StoreWrite],
    records: &'a [(String, Vec<u8>)],
    who: Who,
    documents: &'a [DocumentId],
}

/// The writes that store `STORED` small documents, and their access records (all
/// owned by `coach`) when `owned`.
fn documents(owned: bool) -> (Vec<StoreWrite>, Vec<DocumentId>, Records) {
    let mut documents = Vec::new();
    let mut writes = Vec::new();
    let mut records = Vec::new();
    for i in 0..STORED {
        let mut random = [0u8; 16];
        random[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let document = DocumentId::from_random(random);
        let mut doc = Automerge::new();
        let mut tx = doc.transaction();
        tx.put(ROOT, "title", format!("walkthrough {i}")).unwrap();
        tx.commit();
        writes.push(StoreWrite::Append {
            document: document.clone(),
            data: doc.save(),
            heads: doc.get_heads(),
        });
        if owned {
            let record = DocAccess::new(&user("coach"), None, None, 0);
            let StoreWrite::Meta { key, value } = record.store_write(&document) else {
                unreachable!("an access record is a meta write")
            };
            assert!(key.starts_with(ACCESS_KEY_PREFIX));
            records.push((key, value));
        }
        documents.push(document);
    }
    (writes, documents, records)
}

/// Join, then request `FETCHED` documents; returns the server's frames.
fn fetch(now: Instant, server: &mut Node, who: Who, documents: &[DocumentId]) -> usize {
    let conn = ConnId(1);
    let peer = PeerId::new("phone").unwrap();
    let mut sent = VecDeque::new();
    server.engine.handle_connect_as(now, conn, who);
    let join = Message::Join {
        sender_id: peer.clone(),
        supported_protocol_versions: vec!["1".into()],
        peer_metadata: None,
    };
    server.engine.handle_frame(now, conn, &join.encode());
    let request = Automerge::new()
        .generate_sync_message(&mut automerge::sync::State::new())
        .unwrap()
        .encode();
    for document in documents.iter().take(FETCHED) {
        let frame = Message::Request(SyncEnvelope {
            sender_id: peer.clone(),
            target_id: PeerId::new("server").unwrap(),
            document_id: document.clone(),
            data: request.clone(),
        })
        .encode();
        server.engine.handle_frame(now, conn, &frame);
        server.pump(now, &mut sent);
    }
    sent.len()
}

/// A server whose store holds the documents, with their access records.
fn server(writes: &[StoreWrite], records: &[(String, Vec<u8>)]) -> Node {
    let store = MemoryStore::new(StorageId::new("server-storage").unwrap());
    store.commit(writes).unwrap();
    let config = EngineConfig::new(
        Role::Server,
        PeerId::new("server").unwrap(),
        Some(StorageId::new("server-storage").unwrap()),
    );
    let mut node = Node::with_store(config, store);
    node.engine.restore_access(records.iter().cloned());
    node
}

fn bench_access(c: &mut Criterion) {
    let now = Instant::now();
    let (open_writes, documents, _) = documents(false);
    let (owned_writes, owned_documents, records) = self::documents(true);
    let cases = [
        Case {
            name: "anonymous",
            writes: &open_writes,
            records: &[],
            who: Who::Anonymous,
            documents: &documents,
        },
        Case {
            name: "owner",
            writes: &owned_writes,
            records: &records,
            who: Who::User(Arc::new(user("coach"))),
            documents: &owned_documents,
        },
        Case {
            name: "refused",
            writes: &owned_writes,
            records: &records,
            who: Who::User(Arc::new(user("another-coach"))),
            documents: &owned_documents,
        },
    ];
    let mut group = c.benchmark_group("access");
    for Case {
        name,
        writes,
        records,
        who,
        documents,
    } in cases
    {
        // Once, to check the path: the document for readers, missing for others.
        let mut node = server(writes, records);
        let frames = fetch(now, &mut node, who.clone(), documents);
        eprintln!(
            "access/{name}: {frames} frames for {FETCHED} requests, {} loads",
            node.loads
        );
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let mut node = server(writes, records);
                    let started = Instant::now();
                    fetch(now, &mut node, who.clone(), documents);
                    total += started.elapsed();
                }
                total
            })
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    targets = bench_access
}
criterion_main!(benches);
