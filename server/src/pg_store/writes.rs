//! A batch of writes as one transaction.
//!
//! Every write that changes a document's row takes that row's lock first (an upsert
//! does), so two servers writing one document take turns, and an append's chunk
//! sequence number is the row's own. Appends also take the change counter's lock
//! (see the migration), which orders change sequence numbers by commit.

use coachsync_core::store::StoreWrite;
use deadpool_postgres::{Object, Transaction};
use tokio_postgres::Error;

use super::{PART_BYTES, heads_bytes};

/// Apply `writes` in order in one transaction and return once COMMIT has been
/// acknowledged, which with `synchronous_commit` on means the commit record is
/// flushed to the WAL on disk. Compactions must have been verified before.
/// `announce` are the payloads of the notifications that tell the other servers
/// sharing the database; PostgreSQL delivers them only once the transaction commits.
pub(super) async fn commit(
    client: &mut Object,
    writes: &[StoreWrite],
    announce: &[String],
) -> Result<(), Error> {
    let tx = client.transaction().await?;
    for write in writes {
        apply(&tx, write).await?;
    }
    for payload in announce {
        let notify = tx.prepare_cached("SELECT pg_notify($1, $2)").await?;
        tx.execute(&notify, &[&super::notices::CHANNEL, payload])
            .await?;
    }
    // Dropping the transaction on an error above rolls it back: nothing of the batch
    // stays.
    tx.commit().await
}

async fn apply(tx: &Transaction<'_>, write: &StoreWrite) -> Result<(), Error> {
    match write {
        StoreWrite::Append {
            document,
            data,
            heads,
        } => {
            let id = document.as_bytes();
            let counter = tx
                .prepare_cached("UPDATE change_counter SET last = last + 1 RETURNING last")
                .await?;
            let change: i64 = tx.query_one(&counter, &[]).await?.get(0);
            // The row's lock first, returning the heads stored before this append
            // (the last committed ones), then the upsert: sent together, run in order
            // (tokio-postgres sends a query's messages when it is first polled, and
            // try_join polls the lock first; the connection answers in order).
            let lock = tx
                .prepare_cached("SELECT heads FROM documents WHERE id = $1 FOR UPDATE")
                .await?;
            let upsert = tx
                .prepare_cached(
                    "INSERT INTO documents AS d (id, heads, next_seq, size, change_seq)
                     VALUES ($1, $2, 1, $3, $4)
                     ON CONFLICT (id) DO UPDATE SET
                         heads = excluded.heads,
                         next_seq = d.next_seq + 1,
                         size = d.size + excluded.size,
                         change_seq = excluded.change_seq
                     RETURNING next_seq - 1",
                )
                .await?;
            let stored_heads = heads_bytes(heads);
            let size = data.len() as i64;
            let lock_params: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&id];
            let upsert_params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
                [&id, &stored_heads, &size, &change];
            let (before, row) = futures_util::future::try_join(
                tx.query_opt(&lock, &lock_params),
                tx.query_one(&upsert, &upsert_params),
            )
            .await?;
            let seq: i64 = row.get(0);
            let before: Option<Vec<u8>> = before.map(|r| r.get(0));
            insert_chunk(tx, id, seq, data, false).await?;
            if let Some(before) = before
                && !extends(&before, heads, data)
            {
                // Another server appended a change this one did not build on: the
                // document's heads are both sides', read from every chunk.
                merge_heads(tx, id, document).await?;
            }
            let log = tx
                .prepare_cached(
                    "INSERT INTO changes (seq, doc) VALUES ($1, $2)
                     ON CONFLICT (doc) DO UPDATE SET seq = excluded.seq",
                )
                .await?;
            tx.execute(&log, &[&change, &id]).await?;
        }
        StoreWrite::Compact {
            document,
            snapshot,
            heads,
        } => {
            let id = document.as_bytes();
            // The row first: its lock keeps an append from slipping in between the
            // removal of the old chunks and the new snapshot.
            let lock = tx
                .prepare_cached("SELECT next_seq FROM documents WHERE id = $1 FOR UPDATE")
                .await?;
            let next: Option<i64> = tx.query_opt(&lock, &[&id]).await?.map(|r| r.get(0));
            // Another server sharing the database may have appended changes this
            // snapshot lacks; replacing its chunks would lose them.
            if let Some(next) = next {
                let read = tx
                    .prepare_cached(
                        "SELECT bytes FROM chunks WHERE doc = $1 AND seq < $2 ORDER BY seq, part",
                    )
                    .await?;
                let mut stored = Vec::new();
                for row in tx.query(&read, &[&id, &next]).await? {
                    stored.extend_from_slice(row.get::<_, &[u8]>(0));
                }
                if !covers(snapshot, &stored) {
                    tracing::info!(%document, "compaction skipped: another server stored changes the snapshot lacks");
                    return Ok(());
                }
            }
            let upsert = tx
                .prepare_cached(
                    "INSERT INTO documents AS d (id, heads, next_seq, size)
                     VALUES ($1, $2, 1, $3)
                     ON CONFLICT (id) DO UPDATE SET
                         heads = excluded.heads,
                         next_seq = d.next_seq + 1,
                         size = excluded.size
                     RETURNING next_seq - 1",
                )
                .await?;
            let seq: i64 = tx
                .query_one(
                    &upsert,
                    &[&id, &heads_bytes(heads), &(snapshot.len() as i64)],
                )
                .await?
                .get(0);
            let remove = tx
                .prepare_cached("DELETE FROM chunks WHERE doc = $1 AND seq < $2")
                .await?;
            tx.execute(&remove, &[&id, &seq]).await?;
            insert_chunk(tx, id, seq, snapshot, true).await?;
        }
        StoreWrite::SyncState {
            document,
            storage_id,
            state,
        } => {
            let put = tx
                .prepare_cached(
                    "INSERT INTO sync_states (doc, peer, state) VALUES ($1, $2, $3)
                     ON CONFLICT (doc, peer) DO UPDATE SET state = excluded.state",
                )
                .await?;
            tx.execute(&put, &[&document.as_bytes(), &storage_id.as_str(), state])
                .await?;
        }
        StoreWrite::Quarantine { document, reason } => {
            let put = tx
                .prepare_cached(
                    "INSERT INTO documents (id, quarantine) VALUES ($1, $2)
                     ON CONFLICT (id) DO UPDATE SET quarantine = excluded.quarantine",
                )
                .await?;
            tx.execute(&put, &[&document.as_bytes(), reason]).await?;
        }
        StoreWrite::Meta { key, value } => {
            let put = tx
                .prepare_cached(
                    "INSERT INTO meta (key, value) VALUES ($1, $2)
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .await?;
            tx.execute(&put, &[&key.as_bytes(), value]).await?;
        }
        StoreWrite::RemoveMeta { key } => {
            let remove = tx.prepare_cached("DELETE FROM meta WHERE key = $1").await?;
            tx.execute(&remove, &[&key.as_bytes()]).await?;
        }
        StoreWrite::Delete { document } => {
            let id = document.as_bytes();
            // Sync states have no foreign key (they may come before the document);
            // chunks and the change log go with the row.
            let states = tx
                .prepare_cached("DELETE FROM sync_states WHERE doc = $1")
                .await?;
            tx.execute(&states, &[&id]).await?;
            let row = tx
                .prepare_cached("DELETE FROM documents WHERE id = $1")
                .await?;
            tx.execute(&row, &[&id]).await?;
        }
    }
    Ok(())
}

/// Store one chunk as parts of at most [`PART_BYTES`]; an empty chunk is one empty
/// part, as in the embedded store.
async fn insert_chunk(
    tx: &Transaction<'_>,
    id: &[u8],
    seq: i64,
    data: &[u8],
    snapshot: bool,
) -> Result<(), Error> {
    let insert = tx
        .prepare_cached(
            "INSERT INTO chunks (doc, seq, part, snapshot, bytes) VALUES ($1, $2, $3, $4, $5)",
        )
        .await?;
    let parts: Vec<&[u8]> = if data.is_empty() {
        vec![data]
    } else {
        data.chunks(PART_BYTES).collect()
    };
    for (part, bytes) in parts.into_iter().enumerate() {
        tx.execute(&insert, &[&id, &seq, &(part as i32), &snapshot, &bytes])
            .await?;
    }
    Ok(())
}

/// Whether an append of `data` giving `heads` builds on every head stored before
/// (`before`): each is still a head, or a change `data` depends on. When it is not
/// (two servers appended at once, or `before` does not decode), the heads must be
/// read from the chunks.
fn extends(before: &[u8], heads: &[automerge::ChangeHash], data: &[u8]) -> bool {
    let Ok(before) = super::heads_from(before) else {
        return false;
    };
    if before.iter().all(|h| heads.contains(h)) {
        return true;
    }
    // Loaded into an empty document, changes whose dependencies are elsewhere wait
    // in its queue, and those dependencies are what it reports missing. Parsing runs
    // under the change counter's lock, which every append of every node waits for:
    // a panic must not take the batch with it.
    let deps = std::panic::catch_unwind(|| {
        let mut changes = automerge::Automerge::new();
        changes.load_incremental(data).ok()?;
        Some(automerge::ReadDoc::get_missing_deps(&changes, &[]))
    });
    let Ok(Some(deps)) = deps else {
        return false;
    };
    before.iter().all(|h| heads.contains(h) || deps.contains(h))
}

/// Set the document's heads to those of all its chunks, this transaction's
/// included. Rare (two servers appending one document at once), so a whole load is
/// affordable.
async fn merge_heads(
    tx: &Transaction<'_>,
    id: &[u8],
    document: &coachsync_core::DocumentId,
) -> Result<(), Error> {
    let read = tx
        .prepare_cached("SELECT bytes FROM chunks WHERE doc = $1 ORDER BY seq, part")
        .await?;
    let mut stored = Vec::new();
    for row in tx.query(&read, &[&id]).await? {
        stored.extend_from_slice(row.get::<_, &[u8]>(0));
    }
    let heads = match coachsync_core::store::load_document(&stored) {
        Ok(doc) => doc.get_heads(),
        Err(reason) => {
            tracing::error!(%document, %reason, "the stored chunks do not load; the stored heads stay this append's and may lack another server's change");
            return Ok(());
        }
    };
    tracing::debug!(%document, "heads merged with another server's append");
    let set = tx
        .prepare_cached("UPDATE documents SET heads = $2 WHERE id = $1")
        .await?;
    tx.execute(&set, &[&id, &heads_bytes(&heads)]).await?;
    Ok(())
}

/// Whether `snapshot` holds every change in `stored` (the chunks it would replace):
/// loading them into it adds nothing.
fn covers(snapshot: &[u8], stored: &[u8]) -> bool {
    let Ok(mut doc) = coachsync_core::store::load_document(snapshot) else {
        return false;
    };
    let before = doc.get_heads();
    match doc.load_incremental(stored) {
        Ok(_) => doc.get_heads() == before,
        Err(_) => false,
    }
}
