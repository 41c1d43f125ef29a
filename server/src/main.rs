//! The `coachsync` binary.

use clap::Parser;
use std::io::Write;

use coachsync_server::cli::{Cli, Command, ServeArgs};
use coachsync_server::{Config, Server};
use tracing_subscriber::EnvFilter;

/// glibc's allocator keeps much of what a burst of syncs frees (each full-document
/// answer builds and drops large buffers), which doubled the server's peak memory
/// from run to run; jemalloc returns it.
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // A device command's output is its answer: only warnings go to the log there.
    let default_filter = match cli.command {
        Command::Serve(_) => "info,automerge=warn",
        Command::Device(_) | Command::Report(_) | Command::Admin(_) => "warn",
    };
    let filter = EnvFilter::try_from_env("COACHSYNC_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        // automerge instruments its loads with info-level spans; formatting them
        // costs a noticeable share of the server's CPU.
        .unwrap_or_else(|_| EnvFilter::new(default_filter));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let result = match cli.command {
        Command::Serve(args) => serve(&args).await,
        Command::Device(args) => {
            let mut out = std::io::stdout().lock();
            coachsync_server::device_cli::run(args, std::io::stdin(), &mut out)
                .await
                .map_err(anyhow::Error::from)
        }
        Command::Admin(args) => {
            let mut out = std::io::stdout().lock();
            coachsync_server::admin_cli::run(args, &mut out)
                .await
                .map_err(anyhow::Error::from)
        }
        Command::Report(args) => {
            let mut out = std::io::stdout().lock();
            coachsync_server::report_cli::run(args, &mut out)
                .await
                .map_err(anyhow::Error::from)
        }
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // The reader of our output went away (`… | head`): nothing more to say.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "coachsync: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let config = Config::from_args(args)?;
    let server = Server::bind(config).await?;
    server.run(coachsync_server::shutdown::signal()).await?;
    Ok(())
}
