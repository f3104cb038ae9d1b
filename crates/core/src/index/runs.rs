//! Runs of equal hashes: a track has one posting per run of equal
//! consecutive hashes, at the run's first frame (positions still count
//! every frame).

use super::postings::mix;

/// Calls `f(frame, hash)` for the first frame of every run of equal hashes in
/// `hashes`, whose frames are numbered from `start`; `prev` is the hash just
/// before (a repeat across an append's join is not a new run).
#[inline]
pub(super) fn run_starts(
    prev: Option<u32>,
    hashes: &[u32],
    start: u32,
    mut f: impl FnMut(u32, u32),
) {
    let mut prev = prev;
    for (k, &h) in hashes.iter().enumerate() {
        if prev != Some(h) {
            f(start + k as u32, h);
        }
        prev = Some(h);
    }
}

/// The postings (`mix(hash) << 32 | ref`) of `hashes`, whose frames have
/// refs from `start`, `prev` the hash before them.
pub(super) fn postings_of(prev: Option<u32>, hashes: &[u32], start: u32) -> Vec<u64> {
    let mut entries = Vec::with_capacity(hashes.len());
    run_starts(prev, hashes, start, |r, h| {
        entries.push((u64::from(mix(h)) << 32) | u64::from(r))
    });
    entries
}

/// The postings `hashes` has: its runs of equal hashes.
pub(super) fn count_runs(hashes: &[u32]) -> u64 {
    let mut n = 0;
    run_starts(None, hashes, 0, |_, _| n += 1);
    n
}
