//! A Rust peer for the JavaScript interop tests: joins a document through the server
//! and edits it concurrently with a JavaScript client.
//!
//! ```text
//! rust-peer --url ws://127.0.0.1:PORT/sync --doc automerge:ID [--edits 20] [--prefix b] [--seed 1]
//! ```
//!
//! It prints `ready` once it holds the document, makes `--edits` changes (key
//! `<prefix><i>`, entry `counts.<prefix><i>`, and `<<prefix><i>>` appended to the text
//! `text`), pausing 0–25 ms between them, prints `edited` once the server has all of
//! them, then waits for a line `finish` on stdin, lets the sync settle, and prints one
//! line of JSON: `{"heads": [hex...], "doc": <the document as JSON>}`.

// Its output is the protocol with the test that drives it.
#![allow(clippy::print_stdout)]

use std::io::BufRead;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use automerge::{ObjType, ReadDoc, transaction::Transactable};
use coachsync_core::AutomergeUrl;
use coachsync_tests::Peer;
use rand::{Rng, SeedableRng};

struct Args {
    url: String,
    doc: AutomergeUrl,
    edits: usize,
    prefix: String,
    seed: u64,
}

fn parse_args() -> Result<Args> {
    let mut url = None;
    let mut doc = None;
    let mut edits = 20;
    let mut prefix = "b".to_owned();
    let mut seed = 1;
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--url" => url = Some(value),
            "--doc" => doc = Some(value.parse()?),
            "--edits" => edits = value.parse()?,
            "--prefix" => prefix = value,
            "--seed" => seed = value.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(Args {
        url: url.context("--url is required")?,
        doc: doc.context("--doc is required")?,
        edits,
        prefix,
        seed,
    })
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let doc = args.doc.document_id.clone();
    let mut peer = Peer::new(&format!("rust-peer-{}", args.prefix));
    peer.connect(&args.url).await?;
    if !peer.find(&doc).await? {
        bail!("the server says {doc} is unavailable");
    }
    println!("ready");
    let mut rng = rand::rngs::StdRng::seed_from_u64(args.seed);
    for i in 0..args.edits {
        let key = format!("{}{i}", args.prefix);
        peer.change(&doc, move |tx| {
            tx.put(automerge::ROOT, key.as_str(), i as i64)?;
            let counts = match tx.get(automerge::ROOT, "counts")? {
                Some((_, id)) => id,
                None => tx.put_object(automerge::ROOT, "counts", ObjType::Map)?,
            };
            tx.put(&counts, key.as_str(), i as i64)?;
            let text = match tx.get(automerge::ROOT, "text")? {
                Some((_, id)) => id,
                None => tx.put_object(automerge::ROOT, "text", ObjType::Text)?,
            };
            let end = tx.length(&text);
            tx.splice_text(&text, end, 0, &format!("<{key}>"))?;
            Ok(())
        })?;
        peer.settle(Duration::from_millis(rng.random_range(0..25)))
            .await?;
    }
    peer.wait_synced(&doc).await?;
    println!("edited");

    // Wait for the driving test to finish its own edits, pumping meanwhile so that
    // its changes keep arriving.
    let (tx, mut finish) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            if line.map(|l| l.trim() == "finish").unwrap_or(true) {
                break;
            }
        }
        let _ = tx.send(());
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        peer.settle(Duration::from_millis(50)).await?;
        if finish.try_recv().is_ok() {
            break;
        }
        if tokio::time::Instant::now() > deadline {
            bail!("no `finish` within 60 s");
        }
    }
    // Settled: the heads stay the same for half a second and the server has ours.
    let mut heads = peer.heads(&doc);
    loop {
        peer.settle(Duration::from_millis(500)).await?;
        let now = peer.heads(&doc);
        if now == heads && peer.server_covers(&doc) {
            break;
        }
        heads = now;
    }
    let document = peer.document(&doc).context("the document is held")?;
    let out = serde_json::json!({
        "heads": heads.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
        "doc": serde_json::to_value(automerge::AutoSerde::from(document))?,
    });
    println!("{out}");
    Ok(())
}
