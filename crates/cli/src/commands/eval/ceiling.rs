//! `--ceiling`: how far the search falls short of the fingerprint. Every
//! positive clip the chain missed is verified at its true alignment (the
//! manifest's track and offset), as if the votes had proposed it: that
//! score is the best any search over these hashes can give the clip. Per
//! distortion and length: the clips, those found, and the recall a search
//! that always proposed the true alignment would reach at the lookup's
//! threshold and at the fallbacks' minimum score.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use auscout_core::matcher::verify_alignment;
use auscout_core::TrackId;
use auscout_fingerprint::Fingerprint;

use super::corpus::Corpus;
use super::manifest::{Answer, Query};

/// One cell of the table: clips, found, reachable at the threshold and at
/// the fallbacks' minimum, the missed clips' scores at their alignment.
#[derive(Default)]
struct Cell {
    clips: usize,
    found: usize,
    at_threshold: usize,
    at_min_score: usize,
    missed: Vec<f64>,
}

/// The table in Markdown.
pub fn ceiling_table(
    corpus: &Corpus,
    queries: &[Query],
    prints: &[Result<Fingerprint, String>],
    answers: &[Answer],
    threshold: f64,
    min_score: f64,
) -> String {
    let mut cells: BTreeMap<(String, u64), Cell> = BTreeMap::new();
    for ((q, fp), a) in queries.iter().zip(prints).zip(answers) {
        let (Some(offset), Ok(fp)) = (q.offset_s.filter(|_| q.positive), fp) else {
            continue;
        };
        let cell = cells
            .entry((q.distortion.clone(), (q.seconds() * 1000.0).round() as u64))
            .or_default();
        cell.clips += 1;
        let score = if a.matched == q.track {
            cell.found += 1;
            f64::INFINITY
        } else {
            let id = corpus.names.iter().position(|n| *n == q.track);
            let track = id.map_or(&[][..], |k| corpus.hashes_of(k as TrackId + 1));
            let position = (offset / fp.hop_seconds()).round() as i64;
            let s = verify_alignment(&fp.hashes, track, position).map_or(0.0, |v| v.score);
            cell.missed.push(s);
            s
        };
        cell.at_threshold += usize::from(score >= threshold);
        cell.at_min_score += usize::from(score >= min_score);
    }
    let pct = |n: usize, of: usize| 100.0 * n as f64 / of.max(1) as f64;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "| distortion | clip | clips | found % | reachable at {threshold} % | reachable at {min_score} % | missed clips' scores at their alignment |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|");
    for ((dist, ms), c) in &mut cells {
        c.missed.sort_by(f64::total_cmp);
        let scores: Vec<String> = c.missed.iter().map(|s| format!("{s:.2}")).collect();
        let _ = writeln!(
            o,
            "| {dist} | {} s | {} | {:.0} | {:.0} | {:.0} | {} |",
            *ms as f64 / 1000.0,
            c.clips,
            pct(c.found, c.clips),
            pct(c.at_threshold, c.clips),
            pct(c.at_min_score, c.clips),
            scores.join(" ")
        );
    }
    o
}
