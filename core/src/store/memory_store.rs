//! A store that keeps everything in memory, for tests, simulations and ephemeral
//! peers.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Mutex;

use super::layout::{
    CHANGE_COUNTER_KEY, Table, Tables, apply_write, change_key, changed_for_peer, doc_key,
    document_from_key, heads_of, load_document, load_heads, read_u64, size_of,
};
use super::{ChangedSince, Store, StoreWrite, StoredDocument, VacuumReport, verify_snapshot};
use crate::error::Result;
use crate::id::{DocumentId, StorageId};

type Map = BTreeMap<(Table, Vec<u8>), Vec<u8>>;
/// Staged writes: `None` is a removal.
type Overlay = BTreeMap<(Table, Vec<u8>), Option<Vec<u8>>>;

/// Documents in memory, with the same layout and rules as [`SledStore`](super::SledStore).
#[derive(Debug)]
pub struct MemoryStore {
    storage_id: StorageId,
    map: Mutex<Map>,
}

impl MemoryStore {
    /// An empty store with the given storage ID.
    pub fn new(storage_id: StorageId) -> Self {
        Self {
            storage_id,
            map: Mutex::new(BTreeMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Map> {
        // A panic while holding the lock cannot leave a half-applied batch: a batch is
        // staged aside and merged only once it has applied whole.
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A batch staged over the map: reads see the batch's own writes, and nothing reaches
/// the map unless the whole batch applies.
struct Staged<'m> {
    base: &'m Map,
    overlay: RefCell<Overlay>,
}

impl Tables for Staged<'_> {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let k = (table, key.to_vec());
        Ok(match self.overlay.borrow().get(&k) {
            Some(staged) => staged.clone(),
            None => self.base.get(&k).cloned(),
        })
    }
    fn put(&self, table: Table, key: &[u8], value: &[u8]) -> Result<()> {
        self.overlay
            .borrow_mut()
            .insert((table, key.to_vec()), Some(value.to_vec()));
        Ok(())
    }
    fn remove(&self, table: Table, key: &[u8]) -> Result<()> {
        self.overlay
            .borrow_mut()
            .insert((table, key.to_vec()), None);
        Ok(())
    }
}

impl Store for MemoryStore {
    fn load(&self, document: &DocumentId) -> Result<Option<StoredDocument>> {
        let map = self.lock();
        let view = Staged {
            base: &map,
            overlay: RefCell::default(),
        };
        load_document(&view, document, |prefix| {
            Ok(map
                .range((Table::SyncStates, prefix.to_vec())..)
                .take_while(|((t, k), _)| *t == Table::SyncStates && k.starts_with(prefix))
                .map(|((_, k), v)| (k.clone(), v.clone()))
                .collect())
        })
    }

    fn heads(&self, document: &DocumentId) -> Result<Option<Vec<automerge::ChangeHash>>> {
        let map = self.lock();
        let view = Staged {
            base: &map,
            overlay: RefCell::default(),
        };
        load_heads(&view, document)
    }

    fn commit(&self, writes: &[StoreWrite]) -> Result<()> {
        let mut map = self.lock();
        let staged = Staged {
            base: &map,
            overlay: RefCell::default(),
        };
        for write in writes {
            if let StoreWrite::Compact {
                snapshot,
                heads,
                document,
            } = write
                && !verify_snapshot(snapshot, heads)
            {
                tracing::error!(%document, "compaction skipped: the snapshot does not load to its heads");
                continue;
            }
            apply_write(&staged, write)?;
            if let StoreWrite::Delete { document } = write {
                let prefix = doc_key(document);
                let mut keys: Vec<Vec<u8>> = map
                    .range((Table::SyncStates, prefix.clone())..)
                    .take_while(|((t, k), _)| *t == Table::SyncStates && k.starts_with(&prefix))
                    .map(|((_, k), _)| k.clone())
                    .collect();
                keys.extend(
                    staged
                        .overlay
                        .borrow()
                        .keys()
                        .filter(|(t, k)| *t == Table::SyncStates && k.starts_with(&prefix))
                        .map(|(_, k)| k.clone()),
                );
                for key in keys {
                    staged.remove(Table::SyncStates, &key)?;
                }
            }
        }
        let overlay = staged.overlay.into_inner();
        for (key, value) in overlay {
            match value {
                Some(v) => map.insert(key, v),
                None => map.remove(&key),
            };
        }
        Ok(())
    }

    fn document_ids(&self) -> Result<Vec<DocumentId>> {
        self.lock()
            .keys()
            .filter(|(t, _)| *t == Table::Docs)
            .map(|(_, k)| document_from_key(k))
            .collect()
    }

    fn meta(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>> {
        Ok(self
            .lock()
            .range((Table::Meta, prefix.as_bytes().to_vec())..)
            .take_while(|((t, k), _)| *t == Table::Meta && k.starts_with(prefix.as_bytes()))
            .map(|((_, k), v)| (String::from_utf8_lossy(k).into_owned(), v.clone()))
            .collect())
    }

    fn meta_after(
        &self,
        prefix: &str,
        after: &str,
        limit: usize,
    ) -> Result<Vec<(String, Vec<u8>)>> {
        use std::ops::Bound;
        let start = Bound::Excluded((Table::Meta, after.as_bytes().to_vec()));
        Ok(self
            .lock()
            .range((start, Bound::Unbounded))
            .take_while(|((t, k), _)| *t == Table::Meta && k.starts_with(prefix.as_bytes()))
            .take(limit)
            .map(|((_, k), v)| (String::from_utf8_lossy(k).into_owned(), v.clone()))
            .collect())
    }

    fn last_meta(&self, prefix: &str) -> Result<Option<(String, Vec<u8>)>> {
        Ok(self.meta(prefix)?.pop())
    }

    fn changed_since(&self, since: u64, peer: &StorageId) -> Result<ChangedSince> {
        let map = self.lock();
        let cursor = map
            .get(&(Table::Changes, CHANGE_COUNTER_KEY.to_vec()))
            .map(|v| read_u64(v))
            .transpose()?
            .unwrap_or(0);
        let changed: Vec<Vec<u8>> = map
            .range((Table::Changes, change_key(since.saturating_add(1)).to_vec())..)
            .take_while(|((t, _), _)| *t == Table::Changes)
            .filter(|((_, k), _)| k.len() == 8)
            .map(|(_, dk)| dk.clone())
            .collect();
        let view = Staged {
            base: &map,
            overlay: RefCell::default(),
        };
        Ok(ChangedSince {
            documents: changed_for_peer(&view, changed, peer)?,
            cursor,
        })
    }

    fn stored_heads(&self) -> Result<Vec<(DocumentId, Vec<automerge::ChangeHash>)>> {
        self.lock()
            .iter()
            .filter(|((t, _), _)| *t == Table::Docs)
            .map(|((_, k), v)| Ok((document_from_key(k)?, heads_of(v)?)))
            .collect()
    }

    fn document_sizes(&self) -> Result<Vec<(DocumentId, u64)>> {
        self.lock()
            .iter()
            .filter(|((t, _), _)| *t == Table::Docs)
            .map(|((_, k), v)| Ok((document_from_key(k)?, size_of(v)?)))
            .collect()
    }

    /// Nothing to do: removed values are gone from memory at once.
    fn vacuum(&self) -> Result<VacuumReport> {
        Ok(VacuumReport::default())
    }

    fn storage_id(&self) -> StorageId {
        self.storage_id.clone()
    }
}
