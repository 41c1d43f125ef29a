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
