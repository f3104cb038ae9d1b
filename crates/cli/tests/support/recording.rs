//! A recording built from synthetic tracks (a hard cut, a crossfade,
//! silence, unindexed music, a repeat, a 3 % speed-up), its truth, and the
//! check that `monitor --csv` gives it back.

use std::path::Path;
use std::process::Output;

use super::*;

pub const RATE: u32 = 8000;

/// One excerpt of an indexed track in the recording.
#[derive(Debug)]
pub struct Truth {
    pub track: &'static str,
    pub start: f64,
    pub end: f64,
    pub track_start: f64,
    pub speed: f64,
}

/// Appends `x` to `out`, crossfading the first `fade` seconds over its tail.
pub fn append(out: &mut Vec<f32>, x: &[f32], fade: f64) -> f64 {
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

pub fn silence(seconds: f64) -> Vec<f32> {
    vec![0.0; (seconds * f64::from(RATE)) as usize]
}

/// Indexes four tracks and writes the recording; returns its truth.
pub fn setup(dir: &Path, url: &str) -> (Vec<f32>, Vec<Truth>) {
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
pub struct Row {
    pub track: String,
    pub start: f64,
    pub end: f64,
    pub track_start: f64,
    pub track_end: f64,
}

pub fn rows(out: &str) -> Vec<Row> {
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
pub fn assert_matches_truth(out: &Output, truth: &[Truth]) {
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
