//! samod, the Rust automerge-repo implementation, as a client of the real server.
//!
//! samod decodes strictly and closes the connection on anything unexpected (a null
//! field, a missing `targetId`, an unknown message type, a document ID that is not
//! 16 bytes), so it catches what the lenient JavaScript client lets pass. Its dialer
//! reconnects after a close, so every test also checks that no connection was closed.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use automerge::{AutomergeError, ObjType, ROOT, ReadDoc, transaction::Transactable};
use coachsync_tests::ServerProcess;
use futures_util::{SinkExt, StreamExt, future};
use samod::{
    BackoffConfig, DialError, Dialer, DialerEvent, DialerHandle, DocumentId, PeerId, Repo,
    Transport, Url,
};
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::{self, Message};

const WAIT: Duration = Duration::from_secs(20);

/// samod's `Dialer` over this workspace's tokio-tungstenite (samod's own WebSocket
/// feature would bring a second tungstenite and native TLS).
struct WsDialer {
    url: Url,
}

impl Dialer for WsDialer {
    type Error = std::convert::Infallible;

    fn url(&self) -> Url {
        self.url.clone()
    }

    fn connect(
        &self,
    ) -> Pin<Box<dyn Future<Output = Result<Transport, DialError<Self::Error>>> + Send + 'static>>
    {
        let url = self.url.clone();
        Box::pin(async move {
            let (ws, _) = tokio_tungstenite::connect_async(url.as_str())
                .await
                .map_err(DialError::transient)?;
            let (sink, stream) = ws.split();
            let stream = Box::pin(stream.filter_map(|msg| {
                future::ready(match msg {
                    Ok(Message::Binary(b)) => Some(Ok(b.to_vec())),
                    Ok(Message::Text(_)) => Some(Err(tungstenite::Error::Io(
                        std::io::Error::other("unexpected text frame"),
                    ))),
                    Ok(_) => None,
                    Err(e) => Some(Err(e)),
                })
            }));
            let sink = sink.with(|bytes: Vec<u8>| {
                future::ready(Ok::<_, tungstenite::Error>(Message::Binary(bytes.into())))
            });
            Ok(Transport::new(stream, sink))
        })
    }
}

/// A samod repo connected to the server, and the reasons of every disconnect seen.
struct Client {
    repo: Repo,
    dialer: DialerHandle,
    disconnects: Arc<Mutex<Vec<String>>>,
}

impl Client {
    async fn connect(name: &str, url: &str) -> Result<Self> {
        let repo = Repo::build_tokio()
            .with_peer_id(PeerId::from(format!("samod-{name}")))
            .load()
            .await;
        let backoff = BackoffConfig {
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
            max_retries: Some(5),
        };
        let dialer = repo
            .dial(backoff, Arc::new(WsDialer { url: url.parse()? }))
            .map_err(|e| anyhow!("{e}"))?;
        let disconnects = Arc::new(Mutex::new(Vec::new()));
        let (seen, watch) = (disconnects.clone(), dialer.clone());
        tokio::spawn(async move {
            let mut events = watch.events();
            while let Some(event) = events.next().await {
                if let DialerEvent::Disconnected { reason } = event {
                    seen.lock().expect("not poisoned").push(reason);
                }
            }
        });
        timeout(WAIT, dialer.established())
            .await
            .context("the handshake timed out")?
            .map_err(|e| anyhow!("the dialer failed: {e}"))?;
        Ok(Self {
            repo,
            dialer,
            disconnects,
        })
    }

    /// Fail if samod closed the connection at any point.
    fn assert_never_disconnected(&self) {
        let seen = self.disconnects.lock().expect("not poisoned");
        assert!(seen.is_empty(), "samod closed the connection: {seen:?}");
    }

    async fn stop(self) {
        self.assert_never_disconnected();
        self.repo.stop().await;
    }
}

fn text(doc: &automerge::Automerge, key: &str) -> Result<String> {
    let (_, obj) = doc.get(ROOT, key)?.context("the field is missing")?;
    Ok(doc.text(&obj)?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samod_creates_a_document_and_another_samod_finds_it_through_the_server() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = ServerProcess::start(dir.path())?;
    let url = server.sync_url();

    let alice = Client::connect("alice", &url).await?;
    let mut initial = automerge::Automerge::new();
    initial
        .transact(|tx| {
            let t = tx.put_object(ROOT, "note", ObjType::Text)?;
            tx.splice_text(&t, 0, 0, "Students explained their reasoning")?;
            Ok::<_, AutomergeError>(())
        })
        .map_err(|f| f.error)?;
    let handle = timeout(WAIT, alice.repo.create(initial)).await??;
    handle.with_document(|doc| {
        doc.transact(|tx| {
            let (_, t) = tx.get(ROOT, "note")?.expect("note exists");
            tx.splice_text(&t, 0, 0, "Walkthrough: ")?;
            Ok::<_, AutomergeError>(())
        })
        .map(|_| ())
        .map_err(|f| f.error)
    })?;
    let id: DocumentId = handle.document_id().clone();
    let conn = alice
        .dialer
        .connection_id()
        .context("alice is not connected")?;
    timeout(WAIT, handle.they_have_our_changes(conn))
        .await
        .context("the server never confirmed alice's changes")?;

    let bob = Client::connect("bob", &url).await?;
    let found = timeout(WAIT, bob.repo.find(id.clone()))
        .await
        .context("find hung")??;
    let Some(found) = found else {
        bail!("the server said {id} is unavailable");
    };
    let value = found.with_document(|doc| text(doc, "note"))?;
    assert_eq!(value, "Walkthrough: Students explained their reasoning");

    // Bob edits; Alice gets it pushed.
    found.with_document(|doc| {
        doc.transact(|tx| {
            tx.put(ROOT, "reviewed", true)?;
            Ok::<_, AutomergeError>(())
        })
        .map(|_| ())
        .map_err(|f| f.error)
    })?;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let seen = handle.with_document(|doc| doc.get(ROOT, "reviewed").ok().flatten().is_some());
        if seen {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("bob's edit never reached alice");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bob.stop().await;
    alice.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn samod_finding_an_unknown_document_gets_unavailable_not_a_hang() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let server = ServerProcess::start(dir.path())?;
    let client = Client::connect("finder", &server.sync_url()).await?;
    let unknown = DocumentId::try_from(rand::random::<[u8; 16]>().to_vec())?;
    let started = std::time::Instant::now();
    let found = timeout(WAIT, client.repo.find(unknown))
        .await
        .context("find hung")??;
    assert!(found.is_none(), "an unknown document was found");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "unavailable took {:?}",
        started.elapsed()
    );
    client.stop().await;
    Ok(())
}
