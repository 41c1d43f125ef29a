//! Writes the seed corpus of the fuzz targets and the protocol dictionary:
//!
//! - `corpus/codec/`: one frame of every message type;
//! - `corpus/engine/`: whole conversations with the server engine (clients syncing
//!   real automerge documents, a reconnect with a manifest, eviction, store failures),
//!   recorded by playing them against the same harness the `engine` target runs, so
//!   each seed reaches the sync paths that mutations then explore;
//! - `protocol.dict`: the protocol's keys and type names as CBOR text, for libFuzzer's
//!   `-dict`.
//!
//! The output is committed; run this again after changing the protocol or the input
//! format (from the repository root):
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example seeds
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, ObjType, ROOT, sync, sync::SyncDoc};
use coachsync_core::protocol::{RemoteHeads, SyncEnvelope, heads_digest};
use coachsync_core::{DocumentId, Message, PeerId, PeerMetadata, StorageId};
use coachsync_fuzz::{Harness, Record, SERVER_PEER, control, join_frame, slot_peer};

/// A conversation being recorded: every record is played against the harness as it
/// is written down.
struct Seed {
    harness: Harness,
    bytes: Vec<u8>,
    /// Messages the server sent that no client has taken yet: (slot, message).
    inbox: Vec<(usize, Message)>,
}

impl Seed {
    fn new() -> Self {
        let mut harness = Harness::new();
        harness.record();
        Self {
            harness,
            bytes: Vec::new(),
            inbox: Vec::new(),
        }
    }

    fn send(&mut self, control: u8, frame: &[u8]) {
        let record = Record { control, frame };
        self.bytes.extend(record.encode());
        self.harness.step(record);
        self.inbox.extend(self.harness.take_sent());
    }

    /// Take the server's messages to a slot.
    fn take(&mut self, slot: usize) -> Vec<Message> {
        let (mine, rest) = std::mem::take(&mut self.inbox)
            .into_iter()
            .partition(|(s, _)| *s == slot);
        self.inbox = rest;
        mine.into_iter().map(|(_, m)| m).collect()
    }
}

/// One client's copy of one document.
struct Client {
    slot: usize,
    document: DocumentId,
    doc: AutoCommit,
    state: sync::State,
}

impl Client {
    fn new(slot: usize, document: &DocumentId) -> Self {
        Self {
            slot,
            document: document.clone(),
            // A fixed actor (and commit time, below) per client, so that the seeds
            // come out the same on every run.
            doc: AutoCommit::new().with_actor(ActorId::from(vec![slot as u8 + 1; 16])),
            state: sync::State::new(),
        }
    }

    /// A new document with a few fields, as a coaching session plan might have.
    fn with_content(slot: usize, document: &DocumentId) -> Self {
        let mut client = Self::new(slot, document);
        let doc = &mut client.doc;
        doc.put(ROOT, "title", "Tuesday squad session").unwrap();
        doc.put(ROOT, "minutes", 90_i64).unwrap();
        let drills = doc.put_object(ROOT, "drills", ObjType::List).unwrap();
        for (i, name) in ["rondo", "finishing", "small-sided game"]
            .iter()
            .enumerate()
        {
            let drill = doc.insert_object(&drills, i, ObjType::Map).unwrap();
            doc.put(&drill, "name", *name).unwrap();
        }
        client.commit();
        client
    }

    fn frame(&self, data: Vec<u8>, request: bool) -> Vec<u8> {
        let env = SyncEnvelope {
            sender_id: slot_peer(self.slot),
            target_id: PeerId::new(SERVER_PEER).unwrap(),
            document_id: self.document.clone(),
            data,
        };
        if request {
            Message::Request(env).encode()
        } else {
            Message::Sync(env).encode()
        }
    }

    /// Sync with the server until neither side has anything to say. The first
    /// message is a `request` when `request` is set (what a client sends for a
    /// document it lacks), and every frame goes with the given control bits.
    fn sync(&mut self, seed: &mut Seed, mut request: bool, bits: u8) {
        for _ in 0..32 {
            let out = self.doc.sync().generate_sync_message(&mut self.state);
            if let Some(message) = &out {
                let frame = self.frame(message.clone().encode(), request);
                request = false;
                seed.send(self.slot as u8 | bits, &frame);
            }
            let incoming = seed.take(self.slot);
            for message in &incoming {
                if let Message::Sync(env) | Message::Request(env) = message
                    && env.document_id == self.document
                {
                    let message = sync::Message::decode(&env.data).unwrap();
                    self.doc
                        .sync()
                        .receive_sync_message(&mut self.state, message)
                        .unwrap();
                }
            }
            if out.is_none() && incoming.is_empty() {
                return;
            }
        }
        panic!("the sync of slot {} did not finish", self.slot);
    }

    /// Whether the server confirmed holding everything this client has.
    fn in_sync(&mut self) -> bool {
        let heads = self.doc.get_heads();
        self.state.their_heads.as_ref() == Some(&heads)
    }

    fn edit(&mut self, minutes: i64) {
        self.doc.put(ROOT, "minutes", minutes).unwrap();
        self.commit();
    }

    fn commit(&mut self) {
        self.doc.commit_with(CommitOptions::default().with_time(0));
    }
}

fn document(n: u8) -> DocumentId {
    DocumentId::from_random([n; 16])
}

fn engine_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut seeds = Vec::new();

    // A handshake sent by the input itself, then a leave.
    let mut seed = Seed::new();
    seed.send(1 | control::RECONNECT | control::NO_JOIN, &join_frame(1));
    let leave = Message::Leave {
        sender_id: slot_peer(1),
    };
    seed.send(1, &leave.encode());
    seeds.push(("join", seed.bytes));

    // A device pushes a new document, opening with a `request` that carries changes.
    let mut seed = Seed::new();
    let mut client = Client::with_content(0, &document(1));
    client.sync(&mut seed, true, 0);
    assert!(
        client.in_sync(),
        "request: the server did not take the document"
    );
    seeds.push(("request", seed.bytes));

    // A browser asks for a document the server does not have: sync, doc-unavailable.
    let mut seed = Seed::new();
    let mut client = Client::new(1, &document(2));
    client.sync(&mut seed, true, 0);
    assert!(
        seed.inbox.is_empty() && client.state.their_heads == Some(Vec::new()),
        "unavailable: the server did not answer with empty heads"
    );
    seeds.push(("unavailable", seed.bytes));

    // One client creates a document, a second fetches it, the first edits it and the
    // server pushes the edit on; an ephemeral message is relayed between them.
    let mut seed = Seed::new();
    let mut first = Client::with_content(0, &document(3));
    first.sync(&mut seed, false, 0);
    let mut second = Client::new(1, &document(3));
    second.sync(&mut seed, true, 0);
    assert_eq!(second.doc.get_heads(), first.doc.get_heads());
    first.edit(75);
    first.sync(&mut seed, false, 0);
    second.sync(&mut seed, false, 0);
    assert_eq!(second.doc.get_heads(), first.doc.get_heads());
    let ephemeral = Message::Ephemeral {
        sender_id: slot_peer(0),
        target_id: PeerId::new(SERVER_PEER).unwrap(),
        count: 1,
        session_id: "session-0".into(),
        document_id: document(3),
        data: vec![0xa1, 0x61, 0x78, 0x01],
    };
    seed.send(0, &ephemeral.encode());
    assert!(
        seed.take(1)
            .iter()
            .any(|m| matches!(m, Message::Ephemeral { .. })),
        "two-clients: the ephemeral message was not relayed"
    );
    seeds.push(("two-clients", seed.bytes));

    // A device syncs, reconnects and lists its documents in a manifest; then edits
    // offline and reconnects with the cursor it was given.
    let mut seed = Seed::new();
    let mut client = Client::with_content(0, &document(4));
    client.sync(&mut seed, false, 0);
    let manifest = |entries, since| Message::Manifest {
        sender_id: slot_peer(0),
        target_id: PeerId::new(SERVER_PEER).unwrap(),
        entries,
        since,
    };
    let entries = vec![(document(4), heads_digest(&client.doc.get_heads()))];
    seed.send(control::RECONNECT, &manifest(entries, None).encode());
    let cursor = seed
        .take(0)
        .iter()
        .find_map(|m| match m {
            Message::ManifestReply { differ, cursor, .. } => {
                assert!(differ.is_empty(), "manifest: an equal document differs");
                *cursor
            }
            _ => None,
        })
        .expect("manifest: no reply");
    client.edit(60);
    let entries = vec![(document(4), heads_digest(&client.doc.get_heads()))];
    seed.send(
        control::RECONNECT,
        &manifest(entries, Some(cursor)).encode(),
    );
    client.state = sync::State::new();
    client.sync(&mut seed, false, 0);
    assert!(client.in_sync(), "manifest: the edit was not synced");
    seeds.push(("manifest", seed.bytes));

    // An ephemeral peer syncs, time passes until the document is evicted, and its
    // next edit makes the server load it back from the store.
    let mut seed = Seed::new();
    let mut client = Client::with_content(2, &document(5));
    client.sync(&mut seed, false, 0);
    seed.send(control::NO_FRAME | control::ADVANCE_EVICT, &[]);
    client.edit(45);
    client.sync(&mut seed, false, 0);
    assert!(
        client.in_sync(),
        "evict: the edit after eviction was not synced"
    );
    seeds.push(("evict-and-reload", seed.bytes));

    // The store fails the first write: the server closes the connection; the client
    // reconnects and sends everything again.
    let mut seed = Seed::new();
    let mut client = Client::with_content(0, &document(6));
    client.sync(&mut seed, false, control::FAIL_STORE);
    client.state = sync::State::new();
    seed.inbox.clear();
    client.sync(&mut seed, false, 0);
    assert!(client.in_sync(), "store-failure: the retry was not synced");
    seeds.push(("store-failure", seed.bytes));

    // A write is held in the store while a second client asks for the document: the
    // answer waits for the write.
    let mut seed = Seed::new();
    let mut first = Client::with_content(0, &document(7));
    let out = first.doc.sync().generate_sync_message(&mut first.state);
    let frame = first.frame(out.unwrap().encode(), false);
    seed.send(control::HOLD_STORE, &frame);
    let mut second = Client::new(1, &document(7));
    let out = second.doc.sync().generate_sync_message(&mut second.state);
    let frame = second.frame(out.unwrap().encode(), true);
    seed.send(1 | control::HOLD_STORE, &frame);
    seed.send(control::NO_FRAME, &[]);
    first.sync(&mut seed, false, 0);
    second.sync(&mut seed, false, 0);
    assert_eq!(second.doc.get_heads(), first.doc.get_heads());
    seeds.push(("held-store", seed.bytes));

    seeds
}

fn codec_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let peer = slot_peer(0);
    let server = PeerId::new(SERVER_PEER).unwrap();
    let storage = StorageId::new("storage-0").unwrap();
    let mut client = Client::with_content(0, &document(1));
    let data = client
        .doc
        .sync()
        .generate_sync_message(&mut client.state)
        .unwrap()
        .encode();
    let env = SyncEnvelope {
        sender_id: peer.clone(),
        target_id: server.clone(),
        document_id: document(1),
        data,
    };
    // Heads go as bs58check text; an automerge URL pinned to a head writes it so.
    let heads: Vec<String> = client
        .doc
        .get_heads()
        .iter()
        .map(|h| coachsync_core::AutomergeUrl {
            document_id: document(1),
            heads: Some(vec![*h]),
        })
        .map(|url| url.to_string().rsplit('#').next().unwrap().to_owned())
        .collect();
    let messages = vec![
        (
            "join",
            Message::Join {
                sender_id: peer.clone(),
                supported_protocol_versions: vec!["1".into()],
                peer_metadata: Some(PeerMetadata {
                    storage_id: Some(storage.clone()),
                    is_ephemeral: false,
                    extensions: vec!["manifest/1".into()],
                }),
            },
        ),
        (
            "peer",
            Message::Peer {
                sender_id: server.clone(),
                target_id: peer.clone(),
                selected_protocol_version: "1".into(),
                peer_metadata: Some(PeerMetadata {
                    storage_id: Some(StorageId::new("server-storage").unwrap()),
                    is_ephemeral: false,
                    extensions: vec!["manifest/1".into()],
                }),
            },
        ),
        (
            "leave",
            Message::Leave {
                sender_id: peer.clone(),
            },
        ),
        (
            "error",
            Message::Error {
                message: "unsupported protocol version".into(),
                sender_id: Some(server.clone()),
                target_id: Some(peer.clone()),
            },
        ),
        ("request", Message::Request(env.clone())),
        ("sync", Message::Sync(env)),
        (
            "doc-unavailable",
            Message::DocUnavailable {
                sender_id: server.clone(),
                target_id: peer.clone(),
                document_id: document(2),
            },
        ),
        (
            "ephemeral",
            Message::Ephemeral {
                sender_id: peer.clone(),
                target_id: server.clone(),
                count: 5_000_000_000,
                session_id: "session-0".into(),
                document_id: document(1),
                data: vec![0xa1, 0x61, 0x78, 0x01],
            },
        ),
        (
            "remote-subscription-change",
            Message::RemoteSubscriptionChange {
                sender_id: peer.clone(),
                target_id: server.clone(),
                add: Some(vec![storage.clone()]),
                remove: Some(Vec::new()),
            },
        ),
        (
            "remote-heads-changed",
            Message::RemoteHeadsChanged {
                sender_id: server.clone(),
                target_id: peer.clone(),
                document_id: document(1),
                new_heads: BTreeMap::from([(
                    storage.clone(),
                    RemoteHeads {
                        heads,
                        timestamp: 1_767_225_600_000.5,
                    },
                )]),
            },
        ),
        (
            "manifest",
            Message::Manifest {
                sender_id: peer.clone(),
                target_id: server.clone(),
                entries: vec![(document(1), heads_digest(&client.doc.get_heads()))],
                since: Some(7),
            },
        ),
        (
            "manifest-reply",
            Message::ManifestReply {
                sender_id: server,
                target_id: peer,
                differ: vec![document(1)],
                cursor: Some(8),
            },
        ),
        (
            "unknown",
            Message::Unknown {
                kind: "some-future-message".into(),
            },
        ),
    ];
    messages
        .into_iter()
        .map(|(name, message)| (name, message.encode()))
        .collect()
}

/// The protocol's keys, message types and the harness's peer IDs, each as the CBOR
/// text string it is on the wire (header byte included).
fn dictionary() -> String {
    let words = [
        "type",
        "senderId",
        "targetId",
        "documentId",
        "data",
        "supportedProtocolVersions",
        "selectedProtocolVersion",
        "peerMetadata",
        "metadata",
        "storageId",
        "isEphemeral",
        "coachsyncExtensions",
        "manifest/1",
        "message",
        "count",
        "sessionId",
        "add",
        "remove",
        "newHeads",
        "heads",
        "timestamp",
        "entries",
        "since",
        "differ",
        "cursor",
        "join",
        "peer",
        "leave",
        "error",
        "request",
        "sync",
        "doc-unavailable",
        "ephemeral",
        "remote-subscription-change",
        "remote-heads-changed",
        "coachsync-manifest",
        "coachsync-manifest-reply",
        "1",
        "server",
        "peer-0",
        "peer-1",
        "peer-2",
        "storage-0",
        "storage-1",
    ];
    let mut out = String::from(
        "# CBOR text strings of the coachsync protocol, for libFuzzer's -dict.\n\
         # Written by examples/seeds.rs.\n",
    );
    for word in words {
        let mut cbor = Vec::new();
        minicbor_text(&mut cbor, word);
        let escaped: String = cbor
            .iter()
            .map(|b| match b {
                b' '..=b'~' if *b != b'"' && *b != b'\\' => (*b as char).to_string(),
                _ => format!("\\x{b:02X}"),
            })
            .collect();
        out.push_str(&format!("\"{escaped}\"\n"));
    }
    out
}

/// A CBOR text string: major type 3 and the length, then the bytes.
fn minicbor_text(out: &mut Vec<u8>, text: &str) {
    let len = text.len();
    if len < 24 {
        out.push(0x60 | len as u8);
    } else {
        out.push(0x78);
        out.push(u8::try_from(len).expect("dictionary words are short"));
    }
    out.extend_from_slice(text.as_bytes());
}

fn write_dir(dir: &Path, seeds: &[(&str, Vec<u8>)]) {
    fs::create_dir_all(dir).unwrap();
    for (name, bytes) in seeds {
        fs::write(dir.join(name), bytes).unwrap();
    }
}

fn main() {
    let fuzz = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    write_dir(&fuzz.join("corpus/engine"), &engine_seeds());
    write_dir(&fuzz.join("corpus/codec"), &codec_seeds());
    fs::write(fuzz.join("protocol.dict"), dictionary()).unwrap();
}
