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
    /// With a store several servers write to, this writer's mark in its keys
    /// (`audit/<seq>-<writer>`), so that two servers numbering an entry alike at the
    /// same moment both keep theirs.
    writer: Option<String>,
}

/// The sequence number in an audit entry's key.
fn seq_of(key: &str) -> Option<u64> {
    let rest = key.strip_prefix(AUDIT_PREFIX)?;
    rest.split('-').next()?.parse().ok()
}

impl AuditLog {
    /// Continue the log kept in `store`, which this server alone writes to.
    pub fn open(store: &dyn Store) -> Result<Self> {
        Self::open_as(store, None)
    }

    /// Continue the log kept in a store that other servers write to as well (one
    /// PostgreSQL database): entries are numbered after the last one stored and after
    /// every other server's entry this one hears of ([`saw`](Self::saw)).
    pub fn open_shared(store: &dyn Store) -> Result<Self> {
        let writer = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        Self::open_as(store, Some(writer))
    }

    fn open_as(store: &dyn Store, writer: Option<String>) -> Result<Self> {
        let last = store
            .last_meta(AUDIT_PREFIX)?
            .and_then(|(k, _)| seq_of(&k))
            .unwrap_or(0);
        Ok(Self {
            next: AtomicU64::new(last + 1),
            writer,
        })
    }

    /// Another server stored the entry with this key: number the next ones after it.
    pub fn saw(&self, key: &str) {
        if let Some(seq) = seq_of(key) {
            self.next.fetch_max(seq + 1, Ordering::Relaxed);
        }
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
            key: match &self.writer {
                Some(writer) => format!("{AUDIT_PREFIX}{seq:020}-{writer}"),
                None => format!("{AUDIT_PREFIX}{seq:020}"),
            },
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

#[cfg(test)]
mod tests {
    use super::*;
    use coachsync_core::store::MemoryStore;

    fn record(who: &str) -> Record {
        Record {
            who: who.into(),
            action: "login",
            ..Record::default()
        }
    }

    #[test]
    fn servers_sharing_a_store_keep_each_others_entries_and_number_after_them() {
        let store = MemoryStore::new(coachsync_core::StorageId::new("s").unwrap());
        let (a, b) = (
            AuditLog::open_shared(&store).unwrap(),
            AuditLog::open_shared(&store).unwrap(),
        );
        // Both number their first entry 1, at the same moment: both are kept.
        let (wa, wb) = (a.write(record("ana")), b.write(record("ben")));
        store.commit(&[wa, wb.clone()]).unwrap();
        let all = AuditLog::read(&store, 0, 10).unwrap();
        assert_eq!(all.len(), 2);
        assert!(all.iter().all(|e| e.seq == 1));
        // Hearing of the other's entry, the next one comes after it.
        let StoreWrite::Meta { key, .. } = wb else {
            unreachable!()
        };
        a.saw(&key);
        store.commit(&[a.write(record("ana"))]).unwrap();
        assert_eq!(AuditLog::read(&store, 1, 10).unwrap()[0].seq, 2);
        // A server opening later numbers after every entry stored.
        let c = AuditLog::open_shared(&store).unwrap();
        store.commit(&[c.write(record("cai"))]).unwrap();
        assert_eq!(AuditLog::read(&store, 2, 10).unwrap()[0].seq, 3);
    }
}
