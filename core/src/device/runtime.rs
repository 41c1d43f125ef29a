//! The device's task: the engine, the store, the connection, and everyone waiting on
//! them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::{mpsc, oneshot, watch};

use super::connection;
use super::status_book::{DocumentStatus, Status, StatusBook};
use super::{Backoff, Connection, DeviceConfig, DocumentObserver, Edit, StatusObserver};
use crate::error::{Error, Result};
use crate::id::{DocumentId, PeerId, StorageId};
use crate::store::{
    CommitReport, SledOptions, SledStore, Store, StoreWorker, StoreWrite, StoredDocument,
};
use crate::sync::{CURSOR_KEY_PREFIX, ConnId, Engine, EngineConfig, Event, OpId, Output, Role};

/// When the document was last edited, by the newest time recorded in its heads
/// (changes made without a time, as some peers make them, count as never).
fn last_edited(doc: &automerge::Automerge) -> Option<SystemTime> {
    doc.get_heads()
        .iter()
        .filter_map(|h| automerge::ReadDoc::get_change_by_hash(doc, h))
        .map(|c| c.timestamp())
        .filter(|t| *t > 0)
        .max()
        .map(|ms| std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms as u64))
}

/// Meta keys marking documents removed from the device.
const DELETED_PREFIX: &str = "device/deleted/";

/// Operation IDs of the device's own writes (status records) carry this bit, so
/// they never collide with the engine's, which count up from zero.
const DEVICE_OP: u64 = 1 << 63;

/// What a [`Device`](super::Device) handle asks of the task.
pub(super) enum Command {
    Create {
        edit: Edit,
        reply: oneshot::Sender<Result<DocumentId>>,
    },
    Change {
        document: DocumentId,
        edit: Edit,
        reply: oneshot::Sender<Result<()>>,
    },
    Value {
        document: DocumentId,
        reply: oneshot::Sender<Result<(serde_json::Value, Option<SystemTime>)>>,
    },
    Fetch {
        document: DocumentId,
        reply: oneshot::Sender<Result<()>>,
    },
    Statuses {
        reply: oneshot::Sender<Result<Vec<DocumentStatus>>>,
    },
    WaitSynced {
        reply: oneshot::Sender<Result<()>>,
    },
    SyncNow,
    Delete {
        document: DocumentId,
        reply: oneshot::Sender<Result<()>>,
    },
    SetServer {
        url: Option<String>,
        reply: oneshot::Sender<Result<()>>,
    },
    SetToken {
        token: Option<String>,
        reply: oneshot::Sender<Result<()>>,
    },
    /// Where and how to reach the server's HTTP API.
    ApiTarget {
        reply: oneshot::Sender<Result<super::api::ApiTarget>>,
    },
    Subscribe {
        id: u64,
        document: DocumentId,
        observer: DocumentObserver,
        reply: oneshot::Sender<Result<()>>,
    },
    SubscribeStatus {
        id: u64,
        observer: StatusObserver,
        reply: oneshot::Sender<Result<()>>,
    },
    Unsubscribe {
        id: u64,
    },
    Close {
        reply: oneshot::Sender<Result<()>>,
    },
}

/// What the connection tasks, the store thread and store reads report.
pub(super) enum Input {
    Connected {
        conn: ConnId,
        outbound: mpsc::UnboundedSender<Vec<u8>>,
    },
    Frame {
        conn: ConnId,
        bytes: Vec<u8>,
    },
    Disconnected {
        conn: ConnId,
        error: String,
    },
    Loaded {
        op: OpId,
        result: Result<Option<StoredDocument>>,
    },
    Committed(CommitReport),
}

enum Link {
    /// No server configured.
    Off,
    /// The next attempt is due at `until`.
    Waiting {
        until: Instant,
    },
    Connecting {
        conn: ConnId,
    },
    Up {
        conn: ConnId,
        outbound: mpsc::UnboundedSender<Vec<u8>>,
    },
    /// We closed it; waiting for its task to report the end.
    Closing {
        conn: ConnId,
    },
}

/// A command that needs the document in memory, held while it loads.
enum Deferred {
    Change {
        edit: Edit,
        reply: oneshot::Sender<Result<()>>,
    },
    Value {
        reply: oneshot::Sender<Result<(serde_json::Value, Option<SystemTime>)>>,
    },
    Subscribe {
        id: u64,
        observer: DocumentObserver,
        reply: oneshot::Sender<Result<()>>,
    },
}

impl Deferred {
    fn fail(self, error: Error) {
        match self {
            Deferred::Change { reply, .. } | Deferred::Subscribe { reply, .. } => {
                let _ = reply.send(Err(error));
            }
            Deferred::Value { reply } => {
                let _ = reply.send(Err(error));
            }
        }
    }
}

/// Someone waiting for a document's changes to be durable.
enum Durable {
    Change(oneshot::Sender<Result<()>>),
    Create(DocumentId, oneshot::Sender<Result<DocumentId>>),
}

impl Durable {
    fn finish(self, result: Result<()>) {
        match self {
            Durable::Change(reply) => {
                let _ = reply.send(result);
            }
            Durable::Create(document, reply) => {
                let _ = reply.send(result.map(|()| document));
            }
        }
    }
}

pub(super) struct Runtime {
    config: DeviceConfig,
    engine: Engine,
    store: Arc<dyn Store>,
    worker: StoreWorker,
    book: StatusBook,
    commands: mpsc::UnboundedReceiver<Command>,
    inputs: mpsc::UnboundedReceiver<Input>,
    inputs_tx: mpsc::UnboundedSender<Input>,
    link: Link,
    next_conn: u64,
    next_device_op: u64,
    backoff: Backoff,
    connection: watch::Sender<Connection>,
    rng: StdRng,
    durable: HashMap<DocumentId, Vec<Durable>>,
    deferred: HashMap<DocumentId, Vec<Deferred>>,
    fetches: HashMap<DocumentId, Vec<oneshot::Sender<Result<()>>>>,
    synced: Vec<oneshot::Sender<Result<()>>>,
    doc_observers: HashMap<u64, (DocumentId, DocumentObserver)>,
    status_observers: HashMap<u64, StatusObserver>,
    /// Statuses last reported to observers.
    reported: HashMap<DocumentId, Status>,
    touched: HashSet<DocumentId>,
    /// Whether every document was safe at the last check, to write the time of the
    /// sync once when it completes.
    all_safe: bool,
    closing: Vec<oneshot::Sender<Result<()>>>,
    /// Removals waiting for their last write to be durable.
    removed: Vec<(OpId, oneshot::Sender<Result<()>>)>,
    /// Purges whose last write, once durable, is followed by a vacuum.
    vacuum_after: HashSet<OpId>,
    /// The device's own writes, submitted with the engine's next batch.
    pending_device_writes: Vec<(OpId, StoreWrite)>,
    loads_in_flight: usize,
    /// Batches handed to the store thread whose reports have not arrived. Counted
    /// here, not read from the worker, whose own count drops only after it reports.
    commits_in_flight: usize,
    tls: Arc<rustls::ClientConfig>,
}

impl Runtime {
    /// Open the store, register what it holds with the engine, and spawn the task.
    pub(super) async fn start(
        config: DeviceConfig,
    ) -> Result<(mpsc::UnboundedSender<Command>, watch::Receiver<Connection>)> {
        let dir = config.data_dir.clone();
        let (store, stored, records, cursors, deleted) = tokio::task::spawn_blocking(move || {
            // A phone's memory is small: a modest page cache.
            let options = SledOptions {
                cache_capacity: 8 * 1024 * 1024,
            };
            let store = SledStore::open(&dir, &options, || {
                let bytes: [u8; 16] = rand::rng().random();
                let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                StorageId::new(&hex).expect("32 hex digits are a valid id")
            })?;
            let stored = store.stored_heads()?;
            let records = store.meta("device/")?;
            let deleted = store.meta(DELETED_PREFIX)?;
            let cursors = store.meta(CURSOR_KEY_PREFIX)?;
            Ok::<_, Error>((store, stored, records, cursors, deleted))
        })
        .await
        .map_err(|e| Error::Storage(format!("opening the device store: {e}")))??;
        let store: Arc<dyn Store> = Arc::new(store);
        let storage_id = store.storage_id();
        let peer_id = PeerId::new(&format!("device-{storage_id}"))?;
        let mut engine = Engine::new(EngineConfig::new(Role::Client, peer_id, Some(storage_id)));
        let now = Instant::now();
        engine.register_stored(now, stored.iter().cloned());
        engine.register_deleted(
            deleted.iter().filter_map(|(key, _)| {
                key.strip_prefix(DELETED_PREFIX)?.parse::<DocumentId>().ok()
            }),
        );
        let book = StatusBook::open(stored, records);
        // What the server confirmed, and how far its change log was read: a
        // reconnect then lists only documents edited since.
        for (server, document, heads) in book.confirmed_heads() {
            engine.register_confirmed(&server, [(document, heads)]);
        }
        for (key, value) in cursors {
            let server = key.strip_prefix(CURSOR_KEY_PREFIX).unwrap_or_default();
            match (
                StorageId::new(server),
                <[u8; 8]>::try_from(value.as_slice()),
            ) {
                (Ok(server), Ok(cursor)) => {
                    engine.restore_cursor(server, u64::from_be_bytes(cursor))
                }
                _ => tracing::warn!(%key, "ignoring an unreadable manifest cursor"),
            }
        }
        tracing::info!(
            dir = %config.data_dir.display(),
            documents = book.documents().count(),
            outbox = book.outbox().len(),
            "device opened"
        );

        let tls = connection::tls_config(&config.extra_roots)?;
        let (commands_tx, commands) = mpsc::unbounded_channel();
        let (inputs_tx, inputs) = mpsc::unbounded_channel();
        let worker = {
            let inputs = inputs_tx.clone();
            StoreWorker::start(store.clone(), std::time::Duration::ZERO, move |report| {
                let _ = inputs.send(Input::Committed(report));
            })
        };
        let (link, state) = match &config.server {
            Some(_) => (Link::Waiting { until: now }, Connection::Connecting),
            None => (Link::Off, Connection::Offline),
        };
        let (connection, connection_rx) = watch::channel(state);
        let reported = book
            .statuses()
            .into_iter()
            .map(|s| (s.document, s.status))
            .collect();
        let runtime = Runtime {
            backoff: config.backoff.clone(),
            config,
            engine,
            store,
            worker,
            book,
            commands,
            inputs,
            inputs_tx,
            link,
            next_conn: 0,
            next_device_op: 0,
            connection,
            rng: StdRng::from_os_rng(),
            durable: HashMap::new(),
            deferred: HashMap::new(),
            fetches: HashMap::new(),
            synced: Vec::new(),
            doc_observers: HashMap::new(),
            status_observers: HashMap::new(),
            reported,
            touched: HashSet::new(),
            all_safe: false,
            closing: Vec::new(),
            removed: Vec::new(),
            vacuum_after: HashSet::new(),
            pending_device_writes: Vec::new(),
            loads_in_flight: 0,
            commits_in_flight: 0,
            tls,
        };
        tokio::spawn(runtime.run());
        Ok((commands_tx, connection_rx))
    }

    async fn run(mut self) {
        loop {
            let engine_due = self.engine.poll_timeout();
            let link_due = match self.link {
                Link::Waiting { until } if self.closing.is_empty() => Some(until),
                _ => None,
            };
            let sleep_until = |at: Option<Instant>| async move {
                match at {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                command = self.commands.recv(), if self.closing.is_empty() => match command {
                    Some(command) => self.on_command(command),
                    // Every handle is gone: stop as `close` would.
                    None => self.begin_close(None),
                },
                Some(input) = self.inputs.recv() => self.on_input(input),
                () = sleep_until(engine_due) => self.engine.handle_timeout(Instant::now()),
                () = sleep_until(link_due) => self.connect(),
            }
            // Take whatever else is queued before acting, so that quick edits share
            // one store commit.
            while let Ok(input) = self.inputs.try_recv() {
                self.on_input(input);
            }
            self.pump();
            if !self.closing.is_empty() && self.commits_in_flight == 0 && self.loads_in_flight == 0
            {
                self.finish_close();
                return;
            }
        }
    }

    // ----- commands ------------------------------------------------------------------

    fn on_command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Create { edit, reply } => {
                // The caller checked the content: the engine keeps every document it
                // creates.
                let document = self.engine.create_document(now, self.rng.random());
                let result =
                    self.engine
                        .change_at(now, Some(crate::utc::unix_ms()), &document, edit);
                match result {
                    Ok(()) => self
                        .durable
                        .entry(document.clone())
                        .or_default()
                        .push(Durable::Create(document, reply)),
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                }
            }
            Command::Change {
                document,
                edit,
                reply,
            } => self.when_loaded(now, document, Deferred::Change { edit, reply }),
            Command::Value { document, reply } => {
                self.when_loaded(now, document, Deferred::Value { reply })
            }
            Command::Subscribe {
                id,
                document,
                observer,
                reply,
            } => self.when_loaded(
                now,
                document,
                Deferred::Subscribe {
                    id,
                    observer,
                    reply,
                },
            ),
            Command::Fetch { document, reply } => {
                if matches!(self.link, Link::Off) {
                    let _ = reply.send(Err(Error::NoServer));
                    return;
                }
                // Fetching a document removed earlier brings it back.
                if self.engine.is_forgotten(&document) {
                    self.queue_device_write(StoreWrite::RemoveMeta {
                        key: format!("{DELETED_PREFIX}{document}"),
                    });
                }
                self.engine.find(now, &document);
                self.fetches.entry(document).or_default().push(reply);
            }
            Command::Statuses { reply } => {
                let _ = reply.send(Ok(self.book.statuses()));
            }
            Command::WaitSynced { reply } => {
                if matches!(self.link, Link::Off) {
                    let _ = reply.send(Err(Error::NoServer));
                    return;
                }
                self.synced.push(reply);
            }
            Command::SyncNow => {
                if let Link::Waiting { until } = &mut self.link {
                    *until = now;
                }
            }
            Command::Delete { document, reply } => {
                let Some(status) = self.book.status(&document) else {
                    let _ = reply.send(Err(Error::UnknownDocument(document.to_string())));
                    return;
                };
                if status.status == Status::Pending {
                    let _ = reply.send(Err(Error::Unsynced(document.to_string())));
                    return;
                }
                self.engine.forget(&document);
                let tombstone =
                    self.drop_local(&document, || Error::UnknownDocument(document.to_string()));
                self.removed.push((tombstone, reply));
            }
            Command::SetServer { url, reply } => {
                self.config.server = url;
                self.restart_link(now);
                let _ = reply.send(Ok(()));
            }
            Command::SetToken { token, reply } => {
                self.config.token = token;
                self.restart_link(now);
                let _ = reply.send(Ok(()));
            }
            Command::ApiTarget { reply } => {
                let target = match &self.config.server {
                    Some(server) => Ok(super::api::ApiTarget {
                        server: server.clone(),
                        token: self.config.token.clone(),
                        tls: self.tls.clone(),
                        timeout: self.config.connect_timeout,
                    }),
                    None => Err(Error::NoServer),
                };
                let _ = reply.send(target);
            }
            Command::SubscribeStatus {
                id,
                observer,
                reply,
            } => {
                for status in self.book.statuses() {
                    observer(status);
                }
                self.status_observers.insert(id, observer);
                let _ = reply.send(Ok(()));
            }
            Command::Unsubscribe { id } => {
                self.doc_observers.remove(&id);
                self.status_observers.remove(&id);
            }
            Command::Close { reply } => self.begin_close(Some(reply)),
        }
    }

    /// Run `deferred` once the document is in memory, loading it if the device holds
    /// it; a document the device does not hold is an error.
    fn when_loaded(&mut self, now: Instant, document: DocumentId, deferred: Deferred) {
        if self.is_loaded(&document) {
            self.run_deferred(now, &document, deferred);
        } else if self.book.contains(&document) {
            self.engine.find(now, &document);
            self.deferred.entry(document).or_default().push(deferred);
        } else {
            deferred.fail(Error::UnknownDocument(document.to_string()));
        }
    }

    fn is_loaded(&self, document: &DocumentId) -> bool {
        self.engine
            .document(document)
            .is_some_and(|d| !d.get_heads().is_empty())
    }

    fn run_deferred(&mut self, now: Instant, document: &DocumentId, deferred: Deferred) {
        match deferred {
            Deferred::Change { edit, reply } => {
                match self
                    .engine
                    .change_at(now, Some(crate::utc::unix_ms()), document, edit)
                {
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                    Ok(()) => {
                        let heads = self.engine.document(document).map(|d| d.get_heads());
                        if heads.as_deref() == self.engine.durable_heads(document) {
                            // The edit changed nothing: nothing to store.
                            let _ = reply.send(Ok(()));
                        } else {
                            self.durable
                                .entry(document.clone())
                                .or_default()
                                .push(Durable::Change(reply));
                        }
                    }
                }
            }
            Deferred::Value { reply } => {
                let value = self
                    .engine
                    .document(document)
                    .map(|doc| (crate::json::to_json(doc), last_edited(doc)))
                    .ok_or_else(|| Error::UnknownDocument(document.to_string()));
                let _ = reply.send(value);
            }
            Deferred::Subscribe {
                id,
                observer,
                reply,
            } => {
                if let Some(doc) = self.engine.document(document) {
                    observer(crate::json::to_json(doc));
                }
                self.doc_observers.insert(id, (document.clone(), observer));
                let _ = reply.send(Ok(()));
            }
        }
    }

    // ----- connection ----------------------------------------------------------------

    /// Drop the current connection (its task ends when its channel goes) and try
    /// the configured server at once, or go offline if there is none.
    fn restart_link(&mut self, now: Instant) {
        if let Some(conn) = self.current_conn() {
            self.engine.handle_disconnect(now, conn);
        }
        self.all_safe = false;
        self.backoff.reset();
        match self.config.server {
            Some(_) => {
                self.link = Link::Waiting { until: now };
                self.set_connection(Connection::Connecting);
            }
            None => {
                self.link = Link::Off;
                self.connection.send_replace(Connection::Offline);
            }
        }
    }

    /// Tell watchers of a new connection state, once: not again for the same one.
    fn set_connection(&self, state: Connection) {
        self.connection.send_if_modified(|current| {
            let changed = *current != state;
            *current = state;
            changed
        });
    }

    fn connect(&mut self) {
        let Some(url) = self.config.server.clone() else {
            return;
        };
        let conn = ConnId(self.next_conn);
        self.next_conn += 1;
        self.link = Link::Connecting { conn };
        self.set_connection(Connection::Connecting);
        tracing::debug!(%url, conn = conn.0, "connecting");
        let timeouts = connection::Timeouts {
            connect: self.config.connect_timeout,
            idle: self.config.idle_timeout,
        };
        let token = self.config.token.clone();
        connection::spawn(
            url,
            token,
            self.tls.clone(),
            conn,
            timeouts,
            self.inputs_tx.clone(),
        );
    }

    fn current_conn(&self) -> Option<ConnId> {
        match &self.link {
            Link::Connecting { conn } | Link::Up { conn, .. } | Link::Closing { conn } => {
                Some(*conn)
            }
            Link::Off | Link::Waiting { .. } => None,
        }
    }

    fn on_input(&mut self, input: Input) {
        let now = Instant::now();
        match input {
            Input::Connected { conn, outbound } => {
                if matches!(self.link, Link::Connecting { conn: c } if c == conn) {
                    self.link = Link::Up { conn, outbound };
                    self.engine.handle_connect(now, conn);
                }
                // Otherwise a stale attempt: dropping `outbound` closes it.
            }
            Input::Frame { conn, bytes } => {
                if matches!(self.link, Link::Up { conn: c, .. } if c == conn) {
                    self.engine.handle_frame(now, conn, &bytes);
                }
            }
            Input::Disconnected { conn, error } => {
                if self.current_conn() != Some(conn) {
                    return;
                }
                self.engine.handle_disconnect(now, conn);
                if !self.closing.is_empty() {
                    self.link = Link::Off;
                    return;
                }
                let delay = self.backoff.next_delay(self.rng.random());
                tracing::info!(conn = conn.0, %error, retry_in = ?delay, "not connected to the server");
                self.link = Link::Waiting { until: now + delay };
                self.all_safe = false;
                self.connection.send_replace(Connection::Waiting {
                    failures: self.backoff.failures(),
                    error,
                });
            }
            Input::Loaded { op, result } => {
                self.loads_in_flight -= 1;
                self.engine.handle_load(now, op, result);
            }
            Input::Committed(report) => {
                tracing::trace!(writes = report.writes, elapsed = ?report.elapsed, "store commit");
                self.commits_in_flight -= report.batches;
                for op in report.ops {
                    if op.0 & DEVICE_OP != 0 {
                        let result = report.result.clone().map_err(Error::Storage);
                        if let Some(i) = self.removal_waiting_on(op) {
                            let (_, reply) = self.removed.remove(i);
                            let _ = reply.send(result);
                        }
                        if self.vacuum_after.remove(&op) && report.result.is_ok() {
                            self.vacuum();
                        }
                        continue;
                    }
                    let result = report.result.clone().map_err(Error::Storage);
                    self.engine.handle_commit(now, op, result);
                }
            }
        }
    }

    // ----- engine outputs --------------------------------------------------------------

    /// Carry out what the engine asked for and settle whoever waits on it, until
    /// nothing is left.
    fn pump(&mut self) {
        loop {
            let mut writes = Vec::new();
            let mut any = false;
            while let Some(output) = self.engine.poll_output() {
                any = true;
                match output {
                    Output::Commit { op, write } => writes.push((op, write)),
                    Output::Send { conn, message } => {
                        if let Link::Up { conn: c, outbound } = &self.link
                            && *c == conn
                        {
                            let _ = outbound.send(message.encode());
                        }
                    }
                    Output::Close { conn, reason } => {
                        if matches!(self.link, Link::Up { conn: c, .. } if c == conn) {
                            tracing::warn!(conn = conn.0, %reason, "closing the connection");
                            self.link = Link::Closing { conn };
                        }
                    }
                    Output::Load { op, document } => self.load(op, document),
                    // Only servers ask these; answer so the engine never waits.
                    Output::LoadHeads { op, document } => {
                        let heads = self.store.heads(&document);
                        self.engine.handle_heads(Instant::now(), op, heads);
                    }
                    Output::ChangedSince { op, since, peer } => {
                        let changed = self.store.changed_since(since, &peer);
                        self.engine
                            .handle_changed_since(Instant::now(), op, changed);
                    }
                    Output::Event(event) => self.on_event(event),
                }
            }
            // Settling runs deferred edits, which queue more outputs.
            let ran = self.settle();
            writes.append(&mut self.pending_device_writes);
            if !writes.is_empty() {
                self.commits_in_flight += 1;
                self.worker.submit(writes);
            }
            if !any && !ran {
                break;
            }
        }
        self.report_statuses();
    }

    fn load(&mut self, op: OpId, document: DocumentId) {
        let store = self.store.clone();
        let inputs = self.inputs_tx.clone();
        self.loads_in_flight += 1;
        tokio::task::spawn_blocking(move || {
            let result = store.load(&document);
            let _ = inputs.send(Input::Loaded { op, result });
        });
    }

    /// The server's heads, plus the local heads they descend from. A change that
    /// arrives from the server is reported (its heads) before it is stored here, and
    /// the older local heads are then ancestors of the server's, not among them:
    /// without this the document would read as pending for that moment.
    fn with_covered_local_heads(
        &self,
        document: &DocumentId,
        mut heads: Vec<automerge::ChangeHash>,
    ) -> Vec<automerge::ChangeHash> {
        use automerge::ReadDoc;
        let Some(doc) = self.engine.document(document) else {
            return heads;
        };
        if heads.iter().any(|h| doc.get_change_by_hash(h).is_none()) {
            return heads;
        }
        let not_on_server: std::collections::HashSet<automerge::ChangeHash> =
            doc.get_changes(&heads).iter().map(|c| c.hash()).collect();
        for local in self.book.local_heads(document) {
            if !heads.contains(&local)
                && doc.get_change_by_hash(&local).is_some()
                && !not_on_server.contains(&local)
            {
                heads.push(local);
            }
        }
        heads
    }

    /// Queue a write of the device's own, to go with the engine's next batch.
    /// After the engine forgot a document (and queued its delete): remove what the
    /// device keeps about it, and fail whoever waits on it with `error`. Returns the
    /// op of the tombstone that keeps it from coming back, the last write.
    fn drop_local(&mut self, document: &DocumentId, error: impl Fn() -> Error) -> OpId {
        // Queued after the engine's own delete, in the same order.
        let record = self.book.remove(document);
        self.queue_device_write(record);
        let tombstone = self.queue_device_write(StoreWrite::Meta {
            key: format!("{DELETED_PREFIX}{document}"),
            value: Vec::new(),
        });
        self.doc_observers.retain(|_, (d, _)| d != document);
        self.reported.remove(document);
        for deferred in self.deferred.remove(document).unwrap_or_default() {
            deferred.fail(error());
        }
        for reply in self.fetches.remove(document).unwrap_or_default() {
            let _ = reply.send(Err(error()));
        }
        tombstone
    }

    /// Rewrite the store without what was deleted, off the runtime's thread (reads
    /// and writes wait for it).
    fn vacuum(&self) {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || match store.vacuum() {
            Ok(report) => tracing::info!(
                before = report.bytes_before,
                after = report.bytes_after,
                "store rewritten after a purge"
            ),
            Err(e) => tracing::error!(error = %e, "rewriting the store after a purge failed"),
        });
    }

    fn queue_device_write(&mut self, write: StoreWrite) -> OpId {
        let op = self.device_op();
        self.pending_device_writes.push((op, write));
        op
    }

    fn removal_waiting_on(&self, op: OpId) -> Option<usize> {
        self.removed.iter().position(|(waiting, _)| *waiting == op)
    }

    fn device_op(&mut self) -> OpId {
        self.next_device_op += 1;
        OpId(DEVICE_OP | self.next_device_op)
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::PeerJoined { conn, peer } => {
                if self.current_conn() != Some(conn) {
                    return;
                }
                let server = self
                    .engine
                    .peer_storage_id(conn)
                    .cloned()
                    .or_else(|| StorageId::new(peer.as_str()).ok());
                if let Some(server) = server {
                    self.book.connected(server);
                }
                self.backoff.reset();
                self.all_safe = false;
                tracing::info!(%peer, "connected to the server");
                self.connection.send_replace(Connection::Connected);
            }
            Event::DocumentChanged { document, .. } => {
                if let Some(doc) = self.engine.document(&document) {
                    let observers: Vec<&DocumentObserver> = self
                        .doc_observers
                        .values()
                        .filter(|(d, _)| *d == document)
                        .map(|(_, o)| o)
                        .collect();
                    if !observers.is_empty() {
                        let value = crate::json::to_json(doc);
                        for observer in observers {
                            observer(value.clone());
                        }
                    }
                }
            }
            Event::DocumentStored { document, heads } => {
                self.book.stored(&document, heads);
                self.touched.insert(document.clone());
                for waiter in self.durable.remove(&document).unwrap_or_default() {
                    waiter.finish(Ok(()));
                }
            }
            Event::PeerHeads {
                document,
                conn,
                heads,
            } => {
                if self.current_conn() != Some(conn) {
                    return;
                }
                let heads = self.with_covered_local_heads(&document, heads);
                if let Some(write) = self.book.confirm(&document, heads, SystemTime::now()) {
                    self.queue_device_write(write);
                }
                self.touched.insert(document);
            }
            Event::CaughtUp { conn } => {
                if self.current_conn() == Some(conn) {
                    self.book.caught_up();
                }
            }
            Event::DocumentPurged { document } => {
                let unsynced = self
                    .book
                    .status(&document)
                    .is_some_and(|s| s.status == Status::Pending);
                if unsynced {
                    tracing::warn!(%document, "the server purged a document this device had unsynced changes to; they are dropped with it");
                } else {
                    tracing::info!(%document, "the server purged a document; dropped here too");
                }
                let tombstone = self.drop_local(&document, || Error::Purged(document.to_string()));
                // The organisation wanted it gone: once the delete is stored, the
                // store is rewritten so that no file on the phone keeps its bytes.
                self.vacuum_after.insert(tombstone);
            }
            Event::DocumentUnavailable { document } => {
                for reply in self.fetches.remove(&document).unwrap_or_default() {
                    let _ = reply.send(Err(Error::Unavailable(document.to_string())));
                }
            }
            Event::Quarantined { document, reason } => {
                tracing::error!(%document, %reason, "a stored document does not load");
                let error = || Error::Corrupt {
                    document: document.to_string(),
                    reason: reason.clone(),
                };
                for deferred in self.deferred.remove(&document).unwrap_or_default() {
                    deferred.fail(error());
                }
                for reply in self.fetches.remove(&document).unwrap_or_default() {
                    let _ = reply.send(Err(error()));
                }
            }
            Event::StoreFailed { document, error } => {
                tracing::error!(%document, %error, "a store operation failed");
                for waiter in self.durable.remove(&document).unwrap_or_default() {
                    waiter.finish(Err(Error::Storage(error.clone())));
                }
                for deferred in self.deferred.remove(&document).unwrap_or_default() {
                    deferred.fail(Error::Storage(error.clone()));
                }
            }
            Event::Rejected { conn, reason } => {
                tracing::warn!(conn = conn.0, %reason, "the server's input was refused");
            }
            Event::Stalled { document, conn } => {
                tracing::debug!(%document, conn = conn.0, "a sync stalled and was reset");
            }
            Event::Ephemeral { .. } | Event::Refused { .. } | Event::Opened { .. } => {}
        }
    }

    /// Serve whoever waits on something that is now true. Returns whether a
    /// deferred command ran (and may have given the engine more to do).
    fn settle(&mut self) -> bool {
        let now = Instant::now();
        let ready: Vec<DocumentId> = self
            .deferred
            .keys()
            .filter(|d| self.is_loaded(d))
            .cloned()
            .collect();
        let ran = !ready.is_empty();
        for document in ready {
            for deferred in self.deferred.remove(&document).unwrap_or_default() {
                self.run_deferred(now, &document, deferred);
            }
        }
        let fetched: Vec<DocumentId> = self
            .fetches
            .keys()
            .filter(|d| self.book.safe_now(d))
            .cloned()
            .collect();
        for document in fetched {
            for reply in self.fetches.remove(&document).unwrap_or_default() {
                let _ = reply.send(Ok(()));
            }
        }
        let connected = matches!(self.link, Link::Up { .. })
            && *self.connection.borrow() == Connection::Connected;
        let all_safe = connected && self.book.all_safe_now();
        if all_safe && !self.all_safe {
            if let Some(write) = self.book.mark_synced(SystemTime::now()) {
                self.queue_device_write(write);
            }
            tracing::info!(
                documents = self.book.documents().count(),
                "every document is safe on the server"
            );
        }
        self.all_safe = all_safe;
        if all_safe {
            for reply in self.synced.drain(..) {
                let _ = reply.send(Ok(()));
            }
        }
        ran
    }

    fn report_statuses(&mut self) {
        for document in std::mem::take(&mut self.touched) {
            let Some(status) = self.book.status(&document) else {
                continue;
            };
            if self.reported.get(&document) == Some(&status.status) {
                continue;
            }
            self.reported.insert(document, status.status);
            for observer in self.status_observers.values() {
                observer(status.clone());
            }
        }
    }

    // ----- closing ---------------------------------------------------------------------

    fn begin_close(&mut self, reply: Option<oneshot::Sender<Result<()>>>) {
        tracing::debug!("closing the device");
        if let Link::Up { conn, .. } = self.link {
            // Dropping the sender ends the connection task with a close frame.
            self.link = Link::Closing { conn };
        } else if !matches!(self.link, Link::Closing { .. }) {
            self.link = Link::Off;
        }
        let (reply, placeholder) = match reply {
            Some(reply) => (reply, None),
            None => {
                let (tx, rx) = oneshot::channel();
                (tx, Some(rx))
            }
        };
        drop(placeholder);
        self.closing.push(reply);
    }

    fn finish_close(mut self) {
        self.worker.stop();
        for waiters in std::mem::take(&mut self.durable).into_values() {
            for waiter in waiters {
                waiter.finish(Err(Error::Closed));
            }
        }
        for deferred in std::mem::take(&mut self.deferred).into_values().flatten() {
            deferred.fail(Error::Closed);
        }
        for reply in std::mem::take(&mut self.fetches).into_values().flatten() {
            let _ = reply.send(Err(Error::Closed));
        }
        for reply in self.synced.drain(..) {
            let _ = reply.send(Err(Error::Closed));
        }
        self.connection.send_replace(Connection::Offline);
        tracing::info!("device closed");
        let closing = std::mem::take(&mut self.closing);
        // The store is released when the last reference (this one) goes.
        drop(self);
        for reply in closing {
            let _ = reply.send(Ok(()));
        }
    }
}
