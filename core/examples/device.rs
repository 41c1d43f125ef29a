//! A device in a few lines: store a coaching note offline, edit it, watch it and its
//! status, and sync when a server is given.
//!
//! ```sh
//! cargo run -p coachsync-core --example device                       # offline
//! cargo run -p coachsync-core --example device -- ws://127.0.0.1:3030/sync
//! ```

// An example's output is what it shows.
#![allow(clippy::print_stdout)]

use std::time::Duration;

use coachsync_core::{Device, DeviceConfig};
use serde_json::json;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let mut config = DeviceConfig::new(dir.path());
    if let Some(server) = std::env::args().nth(1) {
        config = config.with_server(server);
    }
    let online = config.server.is_some();
    let device = Device::open(config).await?;

    let note = device
        .create(json!({"title": "Room 12 walkthrough", "notes": []}))
        .await?;
    println!("created {}", note.url());
    let _status = device
        .subscribe_status(Box::new(|s| {
            println!("status: {} is {}", s.document, s.status)
        }))
        .await?;
    let _watch = device
        .subscribe(&note, Box::new(|value| println!("value: {value}")))
        .await?;
    device
        .push(&note, &"notes".parse()?, json!("Exit tickets collected"))
        .await?;

    if online {
        device.sync_now();
        tokio::time::timeout(Duration::from_secs(10), device.wait_synced()).await??;
        println!("every document is safe on the server");
    }
    for status in device.statuses().await? {
        println!(
            "{} {} last synced {:?}",
            status.document.url(),
            status.status,
            status.last_synced
        );
    }
    device.close().await?;
    Ok(())
}
