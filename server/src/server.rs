//! Starting and stopping the whole server.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::serve::ListenerExt;
use coachsync_core::StorageId;
use coachsync_core::store::{SledOptions, SledStore, Store};
use tokio::net::TcpListener;

use crate::accounts::{Accounts, SharedAccounts};
use crate::admin::Admin;
use crate::audit::AuditLog;
use crate::config::Config;
use crate::driver::{Driver, DriverMsg};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::pg_store::{Notice, PgOptions, PostgresStore};
use crate::rate_limit::RateLimits;
use crate::routes::{AppState, router};
use crate::ws::ConnLimits;

/// A server that has opened its store and bound its port.
pub struct Server {
    config: Config,
    listener: TcpListener,
    store: Arc<dyn Store>,
    accounts: SharedAccounts,
    audit: Arc<AuditLog>,
    admin_socket: Option<tokio::net::UnixListener>,
    /// With PostgreSQL, the lock that keeps a second server off this data directory
    /// (sled's own lock does it otherwise).
    _data_dir_lock: Option<std::fs::File>,
    /// With PostgreSQL, what the other servers sharing the database store.
    notices: Option<tokio::sync::mpsc::UnboundedReceiver<Notice>>,
    metrics: Arc<Metrics>,
}

impl Server {
    /// Open the store (in the data directory, or in PostgreSQL with
    /// `--database-url`) and bind the listening socket.
    pub async fn bind(config: Config) -> Result<Self> {
        let OpenedStore {
            store,
            data_dir_lock,
            notices,
            metrics,
        } = open_store(&config).await?;
        let accounts = Accounts::load(store.as_ref())?;
        let audit = if config.database_url.is_some() {
            AuditLog::open_shared(store.as_ref())?
        } else {
            AuditLog::open(store.as_ref())?
        };
        // After the store (or, with PostgreSQL, the directory's lock file): the lock
        // proves no other server uses this directory, so a socket file found there is
        // stale.
        // A file system without sockets (some FUSE mounts) leaves the server without
        // one: it still serves, and admin commands wait for it to stop.
        let admin_socket = match crate::admin::bind_socket(&config.data_dir) {
            Ok(socket) => Some(socket),
            Err(e) => {
                tracing::warn!(error = %e, "no admin socket; admin commands work only while the server is stopped");
                None
            }
        };
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: config.listen,
                source,
            })?;
        Ok(Self {
            config,
            listener,
            store,
            accounts: Arc::new(std::sync::RwLock::new(accounts)),
            audit: Arc::new(audit),
            admin_socket,
            _data_dir_lock: data_dir_lock,
            notices,
            metrics,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> Result<SocketAddr> {
        Ok(self.listener.local_addr()?)
    }

    /// Serve until `shutdown` resolves, then stop cleanly: stop accepting, close
    /// connections, finish pending writes.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send + 'static) -> Result<()> {
        let addr = self.local_addr()?;
        let metrics = self.metrics.clone();
        let (driver, handle) = Driver::new(
            &self.config,
            self.store.clone(),
            metrics.clone(),
            self.audit.clone(),
        )?;
        let driver_task = tokio::spawn(driver.run());
        // Other servers sharing the database: their changes reach this one's peers.
        let notices_task = self.notices.map(|mut notices| {
            let driver = handle.clone();
            let store = self.store.clone();
            let accounts = self.accounts.clone();
            let audit = self.audit.clone();
            tokio::spawn(async move {
                while let Some(notice) = notices.recv().await {
                    let msg = match notice {
                        Notice::Record { key } if key.starts_with(crate::audit::AUDIT_PREFIX) => {
                            audit.saw(&key);
                            continue;
                        }
                        Notice::Stored { document, heads } => {
                            DriverMsg::StoredElsewhere { document, heads }
                        }
                        Notice::Resync => DriverMsg::StoreResync,
                        Notice::Record { key } if crate::accounts::is_account_key(&key) => {
                            let ended = reload_accounts(&store, &accounts).await;
                            DriverMsg::EndSessions {
                                tokens: ended.0,
                                users: ended.1,
                            }
                        }
                        Notice::Record { key } if engine_record(&key) => {
                            DriverMsg::RecordChanged { key }
                        }
                        // Audit entries and the like: nothing to apply here.
                        Notice::Record { .. } => continue,
                    };
                    if driver.send(msg).await.is_err() {
                        return;
                    }
                }
            })
        });
        let public_url = self
            .config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{addr}"));
        let admin = Admin {
            accounts: self.accounts.clone(),
            store: self.store.clone(),
            audit: self.audit.clone(),
            driver: Some(handle.clone()),
            public_url: public_url.clone(),
        };
        let admin_task = self
            .admin_socket
            .map(|socket| tokio::spawn(crate::admin::serve_socket(socket, admin)));
        let state = AppState {
            driver: handle.clone(),
            metrics,
            limits: ConnLimits {
                queue_len: self.config.queue_len,
                idle_timeout: self.config.idle_timeout,
                ping_interval: self.config.ping_interval,
            },
            max_frame_bytes: self.config.max_frame_bytes,
            accounts: self.accounts.clone(),
            allow_anonymous: self.config.allow_anonymous,
            store: self.store.clone(),
            rates: RateLimits::new(self.config.connection_rate, self.config.user_rate),
            login_refusals: Default::default(),
            jwt: self.config.jwt.clone().map(Arc::new),
            app: self.config.app.clone(),
            audit_log: self.audit.clone(),
        };
        if !state.app.is_present() {
            tracing::warn!("this server was built without the coach app: / says so");
        }
        tracing::info!("the coach app: {public_url}/");
        match &self.config.database_url {
            Some(url) => {
                tracing::info!(database = %url, data_dir = %self.config.data_dir.display(), storage_id = %self.store.storage_id(), "store open in PostgreSQL")
            }
            None => {
                tracing::info!(data_dir = %self.config.data_dir.display(), storage_id = %self.store.storage_id(), "store open")
            }
        }
        tracing::info!("listening on {addr}");
        if self.config.allow_anonymous {
            tracing::warn!(
                "--allow-anonymous: connections without a token are accepted; for local demos and tests only, never on a network"
            );
        }
        if self.accounts.read().expect("accounts lock").is_empty() {
            let database = if self.config.database_url.is_some() {
                " --database-url URL"
            } else {
                ""
            };
            tracing::info!(
                "no users yet; create the first admin with: coachsync admin user add --data-dir {}{database} --name NAME --role admin",
                self.config.data_dir.display()
            );
        }
        let retention_task = tokio::spawn(crate::purge::retain_private_notes(
            self.store.clone(),
            self.accounts.clone(),
            self.audit.clone(),
            handle.clone(),
            self.config.private_notes_retention,
        ));
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let driver_for_shutdown = handle.clone();
        let grace = self.config.shutdown_grace;
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("stopping: no new connections");
            // The driver closes every connection, which lets axum's graceful shutdown
            // finish; then it waits for the store.
            let _ = driver_for_shutdown.send(DriverMsg::Shutdown).await;
            let _ = stop_tx.send(());
        });
        // Replies are often several small frames in a row (a sync, then
        // doc-unavailable): without TCP_NODELAY, Nagle's algorithm holds the second
        // one until the client's delayed ACK, about 40 ms later.
        let listener = self.listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!(error = %e, "cannot set TCP_NODELAY");
            }
        });
        let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stop_rx.await;
        });
        drop(handle);
        serve.await?;
        retention_task.abort();
        if let Some(task) = notices_task {
            task.abort();
        }
        if let Some(task) = admin_task {
            task.abort();
            let _ = std::fs::remove_file(crate::admin::socket_path(&self.config.data_dir));
        }
        match tokio::time::timeout(grace, driver_task).await {
            Ok(Ok(())) => tracing::info!("stopped cleanly"),
            Ok(Err(e)) => tracing::error!(error = %e, "the driver failed"),
            Err(_) => tracing::error!("the driver did not stop in time"),
        }
        Ok(())
    }
}

/// A new store's storage ID.
pub(crate) fn new_storage_id() -> StorageId {
    StorageId::new(&uuid::Uuid::new_v4().to_string()).expect("a uuid is a valid id")
}

/// An open store and what comes with it.
struct OpenedStore {
    store: Arc<dyn Store>,
    /// With PostgreSQL, the data directory's lock.
    data_dir_lock: Option<std::fs::File>,
    /// With PostgreSQL, the other servers' notices.
    notices: Option<tokio::sync::mpsc::UnboundedReceiver<Notice>>,
    /// The server's metrics, with the database's when there is one.
    metrics: Arc<Metrics>,
}

/// Open the configured store. With PostgreSQL the data directory is still created
/// (for the admin socket) and locked, so that a second server started on it by
/// mistake is refused rather than taking over the socket.
async fn open_store(config: &Config) -> Result<OpenedStore> {
    let config = config.clone();
    tokio::task::spawn_blocking(move || -> Result<OpenedStore> {
        match &config.database_url {
            Some(url) => {
                let lock = lock_data_dir(&config.data_dir)?;
                let store = PostgresStore::open(url, &PgOptions::default(), new_storage_id)?;
                let metrics = Arc::new(Metrics::with_database());
                metrics.database.probe_pool(store.pool_probe());
                let notices = store.listen(metrics.clone());
                Ok(OpenedStore {
                    store: Arc::new(store),
                    data_dir_lock: Some(lock),
                    notices: Some(notices),
                    metrics,
                })
            }
            None => {
                let options = SledOptions {
                    cache_capacity: config.cache_bytes,
                };
                let store = SledStore::open(&config.data_dir, &options, new_storage_id)?;
                Ok(OpenedStore {
                    store: Arc::new(store),
                    data_dir_lock: None,
                    notices: None,
                    metrics: Arc::new(Metrics::new()),
                })
            }
        }
    })
    .await
    .map_err(|e| Error::Config(format!("opening the store panicked: {e}")))?
}

/// The lock file a server holds in its data directory when the store is elsewhere.
const DATA_DIR_LOCK: &str = "server.lock";

/// Create the data directory and take its lock, or say who holds it.
fn lock_data_dir(dir: &std::path::Path) -> Result<std::fs::File> {
    std::fs::create_dir_all(dir).map_err(|e| {
        Error::Config(format!(
            "cannot create the data directory {}: {e}",
            dir.display()
        ))
    })?;
    let path = dir.join(DATA_DIR_LOCK);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| Error::Config(format!("cannot open {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Config(format!(
            "the data directory {} is in use by another server",
            dir.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(Error::Config(format!(
            "cannot lock {}: {e}",
            path.display()
        ))),
    }
}

/// Read the accounts again after another server changed them, and say whose
/// sessions end: tokens that are gone, and users whose role, groups or standing
/// changed (connections carry what they started with).
async fn reload_accounts(
    store: &Arc<dyn Store>,
    accounts: &SharedAccounts,
) -> (Vec<String>, Vec<String>) {
    let store = store.clone();
    let reloaded = match tokio::task::spawn_blocking(move || Accounts::load(store.as_ref())).await {
        Ok(Ok(reloaded)) => reloaded,
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot reread accounts another server changed");
            return (Vec::new(), Vec::new());
        }
        Err(e) => {
            tracing::error!(error = %e, "rereading accounts panicked");
            return (Vec::new(), Vec::new());
        }
    };
    let mut current = accounts.write().expect("accounts lock");
    let ended = current.differences(&reloaded);
    *current = reloaded;
    ended
}

/// Whether a record is one the engine keeps a copy of.
fn engine_record(key: &str) -> bool {
    [
        coachsync_core::access::ACCESS_KEY_PREFIX,
        coachsync_core::access::RELATIONSHIP_KEY_PREFIX,
        coachsync_core::access::PURGED_KEY_PREFIX,
    ]
    .iter()
    .any(|prefix| key.starts_with(prefix))
}
