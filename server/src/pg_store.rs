//! The PostgreSQL store: documents in a database, for servers that do not keep
//! them on their own disk (and, later, for several servers sharing one database).
//!
//! The tables mirror the embedded store's key layout (see the migrations): a row
//! per document (heads, size, quarantine, change sequence), its chunks in parts,
//! sync states per peer, the application's meta records, and the change log. A
//! [`commit`](Store::commit) is one transaction and returns after COMMIT is
//! acknowledged, with `synchronous_commit` set on for every session, so an
//! acknowledged batch is in the WAL on the database's disk: the durability contract
//! of ARCHITECTURE §4, with PostgreSQL doing the fsync.
//!
//! # Running an async driver behind a synchronous trait
//!
//! [`Store`] is synchronous. It is called from the store worker thread and from
//! `spawn_blocking`, but also from async code on runtime worker threads (the server
//! reads accounts and access records while it starts) and from tests without any
//! runtime. `Handle::block_on` panics on a runtime worker thread, so the store owns
//! a small runtime of its own (two worker threads, `coachsync-pg`): each call sends
//! its future there and waits for the answer on a channel. That works from any
//! thread, and blocks the caller exactly as a sled read blocks it. The pool's
//! connection tasks live on that runtime too, so they keep running whatever the
//! caller's runtime is doing, including shutting down.

mod database_url;
mod notices;
mod reads;
mod schema;
mod tls;
mod vacuum;
mod writes;

use std::future::Future;
use std::time::Duration;

use automerge::ChangeHash;
use coachsync_core::store::{
    ChangedSince, Store, StoreWrite, StoredDocument, VacuumReport, verify_snapshot,
};
use coachsync_core::{DocumentId, StorageId};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};

use crate::error::{Error, Result};

pub use database_url::DatabaseUrl;
pub use notices::Notice;
pub use tls::{Check, MakeRustlsConnect, TlsSettings};

/// A result of the [`Store`] trait.
type StoreResult<T> = coachsync_core::Result<T>;

/// The largest part a chunk is split into. PostgreSQL has no blob-file problem to
/// avoid (sled's reason for 8 KiB parts); this only bounds the size of one row and
/// of one message on the wire.
const PART_BYTES: usize = 1024 * 1024;

/// How to open a [`PostgresStore`].
#[derive(Clone, Debug)]
pub struct PgOptions {
    /// The most connections the store keeps open.
    pub pool_size: usize,
    /// How long to wait for a connection: to connect, or for one to be free.
    pub connect_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        Self {
            pool_size: 8,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Documents in a PostgreSQL database.
pub struct PostgresStore {
    pool: Pool,
    /// How to open a connection of its own (the listener's).
    config: tokio_postgres::Config,
    /// This server among those sharing the database, so it skips its own notices.
    node: String,
    /// `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    storage_id: StorageId,
    url: DatabaseUrl,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("url", &self.url)
            .field("storage_id", &self.storage_id)
            .finish()
    }
}

impl PostgresStore {
    /// Connect, bring the schema up to date, and read the store's storage ID, which
    /// `new_storage_id` makes (once, when the database has none yet). Fails with a
    /// message naming the database (never its password) when it cannot be reached.
    pub fn open(
        url: &DatabaseUrl,
        options: &PgOptions,
        new_storage_id: impl FnOnce() -> StorageId,
    ) -> Result<Self> {
        let failed = |reason: String| Error::Database {
            target: url.to_string(),
            reason,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("coachsync-pg")
            .enable_all()
            .build()
            .map_err(|e| failed(format!("cannot start the database runtime: {e}")))?;
        let mut config = url.config().clone();
        // Per session, whatever the database's or role's default: an acknowledged
        // COMMIT must be flushed to disk.
        let options_flag = match config.get_options() {
            Some(given) => format!("{given} -c synchronous_commit=on"),
            None => "-c synchronous_commit=on".to_owned(),
        };
        config.options(options_flag);
        if config.get_application_name().is_none() {
            config.application_name("coachsync");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        let listen_config = config.clone();
        let manager = Manager::from_config(
            config,
            url.connector(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(options.connect_timeout))
            .create_timeout(Some(options.connect_timeout))
            .build()
            .map_err(|e| failed(format!("cannot make the connection pool: {e}")))?;

        let setup_pool = pool.clone();
        let fresh = new_storage_id().as_str().to_owned();
        let identity: std::result::Result<(String, Option<String>), String> =
            block(&runtime, async move {
                let mut client = setup_pool
                    .get()
                    .await
                    .map_err(|e| format!("cannot connect: {}", pool_error_text(&e)))?;
                check_durability(&client).await?;
                schema::migrate(&mut client).await?;
                identity(&client, &fresh)
                    .await
                    .map_err(|e| driver_error_text(&e))
            })
            .map_err(|e| failed(e.to_string()))?;
        let (storage_id, restored_from) = identity.map_err(failed)?;
        if let Some(previous) = restored_from {
            tracing::warn!(
                previous,
                storage_id,
                "the database was restored or copied since the store last opened (its origin changed): it takes a new storage ID, and devices sync everything once"
            );
        }
        let storage_id = StorageId::new(&storage_id)?;
        tracing::debug!(%url, schema = schema::latest_version(), "postgres store open");
        Ok(Self {
            pool,
            config: listen_config,
            node: uuid::Uuid::new_v4().to_string(),
            runtime: Some(runtime),
            storage_id,
            url: url.clone(),
        })
    }

    /// What the other servers sharing the database store, as they commit it (their
    /// notices; never this store's own), until the receiver is dropped.
    /// Each notification is counted, with its lag, in `metrics`.
    pub fn listen(
        &self,
        metrics: std::sync::Arc<crate::metrics::Metrics>,
    ) -> tokio::sync::mpsc::UnboundedReceiver<Notice> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        if let Some(runtime) = &self.runtime {
            runtime.spawn(notices::listen(
                self.config.clone(),
                self.url.connector(),
                self.node.clone(),
                tx,
                metrics,
            ));
        }
        rx
    }

    /// How busy the connection pool is now, from any thread, for as long as the
    /// store's pool lives.
    pub fn pool_probe(&self) -> impl Fn() -> crate::metrics::PoolUse + Send + Sync + 'static {
        let pool = self.pool.clone();
        move || {
            let status = pool.status();
            crate::metrics::PoolUse {
                connections: status.size,
                available: status.available,
                waiting: status.waiting,
            }
        }
    }

    /// The database, without its password.
    pub fn url(&self) -> &DatabaseUrl {
        &self.url
    }

    /// Run `f` with a pooled connection on the store's runtime and wait for it.
    fn with_client<T, F, Fut>(&self, f: F) -> StoreResult<T>
    where
        F: FnOnce(deadpool_postgres::Object) -> Fut + Send + 'static,
        Fut: Future<Output = StoreResult<T>> + Send + 'static,
        T: Send + 'static,
    {
        let runtime = self
            .runtime
            .as_ref()
            .ok_or_else(|| coachsync_core::Error::Storage("the store is closed".into()))?;
        let pool = self.pool.clone();
        block(runtime, async move {
            let client = pool.get().await.map_err(|e| {
                coachsync_core::Error::Storage(format!(
                    "postgres: no connection: {}",
                    pool_error_text(&e)
                ))
            })?;
            f(client).await
        })?
    }
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // Dropping a runtime waits for its threads, which panics inside async code
        // (where a server may drop its store); shutting down in the background does
        // not wait.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// Run `future` on `runtime` and wait for its output on this thread.
fn block<T: Send + 'static>(
    runtime: &tokio::runtime::Runtime,
    future: impl Future<Output = T> + Send + 'static,
) -> StoreResult<T> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = tx.send(future.await);
    });
    rx.recv()
        .map_err(|_| coachsync_core::Error::Storage("postgres: the database task failed".into()))
}

/// The store's storage ID, made from `fresh` when the database has none, or when its
/// data came from elsewhere (a restore; see the migration `0002_store_origin.sql`), then
/// with the storage ID it had. Nodes opening at once agree: the first write wins.
async fn identity(
    client: &deadpool_postgres::Object,
    fresh: &str,
) -> std::result::Result<(String, Option<String>), tokio_postgres::Error> {
    let origin: Option<String> = match client
        .query_one(
            "SELECT d.oid::text || '/' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8)
             FROM pg_database d WHERE d.datname = current_database()",
            &[],
        )
        .await
    {
        Ok(row) => Some(row.get(0)),
        Err(e) => {
            // Some PostgreSQL services do not offer these functions: the store still
            // opens, without noticing restores.
            tracing::warn!(
                error = %driver_error_text(&e),
                "cannot read the database's OID and WAL timeline; a restore will not be noticed"
            );
            None
        }
    };
    client
        .execute(
            "INSERT INTO store_identity (storage_id, origin) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
            &[&fresh, &origin],
        )
        .await?;
    // A store made before origins were kept takes today's as its own.
    client
        .execute(
            "UPDATE store_identity SET origin = $1 WHERE origin IS NULL",
            &[&origin],
        )
        .await?;
    let (before_id, before_origin): (String, Option<String>) = {
        let row = client
            .query_one("SELECT storage_id, origin FROM store_identity", &[])
            .await?;
        (row.get(0), row.get(1))
    };
    // The WHERE is checked again under the row's lock: of nodes opening at once on a
    // restored database, one changes the ID and the others read it.
    let changed = origin.is_some()
        && before_origin != origin
        && client
            .execute(
                "UPDATE store_identity SET storage_id = $1, origin = $2 WHERE origin <> $2",
                &[&fresh, &origin],
            )
            .await?
            == 1;
    let moved = changed.then(|| {
        format!(
            "{} (storage ID {before_id})",
            before_origin.as_deref().unwrap_or("unknown")
        )
    });
    let storage_id = client
        .query_one("SELECT storage_id FROM store_identity", &[])
        .await?
        .get(0);
    Ok((storage_id, moved))
}

/// Refuse a session whose commits would not be durable; warn when the server
/// itself does not fsync.
async fn check_durability(client: &deadpool_postgres::Object) -> std::result::Result<(), String> {
    let show = |name: &'static str| async move {
        client
            .query_one(&format!("SHOW {name}"), &[])
            .await
            .map(|row| row.get::<_, String>(0))
            .map_err(|e| e.to_string())
    };
    let synchronous_commit = show("synchronous_commit").await?;
    if synchronous_commit == "off" {
        return Err("synchronous_commit is off for this connection: commits would not be durable when acknowledged".into());
    }
    if show("fsync").await? != "on" {
        tracing::warn!(
            "the database runs with fsync=off: what it acknowledges can be lost in a power cut"
        );
    }
    Ok(())
}

/// A pool error in words: the driver's error with its causes (such as "Connection
/// refused"), which the pool's own message leaves out.
fn pool_error_text(e: &deadpool_postgres::PoolError) -> String {
    use deadpool_postgres::PoolError;
    match e {
        PoolError::Backend(e) => driver_error_text(e),
        PoolError::Timeout(_) => "timed out waiting for a connection".to_owned(),
        other => other.to_string(),
    }
}

/// A driver error as the store's error.
fn db_err(e: tokio_postgres::Error) -> coachsync_core::Error {
    coachsync_core::Error::Storage(format!("postgres: {}", driver_error_text(&e)))
}

/// The driver's message, with the server's own (`ERROR: ...`) when there is one,
/// or the causes below it (an I/O error's "Connection refused").
fn driver_error_text(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        cause = c.source();
    }
    text
}

/// Heads as stored: 32-byte hashes, concatenated.
fn heads_bytes(heads: &[ChangeHash]) -> Vec<u8> {
    heads.iter().flat_map(|h| h.0).collect()
}

/// Heads read back from [`heads_bytes`].
fn heads_from(bytes: &[u8]) -> StoreResult<Vec<ChangeHash>> {
    if !bytes.len().is_multiple_of(32) {
        return Err(coachsync_core::Error::Storage(
            "postgres: a document's heads are not whole 32-byte hashes".into(),
        ));
    }
    Ok(bytes
        .chunks_exact(32)
        .map(|h| ChangeHash(h.try_into().expect("32 bytes")))
        .collect())
}

/// The first key after every key that starts with `prefix`. Keys are UTF-8, which
/// never holds the byte 0xFF, so `[0xFF]` is past them all.
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xFF]
}

impl Store for PostgresStore {
    fn load(&self, document: &DocumentId) -> StoreResult<Option<StoredDocument>> {
        let document = document.clone();
        self.with_client(move |mut client| async move { reads::load(&mut client, &document).await })
    }

    fn heads(&self, document: &DocumentId) -> StoreResult<Option<Vec<ChangeHash>>> {
        let document = document.clone();
        self.with_client(move |client| async move { reads::heads(&client, &document).await })
    }

    fn commit(&self, writes: &[StoreWrite]) -> StoreResult<()> {
        if writes.is_empty() {
            return Ok(());
        }
        // Verify compactions here, on the calling thread (it is CPU work), before the
        // transaction: a bad snapshot is skipped without failing the batch.
        let writes: Vec<StoreWrite> = writes
            .iter()
            .filter(|w| match w {
                StoreWrite::Compact {
                    document,
                    snapshot,
                    heads,
                } => {
                    let ok = verify_snapshot(snapshot, heads);
                    if !ok {
                        tracing::error!(%document, "compaction skipped: the snapshot does not load to its heads");
                    }
                    ok
                }
                _ => true,
            })
            .cloned()
            .collect();
        let announce = notices::payloads(&self.node, &writes);
        self.with_client(move |mut client| async move {
            writes::commit(&mut client, &writes, &announce)
                .await
                .map_err(db_err)
        })
    }

    fn document_ids(&self) -> StoreResult<Vec<DocumentId>> {
        Ok(self
            .with_client(|client| async move { reads::documents(&client).await })?
            .into_iter()
            .map(|(id, _, _)| id)
            .collect())
    }

    fn stored_heads(&self) -> StoreResult<Vec<(DocumentId, Vec<ChangeHash>)>> {
        Ok(self
            .with_client(|client| async move { reads::documents(&client).await })?
            .into_iter()
            .map(|(id, heads, _)| (id, heads))
            .collect())
    }

    fn document_sizes(&self) -> StoreResult<Vec<(DocumentId, u64)>> {
        Ok(self
            .with_client(|client| async move { reads::documents(&client).await })?
            .into_iter()
            .map(|(id, _, size)| (id, size))
            .collect())
    }

    fn storage_id(&self) -> StorageId {
        self.storage_id.clone()
    }

    fn meta(&self, prefix: &str) -> StoreResult<Vec<(String, Vec<u8>)>> {
        let prefix = prefix.to_owned();
        self.with_client(move |client| async move {
            reads::meta(&client, &prefix, None, None, false).await
        })
    }

    fn meta_after(
        &self,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> StoreResult<Vec<(String, Vec<u8>)>> {
        let (prefix, after) = (prefix.to_owned(), after.to_owned());
        self.with_client(move |client| async move {
            reads::meta(&client, &prefix, Some(&after), Some(limit), false).await
        })
    }

    fn last_meta(&self, prefix: &str) -> StoreResult<Option<(String, Vec<u8>)>> {
        let prefix = prefix.to_owned();
        Ok(self
            .with_client(move |client| async move {
                reads::meta(&client, &prefix, None, Some(1), true).await
            })?
            .pop())
    }

    fn changed_since(&self, since: u64, peer: &StorageId) -> StoreResult<ChangedSince> {
        let peer = peer.clone();
        self.with_client(move |mut client| async move {
            reads::changed_since(&mut client, since, &peer).await
        })
    }

    /// `VACUUM FULL` of the store's tables: see [`vacuum`](self::vacuum) for what
    /// that removes and what it cannot reach (the WAL, backups, standbys). The bytes
    /// reported are those of the store's tables, indexes included.
    fn check(&self) -> StoreResult<()> {
        self.with_client(|client| async move {
            client.simple_query("SELECT 1").await.map_err(db_err)?;
            Ok(())
        })
    }

    fn vacuum(&self) -> StoreResult<VacuumReport> {
        self.with_client(|client| async move {
            let bytes_before = vacuum::table_bytes(&client).await?;
            vacuum::vacuum_full(&client).await?;
            Ok(VacuumReport {
                bytes_before,
                bytes_after: vacuum::table_bytes(&client).await?,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends_bound_exactly_the_keys_with_the_prefix() {
        assert_eq!(prefix_end(b"log/"), b"log0".to_vec());
        assert_eq!(prefix_end(b""), vec![0xFF]);
        assert_eq!(prefix_end(&[b'a', 0xFF]), b"b".to_vec());
        let end = prefix_end("é".as_bytes());
        assert!("é/x".as_bytes() < end.as_slice() && "ê".as_bytes() >= end.as_slice());
    }

    #[test]
    fn heads_round_trip_and_a_torn_value_is_an_error() {
        let heads = vec![ChangeHash([1; 32]), ChangeHash([2; 32])];
        assert_eq!(heads_from(&heads_bytes(&heads)).unwrap(), heads);
        assert!(heads_from(&[0; 33]).is_err());
    }
}
