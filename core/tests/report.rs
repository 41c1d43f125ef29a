//! `domain::render`: the report's charts hold exactly the documents' data, its SVG
//! draws that data, and the page is self-contained and escapes what people wrote.

use coachsync_core::domain::{
    self, Chart, ChartKind, Measurement, Point, Report, Rubric, RubricSelfAssessment, WorkPlan,
};
use coachsync_core::{DocumentId, Error};
use serde_json::{Value, json};

fn doc_id(n: u8) -> DocumentId {
    DocumentId::from_bytes(&[n; 16]).expect("a valid id")
}

fn example(kind: &str) -> Value {
    domain::example(kind).expect("every kind has an example")
}

fn starter_rubric() -> Value {
    domain::starter_definitions()
        .into_iter()
        .find(|d| d.file == "leadership-rubric-v1.json")
        .expect("the starter leadership rubric")
        .value
}

/// The three examples, as a device would hand them over.
fn examples() -> Vec<(DocumentId, Value)> {
    vec![
        (doc_id(1), example("work-plan")),
        (doc_id(2), example("rubric-self-assessment")),
        (doc_id(3), example("pdsa-cycle")),
    ]
}

fn render(documents: &[(DocumentId, Value)]) -> Report {
    domain::render(documents).expect("the documents render")
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn charts_of(report: &Report, kind: ChartKind) -> Vec<&Chart> {
    report.charts.iter().filter(|c| c.kind == kind).collect()
}

/// Measurements oldest first, ties by ID: the order a chart draws them in.
fn in_time_order(mut measurements: Vec<Measurement>) -> Vec<Point> {
    measurements.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.id.cmp(&b.id)));
    measurements
        .iter()
        .map(|m| Point {
            x: m.at,
            y: m.value,
        })
        .collect()
}

/// The `<svg>…</svg>` of the figure with this id.
fn svg_of<'a>(html: &'a str, chart: &Chart) -> &'a str {
    let figure = html
        .find(&format!(
            "<figure class=\"chart {}\" id=\"{}\">",
            class(chart),
            chart.id
        ))
        .unwrap_or_else(|| panic!("no figure {} in the page", chart.id));
    let start = figure + html[figure..].find("<svg").expect("an svg in the figure");
    let end = start + html[start..].find("</svg>").expect("the svg ends") + "</svg>".len();
    &html[start..end]
}

fn class(chart: &Chart) -> &'static str {
    match chart.kind {
        ChartKind::GoalProgress => "progress",
        ChartKind::StageHistory => "stages",
        ChartKind::RunChart => "run",
    }
}

/// The value of attribute `name` in the first tag of `svg` that contains `marker`.
fn attribute<'a>(svg: &'a str, marker: &str, name: &str) -> Option<&'a str> {
    let at = svg.find(marker)?;
    let tag_start = svg[..at + 1].rfind('<')?;
    let tag_end = at + svg[at..].find('>')?;
    let tag = &svg[tag_start..tag_end];
    let key = format!(" {name}=\"");
    let value_start = tag.find(&key)? + key.len();
    let value_end = value_start + tag[value_start..].find('"')?;
    Some(&tag[value_start..value_end])
}

/// The drawn points of a series: its `<polyline>`'s coordinates.
fn polyline(svg: &str, series: &str) -> Vec<(f64, f64)> {
    let points = attribute(svg, &format!("data-series=\"{}\"", esc(series)), "points")
        .unwrap_or_else(|| panic!("no polyline for {series:?} in {svg}"));
    points
        .split_whitespace()
        .map(|pair| {
            let (x, y) = pair.split_once(',').expect("x,y");
            (x.parse().expect("a number"), y.parse().expect("a number"))
        })
        .collect()
}

/// The y coordinate of a horizontal reference line (`ref-median`, `ref-target`, …).
fn reference_y(svg: &str, class: &str) -> f64 {
    attribute(svg, &format!("<line class=\"{class}\""), "y1")
        .unwrap_or_else(|| panic!("no {class} line"))
        .parse()
        .expect("a number")
}

/// A linear map from data to pixels fitted on two points with distinct data, checked
/// against every pair (coordinates are written to 0.1 px).
struct Linear {
    from: f64,
    to: f64,
    slope: f64,
}

impl Linear {
    fn fit(pairs: &[(f64, f64)]) -> Self {
        let (a, b) = pairs
            .iter()
            .flat_map(|a| pairs.iter().map(move |b| (a, b)))
            .max_by(|(a1, b1), (a2, b2)| (b1.0 - a1.0).abs().total_cmp(&(b2.0 - a2.0).abs()))
            .expect("points");
        assert!(b.0 != a.0, "need two distinct values to fit: {pairs:?}");
        let slope = (b.1 - a.1) / (b.0 - a.0);
        let fit = Self {
            from: a.0,
            to: a.1,
            slope,
        };
        for (data, px) in pairs {
            fit.check(*data, *px);
        }
        fit
    }

    fn at(&self, data: f64) -> f64 {
        self.to + (data - self.from) * self.slope
    }

    fn check(&self, data: f64, px: f64) {
        let want = self.at(data);
        assert!(
            (want - px).abs() <= 0.25,
            "{data} is drawn at {px}, the others put it at {want}"
        );
    }
}

/// Check a series' polyline against its points: as many, x growing with time,
/// y falling as the value grows, both linear in the data. Returns the y map.
fn check_drawn(svg: &str, chart: &Chart, series: usize) -> Option<Linear> {
    let data = &chart.series[series];
    let drawn = polyline(svg, &data.name);
    assert_eq!(
        drawn.len(),
        data.points.len(),
        "{}: {}",
        chart.title,
        data.name
    );
    let xs: Vec<(f64, f64)> = data
        .points
        .iter()
        .zip(&drawn)
        .map(|(p, d)| (p.x as f64, d.0))
        .collect();
    let ys: Vec<(f64, f64)> = data
        .points
        .iter()
        .zip(&drawn)
        .map(|(p, d)| (p.y, d.1))
        .collect();
    let distinct = |pairs: &[(f64, f64)]| pairs.iter().any(|p| p.0 != pairs[0].0);
    if distinct(&xs) {
        assert!(Linear::fit(&xs).slope > 0.0, "time runs left to right");
    }
    if distinct(&ys) {
        let fit = Linear::fit(&ys);
        assert!(fit.slope < 0.0, "larger values are drawn higher");
        Some(fit)
    } else {
        None
    }
}

#[test]
fn work_plan_goals_chart_their_progress_in_time_order() {
    let report = render(&examples());
    let plan: WorkPlan = domain::read(&example("work-plan")).unwrap();
    let progress = plan.progress.clone().unwrap();
    let charts = charts_of(&report, ChartKind::GoalProgress);
    let measured: Vec<_> = plan
        .goals
        .iter()
        .filter(|g| progress.iter().any(|m| m.goal.as_ref() == Some(&g.id)))
        .collect();
    assert_eq!(charts.len(), measured.len());
    assert_eq!(charts.len(), 2, "both example goals have progress");

    for (n, goal) in plan.goals.iter().enumerate() {
        let chart = charts
            .iter()
            .find(|c| c.title.starts_with(&format!("Goal {}:", n + 1)))
            .expect("a chart per measured goal");
        assert_eq!(chart.document, doc_id(1));
        let want = in_time_order(
            progress
                .iter()
                .filter(|m| m.goal.as_deref() == Some(&goal.id))
                .cloned()
                .collect(),
        );
        assert_eq!(chart.series.len(), 1);
        assert_eq!(chart.series[0].points, want);
        assert_eq!(chart.target, goal.target);
        assert_eq!(chart.baseline, goal.baseline);
        assert_eq!(chart.median, None);
        assert!(chart.y_labels.is_empty());

        let svg = svg_of(&report.html, chart);
        if let Some(y) = check_drawn(svg, chart, 0) {
            y.check(goal.target.unwrap(), reference_y(svg, "ref-target"));
            y.check(goal.baseline.unwrap(), reference_y(svg, "ref-baseline"));
        }
        assert!(report.html.contains(&esc(&chart.title)));
    }
    // The first goal's values, by hand: the October value comes from a float.
    assert_eq!(
        charts[0].series[0]
            .points
            .iter()
            .map(|p| p.y)
            .collect::<Vec<_>>(),
        vec![21.0, 32.4, 47.1, 52.9]
    );
}

#[test]
fn activities_are_listed_in_priority_order_without_removed_ones() {
    let mut value = example("work-plan");
    value["activities"]["act-dropped"] = json!({
        "title": "Weekly newsletter column on instruction",
        "rank": 0.5,
        "status": "paused",
        "removed": true
    });
    // Moved between the first two by setting only its rank.
    value["activities"]["act-pd-groups"]["rank"] = json!(1.5);
    let plan: WorkPlan = domain::read(&value).unwrap();
    let report = render(&[(doc_id(1), value)]);
    let html = &report.html;
    let positions: Vec<usize> = plan
        .ordered_activities()
        .iter()
        .map(|(_, a)| {
            html.find(&esc(&a.title))
                .unwrap_or_else(|| panic!("{} is listed", a.title))
        })
        .collect();
    assert_eq!(positions.len(), 4);
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert!(
        plan.ordered_activities()[1]
            .1
            .title
            .starts_with("Plan professional learning"),
        "the moved activity is second"
    );
    assert!(
        !html.contains("Weekly newsletter"),
        "a removed activity is not shown"
    );
    for owner_or_cadence in [
        "Dana Whitfield",
        "every six weeks",
        "in progress",
        "planned",
    ] {
        assert!(html.contains(owner_or_cadence), "{owner_or_cadence}");
    }
}

#[test]
fn self_assessment_charts_stage_indices_in_the_rubric_order() {
    let report = render(&examples());
    let sa: RubricSelfAssessment = domain::read(&example("rubric-self-assessment")).unwrap();
    let rubric: Rubric = domain::read(&starter_rubric()).unwrap();
    let labels: Vec<String> = rubric.stages.iter().map(|s| s.label.clone()).collect();
    assert_eq!(
        labels,
        ["pre-initiation", "developing", "implementing", "sustaining"]
    );

    let charts = charts_of(&report, ChartKind::StageHistory);
    // Rated elements, in the rubric's order.
    let rated: Vec<&str> = rubric
        .domains
        .iter()
        .flat_map(|d| &d.elements)
        .filter(|e| sa.ratings.iter().any(|r| r.element == e.id))
        .map(|e| e.name.as_str())
        .collect();
    assert_eq!(
        rated,
        [
            "Observation and feedback",
            "Differentiated professional learning",
            "Hard conversations"
        ]
    );
    let titles: Vec<&str> = charts.iter().map(|c| c.title.as_str()).collect();
    assert_eq!(titles, rated);
    assert!(report.problems.is_empty(), "{:?}", report.problems);

    for chart in charts {
        let element = rubric
            .domains
            .iter()
            .flat_map(|d| &d.elements)
            .find(|e| e.name == chart.title)
            .unwrap();
        let history = sa.history(&element.id);
        let stage = |id: &str| rubric.stage_index(id).unwrap() as f64;
        assert_eq!(chart.document, doc_id(2));
        assert_eq!(chart.y_labels, labels);
        assert_eq!(chart.series.len(), 2);
        assert_eq!(chart.series[0].name, "Current stage");
        assert_eq!(chart.series[1].name, "Target stage");
        let current: Vec<Point> = history
            .iter()
            .map(|r| Point {
                x: r.at,
                y: stage(&r.current),
            })
            .collect();
        let target: Vec<Point> = history
            .iter()
            .map(|r| Point {
                x: r.at,
                y: stage(&r.target),
            })
            .collect();
        assert_eq!(chart.series[0].points, current);
        assert_eq!(chart.series[1].points, target);

        let svg = svg_of(&report.html, chart);
        let fits: Vec<Linear> = (0..2).filter_map(|s| check_drawn(svg, chart, s)).collect();
        // Both series share one stage scale.
        if let [a, b] = &fits[..] {
            for i in 0..labels.len() {
                assert!((a.at(i as f64) - b.at(i as f64)).abs() < 0.25);
            }
        }
        for label in &labels {
            assert!(svg.contains(&format!(">{}</text>", esc(label))), "{label}");
        }
    }
    // By hand: hard conversations went pre-initiation, pre-initiation, developing.
    let hard = report
        .charts
        .iter()
        .find(|c| c.title == "Hard conversations")
        .unwrap();
    let ys: Vec<f64> = hard.series[0].points.iter().map(|p| p.y).collect();
    assert_eq!(ys, [0.0, 0.0, 1.0]);
    let ys: Vec<f64> = hard.series[1].points.iter().map(|p| p.y).collect();
    assert_eq!(ys, [1.0, 1.0, 2.0]);
}

#[test]
fn a_rating_naming_an_unknown_stage_is_shown_on_the_page() {
    let mut sa = example("rubric-self-assessment");
    sa["ratings"][0]["current"] = json!("expert");
    let element = sa["ratings"][0]["element"].as_str().unwrap().to_owned();
    let report = render(&[(doc_id(2), sa.clone())]);

    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(report.problems[0].contains("\"expert\""));
    assert!(report.html.contains("class=\"problem\""));
    assert!(report.html.contains(&esc(&report.problems[0])));

    let rubric: Rubric = domain::read(&starter_rubric()).unwrap();
    let name = &rubric.element(&element).unwrap().name;
    let chart = report.charts.iter().find(|c| &c.title == name).unwrap();
    let ratings = sa["ratings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["element"] == element.as_str())
        .count();
    assert_eq!(chart.series[0].points.len(), ratings - 1, "left out");
    assert_eq!(chart.series[1].points.len(), ratings, "the target is kept");
    assert_eq!(
        polyline(svg_of(&report.html, chart), "Current stage").len(),
        ratings - 1
    );
}

#[test]
fn an_unknown_rubric_is_an_error_on_the_page_and_the_ratings_are_listed() {
    let mut sa = example("rubric-self-assessment");
    sa["rubric"] = json!({"id": "no-such-rubric", "version": 9});
    let report = render(&[(doc_id(2), sa.clone())]);
    assert!(charts_of(&report, ChartKind::StageHistory).is_empty());
    assert_eq!(report.problems.len(), 1);
    assert!(report.problems[0].contains("no-such-rubric"));
    assert!(report.html.contains("class=\"problem\""));
    for rating in sa["ratings"].as_array().unwrap() {
        assert!(report.html.contains(rating["element"].as_str().unwrap()));
    }
}

#[test]
fn a_rubric_among_the_documents_is_charted_against() {
    // The example rubric has its own three-stage scale.
    let rubric = example("rubric");
    let sa = json!({
        "schema": "rubric-self-assessment",
        "schemaVersion": 1,
        "rubric": {"id": rubric["id"], "version": rubric["version"]},
        "leader": "Ana Reyes",
        "ratings": [
            {"id": "b", "at": 1_790_000_000_000_i64, "element": "coaching-norms", "current": "established", "target": "embedded"},
            {"id": "a", "at": 1_780_000_000_000_i64, "element": "coaching-norms", "current": "emerging", "target": "established"}
        ]
    });
    let report = render(&[(doc_id(5), sa), (doc_id(6), rubric)]);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let [chart] = &charts_of(&report, ChartKind::StageHistory)[..] else {
        panic!("one element, one chart");
    };
    assert_eq!(chart.title, "Co-developed norms");
    assert_eq!(chart.y_labels, ["emerging", "established", "embedded"]);
    let current: Vec<(i64, f64)> = chart.series[0].points.iter().map(|p| (p.x, p.y)).collect();
    assert_eq!(
        current,
        [(1_780_000_000_000, 0.0), (1_790_000_000_000, 1.0)],
        "oldest first"
    );
    // The rubric itself gets no section.
    assert!(
        !report
            .html
            .contains("Culture of coaching rubric (draft)</h2>")
    );
}

#[test]
fn the_run_chart_draws_the_measurements_and_their_median() {
    let report = render(&examples());
    let [chart] = &charts_of(&report, ChartKind::RunChart)[..] else {
        panic!("one PDSA cycle, one run chart");
    };
    let cycle: domain::PdsaCycle = domain::read(&example("pdsa-cycle")).unwrap();
    let measurements = cycle.measurements.clone().unwrap();
    assert_eq!(chart.document, doc_id(3));
    assert_eq!(chart.title, "Run chart: exit tickets correct (%)");
    assert_eq!(chart.series[0].points, in_time_order(measurements));
    // Ten values: the mean of the fifth and sixth, 57 and 60.
    assert_eq!(chart.median, Some(58.5));
    assert_eq!(chart.target, None);

    let svg = svg_of(&report.html, chart);
    let y = check_drawn(svg, chart, 0).expect("the values differ");
    y.check(58.5, reference_y(svg, "ref-median"));
    assert!(svg.contains("median 58.5"));
    // Time ticks are UTC dates within the data's span.
    let first = chart.series[0].points.first().unwrap().x;
    let last = chart.series[0].points.last().unwrap().x;
    let ticks: Vec<&str> = svg
        .split("<text class=\"tick\"")
        .skip(1)
        .filter_map(|t| t.split_once('>').map(|(_, rest)| rest))
        .filter_map(|t| t.split_once("</text>").map(|(text, _)| text))
        .filter(|t| t.len() == 10 && t.as_bytes()[4] == b'-' && t.as_bytes()[7] == b'-')
        .collect();
    assert!(ticks.len() >= 2, "{ticks:?}");
    assert!(
        ticks
            .iter()
            .all(|t| *t >= "2026-10-01" && *t <= "2026-10-31")
    );
    assert!(first < last);
    // The dated notes are listed with their values.
    assert!(
        report
            .html
            .contains("Regrouping started the day after each ticket.")
    );
}

fn pdsa(values: &[(i64, f64)]) -> Value {
    let measurements: Vec<Value> = values
        .iter()
        .enumerate()
        .map(|(i, (day, v))| json!({"id": format!("m{i}"), "at": day * 86_400_000, "value": v}))
        .collect();
    json!({
        "schema": "pdsa-cycle",
        "schemaVersion": 1,
        "title": "Small test",
        "changeIdea": "Try it",
        "prediction": "It helps",
        "stage": "do",
        "measurements": measurements
    })
}

#[test]
fn the_median_is_the_middle_value_or_the_mean_of_the_two_middle_ones() {
    for (values, median) in [
        (vec![(3, 7.0)], 7.0),
        (vec![(2, 3.0), (1, 1.0), (3, 2.0)], 2.0),
        (vec![(4, 4.0), (1, 1.0), (3, 3.0), (2, 2.0)], 2.5),
        (
            vec![(1, 10.0), (2, 0.5), (3, 0.25), (4, 10.0), (5, 3.0)],
            3.0,
        ),
        (vec![(1, 1.0), (2, 2.0)], 1.5),
    ] {
        let report = render(&[(doc_id(9), pdsa(&values))]);
        let chart = report.charts.first().expect("a run chart");
        assert_eq!(chart.median, Some(median), "{values:?}");
        // Points in time order, whatever the document's order.
        let mut sorted = values.clone();
        sorted.sort_by_key(|(day, _)| *day);
        let want: Vec<Point> = sorted
            .iter()
            .map(|(day, v)| Point {
                x: day * 86_400_000,
                y: *v,
            })
            .collect();
        assert_eq!(chart.series[0].points, want);
        let svg = svg_of(&report.html, chart);
        if let Some(y) = check_drawn(svg, chart, 0) {
            y.check(median, reference_y(svg, "ref-median"));
        }
    }
    // No measurements: no chart, and the page says so.
    let report = render(&[(doc_id(9), pdsa(&[]))]);
    assert!(report.charts.is_empty());
    assert!(report.html.contains("No measurements yet."));
}

#[test]
fn the_page_is_self_contained_and_escapes_what_people_wrote() {
    const HOSTILE: &str = "<script>alert(1)</script>";
    let mut plan = example("work-plan");
    plan["title"] = json!(HOSTILE);
    plan["goals"][0]["text"] = json!("\"Quoted\" & 'apostrophes' <b>bold</b>");
    plan["activities"]["act-schedule"]["owner"] = json!("<img src=x onerror=alert(2)>");
    let mut sa = example("rubric-self-assessment");
    sa["leader"] = json!(HOSTILE);
    // The latest rating of an element: its evidence is quoted under the chart.
    sa["ratings"][5]["evidence"] = json!("</blockquote><script>alert(3)</script>");
    let mut cycle = example("pdsa-cycle");
    cycle["title"] = json!(HOSTILE);
    cycle["measure"] = json!("score <%>");
    cycle["measurements"][3]["note"] = json!("<svg onload=alert(4)>");
    let report = render(&[(doc_id(1), plan), (doc_id(2), sa), (doc_id(3), cycle)]);
    let html = &report.html;

    let lower = html.to_lowercase();
    assert!(!lower.contains("<script"), "no script, escaped or not");
    assert!(!lower.contains("<img"));
    assert!(!lower.contains("<svg onload"));
    assert!(html.contains("&lt;svg onload=alert(4)&gt;"));
    assert!(html.contains("&lt;/blockquote&gt;&lt;script&gt;alert(3)&lt;/script&gt;"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(
        html.contains("&quot;Quoted&quot; &amp; &#39;apostrophes&#39; &lt;b&gt;bold&lt;/b&gt;")
    );
    assert!(html.contains("&lt;img src=x onerror=alert(2)&gt;"));
    assert!(html.contains("Run chart: score &lt;%&gt;"));
    assert!(!html.contains("<b>bold</b>"));
    // The charts carry the unescaped text as data.
    assert!(
        report
            .charts
            .iter()
            .any(|c| c.title == "Run chart: score <%>")
    );
    check_self_contained(html);
}

#[test]
fn the_examples_render_to_a_page_that_needs_nothing_else() {
    let report = render(&examples());
    check_self_contained(&report.html);
    assert_eq!(
        report.charts.len(),
        2 + 3 + 1,
        "two goals, three elements, one run chart"
    );
    // Every chart's SVG is on the page, once.
    for chart in &report.charts {
        assert_eq!(
            report.html.matches(&format!("id=\"{}\"", chart.id)).count(),
            1
        );
        assert!(svg_of(&report.html, chart).contains("<polyline"));
    }
    // The evidence's artefact link is shown as text only.
    assert!(
        report
            .html
            .contains("drive.example.org/lakeview/feedback-tracker-2026-10")
    );
}

fn check_self_contained(html: &str) {
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains("<style>"));
    let lower = html.to_lowercase();
    for banned in [
        "<script",
        "http://",
        "https://",
        "//cdn",
        "src=\"",
        "<link",
        "@import",
        "url(",
        "@font-face",
        "<iframe",
        "<object",
        "<embed",
    ] {
        assert!(!lower.contains(banned), "the page contains {banned:?}");
    }
    // Links only within the page.
    for href in lower.split("href=\"").skip(1) {
        assert!(href.starts_with('#'), "a link out of the page: {href:.40}");
    }
}

#[test]
fn an_unreadable_document_is_an_error_naming_it() {
    let mut plan = example("work-plan");
    plan["goals"] = json!("all of them");
    let err = domain::render(&[(doc_id(1), plan)]).unwrap_err();
    let Error::InvalidJson(message) = &err else {
        panic!("{err:?}");
    };
    assert!(message.contains(&doc_id(1).url().to_string()), "{message}");
    assert!(message.contains("work-plan"), "{message}");
}

#[test]
fn other_kinds_are_left_out() {
    let report = render(&[
        (doc_id(1), example("observation")),
        (doc_id(2), example("team")),
    ]);
    assert!(report.charts.is_empty());
    assert!(report.html.contains("Nothing to report"));
    check_self_contained(&report.html);
}

#[test]
fn a_measurement_of_no_goal_is_reported_not_charted() {
    let mut plan = example("work-plan");
    plan["progress"]
        .as_array_mut()
        .unwrap()
        .push(json!({"id": "p-x", "at": 1_797_000_000_000_i64, "goal": "goal-gone", "value": 3}));
    let report = render(&[(doc_id(1), plan)]);
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(report.problems[0].contains("goal-gone"));
    assert!(report.html.contains("class=\"problem\""));
    let total: usize = report.charts.iter().map(|c| c.series[0].points.len()).sum();
    assert_eq!(total, 5, "the five example measurements");
}
