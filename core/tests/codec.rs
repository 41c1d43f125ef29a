//! Tests of the wire codec ([`Message::decode`] / [`Message::encode`]):
//!
//! - golden frames captured from the real JavaScript client (automerge-repo 2.5.6,
//!   `tests/fixtures/js-frames/`), compared by decoded value with `manifest.json`;
//! - leniency about format (floats for integers, `undefined`/`null` for absent,
//!   `metadata`, unknown keys and types, indefinite lengths) and strictness about
//!   shape (non-maps, truncation, missing fields, bad IDs, deep nesting, trailing bytes);
//! - property tests: arbitrary messages round-trip, arbitrary and mutated bytes never
//!   panic the decoder;
//! - the rules samod enforces on what we send (no `null`, definite lengths, `targetId`,
//!   float64 timestamps), checked on encoded messages and on frames an engine sends.

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::time::Instant;

use automerge::ReadDoc;
use coachsync_core::protocol::{MAX_NESTING, RemoteHeads};
use coachsync_core::store::{MemoryStore, Store, StoreWrite};
use coachsync_core::sync::{ConnId, Engine, EngineConfig, OpId, Output, Role};
use coachsync_core::{DocumentId, Error, Message, PeerId, PeerMetadata, StorageId, SyncEnvelope};
use minicbor::data::{Tag, Type};
use minicbor::{Decoder, Encoder};
use proptest::prelude::*;
use serde_json::{Value, json};

// ----- helpers ------------------------------------------------------------------------

type Enc<'a> = Encoder<&'a mut Vec<u8>>;
type EncResult = Result<(), minicbor::encode::Error<Infallible>>;
/// Writes one CBOR value.
type Writer<'w> = dyn Fn(&mut Enc<'_>) -> EncResult + 'w;
/// A key and the writer of its value.
type Field<'a> = (&'a str, &'a Writer<'a>);

/// Build a frame by hand with minicbor.
fn cbor(build: impl FnOnce(&mut Enc<'_>) -> EncResult) -> Vec<u8> {
    let mut out = Vec::new();
    let mut e = Encoder::new(&mut out);
    build(&mut e).expect("encoding into a Vec cannot fail");
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn peer(s: &str) -> PeerId {
    PeerId::new(s).unwrap()
}

fn storage(s: &str) -> StorageId {
    StorageId::new(s).unwrap()
}

fn doc_id() -> DocumentId {
    DocumentId::from_random([0x5a; 16])
}

fn assert_decode_error(frame: &[u8], what: &str) {
    match Message::decode(frame) {
        Err(Error::Decode(_)) => {}
        other => panic!("{what}: expected Err(Error::Decode), got {other:?}"),
    }
}

fn decode_ok(frame: &[u8], what: &str) -> Message {
    Message::decode(frame).unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// A small automerge sync message, as `data` of hand-built frames.
fn sync_data() -> Vec<u8> {
    automerge::sync::Message {
        heads: vec![],
        need: vec![],
        have: vec![],
        changes: Vec::<Vec<u8>>::new().into(),
        flags: None,
        version: automerge::sync::MessageVersion::V1,
    }
    .encode()
}

// ----- golden frames from the JavaScript client --------------------------------------

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/js-frames")
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(fixtures_dir().join("manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn manifest_frames() -> Vec<Value> {
    manifest()["frames"].as_array().unwrap().clone()
}

/// Every `.cbor` fixture, by file name.
fn fixture_files() -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cbor"))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect()
}

/// A number as the manifest writes it: whole numbers as integers.
fn json_number(f: f64) -> Value {
    if f.fract() == 0.0 && (0.0..=9_007_199_254_740_992.0).contains(&f) {
        json!(f as u64)
    } else {
        json!(f)
    }
}

fn metadata_json(meta: &PeerMetadata) -> Value {
    let mut m = serde_json::Map::new();
    if let Some(id) = &meta.storage_id {
        m.insert("storageId".into(), json!(id.as_str()));
    }
    m.insert("isEphemeral".into(), json!(meta.is_ephemeral));
    Value::Object(m)
}

/// A decoded message in the manifest's `fields` form (byte strings as hex), with
/// absent optional fields left out.
fn message_json(message: &Message) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("type".into(), json!(message.kind()));
    let mut put = |k: &str, v: Value| {
        m.insert(k.to_owned(), v);
    };
    match message {
        Message::Join {
            sender_id,
            supported_protocol_versions,
            peer_metadata,
        } => {
            put("senderId", json!(sender_id.as_str()));
            put(
                "supportedProtocolVersions",
                json!(supported_protocol_versions),
            );
            if let Some(meta) = peer_metadata {
                put("peerMetadata", metadata_json(meta));
            }
        }
        Message::Peer {
            sender_id,
            target_id,
            selected_protocol_version,
            peer_metadata,
        } => {
            put("senderId", json!(sender_id.as_str()));
            put("targetId", json!(target_id.as_str()));
            put("selectedProtocolVersion", json!(selected_protocol_version));
            if let Some(meta) = peer_metadata {
                put("peerMetadata", metadata_json(meta));
            }
        }
        Message::Leave { sender_id } => put("senderId", json!(sender_id.as_str())),
        Message::Error {
            message,
            sender_id,
            target_id,
        } => {
            put("message", json!(message));
            if let Some(id) = sender_id {
                put("senderId", json!(id.as_str()));
            }
            if let Some(id) = target_id {
                put("targetId", json!(id.as_str()));
            }
        }
        Message::Request(env) | Message::Sync(env) => {
            put("senderId", json!(env.sender_id.as_str()));
            put("targetId", json!(env.target_id.as_str()));
            put("documentId", json!(env.document_id.as_str()));
            put("data", json!(hex(&env.data)));
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
            put("senderId", json!(sender_id.as_str()));
            put("targetId", json!(target_id.as_str()));
            put("documentId", json!(document_id.as_str()));
        }
        Message::Ephemeral {
            sender_id,
            target_id,
            count,
            session_id,
            document_id,
            data,
        } => {
            put("senderId", json!(sender_id.as_str()));
            put("targetId", json!(target_id.as_str()));
            put("count", json!(count));
            put("sessionId", json!(session_id));
            put("documentId", json!(document_id.as_str()));
            put("data", json!(hex(data)));
        }
        Message::RemoteSubscriptionChange {
            sender_id,
            target_id,
            add,
            remove,
        } => {
            put("senderId", json!(sender_id.as_str()));
            put("targetId", json!(target_id.as_str()));
            let ids = |ids: &Vec<StorageId>| -> Value {
                ids.iter().map(|id| json!(id.as_str())).collect()
            };
            if let Some(add) = add {
                put("add", ids(add));
            }
            if let Some(remove) = remove {
                put("remove", ids(remove));
            }
        }
        Message::RemoteHeadsChanged {
            sender_id,
            target_id,
            document_id,
            new_heads,
        } => {
            put("senderId", json!(sender_id.as_str()));
            put("targetId", json!(target_id.as_str()));
            put("documentId", json!(document_id.as_str()));
            let heads: serde_json::Map<String, Value> = new_heads
                .iter()
                .map(|(storage, h)| {
                    (
                        storage.as_str().to_owned(),
                        json!({"heads": h.heads, "timestamp": json_number(h.timestamp)}),
                    )
                })
                .collect();
            put("newHeads", Value::Object(heads));
        }
        // coachsync's own extension messages; the JS client never sends them.
        Message::Manifest { .. } | Message::ManifestReply { .. } | Message::Unknown { .. } => {}
    }
    Value::Object(m)
}

/// The manifest writes CBOR `undefined` as `null`; both mean "absent" to us.
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

#[test]
fn every_fixture_file_is_listed_in_the_manifest_and_vice_versa() {
    let files: BTreeSet<String> = fixture_files().into_keys().collect();
    let listed: BTreeSet<String> = manifest_frames()
        .iter()
        .map(|f| f["file"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(files, listed);
    assert!(files.len() >= 12, "{} fixtures", files.len());
}

#[test]
fn js_client_frames_decode_to_the_values_in_the_manifest() {
    let files = fixture_files();
    for entry in manifest_frames() {
        let file = entry["file"].as_str().unwrap();
        let bytes = &files[file];
        assert_eq!(
            bytes.len() as u64,
            entry["size"].as_u64().unwrap(),
            "{file}"
        );
        let message = decode_ok(bytes, file);
        assert_eq!(message.kind(), entry["type"].as_str().unwrap(), "{file}");
        assert!(
            !matches!(message, Message::Unknown { .. }),
            "{file} decoded as unknown"
        );
        assert_eq!(
            message_json(&message),
            without_nulls(&entry["fields"]),
            "{file}: decoded values differ from the manifest"
        );
        // Every field the frame has is one we decoded (undefined ones are absent).
        for pointer in entry["undefined_fields"].as_array().unwrap() {
            let pointer = pointer.as_str().unwrap();
            assert!(
                message_json(&message).pointer(pointer).is_none(),
                "{file}: {pointer} is undefined on the wire and absent once decoded"
            );
        }
    }
}

#[test]
fn js_client_frames_show_the_wire_quirks_the_codec_must_accept() {
    let files = fixture_files();
    // cbor-x writes every map with a 16-bit length header.
    for (file, bytes) in &files {
        assert_eq!(bytes[0], 0xb9, "{file} starts with a 16-bit map header");
    }

    let join = decode_ok(&files["join.cbor"], "join");
    let Message::Join {
        sender_id,
        supported_protocol_versions,
        peer_metadata,
    } = join
    else {
        panic!("join.cbor is a join");
    };
    assert_eq!(sender_id, peer("peer-lnleigj"));
    assert_eq!(supported_protocol_versions, vec!["1".to_owned()]);
    assert_eq!(
        peer_metadata,
        Some(PeerMetadata {
            storage_id: Some(storage("4c8203a7-a908-4921-9439-7b48dd761c1a")),
            is_ephemeral: false,
            extensions: Vec::new(),
        })
    );

    // storageId: undefined (0xf7) is accepted as absent.
    let Message::Join { peer_metadata, .. } = decode_ok(&files["join-2.cbor"], "join-2") else {
        panic!("join-2.cbor is a join");
    };
    assert_eq!(
        peer_metadata,
        Some(PeerMetadata {
            storage_id: None,
            is_ephemeral: true,
            extensions: Vec::new(),
        })
    );

    // remove: undefined is absent, remove: [] is an empty list.
    let Message::RemoteSubscriptionChange { add, remove, .. } =
        decode_ok(&files["remote-subscription-change.cbor"], "rsc")
    else {
        panic!("a remote-subscription-change");
    };
    assert_eq!(
        add,
        Some(vec![storage("5f0c2a9e-8d4b-4c1e-9a37-2b6f1d0e4c81")])
    );
    assert_eq!(remove, None);
    let Message::RemoteSubscriptionChange { remove, .. } =
        decode_ok(&files["remote-subscription-change-2.cbor"], "rsc-2")
    else {
        panic!("a remote-subscription-change");
    };
    assert_eq!(remove, Some(vec![]));

    // The float64 timestamp is read exactly.
    let Message::RemoteHeadsChanged { new_heads, .. } =
        decode_ok(&files["remote-heads-changed.cbor"], "rhc")
    else {
        panic!("a remote-heads-changed");
    };
    let side = storage("b7e1f3a2-6c5d-4e8f-a1b2-c3d4e5f60718");
    assert_eq!(
        new_heads[&side],
        RemoteHeads {
            heads: vec![],
            timestamp: 1_795_611_296_666.0
        }
    );

    // The relayed ephemeral frame keeps its author as senderId.
    let Message::Ephemeral {
        sender_id,
        target_id,
        count,
        session_id,
        ..
    } = decode_ok(&files["ephemeral-2.cbor"], "ephemeral-2")
    else {
        panic!("an ephemeral");
    };
    assert_eq!(sender_id, peer("coachsync-fixture-side"));
    assert_eq!(target_id, peer("coachsync-fixture-hub"));
    assert_eq!(count, 7);
    assert_eq!(session_id, "side-session-1");
}

#[test]
fn js_client_sync_and_request_data_are_real_automerge_sync_messages() {
    let files = fixture_files();
    let mut checked = 0;
    for entry in manifest_frames() {
        let file = entry["file"].as_str().unwrap();
        let (Message::Sync(env) | Message::Request(env)) = decode_ok(&files[file], file) else {
            continue;
        };
        let notes = &entry["notes"]["data"];
        assert_eq!(
            format!("{:02x}", env.data[0]),
            notes["first_byte"].as_str().unwrap(),
            "{file}"
        );
        let sync = automerge::sync::Message::decode(&env.data)
            .unwrap_or_else(|e| panic!("{file}: data is not a sync message: {e}"));
        let heads: Vec<String> = sync.heads.iter().map(ToString::to_string).collect();
        let want: Vec<String> = notes["heads"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(heads, want, "{file}: heads");
        assert_eq!(
            sync.need.len(),
            notes["need"].as_array().unwrap().len(),
            "{file}: need"
        );
        assert_eq!(
            sync.have.len() as u64,
            notes["have"].as_u64().unwrap(),
            "{file}: have"
        );
        assert_eq!(
            sync.changes.len() as u64,
            notes["changes"].as_u64().unwrap(),
            "{file}: changes"
        );
        checked += 1;
    }
    assert_eq!(checked, 3, "sync, sync-2 and request");

    // The changes carried by sync-2 are real: an empty automerge document that takes
    // them reaches the heads sync-2 announces, and holds the change announced in
    // sync.cbor (version-2 messages carry the history as one chunk).
    let (Message::Sync(first), Message::Sync(second)) = (
        decode_ok(&files["sync.cbor"], "sync"),
        decode_ok(&files["sync-2.cbor"], "sync-2"),
    ) else {
        panic!("sync fixtures are sync messages");
    };
    let first = automerge::sync::Message::decode(&first.data).unwrap();
    let second = automerge::sync::Message::decode(&second.data).unwrap();
    let mut doc = automerge::Automerge::new();
    for chunk in second.changes.iter() {
        doc.load_incremental(chunk).unwrap();
    }
    assert_eq!(doc.get_heads(), second.heads);
    for head in &first.heads {
        assert!(doc.get_change_by_hash(head).is_some());
    }
}

#[test]
fn js_client_gossip_heads_are_bs58check_change_hashes() {
    let files = fixture_files();
    let Message::RemoteHeadsChanged { new_heads, .. } =
        decode_ok(&files["remote-heads-changed-2.cbor"], "rhc-2")
    else {
        panic!("a remote-heads-changed");
    };
    // At that point the side peer held the document as created: the heads that
    // sync.cbor announced.
    let Message::Sync(env) = decode_ok(&files["sync.cbor"], "sync") else {
        panic!("a sync");
    };
    let synced = automerge::sync::Message::decode(&env.data).unwrap().heads;
    let heads: Vec<automerge::ChangeHash> = new_heads
        .values()
        .flat_map(|h| &h.heads)
        .map(|h| {
            let bytes = bs58::decode(h).with_check(None).into_vec().unwrap();
            automerge::ChangeHash::try_from(bytes.as_slice()).unwrap()
        })
        .collect();
    assert_eq!(heads, synced, "the side peer reports the created change");
}

#[test]
fn decoded_js_client_frames_round_trip_through_our_encoder() {
    for (file, bytes) in fixture_files() {
        let message = decode_ok(&bytes, &file);
        let encoded = message.encode();
        assert_eq!(decode_ok(&encoded, &file), message, "{file}");
    }
}

// ----- leniency ----------------------------------------------------------------------

/// An ephemeral frame whose `count` is written by `count`.
fn ephemeral_with_count(count: impl FnOnce(&mut Enc<'_>) -> EncResult) -> Vec<u8> {
    cbor(|e| {
        e.map(7)?;
        e.str("type")?.str("ephemeral")?;
        e.str("senderId")?.str("peer-a")?;
        e.str("targetId")?.str("server")?;
        e.str("count")?;
        count(e)?;
        e.str("sessionId")?.str("s1")?;
        e.str("documentId")?.str(doc_id().as_str())?;
        e.str("data")?.bytes(&[0xa0])?;
        Ok(())
    })
}

fn count_of(frame: &[u8]) -> u64 {
    match decode_ok(frame, "ephemeral") {
        Message::Ephemeral { count, .. } => count,
        other => panic!("not an ephemeral: {other:?}"),
    }
}

#[test]
fn ephemeral_count_may_be_an_integer_of_any_width_or_a_whole_float() {
    assert_eq!(count_of(&ephemeral_with_count(|e| e.u8(7).map(drop))), 7);
    assert_eq!(
        count_of(&ephemeral_with_count(|e| e.u64(1 << 40).map(drop))),
        1 << 40
    );
    assert_eq!(count_of(&ephemeral_with_count(|e| e.f64(7.0).map(drop))), 7);
    assert_eq!(
        count_of(&ephemeral_with_count(|e| e.f64(2f64.powi(40)).map(drop))),
        1 << 40
    );
    assert_eq!(count_of(&ephemeral_with_count(|e| e.f32(7.0).map(drop))), 7);
    assert_eq!(count_of(&ephemeral_with_count(|e| e.f16(7.0).map(drop))), 7);
    // A non-minimal uint64 head (0x1b) for a small number.
    let long_form = ephemeral_with_count(|e| {
        e.writer_mut()
            .extend_from_slice(&[0x1b, 0, 0, 0, 0, 0, 0, 0, 9]);
        Ok(())
    });
    assert_eq!(count_of(&long_form), 9);
    // The largest integer a float64 carries exactly.
    assert_eq!(
        count_of(&ephemeral_with_count(|e| e.f64(2f64.powi(53)).map(drop))),
        1 << 53
    );
}

#[test]
fn ephemeral_count_that_is_not_a_non_negative_whole_number_is_an_error() {
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("fraction", ephemeral_with_count(|e| e.f64(1.5).map(drop))),
        (
            "negative float",
            ephemeral_with_count(|e| e.f64(-1.0).map(drop)),
        ),
        (
            "negative int",
            ephemeral_with_count(|e| e.i64(-1).map(drop)),
        ),
        ("nan", ephemeral_with_count(|e| e.f64(f64::NAN).map(drop))),
        (
            "inf",
            ephemeral_with_count(|e| e.f64(f64::INFINITY).map(drop)),
        ),
        (
            "over 2^53",
            ephemeral_with_count(|e| e.f64(2f64.powi(60)).map(drop)),
        ),
        ("text", ephemeral_with_count(|e| e.str("7").map(drop))),
        ("null", ephemeral_with_count(|e| e.null().map(drop))),
        (
            "undefined",
            ephemeral_with_count(|e| e.undefined().map(drop)),
        ),
    ];
    for (what, frame) in bad {
        assert_decode_error(&frame, what);
    }
}

fn heads_frame(timestamp: impl FnOnce(&mut Enc<'_>) -> EncResult) -> Vec<u8> {
    cbor(|e| {
        e.map(5)?;
        e.str("type")?.str("remote-heads-changed")?;
        e.str("senderId")?.str("peer-a")?;
        e.str("targetId")?.str("server")?;
        e.str("documentId")?.str(doc_id().as_str())?;
        e.str("newHeads")?.map(1)?;
        e.str("storage-1")?.map(2)?;
        e.str("heads")?.array(0)?;
        e.str("timestamp")?;
        timestamp(e)
    })
}

fn timestamp_of(frame: &[u8]) -> f64 {
    match decode_ok(frame, "remote-heads-changed") {
        Message::RemoteHeadsChanged { new_heads, .. } => new_heads[&storage("storage-1")].timestamp,
        other => panic!("not remote-heads-changed: {other:?}"),
    }
}

#[test]
fn timestamps_may_be_float64_float32_float16_or_integers() {
    let ms = 1_795_611_296_666u64;
    assert_eq!(
        timestamp_of(&heads_frame(|e| e.f64(ms as f64).map(drop))),
        ms as f64
    );
    assert_eq!(
        timestamp_of(&heads_frame(|e| e.u64(ms).map(drop))),
        ms as f64
    );
    assert_eq!(timestamp_of(&heads_frame(|e| e.u32(12).map(drop))), 12.0);
    assert_eq!(
        timestamp_of(&heads_frame(|e| e.f32(1024.0).map(drop))),
        1024.0
    );
    assert_eq!(timestamp_of(&heads_frame(|e| e.f16(2.5).map(drop))), 2.5);
    assert_decode_error(&heads_frame(|e| e.f64(f64::NAN).map(drop)), "nan timestamp");
    assert_decode_error(&heads_frame(|e| e.str("now").map(drop)), "text timestamp");
}

fn join_with_metadata(key: &str, storage_id: impl FnOnce(&mut Enc<'_>) -> EncResult) -> Vec<u8> {
    cbor(|e| {
        e.map(3)?;
        e.str("type")?.str("join")?;
        e.str("senderId")?.str("peer-a")?;
        e.str(key)?.map(2)?;
        e.str("storageId")?;
        storage_id(e)?;
        e.str("isEphemeral")?.bool(false)?;
        Ok(())
    })
}

fn metadata_of(frame: &[u8]) -> Option<PeerMetadata> {
    match decode_ok(frame, "join") {
        Message::Join { peer_metadata, .. } => peer_metadata,
        other => panic!("not a join: {other:?}"),
    }
}

#[test]
fn storage_id_undefined_or_null_means_no_storage_id() {
    for (what, frame) in [
        (
            "undefined",
            join_with_metadata("peerMetadata", |e| e.undefined().map(drop)),
        ),
        (
            "null",
            join_with_metadata("peerMetadata", |e| e.null().map(drop)),
        ),
    ] {
        assert_eq!(
            metadata_of(&frame),
            Some(PeerMetadata {
                storage_id: None,
                is_ephemeral: false,
                extensions: Vec::new(),
            }),
            "{what}"
        );
    }
    assert_decode_error(
        &join_with_metadata("peerMetadata", |e| e.u8(1).map(drop)),
        "a numeric storageId",
    );
}

#[test]
fn metadata_is_accepted_as_the_older_name_of_peer_metadata() {
    let frame = join_with_metadata("metadata", |e| e.str("store-1").map(drop));
    assert_eq!(
        metadata_of(&frame),
        Some(PeerMetadata {
            storage_id: Some(storage("store-1")),
            is_ephemeral: false,
            extensions: Vec::new(),
        })
    );
    // When both are present, peerMetadata wins.
    let both = cbor(|e| {
        e.map(4)?;
        e.str("type")?.str("join")?;
        e.str("senderId")?.str("peer-a")?;
        e.str("metadata")?.map(1)?;
        e.str("storageId")?.str("old")?;
        e.str("peerMetadata")?.map(1)?;
        e.str("storageId")?.str("new")?;
        Ok(())
    });
    assert_eq!(metadata_of(&both).unwrap().storage_id, Some(storage("new")));
    // A missing isEphemeral means false.
    assert!(!metadata_of(&both).unwrap().is_ephemeral);
}

/// Values of every shape, for unknown keys.
fn junk_value(e: &mut Enc<'_>, variant: usize) -> EncResult {
    match variant {
        0 => e
            .map(2)?
            .str("a")?
            .array(3)?
            .u8(1)?
            .null()?
            .map(1)?
            .u8(1)?
            .undefined()?
            .str("b")?
            .bool(true)?,
        1 => e
            .array(2)?
            .begin_map()?
            .str("x")?
            .begin_array()?
            .f64(1.5)?
            .end()?
            .end()?
            .bytes(&[1, 2, 3])?,
        2 => e.tag(Tag::new(64))?.bytes(&[9; 40])?,
        3 => e.null()?,
        4 => e.undefined()?,
        5 => e.f64(f64::NAN)?,
        6 => e.i64(-5)?,
        7 => e.simple(99)?,
        _ => e.str("plain")?,
    };
    Ok(())
}

#[test]
fn unknown_keys_with_values_of_any_shape_are_ignored() {
    let env = SyncEnvelope {
        sender_id: peer("peer-a"),
        target_id: peer("server"),
        document_id: doc_id(),
        data: sync_data(),
    };
    for variant in 0..9 {
        let frame = cbor(|e| {
            e.map(9)?;
            e.str("extra")?;
            junk_value(e, variant)?;
            e.str("type")?.str("sync")?;
            e.str("senderId")?.str("peer-a")?;
            // Non-text keys are unknown keys too.
            e.u8(7)?;
            junk_value(e, variant)?;
            e.str("targetId")?.str("server")?;
            e.array(1)?.u8(1)?;
            e.str("value of an array key")?;
            e.str("documentId")?.str(doc_id().as_str())?;
            e.str("data")?.bytes(&env.data)?;
            e.str("zzz")?;
            junk_value(e, (variant + 1) % 9)?;
            Ok(())
        });
        assert_eq!(
            decode_ok(&frame, "sync with unknown keys"),
            Message::Sync(env.clone()),
            "variant {variant}"
        );
    }
}

#[test]
fn unknown_keys_inside_peer_metadata_and_heads_entries_are_ignored() {
    let join = cbor(|e| {
        e.map(3)?;
        e.str("type")?.str("join")?;
        e.str("senderId")?.str("peer-a")?;
        e.str("peerMetadata")?.map(4)?;
        e.str("future")?;
        junk_value(e, 0)?;
        e.str("storageId")?.str("store-1")?;
        e.u8(1)?.str("non-text key")?;
        e.str("isEphemeral")?.bool(false)?;
        Ok(())
    });
    assert_eq!(
        metadata_of(&join).unwrap().storage_id,
        Some(storage("store-1"))
    );

    let heads = cbor(|e| {
        e.map(5)?;
        e.str("type")?.str("remote-heads-changed")?;
        e.str("senderId")?.str("peer-a")?;
        e.str("targetId")?.str("server")?;
        e.str("documentId")?.str(doc_id().as_str())?;
        e.str("newHeads")?.map(1)?;
        e.str("storage-1")?.map(3)?;
        e.str("heads")?.array(1)?.str("h1")?;
        e.str("extra")?;
        junk_value(e, 1)?;
        e.str("timestamp")?.f64(5.0)?;
        Ok(())
    });
    let Message::RemoteHeadsChanged { new_heads, .. } = decode_ok(&heads, "heads") else {
        panic!("a remote-heads-changed");
    };
    assert_eq!(
        new_heads[&storage("storage-1")],
        RemoteHeads {
            heads: vec!["h1".into()],
            timestamp: 5.0
        }
    );
}

#[test]
fn an_unknown_type_decodes_as_unknown_whatever_else_the_frame_holds() {
    let bare = cbor(|e| {
        e.map(1)?.str("type")?.str("durable-ack")?;
        Ok(())
    });
    assert_eq!(
        decode_ok(&bare, "bare"),
        Message::Unknown {
            kind: "durable-ack".into()
        }
    );
    let busy = cbor(|e| {
        e.map(4)?.str("type")?.str("manifest")?;
        e.str("senderId")?.u8(3)?; // a field that would be wrong in a known type
        e.str("documentId")?.str("not bs58 0OIl")?;
        e.str("batch")?;
        junk_value(e, 0)
    });
    assert_eq!(
        decode_ok(&busy, "busy"),
        Message::Unknown {
            kind: "manifest".into()
        }
    );
    // A very long type is cut to a printable length.
    let long = "x".repeat(10_000);
    let Message::Unknown { kind } = decode_ok(
        &cbor(|e| {
            e.map(1)?.str("type")?.str(&long)?;
            Ok(())
        }),
        "long type",
    ) else {
        panic!("unknown");
    };
    assert!(kind.len() < 100, "{} bytes", kind.len());
}

fn join_versions(versions: Option<&Writer<'_>>) -> Vec<String> {
    let frame = cbor(|e| {
        e.map(2 + u64::from(versions.is_some()))?;
        e.str("type")?.str("join")?;
        e.str("senderId")?.str("peer-a")?;
        if let Some(v) = versions {
            e.str("supportedProtocolVersions")?;
            v(e)?;
        }
        Ok(())
    });
    match decode_ok(&frame, "join") {
        Message::Join {
            supported_protocol_versions,
            peer_metadata,
            ..
        } => {
            assert_eq!(peer_metadata, None);
            supported_protocol_versions
        }
        other => panic!("not a join: {other:?}"),
    }
}

#[test]
fn a_missing_supported_protocol_versions_means_version_1() {
    assert_eq!(join_versions(None), vec!["1"]);
    assert_eq!(join_versions(Some(&|e| e.null().map(drop))), vec!["1"]);
    assert_eq!(join_versions(Some(&|e| e.undefined().map(drop))), vec!["1"]);
    // An explicit list is taken as it is; entries that are not text are skipped.
    assert_eq!(
        join_versions(Some(&|e| e.array(0).map(drop))),
        Vec::<String>::new()
    );
    assert_eq!(
        join_versions(Some(&|e| e.array(3)?.u8(1)?.str("2")?.str("1").map(drop))),
        vec!["2", "1"]
    );
}

#[test]
fn indefinite_length_maps_and_arrays_are_accepted_at_every_level() {
    let join = cbor(|e| {
        e.begin_map()?;
        e.str("type")?.str("join")?;
        e.str("senderId")?.str("peer-a")?;
        e.str("supportedProtocolVersions")?
            .begin_array()?
            .str("1")?
            .end()?;
        e.str("peerMetadata")?.begin_map()?;
        e.str("storageId")?.str("store-1")?;
        e.str("isEphemeral")?.bool(false)?;
        e.end()?;
        e.str("unknown")?
            .begin_map()?
            .str("a")?
            .begin_array()?
            .end()?
            .end()?;
        e.end()?;
        Ok(())
    });
    assert_eq!(
        decode_ok(&join, "indefinite join"),
        Message::Join {
            sender_id: peer("peer-a"),
            supported_protocol_versions: vec!["1".into()],
            peer_metadata: Some(PeerMetadata {
                storage_id: Some(storage("store-1")),
                is_ephemeral: false,
                extensions: Vec::new(),
            }),
        }
    );

    let heads = cbor(|e| {
        e.begin_map()?;
        e.str("type")?.str("remote-heads-changed")?;
        e.str("senderId")?.str("peer-a")?;
        e.str("targetId")?.str("server")?;
        e.str("documentId")?.str(doc_id().as_str())?;
        e.str("newHeads")?.begin_map()?;
        e.str("storage-1")?.begin_map()?;
        e.str("heads")?.begin_array()?.str("h1")?.str("h2")?.end()?;
        e.str("timestamp")?.f64(1.0)?;
        e.end()?.end()?;
        e.end()?;
        Ok(())
    });
    let Message::RemoteHeadsChanged { new_heads, .. } = decode_ok(&heads, "indefinite heads")
    else {
        panic!("a remote-heads-changed");
    };
    assert_eq!(new_heads[&storage("storage-1")].heads, vec!["h1", "h2"]);

    let subs = cbor(|e| {
        e.begin_map()?;
        e.str("type")?.str("remote-subscription-change")?;
        e.str("senderId")?.str("peer-a")?;
        e.str("targetId")?.str("server")?;
        e.str("add")?.begin_array()?.str("s1")?.end()?;
        e.end()?;
        Ok(())
    });
    let Message::RemoteSubscriptionChange { add, remove, .. } = decode_ok(&subs, "subs") else {
        panic!("a remote-subscription-change");
    };
    assert_eq!(add, Some(vec![storage("s1")]));
    assert_eq!(remove, None);
}

#[test]
fn a_repeated_key_takes_the_last_value_as_javascript_does() {
    let frame = cbor(|e| {
        e.map(3)?;
        e.str("type")?.str("leave")?;
        e.str("senderId")?.str("first")?;
        e.str("senderId")?.str("second")?;
        Ok(())
    });
    assert_eq!(
        decode_ok(&frame, "leave"),
        Message::Leave {
            sender_id: peer("second")
        }
    );
}

// ----- strictness about shape --------------------------------------------------------

#[test]
fn frames_that_are_not_cbor_maps_are_decode_errors() {
    let frames: Vec<(&str, Vec<u8>)> = vec![
        ("empty", vec![]),
        ("array", cbor(|e| e.array(1)?.str("sync").map(drop))),
        ("integer", cbor(|e| e.u32(7).map(drop))),
        ("text", cbor(|e| e.str("type").map(drop))),
        ("bytes", cbor(|e| e.bytes(b"{}").map(drop))),
        ("null", cbor(|e| e.null().map(drop))),
        (
            "a tagged map",
            cbor(|e| {
                e.tag(Tag::new(259))?.map(1)?.str("type")?.str("leave")?;
                Ok(())
            }),
        ),
        ("json text", br#"{"type":"join","senderId":"a"}"#.to_vec()),
        ("a break byte", vec![0xff]),
        ("a reserved initial byte", vec![0x1c]),
    ];
    for (what, frame) in frames {
        assert_decode_error(&frame, what);
    }
}

#[test]
fn every_truncation_of_every_js_client_frame_is_a_decode_error() {
    for (file, bytes) in fixture_files() {
        for len in 0..bytes.len() {
            assert_decode_error(&bytes[..len], &format!("{file} cut to {len} bytes"));
        }
    }
}

#[test]
fn trailing_bytes_after_the_message_map_are_a_decode_error() {
    let frame = fixture_files().remove("join.cbor").unwrap();
    for tail in [&[0x00][..], &[0xff], &[0xa0], &frame[..]] {
        let mut with_tail = frame.clone();
        with_tail.extend_from_slice(tail);
        assert_decode_error(&with_tail, &format!("join + {} bytes", tail.len()));
    }
    // The same after an indefinite-length map.
    let indefinite = cbor(|e| {
        e.begin_map()?.str("type")?.str("leave")?;
        e.str("senderId")?.str("a")?.end()?.u8(0)?;
        Ok(())
    });
    assert_decode_error(&indefinite, "indefinite map + 1 byte");
}

/// A frame written from `(key, value writer)` pairs, so fields can be left out.
fn frame_of(fields: &[Field<'_>]) -> Vec<u8> {
    cbor(|e| {
        e.map(fields.len() as u64)?;
        for (key, value) in fields {
            e.str(key)?;
            value(e)?;
        }
        Ok(())
    })
}

#[test]
fn a_missing_or_null_required_field_is_a_decode_error_for_every_type() {
    let doc = doc_id();
    let data = sync_data();
    let s = |v: &'static str| move |e: &mut Enc<'_>| e.str(v).map(drop);
    let doc_field = |e: &mut Enc<'_>| e.str(doc.as_str()).map(drop);
    let data_field = |e: &mut Enc<'_>| e.bytes(&data).map(drop);
    let count = |e: &mut Enc<'_>| e.u8(1).map(drop);
    let heads = |e: &mut Enc<'_>| e.map(0).map(drop);
    let (join, peer_t, leave, sync, request, unavailable, ephemeral, subs, gossip) = (
        s("join"),
        s("peer"),
        s("leave"),
        s("sync"),
        s("request"),
        s("doc-unavailable"),
        s("ephemeral"),
        s("remote-subscription-change"),
        s("remote-heads-changed"),
    );
    let (a, b, session) = (s("peer-a"), s("server"), s("s1"));
    // (fields of a complete frame, how many leading fields are required)
    let complete: Vec<Vec<Field<'_>>> = vec![
        vec![("type", &join), ("senderId", &a)],
        vec![("type", &peer_t), ("senderId", &b), ("targetId", &a)],
        vec![("type", &leave), ("senderId", &a)],
        vec![
            ("type", &sync),
            ("senderId", &a),
            ("targetId", &b),
            ("documentId", &doc_field),
            ("data", &data_field),
        ],
        vec![
            ("type", &request),
            ("senderId", &a),
            ("targetId", &b),
            ("documentId", &doc_field),
            ("data", &data_field),
        ],
        vec![
            ("type", &unavailable),
            ("senderId", &a),
            ("targetId", &b),
            ("documentId", &doc_field),
        ],
        vec![
            ("type", &ephemeral),
            ("senderId", &a),
            ("targetId", &b),
            ("count", &count),
            ("sessionId", &session),
            ("documentId", &doc_field),
            ("data", &data_field),
        ],
        vec![("type", &subs), ("senderId", &a), ("targetId", &b)],
        vec![
            ("type", &gossip),
            ("senderId", &a),
            ("targetId", &b),
            ("documentId", &doc_field),
            ("newHeads", &heads),
        ],
    ];
    let null = |e: &mut Enc<'_>| e.null().map(drop);
    let undefined = |e: &mut Enc<'_>| e.undefined().map(drop);
    for fields in &complete {
        let kind = decode_ok(&frame_of(fields), "complete frame")
            .kind()
            .to_owned();
        for skip in 0..fields.len() {
            let (missing, _) = fields[skip];
            let without: Vec<Field<'_>> = fields
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, f)| *f)
                .collect();
            assert_decode_error(&frame_of(&without), &format!("{kind} without {missing}"));
            for (absent, writer) in [("null", &null as &Writer<'_>), ("undefined", &undefined)] {
                let mut with_absent = fields.clone();
                with_absent[skip] = (missing, writer);
                assert_decode_error(
                    &frame_of(&with_absent),
                    &format!("{kind} with {missing}: {absent}"),
                );
            }
        }
    }
}

#[test]
fn a_field_of_the_wrong_cbor_type_is_a_decode_error() {
    let doc = doc_id();
    let data = sync_data();
    let sync = |sender: &Writer<'_>, document: &Writer<'_>, payload: &Writer<'_>| {
        frame_of(&[
            ("type", &|e| e.str("sync").map(drop)),
            ("senderId", sender),
            ("targetId", &|e| e.str("server").map(drop)),
            ("documentId", document),
            ("data", payload),
        ])
    };
    let text_sender = |e: &mut Enc<'_>| e.str("peer-a").map(drop);
    let good_doc = |e: &mut Enc<'_>| e.str(doc.as_str()).map(drop);
    let bytes_data = |e: &mut Enc<'_>| e.bytes(&data).map(drop);
    assert!(Message::decode(&sync(&text_sender, &good_doc, &bytes_data)).is_ok());
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "senderId as bytes",
            sync(&|e| e.bytes(b"peer-a").map(drop), &good_doc, &bytes_data),
        ),
        (
            "empty senderId",
            sync(&|e| e.str("").map(drop), &good_doc, &bytes_data),
        ),
        (
            "documentId as bytes",
            sync(
                &text_sender,
                &|e| e.bytes(doc.as_bytes()).map(drop),
                &bytes_data,
            ),
        ),
        (
            "data as text",
            sync(&text_sender, &good_doc, &|e| e.str("42").map(drop)),
        ),
        (
            "data as array",
            sync(&text_sender, &good_doc, &|e| e.array(1)?.u8(0x42).map(drop)),
        ),
        (
            "type as a number",
            frame_of(&[("type", &|e| e.u8(1).map(drop))]),
        ),
        ("no type at all", frame_of(&[("senderId", &text_sender)])),
    ];
    for (what, frame) in cases {
        assert_decode_error(&frame, what);
    }
}

#[test]
fn a_document_id_with_a_bad_checksum_or_alphabet_is_a_decode_error() {
    let good = doc_id().to_string();
    let mut tampered = good.clone().into_bytes();
    let last = tampered.len() - 1;
    tampered[last] = if tampered[last] == b'2' { b'3' } else { b'2' };
    let tampered = String::from_utf8(tampered).unwrap();
    // A valid bs58 string without a valid checksum.
    let no_check = bs58::encode([7u8; 16]).into_string();
    for bad in [tampered.as_str(), no_check.as_str(), "0OIl", "", "abc"] {
        let frame = cbor(|e| {
            e.map(4)?;
            e.str("type")?.str("doc-unavailable")?;
            e.str("senderId")?.str("peer-a")?;
            e.str("targetId")?.str("server")?;
            e.str("documentId")?.str(bad)?;
            Ok(())
        });
        assert_decode_error(&frame, &format!("documentId {bad:?}"));
    }
}

/// A `leave` frame with an unknown key whose value nests `depth` arrays (or maps, or
/// tags) deep.
fn nested_frame(depth: usize, shape: u8) -> Vec<u8> {
    cbor(|e| {
        e.map(3)?;
        e.str("type")?.str("leave")?;
        e.str("senderId")?.str("peer-a")?;
        e.str("deep")?;
        for _ in 0..depth {
            match shape {
                0 => e.array(1)?,
                1 => e.map(1)?.str("k")?,
                2 => e.tag(Tag::new(1000))?,
                _ => e.begin_array()?,
            };
        }
        e.u8(0)?;
        if shape == 3 {
            for _ in 0..depth {
                e.end()?;
            }
        }
        Ok(())
    })
}

#[test]
fn values_nested_beyond_max_nesting_are_decode_errors_without_overflowing_the_stack() {
    for shape in 0..4 {
        assert!(
            Message::decode(&nested_frame(MAX_NESTING, shape)).is_ok(),
            "shape {shape}: {MAX_NESTING} levels are fine"
        );
        for depth in [MAX_NESTING + 1, 1_000, 100_000] {
            assert_decode_error(
                &nested_frame(depth, shape),
                &format!("shape {shape}, {depth} levels"),
            );
        }
    }
    // Deep nesting inside a field the decoder reads itself.
    let deep_meta = cbor(|e| {
        e.map(3)?;
        e.str("type")?.str("join")?;
        e.str("senderId")?.str("peer-a")?;
        e.str("peerMetadata")?.map(1)?.str("x")?;
        for _ in 0..100_000 {
            e.array(1)?;
        }
        e.u8(0)?;
        Ok(())
    });
    assert_decode_error(&deep_meta, "deep value in peerMetadata");
}

#[test]
fn lengths_that_claim_more_than_the_frame_holds_are_decode_errors() {
    let frames: Vec<(&str, Vec<u8>)> = vec![
        (
            "map of 2^64-1 entries",
            vec![0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ),
        (
            "bytes of 2^63",
            cbor(|e| {
                e.map(2)?.str("type")?.str("leave")?.str("x")?;
                e.writer_mut()
                    .extend_from_slice(&[0x5b, 0x80, 0, 0, 0, 0, 0, 0, 0]);
                Ok(())
            }),
        ),
        (
            "array of 2^32 items in an unknown key",
            cbor(|e| {
                e.map(2)?.str("type")?.str("leave")?.str("x")?;
                e.writer_mut()
                    .extend_from_slice(&[0x9a, 0xff, 0xff, 0xff, 0xff]);
                Ok(())
            }),
        ),
    ];
    for (what, frame) in frames {
        assert_decode_error(&frame, what);
    }
}

// ----- property tests ----------------------------------------------------------------

fn any_id_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9_.-]{1,40}",
        "peer-[a-z0-9]{4,12}",
        // Any printable text, multi-byte included.
        "\\PC{1,30}",
    ]
}

fn any_peer() -> impl Strategy<Value = PeerId> {
    any_id_text().prop_map(|s| PeerId::new(&s).unwrap())
}

fn any_storage() -> impl Strategy<Value = StorageId> {
    any_id_text().prop_map(|s| StorageId::new(&s).unwrap())
}

fn any_document() -> impl Strategy<Value = DocumentId> {
    prop_oneof![
        3 => any::<[u8; 16]>().prop_map(DocumentId::from_random),
        1 => prop::collection::vec(any::<u8>(), 1..=64)
            .prop_map(|b| DocumentId::from_bytes(&b).unwrap()),
    ]
}

fn any_metadata() -> impl Strategy<Value = Option<PeerMetadata>> {
    prop::option::of((prop::option::of(any_storage()), any::<bool>()).prop_map(
        |(storage_id, is_ephemeral)| PeerMetadata {
            storage_id,
            is_ephemeral,
            extensions: Vec::new(),
        },
    ))
}

fn any_envelope() -> impl Strategy<Value = SyncEnvelope> {
    (
        any_peer(),
        any_peer(),
        any_document(),
        prop::collection::vec(any::<u8>(), 0..600),
    )
        .prop_map(|(sender_id, target_id, document_id, data)| SyncEnvelope {
            sender_id,
            target_id,
            document_id,
            data,
        })
}

fn any_timestamp() -> impl Strategy<Value = f64> {
    prop_oneof![
        (0u64..(1 << 53)).prop_map(|n| n as f64),
        prop::num::f64::NORMAL | prop::num::f64::SUBNORMAL | prop::num::f64::ZERO,
    ]
}

fn any_count() -> impl Strategy<Value = u64> {
    // Up to 2^53, the largest count a JavaScript peer (and a float64) carries exactly.
    prop_oneof![0u64..(1 << 32), (1u64 << 32)..=(1u64 << 53)]
}

fn any_message() -> impl Strategy<Value = Message> {
    let strategies: Vec<BoxedStrategy<Message>> = vec![
        (
            any_peer(),
            prop::collection::vec("[0-9a-z.]{0,5}", 0..4),
            any_metadata(),
        )
            .prop_map(
                |(sender_id, supported_protocol_versions, peer_metadata)| Message::Join {
                    sender_id,
                    supported_protocol_versions,
                    peer_metadata,
                },
            )
            .boxed(),
        (any_peer(), any_peer(), "[0-9.]{0,4}", any_metadata())
            .prop_map(
                |(sender_id, target_id, selected_protocol_version, peer_metadata)| Message::Peer {
                    sender_id,
                    target_id,
                    selected_protocol_version,
                    peer_metadata,
                },
            )
            .boxed(),
        any_peer()
            .prop_map(|sender_id| Message::Leave { sender_id })
            .boxed(),
        (
            "\\PC{0,60}",
            prop::option::of(any_peer()),
            prop::option::of(any_peer()),
        )
            .prop_map(|(message, sender_id, target_id)| Message::Error {
                message,
                sender_id,
                target_id,
            })
            .boxed(),
        any_envelope().prop_map(Message::Request).boxed(),
        any_envelope().prop_map(Message::Sync).boxed(),
        (any_peer(), any_peer(), any_document())
            .prop_map(
                |(sender_id, target_id, document_id)| Message::DocUnavailable {
                    sender_id,
                    target_id,
                    document_id,
                },
            )
            .boxed(),
        (
            any_peer(),
            any_peer(),
            any_count(),
            "\\PC{0,20}",
            any_document(),
            prop::collection::vec(any::<u8>(), 0..200),
        )
            .prop_map(
                |(sender_id, target_id, count, session_id, document_id, data)| Message::Ephemeral {
                    sender_id,
                    target_id,
                    count,
                    session_id,
                    document_id,
                    data,
                },
            )
            .boxed(),
        (
            any_peer(),
            any_peer(),
            prop::option::of(prop::collection::vec(any_storage(), 0..4)),
            prop::option::of(prop::collection::vec(any_storage(), 0..4)),
        )
            .prop_map(
                |(sender_id, target_id, add, remove)| Message::RemoteSubscriptionChange {
                    sender_id,
                    target_id,
                    add,
                    remove,
                },
            )
            .boxed(),
        (
            any_peer(),
            any_peer(),
            any_document(),
            prop::collection::btree_map(
                any_storage(),
                (
                    prop::collection::vec("[1-9A-HJ-NP-Za-km-z]{40,52}", 0..3),
                    any_timestamp(),
                )
                    .prop_map(|(heads, timestamp)| RemoteHeads { heads, timestamp }),
                0..4,
            ),
        )
            .prop_map(|(sender_id, target_id, document_id, new_heads)| {
                Message::RemoteHeadsChanged {
                    sender_id,
                    target_id,
                    document_id,
                    new_heads,
                }
            })
            .boxed(),
        "x-[a-z-]{0,30}"
            .prop_map(|kind| Message::Unknown { kind })
            .boxed(),
    ];
    proptest::strategy::Union::new(strategies)
}

/// Apply byte edits to a frame: overwrite, insert, delete, or cut it short.
fn mutate(frame: &[u8], edits: &[(u8, usize, u8)]) -> Vec<u8> {
    let mut out = frame.to_vec();
    for &(op, at, byte) in edits {
        let pos = if out.is_empty() { 0 } else { at % out.len() };
        match op % 4 {
            0 if !out.is_empty() => out[pos] = byte,
            1 => out.insert(pos, byte),
            2 if !out.is_empty() => {
                out.remove(pos);
            }
            3 => out.truncate(pos),
            _ => {}
        }
    }
    out
}

fn any_edits() -> impl Strategy<Value = Vec<(u8, usize, u8)>> {
    prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..6)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_message_round_trips_through_encode_and_decode(message in any_message()) {
        let frame = message.encode();
        let decoded = Message::decode(&frame);
        prop_assert!(decoded.is_ok(), "{:?} did not decode: {:?}", message, decoded);
        prop_assert_eq!(decoded.unwrap(), message);
    }

    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Message::decode(&bytes);
    }

    #[test]
    fn arbitrary_bytes_inside_a_map_header_never_panic_the_decoder(
        header in prop_oneof![Just(0xa5u8), Just(0xb9), Just(0xbf), 0xa0u8..0xb8],
        bytes in prop::collection::vec(any::<u8>(), 0..256),
    ) {
        let mut frame = vec![header];
        if header == 0xb9 {
            frame.extend_from_slice(&[0, 5]);
        }
        frame.extend_from_slice(&bytes);
        let _ = Message::decode(&frame);
    }

    #[test]
    fn mutated_js_client_frames_never_panic_the_decoder(
        which in 0usize..64,
        edits in any_edits(),
    ) {
        let files: Vec<Vec<u8>> = fixture_files().into_values().collect();
        let frame = mutate(&files[which % files.len()], &edits);
        let _ = Message::decode(&frame);
    }

    #[test]
    fn mutated_encodings_of_any_message_never_panic_the_decoder(
        message in any_message(),
        edits in any_edits(),
    ) {
        let frame = mutate(&message.encode(), &edits);
        let _ = Message::decode(&frame);
    }

    #[test]
    fn encoded_messages_follow_samods_strict_rules(message in any_message()) {
        let problems = samod_problems(&message.encode());
        prop_assert!(problems.is_empty(), "{:?}: {:?}", message, problems);
    }
}

// ----- what we send follows samod's rules --------------------------------------------

/// Message types whose frames must name their target (samod closes otherwise).
const TARGETED: [&str; 7] = [
    "peer",
    "request",
    "sync",
    "doc-unavailable",
    "ephemeral",
    "remote-subscription-change",
    "remote-heads-changed",
];

/// Walk a frame and list every way it breaks the rules samod decodes by.
fn samod_problems(frame: &[u8]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut d = Decoder::new(frame);
    let n = match d.datatype() {
        Ok(Type::Map) => d.map().unwrap().unwrap(),
        other => {
            problems.push(format!("the frame is not a definite-length map: {other:?}"));
            return problems;
        }
    };
    let mut kind = None;
    let mut has_target = false;
    for _ in 0..n {
        let key = read_key(&mut d, "", &mut problems);
        match key.as_str() {
            "type" => kind = d.clone().str().ok().map(str::to_owned),
            "targetId" => has_target = d.datatype().ok() == Some(Type::String),
            _ => {}
        }
        walk(&mut d, &format!("/{key}"), &mut problems);
    }
    if d.position() != frame.len() {
        problems.push("trailing bytes".into());
    }
    match kind {
        None => problems.push("no text type".into()),
        Some(kind) if TARGETED.contains(&kind.as_str()) && !has_target => {
            problems.push(format!("{kind} has no targetId"));
        }
        Some(_) => {}
    }
    problems
}

fn read_key(d: &mut Decoder<'_>, path: &str, problems: &mut Vec<String>) -> String {
    match d.datatype() {
        Ok(Type::String) => d.str().unwrap().to_owned(),
        other => {
            problems.push(format!("{path}: a key of type {other:?}"));
            let _ = d.skip();
            "?".to_owned()
        }
    }
}

fn walk(d: &mut Decoder<'_>, path: &str, problems: &mut Vec<String>) {
    let ty = match d.datatype() {
        Ok(ty) => ty,
        Err(e) => {
            problems.push(format!("{path}: {e}"));
            return;
        }
    };
    if path.ends_with("/timestamp") && ty != Type::F64 {
        problems.push(format!("{path}: a timestamp that is not float64 ({ty})"));
    }
    match ty {
        Type::Map => {
            let n = d.map().unwrap().unwrap();
            for _ in 0..n {
                let key = read_key(d, path, problems);
                walk(d, &format!("{path}/{key}"), problems);
            }
        }
        Type::Array => {
            let n = d.array().unwrap().unwrap();
            for i in 0..n {
                walk(d, &format!("{path}/{i}"), problems);
            }
        }
        Type::MapIndef | Type::ArrayIndef | Type::BytesIndef | Type::StringIndef => {
            problems.push(format!("{path}: indefinite length ({ty})"));
            let _ = d.skip();
        }
        Type::Null => {
            problems.push(format!("{path}: null"));
            let _ = d.skip();
        }
        Type::Undefined => {
            problems.push(format!("{path}: undefined"));
            let _ = d.skip();
        }
        Type::Tag => {
            problems.push(format!("{path}: a tag"));
            let _ = d.skip();
        }
        _ => {
            let _ = d.skip();
        }
    }
}

#[test]
fn the_rule_checker_catches_what_samod_refuses() {
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "null",
            cbor(|e| {
                e.map(3)?
                    .str("type")?
                    .str("leave")?
                    .str("senderId")?
                    .str("a")?;
                e.str("x")?.null()?;
                Ok(())
            }),
        ),
        (
            "indefinite",
            cbor(|e| {
                e.begin_map()?
                    .str("type")?
                    .str("leave")?
                    .str("senderId")?
                    .str("a")?;
                e.end()?;
                Ok(())
            }),
        ),
        (
            "no targetId",
            cbor(|e| {
                e.map(3)?
                    .str("type")?
                    .str("doc-unavailable")?
                    .str("senderId")?
                    .str("a")?;
                e.str("documentId")?.str(doc_id().as_str())?;
                Ok(())
            }),
        ),
        ("uint timestamp", heads_frame(|e| e.u64(1).map(drop))),
    ];
    for (what, frame) in cases {
        assert!(
            !samod_problems(&frame).is_empty(),
            "{what} passed the checker"
        );
    }
}

#[test]
fn js_client_frames_break_samods_rules_only_where_the_readme_says() {
    // A sanity check of the checker on real frames: cbor-x writes `undefined` in
    // two fixtures and nothing else that samod refuses.
    for (file, bytes) in fixture_files() {
        let problems = samod_problems(&bytes);
        let expected_undefined = file == "join-2.cbor" || file == "remote-subscription-change.cbor";
        let only_undefined = problems.iter().all(|p| p.ends_with(": undefined"));
        assert!(
            only_undefined && (problems.is_empty() != expected_undefined),
            "{file}: {problems:?}"
        );
    }
}

#[test]
fn peer_messages_we_encode_carry_target_id_and_float64_timestamps() {
    let peer_msg = Message::Peer {
        sender_id: peer("server"),
        target_id: peer("peer-a"),
        selected_protocol_version: "1".into(),
        peer_metadata: Some(PeerMetadata {
            storage_id: None,
            is_ephemeral: true,
            extensions: Vec::new(),
        }),
    };
    let frame = peer_msg.encode();
    assert!(samod_problems(&frame).is_empty());
    let Ok(Message::Peer { target_id, .. }) = Message::decode(&frame) else {
        panic!("a peer message");
    };
    assert_eq!(target_id, peer("peer-a"));

    // A whole-number timestamp still goes out as float64 (0xfb), never as a uint.
    let gossip = Message::RemoteHeadsChanged {
        sender_id: peer("server"),
        target_id: peer("peer-a"),
        document_id: doc_id(),
        new_heads: BTreeMap::from([(
            storage("s"),
            RemoteHeads {
                heads: vec![],
                timestamp: 1_795_611_296_666.0,
            },
        )]),
    };
    let frame = gossip.encode();
    assert!(
        samod_problems(&frame).is_empty(),
        "{:?}",
        samod_problems(&frame)
    );
    let key = b"timestamp";
    let at = frame
        .windows(key.len())
        .position(|w| w == key)
        .expect("a timestamp key");
    assert_eq!(frame[at + key.len()], 0xfb);
}

/// Drive a server and a client engine through a handshake, a document sync, a
/// reconnect, an ephemeral relay and a bad frame, and return every frame the server
/// sent, by connection, in order.
fn server_frames_of_a_session() -> Vec<(ConnId, Vec<u8>)> {
    struct Side {
        engine: Engine,
        store: MemoryStore,
    }
    fn pump(side: &mut Side, now: Instant, sent: &mut Vec<(ConnId, Vec<u8>)>) -> bool {
        let mut moved = false;
        let mut commits: Vec<(OpId, StoreWrite)> = Vec::new();
        while let Some(out) = side.engine.poll_output() {
            moved = true;
            match out {
                Output::Send { conn, message } => sent.push((conn, message.encode())),
                Output::Load { op, document } => {
                    let loaded = side.store.load(&document);
                    side.engine.handle_load(now, op, loaded);
                }
                Output::LoadHeads { op, document } => {
                    let heads = side.store.heads(&document);
                    side.engine.handle_heads(now, op, heads);
                }
                Output::ChangedSince { op, since, peer } => {
                    let changed = side.store.changed_since(since, &peer);
                    side.engine.handle_changed_since(now, op, changed);
                }
                Output::Commit { op, write } => commits.push((op, write)),
                Output::Close { .. } | Output::Event(_) => {}
            }
        }
        if !commits.is_empty() {
            let writes: Vec<StoreWrite> = commits.iter().map(|(_, w)| w.clone()).collect();
            side.store.commit(&writes).unwrap();
            for (op, _) in commits {
                side.engine.handle_commit(now, op, Ok(()));
            }
        }
        moved
    }
    let new_side = |role, name: &str| {
        let storage = storage(&format!("{name}-storage"));
        Side {
            engine: Engine::new(EngineConfig::new(role, peer(name), Some(storage.clone()))),
            store: MemoryStore::new(storage),
        }
    };
    let mut server = new_side(Role::Server, "server");
    let mut clients = [
        new_side(Role::Client, "client-a"),
        new_side(Role::Client, "client-b"),
    ];
    let now = Instant::now();
    let mut server_sent = Vec::new();
    let run =
        |server: &mut Side, clients: &mut [Side; 2], server_sent: &mut Vec<(ConnId, Vec<u8>)>| {
            for _ in 0..1000 {
                let mut to_server = Vec::new();
                let mut moved = false;
                for c in clients.iter_mut() {
                    moved |= pump(c, now, &mut to_server);
                }
                let mut to_clients = Vec::new();
                moved |= pump(server, now, &mut to_clients);
                for (conn, frame) in &to_server {
                    server.engine.handle_frame(now, *conn, frame);
                }
                for (conn, frame) in &to_clients {
                    clients[(conn.0 % 2) as usize]
                        .engine
                        .handle_frame(now, *conn, frame);
                }
                moved |= !to_server.is_empty() || !to_clients.is_empty();
                server_sent.extend(to_clients);
                if !moved {
                    return;
                }
            }
            panic!("the session did not settle");
        };
    // Connection n belongs to client n % 2.
    server.engine.handle_connect(now, ConnId(0));
    clients[0].engine.handle_connect(now, ConnId(0));
    server.engine.handle_connect(now, ConnId(1));
    clients[1].engine.handle_connect(now, ConnId(1));
    run(&mut server, &mut clients, &mut server_sent);
    let doc = clients[0].engine.create_document(now, [3; 16]);
    clients[0]
        .engine
        .change(now, &doc, |tx| {
            use automerge::transaction::Transactable;
            tx.put(automerge::ROOT, "title", "drills")?;
            Ok(())
        })
        .unwrap();
    run(&mut server, &mut clients, &mut server_sent);
    clients[1].engine.find(now, &doc);
    // Client b also asks for a document nobody has.
    clients[1]
        .engine
        .find(now, &DocumentId::from_random([4; 16]));
    run(&mut server, &mut clients, &mut server_sent);
    clients[0]
        .engine
        .broadcast(&doc, "session-1", 1 << 40, vec![0xa0]);
    run(&mut server, &mut clients, &mut server_sent);
    // Reconnect client a.
    server.engine.handle_disconnect(now, ConnId(0));
    clients[0].engine.handle_disconnect(now, ConnId(0));
    server.engine.handle_connect(now, ConnId(2));
    clients[0].engine.handle_connect(now, ConnId(2));
    run(&mut server, &mut clients, &mut server_sent);
    // A frame that does not decode gets an error before the close.
    server.engine.handle_frame(now, ConnId(1), &[0xff, 0x00]);
    pump(&mut server, now, &mut server_sent);
    server_sent
}

#[test]
fn frames_a_server_engine_sends_follow_samods_strict_rules() {
    let sent = server_frames_of_a_session();
    let mut kinds = BTreeSet::new();
    let mut first_on_conn: BTreeMap<ConnId, String> = BTreeMap::new();
    for (conn, frame) in &sent {
        let message = decode_ok(frame, "a frame the server sent");
        kinds.insert(message.kind().to_owned());
        first_on_conn
            .entry(*conn)
            .or_insert_with(|| message.kind().to_owned());
        let problems = samod_problems(frame);
        assert!(problems.is_empty(), "{message:?}: {problems:?}");
        if let Message::Peer { .. }
        | Message::Sync(_)
        | Message::Request(_)
        | Message::DocUnavailable { .. }
        | Message::Ephemeral { .. } = &message
        {
            assert_eq!(
                message.sender_id(),
                Some(&peer(if matches!(message, Message::Ephemeral { .. }) {
                    "client-a"
                } else {
                    "server"
                }))
            );
        }
    }
    for kind in ["peer", "sync", "doc-unavailable", "ephemeral", "error"] {
        assert!(
            kinds.contains(kind),
            "the session exercised {kind}: {kinds:?}"
        );
    }
    for (conn, first) in first_on_conn {
        assert_eq!(first, "peer", "the server's first frame on {conn:?}");
    }
}

#[test]
fn manifest_extension_messages_round_trip() {
    let a = DocumentId::from_random([1; 16]);
    let b = DocumentId::from_random([2; 16]);
    let heads = vec![
        automerge::ChangeHash([7; 32]),
        automerge::ChangeHash([3; 32]),
    ];
    let digest = coachsync_core::protocol::heads_digest(&heads);
    let reversed: Vec<_> = heads.iter().rev().copied().collect();
    assert_eq!(
        digest,
        coachsync_core::protocol::heads_digest(&reversed),
        "order does not matter"
    );
    assert_ne!(digest, coachsync_core::protocol::heads_digest(&heads[..1]));
    for message in [
        Message::Manifest {
            sender_id: PeerId::new("client").unwrap(),
            target_id: PeerId::new("server").unwrap(),
            entries: vec![(a.clone(), digest), (b.clone(), [0; 8])],
            since: None,
        },
        Message::Manifest {
            sender_id: PeerId::new("client").unwrap(),
            target_id: PeerId::new("server").unwrap(),
            entries: vec![(a.clone(), digest)],
            since: Some(1 << 40),
        },
        Message::ManifestReply {
            sender_id: PeerId::new("server").unwrap(),
            target_id: PeerId::new("client").unwrap(),
            differ: vec![b.clone()],
            cursor: None,
        },
        Message::ManifestReply {
            sender_id: PeerId::new("server").unwrap(),
            target_id: PeerId::new("client").unwrap(),
            differ: vec![],
            cursor: Some(0),
        },
        Message::Join {
            sender_id: PeerId::new("client").unwrap(),
            supported_protocol_versions: vec!["1".into()],
            peer_metadata: Some(PeerMetadata {
                storage_id: None,
                is_ephemeral: true,
                extensions: vec!["manifest/1".into(), "purge/1".into()],
            }),
        },
        Message::DocPurged {
            sender_id: PeerId::new("server").unwrap(),
            target_id: PeerId::new("client").unwrap(),
            document_id: a.clone(),
        },
    ] {
        assert_eq!(Message::decode(&message.encode()).unwrap(), message);
    }
}

#[test]
fn a_manifest_entry_of_the_wrong_shape_is_a_decode_error() {
    let frame = cbor(|e| {
        e.map(4)?;
        e.str("type")?.str("coachsync-manifest")?;
        e.str("senderId")?.str("client")?;
        e.str("targetId")?.str("server")?;
        e.str("entries")?
            .array(1)?
            .array(2)?
            .bytes(&[1; 16])?
            .bytes(&[1; 5])?;
        Ok(())
    });
    assert_decode_error(&frame, "a 5-byte digest");
}
