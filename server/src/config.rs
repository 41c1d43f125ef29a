//! The validated configuration the server runs with (no clap types here).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::cli::ServeArgs;
use crate::error::{Error, Result};
use crate::rate_limit::Rate;

/// Everything `serve` needs, checked.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Where people open the app, for sign-in links; `None`: `http://` and the
    /// address actually bound.
    pub public_url: Option<String>,
    /// Where the app's files come from.
    pub app: crate::app_files::AppFiles,
    /// The data directory: the embedded store, or only the admin socket when the
    /// store is in PostgreSQL.
    pub data_dir: PathBuf,
    /// The PostgreSQL database holding the store, instead of the data directory.
    pub database_url: Option<crate::pg_store::DatabaseUrl>,
    /// Largest frame accepted.
    pub max_frame_bytes: usize,
    /// Largest document stored.
    pub max_document_bytes: usize,
    /// Frames queued per connection before it is dropped.
    pub queue_len: usize,
    /// Group-commit window.
    pub group_commit: Duration,
    /// Idle time before a document leaves memory.
    pub evict_after: Duration,
    /// Store page cache, bytes.
    pub cache_bytes: u64,
    /// A connection that sends nothing (not even a pong) for this long is closed.
    pub idle_timeout: Duration,
    /// How often the server pings each connection.
    pub ping_interval: Duration,
    /// The longest a clean shutdown waits for connections and writes.
    pub shutdown_grace: Duration,
    /// Whether sync connections without a token are taken (as anonymous).
    pub allow_anonymous: bool,
    /// The most documents one user may create.
    pub max_documents_per_user: u64,
    /// The most bytes one user's documents may hold.
    pub max_bytes_per_user: u64,
    /// How long an offboarded user's private notes are kept before they are purged.
    pub private_notes_retention: Duration,
    /// What one connection may send.
    pub connection_rate: Rate,
    /// What one user may send over all their connections.
    pub user_rate: Rate,
    /// JWTs from an external identity provider, if configured.
    pub jwt: Option<crate::jwt::JwtVerifier>,
}

impl Config {
    /// Check the flags and turn them into a configuration.
    pub fn from_args(args: &ServeArgs) -> Result<Self> {
        if args.max_frame_bytes < 1024 {
            return Err(Error::Config(
                "--max-frame-bytes must be at least 1024".into(),
            ));
        }
        if args.max_document_bytes < 1024 {
            return Err(Error::Config(
                "--max-document-bytes must be at least 1024".into(),
            ));
        }
        if args.queue_len == 0 {
            return Err(Error::Config("--queue-len must be at least 1".into()));
        }
        if args.group_commit_ms > 1000 {
            return Err(Error::Config(
                "--group-commit-ms must be at most 1000".into(),
            ));
        }
        if args.cache_mb == 0 {
            return Err(Error::Config("--cache-mb must be at least 1".into()));
        }
        if args.conn_frames_per_sec == 0
            || args.user_frames_per_sec == 0
            || args.conn_bytes_per_sec < 1024
            || args.user_bytes_per_sec < 1024
        {
            return Err(Error::Config(
                "rate limits must allow at least 1 frame and 1024 bytes per second".into(),
            ));
        }
        if args.max_bytes_per_user < 1024 {
            return Err(Error::Config(
                "--max-bytes-per-user must be at least 1024".into(),
            ));
        }
        if args.max_documents_per_user == 0 {
            return Err(Error::Config(
                "--max-documents-per-user must be at least 1".into(),
            ));
        }
        if args.data_dir.as_os_str().is_empty() {
            return Err(Error::Config("--data-dir must not be empty".into()));
        }
        let database_url = args
            .database_url
            .as_deref()
            .map(crate::pg_store::DatabaseUrl::parse)
            .transpose()?;
        let jwt = match (&args.jwt_issuer, &args.jwt_audience, &args.jwt_jwks) {
            (Some(issuer), Some(audience), Some(jwks)) => {
                Some(crate::jwt::JwtVerifier::load(issuer, audience, jwks)?)
            }
            (None, None, None) => None,
            _ => {
                return Err(Error::Config(
                    "--jwt-issuer, --jwt-audience and --jwt-jwks go together".into(),
                ));
            }
        };
        let public_url = match &args.public_url {
            Some(url) => Some(check_public_url(url)?),
            None => None,
        };
        let app = match &args.app_dir {
            Some(dir) if !dir.join("index.html").is_file() => {
                return Err(Error::Config(format!(
                    "--app-dir {} has no index.html (build the app with `npm run build` in app/)",
                    dir.display()
                )));
            }
            Some(dir) => crate::app_files::AppFiles::Dir(dir.clone()),
            None => crate::app_files::AppFiles::Embedded,
        };
        Ok(Self {
            jwt,
            listen: args.listen,
            public_url,
            app,
            data_dir: args.data_dir.clone(),
            database_url,
            max_frame_bytes: args.max_frame_bytes,
            max_document_bytes: args.max_document_bytes,
            queue_len: args.queue_len,
            group_commit: Duration::from_millis(args.group_commit_ms),
            evict_after: Duration::from_secs(args.evict_after_secs),
            cache_bytes: args.cache_mb * 1024 * 1024,
            idle_timeout: Duration::from_secs(30),
            ping_interval: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(10),
            allow_anonymous: args.allow_anonymous,
            max_documents_per_user: args.max_documents_per_user,
            max_bytes_per_user: args.max_bytes_per_user,
            private_notes_retention: Duration::from_secs(
                u64::from(args.private_notes_retention_days) * 86_400,
            ),
            connection_rate: Rate {
                frames: f64::from(args.conn_frames_per_sec),
                bytes: args.conn_bytes_per_sec as f64,
            },
            user_rate: Rate {
                frames: f64::from(args.user_frames_per_sec),
                bytes: args.user_bytes_per_sec as f64,
            },
        })
    }
}

/// A public URL as sign-in links start: `http://` or `https://` and a host, with no
/// trailing `/`.
pub fn check_public_url(url: &str) -> Result<String> {
    let trimmed = url.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.contains(['#', '?', ' ']) => Ok(trimmed.to_owned()),
        _ => Err(Error::Config(format!(
            "the public URL {url:?} must be http:// or https:// and a host, such as https://coach.example.org"
        ))),
    }
}
