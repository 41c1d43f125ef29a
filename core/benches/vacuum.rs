//! What a purge's vacuum costs: rewriting a sled store of 1,000 documents (about
//! 24 MB of changes), side by side with copying the same files with the operating
//! system (`fs_copy`, the least any rewrite of those bytes could cost). A purge
//! holds syncing for the time of one vacuum.
//!
//! `cargo bench -p coachsync-core --bench vacuum`

#![allow(clippy::print_stderr, missing_docs)]

use std::path::Path;
use std::time::Duration;

use automerge::transaction::Transactable;
use automerge::{Automerge, ROOT};
use coachsync_core::store::{SledOptions, SledStore, Store, StoreWrite};
use coachsync_core::{DocumentId, StorageId};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use rand::{RngCore, SeedableRng};

const DOCUMENTS: usize = 1_000;
/// Random bytes per document, so that nothing compresses.
const BYTES_PER_DOCUMENT: usize = 24 * 1024;

fn open(dir: &Path) -> SledStore {
    SledStore::open(dir, &SledOptions::default(), || {
        StorageId::new("bench-store").expect("a valid id")
    })
    .expect("the store opens")
}

/// The ID of the `i`th document.
fn doc_id(i: usize) -> DocumentId {
    let mut bytes = [7; 16];
    bytes[..8].copy_from_slice(&(i as u64).to_be_bytes());
    DocumentId::from_random(bytes)
}

/// A store of `DOCUMENTS` documents in `dir`, and one more to purge.
fn filled(dir: &Path) -> (SledStore, DocumentId) {
    let store = open(dir);
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut writes = Vec::new();
    for i in 0..=DOCUMENTS {
        let mut doc = Automerge::new();
        let mut bytes = vec![0; BYTES_PER_DOCUMENT];
        rng.fill_bytes(&mut bytes);
        let mut tx = doc.transaction();
        tx.put(ROOT, "data", bytes).expect("a put");
        tx.commit();
        writes.push(StoreWrite::Append {
            document: doc_id(i),
            data: doc.save_after(&[]),
            heads: doc.get_heads(),
        });
        if writes.len() == 100 {
            store.commit(&writes).expect("a commit");
            writes.clear();
        }
    }
    store.commit(&writes).expect("a commit");
    let purged = doc_id(DOCUMENTS);
    (store, purged)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("a directory");
    for entry in std::fs::read_dir(from).expect("a directory") {
        let entry = entry.expect("an entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("a copy");
            std::fs::File::open(&target)
                .and_then(|f| f.sync_all())
                .expect("an fsync");
        }
    }
}

fn vacuum(c: &mut Criterion) {
    let source = tempfile::tempdir().expect("a temp dir");
    let (store, purged) = filled(source.path());
    drop(store);
    let mut group = c.benchmark_group("vacuum");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("delete_and_vacuum", |b| {
        b.iter_batched(
            || {
                let dir = tempfile::tempdir().expect("a temp dir");
                copy_dir(source.path(), dir.path());
                let store = open(dir.path());
                (dir, store)
            },
            |(dir, store)| {
                store
                    .commit(&[StoreWrite::Delete {
                        document: purged.clone(),
                    }])
                    .expect("a delete");
                let report = store.vacuum().expect("a vacuum");
                (dir, store, report)
            },
            BatchSize::PerIteration,
        )
    });
    group.bench_function("fs_copy", |b| {
        b.iter_batched(
            || tempfile::tempdir().expect("a temp dir"),
            |dir| {
                copy_dir(source.path(), &dir.path().join("copy"));
                dir
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
    let dir = tempfile::tempdir().expect("a temp dir");
    copy_dir(source.path(), dir.path());
    let store = open(dir.path());
    let report = store.vacuum().expect("a vacuum");
    eprintln!(
        "store of {DOCUMENTS} documents: {:.1} MB in sled's files before the vacuum, {:.1} MB after",
        report.bytes_before as f64 / 1e6,
        report.bytes_after as f64 / 1e6
    );
}

criterion_group!(benches, vacuum);
criterion_main!(benches);
