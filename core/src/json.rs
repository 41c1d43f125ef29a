//! The bridge between automerge documents and JSON.
//!
//! The command-line device and the mobile bindings show and edit documents as JSON, and the
//! same documents are opened by JavaScript peers (`@automerge/automerge` 3.x through
//! automerge-repo 2.x). So values are written the way JavaScript writes them, or a JS peer
//! would see a different shape than it wrote itself:
//!
//! | JSON                         | automerge                                   |
//! |------------------------------|---------------------------------------------|
//! | object                       | map                                         |
//! | array                        | list                                        |
//! | string                       | text object (JS automerge 3's default)      |
//! | integer that fits `i64`      | `Int`                                       |
//! | any other number             | `F64` (JS has no wider integers either)     |
//! | `true` / `false`             | `Boolean`                                   |
//! | `null`                       | `Null`                                      |
//!
//! Reading accepts more than writing produces, because other writers exist: tables read as
//! objects, plain `Str` scalars as strings, `Uint`, counters and timestamps (milliseconds)
//! as numbers, and bytes as an array of numbers (0–255) — JSON has no bytes, and an array is
//! what a caller can turn back into bytes without guessing an encoding. Writing such an
//! array back stores a list of integers, not bytes. Values JSON cannot hold (NaN and
//! infinite floats, scalar types from a future automerge) read as `null`.
//!
//! Objects and lists nest at most [`MAX_DEPTH`] deep, so that neither direction can exhaust
//! the stack on hostile input.

use std::fmt;
use std::str::FromStr;

use automerge::transaction::Transactable;
use automerge::{
    ObjId, ObjType, Prop, ROOT, ReadDoc, ScalarValue, ScalarValueRef, Value, ValueRef,
};
use serde_json::{Map, Number, Value as Json};

use crate::error::{Error, Result, printable};

/// How deeply objects and lists may nest, counting the root object as 1.
///
/// Both directions recurse, and `serde_json` itself recurses when it prints or drops a
/// value, so an unbounded document from a peer could overflow the stack. 100 stays under
/// `serde_json`'s own parse limit of 128, so everything [`to_json`] returns parses again.
pub const MAX_DEPTH: usize = 100;

/// Read a whole document (its root map) as a JSON object.
///
/// Where peers wrote conflicting values, the one automerge picks as the winner is shown.
/// Objects and lists nested deeper than [`MAX_DEPTH`] read as `null` rather than failing,
/// so that the rest of a document from a misbehaving peer can still be shown.
pub fn to_json(doc: &impl ReadDoc) -> Json {
    object_to_json(doc, &ROOT, ObjType::Map, 1)
}

/// Fill an empty document's root from a JSON object (error if `value` is not an object).
///
/// Each key is written like [`set_path`] writes it, so applying JSON to a document that
/// already has content replaces the keys given (merging into existing text) and keeps the
/// others. On error nothing has been written.
pub fn put_root(tx: &mut impl Transactable, value: &Json) -> Result<()> {
    let Json::Object(map) = value else {
        return Err(Error::InvalidJson(format!(
            "a document must be an object, not {}",
            json_kind(value)
        )));
    };
    if nesting(value) > MAX_DEPTH {
        return Err(Error::InvalidJson(format!(
            "objects and lists nest more than {MAX_DEPTH} deep"
        )));
    }
    // Numbers are checked first so that a bad one cannot leave half a document behind.
    check_numbers(value)?;
    for (key, item) in map {
        assign(tx, &ROOT, Prop::Map(key.clone()), item)?;
    }
    Ok(())
}

/// A parsed dot path such as `notes.2` or `lookFors.engagement`.
///
/// Segments are separated by `.`; `\.` is a dot inside a segment and `\\` a backslash. A
/// segment of digits only is a list index where the parent is a list and a map key where it
/// is a map, so that the path syntax does not need to know the document's shape. Its
/// `Display` writes the escaped form, which parses back to the same path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JsonPath {
    /// Never empty, and no segment is empty.
    segments: Vec<String>,
}

impl JsonPath {
    /// Build a path from unescaped segments, for callers (such as the mobile bindings) that
    /// hold keys containing dots and should not have to escape them.
    pub fn from_segments<I, S>(segments: I) -> Result<Self>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let segments: Vec<String> = segments.into_iter().map(Into::into).collect();
        let path = JsonPath { segments };
        if path.segments.is_empty() {
            return Err(invalid_path("", "path is empty"));
        }
        if path.segments.iter().any(String::is_empty) {
            return Err(invalid_path(&path.to_string(), "a segment is empty"));
        }
        Ok(path)
    }

    /// The unescaped segments, outermost first; never empty.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    /// The first `count` segments, escaped, to name where an error is.
    fn prefix(&self, count: usize) -> String {
        printable(&self.escaped(count))
    }

    fn escaped(&self, count: usize) -> String {
        let mut out = String::new();
        for (i, segment) in self.segments.iter().take(count).enumerate() {
            if i > 0 {
                out.push('.');
            }
            for c in segment.chars() {
                if matches!(c, '.' | '\\') {
                    out.push('\\');
                }
                out.push(c);
            }
        }
        out
    }
}

impl FromStr for JsonPath {
    type Err = Error;

    fn from_str(input: &str) -> Result<Self> {
        if input.is_empty() {
            return Err(invalid_path(input, "path is empty"));
        }
        let mut segments = Vec::new();
        let mut current = String::new();
        let mut chars = input.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some(escaped @ ('.' | '\\')) => current.push(escaped),
                    Some(_) => {
                        return Err(invalid_path(
                            input,
                            "a backslash must be followed by '.' or '\\'",
                        ));
                    }
                    None => return Err(invalid_path(input, "path ends in a lone backslash")),
                },
                '.' => {
                    if current.is_empty() {
                        return Err(invalid_path(input, "a segment is empty"));
                    }
                    segments.push(std::mem::take(&mut current));
                }
                c => current.push(c),
            }
        }
        if current.is_empty() {
            return Err(invalid_path(input, "a segment is empty"));
        }
        segments.push(current);
        Ok(JsonPath { segments })
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.escaped(self.segments.len()))
    }
}

/// Set the value at a path: map keys are created or replaced (missing intermediate maps are
/// created), list indexes must exist (or equal the length, which appends).
///
/// A string written over an existing text object is applied as a diff
/// ([`Transactable::update_text`]) rather than a new object, so that concurrent edits of
/// the same text on other devices merge instead of one replacing the other. Every other
/// value replaces what was there.
///
/// The path is checked against the document before anything is written, so on an error
/// about the path or the value nothing has been written; only a failure inside automerge
/// itself can leave a partial edit, which the caller's transaction should roll back.
pub fn set_path(tx: &mut impl Transactable, path: &JsonPath, value: &Json) -> Result<()> {
    let ctx = Ctx {
        action: "set",
        path,
    };
    ctx.check_depth(path.segments.len() + nesting(value))?;
    check_numbers(value)?;
    let target = locate(tx, &ctx)?;
    if !target.missing.is_empty() {
        let parent = create_maps(tx, target.parent, target.missing)?;
        return write(
            tx,
            &parent,
            Slot::Put(Prop::Map(target.last.to_owned())),
            value,
        );
    }
    match target.kind {
        Kind::Map => assign(tx, &target.parent, Prop::Map(target.last.to_owned()), value),
        Kind::List(len) => {
            let index = ctx.index(
                path.segments.len().saturating_sub(1),
                target.last,
                len,
                true,
            )?;
            if index == len {
                write(tx, &target.parent, Slot::Insert(index), value)
            } else {
                assign(tx, &target.parent, Prop::Seq(index), value)
            }
        }
    }
}

/// Append a value to the list at a path; a missing map key becomes a new list holding the
/// value.
///
/// Like [`set_path`], missing intermediate maps are created and nothing is written when the
/// path or value is refused.
pub fn push_path(tx: &mut impl Transactable, path: &JsonPath, value: &Json) -> Result<()> {
    let ctx = Ctx {
        action: "push",
        path,
    };
    // The new list (or the existing one) adds a level above the value.
    ctx.check_depth(path.segments.len() + 1 + nesting(value))?;
    check_numbers(value)?;
    let target = locate(tx, &ctx)?;
    let last = path.segments.len().saturating_sub(1);
    if !target.missing.is_empty() {
        let parent = create_maps(tx, target.parent, target.missing)?;
        let list = tx.put_object(&parent, target.last, ObjType::List)?;
        return write(tx, &list, Slot::Insert(0), value);
    }
    let prop = match target.kind {
        Kind::Map => Prop::Map(target.last.to_owned()),
        Kind::List(len) => Prop::Seq(ctx.index(last, target.last, len, false)?),
    };
    let existing = tx
        .get(&target.parent, prop.clone())?
        .map(|(current, id)| (current.into_owned(), id));
    match existing {
        Some((Value::Object(ObjType::List), list)) => {
            let len = tx.length(&list);
            write(tx, &list, Slot::Insert(len), value)
        }
        Some((other, _)) => Err(ctx.err(format!(
            "{} is {}, not a list",
            path.prefix(last + 1),
            describe(&other)
        ))),
        None => match prop {
            Prop::Map(key) => {
                let list = tx.put_object(&target.parent, key, ObjType::List)?;
                write(tx, &list, Slot::Insert(0), value)
            }
            // `index` checked the length, so the element exists; refuse rather than panic
            // if automerge ever disagrees.
            Prop::Seq(index) => Err(ctx.err(format!("there is no element at index {index}"))),
        },
    }
}

/// The operation and path an error is about.
struct Ctx<'a> {
    action: &'static str,
    path: &'a JsonPath,
}

impl Ctx<'_> {
    fn err(&self, reason: String) -> Error {
        Error::Edit {
            action: self.action,
            path: printable(&self.path.to_string()),
            reason,
        }
    }

    fn check_depth(&self, depth: usize) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(self.err(format!(
                "objects and lists would nest more than {MAX_DEPTH} deep"
            )));
        }
        Ok(())
    }

    /// Segment `at` as an index into a list of `len`; `allow_end` admits `len` itself, which
    /// appends.
    fn index(&self, at: usize, segment: &str, len: usize, allow_end: bool) -> Result<usize> {
        if segment.is_empty() || !segment.bytes().all(|b| b.is_ascii_digit()) {
            return Err(self.err(format!(
                "{} is a list, and '{}' is not an index",
                self.path.prefix(at),
                printable(segment)
            )));
        }
        // Digits too many for usize are past the end of any list.
        match segment.parse::<usize>() {
            Ok(index) if index < len || (allow_end && index == len) => Ok(index),
            _ => Err(self.err(format!(
                "index {} is past the end of a list of {len}",
                printable(segment)
            ))),
        }
    }
}

/// The kind of container a path walks through; text is a leaf, never walked into.
#[derive(Clone, Copy)]
enum Kind {
    Map,
    /// With its length.
    List(usize),
}

/// Where the last segment of a path lands.
struct Target<'p> {
    /// The deepest existing container on the path.
    parent: ObjId,
    kind: Kind,
    /// Segments below `parent` (all but the last) that do not exist yet; each becomes a map.
    missing: &'p [String],
    last: &'p str,
}

/// Walk all but the last segment without writing anything, so that every refusal happens
/// before the first write.
fn locate<'p>(doc: &impl ReadDoc, ctx: &Ctx<'p>) -> Result<Target<'p>> {
    let Some((last, walk)) = ctx.path.segments.split_last() else {
        return Err(ctx.err("path is empty".to_owned()));
    };
    let mut parent = ROOT;
    let mut kind = Kind::Map;
    for (i, segment) in walk.iter().enumerate() {
        let prop = match kind {
            Kind::Map => Prop::Map(segment.clone()),
            Kind::List(len) => Prop::Seq(ctx.index(i, segment, len, false)?),
        };
        let found = doc
            .get(&parent, prop)?
            .map(|(value, id)| (value.into_owned(), id));
        match found {
            None => {
                if let Kind::List(len) = kind {
                    return Err(ctx.err(format!(
                        "index {segment} is past the end of a list of {len}"
                    )));
                }
                return Ok(Target {
                    parent,
                    kind,
                    missing: &walk[i..],
                    last,
                });
            }
            Some((Value::Object(ObjType::Map | ObjType::Table), id)) => {
                parent = id;
                kind = Kind::Map;
            }
            Some((Value::Object(ObjType::List), id)) => {
                kind = Kind::List(doc.length(&id));
                parent = id;
            }
            Some((other, _)) => {
                return Err(ctx.err(format!(
                    "{} is {}, not an object or list",
                    ctx.path.prefix(i + 1),
                    describe(&other)
                )));
            }
        }
    }
    Ok(Target {
        parent,
        kind,
        missing: &[],
        last,
    })
}

/// Create the chain of maps `keys` below the map `parent`; returns the innermost.
fn create_maps(tx: &mut impl Transactable, parent: ObjId, keys: &[String]) -> Result<ObjId> {
    let mut obj = parent;
    for key in keys {
        obj = tx.put_object(&obj, key.as_str(), ObjType::Map)?;
    }
    Ok(obj)
}

/// Where a new value goes.
enum Slot {
    /// Replace (or create) a map key or an existing list element.
    Put(Prop),
    /// Insert into a list before this index.
    Insert(usize),
}

/// Write `value` at an existing map key or list index, diffing into text that is there.
pub(crate) fn assign(
    tx: &mut impl Transactable,
    obj: &ObjId,
    prop: Prop,
    value: &Json,
) -> Result<()> {
    if let Json::String(new) = value {
        let text = match tx.get(obj, prop.clone())? {
            Some((Value::Object(ObjType::Text), id)) => Some(id),
            _ => None,
        };
        if let Some(text) = text {
            tx.update_text(&text, new)?;
            return Ok(());
        }
    }
    write(tx, obj, Slot::Put(prop), value)
}

/// Write `value` as a new value; recursion is bounded by the depth checked beforehand.
fn write(tx: &mut impl Transactable, obj: &ObjId, slot: Slot, value: &Json) -> Result<()> {
    match value {
        Json::String(s) => {
            let text = make_object(tx, obj, slot, ObjType::Text)?;
            if !s.is_empty() {
                tx.splice_text(&text, 0, 0, s)?;
            }
        }
        Json::Object(map) => {
            let child = make_object(tx, obj, slot, ObjType::Map)?;
            for (key, item) in map {
                write(tx, &child, Slot::Put(Prop::Map(key.clone())), item)?;
            }
        }
        Json::Array(items) => {
            let child = make_object(tx, obj, slot, ObjType::List)?;
            for (i, item) in items.iter().enumerate() {
                write(tx, &child, Slot::Insert(i), item)?;
            }
        }
        Json::Null | Json::Bool(_) | Json::Number(_) => {
            let scalar = scalar(value)?;
            match slot {
                Slot::Put(prop) => tx.put(obj, prop, scalar)?,
                Slot::Insert(index) => tx.insert(obj, index, scalar)?,
            }
        }
    }
    Ok(())
}

fn make_object(
    tx: &mut impl Transactable,
    obj: &ObjId,
    slot: Slot,
    kind: ObjType,
) -> Result<ObjId> {
    Ok(match slot {
        Slot::Put(prop) => tx.put_object(obj, prop, kind)?,
        Slot::Insert(index) => tx.insert_object(obj, index, kind)?,
    })
}

fn scalar(value: &Json) -> Result<ScalarValue> {
    Ok(match value {
        Json::Bool(b) => ScalarValue::Boolean(*b),
        Json::Number(n) => number(n)?,
        _ => ScalarValue::Null,
    })
}

fn number(n: &Number) -> Result<ScalarValue> {
    if let Some(i) = n.as_i64() {
        return Ok(ScalarValue::Int(i));
    }
    // Only reachable with serde_json's `arbitrary_precision`, which another crate of a
    // build could switch on: a number no f64 can hold.
    n.as_f64().map(ScalarValue::F64).ok_or_else(|| {
        Error::InvalidJson(format!(
            "number {} is out of range",
            printable(&n.to_string())
        ))
    })
}

/// Refuse a bad number before anything is written, rather than halfway through.
fn check_numbers(value: &Json) -> Result<()> {
    let mut stack = vec![value];
    while let Some(value) = stack.pop() {
        match value {
            Json::Number(n) => {
                number(n)?;
            }
            Json::Array(items) => stack.extend(items),
            Json::Object(map) => stack.extend(map.values()),
            Json::Null | Json::Bool(_) | Json::String(_) => {}
        }
    }
    Ok(())
}

/// How many objects and lists nest in `value` (0 for a scalar or string). Iterative, and
/// stops once past [`MAX_DEPTH`], because the value itself may be too deep to recurse into.
fn nesting(value: &Json) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((value, depth)) = stack.pop() {
        let depth = depth + 1;
        match value {
            Json::Array(items) => stack.extend(items.iter().map(|item| (item, depth))),
            Json::Object(map) => stack.extend(map.values().map(|item| (item, depth))),
            _ => continue,
        }
        deepest = deepest.max(depth);
        if deepest > MAX_DEPTH {
            break;
        }
    }
    deepest
}

/// An object inside a document (not only the root) as JSON.
pub(crate) fn subtree_to_json(doc: &impl ReadDoc, obj: &ObjId, kind: ObjType) -> Json {
    object_to_json(doc, obj, kind, 1)
}

/// `obj` (of type `kind`, at nesting `depth`) as JSON.
fn object_to_json(doc: &impl ReadDoc, obj: &ObjId, kind: ObjType, depth: usize) -> Json {
    match kind {
        ObjType::Text => Json::String(doc.text(obj).unwrap_or_default()),
        _ if depth > MAX_DEPTH => Json::Null,
        ObjType::Map | ObjType::Table => {
            let mut map = Map::new();
            for item in doc.map_range(obj, ..) {
                let value = match item.value {
                    ValueRef::Object(child) => object_to_json(doc, &item.id(), child, depth + 1),
                    ValueRef::Scalar(ref s) => scalar_to_json(s),
                };
                map.insert(item.key.into_owned(), value);
            }
            Json::Object(map)
        }
        ObjType::List => Json::Array(
            doc.list_range(obj, ..)
                .map(|item| match item.value {
                    ValueRef::Object(child) => object_to_json(doc, &item.id(), child, depth + 1),
                    ValueRef::Scalar(ref s) => scalar_to_json(s),
                })
                .collect(),
        ),
    }
}

fn scalar_to_json(value: &ScalarValueRef<'_>) -> Json {
    match value {
        ScalarValueRef::Bytes(bytes) => Json::Array(bytes.iter().map(|&b| Json::from(b)).collect()),
        ScalarValueRef::Str(s) => Json::String(s.to_string()),
        ScalarValueRef::Int(i) | ScalarValueRef::Counter(i) | ScalarValueRef::Timestamp(i) => {
            Json::from(*i)
        }
        ScalarValueRef::Uint(u) => Json::from(*u),
        ScalarValueRef::F64(f) => Number::from_f64(*f).map_or(Json::Null, Json::Number),
        ScalarValueRef::Boolean(b) => Json::Bool(*b),
        ScalarValueRef::Unknown { .. } | ScalarValueRef::Null => Json::Null,
    }
}

/// What a document value is, in JSON's words, for error messages.
fn describe(value: &Value<'_>) -> &'static str {
    match value {
        Value::Object(ObjType::Map | ObjType::Table) => "an object",
        Value::Object(ObjType::List) => "a list",
        Value::Object(ObjType::Text) => "a string",
        Value::Scalar(s) => match s.as_ref() {
            ScalarValue::Str(_) => "a string",
            ScalarValue::Int(_)
            | ScalarValue::Uint(_)
            | ScalarValue::F64(_)
            | ScalarValue::Counter(_)
            | ScalarValue::Timestamp(_) => "a number",
            ScalarValue::Boolean(_) => "a boolean",
            ScalarValue::Null => "null",
            ScalarValue::Bytes(_) => "bytes",
            ScalarValue::Unknown { .. } => "a value of an unknown type",
        },
    }
}

fn json_kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

fn invalid_path(input: &str, reason: &'static str) -> Error {
    Error::InvalidPath {
        path: printable(input),
        reason,
    }
}
