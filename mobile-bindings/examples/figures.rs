//! The figures of the mobile bindings, through the same `Device` object apps use:
//! how long a device with 1,000 documents takes from `Device(...)` to its first
//! `get`, and how much memory it holds once every document has been read.
//!
//! ```sh
//! cargo run --release -p coachsync-mobile --example figures -- /tmp/figures
//! ```
//! The first run fills the directory (1,000 small observations); each run then opens
//! it in a fresh process and prints the figures. Run it several times: the machine
//! is shared and noisy.

#![allow(clippy::print_stdout)]

use std::time::Instant;

use coachsync_mobile::Device;

const DOCUMENTS: usize = 1_000;

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args()
        .nth(1)
        .ok_or("usage: figures DATA_DIR (filled with 1,000 documents on the first run)")?;
    if std::env::args().nth(2).as_deref() != Some("--open") {
        let filled = std::path::Path::new(&dir).exists();
        if !filled {
            let device = Device::new(dir.clone(), None)?;
            let mut first = None;
            for i in 0..DOCUMENTS {
                let json = format!(
                    r#"{{"title": "Walkthrough {i}", "setting": "classroom", "observedAt": 1773162300000, "status": "draft", "script": [{{"id": "e1", "at": 1773162360000, "text": "Students explain their reasoning to a partner; {i} of 24 on task", "tags": ["lf-discourse"]}}]}}"#
                );
                let url = device.create(Some("observation".into()), json)?;
                first.get_or_insert(url);
            }
            std::fs::write(format!("{dir}.first"), first.unwrap_or_default())?;
            device.shutdown()?;
            println!("filled {dir} with {DOCUMENTS} observations");
        }
        // Measure in a fresh process, as an app starting up would.
        let status = std::process::Command::new(std::env::current_exe()?)
            .arg(&dir)
            .arg("--open")
            .status()?;
        std::process::exit(status.code().unwrap_or(1));
    }
    let first_url = std::fs::read_to_string(format!("{dir}.first"))?;
    let before = rss_mib();
    let started = Instant::now();
    let device = Device::new(dir.clone(), None)?;
    let first = device.get(first_url)?;
    let to_first_get = started.elapsed();
    assert!(first.contains("Walkthrough"));
    let list = device.list(None)?;
    let listed = started.elapsed();
    for summary in &list {
        device.get(summary.url.clone())?;
    }
    println!(
        "{} documents: Device(...) to the first get {:.1} ms; list of all (reads each) after {:.0} ms; RSS with every document read {:.1} MiB (before opening {:.1} MiB)",
        list.len(),
        to_first_get.as_secs_f64() * 1e3,
        listed.as_secs_f64() * 1e3,
        rss_mib(),
        before
    );
    device.shutdown()?;
    Ok(())
}
