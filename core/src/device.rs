//! The device runtime: an offline-first local repository that syncs with a server
//! whenever it can reach one.
//!
//! A [`Device`] owns a data directory (sled). Every edit is committed there before the
//! call returns, so a process killed right after an edit keeps it. The server's
//! confirmations are recorded per document, so the device always knows which
//! documents are only local, which have changes the server lacks (the outbox) and
//! which are safe on the server, across restarts. When a connection comes up, the
//! engine offers the server one manifest of every stored document, loaded or not, and
//! syncs the ones that differ: offline edits reach the server without anyone opening
//! the document again.
//!
//! The runtime is a tokio task around the sans-IO [`Engine`](crate::sync::Engine); a
//! [`Device`] is a cheap handle that sends it commands.

mod api;
mod backoff;
mod connection;
mod runtime;
mod status_book;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use automerge::transaction::Transaction;
use tokio::sync::{mpsc, oneshot, watch};

use crate::error::{Error, Result};
use crate::id::DocumentId;
use crate::json::JsonPath;

pub use backoff::Backoff;
pub use status_book::{DocumentStatus, Status};

use runtime::{Command, Runtime};

/// How a device is set up.
#[derive(Clone, Debug)]
pub struct DeviceConfig {
    /// The local data directory, created if missing.
    pub data_dir: PathBuf,
    /// The server's WebSocket URL (`ws://…/sync` or `wss://…/sync`); none keeps the
    /// device offline.
    pub server: Option<String>,
    /// Delays between connection attempts.
    pub backoff: Backoff,
    /// How long one connection attempt may take.
    pub connect_timeout: Duration,
    /// A connection that receives nothing (the server pings every 5 s) for this long
    /// is dropped and made again.
    pub idle_timeout: Duration,
    /// A bearer token sent with every connection (`Authorization: Bearer …`).
    pub token: Option<String>,
    /// Certificates (DER) trusted for `wss://` besides the built-in public roots:
    /// an organisation's own certificate authority, or a test's.
    pub extra_roots: Vec<Vec<u8>>,
}

impl DeviceConfig {
    /// A device on `data_dir`, offline until a server is set.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            server: None,
            backoff: Backoff::default(),
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(45),
            token: None,
            extra_roots: Vec::new(),
        }
    }

    /// Sync with the server at this WebSocket URL.
    pub fn with_server(mut self, url: impl Into<String>) -> Self {
        self.server = Some(url.into());
        self
    }

    fn validate(&self) -> Result<()> {
        if let Some(url) = &self.server {
            check_server_url(url)?;
        }
        Ok(())
    }
}

fn check_server_url(url: &str) -> Result<()> {
    if !(url.starts_with("ws://") || url.starts_with("wss://")) {
        return Err(Error::Config(format!(
            "the server url {url:?} must start with ws:// or wss://"
        )));
    }
    Ok(())
}

/// A document as a list shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DocumentSummary {
    /// Its status (and ID).
    pub status: DocumentStatus,
    /// Its coaching kind, if it is a coaching document.
    pub kind: Option<&'static str>,
    /// Its title, name or other label.
    pub title: Option<String>,
    /// When it was last edited, by anyone, if its changes record it.
    pub updated: Option<std::time::SystemTime>,
}

/// Whether the device can reach its server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Connection {
    /// No server is configured.
    Offline,
    /// Trying to connect.
    Connecting,
    /// Connected; the server answered the handshake.
    Connected,
    /// The last attempt failed; the next one is scheduled.
    Waiting {
        /// How many attempts failed in a row.
        failures: u32,
        /// Why the last one failed.
        error: String,
    },
}

/// A document observer: gets the document as JSON, first as it is and then after
/// every change, local or remote. It runs on the device's task: keep it quick.
pub type DocumentObserver = Box<dyn Fn(serde_json::Value) + Send + Sync>;

/// A status observer: gets every document's status at once, then each status that
/// changes. It runs on the device's task: keep it quick.
pub type StatusObserver = Box<dyn Fn(DocumentStatus) + Send + Sync>;

/// An edit of a document, run inside one automerge transaction.
pub type Edit = Box<dyn FnOnce(&mut Transaction<'_>) -> Result<()> + Send>;

/// A running subscription; [`cancel`](Self::cancel) it or drop it to stop.
#[derive(Debug)]
pub struct Subscription {
    id: u64,
    commands: mpsc::UnboundedSender<Command>,
}

impl Subscription {
    /// Stop the observer.
    pub fn cancel(self) {}
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Unsubscribe { id: self.id });
    }
}

/// A handle to a running device. Clones share the device; [`close`](Self::close)
/// stops it cleanly.
#[derive(Clone, Debug)]
pub struct Device {
    commands: mpsc::UnboundedSender<Command>,
    connection: watch::Receiver<Connection>,
    next_id: Arc<AtomicU64>,
}

impl Device {
    /// Open the data directory and start the device; it connects at once if a
    /// server is configured. Fails if the directory cannot be opened (or another
    /// process holds it).
    pub async fn open(config: DeviceConfig) -> Result<Self> {
        config.validate()?;
        let (commands, connection) = Runtime::start(config).await?;
        Ok(Self {
            commands,
            connection,
            next_id: Arc::new(AtomicU64::new(0)),
        })
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<Result<T>>) -> Command) -> Result<T> {
        let (reply, answer) = oneshot::channel();
        self.commands.send(make(reply)).map_err(|_| Error::Closed)?;
        answer.await.map_err(|_| Error::Closed)?
    }

    /// Store a new document holding `initial` (a JSON object); returns its ID once
    /// it is durable on the device. A document whose `schema` names a coaching kind
    /// ([`crate::domain`]) is validated first and written with the kind's types (prose
    /// as mergeable text); an invalid one is refused with every problem and nothing
    /// is stored.
    pub async fn create(&self, initial: serde_json::Value) -> Result<DocumentId> {
        if !initial.is_object() {
            return Err(Error::InvalidJson(
                "a document must be a JSON object".into(),
            ));
        }
        let edit: Edit = if crate::domain::kind_of(&initial).is_ok() {
            let kind = crate::domain::check_new(&initial)?;
            // Stored at the current version.
            let initial = crate::domain::current(&initial);
            Box::new(move |tx| crate::domain::write(tx, kind, &initial))
        } else {
            // Check on a scratch document first: the engine keeps every document it
            // creates, so the edit must not fail there.
            let mut scratch = automerge::Automerge::new();
            scratch
                .transact(|tx| crate::json::put_root(tx, &initial))
                .map_err(|f| f.error)?;
            Box::new(move |tx| crate::json::put_root(tx, &initial))
        };
        self.ask(|reply| Command::Create { edit, reply }).await
    }

    /// Edit a document; returns once the change is durable on the device. An edit
    /// that fails changes nothing.
    pub async fn change(&self, document: &DocumentId, edit: Edit) -> Result<()> {
        let document = document.clone();
        self.ask(|reply| Command::Change {
            document,
            edit,
            reply,
        })
        .await
    }

    /// Set the value at a dot path (`lookFors.engagement`, `notes.2`).
    pub async fn set(
        &self,
        document: &DocumentId,
        path: &JsonPath,
        value: serde_json::Value,
    ) -> Result<()> {
        self.edit_at(document, path, value, |tx, path, value| {
            crate::json::set_path(tx, path, value)
        })
        .await
    }

    /// Append a value to the list at a dot path.
    pub async fn push(
        &self,
        document: &DocumentId,
        path: &JsonPath,
        value: serde_json::Value,
    ) -> Result<()> {
        self.edit_at(document, path, value, |tx, path, value| {
            crate::json::push_path(tx, path, value)
        })
        .await
    }

    async fn edit_at(
        &self,
        document: &DocumentId,
        path: &JsonPath,
        value: serde_json::Value,
        apply: impl FnOnce(&mut Transaction<'_>, &JsonPath, &serde_json::Value) -> Result<()>
        + Send
        + 'static,
    ) -> Result<()> {
        let path = path.clone();
        self.change(
            document,
            Box::new(move |tx| {
                let current = crate::json::to_json(tx);
                match crate::domain::kind_of(&current) {
                    // A coaching document stays valid: the edit is checked against
                    // its kind and written with its types.
                    Ok(kind) => crate::domain::edit(tx, kind, &current, |scratch| {
                        apply(scratch, &path, &value)
                    }),
                    Err(_) => apply(tx, &path, &value),
                }
            }),
        )
        .await
    }

    /// A document's current value as JSON.
    pub async fn value(&self, document: &DocumentId) -> Result<serde_json::Value> {
        Ok(self.value_and_time(document).await?.0)
    }

    /// A document's value and when it was last edited (by anyone, as far as the
    /// changes record it).
    pub async fn value_and_time(
        &self,
        document: &DocumentId,
    ) -> Result<(serde_json::Value, Option<std::time::SystemTime>)> {
        let document = document.clone();
        self.ask(|reply| Command::Value { document, reply }).await
    }

    /// Get a document from the server into the local store, or bring a local one
    /// up to date; returns once it is stored and safe on the server.
    pub async fn fetch(&self, document: &DocumentId) -> Result<()> {
        let document = document.clone();
        self.ask(|reply| Command::Fetch { document, reply }).await
    }

    /// Every document's status, in ID order.
    pub async fn statuses(&self) -> Result<Vec<DocumentStatus>> {
        self.ask(|reply| Command::Statuses { reply }).await
    }

    /// Remove a document from this device (the server and other devices keep it);
    /// later changes to it from the server are ignored, until it is fetched again.
    /// Refused, with nothing removed, while the server lacks some of its changes
    /// (`pending`): they would be lost. A `local-only` document, which the server
    /// never had, is removed for good: deleting it is how a note is discarded.
    pub async fn delete(&self, document: &DocumentId) -> Result<()> {
        let document = document.clone();
        self.ask(|reply| Command::Delete { document, reply }).await
    }

    /// Every document with its status, its coaching kind (if it is one) and a title
    /// to show, in ID order; only documents of `kind` when one is given.
    pub async fn summaries(&self, kind: Option<&str>) -> Result<Vec<DocumentSummary>> {
        let mut out = Vec::new();
        for status in self.statuses().await? {
            let (value, updated) = self.value_and_time(&status.document).await?;
            let doc_kind = crate::domain::kind_of(&value).ok().map(|k| k.name);
            if kind.is_some() && kind != doc_kind {
                continue;
            }
            let title = ["title", "name", "school", "client", "coach"]
                .iter()
                .find_map(|key| value.get(*key).and_then(serde_json::Value::as_str))
                .map(str::to_owned);
            out.push(DocumentSummary {
                status,
                kind: doc_kind,
                title,
                updated,
            });
        }
        Ok(out)
    }

    /// Documents with changes the server has not confirmed.
    pub async fn outbox(&self) -> Result<Vec<DocumentId>> {
        Ok(self
            .statuses()
            .await?
            .into_iter()
            .filter(|s| s.status != Status::SafeOnServer)
            .map(|s| s.document)
            .collect())
    }

    /// Resolve once the server has confirmed, over the current connection, every
    /// document the device holds.
    pub async fn wait_synced(&self) -> Result<()> {
        self.ask(|reply| Command::WaitSynced { reply }).await
    }

    /// Sync with another server from now on, or with none (`None`): the current
    /// connection is closed and the new server is tried at once. What the old server
    /// confirmed confirms nothing on a server with other data.
    pub async fn set_server(&self, url: Option<String>) -> Result<()> {
        if let Some(url) = &url {
            check_server_url(url)?;
        }
        self.ask(|reply| Command::SetServer { url, reply }).await
    }

    /// Send this bearer token from the next connection on (and reconnect now, so it
    /// takes effect); `None` sends none.
    pub async fn set_token(&self, token: Option<String>) -> Result<()> {
        self.ask(|reply| Command::SetToken { token, reply }).await
    }

    /// Give `subject` `access` to a document on the server (`None` takes back what
    /// they were given), through `POST` or `DELETE /api/docs/{id}/grants` with
    /// this device's token. The server decides: only an owner (or, for coaching
    /// content, its client) may, and it answers a document the user cannot see as
    /// missing ([`Error::NotFound`]).
    pub async fn grant(
        &self,
        document: &DocumentId,
        subject: &crate::access::Subject,
        access: Option<crate::access::Access>,
    ) -> Result<()> {
        use crate::access::Subject;
        let target = self.ask(|reply| Command::ApiTarget { reply }).await?;
        let mut body = match subject {
            Subject::User(name) => serde_json::json!({ "user": name }),
            Subject::Group(name) => serde_json::json!({ "group": name }),
        };
        let method = match access {
            Some(access) => {
                body["access"] = access.as_str().into();
                tokio_tungstenite::tungstenite::http::Method::POST
            }
            None => tokio_tungstenite::tungstenite::http::Method::DELETE,
        };
        let path = format!("/api/docs/{document}/grants");
        let answer = api::call(&target, method, &path, Some(body)).await?;
        let message = answer.body["error"]
            .as_str()
            .unwrap_or("no reason given")
            .to_owned();
        match answer.status {
            200 => Ok(()),
            404 => Err(Error::NotFound(message)),
            401 | 403 => Err(Error::Forbidden(message)),
            400 => Err(Error::Access(message)),
            status => Err(Error::Protocol(format!(
                "the server answered {status}: {message}"
            ))),
        }
    }

    /// Connect now instead of waiting out the backoff.
    pub fn sync_now(&self) {
        let _ = self.commands.send(Command::SyncNow);
    }

    /// The connection's state, as it changes.
    pub fn connection(&self) -> watch::Receiver<Connection> {
        self.connection.clone()
    }

    fn subscription(&self) -> Subscription {
        Subscription {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            commands: self.commands.clone(),
        }
    }

    /// Observe a document: `observer` gets its value now and after every change.
    pub async fn subscribe(
        &self,
        document: &DocumentId,
        observer: DocumentObserver,
    ) -> Result<Subscription> {
        let subscription = self.subscription();
        let (id, document) = (subscription.id, document.clone());
        self.ask(|reply| Command::Subscribe {
            id,
            document,
            observer,
            reply,
        })
        .await?;
        Ok(subscription)
    }

    /// Observe statuses: `observer` gets every document's status now, then each
    /// one that changes.
    pub async fn subscribe_status(&self, observer: StatusObserver) -> Result<Subscription> {
        let subscription = self.subscription();
        let id = subscription.id;
        self.ask(|reply| Command::SubscribeStatus {
            id,
            observer,
            reply,
        })
        .await?;
        Ok(subscription)
    }

    /// Stop the device: finish every write, close the connection, release the data
    /// directory. Other handles fail with [`Error::Closed`] afterwards.
    pub async fn close(&self) -> Result<()> {
        self.ask(|reply| Command::Close { reply }).await
    }
}
