//! A device process for the crash tests: opens a [`Device`] on a data directory and
//! carries out edits read from stdin, one per line, answering each on stdout once
//! the edit call has returned. It never closes the device: the test kills it.
//!
//! ```text
//! device-editor DATA_DIR [SERVER_URL]
//! create {"title": "…"}        -> created automerge:…
//! set automerge:… PATH JSON    -> stored
//! push automerge:… PATH JSON   -> stored
//! ```

// Its output is the protocol with the test that drives it.
#![allow(clippy::print_stdout)]

use std::io::BufRead;

use anyhow::{Context, Result, bail};
use coachsync_core::json::JsonPath;
use coachsync_core::{AutomergeUrl, Device, DeviceConfig};

#[tokio::main]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args
        .next()
        .context("usage: device-editor DATA_DIR [SERVER_URL]")?;
    let mut config = DeviceConfig::new(dir);
    if let Some(server) = args.next() {
        config = config.with_server(server);
    }
    let device = Device::open(config).await?;
    println!("ready");
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    while let Some(line) = lines.recv().await {
        let (verb, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        match verb {
            "create" => {
                let document = device.create(serde_json::from_str(rest)?).await?;
                println!("created {}", document.url());
            }
            "set" | "push" => {
                let mut parts = rest.splitn(3, ' ');
                let (Some(url), Some(path), Some(json)) =
                    (parts.next(), parts.next(), parts.next())
                else {
                    bail!("usage: {verb} URL PATH JSON");
                };
                let document = url.parse::<AutomergeUrl>()?.document_id;
                let path: JsonPath = path.parse()?;
                let value = serde_json::from_str(json)?;
                if verb == "set" {
                    device.set(&document, &path, value).await?;
                } else {
                    device.push(&document, &path, value).await?;
                }
                println!("stored");
            }
            other => bail!("unknown command {other:?}"),
        }
    }
    // Stdin closed: wait to be killed, as an app in the background would be.
    std::future::pending::<()>().await;
    Ok(())
}
