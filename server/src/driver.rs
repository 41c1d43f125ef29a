//! The driver: one task that owns the sync engine, feeds it frames, timers and store
//! results, and carries out what it asks for.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use coachsync_core::access::{
    ACCESS_KEY_PREFIX, Access, AccessChange, PURGED_KEY_PREFIX, Principal, Subject, UserRole, Who,
};
use coachsync_core::store::{Store, StoreWorker, StoreWrite, VacuumReport};
use coachsync_core::sync::{ConnId, Engine, EngineConfig, Event, OpId, Output, Role};
use coachsync_core::{DocumentId, PeerId, Result as CoreResult};
use tokio::sync::{mpsc, oneshot};

use crate::audit::{AuditLog, Record};
use crate::config::Config;
use crate::metrics::Metrics;

/// Operations the driver numbers itself (its own store writes) carry this bit, so
/// that they never collide with the engine's.
const DRIVER_OP: u64 = 1 << 63;

/// Who a connection authenticated as, for ending its session when its token is
/// revoked.
#[derive(Clone, Debug)]
pub struct Session {
    /// The identity.
    pub who: Who,
    /// The id of the token it used, if any.
    pub token_id: Option<String>,
    /// The peer's address, for the audit log.
    pub from: String,
}

/// A grant or revoke asked for through the API.
#[derive(Debug)]
pub struct GrantRequest {
    /// Who asks.
    pub granter: Principal,
    /// The document.
    pub document: DocumentId,
    /// Whom it is for.
    pub subject: Subject,
    /// The subject's role, when the subject is a user.
    pub subject_role: Option<UserRole>,
    /// What to give; `None` revokes.
    pub access: Option<Access>,
    /// Where the request came from.
    pub from: String,
    /// Answered once the change is durable (or refused).
    pub reply: oneshot::Sender<CoreResult<()>>,
}

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
        /// Who it authenticated as.
        session: Session,
    },
    /// Close the connections that used these tokens or belong to these users.
    EndSessions {
        /// Token ids.
        tokens: Vec<String>,
        /// User names.
        users: Vec<String>,
    },
    /// Grant or revoke access to a document.
    Grant(GrantRequest),
    /// A departing user's documents pass to another user; answered with how many
    /// once the records are durable.
    Transfer {
        /// Who leaves.
        from: String,
        /// Who takes over.
        to: Principal,
        /// The answer.
        reply: oneshot::Sender<CoreResult<usize>>,
    },
    /// Purge documents for good (`by` is who asked, for the audit log); answered
    /// once the purge is durable and the store's files no longer hold them.
    Purge {
        /// The documents.
        documents: Vec<DocumentId>,
        /// Who asked.
        by: String,
        /// Where from.
        from: String,
        /// The answer.
        reply: oneshot::Sender<CoreResult<VacuumReport>>,
    },
    /// The documents a user may read: ID, kind, class, relationship, owner, access.
    Readable {
        /// The user.
        user: Principal,
        /// The answer, as the API gives it.
        reply: oneshot::Sender<Vec<serde_json::Value>>,
    },
    /// Whether a user may read a document's access log.
    MaySeeLog {
        /// The user.
        user: Principal,
        /// The document.
        document: DocumentId,
        /// The answer.
        reply: oneshot::Sender<bool>,
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
    /// Another server sharing the database stored changes of a document.
    StoredElsewhere {
        /// The document.
        document: DocumentId,
        /// Its heads after that.
        heads: Vec<automerge::ChangeHash>,
    },
    /// Notices from the other servers may have been missed: reread what is in memory.
    StoreResync,
    /// Another server changed a record the engine keeps (an access record, a
    /// relationship, a purge record): read it and apply it here.
    RecordChanged {
        /// The record's key.
        key: String,
    },
    /// A record read for [`DriverMsg::RecordChanged`]: its value, or `None` if gone.
    RecordLoaded {
        /// The key.
        key: String,
        /// The value.
        value: Option<Vec<u8>>,
    },
    /// Append an entry to the audit log with the next group commit.
    Audit(Record),
    /// A coaching relationship was added or changed (already stored).
    Relationship(coachsync_core::access::Relationship),
    /// Stop: close every connection, finish pending writes, return.
    Shutdown,
}

/// A handle to send the driver messages.
pub type DriverHandle = mpsc::Sender<DriverMsg>;

/// From a blocking thread (an admin command), ask the driver something and wait
/// for its answer.
pub fn ask_blocking<T>(
    driver: &DriverHandle,
    request: impl FnOnce(oneshot::Sender<T>) -> DriverMsg,
) -> crate::Result<T> {
    let stopping = || crate::Error::Usage("the server is stopping".into());
    let (reply, answer) = oneshot::channel();
    driver
        .blocking_send(request(reply))
        .map_err(|_| stopping())?;
    answer.blocking_recv().map_err(|_| stopping())
}

/// The driver's state.
pub struct Driver {
    engine: Engine,
    conns: HashMap<ConnId, mpsc::Sender<Outbound>>,
    sessions: HashMap<ConnId, Session>,
    audit: Arc<AuditLog>,
    /// API calls waiting for their write to be durable.
    replies: HashMap<OpId, oneshot::Sender<CoreResult<()>>>,
    /// Document transfers waiting for their last write: how many moved.
    transfers: HashMap<OpId, (usize, oneshot::Sender<CoreResult<usize>>)>,
    /// Purges waiting for their last write, then for the store's vacuum.
    purges: HashMap<OpId, oneshot::Sender<CoreResult<VacuumReport>>>,
    next_op: u64,
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
        audit: Arc<AuditLog>,
    ) -> crate::Result<(Self, DriverHandle)> {
        let storage_id = store.storage_id();
        let peer_id =
            PeerId::new(&format!("coachsync-{storage_id}")).expect("a short, non-empty id");
        let mut engine_config = EngineConfig::new(Role::Server, peer_id, Some(storage_id));
        engine_config.evict_after = config.evict_after;
        engine_config.max_document_bytes = config.max_document_bytes;
        engine_config.max_documents_per_user = config.max_documents_per_user;
        engine_config.max_bytes_per_user = config.max_bytes_per_user;
        let mut engine = Engine::new(engine_config);
        let skipped = engine.restore_access(store.meta(ACCESS_KEY_PREFIX)?);
        engine.restore_sizes(store.document_sizes()?);
        engine.restore_purged(store.meta(PURGED_KEY_PREFIX)?);
        let skipped_relationships = engine
            .restore_relationships(store.meta(coachsync_core::access::RELATIONSHIP_KEY_PREFIX)?);
        if skipped_relationships > 0 {
            tracing::error!(
                skipped_relationships,
                "some relationship records do not decode; their documents keep owner and grants only"
            );
        }
        if skipped > 0 {
            tracing::error!(
                skipped,
                "some access records do not decode; their documents stay closed"
            );
        }
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
        Ok((
            Self {
                engine,
                conns: HashMap::new(),
                sessions: HashMap::new(),
                audit,
                replies: HashMap::new(),
                transfers: HashMap::new(),
                purges: HashMap::new(),
                next_op: 0,
                inbox,
                store,
                worker,
                metrics,
                handle: handle.clone(),
            },
            handle,
        ))
    }

    fn driver_op(&mut self) -> OpId {
        self.next_op += 1;
        OpId(DRIVER_OP | self.next_op)
    }

    /// The write of an audit entry, numbered for the store worker.
    fn audit(&mut self, record: Record) -> (OpId, StoreWrite) {
        (self.driver_op(), self.audit.write(record))
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
        self.engine
            .handle_wall_clock(coachsync_core::utc::unix_ms());
        match msg {
            DriverMsg::Connected {
                conn,
                outbound,
                session,
            } => {
                self.conns.insert(conn, outbound);
                self.metrics.connections.inc();
                self.engine
                    .handle_connect_as(now, conn, session.who.clone());
                self.sessions.insert(conn, session);
            }
            DriverMsg::EndSessions { tokens, users } => {
                let ended: Vec<ConnId> = self
                    .sessions
                    .iter()
                    .filter(|(_, s)| {
                        s.token_id.as_ref().is_some_and(|t| tokens.contains(t))
                            || s.who.user().is_some_and(|u| users.contains(&u.name))
                    })
                    .map(|(c, _)| *c)
                    .collect();
                for conn in ended {
                    self.sessions.remove(&conn);
                    if let Some(tx) = self.conns.remove(&conn) {
                        self.metrics.connections.dec();
                        let _ = tx.try_send(Outbound::Close {
                            code: axum::extract::ws::close_code::POLICY,
                            reason: "the session's token was revoked or its user changed".into(),
                        });
                    }
                    self.engine.handle_disconnect(now, conn);
                }
            }
            DriverMsg::Grant(request) => self.grant(now, request),
            DriverMsg::Transfer { from, to, reply } => {
                let writes = self.engine.transfer_documents(now, &from, &to);
                let moved = writes.len();
                let batch: Vec<(OpId, StoreWrite)> =
                    writes.into_iter().map(|w| (self.driver_op(), w)).collect();
                // One batch is one group commit: the answer waits for its last write.
                match batch.last() {
                    Some((last, _)) => {
                        self.transfers.insert(*last, (moved, reply));
                        self.worker.submit(batch);
                    }
                    None => {
                        let _ = reply.send(Ok(0));
                    }
                }
                self.flush_outputs();
            }
            DriverMsg::Purge {
                documents,
                by,
                from,
                reply,
            } => self.purge(now, documents, by, from, reply),
            DriverMsg::Readable { user, reply } => {
                let listed = self
                    .engine
                    .access()
                    .readable_by(&user)
                    .into_iter()
                    .map(|(document, record, access)| {
                        serde_json::json!({
                            "id": document.to_string(),
                            "url": format!("automerge:{document}"),
                            "kind": record.kind,
                            "class": record.visibility.map(|v| v.as_str()),
                            "relationship": record.relationship,
                            "group": record.group,
                            "owner": record.owner,
                            "access": access.as_str(),
                            "createdMs": record.created_ms,
                        })
                    })
                    .collect();
                let _ = reply.send(listed);
            }
            DriverMsg::MaySeeLog {
                user,
                document,
                reply,
            } => {
                let _ = reply.send(self.engine.access().may_see_log(&user, &document));
            }
            DriverMsg::Relationship(relationship) => {
                self.engine.handle_relationship(now, relationship);
            }
            DriverMsg::StoredElsewhere { document, heads } => {
                self.engine.handle_stored_elsewhere(now, &document, &heads);
            }
            DriverMsg::StoreResync => self.engine.handle_store_resync(now),
            DriverMsg::RecordChanged { key } => self.read(move |store| {
                let value = store
                    .meta(&key)
                    .map(|found| found.into_iter().find(|(k, _)| *k == key).map(|(_, v)| v));
                match value {
                    Ok(value) => DriverMsg::RecordLoaded { key, value },
                    Err(e) => {
                        tracing::error!(%key, error = %e, "cannot read a record another server changed");
                        DriverMsg::RecordLoaded { key, value: None }
                    }
                }
            }),
            DriverMsg::RecordLoaded { key, value } => self.apply_record(now, &key, value),
            DriverMsg::Audit(record) => {
                let write = self.audit(record);
                self.worker.submit(vec![write]);
            }
            DriverMsg::Frame { conn, bytes } => {
                self.metrics.messages_in.inc();
                self.metrics.bytes_in.inc_by(bytes.len() as u64);
                self.engine.handle_frame(now, conn, &bytes);
            }
            DriverMsg::Disconnected { conn } => {
                self.sessions.remove(&conn);
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
                    if op.0 & DRIVER_OP == 0 {
                        self.engine.handle_commit(now, op, result);
                    } else if let Some(reply) = self.replies.remove(&op) {
                        let _ = reply.send(result);
                    } else if let Some((moved, reply)) = self.transfers.remove(&op) {
                        let _ = reply.send(result.map(|()| moved));
                    } else if let Some(reply) = self.purges.remove(&op) {
                        match result {
                            Ok(()) => {
                                let store = self.store.clone();
                                tokio::task::spawn_blocking(move || {
                                    let _ = reply.send(store.vacuum());
                                });
                            }
                            Err(e) => {
                                let _ = reply.send(Err(e));
                            }
                        }
                    } else if let Err(e) = result {
                        tracing::error!(error = %e, "an audit entry was not stored");
                    }
                }
            }
            DriverMsg::Shutdown => {}
        }
    }

    /// Purge documents: the engine lets go of them and tells their peers, then one
    /// batch deletes them, leaves purge records and audits each; once it is
    /// durable, the store is vacuumed so no file holds their bytes.
    fn purge(
        &mut self,
        now: Instant,
        documents: Vec<DocumentId>,
        by: String,
        from: String,
        reply: oneshot::Sender<CoreResult<VacuumReport>>,
    ) {
        let mut batch = Vec::new();
        for document in &documents {
            for write in self.engine.purge(now, document, &by) {
                batch.push((self.driver_op(), write));
            }
            batch.push(self.audit(Record {
                who: by.clone(),
                action: "purge",
                document: Some(document.to_string()),
                subject: None,
                from: Some(from.clone()),
                detail: None,
            }));
        }
        match batch.last() {
            Some((last, _)) => {
                self.purges.insert(*last, reply);
                self.worker.submit(batch);
            }
            None => {
                let _ = reply.send(Ok(VacuumReport::default()));
            }
        }
        self.flush_outputs();
    }

    /// Grant or revoke; the answer waits for the record (and its audit entry) to be
    /// durable. A refusal is audited too.
    fn grant(&mut self, now: Instant, request: GrantRequest) {
        let GrantRequest {
            granter,
            document,
            subject,
            subject_role,
            access,
            from,
            reply,
        } = request;
        let result = match access {
            Some(access) => {
                self.engine
                    .grant(&granter, &document, subject.clone(), subject_role, access)
            }
            None => self.engine.revoke(now, &granter, &document, &subject),
        };
        let (action, detail) = match (&result, access) {
            (Ok(_), Some(access)) => ("grant", access.as_str().to_owned()),
            (Ok(_), None) => ("revoke", String::new()),
            (Err(e), _) => ("refused-grant", e.to_string()),
        };
        let audit = self.audit(Record {
            who: granter.name.clone(),
            action,
            document: Some(document.to_string()),
            subject: Some(subject.to_string()),
            from: Some(from),
            detail: (!detail.is_empty()).then_some(detail),
        });
        match result {
            Ok(AccessChange { write }) => {
                let op = self.driver_op();
                self.replies.insert(op, reply);
                self.worker.submit(vec![(op, write), audit]);
            }
            Err(e) => {
                self.worker.submit(vec![audit]);
                let _ = reply.send(Err(e));
            }
        }
        self.flush_outputs();
    }

    /// Carry out everything the engine asked for. Consecutive commits go to the
    /// store worker as one batch, with the audit entries of refusals among them.
    fn flush_outputs(&mut self) {
        let mut batch = Vec::new();
        while let Some(out) = self.engine.poll_output() {
            match out {
                Output::Commit { op, write } => {
                    batch.push((op, write));
                    continue;
                }
                Output::Event(Event::Opened {
                    conn,
                    who,
                    document,
                }) => {
                    let from = self.sessions.get(&conn).map(|s| s.from.clone());
                    batch.push(self.audit(Record {
                        who,
                        action: "open",
                        document: Some(document.to_string()),
                        from,
                        ..Record::default()
                    }));
                    continue;
                }
                Output::Event(Event::Refused {
                    conn,
                    who,
                    document,
                    action,
                }) => {
                    self.metrics.refused.inc();
                    let from = self.sessions.get(&conn).map(|s| s.from.clone());
                    batch.push(self.audit(Record {
                        who,
                        action: match action {
                            "write" => "refused-write",
                            "create" => "refused-create",
                            _ => "refused-read",
                        },
                        document: Some(document.to_string()),
                        subject: None,
                        from,
                        detail: None,
                    }));
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

    /// Apply a record another server changed: the engine's copy follows the store's.
    fn apply_record(&mut self, now: Instant, key: &str, value: Option<Vec<u8>>) {
        let document = |prefix: &str| {
            key.strip_prefix(prefix)
                .and_then(|id| id.parse::<DocumentId>().ok())
        };
        if let (Some(doc), Some(value)) = (document(ACCESS_KEY_PREFIX), &value) {
            self.engine
                .restore_access([(key.to_owned(), value.clone())]);
            self.engine.handle_access_changed(now, &doc);
        } else if let (Some(doc), Some(value)) = (document(PURGED_KEY_PREFIX), &value) {
            // Already stored by the server that purged it: only memory and this
            // server's peers are left to update.
            let by = serde_json::from_slice::<coachsync_core::access::Purged>(value)
                .map(|p| p.by)
                .unwrap_or_default();
            let _stored_elsewhere = self.engine.purge(now, &doc, &by);
        } else if key.starts_with(coachsync_core::access::RELATIONSHIP_KEY_PREFIX)
            && let Some(value) = &value
        {
            match serde_json::from_slice::<coachsync_core::access::Relationship>(value) {
                Ok(relationship) => self.engine.handle_relationship(now, relationship),
                Err(e) => {
                    tracing::error!(%key, error = %e, "a relationship record does not decode")
                }
            }
        }
        self.flush_outputs();
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
            | Event::Refused { .. }
            | Event::Opened { .. }
            | Event::DocumentStored { .. }
            | Event::PeerHeads { .. }
            | Event::CaughtUp { .. }
            | Event::DocumentUnavailable { .. }
            | Event::DocumentPurged { .. }
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
