//! The engine over music that repeats, against an in-memory catalog: a
//! track built on a loop matches itself at every repeat, and two tracks
//! sharing a passage both match it. Each excerpt must come out as one
//! segment, at the alignment (and of the track) that explains all of it;
//! an alignment reported before the right one was found is withdrawn.

mod support;

use auscout_testkit::audio::music;
use support::{ends, run, seconds, Memory, SR};

#[test]
fn a_track_built_on_a_loop_is_one_segment_at_its_own_alignment() {
    // A 5 s phrase played four times, then a part of its own.
    let phrase = seconds(&music(21, 5.0, SR), 0.0, 5.0);
    let mut track: Vec<f32> = phrase.repeat(4);
    track.extend(seconds(&music(22, 15.0, SR), 0.0, 15.0));
    let other = music(23, 30.0, SR);
    let catalog = Memory::new(vec![
        ("loop.wav", track.clone()),
        ("other.wav", other.clone()),
    ]);
    // Unindexed music, the loop track from its start, then the other track.
    let mut stream = seconds(&music(99, 8.0, SR), 0.0, 8.0);
    stream.extend(&track);
    stream.extend(seconds(&other, 0.0, 20.0));

    let events = run(&catalog, &stream);
    let ends = ends(&events);
    assert_eq!(ends.len(), 2, "{ends:#?}");
    let s = &ends[0].segment;
    assert_eq!(s.track, "loop.wav");
    assert!((s.stream_start - 8.0).abs() < 0.5, "{s:?}");
    assert!((s.stream_end - 43.0).abs() < 0.5, "{s:?}");
    assert!(s.track_start < 0.5, "the loop's own alignment: {s:?}");
    assert_eq!(ends[1].segment.track, "other.wav");
}

#[test]
fn a_passage_two_tracks_share_is_the_track_heard_around_it() {
    // "b.wav" opens with 12 s of "a.wav"'s middle, then goes its own way.
    let a = music(31, 40.0, SR);
    let mut b = seconds(&a, 10.0, 12.0);
    b.extend(seconds(&music(32, 20.0, SR), 0.0, 20.0));
    let catalog = Memory::new(vec![("a.wav", a.clone()), ("b.wav", b)]);
    // "a.wav" whole: its 10-22 s are "b.wav"'s first 12 s as well.
    let mut stream = seconds(&music(98, 6.0, SR), 0.0, 6.0);
    stream.extend(seconds(&a, 0.0, 40.0));
    stream.extend(seconds(&music(97, 10.0, SR), 0.0, 10.0));

    let events = run(&catalog, &stream);
    let ends = ends(&events);
    assert_eq!(ends.len(), 1, "{ends:#?}");
    let s = &ends[0].segment;
    assert_eq!(s.track, "a.wav");
    assert!((s.stream_start - 6.0).abs() < 0.5, "{s:?}");
    assert!((s.stream_end - 46.0).abs() < 0.5, "{s:?}");
}
