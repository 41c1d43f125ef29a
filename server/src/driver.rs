//! The driver: one task that owns the sync engine, feeds it frames, timers and store
//! results, and carries out what it asks for.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use coachsync_core::store::{Store, StoreWorker};
use coachsync_core::sync::{ConnId, Engine, EngineConfig, Event, OpId, Output, Role};
use coachsync_core::{PeerId, Result as CoreResult};
use tokio::sync::mpsc;

use crate::config::Config;
use crate::metrics::Metrics;

/// What a connection task gets from the driver.
#[derive(Debug)]
pub enum Outbound {
    /// A frame to send.
    Frame(Vec<u8>),
    /// Close the connection after what was queued before.
    Close {
        /// The WebSocket close code.
        code: u16,
        /// Why.
        reason: String,
    },
}

/// What the driver gets.
#[derive(Debug)]
pub enum DriverMsg {
    /// A WebSocket is up; frames for it go to `outbound`.
    Connected {
        /// The connection.
        conn: ConnId,
        /// Its send queue.
        outbound: mpsc::Sender<Outbound>,
    },
    /// A frame arrived.
    Frame {
        /// The connection.
        conn: ConnId,
        /// The frame.
        bytes: Vec<u8>,
    },
    /// A WebSocket is gone.
    Disconnected {
        /// The connection.
        conn: ConnId,
    },
    /// A load finished.
    Loaded {
        /// The operation.
        op: OpId,
        /// What was read.
        result: CoreResult<Option<coachsync_core::store::StoredDocument>>,
    },
    /// A heads read finished.
    Heads {
        /// The operation.
        op: OpId,
        /// The stored heads.
        result: CoreResult<Option<Vec<automerge::ChangeHash>>>,
    },
    /// A change-log read finished.
    ChangedSince {
        /// The operation.
        op: OpId,
        /// What was found.
        result: CoreResult<coachsync_core::store::ChangedSince>,
    },
    /// A group commit finished.
    Committed {
        /// The operations it carried.
        ops: Vec<OpId>,
        /// Whether it is durable.
        result: Result<(), String>,
    },
    /// Stop: close every connection, finish pending writes, return.
    Shutdown,
}

/// A handle to send the driver messages.
pub type DriverHandle = mpsc::Sender<DriverMsg>;

/// The driver's state.
pub struct Driver {
    engine: Engine,
    conns: HashMap<ConnId, mpsc::Sender<Outbound>>,
    inbox: mpsc::Receiver<DriverMsg>,
    store: Arc<dyn Store>,
    worker: StoreWorker,
    metrics: Arc<Metrics>,
    handle: DriverHandle,
}

impl Driver {
    /// Build the driver over a store. Returns it and the handle to reach it.
    pub fn new(
        config: &Config,
        store: Arc<dyn Store>,
        metrics: Arc<Metrics>,
    ) -> (Self, DriverHandle) {
        let storage_id = store.storage_id();
        let peer_id =
            PeerId::new(&format!("coachsync-{storage_id}")).expect("a short, non-empty id");
        let mut engine_config = EngineConfig::new(Role::Server, peer_id, Some(storage_id));
        engine_config.evict_after = config.evict_after;
        engine_config.max_document_bytes = config.max_document_bytes;
        // Inputs queue here; a bound keeps a flood of frames from growing memory
        // without limit (readers wait instead).
        let (handle, inbox) = mpsc::channel(1024);
        let worker = {
            let driver = handle.clone();
            let metrics = metrics.clone();
            StoreWorker::start(store.clone(), config.group_commit, move |report| {
                metrics
                    .store_write_seconds
                    .observe(report.elapsed.as_secs_f64());
                metrics.store_batch_writes.observe(report.writes as f64);
                if report.result.is_ok() {
                    metrics.fsyncs.inc();
                }
                let _ = driver.blocking_send(DriverMsg::Committed {
                    ops: report.ops,
                    result: report.result,
                });
            })
        };
        (
            Self {
                engine: Engine::new(engine_config),
                conns: HashMap::new(),
                inbox,
                store,
                worker,
                metrics,
                handle: handle.clone(),
            },
            handle,
        )
    }

    /// Run until [`DriverMsg::Shutdown`] or until every handle is dropped.
    pub async fn run(mut self) {
        let mut gauge_tick = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            let timeout = self.engine.poll_timeout();
            let sleep = async {
                match timeout {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                msg = self.inbox.recv() => {
                    let Some(msg) = msg else { break };
                    if matches!(msg, DriverMsg::Shutdown) {
                        self.shutdown().await;
                        return;
                    }
                    self.handle(msg);
                    // Take whatever else is already queued before acting, so that the
                    // writes of many inputs go to the store as one group commit.
                    while let Ok(msg) = self.inbox.try_recv() {
                        if matches!(msg, DriverMsg::Shutdown) {
                            self.flush_outputs();
                            self.shutdown().await;
                            return;
                        }
                        self.handle(msg);
                    }
                }
                () = sleep => {
                    self.engine.handle_timeout(Instant::now());
                }
                _ = gauge_tick.tick() => {
                    self.metrics.documents_loaded.set(self.engine.loaded_documents() as i64);
                }
            }
            self.flush_outputs();
        }
    }

    fn handle(&mut self, msg: DriverMsg) {
        let now = Instant::now();
        match msg {
            DriverMsg::Connected { conn, outbound } => {
                self.conns.insert(conn, outbound);
                self.metrics.connections.inc();
                self.engine.handle_connect(now, conn);
            }
            DriverMsg::Frame { conn, bytes } => {
                self.metrics.messages_in.inc();
                self.metrics.bytes_in.inc_by(bytes.len() as u64);
                self.engine.handle_frame(now, conn, &bytes);
            }
            DriverMsg::Disconnected { conn } => {
                if self.conns.remove(&conn).is_some() {
                    self.metrics.connections.dec();
                }
                self.engine.handle_disconnect(now, conn);
            }
            DriverMsg::Loaded { op, result } => self.engine.handle_load(now, op, result),
            DriverMsg::Heads { op, result } => self.engine.handle_heads(now, op, result),
            DriverMsg::ChangedSince { op, result } => {
                self.engine.handle_changed_since(now, op, result)
            }
            DriverMsg::Committed { ops, result } => {
                for op in ops {
                    let result = result.clone().map_err(coachsync_core::Error::Storage);
                    self.engine.handle_commit(now, op, result);
                }
            }
            DriverMsg::Shutdown => {}
        }
    }

    /// Carry out everything the engine asked for. Consecutive commits go to the
    /// store worker as one batch.
    fn flush_outputs(&mut self) {
        let mut batch = Vec::new();
        while let Some(out) = self.engine.poll_output() {
            match out {
                Output::Commit { op, write } => {
                    batch.push((op, write));
                    continue;
                }
                other => {
                    if !batch.is_empty() {
                        self.worker.submit(std::mem::take(&mut batch));
                    }
                    self.act(other);
                }
            }
        }
        if !batch.is_empty() {
            self.worker.submit(batch);
        }
    }

    fn act(&mut self, out: Output) {
        match out {
            Output::Send { conn, message } => {
                let Some(tx) = self.conns.get(&conn) else {
                    return;
                };
                let frame = message.encode();
                let len = frame.len() as u64;
                match tx.try_send(Outbound::Frame(frame)) {
                    Ok(()) => {
                        self.metrics.messages_out.inc();
                        self.metrics.bytes_out.inc_by(len);
                    }
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        tracing::warn!(conn = conn.0, "send queue full; dropping the connection");
                        self.metrics.slow_consumers.inc();
                        // Dropping the sender ends the connection task, which reports the
                        // disconnect back here.
                        self.conns.remove(&conn);
                        self.metrics.connections.dec();
                        self.engine.handle_disconnect(Instant::now(), conn);
                    }
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
            }
            Output::Close { conn, reason } => {
                if let Some(tx) = self.conns.remove(&conn) {
                    self.metrics.connections.dec();
                    // Engine-initiated closes are refusals of what the peer sent.
                    let _ = tx.try_send(Outbound::Close {
                        code: axum::extract::ws::close_code::POLICY,
                        reason,
                    });
                }
            }
            Output::Load { op, document } => self.read(move |store| DriverMsg::Loaded {
                op,
                result: store.load(&document),
            }),
            Output::ChangedSince { op, since, peer } => {
                self.read(move |store| DriverMsg::ChangedSince {
                    op,
                    result: store.changed_since(since, &peer),
                })
            }
            Output::LoadHeads { op, document } => self.read(move |store| DriverMsg::Heads {
                op,
                result: store.heads(&document),
            }),
            Output::Commit { op, write } => self.worker.submit(vec![(op, write)]),
            Output::Event(event) => self.on_event(event),
        }
    }

    /// Run a store read on the blocking pool; its result comes back as a message.
    fn read(&self, read: impl FnOnce(&dyn Store) -> DriverMsg + Send + 'static) {
        let store = self.store.clone();
        let handle = self.handle.clone();
        tokio::task::spawn_blocking(move || {
            let _ = handle.blocking_send(read(&*store));
        });
    }

    fn on_event(&self, event: Event) {
        match event {
            Event::PeerJoined { conn, peer } => {
                tracing::debug!(conn = conn.0, %peer, "peer joined")
            }
            Event::Rejected { conn, reason } => {
                self.metrics.rejected.inc();
                tracing::info!(conn = conn.0, %reason, "rejected peer input");
            }
            Event::Quarantined { document, reason } => {
                self.metrics.quarantined.inc();
                tracing::error!(%document, %reason, "quarantined a document that does not load");
            }
            Event::StoreFailed { document, error } => {
                tracing::error!(%document, %error, "store operation failed");
            }
            Event::Stalled { document, conn } => {
                tracing::debug!(%document, conn = conn.0, "sync stalled; reset");
            }
            Event::DocumentChanged { .. }
            | Event::DocumentStored { .. }
            | Event::PeerHeads { .. }
            | Event::CaughtUp { .. }
            | Event::DocumentUnavailable { .. }
            | Event::Ephemeral { .. } => {}
        }
    }

    async fn shutdown(&mut self) {
        tracing::info!(
            connections = self.conns.len(),
            "shutting down: closing connections"
        );
        for (_, tx) in self.conns.drain() {
            let _ = tx.try_send(Outbound::Close {
                code: axum::extract::ws::close_code::AWAY,
                reason: "server shutting down".into(),
            });
        }
        // Answer what is still in flight so its writes reach the store, then wait for
        // the worker to finish every write it was given.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        while self.worker.in_flight() > 0 {
            match tokio::time::timeout_at(deadline, self.inbox.recv()).await {
                Ok(Some(
                    msg @ (DriverMsg::Committed { .. }
                    | DriverMsg::Loaded { .. }
                    | DriverMsg::Heads { .. }
                    | DriverMsg::ChangedSince { .. }),
                )) => {
                    self.handle(msg);
                    self.flush_outputs();
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        self.worker.stop();
        tracing::info!("store closed cleanly");
    }
}
