//! `coachsync admin migrate-store`: move an installation from its embedded store (a
//! sled data directory) into another store (a PostgreSQL database).
//!
//! Until the servers switch over, the data directory is the source of truth, so the
//! migration may be run again and again (after an interruption, or once more after the
//! old server stopped, to carry its last changes):
//!
//! - records (accounts, tokens, grants, relationships, purges, invites) become a copy
//!   of the data directory's: new and changed ones are written, and ones the data
//!   directory no longer has (a revoked token) are removed;
//! - audit entries are copied; the migration refuses to run when the database holds an
//!   audit entry the data directory lacks, since then a server has used the database
//!   on its own and the data directory is no longer the source of truth;
//! - documents are merged, never replaced: a document the database lacks is copied, one
//!   whose changes differ gets the data directory's changes added (through the change
//!   log, so that connected devices hear of them), and one already equal is left alone;
//! - a document purged in the data directory is deleted from the database too.
//!
//! Every document is then read back from the database and loaded, and its heads must
//! hold every head the data directory has.

use automerge::{Automerge, ChangeHash, ReadDoc};
use coachsync_core::access::PURGED_KEY_PREFIX;
use coachsync_core::id::DocumentId;
use coachsync_core::store::{Store, StoreWrite};

use crate::audit::AUDIT_PREFIX;
use crate::error::{Error, Result};

/// Records read per round trip.
const PAGE: usize = 500;

/// A batch is committed once its writes hold this many bytes of document data...
const BATCH_BYTES: usize = 8 * 1024 * 1024;
/// ...or this many writes.
const BATCH_WRITES: usize = 500;

/// What a migration did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct MigrationReport {
    /// Documents in the data directory.
    pub documents: usize,
    /// Documents the database lacked, now copied.
    pub copied: usize,
    /// Documents the database had with other changes, now merged with the data
    /// directory's.
    pub merged: usize,
    /// Documents the database already had with every change.
    pub unchanged: usize,
    /// Documents put aside in the data directory (they did not load), copied as they
    /// are and put aside in the database too.
    pub quarantined: usize,
    /// Documents purged in the data directory and deleted from the database.
    pub purged: usize,
    /// Records written (new or changed).
    pub records_written: usize,
    /// Records the database had and the data directory no longer has, removed.
    pub records_removed: usize,
    /// Records already equal.
    pub records_unchanged: usize,
    /// Sync states copied.
    pub sync_states: usize,
}

impl std::fmt::Display for MigrationReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} documents: {} copied, {} merged, {} unchanged, {} put aside, {} purged; \
             records: {} written, {} removed, {} unchanged; {} sync states; \
             every document's heads verified",
            self.documents,
            self.copied,
            self.merged,
            self.unchanged,
            self.quarantined,
            self.purged,
            self.records_written,
            self.records_removed,
            self.records_unchanged,
            self.sync_states
        )
    }
}

/// Copy everything in `source` into `target`, then verify every document.
pub fn migrate(source: &dyn Store, target: &dyn Store) -> Result<MigrationReport> {
    let mut report = MigrationReport::default();
    let mut batch = Batch::new(target);
    // A first walk only checks, so that a refusal leaves the database untouched.
    migrate_records(source, target, None, &mut MigrationReport::default())?;
    migrate_records(source, target, Some(&mut batch), &mut report)?;
    batch.flush()?;

    let ids = source.document_ids()?;
    report.documents = ids.len();
    let mut failed = Vec::new();
    // Each copied document's heads, so that the check below need not load it again.
    let mut expected = Vec::with_capacity(ids.len());
    for (n, id) in ids.iter().enumerate() {
        if n > 0 && n % 1000 == 0 {
            tracing::info!(done = n, of = ids.len(), "migrating documents");
        }
        match migrate_document(source, target, id, &mut batch, &mut report) {
            Ok(heads) => expected.push(heads),
            Err(e) => {
                failed.push(format!("{id}: {e}"));
                expected.push(None);
            }
        }
    }
    remove_purged(source, target, &mut batch, &mut report)?;
    batch.flush()?;
    if report.purged > 0 {
        target.vacuum()?;
    }
    for (id, heads) in ids.iter().zip(&expected) {
        if let Err(e) = verify(source, target, id, heads.as_deref()) {
            failed.push(format!("{id}: {e}"));
        }
    }
    if !failed.is_empty() {
        failed.sort();
        failed.dedup();
        return Err(Error::Usage(format!(
            "{} of {} documents did not migrate (run it again once the cause is mended; \
             what was copied stays):\n  {}",
            failed.len(),
            ids.len(),
            failed.join("\n  ")
        )));
    }
    Ok(report)
}

/// Writes for the target, committed in batches.
struct Batch<'a> {
    target: &'a dyn Store,
    writes: Vec<StoreWrite>,
    bytes: usize,
}

impl<'a> Batch<'a> {
    fn new(target: &'a dyn Store) -> Self {
        Self {
            target,
            writes: Vec::new(),
            bytes: 0,
        }
    }

    fn push(&mut self, write: StoreWrite) -> Result<()> {
        self.bytes += match &write {
            StoreWrite::Append { data, .. } => data.len(),
            StoreWrite::Meta { value, .. } => value.len(),
            StoreWrite::SyncState { state, .. } => state.len(),
            _ => 0,
        };
        self.writes.push(write);
        if self.bytes >= BATCH_BYTES || self.writes.len() >= BATCH_WRITES {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if !self.writes.is_empty() {
            self.target.commit(&self.writes)?;
        }
        self.writes.clear();
        self.bytes = 0;
        Ok(())
    }
}

/// Every record, in key order, read a page at a time.
struct Records<'a> {
    store: &'a dyn Store,
    page: std::vec::IntoIter<(String, Vec<u8>)>,
    last: String,
    done: bool,
}

impl<'a> Records<'a> {
    fn new(store: &'a dyn Store) -> Self {
        Self {
            store,
            page: Vec::new().into_iter(),
            last: String::new(),
            done: false,
        }
    }

    fn next(&mut self) -> Result<Option<(String, Vec<u8>)>> {
        if let Some(record) = self.page.next() {
            self.last.clone_from(&record.0);
            return Ok(Some(record));
        }
        if self.done {
            return Ok(None);
        }
        let page = self.store.meta_after("", &self.last, PAGE)?;
        self.done = page.len() < PAGE;
        self.page = page.into_iter();
        match self.page.next() {
            Some(record) => {
                self.last.clone_from(&record.0);
                Ok(Some(record))
            }
            None => Ok(None),
        }
    }
}

/// Walk both stores' records side by side in key order, writing what differs to
/// `batch` (without one, only checking that the migration may go ahead).
fn migrate_records(
    source: &dyn Store,
    target: &dyn Store,
    mut batch: Option<&mut Batch<'_>>,
    report: &mut MigrationReport,
) -> Result<()> {
    let mut push = |write: StoreWrite| match batch.as_mut() {
        Some(batch) => batch.push(write),
        None => Ok(()),
    };
    let mut from = Records::new(source);
    let mut to = Records::new(target);
    let mut a = from.next()?;
    let mut b = to.next()?;
    loop {
        let order = match (&a, &b) {
            (None, None) => break,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((ka, _)), Some((kb, _))) => ka.as_bytes().cmp(kb.as_bytes()),
        };
        match order {
            std::cmp::Ordering::Less => {
                let (key, value) = a.take().expect("compared");
                push(StoreWrite::Meta { key, value })?;
                report.records_written += 1;
                a = from.next()?;
            }
            std::cmp::Ordering::Greater => {
                let (key, _) = b.take().expect("compared");
                if key.starts_with(AUDIT_PREFIX) {
                    return Err(used_on_its_own(&key));
                }
                push(StoreWrite::RemoveMeta { key })?;
                report.records_removed += 1;
                b = to.next()?;
            }
            std::cmp::Ordering::Equal => {
                let (key, value) = a.take().expect("compared");
                let (_, theirs) = b.take().expect("compared");
                if value == theirs {
                    report.records_unchanged += 1;
                } else if key.starts_with(AUDIT_PREFIX) {
                    return Err(used_on_its_own(&key));
                } else {
                    push(StoreWrite::Meta { key, value })?;
                    report.records_written += 1;
                }
                a = from.next()?;
                b = to.next()?;
            }
        }
    }
    Ok(())
}

fn used_on_its_own(key: &str) -> Error {
    Error::Usage(format!(
        "the database has an audit entry ({key}) that the data directory lacks: a server \
         has used the database on its own since, and copying the data directory over it \
         would undo what that server recorded. Migrate into a database no server uses yet \
         (nothing was changed)"
    ))
}

/// Load a document; a failure says `what` went wrong, and why.
fn load(bytes: &[u8], what: &str) -> Result<Automerge> {
    coachsync_core::store::load_document(bytes).map_err(|e| Error::Usage(format!("{what}: {e}")))
}

fn sorted(heads: &[ChangeHash]) -> Vec<ChangeHash> {
    let mut heads = heads.to_vec();
    heads.sort();
    heads
}

/// Copy or merge one document; its heads in the data directory, unless it was put
/// aside there (or is gone).
fn migrate_document(
    source: &dyn Store,
    target: &dyn Store,
    id: &DocumentId,
    batch: &mut Batch<'_>,
    report: &mut MigrationReport,
) -> Result<Option<Vec<ChangeHash>>> {
    let Some(stored) = source.load(id)? else {
        return Ok(None);
    };
    let theirs = target.heads(id)?.map(|h| sorted(&h));
    if let Some(reason) = stored.quarantined {
        report.quarantined += 1;
        if theirs.is_none() {
            let heads = source.heads(id)?.unwrap_or_default();
            batch.push(StoreWrite::Append {
                document: id.clone(),
                data: stored.data,
                heads,
            })?;
            batch.push(StoreWrite::Quarantine {
                document: id.clone(),
                reason,
            })?;
        }
        return Ok(None);
    }
    let doc = load(&stored.data, "does not load from the data directory")?;
    let heads = sorted(&doc.get_heads());
    let copied = theirs.is_none();
    match theirs {
        Some(theirs) if theirs == heads => report.unchanged += 1,
        None => {
            batch.push(StoreWrite::Append {
                document: id.clone(),
                data: doc.save(),
                heads: heads.clone(),
            })?;
            report.copied += 1;
        }
        Some(_) => {
            let existing = target.load(id)?.unwrap_or_default();
            let mut merged = load(&existing.data, "does not load from the database")?;
            let before = sorted(&merged.get_heads());
            merged
                .load_incremental(&stored.data)
                .map_err(|e| Error::Usage(format!("does not merge: {e}")))?;
            let after = sorted(&merged.get_heads());
            if after == before {
                // The database holds every change of the data directory's and more.
                report.unchanged += 1;
            } else {
                // Only what the database lacks, appended (not compacted) so that the
                // change log carries it to the devices of servers already running on
                // the database.
                batch.push(StoreWrite::Append {
                    document: id.clone(),
                    data: merged.save_after(&before),
                    heads: after,
                })?;
                report.merged += 1;
            }
        }
    }
    // A document the database had keeps its own sync states, which are newer.
    if !copied {
        return Ok(Some(heads));
    }
    for (storage_id, state) in stored.sync_states {
        batch.push(StoreWrite::SyncState {
            document: id.clone(),
            storage_id,
            state,
        })?;
        report.sync_states += 1;
    }
    Ok(Some(heads))
}

/// Delete from the target the documents the source has purge records for.
fn remove_purged(
    source: &dyn Store,
    target: &dyn Store,
    batch: &mut Batch<'_>,
    report: &mut MigrationReport,
) -> Result<()> {
    for (key, _) in source.meta(PURGED_KEY_PREFIX)? {
        let Ok(id) = key[PURGED_KEY_PREFIX.len()..].parse::<DocumentId>() else {
            continue;
        };
        if target.heads(&id)?.is_some() || target.load(&id)?.is_some() {
            batch.push(StoreWrite::Delete { document: id })?;
            report.purged += 1;
        }
    }
    Ok(())
}

/// Read the document back from the target: it must load, and hold every head the
/// source has (`heads`, from the copy; read again from the source when the copy did
/// not give them: a document put aside there, or one whose copy failed).
fn verify(
    source: &dyn Store,
    target: &dyn Store,
    id: &DocumentId,
    heads: Option<&[ChangeHash]>,
) -> Result<()> {
    let Some(copy) = target.load(id)? else {
        return if source.load(id)?.is_some() {
            Err(Error::Usage(
                "missing from the database after the copy".into(),
            ))
        } else {
            Ok(())
        };
    };
    let want: Vec<ChangeHash> = match heads {
        Some(heads) => heads.to_vec(),
        None => {
            let Some(stored) = source.load(id)? else {
                return Ok(());
            };
            if stored.quarantined.is_some() {
                // Copied as it is, put aside in the database too, or held there in a
                // form that loads: nothing better can come from the data directory.
                let loads = || load(&copy.data, "").is_ok();
                return if copy.data == stored.data || copy.quarantined.is_some() || loads() {
                    Ok(())
                } else {
                    Err(Error::Usage(
                        "put aside in the data directory, and the database's copy does not load either"
                            .into(),
                    ))
                };
            }
            load(&stored.data, "does not load from the data directory")?.get_heads()
        }
    };
    let loaded = load(&copy.data, "the copy does not load")?;
    let missing: Vec<String> = want
        .iter()
        .filter(|h| loaded.get_change_by_hash(h).is_none())
        .map(|h| h.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(Error::Usage(format!(
            "the copy lacks heads {}",
            missing.join(", ")
        )));
    }
    Ok(())
}
