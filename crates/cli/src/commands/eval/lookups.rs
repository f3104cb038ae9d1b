//! Every clip of the manifest looked up as `lookup` does it: the clip as
//! played, then, when that finds nothing or only a weak match, undone by
//! each fallback warp (the client library's `after_first_pass`).

use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use auscout_client::recognise::{after_first_pass, Clip, Fallbacks, Pass, Warp, AS_PLAYED};
use auscout_core::matcher::LookupParams;
use auscout_fingerprint::audiohash::hop_length;
use auscout_fingerprint::{Fingerprint, HashOptions};

use super::corpus::Corpus;
use super::manifest::{Answer, Query};
use crate::output::csv_field;

/// One clip's answer and how it was found.
pub struct Looked {
    pub answer: Answer,
    /// The warp that found the match (`Warp::NONE`: the clip as played).
    pub warp: Warp,
    /// Lookups made: 1, plus one per fallback tried.
    pub passes: usize,
    /// Whether the deep pass found the match.
    pub deep: bool,
    /// The clip's speed relative to the best match's track, measured (the
    /// warp's tempo times the speed the engine fitted), when asked for.
    pub speed: Option<f64>,
}

/// Looks up `query` (fingerprinted as `fp`) in `corpus`.
pub fn look_up(
    corpus: &Corpus,
    query: &Query,
    fp: &Fingerprint,
    opts: &HashOptions,
    params: &LookupParams,
    fallbacks: &Fallbacks,
) -> Result<Looked, String> {
    // `verified`: the LIMIT the attempt sends (the deep pass verifies more).
    let lookup = |fp: &Fingerprint, verified: Option<usize>| {
        let p = LookupParams {
            limit: verified.or(params.limit),
            ..params.clone()
        };
        corpus
            .index
            .lookup(&fp.hashes, &fp.toggles, &p)
            .map_err(|e| format!("{}: {e}", query.clip))
    };
    let t = Instant::now();
    let first = lookup(fp, None)?;
    let first_pass = Pass {
        attempt: AS_PLAYED,
        took: t.elapsed(),
    };
    let found = after_first_pass(
        first,
        first_pass,
        fallbacks,
        || {
            Clip::open(Path::new(&query.clip), opts)
                .map_err(|e| LookupError(format!("{}: {e}", query.clip)))
        },
        |fp, attempt| lookup(fp, attempt.verified).map_err(LookupError),
    )
    .map_err(|e| e.0)?;
    let got = found.matches;
    let warp = found.warp;
    let passes = found.passes.len();
    // The deep pass is the only one with a `LIMIT` of its own.
    let deep = !got.is_empty()
        && found
            .passes
            .last()
            .is_some_and(|p| p.attempt.verified.is_some());
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let hop = hop_length(fp.sr) as f64 / f64::from(fp.sr);
    let speed = got.first().and_then(|m| m.speed).map(|s| s * warp.tempo);
    let answer = match got.first() {
        Some(m) => Answer {
            matched: corpus.name(m.id).to_owned(),
            offset_s: Some(m.position as f64 * hop),
            score: Some(m.score),
            ms: Some(ms),
        },
        None => Answer {
            ms: Some(ms),
            ..Answer::default()
        },
    };
    Ok(Looked {
        answer,
        warp,
        passes,
        deep,
        speed,
    })
}

/// An error of the fallback lookups, as text.
struct LookupError(String);

impl From<auscout_fingerprint::FingerprintError> for LookupError {
    fn from(e: auscout_fingerprint::FingerprintError) -> Self {
        LookupError(e.to_string())
    }
}

/// `--out`: every clip's answer, one CSV line each, in manifest order.
pub struct ResultsFile {
    path: std::path::PathBuf,
    w: BufWriter<fs::File>,
}

impl ResultsFile {
    pub const HEADER: &'static str = "clip,match,offset_s,score,ms,pitch,tempo,passes,deep,speed";

    pub fn create(path: &Path) -> Result<ResultsFile, String> {
        let f = fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut file = ResultsFile {
            path: path.to_owned(),
            w: BufWriter::new(f),
        };
        file.line(Self::HEADER)?;
        Ok(file)
    }

    /// A clip that could not be fingerprinted gets a line with no match.
    pub fn write(&mut self, clip: &str, looked: Option<&Looked>) -> Result<(), String> {
        let num = |v: Option<f64>, prec: usize| v.map_or(String::new(), |v| format!("{v:.prec$}"));
        let line = match looked {
            Some(l) => format!(
                "{},{},{},{},{},{},{},{},{},{}",
                csv_field(clip),
                csv_field(&l.answer.matched),
                num(l.answer.offset_s, 3),
                num(l.answer.score, 4),
                num(l.answer.ms, 3),
                l.warp.pitch,
                l.warp.tempo,
                l.passes,
                u8::from(l.deep),
                num(l.speed, 4)
            ),
            None => format!("{},,,,,,,0,0,", csv_field(clip)),
        };
        self.line(&line)
    }

    pub fn finish(mut self) -> Result<(), String> {
        let path = self.path.clone();
        self.w
            .flush()
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    fn line(&mut self, line: &str) -> Result<(), String> {
        writeln!(self.w, "{line}").map_err(|e| format!("{}: {e}", self.path.display()))
    }
}
