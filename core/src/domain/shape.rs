//! The shape of a document kind's JSON, as data: what validation checks, what the
//! writer stores as text or as a plain value, and what the JSON Schema and the docs
//! say.

use serde_json::{Map, Value, json};

/// The shape of one value.
#[derive(Debug)]
pub enum Shape {
    /// Prose people edit, possibly at the same time: stored as automerge text, so
    /// concurrent edits merge character by character.
    Text,
    /// A short string set as a whole (a name, an identifier, a date): stored as a
    /// plain value, the last writer wins.
    Str,
    /// One of a fixed set of strings, stored as a plain value.
    Enum(&'static [&'static str]),
    /// A whole number within bounds.
    Int {
        /// The smallest allowed.
        min: i64,
        /// The largest allowed.
        max: i64,
    },
    /// Any number.
    Number,
    /// `true` or `false`.
    Bool,
    /// Milliseconds since 1970-01-01 UTC.
    Timestamp,
    /// An `automerge:` URL of another document.
    Url,
    /// A reference to a versioned definition: `{id, version}`.
    Ref,
    /// An object with these fields.
    Object(&'static [Field]),
    /// A list; items that are objects with an `id` are matched by it when written.
    List {
        /// Each item.
        item: &'static Shape,
        /// The fewest items allowed.
        min: usize,
        /// The most items allowed.
        max: usize,
    },
    /// An object whose keys are IDs chosen by the app, each holding an item; for
    /// collections people reorder (see `rank`) and edit concurrently.
    Map(&'static Shape),
}

/// A list of any length.
pub const fn list(item: &'static Shape) -> Shape {
    Shape::List {
        item,
        min: 0,
        max: usize::MAX,
    }
}

/// One field of an object.
#[derive(Debug)]
pub struct Field {
    /// Its name (camelCase).
    pub name: &'static str,
    /// Its shape.
    pub shape: Shape,
    /// Whether a valid document must have it.
    pub required: bool,
    /// What it means, for the docs.
    pub doc: &'static str,
}

/// A required field.
pub const fn req(name: &'static str, shape: Shape, doc: &'static str) -> Field {
    Field {
        name,
        shape,
        required: true,
        doc,
    }
}

/// An optional field.
pub const fn opt(name: &'static str, shape: Shape, doc: &'static str) -> Field {
    Field {
        name,
        shape,
        required: false,
        doc,
    }
}

/// One thing wrong with a document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where, as a dot path from the root (`goals.0.text`); empty for the root.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// How a value outside an enumeration is reported.
pub(crate) const NOT_ONE_OF: &str = "must be one of";

/// The largest string accepted in one field, in bytes.
pub const MAX_STRING_BYTES: usize = 1 << 20;

/// `path.key`, with dots and backslashes in the key escaped as dot paths write them,
/// so a problem's path can be given to `set` as it is.
fn child(path: &str, key: &str) -> String {
    let key = if key.contains(['.', '\\']) {
        key.replace('\\', "\\\\").replace('.', "\\.")
    } else {
        key.to_owned()
    };
    if path.is_empty() {
        key
    } else {
        format!("{path}.{key}")
    }
}

impl Shape {
    /// Every problem of `value` against this shape, at `path`. Fields the shape
    /// does not name are allowed: a newer app may have written them.
    pub fn check(&self, value: &Value, path: &str, problems: &mut Vec<Problem>) {
        let mut problem = |message: String| {
            problems.push(Problem {
                path: path.to_owned(),
                message,
            })
        };
        match (self, value) {
            (Shape::Text | Shape::Str, Value::String(s)) => {
                if s.len() > MAX_STRING_BYTES {
                    problem(format!("is longer than {MAX_STRING_BYTES} bytes"));
                }
            }
            (Shape::Enum(allowed), Value::String(s)) => {
                if !allowed.contains(&s.as_str()) {
                    problem(format!("{NOT_ONE_OF} {}, not {s:?}", allowed.join(", ")));
                }
            }
            (Shape::Int { min, max }, Value::Number(n)) => match n.as_i64() {
                Some(i) if i < *min || i > *max => {
                    problem(format!("must be from {min} to {max}, not {i}"))
                }
                Some(_) => {}
                None => problem(format!("must be a whole number, not {n}")),
            },
            (Shape::Number, Value::Number(_)) | (Shape::Bool, Value::Bool(_)) => {}
            (Shape::Timestamp, Value::Number(n)) => {
                if n.as_i64().is_none_or(|i| i < 0) {
                    problem(format!(
                        "must be milliseconds since 1970 (a whole number), not {n}"
                    ));
                }
            }
            (Shape::Url, Value::String(s)) => {
                if s.parse::<crate::AutomergeUrl>().is_err() {
                    problem(format!("must be an automerge: URL, not {s:?}"));
                }
            }
            (Shape::Ref, Value::Object(map)) => {
                match map.get("id") {
                    Some(Value::String(s)) if !s.is_empty() => {}
                    Some(_) => problems.push(Problem {
                        path: child(path, "id"),
                        message: "must be a non-empty string".into(),
                    }),
                    None => problems.push(Problem {
                        path: child(path, "id"),
                        message: "is required".into(),
                    }),
                }
                match map.get("version") {
                    Some(Value::Number(n)) if n.as_u64().is_some_and(|v| v >= 1) => {}
                    Some(_) => problems.push(Problem {
                        path: child(path, "version"),
                        message: "must be a whole number from 1".into(),
                    }),
                    None => problems.push(Problem {
                        path: child(path, "version"),
                        message: "is required".into(),
                    }),
                }
            }
            (Shape::Object(fields), Value::Object(map)) => {
                check_fields(fields, map, path, problems)
            }
            (Shape::List { item, min, max }, Value::Array(items)) => {
                if items.len() < *min || items.len() > *max {
                    let bound = if *max == usize::MAX {
                        format!("at least {min}")
                    } else if min == max {
                        format!("exactly {min}")
                    } else {
                        format!("from {min} to {max}")
                    };
                    problem(format!("must have {bound} items, not {}", items.len()));
                }
                let mut ids = std::collections::HashSet::new();
                for (i, v) in items.iter().enumerate() {
                    let at = child(path, &i.to_string());
                    item.check(v, &at, problems);
                    if let Some(id) = v.get("id").and_then(Value::as_str)
                        && !ids.insert(id)
                    {
                        problems.push(Problem {
                            path: child(&at, "id"),
                            message: format!("{id:?} is used twice in this list"),
                        });
                    }
                }
            }
            (Shape::Map(item), Value::Object(map)) => {
                for (key, v) in map {
                    item.check(v, &child(path, key), problems);
                }
            }
            (shape, other) => problem(format!(
                "must be {}, not {}",
                shape.describe(),
                json_type(other)
            )),
        }
    }

    /// A short description: "text", "a list of objects", …
    pub fn describe(&self) -> String {
        match self {
            Shape::Text => "text (a string)".into(),
            Shape::Str => "a string".into(),
            Shape::Enum(values) => format!("one of {}", values.join(", ")),
            Shape::Int { .. } => "a whole number".into(),
            Shape::Number => "a number".into(),
            Shape::Bool => "true or false".into(),
            Shape::Timestamp => "a timestamp (milliseconds since 1970)".into(),
            Shape::Url => "an automerge: URL".into(),
            Shape::Ref => "a reference {id, version}".into(),
            Shape::Object(_) => "an object".into(),
            Shape::List { .. } => "a list".into(),
            Shape::Map(_) => "an object keyed by ID".into(),
        }
    }

    /// The JSON Schema (draft 2020-12) of this shape.
    pub fn json_schema(&self) -> Value {
        match self {
            Shape::Text => json!({"type": "string", "x-automerge": "text"}),
            Shape::Str => json!({"type": "string"}),
            Shape::Enum(values) => json!({"type": "string", "enum": values}),
            Shape::Int { min, max } => {
                let mut s = json!({"type": "integer", "minimum": min});
                if *max < i64::MAX {
                    s["maximum"] = json!(max);
                }
                s
            }
            Shape::Number => json!({"type": "number"}),
            Shape::Bool => json!({"type": "boolean"}),
            Shape::Timestamp => {
                json!({"type": "integer", "minimum": 0, "x-unit": "ms since 1970-01-01T00:00:00Z"})
            }
            Shape::Url => json!({"type": "string", "pattern": "^automerge:"}),
            Shape::Ref => json!({
                "type": "object",
                "required": ["id", "version"],
                "properties": {
                    "id": {"type": "string", "minLength": 1},
                    "version": {"type": "integer", "minimum": 1}
                }
            }),
            Shape::Object(fields) => object_schema(fields),
            Shape::List { item, min, max } => {
                let mut s = json!({"type": "array", "items": item.json_schema()});
                if *min > 0 {
                    s["minItems"] = json!(min);
                }
                if *max < usize::MAX {
                    s["maxItems"] = json!(max);
                }
                s
            }
            Shape::Map(item) => {
                json!({"type": "object", "additionalProperties": item.json_schema()})
            }
        }
    }
}

/// Check an object's fields: missing required ones, and each present one.
pub fn check_fields(
    fields: &[Field],
    map: &Map<String, Value>,
    path: &str,
    problems: &mut Vec<Problem>,
) {
    for field in fields {
        match map.get(field.name) {
            None | Some(Value::Null) if field.required => problems.push(Problem {
                path: child(path, field.name),
                message: "is required".into(),
            }),
            None | Some(Value::Null) => {}
            Some(value) => field.shape.check(value, &child(path, field.name), problems),
        }
    }
}

/// The JSON Schema of an object with these fields.
pub fn object_schema(fields: &[Field]) -> Value {
    let mut properties = Map::new();
    for field in fields {
        let mut schema = field.shape.json_schema();
        schema["description"] = json!(field.doc);
        properties.insert(field.name.to_owned(), schema);
    }
    let required: Vec<&str> = fields
        .iter()
        .filter(|f| f.required)
        .map(|f| f.name)
        .collect();
    json!({
        "type": "object",
        "required": required,
        "properties": properties,
        "additionalProperties": true
    })
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
