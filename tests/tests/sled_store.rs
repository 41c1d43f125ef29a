//! Tests of what only [`SledStore`] has to show, in temporary directories: value-sized
//! parts (no sled blob files), what happens when a data directory is opened twice,
//! and what its vacuum leaves in its files. The contract every store keeps (appends,
//! compaction, sync states, quarantine, meta records, the change log, deletes) is
//! checked for sled, memory and PostgreSQL alike by `store_contract.rs` beside this file.

use std::path::Path;

use automerge::{Automerge, ScalarValue};
use coachsync_core::Error;
use coachsync_core::store::{MAX_VALUE_BYTES, SledOptions, SledStore, Store, StoreWrite};
use coachsync_tests::files::{files_containing, files_under};
use coachsync_tests::store_contract::{
    appended, doc_id, loaded_heads, put, secret_document, sorted, storage,
};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

fn open(dir: &Path) -> SledStore {
    SledStore::open(dir, &SledOptions::default(), || storage("store-1")).unwrap()
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
