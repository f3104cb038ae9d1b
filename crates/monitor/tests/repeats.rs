//! The engine over music that repeats, against an in-memory catalog: a
//! track built on a loop matches itself at every repeat, and two tracks
//! sharing a passage both match it. Each excerpt must come out as one
//! segment, at the alignment (and of the track) that explains all of it;
//! an alignment reported before the right one was found is withdrawn.

use std::collections::HashMap;

use auscout_monitor::hashing::HashStream;
use auscout_monitor::{Catalog, Event, EventKind, Found, Monitor, MonitorError, Options};
use auscout_testkit::audio::music;

/// Hash rate, and the rate the synthetic audio is made at (so that excerpts
/// cut at a multiple of the hop hash exactly as the track did).
const SR: u32 = 6000;
const HOP: usize = 64;

fn hashes(x: &[f32]) -> Vec<u32> {
    let mut h = HashStream::new(SR).expect("hasher");
    let mut out = Vec::new();
    h.push(SR, x, &mut out).expect("hash");
    h.finish(&mut out).expect("finish");
    out.iter().map(|r| r.hash).collect()
}

/// Tracks held in memory; a lookup votes on alignments of exactly equal
/// hashes (the synthetic audio is clean).
struct Memory {
    tracks: Vec<(String, Vec<u32>)>,
    index: HashMap<u32, Vec<(usize, i64)>>,
}

impl Memory {
    fn new(tracks: Vec<(&str, Vec<f32>)>) -> Self {
        let tracks: Vec<(String, Vec<u32>)> = tracks
            .into_iter()
            .map(|(name, x)| (name.to_owned(), hashes(&x)))
            .collect();
        let mut index: HashMap<u32, Vec<(usize, i64)>> = HashMap::new();
        for (t, (_, h)) in tracks.iter().enumerate() {
            for (p, &v) in h.iter().enumerate() {
                index.entry(v).or_default().push((t, p as i64));
            }
        }
        Memory { tracks, index }
    }
}

impl Catalog for Memory {
    fn lookup(&self, hashes: &[u32], _toggles: &[u32]) -> Result<Vec<Found>, MonitorError> {
        let mut votes: HashMap<(usize, i64), usize> = HashMap::new();
        for (i, h) in hashes.iter().enumerate() {
            for &(t, p) in self.index.get(h).into_iter().flatten() {
                *votes.entry((t, p - i as i64)).or_default() += 1;
            }
        }
        let need = (hashes.len() / 10).max(5);
        Ok(votes
            .into_iter()
            .filter(|&(_, v)| v >= need)
            .map(|((t, position), v)| Found {
                id: t as u64 + 1,
                descr: self.tracks[t].0.clone(),
                position,
                score: v as f64 / hashes.len() as f64,
            })
            .collect())
    }

    fn track_hashes(&self, id: u64) -> Result<Vec<u32>, MonitorError> {
        Ok(self.tracks[id as usize - 1].1.clone())
    }

    fn max_toggle_bits(&self) -> u32 {
        0
    }
}

fn run(catalog: &Memory, stream: &[f32]) -> Vec<Event> {
    let mut events = Vec::new();
    let mut engine = Monitor::new(catalog, Options::default()).expect("engine");
    let mut on = |e: Event| events.push(e);
    for chunk in stream.chunks(4096) {
        engine.push(SR, chunk, &mut on).expect("push");
    }
    engine.finish(&mut on).expect("finish");
    events
}

/// `seconds` of `x`, a whole number of hops long.
fn seconds(x: &[f32], from: f64, len: f64) -> Vec<f32> {
    let hop = |s: f64| (s * f64::from(SR)) as usize / HOP * HOP;
    x[hop(from)..hop(from + len).min(x.len())].to_vec()
}

/// Every "start" is closed by exactly one "end" or "cancel" of its track;
/// returns the ends.
fn ends(events: &[Event]) -> Vec<&Event> {
    let mut open: Vec<u64> = Vec::new();
    for e in events {
        match e.kind {
            EventKind::Start => open.push(e.segment.id),
            EventKind::End | EventKind::Cancel => {
                let k = open
                    .iter()
                    .position(|&id| id == e.segment.id)
                    .unwrap_or_else(|| panic!("{:?} closes nothing started: {events:#?}", e.kind));
                open.remove(k);
            }
        }
    }
    assert!(open.is_empty(), "started, never closed: {open:?}");
    events.iter().filter(|e| e.kind == EventKind::End).collect()
}

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
