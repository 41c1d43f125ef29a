//! A Rust peer: the sync engine in client role over a real WebSocket.
//!
//! The peer is driven explicitly: each call pumps the engine, the store and the
//! socket until the condition it waits for holds, or fails after a timeout. That keeps
//! tests deterministic about what has happened when a call returns.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use automerge::{Automerge, ChangeHash, ReadDoc};
use coachsync_core::store::{MemoryStore, Store};
use coachsync_core::sync::{ConnId, Engine, EngineConfig, Event, Output, Role};
use coachsync_core::{DocumentId, PeerId, StorageId};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a peer waits for any one condition.
pub const WAIT: Duration = Duration::from_secs(20);

/// A client peer with an in-memory store.
pub struct Peer {
    engine: Engine,
    store: MemoryStore,
    socket: Option<(ConnId, Socket)>,
    next_conn: u64,
    events: VecDeque<Event>,
    outgoing: VecDeque<Vec<u8>>,
    joined: bool,
    /// The server answered this connection's manifest and it is caught up.
    caught_up: bool,
    /// Frames and bytes sent and received, for cost checks.
    pub frames_sent: usize,
    /// Bytes sent.
    pub bytes_sent: usize,
    /// Frames received.
    pub frames_received: usize,
    /// Bytes received.
    pub bytes_received: usize,
}

impl Peer {
    /// A new peer named `name` (its peer ID), with its own storage ID.
    pub fn new(name: &str) -> Self {
        let storage = StorageId::new(&format!("{name}-storage")).expect("valid");
        let config = EngineConfig::new(
            Role::Client,
            PeerId::new(name).expect("valid peer id"),
            Some(storage.clone()),
        );
        Self {
            engine: Engine::new(config),
            store: MemoryStore::new(storage),
            socket: None,
            next_conn: 1,
            events: VecDeque::new(),
            outgoing: VecDeque::new(),
            joined: false,
            caught_up: false,
            frames_sent: 0,
            bytes_sent: 0,
            frames_received: 0,
            bytes_received: 0,
        }
    }

    /// Connect to `url` and wait for the handshake.
    pub async fn connect(&mut self, url: &str) -> Result<()> {
        // TCP_NODELAY: the last message of an exchange is not answered, so with
        // Nagle's algorithm the next small frame would wait for a delayed ACK.
        let (socket, _) = tokio::time::timeout(
            WAIT,
            tokio_tungstenite::connect_async_with_config(url, None, true),
        )
        .await
        .context("connecting timed out")??;
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.socket = Some((conn, socket));
        self.joined = false;
        self.engine.handle_connect(Instant::now(), conn);
        self.pump_until("the handshake", |p| p.joined).await
    }

    /// Drop the connection.
    pub async fn disconnect(&mut self) {
        self.outgoing.clear();
        if let Some((conn, mut socket)) = self.socket.take() {
            let _ = socket.close(None).await;
            self.engine.handle_disconnect(Instant::now(), conn);
        }
        self.joined = false;
    }

    /// Whether the peer is connected and joined.
    pub fn is_connected(&self) -> bool {
        self.socket.is_some() && self.joined
    }

    /// Create a document and make a first change to it.
    pub fn create(
        &mut self,
        f: impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> coachsync_core::Result<()>,
    ) -> Result<DocumentId> {
        let id = self.engine.create_document(Instant::now(), rand::random());
        self.engine.change(Instant::now(), &id, f)?;
        self.process_local()?;
        Ok(id)
    }

    /// Change a document held by this peer.
    pub fn change(
        &mut self,
        document: &DocumentId,
        f: impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> coachsync_core::Result<()>,
    ) -> Result<()> {
        self.engine.change(Instant::now(), document, f)?;
        self.process_local()
    }

    /// The document, if held.
    pub fn document(&self, document: &DocumentId) -> Option<&Automerge> {
        self.engine.document(document)
    }

    /// The document's heads here.
    pub fn heads(&self, document: &DocumentId) -> Vec<ChangeHash> {
        self.document(document)
            .map(|d| d.get_heads())
            .unwrap_or_default()
    }

    /// Ask the server for a document; returns whether it was found.
    pub async fn find(&mut self, document: &DocumentId) -> Result<bool> {
        self.events.clear();
        self.engine.find(Instant::now(), document);
        let id = document.clone();
        self.pump_until("the document or its unavailability", move |p| {
            !p.heads(&id).is_empty()
                || p.events.iter().any(
                    |e| matches!(e, Event::DocumentUnavailable { document } if *document == id),
                )
        })
        .await?;
        Ok(!self.heads(document).is_empty())
    }

    /// Wait until the server has reported heads that cover every local change.
    pub async fn wait_synced(&mut self, document: &DocumentId) -> Result<()> {
        let id = document.clone();
        self.pump_until("the server to have every local change", move |p| {
            p.server_covers(&id)
        })
        .await
    }

    /// Whether the heads the server last reported cover every local change of the
    /// document (ARCHITECTURE §4: `get_changes(known)` is empty).
    pub fn server_covers(&self, document: &DocumentId) -> bool {
        let Some((conn, _)) = &self.socket else {
            return false;
        };
        let Some(doc) = self.document(document) else {
            return false;
        };
        // Heads the server reported over this connection, or, once it answered the
        // manifest, those it confirmed before for a document it did not name.
        let server_heads = match self.engine.peer_heads(document, *conn) {
            Some(heads) => heads,
            None if self.caught_up => match self.engine.confirmed_heads(document, *conn) {
                Some(heads) => heads,
                None => return false,
            },
            None => return false,
        };
        if server_heads.is_empty() && !doc.get_heads().is_empty() {
            return false;
        }
        let known: Vec<ChangeHash> = server_heads
            .iter()
            .filter(|h| doc.get_change_by_hash(h).is_some())
            .copied()
            .collect();
        known.len() == server_heads.len() && doc.get_changes(&known).is_empty()
    }

    /// Wait until the document's heads here equal `heads`.
    pub async fn wait_heads(&mut self, document: &DocumentId, heads: &[ChangeHash]) -> Result<()> {
        let id = document.clone();
        let mut want = heads.to_vec();
        want.sort();
        self.pump_until("the document to reach the given heads", move |p| {
            let mut have = p.heads(&id);
            have.sort();
            have == want
        })
        .await
    }

    /// Pump for a while without waiting for anything in particular.
    pub async fn settle(&mut self, for_: Duration) -> Result<()> {
        let until = Instant::now() + for_;
        self.pump_until("time to pass", move |_| Instant::now() >= until)
            .await
    }

    /// Events seen since the last `find`.
    pub fn events(&self) -> impl Iterator<Item = &Event> {
        self.events.iter()
    }

    /// Run the engine's local outputs (store writes) without a socket.
    fn process_local(&mut self) -> Result<()> {
        while let Some(out) = self.engine.poll_output() {
            self.apply(out)?;
        }
        Ok(())
    }

    fn apply(&mut self, out: Output) -> Result<()> {
        match out {
            Output::Send { conn, message } => {
                if matches!(&self.socket, Some((c, _)) if *c == conn) {
                    let frame = message.encode();
                    self.frames_sent += 1;
                    self.bytes_sent += frame.len();
                    self.outgoing.push_back(frame);
                }
            }
            Output::Close { conn, reason } => {
                if matches!(&self.socket, Some((c, _)) if *c == conn) {
                    tracing::info!(%reason, "engine closed the connection");
                    self.socket = None;
                    self.joined = false;
                    self.outgoing.clear();
                }
            }
            Output::Load { op, document } => {
                let loaded = self.store.load(&document);
                self.engine.handle_load(Instant::now(), op, loaded);
            }
            Output::LoadHeads { op, document } => {
                let heads = self.store.heads(&document);
                self.engine.handle_heads(Instant::now(), op, heads);
            }
            Output::ChangedSince { op, since, peer } => {
                let changed = self.store.changed_since(since, &peer);
                self.engine
                    .handle_changed_since(Instant::now(), op, changed);
            }
            Output::Commit { op, write } => {
                let result = self.store.commit(std::slice::from_ref(&write));
                self.engine.handle_commit(Instant::now(), op, result);
            }
            Output::Event(event) => {
                match event {
                    Event::PeerJoined { .. } => {
                        self.joined = true;
                        self.caught_up = false;
                    }
                    Event::CaughtUp { .. } => self.caught_up = true,
                    _ => {}
                }
                self.events.push_back(event);
            }
        }
        Ok(())
    }

    /// Pump until `done` holds, or fail after [`WAIT`].
    pub async fn pump_until(
        &mut self,
        what: &str,
        mut done: impl FnMut(&Self) -> bool,
    ) -> Result<()> {
        let deadline = Instant::now() + WAIT;
        loop {
            self.process_local()?;
            if let Some((_, socket)) = &mut self.socket {
                // A failed send shows up as a closed socket on the next read.
                while let Some(frame) = self.outgoing.pop_front() {
                    if socket.send(WsMessage::Binary(frame.into())).await.is_err() {
                        break;
                    }
                }
            }
            if done(self) {
                return Ok(());
            }
            let now = Instant::now();
            if now >= deadline {
                bail!("timed out waiting for {what}");
            }
            let Some((conn, socket)) = &mut self.socket else {
                bail!("disconnected while waiting for {what}");
            };
            let conn = *conn;
            let mut wake = deadline.min(now + Duration::from_millis(50));
            if let Some(t) = self.engine.poll_timeout() {
                wake = wake.min(t);
            }
            let read = tokio::time::timeout_at(wake.into(), socket.next()).await;
            match read {
                Err(_) => self.engine.handle_timeout(Instant::now()),
                Ok(None) | Ok(Some(Err(_))) => {
                    self.socket = None;
                    self.joined = false;
                    self.engine.handle_disconnect(Instant::now(), conn);
                }
                Ok(Some(Ok(WsMessage::Binary(bytes)))) => {
                    self.frames_received += 1;
                    self.bytes_received += bytes.len();
                    self.engine.handle_frame(Instant::now(), conn, &bytes);
                }
                Ok(Some(Ok(WsMessage::Close(_)))) => {
                    self.socket = None;
                    self.joined = false;
                    self.engine.handle_disconnect(Instant::now(), conn);
                }
                Ok(Some(Ok(_))) => {}
            }
        }
    }
}
