//! The life of an organisation's data, against the real `coachsync` binary: purging
//! a document (every byte gone from the data directory, devices drop their copies),
//! purging an offboarded coach's private notes after the retention period, and
//! exporting a relationship's documents for a records request.

use anyhow::{Context, Result};
use coachsync_core::{Device, DocumentId};
use coachsync_tests::admin;
use coachsync_tests::files::files_containing;
use coachsync_tests::site::{Site, WAIT, eventually, relationship, synced, work_plan};
use serde_json::{Value, json};

/// Whether a device still lists a document.
async fn lists(device: &Device, document: &DocumentId) -> Result<bool> {
    Ok(device
        .statuses()
        .await?
        .iter()
        .any(|s| s.document == *document))
}

/// Set a new plain-string field in a change of its own: automerge compresses only
/// changes over 256 bytes, so the text lands on disk as it is, and a test that
/// looks for it there can fail.
async fn write_text(device: &Device, document: &DocumentId, field: &str, text: &str) -> Result<()> {
    device
        .set(document, &field.parse()?, json!(text))
        .await
        .context("setting a field")
}

#[tokio::test]
async fn a_purged_document_leaves_no_byte_under_the_data_directory_and_devices_drop_it()
-> Result<()> {
    let mut site = Site::start(
        &[
            ("coach", "coach"),
            ("principal", "client"),
            ("root", "admin"),
        ],
        &[],
    )?;
    let rel = relationship(&site, &["coach"], &["principal"])?;
    let dirs = [tempfile::tempdir()?, tempfile::tempdir()?];
    let coach = site.device(dirs[0].path(), "coach").await?;
    let plan = coach.create(work_plan(&rel)?).await?;
    let secret = "Ms Rivera asked for this to stay between us";
    write_text(&coach, &plan, "remark", secret).await?;
    synced(&coach).await?;

    // The principal reads it on her phone, which then goes offline.
    let principal = site.device(dirs[1].path(), "principal").await?;
    tokio::time::timeout(WAIT, principal.fetch(&plan)).await??;
    assert_eq!(principal.value(&plan).await?["remark"], secret);
    principal.close().await?;

    let data_dir = site.server().data_dir().to_owned();
    for dir in [data_dir.as_path(), dirs[0].path(), dirs[1].path()] {
        assert!(
            !files_containing(dir, secret).is_empty(),
            "the text is on disk in {dir:?} before the purge, so the checks below can fail"
        );
    }
    let summary = admin(&data_dir, &["doc", "purge", &format!("automerge:{plan}")])?;
    assert!(summary.starts_with("store rewritten"), "{summary}");
    assert_eq!(
        files_containing(&data_dir, secret),
        Vec::<std::path::PathBuf>::new()
    );

    // The coach's device was connected: it drops the document at once.
    eventually("the coach's device drops the document", async || {
        Ok(!lists(&coach, &plan).await?)
    })
    .await?;
    assert!(coach.value(&plan).await.is_err());
    // The principal's phone drops it at its next sync, without opening it.
    let principal = site.device(dirs[1].path(), "principal").await?;
    eventually("the principal's phone drops the document", async || {
        Ok(!lists(&principal, &plan).await?)
    })
    .await?;
    // Both phones then rewrite their stores: no file on them keeps the text either.
    for dir in &dirs {
        eventually("the phone's store is rewritten", async || {
            Ok(files_containing(dir.path(), secret).is_empty())
        })
        .await?;
    }

    // The purge is audited, and the document stays gone after a crash and restart.
    let audit = site
        .audit_until("root", |a| a.iter().any(|e| e["action"] == "purge"))
        .await?;
    let entry = audit
        .iter()
        .find(|e| e["action"] == "purge")
        .context("a purge entry")?;
    assert_eq!(entry["document"], plan.to_string());
    assert_eq!(entry["who"], "operator");
    coach.close().await?;
    principal.close().await?;
    site.restart()?;
    assert!(files_containing(site.server().data_dir(), secret).is_empty());
    let fresh = tempfile::tempdir()?;
    let again = site.device(fresh.path(), "coach").await?;
    assert!(
        tokio::time::timeout(WAIT, again.fetch(&plan))
            .await?
            .is_err()
    );
    // Purging an unknown or already purged ID is an error, not a silent success.
    let again_purge = admin(
        site.server().data_dir(),
        &["doc", "purge", &plan.to_string()],
    );
    assert!(
        format!("{:#}", again_purge.unwrap_err()).contains("already purged"),
        "a second purge is refused"
    );
    again.close().await?;
    Ok(())
}

#[tokio::test]
async fn an_offboarded_coachs_private_notes_are_purged_after_the_retention_period() -> Result<()> {
    let mut site = Site::start(
        &[
            ("leaving-coach", "coach"),
            ("new-coach", "coach"),
            ("principal", "client"),
            ("root", "admin"),
        ],
        &[],
    )?;
    let rel = relationship(&site, &["leaving-coach"], &["principal"])?;
    let dir = tempfile::tempdir()?;
    let leaving = site.device(dir.path(), "leaving-coach").await?;
    let plan = leaving.create(work_plan(&rel)?).await?;
    let shared = "the plan stays with the relationship";
    write_text(&leaving, &plan, "remark", shared).await?;
    let mut notes = coachsync_core::domain::example("observation-private-notes")
        .context("an example of private notes")?;
    notes["relationship"] = json!(rel);
    let private = leaving.create(notes).await?;
    let secret = "my own doubts about this school";
    write_text(&leaving, &private, "remark", secret).await?;
    synced(&leaving).await?;
    leaving.close().await?;
    admin(
        site.server().data_dir(),
        &[
            "user",
            "offboard",
            "leaving-coach",
            "--transfer-to",
            "new-coach",
        ],
    )?;
    // Within the retention period the notes are kept (unreadable by anyone).
    assert!(!files_containing(site.server().data_dir(), secret).is_empty());

    site.restart_with(&["--private-notes-retention-days", "0"])?;
    let audit = site
        .audit_until("root", |a| {
            a.iter()
                .any(|e| e["action"] == "purge" && e["who"] == "retention")
        })
        .await?;
    let purged: Vec<&Value> = audit
        .iter()
        .filter(|e| e["action"] == "purge")
        .map(|e| &e["document"])
        .collect();
    assert_eq!(purged, [&json!(private.to_string())]);
    eventually("the notes leave the data directory", async || {
        Ok(files_containing(site.server().data_dir(), secret).is_empty())
    })
    .await?;
    // The work plan went to the new coach and is untouched.
    assert!(!files_containing(site.server().data_dir(), shared).is_empty());
    Ok(())
}

#[tokio::test]
async fn a_relationships_documents_are_exported_as_json_without_private_notes() -> Result<()> {
    let site = Site::start(
        &[
            ("coach", "coach"),
            ("principal", "client"),
            ("other-principal", "client"),
            ("root", "admin"),
        ],
        &[],
    )?;
    let rel = relationship(&site, &["coach"], &["principal"])?;
    let other = relationship(&site, &["coach"], &["other-principal"])?;
    let dir = tempfile::tempdir()?;
    let coach = site.device(dir.path(), "coach").await?;
    let plan = coach.create(work_plan(&rel)?).await?;
    let elsewhere = coach.create(work_plan(&other)?).await?;
    let mut notes = coachsync_core::domain::example("observation-private-notes")
        .context("an example of private notes")?;
    notes["relationship"] = json!(rel);
    coach.create(notes).await?;
    synced(&coach).await?;

    let out = tempfile::tempdir()?;
    let file = out.path().join("export.json");
    let summary = admin(
        site.server().data_dir(),
        &[
            "export",
            "--relationship",
            &rel,
            "--out",
            file.to_str().context("a UTF-8 path")?,
        ],
    )?;
    assert!(summary.starts_with("1 documents written"), "{summary}");
    let export: Value = serde_json::from_slice(&std::fs::read(&file)?)?;
    assert_eq!(export["relationship"]["id"], rel);
    assert_eq!(export["privateNotesNotExported"], 1);
    let documents = export["documents"].as_array().context("documents")?;
    assert_eq!(
        documents.len(),
        1,
        "only this relationship's: {documents:#?}"
    );
    let exported = &documents[0];
    assert_eq!(exported["id"], plan.to_string());
    assert_eq!(exported["kind"], "work-plan");
    assert_eq!(exported["owner"], "coach");
    assert_eq!(exported["content"], coach.value(&plan).await?);
    assert_ne!(exported["id"], elsewhere.to_string());
    site.audit_until("root", |a| {
        a.iter()
            .any(|e| e["action"] == "export" && e["subject"] == json!(rel))
    })
    .await?;
    // An unknown relationship is a clear error.
    let unknown = admin(
        site.server().data_dir(),
        &["export", "--relationship", "rel-000000000000"],
    );
    assert!(format!("{:#}", unknown.unwrap_err()).contains("no relationship"));
    coach.close().await?;
    Ok(())
}
