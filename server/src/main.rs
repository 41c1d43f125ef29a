//! The `coachsync` binary.

use clap::Parser;
use coachsync_server::cli::{Cli, Command};
use coachsync_server::{Config, Server};
use tracing_subscriber::EnvFilter;

/// glibc's allocator keeps much of what a burst of syncs frees (each full-document
/// answer builds and drops large buffers), which doubled the server's peak memory
/// from run to run; jemalloc returns it.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let filter = EnvFilter::try_from_env("COACHSYNC_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        // automerge instruments its loads with info-level spans; formatting them
        // costs a noticeable share of the server's CPU.
        .unwrap_or_else(|_| EnvFilter::new("info,automerge=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let config = Config::from_args(&args)?;
            let server = Server::bind(config).await?;
            server.run(coachsync_server::shutdown::signal()).await?;
        }
    }
    Ok(())
}
