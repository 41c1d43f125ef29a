//! `domain::render`: the report's charts hold exactly the documents' data, its SVG
//! draws that data, and the page is self-contained and escapes what people wrote.

use coachsync_core::domain::{
    self, Chart, ChartKind, Direction, DriverDiagram, Measure, Measurement, Point, Report, Rubric,
    RubricSelfAssessment, Signal, SignalKind, WorkPlan, run_rules,
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

/// The x map of a chart's first series, fitted on its drawn points.
fn check_drawn_x(svg: &str, chart: &Chart) -> Linear {
    let drawn = polyline(svg, &chart.series[0].name);
    let xs: Vec<(f64, f64)> = chart.series[0]
        .points
        .iter()
        .zip(&drawn)
        .map(|(p, d)| (p.x as f64, d.0))
        .collect();
    Linear::fit(&xs)
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

// ----- run chart rules --------------------------------------------------------------------

const DAY: i64 = 86_400_000;

/// One value a day from day 0.
fn daily(values: &[f64]) -> Vec<Point> {
    values
        .iter()
        .enumerate()
        .map(|(day, &y)| Point {
            x: day as i64 * DAY,
            y,
        })
        .collect()
}

fn signal(kind: SignalKind, direction: Direction, length: usize, days: (i64, i64)) -> Signal {
    Signal {
        kind,
        direction,
        length,
        from: days.0 * DAY,
        to: days.1 * DAY,
    }
}

/// The median and signals of a series, as the report finds them.
fn rules(values: &[f64]) -> (f64, Vec<Signal>) {
    let median = run_rules::median(values).expect("values");
    (median, run_rules::signals(&daily(values), median))
}

#[test]
fn six_points_below_the_median_are_a_shift() {
    // Sorted 2 3 3 3 4 4 | 8 8 8 9 9 9: median 6. Days 3 to 8 are all below it; the
    // runs above are three long; the longest run down (9 8 3, or 4 3 2) is three.
    let (median, found) = rules(&[8., 9., 8., 3., 4., 3., 2., 4., 3., 9., 8., 9.]);
    assert_eq!(median, 6.0);
    assert_eq!(
        found,
        [signal(SignalKind::Shift, Direction::Below, 6, (3, 8))]
    );
}

#[test]
fn five_points_on_one_side_are_not_a_shift() {
    // Sorted 2 3 3 4 4 5 | 7 8 8 9 9 9: median 6. Days 2 to 6 are below it and days
    // 7 to 11 above: two runs of five. Nor does it go one way five times in a row
    // (4 3 2 and 2 4 9 are the longest).
    let (median, found) = rules(&[5., 9., 3., 4., 3., 2., 4., 9., 8., 9., 7., 8.]);
    assert_eq!(median, 6.0);
    assert_eq!(found, []);
}

#[test]
fn five_rising_points_are_a_trend_and_a_repeated_value_neither_counts_nor_breaks_it() {
    // 1 2 2 3 4 6 from day 1: the repeated 2 (day 3) is skipped, leaving five points
    // going up, days 1 to 6. Median 3.5: no run of six on one side.
    let (median, found) = rules(&[5., 1., 2., 2., 3., 4., 6., 5.]);
    assert_eq!(median, 3.5);
    assert_eq!(found, [signal(SignalKind::Trend, Direction::Up, 5, (1, 6))]);
    // Without the repeat the same five points are the same trend.
    let (_, found) = rules(&[5., 1., 2., 3., 4., 6., 5.]);
    assert_eq!(found, [signal(SignalKind::Trend, Direction::Up, 5, (1, 5))]);
}

#[test]
fn four_points_going_one_way_are_not_a_trend() {
    // 3 4 5 6 go up (four), then the series turns; median 4, which day 1 sits on.
    let (median, found) = rules(&[3., 4., 5., 6., 2., 7., 1.]);
    assert_eq!(median, 4.0);
    assert_eq!(found, []);
}

#[test]
fn points_on_the_median_neither_count_toward_a_shift_nor_break_it() {
    // Sorted: 1 1 2 2 3 5 [5] 6 6 7 7 8 9: median 5. Above it: days 3, 4, 6, 8, 9 and
    // 10, with days 5 and 7 on it; six points, so a shift. Broken at the median it
    // would be runs of two and four. The series also rises five points (days 0 to 4)
    // and falls five (days 8 to 12).
    let (median, found) = rules(&[1., 2., 3., 6., 7., 5., 8., 5., 9., 7., 6., 2., 1.]);
    assert_eq!(median, 5.0);
    assert_eq!(
        found,
        [
            signal(SignalKind::Shift, Direction::Above, 6, (3, 10)),
            signal(SignalKind::Trend, Direction::Up, 5, (0, 4)),
            signal(SignalKind::Trend, Direction::Down, 5, (8, 12)),
        ]
    );
}

#[test]
fn a_long_run_is_one_signal_and_a_turning_point_belongs_to_both_trends() {
    // Up six (days 0 to 5), down five from the peak (days 5 to 9).
    let (_, found) = rules(&[1., 2., 3., 4., 5., 9., 8., 7., 6., 0.]);
    let trends: Vec<&Signal> = found
        .iter()
        .filter(|s| s.kind == SignalKind::Trend)
        .collect();
    assert_eq!(
        trends,
        [
            &signal(SignalKind::Trend, Direction::Up, 6, (0, 5)),
            &signal(SignalKind::Trend, Direction::Down, 5, (5, 9)),
        ]
    );
    // Too few points for either rule: nothing.
    assert_eq!(rules(&[1., 2., 3., 4.]).1, []);
}

#[test]
fn the_pdsa_example_shows_no_signal_yet() {
    // 48 52 50 57 55 | 61 63 60 66 68: five below the median of 58.5, then five
    // above; it rises, falls and rises again, never five in a row.
    let report = render(&examples());
    let [chart] = &charts_of(&report, ChartKind::RunChart)[..] else {
        panic!("one run chart");
    };
    assert_eq!(chart.signals, []);
    assert!(report.html.contains("No signal yet"));
}

// ----- measures, driver diagrams and focus elements ------------------------------------------

#[test]
fn a_measure_gets_a_run_chart_with_its_median_and_signals_marked() {
    let value = example("measure");
    let measure: Measure = domain::read(&value).unwrap();
    let report = render(&[(doc_id(5), value)]);
    let [chart] = &charts_of(&report, ChartKind::RunChart)[..] else {
        panic!("one measure, one run chart");
    };
    assert_eq!(chart.document, doc_id(5));
    assert_eq!(
        chart.title,
        "Run chart: 4th graders on track in guided reading (%)"
    );
    let points: Vec<Point> = measure
        .points
        .iter()
        .map(|p| Point {
            x: p.at,
            y: p.value,
        })
        .collect();
    assert_eq!(chart.series[0].points, points);
    // 41 44 40 43 42 45 47 | 49 50 52 51 54 55 56, weekly: the median is 48, the
    // first seven weeks are below it and the last seven above; weeks 5 to 10
    // (42 45 47 49 50 52) rise six in a row.
    assert_eq!(chart.median, Some(48.0));
    let week = |n: usize| measure.points[n - 1].at;
    assert_eq!(
        chart.signals,
        [
            Signal {
                kind: SignalKind::Shift,
                direction: Direction::Below,
                length: 7,
                from: week(1),
                to: week(7)
            },
            Signal {
                kind: SignalKind::Shift,
                direction: Direction::Above,
                length: 7,
                from: week(8),
                to: week(14)
            },
            Signal {
                kind: SignalKind::Trend,
                direction: Direction::Up,
                length: 6,
                from: week(5),
                to: week(10)
            },
        ]
    );
    let svg = svg_of(&report.html, chart);
    let y = check_drawn(svg, chart, 0).expect("the values differ");
    y.check(48.0, reference_y(svg, "ref-median"));
    // The signals are said in words, and the annotations are numbered on the chart
    // and listed with their dates.
    assert!(report.html.contains(
        "<b>Signal</b> shift: 7 points in a row below the median, from 2026-09-07 to 2026-10-19."
    ));
    assert!(report.html.contains(
        "<b>Signal</b> trend: 6 points in a row going up, from 2026-10-05 to 2026-11-09."
    ));
    assert_eq!(svg.matches("<g class=\"note\">").count(), 2);
    // Each signal is marked on the chart over the points it counted: a shift as a
    // band on its side of the median, a trend as a stroke under its points.
    assert_eq!(svg.matches("<rect class=\"signal-band shift\"").count(), 2);
    let x = check_drawn_x(svg, chart);
    let band = |n: usize, name: &str| -> f64 {
        let at = svg
            .match_indices("<rect class=\"signal-band shift\"")
            .nth(n)
            .unwrap()
            .0;
        attribute(&svg[at..], "signal-band", name)
            .unwrap()
            .parse()
            .unwrap()
    };
    let median_y = reference_y(svg, "ref-median");
    // Below: from the median line down, weeks 1 to 7.
    assert!((band(0, "y") - median_y).abs() < 0.2);
    assert!((band(0, "x") + 7.0 - x.at(week(1) as f64)).abs() < 0.2);
    assert!((band(0, "x") + band(0, "width") - 7.0 - x.at(week(7) as f64)).abs() < 0.2);
    // Above: from the top down to the median line, weeks 8 to 14.
    assert!((band(1, "y") + band(1, "height") - median_y).abs() < 0.2);
    assert!((band(1, "x") + 7.0 - x.at(week(8) as f64)).abs() < 0.2);
    let trend = attribute(svg, "<polyline class=\"signal-trend\"", "points").unwrap();
    let drawn = polyline(svg, "Measured");
    assert_eq!(
        trend,
        drawn[4..10]
            .iter()
            .map(|(x, y)| format!("{x:.1},{y:.1}"))
            .collect::<Vec<_>>()
            .join(" "),
        "weeks 5 to 10"
    );
    for a in measure.annotations.unwrap() {
        assert!(report.html.contains(&esc(&a.text)), "{}", a.text);
    }
    assert!(report.html.contains(&esc(&measure.definition)));
    check_self_contained(&report.html);
}

#[test]
fn a_measure_without_points_says_so() {
    let mut value = example("measure");
    value["points"] = json!([]);
    let report = render(&[(doc_id(5), value)]);
    assert!(report.charts.is_empty());
    assert!(report.html.contains("No measurements yet."));
}

#[test]
fn a_driver_diagram_is_a_tree_whose_change_ideas_link_to_their_cycles() {
    let mut diagram = example("driver-diagram");
    // The first change idea is tested by the cycle in this report.
    diagram["changeIdeas"][0]["cycles"] = json!([doc_id(3).url().to_string()]);
    let parsed: DriverDiagram = domain::read(&diagram).unwrap();
    let report = render(&[(doc_id(4), diagram), (doc_id(3), example("pdsa-cycle"))]);
    let html = &report.html;
    assert!(report.charts.iter().all(|c| c.document == doc_id(3)));
    let tree_start = html.find("<ol class=\"tree\">").expect("a tree");
    let tree = &html[tree_start..tree_start + html[tree_start..].find("</ol>").unwrap()];
    // Each driver once, under its primary; each idea under every secondary it acts on.
    let mut last = 0;
    for primary in &parsed.primary {
        let at = tree.find(&esc(&primary.text)).expect("the primary driver");
        assert!(at > last, "in the diagram's order");
        last = at;
        for secondary in parsed.secondaries_of(&primary.id) {
            let s = tree
                .find(&esc(&secondary.text))
                .expect("the secondary driver");
            assert!(s > at);
        }
    }
    let uses: usize = parsed
        .change_ideas
        .iter()
        .map(|c| c.secondaries.len())
        .sum();
    assert_eq!(tree.matches("<li class=\"idea\">").count(), uses);
    assert_eq!(
        tree.matches("<li class=\"secondary\">").count(),
        parsed.secondary.len()
    );
    // The cycle in the report is a link to its section, the others are named as
    // absent.
    let cycle: domain::PdsaCycle = domain::read(&example("pdsa-cycle")).unwrap();
    assert!(tree.contains(&format!("<a href=\"#doc-2\">{}</a>", esc(&cycle.title))));
    let absent: usize = parsed
        .change_ideas
        .iter()
        .skip(1)
        .map(|c| c.cycles.as_ref().map_or(0, Vec::len) * c.secondaries.len())
        .sum();
    assert_eq!(tree.matches("(not in this report)").count(), absent);
    assert!(html.contains("id=\"doc-2\""));
    assert!(html.contains(&esc(&parsed.aim)));
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    check_self_contained(html);
}

#[test]
fn a_driver_diagram_read_without_validation_says_what_hangs_loose() {
    let mut diagram = example("driver-diagram");
    diagram["secondary"][0]["primary"] = json!("p-gone");
    let report = render(&[(doc_id(4), diagram)]);
    assert_eq!(report.problems.len(), 1, "{:?}", report.problems);
    assert!(report.problems[0].contains("\"p-gone\""));
}

#[test]
fn focus_elements_show_their_goals_and_stage_history_and_nothing_is_a_score() {
    let value = example("rubric-self-assessment");
    let sa: RubricSelfAssessment = domain::read(&value).unwrap();
    let rubric: Rubric = domain::read(&starter_rubric()).unwrap();
    let report = render(&[(doc_id(2), value)]);
    let html = &report.html;
    let focus = sa.focus.clone().unwrap();
    let heading = html
        .find("<h3>Focus elements</h3>")
        .expect("a focus section");
    for f in &focus {
        let name = &rubric.element(&f.element).unwrap().name;
        let goal = html.find(&esc(&f.goal)).expect("the goal is shown");
        assert!(goal > heading);
        let chart = report
            .charts
            .iter()
            .find(|c| &c.title == name)
            .unwrap_or_else(|| panic!("a stage history of {name}"));
        assert_eq!(chart.kind, ChartKind::StageHistory);
        let history = sa.history(&f.element);
        assert_eq!(chart.series[0].points.len(), history.len());
        let figure = html
            .find(&format!("id=\"{}\"", chart.id))
            .expect("its figure");
        assert!(goal < figure, "the goal comes before its chart");
    }
    // Every element the example rates is a focus, so there is no other section.
    assert!(!html.contains("Other rated elements"));
    // A growth tool: no totals, sums or averages of stages anywhere.
    let lower = html.to_lowercase();
    let page = lower.replace(
        "a growth tool, not a score: each element's stages are shown over time, and never \
         added up or averaged.",
        "",
    );
    for score in ["total", "average", "mean", "score", "sum"] {
        let said = page.match_indices(score).count();
        assert_eq!(said, 0, "{score:?} appears on the page");
    }
    assert!(html.contains("A growth tool, not a score"));
}

#[test]
fn elements_rated_outside_the_focus_are_charted_after_it() {
    let mut value = example("rubric-self-assessment");
    value["focus"] = json!([value["focus"][0].clone()]);
    let report = render(&[(doc_id(2), value)]);
    let html = &report.html;
    let focus = html.find("<h3>Focus elements</h3>").unwrap();
    let others = html.find("<h3>Other rated elements</h3>").unwrap();
    assert!(focus < others);
    assert_eq!(charts_of(&report, ChartKind::StageHistory).len(), 3);
    assert_eq!(html[focus..others].matches("<figure").count(), 1);
}

#[test]
fn a_work_plan_shows_capacities_who_acts_and_the_change_in_practice() {
    let value = example("work-plan");
    let plan: WorkPlan = domain::read(&value).unwrap();
    let report = render(&[(doc_id(1), value)]);
    let html = &report.html;
    for goal in &plan.goals {
        assert!(html.contains(&esc(goal.capacity.as_deref().unwrap())));
    }
    assert!(html.contains("coach support") && html.contains("leader&#39;s action"));
    let evidence = plan.goals[0].evidence.as_ref().unwrap();
    let with_feedback = evidence.iter().find(|e| e.feedback.is_some()).unwrap();
    assert!(html.contains(&esc(with_feedback.feedback.as_deref().unwrap())));
    assert!(html.contains(&esc(with_feedback.change_in_practice.as_deref().unwrap())));
}
