//! Offline accuracy harness: fingerprint the bench corpus, index it in an
//! in-memory `auscout_core::Index` (the module's own engine),
//! look up every clip of a query manifest and write the `results.csv` that
//! `bench/score.py` scores — no Redis involved, so matcher changes are
//! measured in seconds.
//!
//! ```text
//! cargo run --release -p auscout-client --example eval -- \
//!     [--corpus /tmp/bench/corpus/index] [--queries /tmp/bench/q/queries.csv] \
//!     [--out results.csv] [--cache /tmp/auscout-eval] [--toggles 4] [--probe-budget 16000] \
//!     [--max-toggle-bits 9] \
//!     [--threshold 0.25] [--ids add-output.txt] \
//!     [--calibrate] [--dump candidates.csv] [--no-score]
//! ```
//!
//! Tracks get ids 1, 2, … in file-name order; `--ids` takes them (and the
//! insertion order) from the output of `auscoutclient add` (`PATH: id N`
//! lines) instead, so the index is the one that run built in Redis: candidates
//! that tie on votes are ranked by slot, so the order can decide a clip whose
//! true alignment ties with chance ones.
//!
//! Fingerprints are cached in `--cache` (one small binary file per audio file,
//! keyed by path, size and mtime), so only the first run decodes audio.
//!
//! `--calibrate` also measures what unrelated audio scores: windows of 1–10 s
//! cut from every indexed track are looked up with that track hidden from the
//! index (leave-one-out), and windows of the unindexed negative tracks next to
//! the corpus are looked up as they are. It prints, per length, the quantiles
//! of the best candidate's `1 − 2·BER` — the numbers `core/src/matcher/chance.rs`
//! is fitted to. `--dump` writes every verified candidate of every lookup
//! (manifest clips, and calibration windows with `--calibrate`) to a CSV, so a
//! chance model can be fitted offline without re-running lookups.

use std::collections::HashMap;
use std::fs;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Instant, UNIX_EPOCH};

use auscout_client::recognise::{fallback, Clip, Deep, Fallbacks, Warp};
use auscout_core::matcher::{self, FrameSource, LookupParams, Verdict};
use auscout_core::{Index, TrackId};
use auscout_fingerprint::audiohash::budget_toggle_bits;
use auscout_fingerprint::{fingerprint_file, Fingerprint, HashOptions};

const HOP: f64 = 64.0;
const SR: f64 = 6000.0;

struct Args {
    corpus: PathBuf,
    queries: PathBuf,
    out: PathBuf,
    cache: PathBuf,
    toggles: u32,
    /// `HashOptions::probe_budget` of the queries (0: exactly `toggles` bits).
    probe_budget: u64,
    /// The server's `auscout.max-toggle-bits` the queries are made for (9, as
    /// in the shipped redis.conf; 8 is the module's default).
    max_toggle_bits: u32,
    threshold: f64,
    calibrate: bool,
    score: bool,
    dump: Option<PathBuf>,
    /// `limit` of the dump's and the calibration's lookups: more than 50
    /// verifies more candidates (to study candidate selection offline).
    dump_limit: Option<usize>,
    /// `auscoutclient add` output giving each track's id.
    ids: Option<PathBuf>,
    /// The fallbacks tried when a clip as played finds nothing.
    fallbacks: Fallbacks,
    /// `--unrelated STEP`: windows every STEP seconds of unrelated music
    /// through the whole chain (first pass and every fallback).
    unrelated: Option<f64>,
}

/// `--warps none` or `--warps PITCH:TEMPO,…` (`1.07` alone: a speed).
fn parse_warps(spec: &str) -> Result<Vec<Warp>, String> {
    if spec == "none" {
        return Ok(Vec::new());
    }
    spec.split(',')
        .map(|w| {
            let num = |v: &str| v.parse::<f64>().map_err(|e| format!("--warps {w}: {e}"));
            match w.split_once(':') {
                Some((p, t)) => Ok(Warp {
                    pitch: num(p)?,
                    tempo: num(t)?,
                }),
                None => Ok(Warp::speed(num(w)?)),
            }
        })
        .collect()
}

/// `--deep none` or `--deep BUDGET:VERIFIED`.
fn parse_deep(spec: &str) -> Result<Option<Deep>, String> {
    if spec == "none" {
        return Ok(None);
    }
    let (b, v) = spec
        .split_once(':')
        .ok_or_else(|| format!("--deep {spec}: BUDGET:VERIFIED or none"))?;
    Ok(Some(Deep {
        probe_budget: b.parse().map_err(|e| format!("--deep {spec}: {e}"))?,
        verified: v.parse().map_err(|e| format!("--deep {spec}: {e}"))?,
    }))
}

fn parse_args() -> Result<Args, String> {
    let mut a = Args {
        corpus: "/tmp/bench/corpus/index".into(),
        queries: "/tmp/bench/q/queries.csv".into(),
        out: "results.csv".into(),
        cache: "/tmp/auscout-eval".into(),
        toggles: HashOptions::default().toggle_bits,
        probe_budget: HashOptions::default().probe_budget,
        max_toggle_bits: auscout_fingerprint::audiohash::MAX_TOGGLE_BITS,
        threshold: 0.25,
        calibrate: false,
        score: true,
        dump: None,
        dump_limit: LookupParams::default().limit,
        ids: None,
        fallbacks: Fallbacks::default(),
        unrelated: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--corpus" => a.corpus = value()?.into(),
            "--queries" => a.queries = value()?.into(),
            "--out" => a.out = value()?.into(),
            "--cache" => a.cache = value()?.into(),
            "--toggles" => a.toggles = value()?.parse().map_err(|e| format!("--toggles: {e}"))?,
            "--probe-budget" => {
                a.probe_budget = value()?
                    .parse()
                    .map_err(|e| format!("--probe-budget: {e}"))?
            }
            "--max-toggle-bits" => {
                a.max_toggle_bits = value()?
                    .parse()
                    .map_err(|e| format!("--max-toggle-bits: {e}"))?
            }
            "--threshold" => {
                a.threshold = value()?.parse().map_err(|e| format!("--threshold: {e}"))?
            }
            "--calibrate" => a.calibrate = true,
            "--no-score" => a.score = false,
            "--dump" => a.dump = Some(value()?.into()),
            "--ids" => a.ids = Some(value()?.into()),
            "--warps" => a.fallbacks.warps = parse_warps(&value()?)?,
            "--deep" => a.fallbacks.deep = parse_deep(&value()?)?,
            "--unrelated" => {
                a.unrelated = Some(value()?.parse().map_err(|e| format!("--unrelated: {e}"))?)
            }
            "--fallback-min-score" => {
                a.fallbacks.min_score = value()?
                    .parse()
                    .map_err(|e| format!("--fallback-min-score: {e}"))?
            }
            "--dump-limit" => {
                a.dump_limit = Some(value()?.parse().map_err(|e| format!("--dump-limit: {e}"))?)
            }
            other => return Err(format!("unknown argument {other}")),
        }
    }
    Ok(a)
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("eval: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), String> {
    let args = parse_args()?;
    fs::create_dir_all(&args.cache).map_err(|e| format!("{}: {e}", args.cache.display()))?;
    // Queries as `auscoutclient lookup` makes them; indexed tracks (and the
    // calibration windows cut from them) with fixed-width toggles.
    let opts = HashOptions {
        toggle_bits: args.toggles,
        probe_budget: args.probe_budget,
        max_toggle_bits: args.max_toggle_bits,
        ..HashOptions::default()
    };
    let fixed = HashOptions {
        probe_budget: 0,
        ..opts.clone()
    };

    let mut files: Vec<PathBuf> = fs::read_dir(&args.corpus)
        .map_err(|e| format!("{}: {e}", args.corpus.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    if let Some(ids) = &args.ids {
        let ids = read_ids(ids)?;
        // Files the add run did not list go last, in name order.
        files.sort_by_key(|f| ids.get(f).copied().unwrap_or(TrackId::MAX));
    }
    let t0 = Instant::now();
    let prints = fingerprint_all(&files, &fixed, &args.cache);
    let mut src = Corpus::default();
    let mut names = Vec::new();
    let mut indexed_files = Vec::new();
    for (path, fp) in files.iter().zip(prints) {
        match fp {
            Ok(fp) => {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                src.add(names.len() as TrackId + 1, &name, &fp.hashes)?;
                names.push(name);
                indexed_files.push(path.clone());
            }
            Err(e) => eprintln!("eval: skipping {}: {e}", path.display()),
        }
    }
    eprintln!(
        "indexed {} tracks, {} frames in {:.1} s",
        names.len(),
        src.index.frame_count(),
        t0.elapsed().as_secs_f64()
    );

    let rows = read_manifest(&args.queries)?;
    let clips: Vec<PathBuf> = rows.iter().map(|r| PathBuf::from(&r.clip)).collect();
    let t1 = Instant::now();
    let qprints = fingerprint_all(&clips, &opts, &args.cache);
    eprintln!(
        "fingerprinted {} clips in {:.1} s",
        clips.len(),
        t1.elapsed().as_secs_f64()
    );

    // The engine refuses masks over its cap, as the server configured with
    // `--max-toggle-bits` would.
    let params = LookupParams {
        threshold: args.threshold,
        max_toggle_bits: args.max_toggle_bits,
        ..LookupParams::default()
    };
    let out = fs::File::create(&args.out).map_err(|e| format!("{}: {e}", args.out.display()))?;
    let mut out = BufWriter::new(out);
    let w = |e: std::io::Error| format!("{}: {e}", args.out.display());
    writeln!(out, "clip,match,offset_s,score,ms,pitch,tempo,passes,deep").map_err(w)?;
    let mut dump = match &args.dump {
        Some(p) => {
            let mut f =
                BufWriter::new(fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()))?);
            writeln!(f, "set,query,length_s,distortion,truth,candidate,position,offset_ok,frames,bit_errors,votes")
                .map_err(|e| format!("{}: {e}", p.display()))?;
            Dump(Some(f))
        }
        None => Dump(None),
    };
    let dump_params = LookupParams {
        threshold: 0.0,
        limit: args.dump_limit,
        ..params.clone()
    };
    for (row, fp) in rows.iter().zip(&qprints) {
        if let (Ok(fp), Some(_)) = (fp, &dump.0) {
            if let Ok(v) = matcher::lookup_candidates(&src, &fp.hashes, &fp.toggles, &dump_params) {
                let truth_pos = row.offset_s.parse().ok().filter(|_| row.kind == "pos");
                dump.write(
                    &row.kind,
                    &row.clip,
                    &row.length,
                    &row.distortion,
                    &row.track,
                    truth_pos,
                    &names,
                    &v,
                );
            }
        }
        let mut warp = Warp::NONE;
        let mut passes = 1;
        let mut deep_hit = false;
        let (name, offset, score, ms) = match fp {
            Ok(fp) => {
                let t = Instant::now();
                let mut got = src
                    .index
                    .lookup(&fp.hashes, &fp.toggles, &params)
                    .map_err(|e| format!("{}: {e}", row.clip))?;
                if got.is_empty()
                    && (!args.fallbacks.warps.is_empty() || args.fallbacks.deep.is_some())
                {
                    let found = Clip::open(Path::new(&row.clip), &opts)
                        .map_err(EvalError::from)
                        .and_then(|clip| {
                            fallback(&clip, &args.fallbacks, |fp, attempt| {
                                let p = LookupParams {
                                    limit: attempt.verified,
                                    ..params.clone()
                                };
                                src.index
                                    .lookup(&fp.hashes, &fp.toggles, &p)
                                    .map_err(|e| EvalError(e.to_string()))
                            })
                        })
                        .map_err(|e| format!("{}: {}", row.clip, e.0))?;
                    got = found.matches;
                    warp = found.warp;
                    deep_hit = found
                        .passes
                        .last()
                        .is_some_and(|p| p.attempt.verified.is_some())
                        && !got.is_empty();
                    passes += found.passes.len();
                }
                let ms = t.elapsed().as_secs_f64() * 1e3;
                match got.first() {
                    Some(m) => {
                        let name = usize::try_from(m.id - 1)
                            .ok()
                            .and_then(|i| names.get(i))
                            .cloned()
                            .unwrap_or_default();
                        (
                            name,
                            format!("{:.3}", m.position as f64 * HOP / SR),
                            format!("{:.4}", m.score),
                            ms,
                        )
                    }
                    None => (String::new(), String::new(), String::new(), ms),
                }
            }
            Err(e) => {
                eprintln!("eval: {}: {e}", row.clip);
                (String::new(), String::new(), String::new(), 0.0)
            }
        };
        writeln!(
            out,
            "{},{},{},{},{:.3},{},{},{passes},{}",
            csv_field(&row.clip),
            csv_field(&name),
            offset,
            score,
            ms,
            warp.pitch,
            warp.tempo,
            u8::from(deep_hit)
        )
        .map_err(w)?;
    }
    out.flush().map_err(w)?;
    drop(out);

    if let Some(step) = args.unrelated {
        unrelated_chain(&src, &names, &indexed_files, &args, &opts, step)?;
    }
    if args.calibrate {
        let cal = Calibration {
            src: &src,
            names: &names,
            files: &indexed_files,
            args: &args,
            opts: &opts,
        };
        cal.run(&rows, &qprints, &mut dump);
    }
    if let Some(mut w) = dump.0.take() {
        w.flush().map_err(|e| format!("dump: {e}"))?;
    }
    if args.score {
        let status = Command::new("python3")
            .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/score.py"))
            .arg(&args.queries)
            .arg(&args.out)
            .status()
            .map_err(|e| format!("score.py: {e}"))?;
        if !status.success() {
            return Err("score.py failed".into());
        }
    }
    Ok(())
}

/// An error of the fallback lookups, as text.
struct EvalError(String);

impl From<auscout_fingerprint::FingerprintError> for EvalError {
    fn from(e: auscout_fingerprint::FingerprintError) -> Self {
        EvalError(e.to_string())
    }
}

// ---------------------------------------------------------------- calibration

/// Query lengths in hashes: a clip of 1, 2, 3, 5 or 10 s has
/// `(6000·s − 2048) / 64 − 1` = 60, 154, 248, 435 or 903 hashes; 91, 185, 279,
/// 466 and 935 (1–10 s of hashes, the lengths first calibrated) stay for
/// comparison.
const CAL_LENGTHS: [usize; 10] = [60, 91, 154, 185, 248, 279, 435, 466, 903, 935];
/// Windows skip the first 10 s and the last 20 s of a track, as the bench's
/// clips do (intros and fades are often near-silent).
const SKIP_HEAD: usize = 940;
const SKIP_TAIL: usize = 1875;

type Samples = HashMap<usize, Vec<(f64, u64, f64)>>;

/// What the calibration looks up against, and how queries are hashed.
struct Calibration<'a> {
    src: &'a Corpus,
    names: &'a [String],
    /// The audio file of each indexed track (`names[k]` ↔ `files[k]`).
    files: &'a [PathBuf],
    args: &'a Args,
    /// The queries' options: windows get the toggles a clip of their length gets.
    opts: &'a HashOptions,
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
    cache: &Path,
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

impl Calibration<'_> {
    fn run(&self, rows: &[Row], qprints: &[Result<Fingerprint, String>], dump: &mut Dump) {
        let Calibration {
            src,
            names,
            files,
            args,
            opts,
        } = *self;
        let widths = toggles_by_width(files, opts, &args.cache);
        let params = LookupParams {
            threshold: 0.0,
            limit: args.dump_limit,
            max_toggle_bits: args.max_toggle_bits,
            ..LookupParams::default()
        };
        // 1. Group-out: windows of every indexed track (its own fingerprint and
        // toggles) with every track of its group (the name before "__", one game)
        // hidden, since a game's soundtrack reuses its own material.
        let group = |name: &str| name.split("__").next().unwrap_or_default().to_owned();
        let mut out_of_group: Samples = HashMap::new();
        for (k, name) in names.iter().enumerate() {
            let id = k as TrackId + 1;
            let g = group(name);
            let hidden: Vec<TrackId> = (1..=names.len() as TrackId)
                .filter(|&i| names.get(i as usize - 1).map(|n| group(n)).as_ref() == Some(&g))
                .collect();
            let view = Hiding { src, hidden };
            let w = Windows {
                set: "out_of_group",
                name,
                names,
                step: 188,
                opts,
            };
            let toggles = |bits: u32| widths.get(&bits).and_then(|t| t.get(k)).map(Vec::as_slice);
            w.run(
                &view,
                src.hashes_of(id),
                &toggles,
                &params,
                &mut out_of_group,
                dump,
            );
        }
        // 2. The unindexed negative tracks next to the corpus, against everything.
        let mut unindexed: Samples = HashMap::new();
        let neg_dir = args.corpus.with_file_name("negatives");
        let mut neg_files: Vec<PathBuf> = fs::read_dir(&neg_dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        neg_files.sort();
        let fixed = HashOptions {
            probe_budget: 0,
            ..opts.clone()
        };
        let neg_widths = toggles_by_width(&neg_files, opts, &args.cache);
        for (k, (file, fp)) in neg_files
            .iter()
            .zip(fingerprint_all(&neg_files, &fixed, &args.cache))
            .enumerate()
        {
            let Ok(fp) = fp else { continue };
            let w = Windows {
                set: "unindexed",
                name: &file.to_string_lossy(),
                names,
                step: 47,
                opts,
            };
            let toggles = |bits: u32| {
                neg_widths
                    .get(&bits)
                    .and_then(|t| t.get(k))
                    .map(Vec::as_slice)
            };
            w.run(src, &fp.hashes, &toggles, &params, &mut unindexed, dump);
        }
        // 3. The manifest's own negative clips (through a codec, as users send).
        let mut manifest: Samples = HashMap::new();
        for (row, fp) in rows.iter().zip(qprints) {
            if let (true, Ok(fp)) = (row.kind == "neg", fp) {
                if let Ok(v) = matcher::lookup_candidates(src, &fp.hashes, &fp.toggles, &params) {
                    dump.write(
                        "manifest_neg",
                        &row.clip,
                        &row.length,
                        &row.distortion,
                        "",
                        None,
                        names,
                        &v,
                    );
                    let len: usize = row.length.parse().unwrap_or(0);
                    manifest.entry(len).or_default().push(best_of(&v));
                }
            }
        }
        for (title, samples) in [
            (
                "other games' indexed tracks (group-out windows)",
                out_of_group,
            ),
            ("unindexed negative tracks (windows)", unindexed),
            ("the manifest's negative clips (by seconds)", manifest),
        ] {
            println!("\n### calibration: best candidate of unrelated audio — {title}\n");
            println!("| length | n | frames p50 | s p50 | s p90 | s p99 | s p99.5 | s max | score p99 | score max | ≥ 0.25 |");
            println!("|---|---|---|---|---|---|---|---|---|---|---|");
            let mut lens: Vec<_> = samples.keys().copied().collect();
            lens.sort_unstable();
            for len in lens {
                print_quantiles(
                    &len.to_string(),
                    samples.get(&len).cloned().unwrap_or_default(),
                );
            }
        }
    }
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

/// `--dump FILE`: every verified candidate of every lookup, one CSV line each,
/// for fitting the chance model offline:
/// `set,query,length_s,distortion,truth,candidate,position,offset_ok,frames,bit_errors,votes`.
struct Dump(Option<BufWriter<fs::File>>);

impl Dump {
    #[allow(clippy::too_many_arguments)]
    fn write(
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
        let Some(w) = self.0.as_mut() else { return };
        for d in v {
            let name = usize::try_from(d.id - 1)
                .ok()
                .and_then(|i| names.get(i))
                .map_or("", |s| s.as_str());
            let offset_ok =
                truth_pos.is_some_and(|t| (d.position as f64 * HOP / SR - t).abs() <= 0.5);
            // A failed dump line only loses a diagnostic.
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
}

/// (similarity, frames, score) of the best verified candidate.
fn best_of(v: &[Verdict]) -> (f64, u64, f64) {
    v.iter()
        .map(|d| (d.similarity(), d.frames, d.score))
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .unwrap_or((0.0, 0, 0.0))
}

fn print_quantiles(label: &str, mut v: Vec<(f64, u64, f64)>) {
    if v.is_empty() {
        return;
    }
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    let q = |p: f64| {
        v.get(((v.len() - 1) as f64 * p).round() as usize)
            .map_or(0.0, |x| x.0)
    };
    let mut frames: Vec<u64> = v.iter().map(|x| x.1).collect();
    frames.sort_unstable();
    let over = v.iter().filter(|x| x.2 >= 0.25).count();
    let mut scores: Vec<f64> = v.iter().map(|x| x.2).collect();
    scores.sort_by(f64::total_cmp);
    let sq = |p: f64| {
        scores
            .get(((scores.len() - 1) as f64 * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    println!(
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

/// The index with some tracks hidden (out-of-group negatives).
struct Hiding<'a> {
    src: &'a Corpus,
    hidden: Vec<TrackId>,
}

impl FrameSource for Hiding<'_> {
    fn probe(&self, probes: &[u32], hit: &mut dyn FnMut(usize, u32, u32)) {
        self.src.probe(probes, &mut |i, slot, pos| {
            if !self.hidden.contains(&self.src.id(slot)) {
                hit(i, slot, pos);
            }
        });
    }
    fn hashes(&self, slot: u32) -> &[u32] {
        self.src.hashes(slot)
    }
    fn id(&self, slot: u32) -> TrackId {
        self.src.id(slot)
    }
}

// ------------------------------------------------------------- the frame source

/// The real in-memory `Index` (what the Redis module stores), plus each
/// Track `k` (0-based, in file-name order) has id `k + 1`.
#[derive(Default)]
struct Corpus {
    index: Index,
}

impl Corpus {
    fn add(&mut self, id: TrackId, name: &str, hashes: &[u32]) -> Result<(), String> {
        self.index
            .insert(Some(id), name.as_bytes(), hashes)
            .map_err(|e| format!("{name}: {e}"))?;
        Ok(())
    }

    fn hashes_of(&self, id: TrackId) -> &[u32] {
        self.index.track(id).map_or(&[], |t| t.hashes)
    }
}

impl FrameSource for Corpus {
    fn probe(&self, probes: &[u32], hit: &mut dyn FnMut(usize, u32, u32)) {
        FrameSource::probe(&self.index, probes, hit)
    }
    fn hashes(&self, slot: u32) -> &[u32] {
        FrameSource::hashes(&self.index, slot)
    }
    fn id(&self, slot: u32) -> TrackId {
        FrameSource::id(&self.index, slot)
    }
}

// ------------------------------------------------------------------ manifest

/// `PATH: id N` lines of `auscoutclient add` output, as path → id.
fn read_ids(path: &Path) -> Result<HashMap<PathBuf, TrackId>, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let (file, id) = l.rsplit_once(": id ")?;
            Some((PathBuf::from(file), id.trim().parse().ok()?))
        })
        .collect())
}

struct Row {
    clip: String,
    kind: String,
    length: String,
    track: String,
    offset_s: String,
    distortion: String,
}

fn read_manifest(path: &Path) -> Result<Vec<Row>, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut lines = text.lines();
    let header = split_csv(lines.next().unwrap_or_default());
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .ok_or_else(|| format!("{}: no column {name}", path.display()))
    };
    let (c_clip, c_kind, c_len) = (col("clip")?, col("kind")?, col("length_s")?);
    let (c_track, c_off, c_dist) = (col("track")?, col("offset_s")?, col("distortion")?);
    Ok(lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let f = split_csv(l);
            let get = |i: usize| f.get(i).cloned().unwrap_or_default();
            Row {
                clip: get(c_clip),
                kind: get(c_kind),
                length: get(c_len),
                track: get(c_track),
                offset_s: get(c_off),
                distortion: get(c_dist),
            }
        })
        .collect())
}

/// Splits one CSV line (double-quoted fields with `""` escapes).
fn split_csv(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        let cur = out.last_mut().expect("never empty");
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(String::new()),
            _ => cur.push(c),
        }
    }
    out
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

// ----------------------------------------------------------- fingerprint cache

/// Fingerprints `paths` on every core, each through the cache.
fn fingerprint_all(
    paths: &[PathBuf],
    opts: &HashOptions,
    cache: &Path,
) -> Vec<Result<Fingerprint, String>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Fingerprint, String>>>> =
        Mutex::new(vec![None; paths.len()]);
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(path) = paths.get(i) else { break };
                let fp = cached_fingerprint(path, opts, cache);
                if let Ok(mut r) = results.lock() {
                    if let Some(slot) = r.get_mut(i) {
                        *slot = Some(fp);
                    }
                }
            });
        }
    });
    results
        .into_inner()
        .unwrap_or_default()
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("not fingerprinted".into())))
        .collect()
}

/// Bumped whenever fingerprints change for the same file and options (2:
/// M4A priming dropped).
const MAGIC: &[u8; 8] = b"AUSFP\x02\0\0";

fn cache_file(path: &Path, opts: &HashOptions, cache: &Path) -> Option<(PathBuf, [u64; 3])> {
    let meta = fs::metadata(path).ok()?;
    let mtime = meta
        .modified()
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_secs();
    // FNV-1a of the path: a stable file name without extra dependencies.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.to_string_lossy().bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    let key = [
        meta.len(),
        mtime,
        u64::from(opts.sr) << 8
            | u64::from(opts.toggle_bits)
            | u64::from(opts.max_toggle_bits) << 32
            | opts.probe_budget << 40,
    ];
    Some((cache.join(format!("{h:016x}.fp")), key))
}

fn cached_fingerprint(
    path: &Path,
    opts: &HashOptions,
    cache: &Path,
) -> Result<Fingerprint, String> {
    let entry = cache_file(path, opts, cache);
    if let Some((file, key)) = &entry {
        if let Some(fp) = load(file, key, opts.sr) {
            return Ok(fp);
        }
    }
    let fp = fingerprint_file(path, opts).map_err(|e| e.to_string())?;
    if let Some((file, key)) = &entry {
        // A failed cache write only costs time on the next run.
        let _ = save(file, key, &fp);
    }
    Ok(fp)
}

fn save(file: &Path, key: &[u64; 3], fp: &Fingerprint) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(40 + 8 * fp.hashes.len());
    buf.extend_from_slice(MAGIC);
    for k in key {
        buf.extend_from_slice(&k.to_le_bytes());
    }
    buf.extend_from_slice(&(fp.hashes.len() as u64).to_le_bytes());
    for v in fp.hashes.iter().chain(&fp.toggles) {
        buf.extend_from_slice(&v.to_le_bytes());
    }
    let tmp = file.with_extension("tmp");
    fs::write(&tmp, buf)?;
    fs::rename(tmp, file)
}

fn load(file: &Path, key: &[u64; 3], sr: u32) -> Option<Fingerprint> {
    let mut buf = Vec::new();
    fs::File::open(file).ok()?.read_to_end(&mut buf).ok()?;
    let (magic, rest) = buf.split_at_checked(8)?;
    if magic != MAGIC {
        return None;
    }
    let mut words = rest
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])));
    for k in key {
        if words.next()? != *k {
            return None;
        }
    }
    let n = usize::try_from(words.next()?).ok()?;
    let body = rest.get(32..)?;
    if body.len() != 8 * n {
        return None;
    }
    let vals: Vec<u32> = body
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap_or([0; 4])))
        .collect();
    let (hashes, toggles) = vals.split_at(n);
    Some(Fingerprint {
        sr,
        hashes: hashes.to_vec(),
        toggles: toggles.to_vec(),
    })
}

// ------------------------------------------------ unrelated music, whole chain

/// Clip lengths of the unrelated-music check, in seconds.
const UNRELATED_LENGTHS: [f64; 6] = [1.0, 2.0, 3.0, 5.0, 7.0, 10.0];

/// False positives of the whole recognition chain: windows every `step` s
/// of (a) the unindexed negative tracks and (b) every indexed track with
/// its whole game hidden, decoded and cut from the audio, looked up as
/// played and undone by every fallback warp. Prints, per part (the
/// "fit" part: lincity negatives and wesnoth windows; the "check" part:
/// asc negatives and colobot windows) and length, how many windows the
/// first pass and the fallbacks would answer at several fallback minimum
/// scores, and the highest scores seen.
/// Best score of one window: first pass, over the warps, deep pass.
type Best = (f64, f64, f64);

fn unrelated_chain(
    src: &Corpus,
    names: &[String],
    files: &[PathBuf],
    args: &Args,
    opts: &HashOptions,
    step: f64,
) -> Result<(), String> {
    let neg_dir = args
        .corpus
        .parent()
        .map(|p| p.join("negatives"))
        .unwrap_or_default();
    let mut tracks: Vec<(PathBuf, Option<String>)> = fs::read_dir(&neg_dir)
        .map_err(|e| format!("{}: {e}", neg_dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .map(|p| (p, None))
        .collect();
    let group = |name: &str| name.split("__").next().unwrap_or_default().to_owned();
    tracks.extend(
        files
            .iter()
            .zip(names)
            .map(|(f, n)| (f.clone(), Some(group(n)))),
    );
    tracks.sort();
    let params = LookupParams {
        threshold: 0.0,
        limit: Some(1),
        max_toggle_bits: args.max_toggle_bits,
        ..LookupParams::default()
    };
    let mut seen: std::collections::BTreeMap<(String, u32), Vec<Best>> = Default::default();
    let fit_part = |path: &Path| {
        let n = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if n.starts_with("lincity") || n.starts_with("wesnoth") {
            "fit"
        } else {
            "check"
        }
    };
    for (path, hide) in &tracks {
        let (samples, rate) = decode_all(path)?;
        let hidden: Vec<TrackId> = match hide {
            Some(g) => (1..=names.len() as TrackId)
                .filter(|&i| names.get(i as usize - 1).map(|n| group(n)).as_ref() == Some(g))
                .collect(),
            None => Vec::new(),
        };
        let view = Hiding { src, hidden };
        let part = fit_part(path);
        for &len in &UNRELATED_LENGTHS {
            let mut at = 10.0;
            while at + len + 20.0 <= samples.len() as f64 / f64::from(rate) {
                let lo = (at * f64::from(rate)) as usize;
                let hi = ((at + len) * f64::from(rate)) as usize;
                at += step;
                let Some(window) = samples.get(lo..hi) else {
                    break;
                };
                let Ok(clip) = Clip::from_samples(window, rate, opts) else {
                    continue;
                };
                let best = |fp: &Fingerprint| {
                    matcher::lookup(&view, &fp.hashes, &fp.toggles, &params)
                        .ok()
                        .and_then(|m| m.first().map(|m| m.score))
                        .unwrap_or(0.0)
                };
                let first = best(clip.fingerprint());
                let warped = args
                    .fallbacks
                    .warps
                    .iter()
                    .filter_map(|&w| clip.fingerprint_warped(w).ok())
                    .map(|fp| best(&fp))
                    .fold(0.0, f64::max);
                let deep = args.fallbacks.deep.map_or(0.0, |d| {
                    let p = LookupParams {
                        limit: Some(d.verified),
                        ..params.clone()
                    };
                    let fp = clip.fingerprint_for_noise(d.probe_budget);
                    matcher::lookup(&view, &fp.hashes, &fp.toggles, &p)
                        .ok()
                        .and_then(|m| m.first().map(|m| m.score))
                        .unwrap_or(0.0)
                });
                seen.entry((part.to_owned(), len as u32))
                    .or_default()
                    .push((first, warped, deep));
            }
        }
    }
    let levels = [0.25, 0.30, 0.35, 0.40, 0.45, 0.50];
    println!("\n### unrelated music through the whole chain (windows every {step} s)\n");
    println!(
        "| part | length | windows | first pass ≥ 0.25 | fallbacks ≥ {} | max first | max warp | max deep |",
        levels.map(|l| format!("{l:.2}")).join(" / ")
    );
    println!("|---|---|---|---|---|---|---|---|");
    for ((part, len), v) in &seen {
        let first = v.iter().filter(|x| x.0 >= 0.25).count();
        let by_level: Vec<String> = levels
            .iter()
            .map(|&l| {
                v.iter()
                    .filter(|x| x.0 < 0.25 && x.1.max(x.2) >= l)
                    .count()
                    .to_string()
            })
            .collect();
        let max = |f: fn(&Best) -> f64| v.iter().map(f).fold(0.0, f64::max);
        println!(
            "| {part} | {len} s | {} | {first} | {} | {:.3} | {:.3} | {:.3} |",
            v.len(),
            by_level.join(" / "),
            max(|x| x.0),
            max(|x| x.1),
            max(|x| x.2)
        );
    }
    Ok(())
}

/// A whole file as mono samples at its own rate.
fn decode_all(path: &Path) -> Result<(Vec<f32>, u32), String> {
    let mut d = auscout_fingerprint::decode::Decoder::open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let (mut all, mut rate) = (Vec::new(), 0);
    while let Some(chunk) = d
        .next_chunk()
        .map_err(|e| format!("{}: {e}", path.display()))?
    {
        if rate == 0 {
            rate = chunk.sample_rate;
        }
        if chunk.sample_rate == rate {
            all.extend_from_slice(chunk.samples);
        }
    }
    Ok((all, rate.max(1)))
}
