//! The document kinds: their fields, versions and visibility, as data.

use super::shape::{Field, Shape, list, opt, req};

/// Who may read a kind of document (docs/ARCHITECTURE.md §6). Every class is a
/// document boundary: automerge cannot hide part of a document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Visibility {
    /// The author only.
    Private,
    /// The coach and the client(s) of one coaching relationship.
    Coaching,
    /// The members of one team.
    Team,
    /// Everyone in the organisation; edited by its admins.
    Org,
}

impl Visibility {
    /// The class's name in the docs.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Coaching => "coaching",
            Visibility::Team => "team",
            Visibility::Org => "org",
        }
    }
}

/// One kind of document.
#[derive(Debug)]
pub struct Kind {
    /// The value of the document's `schema` field.
    pub name: &'static str,
    /// The current `schemaVersion`.
    pub version: u32,
    /// Who reads it.
    pub visibility: Visibility,
    /// What it is for.
    pub doc: &'static str,
    /// Its fields besides `schema` and `schemaVersion`.
    pub fields: &'static [Field],
}

const ID: Field = req(
    "id",
    Shape::Str,
    "Stable ID of the item, chosen by the app (a UUID).",
);
const AT: Field = req("at", Shape::Timestamp, "When.");

const SETTINGS: &[&str] = &["classroom", "hallway", "lunchroom", "meeting", "other"];

// ----- observation ----------------------------------------------------------------

static LOOK_FOR_RESPONSE: Shape = Shape::Object(LOOK_FOR_RESPONSE_FIELDS);
const LOOK_FOR_RESPONSE_FIELDS: &[Field] = &[
    opt(
        "response",
        Shape::Str,
        "The answer, as the template's response type says: `yes`/`no`, a scale value such as `3`, a count such as `12`, or a short phrase.",
    ),
    opt(
        "note",
        Shape::Text,
        "What was seen that supports the answer.",
    ),
];
static SCRIPT_ENTRY: Shape = Shape::Object(SCRIPT_ENTRY_FIELDS);
const SCRIPT_ENTRY_FIELDS: &[Field] = &[
    ID,
    AT,
    req(
        "text",
        Shape::Text,
        "What was seen or heard, as it happened.",
    ),
    opt(
        "tags",
        list(&Shape::Str),
        "Tags, usually the IDs of the look-fors the entry is evidence of.",
    ),
];
const OBSERVATION: &[Field] = &[
    req(
        "title",
        Shape::Text,
        "A short title, such as \"Room 12, grade 3 math\".",
    ),
    req(
        "setting",
        Shape::Enum(SETTINGS),
        "Where the observation took place.",
    ),
    req("observedAt", Shape::Timestamp, "When it started."),
    opt("school", Shape::Str, "The school."),
    opt(
        "context",
        Shape::Text,
        "The observed context: grade, subject, who was present, what the lesson or meeting was for.",
    ),
    opt(
        "template",
        Shape::Ref,
        "The observation template used: `{id, version}`.",
    ),
    opt(
        "lookFors",
        Shape::Map(&LOOK_FOR_RESPONSE),
        "Responses to the template's look-fors, keyed by look-for ID.",
    ),
    req(
        "script",
        list(&SCRIPT_ENTRY),
        "Timestamped notes taken during the observation.",
    ),
    opt("nextStep", Shape::Text, "The agreed next step."),
    req(
        "status",
        Shape::Enum(&["draft", "shared"]),
        "`draft` while the coach writes it; `shared` once shared with the client.",
    ),
];

const OBSERVATION_PRIVATE_NOTES: &[Field] = &[
    req(
        "observation",
        Shape::Url,
        "The observation these notes are about.",
    ),
    req(
        "notes",
        Shape::Text,
        "The coach's own notes: never shared, never evaluative.",
    ),
    opt(
        "wonderings",
        list(&Shape::Text),
        "Questions to explore in the debrief.",
    ),
];

// ----- definitions ------------------------------------------------------------------

static LOOK_FOR: Shape = Shape::Object(LOOK_FOR_FIELDS);
const LOOK_FOR_FIELDS: &[Field] = &[
    ID,
    req(
        "prompt",
        Shape::Text,
        "What to look for, as the observer reads it.",
    ),
    req(
        "responseType",
        Shape::Enum(&["yes-no", "scale", "count", "text"]),
        "How it is answered.",
    ),
    opt(
        "scale",
        list(&Shape::Str),
        "For `scale`: the labels from lowest to highest; the response is the 1-based position.",
    ),
];
const OBSERVATION_TEMPLATE: &[Field] = &[
    req(
        "id",
        Shape::Str,
        "The definition's ID, the same in every version.",
    ),
    req(
        "version",
        Shape::Int {
            min: 1,
            max: i64::MAX,
        },
        "The version; a published version never changes.",
    ),
    req("name", Shape::Str, "Its name."),
    req("setting", Shape::Enum(SETTINGS), "The setting it is for."),
    req(
        "published",
        Shape::Bool,
        "Published versions are immutable.",
    ),
    req(
        "lookFors",
        Shape::List {
            item: &LOOK_FOR,
            min: 1,
            max: usize::MAX,
        },
        "The look-fors, in order.",
    ),
    opt(
        "tags",
        list(&Shape::Str),
        "Tags suggested for script entries.",
    ),
];

static STAGE: Shape = Shape::Object(STAGE_FIELDS);
const STAGE_FIELDS: &[Field] = &[
    ID,
    req(
        "label",
        Shape::Str,
        "The stage's name, such as \"pre-initiation\".",
    ),
    opt("description", Shape::Text, "What the stage looks like."),
];
static INDICATOR: Shape = Shape::Object(INDICATOR_FIELDS);
const INDICATOR_FIELDS: &[Field] = &[ID, req("text", Shape::Text, "The indicator.")];
static ELEMENT: Shape = Shape::Object(ELEMENT_FIELDS);
const ELEMENT_FIELDS: &[Field] = &[
    ID,
    req("name", Shape::Str, "The element."),
    req("indicators", list(&INDICATOR), "Its indicators."),
];
static DOMAIN: Shape = Shape::Object(DOMAIN_FIELDS);
const DOMAIN_FIELDS: &[Field] = &[
    ID,
    req("name", Shape::Str, "The domain."),
    req(
        "elements",
        Shape::List {
            item: &ELEMENT,
            min: 1,
            max: usize::MAX,
        },
        "Its elements.",
    ),
];
const RUBRIC: &[Field] = &[
    req(
        "id",
        Shape::Str,
        "The definition's ID, the same in every version.",
    ),
    req(
        "version",
        Shape::Int {
            min: 1,
            max: i64::MAX,
        },
        "The version; a published version never changes.",
    ),
    req("name", Shape::Str, "Its name."),
    req(
        "published",
        Shape::Bool,
        "Published versions are immutable.",
    ),
    req(
        "stages",
        Shape::List {
            item: &STAGE,
            min: 2,
            max: usize::MAX,
        },
        "The developmental stage scale, lowest first; each organisation configures its own labels.",
    ),
    req(
        "domains",
        Shape::List {
            item: &DOMAIN,
            min: 1,
            max: usize::MAX,
        },
        "Domains, each with elements and indicators.",
    ),
];

// ----- self-assessment --------------------------------------------------------------

static RATING: Shape = Shape::Object(RATING_FIELDS);
const RATING_FIELDS: &[Field] = &[
    ID,
    AT,
    req("element", Shape::Str, "The rubric element's ID."),
    req("current", Shape::Str, "The stage ID the leader is at now."),
    req("target", Shape::Str, "The stage ID the leader aims for."),
    opt("evidence", Shape::Text, "Evidence for the current stage."),
];
const RUBRIC_SELF_ASSESSMENT: &[Field] = &[
    req("rubric", Shape::Ref, "The rubric: `{id, version}`."),
    req("leader", Shape::Str, "The leader assessing themselves."),
    req(
        "ratings",
        list(&RATING),
        "Ratings over time, one per element each time the leader assesses: the stage history.",
    ),
];

// ----- work plan and needs assessment ---------------------------------------------------

static EVIDENCE: Shape = Shape::Object(EVIDENCE_FIELDS);
const EVIDENCE_FIELDS: &[Field] = &[
    ID,
    AT,
    req("text", Shape::Text, "What shows progress (or its absence)."),
    opt("url", Shape::Str, "A link to the artefact."),
];
static GOAL: Shape = Shape::Object(GOAL_FIELDS);
const GOAL_FIELDS: &[Field] = &[
    ID,
    req(
        "text",
        Shape::Text,
        "The goal: specific, measurable and equitable.",
    ),
    opt("measure", Shape::Text, "How progress is measured."),
    opt("baseline", Shape::Number, "Where the measure started."),
    opt("target", Shape::Number, "Where it should get to."),
    opt(
        "studentGoal",
        Shape::Str,
        "The needs assessment's student-centred goal it serves (its ID).",
    ),
    opt("evidence", list(&EVIDENCE), "Evidence linked to this goal."),
];
static ACTIVITY: Shape = Shape::Object(ACTIVITY_FIELDS);
const ACTIVITY_FIELDS: &[Field] = &[
    req(
        "title",
        Shape::Text,
        "The high-leverage strategic activity.",
    ),
    req(
        "rank",
        Shape::Number,
        "Its place in the priority order, lowest first. Moving an activity sets only its own rank (between its new neighbours'), so two people reordering at once get one order with nothing lost or doubled.",
    ),
    opt("owner", Shape::Str, "Who leads it."),
    opt("cadence", Shape::Str, "How often, such as \"weekly\"."),
    req(
        "status",
        Shape::Enum(&["planned", "in-progress", "done", "paused"]),
        "Where it stands.",
    ),
    opt("goals", list(&Shape::Str), "IDs of the goals it serves."),
    opt(
        "removed",
        Shape::Bool,
        "Set instead of deleting: an edit made elsewhere at the same time is kept, and the activity stays out of the plan.",
    ),
];
static INDICATOR_OF_PROGRESS: Shape = Shape::Object(PROGRESS_FIELDS);
const PROGRESS_FIELDS: &[Field] = &[
    ID,
    req("text", Shape::Text, "What will show the plan is working."),
    opt("goal", Shape::Str, "The goal it indicates (its ID)."),
];
static MEASUREMENT: Shape = Shape::Object(MEASUREMENT_FIELDS);
const MEASUREMENT_FIELDS: &[Field] = &[
    ID,
    AT,
    req("value", Shape::Number, "The measured value."),
    opt(
        "goal",
        Shape::Str,
        "The goal measured (its ID), in a work plan.",
    ),
    opt("note", Shape::Text, "Context for the value."),
];
const WORK_PLAN: &[Field] = &[
    req("title", Shape::Text, "The plan's title."),
    req("client", Shape::Str, "The leader the plan belongs to."),
    req("coach", Shape::Str, "The coach."),
    opt("school", Shape::Str, "The school."),
    opt("schoolYear", Shape::Str, "Such as \"2026-27\"."),
    opt(
        "needsAssessment",
        Shape::Url,
        "The needs assessment the goals come from.",
    ),
    req("goals", list(&GOAL), "The goals."),
    req("theoryOfAction", Shape::Text, "\"If we …, then …\"."),
    req(
        "activities",
        Shape::Map(&ACTIVITY),
        "The prioritized high-leverage strategic activities, keyed by ID, ordered by `rank`.",
    ),
    opt(
        "indicators",
        list(&INDICATOR_OF_PROGRESS),
        "Indicators of progress.",
    ),
    opt(
        "progress",
        list(&MEASUREMENT),
        "Measurements of the goals over time.",
    ),
];

static FINDING: Shape = Shape::Object(FINDING_FIELDS);
const FINDING_FIELDS: &[Field] = &[
    ID,
    req(
        "area",
        Shape::Str,
        "The area looked at, such as \"attendance\".",
    ),
    req("text", Shape::Text, "What the data shows."),
];
static STUDENT_GOAL: Shape = Shape::Object(STUDENT_GOAL_FIELDS);
const STUDENT_GOAL_FIELDS: &[Field] = &[
    ID,
    req("text", Shape::Text, "A student-centred goal."),
    opt("measure", Shape::Text, "How it is measured."),
];
const NEEDS_ASSESSMENT: &[Field] = &[
    req("school", Shape::Str, "The school."),
    req(
        "conductedAt",
        Shape::Timestamp,
        "When the assessment was done.",
    ),
    req("findings", list(&FINDING), "What the data showed."),
    req(
        "studentGoals",
        Shape::List {
            item: &STUDENT_GOAL,
            min: 1,
            max: 2,
        },
        "One or two student-centred goals: more dilutes the work.",
    ),
];

// ----- coaching log, PDSA, team ---------------------------------------------------------

static SESSION: Shape = Shape::Object(SESSION_FIELDS);
const SESSION_FIELDS: &[Field] = &[
    ID,
    req("date", Shape::Timestamp, "When the session took place."),
    req(
        "minutes",
        Shape::Int {
            min: 0,
            max: 24 * 60,
        },
        "How long, in minutes.",
    ),
    req(
        "activityType",
        Shape::Enum(&[
            "observation",
            "debrief",
            "planning",
            "modeling",
            "co-facilitation",
            "data-review",
            "other",
        ]),
        "What kind of session.",
    ),
    req("participants", list(&Shape::Str), "Who took part."),
    opt("summary", Shape::Text, "What happened."),
    opt("nextSteps", Shape::Text, "What each will do next."),
];
const COACHING_LOG: &[Field] = &[
    req("coach", Shape::Str, "The coach."),
    req("client", Shape::Str, "The client."),
    req("sessions", list(&SESSION), "The sessions, oldest first."),
];

// ----- coaching relationship -------------------------------------------------------

static AGREED: Shape = Shape::Object(AGREED_FIELDS);
const AGREED_FIELDS: &[Field] = &[
    req("user", Shape::Str, "The member who agreed, by user name."),
    req("at", Shape::Timestamp, "When they agreed."),
];
const AGREEMENT_FIELDS: &[Field] = &[
    req(
        "text",
        Shape::Text,
        "What the members agree to: what stays between them, what is shared and with whom, that coaching is never part of evaluation.",
    ),
    req(
        "agreedBy",
        list(&AGREED),
        "Each member's agreement, with its date.",
    ),
];
const COACHING_RELATIONSHIP: &[Field] = &[
    req(
        "relationship",
        Shape::Str,
        "The server's relationship record (`rel-…`) this document belongs to: its members read and write it.",
    ),
    opt("focus", Shape::Text, "What the coaching is about."),
    req(
        "agreement",
        Shape::Object(AGREEMENT_FIELDS),
        "The confidentiality agreement.",
    ),
    opt("start", Shape::Timestamp, "When the coaching started."),
    opt("end", Shape::Timestamp, "When it ended, or is planned to."),
];

const PDSA_CYCLE: &[Field] = &[
    req("title", Shape::Text, "The cycle's name."),
    opt("team", Shape::Url, "The team running it."),
    req("changeIdea", Shape::Text, "The change being tested."),
    req(
        "prediction",
        Shape::Text,
        "Plan: what the team predicts will happen.",
    ),
    opt(
        "plan",
        Shape::Text,
        "Plan: who does what, when, and what is measured.",
    ),
    opt(
        "measure",
        Shape::Str,
        "The measure's name, such as \"exit tickets correct (%)\".",
    ),
    opt("do", Shape::Text, "Do: what happened when the test ran."),
    opt(
        "study",
        Shape::Text,
        "Study: the results against the prediction.",
    ),
    opt(
        "act",
        Shape::Enum(&["adopt", "adapt", "abandon"]),
        "Act: what the team decided.",
    ),
    opt(
        "actNotes",
        Shape::Text,
        "Act: why, and what the next cycle tests.",
    ),
    req(
        "stage",
        Shape::Enum(&["plan", "do", "study", "act", "closed"]),
        "Where the cycle stands.",
    ),
    opt(
        "measurements",
        list(&MEASUREMENT),
        "The measure over time, for the run chart.",
    ),
];

static MEMBER: Shape = Shape::Object(MEMBER_FIELDS);
const MEMBER_FIELDS: &[Field] = &[
    ID,
    req("name", Shape::Str, "The member's name."),
    opt("role", Shape::Str, "Such as \"facilitator\"."),
];
static NORM: Shape = Shape::Object(NORM_FIELDS);
const NORM_FIELDS: &[Field] = &[ID, req("text", Shape::Text, "The norm.")];
static RITUAL: Shape = Shape::Object(RITUAL_FIELDS);
const RITUAL_FIELDS: &[Field] = &[
    ID,
    req("text", Shape::Text, "The ritual."),
    opt("cadence", Shape::Str, "How often."),
];
static STORY: Shape = Shape::Object(STORY_FIELDS);
const STORY_FIELDS: &[Field] = &[
    ID,
    AT,
    req("text", Shape::Text, "The story, as the team tells it."),
];
const TEAM: &[Field] = &[
    req("name", Shape::Str, "The team's name."),
    opt("purpose", Shape::Text, "Why the team exists."),
    req("members", list(&MEMBER), "Its members."),
    opt("norms", list(&NORM), "How the team works together."),
    opt("rituals", list(&RITUAL), "What it does regularly."),
    opt("stories", list(&STORY), "Stories of its coaching culture."),
];

/// Every kind, in the order the docs list them.
pub static KINDS: &[Kind] = &[
    Kind {
        name: "observation",
        version: 2,
        visibility: Visibility::Coaching,
        doc: "A classroom visit, walkthrough, meeting or hallway/lunchroom observation: look-for responses and timestamped notes, shared with the client once the coach marks it `shared`.",
        fields: OBSERVATION,
    },
    Kind {
        name: "observation-private-notes",
        version: 1,
        visibility: Visibility::Private,
        doc: "A coach's private notes on an observation: a separate document, read by its author only.",
        fields: OBSERVATION_PRIVATE_NOTES,
    },
    Kind {
        name: "observation-template",
        version: 1,
        visibility: Visibility::Org,
        doc: "The look-fors a school chose for one setting: a versioned definition that observations reference.",
        fields: OBSERVATION_TEMPLATE,
    },
    Kind {
        name: "work-plan",
        version: 1,
        visibility: Visibility::Coaching,
        doc: "The plan a principal and coach co-construct: goals, theory of action, prioritized activities, indicators and evidence.",
        fields: WORK_PLAN,
    },
    Kind {
        name: "needs-assessment",
        version: 1,
        visibility: Visibility::Coaching,
        doc: "What a school's data shows, ending in one or two student-centred goals the work plan serves.",
        fields: NEEDS_ASSESSMENT,
    },
    Kind {
        name: "rubric",
        version: 1,
        visibility: Visibility::Org,
        doc: "A developmental rubric: domains, elements, indicators and an ordered, configurable stage scale. A versioned definition.",
        fields: RUBRIC,
    },
    Kind {
        name: "rubric-self-assessment",
        version: 1,
        visibility: Visibility::Coaching,
        doc: "A leader's current and target stage per rubric element, with evidence, over time.",
        fields: RUBRIC_SELF_ASSESSMENT,
    },
    Kind {
        name: "coaching-relationship",
        version: 1,
        visibility: Visibility::Coaching,
        doc: "What the members of one coaching relationship write together: its focus, their confidentiality agreement and who agreed when, its dates. Who belongs to it is the server's record, kept by admins.",
        fields: COACHING_RELATIONSHIP,
    },
    Kind {
        name: "coaching-log",
        version: 1,
        visibility: Visibility::Coaching,
        doc: "The sessions of one coaching relationship: date, minutes, activity, participants, next steps.",
        fields: COACHING_LOG,
    },
    Kind {
        name: "pdsa-cycle",
        version: 1,
        visibility: Visibility::Team,
        doc: "One Plan-Do-Study-Act cycle testing a change idea, with its measure over time.",
        fields: PDSA_CYCLE,
    },
    Kind {
        name: "team",
        version: 1,
        visibility: Visibility::Team,
        doc: "An improvement team: members, norms, rituals and stories.",
        fields: TEAM,
    },
];
