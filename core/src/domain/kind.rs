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

/// The server reads this raw from a coaching document's root when it is first stored
/// (docs/SECURITY.md); declared so it is validated and documented like any field.
const RELATIONSHIP: Field = opt(
    "relationship",
    Shape::Str,
    "The coaching relationship (`rel-…`) the document belongs to: when its creator is a member, every member reads and writes it. Read when the document is first stored.",
);
/// The team counterpart of [`RELATIONSHIP`].
const GROUP: Field = opt(
    "group",
    Shape::Str,
    "The group (a team) the document belongs to: when its creator is in the group, every member reads and writes it. Read when the document is first stored.",
);

/// Whether a person agreed to be named, and when they said so.
const CONSENT_FIELDS: &[Field] = &[
    req(
        "given",
        Shape::Bool,
        "`true` when the person agreed to be named; `false` records that they declined.",
    ),
    req("at", Shape::Timestamp, "When they said so."),
];

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
const OBSERVED_FIELDS: &[Field] = &[
    req(
        "role",
        Shape::Str,
        "Their role, such as \"teacher\", \"assistant principal\" or \"grade-level team\".",
    ),
    opt("grade", Shape::Str, "The grade, such as \"3\" or \"K-2\"."),
    opt("subject", Shape::Str, "The subject, such as \"math\"."),
    opt(
        "name",
        Shape::Str,
        "Their name: only with their consent recorded in `consent` (`given: true`).",
    ),
    opt(
        "consent",
        Shape::Object(CONSENT_FIELDS),
        "Their consent to be named.",
    ),
];
const OBSERVATION: &[Field] = &[
    req(
        "title",
        Shape::Text,
        "A short title, such as \"Room 12, grade 3 math\".",
    ),
    opt("observer", Shape::Str, "Who observed, by user name."),
    req(
        "setting",
        Shape::Enum(SETTINGS),
        "Where the observation took place.",
    ),
    req("observedAt", Shape::Timestamp, "When it started."),
    opt("endedAt", Shape::Timestamp, "When it ended."),
    opt("school", Shape::Str, "The school."),
    opt(
        "observed",
        Shape::Object(OBSERVED_FIELDS),
        "Who was observed: by role, grade and subject; by name only with their consent.",
    ),
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
    RELATIONSHIP,
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
static FOCUS: Shape = Shape::Object(FOCUS_FIELDS);
const FOCUS_FIELDS: &[Field] = &[
    ID,
    req(
        "element",
        Shape::Str,
        "The rubric element's ID; each element is a focus at most once.",
    ),
    req(
        "goal",
        Shape::Text,
        "The leader's goal for it, such as \"move from pre-initiation to developing\".",
    ),
    opt("target", Shape::Str, "The stage ID the leader aims for."),
    req("chosenAt", Shape::Timestamp, "When the leader chose it."),
];
const RUBRIC_SELF_ASSESSMENT: &[Field] = &[
    req("rubric", Shape::Ref, "The rubric: `{id, version}`."),
    req("leader", Shape::Str, "The leader assessing themselves."),
    opt(
        "focus",
        Shape::List {
            item: &FOCUS,
            min: 1,
            max: 5,
        },
        "The few elements the leader chose to work on (usually three), each with a goal.",
    ),
    req(
        "ratings",
        list(&RATING),
        "Ratings over time, one per element each time the leader assesses: the stage history.",
    ),
    RELATIONSHIP,
];

// ----- work plan and needs assessment ---------------------------------------------------

static EVIDENCE: Shape = Shape::Object(EVIDENCE_FIELDS);
const EVIDENCE_FIELDS: &[Field] = &[
    ID,
    AT,
    req("text", Shape::Text, "What shows progress (or its absence)."),
    opt("url", Shape::Str, "A link to the artefact."),
    opt("feedback", Shape::Text, "The feedback the leader gave."),
    opt(
        "changeInPractice",
        Shape::Text,
        "The change in practice seen afterwards, or that none was seen yet.",
    ),
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
        "capacity",
        Shape::Text,
        "The leader capacity the goal builds, such as \"giving teachers feedback on instruction\".",
    ),
    opt(
        "studentGoals",
        Shape::List {
            item: &Shape::Str,
            min: 1,
            max: 2,
        },
        "The needs assessment's student-centred goals it serves (their IDs): one or two.",
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
    opt(
        "kind",
        Shape::Enum(&["coach-support", "client-action"]),
        "`coach-support`: a support move of the coach; `client-action`: the leader's own action.",
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
    RELATIONSHIP,
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
    RELATIONSHIP,
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
    RELATIONSHIP,
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
    GROUP,
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
static NAMED: Shape = Shape::Object(NAMED_FIELDS);
const NAMED_FIELDS: &[Field] = &[
    req(
        "name",
        Shape::Str,
        "The person's name, as the story gives it.",
    ),
    req(
        "consent",
        Shape::Object(CONSENT_FIELDS),
        "Their consent to be named: a story names no one who has not given it.",
    ),
];
static STORY: Shape = Shape::Object(STORY_FIELDS);
const STORY_FIELDS: &[Field] = &[
    ID,
    AT,
    req("text", Shape::Text, "The story, as the team tells it."),
    opt(
        "named",
        list(&NAMED),
        "Everyone the story names, each with their consent.",
    ),
];
const TEAM: &[Field] = &[
    req("name", Shape::Str, "The team's name."),
    opt("purpose", Shape::Text, "Why the team exists."),
    req("members", list(&MEMBER), "Its members."),
    opt("norms", list(&NORM), "How the team works together."),
    opt("rituals", list(&RITUAL), "What it does regularly."),
    opt("stories", list(&STORY), "Stories of its coaching culture."),
    GROUP,
];

// ----- measure and driver diagram -------------------------------------------------------

static DATA_POINT: Shape = Shape::Object(DATA_POINT_FIELDS);
const DATA_POINT_FIELDS: &[Field] = &[
    ID,
    AT,
    req("value", Shape::Number, "The value, in the measure's unit."),
];
static ANNOTATION: Shape = Shape::Object(ANNOTATION_FIELDS);
const ANNOTATION_FIELDS: &[Field] = &[
    ID,
    req("at", Shape::Timestamp, "The date it is about."),
    req(
        "text",
        Shape::Text,
        "What happened then, such as a change started or a disruption.",
    ),
];
const MEASURE: &[Field] = &[
    req("name", Shape::Str, "The measure's name."),
    req(
        "definition",
        Shape::Text,
        "Its operational definition: exactly what is counted, from what source, how often, so everyone collects it the same way.",
    ),
    req(
        "unit",
        Shape::Str,
        "The unit, such as \"%\" or \"students\".",
    ),
    opt(
        "type",
        Shape::Enum(&["outcome", "process", "balancing"]),
        "What it tells: the aim (`outcome`), whether a change is carried out (`process`), or harm elsewhere (`balancing`).",
    ),
    req(
        "points",
        list(&DATA_POINT),
        "The data points, each dated, for the run chart.",
    ),
    opt(
        "annotations",
        list(&ANNOTATION),
        "Notes attached to dates, shown on the run chart.",
    ),
    opt("team", Shape::Url, "The team that keeps it."),
    opt("pdsaCycle", Shape::Url, "The PDSA cycle it measures."),
    opt(
        "driverDiagram",
        Shape::Url,
        "The driver diagram whose aim or drivers it measures.",
    ),
    GROUP,
];

static PRIMARY_DRIVER: Shape = Shape::Object(PRIMARY_DRIVER_FIELDS);
const PRIMARY_DRIVER_FIELDS: &[Field] = &[
    ID,
    req(
        "text",
        Shape::Text,
        "A primary driver: an area that must change to reach the aim.",
    ),
];
static SECONDARY_DRIVER: Shape = Shape::Object(SECONDARY_DRIVER_FIELDS);
const SECONDARY_DRIVER_FIELDS: &[Field] = &[
    ID,
    req(
        "text",
        Shape::Text,
        "A secondary driver: a practice, norm or structure within a primary driver.",
    ),
    req(
        "primary",
        Shape::Str,
        "The ID of the primary driver it belongs to.",
    ),
];
static CHANGE_IDEA: Shape = Shape::Object(CHANGE_IDEA_FIELDS);
const CHANGE_IDEA_FIELDS: &[Field] = &[
    ID,
    req("text", Shape::Text, "A change idea to test."),
    req(
        "secondaries",
        Shape::List {
            item: &Shape::Str,
            min: 1,
            max: usize::MAX,
        },
        "The IDs of the secondary drivers it acts on.",
    ),
    opt("cycles", list(&Shape::Url), "The PDSA cycles that test it."),
];
const DRIVER_DIAGRAM: &[Field] = &[
    req(
        "aim",
        Shape::Text,
        "The aim: what will improve, by how much, by when, for whom.",
    ),
    opt(
        "team",
        Shape::Url,
        "The team whose theory of improvement it is.",
    ),
    req("primary", list(&PRIMARY_DRIVER), "The primary drivers."),
    req(
        "secondary",
        list(&SECONDARY_DRIVER),
        "The secondary drivers, each under one primary driver.",
    ),
    req(
        "changeIdeas",
        list(&CHANGE_IDEA),
        "The change ideas, each acting on secondary drivers and tested by PDSA cycles.",
    ),
    GROUP,
];

/// Every kind, in the order the docs list them.
pub static KINDS: &[Kind] = &[
    Kind {
        name: "observation",
        version: 3,
        visibility: Visibility::Coaching,
        doc: "A classroom visit, walkthrough, meeting or hallway/lunchroom observation: who observed whom, when, look-for responses and timestamped notes, shared with the client once the coach marks it `shared`. The person observed is recorded by role, grade and subject, and by name only with their consent.",
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
        version: 2,
        visibility: Visibility::Coaching,
        doc: "The plan a principal and coach co-construct: goals (each building a leader capacity and serving the needs assessment's student-centred goals), theory of action, prioritized activities (coach support moves and the leader's own actions), indicators, and evidence of the feedback given and the change in practice seen.",
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
        version: 2,
        visibility: Visibility::Coaching,
        doc: "A leader's current and target stage per rubric element, with evidence, over time, and the few focus elements they chose, each with a goal. A growth tool, never a score: stages are not added up or averaged anywhere.",
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
        version: 2,
        visibility: Visibility::Team,
        doc: "An improvement team: members, norms, rituals and stories; a story names a person only with their consent.",
        fields: TEAM,
    },
    Kind {
        name: "measure",
        version: 1,
        visibility: Visibility::Team,
        doc: "A measure a team tracks: its operational definition, unit and dated data points, with annotations, for a run chart.",
        fields: MEASURE,
    },
    Kind {
        name: "driver-diagram",
        version: 1,
        visibility: Visibility::Team,
        doc: "A team's theory of improvement: an aim, the primary and secondary drivers that lead to it, and the change ideas that act on them, linked to the PDSA cycles that test them.",
        fields: DRIVER_DIAGRAM,
    },
];
