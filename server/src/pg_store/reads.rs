//! Reads: a document, its heads, the listings, the meta records and the change log.
//!
//! A read that looks at more than one table runs in one REPEATABLE READ, read-only
//! transaction, so it sees one committed state even while other servers write.

use automerge::ChangeHash;
use coachsync_core::store::{ChangedSince, StoredDocument};
use coachsync_core::{DocumentId, StorageId};
use deadpool_postgres::Object;
use tokio_postgres::IsolationLevel;

use super::{StoreResult, db_err, heads_from, prefix_end};

/// One consistent snapshot for a read over several tables.
async fn snapshot(client: &mut Object) -> StoreResult<deadpool_postgres::Transaction<'_>> {
    client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .map_err(db_err)
}

/// A whole document: its chunks in order, its sync states by peer.
pub(super) async fn load(
    client: &mut Object,
    document: &DocumentId,
) -> StoreResult<Option<StoredDocument>> {
    let id = document.as_bytes();
    let tx = snapshot(client).await?;
    let row = tx
        .query_opt(
            &tx.prepare_cached("SELECT quarantine, size FROM documents WHERE id = $1")
                .await
                .map_err(db_err)?,
            &[&id],
        )
        .await
        .map_err(db_err)?;
    let Some(row) = row else {
        return Ok(None);
    };
    let quarantined: Option<String> = row.get(0);
    let size: i64 = row.get(1);
    let parts = tx
        .query(
            &tx.prepare_cached(
                "SELECT seq, snapshot, bytes FROM chunks WHERE doc = $1 ORDER BY seq, part",
            )
            .await
            .map_err(db_err)?,
            &[&id],
        )
        .await
        .map_err(db_err)?;
    let mut stored = StoredDocument {
        data: Vec::with_capacity(size.max(0) as usize),
        quarantined,
        ..StoredDocument::default()
    };
    let mut last_seq = None;
    for part in &parts {
        let seq: i64 = part.get(0);
        let snapshot: bool = part.get(1);
        let bytes: &[u8] = part.get(2);
        if last_seq != Some(seq) {
            last_seq = Some(seq);
            stored.chunks += 1;
            if !snapshot {
                stored.incremental_chunks += 1;
            }
        }
        if !snapshot {
            stored.incremental_bytes += bytes.len();
        }
        stored.data.extend_from_slice(bytes);
    }
    let states = tx
        .query(
            &tx.prepare_cached("SELECT peer, state FROM sync_states WHERE doc = $1 ORDER BY peer")
                .await
                .map_err(db_err)?,
            &[&id],
        )
        .await
        .map_err(db_err)?;
    for row in states {
        // A state under a storage ID this build would refuse is skipped, as in sled.
        if let Ok(peer) = StorageId::new(row.get::<_, &str>(0)) {
            stored.sync_states.push((peer, row.get(1)));
        }
    }
    tx.commit().await.map_err(db_err)?;
    Ok(Some(stored))
}

/// A document's heads from its row alone (none when quarantined).
pub(super) async fn heads(
    client: &Object,
    document: &DocumentId,
) -> StoreResult<Option<Vec<ChangeHash>>> {
    let statement = client
        .prepare_cached("SELECT heads, quarantine IS NOT NULL FROM documents WHERE id = $1")
        .await
        .map_err(db_err)?;
    let row = client
        .query_opt(&statement, &[&document.as_bytes()])
        .await
        .map_err(db_err)?;
    row.map(|row| visible_heads(row.get(0), row.get(1)))
        .transpose()
}

fn visible_heads(heads: &[u8], quarantined: bool) -> StoreResult<Vec<ChangeHash>> {
    if quarantined {
        Ok(Vec::new())
    } else {
        heads_from(heads)
    }
}

/// Every document row: its ID, its heads (none when quarantined) and its size, in
/// the order of the embedded store's keys (shorter IDs first).
pub(super) async fn documents(
    client: &Object,
) -> StoreResult<Vec<(DocumentId, Vec<ChangeHash>, u64)>> {
    let rows = client
        .query(
            "SELECT id, heads, quarantine IS NOT NULL, size FROM documents
             ORDER BY length(id), id",
            &[],
        )
        .await
        .map_err(db_err)?;
    rows.iter()
        .map(|row| {
            let id = DocumentId::from_bytes(row.get(0))?;
            let heads = visible_heads(row.get(1), row.get(2))?;
            let size: i64 = row.get(3);
            Ok((id, heads, size.max(0) as u64))
        })
        .collect()
}

/// Meta records whose key starts with `prefix` and sorts after `after` (when
/// given), in key order, at most `limit` (when given); `last` reads from the end.
pub(super) async fn meta(
    client: &Object,
    prefix: &str,
    after: Option<&str>,
    limit: Option<usize>,
    last: bool,
) -> StoreResult<Vec<(String, Vec<u8>)>> {
    let start = prefix.as_bytes();
    let end = prefix_end(start);
    let after = after.map(str::as_bytes);
    let limit = limit.map_or(i64::MAX, |l| l.min(i64::MAX as usize) as i64);
    let order = if last { "DESC" } else { "ASC" };
    // The bounds keep the scan to the prefix's range of the primary key index.
    let statement = client
        .prepare_cached(&format!(
            "SELECT key, value FROM meta
             WHERE key >= $1 AND key < $2 AND ($3::bytea IS NULL OR key > $3)
             ORDER BY key {order} LIMIT $4"
        ))
        .await
        .map_err(db_err)?;
    let rows = client
        .query(&statement, &[&start, &end, &after, &limit])
        .await
        .map_err(db_err)?;
    Ok(rows
        .iter()
        .map(|row| {
            (
                String::from_utf8_lossy(row.get::<_, &[u8]>(0)).into_owned(),
                row.get(1),
            )
        })
        .collect())
}

/// The documents appended to after `since` that `peer` synced before and lacks
/// some of, and the change counter, read in one snapshot: every sequence number up
/// to the counter is committed and visible (the counter's row lock orders them).
pub(super) async fn changed_since(
    client: &mut Object,
    since: u64,
    peer: &StorageId,
) -> StoreResult<ChangedSince> {
    let since = i64::try_from(since).unwrap_or(i64::MAX);
    let tx = snapshot(client).await?;
    let cursor: i64 = tx
        .query_one("SELECT last FROM change_counter", &[])
        .await
        .map_err(db_err)?
        .get(0);
    let rows = tx
        .query(
            &tx.prepare_cached(
                "SELECT c.doc, d.heads, d.quarantine IS NOT NULL, s.state
                 FROM changes c
                 JOIN documents d ON d.id = c.doc
                 JOIN sync_states s ON s.doc = c.doc AND s.peer = $2
                 WHERE c.seq > $1
                 ORDER BY c.seq",
            )
            .await
            .map_err(db_err)?,
            &[&since, &peer.as_str()],
        )
        .await
        .map_err(db_err)?;
    tx.commit().await.map_err(db_err)?;
    let mut documents = Vec::new();
    for row in rows {
        let mut stored = visible_heads(row.get(1), row.get(2))?;
        let mut shared = automerge::sync::State::decode(row.get::<_, &[u8]>(3))
            .map(|s| s.shared_heads)
            .unwrap_or_default();
        stored.sort();
        shared.sort();
        if stored != shared {
            documents.push(DocumentId::from_bytes(row.get(0))?);
        }
    }
    Ok(ChangedSince {
        documents,
        cursor: cursor.max(0) as u64,
    })
}
