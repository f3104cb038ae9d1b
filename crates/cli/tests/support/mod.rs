//! Shared by the CLI tests: running the `auscoutclient` binary and reading
//! its output; the synthetic music comes from the testkit.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub use auscout_testkit::audio::*;

pub mod recording;

/// Runs `auscoutclient` with `args`.
pub fn client(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_auscoutclient"))
        .args(args)
        .output()
        .expect("run auscoutclient")
}

/// Runs `auscoutclient` with `args`, `input` piped into its standard input.
pub fn client_stdin(args: &[&str], input: Vec<u8>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_auscoutclient"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run auscoutclient");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        // The client may stop reading early (bad input): a broken pipe is fine.
        let _ = stdin.write_all(&input);
    });
    let out = child.wait_with_output().expect("wait");
    let _ = writer.join();
    out
}

/// Encodes the audio file `input` with ffmpeg into `output`, its format
/// given by the extension (`.mp3`, `.ogg`, `.aac`, …).
pub fn encode(input: &Path, output: &Path) {
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(input)
        .arg(output)
        .status()
        .expect("ffmpeg runs (scripts/deps.sh test installs it)");
    assert!(
        status.success(),
        "ffmpeg {} -> {}",
        input.display(),
        output.display()
    );
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Panics with both streams when `o` did not exit 0.
pub fn ok(o: Output) -> Output {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(&o),
        stderr(&o)
    );
    o
}

/// One parsed row of `lookup --csv`.
#[derive(Debug, Clone)]
pub struct Row {
    pub clip: String,
    pub matched: String,
    pub offset_s: Option<f64>,
    pub score: Option<f64>,
    pub ms: f64,
}

/// Parses `lookup --csv` (no quoting needed for the test's file names).
pub fn csv_rows(out: &str) -> Vec<Row> {
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("clip,match,offset_s,score,ms"),
        "csv header in:\n{out}"
    );
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 5, "csv row {l:?}");
            Row {
                clip: f[0].to_owned(),
                matched: f[1].to_owned(),
                offset_s: f[2].parse().ok(),
                score: f[3].parse().ok(),
                ms: f[4].parse().expect("ms is a number"),
            }
        })
        .collect()
}

/// A temp dir holding the test's audio files.
pub fn audio_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

pub fn path_str(p: &Path) -> String {
    p.to_str().expect("utf-8 temp path").to_owned()
}

pub fn join(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// A track of the test library: name, seed, sample rate, channels.
pub struct Track {
    pub name: &'static str,
    pub seed: u64,
    pub rate: u32,
    pub channels: u16,
}

pub const TRACKS: &[Track] = &[
    Track {
        name: "t0.wav",
        seed: 1,
        rate: 22050,
        channels: 1,
    },
    Track {
        name: "t1.wav",
        seed: 2,
        rate: 44100,
        channels: 2,
    },
    Track {
        name: "t2.flac",
        seed: 3,
        rate: 16000,
        channels: 1,
    },
    Track {
        name: "t3.flac",
        seed: 4,
        rate: 32000,
        channels: 1,
    },
    Track {
        name: "t4.wav",
        seed: 5,
        rate: 11025,
        channels: 1,
    },
];

pub fn write_track(dir: &Path, name: &str, x: &[f32], rate: u32, channels: u16) {
    let path = dir.join(name);
    if name.ends_with(".flac") {
        write_flac(&path, x, rate);
    } else {
        write_wav(&path, x, rate, channels);
    }
}

/// Writes the library into `dir`; returns each track's signal.
pub fn write_library(
    dir: &Path,
    tracks: &[Track],
    seconds: f64,
) -> HashMap<&'static str, Vec<f32>> {
    tracks
        .iter()
        .map(|t| {
            let x = music(t.seed, seconds, t.rate);
            write_track(dir, t.name, &x, t.rate, t.channels);
            (t.name, x)
        })
        .collect()
}

pub fn add_json(url: &str, key: &str, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["add", "-u", url, "-k", key, "--json", "--quiet"];
    args.extend_from_slice(extra);
    let out = ok(client(&args));
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

pub fn count(url: &str, key: &str) -> i64 {
    stdout(&ok(client(&["count", "-u", url, "-k", key])))
        .trim()
        .parse()
        .expect("count is a number")
}
