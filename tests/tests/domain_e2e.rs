//! Coaching documents edited on two devices while offline, brought together through
//! the real server: how each kind of concurrent edit merges (docs/DOMAIN.md,
//! "Merging").

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use coachsync_core::device::Backoff;
use coachsync_core::domain::{self, WorkPlan};
use coachsync_core::json::JsonPath;
use coachsync_core::{Device, DeviceConfig, DocumentId};
use coachsync_tests::ServerProcess;
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(20);

fn config(dir: &Path, server: Option<&str>) -> DeviceConfig {
    let mut config = DeviceConfig::new(dir);
    if let Some(url) = server {
        config = config.with_server(url);
    }
    config.backoff = Backoff::new(Duration::from_millis(100), Duration::from_millis(500), 0.5);
    config
}

fn path(p: &str) -> JsonPath {
    p.parse().expect("a valid path")
}

/// Two devices holding the same work plan, both offline, and what brings them
/// together.
struct Pair {
    server: ServerProcess,
    dirs: [tempfile::TempDir; 2],
    doc: DocumentId,
    _server_dir: tempfile::TempDir,
}

impl Pair {
    /// Device 0 creates the example work plan and syncs it; device 1 fetches it;
    /// both close (offline from now on).
    async fn new() -> Result<Self> {
        let server_dir = tempfile::tempdir()?;
        let server = ServerProcess::start(server_dir.path())?;
        let dirs = [tempfile::tempdir()?, tempfile::tempdir()?];
        let a = Device::open(config(dirs[0].path(), Some(&server.sync_url()))).await?;
        let doc = a
            .create(domain::example("work-plan").context("an example")?)
            .await?;
        tokio::time::timeout(WAIT, a.wait_synced()).await??;
        a.close().await?;
        let b = Device::open(config(dirs[1].path(), Some(&server.sync_url()))).await?;
        tokio::time::timeout(WAIT, b.fetch(&doc)).await??;
        b.close().await?;
        Ok(Self {
            server,
            dirs,
            doc,
            _server_dir: server_dir,
        })
    }

    async fn offline(&self, i: usize) -> Result<Device> {
        Ok(Device::open(config(self.dirs[i].path(), None)).await?)
    }

    /// Each device syncs (0, 1, then 0 again so it pulls 1's edits); returns both
    /// values, which must be equal.
    async fn converge(&self) -> Result<Value> {
        let url = self.server.sync_url();
        let mut values = Vec::new();
        for i in [0, 1, 0] {
            let device = Device::open(config(self.dirs[i].path(), Some(&url))).await?;
            tokio::time::timeout(WAIT, device.wait_synced()).await??;
            values.push(device.value(&self.doc).await?);
            device.close().await?;
        }
        let b = Device::open(config(self.dirs[1].path(), Some(&url))).await?;
        tokio::time::timeout(WAIT, b.wait_synced()).await??;
        let vb = b.value(&self.doc).await?;
        b.close().await?;
        assert_eq!(values[2], vb, "both devices hold the same plan");
        domain::validate(&vb).map_err(|p| anyhow::anyhow!("merged plan is invalid: {p:?}"))?;
        Ok(vb)
    }
}

fn plan(value: &Value) -> Result<WorkPlan> {
    Ok(domain::from_value(value)?)
}

#[tokio::test]
async fn two_people_editing_a_work_plan_offline_both_keep_their_edits() -> Result<()> {
    let pair = Pair::new().await?;
    let a = pair.offline(0).await?;
    let original: String = plan(&a.value(&pair.doc).await?)?.theory_of_action.clone();
    // The principal rewrites the start of the theory of action and adds a goal's
    // evidence; the coach appends to the same text and adds an indicator.
    a.set(
        &pair.doc,
        &path("theoryOfAction"),
        json!(format!("Together: {original}")),
    )
    .await?;
    a.close().await?;
    let b = pair.offline(1).await?;
    b.set(
        &pair.doc,
        &path("theoryOfAction"),
        json!(format!("{original} (revisited in March)")),
    )
    .await?;
    b.push(
        &pair.doc,
        &path("indicators"),
        json!({"id": "ind-new", "text": "Exit tickets show 70% mastery"}),
    )
    .await?;
    b.close().await?;

    let merged = plan(&pair.converge().await?)?;
    assert_eq!(
        merged.theory_of_action,
        format!("Together: {original} (revisited in March)"),
        "concurrent edits of one text merge as text"
    );
    assert!(
        merged
            .indicators
            .as_ref()
            .is_some_and(|i| i.iter().any(|i| i.id == "ind-new")),
        "the coach's indicator is kept"
    );
    Ok(())
}

#[tokio::test]
async fn reordering_activities_on_two_devices_gives_one_order_with_nothing_lost() -> Result<()> {
    let pair = Pair::new().await?;
    let a = pair.offline(0).await?;
    let before = plan(&a.value(&pair.doc).await?)?;
    let order: Vec<String> = before
        .ordered_activities()
        .into_iter()
        .map(|(id, _)| id.clone())
        .collect();
    assert!(order.len() >= 3, "the example has activities to reorder");
    let lowest = before.ordered_activities()[0].1.rank;
    let (last, second) = (order[order.len() - 1].clone(), order[1].clone());
    // Each device moves a different activity to the top.
    a.set(
        &pair.doc,
        &path(&format!("activities.{last}.rank")),
        json!(lowest - 1.0),
    )
    .await?;
    a.close().await?;
    let b = pair.offline(1).await?;
    b.set(
        &pair.doc,
        &path(&format!("activities.{second}.rank")),
        json!(lowest - 1.0),
    )
    .await?;
    b.close().await?;

    let merged = plan(&pair.converge().await?)?;
    let merged_order: Vec<String> = merged
        .ordered_activities()
        .into_iter()
        .map(|(id, _)| id.clone())
        .collect();
    let mut sorted_before = order.clone();
    sorted_before.sort();
    let mut sorted_after = merged_order.clone();
    sorted_after.sort();
    assert_eq!(sorted_after, sorted_before, "nothing lost, nothing doubled");
    assert_eq!(
        merged_order[..2]
            .iter()
            .collect::<std::collections::HashSet<_>>(),
        [&last, &second].into_iter().collect(),
        "both moved activities are at the top: {merged_order:?}"
    );
    Ok(())
}

#[tokio::test]
async fn removing_an_activity_while_another_device_edits_it_keeps_it_removed_and_keeps_the_edit()
-> Result<()> {
    let pair = Pair::new().await?;
    let a = pair.offline(0).await?;
    let before = plan(&a.value(&pair.doc).await?)?;
    let (id, activity) = before.ordered_activities()[0];
    let (id, title) = (id.clone(), activity.title.clone());
    a.set(
        &pair.doc,
        &path(&format!("activities.{id}.removed")),
        json!(true),
    )
    .await?;
    a.close().await?;
    let b = pair.offline(1).await?;
    b.set(
        &pair.doc,
        &path(&format!("activities.{id}.title")),
        json!(format!("{title}, every Tuesday")),
    )
    .await?;
    b.close().await?;

    let merged = plan(&pair.converge().await?)?;
    assert!(
        merged.ordered_activities().iter().all(|(i, _)| **i != id),
        "the removed activity is out of the plan"
    );
    assert_eq!(
        merged.activities[&id].title,
        format!("{title}, every Tuesday"),
        "the concurrent edit is kept with it"
    );
    Ok(())
}

#[tokio::test]
async fn an_invalid_edit_of_a_coaching_document_is_refused_and_changes_nothing() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let device = Device::open(config(dir.path(), None)).await?;
    let doc = device
        .create(domain::example("observation").context("an example")?)
        .await?;
    let before = device.value(&doc).await?;
    let err = device
        .set(&doc, &path("status"), json!("published"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("status"), "{err}");
    assert_eq!(device.value(&doc).await?, before);
    let mut bad = before.clone();
    bad.as_object_mut().unwrap().remove("setting");
    let err = device.create(bad).await.unwrap_err().to_string();
    assert!(err.contains("setting: is required"), "{err}");
    assert_eq!(device.statuses().await?.len(), 1, "nothing stored");
    device.close().await?;
    Ok(())
}

#[tokio::test]
async fn a_published_definition_never_changes() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let device = Device::open(config(dir.path(), None)).await?;
    let rubric = domain::starter_definitions()
        .into_iter()
        .find(|d| d.value["schema"] == "rubric")
        .context("a starter rubric")?
        .value;
    assert_eq!(rubric["published"], json!(true));
    let doc = device.create(rubric.clone()).await?;
    let err = device
        .set(&doc, &path("name"), json!("Renamed"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("published and never changes"), "{err}");
    assert_eq!(device.value(&doc).await?, rubric);

    // A new version is a new document, and a draft can be edited until published.
    let mut draft = rubric.clone();
    draft["version"] = json!(2);
    draft["published"] = json!(false);
    let next = device.create(draft).await?;
    device
        .set(&next, &path("name"), json!("Leadership rubric, 2027"))
        .await?;
    device.set(&next, &path("published"), json!(true)).await?;
    assert!(
        device
            .set(&next, &path("name"), json!("again"))
            .await
            .is_err()
    );
    device.close().await?;
    Ok(())
}

#[tokio::test]
async fn a_person_is_named_on_a_device_only_with_their_consent() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let device = Device::open(config(dir.path(), None)).await?;
    let observation = device
        .create(domain::example("observation").context("an example")?)
        .await?;
    let before = device.value(&observation).await?;
    let err = device
        .set(&observation, &path("observed.consent.given"), json!(false))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("observed.name: is recorded only with the person's consent"),
        "{err}"
    );
    assert_eq!(device.value(&observation).await?, before, "nothing changed");

    let team = device
        .create(domain::example("team").context("an example")?)
        .await?;
    let stories = device.value(&team).await?["stories"].clone();
    let mut story = stories[1].clone();
    story["id"] = json!("story-new");
    story["named"] =
        json!([{"name": "Priya Patel", "consent": {"given": false, "at": 1_793_300_000_000_i64}}]);
    let err = device
        .push(&team, &path("stories"), story.clone())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("stories.2.named.0.name: is named without their consent"),
        "{err}"
    );
    story["named"][0]["consent"]["given"] = json!(true);
    device.push(&team, &path("stories"), story).await?;
    assert_eq!(
        device.value(&team).await?["stories"][2]["named"][0]["name"],
        "Priya Patel"
    );
    device.close().await?;
    Ok(())
}

#[tokio::test]
async fn a_version_1_work_plan_given_to_a_device_is_stored_at_version_2() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let device = Device::open(config(dir.path(), None)).await?;
    let mut v1 = domain::example("work-plan").context("an example")?;
    v1["schemaVersion"] = json!(1);
    v1["signedOff"] = json!({"by": "victoria.garcia"});
    for goal in v1["goals"].as_array_mut().context("goals")? {
        let goal = goal.as_object_mut().context("a goal")?;
        let first = goal.remove("studentGoals").context("student goals")?[0].clone();
        goal.insert("studentGoal".into(), first);
        goal.remove("capacity");
    }
    let doc = device.create(v1).await?;
    let stored = device.value(&doc).await?;
    assert_eq!(stored["schemaVersion"], 2);
    assert_eq!(stored["goals"][0]["studentGoals"], json!(["sg-reading"]));
    assert!(stored["goals"][1].get("studentGoal").is_none(), "{stored}");
    assert_eq!(stored["signedOff"], json!({"by": "victoria.garcia"}));
    device
        .set(
            &doc,
            &path("goals.0.capacity"),
            json!("Feedback on instruction."),
        )
        .await?;
    let plan: WorkPlan = domain::read(&device.value(&doc).await?)?;
    assert_eq!(plan.schema_version, 2);
    assert_eq!(
        plan.goals[0].capacity.as_deref(),
        Some("Feedback on instruction.")
    );
    device.close().await?;
    Ok(())
}
