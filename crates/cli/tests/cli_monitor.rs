//! `auscoutclient monitor` end to end against a real `redis-server` with the
//! module: a recording built from synthetic tracks (a hard cut, a
//! crossfade, silence, unindexed music, a repeat, a 3 % speed-up) must come
//! back as its truth, one segment per excerpt with boundaries within 1 s,
//! whether read from a file, piped into standard input, or as raw PCM; bad
//! input is one clear line and a non-zero exit.

use auscout_testkit::server as common;
mod support;

use std::path::Path;
use std::process::Output;

use common::Server;
use support::*;

const RATE: u32 = 8000;

/// One excerpt of an indexed track in the recording.
#[derive(Debug)]
struct Truth {
    track: &'static str,
    start: f64,
    end: f64,
    track_start: f64,
    speed: f64,
}

/// Appends `x` to `out`, crossfading the first `fade` seconds over its tail.
fn append(out: &mut Vec<f32>, x: &[f32], fade: f64) -> f64 {
    let n = ((fade * f64::from(RATE)) as usize)
        .min(out.len())
        .min(x.len());
    let start = out.len() - n;
    for i in 0..n {
        let r = i as f32 / n as f32;
        out[start + i] = out[start + i] * (1.0 - r) + x[i] * r;
    }
    out.extend_from_slice(&x[n..]);
    start as f64 / f64::from(RATE)
}

fn silence(seconds: f64) -> Vec<f32> {
    vec![0.0; (seconds * f64::from(RATE)) as usize]
}

/// Indexes four tracks and writes the recording; returns its truth.
fn setup(dir: &Path, url: &str) -> (Vec<f32>, Vec<Truth>) {
    let tracks: Vec<(&str, Vec<f32>)> = ["a.wav", "b.wav", "c.wav", "d.wav"]
        .iter()
        .zip(11u64..)
        .map(|(name, seed)| (*name, music(seed, 40.0, RATE)))
        .collect();
    for (name, x) in &tracks {
        write_wav(&join(dir, name), x, RATE, 1);
    }
    let mut add = vec!["add", "-u", url, "-k", "music", "--quiet"];
    let paths: Vec<String> = tracks
        .iter()
        .map(|(n, _)| path_str(&join(dir, n)))
        .collect();
    add.extend(paths.iter().map(String::as_str));
    ok(client(&add));
    let t = |i: usize| &tracks[i].1;
    let mut rec = silence(2.0);
    let mut truth: Vec<Truth> = Vec::new();
    // A crossfade's change is heard halfway through it: that is where one
    // segment ends and the next begins.
    let mut play = |rec: &mut Vec<f32>, track, x: Vec<f32>, fade: f64, track_start, speed| {
        let start = append(rec, &x, fade);
        if let Some(before) = truth.last_mut().filter(|_| fade > 0.0) {
            before.end = start + fade / 2.0;
        }
        truth.push(Truth {
            track,
            start: start + fade / 2.0,
            end: start + x.len() as f64 / f64::from(RATE),
            track_start: track_start + fade / 2.0,
            speed,
        });
    };
    play(
        &mut rec,
        "a.wav",
        excerpt(t(0), RATE, 5.0, 20.0),
        0.0,
        5.0,
        1.0,
    );
    // A hard cut, then a 2 s crossfade.
    play(
        &mut rec,
        "b.wav",
        excerpt(t(1), RATE, 0.0, 20.0),
        0.0,
        0.0,
        1.0,
    );
    play(
        &mut rec,
        "c.wav",
        excerpt(t(2), RATE, 10.0, 20.0),
        2.0,
        10.0,
        1.0,
    );
    // Silence, then unindexed music: nothing to report.
    rec.extend(silence(4.0));
    rec.extend(gain(&music(99, 12.0, RATE), 0.8));
    // The same part of a played track again: a new segment.
    play(
        &mut rec,
        "a.wav",
        excerpt(t(0), RATE, 5.0, 15.0),
        0.0,
        5.0,
        1.0,
    );
    // Played 3 % fast (pitch and tempo): one segment, with its speed.
    let fast = resample(
        &excerpt(t(3), RATE, 0.0, 24.0),
        (f64::from(RATE) * 1.03) as u32,
        RATE,
    );
    play(&mut rec, "d.wav", fast, 0.0, 0.0, 1.03);
    rec.extend(silence(3.0));
    (rec, truth)
}

/// One `monitor --csv` row.
#[derive(Debug)]
struct Row {
    track: String,
    start: f64,
    end: f64,
    track_start: f64,
    track_end: f64,
}

fn rows(out: &str) -> Vec<Row> {
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("stream,track,id,stream_start_s,stream_end_s,track_start_s,track_end_s,score"),
        "{out}"
    );
    lines
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            assert_eq!(f.len(), 8, "{l}");
            let n = |i: usize| f[i].parse::<f64>().expect("a number");
            Row {
                track: f[1].to_owned(),
                start: n(3),
                end: n(4),
                track_start: n(5),
                track_end: n(6),
            }
        })
        .collect()
}

/// Every excerpt is one row, in order, boundaries within 1 s, track times
/// within the track.
fn assert_matches_truth(out: &Output, truth: &[Truth]) {
    let got = rows(&stdout(out));
    assert_eq!(got.len(), truth.len(), "{got:#?}\nvs\n{truth:#?}");
    for (r, t) in got.iter().zip(truth) {
        let ok = r.track == t.track
            && (r.start - t.start).abs() <= 1.0
            && (r.end - t.end).abs() <= 1.0
            && (r.track_start - t.track_start).abs() <= 1.0 * t.speed;
        assert!(ok, "{r:?} vs {t:?}\nall: {got:#?}");
        assert!(r.track_start >= 0.0 && r.track_end <= 40.5, "{r:?}");
    }
}

#[test]
fn a_recording_comes_back_as_its_truth_from_a_file_stdin_and_raw_pcm() {
    let s = Server::start();
    let url = s.url();
    let dir = audio_dir();
    let (rec, truth) = setup(dir.path(), &url);
    let file = join(dir.path(), "recording.wav");
    write_wav(&file, &rec, RATE, 1);
    let file = path_str(&file);

    let out = ok(client(&[
        "monitor", "-u", &url, "-k", "music", "--csv", &file,
    ]));
    assert_matches_truth(&out, &truth);

    // JSON events: a start and an end per segment; the fast one says its speed.
    let out = ok(client(&[
        "monitor", "-u", &url, "-k", "music", "--json", &file,
    ]));
    let events: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let count = |kind: &str| events.iter().filter(|e| e["event"] == kind).count();
    assert_eq!((count("start"), count("end")), (truth.len(), truth.len()));
    let fast = events
        .iter()
        .find(|e| e["event"] == "end" && e["track"] == "d.wav")
        .expect("d.wav ends");
    let speed = fast["speed"].as_f64().expect("a speed");
    assert!((speed - 1.03).abs() < 0.01, "speed {speed}");
    assert!(events
        .iter()
        .filter(|e| e["track"] != "d.wav")
        .all(|e| e.get("speed").is_none()));

    // The same file through a pipe (probed without seeking).
    let bytes = std::fs::read(&file).expect("read");
    let out = ok(client_stdin(
        &["monitor", "-u", &url, "-k", "music", "--csv", "-"],
        bytes,
    ));
    assert_matches_truth(&out, &truth);

    // Raw PCM: 16-bit stereo at 8 kHz.
    let mut raw = Vec::new();
    for v in &rec {
        let s = (v.clamp(-1.0, 1.0) * 32767.0) as i16;
        raw.extend_from_slice(&s.to_le_bytes());
        raw.extend_from_slice(&s.to_le_bytes());
    }
    let out = ok(client_stdin(
        &[
            "monitor",
            "-u",
            &url,
            "-k",
            "music",
            "--csv",
            "--raw",
            "s16le:8000:2",
            "-",
        ],
        raw,
    ));
    assert_matches_truth(&out, &truth);
}

/// A failed run: non-zero exit and exactly one line on stderr naming the problem.
fn assert_one_line_failure(out: &Output, needle: &str) {
    assert!(!out.status.success(), "should fail: {}", stdout(out));
    let err = stderr(out);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains(needle), "'{needle}' in: {err}");
}

#[test]
fn bad_input_is_one_clear_line_and_a_failure() {
    let s = Server::start();
    let url = s.url();
    let dir = audio_dir();
    let x = music(5, 10.0, RATE);
    let track = join(dir.path(), "t.wav");
    write_wav(&track, &x, RATE, 1);
    ok(client(&[
        "add",
        "-u",
        &url,
        "-k",
        "music",
        "--quiet",
        &path_str(&track),
    ]));

    let garbage: Vec<u8> = (0..20_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let out = client_stdin(&["monitor", "-u", &url, "-k", "music", "-"], garbage);
    assert_one_line_failure(&out, "-: ");

    let out = client_stdin(
        &[
            "monitor",
            "-u",
            &url,
            "-k",
            "music",
            "--raw",
            "s16le:abc",
            "-",
        ],
        vec![0; 100],
    );
    assert_one_line_failure(&out, "--raw");

    let out = client(&["monitor", "-u", &url, "-k", "nosuch", &path_str(&track)]);
    assert_one_line_failure(&out, "nosuch");

    let out = client(&["monitor", "-u", &url, &path_str(&track)]);
    assert_one_line_failure(&out, "-k");

    let out = client(&["monitor", "-u", &url, "-k", "music", "missing.wav"]);
    assert_one_line_failure(&out, "missing.wav");
}
