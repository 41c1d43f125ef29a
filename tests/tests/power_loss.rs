//! Power loss, not only SIGKILL (ARCHITECTURE §4): a killed process leaves its writes
//! in the page cache, a power cut does not.
//!
//! The server runs with its data directory on `lossyfs` (tests/src/bin/lossyfs.rs), a
//! FUSE file system that keeps every file write in its own memory until the file is
//! fsynced. Cutting the power is SIGKILL to the server and to lossyfs: whatever was
//! not fsynced is gone, and the backing directory holds what a disk would. The server
//! then starts again on the backing directory itself (no FUSE), and a fresh peer
//! checks that every change the server had confirmed is there.
//!
//! Needs `/dev/fuse` and permission to mount (root, or `fusermount3` from Debian's
//! `fuse3`); the tests skip, saying why, only when one of those is missing.

#![allow(clippy::print_stderr)]

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use automerge::{ChangeHash, ReadDoc, ScalarValue, transaction::Transactable};
use coachsync_core::DocumentId;
use coachsync_tests::{Peer, ServerProcess};

/// Exit status of lossyfs when mounting is not permitted.
const EXIT_NOT_PERMITTED: i32 = 77;
/// Rounds of changes, each ended by a power cut.
const ROUNDS: usize = 5;
/// Changes confirmed by the server in each round (5 × 15 passes the engine's 64-chunk
/// compaction threshold, so a compaction happens between cuts too).
const CHANGES_PER_ROUND: usize = 15;

/// lossyfs mounted on a directory, as a child process. Dropping it kills lossyfs
/// (losing what it holds) and unmounts, so a failing test leaves no mount behind.
struct LossyMount {
    child: Option<Child>,
    mountpoint: PathBuf,
}

/// Why the tests cannot run here, if they cannot.
fn fuse_unavailable() -> Option<String> {
    if !Path::new("/dev/fuse").exists() {
        return Some("/dev/fuse is absent".into());
    }
    None
}

fn is_mounted(mountpoint: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let want = mountpoint.to_string_lossy().replace(' ', "\\040");
    info.lines().any(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let fstype = line.split(" - ").nth(1).and_then(|r| r.split(' ').next());
        fields.get(4) == Some(&want.as_str()) && fstype.is_some_and(|t| t.starts_with("fuse"))
    })
}

/// `fusermount3 -uz`, or `umount -l` where fuse3 is not installed (root only).
fn unmount_lazily(mountpoint: &Path) {
    let fusermount = Command::new("fusermount3")
        .arg("-uz")
        .arg(mountpoint)
        .stderr(Stdio::null())
        .status();
    if !matches!(fusermount, Ok(s) if s.success()) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(mountpoint)
            .stderr(Stdio::null())
            .status();
    }
}

enum Mounted {
    Yes(LossyMount),
    NotPermitted(String),
}

impl LossyMount {
    fn mount(backing: &Path, mountpoint: &Path) -> Result<Mounted> {
        let mountpoint = mountpoint.canonicalize()?;
        let mut child = Command::new(env!("CARGO_BIN_EXE_lossyfs"))
            .arg(backing)
            .arg(&mountpoint)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting lossyfs")?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut stderr = child.stderr.take().context("no stderr")?;
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        // From here on a failure unmounts whatever did get mounted.
        let mut mount = LossyMount {
            child: Some(child),
            mountpoint: mountpoint.clone(),
        };
        let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_default();
        if line.trim() == "lossyfs: mounted" {
            ensure!(
                is_mounted(&mountpoint),
                "lossyfs said it mounted {} but /proc/self/mountinfo has no FUSE mount there",
                mountpoint.display()
            );
            return Ok(Mounted::Yes(mount));
        }
        let mut child = mount.child.take().context("child")?;
        let _ = child.kill();
        let status = child.wait()?;
        let mut err = String::new();
        let _ = stderr.read_to_string(&mut err);
        if status.code() == Some(EXIT_NOT_PERMITTED) {
            return Ok(Mounted::NotPermitted(err.trim().to_owned()));
        }
        bail!("lossyfs did not mount ({status}):\n{err}");
    }

    /// The power goes: lossyfs dies with every write it held, then the mount goes.
    fn cut(mut self) -> Result<()> {
        self.crash()
    }

    fn crash(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        unmount_lazily(&self.mountpoint);
        ensure!(
            !is_mounted(&self.mountpoint),
            "{} is still mounted after fusermount3 -uz / umount -l",
            self.mountpoint.display()
        );
        Ok(())
    }
}

impl Drop for LossyMount {
    fn drop(&mut self) {
        let _ = self.crash();
    }
}

/// Mount, or say why the test skips (`Ok(None)`).
fn mount_or_skip(backing: &Path, mountpoint: &Path, test: &str) -> Result<Option<LossyMount>> {
    if let Some(why) = fuse_unavailable() {
        eprintln!("SKIPPED {test}: {why}");
        return Ok(None);
    }
    match LossyMount::mount(backing, mountpoint)? {
        Mounted::Yes(mount) => Ok(Some(mount)),
        Mounted::NotPermitted(err) => {
            eprintln!("SKIPPED {test}: mounting a FUSE file system is not permitted here: {err}");
            Ok(None)
        }
    }
}

/// Both die at once, as in a power cut: the server first (so it issues nothing more),
/// then the file system with everything not fsynced.
fn cut_power(server: ServerProcess, mount: LossyMount) -> Result<()> {
    server.kill()?;
    mount.cut()
}

fn storage_id(server: &mut ServerProcess) -> Result<String> {
    server
        .log()
        .iter()
        .find_map(|line| {
            let rest = line.split("storage_id=").nth(1)?;
            Some(rest.split_whitespace().next()?.trim_matches('"').to_owned())
        })
        .context("the server logged no storage_id")
}

/// The value under `key` as a string (ints and strings).
fn get(peer: &Peer, doc: &DocumentId, key: &str) -> Option<String> {
    let d = peer.document(doc)?;
    match d.get(automerge::ROOT, key).ok()??.0 {
        automerge::Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Int(i) => Some(i.to_string()),
            ScalarValue::Str(s) => Some(s.to_string()),
            _ => None,
        },
        _ => None,
    }
}

/// What the change numbered `n` writes: mostly small values, now and then one big
/// enough (about 150 KiB) that the store must split it into chunks.
fn value_for(n: usize) -> String {
    if n % 10 == 7 {
        format!("{n}:").repeat(150 * 1024 / format!("{n}:").len())
    } else {
        format!("change {n}")
    }
}

/// What a fresh peer finds on a server started on `data_dir` (no FUSE): every
/// confirmed change, checked by hash and by value.
async fn check_recovered(
    data_dir: &Path,
    doc: &DocumentId,
    confirmed: &[ChangeHash],
    confirmed_values: &[(String, String)],
    name: &str,
) -> Result<ServerProcess> {
    let server = ServerProcess::start(data_dir)
        .with_context(|| format!("{name}: the server does not start on the backing directory"))?;
    let mut checker = Peer::new(name);
    checker.connect(&server.sync_url()).await?;
    ensure!(
        checker.find(doc).await?,
        "{name}: the document is gone after the power cut"
    );
    let want = confirmed.to_vec();
    let waited = checker
        .pump_until("every confirmed change", move |p| {
            p.document(doc)
                .is_some_and(|d| want.iter().all(|h| d.get_change_by_hash(h).is_some()))
        })
        .await;
    if let Err(e) = waited {
        let have = checker.document(doc).map(|d| d.get_changes(&[]).len());
        let missing: Vec<String> = confirmed
            .iter()
            .filter(|h| {
                checker
                    .document(doc)
                    .is_none_or(|d| d.get_change_by_hash(h).is_none())
            })
            .map(|h| h.to_string())
            .collect();
        bail!(
            "{name}: confirmed changes lost in the power cut: {e}; the recovered document \
             has {have:?} changes, missing confirmed heads {missing:?}"
        );
    }
    for (key, value) in confirmed_values {
        ensure!(
            get(&checker, doc, key).as_deref() == Some(value.as_str()),
            "{name}: confirmed key {key} is wrong after the power cut"
        );
    }
    Ok(server)
}

#[tokio::test]
async fn confirmed_changes_survive_power_cuts() -> Result<()> {
    let test = "confirmed_changes_survive_power_cuts";
    let started = Instant::now();
    let backing = tempfile::tempdir()?;
    let mnt = tempfile::tempdir()?;
    let on_mount = mnt.path().join("data");
    let on_disk = backing.path().join("data");

    // Round 0: the power goes right after the store was created. sled writes its
    // `conf` and never fsyncs it; the store's open must have.
    let Some(mount) = mount_or_skip(backing.path(), mnt.path(), test)? else {
        return Ok(());
    };
    // The control: through the mount, one file written without fsync, one with.
    std::fs::create_dir(mnt.path().join("control"))?;
    let unsynced = b"written, never fsynced";
    let synced = b"written and fsynced";
    std::fs::write(mnt.path().join("control/unsynced"), unsynced)?;
    {
        let mut f = File::create(mnt.path().join("control/synced"))?;
        f.write_all(synced)?;
        f.sync_all()?;
        f.write_all(b" + a tail never fsynced")?;
    }
    assert_eq!(
        std::fs::read(mnt.path().join("control/unsynced"))?,
        unsynced,
        "lossyfs reads its own unsynced writes"
    );

    let mut server = ServerProcess::start(&on_mount)?;
    let first_storage_id = storage_id(&mut server)?;
    let conf = std::fs::read(on_mount.join("conf")).context("sled's conf file")?;
    cut_power(server, mount)?;

    // The file system really loses what was not fsynced, so nothing below can pass
    // for want of a power cut.
    assert_eq!(
        std::fs::read(backing.path().join("control/unsynced"))?,
        b"",
        "lossyfs kept a write that was never fsynced"
    );
    assert_eq!(
        std::fs::read(backing.path().join("control/synced"))?,
        synced,
        "lossyfs lost a write that was fsynced, or kept one that was not"
    );

    // sled writes `conf` at creation and never fsyncs it; an empty one after a cut makes
    // it start a new database over the old file (only harmless while the settings in
    // the code match what the lost file said).
    assert_eq!(
        String::from_utf8_lossy(&std::fs::read(on_disk.join("conf"))?),
        String::from_utf8_lossy(&conf),
        "round 0: sled's conf file was not fsynced when the store was opened"
    );
    let mut server = ServerProcess::start(&on_disk)
        .context("round 0: the server does not start after a power cut right after creation")?;
    assert_eq!(
        storage_id(&mut server)?,
        first_storage_id,
        "round 0: the database created before the power cut is gone (a new storage ID)"
    );
    server.kill()?;
    eprintln!("round 0 (fresh database) passed at {:?}", started.elapsed());

    let mut writer = Peer::new("writer");
    let mut doc: Option<DocumentId> = None;
    let mut confirmed: Vec<ChangeHash> = Vec::new();
    let mut confirmed_values: Vec<(String, String)> = Vec::new();
    let mut n = 0usize;
    for round in 1..=ROUNDS {
        let Some(mount) = mount_or_skip(backing.path(), mnt.path(), test)? else {
            bail!("round {round}: lossyfs mounted in round 0 but not now");
        };
        let mut server = ServerProcess::start(&on_mount)?;
        writer.connect(&server.sync_url()).await?;
        for _ in 0..CHANGES_PER_ROUND {
            let key = format!("k{n}");
            let value = value_for(n);
            let (k, v) = (key.clone(), value.clone());
            let put = move |tx: &mut automerge::transaction::Transaction<'_>| -> coachsync_core::Result<()> {
                tx.put(automerge::ROOT, k, v)?;
                Ok(())
            };
            let id = match &doc {
                Some(id) => {
                    writer.change(id, put)?;
                    id.clone()
                }
                None => {
                    let id = writer.create(put)?;
                    doc = Some(id.clone());
                    id
                }
            };
            if let Err(e) = writer.wait_synced(&id).await {
                bail!(
                    "round {round}: the server did not confirm change {n}: {e}\n\
                     server log:\n{}",
                    server.log().join("\n")
                );
            }
            // The server answered with heads covering every local change: from here
            // on they must survive a power cut.
            confirmed = writer.heads(&id);
            confirmed_values.push((key, value));
            n += 1;
        }
        let id = doc.clone().context("a document")?;
        // One more change, not waited for: the power goes while it may be in flight.
        let key = format!("k{n}");
        writer.change(&id, move |tx| {
            tx.put(automerge::ROOT, key, "in flight")?;
            Ok(())
        })?;
        n += 1;
        writer
            .settle(Duration::from_millis((round as u64 * 3) % 10))
            .await?;
        cut_power(server, mount)?;
        writer.disconnect().await;

        let server = check_recovered(
            &on_disk,
            &id,
            &confirmed,
            &confirmed_values,
            &format!("checker-{round}"),
        )
        .await
        .with_context(|| format!("round {round}"))?;
        server.kill()?;
        let blobs: Vec<_> = std::fs::read_dir(on_disk.join("blobs"))
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        assert!(blobs.is_empty(), "sled wrote blob files: {blobs:?}");
        eprintln!(
            "round {round}: {} confirmed changes survived the cut ({:?})",
            confirmed_values.len(),
            started.elapsed()
        );
    }
    Ok(())
}

/// lossyfs itself: read-your-writes, sizes, truncation, renames and unlinks while
/// mounted, and after a crash exactly the fsynced contents.
#[test]
fn lossyfs_keeps_only_what_was_fsynced() -> Result<()> {
    let test = "lossyfs_keeps_only_what_was_fsynced";
    let backing = tempfile::tempdir()?;
    let mnt = tempfile::tempdir()?;
    std::fs::write(backing.path().join("old"), b"old contents, durable")?;
    let Some(mount) = mount_or_skip(backing.path(), mnt.path(), test)? else {
        return Ok(());
    };
    let m = mnt.path();
    assert_eq!(std::fs::read(m.join("old"))?, b"old contents, durable");

    // Overwrite in place without fsync, across a page boundary.
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(m.join("old"))?;
        f.write_all(b"NEW")?;
    }
    assert_eq!(std::fs::read(m.join("old"))?, b"NEW contents, durable");

    // A bigger file: sizes and reads reflect pending writes; a truncation then an
    // extension reads zeros, not the old bytes.
    let big: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    {
        let mut f = File::create(m.join("big"))?;
        f.write_all(&big)?;
        f.sync_all()?;
        f.set_len(5_000)?;
        f.set_len(9_000)?;
    }
    assert_eq!(std::fs::metadata(m.join("big"))?.len(), 9_000);
    let read = std::fs::read(m.join("big"))?;
    assert_eq!(&read[..5_000], &big[..5_000]);
    assert!(read[5_000..].iter().all(|&b| b == 0));

    // Fsynced, then renamed: the rename is applied at once, the contents durable.
    {
        let mut f = File::create(m.join("renamed-from"))?;
        f.write_all(b"synced before the rename")?;
        f.sync_data()?;
    }
    std::fs::rename(m.join("renamed-from"), m.join("renamed-to"))?;
    std::fs::create_dir(m.join("dir"))?;
    std::fs::write(m.join("dir/gone"), b"x")?;
    std::fs::remove_file(m.join("dir/gone"))?;
    assert!(!m.join("dir/gone").exists());

    mount.cut()?;
    let b = backing.path();
    assert_eq!(
        std::fs::read(b.join("old"))?,
        b"old contents, durable",
        "the unsynced overwrite is lost"
    );
    assert_eq!(
        std::fs::read(b.join("big"))?,
        big,
        "the unsynced truncation is lost"
    );
    assert_eq!(
        std::fs::read(b.join("renamed-to"))?,
        b"synced before the rename"
    );
    assert!(!b.join("renamed-from").exists());
    assert!(b.join("dir").is_dir() && !b.join("dir/gone").exists());
    Ok(())
}
