//! Tests of the JSON bridge ([`coachsync_core::json`]):
//!
//! - round trips through `put_root` + `to_json`, and the JS-compatible representation
//!   (strings as text objects, integers as `Int`, floats as `F64`);
//! - reading values other writers produce (counters, timestamps, bytes, `Str` scalars);
//! - `set_path`: text diffs that merge across forks, created maps, appends, refusals that
//!   write nothing;
//! - `push_path`, path parsing and printing, depth limits;
//! - property tests: arbitrary JSON objects round-trip, paths print and parse back, and no
//!   input string panics the parser.

use automerge::transaction::Transactable;
use automerge::{Automerge, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use coachsync_core::Error;
use coachsync_core::json::{JsonPath, MAX_DEPTH, push_path, put_root, set_path, to_json};
use proptest::prelude::*;
use serde_json::{Value as Json, json};

// ----- helpers ------------------------------------------------------------------------

fn doc_from(value: &Json) -> Automerge {
    let mut doc = Automerge::new();
    doc.transact(|tx| put_root(tx, value))
        .map_err(|f| f.error)
        .expect("put_root");
    doc
}

fn path(s: &str) -> JsonPath {
    s.parse()
        .unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
}

/// Run one edit the way a caller does: in a transaction that rolls back on error.
fn edit(
    doc: &mut Automerge,
    f: impl FnOnce(&mut automerge::transaction::Transaction<'_>) -> coachsync_core::Result<()>,
) -> Result<(), Error> {
    doc.transact(f).map(|_| ()).map_err(|f| f.error)
}

fn set(doc: &mut Automerge, p: &str, value: Json) -> Result<(), Error> {
    let p = path(p);
    edit(doc, |tx| set_path(tx, &p, &value))
}

fn push(doc: &mut Automerge, p: &str, value: Json) -> Result<(), Error> {
    let p = path(p);
    edit(doc, |tx| push_path(tx, &p, &value))
}

/// Assert an edit fails with exactly `message` and changes nothing.
fn assert_refused(doc: &mut Automerge, result: Result<(), Error>, before: &Json, message: &str) {
    let err = result.expect_err("the edit should be refused");
    assert_eq!(err.to_string(), message);
    assert_eq!(&to_json(doc), before, "a refused edit changed the document");
}

fn sample() -> Json {
    json!({
        "title": "Observation",
        "count": 3,
        "score": 4.5,
        "done": false,
        "reviewer": null,
        "notes": ["first", "second", "third"],
        "lookFors": {"engagement": {"level": 2, "tags": ["a", "b"]}, "pace": "ok"},
        "empty": {},
        "none": [],
        "blank": "",
    })
}

// ----- round trips and representation -------------------------------------------------

#[test]
fn nested_values_round_trip_through_put_root_and_to_json() {
    let value = sample();
    let doc = doc_from(&value);
    assert_eq!(to_json(&doc), value);
    // And again after a save and load, as a peer would see it.
    let loaded = Automerge::load(&doc.save()).unwrap();
    assert_eq!(to_json(&loaded), value);
}

#[test]
fn strings_are_written_as_text_objects() {
    let doc = doc_from(&json!({"k": "hello", "list": ["x"], "map": {"y": ""}}));
    let (value, id) = doc.get(ROOT, "k").unwrap().unwrap();
    assert_eq!(value, Value::Object(ObjType::Text));
    assert_eq!(doc.text(&id).unwrap(), "hello");

    let (_, list) = doc.get(ROOT, "list").unwrap().unwrap();
    let (item, _) = doc.get(&list, 0).unwrap().unwrap();
    assert_eq!(item, Value::Object(ObjType::Text));

    let (_, map) = doc.get(ROOT, "map").unwrap().unwrap();
    let (empty, _) = doc.get(&map, "y").unwrap().unwrap();
    assert_eq!(empty, Value::Object(ObjType::Text));
}

#[test]
fn integers_stay_integers_and_floats_stay_floats() {
    let value: Json = serde_json::from_str(
        r#"{"int": 7, "neg": -12, "big": 9007199254740993, "whole": 2.0, "frac": 0.25, "min": -9223372036854775808}"#,
    )
    .unwrap();
    let doc = doc_from(&value);

    let scalar = |key: &str| match doc.get(ROOT, key).unwrap().unwrap().0 {
        Value::Scalar(s) => s.into_owned(),
        other => panic!("{key} is {other:?}"),
    };
    assert_eq!(scalar("int"), ScalarValue::Int(7));
    assert_eq!(scalar("neg"), ScalarValue::Int(-12));
    assert_eq!(scalar("big"), ScalarValue::Int(9_007_199_254_740_993));
    assert_eq!(scalar("whole"), ScalarValue::F64(2.0));
    assert_eq!(scalar("frac"), ScalarValue::F64(0.25));
    assert_eq!(scalar("min"), ScalarValue::Int(i64::MIN));

    let out = to_json(&doc);
    assert_eq!(out, value);
    assert!(out["int"].is_i64());
    assert!(out["big"].is_i64());
    assert!(out["whole"].is_f64());
    assert_eq!(serde_json::to_string(&out["whole"]).unwrap(), "2.0");
    assert_eq!(serde_json::to_string(&out["int"]).unwrap(), "7");
}

#[test]
fn integers_beyond_i64_become_floats() {
    let doc = doc_from(&json!({"huge": u64::MAX}));
    assert_eq!(
        doc.get(ROOT, "huge").unwrap().unwrap().0,
        Value::Scalar(std::borrow::Cow::Owned(ScalarValue::F64(u64::MAX as f64)))
    );
}

#[test]
fn to_json_reads_values_other_writers_produce() {
    let mut doc = Automerge::new();
    doc.transact(|tx| {
        tx.put(ROOT, "str", ScalarValue::Str("plain".into()))?;
        tx.put(ROOT, "counter", ScalarValue::counter(5))?;
        tx.put(ROOT, "time", ScalarValue::Timestamp(1_700_000_000_123))?;
        tx.put(ROOT, "uint", ScalarValue::Uint(u64::MAX))?;
        tx.put(ROOT, "bytes", ScalarValue::Bytes(vec![0, 1, 255]))?;
        tx.put(ROOT, "nan", ScalarValue::F64(f64::NAN))?;
        tx.put(ROOT, "inf", ScalarValue::F64(f64::INFINITY))?;
        Ok::<_, automerge::AutomergeError>(())
    })
    .unwrap();
    doc.transact(|tx| tx.increment(ROOT, "counter", 2)).unwrap();
    assert_eq!(
        to_json(&doc),
        json!({
            "str": "plain",
            "counter": 7,
            "time": 1_700_000_000_123_i64,
            "uint": u64::MAX,
            "bytes": [0, 1, 255],
            "nan": null,
            "inf": null,
        })
    );

    // Edits treat a plain string like text, and replace it with text as JS would write it.
    let err = set(&mut doc, "str.x", json!(1)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot set str.x: str is a string, not an object or list"
    );
    set(&mut doc, "str", json!("now text")).unwrap();
    assert_eq!(
        doc.get(ROOT, "str").unwrap().unwrap().0,
        Value::Object(ObjType::Text)
    );
    assert_eq!(to_json(&doc)["str"], json!("now text"));
}

#[test]
fn to_json_of_an_empty_document_is_an_empty_object() {
    assert_eq!(to_json(&Automerge::new()), json!({}));
}

#[test]
fn put_root_refuses_anything_but_an_object() {
    for (value, kind) in [
        (json!([1, 2]), "an array"),
        (json!("x"), "a string"),
        (json!(1), "a number"),
        (json!(null), "null"),
        (json!(true), "a boolean"),
    ] {
        let mut doc = Automerge::new();
        let err = edit(&mut doc, |tx| put_root(tx, &value)).unwrap_err();
        assert!(matches!(err, Error::InvalidJson(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!("invalid json: a document must be an object, not {kind}")
        );
        assert_eq!(to_json(&doc), json!({}));
    }
}

/// `depth` objects nested inside each other, the innermost holding `1`.
fn nested(depth: usize) -> Json {
    let mut value = json!(1);
    for _ in 0..depth {
        value = json!({ "a": value });
    }
    value
}

#[test]
fn nesting_is_limited_on_write_and_read() {
    // The root counts as one level.
    let deepest = nested(MAX_DEPTH);
    let doc = doc_from(&deepest);
    assert_eq!(to_json(&doc), deepest);

    let mut doc = Automerge::new();
    let err = edit(&mut doc, |tx| put_root(tx, &nested(MAX_DEPTH + 1))).unwrap_err();
    assert!(matches!(err, Error::InvalidJson(_)), "{err:?}");

    let mut doc = doc_from(&json!({}));
    let err = set(&mut doc, "x", nested(MAX_DEPTH)).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("cannot set x: objects and lists would nest more than"),
        "{err}"
    );
    assert_eq!(to_json(&doc), json!({}));
    set(&mut doc, "x", nested(MAX_DEPTH - 1)).unwrap();
    let err = push(&mut doc, "y", nested(MAX_DEPTH - 1)).unwrap_err();
    assert!(err.to_string().starts_with("cannot push y:"), "{err}");

    // A document built by another writer deeper than the limit reads as null down there
    // instead of overflowing the stack.
    let mut deep = Automerge::new();
    deep.transact(|tx| {
        let mut obj = ROOT;
        for _ in 0..MAX_DEPTH + 50 {
            obj = tx.put_object(&obj, "a", ObjType::Map)?;
        }
        Ok::<_, automerge::AutomergeError>(())
    })
    .unwrap();
    let mut expected = json!(null);
    for _ in 0..MAX_DEPTH {
        expected = json!({ "a": expected });
    }
    let out = to_json(&deep);
    assert_eq!(out, expected);
    // Whatever to_json gives can be printed and parsed again.
    let text = serde_json::to_string(&out).unwrap();
    assert_eq!(serde_json::from_str::<Json>(&text).unwrap(), out);
}

// ----- set_path -------------------------------------------------------------------------

#[test]
fn set_replaces_values_of_any_kind() {
    let mut doc = doc_from(&sample());
    set(&mut doc, "count", json!({"nested": [1, "two"]})).unwrap();
    set(&mut doc, "title", json!(42)).unwrap();
    set(&mut doc, "notes.1", json!("SECOND")).unwrap();
    set(&mut doc, "notes.2", json!(false)).unwrap();
    set(&mut doc, "lookFors.engagement.tags", json!(null)).unwrap();
    let mut expected = sample();
    expected["count"] = json!({"nested": [1, "two"]});
    expected["title"] = json!(42);
    expected["notes"] = json!(["first", "SECOND", false]);
    expected["lookFors"]["engagement"]["tags"] = json!(null);
    assert_eq!(to_json(&doc), expected);
    // The new string is text, as JS would write it.
    let (_, notes) = doc.get(ROOT, "notes").unwrap().unwrap();
    assert_eq!(
        doc.get(&notes, 1).unwrap().unwrap().0,
        Value::Object(ObjType::Text)
    );
}

#[test]
fn set_on_existing_text_edits_it_in_place() {
    let mut doc = doc_from(&json!({"title": "hello world"}));
    let (_, before) = doc.get(ROOT, "title").unwrap().unwrap();
    set(&mut doc, "title", json!("hello there world")).unwrap();
    let (value, after) = doc.get(ROOT, "title").unwrap().unwrap();
    assert_eq!(value, Value::Object(ObjType::Text));
    assert_eq!(
        after, before,
        "the text object was replaced instead of edited"
    );
    assert_eq!(doc.text(&after).unwrap(), "hello there world");
}

#[test]
fn concurrent_sets_of_one_text_merge() {
    let mut base = doc_from(&json!({"title": "the quick brown fox", "notes": ["keep calm"]}));
    let mut left = base.fork();
    let mut right = base.fork();
    set(&mut left, "title", json!("the slow brown fox")).unwrap();
    set(&mut right, "title", json!("the quick brown cat")).unwrap();
    set(&mut left, "notes.0", json!("keep very calm")).unwrap();
    set(&mut right, "notes.0", json!("keep calm and carry on")).unwrap();

    left.merge(&mut right).unwrap();
    base.merge(&mut left).unwrap();
    assert_eq!(
        to_json(&base),
        json!({"title": "the slow brown cat", "notes": ["keep very calm and carry on"]})
    );
}

#[test]
fn set_creates_missing_intermediate_maps() {
    let mut doc = doc_from(&json!({"lookFors": {"pace": "ok"}}));
    set(&mut doc, "lookFors.engagement.level", json!(3)).unwrap();
    set(&mut doc, "a.b.c", json!(["x"])).unwrap();
    // Below a new map a segment of digits is a key, not an index.
    set(&mut doc, "fresh.0", json!("zero")).unwrap();
    assert_eq!(
        to_json(&doc),
        json!({
            "lookFors": {"pace": "ok", "engagement": {"level": 3}},
            "a": {"b": {"c": ["x"]}},
            "fresh": {"0": "zero"},
        })
    );
}

#[test]
fn digit_segments_are_keys_in_maps_and_indexes_in_lists() {
    let mut doc = doc_from(&json!({"byYear": {"2024": "old"}, "list": [{"2": "a"}]}));
    set(&mut doc, "byYear.2024", json!("new")).unwrap();
    set(&mut doc, "byYear.7", json!(7)).unwrap();
    set(&mut doc, "list.0.2", json!("b")).unwrap();
    assert_eq!(
        to_json(&doc),
        json!({"byYear": {"2024": "new", "7": 7}, "list": [{"2": "b"}]})
    );
}

#[test]
fn set_at_the_length_of_a_list_appends() {
    let mut doc = doc_from(&json!({"notes": ["a", "b"], "none": []}));
    set(&mut doc, "notes.2", json!("c")).unwrap();
    set(&mut doc, "none.0", json!({"k": 1})).unwrap();
    assert_eq!(
        to_json(&doc),
        json!({"notes": ["a", "b", "c"], "none": [{"k": 1}]})
    );
}

#[test]
fn set_past_the_end_of_a_list_is_refused_and_changes_nothing() {
    let mut doc = doc_from(&json!({"notes": ["a", "b", "c"]}));
    let before = to_json(&doc);
    let heads = doc.get_heads();
    let result = set(&mut doc, "notes.7", json!("x"));
    assert_refused(
        &mut doc,
        result,
        &before,
        "cannot set notes.7: index 7 is past the end of a list of 3",
    );
    // Past the end on the way down, too.
    let result = set(&mut doc, "notes.3.x", json!("x"));
    assert_refused(
        &mut doc,
        result,
        &before,
        "cannot set notes.3.x: index 3 is past the end of a list of 3",
    );
    let result = set(&mut doc, "notes.99999999999999999999999", json!(1));
    assert_refused(
        &mut doc,
        result,
        &before,
        "cannot set notes.99999999999999999999999: index 99999999999999999999999 is past the end of a list of 3",
    );
    assert_eq!(doc.get_heads(), heads, "a refused edit made a change");
}

#[test]
fn set_through_a_scalar_or_string_is_refused() {
    let mut doc = doc_from(&sample());
    let before = to_json(&doc);
    let cases = [
        (
            "title.x",
            "cannot set title.x: title is a string, not an object or list",
        ),
        (
            "count.x.y",
            "cannot set count.x.y: count is a number, not an object or list",
        ),
        (
            "done.0",
            "cannot set done.0: done is a boolean, not an object or list",
        ),
        (
            "reviewer.name",
            "cannot set reviewer.name: reviewer is null, not an object or list",
        ),
        (
            "notes.0.x",
            "cannot set notes.0.x: notes.0 is a string, not an object or list",
        ),
        (
            "lookFors.engagement.tags.first",
            "cannot set lookFors.engagement.tags.first: lookFors.engagement.tags is a list, and 'first' is not an index",
        ),
    ];
    for (p, message) in cases {
        let result = set(&mut doc, p, json!(1));
        assert_refused(&mut doc, result, &before, message);
    }
}

#[test]
fn a_refused_edit_inside_a_larger_transaction_rolls_it_all_back() {
    let mut doc = doc_from(&json!({"notes": ["a"]}));
    let result = edit(&mut doc, |tx| {
        set_path(tx, &path("title"), &json!("written first"))?;
        set_path(tx, &path("notes.5"), &json!("x"))
    });
    assert_refused(
        &mut doc,
        result,
        &json!({"notes": ["a"]}),
        "cannot set notes.5: index 5 is past the end of a list of 1",
    );
}

#[test]
fn edits_work_on_an_autocommit_document_too() {
    let mut doc = automerge::AutoCommit::new();
    put_root(&mut doc, &json!({"a": "x"})).unwrap();
    set_path(&mut doc, &path("a"), &json!("xy")).unwrap();
    push_path(&mut doc, &path("list"), &json!(1)).unwrap();
    assert_eq!(to_json(&doc), json!({"a": "xy", "list": [1]}));
}

// ----- push_path ------------------------------------------------------------------------

#[test]
fn push_onto_a_missing_key_creates_a_list() {
    let mut doc = doc_from(&json!({"lookFors": {}}));
    push(&mut doc, "notes", json!("first")).unwrap();
    push(&mut doc, "lookFors.engagement", json!({"level": 1})).unwrap();
    push(&mut doc, "new.deep.list", json!(1.5)).unwrap();
    assert_eq!(
        to_json(&doc),
        json!({
            "notes": ["first"],
            "lookFors": {"engagement": [{"level": 1}]},
            "new": {"deep": {"list": [1.5]}},
        })
    );
    let (value, _) = doc.get(ROOT, "notes").unwrap().unwrap();
    assert_eq!(value, Value::Object(ObjType::List));
}

#[test]
fn push_appends_to_an_existing_list() {
    let mut doc = doc_from(&json!({"notes": ["a"], "grid": [[1], [2]]}));
    push(&mut doc, "notes", json!("b")).unwrap();
    push(&mut doc, "notes", json!(["c"])).unwrap();
    push(&mut doc, "grid.1", json!(3)).unwrap();
    assert_eq!(
        to_json(&doc),
        json!({"notes": ["a", "b", ["c"]], "grid": [[1], [2, 3]]})
    );
}

#[test]
fn push_onto_something_other_than_a_list_is_refused() {
    let mut doc = doc_from(&sample());
    let before = to_json(&doc);
    let cases = [
        ("title", "cannot push title: title is a string, not a list"),
        (
            "lookFors",
            "cannot push lookFors: lookFors is an object, not a list",
        ),
        ("count", "cannot push count: count is a number, not a list"),
        (
            "notes.0",
            "cannot push notes.0: notes.0 is a string, not a list",
        ),
        (
            "notes.3",
            "cannot push notes.3: index 3 is past the end of a list of 3",
        ),
        (
            "title.x",
            "cannot push title.x: title is a string, not an object or list",
        ),
    ];
    for (p, message) in cases {
        let result = push(&mut doc, p, json!("x"));
        assert_refused(&mut doc, result, &before, message);
    }
}

// ----- paths ----------------------------------------------------------------------------

#[test]
fn paths_parse_into_segments() {
    assert_eq!(path("title").segments(), ["title"]);
    assert_eq!(path("notes.2").segments(), ["notes", "2"]);
    assert_eq!(
        path("lookFors.engagement").segments(),
        ["lookFors", "engagement"]
    );
    assert_eq!(path(r"a\.b.c").segments(), ["a.b", "c"]);
    assert_eq!(path(r"a\\.b").segments(), [r"a\", "b"]);
    assert_eq!(path(r"a\\\.b").segments(), [r"a\.b"]);
    assert_eq!(path(" spaced key ").segments(), [" spaced key "]);
    assert_eq!(path("ünï.cödé").segments(), ["ünï", "cödé"]);
}

#[test]
fn paths_print_escaped_and_parse_back() {
    for s in ["title", "notes.2", r"a\.b.c", r"a\\.b", r"\\\.", "ünï.cödé"] {
        let parsed = path(s);
        assert_eq!(parsed.to_string(), s);
        assert_eq!(path(&parsed.to_string()), parsed);
    }
    let built = JsonPath::from_segments(["v1.2", r"back\slash"]).unwrap();
    assert_eq!(built.to_string(), r"v1\.2.back\\slash");
    assert_eq!(path(&built.to_string()), built);
}

#[test]
fn bad_paths_are_refused_with_a_reason() {
    let cases = [
        ("", "invalid path '': path is empty"),
        (".", "invalid path '.': a segment is empty"),
        ("a..b", "invalid path 'a..b': a segment is empty"),
        (".a", "invalid path '.a': a segment is empty"),
        ("a.", "invalid path 'a.': a segment is empty"),
        (r"a\", r"invalid path 'a\': path ends in a lone backslash"),
        (
            r"a\b",
            r"invalid path 'a\b': a backslash must be followed by '.' or '\'",
        ),
    ];
    for (input, message) in cases {
        let err = input.parse::<JsonPath>().unwrap_err();
        assert!(matches!(err, Error::InvalidPath { .. }), "{err:?}");
        assert_eq!(err.to_string(), message);
    }
    let err = JsonPath::from_segments(Vec::<String>::new()).unwrap_err();
    assert_eq!(err.to_string(), "invalid path '': path is empty");
    let err = JsonPath::from_segments(["a", ""]).unwrap_err();
    assert_eq!(err.to_string(), "invalid path 'a.': a segment is empty");
}

#[test]
fn escaped_keys_address_keys_with_dots() {
    let mut doc = doc_from(&json!({"v1.2": {"a": 1}}));
    set(&mut doc, r"v1\.2.a", json!(2)).unwrap();
    set(&mut doc, r"x\\y", json!(3)).unwrap();
    assert_eq!(to_json(&doc), json!({"v1.2": {"a": 2}, r"x\y": 3}));
}

// ----- properties -----------------------------------------------------------------------

fn any_scalar() -> impl Strategy<Value = Json> {
    prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(Json::from),
        // Finite floats only: JSON has no NaN or infinity.
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Json::from),
        ".{0,12}".prop_map(Json::String),
    ]
}

fn any_json() -> impl Strategy<Value = Json> {
    any_scalar().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..6)
                .prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    })
}

fn any_object() -> impl Strategy<Value = Json> {
    prop::collection::btree_map(".{0,8}", any_json(), 0..6)
        .prop_map(|m| Json::Object(m.into_iter().collect()))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn any_json_object_round_trips(value in any_object()) {
        let doc = doc_from(&value);
        prop_assert_eq!(to_json(&doc), value.clone());
        let loaded = Automerge::load(&doc.save()).unwrap();
        prop_assert_eq!(to_json(&loaded), value);
    }

    #[test]
    fn setting_any_value_reads_back(start in any_object(), key in "[a-z.]{1,6}", value in any_json()) {
        let mut doc = doc_from(&start);
        let p = JsonPath::from_segments([key.clone()]).unwrap();
        edit(&mut doc, |tx| set_path(tx, &p, &value)).unwrap();
        let mut expected = start;
        expected[key.as_str()] = value;
        prop_assert_eq!(to_json(&doc), expected);
    }

    #[test]
    fn paths_print_and_parse_back(segments in prop::collection::vec(r"[a-z0-9.\\]{1,5}", 1..5)) {
        let built = JsonPath::from_segments(segments.clone()).unwrap();
        let parsed: JsonPath = built.to_string().parse().unwrap();
        prop_assert_eq!(parsed.segments(), &segments[..]);
    }

    #[test]
    fn no_path_string_panics_the_parser(s in r"[a-z0-9.\\]{0,12}|.{0,12}") {
        if let Ok(parsed) = s.parse::<JsonPath>() {
            prop_assert_eq!(parsed.to_string(), s);
        }
    }
}
