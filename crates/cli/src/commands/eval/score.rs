//! Scoring answers against the manifest. A positive clip is right when its
//! best match is the track it was cut from; its offset is right within
//! 0.5 s of where it was cut. A negative clip (unrelated audio) is a false
//! positive when anything matches it.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::manifest::{Answer, Query};

/// How far a reported offset may be from the truth and still count.
const OFFSET_TOLERANCE_S: f64 = 0.5;

/// The counts of one cell (a distortion at a clip length).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cell {
    pub clips: usize,
    pub right: usize,
    pub offset_right: usize,
    pub wrong_track: usize,
}

impl Cell {
    fn add(&mut self, other: Cell) {
        self.clips += other.clips;
        self.right += other.right;
        self.offset_right += other.offset_right;
        self.wrong_track += other.wrong_track;
    }

    /// Top-1 recall in percent.
    pub fn recall(&self) -> Option<f64> {
        (self.clips > 0).then(|| 100.0 * self.right as f64 / self.clips as f64)
    }
}

/// The scores of one run.
#[derive(Debug, Default)]
pub struct Score {
    /// Distortions in the manifest's order.
    pub distortions: Vec<String>,
    /// Clip lengths of the positives, ascending, as the manifest writes them.
    pub lengths: Vec<String>,
    cells: HashMap<(String, String), Cell>,
    /// Per length of the negatives: (clips, false positives), ascending.
    negatives: Vec<(String, usize, usize)>,
    /// Lookup times, ascending.
    times_ms: Vec<f64>,
    /// Manifest clips the results do not mention.
    pub missing: usize,
}

impl Score {
    /// Scores `answer(query)` for every query; `None`: no answer line.
    pub fn new<'a>(queries: &[Query], answer: impl Fn(usize) -> Option<&'a Answer>) -> Score {
        let mut s = Score::default();
        let mut negatives: HashMap<String, (usize, usize)> = HashMap::new();
        let mut lengths: Vec<(f64, String)> = Vec::new();
        let none = Answer::default();
        for (i, q) in queries.iter().enumerate() {
            let a = answer(i).unwrap_or_else(|| {
                s.missing += 1;
                &none
            });
            if let Some(ms) = a.ms {
                s.times_ms.push(ms);
            }
            if !q.positive {
                let n = negatives.entry(q.length.clone()).or_default();
                n.0 += 1;
                n.1 += usize::from(!a.matched.is_empty());
                continue;
            }
            if !s.distortions.contains(&q.distortion) {
                s.distortions.push(q.distortion.clone());
            }
            if !lengths.iter().any(|(_, l)| *l == q.length) {
                lengths.push((q.seconds(), q.length.clone()));
            }
            let right = a.matched == q.track;
            let offset_right = right
                && matches!((a.offset_s, q.offset_s),
                    (Some(got), Some(truth)) if (got - truth).abs() <= OFFSET_TOLERANCE_S);
            s.cells
                .entry((q.distortion.clone(), q.length.clone()))
                .or_default()
                .add(Cell {
                    clips: 1,
                    right: usize::from(right),
                    offset_right: usize::from(offset_right),
                    wrong_track: usize::from(!right && !a.matched.is_empty()),
                });
        }
        lengths.sort_by(|a, b| a.0.total_cmp(&b.0));
        s.lengths = lengths.into_iter().map(|(_, l)| l).collect();
        let mut neg: Vec<_> = negatives.into_iter().map(|(l, (n, f))| (l, n, f)).collect();
        neg.sort_by(|a, b| seconds(&a.0).total_cmp(&seconds(&b.0)));
        s.negatives = neg;
        s.times_ms.sort_by(f64::total_cmp);
        s
    }

    pub fn cell(&self, distortion: &str, length: &str) -> Cell {
        self.cells
            .get(&(distortion.to_owned(), length.to_owned()))
            .copied()
            .unwrap_or_default()
    }

    /// Every positive together.
    pub fn total(&self) -> Cell {
        let mut t = Cell::default();
        for c in self.cells.values() {
            t.add(*c);
        }
        t
    }

    /// (clips, false positives) over every negative.
    pub fn false_positives(&self) -> (usize, usize) {
        self.negatives
            .iter()
            .fold((0, 0), |(n, f), x| (n + x.1, f + x.2))
    }

    /// Recall against clip length (seconds, percent) for one distortion.
    pub fn series(&self, distortion: &str) -> Vec<(f64, f64)> {
        self.lengths
            .iter()
            .filter_map(|l| Some((seconds(l), self.cell(distortion, l).recall()?)))
            .collect()
    }

    /// The tables and summary lines, in Markdown.
    pub fn render(&self, name: &str) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "### {name}: top-1 recall (%) by distortion and clip length\n"
        );
        let heads: Vec<String> = self.lengths.iter().map(|l| format!("{l} s")).collect();
        let _ = writeln!(o, "| distortion | {} |", heads.join(" | "));
        let _ = writeln!(o, "|---|{}", "---|".repeat(self.lengths.len()));
        for d in &self.distortions {
            let row: Vec<String> = self
                .lengths
                .iter()
                .map(|l| {
                    self.cell(d, l)
                        .recall()
                        .map_or("-".to_owned(), |r| format!("{r:.0}"))
                })
                .collect();
            let _ = writeln!(o, "| {d} | {} |", row.join(" | "));
        }
        let t = self.total();
        let _ = writeln!(
            o,
            "\nall positives: {}/{} right ({:.1}%), offset within {OFFSET_TOLERANCE_S} s: {}/{}, wrong track: {}",
            t.right,
            t.clips,
            t.recall().unwrap_or(0.0),
            t.offset_right,
            t.right,
            t.wrong_track
        );
        let (n, f) = self.false_positives();
        let per: Vec<String> = self
            .negatives
            .iter()
            .map(|(l, n, f)| format!("{l} s: {f}/{n}"))
            .collect();
        let _ = writeln!(
            o,
            "negatives: {f}/{n} false positives{}{}",
            if per.is_empty() { "" } else { ", " },
            per.join(", ")
        );
        if let (Some(&max), false) = (self.times_ms.last(), self.times_ms.is_empty()) {
            let at = |p: f64| {
                let i = ((self.times_ms.len() - 1) as f64 * p) as usize;
                self.times_ms.get(i).copied().unwrap_or(max)
            };
            let _ = writeln!(
                o,
                "lookup ms: median {:.2}, p95 {:.2}, max {max:.2}",
                median(&self.times_ms),
                at(0.95)
            );
        }
        if self.missing > 0 {
            let _ = writeln!(o, "clips with no answer line: {}", self.missing);
        }
        o
    }
}

fn seconds(length: &str) -> f64 {
    length.parse().unwrap_or(0.0)
}

fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => sorted[n / 2],
        _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(clip: &str, positive: bool, track: &str, len: &str, dist: &str) -> Query {
        Query {
            clip: clip.into(),
            positive,
            track: track.into(),
            offset_s: Some(10.0),
            length: len.into(),
            distortion: dist.into(),
        }
    }

    fn answer(matched: &str, offset_s: f64) -> Answer {
        Answer {
            matched: matched.into(),
            offset_s: Some(offset_s),
            score: Some(0.5),
            ms: Some(1.0),
        }
    }

    #[test]
    fn cells_count_right_wrong_and_offsets() {
        let queries = [
            query("a", true, "t1", "2", "clean"),
            query("b", true, "t1", "2", "clean"),
            query("c", true, "t2", "10", "clean"),
            query("d", true, "t2", "2", "noise"),
            query("e", false, "", "2", "clean"),
            query("f", false, "", "2", "clean"),
        ];
        let answers = [
            Some(answer("t1", 10.2)),
            Some(answer("t1", 30.0)),
            Some(answer("t9", 10.0)),
            None,
            Some(answer("t1", 0.0)),
            Some(Answer::default()),
        ];
        let s = Score::new(&queries, |i| answers[i].as_ref());
        assert_eq!(s.lengths, ["2", "10"], "lengths sort as numbers");
        assert_eq!(s.distortions, ["clean", "noise"]);
        let c = s.cell("clean", "2");
        assert_eq!(
            (c.clips, c.right, c.offset_right, c.wrong_track),
            (2, 2, 1, 0)
        );
        assert_eq!(s.cell("clean", "10").wrong_track, 1);
        assert_eq!(s.cell("noise", "2").recall(), Some(0.0));
        assert_eq!(s.cell("noise", "10").recall(), None);
        assert_eq!(s.false_positives(), (2, 1));
        assert_eq!(s.missing, 1);
        assert_eq!(s.series("clean"), [(2.0, 100.0), (10.0, 0.0)]);
        let table = s.render("x");
        assert!(table.contains("| clean | 100 | 0 |"), "{table}");
        assert!(table.contains("| noise | 0 | - |"), "{table}");
        assert!(
            table.contains("all positives: 2/4 right (50.0%)"),
            "{table}"
        );
        assert!(
            table.contains("negatives: 1/2 false positives, 2 s: 1/2"),
            "{table}"
        );
        assert!(table.contains("clips with no answer line: 1"), "{table}");
    }
}
