//! The coaching domain: typed documents for observations, work plans, rubrics,
//! coaching logs, and the improvement work of teams (PDSA cycles, measures, driver
//! diagrams).
//!
//! Each kind of document is described as data ([`Kind`], [`Shape`]): validation, the
//! writer that stores prose as mergeable text and everything else as plain values,
//! the JSON Schemas and `docs/DOMAIN.md` all come from that one description, so they
//! cannot drift apart. Every document carries `schema` (its kind) and an integer
//! `schemaVersion`; older versions are migrated when read, and fields a newer app
//! wrote are kept.

mod definitions;
mod kind;
mod migrate;
mod records;
mod reference;
mod report;
mod rules;
pub mod run_rules;
mod shape;
mod write;

use automerge::transaction::Transaction;
use serde_json::{Map, Value, json};

use crate::error::{Error, Result};

pub use definitions::{Definition, example, starter_definitions};
pub use kind::{KINDS, Kind, Visibility};
pub use migrate::migrate;
pub use records::*;
pub use reference::reference_markdown;
pub use report::{Chart, ChartKind, Point, Report, Series, render};
pub use run_rules::{Direction, Signal, SignalKind};
pub use shape::{Field, MAX_STRING_BYTES, Problem, Shape, check_fields, object_schema};
pub use write::write;

/// The kind named `name`.
pub fn kind(name: &str) -> Option<&'static Kind> {
    KINDS.iter().find(|k| k.name == name)
}

/// The kind a document says it is, or the problem with its `schema` field.
pub fn kind_of(value: &Value) -> Result<&'static Kind, Problem> {
    let problem = |message: String| Problem {
        path: "schema".into(),
        message,
    };
    match value.get("schema") {
        Some(Value::String(name)) => {
            kind(name).ok_or_else(|| problem(Error::UnknownKind(name.clone()).to_string()))
        }
        Some(_) => Err(problem("must be a string".into())),
        None => Err(problem("is required".into())),
    }
}

/// Every problem of a document: its `schema` and `schemaVersion`, then its fields
/// (after migrating a copy of an older version). A document from a newer version
/// is checked against the fields this version knows; the rest are its own.
pub fn validate(value: &Value) -> Result<&'static Kind, Vec<Problem>> {
    let Value::Object(_) = value else {
        return Err(vec![Problem {
            path: String::new(),
            message: "a document must be a JSON object".into(),
        }]);
    };
    let kind = kind_of(value).map_err(|p| vec![p])?;
    let mut problems = Vec::new();
    let mut current = value.clone();
    match value.get("schemaVersion") {
        Some(Value::Number(n)) if n.as_u64().is_some_and(|v| v >= 1) => {
            if let Err(p) = migrate(&mut current) {
                problems.push(p);
            }
        }
        Some(other) => problems.push(Problem {
            path: "schemaVersion".into(),
            message: format!("must be a whole number from 1, not {other}"),
        }),
        None => problems.push(Problem {
            path: "schemaVersion".into(),
            message: "is required".into(),
        }),
    }
    if let Value::Object(map) = &current {
        check_fields(kind.fields, map, "", &mut problems);
    }
    rules::check(kind, &current, &mut problems);
    let newer = value
        .get("schemaVersion")
        .and_then(Value::as_u64)
        .is_some_and(|v| v > u64::from(kind.version));
    if newer {
        // A newer app may have added values to an enumeration: keep its document.
        problems.retain(|p| !p.message.starts_with(shape::NOT_ONE_OF));
    }
    if problems.is_empty() {
        Ok(kind)
    } else {
        Err(problems)
    }
}

/// Drop the second and later items with the same `id` from every list of objects:
/// automerge lists cannot move an element, so two devices that move the same item
/// at the same time leave two copies of it. The first is kept.
pub fn normalize(kind: &Kind, value: &mut Value) {
    if let Value::Object(map) = value {
        normalize_fields(kind.fields, map);
    }
}

fn normalize_fields(fields: &[Field], map: &mut Map<String, Value>) {
    for field in fields {
        if let Some(v) = map.get_mut(field.name) {
            normalize_value(&field.shape, v);
        }
    }
}

fn normalize_value(shape: &Shape, value: &mut Value) {
    match (shape, value) {
        (Shape::Object(fields), Value::Object(map)) => normalize_fields(fields, map),
        (Shape::Map(item), Value::Object(map)) => {
            for v in map.values_mut() {
                normalize_value(item, v);
            }
        }
        (Shape::List { item, .. }, Value::Array(items)) => {
            if matches!(item, Shape::Object(_)) {
                let mut seen = std::collections::HashSet::new();
                items.retain(|v| match v.get("id").and_then(Value::as_str) {
                    Some(id) => seen.insert(id.to_owned()),
                    None => true,
                });
            }
            for v in items {
                normalize_value(item, v);
            }
        }
        _ => {}
    }
}

/// The JSON Schema (draft 2020-12) of a kind, at its current version.
pub fn json_schema(kind: &Kind) -> Value {
    let mut schema = object_schema(kind.fields);
    let properties = schema["properties"]
        .as_object_mut()
        .expect("an object schema");
    let mut head = Map::new();
    head.insert(
        "schema".into(),
        json!({"const": kind.name, "description": "The document's kind."}),
    );
    head.insert(
        "schemaVersion".into(),
        json!({"type": "integer", "minimum": 1, "description": format!("The version of the kind's schema; {} is current.", kind.version)}),
    );
    head.append(properties);
    schema["properties"] = Value::Object(head);
    let required = schema["required"].as_array_mut().expect("a list");
    required.insert(0, json!("schemaVersion"));
    required.insert(0, json!("schema"));
    schema["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    schema["title"] = json!(kind.name);
    schema["description"] = json!(kind.doc);
    schema
}

/// Make `value` a document of the kind named `name`: fill in `schema` and
/// `schemaVersion` when missing, and refuse a document that says it is of another
/// kind. (Validation comes when it is stored.)
pub fn as_kind(mut value: Value, name: &str) -> Result<Value> {
    let kind = kind(name).ok_or_else(|| Error::UnknownKind(name.to_owned()))?;
    let Value::Object(object) = &mut value else {
        return Err(Error::InvalidJson(
            "a document must be a JSON object".into(),
        ));
    };
    match object.get("schema") {
        None => {
            object.insert("schema".into(), kind.name.into());
        }
        Some(s) if s == kind.name => {}
        Some(other) => {
            return Err(Error::InvalidJson(format!(
                "the document's schema is {other}, not {}",
                kind.name
            )));
        }
    }
    object
        .entry("schemaVersion")
        .or_insert_with(|| kind.version.into());
    Ok(value)
}

/// Refuse an edit of a published definition (a rubric or template with
/// `published: true`): captures refer to it by `{id, version}`, so it never changes.
pub fn check_editable(current: &Value) -> Result<()> {
    let is_definition = matches!(
        current.get("schema").and_then(Value::as_str),
        Some("rubric" | "observation-template")
    );
    if is_definition && current.get("published") == Some(&Value::Bool(true)) {
        return Err(Error::Published {
            id: current
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            version: current.get("version").and_then(Value::as_u64).unwrap_or(0),
        });
    }
    Ok(())
}

/// Check a new document of a known kind, or say why it is not one.
pub fn check_new(value: &Value) -> Result<&'static Kind> {
    validate(value).map_err(|problems| Error::Invalid {
        kind: kind_of(value)
            .map(|k| k.name)
            .unwrap_or("document")
            .to_owned(),
        problems,
    })
}

/// Edit a typed document: `edit` runs on a copy of `current` (migrated to the
/// current version), the result is validated, and only what changed is written
/// into `tx`. Nothing is written if the edit fails or leaves the document invalid.
pub fn edit(
    tx: &mut Transaction<'_>,
    kind: &Kind,
    current: &Value,
    edit: impl FnOnce(&mut Transaction<'_>) -> Result<()>,
) -> Result<()> {
    check_editable(current)?;
    let mut migrated = current.clone();
    migrate(&mut migrated).map_err(|p| Error::Invalid {
        kind: kind.name.to_owned(),
        problems: vec![p],
    })?;
    normalize(kind, &mut migrated);
    // The edit runs with the same path rules and errors as on an untyped document,
    // on a scratch copy.
    let mut scratch = automerge::Automerge::new();
    scratch
        .transact(|tx| crate::json::put_root(tx, &migrated))
        .map_err(|f| f.error)?;
    scratch.transact(edit).map_err(|f| f.error)?;
    let next = crate::json::to_json(&scratch);
    validate(&next).map_err(|problems| Error::Invalid {
        kind: kind.name.to_owned(),
        problems,
    })?;
    write(tx, kind, &next)?;
    // The writer keeps keys it does not know (a newer app's); keys that the
    // migration or the edit itself took out, at any depth, are gone for good.
    if let (Value::Object(before), Value::Object(after)) = (current, &next) {
        write::drop_removed(tx, &automerge::ROOT, before, after)?;
    }
    Ok(())
}

/// A document as an app should see it: migrated to its kind's current version and
/// normalized; documents of no known kind are returned as they are.
pub fn current(value: &Value) -> Value {
    let mut current = value.clone();
    if let Ok(kind) = kind_of(value)
        && migrate(&mut current).is_ok()
    {
        normalize(kind, &mut current);
        return current;
    }
    value.clone()
}
