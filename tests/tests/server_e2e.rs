//! End to end with the real `coachsync` binary on 127.0.0.1:0 and a temporary data
//! directory, and Rust peers over real WebSockets.

use std::time::Duration;

use anyhow::{Context, Result};
use automerge::{ObjType, ReadDoc, ScalarValue, transaction::Transactable};
use coachsync_core::DocumentId;
use coachsync_tests::{Peer, ServerProcess};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message as WsMessage;

fn get_int(peer: &Peer, doc: &DocumentId, key: &str) -> Option<i64> {
    let d = peer.document(doc)?;
    match d.get(automerge::ROOT, key).ok()??.0 {
        automerge::Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Int(i) => Some(*i),
            _ => None,
        },
        _ => None,
    }
}

fn put(
    key: &'static str,
    value: i64,
) -> impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> coachsync_core::Result<()> {
    move |tx| {
        tx.put(automerge::ROOT, key, value)?;
        Ok(())
    }
}

#[tokio::test]
async fn two_peers_edit_offline_while_the_server_is_down_then_converge_through_it() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = ServerProcess::start(dir.path())?;
    let url = server.sync_url();
    let mut alice = Peer::new("alice");
    let mut bob = Peer::new("bob");
    alice.connect(&url).await?;
    bob.connect(&url).await?;
    let doc = alice.create(put("start", 1))?;
    alice.wait_synced(&doc).await?;
    assert!(bob.find(&doc).await?);

    // The server goes away; both keep editing.
    server.kill()?;
    alice.disconnect().await;
    bob.disconnect().await;
    for i in 0..5 {
        alice.change(&doc, move |tx| {
            tx.put(automerge::ROOT, format!("alice-{i}"), i)?;
            Ok(())
        })?;
        bob.change(&doc, move |tx| {
            tx.put(automerge::ROOT, format!("bob-{i}"), i)?;
            Ok(())
        })?;
    }
    alice.change(&doc, put("both", 1))?;
    bob.change(&doc, put("both", 2))?;

    // Back on the same data directory (a new port).
    let server = ServerProcess::start(dir.path())?;
    let url = server.sync_url();
    alice.connect(&url).await?;
    bob.connect(&url).await?;
    alice
        .wait_synced(&doc)
        .await
        .context("alice after the restart")?;
    bob.wait_synced(&doc)
        .await
        .context("bob after the restart")?;
    // Each pulls what the other brought.
    alice.settle(Duration::from_millis(300)).await?;
    let heads = bob.heads(&doc);
    alice.wait_heads(&doc, &heads).await?;
    bob.wait_heads(&doc, &alice.heads(&doc)).await?;
    for i in 0..5 {
        let key_a = format!("alice-{i}");
        let key_b = format!("bob-{i}");
        assert_eq!(get_int(&bob, &doc, &key_a), Some(i));
        assert_eq!(get_int(&alice, &doc, &key_b), Some(i));
    }
    // A concurrent write to one key resolves the same way on both.
    assert_eq!(get_int(&alice, &doc, "both"), get_int(&bob, &doc, "both"));
    Ok(())
}

#[tokio::test]
async fn a_restart_keeps_every_document() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = ServerProcess::start(dir.path())?;
    let mut writer = Peer::new("writer");
    writer.connect(&server.sync_url()).await?;
    let mut docs = Vec::new();
    for i in 0..30 {
        let doc = writer.create(move |tx| {
            let text = tx.put_object(automerge::ROOT, "notes", ObjType::Text)?;
            tx.splice_text(
                &text,
                0,
                0,
                &format!("observation {i}: students discussing in pairs"),
            )?;
            tx.put(automerge::ROOT, "n", i as i64)?;
            Ok(())
        })?;
        docs.push(doc);
    }
    for doc in &docs {
        writer.wait_synced(doc).await?;
    }
    let status = server.terminate(Duration::from_secs(15))?;
    assert!(status.success(), "SIGTERM exits 0, got {status}");

    let server = ServerProcess::start(dir.path())?;
    let mut reader = Peer::new("reader");
    reader.connect(&server.sync_url()).await?;
    for (i, doc) in docs.iter().enumerate() {
        assert!(reader.find(doc).await?, "document {i} is still there");
        assert_eq!(reader.heads(doc), writer.heads(doc));
        assert_eq!(get_int(&reader, doc, "n"), Some(i as i64));
    }
    Ok(())
}

#[tokio::test]
async fn sigkill_right_after_the_server_answered_loses_nothing_it_answered() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let mut peer = Peer::new("coach");
    let mut server = ServerProcess::start(dir.path())?;
    peer.connect(&server.sync_url()).await?;
    let doc = peer.create(put("kill-0", 0))?;
    peer.wait_synced(&doc).await?;
    for round in 1..=20i64 {
        let key: &'static str = Box::leak(format!("kill-{round}").into_boxed_str());
        peer.change(&doc, put(key, round))?;
        // The server's answer names heads that include the change: from here on it
        // must survive anything.
        peer.wait_synced(&doc).await?;
        server.kill()?;
        peer.disconnect().await;
        server = ServerProcess::start(dir.path())?;
        let mut check = Peer::new(&format!("check-{round}"));
        check.connect(&server.sync_url()).await?;
        assert!(
            check.find(&doc).await?,
            "round {round}: the document survived"
        );
        check.wait_heads(&doc, &peer.heads(&doc)).await?;
        for r in 0..=round {
            let key = format!("kill-{r}");
            assert_eq!(
                get_int(&check, &doc, &key),
                Some(r),
                "round {round}: change {r} survived SIGKILL"
            );
        }
        peer.connect(&server.sync_url()).await?;
    }
    Ok(())
}

#[tokio::test]
async fn a_frame_that_does_not_decode_gets_an_error_and_a_close_and_others_carry_on() -> Result<()>
{
    let dir = tempfile::tempdir()?;
    let server = ServerProcess::start(dir.path())?;
    let mut good = Peer::new("good");
    good.connect(&server.sync_url()).await?;
    let doc = good.create(put("x", 1))?;
    good.wait_synced(&doc).await?;

    let bad_frames: Vec<WsMessage> = vec![
        WsMessage::Binary(vec![0xff, 0x00, 0x13].into()),
        WsMessage::Binary(vec![0x83, 0x01, 0x02, 0x03].into()),
        WsMessage::Text("{\"type\":\"join\"}".into()),
        WsMessage::Binary(minimal_map("sync").into()),
    ];
    for frame in bad_frames {
        let (mut ws, _) = tokio_tungstenite::connect_async(server.sync_url()).await?;
        ws.send(frame).await?;
        let mut got_error = false;
        let mut closed = false;
        while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            match msg {
                Ok(WsMessage::Binary(b)) => {
                    if let Ok(coachsync_core::Message::Error { message, .. }) =
                        coachsync_core::Message::decode(&b)
                    {
                        assert!(!message.is_empty());
                        got_error = true;
                    }
                }
                Ok(WsMessage::Close(_)) | Err(_) => {
                    closed = true;
                    break;
                }
                Ok(_) => {}
            }
        }
        assert!(got_error, "an error message arrives before the close");
        assert!(closed, "the socket is closed");
    }
    // The good peer is still served.
    good.change(&doc, put("y", 2))?;
    good.wait_synced(&doc).await?;
    let mut other = Peer::new("other");
    other.connect(&server.sync_url()).await?;
    assert!(other.find(&doc).await?);
    other.wait_heads(&doc, &good.heads(&doc)).await?;
    Ok(())
}

/// `{"type": <kind>}` with nothing else: a known type missing its fields.
fn minimal_map(kind: &str) -> Vec<u8> {
    let mut out = vec![0xa1, 0x64];
    out.extend_from_slice(b"type");
    out.push(0x60 + kind.len() as u8);
    out.extend_from_slice(kind.as_bytes());
    out
}

#[tokio::test]
async fn unknown_documents_are_reported_unavailable() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = ServerProcess::start(dir.path())?;
    let mut peer = Peer::new("finder");
    peer.connect(&server.sync_url()).await?;
    let missing = DocumentId::from_random(rand::random());
    assert!(!peer.find(&missing).await?);
    Ok(())
}

#[tokio::test]
async fn large_documents_never_leave_unsynced_blob_files() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = ServerProcess::start(dir.path())?;
    let mut peer = Peer::new("big");
    peer.connect(&server.sync_url()).await?;
    // 5 MiB in one change, over the 4 MiB at which sled would write a value as a blob
    // file; the store must split it. Incompressible, so it stays that large.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let payload: Vec<u8> = (0..5 * 1024 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let doc = peer.create(move |tx| {
        tx.put(automerge::ROOT, "attachment", ScalarValue::Bytes(payload))?;
        Ok(())
    })?;
    let mut server = server;
    if let Err(e) = peer.wait_synced(&doc).await {
        panic!("{e}: {:#?}", server.log());
    }
    let status = server.terminate(Duration::from_secs(15))?;
    assert!(status.success());
    let blobs = dir.path().join("blobs");
    let count = std::fs::read_dir(&blobs).map(|d| d.count()).unwrap_or(0);
    assert_eq!(
        count, 0,
        "sled wrote {count} blob files, which it never fsyncs"
    );
    Ok(())
}

#[tokio::test]
async fn a_reconnect_with_nothing_new_exchanges_only_small_messages() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = ServerProcess::start(dir.path())?;
    let mut peer = Peer::new("steady");
    peer.connect(&server.sync_url()).await?;
    let mut docs = Vec::new();
    for i in 0..10 {
        let doc = peer.create(move |tx| {
            tx.put(automerge::ROOT, "i", i as i64)?;
            Ok(())
        })?;
        docs.push(doc);
    }
    for doc in &docs {
        peer.wait_synced(doc).await?;
    }
    peer.disconnect().await;
    let (sent, received) = (peer.bytes_sent, peer.bytes_received);
    peer.connect(&server.sync_url()).await?;
    for doc in &docs {
        peer.wait_synced(doc).await?;
    }
    peer.settle(Duration::from_millis(300)).await?;
    let up = peer.bytes_sent - sent;
    let down = peer.bytes_received - received;
    assert!(
        up + down < 10 * 500,
        "{up} bytes up and {down} down for 10 unchanged documents"
    );
    Ok(())
}

#[tokio::test]
async fn health_and_metrics_are_served_and_count_what_happens() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = ServerProcess::start(dir.path())?;
    let (status, body) = server.http_get("/healthz").await?;
    assert_eq!((status, body.trim()), (200, "ok"));
    assert_eq!(server.metric("coachsync_connections").await?, 0.0);
    let fsyncs_before = server.metric("coachsync_fsyncs_total").await?;

    let mut peer = Peer::new("counted");
    peer.connect(&server.sync_url()).await?;
    let doc = peer.create(put("a", 1))?;
    peer.wait_synced(&doc).await?;
    assert_eq!(server.metric("coachsync_connections").await?, 1.0);
    assert!(
        server.metric("coachsync_messages_in_total").await? >= 2.0,
        "join and a sync came in"
    );
    assert!(
        server.metric("coachsync_messages_out_total").await? >= 2.0,
        "peer and a sync went out"
    );
    assert!(
        server.metric("coachsync_fsyncs_total").await? > fsyncs_before,
        "the change was fsynced"
    );
    assert!(server.metric("coachsync_store_write_seconds_count").await? >= 1.0);
    let (_, metrics) = server.http_get("/metrics").await?;
    for name in [
        "coachsync_documents_loaded",
        "coachsync_bytes_in_total",
        "coachsync_rejected_connections_total",
    ] {
        assert!(metrics.contains(name), "{name} is exported");
    }
    peer.disconnect().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while server.metric("coachsync_connections").await? != 0.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the closed connection is counted out"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

#[tokio::test]
async fn writes_from_many_connections_share_fsyncs() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = ServerProcess::start_with(dir.path(), &["--group-commit-ms", "5"])?;
    let url = server.sync_url();
    let fsyncs_before = server.metric("coachsync_fsyncs_total").await?;
    let mut tasks = Vec::new();
    for d in 0..10 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            let mut peer = Peer::new(&format!("device-{d}"));
            peer.connect(&url).await?;
            let mut docs = Vec::new();
            for i in 0..5i64 {
                docs.push(peer.create(move |tx| {
                    tx.put(automerge::ROOT, "i", i)?;
                    Ok(())
                })?);
            }
            for doc in &docs {
                peer.wait_synced(doc).await?;
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let writes = server.metric("coachsync_store_batch_writes_sum").await?;
    let fsyncs = server.metric("coachsync_fsyncs_total").await? - fsyncs_before;
    assert!(writes >= 50.0, "{writes} writes for 50 new documents");
    assert!(
        fsyncs < writes,
        "{fsyncs} fsyncs for {writes} writes: commits were grouped"
    );
    Ok(())
}

#[tokio::test]
async fn idle_documents_are_evicted_and_reloaded_on_demand() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = ServerProcess::start_with(dir.path(), &["--evict-after-secs", "1"])?;
    let mut peer = Peer::new("evictee");
    peer.connect(&server.sync_url()).await?;
    let doc = peer.create(put("kept", 7))?;
    peer.wait_synced(&doc).await?;
    peer.disconnect().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while server.metric("coachsync_documents_loaded").await? != 0.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the idle document left memory"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut reader = Peer::new("reader");
    reader.connect(&server.sync_url()).await?;
    assert!(reader.find(&doc).await?);
    assert_eq!(get_int(&reader, &doc, "kept"), Some(7));
    Ok(())
}

/// Read frames until the socket closes; returns the `error` messages seen.
async fn errors_until_close(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
) -> Vec<String> {
    let mut errors = Vec::new();
    while let Ok(Some(msg)) = tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
        match msg {
            Ok(WsMessage::Binary(b)) => {
                if let Ok(coachsync_core::Message::Error { message, .. }) =
                    coachsync_core::Message::decode(&b)
                {
                    errors.push(message);
                }
            }
            Ok(WsMessage::Close(_)) | Err(_) => break,
            Ok(_) => {}
        }
    }
    errors
}

fn join_frame(peer: &str) -> WsMessage {
    WsMessage::Binary(
        coachsync_core::Message::Join {
            sender_id: coachsync_core::PeerId::new(peer).unwrap(),
            supported_protocol_versions: vec!["1".into()],
            peer_metadata: None,
        }
        .encode()
        .into(),
    )
}

fn sync_frame(peer: &str, doc: &DocumentId, data: Vec<u8>) -> WsMessage {
    WsMessage::Binary(
        coachsync_core::Message::Sync(coachsync_core::SyncEnvelope {
            sender_id: coachsync_core::PeerId::new(peer).unwrap(),
            target_id: coachsync_core::PeerId::new("server").unwrap(),
            document_id: doc.clone(),
            data,
        })
        .encode()
        .into(),
    )
}

/// A sync message carrying one change that puts `bytes` of incompressible data.
fn big_change(bytes: usize) -> Vec<u8> {
    let mut doc = automerge::Automerge::new();
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let payload: Vec<u8> = (0..bytes)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    let mut tx = doc.transaction();
    tx.put(automerge::ROOT, "blob", ScalarValue::Bytes(payload))
        .unwrap();
    tx.commit();
    let mut sync = automerge::sync::State::new();
    use automerge::sync::SyncDoc;
    // Pretend the server has nothing so that the change goes in the first message.
    sync.their_heads = Some(vec![]);
    sync.their_have = Some(vec![automerge::sync::Have::default()]);
    sync.their_need = Some(vec![]);
    doc.generate_sync_message(&mut sync).unwrap().encode()
}

#[tokio::test]
async fn frames_and_documents_over_the_limits_get_a_clear_error_and_nothing_stored_is_lost()
-> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = ServerProcess::start_with(
        dir.path(),
        &[
            "--max-frame-bytes",
            "262144",
            "--max-document-bytes",
            "131072",
        ],
    )?;
    let mut good = Peer::new("good");
    good.connect(&server.sync_url()).await?;
    let doc = good.create(put("kept", 1))?;
    good.wait_synced(&doc).await?;

    // A frame over the frame limit.
    let (mut ws, _) = tokio_tungstenite::connect_async(server.sync_url()).await?;
    ws.send(join_frame("too-big-frame")).await?;
    ws.send(sync_frame("too-big-frame", &doc, big_change(400_000)))
        .await?;
    let errors = errors_until_close(&mut ws).await;
    assert!(
        errors
            .iter()
            .any(|e| e.contains("over the limit of 262144 bytes")),
        "got {errors:?}"
    );

    // A change that would take the document over the document limit.
    let (mut ws, _) = tokio_tungstenite::connect_async(server.sync_url()).await?;
    ws.send(join_frame("too-big-doc")).await?;
    ws.send(sync_frame("too-big-doc", &doc, big_change(200_000)))
        .await?;
    let errors = errors_until_close(&mut ws).await;
    assert!(
        errors
            .iter()
            .any(|e| e.contains("document of") && e.contains("over the limit of 131072 bytes")),
        "got {errors:?}"
    );

    // What was stored is intact and still served.
    let mut reader = Peer::new("reader");
    reader.connect(&server.sync_url()).await?;
    assert!(reader.find(&doc).await?);
    reader.wait_heads(&doc, &good.heads(&doc)).await?;
    assert_eq!(get_int(&reader, &doc, "kept"), Some(1));
    assert!(
        reader
            .document(&doc)
            .unwrap()
            .get(automerge::ROOT, "blob")?
            .is_none()
    );
    Ok(())
}
