//! `--calibrate` and `--dump`: what unrelated audio scores. Windows of
//! 1–10 s cut from every indexed track are looked up with the track's
//! group hidden, windows of the unindexed tracks next to the corpus as they
//! are, and the manifest's negative clips; per length, the quantiles of the
//! best candidate's `1 − 2·BER` are what the matcher's chance model
//! (`auscout_core::matcher::chance`) is fitted to. `--dump` writes every
//! verified candidate, so a model can be fitted offline without lookups.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use auscout_core::matcher::{self, FrameSource, LookupParams, Verdict};
use auscout_core::TrackId;
use auscout_fingerprint::audiohash::{budget_toggle_bits, hop_length};
use auscout_fingerprint::{Fingerprint, HashOptions};

use super::cache::fingerprint_all;
use super::corpus::{group_of, Corpus, Hiding};
use super::manifest::Query;
use crate::output::csv_field;

/// Query lengths in hashes: a clip of 1, 2, 3, 5 or 10 s at 6,000 Hz has
/// `(6000·s − 2048) / 64 − 1` = 60, 154, 248, 435 or 903 hashes; 91, 185,
/// 279, 466 and 935 (the lengths of the first fit) stay for comparison.
const CAL_LENGTHS: [usize; 10] = [60, 91, 154, 185, 248, 279, 435, 466, 903, 935];
/// Windows skip the first 10 s and the last 20 s of a track, as the bench's
/// clips do (intros and fades are often near-silent).
const SKIP_HEAD: usize = 940;
const SKIP_TAIL: usize = 1875;

/// Per query length: (similarity, frames, score) of each lookup's best candidate.
type Samples = HashMap<usize, Vec<(f64, u64, f64)>>;

/// What the calibration looks up against, and how queries are hashed.
pub struct Calibration<'a> {
    pub src: &'a Corpus,
    /// The corpus directory; unindexed tracks are in its sibling `negatives`.
    pub corpus_dir: &'a Path,
    /// The queries' options: windows get the toggles a clip of their length gets.
    pub opts: &'a HashOptions,
    pub params: LookupParams,
    pub cache: Option<&'a Path>,
}

impl Calibration<'_> {
    /// Looks every window up; returns the quantile tables in Markdown.
    pub fn run(
        &self,
        queries: &[Query],
        qprints: &[Result<Fingerprint, String>],
        dump: &mut Dump,
    ) -> String {
        let src = self.src;
        let widths = toggles_by_width(&src.files, self.opts, self.cache);
        // 1. Windows of every indexed track (its own fingerprint and toggles)
        // with every track of its group hidden.
        let mut out_of_group: Samples = HashMap::new();
        for (k, name) in src.names.iter().enumerate() {
            let id = k as TrackId + 1;
            let view = Hiding {
                src,
                hidden: src.group_ids(group_of(name)),
            };
            let w = Windows {
                set: "out_of_group",
                name,
                names: &src.names,
                step: 188,
                opts: self.opts,
            };
            let toggles = |bits: u32| widths.get(&bits).and_then(|t| t.get(k)).map(Vec::as_slice);
            w.run(
                &view,
                src.hashes_of(id),
                &toggles,
                &self.params,
                &mut out_of_group,
                dump,
            );
        }
        // 2. The unindexed tracks next to the corpus, against everything.
        let mut unindexed: Samples = HashMap::new();
        let neg_files = negatives(self.corpus_dir);
        let fixed = HashOptions {
            probe_budget: 0,
            ..self.opts.clone()
        };
        let neg_widths = toggles_by_width(&neg_files, self.opts, self.cache);
        for (k, (file, fp)) in neg_files
            .iter()
            .zip(fingerprint_all(&neg_files, &fixed, self.cache))
            .enumerate()
        {
            let Ok(fp) = fp else { continue };
            let w = Windows {
                set: "unindexed",
                name: &file.to_string_lossy(),
                names: &src.names,
                step: 47,
                opts: self.opts,
            };
            let toggles = |bits: u32| {
                neg_widths
                    .get(&bits)
                    .and_then(|t| t.get(k))
                    .map(Vec::as_slice)
            };
            w.run(
                src,
                &fp.hashes,
                &toggles,
                &self.params,
                &mut unindexed,
                dump,
            );
        }
        // 3. The manifest's own negative clips (through a codec, as users send).
        let mut manifest: Samples = HashMap::new();
        for (q, fp) in queries.iter().zip(qprints) {
            if let (false, Ok(fp)) = (q.positive, fp) {
                if let Ok(v) =
                    matcher::lookup_candidates(src, &fp.hashes, &fp.toggles, &self.params)
                {
                    dump.write(
                        "manifest_neg",
                        &q.clip,
                        &q.length,
                        &q.distortion,
                        "",
                        None,
                        &src.names,
                        &v,
                    );
                    manifest
                        .entry(q.length.parse().unwrap_or(0))
                        .or_default()
                        .push(best_of(&v));
                }
            }
        }
        let mut o = String::new();
        for (title, samples) in [
            (
                "other groups' indexed tracks (windows, length in hashes)",
                out_of_group,
            ),
            ("unindexed tracks (windows, length in hashes)", unindexed),
            (
                "the manifest's negative clips (length in seconds)",
                manifest,
            ),
        ] {
            let _ = writeln!(
                o,
                "\n### calibration: best candidate of unrelated audio — {title}\n"
            );
            let _ = writeln!(o, "| length | n | frames p50 | s p50 | s p90 | s p99 | s p99.5 | s max | score p99 | score max | ≥ 0.25 |");
            let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|---|---|");
            let mut lens: Vec<_> = samples.keys().copied().collect();
            lens.sort_unstable();
            for len in lens {
                quantile_row(
                    &mut o,
                    &len.to_string(),
                    samples.get(&len).cloned().unwrap_or_default(),
                );
            }
        }
        o
    }
}

/// The unindexed tracks: the files of the corpus's sibling `negatives`.
pub fn negatives(corpus_dir: &Path) -> Vec<PathBuf> {
    let dir = corpus_dir.with_file_name("negatives");
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Toggle bits of a `len`-frame query under `opts`.
fn query_bits(len: usize, opts: &HashOptions) -> u32 {
    budget_toggle_bits(
        len,
        opts.toggle_bits,
        opts.probe_budget,
        opts.max_toggle_bits,
    )
}

/// The whole-file toggles of `files` at every width a calibration window gets
/// (`result[&bits][k]` for `files[k]`; empty when a file failed).
fn toggles_by_width(
    files: &[PathBuf],
    opts: &HashOptions,
    cache: Option<&Path>,
) -> HashMap<u32, Vec<Vec<u32>>> {
    let mut widths: Vec<u32> = CAL_LENGTHS.iter().map(|&l| query_bits(l, opts)).collect();
    widths.sort_unstable();
    widths.dedup();
    widths
        .into_iter()
        .map(|bits| {
            let fixed = HashOptions {
                toggle_bits: bits,
                probe_budget: 0,
                ..opts.clone()
            };
            let t = fingerprint_all(files, &fixed, cache)
                .into_iter()
                .map(|fp| fp.map(|fp| fp.toggles).unwrap_or_default())
                .collect();
            (bits, t)
        })
        .collect()
}

/// Windows of one unrelated track, looked up at every calibration length.
struct Windows<'a> {
    set: &'a str,
    name: &'a str,
    names: &'a [String],
    /// Frames between window starts.
    step: usize,
    /// The queries' options (the toggle width of each window length).
    opts: &'a HashOptions,
}

impl Windows<'_> {
    fn run<'t, S: FrameSource + Sync>(
        &self,
        src: &S,
        hashes: &[u32],
        toggles_at: &dyn Fn(u32) -> Option<&'t [u32]>,
        params: &LookupParams,
        out: &mut Samples,
        dump: &mut Dump,
    ) {
        for &len in &CAL_LENGTHS {
            let toggles = toggles_at(query_bits(len, self.opts)).unwrap_or_default();
            let mut at = SKIP_HEAD;
            while at + len + SKIP_TAIL <= hashes.len() {
                if let (Some(q), Some(t)) = (hashes.get(at..at + len), toggles.get(at..at + len)) {
                    if let Ok(v) = matcher::lookup_candidates(src, q, t, params) {
                        let query = format!("{}@{at}", self.name);
                        dump.write(
                            self.set,
                            &query,
                            &len.to_string(),
                            "clean",
                            "",
                            None,
                            self.names,
                            &v,
                        );
                        out.entry(len).or_default().push(best_of(&v));
                    }
                }
                at += self.step;
            }
        }
    }
}

/// `--dump FILE`: every verified candidate of every lookup, one CSV line each.
pub struct Dump(Option<(PathBuf, BufWriter<fs::File>)>);

impl Dump {
    pub const HEADER: &'static str =
        "set,query,length_s,distortion,truth,candidate,position,offset_ok,frames,bit_errors,votes";

    /// A dump to `path`, or none.
    pub fn create(path: Option<&Path>) -> Result<Dump, String> {
        let Some(path) = path else {
            return Ok(Dump(None));
        };
        let err = |e: std::io::Error| format!("{}: {e}", path.display());
        let mut w = BufWriter::new(fs::File::create(path).map_err(err)?);
        writeln!(w, "{}", Self::HEADER).map_err(err)?;
        Ok(Dump(Some((path.to_owned(), w))))
    }

    pub fn is_open(&self) -> bool {
        self.0.is_some()
    }

    /// The candidates `v` of one lookup; `truth_pos`: where a positive
    /// clip starts in its track, seconds.
    #[allow(clippy::too_many_arguments)]
    pub fn write(
        &mut self,
        set: &str,
        query: &str,
        length: &str,
        distortion: &str,
        truth: &str,
        truth_pos: Option<f64>,
        names: &[String],
        v: &[Verdict],
    ) {
        let Some((_, w)) = self.0.as_mut() else {
            return;
        };
        let hop = hop_length(auscout_core::defaults::SAMPLE_RATE) as f64
            / f64::from(auscout_core::defaults::SAMPLE_RATE);
        for d in v {
            let name = usize::try_from(d.id - 1)
                .ok()
                .and_then(|i| names.get(i))
                .map_or("", |s| s.as_str());
            let offset_ok = truth_pos.is_some_and(|t| (d.position as f64 * hop - t).abs() <= 0.5);
            // A failed dump line only loses a diagnostic; finish reports the error.
            let _ = writeln!(
                w,
                "{set},{},{length},{distortion},{},{},{},{},{},{},{}",
                csv_field(query),
                csv_field(truth),
                csv_field(name),
                d.position,
                u8::from(offset_ok),
                d.frames,
                d.bit_errors,
                d.votes
            );
        }
    }

    pub fn finish(self) -> Result<(), String> {
        match self.0 {
            Some((path, mut w)) => w.flush().map_err(|e| format!("{}: {e}", path.display())),
            None => Ok(()),
        }
    }
}

/// (similarity, frames, score) of the best verified candidate.
fn best_of(v: &[Verdict]) -> (f64, u64, f64) {
    v.iter()
        .map(|d| (d.similarity(), d.frames, d.score))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .unwrap_or((0.0, 0, 0.0))
}

fn quantile_row(o: &mut String, label: &str, mut v: Vec<(f64, u64, f64)>) {
    if v.is_empty() {
        return;
    }
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let at = |n: usize, p: f64| ((n - 1) as f64 * p).round() as usize;
    let q = |p: f64| v.get(at(v.len(), p)).map_or(0.0, |x| x.0);
    let mut frames: Vec<u64> = v.iter().map(|x| x.1).collect();
    frames.sort_unstable();
    let over = v.iter().filter(|x| x.2 >= 0.25).count();
    let mut scores: Vec<f64> = v.iter().map(|x| x.2).collect();
    scores.sort_by(f64::total_cmp);
    let sq = |p: f64| scores.get(at(scores.len(), p)).copied().unwrap_or(0.0);
    let _ = writeln!(
        o,
        "| {label} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.2}% |",
        v.len(),
        frames.get(frames.len() / 2).copied().unwrap_or(0),
        q(0.5),
        q(0.9),
        q(0.99),
        q(0.995),
        q(1.0),
        sq(0.99),
        sq(1.0),
        100.0 * over as f64 / v.len() as f64
    );
}
