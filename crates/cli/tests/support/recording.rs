//! A recording built from synthetic tracks (a hard cut, a crossfade,
//! silence, unindexed music, a repeat, a 3 % speed-up), its truth, and the
//! check that `monitor --csv` gives it back.

use std::path::Path;
use std::process::Output;

use super::*;

pub const RATE: u32 = 8000;

/// One excerpt of an indexed track in the recording: from its first sample
/// (the start of a crossfade into it) to its last (the end of a crossfade
/// out of it).
#[derive(Debug)]
pub struct Truth {
    pub track: &'static str,
    pub start: f64,
    pub end: f64,
    pub track_start: f64,
    pub speed: f64,
    /// Lengths (s) of the crossfades into and out of the excerpt.
    pub fade_in: f64,
    pub fade_out: f64,
}

impl Truth {
    /// Does `r`, shifted back by `shift` s, report this excerpt? Boundaries
    /// within 1 s; in a crossfade, where each track is heard: inside the
    /// fade, with the half second a hash hears ahead of its frame.
    pub fn matches(&self, r: &Row, shift: f64) -> bool {
        let (start, end) = (r.start - shift, r.end - shift);
        let start_ok = if self.fade_in > 0.0 {
            (self.start - 0.5..=self.start + self.fade_in).contains(&start)
        } else {
            (start - self.start).abs() <= 1.0
        };
        let end_ok = if self.fade_out > 0.0 {
            (self.end - self.fade_out..=self.end + 0.5).contains(&end)
        } else {
            (end - self.end).abs() <= 1.0
        };
        // The track time the report gives at its start, on the truth's timeline.
        let aligned = self.track_start + (start - self.start) * self.speed;
        r.track == self.track && start_ok && end_ok && (r.track_start - aligned).abs() <= 0.5
    }
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
    // In a crossfade both tracks play: the one going out until the fade's
    // end, the one coming in from its start.
    let mut play = |rec: &mut Vec<f32>, track, x: Vec<f32>, fade: f64, track_start, speed| {
        let start = append(rec, &x, fade);
        if let Some(before) = truth.last_mut().filter(|_| fade > 0.0) {
            before.fade_out = fade;
        }
        truth.push(Truth {
            track,
            start,
            end: start + x.len() as f64 / f64::from(RATE),
            track_start,
            speed,
            fade_in: fade,
            fade_out: 0.0,
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

/// Every excerpt is one row, in order, boundaries as [`Truth::matches`]
/// says, the two sides of a crossfade overlapping, track times within the
/// track.
pub fn assert_matches_truth(out: &Output, truth: &[Truth]) {
    let got = rows(&stdout(out));
    assert_eq!(got.len(), truth.len(), "{got:#?}\nvs\n{truth:#?}");
    for (r, t) in got.iter().zip(truth) {
        assert!(t.matches(r, 0.0), "{r:?} vs {t:?}\nall: {got:#?}");
        assert!(r.track_start >= 0.0 && r.track_end <= 40.5, "{r:?}");
    }
    assert_crossfades_overlap(&got, truth);
}

/// Where one excerpt crossfades into the next, both are heard in the fade:
/// the segment going out ends after the one coming in starts.
pub fn assert_crossfades_overlap(got: &[Row], truth: &[Truth]) {
    for (k, t) in truth.iter().enumerate().skip(1) {
        if t.fade_in > 0.0 {
            assert!(
                got[k - 1].end > got[k].start,
                "crossfade: {:?} then {:?}",
                got[k - 1],
                got[k]
            );
        }
    }
}
