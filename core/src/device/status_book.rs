//! What a device knows of each document's place on the server, and the records that
//! keep it across restarts.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use automerge::ChangeHash;

use crate::id::{DocumentId, StorageId};
use crate::store::StoreWrite;

/// Meta keys of the records, one per document, of the heads a server confirmed.
const CONFIRMED_PREFIX: &str = "device/confirmed/";
/// The meta key of the last time every document was safe on the server.
const LAST_SYNC_KEY: &str = "device/last-sync";
const RECORD_VERSION: u8 = 1;

/// Where a document stands with the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Status {
    /// The server has never confirmed any of it.
    LocalOnly,
    /// The server is behind: it has not confirmed every local change.
    Pending,
    /// The server reported heads that contain every local change.
    SafeOnServer,
}

impl Status {
    /// The name used in the CLI and the apps.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::LocalOnly => "local-only",
            Status::Pending => "pending",
            Status::SafeOnServer => "safe-on-server",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A document's status, as an app shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentStatus {
    /// The document.
    pub document: DocumentId,
    /// Where it stands.
    pub status: Status,
    /// When the server last confirmed it held the document's changes, if ever.
    pub last_synced: Option<SystemTime>,
}

#[derive(Clone, Debug, Default)]
struct Entry {
    /// Heads stored on the device.
    local: Vec<ChangeHash>,
    /// Heads the server confirmed, when, and which server.
    confirmed: Option<Confirmed>,
}

#[derive(Clone, Debug, PartialEq)]
struct Confirmed {
    server: StorageId,
    heads: Vec<ChangeHash>,
    at: SystemTime,
}

/// Local heads against server-confirmed heads, per document.
#[derive(Debug, Default)]
pub(crate) struct StatusBook {
    /// The server whose confirmations count; a different one (its data replaced)
    /// confirms nothing the old one did.
    server: Option<StorageId>,
    docs: BTreeMap<DocumentId, Entry>,
    last_sync: Option<(StorageId, SystemTime)>,
    /// Documents the server confirmed over the current connection.
    confirmed_now: HashSet<DocumentId>,
    /// The server answered this connection's manifest and everything it named is
    /// in sync: every record is current.
    caught_up: bool,
}

impl StatusBook {
    /// Rebuild from the store: local heads, and the meta records written by
    /// [`confirm`](Self::confirm) and [`mark_synced`](Self::mark_synced).
    pub fn open(
        local: Vec<(DocumentId, Vec<ChangeHash>)>,
        records: Vec<(String, Vec<u8>)>,
    ) -> Self {
        let mut book = Self::default();
        for (document, heads) in local {
            if !heads.is_empty() {
                book.docs.entry(document).or_default().local = heads;
            }
        }
        for (key, value) in records {
            if key == LAST_SYNC_KEY {
                if let Some((server, at, _)) = decode_record(&value) {
                    book.server = Some(server.clone());
                    book.last_sync = Some((server, at));
                }
                continue;
            }
            let Some(id) = key.strip_prefix(CONFIRMED_PREFIX) else {
                continue;
            };
            let (Ok(document), Some((server, at, heads))) =
                (id.parse::<DocumentId>(), decode_record(&value))
            else {
                tracing::warn!(%key, "ignoring an unreadable status record");
                continue;
            };
            if let Some(entry) = book.docs.get_mut(&document) {
                entry.confirmed = Some(Confirmed { server, heads, at });
            }
        }
        book
    }

    /// The documents the device holds, in ID order.
    pub fn documents(&self) -> impl Iterator<Item = &DocumentId> {
        self.docs
            .iter()
            .filter(|(_, e)| !e.local.is_empty())
            .map(|(d, _)| d)
    }

    /// Whether the device holds the document.
    pub fn contains(&self, document: &DocumentId) -> bool {
        self.docs.get(document).is_some_and(|e| !e.local.is_empty())
    }

    /// The server confirmed the document safe over the current connection.
    pub fn safe_now(&self, document: &DocumentId) -> bool {
        (self.caught_up || self.confirmed_now.contains(document))
            && self.status(document).map(|s| s.status) == Some(Status::SafeOnServer)
    }

    /// A connection to a server with this storage ID is up.
    pub fn connected(&mut self, server: StorageId) {
        if self.server.as_ref() != Some(&server) {
            tracing::info!(%server, "syncing with a server storage not seen before");
            self.server = Some(server);
        }
        self.confirmed_now.clear();
        self.caught_up = false;
    }

    /// The server confirmed, as of now, every document it did not name.
    pub fn caught_up(&mut self) {
        self.caught_up = true;
    }

    /// The server and heads each document was last confirmed at, for the engine.
    pub fn confirmed_heads(&self) -> Vec<(StorageId, DocumentId, Vec<ChangeHash>)> {
        self.docs
            .iter()
            .filter_map(|(d, e)| {
                let c = e.confirmed.as_ref()?;
                Some((c.server.clone(), d.clone(), c.heads.clone()))
            })
            .collect()
    }

    /// The document's heads stored on the device moved.
    pub fn stored(&mut self, document: &DocumentId, heads: Vec<ChangeHash>) {
        if heads.is_empty() {
            return;
        }
        self.docs.entry(document.clone()).or_default().local = heads;
    }

    /// The heads stored on the device for a document (empty if it holds none).
    pub fn local_heads(&self, document: &DocumentId) -> Vec<ChangeHash> {
        self.docs
            .get(document)
            .map(|e| e.local.clone())
            .unwrap_or_default()
    }

    /// The document was removed from the device: returns the record to remove.
    pub fn remove(&mut self, document: &DocumentId) -> StoreWrite {
        self.docs.remove(document);
        self.confirmed_now.remove(document);
        StoreWrite::RemoveMeta {
            key: format!("{CONFIRMED_PREFIX}{document}"),
        }
    }

    /// The server reported its heads. Returns the record to persist when they moved.
    pub fn confirm(
        &mut self,
        document: &DocumentId,
        heads: Vec<ChangeHash>,
        now: SystemTime,
    ) -> Option<StoreWrite> {
        let server = self.server.clone()?;
        let now = whole_millis(now);
        self.confirmed_now.insert(document.clone());
        let entry = self.docs.entry(document.clone()).or_default();
        let moved = entry
            .confirmed
            .as_ref()
            .is_none_or(|c| c.server != server || c.heads != heads);
        entry.confirmed = Some(Confirmed {
            server: server.clone(),
            heads: heads.clone(),
            at: now,
        });
        moved.then(|| StoreWrite::Meta {
            key: format!("{CONFIRMED_PREFIX}{document}"),
            value: encode_record(&server, now, &heads),
        })
    }

    /// Every document is safe: remember when, as every document's last sync.
    pub fn mark_synced(&mut self, now: SystemTime) -> Option<StoreWrite> {
        let server = self.server.clone()?;
        let now = whole_millis(now);
        self.last_sync = Some((server.clone(), now));
        Some(StoreWrite::Meta {
            key: LAST_SYNC_KEY.to_owned(),
            value: encode_record(&server, now, &[]),
        })
    }

    /// A document's status.
    pub fn status(&self, document: &DocumentId) -> Option<DocumentStatus> {
        // The server's heads may arrive before the device has stored the content
        // they name: such a document is not held yet.
        let entry = self.docs.get(document).filter(|e| !e.local.is_empty())?;
        // A server that reports no heads has none of the document: local-only.
        let confirmed = entry
            .confirmed
            .as_ref()
            .filter(|c| Some(&c.server) == self.server.as_ref() && !c.heads.is_empty());
        let status = match confirmed {
            None => Status::LocalOnly,
            Some(c) if entry.local.iter().all(|h| c.heads.contains(h)) => Status::SafeOnServer,
            Some(_) => Status::Pending,
        };
        // Every document the server had confirmed was safe at the last full sync
        // (that is when it is recorded), even if its own record, written only when
        // its heads move, is older.
        let last_sync = self
            .last_sync
            .as_ref()
            .filter(|(s, _)| Some(s) == self.server.as_ref())
            .map(|(_, at)| *at);
        let last_synced = confirmed.map(|c| match last_sync {
            Some(at) => c.at.max(at),
            None => c.at,
        });
        Some(DocumentStatus {
            document: document.clone(),
            status,
            last_synced,
        })
    }

    /// Every document's status, in ID order.
    pub fn statuses(&self) -> Vec<DocumentStatus> {
        self.documents().filter_map(|d| self.status(d)).collect()
    }

    /// Documents with changes the server has not confirmed.
    pub fn outbox(&self) -> Vec<DocumentId> {
        self.statuses()
            .into_iter()
            .filter(|s| s.status != Status::SafeOnServer)
            .map(|s| s.document)
            .collect()
    }

    /// Every document was confirmed safe over the current connection.
    pub fn all_safe_now(&self) -> bool {
        self.documents().all(|d| self.safe_now(d))
    }
}

/// Times are kept to the millisecond, as records store them, so a status reads the
/// same before and after a restart.
fn whole_millis(t: SystemTime) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis(t))
}

fn millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn encode_record(server: &StorageId, at: SystemTime, heads: &[ChangeHash]) -> Vec<u8> {
    let server = server.as_str().as_bytes();
    let mut out = Vec::with_capacity(1 + 8 + 2 + server.len() + 2 + 32 * heads.len());
    out.push(RECORD_VERSION);
    out.extend_from_slice(&millis(at).to_be_bytes());
    out.extend_from_slice(&(server.len() as u16).to_be_bytes());
    out.extend_from_slice(server);
    out.extend_from_slice(&(heads.len() as u16).to_be_bytes());
    for head in heads {
        out.extend_from_slice(&head.0);
    }
    out
}

fn decode_record(bytes: &[u8]) -> Option<(StorageId, SystemTime, Vec<ChangeHash>)> {
    let (&version, rest) = bytes.split_first()?;
    if version != RECORD_VERSION {
        return None;
    }
    let (at, rest) = rest.split_first_chunk::<8>()?;
    let (len, rest) = rest.split_first_chunk::<2>()?;
    let len = u16::from_be_bytes(*len) as usize;
    let server = std::str::from_utf8(rest.get(..len)?).ok()?;
    let server = StorageId::new(server).ok()?;
    let rest = &rest[len..];
    let (n, mut rest) = rest.split_first_chunk::<2>()?;
    let mut heads = Vec::new();
    for _ in 0..u16::from_be_bytes(*n) {
        let (head, tail) = rest.split_first_chunk::<32>()?;
        heads.push(ChangeHash(*head));
        rest = tail;
    }
    let at = UNIX_EPOCH + Duration::from_millis(u64::from_be_bytes(*at));
    Some((server, at, heads))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(n: u8) -> DocumentId {
        DocumentId::from_random([n; 16])
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn persisted(writes: &[StoreWrite]) -> Vec<(String, Vec<u8>)> {
        writes
            .iter()
            .map(|w| match w {
                StoreWrite::Meta { key, value } => (key.clone(), value.clone()),
                other => panic!("unexpected write {other:?}"),
            })
            .collect()
    }

    #[test]
    fn local_only_then_pending_then_safe_and_it_survives_a_restart() {
        let server = StorageId::new("server-a").unwrap();
        let (h1, h2) = (ChangeHash([1; 32]), ChangeHash([2; 32]));
        let mut book = StatusBook::open(vec![(doc(1), vec![h1])], vec![]);
        assert_eq!(book.status(&doc(1)).unwrap().status, Status::LocalOnly);
        book.connected(server.clone());
        let mut writes = Vec::new();
        writes.extend(book.confirm(&doc(1), vec![h1], at(10)));
        let s = book.status(&doc(1)).unwrap();
        assert_eq!(
            (s.status, s.last_synced),
            (Status::SafeOnServer, Some(at(10)))
        );
        assert!(book.all_safe_now());
        // The same heads again write nothing.
        assert!(book.confirm(&doc(1), vec![h1], at(11)).is_none());
        writes.extend(book.mark_synced(at(12)));
        book.stored(&doc(1), vec![h2]);
        assert_eq!(book.status(&doc(1)).unwrap().status, Status::Pending);
        assert_eq!(book.outbox(), vec![doc(1)]);

        let reopened = StatusBook::open(vec![(doc(1), vec![h2])], persisted(&writes));
        let s = reopened.status(&doc(1)).unwrap();
        // The record of a confirmation is written when the confirmed heads move;
        // the full sync at 12 covered the document too.
        assert_eq!((s.status, s.last_synced), (Status::Pending, Some(at(12))));
        let reopened = StatusBook::open(vec![(doc(1), vec![h1])], persisted(&writes));
        let s = reopened.status(&doc(1)).unwrap();
        assert_eq!(
            (s.status, s.last_synced),
            (Status::SafeOnServer, Some(at(12)))
        );
        assert!(
            !reopened.all_safe_now(),
            "not confirmed over this connection"
        );
    }

    #[test]
    fn a_different_server_storage_confirms_nothing_the_old_one_did() {
        let h1 = ChangeHash([1; 32]);
        let mut book = StatusBook::open(vec![(doc(1), vec![h1])], vec![]);
        book.connected(StorageId::new("old").unwrap());
        book.confirm(&doc(1), vec![h1], at(1));
        book.connected(StorageId::new("new").unwrap());
        assert_eq!(book.status(&doc(1)).unwrap().status, Status::LocalOnly);
        assert!(book.confirm(&doc(1), vec![h1], at(2)).is_some());
    }

    #[test]
    fn heads_the_server_reported_must_contain_every_local_head() {
        let (h1, h2, h3) = (
            ChangeHash([1; 32]),
            ChangeHash([2; 32]),
            ChangeHash([3; 32]),
        );
        let mut book = StatusBook::open(vec![(doc(1), vec![h1, h2])], vec![]);
        book.connected(StorageId::new("s").unwrap());
        book.confirm(&doc(1), vec![h1, h3], at(1));
        assert_eq!(book.status(&doc(1)).unwrap().status, Status::Pending);
        book.confirm(&doc(1), vec![h1, h2, h3], at(2));
        assert_eq!(book.status(&doc(1)).unwrap().status, Status::SafeOnServer);
    }

    #[test]
    fn a_server_without_the_document_leaves_it_local_only() {
        let h1 = ChangeHash([1; 32]);
        let mut book = StatusBook::open(vec![(doc(1), vec![h1])], vec![]);
        book.connected(StorageId::new("s").unwrap());
        book.confirm(&doc(1), vec![], at(1));
        let s = book.status(&doc(1)).unwrap();
        assert_eq!((s.status, s.last_synced), (Status::LocalOnly, None));
    }

    #[test]
    fn unreadable_records_are_skipped() {
        let h1 = ChangeHash([1; 32]);
        let records = vec![
            (format!("{CONFIRMED_PREFIX}{}", doc(1)), vec![9, 9]),
            (format!("{CONFIRMED_PREFIX}not-an-id"), vec![]),
        ];
        let book = StatusBook::open(vec![(doc(1), vec![h1])], records);
        assert_eq!(book.status(&doc(1)).unwrap().status, Status::LocalOnly);
    }
}
