//! The one error type of `coachsync-core`.

/// A result whose error is [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in `coachsync-core`.
///
/// Messages are lowercase and name the cause, so that they can be shown to an operator
/// or sent to a peer as they are.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A document ID that is not bs58check, or whose checksum does not match.
    #[error("invalid document id {input:?}: {reason}")]
    InvalidDocumentId {
        /// What was given, cut to a printable length.
        input: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A string that is not an `automerge:` URL.
    #[error("invalid automerge url {input:?}: {reason}")]
    InvalidUrl {
        /// What was given, cut to a printable length.
        input: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A peer or storage ID that is empty or too long.
    #[error("invalid {what}: {reason}")]
    InvalidId {
        /// Which kind of ID.
        what: &'static str,
        /// Why it was refused.
        reason: &'static str,
    },
    /// A frame that is not a message of the protocol.
    #[error("malformed message: {0}")]
    Decode(String),
    /// A message that decodes but breaks the protocol's rules.
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// An automerge operation failed (bad changes, bad sync message).
    #[error("automerge: {0}")]
    Automerge(#[from] automerge::AutomergeError),
    /// automerge panicked on some input; the document was isolated.
    #[error("automerge failed on document {0}")]
    AutomergePanic(String),
    /// A stored document that does not load.
    #[error("document {document} is corrupt: {reason}")]
    Corrupt {
        /// The document ID.
        document: String,
        /// What failed.
        reason: String,
    },
    /// The storage engine failed.
    #[error("storage: {0}")]
    Storage(String),
    /// A file system operation of the store failed.
    #[error("storage io at {path}: {source}")]
    StorageIo {
        /// The file or directory.
        path: std::path::PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A JSON edit of a document that does not fit the document's shape. Nothing was
    /// written.
    #[error("cannot {action} {path}: {reason}")]
    Edit {
        /// The operation, such as `set` or `push`.
        action: &'static str,
        /// The path, as written by its `Display`, cut to a printable length.
        path: String,
        /// What is in the way.
        reason: String,
    },
    /// A dot path that does not parse.
    #[error("invalid path '{path}': {reason}")]
    InvalidPath {
        /// What was given, cut to a printable length.
        path: String,
        /// Why it was refused.
        reason: &'static str,
    },
    /// JSON that cannot become (part of) a document, such as a root that is not an object.
    #[error("invalid json: {0}")]
    InvalidJson(String),
    /// A coaching document that does not fit its kind; nothing was stored.
    #[error("invalid {kind}:{}", problems.iter().map(|p| format!("\n  {p}")).collect::<String>())]
    Invalid {
        /// The kind.
        kind: String,
        /// Every problem, each with its field path.
        problems: Vec<crate::domain::Problem>,
    },
    /// An edit of a published definition, which never changes.
    #[error("{id} version {version} is published and never changes; create version {} instead", version + 1)]
    Published {
        /// The definition's ID.
        id: String,
        /// Its version.
        version: u64,
    },
    /// A coaching kind that does not exist.
    #[error("{0:?} is not a kind; the kinds are {kinds}", kinds = crate::domain::KINDS.iter().map(|k| k.name).collect::<Vec<_>>().join(", "))]
    UnknownKind(String),
    /// A setting that cannot work.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The device was closed.
    #[error("the device is closed")]
    Closed,
    /// A document this device does not hold.
    #[error("no document {0} on this device")]
    UnknownDocument(String),
    /// The server does not have a document that was asked for.
    #[error("the server does not have document {0}")]
    Unavailable(String),
    /// The organisation purged a document from the server; this device dropped its
    /// copy too.
    #[error("document {0} was purged from the server, and from this device")]
    Purged(String),
    /// A document with changes the server does not have yet, which an operation
    /// would lose.
    #[error("document {0} has changes the server does not have yet; sync it first")]
    Unsynced(String),
    /// Something that needs a server, on a device without one.
    #[error("no server is configured")]
    NoServer,
    /// A configured limit was hit.
    #[error("{what} of {actual} bytes is over the limit of {limit} bytes")]
    TooLarge {
        /// What was too large.
        what: &'static str,
        /// Its size.
        actual: usize,
        /// The limit.
        limit: usize,
    },
    /// An access rule was given something it cannot use.
    #[error("{0}")]
    Access(String),
    /// The caller may not do this (and may know the thing exists).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Not there, or not visible to the caller: the two are never told apart.
    #[error("not found: {0}")]
    NotFound(String),
}

impl From<sled::Error> for Error {
    fn from(e: sled::Error) -> Self {
        Error::Storage(e.to_string())
    }
}

/// Cut a peer-supplied string to a length that is safe to log and echo.
pub(crate) fn printable(input: &str) -> String {
    const MAX: usize = 80;
    if input.len() <= MAX {
        return input.to_owned();
    }
    let mut end = MAX;
    while !input.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &input[..end])
}
