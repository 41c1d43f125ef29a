//! The server's error type.

/// A result whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can stop the server from starting or running.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A setting is out of range or inconsistent.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The store failed to open or to work.
    #[error(transparent)]
    Core(#[from] coachsync_core::Error),
    /// The listening socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// `--database-url` cannot be used.
    #[error("invalid --database-url: {0}")]
    DatabaseUrl(String),
    /// The database cannot be reached, or refused to set up the store.
    #[error("database {target}: {reason}")]
    Database {
        /// The database, without its password.
        target: String,
        /// What failed.
        reason: String,
    },
    /// A command was given input it cannot use.
    #[error("{0}")]
    Usage(String),
    /// Serving failed.
    #[error("server: {0}")]
    Io(#[from] std::io::Error),
}
