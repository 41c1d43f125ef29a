//! The run chart rules: a run chart's median and the non-random patterns around it
//! that the rules call signals. Every chart of a measure over time (a `measure`, a
//! PDSA cycle's measurements) is read with the same rules.

use super::report::Point;

/// Which rule a signal comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignalKind {
    /// Six or more points in a row on one side of the median.
    Shift,
    /// Five or more points in a row all going up, or all going down.
    Trend,
}

/// Which way a signal points.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// A shift above the median.
    Above,
    /// A shift below the median.
    Below,
    /// A trend going up.
    Up,
    /// A trend going down.
    Down,
}

/// One run of points a rule marks as a signal.
#[derive(Clone, Debug, PartialEq)]
pub struct Signal {
    /// The rule.
    pub kind: SignalKind,
    /// Its direction.
    pub direction: Direction,
    /// How many points the rule counted: points on the median (a shift) and repeats
    /// of the previous value (a trend) are not counted.
    pub length: usize,
    /// The time of its first counted point, ms since 1970.
    pub from: i64,
    /// The time of its last counted point, ms since 1970.
    pub to: i64,
}

/// The fewest points in a row on one side of the median that make a shift.
pub const SHIFT: usize = 6;
/// The fewest points in a row going one way that make a trend.
pub const TREND: usize = 5;

/// The median of the finite values: the middle one, or the mean of the two middle ones.
pub fn median(values: &[f64]) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    })
}

/// The signals of `points` (in time order) around `median`: every shift, then every
/// trend, each in time order.
///
/// A point on the median neither counts toward a shift nor breaks it; a value equal
/// to the one before neither counts toward a trend nor breaks it. A trend's last
/// point is the next trend's first, as the point where the direction turns belongs
/// to both.
pub fn signals(points: &[Point], median: f64) -> Vec<Signal> {
    let mut found = shifts(points, median);
    found.extend(trends(points));
    found
}

fn shifts(points: &[Point], median: f64) -> Vec<Signal> {
    let mut found = Vec::new();
    let mut run: Vec<&Point> = Vec::new();
    let mut above = false;
    let mut flush = |run: &[&Point], above: bool| {
        if let (Some(first), Some(last)) = (run.first(), run.last())
            && run.len() >= SHIFT
        {
            found.push(Signal {
                kind: SignalKind::Shift,
                direction: if above {
                    Direction::Above
                } else {
                    Direction::Below
                },
                length: run.len(),
                from: first.x,
                to: last.x,
            });
        }
    };
    for p in points.iter().filter(|p| p.y.is_finite() && p.y != median) {
        let side = p.y > median;
        if side != above {
            flush(&run, above);
            run.clear();
            above = side;
        }
        run.push(p);
    }
    flush(&run, above);
    found
}

fn trends(points: &[Point]) -> Vec<Signal> {
    let mut distinct: Vec<&Point> = Vec::new();
    for p in points.iter().filter(|p| p.y.is_finite()) {
        if distinct.last().is_none_or(|last| last.y != p.y) {
            distinct.push(p);
        }
    }
    let mut found = Vec::new();
    let mut start = 0;
    let mut up: Option<bool> = None;
    let mut close = |from: usize, to: usize, up: bool| {
        if to - from + 1 >= TREND {
            found.push(Signal {
                kind: SignalKind::Trend,
                direction: if up { Direction::Up } else { Direction::Down },
                length: to - from + 1,
                from: distinct[from].x,
                to: distinct[to].x,
            });
        }
    };
    for i in 1..distinct.len() {
        let rising = distinct[i].y > distinct[i - 1].y;
        if up != Some(rising) {
            if let Some(up) = up {
                close(start, i - 1, up);
            }
            start = i - 1;
            up = Some(rising);
        }
    }
    if let Some(up) = up {
        close(start, distinct.len() - 1, up);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0]), Some(3.0));
        assert_eq!(median(&[5.0, 1.0, 3.0]), Some(3.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN, 2.0]), Some(2.0));
    }

    #[test]
    fn a_flat_or_alternating_series_has_no_signal() {
        let points = |values: &[f64]| -> Vec<Point> {
            values
                .iter()
                .enumerate()
                .map(|(i, &y)| Point { x: i as i64, y })
                .collect()
        };
        assert_eq!(signals(&points(&[5.0; 12]), 5.0), []);
        let zigzag = [5.0, 6.0, 5.0, 6.0, 5.0, 6.0, 5.0, 6.0];
        assert_eq!(signals(&points(&zigzag), 5.5), []);
    }
}
