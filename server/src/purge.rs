//! Purging documents for good: through the running server's engine (which lets go
//! of them and tells the devices that held them), or in the store when no server
//! runs. Either way the store is then vacuumed, so that no file under the data
//! directory holds a byte of them, and each purge is in the audit log.

use std::sync::Arc;
use std::time::Duration;

use coachsync_core::DocumentId;
use coachsync_core::access::{ACCESS_KEY_PREFIX, AccessBook, PURGED_KEY_PREFIX};
use coachsync_core::domain::Visibility;
use coachsync_core::store::{Store, StoreWrite, VacuumReport};

use crate::accounts::SharedAccounts;
use crate::audit::{AuditLog, Record};
use crate::driver::{DriverHandle, DriverMsg};
use crate::error::{Error, Result};

/// Check that every ID names a document this store holds (or held: purging again
/// is refused, so a typo is never mistaken for success).
pub fn check_purgeable(store: &dyn Store, ids: &[String]) -> Result<Vec<DocumentId>> {
    if ids.is_empty() {
        return Err(Error::Usage("name at least one document to purge".into()));
    }
    let purged = store.meta(PURGED_KEY_PREFIX)?;
    let mut documents = Vec::new();
    for id in ids {
        let document: DocumentId = id
            .parse()
            .map_err(|e| Error::Usage(format!("{id:?} is not a document ID: {e}")))?;
        let key = format!("{PURGED_KEY_PREFIX}{document}");
        if purged.iter().any(|(k, _)| *k == key) {
            return Err(Error::Usage(format!(
                "document {document} was already purged"
            )));
        }
        let has_record = !store
            .meta(&format!("{ACCESS_KEY_PREFIX}{document}"))?
            .is_empty();
        if store.heads(&document)?.is_none() && !has_record {
            return Err(Error::Usage(format!(
                "no document {document} on this server"
            )));
        }
        documents.push(document);
    }
    Ok(documents)
}

/// Purge `documents` (already checked) on behalf of `by`.
pub fn purge(
    store: &dyn Store,
    audit: &AuditLog,
    driver: Option<&DriverHandle>,
    documents: Vec<DocumentId>,
    by: &str,
    from: &str,
) -> Result<VacuumReport> {
    match driver {
        Some(driver) => Ok(crate::driver::ask_blocking(driver, |reply| {
            DriverMsg::Purge {
                documents,
                by: by.to_owned(),
                from: from.to_owned(),
                reply,
            }
        })??),
        None => {
            let mut book = AccessBook::load(store)?;
            let now = coachsync_core::utc::unix_ms();
            let mut writes = Vec::new();
            for document in &documents {
                writes.push(StoreWrite::Delete {
                    document: document.clone(),
                });
                writes.extend(book.purge(document, by, now));
                writes.push(audit.write(Record {
                    who: by.to_owned(),
                    action: "purge",
                    document: Some(document.to_string()),
                    from: Some(from.to_owned()),
                    ..Record::default()
                }));
            }
            store.commit(&writes)?;
            Ok(store.vacuum()?)
        }
    }
}

/// The private documents of users who were offboarded more than `after_ms` ago:
/// nobody can read them any more, and the retention rule says they go.
pub fn expired_private_notes(
    store: &dyn Store,
    offboarded: &[(String, i64)],
    now_ms: i64,
    after_ms: i64,
) -> Result<Vec<DocumentId>> {
    let due: Vec<&str> = offboarded
        .iter()
        .filter(|(_, at)| now_ms.saturating_sub(*at) >= after_ms)
        .map(|(user, _)| user.as_str())
        .collect();
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let book = AccessBook::load(store)?;
    let mut documents: Vec<DocumentId> = due
        .iter()
        .flat_map(|user| book.owned_documents(user))
        .filter(|d| {
            book.record(d)
                .is_some_and(|r| r.visibility == Some(Visibility::Private))
        })
        .collect();
    documents.sort();
    Ok(documents)
}

/// How often a running server looks for private notes past their retention.
const RETENTION_CHECK: Duration = Duration::from_secs(3600);

/// Purge offboarded users' private notes once `retention` has passed: at start, then
/// hourly, for as long as the server runs.
pub async fn retain_private_notes(
    store: Arc<dyn Store>,
    accounts: SharedAccounts,
    audit: Arc<AuditLog>,
    driver: DriverHandle,
    retention: Duration,
) {
    let mut every = tokio::time::interval(RETENTION_CHECK);
    loop {
        every.tick().await;
        let offboarded = accounts.read().expect("accounts lock").offboarded();
        if offboarded.is_empty() {
            continue;
        }
        let (store, audit, driver) = (store.clone(), audit.clone(), driver.clone());
        let result = tokio::task::spawn_blocking(move || {
            let now = coachsync_core::utc::unix_ms();
            let after = i64::try_from(retention.as_millis()).unwrap_or(i64::MAX);
            let due = expired_private_notes(&*store, &offboarded, now, after)?;
            if due.is_empty() {
                return Ok(0);
            }
            let count = due.len();
            purge(
                &*store,
                &audit,
                Some(&driver),
                due,
                "retention",
                "private notes retention",
            )?;
            Ok::<_, Error>(count)
        })
        .await;
        match result {
            Ok(Ok(0)) => {}
            Ok(Ok(count)) => {
                tracing::info!(
                    count,
                    "purged the private notes of offboarded users past retention"
                )
            }
            Ok(Err(e)) => tracing::error!(error = %e, "purging expired private notes failed"),
            Err(e) => tracing::error!(error = %e, "purging expired private notes panicked"),
        }
    }
}
