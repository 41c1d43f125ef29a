//! `--database-url`: a PostgreSQL connection URL, checked before anything connects.

use std::fmt;

use tokio_postgres::config::Host;

use super::tls::{MakeRustlsConnect, TlsSettings};
use crate::error::{Error, Result};

/// A checked PostgreSQL URL, such as `postgres://coachsync@127.0.0.1/coachsync`
/// (or the `key=value` form libpq also takes). Its `Display` never shows the
/// password.
#[derive(Clone)]
pub struct DatabaseUrl {
    config: tokio_postgres::Config,
    tls: TlsSettings,
    connector: MakeRustlsConnect,
}

impl DatabaseUrl {
    /// Parse and check a URL: it must name a host, and its TLS settings (`sslmode`,
    /// `sslrootcert`, as libpq takes them: see [`super::tls`]) must be usable.
    pub fn parse(url: &str) -> Result<Self> {
        if url.trim().is_empty() {
            return Err(Error::DatabaseUrl("it is empty".into()));
        }
        let (url, tls) = TlsSettings::extract(url).map_err(Error::DatabaseUrl)?;
        let url = url.as_str();
        // The parser's message may quote the URL, password and all: say what is wrong
        // without it.
        let config: tokio_postgres::Config = url.parse().map_err(|e: tokio_postgres::Error| {
            let reason = e.to_string();
            let reason = if reason.contains(url) {
                "it does not parse".to_owned()
            } else {
                reason
            };
            Error::DatabaseUrl(format!(
                "{reason} (expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE)"
            ))
        })?;
        if config.get_hosts().is_empty() {
            return Err(Error::DatabaseUrl(
                "it names no host (expected postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE)"
                    .into(),
            ));
        }
        let mut config = config;
        if config.get_password().is_none()
            && let Some(password) = pgpass_password(&config)
        {
            config.password(password);
        }
        let connector = tls.connector().map_err(Error::DatabaseUrl)?;
        Ok(Self {
            config,
            tls,
            connector,
        })
    }

    /// The driver's configuration.
    pub fn config(&self) -> &tokio_postgres::Config {
        &self.config
    }

    /// What TLS checks of the server.
    pub fn tls(&self) -> &TlsSettings {
        &self.tls
    }

    /// Makes the TLS connections the URL asks for (none with `sslmode=disable`).
    pub fn connector(&self) -> MakeRustlsConnect {
        self.connector.clone()
    }
}

/// The password file libpq reads: `PGPASSFILE`, or `~/.pgpass`.
fn pgpass_file() -> Option<std::path::PathBuf> {
    if let Some(path) = std::env::var_os("PGPASSFILE") {
        return Some(path.into());
    }
    std::env::var_os("HOME").map(|home| std::path::Path::new(&home).join(".pgpass"))
}

/// The password for `config`'s first host, port, database and user from the
/// password file, as libpq finds it: the first line
/// `hostname:port:database:username:password` that matches, `*` matching anything,
/// `\:` and `\\` escaped. Like libpq, a file that others may read is ignored.
fn pgpass_password(config: &tokio_postgres::Config) -> Option<String> {
    let path = pgpass_file()?;
    let meta = std::fs::metadata(&path).ok()?;
    if std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o077 != 0 {
        tracing::warn!(
            file = %path.display(),
            "the password file is readable by others; ignored (chmod 0600 it)"
        );
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    // Over a Unix socket, libpq's host field is the socket's directory, or
    // `localhost` for the default one; either is taken here.
    let hosts: Vec<String> = match config.get_hosts().first()? {
        Host::Tcp(name) => vec![name.clone()],
        Host::Unix(dir) => vec![dir.display().to_string(), "localhost".to_owned()],
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let user = config.get_user()?.to_owned();
    let database = config.get_dbname().unwrap_or(&user).to_owned();
    let wanted = [port, database, user];
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let fields = pgpass_fields(line);
            if fields.len() != 5 {
                return None;
            }
            let host_matches = fields[0] == "*" || hosts.contains(&fields[0]);
            let matches = host_matches
                && fields[1..4]
                    .iter()
                    .zip(&wanted)
                    .all(|(field, want)| field == "*" || field == want);
            matches.then(|| fields[4].clone())
        })
}

/// A password file line's fields: split on unescaped `:`, escapes removed.
fn pgpass_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    fields.last_mut().expect("one field").push(next);
                }
            }
            ':' => fields.push(String::new()),
            c => fields.last_mut().expect("one field").push(c),
        }
    }
    fields
}

impl fmt::Display for DatabaseUrl {
    /// `postgres://USER@HOST:PORT/DATABASE`, without the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        write!(f, "postgres://")?;
        if let Some(user) = c.get_user() {
            write!(f, "{user}@")?;
        }
        let ports = c.get_ports();
        for (i, host) in c.get_hosts().iter().enumerate() {
            if i > 0 {
                write!(f, ",")?;
            }
            match host {
                Host::Tcp(name) => write!(f, "{name}")?,
                Host::Unix(path) => write!(f, "[{}]", path.display())?,
            }
            if let Some(port) = ports.get(i).or(ports.first()) {
                write!(f, ":{port}")?;
            }
        }
        write!(f, "/{}", c.get_dbname().or(c.get_user()).unwrap_or(""))
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatabaseUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_shown_without_its_password() {
        let url = DatabaseUrl::parse("postgres://coach:s3cret@db.internal:5433/coachsync").unwrap();
        assert_eq!(
            url.to_string(),
            "postgres://coach@db.internal:5433/coachsync"
        );
        assert!(!format!("{url:?}").contains("s3cret"));
    }

    #[test]
    fn a_password_file_line_splits_on_unescaped_colons() {
        assert_eq!(
            pgpass_fields(r"db.internal:5432:*:coach:pa\:ss\\word"),
            ["db.internal", "5432", "*", "coach", r"pa:ss\word"]
        );
    }

    #[test]
    fn bad_urls_are_refused_with_a_reason_and_without_the_password() {
        for (url, want) in [
            ("", "empty"),
            (
                "postgres://coach:s3cret@db/coachsync?sslmode=verify-full&sslrootcert=/nonexistent.pem",
                "cannot read sslrootcert /nonexistent.pem",
            ),
            (
                "postgres://coach:s3cret@db/coachsync?sslmode=bogus",
                "sslmode=bogus: expected disable, prefer, require, verify-ca or verify-full",
            ),
            (
                "postgres://coach:s3cret@db:notaport/x",
                "expected postgres://",
            ),
            ("postgres:///coachsync", "no host"),
        ] {
            let e = DatabaseUrl::parse(url).unwrap_err().to_string();
            assert!(e.contains(want), "{url}: {e}");
            assert!(!e.contains("s3cret"), "{url}: {e}");
        }
    }
}
