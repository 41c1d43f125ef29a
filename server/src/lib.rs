//! The coachsync relay server: accepts automerge-repo WebSocket connections at
//! `/sync` from signed-in users, merges and durably stores the documents each may
//! write, and serves the access API, `/healthz` and `/metrics`; the admin commands;
//! and the terminal device of `coachsync device`.

pub mod accounts;
pub mod admin;
pub mod admin_cli;
pub mod app_files;
pub mod audit;
pub mod cli;
pub mod config;
pub mod device_cli;
pub mod driver;
pub mod error;
pub mod export;
pub mod invites;
pub mod jwt;
pub mod metrics;
pub mod migrate_store;
pub mod pg_store;
pub mod purge;
pub mod rate_limit;
pub mod report_cli;
pub mod routes;
pub mod server;
pub mod shutdown;
pub mod ws;

pub use config::Config;
pub use error::{Error, Result};
pub use server::Server;
