//! End to end with the store in PostgreSQL: the real `coachsync serve --database-url`
//! against a private cluster, Rust peers over WebSockets, SIGKILL and restarts on
//! the same database, and `coachsync admin` with and without a server running.

#![allow(clippy::print_stderr)]

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Result;
use automerge::{ReadDoc, ScalarValue, transaction::Transactable};
use coachsync_core::DocumentId;
use coachsync_tests::files::files_containing;
use coachsync_tests::postgres::{Access, PgCluster};
use coachsync_tests::server_process::binary;
use coachsync_tests::site::{
    Site, WAIT, device_config, eventually, relationship, synced, work_plan,
};
use coachsync_tests::{Peer, ServerProcess, admin};

fn get_int(peer: &Peer, doc: &DocumentId, key: &str) -> Option<i64> {
    let d = peer.document(doc)?;
    match d.get(automerge::ROOT, key).ok()??.0 {
        automerge::Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Int(i) => Some(*i),
            _ => None,
        },
        _ => None,
    }
}

fn put(
    key: String,
    value: i64,
) -> impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> coachsync_core::Result<()> {
    move |tx| {
        tx.put(automerge::ROOT, key, value)?;
        Ok(())
    }
}

#[tokio::test]
async fn what_a_server_on_postgres_acknowledged_survives_sigkill_and_restarts() -> Result<()> {
    let Some(cluster) = PgCluster::start_or_skip(
        "what_a_server_on_postgres_acknowledged_survives_sigkill_and_restarts",
    ) else {
        return Ok(());
    };
    let url = cluster.create_database("sigkill")?;
    let dir = tempfile::tempdir()?;
    let flags = ["--database-url", url.as_str()];
    let mut server = ServerProcess::start_with(dir.path(), &flags)?;
    let storage_line = |server: &mut ServerProcess| {
        server
            .log()
            .iter()
            .find(|l| l.contains("store open in PostgreSQL"))
            .cloned()
    };
    let first_open = storage_line(&mut server).expect("the server says where its store is");
    assert!(!first_open.contains("password"), "{first_open}");

    let mut coach = Peer::new("coach");
    coach.connect(&server.sync_url()).await?;
    let mut docs = Vec::new();
    for d in 0..3 {
        let doc = coach.create(put("created".into(), d))?;
        coach.wait_synced(&doc).await?;
        docs.push(doc);
    }
    for round in 1..=4i64 {
        // Every document gets a change, and the server answers for each: from here
        // on it must survive anything.
        for doc in &docs {
            coach.change(doc, put(format!("round-{round}"), round))?;
        }
        for doc in &docs {
            coach.wait_synced(doc).await?;
        }
        server.kill()?;
        coach.disconnect().await;
        server = ServerProcess::start_with(dir.path(), &flags)?;
        let mut check = Peer::new(&format!("check-{round}"));
        check.connect(&server.sync_url()).await?;
        for (d, doc) in docs.iter().enumerate() {
            assert!(
                check.find(doc).await?,
                "round {round}: document {d} survived"
            );
            check.wait_heads(doc, &coach.heads(doc)).await?;
            assert_eq!(get_int(&check, doc, "created"), Some(d as i64));
            for r in 1..=round {
                assert_eq!(
                    get_int(&check, doc, &format!("round-{r}")),
                    Some(r),
                    "round {round}: change {r} of document {d} survived SIGKILL"
                );
            }
        }
        coach.connect(&server.sync_url()).await?;
    }
    // The store is the database's: nothing of sled in the data directory, and one
    // storage ID across restarts.
    assert!(!dir.path().join("db").exists() && !dir.path().join("conf").exists());
    let id_of = |line: &str| {
        line.split("storage_id=")
            .nth(1)
            .map(|rest| rest.split_whitespace().next().unwrap_or("").to_owned())
    };
    assert_eq!(
        id_of(&storage_line(&mut server).expect("logged")),
        id_of(&first_open)
    );
    // /healthz says whether the database answers: yes, then not once it is gone.
    assert_eq!(server.http_get("/healthz").await?.0, 200);
    drop(cluster);
    let (status, body) = server.http_get("/healthz").await?;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("does not answer"), "{body}");
    Ok(())
}

#[tokio::test]
async fn admin_commands_reach_the_database_with_and_without_a_server() -> Result<()> {
    let Some(cluster) =
        PgCluster::start_or_skip("admin_commands_reach_the_database_with_and_without_a_server")
    else {
        return Ok(());
    };
    let url = cluster.create_database("admin")?;
    let dir = tempfile::tempdir()?;
    let db = ["--database-url", url.as_str()];
    let with_db = |args: &[&str]| -> Vec<String> {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend(db.iter().map(|s| s.to_string()));
        all
    };
    let run = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        admin(dir.path(), &args)
    };

    // No server yet: straight to the database, which it sets up.
    let token = run(with_db(&[
        "user", "add", "--name", "ana", "--role", "admin",
    ]))?;
    assert!(token.len() > 20, "a token: {token}");

    // A server on the database, and on the data directory: through its socket.
    let server = ServerProcess::start_with(dir.path(), &db)?;
    let ben = run(with_db(&[
        "user", "add", "--name", "ben", "--role", "coach",
    ]))?;
    let (status, body) = server.http("GET", "/api/me", Some(&token), None).await?;
    assert_eq!(
        status, 200,
        "the user added before the server started: {body}"
    );
    // The running server knows ben at once: the command went through its socket,
    // not around it to the database.
    let (status, body) = server.http("GET", "/api/me", Some(&ben), None).await?;
    assert_eq!(status, 200, "the user added through the socket: {body}");
    assert!(body.contains("ben"), "{body}");
    let list = Command::new(binary())
        .args(["admin", "user", "list", "--data-dir"])
        .arg(dir.path())
        .stdin(Stdio::null())
        .output()?;
    let list = String::from_utf8(list.stdout)?;
    assert!(list.contains("ana") && list.contains("ben"), "{list}");
    let status = server.terminate(Duration::from_secs(15))?;
    assert!(status.success(), "{status}");

    // Stopped: ben, added through the socket, is in the database.
    let list = Command::new(binary())
        .args(["admin", "user", "list", "--data-dir"])
        .arg(dir.path())
        .args(db)
        .stdin(Stdio::null())
        .output()?;
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let list = String::from_utf8(list.stdout)?;
    assert!(list.contains("ana") && list.contains("ben"), "{list}");
    Ok(())
}

#[tokio::test]
async fn a_purge_on_a_running_server_leaves_no_byte_in_the_database_tables() -> Result<()> {
    let Some(cluster) = PgCluster::start_or_skip(
        "a_purge_on_a_running_server_leaves_no_byte_in_the_database_tables",
    ) else {
        return Ok(());
    };
    let url = cluster.create_database("purge")?;
    let mut site = Site::start_with_database(
        &[
            ("coach", "coach"),
            ("principal", "client"),
            ("root", "admin"),
        ],
        &[],
        &url,
    )?;
    let rel = relationship(&site, &["coach"], &["principal"])?;
    let phone = tempfile::tempdir()?;
    let coach = site.device(phone.path(), "coach").await?;
    let plan = coach.create(work_plan(&rel)?).await?;
    synced(&coach).await?;
    // A plain string in a change of its own, synced alone: automerge compresses only
    // changes over 256 bytes, and PostgreSQL only rows over about 2 KiB, so the text
    // is in the table files as it is.
    let secret = "Ms Rivera asked for this to stay between us";
    coach
        .set(&plan, &"remark".parse()?, serde_json::json!(secret))
        .await?;
    synced(&coach).await?;
    cluster.execute("postgres", "CHECKPOINT")?;
    let base = cluster.data_dir().join("base");
    assert!(
        !files_containing(&base, secret.as_bytes()).is_empty(),
        "the text is in the table files before the purge, so the check below can fail: {:?}",
        files_containing(&cluster.data_dir(), secret.as_bytes())
    );

    let summary = admin(
        site.server().data_dir(),
        &["doc", "purge", &format!("automerge:{plan}")],
    )?;
    assert!(summary.starts_with("store rewritten"), "{summary}");
    cluster.execute("postgres", "CHECKPOINT")?;
    assert_eq!(
        files_containing(&base, secret.as_bytes()),
        Vec::<std::path::PathBuf>::new(),
        "no table file holds the purged text"
    );
    // The server goes on: the device drops the document, and it stays gone after a
    // SIGKILL and restart on the same database.
    eventually("the coach's device drops the document", async || {
        Ok(!coach.statuses().await?.iter().any(|s| s.document == plan))
    })
    .await?;
    coach.close().await?;
    site.restart()?;
    let fresh = tempfile::tempdir()?;
    let again = site.device(fresh.path(), "coach").await?;
    assert!(
        tokio::time::timeout(WAIT, again.fetch(&plan))
            .await?
            .is_err()
    );
    let other = again.create(work_plan(&rel)?).await?;
    synced(&again).await?;
    assert!(
        again.value(&other).await.is_ok(),
        "writes go on after the purge"
    );
    again.close().await?;
    Ok(())
}

/// `coachsync serve` with these flags; its exit status and standard error.
fn serve_fails(dir: &std::path::Path, flags: &[&str]) -> Result<(bool, String)> {
    let mut child = Command::new(binary())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(flags)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait()?.is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            anyhow::bail!("the server did not give up");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output()?;
    Ok((output.status.success(), String::from_utf8(output.stderr)?))
}

#[test]
fn a_bad_or_unreachable_database_is_a_clear_error_not_a_panic() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let (ok, err) = serve_fails(
        dir.path(),
        &["--database-url", "postgres://coach:s3cret@db:port/x"],
    )?;
    assert!(!ok);
    assert!(err.contains("invalid --database-url"), "{err}");
    assert!(
        !err.contains("s3cret") && !err.contains("panicked"),
        "{err}"
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = closed.local_addr()?.port();
    drop(closed);
    let url = format!("postgres://coach:s3cret@127.0.0.1:{port}/coachsync");
    let (ok, err) = serve_fails(dir.path(), &["--database-url", &url])?;
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "database postgres://coach@127.0.0.1:{port}/coachsync"
        )),
        "{err}"
    );
    assert!(err.contains("cannot connect"), "{err}");
    assert!(
        !err.contains("s3cret") && !err.contains("panicked"),
        "{err}"
    );

    // The admin commands say the same.
    let output = Command::new(binary())
        .args([
            "admin",
            "user",
            "list",
            "--database-url",
            &url,
            "--data-dir",
        ])
        .arg(dir.path())
        .stdin(Stdio::null())
        .output()?;
    let err = String::from_utf8(output.stderr)?;
    assert!(!output.status.success());
    assert!(
        err.contains("cannot connect") && !err.contains("panicked"),
        "{err}"
    );
    Ok(())
}

#[tokio::test]
async fn two_servers_on_one_database_carry_each_others_changes_live() -> Result<()> {
    let Some(cluster) =
        PgCluster::start_or_skip("two_servers_on_one_database_carry_each_others_changes_live")
    else {
        return Ok(());
    };
    let url = cluster.create_database("two")?;
    let (dir_a, dir_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let flags = ["--database-url", url.as_str()];
    let a = ServerProcess::start_with(dir_a.path(), &flags)?;
    let b = ServerProcess::start_with(dir_b.path(), &flags)?;

    // Created through A, found through B.
    let mut on_a = Peer::new("on-a");
    on_a.connect(&a.sync_url()).await?;
    let doc = on_a.create(put("created".into(), 1))?;
    on_a.wait_synced(&doc).await?;
    let mut on_b = Peer::new("on-b");
    on_b.connect(&b.sync_url()).await?;
    assert!(on_b.find(&doc).await?, "B serves what A stored");
    assert_eq!(get_int(&on_b, &doc, "created"), Some(1));

    // Both open: each one's edits reach the other through the other server, with
    // no reconnect, by the database's notifications.
    for round in 0..3i64 {
        on_b.change(&doc, put(format!("from-b-{round}"), round))?;
        on_a.change(&doc, put(format!("from-a-{round}"), round))?;
        on_a.wait_synced(&doc).await?;
        on_b.wait_synced(&doc).await?;
        let deadline = tokio::time::Instant::now() + WAIT;
        while on_a.heads(&doc) != on_b.heads(&doc) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "round {round}: the peers did not converge"
            );
            on_a.settle(Duration::from_millis(50)).await?;
            on_b.settle(Duration::from_millis(50)).await?;
        }
        assert_eq!(
            get_int(&on_a, &doc, &format!("from-b-{round}")),
            Some(round)
        );
        assert_eq!(
            get_int(&on_b, &doc, &format!("from-a-{round}")),
            Some(round)
        );
    }
    // An admin command run on the database directly, with no server on its data
    // directory, reaches the running servers through the same notifications.
    let elsewhere = tempfile::tempdir()?;
    let token = admin(
        elsewhere.path(),
        &[
            "user",
            "add",
            "--name",
            "dee",
            "--role",
            "coach",
            "--database-url",
            &url,
        ],
    )?;
    for server in [&a, &b] {
        eventually(
            "the running servers know a user added around them",
            async || Ok(server.http("GET", "/api/me", Some(&token), None).await?.0 == 200),
        )
        .await?;
    }
    // Each server reports the other's notifications, their lag, and its pool.
    for server in [&a, &b] {
        assert!(server.metric("coachsync_db_notifications_total").await? >= 3.0);
        assert!(
            server
                .metric("coachsync_db_notification_lag_seconds_count")
                .await?
                >= 3.0
        );
        assert!(server.metric("coachsync_db_pool_connections").await? >= 1.0);
        assert!(server.metric("coachsync_store_write_seconds_count").await? >= 3.0);
    }
    Ok(())
}

/// A device on one server, signed in with `token` (or anonymous).
async fn device_on(
    server: &ServerProcess,
    dir: &std::path::Path,
    token: Option<&str>,
) -> Result<coachsync_core::Device> {
    let mut config = device_config(dir, Some(&server.sync_url()));
    config.token = token.map(str::to_owned);
    Ok(coachsync_core::Device::open(config).await?)
}

#[tokio::test]
async fn a_grant_on_one_server_and_a_revoke_on_the_other_hold_on_both() -> Result<()> {
    let Some(cluster) =
        PgCluster::start_or_skip("a_grant_on_one_server_and_a_revoke_on_the_other_hold_on_both")
    else {
        return Ok(());
    };
    let url = cluster.create_database("grants")?;
    let (dir_a, dir_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let flags = ["--database-url", url.as_str()];
    let a = ServerProcess::start_secure(dir_a.path(), &flags)?;
    let b = ServerProcess::start_secure(dir_b.path(), &flags)?;
    // Users made through A are known to B at once.
    let coach = admin(
        dir_a.path(),
        &[
            "user",
            "add",
            "--name",
            "coach",
            "--role",
            "coach",
            "--database-url",
            &url,
        ],
    )?;
    let principal = admin(
        dir_a.path(),
        &[
            "user",
            "add",
            "--name",
            "principal",
            "--role",
            "client",
            "--database-url",
            &url,
        ],
    )?;
    eventually("B knows the new user", async || {
        Ok(b.http("GET", "/api/me", Some(&principal), None).await?.0 == 200)
    })
    .await?;

    let dirs = [
        tempfile::tempdir()?,
        tempfile::tempdir()?,
        tempfile::tempdir()?,
    ];
    let coach_a = device_on(&a, dirs[0].path(), Some(&coach)).await?;
    let doc = coach_a
        .create(serde_json::json!({"note": "plan for Monday"}))
        .await?;
    synced(&coach_a).await?;
    let principal_b = device_on(&b, dirs[1].path(), Some(&principal)).await?;
    assert!(
        tokio::time::timeout(WAIT, principal_b.fetch(&doc))
            .await?
            .is_err(),
        "B refuses the coach's document to the principal before any grant"
    );

    // Granted through A: B lets her read it.
    let body = r#"{"user": "principal", "access": "read"}"#;
    let path = format!("/api/docs/{doc}/grants");
    assert_eq!(
        a.http("POST", &path, Some(&coach), Some(body)).await?.0,
        200
    );
    eventually("B applies A's grant", async || {
        Ok(
            tokio::time::timeout(Duration::from_secs(2), principal_b.fetch(&doc))
                .await
                .is_ok_and(|r| r.is_ok()),
        )
    })
    .await?;
    let principal_a = device_on(&a, dirs[2].path(), Some(&principal)).await?;
    tokio::time::timeout(WAIT, principal_a.fetch(&doc)).await??;

    // Revoked through B: neither server sends her the coach's next edit.
    let revoke = r#"{"user": "principal"}"#;
    assert_eq!(
        b.http("DELETE", &path, Some(&coach), Some(revoke)).await?.0,
        200
    );
    eventually("A applies B's revoke", async || {
        let (_, listed) = a.http("GET", "/api/docs", Some(&principal), None).await?;
        Ok(!listed.contains(&doc.to_string()))
    })
    .await?;
    coach_a
        .set(
            &doc,
            &"note".parse()?,
            serde_json::json!("after the revoke"),
        )
        .await?;
    synced(&coach_a).await?;
    for device in [&principal_a, &principal_b] {
        coachsync_tests::site::never_receives(device, &doc, "note", "after the revoke").await?;
    }
    for device in [coach_a, principal_a, principal_b] {
        device.close().await?;
    }
    Ok(())
}

/// `coachsync admin ARGS`, its status and what it printed (stdout, stderr).
fn admin_output(args: &[&str]) -> Result<(bool, String, String)> {
    let out = Command::new(binary())
        .arg("admin")
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    Ok((
        out.status.success(),
        String::from_utf8(out.stdout)?,
        String::from_utf8(out.stderr)?,
    ))
}

#[tokio::test]
async fn migrate_store_moves_a_sled_directory_and_every_server_serves_the_same_heads() -> Result<()>
{
    let Some(cluster) = PgCluster::start_or_skip(
        "migrate_store_moves_a_sled_directory_and_every_server_serves_the_same_heads",
    ) else {
        return Ok(());
    };
    const DOCUMENTS: i64 = 120;
    let url = cluster.create_database("migrate")?;
    let sled_dir = tempfile::tempdir()?;
    let sled_path = sled_dir.path().to_str().expect("utf-8").to_owned();
    let migrate = [
        "migrate-store",
        "--data-dir",
        &sled_path,
        "--database-url",
        &url,
    ];

    // An installation on the embedded store: users, and documents with a few changes
    // each.
    let server = ServerProcess::start(sled_dir.path())?;
    admin(
        sled_dir.path(),
        &["user", "add", "--name", "ana", "--role", "admin"],
    )?;
    let revoked = admin(
        sled_dir.path(),
        &["user", "add", "--name", "ben", "--role", "coach"],
    )?;
    let mut peer = Peer::new("before");
    peer.connect(&server.sync_url()).await?;
    let mut docs = Vec::new();
    for d in 0..DOCUMENTS {
        let doc = peer.create(put("n".into(), d))?;
        peer.change(&doc, put("twice".into(), 2 * d))?;
        docs.push(doc);
    }
    for doc in &docs {
        peer.wait_synced(doc).await?;
    }
    // Not while a server runs on the data directory: the copy would miss its writes.
    let (ok, _, err) = admin_output(&migrate)?;
    assert!(!ok && err.contains("stop it first"), "{err}");
    peer.disconnect().await;
    assert!(server.terminate(Duration::from_secs(15))?.success());

    let (ok, out, err) = admin_output(&migrate)?;
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!(
            "{DOCUMENTS} documents: {DOCUMENTS} copied, 0 merged, 0 unchanged"
        )),
        "{out}"
    );
    assert!(out.contains("heads verified"), "{out}");
    // Again: nothing to do.
    let (ok, out, err) = admin_output(&migrate)?;
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("0 copied, 0 merged, {DOCUMENTS} unchanged"))
            && out.contains("0 written, 0 removed"),
        "{out}"
    );

    // The old server runs a while longer: one document changes, one token is revoked.
    // Running the migration again carries both.
    let server = ServerProcess::start(sled_dir.path())?;
    let mut late = Peer::new("late");
    late.connect(&server.sync_url()).await?;
    assert!(late.find(&docs[7]).await?);
    late.change(&docs[7], put("late".into(), 7))?;
    late.wait_synced(&docs[7]).await?;
    late.disconnect().await;
    admin(sled_dir.path(), &["token", "revoke", "--token", &revoked])?;
    assert!(server.terminate(Duration::from_secs(15))?.success());
    let (ok, out, err) = admin_output(&migrate)?;
    assert!(ok, "{err}");
    assert!(
        out.contains(&format!("1 merged, {} unchanged", DOCUMENTS - 1)),
        "{out}"
    );
    let users = |extra: &[&str]| -> Result<String> {
        let mut args = vec!["user", "list", "--data-dir", &sled_path];
        args.extend_from_slice(extra);
        let (ok, out, err) = admin_output(&args)?;
        assert!(ok, "{err}");
        Ok(out)
    };
    assert_eq!(
        users(&["--database-url", &url])?,
        users(&[])?,
        "the same accounts and tokens"
    );

    // The sled server and two servers on the database serve every document with the
    // same heads.
    let sled = ServerProcess::start(sled_dir.path())?;
    let (dir_a, dir_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let db = ["--database-url", url.as_str()];
    let a = ServerProcess::start_with(dir_a.path(), &db)?;
    let b = ServerProcess::start_with(dir_b.path(), &db)?;
    let mut readers = Vec::new();
    for (name, server) in [("sled", &sled), ("a", &a), ("b", &b)] {
        let mut reader = Peer::new(name);
        reader.connect(&server.sync_url()).await?;
        readers.push(reader);
    }
    for (d, doc) in docs.iter().enumerate() {
        let mut heads = Vec::new();
        for reader in &mut readers {
            assert!(reader.find(doc).await?, "document {d} is served");
            let mut h = reader.heads(doc);
            h.sort();
            heads.push(h);
        }
        assert!(
            heads.windows(2).all(|w| w[0] == w[1]),
            "document {d}: the same heads on every server: {heads:?}"
        );
        assert_eq!(get_int(&readers[2], doc, "twice"), Some(2 * d as i64));
    }
    assert_eq!(get_int(&readers[1], &docs[7], "late"), Some(7));

    // Once a server has used the database on its own, copying over it would undo
    // what it recorded: refused, and nothing changes.
    for reader in &mut readers {
        reader.disconnect().await;
    }
    assert!(sled.terminate(Duration::from_secs(15))?.success());
    admin(
        dir_a.path(),
        &["user", "add", "--name", "cai", "--role", "coach"],
    )?;
    let (ok, _, err) = admin_output(&migrate)?;
    assert!(!ok && err.contains("used the database on its own"), "{err}");
    assert!(users(&["--database-url", &url])?.contains("cai"));
    Ok(())
}

#[tokio::test]
async fn a_database_that_requires_tls_is_reached_with_its_certificate_checked() -> Result<()> {
    let Some(cluster) = PgCluster::start_or_skip_with(
        "a_database_that_requires_tls_is_reached_with_its_certificate_checked",
        Access::Tls,
    ) else {
        return Ok(());
    };
    let base = cluster.create_database("tls")?;
    let ca = cluster.ca_file();
    let ca = ca.to_str().expect("utf-8");
    let dir = tempfile::tempdir()?;

    // The database takes TCP only over TLS.
    let (ok, err) = serve_fails(
        dir.path(),
        &["--database-url", &format!("{base}?sslmode=disable")],
    )?;
    assert!(!ok && err.contains("cannot connect"), "{err}");
    // Its certificate is signed by no public root: verify-full without the CA refuses
    // it, saying why.
    let (ok, err) = serve_fails(
        dir.path(),
        &["--database-url", &format!("{base}?sslmode=verify-full")],
    )?;
    assert!(!ok && err.contains("certificate"), "{err}");
    assert!(!err.contains("panicked"), "{err}");

    // With its CA, verify-full connects, and the store works through TLS: what a
    // peer synced is there after a restart.
    let flags = [
        "--database-url".to_owned(),
        format!("{base}?sslmode=verify-full&sslrootcert={ca}"),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = ServerProcess::start_with(dir.path(), &flags)?;
    let mut peer = Peer::new("over-tls");
    peer.connect(&server.sync_url()).await?;
    let doc = peer.create(put("sealed".into(), 1))?;
    peer.wait_synced(&doc).await?;
    peer.disconnect().await;
    assert!(server.terminate(Duration::from_secs(15))?.success());
    // require: encrypted, the certificate unchecked, as libpq means it.
    let mut server = ServerProcess::start_with(
        dir.path(),
        &["--database-url", &format!("{base}?sslmode=require")],
    )?;
    let mut check = Peer::new("check");
    check.connect(&server.sync_url()).await?;
    assert!(check.find(&doc).await?);
    assert_eq!(get_int(&check, &doc, "sealed"), Some(1));
    // The connection that listens for other servers' changes got through as well.
    let log = server.log().join("\n");
    assert!(!log.contains("cannot listen"), "{log}");
    Ok(())
}

#[test]
fn a_password_comes_from_the_url_or_from_a_private_password_file() -> Result<()> {
    let Some(cluster) = PgCluster::start_or_skip_with(
        "a_password_comes_from_the_url_or_from_a_private_password_file",
        Access::Password,
    ) else {
        return Ok(());
    };
    cluster.execute("postgres", "CREATE ROLE coach LOGIN PASSWORD 'pa:ss'")?;
    cluster.execute("postgres", "CREATE DATABASE pw OWNER coach")?;
    let port = cluster.port();
    let url = format!("postgres://coach@127.0.0.1:{port}/pw");
    let dir = tempfile::tempdir()?;
    let add = |name: &str, url: &str, passfile: &std::path::Path| -> Result<(bool, String)> {
        let out = Command::new(binary())
            .args(["admin", "user", "add", "--role", "coach", "--name", name])
            .args(["--database-url", url, "--data-dir"])
            .arg(dir.path())
            .env("PGPASSFILE", passfile)
            .stdin(Stdio::null())
            .output()?;
        Ok((out.status.success(), String::from_utf8(out.stderr)?))
    };
    let passfile = dir.path().join("pgpass");

    // No password anywhere: refused by the database, said plainly.
    let (ok, err) = add("ana", &url, &passfile)?;
    assert!(!ok && err.contains("password"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // In the URL.
    let (ok, err) = add(
        "ana",
        &format!("postgres://coach:pa%3Ass@127.0.0.1:{port}/pw"),
        &passfile,
    )?;
    assert!(ok, "{err}");
    // In a password file only its owner may read, as libpq finds it.
    std::fs::write(
        &passfile,
        format!("# coachsync\nelsewhere:*:*:*:wrong\n127.0.0.1:{port}:pw:coach:pa\\:ss\n"),
    )?;
    std::fs::set_permissions(
        &passfile,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )?;
    let (ok, err) = add("ben", &url, &passfile)?;
    assert!(ok, "{err}");
    // A password file others may read is ignored, with a warning.
    std::fs::set_permissions(
        &passfile,
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )?;
    let (ok, err) = add("cai", &url, &passfile)?;
    assert!(!ok && err.contains("readable by others"), "{err}");
    Ok(())
}

#[tokio::test]
async fn a_restored_dump_takes_a_new_storage_id_by_itself_and_no_device_change_is_lost()
-> Result<()> {
    let Some(cluster) = PgCluster::start_or_skip(
        "a_restored_dump_takes_a_new_storage_id_by_itself_and_no_device_change_is_lost",
    ) else {
        return Ok(());
    };
    let live = cluster.create_database("live")?;
    let dir = tempfile::tempdir()?;
    let server = ServerProcess::start_with(dir.path(), &["--database-url", &live])?;
    let addr = server.addr();
    let phone = tempfile::tempdir()?;
    let device = device_on(&server, phone.path(), None).await?;
    let doc = device
        .create(serde_json::json!({"note": "before the dump"}))
        .await?;
    device.wait_synced().await?;

    // The backup, as docs/OPERATIONS.md gives it; then the device goes on syncing,
    // so its cursor passes what the dump holds.
    let live_name = live.rsplit('/').next().expect("a database name");
    cluster.run(
        "pg_dump",
        &["--format=custom", "--file=coachsync.dump", live_name],
    )?;
    for n in 0..5 {
        device
            .set(&doc, &format!("after{n}").parse()?, serde_json::json!(n))
            .await?;
        device.wait_synced().await?;
    }
    let later = device
        .create(serde_json::json!({"note": "after the dump"}))
        .await?;
    device.wait_synced().await?;
    device.close().await?;
    assert!(server.terminate(Duration::from_secs(15))?.success());

    // Restored into a new database and served at the same address, with nothing done
    // by hand: the store sees it is not where it was and takes a new storage ID.
    let restored = cluster.create_database("restored")?;
    let restored_name = restored.rsplit('/').next().expect("a database name");
    cluster.run(
        "pg_restore",
        &["--no-owner", "--dbname", restored_name, "coachsync.dump"],
    )?;
    let mut server = ServerProcess::start_on(dir.path(), addr, &["--database-url", &restored])?;
    assert!(
        server
            .log()
            .iter()
            .any(|l| l.contains("restored or copied")),
        "the server says why devices sync everything once"
    );

    // Another device edits the restored document before the first one comes back:
    // its change gets a sequence number below the first device's cursor.
    let mut other = Peer::new("other");
    other.connect(&server.sync_url()).await?;
    assert!(other.find(&doc).await?);
    assert!(!other.find(&later).await?, "the dump predates it");
    other.change(&doc, put("other".into(), 1))?;
    other.wait_synced(&doc).await?;

    // The first device reconnects to what looks like the same server: the new storage
    // ID makes it sync everything, both ways. (With the old one, it would trust its
    // cursor, and neither side would hear of the other's changes.)
    let device = device_on(&server, phone.path(), None).await?;
    eventually(
        "the device hears of the other device's change",
        async || {
            device.sync_now();
            Ok(device.value(&doc).await?["other"] == 1)
        },
    )
    .await?;
    device.wait_synced().await?;
    let mut check = Peer::new("check");
    check.connect(&server.sync_url()).await?;
    assert!(
        check.find(&later).await?,
        "the document made after the dump is back"
    );
    assert!(check.find(&doc).await?);
    assert_eq!(
        get_int(&check, &doc, "after4"),
        Some(4),
        "the edits made after the dump are back"
    );
    assert_eq!(get_int(&check, &doc, "other"), Some(1));
    device.close().await?;
    Ok(())
}

#[tokio::test]
async fn a_database_restart_costs_devices_a_reconnect_and_nothing_else() -> Result<()> {
    let Some(cluster) =
        PgCluster::start_or_skip("a_database_restart_costs_devices_a_reconnect_and_nothing_else")
    else {
        return Ok(());
    };
    let url = cluster.create_database("restart")?;
    let dir = tempfile::tempdir()?;
    let server = ServerProcess::start_with(dir.path(), &["--database-url", &url])?;
    let phone = tempfile::tempdir()?;
    let device = device_on(&server, phone.path(), None).await?;
    let doc = device.create(serde_json::json!({"note": "before"})).await?;
    device.wait_synced().await?;

    // The database restarts under the running server: every pooled connection and the
    // listening one are cut.
    cluster.restart()?;
    for n in 0..3 {
        device
            .set(&doc, &format!("after{n}").parse()?, serde_json::json!(n))
            .await?;
    }
    eventually("the device's changes are stored again", async || {
        device.sync_now();
        Ok(
            tokio::time::timeout(Duration::from_secs(2), device.wait_synced())
                .await
                .is_ok_and(|r| r.is_ok()),
        )
    })
    .await?;
    assert_eq!(server.http_get("/healthz").await?.0, 200);
    let mut check = Peer::new("check");
    check.connect(&server.sync_url()).await?;
    assert!(check.find(&doc).await?);
    assert_eq!(get_int(&check, &doc, "after2"), Some(2));
    device.close().await?;
    Ok(())
}

#[tokio::test]
async fn a_database_over_its_unix_socket_needs_no_tls() -> Result<()> {
    let Some(cluster) = PgCluster::start_or_skip("a_database_over_its_unix_socket_needs_no_tls")
    else {
        return Ok(());
    };
    let url = cluster.create_database("socket")?;
    let name = url.rsplit('/').next().expect("a database name");
    let socket_dir = cluster.dir().to_str().expect("utf-8").replace('/', "%2F");
    let socket_url = format!("postgres://postgres@{socket_dir}:{}/{name}", cluster.port());
    let dir = tempfile::tempdir()?;
    let server = ServerProcess::start_with(dir.path(), &["--database-url", &socket_url])?;
    let mut peer = Peer::new("local");
    peer.connect(&server.sync_url()).await?;
    let doc = peer.create(put("local".into(), 1))?;
    peer.wait_synced(&doc).await?;
    assert_eq!(server.http_get("/healthz").await?.0, 200);
    Ok(())
}
