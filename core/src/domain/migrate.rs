//! Migrations: how a document of an older `schemaVersion` becomes the current one.
//!
//! Each step takes one version to the next, in place, and keeps every field it does
//! not understand. Documents of a newer version than this build knows are left as
//! they are: their extra fields survive a round trip through this reader.

use serde_json::{Map, Value, json};

use super::kind::Kind;
use super::shape::Problem;

/// One step: the kind, the version it starts from, and the change.
struct Step {
    kind: &'static str,
    from: u64,
    apply: fn(&mut Map<String, Value>),
}

static STEPS: &[Step] = &[
    Step {
        kind: "observation",
        from: 1,
        apply: observation_v1_to_v2,
    },
    Step {
        kind: "observation",
        from: 2,
        apply: only_new_optional_fields,
    },
    Step {
        kind: "work-plan",
        from: 1,
        apply: work_plan_v1_to_v2,
    },
    Step {
        kind: "rubric-self-assessment",
        from: 1,
        apply: only_new_optional_fields,
    },
    Step {
        kind: "team",
        from: 1,
        apply: only_new_optional_fields,
    },
];

/// The step of a version that only added optional fields: observation 3 (observer,
/// end time, the person observed), rubric-self-assessment 2 (focus elements) and
/// team 2 (who a story names). An older document has none of them and is already
/// valid as it is; nothing can be inferred for them (the old free-text `context` of
/// an observation may mention a person, but not whether they agreed to be named).
fn only_new_optional_fields(_doc: &mut Map<String, Value>) {}

/// Version 1 of a work plan linked each goal to one student-centred goal
/// (`studentGoal`); version 2 allows the one or two a needs assessment has
/// (`studentGoals`). A goal that already has `studentGoals` (written by a newer app
/// next to the old field) keeps it, and the old field is dropped either way.
fn work_plan_v1_to_v2(doc: &mut Map<String, Value>) {
    let Some(Value::Array(goals)) = doc.get_mut("goals") else {
        return;
    };
    for goal in goals.iter_mut().filter_map(Value::as_object_mut) {
        // A value that is not a string was never valid; it is kept where it is.
        let Some(Value::String(old)) = goal.get("studentGoal") else {
            continue;
        };
        let old = old.clone();
        goal.remove("studentGoal");
        goal.entry("studentGoals")
            .or_insert_with(|| Value::Array(vec![Value::String(old)]));
    }
}

/// Version 1 of an observation kept what the observer wrote in one `notes` text;
/// version 2 keeps timestamped `script` entries. The notes become the first entry,
/// at the observation's start.
fn observation_v1_to_v2(doc: &mut Map<String, Value>) {
    if doc.contains_key("script") {
        return;
    }
    let mut script = Vec::new();
    // Only notes that became an entry (or were empty) leave `notes`; anything else
    // there is kept as it is.
    if let Some(Value::String(text)) = doc.get("notes") {
        if !text.is_empty() {
            let at = doc.get("observedAt").cloned().unwrap_or(json!(0));
            script.push(json!({"id": "notes", "at": at, "text": text, "tags": []}));
        }
        doc.remove("notes");
    }
    doc.insert("script".into(), Value::Array(script));
}

/// Bring a document up to its kind's current version, in place: returns the version
/// it was at. A document newer than this build knows is left untouched.
pub fn migrate(value: &mut Value) -> Result<u64, Problem> {
    let kind: &Kind = super::kind_of(value)?;
    let Value::Object(doc) = value else {
        unreachable!("kind_of found a schema field");
    };
    let version = doc
        .get("schemaVersion")
        .and_then(Value::as_u64)
        .filter(|v| *v >= 1)
        .ok_or_else(|| Problem {
            path: "schemaVersion".into(),
            message: "must be a whole number from 1".into(),
        })?;
    let current = u64::from(kind.version);
    let mut at = version;
    while at < current {
        let Some(step) = STEPS.iter().find(|s| s.kind == kind.name && s.from == at) else {
            return Err(Problem {
                path: "schemaVersion".into(),
                message: format!("no migration from version {at} of {}", kind.name),
            });
        };
        (step.apply)(doc);
        at += 1;
        doc.insert("schemaVersion".into(), json!(at));
    }
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_path_from_version_1_to_its_current_version() {
        for kind in super::super::KINDS {
            for from in 1..u64::from(kind.version) {
                assert!(
                    STEPS.iter().any(|s| s.kind == kind.name && s.from == from),
                    "{} has no step from {from}",
                    kind.name
                );
            }
        }
    }
}
