//! The engine against an in-memory catalog: synthetic tracks hashed as the
//! engine hashes them, lookups that vote on exactly equal hashes, and the
//! events of a run checked for consistency.

#![allow(dead_code)]

use std::collections::HashMap;

use auscout_monitor::hashing::{HashStream, Hashed};
use auscout_monitor::{Catalog, Event, EventKind, Found, Monitor, MonitorError, Options};

/// Hash rate, and the rate the synthetic audio is made at (so that excerpts
/// cut at a multiple of the hop hash exactly as the track did).
pub const SR: u32 = 6000;
pub const HOP: usize = 64;

pub fn hashes(x: &[f32]) -> Vec<u32> {
    let mut h = HashStream::new(SR).expect("hasher");
    let mut out = Hashed::default();
    h.push(SR, x, &mut out).expect("hash");
    h.finish(&mut out).expect("finish");
    out.hashes.iter().map(|r| r.hash).collect()
}

/// Tracks held in memory; a lookup votes on alignments of exactly equal
/// hashes (the synthetic audio is clean).
pub struct Memory {
    tracks: Vec<(String, Vec<u32>)>,
    index: HashMap<u32, Vec<(usize, i64)>>,
}

impl Memory {
    pub fn new(tracks: Vec<(&str, Vec<f32>)>) -> Self {
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

pub fn run(catalog: &Memory, stream: &[f32]) -> Vec<Event> {
    run_with(catalog, stream, Options::default())
}

pub fn run_with(catalog: &Memory, stream: &[f32], options: Options) -> Vec<Event> {
    let mut events = Vec::new();
    let mut engine = Monitor::new(catalog, options).expect("engine");
    let mut on = |e: Event| events.push(e);
    for chunk in stream.chunks(4096) {
        engine.push(SR, chunk, &mut on).expect("push");
    }
    engine.finish(&mut on).expect("finish");
    events
}

/// `seconds` of `x`, a whole number of hops long.
pub fn seconds(x: &[f32], from: f64, len: f64) -> Vec<f32> {
    let hop = |s: f64| (s * f64::from(SR)) as usize / HOP * HOP;
    x[hop(from)..hop(from + len).min(x.len())].to_vec()
}

/// Every "start" is closed by exactly one "end" or "cancel" of its track;
/// returns the ends.
pub fn ends(events: &[Event]) -> Vec<&Event> {
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
