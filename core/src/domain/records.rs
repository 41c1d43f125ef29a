//! Typed views of the documents, for Rust code that works with their content.
//!
//! The structs mirror the kinds in `kind.rs` field for field (JSON names in
//! camelCase, optional fields as `Option`). Validation stays with the kinds: these
//! types only give Rust code names and types to work with. Two rules keep them
//! safe to write back to a shared document:
//!
//! - every struct keeps the fields it does not know in `extra`, so what a newer app
//!   wrote survives a read and a write by this one;
//! - every enum has an `Unknown` variant holding the string as written, so a value a
//!   newer app added reads, and writes back, unchanged instead of failing the whole
//!   document.
//!
//! Numbers (`rank`, `value`, `baseline`, `target`) are `f64`, and are written back as
//! integers when they are whole, as JavaScript peers and the JSON bridge write them:
//! `1` reads as `1.0` and writes as `1` again.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};

/// Fields a newer app wrote that this version does not know, kept as they are.
pub type Extra = Map<String, Value>;

/// Write whole numbers as integers, as JavaScript writes them: a document read into
/// a record and written back is then the same JSON, and peers see an `Int`, not an
/// `F64`, where they wrote one.
mod number {
    use serde::Serializer;

    /// The largest magnitude up to which every whole `f64` is exactly an integer
    /// (2^53); beyond it a float is written as a float.
    const EXACT: f64 = 9_007_199_254_740_992.0;

    fn is_whole(v: f64) -> bool {
        v.fract() == 0.0 && v.abs() <= EXACT
    }

    pub(super) fn serialize<S: Serializer>(v: &f64, s: S) -> Result<S::Ok, S::Error> {
        if is_whole(*v) {
            // Exact: checked whole and within ±2^53 above.
            s.serialize_i64(*v as i64)
        } else {
            s.serialize_f64(*v)
        }
    }

    // serde's `serialize_with` passes the field as declared: `&Option<f64>`.
    pub(super) fn serialize_option<S: Serializer>(
        v: &Option<f64>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => serialize(v, s),
            None => s.serialize_none(),
        }
    }
}

/// Read a record from JSON, as it is (no migration; see [`read`] for documents).
pub fn from_value<T: DeserializeOwned>(value: &Value) -> Result<T> {
    T::deserialize(value).map_err(|e| Error::InvalidJson(e.to_string()))
}

/// A record as JSON.
pub fn to_value<T: Serialize>(record: &T) -> Result<Value> {
    serde_json::to_value(record).map_err(|e| Error::InvalidJson(e.to_string()))
}

/// A top-level document type: one per kind.
pub trait Record: Serialize + DeserializeOwned {
    /// The kind's name, the value of the document's `schema` field.
    const KIND: &'static str;
}

/// Read a document of kind `T::KIND` as `T`: an older `schemaVersion` is migrated
/// first (on a copy), so code only ever sees the current shape. This does not
/// validate: a document that deserializes is returned even if validation would
/// find problems that its types cannot express (bounds, duplicate IDs, URLs).
pub fn read<T: Record>(value: &Value) -> Result<T> {
    match value.get("schema").and_then(Value::as_str) {
        Some(kind) if kind == T::KIND => {}
        Some(kind) => {
            return Err(Error::InvalidJson(format!(
                "expected a {} document, not {kind:?}",
                T::KIND
            )));
        }
        None => {
            return Err(Error::InvalidJson(
                "a document needs a string schema field".into(),
            ));
        }
    }
    let mut current = value.clone();
    super::migrate(&mut current).map_err(|p| Error::InvalidJson(p.to_string()))?;
    if let Some(kind) = super::kind(T::KIND) {
        super::normalize(kind, &mut current);
    }
    from_value(&current)
}

macro_rules! record {
    ($type:ty, $kind:literal) => {
        impl Record for $type {
            const KIND: &'static str = $kind;
        }
    };
}

// ----- shared ---------------------------------------------------------------------

/// A reference to a versioned definition (a rubric or an observation template).
/// Published versions never change, so `{id, version}` always means the same content.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DefinitionRef {
    /// The definition's ID.
    pub id: String,
    /// Its version.
    pub version: u64,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Where an observation took place, or the setting a template is for.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Setting {
    /// A classroom.
    Classroom,
    /// A hallway, during passing or class time.
    Hallway,
    /// The lunchroom.
    Lunchroom,
    /// A meeting (leadership team, grade-level team, PD).
    Meeting,
    /// Somewhere else.
    Other,
    /// A setting a newer version added, as written.
    #[serde(untagged)]
    Unknown(String),
}

/// Whether a person agreed to be named, and when they said so.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Consent {
    /// `true` when they agreed; `false` records that they declined.
    pub given: bool,
    /// When they said so, ms since 1970.
    pub at: i64,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Consent {
    /// Whether the person agreed to be named.
    pub fn is_given(consent: Option<&Consent>) -> bool {
        consent.is_some_and(|c| c.given)
    }
}

// ----- observation ----------------------------------------------------------------

/// The person observed: by role, grade and subject; by name only with their consent
/// (validation refuses a name without it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observed {
    /// Their role.
    pub role: String,
    /// The grade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grade: Option<String>,
    /// The subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Their name, only with their consent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Their consent to be named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<Consent>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Where an observation stands: drafts are the coach's until shared.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObservationStatus {
    /// The coach is still writing it.
    Draft,
    /// Shared with the client.
    Shared,
    /// A status a newer version added, as written.
    #[serde(untagged)]
    Unknown(String),
}

/// The answer to one look-for of the observation's template.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LookForResponse {
    /// The answer, in the form the look-for's response type gives (`yes`, `3`, `12`,
    /// a phrase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    /// What was seen that supports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One timestamped note taken during an observation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScriptEntry {
    /// Stable ID within the script.
    pub id: String,
    /// When, in ms since 1970.
    pub at: i64,
    /// What was seen or heard.
    pub text: String,
    /// Tags, usually look-for IDs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// An `observation` document (version 3: who observed whom, and when it ended).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    /// Always `observation`.
    pub schema: String,
    /// The schema version the document is at.
    pub schema_version: u32,
    /// A short title.
    pub title: String,
    /// Who observed, by user name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observer: Option<String>,
    /// Where it took place.
    pub setting: Setting,
    /// When it started, in ms since 1970.
    pub observed_at: i64,
    /// When it ended, in ms since 1970.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<i64>,
    /// The school.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub school: Option<String>,
    /// Who was observed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed: Option<Observed>,
    /// Grade, subject, who was present, what it was for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
    /// The observation template used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<DefinitionRef>,
    /// Responses keyed by look-for ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub look_fors: Option<BTreeMap<String, LookForResponse>>,
    /// The timestamped notes.
    pub script: Vec<ScriptEntry>,
    /// The agreed next step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_step: Option<String>,
    /// Draft or shared.
    pub status: ObservationStatus,
    /// The coaching relationship (`rel-…`) it belongs to; the server reads it when the
    /// document is first stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationship: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}
record!(Observation, "observation");

/// An `observation-private-notes` document: the coach's own notes, a separate
/// document because automerge cannot hide part of one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservationPrivateNotes {
    /// Always `observation-private-notes`.
    pub schema: String,
    /// The schema version the document is at.
    pub schema_version: u32,
    /// The `automerge:` URL of the observation.
    pub observation: String,
    /// The notes.
    pub notes: String,
    /// Questions for the debrief.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wonderings: Option<Vec<String>>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}
record!(ObservationPrivateNotes, "observation-private-notes");

// ----- definitions ------------------------------------------------------------------

/// How a look-for is answered.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ResponseType {
    /// `yes` or `no`.
    YesNo,
    /// A position on the look-for's scale, from 1.
    Scale,
    /// A count.
    Count,
    /// A short phrase.
    Text,
    /// A response type a newer version added, as written.
    #[serde(untagged)]
    Unknown(String),
}

/// One look-for of an observation template.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LookFor {
    /// Stable ID; observations key their responses by it.
    pub id: String,
    /// What to look for.
    pub prompt: String,
    /// How it is answered.
    pub response_type: ResponseType,
    /// For a scale: the labels, lowest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<Vec<String>>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// An `observation-template` document: a versioned definition.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservationTemplate {
    /// Always `observation-template`.
    pub schema: String,
    /// The schema version the document is at.
    pub schema_version: u32,
    /// The definition's ID, the same in every version.
    pub id: String,
    /// The definition's version.
    pub version: u64,
    /// Its name.
    pub name: String,
    /// The setting it is for.
    pub setting: Setting,
    /// Whether this version is published (and so never changes).
    pub published: bool,
    /// The look-fors, in order.
    pub look_fors: Vec<LookFor>,
    /// Tags suggested for script entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}
record!(ObservationTemplate, "observation-template");

/// One stage of a rubric's developmental scale.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stage {
    /// Stable ID; ratings refer to it.
    pub id: String,
    /// Its name, such as "pre-initiation".
    pub label: String,
    /// What the stage looks like.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One indicator of a rubric element.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Indicator {
    /// Stable ID.
    pub id: String,
    /// The indicator.
    pub text: String,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One element of a rubric domain: what a leader rates themselves on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Element {
    /// Stable ID; ratings refer to it.
    pub id: String,
    /// The element.
    pub name: String,
    /// Its indicators.
    pub indicators: Vec<Indicator>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One domain of a rubric.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RubricDomain {
    /// Stable ID.
    pub id: String,
    /// The domain.
    pub name: String,
    /// Its elements.
    pub elements: Vec<Element>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A `rubric` document: a versioned definition with its own stage scale.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rubric {
    /// Always `rubric`.
    pub schema: String,
    /// The schema version the document is at.
    pub schema_version: u32,
    /// The definition's ID, the same in every version.
    pub id: String,
    /// The definition's version.
    pub version: u64,
    /// Its name.
    pub name: String,
    /// Whether this version is published (and so never changes).
    pub published: bool,
    /// The stages, lowest first.
    pub stages: Vec<Stage>,
    /// The domains.
    pub domains: Vec<RubricDomain>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}
record!(Rubric, "rubric");

impl Rubric {
    /// The element with this ID, in whichever domain.
    pub fn element(&self, id: &str) -> Option<&Element> {
        self.domains
            .iter()
            .flat_map(|d| &d.elements)
            .find(|e| e.id == id)
    }

    /// The position of a stage on the scale (0 is the lowest), to compare ratings.
    pub fn stage_index(&self, id: &str) -> Option<usize> {
        self.stages.iter().position(|s| s.id == id)
    }
}

// ----- self-assessment --------------------------------------------------------------

/// A leader's rating of one element at one time.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rating {
    /// Stable ID.
    pub id: String,
    /// When, in ms since 1970.
    pub at: i64,
    /// The rubric element's ID.
    pub element: String,
    /// The stage ID the leader is at.
    pub current: String,
    /// The stage ID the leader aims for.
    pub target: String,
    /// Evidence for the current stage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// An element the leader chose to focus on, with their goal for it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Focus {
    /// Stable ID.
    pub id: String,
    /// The rubric element's ID.
    pub element: String,
    /// The leader's goal for it.
    pub goal: String,
    /// The stage ID the leader aims for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// When the leader chose it, ms since 1970.
    pub chosen_at: i64,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A `rubric-self-assessment` document: a growth tool, never a score, so it has no
/// total or average and nothing here computes one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RubricSelfAssessment {
    /// Always `rubric-self-assessment`.
    pub schema: String,
    /// The schema version the document is at.
    pub schema_version: u32,
    /// The rubric.
    pub rubric: DefinitionRef,
    /// The leader.
    pub leader: String,
    /// The elements the leader chose to work on (one to five, usually three).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub focus: Option<Vec<Focus>>,
    /// Every rating, over time.
    pub ratings: Vec<Rating>,
    /// The coaching relationship (`rel-…`) it belongs to; the server reads it when the
    /// document is first stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationship: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}
record!(RubricSelfAssessment, "rubric-self-assessment");

impl RubricSelfAssessment {
    /// The stage history of one element: its ratings, oldest first (ties by ID, so
    /// every device shows the same order).
    pub fn history(&self, element: &str) -> Vec<&Rating> {
        let mut ratings: Vec<&Rating> = self
            .ratings
            .iter()
            .filter(|r| r.element == element)
            .collect();
        ratings.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.id.cmp(&b.id)));
        ratings
    }
}

// ----- work plan and needs assessment ---------------------------------------------------

/// Evidence linked to a goal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Evidence {
    /// Stable ID.
    pub id: String,
    /// When, in ms since 1970.
    pub at: i64,
    /// What shows progress, or its absence.
    pub text: String,
    /// A link to the artefact.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The feedback the leader gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<String>,
    /// The change in practice seen afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_in_practice: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A work plan goal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Goal {
    /// Stable ID; activities, indicators and measurements refer to it.
    pub id: String,
    /// The goal.
    pub text: String,
    /// How progress is measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure: Option<String>,
    /// Where the measure started.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "number::serialize_option"
    )]
    pub baseline: Option<f64>,
    /// Where it should get to.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "number::serialize_option"
    )]
    pub target: Option<f64>,
    /// The leader capacity it builds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<String>,
    /// The needs assessment's student-centred goals it serves (their IDs; one or two).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub student_goals: Option<Vec<String>>,
    /// Evidence linked to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Vec<Evidence>>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Where a work plan activity stands.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActivityStatus {
    /// Not started.
    Planned,
    /// Under way.
    InProgress,
    /// Finished.
    Done,
    /// On hold.
    Paused,
    /// A status a newer version added, as written.
    #[serde(untagged)]
    Unknown(String),
}

/// Who acts in a work plan activity.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActivityKind {
    /// A support move of the coach.
    CoachSupport,
    /// The leader's own action.
    ClientAction,
    /// A kind a newer version added, as written.
    #[serde(untagged)]
    Unknown(String),
}

/// A prioritized high-leverage strategic activity of a work plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Activity {
    /// The activity.
    pub title: String,
    /// Its place in the priority order, lowest first.
    #[serde(serialize_with = "number::serialize")]
    pub rank: f64,
    /// A coach support move or the leader's own action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ActivityKind>,
    /// Who leads it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// How often.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cadence: Option<String>,
    /// Where it stands.
    pub status: ActivityStatus,
    /// IDs of the goals it serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goals: Option<Vec<String>>,
    /// Set instead of deleting the activity, so concurrent edits to it are not lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<bool>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

impl Activity {
    /// Whether the activity was removed from the plan.
    pub fn is_removed(&self) -> bool {
        self.removed == Some(true)
    }
}

/// An indicator of progress of a work plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProgressIndicator {
    /// Stable ID.
    pub id: String,
    /// What will show the plan is working.
    pub text: String,
    /// The goal it indicates (its ID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One measured value: a work plan's progress or a PDSA cycle's run chart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Measurement {
    /// Stable ID.
    pub id: String,
    /// When, in ms since 1970.
    pub at: i64,
    /// The value.
    #[serde(serialize_with = "number::serialize")]
    pub value: f64,
    /// The goal measured (its ID), in a work plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub goal: Option<String>,
    /// Context for the value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A `work-plan` document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkPlan {
    /// Always `work-plan`.
    pub schema: String,
    /// The schema version the document is at.
    pub schema_version: u32,
    /// The plan's title.
    pub title: String,
    /// The leader it belongs to.
    pub client: String,
    /// The coach.
    pub coach: String,
    /// The school.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub school: Option<String>,
    /// Such as "2026-27".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub school_year: Option<String>,
    /// The `automerge:` URL of the needs assessment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_assessment: Option<String>,
    /// The goals.
    pub goals: Vec<Goal>,
    /// "If we …, then …".
    pub theory_of_action: String,
    /// The activities keyed by ID; the order is their `rank`
    /// (see [`WorkPlan::ordered_activities`]).
    pub activities: BTreeMap<String, Activity>,
    /// Indicators of progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indicators: Option<Vec<ProgressIndicator>>,
    /// Measurements of the goals over time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub progress: Option<Vec<Measurement>>,
    /// The coaching relationship (`rel-…`) it belongs to; the server reads it when the
    /// document is first stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationship: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}
record!(WorkPlan, "work-plan");

impl WorkPlan {
    /// The activities in priority order, without removed ones. Two people moving
    /// activities at once can give two the same rank; ties go by ID so that every
    /// device shows the same order.
    pub fn ordered_activities(&self) -> Vec<(&String, &Activity)> {
        let mut activities: Vec<(&String, &Activity)> = self
            .activities
            .iter()
            .filter(|(_, a)| !a.is_removed())
            .collect();
        activities
            .sort_by(|(a_id, a), (b_id, b)| a.rank.total_cmp(&b.rank).then_with(|| a_id.cmp(b_id)));
        activities
    }
}

/// One finding of a needs assessment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// Stable ID.
    pub id: String,
    /// The area looked at.
    pub area: String,
    /// What the data shows.
    pub text: String,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A student-centred goal of a needs assessment.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StudentGoal {
    /// Stable ID; work plan goals refer to it.
    pub id: String,
    /// The goal.
    pub text: String,
    /// How it is measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A `needs-assessment` document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NeedsAssessment {
    /// Always `needs-assessment`.
    pub schema: String,
    /// The schema version the document is at.
    pub schema_version: u32,
    /// The school.
    pub school: String,
    /// When it was done, in ms since 1970.
    pub conducted_at: i64,
    /// What the data showed.
    pub findings: Vec<Finding>,
    /// One or two student-centred goals (validation enforces the bound).
    pub student_goals: Vec<StudentGoal>,
    /// The coaching relationship (`rel-…`) it belongs to; the server reads it when the
    /// document is first stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationship: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}
record!(NeedsAssessment, "needs-assessment");

// ----- coaching log, PDSA, team ---------------------------------------------------------

/// What kind of coaching session.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ActivityType {
    /// An observation.
    Observation,
    /// A debrief of an observation.
    Debrief,
    /// Planning.
    Planning,
    /// The coach models a practice.
    Modeling,
    /// Coach and client facilitate together.
    CoFacilitation,
    /// Looking at data together.
    DataReview,
    /// Something else.
    Other,
    /// A session type a newer version added, as written.
    #[serde(untagged)]
    Unknown(String),
}

/// One coaching session.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// Stable ID.
    pub id: String,
    /// When, in ms since 1970.
    pub date: i64,
    /// How long, in minutes.
    pub minutes: u32,
    /// What kind of session.
    pub activity_type: ActivityType,
    /// Who took part.
    pub participants: Vec<String>,
    /// What happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// What each will do next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_steps: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A `coaching-log` document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CoachingLog {
    /// Always `coaching-log`.
    pub schema: String,
    /// The schema version the document is at.
    pub schema_version: u32,
    /// The coach.
    pub coach: String,
    /// The client.
    pub client: String,
    /// The sessions, oldest first.
    pub sessions: Vec<Session>,
    /// The coaching relationship (`rel-…`) it belongs to; the server reads it when the
    /// document is first stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relationship: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}
record!(CoachingLog, "coaching-log");

/// One member's agreement to a relationship's confidentiality agreement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Agreed {
    /// The member, by user name.
    pub user: String,
    /// When they agreed, ms since 1970.
    pub at: i64,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A coaching relationship's confidentiality agreement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Agreement {
    /// What the members agree to.
    pub text: String,
    /// Who agreed, when.
    pub agreed_by: Vec<Agreed>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A `coaching-relationship` document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CoachingRelationship {
    /// Always `coaching-relationship`.
    pub schema: String,
    /// The schema version the document is at.
    pub schema_version: u32,
    /// The server's relationship record.
    pub relationship: String,
    /// What the coaching is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub focus: Option<String>,
    /// The confidentiality agreement.
    pub agreement: Agreement,
    /// When the coaching started, ms since 1970.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<i64>,
    /// When it ended, or is planned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<i64>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}
record!(CoachingRelationship, "coaching-relationship");

/// Where a PDSA cycle stands.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PdsaStage {
    /// Planning the test.
    Plan,
    /// Running it.
    Do,
    /// Studying the results.
    Study,
    /// Deciding what to do.
    Act,
    /// Finished.
    Closed,
    /// A stage a newer version added, as written.
    #[serde(untagged)]
    Unknown(String),
}

/// What a PDSA team decided to do with the change idea.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PdsaAct {
    /// Keep it as it is.
    Adopt,
    /// Change it and test again.
    Adapt,
    /// Drop it.
    Abandon,
    /// A decision a newer version added, as written.
    #[serde(untagged)]
    Unknown(String),
}

/// A `pdsa-cycle` document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PdsaCycle {
    /// Always `pdsa-cycle`.
    pub schema: String,
    /// The schema version the document is at.
    pub schema_version: u32,
    /// The cycle's name.
    pub title: String,
    /// The `automerge:` URL of the team running it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// The change being tested.
    pub change_idea: String,
    /// What the team predicts.
    pub prediction: String,
    /// Who does what, when, and what is measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<String>,
    /// The measure's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measure: Option<String>,
    /// What happened when the test ran (`do` in JSON).
    #[serde(default, rename = "do", skip_serializing_if = "Option::is_none")]
    pub r#do: Option<String>,
    /// The results against the prediction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub study: Option<String>,
    /// What the team decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act: Option<PdsaAct>,
    /// Why, and what the next cycle tests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act_notes: Option<String>,
    /// Where the cycle stands.
    pub stage: PdsaStage,
    /// The measure over time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measurements: Option<Vec<Measurement>>,
    /// The group (team) it belongs to; the server reads it when the document is first
    /// stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}
record!(PdsaCycle, "pdsa-cycle");

/// A team member.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    /// Stable ID.
    pub id: String,
    /// Their name.
    pub name: String,
    /// Their role in the team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A team norm.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Norm {
    /// Stable ID.
    pub id: String,
    /// The norm.
    pub text: String,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A team ritual.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ritual {
    /// Stable ID.
    pub id: String,
    /// The ritual.
    pub text: String,
    /// How often.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cadence: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A person a team story names, with their consent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Named {
    /// Their name.
    pub name: String,
    /// Their consent (validation refuses a story naming someone who did not give it).
    pub consent: Consent,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A story of the team's coaching culture.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Story {
    /// Stable ID.
    pub id: String,
    /// When, in ms since 1970.
    pub at: i64,
    /// The story.
    pub text: String,
    /// Everyone it names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub named: Option<Vec<Named>>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A `team` document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Team {
    /// Always `team`.
    pub schema: String,
    /// The schema version the document is at.
    pub schema_version: u32,
    /// The team's name.
    pub name: String,
    /// Why it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub purpose: Option<String>,
    /// Its members.
    pub members: Vec<Member>,
    /// How it works together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub norms: Option<Vec<Norm>>,
    /// What it does regularly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rituals: Option<Vec<Ritual>>,
    /// Stories of its coaching culture.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stories: Option<Vec<Story>>,
    /// The group (team) it belongs to; the server reads it when the document is first
    /// stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}
record!(Team, "team");

// ----- measure and driver diagram -------------------------------------------------------

/// What a measure tells a team.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MeasureType {
    /// Whether the aim is being reached.
    Outcome,
    /// Whether a change is carried out as planned.
    Process,
    /// Whether the change causes harm elsewhere.
    Balancing,
    /// A type a newer version added, as written.
    #[serde(untagged)]
    Unknown(String),
}

/// One dated value of a measure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DataPoint {
    /// Stable ID.
    pub id: String,
    /// When, in ms since 1970.
    pub at: i64,
    /// The value, in the measure's unit.
    #[serde(serialize_with = "number::serialize")]
    pub value: f64,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A note attached to a date of a measure.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Annotation {
    /// Stable ID.
    pub id: String,
    /// The date it is about, ms since 1970.
    pub at: i64,
    /// What happened then.
    pub text: String,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A `measure` document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Measure {
    /// Always `measure`.
    pub schema: String,
    /// The schema version the document is at.
    pub schema_version: u32,
    /// Its name.
    pub name: String,
    /// Its operational definition.
    pub definition: String,
    /// Its unit.
    pub unit: String,
    /// Outcome, process or balancing (`type` in JSON).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub r#type: Option<MeasureType>,
    /// The data points.
    pub points: Vec<DataPoint>,
    /// Notes attached to dates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Vec<Annotation>>,
    /// The `automerge:` URL of the team that keeps it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// The `automerge:` URL of the PDSA cycle it measures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pdsa_cycle: Option<String>,
    /// The `automerge:` URL of the driver diagram it measures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub driver_diagram: Option<String>,
    /// The group (team) it belongs to; the server reads it when the document is first
    /// stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}
record!(Measure, "measure");

/// A primary driver of a driver diagram.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PrimaryDriver {
    /// Stable ID; secondary drivers refer to it.
    pub id: String,
    /// The driver.
    pub text: String,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A secondary driver, under one primary driver.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecondaryDriver {
    /// Stable ID; change ideas refer to it.
    pub id: String,
    /// The driver.
    pub text: String,
    /// The ID of its primary driver.
    pub primary: String,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A change idea of a driver diagram.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeIdea {
    /// Stable ID.
    pub id: String,
    /// The idea.
    pub text: String,
    /// The IDs of the secondary drivers it acts on.
    pub secondaries: Vec<String>,
    /// The `automerge:` URLs of the PDSA cycles that test it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cycles: Option<Vec<String>>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A `driver-diagram` document.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DriverDiagram {
    /// Always `driver-diagram`.
    pub schema: String,
    /// The schema version the document is at.
    pub schema_version: u32,
    /// The aim.
    pub aim: String,
    /// The `automerge:` URL of the team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// The primary drivers.
    pub primary: Vec<PrimaryDriver>,
    /// The secondary drivers.
    pub secondary: Vec<SecondaryDriver>,
    /// The change ideas.
    pub change_ideas: Vec<ChangeIdea>,
    /// The group (team) it belongs to; the server reads it when the document is first
    /// stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Fields this version does not know.
    #[serde(flatten)]
    pub extra: Extra,
}
record!(DriverDiagram, "driver-diagram");

impl DriverDiagram {
    /// The secondary drivers under a primary driver, in the diagram's order.
    pub fn secondaries_of(&self, primary: &str) -> Vec<&SecondaryDriver> {
        self.secondary
            .iter()
            .filter(|s| s.primary == primary)
            .collect()
    }

    /// The change ideas acting on a secondary driver, in the diagram's order.
    pub fn ideas_for(&self, secondary: &str) -> Vec<&ChangeIdea> {
        self.change_ideas
            .iter()
            .filter(|c| c.secondaries.iter().any(|s| s == secondary))
            .collect()
    }
}
