//! A site for end-to-end tests of access control: a `coachsync serve` that
//! requires tokens, its users and their tokens, and helpers to drive it.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use coachsync_core::device::Backoff;
use coachsync_core::{Device, DeviceConfig, DocumentId};
use serde_json::{Value, json};

use crate::{ServerProcess, admin};

/// How long a test waits for something that should happen.
pub const WAIT: Duration = Duration::from_secs(20);

/// A device's settings for tests: in `dir`, syncing with `server` if given, retrying
/// it quickly and giving up on a connection attempt after 2 s.
pub fn device_config(dir: &Path, server: Option<&str>) -> DeviceConfig {
    let mut config = DeviceConfig::new(dir);
    if let Some(url) = server {
        config = config.with_server(url);
    }
    config.backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(500), 0.5);
    config.connect_timeout = Duration::from_secs(2);
    config
}

/// A server that requires tokens, and the tokens of the users it knows.
pub struct Site {
    running: Option<ServerProcess>,
    _dir: tempfile::TempDir,
    tokens: std::collections::HashMap<String, String>,
    /// The PostgreSQL database holding the store, if not the data directory.
    database_url: Option<String>,
}

impl Site {
    /// Users added before the server starts (the store is opened directly), and
    /// then one more through the running server's admin socket.
    pub fn start(users: &[(&str, &str)], extra: &[&str]) -> Result<Self> {
        Self::start_on(users, extra, None)
    }

    /// [`start`](Self::start) with the store in this PostgreSQL database.
    pub fn start_with_database(
        users: &[(&str, &str)],
        extra: &[&str],
        database_url: &str,
    ) -> Result<Self> {
        Self::start_on(users, extra, Some(database_url.to_owned()))
    }

    fn start_on(
        users: &[(&str, &str)],
        extra: &[&str],
        database_url: Option<String>,
    ) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let mut tokens = std::collections::HashMap::new();
        let with_db = |args: &[&str]| -> Vec<String> {
            let mut all: Vec<String> = args.iter().map(|a| a.to_string()).collect();
            if let Some(url) = &database_url {
                all.extend(["--database-url".to_owned(), url.clone()]);
            }
            all
        };
        let add = |name: &str, role: &str| {
            let args = with_db(&["user", "add", "--name", name, "--role", role]);
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            admin(dir.path(), &args)
        };
        let (late, early) = users.split_last().context("at least one user")?;
        for (name, role) in early {
            tokens.insert(name.to_string(), add(name, role)?);
        }
        let flags = with_db(extra);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let server = ServerProcess::start_secure(dir.path(), &flags)?;
        tokens.insert(late.0.to_string(), add(late.0, late.1)?);
        Ok(Self {
            running: Some(server),
            _dir: dir,
            tokens,
            database_url,
        })
    }

    /// SIGKILL the server and start a new one on the same data directory.
    pub fn restart(&mut self) -> Result<()> {
        self.restart_with(&[])
    }

    /// [`restart`](Self::restart) with these flags.
    pub fn restart_with(&mut self, extra: &[&str]) -> Result<()> {
        let old = self.running.take().context("a server runs")?;
        let dir = old.data_dir().to_owned();
        old.kill()?;
        let mut flags: Vec<&str> = extra.to_vec();
        if let Some(url) = &self.database_url {
            flags.extend(["--database-url", url.as_str()]);
        }
        self.running = Some(ServerProcess::start_secure(&dir, &flags)?);
        Ok(())
    }

    /// The running server.
    pub fn server(&self) -> &ServerProcess {
        self.running
            .as_ref()
            .expect("a server runs between restarts")
    }

    /// A user's token.
    pub fn token(&self, user: &str) -> &str {
        &self.tokens[user]
    }

    /// A device of `user` in `dir`, syncing with the server.
    pub async fn device(&self, dir: &Path, user: &str) -> Result<Device> {
        let mut config = device_config(dir, Some(&self.server().sync_url()));
        config.token = Some(self.token(user).to_owned());
        Ok(Device::open(config).await?)
    }

    /// `POST` (or `DELETE`) `/api/docs/{id}/grants` as `user`.
    pub async fn grants(
        &self,
        method: &str,
        user: &str,
        document: &DocumentId,
        body: Value,
    ) -> Result<(u16, Value)> {
        let (status, body) = self
            .server()
            .http(
                method,
                &format!("/api/docs/{document}/grants"),
                Some(self.token(user)),
                Some(&body.to_string()),
            )
            .await?;
        Ok((status, serde_json::from_str(&body).unwrap_or(Value::Null)))
    }

    /// The audit log once `done` holds of it (entries are written with the next
    /// group commit, a moment after what they record).
    pub async fn audit_until(
        &self,
        admin_user: &str,
        done: impl Fn(&[Value]) -> bool,
    ) -> Result<Vec<Value>> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let audit = self.audit(admin_user).await?;
            if done(&audit) {
                return Ok(audit);
            }
            if tokio::time::Instant::now() > deadline {
                bail!("the audit log never showed what was expected: {audit:#?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The audit log, read as an admin.
    pub async fn audit(&self, admin_user: &str) -> Result<Vec<Value>> {
        let (status, body) = self
            .server()
            .http("GET", "/api/audit", Some(self.token(admin_user)), None)
            .await?;
        if status != 200 {
            bail!("GET /api/audit: {status} {body}");
        }
        Ok(serde_json::from_str(&body)?)
    }
}

/// Wait until the device's changes are all safe on the server.
pub async fn synced(device: &Device) -> Result<()> {
    tokio::time::timeout(WAIT, device.wait_synced())
        .await
        .context("the device did not sync in time")??;
    Ok(())
}

/// `coachsync admin relationship add` through the running server; its id.
pub fn relationship(site: &Site, coaches: &[&str], clients: &[&str]) -> Result<String> {
    let mut args = vec!["relationship", "add", "--school", "north-elementary"];
    for c in coaches {
        args.extend(["--coach", c]);
    }
    for c in clients {
        args.extend(["--client", c]);
    }
    admin(site.server().data_dir(), &args)
}

/// A valid work plan tied to a relationship.
pub fn work_plan(relationship: &str) -> Result<Value> {
    let mut plan = coachsync_core::domain::example("work-plan").context("an example work plan")?;
    plan["relationship"] = json!(relationship);
    Ok(plan)
}

/// Wait until `check` holds.
pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> Result<bool>) -> Result<()> {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check().await? {
        if tokio::time::Instant::now() > deadline {
            bail!("{what} did not happen in time");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Assert that `device` does not get `value` at `field` of `document`: it is asked to
/// sync, and given time that a change it may receive would take.
pub async fn never_receives(
    device: &Device,
    document: &DocumentId,
    field: &str,
    value: &str,
) -> Result<()> {
    device.sync_now();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let seen = &device.value(document).await?[field];
    if seen == value {
        bail!("{field} reached the device: {seen}");
    }
    Ok(())
}
