//! Command-line flags, each with a `COACHSYNC_*` environment fallback.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// coachsync: an offline-first sync server for school-improvement coaching.
#[derive(Debug, Parser)]
#[command(name = "coachsync", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the sync server.
    Serve(ServeArgs),
    /// A terminal device: its own local store, synced with a server on request.
    Device(DeviceArgs),
    /// Render work plans, rubric self-assessments, driver diagrams, PDSA cycles and
    /// measures on a device as one self-contained HTML page with charts (offline).
    Report(ReportArgs),
    /// Manage users, tokens and groups, and read the audit log: through the running
    /// server's admin socket when one holds the data directory, else directly.
    Admin(AdminArgs),
}

/// Flags of `coachsync admin`.
#[derive(Debug, Args, Clone)]
pub struct AdminArgs {
    /// The server's data directory.
    #[arg(
        long,
        global = true,
        env = "COACHSYNC_DATA_DIR",
        default_value = "./coachsync-data"
    )]
    pub data_dir: PathBuf,

    /// Keep the store in this PostgreSQL database instead of the data directory,
    /// as `serve --database-url` does (e.g. `postgres://coachsync@127.0.0.1/coachsync`).
    /// The data directory still holds the running server's admin socket.
    #[arg(
        long,
        global = true,
        env = "COACHSYNC_DATABASE_URL",
        hide_env_values = true
    )]
    pub database_url: Option<String>,

    /// The address people open the app at, for sign-in links; without it, the
    /// running server's own, or `http://127.0.0.1:3030` when none runs.
    #[arg(long, global = true, env = "COACHSYNC_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: AdminCommand,
}

/// The admin subcommands.
#[derive(Debug, Subcommand, Clone)]
pub enum AdminCommand {
    /// Users.
    #[command(subcommand)]
    User(UserCommand),
    /// Bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Group membership.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Add or update users from a roster CSV with the header `name,email,role,school`.
    /// Every line is checked first: one bad line imports nothing. Re-running it
    /// changes nothing.
    ImportRoster {
        /// The CSV file.
        file: PathBuf,
        /// The organisation of the users it adds.
        #[arg(long, default_value = "default")]
        org: String,
        /// Print what would change, and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Coaching relationships: who coaches whom, the unit of confidentiality.
    #[command(subcommand)]
    Relationship(RelationshipCommand),
    /// Documents.
    #[command(subcommand)]
    Doc(DocCommand),
    /// Write a relationship's documents as JSON, for a records request (private
    /// notes are counted, not exported).
    Export {
        /// The relationship's id.
        #[arg(long)]
        relationship: String,
        /// Write here instead of to standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the audit log, one JSON object per line.
    Audit {
        /// Only entries after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: u64,
        /// At most this many entries.
        #[arg(long, default_value_t = 1000)]
        limit: usize,
    },
    /// Copy the embedded store in `--data-dir` into the PostgreSQL database of
    /// `--database-url`, then read every document back and check its heads. Safe to
    /// run again: records follow the data directory, documents are merged. Stop the
    /// server on the data directory first.
    MigrateStore,
}

/// `coachsync admin doc …`
#[derive(Debug, Subcommand, Clone)]
pub enum DocCommand {
    /// Remove documents from the server for good: every byte leaves the data
    /// directory (the store is rewritten), the purge is audited, and devices that
    /// hold a copy drop it at their next sync.
    Purge {
        /// The document IDs (as in `automerge:<ID>`).
        #[arg(required = true)]
        documents: Vec<String>,
    },
}

/// `coachsync admin relationship …`
#[derive(Debug, Subcommand, Clone)]
pub enum RelationshipCommand {
    /// Record a relationship; prints its id as the last line.
    Add {
        /// A coach (repeatable).
        #[arg(long = "coach", required = true)]
        coaches: Vec<String>,
        /// A client (repeatable).
        #[arg(long = "client", required_unless_present = "client_groups")]
        clients: Vec<String>,
        /// A team that is a client, by its group (repeatable): whoever is in the
        /// group is a client.
        #[arg(long = "client-group")]
        client_groups: Vec<String>,
        /// The school.
        #[arg(long)]
        school: String,
        /// What the coaching is about.
        #[arg(long)]
        focus: Option<String>,
        /// When it starts, YYYY-MM-DD (default today).
        #[arg(long)]
        start: Option<String>,
        /// Days its members keep read access after it ends.
        #[arg(long, default_value_t = 30)]
        read_days: u32,
    },
    /// List relationships: id, school, coaches, clients, start, ended.
    List,
    /// End a relationship; its members keep read access for its read period.
    End {
        /// The relationship's id.
        id: String,
        /// Change the read period (days) first.
        #[arg(long)]
        read_days: Option<u32>,
    },
    /// Add a member.
    AddMember {
        /// The relationship's id.
        id: String,
        /// The user.
        #[arg(
            long,
            required_unless_present = "client_group",
            conflicts_with = "client_group"
        )]
        user: Option<String>,
        /// `coach` or `client` (with `--user`).
        #[arg(long = "as", value_parser = ["coach", "client"], required_unless_present = "client_group")]
        role: Option<String>,
        /// A team that becomes a client, by its group.
        #[arg(long)]
        client_group: Option<String>,
    },
    /// Remove a member (or a client team): their devices stop receiving its
    /// documents.
    RemoveMember {
        /// The relationship's id.
        id: String,
        /// The user.
        #[arg(
            long,
            required_unless_present = "client_group",
            conflicts_with = "client_group"
        )]
        user: Option<String>,
        /// A client team, by its group.
        #[arg(long)]
        client_group: Option<String>,
    },
}

/// `coachsync admin user …`
#[derive(Debug, Subcommand, Clone)]
pub enum UserCommand {
    /// Make a one-time sign-in link for a user; prints it as the last line. Opened
    /// on a phone, it signs the app in without typing a token.
    Invite {
        /// The user.
        #[arg(long)]
        name: String,
        /// Hours until the link stops working.
        #[arg(long, default_value_t = 72)]
        expires_hours: u32,
    },
    /// A user leaves: their relationships and documents pass to another coach
    /// (their private notes stay theirs, unreadable by anyone), their tokens are
    /// revoked, and they sign in no more.
    Offboard {
        /// Who leaves.
        name: String,
        /// The coach who takes over.
        #[arg(long)]
        transfer_to: String,
    },
    /// Add a user; prints their first bearer token as the last line.
    Add {
        /// Unique name (letters, digits, '-', '_', '.', '@').
        #[arg(long)]
        name: String,
        /// coach, client, team-member, evaluator or admin.
        #[arg(long)]
        role: String,
        /// Their organisation.
        #[arg(long, default_value = "default")]
        org: String,
        /// A group they belong to (repeatable).
        #[arg(long = "group")]
        groups: Vec<String>,
        /// The token stops working after this many days (default: never).
        #[arg(long)]
        expires_days: Option<u64>,
    },
    /// List users with their groups and token ids.
    List,
}

/// `coachsync admin token …`
#[derive(Debug, Subcommand, Clone)]
pub enum TokenCommand {
    /// Issue another token for a user; prints it as the last line.
    Create {
        /// The user.
        #[arg(long)]
        name: String,
        /// The token stops working after this many days (default: never).
        #[arg(long)]
        expires_days: Option<u64>,
    },
    /// Revoke a token (the token or its id), or every token of a user. Their open
    /// connections are closed.
    Revoke {
        /// The token, or its id from `user list`.
        #[arg(long, conflicts_with = "user", required_unless_present = "user")]
        token: Option<String>,
        /// Every token of this user.
        #[arg(long)]
        user: Option<String>,
    },
}

/// `coachsync admin group …`
#[derive(Debug, Subcommand, Clone)]
pub enum GroupCommand {
    /// Put a user in a group.
    Add {
        /// The group.
        #[arg(long)]
        group: String,
        /// The user.
        #[arg(long)]
        user: String,
    },
    /// Take a user out of a group.
    Remove {
        /// The group.
        #[arg(long)]
        group: String,
        /// The user.
        #[arg(long)]
        user: String,
    },
}

/// Flags of `coachsync report`.
#[derive(Debug, Args, Clone)]
pub struct ReportArgs {
    /// The device's data directory.
    #[arg(
        long,
        env = "COACHSYNC_DEVICE_DIR",
        default_value = "./coachsync-device"
    )]
    pub data_dir: PathBuf,

    /// Write the page to this file (created or overwritten); default: stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,

    /// The documents to report on, as `automerge:` URLs; with none, every work
    /// plan, rubric self-assessment, driver diagram, PDSA cycle and measure on the
    /// device.
    #[arg(value_name = "URL")]
    pub urls: Vec<String>,
}

/// Flags of `coachsync device`.
#[derive(Debug, Args, Clone)]
pub struct DeviceArgs {
    /// The device's data directory; created if missing.
    #[arg(
        long,
        global = true,
        env = "COACHSYNC_DEVICE_DIR",
        default_value = "./coachsync-device"
    )]
    pub data_dir: PathBuf,

    /// The server's WebSocket URL, for `sync`, `fetch`, `grant` and `revoke`.
    #[arg(long, global = true, env = "COACHSYNC_SERVER")]
    pub server: Option<String>,

    /// The bearer token the server's admin gave you (never printed or logged).
    #[arg(long, global = true, env = "COACHSYNC_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// What to do.
    #[command(subcommand)]
    pub command: DeviceCommand,
}

/// The device's subcommands. Edits are stored offline; only `sync` and `fetch`
/// reach the server.
#[derive(Debug, Subcommand, Clone)]
pub enum DeviceCommand {
    /// Store a new document holding the JSON object read from stdin; print its URL.
    /// A document whose `schema` names a coaching kind is validated first.
    Create {
        /// The coaching kind (see `kinds`): fills in `schema` and `schemaVersion`
        /// if missing, and refuses a document of another kind.
        #[arg(long)]
        kind: Option<String>,
    },
    /// List the coaching document kinds: name, version, who reads it, what it is.
    Kinds,
    /// Print a valid example document of a kind.
    Template {
        /// The kind.
        kind: String,
    },
    /// Print the JSON Schema of a kind.
    Schema {
        /// The kind.
        kind: String,
    },
    /// List the documents on this device: URL, kind, title.
    List {
        /// Only documents of this kind.
        #[arg(long)]
        kind: Option<String>,
    },
    /// Print a document as JSON.
    Show {
        /// The document's `automerge:` URL.
        url: String,
    },
    /// Set the value at a dot path (`title`, `lookFors.engagement`, `notes.2`).
    Set {
        /// The document's `automerge:` URL.
        url: String,
        /// Where, as a dot path; `\.` is a dot inside a key.
        path: String,
        /// The value, as JSON (a string needs its quotes: '"text"').
        json: String,
    },
    /// Append a value to the list at a dot path (a missing key becomes a list).
    Push {
        /// The document's `automerge:` URL.
        url: String,
        /// Where, as a dot path.
        path: String,
        /// The value, as JSON.
        json: String,
    },
    /// Get a document from the server into the local store.
    Fetch {
        /// The document's `automerge:` URL.
        url: String,
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Print one line per document: URL, status, last sync time.
    Status,
    /// Let a user or group read or write a document you own (on the server).
    Grant {
        /// The document's `automerge:` URL.
        url: String,
        /// The user.
        #[arg(long, conflicts_with = "group", required_unless_present = "group")]
        user: Option<String>,
        /// The group.
        #[arg(long)]
        group: Option<String>,
        /// `read` or `write`.
        #[arg(long)]
        access: String,
    },
    /// Take back what a user or group was granted on a document.
    Revoke {
        /// The document's `automerge:` URL.
        url: String,
        /// The user.
        #[arg(long, conflicts_with = "group", required_unless_present = "group")]
        user: Option<String>,
        /// The group.
        #[arg(long)]
        group: Option<String>,
    },
    /// Send every local change to the server and get the server's; exit 0 once
    /// every document is safe on the server.
    Sync {
        /// Give up after this many seconds.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
}

/// Flags of `coachsync serve`.
#[derive(Debug, Args, Clone)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "COACHSYNC_LISTEN", default_value = "127.0.0.1:3030")]
    pub listen: SocketAddr,

    /// The address people open the app at, for sign-in links (default `http://` and
    /// the address listened on).
    #[arg(long, env = "COACHSYNC_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Serve the coach app from this directory (a build of `app/`) instead of the
    /// one built into the binary.
    #[arg(long, env = "COACHSYNC_APP_DIR")]
    pub app_dir: Option<PathBuf>,

    /// Directory of the embedded store; created if missing. With --database-url it
    /// holds only the admin socket.
    #[arg(long, env = "COACHSYNC_DATA_DIR", default_value = "./coachsync-data")]
    pub data_dir: PathBuf,

    /// Keep the store in this PostgreSQL database instead of the data directory,
    /// e.g. `postgres://coachsync@127.0.0.1/coachsync` (the password, if any, in the
    /// URL or in ~/.pgpass is never logged). The schema is created or migrated at start.
    #[arg(long, env = "COACHSYNC_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,

    /// Largest WebSocket frame accepted, in bytes. The first sync of a large
    /// document carries its whole history in one frame.
    #[arg(long, env = "COACHSYNC_MAX_FRAME_BYTES", default_value_t = 64 * 1024 * 1024)]
    pub max_frame_bytes: usize,

    /// Largest document stored, in bytes.
    #[arg(long, env = "COACHSYNC_MAX_DOCUMENT_BYTES", default_value_t = 256 * 1024 * 1024)]
    pub max_document_bytes: usize,

    /// Frames queued for one connection before it is dropped as too slow.
    #[arg(long, env = "COACHSYNC_QUEUE_LEN", default_value_t = 4096)]
    pub queue_len: usize,

    /// How long writes wait to share one fsync with others, in milliseconds.
    #[arg(long, env = "COACHSYNC_GROUP_COMMIT_MS", default_value_t = 1)]
    pub group_commit_ms: u64,

    /// Seconds a document stays in memory unused before it is evicted.
    #[arg(long, env = "COACHSYNC_EVICT_AFTER_SECS", default_value_t = 300)]
    pub evict_after_secs: u64,

    /// Size of the store's page cache, in MiB.
    #[arg(long, env = "COACHSYNC_CACHE_MB", default_value_t = 64)]
    pub cache_mb: u64,

    /// Accept sync connections without a token, as an anonymous peer that reaches
    /// only documents nobody owns. For local demos and tests only.
    #[arg(long, env = "COACHSYNC_ALLOW_ANONYMOUS")]
    pub allow_anonymous: bool,

    /// The most documents one user may create.
    #[arg(
        long,
        env = "COACHSYNC_MAX_DOCUMENTS_PER_USER",
        default_value_t = 100_000
    )]
    pub max_documents_per_user: u64,

    /// The most bytes the documents one user owns may hold in the store.
    #[arg(long, env = "COACHSYNC_MAX_BYTES_PER_USER", default_value_t = 1024 * 1024 * 1024)]
    pub max_bytes_per_user: u64,

    /// Days after a user is offboarded that their private notes (which nobody can
    /// read once they are gone) are purged from the server.
    #[arg(
        long,
        env = "COACHSYNC_PRIVATE_NOTES_RETENTION_DAYS",
        default_value_t = 90
    )]
    pub private_notes_retention_days: u32,

    /// Frames per second one connection may send before it is slowed down.
    #[arg(long, env = "COACHSYNC_CONN_FRAMES_PER_SEC", default_value_t = 2_000)]
    pub conn_frames_per_sec: u32,

    /// Bytes per second one connection may send before it is slowed down.
    #[arg(long, env = "COACHSYNC_CONN_BYTES_PER_SEC", default_value_t = 32 * 1024 * 1024)]
    pub conn_bytes_per_sec: u64,

    /// Frames per second one user may send over all their connections.
    #[arg(long, env = "COACHSYNC_USER_FRAMES_PER_SEC", default_value_t = 5_000)]
    pub user_frames_per_sec: u32,

    /// Bytes per second one user may send over all their connections.
    #[arg(long, env = "COACHSYNC_USER_BYTES_PER_SEC", default_value_t = 64 * 1024 * 1024)]
    pub user_bytes_per_sec: u64,

    /// Also accept JWTs from this identity provider (its `iss`); needs
    /// --jwt-audience and --jwt-jwks. A token's `sub` names a coachsync user.
    #[arg(long, env = "COACHSYNC_JWT_ISSUER", requires_all = ["jwt_audience", "jwt_jwks"])]
    pub jwt_issuer: Option<String>,

    /// The `aud` the provider's tokens must carry for this server.
    #[arg(long, env = "COACHSYNC_JWT_AUDIENCE", requires = "jwt_issuer")]
    pub jwt_audience: Option<String>,

    /// The provider's signing keys, a JWKS file (`{"keys": [...]}`).
    #[arg(long, env = "COACHSYNC_JWT_JWKS", requires = "jwt_issuer")]
    pub jwt_jwks: Option<PathBuf>,
}
