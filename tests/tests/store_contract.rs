//! The store contract (`coachsync_tests::store_contract`) against every store: in
//! memory, sled in a temporary directory, and PostgreSQL in a private cluster; and
//! what only the PostgreSQL store has to show (its schema migrations, its errors,
//! what its vacuum leaves in the cluster's files).

use std::sync::Arc;

use automerge::transaction::Transactable;
use automerge::{Automerge, ChangeHash, ROOT};
use coachsync_core::store::{MemoryStore, SledOptions, SledStore, Store, StoreWrite};
use coachsync_server::pg_store::{DatabaseUrl, PgOptions, PostgresStore};
use coachsync_tests::files::files_containing;
use coachsync_tests::postgres::PgCluster;
use coachsync_tests::store_contract::{
    Location, Shared, doc_id, run_all, secret_document, storage,
};

#[test]
fn the_memory_store_keeps_the_contract() {
    run_all("memory", |_| {
        let store: Arc<dyn Store> = Arc::new(MemoryStore::new(storage("store-1")));
        Location {
            open: Box::new(move |_| Box::new(Shared(store.clone()))),
            failing_write: None,
        }
    });
}

#[test]
fn the_sled_store_keeps_the_contract() {
    run_all("sled", |_| {
        let dir = tempfile::tempdir().unwrap();
        Location {
            open: Box::new(move |id| {
                Box::new(
                    SledStore::open(dir.path(), &SledOptions::default(), || storage(id)).unwrap(),
                )
            }),
            failing_write: None,
        }
    });
}

fn open_pg(url: &str, id: &str) -> PostgresStore {
    PostgresStore::open(
        &DatabaseUrl::parse(url).unwrap(),
        &PgOptions::default(),
        || storage(id),
    )
    .unwrap()
}

#[test]
fn the_postgres_store_keeps_the_contract() {
    let Some(cluster) = PgCluster::start_or_skip("the_postgres_store_keeps_the_contract") else {
        return;
    };
    run_all("postgres", |case| {
        let url = cluster.create_database(case).unwrap();
        Location {
            open: Box::new(move |id| Box::new(open_pg(&url, id))),
            // PostgreSQL's text holds no NUL character: the whole batch is refused.
            failing_write: Some(StoreWrite::Quarantine {
                document: coachsync_core::DocumentId::from_random([7; 16]),
                reason: "nul \0 byte".into(),
            }),
        }
    });
}

#[test]
fn postgres_migrates_once_refuses_bad_databases_and_its_vacuum_leaves_no_byte_in_the_tables() {
    let test =
        "postgres_migrates_once_refuses_bad_databases_and_its_vacuum_leaves_no_byte_in_the_tables";
    let Some(cluster) = PgCluster::start_or_skip(test) else {
        return;
    };
    let url = cluster.create_database("vacuum").unwrap();
    let store = open_pg(&url, "pg-1");

    let secret = "Ms Rivera asked not to be observed in period 3";
    let (gone, kept) = (doc_id(1), doc_id(2));
    secret_document(&store, &gone, secret);
    secret_document(&store, &kept, "the kept notes");
    // Everything on disk, so that the check below can fail.
    cluster.execute("postgres", "CHECKPOINT").unwrap();
    let base = cluster.data_dir().join("base");
    assert!(
        !files_containing(&base, secret.as_bytes()).is_empty(),
        "the text is in the table files before the purge"
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
    cluster.execute("postgres", "CHECKPOINT").unwrap();
    assert_eq!(
        files_containing(&base, secret.as_bytes()),
        Vec::<std::path::PathBuf>::new(),
        "no table file holds the purged text (the WAL may, until it is recycled)"
    );
    assert!(store.load(&kept).unwrap().is_some());
    drop(store);

    // Reopening applies no migration twice, and keeps the storage id.
    let store = open_pg(&url, "pg-2");
    assert_eq!(store.storage_id(), storage("pg-1"));
    drop(store);
    let db = url.rsplit('/').next().unwrap();
    cluster
        .execute(
            db,
            "DO $$ BEGIN
               IF (SELECT count(*) FROM schema_migrations) <> 2 THEN
                 RAISE EXCEPTION 'schema_migrations does not hold one row per migration';
               END IF;
             END $$",
        )
        .unwrap();

    // A database migrated by a newer coachsync is refused, not misread.
    cluster
        .execute(
            db,
            "INSERT INTO schema_migrations (version, name) VALUES (999, 'from the future')",
        )
        .unwrap();
    let e = PostgresStore::open(
        &DatabaseUrl::parse(&url).unwrap(),
        &PgOptions::default(),
        || storage("x"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("newer than this coachsync"), "{e}");

    // Nobody listening: an error that names the database, quickly, and no panic.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let started = std::time::Instant::now();
    let e = PostgresStore::open(
        &DatabaseUrl::parse(&format!("postgres://coach:s3cret@127.0.0.1:{port}/nothing")).unwrap(),
        &PgOptions {
            connect_timeout: std::time::Duration::from_secs(3),
            ..PgOptions::default()
        },
        || storage("x"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains(&format!("127.0.0.1:{port}/nothing")), "{e}");
    assert!(e.contains("cannot connect"), "{e}");
    assert!(!e.contains("s3cret"), "{e}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // A database that does not exist: the server's own word for it.
    let e = PostgresStore::open(
        &DatabaseUrl::parse(&cluster.url("no_such_db")).unwrap(),
        &PgOptions::default(),
        || storage("x"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("no_such_db"), "{e}");
}

#[test]
fn postgres_skips_a_compaction_that_would_drop_another_servers_changes() {
    let Some(cluster) = PgCluster::start_or_skip(
        "postgres_skips_a_compaction_that_would_drop_another_servers_changes",
    ) else {
        return;
    };
    let url = cluster.create_database("compaction").unwrap();
    let (one, two) = (open_pg(&url, "db"), open_pg(&url, "db"));
    let id = coachsync_core::DocumentId::from_random([9; 16]);
    let mut doc = Automerge::new();
    let append = |doc: &mut Automerge, key: &str, since: &[ChangeHash]| {
        let mut tx = doc.transaction();
        tx.put(ROOT, key, 1).unwrap();
        tx.commit();
        StoreWrite::Append {
            document: id.clone(),
            data: doc.save_after(since),
            heads: doc.get_heads(),
        }
    };
    one.commit(&[append(&mut doc, "first", &[])]).unwrap();
    let snapshot = doc.save();
    let snapshot_heads = doc.get_heads();

    // The other server appends a change the first one's snapshot does not have.
    let mut theirs = doc.fork();
    two.commit(&[append(&mut theirs, "theirs", &snapshot_heads)])
        .unwrap();
    one.commit(&[StoreWrite::Compact {
        document: id.clone(),
        snapshot,
        heads: snapshot_heads,
    }])
    .unwrap();
    let stored = one.load(&id).unwrap().unwrap();
    let loaded = Automerge::load(&stored.data).unwrap();
    assert_eq!(
        loaded.get_heads(),
        theirs.get_heads(),
        "nothing was dropped"
    );
    assert_eq!(stored.chunks, 2, "the compaction was skipped");

    // A snapshot that holds everything replaces the chunks.
    one.commit(&[StoreWrite::Compact {
        document: id.clone(),
        snapshot: theirs.save(),
        heads: theirs.get_heads(),
    }])
    .unwrap();
    let stored = one.load(&id).unwrap().unwrap();
    assert_eq!(stored.chunks, 1);
    assert_eq!(
        Automerge::load(&stored.data).unwrap().get_heads(),
        theirs.get_heads()
    );
}

#[test]
fn postgres_keeps_both_servers_heads_when_they_append_to_one_document_at_once() {
    let Some(cluster) = PgCluster::start_or_skip(
        "postgres_keeps_both_servers_heads_when_they_append_to_one_document_at_once",
    ) else {
        return;
    };
    let url = cluster.create_database("heads").unwrap();
    let (one, two) = (open_pg(&url, "db"), open_pg(&url, "db"));
    let id = coachsync_core::DocumentId::from_random([8; 16]);
    let append = |doc: &mut Automerge, key: &str| {
        let since = doc.get_heads();
        let mut tx = doc.transaction();
        tx.put(ROOT, key, 1).unwrap();
        tx.commit();
        StoreWrite::Append {
            document: id.clone(),
            data: doc.save_after(&since),
            heads: doc.get_heads(),
        }
    };
    let sorted = |mut heads: Vec<ChangeHash>| {
        heads.sort();
        heads
    };
    let mut ours = Automerge::new();
    one.commit(&[append(&mut ours, "base")]).unwrap();
    let mut theirs = ours.fork();
    // Each server appends a change the other has not seen.
    one.commit(&[append(&mut ours, "ours")]).unwrap();
    two.commit(&[append(&mut theirs, "theirs")]).unwrap();
    let mut both = ours.fork();
    both.merge(&mut theirs.fork()).unwrap();
    assert_eq!(both.get_heads().len(), 2);
    assert_eq!(
        sorted(two.heads(&id).unwrap().unwrap()),
        sorted(both.get_heads()),
        "the stored heads hold both servers' changes, not the last writer's"
    );
    // The next append that builds on both leaves one head again.
    one.commit(&[append(&mut both, "after")]).unwrap();
    assert_eq!(one.heads(&id).unwrap().unwrap(), both.get_heads());
    assert_eq!(
        Automerge::load(&one.load(&id).unwrap().unwrap().data)
            .unwrap()
            .get_heads(),
        both.get_heads()
    );
}
