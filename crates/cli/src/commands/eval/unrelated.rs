//! `--unrelated STEP`: false positives of the whole recognition chain.
//! Windows every STEP seconds of (a) the unindexed tracks next to the
//! corpus and (b) every indexed track with its group hidden are decoded,
//! cut from the audio and looked up as played and undone by every fallback
//! warp. Per part and length: how many windows the first pass and the
//! fallbacks would answer at several minimum scores, and the highest scores.
//! The "fit" part (lincity and wesnoth files) is what a minimum score is
//! chosen on, the "check" part (every other file) what confirms it.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use auscout_client::recognise::{Clip, Fallbacks};
use auscout_core::defaults::THRESHOLD;
use auscout_core::matcher::{self, LookupParams};
use auscout_fingerprint::{Fingerprint, HashOptions};

use super::calibrate::negatives;
use super::corpus::{file_name, group_of, Corpus, Hiding};

/// Clip lengths of the check, in seconds.
const LENGTHS: [f64; 6] = [1.0, 2.0, 3.0, 5.0, 7.0, 10.0];
/// Minimum scores of a fallback's match the table counts windows over.
const LEVELS: [f64; 6] = [0.25, 0.30, 0.35, 0.40, 0.45, 0.50];

/// Best score of one window: first pass, over the warps, deep pass.
type Best = (f64, f64, f64);

/// Runs the check; returns its table in Markdown.
pub fn unrelated_chain(
    src: &Corpus,
    corpus_dir: &Path,
    opts: &HashOptions,
    params: &LookupParams,
    fallbacks: &Fallbacks,
    step: f64,
) -> Result<String, String> {
    if step <= 0.0 {
        return Err("--unrelated: the step must be positive".into());
    }
    let negs = negatives(corpus_dir);
    if negs.is_empty() {
        return Err(format!(
            "{}: no unindexed tracks next to the corpus",
            corpus_dir.with_file_name("negatives").display()
        ));
    }
    // (file, the group hidden while its windows are looked up)
    let mut tracks: Vec<(PathBuf, Option<&str>)> = negs.into_iter().map(|p| (p, None)).collect();
    tracks.extend(
        src.files
            .iter()
            .zip(&src.names)
            .map(|(f, n)| (f.clone(), Some(group_of(n)))),
    );
    tracks.sort();
    let params = LookupParams {
        threshold: 0.0,
        limit: Some(1),
        ..params.clone()
    };
    // (part, length) -> per window: best of the first pass, of the warps,
    // of the deep pass
    let mut seen: BTreeMap<(&str, u32), Vec<Best>> = BTreeMap::new();
    for (path, hide) in &tracks {
        let (samples, rate) = decode_all(path)?;
        let view = Hiding {
            src,
            hidden: hide.map(|g| src.group_ids(g)).unwrap_or_default(),
        };
        let name = file_name(path);
        let part = if name.starts_with("lincity") || name.starts_with("wesnoth") {
            "fit"
        } else {
            "check"
        };
        let best_with = |fp: &Fingerprint, params: &LookupParams| {
            matcher::lookup(&view, &fp.hashes, &fp.toggles, params)
                .ok()
                .and_then(|m| m.first().map(|m| m.score))
                .unwrap_or(0.0)
        };
        let best = |fp: &Fingerprint| best_with(fp, &params);
        let seconds = samples.len() as f64 / f64::from(rate);
        for &len in &LENGTHS {
            let mut at = 10.0;
            while at + len + 20.0 <= seconds {
                let lo = (at * f64::from(rate)) as usize;
                let hi = ((at + len) * f64::from(rate)) as usize;
                at += step;
                let Some(window) = samples.get(lo..hi) else {
                    break;
                };
                let Ok(clip) = Clip::from_samples(window, rate, opts) else {
                    continue;
                };
                let first = best(clip.fingerprint());
                let warped = fallbacks
                    .warps
                    .iter()
                    .filter_map(|&w| clip.fingerprint_warped(w).ok())
                    .map(|fp| best(&fp))
                    .fold(0.0, f64::max);
                let deep = fallbacks.deep.map_or(0.0, |d| {
                    let p = LookupParams {
                        limit: Some(d.verified),
                        ..params.clone()
                    };
                    best_with(&clip.fingerprint_for_noise(d.probe_budget), &p)
                });
                seen.entry((part, len as u32))
                    .or_default()
                    .push((first, warped, deep));
            }
        }
    }
    let mut o = String::new();
    let _ = writeln!(
        o,
        "\n### unrelated music through the whole chain (windows every {step} s)\n"
    );
    let _ = writeln!(
        o,
        "| part | length | windows | first pass ≥ {THRESHOLD} | fallbacks ≥ {} | max first | max warp | max deep |",
        LEVELS.map(|l| format!("{l:.2}")).join(" / ")
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|");
    for ((part, len), v) in &seen {
        let first = v.iter().filter(|x| x.0 >= THRESHOLD).count();
        let by_level: Vec<String> = LEVELS
            .iter()
            .map(|&l| {
                v.iter()
                    .filter(|x| x.0 < THRESHOLD && x.1.max(x.2) >= l)
                    .count()
                    .to_string()
            })
            .collect();
        let max = |f: fn(&Best) -> f64| v.iter().map(f).fold(0.0, f64::max);
        let _ = writeln!(
            o,
            "| {part} | {len} s | {} | {first} | {} | {:.3} | {:.3} | {:.3} |",
            v.len(),
            by_level.join(" / "),
            max(|x| x.0),
            max(|x| x.1),
            max(|x| x.2)
        );
    }
    Ok(o)
}

/// A whole file as mono samples at its own rate.
fn decode_all(path: &Path) -> Result<(Vec<f32>, u32), String> {
    let err = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
    let mut d = auscout_fingerprint::decode::Decoder::open(path).map_err(|e| err(&e))?;
    let (mut all, mut rate) = (Vec::new(), 0);
    while let Some(chunk) = d.next_chunk().map_err(|e| err(&e))? {
        if rate == 0 {
            rate = chunk.sample_rate;
        }
        if chunk.sample_rate == rate {
            all.extend_from_slice(chunk.samples);
        }
    }
    Ok((all, rate.max(1)))
}
