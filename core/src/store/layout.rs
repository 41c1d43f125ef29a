//! The key layout shared by the stores, the per-document metadata record, and how a
//! batch of writes and a load are carried out over any key-value tables.
//!
//! ```text
//! docs         <doc key>                         -> DocMeta
//! chunks       <doc key> <seq: u64 BE> <part: u32 BE> -> at most MAX_VALUE_BYTES
//! sync_states  <doc key> <storage id utf-8>      -> sync::State::encode()
//! meta         <key utf-8>                       -> the application's own records
//! changes      <seq: u64 BE>                     -> <doc key> (the change log)
//! changes      "next"                            -> the last seq given (u64 BE)
//! <doc key> = <id length: u16 BE> <id bytes>
//! ```
//!
//! The length prefix keeps one document's keys from being a prefix of another's.
//!
//! The change log gives each append the next sequence number and keeps only each
//! document's latest one, so "what changed after sequence N" is a range read whose
//! size is bounded by the number of documents.

use automerge::ChangeHash;

use crate::error::{Error, Result};
use crate::id::{DocumentId, StorageId};

use super::{StoreWrite, StoredDocument};

/// The largest value written to a store. sled writes page updates over a quarter of
/// its segment as separate blob files that it never fsyncs, and a page can hold 17
/// values, so snapshots are split into parts of this size.
pub const MAX_VALUE_BYTES: usize = 8 * 1024;

/// The key prefix of one document.
pub fn doc_key(document: &DocumentId) -> Vec<u8> {
    let bytes = document.as_bytes();
    let mut key = Vec::with_capacity(2 + bytes.len());
    key.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    key.extend_from_slice(bytes);
    key
}

/// Read a document ID back from the front of a key.
pub fn document_from_key(key: &[u8]) -> Result<DocumentId> {
    let bad = || Error::Storage("a stored key does not start with a document id".into());
    let len_bytes: [u8; 2] = key
        .get(..2)
        .ok_or_else(bad)?
        .try_into()
        .map_err(|_| bad())?;
    let len = u16::from_be_bytes(len_bytes) as usize;
    DocumentId::from_bytes(key.get(2..2 + len).ok_or_else(bad)?)
}

/// The key of one part of one chunk.
pub fn chunk_key(doc_key: &[u8], seq: u64, part: u32) -> Vec<u8> {
    let mut key = Vec::with_capacity(doc_key.len() + 12);
    key.extend_from_slice(doc_key);
    key.extend_from_slice(&seq.to_be_bytes());
    key.extend_from_slice(&part.to_be_bytes());
    key
}

/// The key of a persisted sync state.
pub fn sync_state_key(doc_key: &[u8], storage_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(doc_key.len() + storage_id.len());
    key.extend_from_slice(doc_key);
    key.extend_from_slice(storage_id.as_bytes());
    key
}

/// The change-log key holding the last sequence number given.
pub(crate) const CHANGE_COUNTER_KEY: &[u8] = b"next";

/// The change-log key of a sequence number.
pub fn change_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// One stored chunk: where its parts are and what it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkRef {
    /// Its sequence number; chunks load in this order.
    pub seq: u64,
    /// How many parts it was split into.
    pub parts: u32,
    /// Its length in bytes.
    pub len: u64,
    /// A snapshot (whole document) rather than incremental changes.
    pub snapshot: bool,
}

/// What a store knows of one document besides its chunks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DocMeta {
    /// The next chunk's sequence number.
    pub next_seq: u64,
    /// The live chunks, in order.
    pub chunks: Vec<ChunkRef>,
    /// Why the document was quarantined, if it was.
    pub quarantined: Option<String>,
    /// The heads of what the chunks hold.
    pub heads: Vec<ChangeHash>,
    /// The document's entry in the change log (0: none yet).
    pub change_seq: u64,
}

/// Version 2 added the heads, version 3 the change sequence.
const META_VERSION: u8 = 3;

impl DocMeta {
    /// The incremental chunks (those after the last snapshot): count and bytes.
    pub fn incremental(&self) -> (usize, usize) {
        self.chunks
            .iter()
            .filter(|c| !c.snapshot)
            .fold((0, 0), |(n, b), c| (n + 1, b + c.len as usize))
    }

    /// Split `data` into value-sized parts and record it as the next chunk.
    pub fn add_chunk<'d>(&mut self, data: &'d [u8], snapshot: bool) -> (u64, Vec<&'d [u8]>) {
        let parts: Vec<&[u8]> = if data.is_empty() {
            vec![data]
        } else {
            data.chunks(MAX_VALUE_BYTES).collect()
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        self.chunks.push(ChunkRef {
            seq,
            parts: parts.len() as u32,
            len: data.len() as u64,
            snapshot,
        });
        (seq, parts)
    }

    /// Encode for storage.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(16 + self.chunks.len() * 21);
        out.push(META_VERSION);
        out.extend_from_slice(&self.next_seq.to_be_bytes());
        match &self.quarantined {
            Some(reason) => {
                out.push(1);
                out.extend_from_slice(&(reason.len() as u32).to_be_bytes());
                out.extend_from_slice(reason.as_bytes());
            }
            None => out.push(0),
        }
        out.extend_from_slice(&(self.heads.len() as u32).to_be_bytes());
        for head in &self.heads {
            out.extend_from_slice(&head.0);
        }
        out.extend_from_slice(&self.change_seq.to_be_bytes());
        out.extend_from_slice(&(self.chunks.len() as u32).to_be_bytes());
        for c in &self.chunks {
            out.extend_from_slice(&c.seq.to_be_bytes());
            out.extend_from_slice(&c.parts.to_be_bytes());
            out.extend_from_slice(&c.len.to_be_bytes());
            out.push(u8::from(c.snapshot));
        }
        out
    }

    /// Decode what [`encode`](Self::encode) wrote.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader(bytes);
        let version = r.u8()?;
        if !(1..=META_VERSION).contains(&version) {
            return Err(Error::Storage("unknown document metadata version".into()));
        }
        let next_seq = r.u64()?;
        let quarantined = match r.u8()? {
            0 => None,
            _ => {
                let len = r.u32()? as usize;
                Some(String::from_utf8_lossy(r.take(len)?).into_owned())
            }
        };
        let mut heads = Vec::new();
        if version >= 2 {
            let n = r.u32()? as usize;
            for _ in 0..n {
                let bytes: [u8; 32] = r.take(32)?.try_into().expect("32 bytes");
                heads.push(ChangeHash(bytes));
            }
        }
        let change_seq = if version >= 3 { r.u64()? } else { 0 };
        let n = r.u32()? as usize;
        let mut chunks = Vec::with_capacity(n.min(4096));
        for _ in 0..n {
            chunks.push(ChunkRef {
                seq: r.u64()?,
                parts: r.u32()?,
                len: r.u64()?,
                snapshot: r.u8()? != 0,
            });
        }
        Ok(Self {
            next_seq,
            chunks,
            quarantined,
            heads,
            change_seq,
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(Error::Storage("document metadata is truncated".into()));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(
            self.take(4)?.try_into().expect("4 bytes"),
        ))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
}

/// The tables of the layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Table {
    /// `DocMeta` per document.
    Docs,
    /// Chunk parts.
    Chunks,
    /// Persisted sync states.
    SyncStates,
    /// The application's own records.
    Meta,
    /// The change log.
    Changes,
}

/// Point reads and writes over the tables, as a store's transaction offers them.
pub(crate) trait Tables {
    fn get(&self, table: Table, key: &[u8]) -> Result<Option<Vec<u8>>>;
    fn put(&self, table: Table, key: &[u8], value: &[u8]) -> Result<()>;
    fn remove(&self, table: Table, key: &[u8]) -> Result<()>;
}

fn read_meta(t: &impl Tables, dk: &[u8]) -> Result<DocMeta> {
    t.get(Table::Docs, dk)?
        .map(|b| DocMeta::decode(&b))
        .transpose()
        .map(Option::unwrap_or_default)
}

fn write_chunk(
    t: &impl Tables,
    dk: &[u8],
    meta: &mut DocMeta,
    data: &[u8],
    snapshot: bool,
) -> Result<()> {
    let (seq, parts) = meta.add_chunk(data, snapshot);
    for (i, part) in parts.iter().enumerate() {
        t.put(Table::Chunks, &chunk_key(dk, seq, i as u32), part)?;
    }
    Ok(())
}

/// Apply one write inside a transaction. A compaction must have been verified
/// (see `verify_snapshot`) before it gets here.
pub(crate) fn apply_write(t: &impl Tables, write: &StoreWrite) -> Result<()> {
    let dk = write.document().map(doc_key).unwrap_or_default();
    match write {
        StoreWrite::Append { data, heads, .. } => {
            let mut meta = read_meta(t, &dk)?;
            write_chunk(t, &dk, &mut meta, data, false)?;
            meta.heads = heads.clone();
            log_change(t, &dk, &mut meta)?;
            t.put(Table::Docs, &dk, &meta.encode())
        }
        StoreWrite::Compact {
            snapshot, heads, ..
        } => {
            let mut meta = read_meta(t, &dk)?;
            meta.heads = heads.clone();
            for old in std::mem::take(&mut meta.chunks) {
                for part in 0..old.parts {
                    t.remove(Table::Chunks, &chunk_key(&dk, old.seq, part))?;
                }
            }
            write_chunk(t, &dk, &mut meta, snapshot, true)?;
            t.put(Table::Docs, &dk, &meta.encode())
        }
        StoreWrite::SyncState {
            storage_id, state, ..
        } => t.put(
            Table::SyncStates,
            &sync_state_key(&dk, storage_id.as_str()),
            state,
        ),
        StoreWrite::Quarantine { reason, .. } => {
            let mut meta = read_meta(t, &dk)?;
            meta.quarantined = Some(reason.clone());
            t.put(Table::Docs, &dk, &meta.encode())
        }
        StoreWrite::Meta { key, value } => t.put(Table::Meta, key.as_bytes(), value),
        StoreWrite::RemoveMeta { key } => t.remove(Table::Meta, key.as_bytes()),
        // The sync states go with it, by keys the store found beforehand
        // (`delete_sync_states`): a transaction cannot scan.
        StoreWrite::Delete { .. } => {
            let Some(meta) = t.get(Table::Docs, &dk)? else {
                return Ok(());
            };
            let meta = DocMeta::decode(&meta)?;
            for chunk in &meta.chunks {
                for part in 0..chunk.parts {
                    t.remove(Table::Chunks, &chunk_key(&dk, chunk.seq, part))?;
                }
            }
            if meta.change_seq > 0 {
                t.remove(Table::Changes, &change_key(meta.change_seq))?;
            }
            t.remove(Table::Docs, &dk)
        }
    }
}

/// Give the document the next sequence number in the change log, dropping its
/// previous entry.
fn log_change(t: &impl Tables, dk: &[u8], meta: &mut DocMeta) -> Result<()> {
    let last = t
        .get(Table::Changes, CHANGE_COUNTER_KEY)?
        .map(|v| read_u64(&v))
        .transpose()?
        .unwrap_or(0);
    let seq = last + 1;
    t.put(Table::Changes, CHANGE_COUNTER_KEY, &change_key(seq))?;
    if meta.change_seq > 0 {
        t.remove(Table::Changes, &change_key(meta.change_seq))?;
    }
    t.put(Table::Changes, &change_key(seq), dk)?;
    meta.change_seq = seq;
    Ok(())
}

/// An 8-byte big-endian number as stored.
pub(crate) fn read_u64(bytes: &[u8]) -> Result<u64> {
    let bytes: [u8; 8] = bytes
        .try_into()
        .map_err(|_| Error::Storage("a stored number is not 8 bytes".into()))?;
    Ok(u64::from_be_bytes(bytes))
}

/// Of the documents (by key) in the change log after some sequence number, those
/// that `peer` has synced before (it has a persisted sync state) and whose stored
/// heads differ from what that state says the peer has.
pub(crate) fn changed_for_peer(
    t: &impl Tables,
    changed: impl IntoIterator<Item = Vec<u8>>,
    peer: &StorageId,
) -> Result<Vec<DocumentId>> {
    let mut out = Vec::new();
    for dk in changed {
        let Some(state) = t.get(Table::SyncStates, &sync_state_key(&dk, peer.as_str()))? else {
            continue;
        };
        let Some(meta) = t.get(Table::Docs, &dk)? else {
            continue;
        };
        let mut stored = heads_of(&meta)?;
        let mut shared = automerge::sync::State::decode(&state)
            .map(|s| s.shared_heads)
            .unwrap_or_default();
        stored.sort();
        shared.sort();
        if stored != shared {
            out.push(document_from_key(&dk)?);
        }
    }
    Ok(out)
}

/// The heads in an encoded metadata record (none when quarantined).
pub(crate) fn heads_of(meta: &[u8]) -> Result<Vec<ChangeHash>> {
    let meta = DocMeta::decode(meta)?;
    Ok(if meta.quarantined.is_some() {
        Vec::new()
    } else {
        meta.heads
    })
}

/// The bytes a document's chunks hold, from its metadata record alone.
pub(crate) fn size_of(meta: &[u8]) -> Result<u64> {
    Ok(DocMeta::decode(meta)?.chunks.iter().map(|c| c.len).sum())
}

/// A document's heads from its metadata record alone.
pub(crate) fn load_heads(
    t: &impl Tables,
    document: &DocumentId,
) -> Result<Option<Vec<ChangeHash>>> {
    t.get(Table::Docs, &doc_key(document))?
        .map(|meta| heads_of(&meta))
        .transpose()
}

/// Read a whole document: its chunks in order, then the sync states that `scan`
/// finds under the document's key.
pub(crate) fn load_document(
    t: &impl Tables,
    document: &DocumentId,
    sync_states: impl FnOnce(&[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>>,
) -> Result<Option<StoredDocument>> {
    let dk = doc_key(document);
    let Some(meta) = t.get(Table::Docs, &dk)? else {
        return Ok(None);
    };
    let meta = DocMeta::decode(&meta)?;
    let total: u64 = meta.chunks.iter().map(|c| c.len).sum();
    let mut data = Vec::with_capacity(total as usize);
    for chunk in &meta.chunks {
        for part in 0..chunk.parts {
            let bytes = t
                .get(Table::Chunks, &chunk_key(&dk, chunk.seq, part))?
                .ok_or_else(|| {
                    Error::Storage(format!(
                        "document {document}: chunk {} part {part} is missing",
                        chunk.seq
                    ))
                })?;
            data.extend_from_slice(&bytes);
        }
    }
    let (incremental_chunks, incremental_bytes) = meta.incremental();
    let mut states = Vec::new();
    for (key, value) in sync_states(&dk)? {
        let Ok(storage) = std::str::from_utf8(&key[dk.len()..]) else {
            continue;
        };
        if let Ok(storage) = StorageId::new(storage) {
            states.push((storage, value));
        }
    }
    Ok(Some(StoredDocument {
        data,
        chunks: meta.chunks.len(),
        incremental_chunks,
        incremental_bytes,
        sync_states: states,
        quarantined: meta.quarantined,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_keys_are_length_prefixed_and_round_trip() {
        let a = DocumentId::from_bytes(&[1, 2]).unwrap();
        let b = DocumentId::from_bytes(&[1, 2, 3]).unwrap();
        let ka = doc_key(&a);
        assert_eq!(ka, vec![0, 2, 1, 2]);
        assert!(
            !doc_key(&b).starts_with(&ka),
            "one id's keys never prefix another's"
        );
        assert_eq!(document_from_key(&chunk_key(&ka, 7, 0)).unwrap(), a);
    }

    #[test]
    fn chunk_keys_sort_by_sequence_then_part() {
        let k = doc_key(&DocumentId::from_random([3; 16]));
        let mut keys = vec![
            chunk_key(&k, 2, 0),
            chunk_key(&k, 1, 1),
            chunk_key(&k, 256, 0),
            chunk_key(&k, 1, 0),
        ];
        keys.sort();
        assert_eq!(
            keys,
            vec![
                chunk_key(&k, 1, 0),
                chunk_key(&k, 1, 1),
                chunk_key(&k, 2, 0),
                chunk_key(&k, 256, 0)
            ]
        );
    }

    #[test]
    fn big_chunks_are_split_into_value_sized_parts() {
        let mut meta = DocMeta::default();
        let data = vec![0u8; MAX_VALUE_BYTES * 2 + 1];
        let (seq, parts) = meta.add_chunk(&data, true);
        assert_eq!(seq, 0);
        assert_eq!(parts.len(), 3);
        assert!(parts.iter().all(|p| p.len() <= MAX_VALUE_BYTES));
        assert_eq!(meta.next_seq, 1);
    }

    #[test]
    fn meta_round_trips() {
        let mut meta = DocMeta::default();
        meta.add_chunk(&[1; 10], true);
        meta.add_chunk(&[2; 5], false);
        meta.quarantined = Some("does not load".into());
        meta.heads = vec![ChangeHash([9; 32]), ChangeHash([4; 32])];
        meta.change_seq = 77;
        assert_eq!(DocMeta::decode(&meta.encode()).unwrap(), meta);
        assert_eq!(meta.incremental(), (1, 5));
        assert!(DocMeta::decode(&meta.encode()[..5]).is_err());
    }
}
