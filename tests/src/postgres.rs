//! A private PostgreSQL cluster for tests: Debian's `initdb` and `pg_ctl` in a
//! temporary directory, listening on 127.0.0.1 and a free port (and a socket in
//! that directory), with a database per test. The system's own PostgreSQL service is
//! never used or touched.
//!
//! `initdb` refuses to run as root, so as root the cluster runs as the `postgres`
//! OS user (through `runuser`), in a directory it owns. The cluster is stopped when
//! the [`PgCluster`] is dropped.
//!
//! Without the binaries the Postgres tests skip, saying so, unless
//! `COACHSYNC_REQUIRE_POSTGRES=1` (which `scripts/test` sets): then they fail.

#![allow(clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result, bail};

/// The environment variable that turns a missing PostgreSQL into a failure.
pub const REQUIRE_ENV: &str = "COACHSYNC_REQUIRE_POSTGRES";

/// How a cluster takes connections over TCP (its Unix socket always trusts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, no password, no TLS.
    Trust,
    /// Only over TLS, no password (see [`PgCluster::start_tls`]).
    Tls,
    /// Only with a password (SCRAM-SHA-256).
    Password,
}

/// A running private cluster; stopped on drop.
pub struct PgCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
    next_db: AtomicUsize,
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`: `COACHSYNC_PG_BIN`, the
/// newest `/usr/lib/postgresql/N/bin`, or where `initdb` on the PATH really is.
pub fn binaries() -> Option<PathBuf> {
    let complete = |dir: &Path| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| dir.join(b).is_file())
    };
    if let Ok(dir) = std::env::var("COACHSYNC_PG_BIN") {
        let dir = PathBuf::from(dir);
        return complete(&dir).then_some(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, dir)| complete(dir))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Some(dir);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|p| p.join("initdb"))
        .find(|p| p.is_file())
        .and_then(|p| std::fs::canonicalize(p).ok())
        .and_then(|p| p.parent().map(Path::to_owned))
        .filter(|dir| complete(dir))
}

/// Whether this process runs as root.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A numeric ID of the `postgres` user (`-u`) or its group (`-g`).
fn postgres_id(flag: &str) -> Result<u32> {
    let out = Command::new("id")
        .args([flag, "postgres"])
        .output()
        .context("running id")?;
    if !out.status.success() {
        bail!(
            "there is no postgres OS user to run the cluster as (initdb refuses root): {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().parse()?)
}

fn check(output: Output, what: &str) -> Result<Output> {
    if !output.status.success() {
        bail!(
            "{what} failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output)
}

impl PgCluster {
    /// Start a cluster, or `None` (having printed why `test` skips) when PostgreSQL
    /// is not installed. Panics when it is required and missing, or fails to start.
    pub fn start_or_skip(test: &str) -> Option<Self> {
        Self::start_or_skip_with(test, Access::Trust)
    }

    /// Like [`start_or_skip`](Self::start_or_skip), with the given access over TCP.
    pub fn start_or_skip_with(test: &str, access: Access) -> Option<Self> {
        let required = std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1");
        let Some(bin) = binaries() else {
            let why = "PostgreSQL's initdb and pg_ctl were not found (install Debian's postgresql package, or set COACHSYNC_PG_BIN)";
            if required {
                panic!("{test}: {why}, and {REQUIRE_ENV}=1 requires them");
            }
            eprintln!("SKIPPED {test}: {why}");
            return None;
        };
        match Self::start_with(&bin, access) {
            Ok(cluster) => Some(cluster),
            Err(e) => panic!("{test}: cannot start a private PostgreSQL cluster: {e:#}"),
        }
    }

    /// `initdb` and `pg_ctl start` with the binaries in `bin`.
    pub fn start(bin: &Path) -> Result<Self> {
        Self::start_with(bin, Access::Trust)
    }

    /// Like [`start`](Self::start), with TLS on and required over TCP: a certificate
    /// for `localhost` and 127.0.0.1 signed by a test CA, whose certificate is
    /// [`ca_file`](Self::ca_file). Plain TCP connections are refused (`hostssl` only);
    /// the Unix socket stays open for the cluster's own setup.
    pub fn start_tls(bin: &Path) -> Result<Self> {
        Self::start_with(bin, Access::Tls)
    }

    /// The test CA's certificate (PEM), with [`start_tls`](Self::start_tls).
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// `initdb` and `pg_ctl start`, taking TCP connections as `access` says.
    pub fn start_with(bin: &Path, access: Access) -> Result<Self> {
        let as_postgres = is_root();
        let dir = tempfile::Builder::new().prefix("coachsync-pg-").tempdir()?;
        if as_postgres {
            std::os::unix::fs::chown(
                dir.path(),
                Some(postgres_id("-u")?),
                Some(postgres_id("-g")?),
            )
            .context("giving the cluster's directory to postgres")?;
        }
        let mut cluster = Self {
            bin: bin.to_owned(),
            dir,
            port: 0,
            as_postgres,
            next_db: AtomicUsize::new(0),
        };
        let data = cluster.data_dir();
        check(
            cluster
                .command("initdb")
                .arg("--pgdata")
                .arg(&data)
                .args([
                    "--username=postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--locale=C",
                    // The cluster lives as long as a test: initdb's own fsyncs buy
                    // nothing. The server itself keeps fsync on.
                    "--no-sync",
                ])
                .output()?,
            "initdb",
        )?;
        let mut tls_options = String::new();
        if access == Access::Password {
            cluster.write_private(
                &data.join("pg_hba.conf"),
                "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n",
                0o600,
            )?;
        }
        if access == Access::Tls {
            cluster.write_tls_files(&data)?;
            tls_options =
                " -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key".into();
        }
        // A port that was free a moment ago may be taken by the time the server binds.
        let mut last_error = None;
        for _ in 0..3 {
            cluster.port = free_port()?;
            let options = format!(
                "-c listen_addresses=127.0.0.1 -p {} -k {} -c max_connections=60 -c shared_buffers=16MB{tls_options}",
                cluster.port,
                cluster.dir.path().display()
            );
            let started = cluster
                .command("pg_ctl")
                .arg("--pgdata")
                .arg(&data)
                .arg("--log")
                .arg(cluster.dir.path().join("server.log"))
                .args(["--wait", "--timeout=60", "-o", &options, "start"])
                .stdout(Stdio::null())
                .output()?;
            match check(started, "pg_ctl start") {
                Ok(_) => return Ok(cluster),
                Err(e) => last_error = Some(e),
            }
        }
        let log =
            std::fs::read_to_string(cluster.dir.path().join("server.log")).unwrap_or_default();
        Err(last_error.expect("tried").context(log))
    }

    /// The CA, the server's certificate and key (in the data directory, owned by the
    /// cluster's user, the key private), and a `pg_hba.conf` that takes TCP only over
    /// TLS.
    fn write_tls_files(&self, data: &Path) -> Result<()> {
        let ca_key = rcgen::KeyPair::generate()?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "coachsync test CA");
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key)?;
        let key = rcgen::KeyPair::generate()?;
        let cert =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?
                .signed_by(&key, &ca)?;
        std::fs::write(self.ca_file(), ca.pem())?;
        self.write_private(&data.join("server.crt"), &cert.pem(), 0o644)?;
        self.write_private(&data.join("server.key"), &key.serialize_pem(), 0o600)?;
        self.write_private(
            &data.join("pg_hba.conf"),
            "local all all trust\nhostssl all all 127.0.0.1/32 trust\n",
            0o600,
        )
    }

    /// Write a file of the cluster's, owned by its user, with `mode`.
    fn write_private(&self, path: &Path, text: &str, mode: u32) -> Result<()> {
        std::fs::write(path, text)?;
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode))?;
        if self.as_postgres {
            std::os::unix::fs::chown(path, Some(postgres_id("-u")?), Some(postgres_id("-g")?))?;
        }
        Ok(())
    }

    /// A command of the cluster's binaries, as the cluster's owner.
    fn command(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        command.stdin(Stdio::null());
        command
    }

    /// Run one of the cluster's client programs (`pg_dump`, `pg_restore`, …) as its
    /// owner, over its Unix socket, in its directory (where it may write files);
    /// fails with the program's output.
    pub fn run(&self, program: &str, args: &[&str]) -> Result<Output> {
        let output = self
            .command(program)
            .args(["--host"])
            .arg(self.dir.path())
            .args(["--port", &self.port.to_string(), "--username", "postgres"])
            .args(args)
            .current_dir(self.dir.path())
            .output()?;
        check(output, program)
    }

    /// Restart the database server (a fast shutdown: sessions are ended, as in a
    /// minor-version upgrade), with the options it was started with.
    pub fn restart(&self) -> Result<()> {
        let output = self
            .command("pg_ctl")
            .arg("--pgdata")
            .arg(self.data_dir())
            .arg("--log")
            .arg(self.dir.path().join("server.log"))
            .args(["--mode=fast", "--wait", "--timeout=60", "restart"])
            .stdout(Stdio::null())
            .output()?;
        check(output, "pg_ctl restart").map(drop)
    }

    /// The directory the cluster's programs run in (see [`run`](Self::run)).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The cluster's data directory (its files).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The TCP port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The URL of database `name`, as the superuser.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }

    /// Create a new, empty database and return its URL; `hint` goes into its name.
    pub fn create_database(&self, hint: &str) -> Result<String> {
        let n = self.next_db.fetch_add(1, Ordering::SeqCst);
        let clean: String = hint
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        let name = format!("t{n}_{clean}");
        self.execute("postgres", &format!("CREATE DATABASE {name}"))?;
        Ok(self.url(&name))
    }

    /// Run SQL statements in database `db` as the superuser (on a thread of its own,
    /// so that async tests may call it too), over the cluster's Unix socket, which
    /// needs no TLS.
    pub fn execute(&self, db: &str, sql: &str) -> Result<()> {
        let url = format!(
            "host={} port={} user=postgres dbname={db}",
            self.dir.path().display(),
            self.port
        );
        let sql = sql.to_owned();
        std::thread::spawn(move || -> Result<()> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let (client, connection) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
                let connection = tokio::spawn(connection);
                client.batch_execute(&sql).await?;
                drop(client);
                let _ = connection.await;
                Ok(())
            })
        })
        .join()
        .map_err(|_| anyhow::anyhow!("the SQL thread panicked"))?
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // Immediate: the cluster's data is thrown away with the directory.
        let _ = self
            .command("pg_ctl")
            .arg("--pgdata")
            .arg(self.data_dir())
            .args(["--mode=immediate", "--wait", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
