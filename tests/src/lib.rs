//! Helpers for coachsync's end-to-end tests: the real `coachsync` binary as a child
//! process, and a Rust WebSocket peer that drives the sync engine.

pub mod files;
pub mod peer;
pub mod postgres;
pub mod server_process;
pub mod site;
pub mod store_contract;

pub use peer::Peer;
pub use server_process::{ServerProcess, admin};
