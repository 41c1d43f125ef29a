//! The CBOR codec of [`Message`].
//!
//! A frame is first split into its top-level `(key, raw value)` pairs without
//! interpreting the values, so that unknown keys and unknown message types cost nothing
//! and never fail; only the fields the message's type needs are then decoded.

use std::collections::BTreeMap;

use minicbor::data::Type;
use minicbor::{Decoder, Encoder};

use super::{HeadsDigest, Message, PeerMetadata, RemoteHeads, SyncEnvelope};
use crate::error::{Error, Result, printable};
use crate::id::{DocumentId, PeerId, StorageId};

/// How deeply values may nest inside a frame. Real frames nest three levels
/// (`newHeads` → storage → heads); this bounds what hostile input can make us walk.
pub const MAX_NESTING: usize = 16;

/// The largest integer a float can carry exactly (2^53).
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_992.0;

fn err(msg: impl Into<String>) -> Error {
    Error::Decode(msg.into())
}

fn cbor_err(e: minicbor::decode::Error) -> Error {
    Error::Decode(format!("invalid cbor: {e}"))
}

/// The top-level fields of a frame, each as its undecoded CBOR bytes.
struct Fields<'b> {
    fields: Vec<(&'b str, &'b [u8])>,
}

impl<'b> Fields<'b> {
    fn split(frame: &'b [u8]) -> Result<Self> {
        let mut d = Decoder::new(frame);
        let len = match d.datatype().map_err(cbor_err)? {
            Type::Map | Type::MapIndef => d.map().map_err(cbor_err)?,
            other => return Err(err(format!("a frame must be a cbor map, not {other}"))),
        };
        let mut fields = Vec::new();
        let mut remaining = len;
        loop {
            match remaining {
                Some(0) => break,
                Some(ref mut n) => *n -= 1,
                None => {
                    if d.datatype().map_err(cbor_err)? == Type::Break {
                        d.skip().map_err(cbor_err)?;
                        break;
                    }
                }
            }
            let key = match d.datatype().map_err(cbor_err)? {
                Type::String => Some(d.str().map_err(cbor_err)?),
                _ => {
                    // Keys are text in this protocol; anything else is an unknown key.
                    skip_bounded(&mut d)?;
                    None
                }
            };
            let start = d.position();
            skip_bounded(&mut d)?;
            if let Some(key) = key {
                fields.push((key, &frame[start..d.position()]));
            }
        }
        if d.position() != frame.len() {
            return Err(err("trailing bytes after the message map"));
        }
        Ok(Self { fields })
    }

    fn raw(&self, key: &str) -> Option<&'b [u8]> {
        // cbor-x never repeats a key; if a peer does, the last one wins as in JS.
        self.fields
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
    }

    /// A field's value, or `None` when it is missing, `null` or `undefined`.
    fn get(&self, key: &str) -> Option<Decoder<'b>> {
        let raw = self.raw(key)?;
        let d = Decoder::new(raw);
        match d.datatype() {
            Ok(Type::Null | Type::Undefined) => None,
            _ => Some(d),
        }
    }

    fn str_opt(&self, key: &str) -> Result<Option<&'b str>> {
        self.get(key)
            .map(|mut d| {
                d.str()
                    .map_err(|_| err(format!("field {key} must be a string")))
            })
            .transpose()
    }

    fn str(&self, key: &str) -> Result<&'b str> {
        self.str_opt(key)?
            .ok_or_else(|| err(format!("field {key} is missing")))
    }

    fn peer_id(&self, key: &str) -> Result<PeerId> {
        PeerId::new(self.str(key)?).map_err(|e| err(format!("field {key}: {e}")))
    }

    fn peer_id_opt(&self, key: &str) -> Result<Option<PeerId>> {
        self.str_opt(key)?
            .map(|s| PeerId::new(s).map_err(|e| err(format!("field {key}: {e}"))))
            .transpose()
    }

    fn document_id(&self) -> Result<DocumentId> {
        self.str("documentId")?
            .parse()
            .map_err(|e: Error| err(format!("field documentId: {e}")))
    }

    fn bytes(&self, key: &str) -> Result<&'b [u8]> {
        let mut d = self
            .get(key)
            .ok_or_else(|| err(format!("field {key} is missing")))?;
        d.bytes()
            .map_err(|_| err(format!("field {key} must be a byte string")))
    }

    fn count(&self, key: &str) -> Result<u64> {
        self.count_opt(key)?
            .ok_or_else(|| err(format!("field {key} is missing")))
    }

    fn count_opt(&self, key: &str) -> Result<Option<u64>> {
        let Some(mut d) = self.get(key) else {
            return Ok(None);
        };
        if matches!(d.datatype(), Ok(Type::Null | Type::Undefined)) {
            return Ok(None);
        }
        read_count(&mut d)
            .map(Some)
            .map_err(|reason| err(format!("field {key} {reason}")))
    }
}

/// Skip one value, refusing nesting deeper than [`MAX_NESTING`].
fn skip_bounded(d: &mut Decoder<'_>) -> Result<()> {
    check_depth(d.clone(), 0)?;
    d.skip().map_err(cbor_err)
}

fn check_depth(mut d: Decoder<'_>, depth: usize) -> Result<Decoder<'_>> {
    if depth > MAX_NESTING {
        return Err(err("values nest too deeply"));
    }
    match d.datatype().map_err(cbor_err)? {
        Type::Array | Type::ArrayIndef => {
            let len = d.array().map_err(cbor_err)?;
            walk_items(d, depth, len, 1)
        }
        Type::Map | Type::MapIndef => {
            let len = d.map().map_err(cbor_err)?;
            walk_items(d, depth, len, 2)
        }
        Type::Tag => {
            d.tag().map_err(cbor_err)?;
            check_depth(d, depth + 1)
        }
        _ => {
            d.skip().map_err(cbor_err)?;
            Ok(d)
        }
    }
}

fn walk_items(
    mut d: Decoder<'_>,
    depth: usize,
    len: Option<u64>,
    per_item: u64,
) -> Result<Decoder<'_>> {
    match len {
        Some(n) => {
            for _ in 0..n.saturating_mul(per_item) {
                d = check_depth(d, depth + 1)?;
            }
        }
        None => loop {
            if d.datatype().map_err(cbor_err)? == Type::Break {
                d.skip().map_err(cbor_err)?;
                break;
            }
            d = check_depth(d, depth + 1)?;
        },
    }
    Ok(d)
}

/// A non-negative integer that may arrive as a CBOR float (cbor-x writes every
/// integer of 2^32 or more as float64).
fn read_count(d: &mut Decoder<'_>) -> std::result::Result<u64, &'static str> {
    match d.datatype().map_err(|_| "is not a number")? {
        // Beyond 2^53 a JavaScript peer cannot hold the number exactly, and we would
        // relay it as a float our own decoder refuses: refuse it here.
        Type::U8 | Type::U16 | Type::U32 | Type::U64 => match d.u64() {
            Ok(n) if n <= MAX_SAFE_INTEGER as u64 => Ok(n),
            Ok(_) => Err("is larger than 2^53"),
            Err(_) => Err("is not a number"),
        },
        Type::F16 | Type::F32 | Type::F64 => {
            let f = d.f64().map_err(|_| "is not a number")?;
            if f.is_finite() && f >= 0.0 && f.fract() == 0.0 && f <= MAX_SAFE_INTEGER {
                Ok(f as u64)
            } else {
                Err("is not a non-negative whole number")
            }
        }
        _ => Err("is not a number"),
    }
}

fn read_number(d: &mut Decoder<'_>) -> std::result::Result<f64, &'static str> {
    match d.datatype().map_err(|_| "is not a number")? {
        Type::U8 | Type::U16 | Type::U32 | Type::U64 => {
            d.u64().map(|n| n as f64).map_err(|_| "is not a number")
        }
        Type::F16 | Type::F32 | Type::F64 => {
            let f = d.f64().map_err(|_| "is not a number")?;
            if f.is_finite() {
                Ok(f)
            } else {
                Err("is not a finite number")
            }
        }
        _ => Err("is not a number"),
    }
}

/// Iterate a definite or indefinite array, calling `item` on each element.
fn each_in_array<'b>(
    d: &mut Decoder<'b>,
    what: &str,
    mut item: impl FnMut(&mut Decoder<'b>) -> Result<()>,
) -> Result<()> {
    let len = match d.datatype().map_err(cbor_err)? {
        Type::Array | Type::ArrayIndef => d.array().map_err(cbor_err)?,
        _ => return Err(err(format!("field {what} must be an array"))),
    };
    match len {
        Some(n) => {
            for _ in 0..n {
                item(d)?;
            }
        }
        None => loop {
            if d.datatype().map_err(cbor_err)? == Type::Break {
                d.skip().map_err(cbor_err)?;
                break;
            }
            item(d)?;
        },
    }
    Ok(())
}

/// Iterate a definite or indefinite map with text keys; other keys are skipped.
fn each_in_map<'b>(
    d: &mut Decoder<'b>,
    what: &str,
    mut entry: impl FnMut(&'b str, &mut Decoder<'b>) -> Result<()>,
) -> Result<()> {
    let len = match d.datatype().map_err(cbor_err)? {
        Type::Map | Type::MapIndef => d.map().map_err(cbor_err)?,
        _ => return Err(err(format!("field {what} must be a map"))),
    };
    let mut one = |d: &mut Decoder<'b>| -> Result<()> {
        if d.datatype().map_err(cbor_err)? == Type::String {
            let key = d.str().map_err(cbor_err)?;
            entry(key, d)
        } else {
            d.skip().map_err(cbor_err)?;
            d.skip().map_err(cbor_err)
        }
    };
    match len {
        Some(n) => {
            for _ in 0..n {
                one(d)?;
            }
        }
        None => loop {
            if d.datatype().map_err(cbor_err)? == Type::Break {
                d.skip().map_err(cbor_err)?;
                break;
            }
            one(d)?;
        },
    }
    Ok(())
}

fn storage_ids(fields: &Fields<'_>, key: &str) -> Result<Option<Vec<StorageId>>> {
    let Some(mut d) = fields.get(key) else {
        return Ok(None);
    };
    let mut ids = Vec::new();
    each_in_array(&mut d, key, |d| {
        let s = d
            .str()
            .map_err(|_| err(format!("field {key} must hold strings")))?;
        ids.push(StorageId::new(s).map_err(|e| err(format!("field {key}: {e}")))?);
        Ok(())
    })?;
    Ok(Some(ids))
}

fn peer_metadata(fields: &Fields<'_>) -> Result<Option<PeerMetadata>> {
    // Older text calls the field `metadata`.
    let Some(mut d) = fields
        .get("peerMetadata")
        .or_else(|| fields.get("metadata"))
    else {
        return Ok(None);
    };
    let mut meta = PeerMetadata::default();
    each_in_map(&mut d, "peerMetadata", |key, d| {
        match key {
            "storageId" => match d.datatype().map_err(cbor_err)? {
                Type::Null | Type::Undefined => d.skip().map_err(cbor_err)?,
                Type::String => {
                    let s = d.str().map_err(cbor_err)?;
                    meta.storage_id =
                        Some(StorageId::new(s).map_err(|e| err(format!("field storageId: {e}")))?);
                }
                _ => return Err(err("field storageId must be a string")),
            },
            "coachsyncExtensions" => each_in_array(d, "coachsyncExtensions", |d| {
                match d.datatype().map_err(cbor_err)? {
                    Type::String => meta.extensions.push(d.str().map_err(cbor_err)?.to_owned()),
                    _ => skip_bounded(d)?,
                }
                Ok(())
            })?,
            "isEphemeral" => match d.datatype().map_err(cbor_err)? {
                Type::Bool => meta.is_ephemeral = d.bool().map_err(cbor_err)?,
                _ => d.skip().map_err(cbor_err)?,
            },
            _ => skip_bounded(d)?,
        }
        Ok(())
    })?;
    Ok(Some(meta))
}

fn new_heads(fields: &Fields<'_>) -> Result<BTreeMap<StorageId, RemoteHeads>> {
    let mut d = fields
        .get("newHeads")
        .ok_or_else(|| err("field newHeads is missing"))?;
    let mut out = BTreeMap::new();
    each_in_map(&mut d, "newHeads", |storage, d| {
        let storage = StorageId::new(storage).map_err(|e| err(format!("field newHeads: {e}")))?;
        let mut heads = Vec::new();
        let mut timestamp = 0.0;
        each_in_map(d, "newHeads entry", |key, d| {
            match key {
                "heads" => each_in_array(d, "heads", |d| {
                    heads.push(
                        d.str()
                            .map_err(|_| err("field heads must hold strings"))?
                            .to_owned(),
                    );
                    Ok(())
                })?,
                "timestamp" => {
                    timestamp = read_number(d).map_err(|r| err(format!("field timestamp {r}")))?;
                }
                _ => skip_bounded(d)?,
            }
            Ok(())
        })?;
        out.insert(storage, RemoteHeads { heads, timestamp });
        Ok(())
    })?;
    Ok(out)
}

fn envelope(fields: &Fields<'_>) -> Result<SyncEnvelope> {
    Ok(SyncEnvelope {
        sender_id: fields.peer_id("senderId")?,
        target_id: fields.peer_id("targetId")?,
        document_id: fields.document_id()?,
        data: fields.bytes("data")?.to_vec(),
    })
}

impl Message {
    /// Decode one frame.
    ///
    /// An unknown `type` decodes to [`Message::Unknown`]; a frame that is not a CBOR
    /// map, lacks `type`, or lacks a field its type needs is an [`Error::Decode`].
    pub fn decode(frame: &[u8]) -> Result<Message> {
        let f = Fields::split(frame)?;
        let kind = f.str("type")?;
        Ok(match kind {
            "join" => {
                let supported_protocol_versions = match f.get("supportedProtocolVersions") {
                    None => vec![super::PROTOCOL_VERSION.to_owned()],
                    Some(mut d) => {
                        let mut versions = Vec::new();
                        each_in_array(&mut d, "supportedProtocolVersions", |d| {
                            match d.datatype().map_err(cbor_err)? {
                                Type::String => {
                                    versions.push(d.str().map_err(cbor_err)?.to_owned())
                                }
                                _ => d.skip().map_err(cbor_err)?,
                            }
                            Ok(())
                        })?;
                        versions
                    }
                };
                Message::Join {
                    sender_id: f.peer_id("senderId")?,
                    supported_protocol_versions,
                    peer_metadata: peer_metadata(&f)?,
                }
            }
            "peer" => Message::Peer {
                sender_id: f.peer_id("senderId")?,
                target_id: f.peer_id("targetId")?,
                selected_protocol_version: f
                    .str_opt("selectedProtocolVersion")?
                    .unwrap_or(super::PROTOCOL_VERSION)
                    .to_owned(),
                peer_metadata: peer_metadata(&f)?,
            },
            "leave" => Message::Leave {
                sender_id: f.peer_id("senderId")?,
            },
            "error" => Message::Error {
                message: f.str_opt("message")?.unwrap_or("").to_owned(),
                sender_id: f.peer_id_opt("senderId")?,
                target_id: f.peer_id_opt("targetId")?,
            },
            "request" => Message::Request(envelope(&f)?),
            "sync" => Message::Sync(envelope(&f)?),
            "doc-unavailable" => Message::DocUnavailable {
                sender_id: f.peer_id("senderId")?,
                target_id: f.peer_id("targetId")?,
                document_id: f.document_id()?,
            },
            "coachsync-doc-purged" => Message::DocPurged {
                sender_id: f.peer_id("senderId")?,
                target_id: f.peer_id("targetId")?,
                document_id: f.document_id()?,
            },
            "ephemeral" => Message::Ephemeral {
                sender_id: f.peer_id("senderId")?,
                target_id: f.peer_id("targetId")?,
                count: f.count("count")?,
                session_id: f.str("sessionId")?.to_owned(),
                document_id: f.document_id()?,
                data: f.bytes("data")?.to_vec(),
            },
            "remote-subscription-change" => Message::RemoteSubscriptionChange {
                sender_id: f.peer_id("senderId")?,
                target_id: f.peer_id("targetId")?,
                add: storage_ids(&f, "add")?,
                remove: storage_ids(&f, "remove")?,
            },
            "remote-heads-changed" => Message::RemoteHeadsChanged {
                sender_id: f.peer_id("senderId")?,
                target_id: f.peer_id("targetId")?,
                document_id: f.document_id()?,
                new_heads: new_heads(&f)?,
            },
            "coachsync-manifest" => {
                let mut d = f
                    .get("entries")
                    .ok_or_else(|| err("field entries is missing"))?;
                let mut entries = Vec::new();
                each_in_array(&mut d, "entries", |d| {
                    if d.array().map_err(cbor_err)? != Some(2) {
                        return Err(err("a manifest entry must be [document id, digest]"));
                    }
                    let id = DocumentId::from_bytes(d.bytes().map_err(cbor_err)?)
                        .map_err(|e| err(format!("field entries: {e}")))?;
                    let digest: HeadsDigest = d
                        .bytes()
                        .map_err(cbor_err)?
                        .try_into()
                        .map_err(|_| err("a heads digest must be 8 bytes"))?;
                    entries.push((id, digest));
                    Ok(())
                })?;
                Message::Manifest {
                    sender_id: f.peer_id("senderId")?,
                    target_id: f.peer_id("targetId")?,
                    entries,
                    since: f.count_opt("since")?,
                }
            }
            "coachsync-manifest-reply" => {
                let mut d = f
                    .get("differ")
                    .ok_or_else(|| err("field differ is missing"))?;
                let mut differ = Vec::new();
                each_in_array(&mut d, "differ", |d| {
                    differ.push(
                        DocumentId::from_bytes(d.bytes().map_err(cbor_err)?)
                            .map_err(|e| err(format!("field differ: {e}")))?,
                    );
                    Ok(())
                })?;
                Message::ManifestReply {
                    sender_id: f.peer_id("senderId")?,
                    target_id: f.peer_id("targetId")?,
                    differ,
                    cursor: f.count_opt("cursor")?,
                }
            }
            other => Message::Unknown {
                kind: printable(other),
            },
        })
    }

    /// Encode the message as one frame.
    ///
    /// Absent optional fields are omitted, never `null` (samod refuses `null`), and
    /// `timestamp` is a float64 (cbor-x decodes a CBOR uint64 into a BigInt).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len_hint());
        let mut e = Encoder::new(&mut out);
        self.encode_into(&mut e)
            .expect("writing cbor into a Vec cannot fail");
        out
    }

    fn encoded_len_hint(&self) -> usize {
        match self {
            Message::Request(env) | Message::Sync(env) => env.data.len() + 160,
            Message::Ephemeral { data, .. } => data.len() + 200,
            Message::Manifest { entries, .. } => entries.len() * 32 + 128,
            _ => 128,
        }
    }

    fn encode_into(
        &self,
        e: &mut Encoder<&mut Vec<u8>>,
    ) -> std::result::Result<(), minicbor::encode::Error<std::convert::Infallible>> {
        match self {
            Message::Join {
                sender_id,
                supported_protocol_versions,
                peer_metadata,
            } => {
                e.map(3 + u64::from(peer_metadata.is_some()))?;
                e.str("type")?.str("join")?;
                e.str("senderId")?.str(sender_id.as_str())?;
                e.str("supportedProtocolVersions")?
                    .array(supported_protocol_versions.len() as u64)?;
                for v in supported_protocol_versions {
                    e.str(v)?;
                }
                if let Some(meta) = peer_metadata {
                    e.str("peerMetadata")?;
                    encode_metadata(e, meta)?;
                }
            }
            Message::Peer {
                sender_id,
                target_id,
                selected_protocol_version,
                peer_metadata,
            } => {
                e.map(4 + u64::from(peer_metadata.is_some()))?;
                e.str("type")?.str("peer")?;
                e.str("senderId")?.str(sender_id.as_str())?;
                e.str("targetId")?.str(target_id.as_str())?;
                e.str("selectedProtocolVersion")?
                    .str(selected_protocol_version)?;
                if let Some(meta) = peer_metadata {
                    e.str("peerMetadata")?;
                    encode_metadata(e, meta)?;
                }
            }
            Message::Leave { sender_id } => {
                e.map(2)?;
                e.str("type")?.str("leave")?;
                e.str("senderId")?.str(sender_id.as_str())?;
            }
            Message::Error {
                message,
                sender_id,
                target_id,
            } => {
                e.map(2 + u64::from(sender_id.is_some()) + u64::from(target_id.is_some()))?;
                e.str("type")?.str("error")?;
                e.str("message")?.str(message)?;
                if let Some(id) = sender_id {
                    e.str("senderId")?.str(id.as_str())?;
                }
                if let Some(id) = target_id {
                    e.str("targetId")?.str(id.as_str())?;
                }
            }
            Message::Request(env) | Message::Sync(env) => {
                e.map(5)?;
                e.str("type")?.str(self.kind())?;
                e.str("senderId")?.str(env.sender_id.as_str())?;
                e.str("targetId")?.str(env.target_id.as_str())?;
                e.str("documentId")?.str(env.document_id.as_str())?;
                e.str("data")?.bytes(&env.data)?;
            }
            Message::DocUnavailable {
                sender_id,
                target_id,
                document_id,
            }
            | Message::DocPurged {
                sender_id,
                target_id,
                document_id,
            } => {
                e.map(4)?;
                e.str("type")?.str(self.kind())?;
                e.str("senderId")?.str(sender_id.as_str())?;
                e.str("targetId")?.str(target_id.as_str())?;
                e.str("documentId")?.str(document_id.as_str())?;
            }
            Message::Ephemeral {
                sender_id,
                target_id,
                count,
                session_id,
                document_id,
                data,
            } => {
                e.map(7)?;
                e.str("type")?.str("ephemeral")?;
                e.str("senderId")?.str(sender_id.as_str())?;
                e.str("targetId")?.str(target_id.as_str())?;
                e.str("count")?;
                encode_count(e, *count)?;
                e.str("sessionId")?.str(session_id)?;
                e.str("documentId")?.str(document_id.as_str())?;
                e.str("data")?.bytes(data)?;
            }
            Message::RemoteSubscriptionChange {
                sender_id,
                target_id,
                add,
                remove,
            } => {
                e.map(3 + u64::from(add.is_some()) + u64::from(remove.is_some()))?;
                e.str("type")?.str("remote-subscription-change")?;
                e.str("senderId")?.str(sender_id.as_str())?;
                e.str("targetId")?.str(target_id.as_str())?;
                for (key, ids) in [("add", add), ("remove", remove)] {
                    if let Some(ids) = ids {
                        e.str(key)?.array(ids.len() as u64)?;
                        for id in ids {
                            e.str(id.as_str())?;
                        }
                    }
                }
            }
            Message::RemoteHeadsChanged {
                sender_id,
                target_id,
                document_id,
                new_heads,
            } => {
                e.map(5)?;
                e.str("type")?.str("remote-heads-changed")?;
                e.str("senderId")?.str(sender_id.as_str())?;
                e.str("targetId")?.str(target_id.as_str())?;
                e.str("documentId")?.str(document_id.as_str())?;
                e.str("newHeads")?.map(new_heads.len() as u64)?;
                for (storage, heads) in new_heads {
                    e.str(storage.as_str())?.map(2)?;
                    e.str("heads")?.array(heads.heads.len() as u64)?;
                    for h in &heads.heads {
                        e.str(h)?;
                    }
                    e.str("timestamp")?.f64(heads.timestamp)?;
                }
            }
            Message::Manifest {
                sender_id,
                target_id,
                entries,
                since,
            } => {
                e.map(4 + u64::from(since.is_some()))?;
                e.str("type")?.str("coachsync-manifest")?;
                e.str("senderId")?.str(sender_id.as_str())?;
                e.str("targetId")?.str(target_id.as_str())?;
                if let Some(since) = since {
                    e.str("since")?.u64(*since)?;
                }
                e.str("entries")?.array(entries.len() as u64)?;
                for (id, digest) in entries {
                    e.array(2)?.bytes(id.as_bytes())?.bytes(digest)?;
                }
            }
            Message::ManifestReply {
                sender_id,
                target_id,
                differ,
                cursor,
            } => {
                e.map(4 + u64::from(cursor.is_some()))?;
                e.str("type")?.str("coachsync-manifest-reply")?;
                e.str("senderId")?.str(sender_id.as_str())?;
                e.str("targetId")?.str(target_id.as_str())?;
                if let Some(cursor) = cursor {
                    e.str("cursor")?.u64(*cursor)?;
                }
                e.str("differ")?.array(differ.len() as u64)?;
                for id in differ {
                    e.bytes(id.as_bytes())?;
                }
            }
            Message::Unknown { kind } => {
                e.map(1)?;
                e.str("type")?.str(kind)?;
            }
        }
        Ok(())
    }
}

/// Counts below 2^32 go as integers (cbor-x reads them as numbers); larger ones as
/// float64, which is what cbor-x itself writes and reads back as a number.
fn encode_count(
    e: &mut Encoder<&mut Vec<u8>>,
    count: u64,
) -> std::result::Result<(), minicbor::encode::Error<std::convert::Infallible>> {
    if count < (1 << 32) {
        e.u64(count)?;
    } else {
        e.f64(count as f64)?;
    }
    Ok(())
}

fn encode_metadata(
    e: &mut Encoder<&mut Vec<u8>>,
    meta: &PeerMetadata,
) -> std::result::Result<(), minicbor::encode::Error<std::convert::Infallible>> {
    e.map(1 + u64::from(meta.storage_id.is_some()) + u64::from(!meta.extensions.is_empty()))?;
    if let Some(id) = &meta.storage_id {
        e.str("storageId")?.str(id.as_str())?;
    }
    e.str("isEphemeral")?.bool(meta.is_ephemeral)?;
    if !meta.extensions.is_empty() {
        e.str("coachsyncExtensions")?
            .array(meta.extensions.len() as u64)?;
        for x in &meta.extensions {
            e.str(x)?;
        }
    }
    Ok(())
}
