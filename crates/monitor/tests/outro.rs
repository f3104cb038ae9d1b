//! Where a segment ends when its track fades out under noise or under the
//! next track: a track last heard in its final seconds plays out to its
//! end; a track cut earlier, or cut into by another, ends at the cut.

mod support;

use auscout_monitor::{Options, Segment};
use auscout_testkit::audio::{add_noise, music};
use support::{ends, run, run_with, seconds, Memory, SR};

/// 30 s of music whose last 4 s are 40 dB down: a quiet ending.
fn track_with_quiet_ending() -> Vec<f32> {
    let mut x = seconds(&music(41, 31.0, SR), 0.0, 30.0);
    let quiet = x.len() - 4 * SR as usize;
    for v in &mut x[quiet..] {
        *v *= 0.01;
    }
    x
}

/// Unrelated music, `played` of the track, unrelated music again; noise
/// 30 dB under the music throughout, which covers the quiet ending.
fn recording(track: &[f32], played: f64) -> Vec<f32> {
    let mut x = seconds(&music(91, 6.0, SR), 0.0, 6.0);
    x.extend(seconds(track, 0.0, played));
    x.extend(seconds(&music(92, 10.0, SR), 0.0, 10.0));
    add_noise(&x, 30.0, 7)
}

#[test]
fn a_track_heard_into_its_last_seconds_is_reported_to_its_end() {
    let track = track_with_quiet_ending();
    let catalog = Memory::new(vec![("fades.wav", track.clone())]);
    let stream = recording(&track, 30.0);

    let heard_only = run_with(
        &catalog,
        &stream,
        Options {
            outro: 0.0,
            ..Options::default()
        },
    );
    let ends_heard = ends(&heard_only);
    assert_eq!(ends_heard.len(), 1, "{ends_heard:#?}");
    let s = &ends_heard[0].segment;
    assert!(s.stream_end < 34.0, "the quiet ending is heard: {s:?}");

    let events = run(&catalog, &stream);
    let ends = ends(&events);
    assert_eq!(ends.len(), 1, "{ends:#?}");
    let s = &ends[0].segment;
    assert!((s.stream_start - 6.0).abs() < 0.5, "{s:?}");
    assert!((s.stream_end - 36.0).abs() < 0.5, "{s:?}");
    assert!((s.track_end - 30.0).abs() < 0.5, "{s:?}");
    assert!(s.track_end <= 30.0 + 0.4, "past the track's end: {s:?}");
}

#[test]
fn a_track_cut_before_its_last_seconds_ends_at_the_cut() {
    let track = track_with_quiet_ending();
    let catalog = Memory::new(vec![("fades.wav", track.clone())]);
    let events = run(&catalog, &recording(&track, 18.0));
    let ends = ends(&events);
    assert_eq!(ends.len(), 1, "{ends:#?}");
    let s = &ends[0].segment;
    assert!((s.stream_end - 24.0).abs() < 0.5, "{s:?}");
    assert!((s.track_end - 18.0).abs() < 0.5, "{s:?}");
}

/// Unrelated music, the track, then `other` from its start: cut in where
/// the track has `left` seconds to go, or faded in linearly over its last
/// `left` seconds (`left` a whole number of hops, so that `other` hashes as
/// it was indexed).
fn followed_by(track: &[f32], other: &[f32], left: f64, fade: bool) -> Vec<f32> {
    let mut x = seconds(&music(91, 6.0, SR), 0.0, 6.0);
    let n = (left * f64::from(SR)) as usize;
    if fade {
        x.extend_from_slice(track);
        let at = x.len() - n;
        for (k, v) in x[at..].iter_mut().enumerate() {
            *v += other[k] * k as f32 / n as f32;
        }
        x.extend_from_slice(&other[n..]);
    } else {
        x.extend_from_slice(&track[..track.len() - n]);
        x.extend_from_slice(other);
    }
    add_noise(&x, 30.0, 8)
}

/// The two segments of the track followed by another, cut in or faded in
/// where the track has 3.2 s to go.
fn transition(fade: bool) -> (Segment, Segment) {
    let track = track_with_quiet_ending();
    let other = seconds(&music(42, 16.0, SR), 0.0, 15.0);
    let catalog = Memory::new(vec![
        ("fades.wav", track.clone()),
        ("next.wav", other.clone()),
    ]);
    let events = run(&catalog, &followed_by(&track, &other, 3.2, fade));
    let ends = ends(&events);
    assert_eq!(ends.len(), 2, "{ends:#?}");
    let (a, b) = (ends[0].segment.clone(), ends[1].segment.clone());
    assert_eq!(
        (a.track.as_str(), b.track.as_str()),
        ("fades.wav", "next.wav")
    );
    (a, b)
}

#[test]
fn a_track_cut_into_in_its_last_seconds_ends_at_the_cut() {
    let (a, b) = transition(false);
    assert!((a.stream_end - 32.8).abs() < 0.5, "{a:?}");
    assert!((b.stream_start - 32.8).abs() < 0.5, "{b:?}");
}

#[test]
fn a_track_faded_in_over_a_quiet_ending_leaves_it_to_its_end() {
    let (a, b) = transition(true);
    assert!((a.stream_end - 36.0).abs() < 0.5, "{a:?}");
    assert!(b.stream_start < 34.5, "{b:?}");
}
