//! Writing a typed document: only what differs is written, prose as text and
//! everything else as plain values, so that concurrent edits from other devices
//! merge instead of being overwritten.
//!
//! Rewriting a whole object would replace it, and automerge would then keep one
//! side's copy and drop every concurrent edit inside the other. Instead the writer
//! walks the document and the new value together:
//! - maps and objects are entered key by key; keys the new value lacks are deleted,
//!   except fields this version does not know (a newer app wrote them);
//! - text is diffed (`update_text`), so two people editing one goal's wording both
//!   keep their words;
//! - lists of objects with an `id` are matched by it: an item edited in place stays
//!   the same automerge object, new items are inserted, missing ones deleted;
//! - plain values are written only when they changed.

use automerge::transaction::Transactable;
use automerge::{ObjId, ObjType, Prop, ROOT, ScalarValue, Value as AmValue};
use serde_json::{Map, Value};

use super::kind::Kind;
use super::shape::{Field, Shape};
use crate::error::{Error, Result};

/// Write `value` (a valid document of `kind`) over the document's current content.
pub fn write(tx: &mut impl Transactable, kind: &Kind, value: &Value) -> Result<()> {
    let Value::Object(map) = value else {
        return Err(Error::InvalidJson(
            "a document must be a JSON object".into(),
        ));
    };
    put_scalar(
        tx,
        &ROOT,
        "schema".into(),
        ScalarValue::Str(kind.name.into()),
    )?;
    if let Some(version) = map.get("schemaVersion").and_then(Value::as_i64) {
        put_scalar(tx, &ROOT, "schemaVersion".into(), ScalarValue::Int(version))?;
    }
    write_fields(tx, &ROOT, kind.fields, map, &["schema", "schemaVersion"])
}

fn write_fields(
    tx: &mut impl Transactable,
    obj: &ObjId,
    fields: &[Field],
    map: &Map<String, Value>,
    reserved: &[&str],
) -> Result<()> {
    for field in fields {
        let prop = Prop::Map(field.name.to_owned());
        match map.get(field.name) {
            None | Some(Value::Null) => {
                if tx.get(obj, prop.clone())?.is_some() {
                    tx.delete(obj, prop)?;
                }
            }
            Some(v) => write_value(tx, obj, prop, &field.shape, v)?,
        }
    }
    // Fields this version does not know: written as the JSON bridge writes them, and
    // never deleted, since they may be a newer app's.
    for (key, v) in map {
        if reserved.contains(&key.as_str()) || fields.iter().any(|f| f.name == key) {
            continue;
        }
        let prop = Prop::Map(key.clone());
        let same = match tx.get(obj, prop.clone())? {
            Some((existing, id)) => current_json(tx, &existing, &id) == *v,
            None => false,
        };
        if !same {
            crate::json::assign(tx, obj, prop, v)?;
        }
    }
    Ok(())
}

/// Delete from the document the keys `before` had and `after` lacks, at every depth
/// (list items matched by `id`): the writer keeps keys it does not know, so keys a
/// migration or an edit took out of an older document would otherwise stay.
pub(super) fn drop_removed(
    tx: &mut impl Transactable,
    obj: &ObjId,
    before: &Map<String, Value>,
    after: &Map<String, Value>,
) -> Result<()> {
    for (key, was) in before {
        let prop = Prop::Map(key.clone());
        let Some(now) = after.get(key) else {
            if tx.get(obj, prop.clone())?.is_some() {
                tx.delete(obj, prop)?;
            }
            continue;
        };
        match (was, now, tx.get(obj, prop)?) {
            (Value::Object(was), Value::Object(now), Some((AmValue::Object(ObjType::Map), id))) => {
                drop_removed(tx, &id, was, now)?;
            }
            (Value::Array(was), Value::Array(now), Some((AmValue::Object(ObjType::List), id))) => {
                let stored = element_ids(tx, &id)?;
                for item in now.iter().filter_map(Value::as_object) {
                    let Some(item_id) = item.get("id").and_then(Value::as_str) else {
                        continue;
                    };
                    let old = was
                        .iter()
                        .filter_map(Value::as_object)
                        .find(|o| o.get("id").and_then(Value::as_str) == Some(item_id));
                    let at = stored.iter().position(|s| s.as_deref() == Some(item_id));
                    if let (Some(old), Some(at)) = (old, at)
                        && let Some((AmValue::Object(ObjType::Map), element)) = tx.get(&id, at)?
                    {
                        drop_removed(tx, &element, old, item)?;
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn current_json(tx: &impl Transactable, value: &AmValue<'_>, id: &ObjId) -> Value {
    match value {
        AmValue::Object(kind) => crate::json::subtree_to_json(tx, id, *kind),
        AmValue::Scalar(s) => scalar_json(s),
    }
}

fn scalar_json(s: &ScalarValue) -> Value {
    match s {
        ScalarValue::Str(s) => Value::String(s.to_string()),
        ScalarValue::Int(i) => Value::from(*i),
        ScalarValue::Uint(u) => Value::from(*u),
        ScalarValue::F64(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        ScalarValue::Counter(c) => Value::from(i64::from(c)),
        ScalarValue::Timestamp(t) => Value::from(*t),
        ScalarValue::Boolean(b) => Value::Bool(*b),
        _ => Value::Null,
    }
}

fn put_scalar(
    tx: &mut impl Transactable,
    obj: &ObjId,
    prop: Prop,
    value: ScalarValue,
) -> Result<()> {
    let unchanged =
        matches!(tx.get(obj, prop.clone())?, Some((AmValue::Scalar(s), _)) if *s == value);
    if !unchanged {
        tx.put(obj, prop, value)?;
    }
    Ok(())
}

/// The object at `prop`, made (as `kind`) if it is missing or something else.
fn object_at(tx: &mut impl Transactable, obj: &ObjId, prop: Prop, kind: ObjType) -> Result<ObjId> {
    if let Some((AmValue::Object(existing), id)) = tx.get(obj, prop.clone())?
        && existing == kind
    {
        return Ok(id);
    }
    Ok(tx.put_object(obj, prop, kind)?)
}

fn number(v: &Value) -> Option<ScalarValue> {
    let n = v.as_number()?;
    Some(match n.as_i64() {
        Some(i) => ScalarValue::Int(i),
        None => ScalarValue::F64(n.as_f64()?),
    })
}

fn write_value(
    tx: &mut impl Transactable,
    obj: &ObjId,
    prop: Prop,
    shape: &Shape,
    v: &Value,
) -> Result<()> {
    let mismatch = || {
        Error::InvalidJson(format!(
            "a value does not fit its shape ({})",
            shape.describe()
        ))
    };
    match shape {
        Shape::Text => {
            let s = v.as_str().ok_or_else(mismatch)?;
            if let Some((AmValue::Object(ObjType::Text), id)) = tx.get(obj, prop.clone())? {
                tx.update_text(&id, s)?;
            } else {
                let id = tx.put_object(obj, prop, ObjType::Text)?;
                tx.splice_text(&id, 0, 0, s)?;
            }
        }
        Shape::Str | Shape::Enum(_) | Shape::Url => {
            let s = v.as_str().ok_or_else(mismatch)?;
            put_scalar(tx, obj, prop, ScalarValue::Str(s.into()))?;
        }
        Shape::Int { .. } | Shape::Timestamp | Shape::Number => {
            put_scalar(tx, obj, prop, number(v).ok_or_else(mismatch)?)?;
        }
        Shape::Bool => {
            put_scalar(
                tx,
                obj,
                prop,
                ScalarValue::Boolean(v.as_bool().ok_or_else(mismatch)?),
            )?;
        }
        Shape::Ref => {
            let map = v.as_object().ok_or_else(mismatch)?;
            let id = object_at(tx, obj, prop, ObjType::Map)?;
            write_fields(tx, &id, REF_FIELDS, map, &[])?;
        }
        Shape::Object(fields) => {
            let map = v.as_object().ok_or_else(mismatch)?;
            let id = object_at(tx, obj, prop, ObjType::Map)?;
            write_fields(tx, &id, fields, map, &[])?;
        }
        Shape::Map(item) => {
            let map = v.as_object().ok_or_else(mismatch)?;
            let id = object_at(tx, obj, prop, ObjType::Map)?;
            for (key, value) in map {
                write_value(tx, &id, Prop::Map(key.clone()), item, value)?;
            }
            let gone: Vec<String> = tx.keys(&id).filter(|k| !map.contains_key(k)).collect();
            for key in gone {
                tx.delete(&id, key)?;
            }
        }
        Shape::List { item, .. } => {
            let items = v.as_array().ok_or_else(mismatch)?;
            let id = object_at(tx, obj, prop, ObjType::List)?;
            write_list(tx, &id, item, items)?;
        }
    }
    Ok(())
}

const REF_FIELDS: &[Field] = &[
    super::shape::req("id", Shape::Str, ""),
    super::shape::req(
        "version",
        Shape::Int {
            min: 1,
            max: i64::MAX,
        },
        "",
    ),
];

/// The `id` of each element of a list (for elements that are maps with one).
fn element_ids(tx: &impl Transactable, list: &ObjId) -> Result<Vec<Option<String>>> {
    let len = tx.length(list);
    let mut ids = Vec::with_capacity(len);
    for i in 0..len {
        let id = match tx.get(list, i)? {
            Some((AmValue::Object(ObjType::Map), obj)) => match tx.get(&obj, "id")? {
                Some((AmValue::Scalar(s), _)) => match s.as_ref() {
                    ScalarValue::Str(s) => Some(s.to_string()),
                    _ => None,
                },
                Some((AmValue::Object(ObjType::Text), text)) => Some(tx.text(&text)?),
                _ => None,
            },
            _ => None,
        };
        ids.push(id);
    }
    Ok(ids)
}

/// The longest common subsequence of two ID lists, as (index in `existing`, index in
/// `wanted`) pairs in increasing order. Lists are short (goals, look-fors), so the
/// quadratic table is cheap.
fn common_subsequence(existing: &[Option<String>], wanted: &[Option<&str>]) -> Vec<(usize, usize)> {
    let (n, m) = (existing.len(), wanted.len());
    let same = |i: usize, j: usize| existing[i].is_some() && existing[i].as_deref() == wanted[j];
    let mut table = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            table[i][j] = if same(i, j) {
                table[i + 1][j + 1] + 1
            } else {
                table[i + 1][j].max(table[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut pairs) = (0, 0, Vec::new());
    while i < n && j < m {
        if same(i, j) {
            pairs.push((i, j));
            i += 1;
            j += 1;
        } else if table[i + 1][j] >= table[i][j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    pairs
}

fn write_list(
    tx: &mut impl Transactable,
    list: &ObjId,
    item: &Shape,
    items: &[Value],
) -> Result<()> {
    let keyed = items
        .iter()
        .all(|v| v.get("id").and_then(Value::as_str).is_some());
    if keyed && let Shape::Object(fields) = item {
        // Match by ID: the items that keep their relative order (the longest common
        // subsequence of IDs) stay the same automerge objects, so edits made
        // elsewhere to them merge. automerge lists cannot move an element: an item
        // that moved is deleted and inserted again (readers drop the duplicate that
        // two identical concurrent moves leave; see `domain::normalize`).
        let existing = element_ids(tx, list)?;
        let wanted: Vec<Option<&str>> = items
            .iter()
            .map(|v| v.get("id").and_then(Value::as_str))
            .collect();
        let kept = common_subsequence(&existing, &wanted);
        let mut at = 0;
        let mut next_existing = 0;
        for (j, value) in items.iter().enumerate() {
            match kept.iter().find(|(_, t)| *t == j) {
                Some(&(e, _)) => {
                    for _ in next_existing..e {
                        tx.delete(list, at)?;
                    }
                    next_existing = e + 1;
                    write_value(tx, list, Prop::Seq(at), item, value)?;
                }
                None => {
                    let obj = tx.insert_object(list, at, ObjType::Map)?;
                    let map = value.as_object().expect("keyed items are objects");
                    write_fields(tx, &obj, fields, map, &[])?;
                }
            }
            at += 1;
        }
        for _ in next_existing..existing.len() {
            tx.delete(list, at)?;
        }
        return Ok(());
    }
    // Plain items: write by position, then trim or extend.
    let len = tx.length(list);
    for (i, value) in items.iter().enumerate() {
        if i < len {
            write_value(tx, list, Prop::Seq(i), item, value)?;
        } else {
            insert_value(tx, list, i, item, value)?;
        }
    }
    for i in (items.len()..len).rev() {
        tx.delete(list, i)?;
    }
    Ok(())
}

fn insert_value(
    tx: &mut impl Transactable,
    list: &ObjId,
    at: usize,
    item: &Shape,
    value: &Value,
) -> Result<()> {
    match item {
        Shape::Text => {
            let id = tx.insert_object(list, at, ObjType::Text)?;
            tx.splice_text(&id, 0, 0, value.as_str().unwrap_or_default())?;
        }
        Shape::Object(_) | Shape::Ref | Shape::Map(_) => {
            tx.insert_object(list, at, ObjType::Map)?;
            write_value(tx, list, Prop::Seq(at), item, value)?;
        }
        Shape::List { .. } => {
            tx.insert_object(list, at, ObjType::List)?;
            write_value(tx, list, Prop::Seq(at), item, value)?;
        }
        _ => {
            tx.insert(list, at, ScalarValue::Null)?;
            write_value(tx, list, Prop::Seq(at), item, value)?;
        }
    }
    Ok(())
}
