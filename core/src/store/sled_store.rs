//! The embedded store: sled, made durable.
//!
//! sled 0.34 needs help to keep what it acknowledges:
//! - its `flush` ends in `sync_file_range` on Linux, which does not survive power
//!   loss, so every commit also fsyncs the `db` file;
//! - it never fsyncs the `conf` file it writes at creation, nor the directory, so
//!   opening fsyncs `conf`, `db`, `blobs/` and the data directory once;
//! - page updates over a quarter of a segment are written as blob files that are
//!   never fsynced. A leaf page holds at most 17 entries before it splits, and sled
//!   rewrites a whole leaf now and then, so values are kept at
//!   [`MAX_VALUE_BYTES`](super::MAX_VALUE_BYTES) (8 KiB): a full leaf stays near
//!   140 KiB, well under a quarter of the 1 MiB segment. (The largest segment, 16 MiB,
//!   would allow bigger values but keeps two 16 MiB write buffers resident.)

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};

use super::layout::{
    CHANGE_COUNTER_KEY, Table, Tables, apply_write, change_key, changed_for_peer, doc_key,
    document_from_key, heads_of, load_document, load_heads, read_u64, size_of,
};
use super::{ChangedSince, Store, StoreWrite, StoredDocument, VacuumReport, verify_snapshot};
use crate::error::{Error, Result};
use crate::id::{DocumentId, StorageId};

/// sled's segment size; fixed for the life of a database. See the module docs for
/// how it bounds the stored value size.
pub const SEGMENT_SIZE: usize = 1024 * 1024;
const STORAGE_ID_KEY: &[u8] = b"storage-id";

/// How to open a [`SledStore`].
#[derive(Clone, Debug)]
pub struct SledOptions {
    /// The size of sled's page cache in bytes.
    pub cache_capacity: u64,
}

impl Default for SledOptions {
    fn default() -> Self {
        Self {
            cache_capacity: 64 * 1024 * 1024,
        }
    }
}

/// Documents in a sled database in a data directory.
pub struct SledStore {
    dir: PathBuf,
    options: SledOptions,
    /// `None` only while [`vacuum`](Store::vacuum) swaps the database files; every
    /// other use holds the read lock.
    open: RwLock<Option<Trees>>,
    storage_id: StorageId,
}

/// The open database and its trees.
struct Trees {
    db: sled::Db,
    docs: sled::Tree,
    chunks: sled::Tree,
    sync_states: sled::Tree,
    meta: sled::Tree,
    changes: sled::Tree,
    db_file: File,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore").field("dir", &self.dir).finish()
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::StorageIo {
        path: path.to_owned(),
        source,
    }
}

fn fsync_path(path: &Path) -> Result<()> {
    File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io_err(path))
}

impl SledStore {
    /// Open (or create) the store in `dir`. `new_storage_id` is called once, when the
    /// database is created, to name this store. A [`vacuum`](Store::vacuum) that a
    /// crash interrupted is finished (or, if its copy was incomplete, dropped) first.
    pub fn open(
        dir: &Path,
        options: &SledOptions,
        new_storage_id: impl FnOnce() -> StorageId,
    ) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        finish_vacuum(dir)?;
        let trees = Trees::open(dir, options)?;
        let storage_id = match trees.db.get(STORAGE_ID_KEY)? {
            Some(id) => StorageId::new(&String::from_utf8_lossy(&id))?,
            None => {
                let id = new_storage_id();
                trees.db.insert(STORAGE_ID_KEY, id.as_str().as_bytes())?;
                // A power cut must not forget the name of a store that peers may
                // already have been told.
                trees.sync()?;
                fsync_sled_files(dir)?;
                id
            }
        };
        Ok(Self {
            dir: dir.to_owned(),
            options: options.clone(),
            open: RwLock::new(Some(trees)),
            storage_id,
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Run `f` on the open database.
    fn with<T>(&self, f: impl FnOnce(&Trees) -> Result<T>) -> Result<T> {
        let open = self
            .open
            .read()
            .map_err(|_| Error::Storage("the store's lock is poisoned".into()))?;
        let trees = open.as_ref().ok_or_else(|| {
            Error::Storage(format!(
                "the store in {} could not be reopened after a vacuum",
                self.dir.display()
            ))
        })?;
        f(trees)
    }
}

impl Trees {
    fn open(dir: &Path, options: &SledOptions) -> Result<Self> {
        let config = sled::Config::new()
            .path(dir)
            .segment_size(SEGMENT_SIZE)
            .cache_capacity(options.cache_capacity)
            .flush_every_ms(Some(500));
        let db = open_waiting(&config, dir)?;
        let docs = db.open_tree("docs")?;
        let chunks = db.open_tree("chunks")?;
        let sync_states = db.open_tree("sync_states")?;
        let meta = db.open_tree("meta")?;
        let changes = db.open_tree("changes")?;
        let db_path = dir.join("db");
        let db_file = File::open(&db_path).map_err(io_err(&db_path))?;
        // sled never fsyncs these at creation; a power cut soon after would lose the
        // database whole.
        fsync_sled_files(dir)?;
        Ok(Self {
            db,
            docs,
            chunks,
            sync_states,
            meta,
            changes,
            db_file,
        })
    }

    fn tree(&self, table: Table) -> &sled::Tree {
        match table {
            Table::Docs => &self.docs,
            Table::Chunks => &self.chunks,
            Table::SyncStates => &self.sync_states,
            Table::Meta => &self.meta,
            Table::Changes => &self.changes,
        }
    }

    /// Make everything written so far durable: sled's flush, then an fsync of its
    /// file, since the flush alone does not survive power loss.
    fn sync(&self) -> Result<()> {
        self.db.flush()?;
        self.db_file.sync_all().map_err(|source| Error::StorageIo {
            path: PathBuf::from("db"),
            source,
        })
    }
}

/// Open sled, waiting out a lock that this process's earlier handle still holds.
fn open_waiting(config: &sled::Config, dir: &Path) -> Result<sled::Db> {
    let is_locked = |e: &sled::Error| {
        matches!(e, sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock
            || io.to_string().contains("lock"))
    };
    // sled's background writes can hold the directory's lock for a moment after
    // a store in this process is dropped: an app that closes and reopens its
    // store waits that out. Another process holding it is refused after this.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        match config.open() {
            Err(e) if is_locked(&e) && std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            other => break other,
        }
    }
    .map_err(|e| {
        if is_locked(&e) {
            Error::Storage(format!(
                "the data directory {} is in use (by another device, in this process or another) ({e})",
                dir.display()
            ))
        } else {
            Error::Storage(format!("cannot open {}: {e}", dir.display()))
        }
    })
}

fn fsync_sled_files(dir: &Path) -> Result<()> {
    for path in [
        dir.join("conf"),
        dir.join("db"),
        dir.join("blobs"),
        dir.to_owned(),
    ] {
        if path.exists() {
            fsync_path(&path)?;
        }
    }
    Ok(())
}

/// Reads outside a transaction.
struct Plain<'s>(&'s Trees);

impl Tables for Plain<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.0.tree(table).get(key)?.map(|v| v.to_vec()))
    }
    fn put(&self, table: Table, key: &[u8], value: &[u8]) -> Result<()> {
        self.0.tree(table).insert(key, value)?;
        Ok(())
    }
    fn remove(&self, table: Table, key: &[u8]) -> Result<()> {
        self.0.tree(table).remove(key)?;
        Ok(())
    }
}

/// Reads and writes inside one transaction over the five trees.
struct Tx<'t> {
    docs: &'t TransactionalTree,
    chunks: &'t TransactionalTree,
    sync_states: &'t TransactionalTree,
    meta: &'t TransactionalTree,
    changes: &'t TransactionalTree,
}

impl Tx<'_> {
    fn tree(&self, table: Table) -> &TransactionalTree {
        match table {
            Table::Docs => self.docs,
            Table::Chunks => self.chunks,
            Table::SyncStates => self.sync_states,
            Table::Meta => self.meta,
            Table::Changes => self.changes,
        }
    }
}

fn tx_err(e: sled::transaction::UnabortableTransactionError) -> Error {
    Error::Storage(format!("transaction: {e}"))
}

impl Tables for Tx<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self
            .tree(table)
            .get(key)
            .map_err(tx_err)?
            .map(|v| v.to_vec()))
    }
    fn put(&self, table: Table, key: &[u8], value: &[u8]) -> Result<()> {
        self.tree(table).insert(key, value).map_err(tx_err)?;
        Ok(())
    }
    fn remove(&self, table: Table, key: &[u8]) -> Result<()> {
        self.tree(table).remove(key).map_err(tx_err)?;
        Ok(())
    }
}

/// The store's operations on the open database; [`SledStore`] runs them under its
/// lock.
impl Trees {
    fn load(&self, document: &DocumentId) -> Result<Option<StoredDocument>> {
        load_document(&Plain(self), document, |prefix| {
            self.sync_states
                .scan_prefix(prefix)
                .map(|kv| {
                    let (k, v) = kv?;
                    Ok((k.to_vec(), v.to_vec()))
                })
                .collect()
        })
    }

    fn heads(&self, document: &DocumentId) -> Result<Option<Vec<automerge::ChangeHash>>> {
        load_heads(&Plain(self), document)
    }

    fn commit(&self, writes: &[StoreWrite]) -> Result<()> {
        if writes.is_empty() {
            return Ok(());
        }
        // Verify compactions before the transaction: the closure may run more than
        // once, and a bad snapshot must not fail the other writes of the batch.
        let writes: Vec<&StoreWrite> = writes
            .iter()
            .filter(|w| match w {
                StoreWrite::Compact {
                    snapshot,
                    heads,
                    document,
                } => {
                    let ok = verify_snapshot(snapshot, heads);
                    if !ok {
                        tracing::error!(%document, "compaction skipped: the snapshot does not load to its heads");
                    }
                    ok
                }
                _ => true,
            })
            .collect();
        // A transaction cannot scan: find the sync states of deleted documents now.
        // The store has one writer, so none appears in between.
        let mut doomed = Vec::new();
        for write in &writes {
            if let StoreWrite::Delete { document } = write {
                for key in self.sync_states.scan_prefix(doc_key(document)).keys() {
                    doomed.push(key?.to_vec());
                }
            }
        }
        (
            &self.docs,
            &self.chunks,
            &self.sync_states,
            &self.meta,
            &self.changes,
        )
            .transaction(|(docs, chunks, sync_states, meta, changes)| {
                let tx = Tx {
                    docs,
                    chunks,
                    sync_states,
                    meta,
                    changes,
                };
                for write in &writes {
                    apply_write(&tx, write).map_err(ConflictableTransactionError::Abort)?;
                }
                for key in &doomed {
                    tx.remove(Table::SyncStates, key)
                        .map_err(ConflictableTransactionError::Abort)?;
                }
                Ok(())
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => Error::from(e),
            })?;
        self.sync()
    }

    fn document_ids(&self) -> Result<Vec<DocumentId>> {
        self.docs
            .iter()
            .keys()
            .map(|k| document_from_key(&k?))
            .collect()
    }

    fn stored_heads(&self) -> Result<Vec<(DocumentId, Vec<automerge::ChangeHash>)>> {
        self.docs
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                Ok((document_from_key(&k)?, heads_of(&v)?))
            })
            .collect()
    }

    fn document_sizes(&self) -> Result<Vec<(DocumentId, u64)>> {
        self.docs
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                Ok((document_from_key(&k)?, size_of(&v)?))
            })
            .collect()
    }

    fn changed_since(&self, since: u64, peer: &StorageId) -> Result<ChangedSince> {
        let cursor = self
            .changes
            .get(CHANGE_COUNTER_KEY)?
            .map(|v| read_u64(&v))
            .transpose()?
            .unwrap_or(0);
        let mut changed = Vec::new();
        for kv in self.changes.range(change_key(since.saturating_add(1))..) {
            let (k, dk) = kv?;
            if k.len() == 8 {
                changed.push(dk.to_vec());
            }
        }
        Ok(ChangedSince {
            documents: changed_for_peer(&Plain(self), changed, peer)?,
            cursor,
        })
    }

    fn meta_after(
        &self,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        use std::ops::Bound;
        let start = Bound::Excluded(after.as_bytes().to_vec());
        self.meta
            .range::<Vec<u8>, _>((start, Bound::Unbounded))
            .take_while(|kv| {
                kv.as_ref()
                    .map_or(true, |(k, _)| k.starts_with(prefix.as_bytes()))
            })
            .take(limit)
            .map(|kv| {
                let (k, v) = kv?;
                Ok((String::from_utf8_lossy(&k).into_owned(), v.to_vec()))
            })
            .collect()
    }

    fn last_meta(&self, prefix: &str) -> Result<Option<(String, Vec<u8>)>> {
        self.meta
            .scan_prefix(prefix.as_bytes())
            .next_back()
            .map(|kv| {
                let (k, v) = kv?;
                Ok((String::from_utf8_lossy(&k).into_owned(), v.to_vec()))
            })
            .transpose()
    }

    fn meta(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        self.meta
            .scan_prefix(prefix.as_bytes())
            .map(|kv| {
                let (k, v) = kv?;
                Ok((String::from_utf8_lossy(&k).into_owned(), v.to_vec()))
            })
            .collect()
    }
}

impl Store for SledStore {
    fn load(&self, document: &DocumentId) -> Result<Option<StoredDocument>> {
        self.with(|t| t.load(document))
    }

    fn heads(&self, document: &DocumentId) -> Result<Option<Vec<automerge::ChangeHash>>> {
        self.with(|t| t.heads(document))
    }

    fn commit(&self, writes: &[StoreWrite]) -> Result<()> {
        self.with(|t| t.commit(writes))
    }

    fn document_ids(&self) -> Result<Vec<DocumentId>> {
        self.with(Trees::document_ids)
    }

    fn stored_heads(&self) -> Result<Vec<(DocumentId, Vec<automerge::ChangeHash>)>> {
        self.with(Trees::stored_heads)
    }

    fn document_sizes(&self) -> Result<Vec<(DocumentId, u64)>> {
        self.with(Trees::document_sizes)
    }

    fn storage_id(&self) -> StorageId {
        self.storage_id.clone()
    }

    fn changed_since(&self, since: u64, peer: &StorageId) -> Result<ChangedSince> {
        self.with(|t| t.changed_since(since, peer))
    }

    fn meta_after(
        &self,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        self.with(|t| t.meta_after(prefix, after, limit))
    }

    fn last_meta(&self, prefix: &str) -> Result<Option<(String, Vec<u8>)>> {
        self.with(|t| t.last_meta(prefix))
    }

    fn meta(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        self.with(|t| t.meta(prefix))
    }

    fn vacuum(&self) -> Result<VacuumReport> {
        let mut open = self
            .open
            .write()
            .map_err(|_| Error::Storage("the store's lock is poisoned".into()))?;
        let Some(trees) = open.as_ref() else {
            return Err(Error::Storage(format!(
                "the store in {} is not open",
                self.dir.display()
            )));
        };
        let bytes_before = sled_bytes(&self.dir)?;
        copy_for_vacuum(trees, &self.dir)?;
        // The old database must be closed before its files are replaced. From here
        // to the reopen the store is closed; a crash in between is finished by
        // `open`, from the complete copy.
        *open = None;
        finish_vacuum(&self.dir)?;
        *open = Some(Trees::open(&self.dir, &self.options)?);
        Ok(VacuumReport {
            bytes_before,
            bytes_after: sled_bytes(&self.dir)?,
        })
    }
}

/// The subdirectory a vacuum copies the live data into.
const VACUUM_DIR: &str = "vacuum.new";
/// Written into [`VACUUM_DIR`] once the copy is complete and durable: the names of
/// its files, one per line. Until it exists the copy is only a leftover.
const VACUUM_READY: &str = "READY";

/// Whether a data directory entry is one of sled's own files.
fn is_sled_file(name: &str) -> bool {
    matches!(name, "conf" | "db" | "blobs") || name.starts_with("snap.")
}

/// Bytes in sled's files in `dir` (blobs included).
fn sled_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_sled_file(&name) {
            continue;
        }
        let meta = entry.metadata().map_err(io_err(&entry.path()))?;
        if meta.is_dir() {
            for blob in std::fs::read_dir(entry.path()).map_err(io_err(&entry.path()))? {
                let blob = blob.map_err(io_err(&entry.path()))?;
                total += blob.metadata().map_err(io_err(&blob.path()))?.len();
            }
        } else {
            total += meta.len();
        }
    }
    Ok(total)
}

/// Copy every live key of every tree into a fresh database in [`VACUUM_DIR`], make
/// it durable, and mark it ready.
fn copy_for_vacuum(trees: &Trees, dir: &Path) -> Result<()> {
    trees.sync()?;
    let new_dir = dir.join(VACUUM_DIR);
    if new_dir.exists() {
        std::fs::remove_dir_all(&new_dir).map_err(io_err(&new_dir))?;
    }
    {
        let copy = open_waiting(
            &sled::Config::new()
                .path(&new_dir)
                .segment_size(SEGMENT_SIZE)
                .cache_capacity(16 * 1024 * 1024),
            &new_dir,
        )?;
        for name in trees.db.tree_names() {
            let from = trees.db.open_tree(&name)?;
            let to = copy.open_tree(&name)?;
            let mut batch = sled::Batch::default();
            let mut in_batch = 0;
            for kv in from.iter() {
                let (k, v) = kv?;
                batch.insert(k, v);
                in_batch += 1;
                if in_batch == 1024 {
                    to.apply_batch(std::mem::take(&mut batch))?;
                    in_batch = 0;
                }
            }
            to.apply_batch(batch)?;
        }
        copy.flush()?;
    }
    // Let sled's threads let go of the copy before its files are fsynced and moved.
    wait_unlocked(&new_dir)?;
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&new_dir).map_err(io_err(&new_dir))? {
        let entry = entry.map_err(io_err(&new_dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        fsync_path(&entry.path())?;
        names.push(name);
    }
    let ready = new_dir.join(VACUUM_READY);
    std::fs::write(&ready, names.join("\n")).map_err(io_err(&ready))?;
    fsync_path(&ready)?;
    fsync_path(&new_dir)?;
    Ok(())
}

/// Wait until no sled handle in this process holds the database in `dir`.
fn wait_unlocked(dir: &Path) -> Result<()> {
    let config = sled::Config::new().path(dir).segment_size(SEGMENT_SIZE);
    drop(open_waiting(&config, dir)?);
    Ok(())
}

/// Put a ready vacuum copy in place of the database files, or drop an incomplete
/// one. Every step can be repeated, so a crash at any point is finished by the next
/// open: the ready list says which files are the copy's, so files already moved are
/// not mistaken for old ones.
fn finish_vacuum(dir: &Path) -> Result<()> {
    let new_dir = dir.join(VACUUM_DIR);
    if !new_dir.exists() {
        return Ok(());
    }
    let ready = new_dir.join(VACUUM_READY);
    let Ok(list) = std::fs::read_to_string(&ready) else {
        tracing::warn!(dir = %new_dir.display(), "removing an incomplete vacuum copy");
        std::fs::remove_dir_all(&new_dir).map_err(io_err(&new_dir))?;
        return Ok(());
    };
    let copied: Vec<&str> = list.lines().filter(|l| !l.is_empty()).collect();
    for entry in std::fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_sled_file(&name) && !copied.contains(&name.as_str()) {
            remove_path(&entry.path())?;
        }
    }
    for name in &copied {
        let from = new_dir.join(name);
        if !from.exists() {
            continue;
        }
        let to = dir.join(name);
        if to.is_dir() {
            remove_path(&to)?;
        }
        std::fs::rename(&from, &to).map_err(io_err(&to))?;
    }
    fsync_path(dir)?;
    std::fs::remove_dir_all(&new_dir).map_err(io_err(&new_dir))?;
    fsync_path(dir)?;
    Ok(())
}

fn remove_path(path: &Path) -> Result<()> {
    if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    }
    .map_err(io_err(path))
}
