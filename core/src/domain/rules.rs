//! Rules that span fields, which a field's shape alone cannot express: they run
//! after the shapes are checked, on the migrated document, and report each problem
//! at the path an app would fix.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::kind::Kind;
use super::shape::Problem;

/// Every problem the cross-field rules of `kind` find in `value`.
pub(super) fn check(kind: &Kind, value: &Value, problems: &mut Vec<Problem>) {
    match kind.name {
        "rubric" => unique_element_ids(value, problems),
        "observation" => {
            observed_name_needs_consent(value, problems);
            ends_after_it_starts(value, problems);
        }
        "rubric-self-assessment" => one_focus_per_element(value, problems),
        "team" => stories_name_only_who_consented(value, problems),
        "driver-diagram" => driver_links_exist(value, problems),
        _ => {}
    }
}

fn problem(problems: &mut Vec<Problem>, path: String, message: impl Into<String>) {
    problems.push(Problem {
        path,
        message: message.into(),
    });
}

fn items<'a>(value: &'a Value, key: &str) -> impl Iterator<Item = (usize, &'a Value)> {
    value
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .enumerate()
}

/// Whether `holder` lacks a consent that says yes: no `consent`, or one whose
/// `given` is `false`. A `consent` of the wrong shape is left to the shape check,
/// which already reports it at its own path.
fn lacks_consent(holder: &Value) -> bool {
    match holder.get("consent") {
        None | Some(Value::Null) => true,
        Some(consent) => consent.get("given") == Some(&Value::Bool(false)),
    }
}

/// Ratings name an element by its ID alone, so element IDs are unique across the
/// rubric's domains (within one domain the list check already reports a repeat).
fn unique_element_ids(value: &Value, problems: &mut Vec<Problem>) {
    let mut seen = HashMap::new();
    for (d, domain) in items(value, "domains") {
        for (e, element) in items(domain, "elements") {
            let Some(id) = element.get("id").and_then(Value::as_str) else {
                continue;
            };
            if let Some(first) = seen.insert(id.to_owned(), format!("domains.{d}.elements.{e}.id"))
                && !first.starts_with(&format!("domains.{d}."))
            {
                problem(
                    problems,
                    format!("domains.{d}.elements.{e}.id"),
                    format!("{id:?} is already the ID of {first}'s element"),
                );
            }
        }
    }
}

/// Coaching is confidential and observations are shared: the person observed is
/// named only once they agreed to it, and the agreement is kept with the name.
fn observed_name_needs_consent(value: &Value, problems: &mut Vec<Problem>) {
    let Some(observed) = value.get("observed") else {
        return;
    };
    let named = observed
        .get("name")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.trim().is_empty());
    if named && lacks_consent(observed) {
        problem(
            problems,
            "observed.name".into(),
            "is recorded only with the person's consent: set observed.consent to {given: true, at}, or leave the name out",
        );
    }
}

fn ends_after_it_starts(value: &Value, problems: &mut Vec<Problem>) {
    let start = value.get("observedAt").and_then(Value::as_i64);
    let end = value.get("endedAt").and_then(Value::as_i64);
    if let (Some(start), Some(end)) = (start, end)
        && end < start
    {
        problem(
            problems,
            "endedAt".into(),
            format!("must not be before observedAt ({start}), not {end}"),
        );
    }
}

/// A goal per focus element: two goals for one element would leave the leader and
/// the report unsure which one counts.
fn one_focus_per_element(value: &Value, problems: &mut Vec<Problem>) {
    let mut seen = HashSet::new();
    for (i, focus) in items(value, "focus") {
        if let Some(element) = focus.get("element").and_then(Value::as_str)
            && !seen.insert(element)
        {
            problem(
                problems,
                format!("focus.{i}.element"),
                format!("{element:?} is already a focus element"),
            );
        }
    }
}

/// Stories are told beyond the team (the seeds' storytelling ritual): a person is
/// named in one only with their consent.
fn stories_name_only_who_consented(value: &Value, problems: &mut Vec<Problem>) {
    for (s, story) in items(value, "stories") {
        for (n, named) in items(story, "named") {
            // A missing consent is already reported at its own path: it is required.
            if named.get("consent").is_some_and(|c| !c.is_null()) && lacks_consent(named) {
                problem(
                    problems,
                    format!("stories.{s}.named.{n}.name"),
                    "is named without their consent: a story names only people who gave it (consent.given: true)",
                );
            }
        }
    }
}

/// Every link of a driver diagram names a driver of the same diagram, so the tree
/// it draws has no loose branches.
fn driver_links_exist(value: &Value, problems: &mut Vec<Problem>) {
    let ids = |key: &str| -> HashSet<&str> {
        items(value, key)
            .filter_map(|(_, v)| v.get("id").and_then(Value::as_str))
            .collect()
    };
    // A missing list, or an item without a string ID, is the shape check's to
    // report; links into such a list are not checked against what it lacks.
    let checkable = |key: &str| {
        value
            .get(key)
            .and_then(Value::as_array)
            .is_some_and(|list| {
                list.iter()
                    .all(|item| item.get("id").is_some_and(Value::is_string))
            })
    };
    let primary = ids("primary");
    let secondary = ids("secondary");
    for (i, driver) in items(value, "secondary").filter(|_| checkable("primary")) {
        if let Some(p) = driver.get("primary").and_then(Value::as_str)
            && !primary.contains(p)
        {
            problem(
                problems,
                format!("secondary.{i}.primary"),
                format!("{p:?} is not the ID of a primary driver"),
            );
        }
    }
    for (i, idea) in items(value, "changeIdeas").filter(|_| checkable("secondary")) {
        for (j, s) in items(idea, "secondaries") {
            if let Some(s) = s.as_str()
                && !secondary.contains(s)
            {
                problem(
                    problems,
                    format!("changeIdeas.{i}.secondaries.{j}"),
                    format!("{s:?} is not the ID of a secondary driver"),
                );
            }
        }
    }
}
