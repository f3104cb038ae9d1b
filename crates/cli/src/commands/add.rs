//! `add`: fingerprint files and add each as a track, skipping what an earlier
//! run indexed.

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

use auscout_client::store::Access;
use auscout_fingerprint::pipeline::fingerprint_file;

use super::{audio_seconds, files, for_each_file, hash_options, open, Fatal, FileError};
use crate::args::AddArgs;
use crate::output::{csv_field, json_line, Format, JsonAdd, Reporter};

/// Progress totals of an `add` run, for the closing summary.
#[derive(Default)]
struct AddTotals {
    added: usize,
    skipped: usize,
    audio_seconds: f64,
}

pub fn run(args: &AddArgs, out: &Reporter) -> Result<(), Fatal> {
    let mut files = files(&args.files, out)?;
    // Biggest files first, so that no core is left alone with a long one at
    // the end of the run (longest-processing-time-first).
    files.sort_by_cached_key(|f| {
        std::cmp::Reverse(std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
    });
    let store = open(&args.connection, &args.key, Access::Write)?;
    let started = Instant::now();
    // Resume: what an earlier (maybe killed) run indexed is skipped. Files
    // sharing a name within this run are added once, for the same reason.
    let indexed = if args.force {
        HashSet::new()
    } else {
        store.descriptions()?
    };
    let claimed = Mutex::new(HashSet::new());
    let totals = Mutex::new(AddTotals::default());
    // `add` sends no toggles.
    let hopts = hash_options(&args.hashing, None);
    if out.format == Format::Csv {
        out.result("file,id,status");
    }
    for_each_file(&files, out, |path| {
        let descr = description(path);
        let first_claim = claimed
            .lock()
            .map(|mut c| c.insert(descr.clone()))
            .unwrap_or(true);
        if !args.force && (indexed.contains(&descr) || !first_claim) {
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
        let counts = format!(
            "added {}, skipped {} already indexed, failed {}",
            t.added,
            t.skipped,
            out.failures()
        );
        // A speed only means something when audio was indexed.
        if t.added == 0 {
            out.info(&counts);
        } else {
            let elapsed = started.elapsed().as_secs_f64();
            out.info(&format!(
                "{counts}; {:.0} s of audio in {:.1} s ({:.0}x real time)",
                t.audio_seconds,
                elapsed,
                t.audio_seconds / elapsed.max(1e-9)
            ));
        }
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

/// The description a file is stored under: its file name, as the original.
fn description(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
