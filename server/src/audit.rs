//! The audit log: who did what to which document, when and from where; never any
//! document content. Appended through the store like everything else, read by
//! admins through `GET /api/audit` and `coachsync admin audit`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use coachsync_core::store::{Store, StoreWrite};
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// The key prefix of every audit entry.
pub(crate) const AUDIT_PREFIX: &str = "audit/";

/// One entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Its place in the log.
    pub seq: u64,
    /// When, RFC 3339 UTC.
    pub time: String,
    /// Who: a user name, `anonymous`, or `unknown` for a token that did not work.
    pub who: String,
    /// What: `login`, `login-refused`, `grant`, `revoke`, `refused-read`,
    /// `refused-write`, `refused-create`, `refused-grant`, `open` (a user's first sync
    /// of a document on a connection), `user-add`, `token-issue`, `token-revoke`,
    /// `group-add`, `group-remove`, `relationship-add`, `relationship-end`,
    /// `relationship-member-add`, `relationship-member-remove`.
    pub action: String,
    /// The document, as its ID.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub document: Option<String>,
    /// Whom it concerned (a grant's subject, the user a token is for).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub subject: Option<String>,
    /// Where from: the peer's address, or `admin socket` / `admin command`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub from: Option<String>,
    /// More, such as the access granted or why something was refused.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub detail: Option<String>,
}

/// What a caller fills in; the log numbers and stamps it.
#[derive(Clone, Debug, Default)]
pub struct Record {
    /// See [`AuditEntry::who`].
    pub who: String,
    /// See [`AuditEntry::action`].
    pub action: &'static str,
    /// See [`AuditEntry::document`].
    pub document: Option<String>,
    /// See [`AuditEntry::subject`].
    pub subject: Option<String>,
    /// See [`AuditEntry::from`].
    pub from: Option<String>,
    /// See [`AuditEntry::detail`].
    pub detail: Option<String>,
}

/// Numbers entries; the entries themselves are store records.
#[derive(Debug)]
pub struct AuditLog {
    next: AtomicU64,
}

impl AuditLog {
    /// Continue the log kept in `store`.
    pub fn open(store: &dyn Store) -> Result<Self> {
        let last = store
            .last_meta(AUDIT_PREFIX)?
            .and_then(|(k, _)| k.strip_prefix(AUDIT_PREFIX)?.parse::<u64>().ok())
            .unwrap_or(0);
        Ok(Self {
            next: AtomicU64::new(last + 1),
        })
    }

    /// The write that appends `record` now.
    pub fn write(&self, record: Record) -> StoreWrite {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        tracing::info!(
            target: "coachsync::audit",
            seq,
            who = %record.who,
            action = record.action,
            document = record.document.as_deref().unwrap_or(""),
            subject = record.subject.as_deref().unwrap_or(""),
            from = record.from.as_deref().unwrap_or(""),
            detail = record.detail.as_deref().unwrap_or(""),
            "audit"
        );
        let entry = AuditEntry {
            seq,
            time: coachsync_core::utc::rfc3339(SystemTime::now()),
            who: record.who,
            action: record.action.to_owned(),
            document: record.document,
            subject: record.subject,
            from: record.from,
            detail: record.detail,
        };
        StoreWrite::Meta {
            // Zero-padded so that key order is log order.
            key: format!("{AUDIT_PREFIX}{seq:020}"),
            value: serde_json::to_vec(&entry).expect("an audit entry serializes"),
        }
    }

    /// Every entry about one document, oldest first.
    pub fn read_document(store: &dyn Store, document: &str) -> Result<Vec<AuditEntry>> {
        Ok(store
            .meta(AUDIT_PREFIX)?
            .into_iter()
            .filter_map(|(_, v)| serde_json::from_slice::<AuditEntry>(&v).ok())
            .filter(|e| e.document.as_deref() == Some(document))
            .collect())
    }

    /// Entries after `after`, oldest first, at most `limit`; read page by page from
    /// `after` on, never the whole log.
    pub fn read(store: &dyn Store, after: u64, limit: usize) -> Result<Vec<AuditEntry>> {
        let mut entries = Vec::new();
        let mut key = format!("{AUDIT_PREFIX}{after:020}");
        while entries.len() < limit {
            let page = store.meta_after(AUDIT_PREFIX, &key, limit - entries.len())?;
            let Some((last, _)) = page.last() else {
                break;
            };
            key = last.clone();
            // An entry that does not decode is skipped, not counted.
            entries.extend(
                page.into_iter()
                    .filter_map(|(_, v)| serde_json::from_slice::<AuditEntry>(&v).ok())
                    .filter(|e| e.seq > after),
            );
        }
        Ok(entries)
    }
}
