//! The reference part of `docs/DOMAIN.md`, written from the kinds themselves so the
//! docs cannot drift from what validation checks.

use std::fmt::Write as _;

use super::kind::{KINDS, Kind};
use super::shape::{Field, Shape};

fn type_name(shape: &Shape) -> String {
    match shape {
        Shape::Text => "text".into(),
        Shape::Str => "string".into(),
        Shape::Enum(values) => values
            .iter()
            .map(|v| format!("`{v}`"))
            .collect::<Vec<_>>()
            .join(" \\| "),
        Shape::Int { min, max } if *max == i64::MAX => format!("integer ≥ {min}"),
        Shape::Int { min, max } => format!("integer {min}–{max}"),
        Shape::Number => "number".into(),
        Shape::Bool => "boolean".into(),
        Shape::Timestamp => "timestamp (ms)".into(),
        Shape::Url => "automerge URL".into(),
        Shape::Ref => "`{id, version}`".into(),
        Shape::Object(_) => "object".into(),
        Shape::List { item, min, max } => {
            let bounds = match (*min, *max) {
                (0, usize::MAX) => String::new(),
                (min, usize::MAX) => format!(", at least {min}"),
                (min, max) => format!(", {min}–{max}"),
            };
            format!("list of {}{bounds}", type_name(item))
        }
        Shape::Map(item) => format!("map of ID → {}", type_name(item)),
    }
}

fn rows(out: &mut String, fields: &[Field], prefix: &str) {
    for field in fields {
        let path = format!("{prefix}{}", field.name);
        let _ = writeln!(
            out,
            "| `{path}` | {} | {} | {} |",
            type_name(&field.shape),
            if field.required { "yes" } else { "" },
            field.doc.replace('|', "\\|")
        );
        let nested = match &field.shape {
            Shape::Object(fields) => Some((fields, format!("{path}."))),
            Shape::List {
                item: Shape::Object(fields),
                ..
            } => Some((fields, format!("{path}[]."))),
            Shape::Map(Shape::Object(fields)) => Some((fields, format!("{path}.<id>."))),
            _ => None,
        };
        if let Some((fields, prefix)) = nested {
            rows(out, fields, &prefix);
        }
    }
}

fn kind_section(out: &mut String, kind: &Kind) {
    let _ = writeln!(out, "### `{}` (version {})\n", kind.name, kind.version);
    let _ = writeln!(out, "{}\n", kind.doc);
    let _ = writeln!(out, "Visibility: **{}**.\n", kind.visibility.as_str());
    let _ = writeln!(out, "| field | type | required | meaning |");
    let _ = writeln!(out, "|---|---|---|---|");
    let _ = writeln!(out, "| `schema` | `\"{}\"` | yes | The kind. |", kind.name);
    let _ = writeln!(
        out,
        "| `schemaVersion` | integer ≥ 1 | yes | {} is current; older versions are migrated when read. |",
        kind.version
    );
    rows(out, kind.fields, "");
    if let Some(example) = super::example(kind.name) {
        let text = serde_json::to_string_pretty(&example).unwrap_or_default();
        let _ = writeln!(
            out,
            "\nExample (`coachsync device template {}`):\n",
            kind.name
        );
        let _ = writeln!(out, "```json\n{text}\n```");
    }
    out.push('\n');
}

/// The markdown reference of every kind: fields, types, visibility and an example.
pub fn reference_markdown() -> String {
    let mut out = String::new();
    let _ = writeln!(out, "| kind | version | visibility | what it is |");
    let _ = writeln!(out, "|---|---|---|---|");
    for kind in KINDS {
        let _ = writeln!(
            out,
            "| [`{0}`](#{0}-version-{1}) | {1} | {2} | {3} |",
            kind.name,
            kind.version,
            kind.visibility.as_str(),
            kind.doc
        );
    }
    out.push('\n');
    for kind in KINDS {
        kind_section(&mut out, kind);
    }
    out
}
