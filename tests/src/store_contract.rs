//! The contract of `coachsync_core::store::Store`, as one suite of checks that runs
//! against every store (memory, sled, PostgreSQL: see `tests/store_contract.rs`).
//!
//! Each case gets a fresh [`Location`]: a place where a store can be opened, and
//! opened again to show what it keeps. Cases drop a store before opening it again,
//! since the embedded store locks its directory.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use automerge::transaction::Transactable;
use automerge::{Automerge, ChangeHash, ROOT, ScalarValue};
use coachsync_core::store::{ChangedSince, Store, StoreWrite, StoredDocument, VacuumReport};
use coachsync_core::{DocumentId, StorageId};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

/// Opens a store (again); the argument names it if it is created now.
pub type Opener = Box<dyn Fn(&str) -> Box<dyn Store>>;

/// Where one case's store lives.
pub struct Location {
    /// Open the store (again).
    pub open: Opener,
    /// A write this store refuses, if one can be made, to show that a failing batch
    /// applies nothing.
    pub failing_write: Option<StoreWrite>,
}

impl Location {
    fn open(&self) -> Box<dyn Store> {
        (self.open)("store-1")
    }
}

/// A store shared between "openings", for a store that lives only in memory: its
/// reopening is the same store.
pub struct Shared(pub Arc<dyn Store>);

impl Store for Shared {
    fn load(&self, document: &DocumentId) -> coachsync_core::Result<Option<StoredDocument>> {
        self.0.load(document)
    }
    fn heads(&self, document: &DocumentId) -> coachsync_core::Result<Option<Vec<ChangeHash>>> {
        self.0.heads(document)
    }
    fn commit(&self, writes: &[StoreWrite]) -> coachsync_core::Result<()> {
        self.0.commit(writes)
    }
    fn document_ids(&self) -> coachsync_core::Result<Vec<DocumentId>> {
        self.0.document_ids()
    }
    fn stored_heads(&self) -> coachsync_core::Result<Vec<(DocumentId, Vec<ChangeHash>)>> {
        self.0.stored_heads()
    }
    fn document_sizes(&self) -> coachsync_core::Result<Vec<(DocumentId, u64)>> {
        self.0.document_sizes()
    }
    fn storage_id(&self) -> StorageId {
        self.0.storage_id()
    }
    fn meta(&self, prefix: &str) -> coachsync_core::Result<Vec<(String, Vec<u8>)>> {
        self.0.meta(prefix)
    }
    fn meta_after(
        &self,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> coachsync_core::Result<Vec<(String, Vec<u8>)>> {
        self.0.meta_after(prefix, after, limit)
    }
    fn last_meta(&self, prefix: &str) -> coachsync_core::Result<Option<(String, Vec<u8>)>> {
        self.0.last_meta(prefix)
    }
    fn changed_since(&self, since: u64, peer: &StorageId) -> coachsync_core::Result<ChangedSince> {
        self.0.changed_since(since, peer)
    }
    fn vacuum(&self) -> coachsync_core::Result<VacuumReport> {
        self.0.vacuum()
    }
}

/// One check of the contract.
pub type Case = (&'static str, fn(&Location));

/// Every check, by name.
pub const CASES: &[Case] = &[
    (
        "appended chunks load back in order as one document",
        appended_chunks_load_back_in_order,
    ),
    (
        "compaction replaces every chunk with one snapshot",
        compaction_replaces_every_chunk,
    ),
    (
        "a compaction that does not load to its heads is skipped",
        a_bad_compaction_is_skipped,
    ),
    ("a 1 MiB snapshot round-trips", a_big_snapshot_round_trips),
    (
        "reopening keeps documents, sync states and the storage id",
        reopening_keeps_everything,
    ),
    (
        "sync states stay with their document when one id prefixes another",
        sync_states_stay_with_their_document,
    ),
    (
        "a quarantined document keeps its chunks and reason",
        quarantine_keeps_chunks_and_reason,
    ),
    (
        "heads come from the document record",
        heads_come_from_the_record,
    ),
    (
        "the change log names what a peer lacks since a cursor",
        change_log_finds_what_a_peer_lacks,
    ),
    (
        "meta records are written in batches and read by prefix",
        meta_records_by_prefix,
    ),
    (
        "meta records are read a page at a time, and the last alone",
        meta_records_in_pages,
    ),
    (
        "deleting a document removes every trace",
        deleting_removes_every_trace,
    ),
    (
        "a batch that fails applies nothing",
        a_failing_batch_applies_nothing,
    ),
    (
        "a vacuum after a delete keeps everything else",
        vacuum_keeps_everything_else,
    ),
];

/// Run every case, each on a fresh location from `fresh` (given the case's name),
/// and fail naming every case that failed.
pub fn run_all(backend: &str, mut fresh: impl FnMut(&str) -> Location) {
    let mut failed = Vec::new();
    for (name, case) in CASES {
        let location = fresh(name);
        if std::panic::catch_unwind(AssertUnwindSafe(|| case(&location))).is_err() {
            failed.push(*name);
        }
    }
    assert!(
        failed.is_empty(),
        "{backend}: {} of {} contract cases failed:\n  {}",
        failed.len(),
        CASES.len(),
        failed.join("\n  ")
    );
}

/// A storage ID from a literal.
pub fn storage(s: &str) -> StorageId {
    StorageId::new(s).unwrap()
}

/// The `n`th test document's ID.
pub fn doc_id(n: u8) -> DocumentId {
    DocumentId::from_random([n; 16])
}

/// Set a root key in one commit.
pub fn put(doc: &mut Automerge, key: &str, value: impl Into<ScalarValue>) {
    let mut tx = doc.transaction();
    tx.put(ROOT, key, value.into()).unwrap();
    tx.commit();
}

/// A document edited in `n` commits, each stored as its own chunk: the writes and
/// the document.
pub fn appended(id: &DocumentId, n: usize) -> (Vec<StoreWrite>, Automerge) {
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

/// Heads in order, to compare.
pub fn sorted(mut heads: Vec<ChangeHash>) -> Vec<ChangeHash> {
    heads.sort();
    heads
}

/// The heads a stored document loads to, in order.
pub fn loaded_heads(stored: &StoredDocument) -> Vec<ChangeHash> {
    sorted(Automerge::load(&stored.data).unwrap().get_heads())
}

fn sorted_ids(mut ids: Vec<DocumentId>) -> Vec<DocumentId> {
    ids.sort();
    ids
}

/// A document whose every change holds `text` uncompressed (automerge deflates
/// only columns over 256 bytes), stored as appends, with a sync state.
pub fn secret_document(store: &dyn Store, id: &DocumentId, text: &str) -> Automerge {
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

/// A sync state whose shared heads are `heads`, as the engine persists it.
pub fn state_at(heads: Vec<ChangeHash>) -> Vec<u8> {
    let mut state = automerge::sync::State::new();
    state.shared_heads = heads;
    state.encode()
}

fn appended_chunks_load_back_in_order(at: &Location) {
    let store = at.open();
    let id = doc_id(1);
    assert_eq!(store.load(&id).unwrap(), None, "never stored");
    assert_eq!(store.heads(&id).unwrap(), None, "never stored");

    let (writes, doc) = appended(&id, 3);
    // One batch of two, then one more.
    store.commit(&writes[..2]).unwrap();
    store.commit(&writes[2..]).unwrap();
    let stored = store.load(&id).unwrap().unwrap();
    assert_eq!(stored.chunks, 3);
    assert_eq!(stored.incremental_chunks, 3);
    let chunks: Vec<&[u8]> = writes
        .iter()
        .map(|w| match w {
            StoreWrite::Append { data, .. } => data.as_slice(),
            _ => unreachable!(),
        })
        .collect();
    let written: usize = chunks.iter().map(|c| c.len()).sum();
    assert_eq!(stored.incremental_bytes, written);
    assert_eq!(stored.data, chunks.concat(), "the chunks, in order");
    assert_eq!(loaded_heads(&stored), sorted(doc.get_heads()));
    assert_eq!(stored.quarantined, None);
    assert!(stored.sync_states.is_empty());
    assert_eq!(store.document_ids().unwrap(), vec![id.clone()]);
    // An empty batch is a no-op.
    store.commit(&[]).unwrap();
    // The size an owner is charged for, from the record alone, as after a restart.
    drop(store);
    let store = at.open();
    assert_eq!(store.document_sizes().unwrap(), vec![(id, written as u64)]);
}

fn compaction_replaces_every_chunk(at: &Location) {
    let store = at.open();
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
    assert_eq!(
        store.document_sizes().unwrap(),
        vec![(id.clone(), doc.save().len() as u64)],
        "the size is the snapshot's"
    );

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
    assert_eq!(
        store.heads(&id).unwrap().map(sorted),
        Some(sorted(doc.get_heads()))
    );
}

fn a_bad_compaction_is_skipped(at: &Location) {
    let store = at.open();
    let id = doc_id(3);
    let (writes, mut doc) = appended(&id, 4);
    store.commit(&writes).unwrap();
    let stale = doc.save();
    let before = store.load(&id).unwrap().unwrap();

    let saved = doc.get_heads();
    put(&mut doc, "late", 1);
    store
        .commit(&[StoreWrite::Append {
            document: id.clone(),
            data: doc.save_after(&saved),
            heads: doc.get_heads(),
        }])
        .unwrap();

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

fn a_big_snapshot_round_trips(at: &Location) {
    let store = at.open();
    let id = doc_id(4);
    let mut random = vec![0u8; 1024 * 1024];
    StdRng::seed_from_u64(4).fill_bytes(&mut random);
    let mut doc = Automerge::new();
    put(&mut doc, "blob", ScalarValue::Bytes(random.clone()));
    let snapshot = doc.save();
    assert!(snapshot.len() >= 1024 * 1024, "{} bytes", snapshot.len());
    // A big incremental chunk, then a big compaction over it.
    store
        .commit(&[StoreWrite::Append {
            document: id.clone(),
            data: random,
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
    drop(store);
    let store = at.open();
    let stored = store.load(&id).unwrap().unwrap();
    assert_eq!(stored.chunks, 1);
    assert_eq!(
        stored.data, snapshot,
        "the parts join back into the snapshot"
    );
}

fn reopening_keeps_everything(at: &Location) {
    let (a, b) = (doc_id(5), doc_id(6));
    let (writes_a, doc_a) = appended(&a, 2);
    let (writes_b, doc_b) = appended(&b, 3);
    let state = |n: u8| vec![n; 8];
    {
        let store = at.open();
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
    let store = (at.open)("another-id");
    assert_eq!(
        store.storage_id(),
        storage("store-1"),
        "a reopened store keeps its storage id"
    );
    assert_eq!(
        sorted_ids(store.document_ids().unwrap()),
        sorted_ids(vec![a.clone(), b.clone()])
    );
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

fn sync_states_stay_with_their_document(at: &Location) {
    let store = at.open();
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

fn quarantine_keeps_chunks_and_reason(at: &Location) {
    let id = doc_id(7);
    let (writes, doc) = appended(&id, 3);
    let before = {
        let store = at.open();
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
    let store = at.open();
    let after = store.load(&id).unwrap().unwrap();
    assert_eq!(after.quarantined.as_deref(), Some("does not load"));
    assert_eq!(after.data, before.data);
    assert_eq!(loaded_heads(&after), sorted(doc.get_heads()));
    assert_eq!(store.document_ids().unwrap(), vec![id.clone()]);
    assert_eq!(
        store.stored_heads().unwrap(),
        vec![(id, vec![])],
        "a quarantined document has no heads"
    );
}

fn heads_come_from_the_record(at: &Location) {
    let store = at.open();
    let id = doc_id(4);
    assert_eq!(store.heads(&id).unwrap(), None, "never stored");
    let mut doc = Automerge::new();
    put(&mut doc, "a", 1);
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

fn change_log_finds_what_a_peer_lacks(at: &Location) {
    let store = at.open();
    let peer = storage("device-a");
    let (a, b, c) = (doc_id(1), doc_id(2), doc_id(3));
    let (writes_a, doc_a) = appended(&a, 2);
    let (writes_b, _) = appended(&b, 1);
    let (writes_c, _) = appended(&c, 1);
    assert_eq!(
        store.changed_since(0, &peer).unwrap(),
        ChangedSince::default(),
        "an empty store's log is empty"
    );
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
    assert_eq!(
        found.cursor, 4,
        "sync states and compactions take no number"
    );
    assert!(store.changed_since(4, &peer).unwrap().documents.is_empty());
    assert!(
        store
            .changed_since(0, &storage("another-peer"))
            .unwrap()
            .documents
            .is_empty(),
        "a peer that synced nothing lacks nothing it knows of"
    );

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
    let all = store.changed_since(0, &peer).unwrap().documents;
    assert_eq!(all, vec![b.clone(), a.clone()], "in log order");

    // The cursor survives reopening: peers keep it between connections.
    drop(store);
    let store = at.open();
    assert_eq!(store.changed_since(5, &peer).unwrap().cursor, 5);
}

fn meta_records_by_prefix(at: &Location) {
    {
        let store = at.open();
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
                StoreWrite::Meta {
                    key: "device/c".into(),
                    value: vec![4],
                },
                StoreWrite::RemoveMeta {
                    key: "device/c".into(),
                },
                // A later write of a key replaces it.
                StoreWrite::Meta {
                    key: "device/b".into(),
                    value: vec![5],
                },
            ])
            .unwrap();
    }
    let store = at.open();
    assert_eq!(
        store.meta("device/").unwrap(),
        vec![("device/a".into(), vec![1]), ("device/b".into(), vec![5])]
    );
    assert_eq!(store.meta("").unwrap().len(), 3, "every record");
    assert_eq!(store.meta("nothing/").unwrap(), vec![]);
    // Keys sort by their UTF-8 bytes, whatever the database's collation.
    store
        .commit(&[
            StoreWrite::Meta {
                key: "u/Zed".into(),
                value: vec![],
            },
            StoreWrite::Meta {
                key: "u/ébène".into(),
                value: vec![],
            },
            StoreWrite::Meta {
                key: "u/alba".into(),
                value: vec![],
            },
        ])
        .unwrap();
    let keys: Vec<String> = store
        .meta("u/")
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(keys, ["u/Zed", "u/alba", "u/ébène"]);
}

fn meta_records_in_pages(at: &Location) {
    let store = at.open();
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
    let keys = |page: Vec<(String, Vec<u8>)>| page.into_iter().map(|(k, _)| k).collect::<Vec<_>>();
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
    assert!(store.meta_after("log/", "log/005", 10).unwrap().is_empty());
    assert!(store.meta_after("log/", "log/002", 0).unwrap().is_empty());
    assert_eq!(
        store.last_meta("log/").unwrap(),
        Some(("log/005".into(), vec![5]))
    );
    assert_eq!(store.last_meta("none/").unwrap(), None);
}

fn deleting_removes_every_trace(at: &Location) {
    let store = at.open();
    let (a, b) = (doc_id(1), doc_id(2));
    let (writes_a, doc_a) = appended(&a, 3);
    let (writes_b, _) = appended(&b, 1);
    store.commit(&writes_a).unwrap();
    store.commit(&writes_b).unwrap();
    let peer = storage("server-a");
    store
        .commit(&[
            StoreWrite::SyncState {
                document: a.clone(),
                storage_id: peer.clone(),
                state: state_at(Vec::new()),
            },
            StoreWrite::SyncState {
                document: b.clone(),
                storage_id: peer.clone(),
                state: state_at(Vec::new()),
            },
        ])
        .unwrap();
    assert_eq!(
        sorted_ids(store.changed_since(0, &peer).unwrap().documents),
        sorted_ids(vec![a.clone(), b.clone()])
    );
    store
        .commit(&[StoreWrite::Delete {
            document: a.clone(),
        }])
        .unwrap();
    assert_eq!(store.load(&a).unwrap(), None);
    assert_eq!(store.heads(&a).unwrap(), None);
    assert_eq!(store.document_ids().unwrap(), vec![b.clone()]);
    assert_eq!(store.stored_heads().unwrap().len(), 1);
    assert_eq!(store.document_sizes().unwrap().len(), 1);
    assert_eq!(
        store.changed_since(0, &peer).unwrap().documents,
        vec![b.clone()],
        "its change log entry is gone"
    );
    // Deleting what is not there is a no-op.
    store
        .commit(&[StoreWrite::Delete {
            document: doc_id(99),
        }])
        .unwrap();
    // Stored again later, it starts clean: no sync state says the peer has it.
    drop(store);
    let store = at.open();
    assert_eq!(store.load(&a).unwrap(), None, "still gone after reopening");
    store.commit(&writes_a).unwrap();
    let again = store.load(&a).unwrap().unwrap();
    assert!(again.sync_states.is_empty());
    assert_eq!(again.chunks, 3);
    assert_eq!(loaded_heads(&again), sorted(doc_a.get_heads()));
    assert!(
        store.load(&b).unwrap().is_some(),
        "the other document is untouched"
    );
}

fn a_failing_batch_applies_nothing(at: &Location) {
    let Some(failing) = at.failing_write.clone() else {
        return;
    };
    let store = at.open();
    let (a, b) = (doc_id(1), doc_id(2));
    let (writes_a, _) = appended(&a, 1);
    store.commit(&writes_a).unwrap();
    let before = store.load(&a).unwrap().unwrap();
    let cursor = store.changed_since(0, &storage("p")).unwrap().cursor;
    let (writes_b, _) = appended(&b, 1);
    let mut batch = writes_b.clone();
    batch.push(StoreWrite::Meta {
        key: "app/x".into(),
        value: vec![1],
    });
    batch.push(StoreWrite::Delete {
        document: a.clone(),
    });
    batch.push(failing);
    assert!(store.commit(&batch).is_err(), "the store refuses the batch");
    assert_eq!(
        store.load(&b).unwrap(),
        None,
        "no append of the batch stayed"
    );
    assert_eq!(store.meta("app/").unwrap(), vec![]);
    assert_eq!(
        store.load(&a).unwrap(),
        Some(before),
        "its delete did not apply"
    );
    assert_eq!(
        store.changed_since(0, &storage("p")).unwrap().cursor,
        cursor,
        "no change sequence number was used"
    );
    // The store goes on working.
    store.commit(&writes_b).unwrap();
    assert!(store.load(&b).unwrap().is_some());
    assert_eq!(
        store.changed_since(0, &storage("p")).unwrap().cursor,
        cursor + 1
    );
}

fn vacuum_keeps_everything_else(at: &Location) {
    let store = at.open();
    let (gone, kept) = (doc_id(1), doc_id(2));
    let (writes_gone, _) = appended(&gone, 5);
    let (writes_kept, kept_doc) = appended(&kept, 5);
    store.commit(&writes_gone).unwrap();
    store.commit(&writes_kept).unwrap();
    store
        .commit(&[
            StoreWrite::SyncState {
                document: kept.clone(),
                storage_id: storage("peer-1"),
                state: state_at(kept_doc.get_heads()),
            },
            StoreWrite::Meta {
                key: "app/record".into(),
                value: b"kept".to_vec(),
            },
            StoreWrite::Delete {
                document: gone.clone(),
            },
        ])
        .unwrap();
    // The byte counts are the store's own business (a store in memory has none).
    let _report = store.vacuum().unwrap();
    let check = |store: &dyn Store, heads: Vec<ChangeHash>| {
        assert_eq!(store.load(&gone).unwrap(), None);
        assert_eq!(store.document_ids().unwrap(), vec![kept.clone()]);
        let stored = store.load(&kept).unwrap().unwrap();
        assert_eq!(loaded_heads(&stored), sorted(heads));
        assert_eq!(stored.sync_states.len(), 1);
        assert_eq!(store.storage_id(), storage("store-1"));
        assert_eq!(
            store.meta("app/").unwrap(),
            vec![("app/record".to_owned(), b"kept".to_vec())]
        );
    };
    check(store.as_ref(), kept_doc.get_heads());
    // Writes go on after a vacuum, and all of it is there after reopening.
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
    let store = at.open();
    check(store.as_ref(), more.get_heads());
}
