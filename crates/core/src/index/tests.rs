//! Unit tests of the index: API semantics, probe results against a naive
//! model over many random inserts, appends and removes, growth without
//! rebuilds, and writes that panic half-way. The helpers below are shared.

mod api;
mod growth;
mod model;
mod rollback;

use std::collections::{BTreeMap, HashMap};

use super::*;

pub(super) struct Rng(u64);
impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// All postings as a sorted list of (probe index, id, pos).
pub(super) fn probe_all(ix: &Index, probes: &[u32]) -> Vec<(usize, TrackId, u32)> {
    let mut out = Vec::new();
    ix.probe(probes, &mut |i, slot, pos| {
        assert_eq!(
            ix.slot_hashes(slot).get(pos as usize),
            Some(&probes[i]),
            "posting points at another hash"
        );
        out.push((i, ix.slot_id(slot), pos));
    });
    out.sort_unstable();
    out
}

/// The postings a naive model expects: first frame of each run of equal hashes.
pub(super) fn model_probe(
    model: &BTreeMap<TrackId, Vec<u32>>,
    probes: &[u32],
) -> Vec<(usize, TrackId, u32)> {
    let mut by_hash: HashMap<u32, Vec<(TrackId, u32)>> = HashMap::new();
    for (&id, hs) in model {
        for (k, &h) in hs.iter().enumerate() {
            if k == 0 || hs[k - 1] != h {
                by_hash.entry(h).or_default().push((id, k as u32));
            }
        }
    }
    let mut out = Vec::new();
    for (i, h) in probes.iter().enumerate() {
        for &(id, pos) in by_hash.get(h).map(|v| v.as_slice()).unwrap_or(&[]) {
            out.push((i, id, pos));
        }
    }
    out.sort_unstable();
    out
}

pub(super) fn random_track(rng: &mut Rng, len: usize) -> Vec<u32> {
    (0..len).map(|_| rng.next() as u32).collect()
}

/// Probes every stored frame's hash of `model` (a sample) plus random misses.
pub(super) fn assert_probes_match(ix: &Index, model: &BTreeMap<TrackId, Vec<u32>>, rng: &mut Rng) {
    let mut probes: Vec<u32> = (0..500).map(|_| rng.next() as u32).collect();
    for hs in model.values() {
        probes.extend(hs.iter().step_by(97));
    }
    assert_eq!(probe_all(ix, &probes), model_probe(model, &probes));
}

/// The probes of `ix` equal those of a bulk load of the same tracks (and
/// those of the naive model).
pub(super) fn assert_equals_bulk_load(
    ix: &Index,
    model: &BTreeMap<TrackId, Vec<u32>>,
    rng: &mut Rng,
) {
    let bulk = Index::from_tracks(
        ix.next_id(),
        model.iter().map(|(&id, h)| (Some(id), &b""[..], &h[..])),
    );
    let Ok(bulk) = bulk else {
        panic!("bulk load failed")
    };
    bulk.check();
    let mut probes: Vec<u32> = (0..2000).map(|_| rng.next() as u32).collect();
    for hs in model.values() {
        probes.extend(hs.iter().step_by(31));
    }
    let got = probe_all(ix, &probes);
    assert_eq!(got, probe_all(&bulk, &probes));
    assert_eq!(got, model_probe(model, &probes));
}
