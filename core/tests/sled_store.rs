//! Tests of [`SledStore`] in temporary directories: appends and loads, compaction and
//! its verification, value-sized parts (no sled blob files), reopening, quarantine,
//! what happens when a data directory is opened twice, the change log and meta
//! records.

use std::path::Path;

use automerge::transaction::Transactable;
use automerge::{Automerge, ChangeHash, ROOT, ScalarValue};
use coachsync_core::store::{
    MAX_VALUE_BYTES, SledOptions, SledStore, Store, StoreWrite, StoredDocument,
};
use coachsync_core::{DocumentId, Error, StorageId};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

fn storage(s: &str) -> StorageId {
    StorageId::new(s).unwrap()
}

fn open(dir: &Path) -> SledStore {
    SledStore::open(dir, &SledOptions::default(), || storage("store-1")).unwrap()
}

fn doc_id(n: u8) -> DocumentId {
    DocumentId::from_random([n; 16])
}

fn put(doc: &mut Automerge, key: &str, value: impl Into<ScalarValue>) {
    let mut tx = doc.transaction();
    tx.put(ROOT, key, value.into()).unwrap();
    tx.commit();
}

/// A document edited in `n` commits, each stored as its own chunk: the writes and
/// the document.
fn appended(id: &DocumentId, n: usize) -> (Vec<StoreWrite>, Automerge) {
    let mut doc = Automerge::new();
    let mut writes = Vec::new();
    let mut saved: Vec<ChangeHash> = Vec::new();
    for i in 0..n {
        put(&mut doc, &format!("k{i}"), i as i64);
        writes.push(StoreWrite::Append {
            document: id.clone(),
            data: doc.save_after(&saved),
            heads: doc.get_heads(),
        });
        saved = doc.get_heads();
    }
    (writes, doc)
}

fn sorted(mut heads: Vec<ChangeHash>) -> Vec<ChangeHash> {
    heads.sort();
    heads
}

fn loaded_heads(stored: &StoredDocument) -> Vec<ChangeHash> {
    sorted(Automerge::load(&stored.data).unwrap().get_heads())
}

/// Every file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn appended_chunks_load_back_in_order_as_one_document() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = doc_id(1);
    assert_eq!(store.load(&id).unwrap(), None, "never stored");

    let (writes, doc) = appended(&id, 3);
    // One batch of two, then one more.
    store.commit(&writes[..2]).unwrap();
    store.commit(&writes[2..]).unwrap();
    let stored = store.load(&id).unwrap().unwrap();
    assert_eq!(stored.chunks, 3);
    assert_eq!(stored.incremental_chunks, 3);
    let written: usize = writes
        .iter()
        .map(|w| match w {
            StoreWrite::Append { data, .. } => data.len(),
            _ => 0,
        })
        .sum();
    assert_eq!(stored.incremental_bytes, written);
    assert_eq!(stored.data.len(), written);
    assert_eq!(loaded_heads(&stored), sorted(doc.get_heads()));
    assert_eq!(stored.quarantined, None);
    assert!(stored.sync_states.is_empty());
    assert_eq!(store.document_ids().unwrap(), vec![id.clone()]);
    // The size an owner is charged for, from the record alone, as after a restart.
    drop(store);
    let store = open(dir.path());
    assert_eq!(store.document_sizes().unwrap(), vec![(id, written as u64)]);
    // An empty batch is a no-op.
    store.commit(&[]).unwrap();
}

#[test]
fn compaction_replaces_every_chunk_with_one_snapshot_and_keeps_the_heads() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = doc_id(2);
    let (writes, mut doc) = appended(&id, 5);
    store.commit(&writes).unwrap();
    assert_eq!(store.load(&id).unwrap().unwrap().chunks, 5);

    store
        .commit(&[StoreWrite::Compact {
            document: id.clone(),
            snapshot: doc.save(),
            heads: doc.get_heads(),
        }])
        .unwrap();
    let stored = store.load(&id).unwrap().unwrap();
    assert_eq!(stored.chunks, 1);
    assert_eq!(stored.incremental_chunks, 0);
    assert_eq!(stored.incremental_bytes, 0);
    assert_eq!(stored.data, doc.save());
    assert_eq!(loaded_heads(&stored), sorted(doc.get_heads()));

    // Appends after a compaction come after the snapshot.
    let before = doc.get_heads();
    put(&mut doc, "after", "compaction");
    store
        .commit(&[StoreWrite::Append {
            document: id.clone(),
            data: doc.save_after(&before),
            heads: doc.get_heads(),
        }])
        .unwrap();
    let stored = store.load(&id).unwrap().unwrap();
    assert_eq!(stored.chunks, 2);
    assert_eq!(stored.incremental_chunks, 1);
    assert_eq!(loaded_heads(&stored), sorted(doc.get_heads()));
}

#[test]
fn a_compaction_whose_snapshot_does_not_match_its_heads_is_skipped_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let id = doc_id(3);
    let (writes, mut doc) = appended(&id, 4);
    store.commit(&writes).unwrap();
    let stale = doc.save();
    let before = store.load(&id).unwrap().unwrap();

    let saved = doc.get_heads();
    put(&mut doc, "late", 1);
    let late = StoreWrite::Append {
        document: id.clone(),
        data: doc.save_after(&saved),
        heads: doc.get_heads(),
    };
    store.commit(&[late]).unwrap();

    // A snapshot one change behind its heads, and one that is not automerge at all;
    // the other writes of the same batch still apply.
    let state = automerge::sync::State::new().encode();
    store
        .commit(&[
            StoreWrite::Compact {
                document: id.clone(),
                snapshot: stale,
                heads: doc.get_heads(),
            },
            StoreWrite::SyncState {
                document: id.clone(),
                storage_id: storage("peer-store"),
                state: state.clone(),
            },
            StoreWrite::Compact {
                document: id.clone(),
                snapshot: b"not a document".to_vec(),
                heads: doc.get_heads(),
            },
        ])
        .unwrap();
    let after = store.load(&id).unwrap().unwrap();
    assert_eq!(after.chunks, before.chunks + 1, "no chunk was replaced");
    assert_eq!(after.incremental_chunks, before.incremental_chunks + 1);
    assert!(after.data.starts_with(&before.data));
    assert_eq!(loaded_heads(&after), sorted(doc.get_heads()));
    assert_eq!(after.sync_states, vec![(storage("peer-store"), state)]);
}

#[test]
fn a_one_mib_snapshot_is_stored_in_parts_of_at_most_64_kib_and_sled_writes_no_blob_files() {
    let dir = tempfile::tempdir().unwrap();
    let id = doc_id(4);
    let mut random = vec![0u8; 1024 * 1024];
    StdRng::seed_from_u64(4).fill_bytes(&mut random);
    let mut doc = Automerge::new();
    put(&mut doc, "blob", ScalarValue::Bytes(random.clone()));
    let snapshot = doc.save();
    assert!(snapshot.len() >= 1024 * 1024, "{} bytes", snapshot.len());
    {
        let store = open(dir.path());
        // A big incremental chunk, then a big compaction over it, several times so
        // that sled rewrites its pages.
        for round in 0..3u8 {
            let mut raw = random.clone();
            raw[0] = round;
            store
                .commit(&[StoreWrite::Append {
                    document: id.clone(),
                    data: raw,
                    heads: Vec::new(),
                }])
                .unwrap();
            store
                .commit(&[StoreWrite::Compact {
                    document: id.clone(),
                    snapshot: snapshot.clone(),
                    heads: doc.get_heads(),
                }])
                .unwrap();
            assert_eq!(
                files_under(&dir.path().join("blobs")),
                Vec::<std::path::PathBuf>::new(),
                "round {round}: sled wrote blob files"
            );
        }
        let stored = store.load(&id).unwrap().unwrap();
        assert_eq!(stored.chunks, 1);
        assert_eq!(
            stored.data, snapshot,
            "the parts join back into the snapshot"
        );
    }

    // Look at what sled holds, with the store closed.
    let db = sled::Config::new()
        .path(dir.path())
        .segment_size(coachsync_core::store::SEGMENT_SIZE)
        .open()
        .unwrap();
    let chunks = db.open_tree("chunks").unwrap();
    let sizes: Vec<usize> = chunks.iter().values().map(|v| v.unwrap().len()).collect();
    assert_eq!(sizes.len(), snapshot.len().div_ceil(MAX_VALUE_BYTES));
    assert!(sizes.iter().all(|&n| n <= MAX_VALUE_BYTES), "{sizes:?}");
    assert_eq!(sizes.iter().sum::<usize>(), snapshot.len());
    drop(chunks);
    drop(db);
    assert!(files_under(&dir.path().join("blobs")).is_empty());
}

#[test]
fn reopening_the_store_keeps_documents_sync_states_and_the_storage_id() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (doc_id(5), doc_id(6));
    let (writes_a, doc_a) = appended(&a, 2);
    let (writes_b, doc_b) = appended(&b, 3);
    let state = |n: u8| vec![n; 8];
    {
        let store = open(dir.path());
        assert_eq!(store.storage_id(), storage("store-1"));
        store.commit(&writes_a).unwrap();
        store.commit(&writes_b).unwrap();
        store
            .commit(&[
                StoreWrite::SyncState {
                    document: a.clone(),
                    storage_id: storage("peer-1"),
                    state: state(1),
                },
                StoreWrite::SyncState {
                    document: a.clone(),
                    storage_id: storage("peer-2"),
                    state: state(2),
                },
                // A newer state for the same peer replaces the older.
                StoreWrite::SyncState {
                    document: a.clone(),
                    storage_id: storage("peer-1"),
                    state: state(3),
                },
            ])
            .unwrap();
    }
    let store = SledStore::open(dir.path(), &SledOptions::default(), || {
        panic!("a reopened store keeps its storage id")
    })
    .unwrap();
    assert_eq!(store.storage_id(), storage("store-1"));
    let mut ids = store.document_ids().unwrap();
    ids.sort();
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(ids, want);
    let stored_a = store.load(&a).unwrap().unwrap();
    assert_eq!(loaded_heads(&stored_a), sorted(doc_a.get_heads()));
    let mut states = stored_a.sync_states.clone();
    states.sort();
    assert_eq!(
        states,
        vec![(storage("peer-1"), state(3)), (storage("peer-2"), state(2))]
    );
    let stored_b = store.load(&b).unwrap().unwrap();
    assert_eq!(loaded_heads(&stored_b), sorted(doc_b.get_heads()));
    assert!(stored_b.sync_states.is_empty());
}

#[test]
fn sync_states_of_a_document_never_show_up_under_another_whose_id_it_prefixes() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let short = DocumentId::from_bytes(&[1, 2]).unwrap();
    let long = DocumentId::from_bytes(&[1, 2, 3]).unwrap();
    for (id, n) in [(&short, 1u8), (&long, 2)] {
        let (writes, _) = appended(id, 1);
        store.commit(&writes).unwrap();
        store
            .commit(&[StoreWrite::SyncState {
                document: id.clone(),
                storage_id: storage("peer"),
                state: vec![n],
            }])
            .unwrap();
    }
    assert_eq!(
        store.load(&short).unwrap().unwrap().sync_states,
        vec![(storage("peer"), vec![1])]
    );
    assert_eq!(
        store.load(&long).unwrap().unwrap().sync_states,
        vec![(storage("peer"), vec![2])]
    );
}

#[test]
fn a_quarantined_document_keeps_its_chunks_and_its_reason_across_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let id = doc_id(7);
    let (writes, doc) = appended(&id, 3);
    let before = {
        let store = open(dir.path());
        store.commit(&writes).unwrap();
        let before = store.load(&id).unwrap().unwrap();
        store
            .commit(&[StoreWrite::Quarantine {
                document: id.clone(),
                reason: "does not load".into(),
            }])
            .unwrap();
        let after = store.load(&id).unwrap().unwrap();
        assert_eq!(after.quarantined.as_deref(), Some("does not load"));
        assert_eq!(after.data, before.data);
        assert_eq!(after.chunks, before.chunks);
        before
    };
    let store = open(dir.path());
    let after = store.load(&id).unwrap().unwrap();
    assert_eq!(after.quarantined.as_deref(), Some("does not load"));
    assert_eq!(after.data, before.data);
    assert_eq!(loaded_heads(&after), sorted(doc.get_heads()));
    assert_eq!(store.document_ids().unwrap(), vec![id]);
}

#[test]
fn opening_a_data_directory_that_is_already_open_is_a_storage_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path());
    // sled takes an exclusive flock on `<dir>/db`; a second open, even from the same
    // process, cannot get it.
    let second = std::panic::catch_unwind(|| {
        SledStore::open(dir.path(), &SledOptions::default(), || storage("other"))
    })
    .expect("opening twice does not panic");
    match second {
        Err(Error::Storage(message)) => {
            assert!(message.contains("in use"), "{message}");
            assert!(
                message.contains(&dir.path().display().to_string()),
                "{message}"
            );
        }
        other => panic!("expected a storage error, got {other:?}"),
    }
    // The first store is unharmed, and the directory opens again once it is closed.
    let (writes, _) = appended(&doc_id(8), 1);
    first.commit(&writes).unwrap();
    drop(first);
    let again = open(dir.path());
    assert!(again.load(&doc_id(8)).unwrap().is_some());
}

#[test]
fn heads_are_read_from_the_metadata_record_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path(), &SledOptions::default(), || {
        coachsync_core::StorageId::new("heads-store").unwrap()
    })
    .unwrap();
    let id = DocumentId::from_random([4; 16]);
    assert_eq!(store.heads(&id).unwrap(), None, "never stored");
    let mut doc = automerge::Automerge::new();
    let mut tx = doc.transaction();
    automerge::transaction::Transactable::put(&mut tx, automerge::ROOT, "a", 1).unwrap();
    tx.commit();
    store
        .commit(&[StoreWrite::Append {
            document: id.clone(),
            data: doc.save(),
            heads: doc.get_heads(),
        }])
        .unwrap();
    assert_eq!(store.heads(&id).unwrap(), Some(doc.get_heads()));
    assert_eq!(
        store.stored_heads().unwrap(),
        vec![(id.clone(), doc.get_heads())]
    );
    store
        .commit(&[StoreWrite::Compact {
            document: id.clone(),
            snapshot: doc.save(),
            heads: doc.get_heads(),
        }])
        .unwrap();
    assert_eq!(
        store.heads(&id).unwrap(),
        Some(doc.get_heads()),
        "after compaction"
    );
    store
        .commit(&[StoreWrite::Quarantine {
            document: id.clone(),
            reason: "test".into(),
        }])
        .unwrap();
    assert_eq!(
        store.heads(&id).unwrap(),
        Some(vec![]),
        "a quarantined document has none"
    );
    assert_eq!(store.stored_heads().unwrap(), vec![(id, vec![])]);
}

/// A sync state whose shared heads are `heads`, as the engine persists it.
fn state_at(heads: Vec<ChangeHash>) -> Vec<u8> {
    let mut state = automerge::sync::State::new();
    state.shared_heads = heads;
    state.encode()
}

fn change_log_finds_what_a_peer_lacks(store: &dyn Store) {
    let peer = storage("device-a");
    let (a, b, c) = (doc_id(1), doc_id(2), doc_id(3));
    let (writes_a, doc_a) = appended(&a, 2);
    let (writes_b, _) = appended(&b, 1);
    let (writes_c, _) = appended(&c, 1);
    store.commit(&writes_a).unwrap();
    store.commit(&writes_b).unwrap();
    store.commit(&writes_c).unwrap();
    let start = store.changed_since(u64::MAX, &peer).unwrap();
    assert!(
        start.documents.is_empty(),
        "nothing after the end of the log"
    );
    assert_eq!(start.cursor, 4, "one sequence number per append");

    // The peer synced `a` up to date and `b` not; it never synced `c`.
    store
        .commit(&[
            StoreWrite::SyncState {
                document: a.clone(),
                storage_id: peer.clone(),
                state: state_at(doc_a.get_heads()),
            },
            StoreWrite::SyncState {
                document: b.clone(),
                storage_id: peer.clone(),
                state: state_at(Vec::new()),
            },
        ])
        .unwrap();
    let found = store.changed_since(0, &peer).unwrap();
    assert_eq!(found.documents, vec![b.clone()]);
    assert_eq!(found.cursor, 4);
    assert!(store.changed_since(4, &peer).unwrap().documents.is_empty());

    // A later change to `a` shows up after the old cursor, and only once: the
    // log keeps each document's latest entry.
    let mut doc_a = doc_a;
    put(&mut doc_a, "later", 1);
    store
        .commit(&[StoreWrite::Append {
            document: a.clone(),
            data: doc_a.save(),
            heads: doc_a.get_heads(),
        }])
        .unwrap();
    let found = store.changed_since(4, &peer).unwrap();
    assert_eq!((found.documents, found.cursor), (vec![a.clone()], 5));
    let mut all = store.changed_since(0, &peer).unwrap().documents;
    all.sort();
    let mut want = vec![a, b];
    want.sort();
    assert_eq!(all, want);
}

#[test]
fn the_change_log_names_documents_a_peer_lacks_since_a_cursor() {
    let dir = tempfile::tempdir().unwrap();
    change_log_finds_what_a_peer_lacks(&open(dir.path()));
    change_log_finds_what_a_peer_lacks(&coachsync_core::store::MemoryStore::new(storage("mem")));
}

#[test]
fn meta_records_are_written_in_batches_and_read_by_prefix() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        store
            .commit(&[
                StoreWrite::Meta {
                    key: "device/a".into(),
                    value: vec![1],
                },
                StoreWrite::Meta {
                    key: "device/b".into(),
                    value: vec![2],
                },
                StoreWrite::Meta {
                    key: "other".into(),
                    value: vec![3],
                },
            ])
            .unwrap();
    }
    let store = open(dir.path());
    assert_eq!(
        store.meta("device/").unwrap(),
        vec![("device/a".into(), vec![1]), ("device/b".into(), vec![2])]
    );
}

fn deleting_removes_every_trace(store: &dyn Store) {
    let (a, b) = (doc_id(1), doc_id(2));
    let (writes_a, doc_a) = appended(&a, 3);
    let (writes_b, _) = appended(&b, 1);
    store.commit(&writes_a).unwrap();
    store.commit(&writes_b).unwrap();
    let peer = storage("server-a");
    store
        .commit(&[StoreWrite::SyncState {
            document: a.clone(),
            storage_id: peer.clone(),
            state: state_at(doc_a.get_heads()),
        }])
        .unwrap();
    store
        .commit(&[StoreWrite::Delete {
            document: a.clone(),
        }])
        .unwrap();
    assert_eq!(store.load(&a).unwrap(), None);
    assert_eq!(store.heads(&a).unwrap(), None);
    assert_eq!(store.document_ids().unwrap(), vec![b.clone()]);
    // Stored again later, it starts clean: no sync state says the peer has it.
    store.commit(&writes_a).unwrap();
    assert!(store.load(&a).unwrap().unwrap().sync_states.is_empty());
    assert!(
        store.load(&b).unwrap().is_some(),
        "the other document is untouched"
    );
}

#[test]
fn deleting_a_document_removes_its_chunks_sync_states_and_log_entry() {
    let dir = tempfile::tempdir().unwrap();
    deleting_removes_every_trace(&open(dir.path()));
    deleting_removes_every_trace(&coachsync_core::store::MemoryStore::new(storage("mem")));
}

#[test]
fn meta_records_are_read_a_page_at_a_time_and_the_last_one_alone() {
    let dir = tempfile::tempdir().unwrap();
    let stores: [Box<dyn Store>; 2] = [
        Box::new(open(dir.path())),
        Box::new(coachsync_core::store::MemoryStore::new(storage("memory"))),
    ];
    for store in stores {
        let writes: Vec<StoreWrite> = (1..=5)
            .map(|i| StoreWrite::Meta {
                key: format!("log/{i:03}"),
                value: vec![i],
            })
            .chain(std::iter::once(StoreWrite::Meta {
                key: "other/1".into(),
                value: vec![9],
            }))
            .collect();
        store.commit(&writes).unwrap();
        let keys =
            |page: Vec<(String, Vec<u8>)>| page.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
        assert_eq!(
            keys(store.meta_after("log/", "log/002", 2).unwrap()),
            ["log/003", "log/004"]
        );
        assert_eq!(
            keys(store.meta_after("log/", "log/004", 10).unwrap()),
            ["log/005"]
        );
        assert_eq!(
            keys(store.meta_after("log/", "log/", 1).unwrap()),
            ["log/001"]
        );
        assert_eq!(
            store.last_meta("log/").unwrap(),
            Some(("log/005".into(), vec![5]))
        );
        assert_eq!(store.last_meta("none/").unwrap(), None);
    }
}

/// Files under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    files_under(dir)
        .into_iter()
        .filter(|f| {
            let bytes = std::fs::read(f).unwrap_or_default();
            bytes.windows(needle.len()).any(|w| w == needle)
        })
        .collect()
}

/// A document whose every change holds `text` uncompressed (automerge deflates
/// only columns over 256 bytes), stored as appends, with a sync state.
fn secret_document(store: &dyn Store, id: &DocumentId, text: &str) -> Automerge {
    let mut doc = Automerge::new();
    let mut saved: Vec<ChangeHash> = Vec::new();
    for i in 0..20 {
        put(&mut doc, &format!("note{i}"), format!("{text} {i}"));
        store
            .commit(&[StoreWrite::Append {
                document: id.clone(),
                data: doc.save_after(&saved),
                heads: doc.get_heads(),
            }])
            .unwrap();
        saved = doc.get_heads();
    }
    store
        .commit(&[StoreWrite::SyncState {
            document: id.clone(),
            storage_id: storage("peer-1"),
            state: state_at(doc.get_heads()),
        }])
        .unwrap();
    doc
}

#[test]
fn a_vacuum_after_a_delete_leaves_no_byte_of_the_document_in_any_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let (gone, kept) = (doc_id(1), doc_id(2));
    let secret = "Ms Rivera asked not to be observed in period 3";
    secret_document(&store, &gone, secret);
    let kept_doc = secret_document(&store, &kept, "the kept document's own notes");
    store
        .commit(&[StoreWrite::Meta {
            key: "app/record".into(),
            value: b"kept".to_vec(),
        }])
        .unwrap();
    assert!(
        !files_containing(dir.path(), secret.as_bytes()).is_empty(),
        "the text is on disk before the purge, so the check below can fail"
    );

    store
        .commit(&[StoreWrite::Delete {
            document: gone.clone(),
        }])
        .unwrap();
    let report = store.vacuum().unwrap();
    assert!(
        report.bytes_before > 0 && report.bytes_after > 0,
        "{report:?}"
    );
    assert_eq!(
        files_containing(dir.path(), secret.as_bytes()),
        Vec::<std::path::PathBuf>::new()
    );
    assert!(!dir.path().join("vacuum.new").exists());

    // Everything else is as it was, in this handle and after reopening.
    let check = |store: &SledStore| {
        assert_eq!(store.load(&gone).unwrap(), None);
        let stored = store.load(&kept).unwrap().unwrap();
        assert_eq!(loaded_heads(&stored), sorted(kept_doc.get_heads()));
        assert_eq!(stored.sync_states.len(), 1);
        assert_eq!(store.storage_id(), storage("store-1"));
        assert_eq!(
            store.meta("app/").unwrap(),
            vec![("app/record".to_owned(), b"kept".to_vec())]
        );
    };
    check(&store);
    let mut more = kept_doc.clone();
    put(&mut more, "after", "vacuum");
    store
        .commit(&[StoreWrite::Append {
            document: kept.clone(),
            data: more.save_after(&kept_doc.get_heads()),
            heads: more.get_heads(),
        }])
        .unwrap();
    drop(store);
    let store = SledStore::open(dir.path(), &SledOptions::default(), || {
        panic!("the storage ID is kept")
    })
    .unwrap();
    assert_eq!(
        loaded_heads(&store.load(&kept).unwrap().unwrap()),
        sorted(more.get_heads())
    );
}

/// Move `from`'s entries into `to`, recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

#[test]
fn a_vacuum_cut_short_is_finished_from_a_ready_copy_and_dropped_from_an_incomplete_one() {
    // The copy a vacuum made: a database holding only the kept document.
    let copy_src = tempfile::tempdir().unwrap();
    let kept = doc_id(2);
    let kept_doc = {
        let store = open(copy_src.path());
        secret_document(&store, &kept, "kept")
    };
    let names: Vec<String> = std::fs::read_dir(copy_src.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();

    // Cut short after the copy was ready and one file had been moved in.
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path());
        secret_document(&store, &doc_id(1), "purged text");
    }
    let new_dir = dir.path().join("vacuum.new");
    copy_dir(copy_src.path(), &new_dir);
    std::fs::write(new_dir.join("READY"), names.join("\n")).unwrap();
    std::fs::rename(new_dir.join("conf"), dir.path().join("conf")).unwrap();
    let store = open(dir.path());
    assert!(!new_dir.exists());
    assert_eq!(store.document_ids().unwrap(), vec![kept.clone()]);
    assert_eq!(
        loaded_heads(&store.load(&kept).unwrap().unwrap()),
        sorted(kept_doc.get_heads())
    );
    assert!(files_containing(dir.path(), b"purged text").is_empty());
    drop(store);

    // Cut short while copying: the copy is dropped and the database is untouched.
    let dir = tempfile::tempdir().unwrap();
    let doc = {
        let store = open(dir.path());
        secret_document(&store, &doc_id(3), "still here")
    };
    copy_dir(copy_src.path(), &dir.path().join("vacuum.new"));
    let store = open(dir.path());
    assert!(!dir.path().join("vacuum.new").exists());
    assert_eq!(store.document_ids().unwrap(), vec![doc_id(3)]);
    assert_eq!(
        loaded_heads(&store.load(&doc_id(3)).unwrap().unwrap()),
        sorted(doc.get_heads())
    );
}
