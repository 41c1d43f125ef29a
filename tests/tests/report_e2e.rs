//! `coachsync report` with the real binary: documents created with `coachsync
//! device create` become one self-contained HTML page, made offline.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use anyhow::{Context, Result, ensure};
use coachsync_core::DocumentId;
use coachsync_tests::server_process::binary;

/// Run the binary with `args` and `stdin`; no server, no inherited device settings.
fn coachsync(args: &[&str], stdin: &[u8]) -> Result<Output> {
    let mut child = Command::new(binary())
        .args(args)
        .env_remove("COACHSYNC_DEVICE_DIR")
        .env_remove("COACHSYNC_SERVER")
        .env_remove("COACHSYNC_LOG")
        .env_remove("RUST_LOG")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("start {} (build it first)", binary().display()))?;
    child.stdin.take().context("stdin")?.write_all(stdin)?;
    Ok(child.wait_with_output()?)
}

fn succeed(args: &[&str], stdin: &[u8]) -> Result<String> {
    let out = coachsync(args, stdin)?;
    ensure!(
        out.status.success(),
        "coachsync {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8(out.stdout)?)
}

fn fail(args: &[&str]) -> Result<String> {
    let out = coachsync(args, b"")?;
    ensure!(!out.status.success(), "coachsync {args:?} succeeded");
    ensure!(out.status.code() == Some(1), "exit status {:?}", out.status);
    ensure!(out.stdout.is_empty(), "nothing on stdout when failing");
    Ok(String::from_utf8(out.stderr)?)
}

/// Create the example of `kind` on the device through the command line; its URL.
fn create_example(dir: &Path, kind: &str) -> Result<String> {
    let template = succeed(&["device", "template", kind], b"")?;
    let dir = dir.to_str().context("a UTF-8 path")?;
    let url = succeed(
        &["device", "--data-dir", dir, "create"],
        template.as_bytes(),
    )?;
    Ok(url.trim().to_owned())
}

const TITLES: [&str; 6] = [
    "Goal 1: progress toward 90",
    "Goal 2: progress toward 6",
    "Observation and feedback",
    "Hard conversations",
    "Run chart: exit tickets correct (%)",
    "Run chart: 4th graders on track in guided reading (%)",
];

#[test]
fn a_device_s_plans_assessments_and_cycles_become_one_page() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let device = tmp.path().join("device");
    let plan = create_example(&device, "work-plan")?;
    let assessment = create_example(&device, "rubric-self-assessment")?;
    let cycle = create_example(&device, "pdsa-cycle")?;
    let measure = create_example(&device, "measure")?;
    let diagram = create_example(&device, "driver-diagram")?;
    // Not reported, and not in the way.
    let observation = create_example(&device, "observation")?;
    let d = device.to_str().context("a UTF-8 path")?;

    let page = tmp.path().join("report.html");
    std::fs::write(&page, "stale")?;
    let out = coachsync(
        &["report", "--data-dir", d, "--out", page.to_str().unwrap()],
        b"",
    )?;
    ensure!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(out.stdout.is_empty(), "the page goes to --out");
    ensure!(
        out.stderr.is_empty(),
        "nothing on stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&page)?;
    ensure!(html.starts_with("<!DOCTYPE html>"), "overwritten");
    for title in TITLES {
        ensure!(
            html.contains(&format!("<figcaption>{title}</figcaption>")),
            "{title}"
        );
    }
    // Two goals, three rated elements, two run charts (the cycle's and the measure's).
    ensure!(html.matches("<svg viewBox").count() == 7);
    ensure!(html.matches("<polyline class=\"s-").count() == 2 + 3 * 2 + 1 + 1);
    // The measure's run chart marks its signals: a shift below the median, a shift
    // above it and a trend up.
    ensure!(
        html.matches("<p class=\"signal\" data-rule=\"shift\">")
            .count()
            == 2
    );
    ensure!(
        html.matches("<p class=\"signal\" data-rule=\"trend\">")
            .count()
            == 1
    );
    // The driver diagram's tree, down to its change ideas.
    ensure!(html.contains("<ol class=\"tree\">"));
    ensure!(html.matches("<li class=\"idea\">").count() == 6);
    ensure!(html.contains("class=\"ref-median\""));
    ensure!(html.contains("class=\"ref-target\""));
    for url in [&plan, &assessment, &cycle, &measure, &diagram] {
        ensure!(html.contains(url.as_str()), "{url} has a section");
    }
    ensure!(!html.contains(observation.as_str()));
    let lower = html.to_lowercase();
    for banned in ["<script", "http://", "https://"] {
        ensure!(!lower.contains(banned), "{banned}");
    }
    // Work plans first, then self-assessments, driver diagrams, cycles and measures.
    let at = |url: &str| html.find(url).unwrap();
    ensure!(at(&plan) < at(&assessment) && at(&assessment) < at(&diagram));
    ensure!(at(&diagram) < at(&cycle) && at(&cycle) < at(&measure));

    // One document, to stdout.
    let one = succeed(&["report", "--data-dir", d, &cycle], b"")?;
    ensure!(one.contains("<figcaption>Run chart: exit tickets correct (%)</figcaption>"));
    ensure!(!one.contains("Goal 1: progress"));
    ensure!(one.matches("<svg viewBox").count() == 1);
    // A self-assessment alone still finds its (starter) rubric.
    let alone = succeed(&["report", "--data-dir", d, &assessment], b"")?;
    ensure!(alone.contains("<figcaption>Hard conversations</figcaption>"));
    ensure!(!alone.contains("class=\"problem\""));
    Ok(())
}

#[test]
fn what_cannot_be_reported_fails_with_the_reason() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let device = tmp.path().join("device");
    let d = device.to_str().context("a UTF-8 path")?;

    // No device yet: refused, and none is made.
    let e = fail(&["report", "--data-dir", d])?;
    ensure!(e.starts_with("coachsync: no device at"), "{e}");
    ensure!(!device.exists(), "a report creates no device");

    let observation = create_example(&device, "observation")?;
    let e = fail(&["report", "--data-dir", d])?;
    ensure!(e.starts_with("coachsync: nothing to report"), "{e}");

    let unknown = DocumentId::from_random([7; 16]).url().to_string();
    let e = fail(&["report", "--data-dir", d, &unknown])?;
    ensure!(
        e.starts_with(&format!("coachsync: no document {unknown} on this device")),
        "{e}"
    );

    let e = fail(&["report", "--data-dir", d, "automerge:nope"])?;
    ensure!(e.starts_with("coachsync: invalid automerge url"), "{e}");

    let e = fail(&["report", "--data-dir", d, &observation])?;
    ensure!(
        e.contains(
            "is not a work plan, rubric self-assessment, driver diagram, PDSA cycle or measure"
        ),
        "{e}"
    );

    // An unwritable --out says where.
    create_example(&device, "pdsa-cycle")?;
    let out = tmp.path().join("missing-dir").join("report.html");
    let e = fail(&["report", "--data-dir", d, "--out", out.to_str().unwrap()])?;
    ensure!(e.starts_with("coachsync: cannot write"), "{e}");
    Ok(())
}
