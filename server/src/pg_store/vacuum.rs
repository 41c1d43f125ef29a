//! `Store::vacuum` on PostgreSQL: `VACUUM FULL` of the store's tables.
//!
//! A delete is gone from every query as soon as it commits, but PostgreSQL keeps the
//! old row versions in the table's pages (and their TOAST pages) until a vacuum
//! prunes them, and even a plain `VACUUM` only marks that space free. `VACUUM FULL`
//! writes each table (with its TOAST table and indexes) into new files holding only
//! live rows and truncates and removes the old files, so no relation file of the
//! database holds a removed document afterwards.
//!
//! What it does not reach, and a purge must say so to the operator:
//! - the write-ahead log: the deleted rows stay in WAL segments until a checkpoint
//!   recycles them, and for as long as WAL is archived (point-in-time recovery);
//! - standbys, backups and `pg_dump` files taken before the purge;
//! - blocks of the removed files that the file system has freed but not overwritten.
//!
//! `VACUUM FULL` takes an exclusive lock on each table in turn: reads and writes
//! (of every server sharing the database) wait while it runs, which the trait allows
//! for a rare, deliberate purge.

use deadpool_postgres::Object;

use super::{StoreResult, db_err};

/// The tables a delete touches, and `meta`, where a removed record may hold personal
/// data too.
const TABLES: [&str; 5] = ["documents", "chunks", "sync_states", "changes", "meta"];

/// Bytes the store's tables take on disk: heap, TOAST and indexes.
pub(super) async fn table_bytes(client: &Object) -> StoreResult<u64> {
    let names: Vec<String> = TABLES.iter().map(|t| (*t).to_owned()).collect();
    let bytes: i64 = client
        .query_one(
            "SELECT coalesce(sum(pg_total_relation_size(to_regclass(t))), 0)::bigint
             FROM unnest($1::text[]) AS t",
            &[&names],
        )
        .await
        .map_err(db_err)?
        .get(0);
    Ok(bytes.max(0) as u64)
}

/// Rewrite every table of the store. `VACUUM` cannot run in a transaction; each
/// table is its own statement.
pub(super) async fn vacuum_full(client: &Object) -> StoreResult<()> {
    for table in TABLES {
        client
            .batch_execute(&format!("VACUUM (FULL, ANALYZE) {table}"))
            .await
            .map_err(db_err)?;
    }
    Ok(())
}
