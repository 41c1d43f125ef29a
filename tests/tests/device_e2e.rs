//! The device runtime against the real `coachsync` binary: devices in this process
//! and in child processes (killed with SIGKILL), a server that comes and goes, and
//! Rust peers that check what the server holds.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use coachsync_core::device::{Backoff, Connection};
use coachsync_core::json::{JsonPath, to_json};
use coachsync_core::{AutomergeUrl, Device, DocumentId, Status};
use coachsync_tests::site::device_config as config;
use coachsync_tests::{Peer, ServerProcess};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

fn path(p: &str) -> JsonPath {
    p.parse().expect("a valid path")
}

/// The document as the server holds it, read by a fresh peer.
async fn server_value(url: &str, document: &DocumentId) -> Result<Option<Value>> {
    let mut peer = Peer::new(&format!("checker-{}", rand::random::<u32>()));
    peer.connect(url).await?;
    let found = peer.find(document).await?;
    let value = found.then(|| to_json(peer.document(document).expect("found")));
    peer.disconnect().await;
    Ok(value)
}

async fn synced(device: &Device) -> Result<()> {
    tokio::time::timeout(WAIT, device.wait_synced())
        .await
        .context("the device did not sync in time")??;
    Ok(())
}

/// Two devices on `url`, sharing a document that the first created with `initial`:
/// their data directories (kept alive by the caller), the devices and the document.
async fn two_sharing(
    url: &str,
    initial: Value,
) -> Result<([tempfile::TempDir; 2], Device, Device, DocumentId)> {
    let dirs = [tempfile::tempdir()?, tempfile::tempdir()?];
    let a = Device::open(config(dirs[0].path(), Some(url))).await?;
    let b = Device::open(config(dirs[1].path(), Some(url))).await?;
    let doc = a.create(initial).await?;
    synced(&a).await?;
    tokio::time::timeout(WAIT, b.fetch(&doc)).await??;
    Ok((dirs, a, b, doc))
}

/// A free loopback address, for a server that must come back on the same one.
fn free_addr() -> Result<std::net::SocketAddr> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// `device-editor`, built beside the server binary.
struct Editor {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Editor {
    fn start(dir: &Path) -> Result<Self> {
        let bin = coachsync_tests::server_process::binary().with_file_name("device-editor");
        let mut child = Command::new(&bin)
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let stdin = child.stdin.take().context("stdin")?;
        let stdout = BufReader::new(child.stdout.take().context("stdout")?);
        let mut editor = Self {
            child,
            stdin,
            stdout,
        };
        editor.expect("ready")?;
        Ok(editor)
    }

    fn send(&mut self, line: &str) -> Result<String> {
        writeln!(self.stdin, "{line}")?;
        self.stdin.flush()?;
        let mut answer = String::new();
        if self.stdout.read_line(&mut answer)? == 0 {
            bail!("device-editor exited after {line:?}");
        }
        Ok(answer.trim_end().to_owned())
    }

    fn expect(&mut self, want: &str) -> Result<()> {
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        if line.trim_end() != want {
            bail!("device-editor said {line:?}, expected {want:?}");
        }
        Ok(())
    }

    /// SIGKILL: the process gets no chance to flush or close anything.
    fn kill(mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

#[tokio::test]
async fn an_edit_survives_sigkill_and_reaches_the_server_without_being_opened() -> Result<()> {
    let device_dir = tempfile::tempdir()?;
    let server_dir = tempfile::tempdir()?;

    // Offline: create a note, then edit it, and kill the process the moment the
    // edit call has returned.
    let mut editor = Editor::start(device_dir.path())?;
    let created = editor.send(r#"create {"title": "Lunchroom walkthrough", "notes": []}"#)?;
    let url = created
        .strip_prefix("created ")
        .context("a created line")?
        .to_owned();
    let answer = editor.send(&format!(
        r#"push {url} notes "table 4 needs a norms reminder""#
    ))?;
    assert_eq!(answer, "stored");
    editor.kill()?;
    let document = url.parse::<AutomergeUrl>()?.document_id;

    // Restarted with a server that has just come up; nothing opens the document.
    let server = ServerProcess::start(server_dir.path())?;
    let device = Device::open(config(device_dir.path(), Some(&server.sync_url()))).await?;
    let before = device.statuses().await?;
    assert_eq!(before.len(), 1);
    assert_eq!(before[0].status, Status::LocalOnly);
    synced(&device).await?;
    assert_eq!(device.statuses().await?[0].status, Status::SafeOnServer);

    let on_server = server_value(&server.sync_url(), &document).await?;
    assert_eq!(
        on_server,
        Some(json!({
            "title": "Lunchroom walkthrough",
            "notes": ["table 4 needs a norms reminder"]
        }))
    );
    device.close().await?;
    Ok(())
}

#[tokio::test]
async fn devices_reconnect_after_a_server_restart_and_never_claim_what_it_lacks() -> Result<()> {
    let server_dir = tempfile::tempdir()?;
    let addr = free_addr()?;
    let mut server = Some(ServerProcess::start_on(server_dir.path(), addr, &[])?);
    let url = format!("ws://{addr}/sync");
    let (_dirs, a, b, doc) =
        two_sharing(&url, json!({"cycle": "PDSA 3", "a": [], "b": []})).await?;

    // Both devices edit steadily; the server is killed a third of the way in and
    // restarted two thirds of the way in.
    const EDITS: usize = 45;
    let mut claims = Vec::new();
    for i in 0..EDITS {
        a.push(&doc, &path("a"), json!(i)).await?;
        b.push(&doc, &path("b"), json!(i)).await?;
        tokio::time::sleep(Duration::from_millis(20)).await;
        if i == EDITS / 3 {
            // Let a confirmation land, so there is a claim to check, then kill
            // the server while edits are still in flight.
            let deadline = tokio::time::Instant::now() + WAIT;
            while a.outbox().await?.len() + b.outbox().await?.len() == 2 {
                if tokio::time::Instant::now() > deadline {
                    bail!("neither device got a confirmation");
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            a.push(&doc, &path("a"), json!("in flight")).await?;
            server.take().context("running")?.kill()?;
            // Whatever a device calls safe now, the dead server must have stored.
            for device in [&a, &b] {
                for status in device.statuses().await? {
                    if status.status == Status::SafeOnServer {
                        claims.push(device.value(&status.document).await?);
                    }
                }
            }
        }
        if i == 2 * EDITS / 3 {
            server = Some(ServerProcess::start_on(server_dir.path(), addr, &[])?);
            let on_server = server_value(&url, &doc)
                .await?
                .context("the restarted server has the document")?;
            for claim in &claims {
                for list in ["a", "b"] {
                    for item in claim[list].as_array().context("a list")? {
                        assert!(
                            on_server[list].as_array().unwrap().contains(item),
                            "a device said {list}:{item} was safe, but the restarted server lacks it"
                        );
                    }
                }
            }
        }
    }
    assert!(!claims.is_empty(), "the devices had synced before the kill");

    // Nobody called sync_now: the devices came back by themselves.
    synced(&a).await?;
    synced(&b).await?;
    let mut want_a: Vec<Value> = (0..=EDITS / 3).map(|i| json!(i)).collect();
    want_a.push(json!("in flight"));
    want_a.extend((EDITS / 3 + 1..EDITS).map(|i| json!(i)));
    let want_b: Vec<Value> = (0..EDITS).map(|i| json!(i)).collect();
    // The devices pull each other's changes through the server; wait until both
    // hold everything.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (va, vb) = (a.value(&doc).await?, b.value(&doc).await?);
        if va == vb && va["a"] == json!(want_a) && va["b"] == json!(want_b) {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("devices did not converge: {va} vs {vb}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let on_server = server_value(&url, &doc).await?.context("stored")?;
    assert_eq!(on_server["a"], json!(want_a));
    assert_eq!(on_server["b"], json!(want_b));
    a.close().await?;
    b.close().await?;
    Ok(())
}

#[tokio::test]
async fn status_moves_from_local_only_to_safe_to_pending_and_survives_a_restart() -> Result<()> {
    let server_dir = tempfile::tempdir()?;
    let device_dir = tempfile::tempdir()?;
    let offline = Device::open(config(device_dir.path(), None)).await?;
    let doc = offline
        .create(json!({"goal": "Raise 3rd grade reading"}))
        .await?;
    assert_eq!(offline.outbox().await?, vec![doc.clone()]);
    assert!(
        offline.wait_synced().await.is_err(),
        "an offline device cannot sync"
    );
    offline.close().await?;

    let server = ServerProcess::start(server_dir.path())?;
    let device = Device::open(config(device_dir.path(), Some(&server.sync_url()))).await?;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let watch = device
        .subscribe_status(Box::new(move |s| record.lock().unwrap().push(s.status)))
        .await?;
    synced(&device).await?;
    let status = &device.statuses().await?[0];
    assert_eq!(status.status, Status::SafeOnServer);
    let synced_at = status.last_synced.context("a sync time")?;
    assert!(device.outbox().await?.is_empty());
    drop(server);

    // The server is gone: an edit is pending, and stays pending across a restart.
    device
        .set(
            &doc,
            &path("theoryOfAction"),
            json!("If we coach weekly, then…"),
        )
        .await?;
    let status = &device.statuses().await?[0];
    assert_eq!(status.status, Status::Pending);
    assert_eq!(status.last_synced, Some(synced_at));
    watch.cancel();
    assert_eq!(
        *seen.lock().unwrap(),
        vec![Status::LocalOnly, Status::SafeOnServer, Status::Pending]
    );
    device.close().await?;
    let reopened = Device::open(config(device_dir.path(), None)).await?;
    let status = &reopened.statuses().await?[0];
    assert_eq!(
        (status.status, status.last_synced),
        (Status::Pending, Some(synced_at))
    );
    reopened.close().await?;
    Ok(())
}

#[tokio::test]
async fn observers_get_the_value_then_every_change_until_cancelled() -> Result<()> {
    let server_dir = tempfile::tempdir()?;
    let server = ServerProcess::start(server_dir.path())?;
    let url = server.sync_url();
    let (_dirs, a, b, doc) = two_sharing(&url, json!({"log": []})).await?;

    let seen = Arc::new(Mutex::new(Vec::<Value>::new()));
    let record = seen.clone();
    let subscription = b
        .subscribe(&doc, Box::new(move |v| record.lock().unwrap().push(v)))
        .await?;
    assert_eq!(*seen.lock().unwrap(), vec![json!({"log": []})]);

    // A local change and a remote one both reach the observer.
    b.push(&doc, &path("log"), json!("local")).await?;
    a.push(&doc, &path("log"), json!("remote")).await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    let has_both = |seen: &Vec<Value>| {
        seen.last()
            .and_then(|v| v["log"].as_array())
            .is_some_and(|l| l.len() == 2)
    };
    while !has_both(&seen.lock().unwrap()) {
        if tokio::time::Instant::now() > deadline {
            bail!(
                "the observer never saw both changes: {:?}",
                seen.lock().unwrap()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen.lock().unwrap()[1], json!({"log": ["local"]}));

    subscription.cancel();
    let count = seen.lock().unwrap().len();
    b.push(&doc, &path("log"), json!("after cancel")).await?;
    assert_eq!(seen.lock().unwrap().len(), count, "no calls after cancel");
    a.close().await?;
    b.close().await?;
    Ok(())
}

#[tokio::test]
async fn sync_now_connects_without_waiting_out_the_backoff() -> Result<()> {
    let server_dir = tempfile::tempdir()?;
    let device_dir = tempfile::tempdir()?;
    let addr = free_addr()?;
    let url = format!("ws://{addr}/sync");
    let mut config = config(device_dir.path(), Some(&url));
    // A first failure waits a minute before the next attempt.
    config.backoff = Backoff::new(Duration::from_secs(60), Duration::from_secs(60), 0.0);
    let device = Device::open(config).await?;
    let doc = device
        .create(json!({"note": "written with no signal"}))
        .await?;
    let mut connection = device.connection();
    tokio::time::timeout(
        WAIT,
        connection.wait_for(|c| matches!(c, Connection::Waiting { .. })),
    )
    .await??;

    let server = ServerProcess::start_on(server_dir.path(), addr, &[])?;
    device.sync_now();
    synced(&device).await?;
    assert_eq!(
        server_value(&server.sync_url(), &doc).await?,
        Some(json!({"note": "written with no signal"}))
    );
    device.close().await?;
    Ok(())
}

#[tokio::test]
async fn bad_edits_change_nothing_and_unknown_documents_are_refused() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let device = Device::open(config(dir.path(), None)).await?;
    let doc = device
        .create(json!({"notes": ["one"], "title": "t"}))
        .await?;
    let before = device.value(&doc).await?;
    assert!(device.set(&doc, &path("notes.5"), json!(1)).await.is_err());
    assert!(device.push(&doc, &path("title"), json!(1)).await.is_err());
    assert_eq!(device.value(&doc).await?, before);
    let unknown = DocumentId::from_random([7; 16]);
    let e = device.value(&unknown).await.unwrap_err().to_string();
    assert!(e.contains("no document"), "{e}");
    assert!(device.create(json!([1])).await.is_err());
    assert_eq!(device.statuses().await?.len(), 1);
    device.close().await?;
    assert!(device.value(&doc).await.is_err(), "closed");
    // Another process cannot open the directory while it is in use, but this one
    // can once it is closed.
    let again = Device::open(config(dir.path(), None)).await?;
    assert_eq!(again.value(&doc).await?, before);
    assert!(Device::open(config(dir.path(), None)).await.is_err());
    again.close().await?;
    Ok(())
}

#[tokio::test]
async fn a_server_gone_silent_is_dropped_and_tried_again() -> Result<()> {
    // A "server" that completes the WebSocket handshake and then never says a
    // word, as a half-open connection after a network change looks to a phone.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let accepted = Arc::new(Mutex::new(Vec::new()));
    let keep = accepted.clone();
    let silent = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            if let Ok(ws) = tokio_tungstenite::accept_async(tcp).await {
                keep.lock().unwrap().push(ws);
            }
        }
    });
    let dir = tempfile::tempdir()?;
    let mut config = config(dir.path(), Some(&format!("ws://{addr}/sync")));
    config.idle_timeout = Duration::from_millis(500);
    let device = Device::open(config).await?;
    let mut connection = device.connection();
    let state = tokio::time::timeout(
        WAIT,
        connection.wait_for(|c| matches!(c, Connection::Waiting { .. })),
    )
    .await??
    .clone();
    let Connection::Waiting { error, .. } = state else {
        unreachable!()
    };
    assert!(error.contains("sent nothing"), "{error}");
    let deadline = tokio::time::Instant::now() + WAIT;
    while accepted.lock().unwrap().len() < 2 {
        if tokio::time::Instant::now() > deadline {
            bail!("the device did not try again");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    device.close().await?;
    silent.abort();
    Ok(())
}

#[tokio::test]
// The header callback's signature, with its large error type, is tungstenite's.
#[allow(clippy::result_large_err)]
async fn a_device_moves_to_a_server_set_at_run_time_and_sends_its_token() -> Result<()> {
    // A listener that records the Authorization header of each WebSocket upgrade.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let headers = Arc::new(Mutex::new(Vec::<Option<String>>::new()));
    let seen = headers.clone();
    let recorder = tokio::spawn(async move {
        let mut sockets = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            let seen = seen.clone();
            let callback =
                move |request: &tokio_tungstenite::tungstenite::handshake::server::Request,
                      response| {
                    let value = request
                        .headers()
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    seen.lock().unwrap().push(value);
                    Ok(response)
                };
            if let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await {
                sockets.push(ws);
            }
        }
    });

    let dir = tempfile::tempdir()?;
    let server_dir = tempfile::tempdir()?;
    let device = Device::open(config(dir.path(), None)).await?;
    let doc = device
        .create(json!({"note": "written before any server"}))
        .await?;
    device.set_token(Some("coach-token-1".into())).await?;
    device.set_server(Some(format!("ws://{addr}/sync"))).await?;
    let deadline = tokio::time::Instant::now() + WAIT;
    while headers.lock().unwrap().is_empty() {
        if tokio::time::Instant::now() > deadline {
            bail!("the device never connected to the server it was given");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        headers.lock().unwrap()[0].as_deref(),
        Some("Bearer coach-token-1")
    );

    // Then to a real server (anonymous: that token is not one of its users'): the
    // note reaches it.
    device.set_token(None).await?;
    let server = ServerProcess::start(server_dir.path())?;
    device.set_server(Some(server.sync_url())).await?;
    synced(&device).await?;
    assert_eq!(
        server_value(&server.sync_url(), &doc).await?,
        Some(json!({"note": "written before any server"}))
    );
    device.set_server(None).await?;
    assert_eq!(*device.connection().borrow(), Connection::Offline);
    assert!(device.set_server(Some("http://nope".into())).await.is_err());
    device.close().await?;
    recorder.abort();
    Ok(())
}

#[tokio::test]
async fn a_deleted_document_leaves_the_device_for_good_until_fetched_again() -> Result<()> {
    let server_dir = tempfile::tempdir()?;
    let server = ServerProcess::start(server_dir.path())?;
    let url = server.sync_url();
    let dirs = [tempfile::tempdir()?, tempfile::tempdir()?];
    let a = Device::open(config(dirs[0].path(), Some(&url))).await?;
    let b = Device::open(config(dirs[1].path(), Some(&url))).await?;
    let doc = a.create(json!({"note": "shared"})).await?;
    let kept = a.create(json!({"note": "stays"})).await?;
    synced(&a).await?;
    tokio::time::timeout(WAIT, b.fetch(&doc)).await??;

    // A change the server lacks is never thrown away.
    b.close().await?;
    a.set_server(None).await?;
    a.set(&doc, &path("note"), json!("edited offline")).await?;
    let e = a.delete(&doc).await.unwrap_err().to_string();
    assert!(e.contains("sync it first"), "{e}");
    a.set_server(Some(url.clone())).await?;
    synced(&a).await?;
    a.delete(&doc).await?;
    assert!(a.value(&doc).await.is_err(), "gone from the device");
    assert_eq!(a.statuses().await?.len(), 1);
    assert!(a.delete(&doc).await.is_err(), "already gone");

    // Another device's later change does not bring it back, not even after a restart.
    let b = Device::open(config(dirs[1].path(), Some(&url))).await?;
    synced(&b).await?;
    b.set(&doc, &path("note"), json!("edited by b")).await?;
    synced(&b).await?;
    a.set(&kept, &path("note"), json!("still here")).await?;
    synced(&a).await?;
    a.close().await?;
    let a = Device::open(config(dirs[0].path(), Some(&url))).await?;
    synced(&a).await?;
    assert!(a.value(&doc).await.is_err(), "still gone after a restart");
    assert_eq!(
        server_value(&url, &doc).await?,
        Some(json!({"note": "edited by b"}))
    );

    // Fetching it brings it back, as the server has it, for good: after a restart
    // it still gets the server's changes.
    tokio::time::timeout(WAIT, a.fetch(&doc)).await??;
    assert_eq!(a.value(&doc).await?, json!({"note": "edited by b"}));
    a.close().await?;
    b.set(&doc, &path("note"), json!("edited again by b"))
        .await?;
    synced(&b).await?;
    let a = Device::open(config(dirs[0].path(), Some(&url))).await?;
    synced(&a).await?;
    assert_eq!(a.value(&doc).await?, json!({"note": "edited again by b"}));
    a.close().await?;
    b.close().await?;
    Ok(())
}

#[tokio::test]
async fn summaries_give_kind_title_and_when_each_document_was_last_edited() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let device = Device::open(config(dir.path(), None)).await?;
    let before = std::time::SystemTime::now() - Duration::from_millis(5);
    let plan = device
        .create(coachsync_core::domain::example("work-plan").context("an example")?)
        .await?;
    let note = device.create(json!({"title": "Hallway, 10:05"})).await?;
    let after = std::time::SystemTime::now() + Duration::from_millis(5);
    let summaries = device.summaries(None).await?;
    assert_eq!(summaries.len(), 2);
    for s in &summaries {
        let updated = s.updated.context("an edit time")?;
        assert!(before <= updated && updated <= after, "{updated:?}");
    }
    let plans = device.summaries(Some("work-plan")).await?;
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0].status.document, plan);
    assert_eq!(plans[0].kind, Some("work-plan"));
    let note_summary = summaries
        .iter()
        .find(|s| s.status.document == note)
        .context("the note")?;
    assert_eq!(
        (note_summary.kind, note_summary.title.as_deref()),
        (None, Some("Hallway, 10:05"))
    );
    device.close().await?;
    Ok(())
}

#[tokio::test]
async fn a_change_from_the_server_never_makes_a_safe_document_look_pending() -> Result<()> {
    let server_dir = tempfile::tempdir()?;
    let server = ServerProcess::start(server_dir.path())?;
    let url = server.sync_url();
    let (_dirs, a, b, doc) = two_sharing(&url, json!({"log": []})).await?;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let _watch = b
        .subscribe_status(Box::new(move |s| record.lock().unwrap().push(s.status)))
        .await?;
    for i in 0..3 {
        a.push(&doc, &path("log"), json!(format!("from a {i}")))
            .await?;
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    while b.value(&doc).await?["log"].as_array().map_or(0, Vec::len) < 3 {
        if tokio::time::Instant::now() > deadline {
            bail!("b never received a's changes");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let seen = seen.lock().unwrap().clone();
    assert!(
        !seen.contains(&Status::Pending),
        "b has nothing the server lacks, yet its status went {seen:?}"
    );
    assert_eq!(seen.last(), Some(&Status::SafeOnServer));
    a.close().await?;
    b.close().await?;
    Ok(())
}

#[tokio::test]
async fn a_device_syncs_over_wss_with_a_certificate_it_was_told_to_trust() -> Result<()> {
    use tokio_rustls::rustls;

    // The real server behind a TLS terminator (as a deployment puts it behind one),
    // with a certificate for "localhost" from a CA of the test's own.
    let server_dir = tempfile::tempdir()?;
    let server = ServerProcess::start(server_dir.path())?;
    let backend = server.addr();
    let key = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    let cert_der = key.cert.der().to_vec();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![rustls::pki_types::CertificateDer::from(cert_der.clone())],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.signing_key.serialize_der().into()),
        )?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let terminator = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let (Ok(mut tls), Ok(mut plain)) = (
                    acceptor.accept(tcp).await,
                    tokio::net::TcpStream::connect(backend).await,
                ) else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    let url = format!("wss://localhost:{port}/sync");

    // Without the certificate, the connection is refused and nothing is claimed.
    let untrusting_dir = tempfile::tempdir()?;
    let untrusting = Device::open(config(untrusting_dir.path(), Some(&url))).await?;
    let mut connection = untrusting.connection();
    let state = tokio::time::timeout(
        WAIT,
        connection.wait_for(|c| matches!(c, Connection::Waiting { .. })),
    )
    .await??
    .clone();
    assert!(format!("{state:?}").contains("certificate"), "{state:?}");
    untrusting.close().await?;

    let dir = tempfile::tempdir()?;
    let mut trusting = config(dir.path(), Some(&url));
    trusting.extra_roots = vec![cert_der];
    let device = Device::open(trusting).await?;
    let doc = device.create(json!({"note": "sent over TLS"})).await?;
    synced(&device).await?;
    assert_eq!(
        server_value(&server.sync_url(), &doc).await?,
        Some(json!({"note": "sent over TLS"}))
    );
    device.close().await?;
    terminator.abort();
    Ok(())
}
