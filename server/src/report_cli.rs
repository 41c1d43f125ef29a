//! `coachsync report`: a work plan's progress, a rubric self-assessment's focus and
//! stage history, a driver diagram's tree, and the run charts of PDSA cycles and
//! measures as one self-contained HTML page, made offline from the documents on a
//! device.

use std::collections::BTreeSet;
use std::io::Write;

use coachsync_core::domain::{
    self, DriverDiagram, Measure, PdsaCycle, Record, Rubric, RubricSelfAssessment, WorkPlan,
};
use coachsync_core::{AutomergeUrl, Device, DeviceConfig, DocumentId};
use serde_json::Value;

use crate::cli::ReportArgs;
use crate::error::{Error, Result};

/// The kinds a report shows, in the order it shows them when given no URLs.
const REPORTED: [&str; 5] = [
    WorkPlan::KIND,
    RubricSelfAssessment::KIND,
    DriverDiagram::KIND,
    PdsaCycle::KIND,
    Measure::KIND,
];

/// The reported kinds, as the messages name them.
const REPORTED_NAMES: &str =
    "work plan, rubric self-assessment, driver diagram, PDSA cycle or measure";

/// Render the report and write it to `--out`, or to `out` without one.
pub async fn run(args: ReportArgs, out: &mut impl Write) -> Result<()> {
    // Check the arguments before touching the device.
    let mut wanted: Vec<DocumentId> = Vec::new();
    for url in &args.urls {
        let id = url
            .parse::<AutomergeUrl>()
            .map_err(|e| Error::Usage(e.to_string()))?
            .document_id;
        if !wanted.contains(&id) {
            wanted.push(id);
        }
    }
    // Opening a device creates its directory; a report never should.
    if !args.data_dir.is_dir() {
        return Err(Error::Usage(format!(
            "no device at {}: pass --data-dir or set COACHSYNC_DEVICE_DIR",
            args.data_dir.display()
        )));
    }

    let device = Device::open(DeviceConfig::new(&args.data_dir)).await?;
    let documents = collect(&device, &args, &wanted).await;
    device.close().await?;
    let documents = documents?;

    let report = domain::render(&documents)?;
    match &args.out {
        Some(path) => std::fs::write(path, &report.html)
            .map_err(|e| Error::Usage(format!("cannot write {}: {e}", path.display())))?,
        None => {
            out.write_all(report.html.as_bytes())?;
            out.flush()?;
        }
    }
    tracing::debug!(
        charts = report.charts.len(),
        problems = report.problems.len(),
        "report written"
    );
    Ok(())
}

/// The documents to report on (the given ones in the given order, or every one of a
/// reported kind, grouped by kind), then every rubric on the device, which
/// self-assessments are charted against.
async fn collect(
    device: &Device,
    args: &ReportArgs,
    wanted: &[DocumentId],
) -> Result<Vec<(DocumentId, Value)>> {
    let held: BTreeSet<DocumentId> = device
        .statuses()
        .await?
        .into_iter()
        .map(|s| s.document)
        .collect();
    let mut all = Vec::new();
    for id in &held {
        let value = device.value(id).await?;
        all.push((id.clone(), value));
    }
    let kind_of = |value: &Value| {
        value
            .get("schema")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };

    let mut chosen: Vec<(DocumentId, Value)> = Vec::new();
    if wanted.is_empty() {
        for kind in REPORTED {
            chosen.extend(all.iter().filter(|(_, v)| kind_of(v) == kind).cloned());
        }
        if chosen.is_empty() {
            return Err(Error::Usage(format!(
                "nothing to report: the device at {} holds no {REPORTED_NAMES}",
                args.data_dir.display()
            )));
        }
    } else {
        for id in wanted {
            let Some((_, value)) = all.iter().find(|(d, _)| d == id) else {
                return Err(Error::Usage(format!(
                    "no document {} on this device (see `coachsync device list`)",
                    id.url()
                )));
            };
            let kind = kind_of(value);
            if !REPORTED.contains(&kind.as_str()) {
                let kind = if kind.is_empty() {
                    "it has no kind".to_owned()
                } else {
                    format!("it is a {kind}")
                };
                return Err(Error::Usage(format!(
                    "{} is not a {REPORTED_NAMES} ({kind})",
                    id.url()
                )));
            }
            chosen.push((id.clone(), value.clone()));
        }
    }
    chosen.extend(all.into_iter().filter(|(_, v)| kind_of(v) == Rubric::KIND));
    Ok(chosen)
}
