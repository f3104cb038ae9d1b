//! `lookup`: fingerprint files (or a clip on standard input, `-`) and print
//! the tracks they match (with the client library's fallbacks for clips
//! played at another speed or pitch).

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use auscout_client::recognise::{recognise, Clip, Fallbacks, Warp};
use auscout_client::store::{Access, LookupOptions};
use auscout_fingerprint::audiohash::hop_length;
use auscout_fingerprint::FingerprintError;

use super::{files, for_each_file, hash_options, open, Fatal, FileError};
use crate::args::LookupArgs;
use crate::output::{
    csv_field, json_line, Format, JsonLookup, JsonMatch, Reporter, LOOKUP_CSV_HEADER,
};

pub fn run(args: &LookupArgs, out: &Reporter) -> Result<(), Fatal> {
    // `-` is standard input: any container, probed from what is read ahead
    // (a pipe cannot seek back). It is looked up before the files.
    let stdin = args.files.paths.iter().any(|p| p == Path::new("-"));
    let mut given = args.files.clone();
    given.paths.retain(|p| p != Path::new("-"));
    let files = if stdin && given.all_paths().is_empty() {
        Vec::new()
    } else {
        files(&given, out)?
    };
    let store = open(&args.connection, &args.key, Access::Read)?;
    let mut hopts = hash_options(&args.hashing, Some(&args.toggles));
    if args.toggles.max_toggle_bits.is_none() {
        // Queries must stay within the server's cap (a mask over it is an
        // error reply); a server that will not say (CONFIG not allowed) gets
        // the module's default.
        if let Some(cap) = store.max_toggle_bits() {
            hopts.max_toggle_bits = cap;
        }
    }
    let lopts = LookupOptions {
        threshold: args.matching.threshold,
        limit: args.matching.limit,
        // Only JSON shows each match's speed; fitting it costs the server
        // a little per match.
        with_speed: out.format == Format::Json,
    };
    let sr = args.hashing.sr;
    let hop = hop_length(sr) as f64 / f64::from(sr);
    let times = Mutex::new(Vec::with_capacity(files.len()));
    let matched = Mutex::new(0usize);
    let fallbacks = Fallbacks::default();
    if out.format == Format::Csv {
        out.result(LOOKUP_CSV_HEADER);
    }
    let look_up = |path: &Path, clip: Result<Clip, FingerprintError>| {
        let result = (|| -> Result<_, FileError> {
            let clip = clip?;
            // Server time of every lookup made, fallbacks included.
            let mut elapsed = Duration::ZERO;
            let found = recognise(&clip, &fallbacks, |fp, attempt| {
                let (mut matches, took) =
                    store.lookup(&fp.hashes, &fp.toggles, attempt.options(lopts))?;
                if let Some(limit) = lopts.limit {
                    matches.truncate(limit as usize);
                }
                elapsed += took;
                Ok::<_, FileError>(matches)
            })?;
            Ok((found.matches, elapsed, found.warp))
        })();
        let (matches, elapsed, warp) = match result {
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
                // Only when a fallback found the match: the clip is the
                // track played `speed` times fast and pitched by `pitch`.
                speed: (warp != Warp::NONE).then_some(warp.tempo),
                pitch: (warp != Warp::NONE).then_some(warp.pitch),
                matches: matches
                    .iter()
                    .map(|m| JsonMatch {
                        descr: &m.descr,
                        id: m.id,
                        position: m.position,
                        offset_s: offset(m.position),
                        score: m.score,
                        // The server fits the speed of the lookup's query:
                        // the clip undone by the warp.
                        speed: m.speed.map(|s| round4(s * warp.tempo)),
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
    };
    if stdin {
        look_up(Path::new("-"), Clip::from_reader(std::io::stdin(), &hopts));
    }
    for_each_file(&files, out, |path| look_up(path, Clip::open(path, &hopts)));
    if let (Ok(mut t), Ok(m)) = (times.lock(), matched.lock()) {
        t.sort();
        let median = t.get(t.len() / 2).copied().unwrap_or(Duration::ZERO);
        out.info(&format!(
            "looked up {} file{}: {} matched, failed {}; median lookup {:.2} ms",
            t.len(),
            if t.len() == 1 { "" } else { "s" },
            *m,
            out.failures(),
            median.as_secs_f64() * 1e3
        ));
    }
    Ok(())
}

/// A speed as shown: four decimals (a fit is good to about 0.001).
fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "es"
    }
}
