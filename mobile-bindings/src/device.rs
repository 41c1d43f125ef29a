//! The `Device` object apps hold, and what it returns.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use coachsync_core::device::Connection;
use coachsync_core::json::JsonPath;
use coachsync_core::{AutomergeUrl, DeviceConfig, DocumentId, DocumentStatus, Status, domain};

use crate::coachsync_error::CoachsyncError;
use crate::dispatcher::dispatch;
use crate::runtime::{block_on, runtime};

type Result<T> = std::result::Result<T, CoachsyncError>;

/// Where a document stands with the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum SyncState {
    /// The server has never confirmed any of it.
    LocalOnly,
    /// The server lacks some local changes.
    Pending,
    /// The server reported heads that contain every local change.
    SafeOnServer,
}

/// A document's status.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct DocStatus {
    /// Where it stands.
    pub state: SyncState,
    /// When the server last confirmed it, in milliseconds since 1970, if ever.
    pub last_sync_ms: Option<i64>,
}

/// A document as a list shows it.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct DocSummary {
    /// Its `automerge:` URL.
    pub url: String,
    /// Its coaching kind, if it is a coaching document.
    pub kind: Option<String>,
    /// Its title, name or other label.
    pub title: Option<String>,
    /// Its status.
    pub status: DocStatus,
    /// When it was last edited, in milliseconds since 1970, if its changes say.
    pub updated_ms: Option<i64>,
}

/// What a sync achieved.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Record)]
pub struct SyncResult {
    /// How many documents are safe on the server.
    pub safe: u32,
    /// The URLs of those that are not (yet).
    pub not_safe: Vec<String>,
}

/// Whether the device reaches its server.
#[derive(Clone, Debug, PartialEq, Eq, uniffi::Enum)]
pub enum ConnectionState {
    /// No server is set.
    Offline,
    /// Connecting.
    Connecting,
    /// Connected.
    Connected,
    /// The last attempt failed; another is scheduled.
    Waiting {
        /// Why the last attempt failed.
        error: String,
    },
}

/// Gets a document's JSON now and after every change.
#[uniffi::export(callback_interface)]
pub trait DocumentListener: Send + Sync {
    /// The document as JSON. An exception thrown here is logged and dropped.
    fn on_change(&self, json: String) -> Result<()>;
}

/// Gets statuses and connectivity now and as they change.
#[uniffi::export(callback_interface)]
pub trait StatusListener: Send + Sync {
    /// A document's status. An exception thrown here is logged and dropped.
    fn on_status(&self, url: String, status: DocStatus) -> Result<()>;
    /// The connection's state. An exception thrown here is logged and dropped.
    fn on_connection(&self, state: ConnectionState) -> Result<()>;
}

/// A running observation; `cancel` stops it (dropping it does too).
#[derive(uniffi::Object)]
pub struct Subscription {
    inner: Mutex<Option<coachsync_core::device::Subscription>>,
    watcher: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

#[uniffi::export]
impl Subscription {
    /// Stop delivering.
    pub fn cancel(&self) {
        if let Ok(mut inner) = self.inner.lock() {
            inner.take();
        }
        if let Ok(mut watcher) = self.watcher.lock()
            && let Some(task) = watcher.take()
        {
            task.abort();
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// A listener that threw: say so in the log and carry on.
fn report(result: Result<()>) {
    if let Err(e) = result {
        tracing::warn!(error = %e, "an app listener failed");
    }
}

fn millis(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn doc_status(status: &DocumentStatus) -> DocStatus {
    DocStatus {
        state: match status.status {
            Status::LocalOnly => SyncState::LocalOnly,
            Status::Pending => SyncState::Pending,
            Status::SafeOnServer => SyncState::SafeOnServer,
        },
        last_sync_ms: status.last_synced.map(millis),
    }
}

fn connection_state(c: &Connection) -> ConnectionState {
    match c {
        Connection::Offline => ConnectionState::Offline,
        Connection::Connecting => ConnectionState::Connecting,
        Connection::Connected => ConnectionState::Connected,
        Connection::Waiting { error, .. } => ConnectionState::Waiting {
            error: error.clone(),
        },
    }
}

fn parse_url(url: &str) -> Result<DocumentId> {
    Ok(url.parse::<AutomergeUrl>()?.document_id)
}

fn parse_json(json: &str) -> Result<serde_json::Value> {
    serde_json::from_str(json)
        .map_err(|e| CoachsyncError::InvalidInput(format!("invalid JSON: {e}")))
}

fn parse_path(path: &str) -> Result<JsonPath> {
    Ok(path.parse::<JsonPath>()?)
}

/// A device: a local store of documents that syncs with a server when it can.
#[derive(uniffi::Object)]
pub struct Device {
    inner: coachsync_core::Device,
}

impl Device {
    async fn change_grant(
        &self,
        document: coachsync_core::DocumentId,
        user: String,
        access: Option<coachsync_core::access::Access>,
    ) -> Result<()> {
        let device = self.inner.clone();
        let task = runtime().spawn(async move {
            let subject = coachsync_core::access::Subject::User(user);
            device
                .grant(&document, &subject, access)
                .await
                .map_err(|e| match e {
                    // Reaching the server, not the request, failed.
                    coachsync_core::Error::Protocol(m) => CoachsyncError::Network(m),
                    other => other.into(),
                })
        });
        task.await
            .map_err(|e| CoachsyncError::Internal(format!("the grant task failed: {e}")))?
    }
}

#[uniffi::export]
impl Device {
    /// Open (or create) the store in `data_dir`; sync with `server_url`
    /// (`wss://…/sync`) when it is given and reachable.
    #[uniffi::constructor]
    pub fn new(data_dir: String, server_url: Option<String>) -> Result<Arc<Self>> {
        let mut config = DeviceConfig::new(data_dir);
        config.server = server_url;
        let inner = block_on(coachsync_core::Device::open(config))?;
        Ok(Arc::new(Self { inner }))
    }

    /// Sync with another server from now on, or with none.
    pub fn set_server(&self, url: Option<String>) -> Result<()> {
        Ok(block_on(self.inner.set_server(url))?)
    }

    /// Send this bearer token with every connection from now on.
    pub fn set_token(&self, token: Option<String>) -> Result<()> {
        Ok(block_on(self.inner.set_token(token))?)
    }

    /// Store a new document; returns its URL once it is on the device's disk. With a
    /// `kind`, the JSON must be a valid coaching document of that kind (its `schema`
    /// and `schemaVersion` are filled in when missing).
    pub fn create(&self, kind: Option<String>, json: String) -> Result<String> {
        let mut value = parse_json(&json)?;
        if let Some(kind) = kind {
            value = domain::as_kind(value, &kind)?;
        }
        let document = block_on(self.inner.create(value))?;
        Ok(document.url().to_string())
    }

    /// A document as JSON (a coaching document at its kind's current version).
    pub fn get(&self, url: String) -> Result<String> {
        let document = parse_url(&url)?;
        let value = block_on(self.inner.value(&document))?;
        Ok(domain::current(&value).to_string())
    }

    /// Set the value at a dot path (`title`, `lookFors.engagement`, `notes.2`).
    pub fn set(&self, url: String, path: String, json: String) -> Result<()> {
        let (document, path, value) = (parse_url(&url)?, parse_path(&path)?, parse_json(&json)?);
        Ok(block_on(self.inner.set(&document, &path, value))?)
    }

    /// Append a value to the list at a dot path.
    pub fn push(&self, url: String, path: String, json: String) -> Result<()> {
        let (document, path, value) = (parse_url(&url)?, parse_path(&path)?, parse_json(&json)?);
        Ok(block_on(self.inner.push(&document, &path, value))?)
    }

    /// Remove a document from this device (the server and other devices keep it);
    /// refused with `InvalidInput` while it has changes the server does not have.
    pub fn delete(&self, url: String) -> Result<()> {
        let document = parse_url(&url)?;
        Ok(block_on(self.inner.delete(&document))?)
    }

    /// The documents on the device, optionally only those of one coaching kind.
    pub fn list(&self, kind: Option<String>) -> Result<Vec<DocSummary>> {
        if let Some(kind) = &kind
            && domain::kind(kind).is_none()
        {
            return Err(coachsync_core::Error::UnknownKind(kind.clone()).into());
        }
        let summaries = block_on(self.inner.summaries(kind.as_deref()))?;
        Ok(summaries
            .into_iter()
            .map(|s| DocSummary {
                url: s.status.document.url().to_string(),
                kind: s.kind.map(str::to_owned),
                title: s.title,
                status: doc_status(&s.status),
                updated_ms: s.updated.map(millis),
            })
            .collect())
    }

    /// A document's status.
    pub fn status(&self, url: String) -> Result<DocStatus> {
        let document = parse_url(&url)?;
        let statuses = block_on(self.inner.statuses())?;
        statuses
            .iter()
            .find(|s| s.document == document)
            .map(doc_status)
            .ok_or_else(|| CoachsyncError::NotFound(format!("no document {url} on this device")))
    }

    /// How many documents have changes the server has not confirmed.
    pub fn pending_count(&self) -> Result<u32> {
        Ok(block_on(self.inner.outbox())?.len() as u32)
    }

    /// Connect now, send every local change and get the server's; returns once every
    /// document is safe on the server, or after `timeout_ms` with those that are not.
    /// Fails with `Network` if the server could not be reached at all.
    pub async fn sync_now(&self, timeout_ms: u64) -> Result<SyncResult> {
        let device = self.inner.clone();
        // The wait needs tokio's timer: it runs on the device's runtime, whatever
        // executor the app awaits this on.
        let task = runtime().spawn(async move {
            device.sync_now();
            let waited =
                tokio::time::timeout(Duration::from_millis(timeout_ms), device.wait_synced()).await;
            let statuses = device.statuses().await?;
            if waited.is_err() {
                let state = device.connection().borrow().clone();
                if let Connection::Waiting { error, .. } = state {
                    return Err(CoachsyncError::Network(error));
                }
                if state != Connection::Connected {
                    return Err(CoachsyncError::Network(format!(
                        "the server was not reached within {timeout_ms} ms"
                    )));
                }
            } else if let Ok(Err(e)) = waited {
                return Err(e.into());
            }
            let not_safe: Vec<String> = statuses
                .iter()
                .filter(|s| s.status != Status::SafeOnServer)
                .map(|s| s.document.url().to_string())
                .collect();
            Ok(SyncResult {
                safe: (statuses.len() - not_safe.len()) as u32,
                not_safe,
            })
        });
        task.await
            .map_err(|e| CoachsyncError::Internal(format!("the sync task failed: {e}")))?
    }

    /// Get a document from the server into the device's store (a URL someone
    /// shared), or bring a local one up to date; returns once it is stored and safe
    /// on the server. `NotFound` if the server does not have it, `Network` if the
    /// server could not be reached within `timeout_ms`.
    pub async fn fetch(&self, url: String, timeout_ms: u64) -> Result<()> {
        let document = parse_url(&url)?;
        let device = self.inner.clone();
        let task = runtime().spawn(async move {
            device.sync_now();
            match tokio::time::timeout(Duration::from_millis(timeout_ms), device.fetch(&document))
                .await
            {
                Ok(result) => Ok(result?),
                Err(_) => Err(CoachsyncError::Network(format!(
                    "{url} was not fetched within {timeout_ms} ms"
                ))),
            }
        });
        task.await
            .map_err(|e| CoachsyncError::Internal(format!("the fetch task failed: {e}")))?
    }

    /// Let a user read (`access` "read") or write ("write") a document this device's
    /// user owns, on the server. `InvalidInput` for a bad access word or a grant the
    /// rules refuse (docs/SECURITY.md), `NotFound` when the server knows no document
    /// this user may see under that URL, `Network` when it cannot be reached.
    pub async fn grant(&self, url: String, user: String, access: String) -> Result<()> {
        let document = parse_url(&url)?;
        let access = coachsync_core::access::Access::parse(&access)?;
        self.change_grant(document, user, Some(access)).await
    }

    /// Take back what a user was granted on a document.
    pub async fn revoke(&self, url: String, user: String) -> Result<()> {
        let document = parse_url(&url)?;
        self.change_grant(document, user, None).await
    }

    /// Observe a document: `listener` gets its JSON now and after every change,
    /// local or remote, on the bindings' callback thread.
    pub fn observe(
        &self,
        url: String,
        listener: Box<dyn DocumentListener>,
    ) -> Result<Arc<Subscription>> {
        let document = parse_url(&url)?;
        let listener: Arc<dyn DocumentListener> = Arc::from(listener);
        let subscription = block_on(self.inner.subscribe(
            &document,
            Box::new(move |value| {
                let listener = listener.clone();
                let json = domain::current(&value).to_string();
                dispatch(move || report(listener.on_change(json)));
            }),
        ))?;
        Ok(Arc::new(Subscription {
            inner: Mutex::new(Some(subscription)),
            watcher: Mutex::new(None),
        }))
    }

    /// Observe statuses and connectivity: `listener` gets every document's status
    /// and the connection's state now, then each change.
    pub fn observe_status(&self, listener: Box<dyn StatusListener>) -> Result<Arc<Subscription>> {
        let listener: Arc<dyn StatusListener> = Arc::from(listener);
        let for_statuses = listener.clone();
        let subscription = block_on(self.inner.subscribe_status(Box::new(move |status| {
            let listener = for_statuses.clone();
            let (url, status) = (status.document.url().to_string(), doc_status(&status));
            dispatch(move || report(listener.on_status(url, status)));
        })))?;
        let mut connection = self.inner.connection();
        let watcher = runtime().spawn(async move {
            loop {
                let state = connection_state(&connection.borrow_and_update());
                let listener = listener.clone();
                dispatch(move || report(listener.on_connection(state)));
                if connection.changed().await.is_err() {
                    return;
                }
            }
        });
        Ok(Arc::new(Subscription {
            inner: Mutex::new(Some(subscription)),
            watcher: Mutex::new(Some(watcher)),
        }))
    }

    /// Finish every write, close the connection and release the data directory;
    /// returns once that is done. (Named so because Kotlin's generated `close()`,
    /// from `AutoCloseable`, only drops the handle: the device then shuts down the
    /// same way, in the background.)
    pub fn shutdown(&self) -> Result<()> {
        Ok(block_on(self.inner.close())?)
    }
}
