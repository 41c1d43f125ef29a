//! Definitions shipped as data, and one valid example of every kind.
//!
//! Rubrics and observation templates are versioned definitions that captures
//! reference by `{id, version}`; a published version never changes (a change is a
//! new version). The starter set is what a new organisation begins with; the
//! examples are what `coachsync device template KIND` prints.

use serde_json::Value;

/// A definition shipped with coachsync.
#[derive(Clone, Debug)]
pub struct Definition {
    /// The file it comes from, under `core/data/definitions/`.
    pub file: &'static str,
    /// Its content.
    pub value: Value,
}

static STARTER: &[(&str, &str)] = &[
    (
        "leadership-rubric-v1.json",
        include_str!("../../data/definitions/leadership-rubric-v1.json"),
    ),
    (
        "classroom-walkthrough-v1.json",
        include_str!("../../data/definitions/classroom-walkthrough-v1.json"),
    ),
    (
        "hallway-walkthrough-v1.json",
        include_str!("../../data/definitions/hallway-walkthrough-v1.json"),
    ),
    (
        "lunchroom-walkthrough-v1.json",
        include_str!("../../data/definitions/lunchroom-walkthrough-v1.json"),
    ),
];

static EXAMPLES: &[(&str, &str)] = &[
    (
        "observation",
        include_str!("../../data/examples/observation.json"),
    ),
    (
        "observation-private-notes",
        include_str!("../../data/examples/observation-private-notes.json"),
    ),
    (
        "observation-template",
        include_str!("../../data/examples/observation-template.json"),
    ),
    (
        "work-plan",
        include_str!("../../data/examples/work-plan.json"),
    ),
    (
        "needs-assessment",
        include_str!("../../data/examples/needs-assessment.json"),
    ),
    ("rubric", include_str!("../../data/examples/rubric.json")),
    (
        "rubric-self-assessment",
        include_str!("../../data/examples/rubric-self-assessment.json"),
    ),
    (
        "coaching-relationship",
        include_str!("../../data/examples/coaching-relationship.json"),
    ),
    (
        "coaching-log",
        include_str!("../../data/examples/coaching-log.json"),
    ),
    (
        "pdsa-cycle",
        include_str!("../../data/examples/pdsa-cycle.json"),
    ),
    ("team", include_str!("../../data/examples/team.json")),
    ("measure", include_str!("../../data/examples/measure.json")),
    (
        "driver-diagram",
        include_str!("../../data/examples/driver-diagram.json"),
    ),
];

fn parse(file: &str, text: &str) -> Value {
    // The files are part of the build and checked by the tests; a broken one is a
    // build defect, not an input error.
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{file} is not valid JSON: {e}"))
}

/// The starter definitions: a developmental leadership rubric and walkthrough
/// templates for classrooms, hallways and lunchrooms.
pub fn starter_definitions() -> Vec<Definition> {
    STARTER
        .iter()
        .map(|(file, text)| Definition {
            file,
            value: parse(file, text),
        })
        .collect()
}

/// A valid example document of a kind.
pub fn example(kind: &str) -> Option<Value> {
    EXAMPLES
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(k, text)| parse(k, text))
}
