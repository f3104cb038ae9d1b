//! What the CLI prints: results on stdout (plain text, JSON lines or CSV),
//! one-line problems on stderr, a progress bar on stderr when it is a
//! terminal. Worker threads share one [`Reporter`]; every result is one
//! `println!`, so lines never interleave.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Plain,
    Json,
    Csv,
}

pub struct Reporter {
    pub format: Format,
    quiet: bool,
    bar: ProgressBar,
    failures: AtomicUsize,
}

impl Reporter {
    pub fn new(format: Format, quiet: bool) -> Self {
        let bar = if quiet || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template(
                "{bar:40} {pos}/{len} files  {elapsed_precise} eta {eta}",
            ) {
                bar.set_style(style);
            }
            bar
        };
        Reporter {
            format,
            quiet,
            bar,
            failures: AtomicUsize::new(0),
        }
    }

    /// Starts the progress bar for `files` files.
    pub fn start(&self, files: usize) {
        self.bar.set_length(files as u64);
    }

    /// One file done (success or not).
    pub fn tick(&self) {
        self.bar.inc(1);
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// A result line on stdout. A closed stdout (`| head`) is not an error
    /// worth a panic; the remaining results are simply not wanted.
    pub fn result(&self, line: &str) {
        self.bar.suspend(|| {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{line}");
        });
    }

    /// A one-line problem with a file or path; counts as a failure.
    pub fn file_error(&self, path: &Path, message: &str) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.bar
            .suspend(|| eprintln!("{}: {message}", path.display()));
    }

    /// A one-line problem not tied to one file; counts as a failure.
    pub fn error(&self, message: &str) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        self.bar.suspend(|| eprintln!("auscoutclient: {message}"));
    }

    /// Information for a person watching (suppressed by `--quiet`).
    pub fn info(&self, message: &str) {
        if !self.quiet {
            self.bar.suspend(|| eprintln!("{message}"));
        }
    }

    pub fn failures(&self) -> usize {
        self.failures.load(Ordering::Relaxed)
    }
}

/// The header of the lookup CSV that `eval --results` scores.
pub const LOOKUP_CSV_HEADER: &str = "clip,match,offset_s,score,ms";

/// A CSV field, quoted when it must be (RFC 4180).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// One match as printed by `lookup --json`.
#[derive(Debug, Serialize)]
pub struct JsonMatch<'a> {
    pub descr: &'a str,
    pub id: u64,
    pub position: i64,
    pub offset_s: f64,
    pub score: f64,
    /// The clip's speed relative to this track as the server measured it
    /// (1.05: played 5 % fast); absent from a server that does not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed: Option<f64>,
}

/// One file's answer as printed by `lookup --json`.
#[derive(Debug, Serialize)]
pub struct JsonLookup<'a> {
    pub file: &'a str,
    pub ms: f64,
    /// The clip's tempo relative to the track's (1.07: 7 % fast) when a
    /// fallback found the match; absent when the clip as played did.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed: Option<f64>,
    /// The clip's frequencies relative to the track's, likewise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pitch: Option<f64>,
    pub matches: Vec<JsonMatch<'a>>,
}

/// One file's fingerprint as printed by `hash --json`.
#[derive(Debug, Serialize)]
pub struct JsonHash<'a> {
    pub file: &'a str,
    pub sr: u32,
    pub hashes: &'a [u32],
    pub toggles: &'a [u32],
}

/// One file's outcome as printed by `add --json`.
#[derive(Debug, Serialize)]
pub struct JsonAdd<'a> {
    pub file: &'a str,
    pub descr: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    pub skipped: bool,
}

/// Serialises a value as one JSON line (these types cannot fail to).
pub fn json_line<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_only_when_needed() {
        assert_eq!(csv_field("a.wav"), "a.wav");
        assert_eq!(csv_field("a,b.wav"), "\"a,b.wav\"");
        assert_eq!(csv_field("say \"hi\".mp3"), "\"say \"\"hi\"\".mp3\"");
    }

    #[test]
    fn json_lookup_shape() {
        let j = JsonLookup {
            file: "c.wav",
            ms: 1.5,
            speed: None,
            pitch: None,
            matches: vec![JsonMatch {
                descr: "t.flac",
                id: 7,
                position: 100,
                offset_s: 1.0,
                score: 0.5,
                speed: None,
            }],
        };
        assert_eq!(
            json_line(&j),
            r#"{"file":"c.wav","ms":1.5,"matches":[{"descr":"t.flac","id":7,"position":100,"offset_s":1.0,"score":0.5}]}"#
        );
        let fast = JsonLookup {
            speed: Some(1.07),
            pitch: Some(1.07),
            matches: vec![JsonMatch {
                speed: Some(1.0512),
                ..j.matches[0]
            }],
            ..j
        };
        assert_eq!(
            json_line(&fast),
            r#"{"file":"c.wav","ms":1.5,"speed":1.07,"pitch":1.07,"matches":[{"descr":"t.flac","id":7,"position":100,"offset_s":1.0,"score":0.5,"speed":1.0512}]}"#
        );
    }
}
