//! Reports a person would rather look at than read: a work plan's progress, a
//! rubric self-assessment's focus elements and stage history, a driver diagram's
//! tree, and the run charts of PDSA cycles and measures, as one self-contained HTML
//! page.
//!
//! [`render`] is pure: it takes documents (already read from a device) and returns
//! the page and, for tests and other renderers, the data of every chart it drew. The
//! page has its style inline and its charts as inline SVG; it has no scripts, loads
//! nothing and links nowhere outside itself, so it opens offline and prints as it
//! shows. Every piece of text from a document is HTML-escaped.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use super::run_rules::{self, Direction, Signal, SignalKind};
use super::{
    ActivityKind, DataPoint, DriverDiagram, Focus, Goal, Measure, Measurement, PdsaCycle, Rating,
    Record, Rubric, RubricSelfAssessment, WorkPlan, read, starter_definitions,
};
use crate::AutomergeUrl;
use crate::error::{Error, Result};
use crate::id::DocumentId;

/// What a chart shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChartKind {
    /// A work plan goal's progress measurements over time, with the goal's baseline
    /// and target as horizontal lines.
    GoalProgress,
    /// One rubric element's current and target stage over time; the y axis is the
    /// rubric's stage scale.
    StageHistory,
    /// A PDSA cycle's measurements or a measure's data points over time, with the
    /// median as a horizontal line and the run chart rules' signals.
    RunChart,
}

/// One point of a series.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Point {
    /// When, in ms since 1970 (UTC).
    pub x: i64,
    /// The value; on a stage chart, the stage's position on the rubric's scale
    /// (0 is the lowest).
    pub y: f64,
}

/// A named line of points, oldest first.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// Its name, as the legend shows it (and the `data-series` attribute of its
    /// `<polyline>`).
    pub name: String,
    /// Its points, in time order.
    pub points: Vec<Point>,
}

/// What one chart of a report draws.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    /// The HTML `id` of the chart's `<figure>`, which holds its `<svg>`.
    pub id: String,
    /// The document it comes from.
    pub document: DocumentId,
    /// What it shows.
    pub kind: ChartKind,
    /// Its title, as shown above it.
    pub title: String,
    /// The lines drawn: one for progress and run charts, `Current stage` and
    /// `Target stage` for a stage history.
    pub series: Vec<Series>,
    /// The y axis's labels when it is categorical (a rubric's stage labels, lowest
    /// first; a point's `y` is an index into them); empty for numbers.
    pub y_labels: Vec<String>,
    /// The median of a run chart's values.
    pub median: Option<f64>,
    /// A run chart's signals (see [`run_rules::signals`]), shifts then trends; empty
    /// on other charts.
    pub signals: Vec<Signal>,
    /// A goal's target.
    pub target: Option<f64>,
    /// A goal's baseline.
    pub baseline: Option<f64>,
}

/// A rendered report.
#[derive(Clone, Debug)]
pub struct Report {
    /// The page: a complete, self-contained HTML5 document.
    pub html: String,
    /// Every chart on the page, in page order.
    pub charts: Vec<Chart>,
    /// What could not be charted (an unknown rubric, a rating naming a stage the
    /// rubric lacks, a measurement of no goal), as shown on the page.
    pub problems: Vec<String>,
}

/// Render the report of `documents`: each work plan, rubric self-assessment, driver
/// diagram, PDSA cycle and measure gets a section, in the order given. Rubric documents among them are not
/// shown; they are the rubrics self-assessments are charted against (by `{id,
/// version}`, falling back to the starter definitions). Documents of other kinds
/// are left out.
///
/// A document of a reported kind that cannot be read is an [`Error::InvalidJson`]
/// naming it. A self-assessment whose rubric or stages are unknown is not an error:
/// the page says what is missing.
pub fn render(documents: &[(DocumentId, Value)]) -> Result<Report> {
    let rubrics = rubrics(documents);
    let mut sections = Vec::new();
    for (id, value) in documents {
        let section = match value.get("schema").and_then(Value::as_str) {
            Some(WorkPlan::KIND) => Section::WorkPlan(read_doc(id, value)?),
            Some(RubricSelfAssessment::KIND) => Section::SelfAssessment(read_doc(id, value)?),
            Some(PdsaCycle::KIND) => Section::Pdsa(read_doc(id, value)?),
            Some(Measure::KIND) => Section::Measure(read_doc(id, value)?),
            Some(DriverDiagram::KIND) => Section::Driver(read_doc(id, value)?),
            other => {
                tracing::debug!(document = %id, kind = ?other, "not a reported kind; left out");
                continue;
            }
        };
        sections.push((id, section));
    }

    // Driver diagrams and measures link to the sections of the documents they name.
    let anchors: BTreeMap<DocumentId, (String, String)> = sections
        .iter()
        .enumerate()
        .map(|(n, (id, section))| ((*id).clone(), (format!("doc-{}", n + 1), section.title())))
        .collect();
    let mut page = Page {
        anchors,
        ..Page::default()
    };
    let mut body = String::new();
    for (n, (id, section)) in sections.iter().enumerate() {
        let anchor = format!("doc-{}", n + 1);
        match section {
            Section::Measure(measure) => page.measure(&mut body, &anchor, id, measure),
            Section::Driver(diagram) => page.driver_diagram(&mut body, &anchor, id, diagram),
            Section::WorkPlan(plan) => page.work_plan(&mut body, &anchor, id, plan),
            Section::SelfAssessment(sa) => {
                page.self_assessment(&mut body, &anchor, id, sa, &rubrics)
            }
            Section::Pdsa(cycle) => page.pdsa(&mut body, &anchor, id, cycle),
        }
    }

    let mut html = String::with_capacity(body.len() + 16 * 1024);
    html.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    html.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    html.push_str("<title>Coaching report</title>\n<style>\n");
    html.push_str(STYLE);
    html.push_str("</style>\n</head>\n<body>\n<main>\n<header class=\"page\">\n");
    html.push_str("<p class=\"eyebrow\">coachsync</p>\n<h1>Coaching report</h1>\n");
    let _ = writeln!(html, "<p class=\"lede\">{}</p>", summary_line(&sections));
    if sections.len() > 1 {
        html.push_str("<nav class=\"toc\"><ol>\n");
        for (n, (_, section)) in sections.iter().enumerate() {
            let (kind, class) = section.kind_label();
            let _ = writeln!(
                html,
                "<li><a href=\"#doc-{}\"><span class=\"kind {class}\">{kind}</span> {}</a></li>",
                n + 1,
                esc(&section.title())
            );
        }
        html.push_str("</ol></nav>\n");
    }
    html.push_str("</header>\n");
    if sections.is_empty() {
        html.push_str(
            "<p class=\"empty\">Nothing to report: no work plan, rubric self-assessment, \
             driver diagram, PDSA cycle or measure was given.</p>\n",
        );
    }
    html.push_str(&body);
    html.push_str(
        "<footer>Made by coachsync from the documents on this device. Dates are UTC.</footer>\n",
    );
    html.push_str("</main>\n</body>\n</html>\n");
    Ok(Report {
        html,
        charts: page.charts,
        problems: page.problems,
    })
}

enum Section {
    WorkPlan(WorkPlan),
    SelfAssessment(RubricSelfAssessment),
    Pdsa(PdsaCycle),
    Measure(Measure),
    Driver(DriverDiagram),
}

impl Section {
    fn kind_label(&self) -> (&'static str, &'static str) {
        match self {
            Section::WorkPlan(_) => ("Work plan", "work-plan"),
            Section::SelfAssessment(_) => ("Self-assessment", "self-assessment"),
            Section::Pdsa(_) => ("PDSA cycle", "pdsa"),
            Section::Measure(_) => ("Measure", "measure"),
            Section::Driver(_) => ("Driver diagram", "driver"),
        }
    }

    fn title(&self) -> String {
        match self {
            Section::WorkPlan(plan) => plan.title.clone(),
            Section::SelfAssessment(sa) => sa.leader.clone(),
            Section::Pdsa(cycle) => cycle.title.clone(),
            Section::Measure(measure) => measure.name.clone(),
            Section::Driver(diagram) => diagram.aim.clone(),
        }
    }
}

fn summary_line(sections: &[(&DocumentId, Section)]) -> String {
    let count = |f: fn(&Section) -> bool| sections.iter().filter(|(_, s)| f(s)).count();
    let parts = [
        (
            count(|s| matches!(s, Section::WorkPlan(_))),
            "work plan",
            "work plans",
        ),
        (
            count(|s| matches!(s, Section::SelfAssessment(_))),
            "rubric self-assessment",
            "rubric self-assessments",
        ),
        (
            count(|s| matches!(s, Section::Driver(_))),
            "driver diagram",
            "driver diagrams",
        ),
        (
            count(|s| matches!(s, Section::Pdsa(_))),
            "PDSA cycle",
            "PDSA cycles",
        ),
        (
            count(|s| matches!(s, Section::Measure(_))),
            "measure",
            "measures",
        ),
    ];
    let listed: Vec<String> = parts
        .iter()
        .filter(|(n, _, _)| *n > 0)
        .map(|(n, one, many)| format!("{n} {}", if *n == 1 { one } else { many }))
        .collect();
    if listed.is_empty() {
        "No documents to report on.".into()
    } else {
        format!("{}.", listed.join(" · "))
    }
}

/// Read a document of a reported kind, naming it in the error.
fn read_doc<T: Record>(id: &DocumentId, value: &Value) -> Result<T> {
    read(value).map_err(|e| {
        let reason = match e {
            Error::InvalidJson(reason) => reason,
            other => other.to_string(),
        };
        Error::InvalidJson(format!("{} ({}): {reason}", id.url(), T::KIND))
    })
}

/// The rubrics among the documents, then the starter rubrics; an unreadable one is
/// skipped (a self-assessment that needs it then says its rubric is unknown).
fn rubrics(documents: &[(DocumentId, Value)]) -> Vec<Rubric> {
    let given = documents
        .iter()
        .filter(|(_, v)| v.get("schema").and_then(Value::as_str) == Some(Rubric::KIND))
        .filter_map(|(id, v)| match read::<Rubric>(v) {
            Ok(rubric) => Some(rubric),
            Err(e) => {
                tracing::warn!(document = %id, error = %e, "cannot read rubric; skipped");
                None
            }
        });
    let starter = starter_definitions()
        .into_iter()
        .filter(|d| d.value.get("schema").and_then(Value::as_str) == Some(Rubric::KIND))
        .filter_map(|d| read::<Rubric>(&d.value).ok());
    given.chain(starter).collect()
}

// ----- the page -------------------------------------------------------------------

#[derive(Default)]
struct Page {
    charts: Vec<Chart>,
    problems: Vec<String>,
    /// Each reported document's section anchor and title.
    anchors: BTreeMap<DocumentId, (String, String)>,
}

impl Page {
    fn next_chart_id(&self) -> String {
        format!("chart-{}", self.charts.len() + 1)
    }

    fn header(
        out: &mut String,
        anchor: &str,
        kind: (&str, &str),
        title: &str,
        meta: &[(&str, String)],
        id: &DocumentId,
    ) {
        let _ = writeln!(out, "<section class=\"doc\" id=\"{anchor}\">");
        let _ = writeln!(
            out,
            "<p class=\"doc-kind\"><span class=\"kind {}\">{}</span> <code class=\"url\">{}</code></p>",
            kind.1,
            kind.0,
            esc(&id.url().to_string())
        );
        let _ = writeln!(out, "<h2>{}</h2>", esc(title));
        let items: Vec<String> = meta
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(k, v)| format!("<span><b>{k}</b> {}</span>", esc(v)))
            .collect();
        if !items.is_empty() {
            let _ = writeln!(out, "<p class=\"meta\">{}</p>", items.join(""));
        }
    }

    fn problems_box(&mut self, out: &mut String, problems: Vec<String>) {
        if problems.is_empty() {
            return;
        }
        out.push_str(
            "<div class=\"problem\" role=\"alert\"><b>Not everything could be charted</b><ul>\n",
        );
        for p in &problems {
            let _ = writeln!(out, "<li>{}</li>", esc(p));
        }
        out.push_str("</ul></div>\n");
        self.problems.extend(problems);
    }

    // ----- work plan -------------------------------------------------------------

    fn work_plan(&mut self, out: &mut String, anchor: &str, id: &DocumentId, plan: &WorkPlan) {
        Self::header(
            out,
            anchor,
            ("Work plan", "work-plan"),
            &plan.title,
            &[
                ("Leader", plan.client.clone()),
                ("Coach", plan.coach.clone()),
                ("School", plan.school.clone().unwrap_or_default()),
                ("Year", plan.school_year.clone().unwrap_or_default()),
            ],
            id,
        );
        let progress = readings(plan.progress.as_deref().unwrap_or_default());
        let goal_ids: BTreeSet<&str> = plan.goals.iter().map(|g| g.id.as_str()).collect();
        let mut problems = Vec::new();
        let stray: Vec<&Reading> = progress
            .iter()
            .filter(|m| !m.goal.is_some_and(|g| goal_ids.contains(g)))
            .collect();
        if !stray.is_empty() {
            let named: BTreeSet<&str> = stray.iter().filter_map(|m| m.goal).collect();
            let which = if named.is_empty() {
                String::new()
            } else {
                format!(" ({})", named.into_iter().collect::<Vec<_>>().join(", "))
            };
            problems.push(format!(
                "{} progress measurement{} name{} no goal of this plan{which}, so {} not charted.",
                stray.len(),
                plural(stray.len()),
                if stray.len() == 1 { "s" } else { "" },
                if stray.len() == 1 {
                    "it is"
                } else {
                    "they are"
                },
            ));
        }
        self.problems_box(out, problems);

        let _ = writeln!(
            out,
            "<h3 class=\"label\">Theory of action</h3>\n<blockquote class=\"toa\">{}</blockquote>",
            esc(&plan.theory_of_action)
        );

        for (n, goal) in plan.goals.iter().enumerate() {
            let measured: Vec<Reading> = progress
                .iter()
                .filter(|m| m.goal == Some(goal.id.as_str()))
                .cloned()
                .collect();
            self.goal(out, id, n + 1, goal, &measured, plan);
        }

        let activities = plan.ordered_activities();
        out.push_str("<h3>Activities, in priority order</h3>\n");
        if activities.is_empty() {
            out.push_str("<p class=\"muted\">No activities yet.</p>\n");
        } else {
            out.push_str(
                "<table class=\"activities\"><thead><tr><th>#</th><th>Activity</th>\
                 <th>Goals</th><th>Who acts</th><th>Owner</th><th>Cadence</th><th>Status</th></tr></thead><tbody>\n",
            );
            for (n, (_, activity)) in activities.iter().enumerate() {
                let goals: Vec<String> = activity
                    .goals
                    .iter()
                    .flatten()
                    .map(|g| match plan.goals.iter().position(|x| &x.id == g) {
                        Some(i) => format!("Goal {}", i + 1),
                        None => g.clone(),
                    })
                    .collect();
                let status = label(&activity.status);
                let who = match &activity.kind {
                    Some(ActivityKind::CoachSupport) => "coach support".to_owned(),
                    Some(ActivityKind::ClientAction) => "leader's action".to_owned(),
                    Some(ActivityKind::Unknown(other)) => other.clone(),
                    None => "—".to_owned(),
                };
                let _ = writeln!(
                    out,
                    "<tr><td class=\"rank\">{}</td><td>{}</td><td class=\"nowrap\">{}</td>\
                     <td class=\"nowrap\">{}</td><td>{}</td><td>{}</td>\
                     <td><span class=\"status {}\">{}</span></td></tr>",
                    n + 1,
                    esc(&activity.title),
                    esc(&goals.join(", ")),
                    esc(&who),
                    esc(activity.owner.as_deref().unwrap_or("—")),
                    esc(activity.cadence.as_deref().unwrap_or("—")),
                    class_name(&status),
                    esc(&status.replace('-', " ")),
                );
            }
            out.push_str("</tbody></table>\n");
        }
        out.push_str("</section>\n");
    }

    fn goal(
        &mut self,
        out: &mut String,
        id: &DocumentId,
        n: usize,
        goal: &Goal,
        measured: &[Reading],
        plan: &WorkPlan,
    ) {
        let _ = writeln!(
            out,
            "<div class=\"goal\">\n<h3><span class=\"goal-n\">Goal {n}</span></h3>\n<p class=\"goal-text\">{}</p>",
            esc(&goal.text)
        );
        if let Some(capacity) = &goal.capacity {
            let _ = writeln!(
                out,
                "<p class=\"muted\"><b>Leader capacity</b> {}</p>",
                esc(capacity)
            );
        }
        if let Some(student_goals) = goal.student_goals.as_deref().filter(|g| !g.is_empty()) {
            let _ = writeln!(
                out,
                "<p class=\"muted\"><b>Serves student goal{}</b> {}</p>",
                plural(student_goals.len()),
                esc(&student_goals.join(", "))
            );
        }
        if let Some(measure) = &goal.measure {
            let _ = writeln!(
                out,
                "<p class=\"muted\"><b>Measure</b> {}</p>",
                esc(measure)
            );
        }
        match measured.last() {
            None => {
                let mut line = String::from("No progress measured yet");
                if let Some(b) = goal.baseline {
                    let _ = write!(line, "; baseline {}", num(b));
                }
                if let Some(t) = goal.target {
                    let _ = write!(line, "; target {}", num(t));
                }
                let _ = writeln!(out, "<p class=\"muted\">{line}.</p>");
            }
            Some(latest) => {
                out.push_str("<div class=\"stats\">");
                let _ = write!(
                    out,
                    "<div class=\"stat\"><span>Latest</span><b>{}</b><small>{}</small></div>",
                    num(latest.value),
                    date(latest.at)
                );
                if let Some(b) = goal.baseline {
                    let _ = write!(
                        out,
                        "<div class=\"stat\"><span>Baseline</span><b>{}</b></div>",
                        num(b)
                    );
                }
                if let Some(t) = goal.target {
                    let _ = write!(
                        out,
                        "<div class=\"stat\"><span>Target</span><b>{}</b></div>",
                        num(t)
                    );
                }
                if let (Some(b), Some(t)) = (goal.baseline, goal.target)
                    && t != b
                {
                    let share = (latest.value - b) / (t - b);
                    let percent = (share * 100.0).round();
                    let width = (share * 100.0).clamp(0.0, 100.0);
                    let text = if share >= 1.0 {
                        "target reached".to_owned()
                    } else {
                        format!("{}% of the way from baseline to target", num(percent))
                    };
                    let _ = write!(
                        out,
                        "<div class=\"stat wide\"><span>Progress</span><div class=\"bar\" \
                         role=\"img\" aria-label=\"{text}\"><i style=\"width:{width:.1}%\"></i></div>\
                         <small>{text}</small></div>"
                    );
                }
                out.push_str("</div>\n");

                self.time_chart(
                    out,
                    TimeChart {
                        document: id,
                        kind: ChartKind::GoalProgress,
                        title: match goal.target {
                            Some(target) => format!("Goal {n}: progress toward {}", num(target)),
                            None => format!("Goal {n}: progress"),
                        },
                        readings: measured,
                        annotations: &[],
                        target: goal.target,
                        baseline: goal.baseline,
                    },
                );
            }
        }
        let indicators: Vec<&str> = plan
            .indicators
            .iter()
            .flatten()
            .filter(|i| i.goal.as_deref() == Some(goal.id.as_str()))
            .map(|i| i.text.as_str())
            .collect();
        let mut evidence: Vec<_> = goal.evidence.iter().flatten().collect();
        evidence.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.id.cmp(&b.id)));
        if !indicators.is_empty() || !evidence.is_empty() {
            out.push_str("<div class=\"two-col\">");
            if !indicators.is_empty() {
                out.push_str("<div><h4>Indicators</h4><ul class=\"plain\">");
                for text in indicators {
                    let _ = write!(out, "<li>{}</li>", esc(text));
                }
                out.push_str("</ul></div>");
            }
            if !evidence.is_empty() {
                out.push_str("<div><h4>Evidence</h4><ul class=\"plain\">");
                for e in evidence {
                    let _ = write!(
                        out,
                        "<li><span class=\"date\">{}</span> {}",
                        date(e.at),
                        esc(&e.text)
                    );
                    if let Some(url) = &e.url {
                        // Shown as text without its scheme: the page links nowhere.
                        let _ = write!(
                            out,
                            " <span class=\"artefact\">{}</span>",
                            esc(strip_scheme(url))
                        );
                    }
                    if let Some(feedback) = &e.feedback {
                        let _ = write!(
                            out,
                            "<br><b class=\"sub\">Feedback given</b> {}",
                            esc(feedback)
                        );
                    }
                    if let Some(change) = &e.change_in_practice {
                        let _ = write!(
                            out,
                            "<br><b class=\"sub\">Change in practice</b> {}",
                            esc(change)
                        );
                    }
                    out.push_str("</li>");
                }
                out.push_str("</ul></div>");
            }
            out.push_str("</div>\n");
        }
        out.push_str("</div>\n");
    }

    // ----- rubric self-assessment ---------------------------------------------------

    fn self_assessment(
        &mut self,
        out: &mut String,
        anchor: &str,
        id: &DocumentId,
        sa: &RubricSelfAssessment,
        rubrics: &[Rubric],
    ) {
        let rubric = rubrics
            .iter()
            .find(|r| r.id == sa.rubric.id && r.version == sa.rubric.version);
        let rubric_name = match rubric {
            Some(r) => format!("{} (version {})", r.name, r.version),
            None => format!("{} version {}", sa.rubric.id, sa.rubric.version),
        };
        Self::header(
            out,
            anchor,
            ("Self-assessment", "self-assessment"),
            &format!("Self-assessment: {}", sa.leader),
            &[("Rubric", rubric_name)],
            id,
        );
        let Some(rubric) = rubric else {
            self.problems_box(
                out,
                vec![format!(
                    "This self-assessment uses rubric {:?} version {}, which is neither on this \
                     device nor a starter definition, so its stages cannot be charted. Its \
                     ratings are listed below.",
                    sa.rubric.id, sa.rubric.version
                )],
            );
            ratings_table(out, &sa.ratings);
            out.push_str("</section>\n");
            return;
        };

        // Elements in the rubric's order, then any the rubric lacks.
        let rated: BTreeSet<&str> = sa.ratings.iter().map(|r| r.element.as_str()).collect();
        let mut elements: Vec<(&str, Option<(&str, &str)>)> = Vec::new();
        for domain in &rubric.domains {
            for element in &domain.elements {
                if rated.contains(element.id.as_str()) {
                    elements.push((
                        element.id.as_str(),
                        Some((element.name.as_str(), domain.name.as_str())),
                    ));
                }
            }
        }
        let mut problems = Vec::new();
        for element in &rated {
            if rubric.element(element).is_none() {
                elements.push((*element, None));
                problems.push(format!(
                    "Element {element:?} is not in {} version {}; its chart is titled by its ID.",
                    rubric.name, rubric.version
                ));
            }
        }
        let stage_of = |stage: &str| rubric.stage_index(stage);
        for rating in &sa.ratings {
            for (which, stage) in [("current", &rating.current), ("target", &rating.target)] {
                if stage_of(stage).is_none() {
                    problems.push(format!(
                        "The rating of {:?} on {} names {which} stage {stage:?}, which is not a \
                         stage of {} version {}; that point is left out of the chart.",
                        rating.element,
                        date(rating.at),
                        rubric.name,
                        rubric.version
                    ));
                }
            }
        }
        let focus = sa.focus.as_deref().unwrap_or_default();
        for f in focus {
            if rubric.element(&f.element).is_none() {
                problems.push(format!(
                    "Focus element {:?} is not in {} version {}; it is shown by its ID.",
                    f.element, rubric.name, rubric.version
                ));
            }
        }
        self.problems_box(out, problems);
        out.push_str(
            "<p class=\"muted growth\">A growth tool, not a score: each element's stages are \
             shown over time, and never added up or averaged.</p>\n",
        );

        if !focus.is_empty() {
            // In the rubric's order, like every other list of elements on the page;
            // elements the rubric lacks come last.
            let position = |element: &str| {
                rubric
                    .domains
                    .iter()
                    .flat_map(|d| &d.elements)
                    .position(|e| e.id == element)
                    .unwrap_or(usize::MAX)
            };
            let mut focus: Vec<&Focus> = focus.iter().collect();
            focus.sort_by_key(|f| position(&f.element));
            out.push_str("<h3>Focus elements</h3>\n<div class=\"stage-grid\">\n");
            for f in focus {
                self.stage_element(out, id, rubric, sa, &f.element, Some(f));
            }
            out.push_str("</div>\n");
        }

        let stage_label = |stage: &str| match stage_of(stage) {
            Some(i) => esc(&rubric.stages[i].label),
            None => format!("{} <small>(unknown stage)</small>", esc(stage)),
        };
        if elements.is_empty() {
            out.push_str("<p class=\"muted\">No ratings yet.</p>\n");
        } else {
            out.push_str(
                "<h3>Where things stand</h3>\n<table class=\"stages\"><thead><tr><th>Element</th>\
                 <th>First rated</th><th>Now</th><th>Aiming for</th><th>Distance</th></tr></thead><tbody>\n",
            );
            for &(element, named) in &elements {
                let history = sa.history(element);
                let (Some(first), Some(last)) = (history.first(), history.last()) else {
                    continue;
                };
                let distance = match (stage_of(&last.current), stage_of(&last.target)) {
                    (Some(c), Some(t)) if t > c => {
                        let d = t - c;
                        format!(
                            "<span class=\"status planned\">{d} stage{} to go</span>",
                            plural(d)
                        )
                    }
                    (Some(c), Some(t)) if t == c => {
                        "<span class=\"status done\">at target</span>".into()
                    }
                    (Some(_), Some(_)) => "<span class=\"status done\">beyond target</span>".into(),
                    _ => "—".into(),
                };
                let _ = writeln!(
                    out,
                    "<tr><td>{}</td><td>{} <span class=\"date\">{}</span></td><td><b>{}</b> \
                     <span class=\"date\">{}</span></td><td>{}</td><td>{distance}</td></tr>",
                    esc(named.map(|(n, _)| n).unwrap_or(element)),
                    stage_label(&first.current),
                    date(first.at),
                    stage_label(&last.current),
                    date(last.at),
                    stage_label(&last.target),
                );
            }
            out.push_str("</tbody></table>\n");

            let others: Vec<(&str, Option<(&str, &str)>)> = elements
                .iter()
                .copied()
                .filter(|(e, _)| !focus.iter().any(|f| f.element == *e))
                .collect();
            if !others.is_empty() {
                let heading = if focus.is_empty() {
                    "Stage history by element"
                } else {
                    "Other rated elements"
                };
                let _ = writeln!(out, "<h3>{heading}</h3>\n<div class=\"stage-grid\">");
                for (element, _) in others {
                    self.stage_element(out, id, rubric, sa, element, None);
                }
                out.push_str("</div>\n");
            }
        }
        out.push_str("</section>\n");
    }

    /// One element of a self-assessment: its goal when it is a focus, and its stage
    /// history (current and target stage over time) as a chart.
    fn stage_element(
        &mut self,
        out: &mut String,
        id: &DocumentId,
        rubric: &Rubric,
        sa: &RubricSelfAssessment,
        element: &str,
        focus: Option<&Focus>,
    ) {
        // The element's name and its domain's, when the rubric has it.
        let named = rubric.domains.iter().find_map(|d| {
            d.elements
                .iter()
                .find(|e| e.id == element)
                .map(|e| (e.name.as_str(), d.name.as_str()))
        });
        let history = sa.history(element);
        let title = named.map(|(n, _)| n).unwrap_or(element);
        out.push_str("<div class=\"element\">");
        if let Some((_, domain)) = named {
            let _ = write!(out, "<p class=\"eyebrow\">{}</p>", esc(domain));
        }
        if let Some(f) = focus {
            let aim = f
                .target
                .as_deref()
                .map(|t| match rubric.stage_index(t) {
                    Some(i) => format!(" · aiming for <b>{}</b>", esc(&rubric.stages[i].label)),
                    None => format!(" · aiming for <b>{}</b>", esc(t)),
                })
                .unwrap_or_default();
            let _ = write!(
                out,
                "<p class=\"focus-goal\"><b>Goal</b> {}</p><p class=\"muted small\">Chosen {}{aim}</p>",
                esc(&f.goal),
                date(f.chosen_at)
            );
        }
        if history.is_empty() {
            let _ = write!(
                out,
                "<p class=\"muted\"><b>{}</b>: not rated yet.</p>",
                esc(title)
            );
        } else {
            let series = |name: &str, pick: fn(&Rating) -> &str| Series {
                name: name.into(),
                points: history
                    .iter()
                    .filter_map(|r| {
                        rubric.stage_index(pick(r)).map(|i| Point {
                            x: r.at,
                            y: i as f64,
                        })
                    })
                    .collect(),
            };
            let chart = Chart {
                id: self.next_chart_id(),
                document: id.clone(),
                kind: ChartKind::StageHistory,
                title: title.to_owned(),
                series: vec![
                    series("Current stage", |r| &r.current),
                    series("Target stage", |r| &r.target),
                ],
                y_labels: rubric.stages.iter().map(|s| s.label.clone()).collect(),
                median: None,
                signals: Vec::new(),
                target: None,
                baseline: None,
            };
            figure(out, &chart, Size::HALF, &[]);
            self.charts.push(chart);
        }
        if let Some(last) = history.iter().rev().find(|r| r.evidence.is_some()) {
            let _ = write!(
                out,
                "<blockquote class=\"evidence\"><span class=\"date\">{}</span> {}</blockquote>",
                date(last.at),
                esc(last.evidence.as_deref().unwrap_or_default())
            );
        }
        out.push_str("</div>\n");
    }

    // ----- PDSA cycle ------------------------------------------------------------------

    fn pdsa(&mut self, out: &mut String, anchor: &str, id: &DocumentId, cycle: &PdsaCycle) {
        let act = cycle.act.as_ref().map(label).unwrap_or_default();
        Self::header(
            out,
            anchor,
            ("PDSA cycle", "pdsa"),
            &cycle.title,
            &[
                ("Stage", label(&cycle.stage)),
                ("Decision", act.clone()),
                ("Measure", cycle.measure.clone().unwrap_or_default()),
            ],
            id,
        );
        let _ = writeln!(
            out,
            "<h3 class=\"label\">Change idea</h3>\n<blockquote class=\"toa\">{}</blockquote>",
            esc(&cycle.change_idea)
        );

        let measured = readings(cycle.measurements.as_deref().unwrap_or_default());
        let measure = cycle.measure.as_deref().unwrap_or("Measure");
        self.run_chart(out, id, format!("Run chart: {measure}"), &measured, &[]);

        out.push_str("<div class=\"pdsa-grid\">\n");
        let text = |t: Option<&str>| match t {
            Some(t) if !t.trim().is_empty() => format!("<p>{}</p>", esc(t)),
            _ => "<p class=\"muted\">Not written yet.</p>".into(),
        };
        let _ = writeln!(
            out,
            "<div class=\"card plan\"><h4>Plan</h4><p class=\"sub\">Prediction</p>{}<p class=\"sub\">Plan</p>{}</div>",
            text(Some(cycle.prediction.as_str())),
            text(cycle.plan.as_deref())
        );
        let _ = writeln!(
            out,
            "<div class=\"card do\"><h4>Do</h4>{}</div>",
            text(cycle.r#do.as_deref())
        );
        let _ = writeln!(
            out,
            "<div class=\"card study\"><h4>Study</h4>{}</div>",
            text(cycle.study.as_deref())
        );
        let decision = if act.is_empty() {
            String::new()
        } else {
            format!(
                " <span class=\"status {}\">{}</span>",
                class_name(&act),
                esc(&act)
            )
        };
        let _ = writeln!(
            out,
            "<div class=\"card act\"><h4>Act{decision}</h4>{}</div>",
            text(cycle.act_notes.as_deref())
        );
        out.push_str("</div>\n</section>\n");
    }

    // ----- measure ---------------------------------------------------------------------

    fn measure(&mut self, out: &mut String, anchor: &str, id: &DocumentId, measure: &Measure) {
        Self::header(
            out,
            anchor,
            ("Measure", "measure"),
            &measure.name,
            &[
                ("Unit", measure.unit.clone()),
                (
                    "Type",
                    measure.r#type.as_ref().map(label).unwrap_or_default(),
                ),
            ],
            id,
        );
        let links: Vec<String> = [
            ("PDSA cycle", &measure.pdsa_cycle),
            ("Driver diagram", &measure.driver_diagram),
        ]
        .into_iter()
        .filter_map(|(what, url)| url.as_deref().map(|u| (what, u)))
        .map(|(what, url)| format!("<b>{what}</b> {}", self.link(url)))
        .collect();
        if !links.is_empty() {
            let _ = writeln!(
                out,
                "<p class=\"meta\"><span>{}</span></p>",
                links.join("</span><span>")
            );
        }
        let _ = writeln!(
            out,
            "<h3 class=\"label\">Operational definition</h3>\n<blockquote class=\"toa\">{}</blockquote>",
            esc(&measure.definition)
        );
        let points = readings(&measure.points);
        let annotations: Vec<(i64, &str)> = {
            let mut sorted: Vec<_> = measure.annotations.iter().flatten().collect();
            sorted.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.id.cmp(&b.id)));
            sorted
                .into_iter()
                .filter(|a| !a.text.trim().is_empty())
                .map(|a| (a.at, a.text.as_str()))
                .collect()
        };
        let unit = if measure.unit.is_empty() {
            String::new()
        } else {
            format!(" ({})", measure.unit)
        };
        self.run_chart(
            out,
            id,
            format!("Run chart: {}{unit}", measure.name),
            &points,
            &annotations,
        );
        out.push_str("</section>\n");
    }

    /// A document's URL as a link to its section when it is in the report, else as
    /// text (the page links nowhere outside itself).
    fn link(&self, url: &str) -> String {
        let section = url
            .parse::<AutomergeUrl>()
            .ok()
            .and_then(|u| self.anchors.get(&u.document_id));
        match section {
            Some((anchor, title)) => format!("<a href=\"#{anchor}\">{}</a>", esc(title)),
            None => format!(
                "<code class=\"url\">{}</code> <span class=\"muted\">(not in this report)</span>",
                esc(url)
            ),
        }
    }

    // ----- driver diagram ----------------------------------------------------------------

    fn driver_diagram(
        &mut self,
        out: &mut String,
        anchor: &str,
        id: &DocumentId,
        diagram: &DriverDiagram,
    ) {
        Self::header(
            out,
            anchor,
            ("Driver diagram", "driver"),
            "Driver diagram",
            &[
                ("Primary drivers", diagram.primary.len().to_string()),
                ("Change ideas", diagram.change_ideas.len().to_string()),
            ],
            id,
        );
        let _ = writeln!(
            out,
            "<h3 class=\"label\">Aim</h3>\n<blockquote class=\"toa aim\">{}</blockquote>",
            esc(&diagram.aim)
        );

        // Validation keeps every link inside the diagram; a document read without it
        // may not, and what hangs loose is said rather than dropped.
        let mut problems = Vec::new();
        for s in &diagram.secondary {
            if !diagram.primary.iter().any(|p| p.id == s.primary) {
                problems.push(format!(
                    "Secondary driver {:?} names primary driver {:?}, which is not in the \
                     diagram; it is not shown.",
                    s.text, s.primary
                ));
            }
        }
        for idea in &diagram.change_ideas {
            if !idea
                .secondaries
                .iter()
                .any(|s| diagram.secondary.iter().any(|d| &d.id == s))
            {
                problems.push(format!(
                    "Change idea {:?} acts on no secondary driver of the diagram; it is not \
                     shown.",
                    idea.text
                ));
            }
        }
        self.problems_box(out, problems);

        out.push_str("<h3>Drivers and change ideas</h3>\n<ol class=\"tree\">\n");
        for primary in &diagram.primary {
            let _ = writeln!(
                out,
                "<li class=\"primary\"><span class=\"node-kind\">Primary driver</span> {}",
                esc(&primary.text)
            );
            let secondaries = diagram.secondaries_of(&primary.id);
            if secondaries.is_empty() {
                out.push_str("<p class=\"muted\">No secondary drivers yet.</p>\n");
            } else {
                out.push_str("<ul>\n");
                for secondary in secondaries {
                    let _ = writeln!(
                        out,
                        "<li class=\"secondary\"><span class=\"node-kind\">Secondary driver</span> {}",
                        esc(&secondary.text)
                    );
                    let ideas = diagram.ideas_for(&secondary.id);
                    if !ideas.is_empty() {
                        out.push_str("<ul>\n");
                        for idea in ideas {
                            let _ = write!(
                                out,
                                "<li class=\"idea\"><span class=\"node-kind\">Change idea</span> {}",
                                esc(&idea.text)
                            );
                            let cycles = idea.cycles.as_deref().unwrap_or_default();
                            if !cycles.is_empty() {
                                let tested: Vec<String> =
                                    cycles.iter().map(|c| self.link(c)).collect();
                                let _ = write!(
                                    out,
                                    "<br><span class=\"tested\">Tested by {}</span>",
                                    tested.join(", ")
                                );
                            }
                            out.push_str("</li>\n");
                        }
                        out.push_str("</ul>\n");
                    }
                    out.push_str("</li>\n");
                }
                out.push_str("</ul>\n");
            }
            out.push_str("</li>\n");
        }
        out.push_str("</ol>\n</section>\n");
    }

    // ----- time charts ---------------------------------------------------------------

    /// A run chart: the values over time with their median and the run chart rules'
    /// signals, as PDSA cycles and measures show them.
    fn run_chart(
        &mut self,
        out: &mut String,
        id: &DocumentId,
        title: String,
        readings: &[Reading],
        annotations: &[(i64, &str)],
    ) {
        if readings.is_empty() {
            let _ = writeln!(
                out,
                "<h3>{}</h3>\n<p class=\"muted\">No measurements yet.</p>",
                esc(&title)
            );
            return;
        }
        self.time_chart(
            out,
            TimeChart {
                document: id,
                kind: ChartKind::RunChart,
                title,
                readings,
                annotations,
                target: None,
                baseline: None,
            },
        );
    }

    /// Chart dated values: a goal's progress (against its target and baseline) or a
    /// run chart (around its median, with its signals), with the readings' notes and
    /// the annotations numbered on the chart and listed under it.
    fn time_chart(&mut self, out: &mut String, spec: TimeChart) {
        let points: Vec<Point> = spec
            .readings
            .iter()
            .map(|r| Point {
                x: r.at,
                y: r.value,
            })
            .collect();
        let run = spec.kind == ChartKind::RunChart;
        let median = if run {
            let values: Vec<f64> = points.iter().map(|p| p.y).collect();
            run_rules::median(&values)
        } else {
            None
        };
        let signals = median
            .map(|m| run_rules::signals(&points, m))
            .unwrap_or_default();
        let chart = Chart {
            id: self.next_chart_id(),
            document: spec.document.clone(),
            kind: spec.kind,
            title: spec.title,
            series: vec![Series {
                name: "Measured".into(),
                points,
            }],
            y_labels: Vec::new(),
            median,
            signals,
            target: spec.target,
            baseline: spec.baseline,
        };
        let notes = notes_of(spec.readings, spec.annotations);
        figure(out, &chart, Size::WIDE, &notes);
        if run {
            signals_text(out, &chart.signals, spec.readings.len());
        }
        notes_list(out, &notes);
        self.charts.push(chart);
    }
}

/// What [`Page::time_chart`] draws.
struct TimeChart<'a> {
    document: &'a DocumentId,
    kind: ChartKind,
    title: String,
    readings: &'a [Reading<'a>],
    annotations: &'a [(i64, &'a str)],
    target: Option<f64>,
    baseline: Option<f64>,
}

/// A signal's rule and which way it points, as the page says them.
fn signal_words(signal: &Signal) -> (&'static str, &'static str) {
    match (signal.kind, signal.direction) {
        (SignalKind::Shift, Direction::Above) => ("shift", "above the median"),
        (SignalKind::Shift, _) => ("shift", "below the median"),
        (SignalKind::Trend, Direction::Up) => ("trend", "going up"),
        (SignalKind::Trend, _) => ("trend", "going down"),
    }
}

/// The run chart's signals as sentences, or that there are none yet.
fn signals_text(out: &mut String, signals: &[Signal], points: usize) {
    if signals.is_empty() {
        let _ = writeln!(
            out,
            "<p class=\"signal none\">No signal yet: no shift ({} or more points in a row on \
             one side of the median) and no trend ({} or more points in a row going up, or \
             down). {points} point{} so far.</p>",
            run_rules::SHIFT,
            run_rules::TREND,
            plural(points)
        );
        return;
    }
    for s in signals {
        let (rule, how) = signal_words(s);
        let _ = writeln!(
            out,
            "<p class=\"signal\" data-rule=\"{rule}\"><b>Signal</b> {rule}: {} points in a row \
             {how}, from {} to {}.</p>",
            s.length,
            date(s.from),
            date(s.to)
        );
    }
}

fn ratings_table(out: &mut String, ratings: &[Rating]) {
    let mut ratings: Vec<&Rating> = ratings.iter().collect();
    ratings.sort_by(|a, b| {
        a.element
            .cmp(&b.element)
            .then(a.at.cmp(&b.at))
            .then_with(|| a.id.cmp(&b.id))
    });
    out.push_str(
        "<table class=\"stages\"><thead><tr><th>Element</th><th>Date</th><th>Current</th>\
         <th>Target</th></tr></thead><tbody>\n",
    );
    for r in ratings {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"date\">{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.element),
            date(r.at),
            esc(&r.current),
            esc(&r.target)
        );
    }
    out.push_str("</tbody></table>\n");
}

/// A dated value to chart: a work plan's or PDSA cycle's measurement, or a
/// measure's data point.
#[derive(Clone)]
struct Reading<'a> {
    id: &'a str,
    at: i64,
    value: f64,
    note: Option<&'a str>,
    goal: Option<&'a str>,
}

impl<'a> From<&'a Measurement> for Reading<'a> {
    fn from(m: &'a Measurement) -> Self {
        Reading {
            id: &m.id,
            at: m.at,
            value: m.value,
            note: m.note.as_deref(),
            goal: m.goal.as_deref(),
        }
    }
}

impl<'a> From<&'a DataPoint> for Reading<'a> {
    fn from(p: &'a DataPoint) -> Self {
        Reading {
            id: &p.id,
            at: p.at,
            value: p.value,
            note: None,
            goal: None,
        }
    }
}

/// Readings oldest first; ties by ID, so every device draws the same line.
fn readings<'a, T>(items: &'a [T]) -> Vec<Reading<'a>>
where
    &'a T: Into<Reading<'a>>,
{
    let mut sorted: Vec<Reading> = items.iter().map(Into::into).collect();
    sorted.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.id.cmp(b.id)));
    sorted
}

/// A numbered note on a chart: a reading's own note (with its value), or an
/// annotation of a date (drawn by the reading nearest in time).
struct Note {
    number: usize,
    x: i64,
    y: f64,
    value: Option<f64>,
    text: String,
}

fn notes_of(readings: &[Reading], annotations: &[(i64, &str)]) -> Vec<Note> {
    let own = readings.iter().filter_map(|r| {
        r.note
            .filter(|n| !n.trim().is_empty())
            .map(|n| (r.at, r.value, Some(r.value), n))
    });
    let dated = annotations.iter().filter_map(|(at, text)| {
        let nearest = readings.iter().min_by_key(|r| (r.at - at).unsigned_abs())?;
        Some((*at, nearest.value, None, *text))
    });
    let mut all: Vec<(i64, f64, Option<f64>, &str)> = own.chain(dated).collect();
    all.sort_by_key(|a| a.0);
    all.into_iter()
        .enumerate()
        .map(|(i, (x, y, value, text))| Note {
            number: i + 1,
            x,
            y,
            value,
            text: text.to_owned(),
        })
        .collect()
}

fn notes_list(out: &mut String, notes: &[Note]) {
    if notes.is_empty() {
        return;
    }
    out.push_str("<ol class=\"notes\">");
    for note in notes {
        let value = note
            .value
            .map(|v| format!(" <b>{}</b>", num(v)))
            .unwrap_or_default();
        let _ = write!(
            out,
            "<li><span class=\"marker\">{}</span><span class=\"date\">{}</span>{value} — {}</li>",
            note.number,
            date(note.x),
            esc(&note.text)
        );
    }
    out.push_str("</ol>\n");
}

// ----- charts ---------------------------------------------------------------------

#[derive(Clone, Copy)]
struct Size {
    width: f64,
    height: f64,
    left: f64,
    right: f64,
}

impl Size {
    const WIDE: Size = Size {
        width: 920.0,
        height: 320.0,
        left: 56.0,
        right: 104.0,
    };
    const HALF: Size = Size {
        width: 440.0,
        height: 250.0,
        left: 104.0,
        right: 18.0,
    };
    const TOP: f64 = 22.0;
    const BOTTOM: f64 = 36.0;
}

/// Where values land in an SVG of a given size.
struct Frame {
    size: Size,
    x0: i64,
    x1: i64,
    y0: f64,
    y1: f64,
}

impl Frame {
    fn plot_left(&self) -> f64 {
        self.size.left
    }
    fn plot_right(&self) -> f64 {
        self.size.width - self.size.right
    }
    fn plot_top(&self) -> f64 {
        Size::TOP
    }
    fn plot_bottom(&self) -> f64 {
        self.size.height - Size::BOTTOM
    }
    fn x(&self, t: i64) -> f64 {
        let span = (self.x1 - self.x0).max(1) as f64;
        self.plot_left() + (t - self.x0) as f64 / span * (self.plot_right() - self.plot_left())
    }
    fn y(&self, v: f64) -> f64 {
        let span = self.y1 - self.y0;
        let span = if span > 0.0 { span } else { 1.0 };
        self.plot_bottom() - (v - self.y0) / span * (self.plot_bottom() - self.plot_top())
    }
}

/// The chart as a `<figure>`: title, SVG and legend.
fn figure(out: &mut String, chart: &Chart, size: Size, notes: &[Note]) {
    let _ = writeln!(
        out,
        "<figure class=\"chart {}\" id=\"{}\">\n<figcaption>{}</figcaption>",
        match chart.kind {
            ChartKind::GoalProgress => "progress",
            ChartKind::StageHistory => "stages",
            ChartKind::RunChart => "run",
        },
        chart.id,
        esc(&chart.title)
    );
    svg(out, chart, size, notes);
    // Legend.
    out.push_str("<div class=\"legend\">");
    for (i, series) in chart.series.iter().enumerate() {
        let (line, dot) = if i == 0 {
            ("s-main", "dot-main")
        } else {
            ("s-second", "dot-second")
        };
        let _ = write!(
            out,
            "<span><svg width=\"30\" height=\"12\" aria-hidden=\"true\"><line class=\"{line}\" x1=\"1\" y1=\"6\" x2=\"29\" y2=\"6\"/><circle class=\"{dot}\" cx=\"15\" cy=\"6\" r=\"4\"/></svg>{}</span>",
            esc(&series.name)
        );
    }
    for (class, name, value) in reference_lines(chart) {
        let _ = write!(
            out,
            "<span><svg width=\"30\" height=\"12\" aria-hidden=\"true\"><line class=\"{class}\" x1=\"1\" y1=\"6\" x2=\"29\" y2=\"6\"/></svg>{name} ({})</span>",
            num(value)
        );
    }
    out.push_str("</div>\n</figure>\n");
}

/// The horizontal lines of a chart: class, legend name, value.
fn reference_lines(chart: &Chart) -> Vec<(&'static str, &'static str, f64)> {
    let mut lines = Vec::new();
    if let Some(v) = chart.target {
        lines.push(("ref-target", "Target", v));
    }
    if let Some(v) = chart.baseline {
        lines.push(("ref-baseline", "Baseline", v));
    }
    if let Some(v) = chart.median {
        lines.push(("ref-median", "Median", v));
    }
    lines.retain(|(_, _, v)| v.is_finite());
    lines
}

fn svg(out: &mut String, chart: &Chart, size: Size, notes: &[Note]) {
    let points: Vec<&Point> = chart.series.iter().flat_map(|s| &s.points).collect();
    let categorical = !chart.y_labels.is_empty();
    let refs = reference_lines(chart);

    // x: the points' time span, padded; a single instant gets a day either side.
    let (mut x0, mut x1) = points.iter().fold((i64::MAX, i64::MIN), |(lo, hi), p| {
        (lo.min(p.x), hi.max(p.x))
    });
    if x0 > x1 {
        (x0, x1) = (0, DAY);
    }
    if x1 - x0 < DAY {
        (x0, x1) = (x0 - DAY, x1 + DAY);
    } else {
        let pad = (x1 - x0) / 20;
        (x0, x1) = (x0 - pad, x1 + pad);
    }

    // y: the stage scale, or nice ticks around the values and reference lines.
    let (y0, y1, y_ticks): (f64, f64, Vec<f64>) = if categorical {
        let n = chart.y_labels.len() as f64;
        (
            -0.5,
            n - 0.5,
            (0..chart.y_labels.len()).map(|i| i as f64).collect(),
        )
    } else {
        let values = points
            .iter()
            .map(|p| p.y)
            .chain(refs.iter().map(|r| r.2))
            .filter(|v| v.is_finite());
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        let (lo, hi) = if lo > hi { (0.0, 1.0) } else { (lo, hi) };
        nice_ticks(lo, hi)
    };
    let frame = Frame {
        size,
        x0,
        x1,
        y0,
        y1,
    };
    let (left, right, bottom) = (frame.plot_left(), frame.plot_right(), frame.plot_bottom());

    let _ = writeln!(
        out,
        "<svg viewBox=\"0 0 {w} {h}\" width=\"{w}\" height=\"{h}\" role=\"img\" aria-label=\"{}\" data-chart=\"{}\">",
        esc(&chart.title),
        chart.id,
        w = size.width,
        h = size.height,
    );

    // Stage bands and labels, or the numeric grid.
    if categorical {
        for (i, name) in chart.y_labels.iter().enumerate() {
            let yc = frame.y(i as f64);
            let half = (frame.y(0.0) - frame.y(1.0)) / 2.0;
            let _ = writeln!(
                out,
                "<rect class=\"band b{}\" x=\"{left:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\"/>",
                i % 2,
                yc - half,
                right - left,
                half * 2.0
            );
            let _ = writeln!(
                out,
                "<text class=\"ylabel\" x=\"{:.1}\" y=\"{yc:.1}\" text-anchor=\"end\" dominant-baseline=\"middle\">{}</text>",
                left - 8.0,
                esc(name)
            );
        }
    } else {
        for v in &y_ticks {
            let y = frame.y(*v);
            let _ = writeln!(
                out,
                "<line class=\"grid\" x1=\"{left:.1}\" y1=\"{y:.1}\" x2=\"{right:.1}\" y2=\"{y:.1}\"/>\
                 <text class=\"tick\" x=\"{:.1}\" y=\"{y:.1}\" text-anchor=\"end\" dominant-baseline=\"middle\">{}</text>",
                left - 8.0,
                num(*v)
            );
        }
    }

    // The time axis.
    let _ = writeln!(
        out,
        "<line class=\"axis\" x1=\"{left:.1}\" y1=\"{bottom:.1}\" x2=\"{right:.1}\" y2=\"{bottom:.1}\"/>"
    );
    for t in time_ticks(&frame, &points) {
        let x = frame.x(t);
        let _ = writeln!(
            out,
            "<line class=\"axis\" x1=\"{x:.1}\" y1=\"{bottom:.1}\" x2=\"{x:.1}\" y2=\"{:.1}\"/>\
             <text class=\"tick\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            bottom + 5.0,
            bottom + 20.0,
            date(t)
        );
    }

    // A run chart's signals, so the eye finds them before reading the sentences under
    // the chart: a shift as a band on its side of the median over the points it
    // counted, a trend as a wide stroke under its points.
    let median_y = chart.median.map(|m| frame.y(m));
    for signal in &chart.signals {
        let (rule, how) = signal_words(signal);
        let title = format!("<title>{rule}: {} points {how}</title>", signal.length);
        match (signal.kind, median_y) {
            (SignalKind::Shift, Some(median_y)) => {
                let pad = 7.0;
                let (x0, x1) = (frame.x(signal.from) - pad, frame.x(signal.to) + pad);
                let (y0, y1) = if signal.direction == Direction::Above {
                    (frame.plot_top(), median_y)
                } else {
                    (median_y, bottom)
                };
                let _ = writeln!(
                    out,
                    "<rect class=\"signal-band shift\" x=\"{x0:.1}\" y=\"{y0:.1}\" width=\"{:.1}\" height=\"{:.1}\">{title}</rect>",
                    x1 - x0,
                    y1 - y0,
                );
            }
            (SignalKind::Trend, _) => {
                let coords: Vec<String> = chart
                    .series
                    .first()
                    .map(|s| s.points.as_slice())
                    .unwrap_or_default()
                    .iter()
                    .filter(|p| (signal.from..=signal.to).contains(&p.x))
                    .map(|p| format!("{:.1},{:.1}", frame.x(p.x), frame.y(p.y)))
                    .collect();
                let _ = writeln!(
                    out,
                    "<polyline class=\"signal-trend\" points=\"{}\">{title}</polyline>",
                    coords.join(" ")
                );
            }
            _ => {}
        }
    }

    // Reference lines, labelled at the right; labels kept apart.
    let mut label_ys: Vec<(f64, usize)> = refs
        .iter()
        .enumerate()
        .map(|(i, r)| (frame.y(r.2), i))
        .collect();
    label_ys.sort_by(|a, b| a.0.total_cmp(&b.0));
    for i in 1..label_ys.len() {
        if label_ys[i].0 - label_ys[i - 1].0 < 14.0 {
            label_ys[i].0 = label_ys[i - 1].0 + 14.0;
        }
    }
    for (label_y, i) in label_ys {
        let (class, name, value) = refs[i];
        let y = frame.y(value);
        let _ = writeln!(
            out,
            "<line class=\"{class}\" data-value=\"{}\" x1=\"{left:.1}\" y1=\"{y:.1}\" x2=\"{right:.1}\" y2=\"{y:.1}\"/>\
             <text class=\"reflabel {class}\" x=\"{:.1}\" y=\"{label_y:.1}\" dominant-baseline=\"middle\">{} {}</text>",
            num(value),
            right + 6.0,
            name.to_lowercase(),
            num(value)
        );
    }

    // The series: lines, then points on top.
    let stage = |y: f64| -> String {
        chart
            .y_labels
            .get(y as usize)
            .map(|s| esc(s))
            .unwrap_or_default()
    };
    for (i, series) in chart.series.iter().enumerate() {
        let class = if i == 0 { "s-main" } else { "s-second" };
        let coords: Vec<String> = series
            .points
            .iter()
            .map(|p| format!("{:.1},{:.1}", frame.x(p.x), frame.y(p.y)))
            .collect();
        let _ = writeln!(
            out,
            "<polyline class=\"{class}\" data-series=\"{}\" points=\"{}\"/>",
            esc(&series.name),
            coords.join(" ")
        );
    }
    let label_values = !categorical && points.len() <= 16;
    for (i, series) in chart.series.iter().enumerate().rev() {
        let (class, r) = if i == 0 {
            ("dot-main", 4.5)
        } else {
            ("dot-second", 7.0)
        };
        for p in &series.points {
            let (x, y) = (frame.x(p.x), frame.y(p.y));
            let value = if categorical { stage(p.y) } else { num(p.y) };
            let _ = writeln!(
                out,
                "<circle class=\"{class}\" cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"{r}\"><title>{}: {} {value}</title></circle>",
                date(p.x),
                esc(&series.name.to_lowercase()),
            );
            if label_values {
                let _ = writeln!(
                    out,
                    "<text class=\"value\" x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{value}</text>",
                    y - 10.0
                );
            }
        }
    }
    for note in notes {
        let (x, y) = (frame.x(note.x), frame.y(note.y));
        let _ = writeln!(
            out,
            "<g class=\"note\"><circle cx=\"{x:.1}\" cy=\"{:.1}\" r=\"8\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\" dominant-baseline=\"central\">{}</text></g>",
            y + 20.0,
            y + 20.0,
            note.number
        );
    }
    out.push_str("</svg>\n");
}

/// Round numbers spanning `lo..=hi`: the axis's ends and its ticks.
fn nice_ticks(lo: f64, hi: f64) -> (f64, f64, Vec<f64>) {
    let (lo, hi) = if hi - lo < f64::EPSILON * lo.abs().max(1.0) {
        let pad = (lo.abs() * 0.1).max(1.0);
        (lo - pad, hi + pad)
    } else {
        (lo, hi)
    };
    let raw = (hi - lo) / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let start = (lo / step).floor() * step;
    let end = (hi / step).ceil() * step;
    let mut ticks = Vec::new();
    let mut i = 0.0;
    loop {
        let t = start + i * step;
        if t > end + step / 2.0 || ticks.len() > 20 {
            break;
        }
        // Clean float noise such as 0.30000000000000004.
        ticks.push((t / step).round() * step);
        i += 1.0;
    }
    (start, end, ticks)
}

const DAY: i64 = 86_400_000;

/// Dates to mark on the time axis: the points' own dates when they are few and far
/// enough apart to label, else calendar days, weeks or months.
fn time_ticks(frame: &Frame, points: &[&Point]) -> Vec<i64> {
    // The first point of each day, so a tick sits under its point.
    let mut days: BTreeMap<i64, i64> = BTreeMap::new();
    for p in points {
        let first = days.entry(p.x.div_euclid(DAY)).or_insert(p.x);
        *first = (*first).min(p.x);
    }
    let xs: Vec<i64> = days.into_values().collect();
    let spaced = xs.windows(2).all(|w| frame.x(w[1]) - frame.x(w[0]) >= 84.0);
    if !xs.is_empty() && xs.len() <= 6 && spaced {
        return xs;
    }
    let (lo, hi) = (frame.x0, frame.x1);
    let room = ((frame.plot_right() - frame.plot_left()) / 90.0)
        .floor()
        .max(2.0) as i64;
    let span_days = (hi - lo) / DAY;
    for step in [1, 2, 7, 14] {
        if span_days / step <= room {
            let mut t = lo.div_euclid(DAY) * DAY;
            if t < lo {
                t += DAY;
            }
            let mut ticks = Vec::new();
            while t <= hi {
                ticks.push(t);
                t += step * DAY;
            }
            return ticks;
        }
    }
    let first = crate::utc::civil_from_days(lo.div_euclid(DAY));
    let months = span_days / 30;
    for step in [1, 2, 3, 6, 12, 24, 60, 120, 600, 1200] {
        if months / step <= room {
            // Months since year 0, rounded up to the step.
            let mut month = first.0 * 12 + (first.1 - 1) + 1;
            month += (step - month.rem_euclid(step)) % step;
            let mut ticks = Vec::new();
            loop {
                let t = days_from_civil(month.div_euclid(12), month.rem_euclid(12) + 1, 1) * DAY;
                if t > hi {
                    break;
                }
                if t >= lo {
                    ticks.push(t);
                }
                month += step;
            }
            return ticks;
        }
    }
    vec![lo + (hi - lo) / 2]
}

// ----- text -------------------------------------------------------------------------

/// HTML-escape text for an element's content or a quoted attribute.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A value as people write it: whole numbers without a decimal point, others to at
/// most two decimals.
fn num(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        return format!("{}", v as i64);
    }
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// An enum value as written in the document (`in-progress`).
fn label<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A CSS class from a value: letters, digits and dashes only.
fn class_name(value: &str) -> String {
    value
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect()
}

fn strip_scheme(url: &str) -> &str {
    url.split_once("://").map(|(_, rest)| rest).unwrap_or(url)
}

/// A timestamp (ms since 1970) as its UTC date, `YYYY-MM-DD`.
fn date(ms: i64) -> String {
    let (y, m, d) = crate::utc::civil_from_days(ms.div_euclid(DAY));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

const STYLE: &str = r#":root {
  --ink: #1f2937; --muted: #6b7280; --line: #e5e7eb; --paper: #ffffff; --bg: #f4f5f7;
  --blue: #2563eb; --orange: #ea580c; --green: #059669; --purple: #7c3aed; --grey: #9ca3af;
}
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 15px/1.55 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1000px; margin: 0 auto; padding: 36px 24px 56px; }
header.page h1 { font-size: 30px; line-height: 1.2; margin: 0 0 6px; }
.eyebrow { margin: 0; font-size: 12px; font-weight: 600; letter-spacing: .08em; text-transform: uppercase; color: var(--muted); }
.lede { margin: 0 0 14px; color: var(--muted); font-size: 16px; }
nav.toc ol { margin: 0; padding: 0; list-style: none; display: flex; flex-direction: column; gap: 4px; }
nav.toc a { color: var(--ink); text-decoration: none; }
nav.toc a:hover { text-decoration: underline; }
section.doc { background: var(--paper); border: 1px solid var(--line); border-radius: 14px;
  padding: 28px 32px 32px; margin: 28px 0; box-shadow: 0 1px 3px rgba(15, 23, 42, .05); }
.doc-kind { margin: 0; display: flex; align-items: center; gap: 10px; }
.url { font-size: 12px; color: var(--muted); }
h2 { font-size: 24px; line-height: 1.25; margin: 8px 0 6px; }
h3 { font-size: 17px; margin: 30px 0 8px; }
h3.label { font-size: 12px; font-weight: 600; letter-spacing: .06em; text-transform: uppercase; color: var(--muted); margin: 22px 0 6px; }
h4 { font-size: 13px; font-weight: 600; letter-spacing: .04em; text-transform: uppercase; color: var(--muted); margin: 0 0 6px; }
.meta { margin: 0; color: var(--muted); font-size: 14px; display: flex; flex-wrap: wrap; gap: 4px 20px; }
.meta b { color: var(--ink); font-weight: 600; margin-right: 4px; }
.muted { color: var(--muted); }
.kind { display: inline-block; font-size: 11px; font-weight: 700; letter-spacing: .06em; text-transform: uppercase;
  padding: 3px 9px; border-radius: 999px; vertical-align: 1px; }
.kind.work-plan { background: #dbeafe; color: #1e40af; }
.kind.self-assessment { background: #ffedd5; color: #9a3412; }
.kind.pdsa { background: #ede9fe; color: #5b21b6; }
.kind.measure { background: #d1fae5; color: #065f46; }
.kind.driver { background: #fce7f3; color: #9d174d; }
ol.tree { list-style: none; padding: 0; margin: 8px 0 0; }
ol.tree ul { list-style: none; margin: 6px 0 6px 10px; padding-left: 18px; border-left: 2px solid var(--line); }
ol.tree li { margin: 6px 0; }
ol.tree li.primary { font-weight: 600; border: 1px solid var(--line); border-radius: 10px; padding: 10px 14px; }
ol.tree li.secondary, ol.tree li.idea { font-weight: 400; }
.node-kind { display: inline-block; font-size: 10px; font-weight: 700; letter-spacing: .06em; text-transform: uppercase;
  color: var(--muted); margin-right: 6px; }
li.idea .node-kind { color: #9d174d; }
.tested { font-size: 13px; color: var(--muted); }
.focus-goal { margin: 4px 0 2px; white-space: pre-line; }
.small { font-size: 13px; margin: 0 0 6px; }
b.sub { font-size: 12px; color: var(--muted); font-weight: 600; }
blockquote { margin: 0; padding: 10px 16px; border-left: 4px solid #c7d2fe; background: #f8fafc; border-radius: 0 8px 8px 0; white-space: pre-line; }
blockquote.evidence { font-size: 13px; border-left-color: #fed7aa; color: #374151; margin-top: 4px; }
.goal { border-top: 1px solid var(--line); margin-top: 28px; }
.goal h3 { margin-top: 22px; }
.goal-n { display: inline-block; background: var(--ink); color: #fff; font-size: 12px; letter-spacing: .04em;
  text-transform: uppercase; padding: 3px 10px; border-radius: 6px; }
.goal-text { font-size: 16px; font-weight: 500; margin: 6px 0 4px; white-space: pre-line; }
.stats { display: flex; flex-wrap: wrap; gap: 12px; margin: 14px 0 4px; }
.stat { border: 1px solid var(--line); border-radius: 10px; padding: 8px 14px; min-width: 110px; }
.stat span { display: block; font-size: 11px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); }
.stat b { font-size: 22px; line-height: 1.2; }
.stat small { display: block; color: var(--muted); font-size: 12px; }
.stat.wide { flex: 1; min-width: 260px; }
.bar { height: 10px; background: #e5e7eb; border-radius: 999px; overflow: hidden; margin: 8px 0 4px; }
.bar i { display: block; height: 100%; background: var(--green); border-radius: 999px; }
figure.chart { margin: 14px 0 10px; break-inside: avoid; }
figure.chart figcaption { font-weight: 600; font-size: 14px; margin-bottom: 4px; }
figure.chart.run figcaption { font-size: 17px; margin: 30px 0 8px; }
figure.chart > svg { display: block; width: 100%; height: auto; overflow: visible; }
svg text { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; font-size: 12px; fill: #4b5563; }
svg .tick { fill: #6b7280; }
svg .ylabel { fill: #374151; font-weight: 500; }
svg .value { font-size: 11px; font-weight: 600; fill: #1e3a8a; paint-order: stroke; stroke: #fff; stroke-width: 3px; }
svg .grid { stroke: #eceef1; }
svg .axis { stroke: #9ca3af; }
svg .band.b0 { fill: #f8fafc; } svg .band.b1 { fill: #f1f5f9; }
svg .s-main { fill: none; stroke: var(--blue); stroke-width: 2.5; stroke-linejoin: round; stroke-linecap: round; }
svg .dot-main { fill: var(--blue); stroke: #fff; stroke-width: 1.5; }
svg .s-second { fill: none; stroke: var(--orange); stroke-width: 2; stroke-dasharray: 6 4; }
svg .dot-second { fill: none; stroke: var(--orange); stroke-width: 2.2; }
svg .ref-target { stroke: var(--green); stroke-width: 2; stroke-dasharray: 8 5; }
svg .ref-baseline { stroke: var(--grey); stroke-width: 1.5; stroke-dasharray: 2 4; }
svg .ref-median { stroke: var(--purple); stroke-width: 2; stroke-dasharray: 8 5; }
svg .signal-band { fill: #7c3aed; fill-opacity: .09; stroke: #7c3aed; stroke-opacity: .4; stroke-dasharray: 3 3; }
svg .signal-trend { fill: none; stroke: #f59e0b; stroke-opacity: .45; stroke-width: 12; stroke-linejoin: round; stroke-linecap: round; }
svg text.reflabel { font-weight: 600; stroke: none; }
svg text.ref-target { fill: var(--green); } svg text.ref-baseline { fill: #6b7280; } svg text.ref-median { fill: var(--purple); }
svg .note circle { fill: #fff; stroke: #64748b; stroke-width: 1.2; }
svg .note text { font-size: 10px; font-weight: 700; fill: #334155; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 20px; font-size: 13px; color: #4b5563; margin-top: 6px; }
.legend span { display: inline-flex; align-items: center; gap: 6px; }
.notes { list-style: none; padding: 0; margin: 8px 0 0; font-size: 13px; color: #374151; }
.notes li { margin: 3px 0; }
.marker { display: inline-flex; align-items: center; justify-content: center; width: 18px; height: 18px; border: 1.2px solid #64748b;
  border-radius: 50%; font-size: 10px; font-weight: 700; margin-right: 8px; }
.date { color: var(--muted); font-size: 12px; font-variant-numeric: tabular-nums; white-space: nowrap; }
.artefact { color: var(--muted); font-size: 12px; word-break: break-all; }
.two-col { display: grid; grid-template-columns: 1fr 1fr; gap: 8px 28px; margin-top: 14px; font-size: 14px; }
ul.plain { margin: 0; padding-left: 18px; }
ul.plain li { margin: 3px 0; }
table { border-collapse: collapse; width: 100%; font-size: 14px; margin-top: 6px; }
th { text-align: left; font-size: 11px; font-weight: 600; letter-spacing: .06em; text-transform: uppercase; color: var(--muted);
  border-bottom: 2px solid var(--line); padding: 6px 10px; }
td { border-bottom: 1px solid var(--line); padding: 9px 10px; vertical-align: top; }
tr { break-inside: avoid; }
td.rank { font-weight: 700; color: var(--muted); width: 2em; }
.nowrap { white-space: nowrap; }
.status { display: inline-block; font-size: 12px; font-weight: 600; padding: 2px 10px; border-radius: 999px; white-space: nowrap;
  background: #f3f4f6; color: #374151; }
.status.in-progress, .status.adapt { background: #dbeafe; color: #1e40af; }
.status.done, .status.adopt { background: #d1fae5; color: #065f46; }
.status.paused, .status.abandon { background: #fef3c7; color: #92400e; }
.status.planned { background: #f3f4f6; color: #374151; }
.stage-grid { display: grid; grid-template-columns: 1fr 1fr; gap: 18px 32px; }
.element { break-inside: avoid; }
.element figure.chart { margin-top: 2px; }
.signal { margin: 10px 0 0; padding: 8px 12px; border-radius: 8px; background: #f5f3ff; color: #4c1d95; font-size: 14px; }
.signal.none { background: #f9fafb; color: var(--muted); }
.signal[data-rule="trend"] { background: #fffbeb; color: #92400e; }
.pdsa-grid { display: grid; grid-template-columns: 1fr 1fr; gap: 16px; margin-top: 24px; }
.card { border: 1px solid var(--line); border-top: 5px solid; border-radius: 10px; padding: 14px 18px; break-inside: avoid; }
.card p { margin: 0 0 8px; white-space: pre-line; }
.card p.sub { margin: 8px 0 2px; font-size: 12px; font-weight: 600; color: var(--muted); }
.card h4 { display: flex; align-items: center; gap: 10px; font-size: 15px; color: var(--ink); }
.card.plan { border-top-color: #2563eb; } .card.do { border-top-color: #0891b2; }
.card.study { border-top-color: #7c3aed; } .card.act { border-top-color: #059669; }
.problem { margin: 16px 0; padding: 12px 16px; border: 1px solid #fecaca; border-left: 5px solid #dc2626; border-radius: 8px;
  background: #fef2f2; color: #7f1d1d; font-size: 14px; }
.problem ul { margin: 6px 0 0; padding-left: 20px; }
.empty { padding: 24px; background: var(--paper); border-radius: 12px; border: 1px dashed var(--line); }
footer { margin-top: 32px; color: var(--muted); font-size: 12px; text-align: center; }
@media (max-width: 760px) {
  .stage-grid, .pdsa-grid, .two-col { grid-template-columns: 1fr; }
  section.doc { padding: 20px; }
}
@media print {
  body { background: #fff; font-size: 12px; }
  main { max-width: none; padding: 0; }
  nav.toc { display: none; }
  section.doc { border: none; box-shadow: none; padding: 0; margin: 0; break-before: page; }
  section.doc:first-of-type { break-before: auto; }
  figure, .card, .stat, .element, blockquote { break-inside: avoid; }
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_utc_days() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(-1), "1969-12-31");
        assert_eq!(date(951_782_400_000), "2000-02-29");
        assert_eq!(date(1_791_241_200_000), "2026-10-05");
        for days in [-800_000, -1, 0, 59, 10_957, 20_000, 2_000_000] {
            let (y, m, d) = crate::utc::civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn ticks_are_round_and_cover_the_values() {
        let (lo, hi, ticks) = nice_ticks(15.0, 90.0);
        assert_eq!((lo, hi), (0.0, 100.0));
        assert_eq!(ticks, vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        let (lo, hi, _) = nice_ticks(48.0, 68.0);
        assert!(lo <= 48.0 && hi >= 68.0);
        let (lo, hi, ticks) = nice_ticks(7.0, 7.0);
        assert!(lo < 7.0 && hi > 7.0 && !ticks.is_empty());
    }

    fn ticks_for(days: &[i64]) -> Vec<String> {
        let points: Vec<Point> = days
            .iter()
            .map(|d| Point {
                x: d * DAY + 3_600_000,
                y: 1.0,
            })
            .collect();
        let refs: Vec<&Point> = points.iter().collect();
        let (lo, hi) = (points[0].x, points[points.len() - 1].x);
        let frame = Frame {
            size: Size::WIDE,
            x0: lo,
            x1: hi,
            y0: 0.0,
            y1: 1.0,
        };
        let ticks = time_ticks(&frame, &refs);
        assert!(ticks.iter().all(|t| (lo..=hi).contains(t)), "{ticks:?}");
        ticks.into_iter().map(date).collect()
    }

    #[test]
    fn time_ticks_label_few_dates_or_the_calendar() {
        // Few, far apart: the points' own dates.
        assert_eq!(
            ticks_for(&[20_000, 20_030, 20_060]),
            ["2024-10-04", "2024-11-03", "2024-12-03"]
        );
        // Many over three weeks: weekly days.
        let daily: Vec<i64> = (20_000..20_021).collect();
        let ticks = ticks_for(&daily);
        assert!((2..=8).contains(&ticks.len()), "{ticks:?}");
        // Many over a year and a half: the first of months, evenly stepped.
        let monthly: Vec<i64> = (0..40).map(|i| 20_000 + i * 14).collect();
        let ticks = ticks_for(&monthly);
        assert!((2..=9).contains(&ticks.len()), "{ticks:?}");
        assert!(ticks.iter().all(|t| t.ends_with("-01")), "{ticks:?}");
    }

    #[test]
    fn escaping_covers_the_five_characters() {
        assert_eq!(
            esc(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
