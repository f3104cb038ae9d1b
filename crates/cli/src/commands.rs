//! The CLI's commands: walk the paths, fingerprint files in parallel, call
//! the [`Store`], print. Every per-file problem is reported on one line and
//! the other files go on; the caller turns any failure into a non-zero exit.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use auscout_client::store::{Access, Endpoint, LookupOptions, Store};
use auscout_client::ClientError;
use auscout_fingerprint::audiohash::{frame_length, hop_length};
use auscout_fingerprint::pipeline::{fingerprint_file, Fingerprint, HashOptions};
use auscout_fingerprint::FingerprintError;
use rayon::prelude::*;

use crate::cli::{Command, Files, Options};
use crate::output::{
    csv_field, json_line, Format, JsonAdd, JsonHash, JsonLookup, JsonMatch, Reporter,
    LOOKUP_CSV_HEADER,
};
use crate::walk;

/// What can go wrong with one file: its audio, or the server's answer.
#[derive(Debug, thiserror::Error)]
enum FileError {
    #[error(transparent)]
    Audio(#[from] FingerprintError),
    #[error(transparent)]
    Server(#[from] ClientError),
}

/// A problem that stops the whole run before any file is processed.
#[derive(Debug)]
pub struct Fatal(pub String);

impl<E: std::fmt::Display> From<E> for Fatal {
    fn from(e: E) -> Self {
        Fatal(e.to_string())
    }
}

/// Runs one command; `Ok` even when some files failed (the reporter counts them).
pub fn run(command: &Command, opts: &Options, out: &Reporter) -> Result<(), Fatal> {
    if let Some(jobs) = opts.jobs {
        // Only fails if a global pool exists already, which is harmless.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(jobs.max(1))
            .build_global();
    }
    match command {
        Command::Hash(files) => hash(opts, files, out),
        Command::Add(files) => add(opts, files, out),
        Command::Lookup(files) => lookup(opts, files, out),
        Command::Del => delete(opts, out),
        Command::Count => {
            let n = open(opts, Access::Read)?.count()?;
            out.result(&n.to_string());
            Ok(())
        }
        Command::Size => {
            let n = open(opts, Access::Read)?.size()?;
            out.result(&n.to_string());
            Ok(())
        }
    }
}

/// `probe_budget` 0: exactly `toggle_bits` (see [`HashOptions`]); masks of
/// at most `--max-toggle-bits`, or the module's default cap.
fn hash_options(opts: &Options, toggle_bits: u32, probe_budget: u64) -> HashOptions {
    HashOptions {
        sr: opts.sr,
        toggle_bits,
        probe_budget,
        max_toggle_bits: opts
            .max_toggle_bits
            .unwrap_or(HashOptions::default().max_toggle_bits),
        max_seconds: (opts.nsecs > 0.0).then_some(opts.nsecs),
    }
}

fn open(opts: &Options, access: Access) -> Result<Store, Fatal> {
    let key = opts
        .key
        .as_deref()
        .ok_or_else(|| Fatal("missing -k/--key: the index to use".to_owned()))?;
    if key.is_empty() {
        return Err(Fatal("the key (-k) is empty".to_owned()));
    }
    let endpoint = Endpoint::new(opts.url.as_deref(), &opts.server, opts.port, opts.cluster)?;
    Ok(Store::open(endpoint, key, opts.shards, access)?)
}

/// Walks the paths, reporting the missing ones; errors if none were given.
fn files(opts: &Options, given: &Files, out: &Reporter) -> Result<Vec<PathBuf>, Fatal> {
    let paths = opts.all_paths(given);
    if paths.is_empty() {
        return Err(Fatal("no files or directories given".to_owned()));
    }
    let (files, errors) = walk::collect(&paths);
    for e in &errors {
        out.file_error(&e.path, &e.message);
    }
    Ok(files)
}

/// Runs `work` on every file in parallel, with the progress bar.
fn for_each_file(files: &[PathBuf], out: &Reporter, work: impl Fn(&Path) + Sync) {
    out.start(files.len());
    files.par_iter().for_each(|f| {
        work(f);
        out.tick();
    });
    out.finish();
}

/// Seconds of audio a fingerprint covers (for the speed summary).
fn audio_seconds(fp: &Fingerprint) -> f64 {
    let samples = (fp.hashes.len() + 1) * hop_length(fp.sr) + frame_length(fp.sr);
    samples as f64 / f64::from(fp.sr)
}

/// The description a file is stored under: its file name, as the original.
fn description(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

fn hash(opts: &Options, given: &Files, out: &Reporter) -> Result<(), Fatal> {
    let files = files(opts, given, out)?;
    let hopts = hash_options(opts, opts.toggles, opts.probe_budget);
    for_each_file(&files, out, |path| match fingerprint_file(path, &hopts) {
        Ok(fp) => {
            let shown = path.display().to_string();
            let line = match out.format {
                Format::Json => json_line(&JsonHash {
                    file: &shown,
                    sr: fp.sr,
                    hashes: &fp.hashes,
                    toggles: &fp.toggles,
                }),
                Format::Csv | Format::Plain => {
                    format!(
                        "{shown}: {} hashes, {:.2} s at {} Hz",
                        fp.hashes.len(),
                        audio_seconds(&fp),
                        fp.sr
                    )
                }
            };
            out.result(&line);
        }
        Err(e) => out.file_error(path, &e.to_string()),
    });
    Ok(())
}

/// Progress totals of an `add` run, for the closing summary.
#[derive(Default)]
struct AddTotals {
    added: usize,
    skipped: usize,
    audio_seconds: f64,
}

fn add(opts: &Options, given: &Files, out: &Reporter) -> Result<(), Fatal> {
    let mut files = files(opts, given, out)?;
    // Biggest files first, so that no core is left alone with a long one at
    // the end of the run (longest-processing-time-first).
    files.sort_by_cached_key(|f| {
        std::cmp::Reverse(std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
    });
    let store = open(opts, Access::Write)?;
    let started = Instant::now();
    // Resume: what an earlier (maybe killed) run indexed is skipped. Files
    // sharing a name within this run are added once, for the same reason.
    let indexed = if opts.force {
        HashSet::new()
    } else {
        store.descriptions()?
    };
    let claimed = Mutex::new(HashSet::new());
    let totals = Mutex::new(AddTotals::default());
    // `add` sends no toggles.
    let hopts = hash_options(opts, 0, 0);
    if out.format == Format::Csv {
        out.result("file,id,status");
    }
    for_each_file(&files, out, |path| {
        let descr = description(path);
        let first_claim = claimed
            .lock()
            .map(|mut c| c.insert(descr.clone()))
            .unwrap_or(true);
        if !opts.force && (indexed.contains(&descr) || !first_claim) {
            if let Ok(mut t) = totals.lock() {
                t.skipped += 1;
            }
            report_add(out, path, &descr, None);
            return;
        }
        let result = (|| -> Result<_, FileError> {
            let fp = fingerprint_file(path, &hopts)?;
            let id = store.add_track(&fp.hashes, &descr)?;
            Ok((id, audio_seconds(&fp)))
        })();
        match result {
            Ok((id, seconds)) => {
                if let Ok(mut t) = totals.lock() {
                    t.added += 1;
                    t.audio_seconds += seconds;
                }
                report_add(out, path, &descr, Some(id));
            }
            Err(e) => out.file_error(path, &e.to_string()),
        }
    });
    if let Ok(t) = totals.lock() {
        let elapsed = started.elapsed().as_secs_f64();
        out.info(&format!(
            "added {}, skipped {} already indexed, failed {}; {:.0} s of audio in {:.1} s ({:.0}x real time)",
            t.added,
            t.skipped,
            out.failures(),
            t.audio_seconds,
            elapsed,
            t.audio_seconds / elapsed.max(1e-9)
        ));
    }
    Ok(())
}

fn report_add(out: &Reporter, path: &Path, descr: &str, id: Option<u64>) {
    let shown = path.display().to_string();
    let line = match (out.format, id) {
        (Format::Json, id) => json_line(&JsonAdd {
            file: &shown,
            descr,
            id,
            skipped: id.is_none(),
        }),
        (Format::Csv, Some(id)) => format!("{},{id},added", csv_field(&shown)),
        (Format::Csv, None) => format!("{},,skipped", csv_field(&shown)),
        (Format::Plain, Some(id)) => format!("{shown}: id {id}"),
        (Format::Plain, None) => format!("{shown}: already indexed, skipped"),
    };
    out.result(&line);
}

fn lookup(opts: &Options, given: &Files, out: &Reporter) -> Result<(), Fatal> {
    let files = files(opts, given, out)?;
    let store = open(opts, Access::Read)?;
    let mut hopts = hash_options(opts, opts.toggles, opts.probe_budget);
    if opts.max_toggle_bits.is_none() {
        // Queries must stay within the server's cap (a mask over it is an
        // error reply); a server that will not say (CONFIG not allowed) gets
        // the module's default.
        if let Some(cap) = store.max_toggle_bits() {
            hopts.max_toggle_bits = cap;
        }
    }
    let lopts = LookupOptions {
        threshold: opts.threshold,
        limit: opts.limit,
    };
    let hop = hop_length(opts.sr) as f64 / f64::from(opts.sr);
    let times = Mutex::new(Vec::with_capacity(files.len()));
    let matched = Mutex::new(0usize);
    if out.format == Format::Csv {
        out.result(LOOKUP_CSV_HEADER);
    }
    for_each_file(&files, out, |path| {
        let result = (|| -> Result<_, FileError> {
            let fp = fingerprint_file(path, &hopts)?;
            Ok(store.lookup(&fp.hashes, &fp.toggles, lopts)?)
        })();
        let (matches, elapsed) = match result {
            Ok(r) => r,
            Err(e) => return out.file_error(path, &e.to_string()),
        };
        let ms = elapsed.as_secs_f64() * 1e3;
        if let Ok(mut t) = times.lock() {
            t.push(elapsed);
        }
        if !matches.is_empty() {
            if let Ok(mut m) = matched.lock() {
                *m += 1;
            }
        }
        let shown = path.display().to_string();
        let offset = |position: i64| position as f64 * hop;
        let line = match out.format {
            Format::Csv => match matches.first() {
                Some(m) => format!(
                    "{},{},{:.3},{:.4},{ms:.3}",
                    csv_field(&shown),
                    csv_field(&m.descr),
                    offset(m.position),
                    m.score
                ),
                None => format!("{},,,,{ms:.3}", csv_field(&shown)),
            },
            Format::Json => json_line(&JsonLookup {
                file: &shown,
                ms,
                matches: matches
                    .iter()
                    .map(|m| JsonMatch {
                        descr: &m.descr,
                        id: m.id,
                        position: m.position,
                        offset_s: offset(m.position),
                        score: m.score,
                    })
                    .collect(),
            }),
            Format::Plain if matches.is_empty() => format!("{shown}: no match ({ms:.1} ms)"),
            Format::Plain => {
                let mut text = format!(
                    "{shown}: {} match{} ({ms:.1} ms)",
                    matches.len(),
                    plural(matches.len())
                );
                for m in &matches {
                    text.push_str(&format!(
                        "\n  {}  id {}  offset {:.2} s  score {:.3}",
                        m.descr,
                        m.id,
                        offset(m.position),
                        m.score
                    ));
                }
                text
            }
        };
        out.result(&line);
    });
    if let (Ok(mut t), Ok(m)) = (times.lock(), matched.lock()) {
        t.sort();
        let median = t.get(t.len() / 2).copied().unwrap_or(Duration::ZERO);
        out.info(&format!(
            "looked up {} files: {} matched, failed {}; median lookup {:.2} ms",
            t.len(),
            *m,
            out.failures(),
            median.as_secs_f64() * 1e3
        ));
    }
    Ok(())
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "es"
    }
}

fn delete(opts: &Options, out: &Reporter) -> Result<(), Fatal> {
    let id = opts
        .id
        .ok_or_else(|| Fatal("del needs the track id: -i/--id".to_owned()))?;
    let store = open(opts, Access::Read)?;
    let frames = store.delete(id)?;
    let line = match out.format {
        Format::Json => format!("{{\"id\":{id},\"frames\":{frames}}}"),
        Format::Csv | Format::Plain => format!("deleted id {id}: {frames} frames"),
    };
    out.result(&line);
    Ok(())
}
