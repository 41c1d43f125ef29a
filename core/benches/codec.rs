//! Encoding and decoding of a typical `sync` frame (an automerge sync message of a few
//! hundred bytes) and of a `join`.

#![allow(clippy::print_stderr, missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT, sync::SyncDoc};
use coachsync_core::{DocumentId, Message, PeerId, PeerMetadata, StorageId, SyncEnvelope};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// A sync message carrying one small change, as a client sends after an edit.
fn typical_sync_data() -> Vec<u8> {
    let mut doc = Automerge::new();
    let mut tx = doc.transaction();
    tx.put(ROOT, "schema", "observation").unwrap();
    tx.put(ROOT, "schemaVersion", 1).unwrap();
    tx.put(ROOT, "title", "Rondo drill, U12, week 3").unwrap();
    tx.put(ROOT, "minutes", 45).unwrap();
    tx.put(
        ROOT,
        "notes",
        "Good first touch; scanning before receiving needs work.",
    )
    .unwrap();
    tx.commit();
    let mut state = automerge::sync::State::new();
    // The first message announces heads; once the peer's (empty) answer is in, the
    // next one carries the change.
    let first = doc.generate_sync_message(&mut state).unwrap();
    let mut peer = Automerge::new();
    let mut peer_state = automerge::sync::State::new();
    peer.receive_sync_message(&mut peer_state, first).unwrap();
    let answer = peer.generate_sync_message(&mut peer_state).unwrap();
    doc.receive_sync_message(&mut state, answer).unwrap();
    doc.generate_sync_message(&mut state).unwrap().encode()
}

fn bench_codec(c: &mut Criterion) {
    let data = typical_sync_data();
    let sync = Message::Sync(SyncEnvelope {
        sender_id: PeerId::new("peer-lnleigj").unwrap(),
        target_id: PeerId::new("coachsync-server").unwrap(),
        document_id: DocumentId::from_random([0x42; 16]),
        data,
    });
    let join = Message::Join {
        sender_id: PeerId::new("peer-lnleigj").unwrap(),
        supported_protocol_versions: vec!["1".into()],
        peer_metadata: Some(PeerMetadata {
            storage_id: Some(StorageId::new("4c8203a7-a908-4921-9439-7b48dd761c1a").unwrap()),
            is_ephemeral: false,
            extensions: Vec::new(),
        }),
    };

    for (name, message) in [("sync", &sync), ("join", &join)] {
        let frame = message.encode();
        assert_eq!(&Message::decode(&frame).unwrap(), message);
        eprintln!("codec/{name}: a {} B frame", frame.len());
        let mut group = c.benchmark_group(format!("codec/{name}"));
        group.throughput(Throughput::Bytes(frame.len() as u64));
        group.bench_function("encode", |b| b.iter(|| black_box(message).encode()));
        group.bench_function("decode", |b| {
            b.iter(|| Message::decode(black_box(&frame)).unwrap())
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench_codec
}
criterion_main!(benches);
