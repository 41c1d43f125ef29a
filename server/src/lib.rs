//! The coachsync relay server: accepts automerge-repo WebSocket connections at
//! `/sync`, merges and durably stores documents, and serves `/healthz` and `/metrics`;
//! and the terminal device of `coachsync device`.

pub mod cli;
pub mod config;
pub mod device_cli;
pub mod driver;
pub mod error;
pub mod metrics;
pub mod report_cli;
pub mod routes;
pub mod server;
pub mod shutdown;
pub mod ws;

pub use config::Config;
pub use error::{Error, Result};
pub use server::Server;
