//! The server benchmarks' workload, shared by the module's `server` bench
//! (one server) and the client's `scale` bench (sharded, on a cluster) so both measure the very
//! same tracks and queries: 20,000-frame tracks of random hashes, and queries
//! of 1,000 frames with 4 toggle bits per frame.

/// Frames per synthetic track.
pub const FRAMES: usize = 20_000;
/// Frames per query.
pub const QUERY_FRAMES: usize = 1_000;
/// Toggle bits per query frame.
pub const TOGGLE_BITS: u32 = 4;

use crate::Rng;

/// A mask with `bits` distinct random bits set.
pub fn random_mask(rng: &mut Rng, bits: u32) -> u32 {
    let mut m = 0u32;
    while m.count_ones() < bits {
        m |= 1 << rng.below(32);
    }
    m
}

/// The hash a hot workload shares among all tracks (as silence or a steady
/// tone would be).
pub const HOT_HASH: u32 = 0x0F0F_0F0F;

/// Track number `seed` (the same hashes every time).
pub fn track(seed: u64) -> Vec<u32> {
    track_hot(seed, 0)
}

/// Track number `seed` with every `hot_every`-th frame (from a per-track
/// phase; 0: none) replaced by [`HOT_HASH`], never two in a row, so each is
/// a posting of its own: at 20, one posting in 20 of the whole index is
/// that one hash.
pub fn track_hot(seed: u64, hot_every: usize) -> Vec<u32> {
    let mut rng = Rng::new(seed);
    let mut hashes: Vec<u32> = (0..FRAMES).map(|_| rng.u32()).collect();
    if hot_every >= 2 {
        let phase = (seed as usize) % hot_every;
        for h in hashes.iter_mut().skip(phase).step_by(hot_every) {
            *h = HOT_HASH;
        }
    }
    hashes
}

/// A matching query: [`QUERY_FRAMES`] consecutive frames of one of the first
/// `tracks` tracks, 30 % of them with 2 of their toggle bits flipped (the
/// distortion toggles are meant to absorb). Returns (track number, start
/// frame, hashes, toggles).
pub fn matching_query(rng: &mut Rng, tracks: usize) -> (usize, usize, Vec<u32>, Vec<u32>) {
    matching_query_hot(rng, tracks, 0)
}

/// [`matching_query`] of the tracks of [`track_hot`].
pub fn matching_query_hot(
    rng: &mut Rng,
    tracks: usize,
    hot_every: usize,
) -> (usize, usize, Vec<u32>, Vec<u32>) {
    let t = rng.below(tracks as u64) as usize;
    let start = rng.below((FRAMES - QUERY_FRAMES) as u64) as usize;
    let mut q = track_hot(t as u64, hot_every)[start..start + QUERY_FRAMES].to_vec();
    let mut toggles = Vec::with_capacity(QUERY_FRAMES);
    for h in q.iter_mut() {
        let m = random_mask(rng, TOGGLE_BITS);
        if rng.below(10) < 3 {
            let mut flips = 0;
            for b in 0..32 {
                if m & (1 << b) != 0 && flips < 2 {
                    *h ^= 1 << b;
                    flips += 1;
                }
            }
        }
        toggles.push(m);
    }
    (t, start, q, toggles)
}

/// A query of random frames (matches nothing): (hashes, toggles).
pub fn random_query(rng: &mut Rng) -> (Vec<u32>, Vec<u32>) {
    let q = (0..QUERY_FRAMES).map(|_| rng.u32()).collect();
    let t = (0..QUERY_FRAMES)
        .map(|_| random_mask(rng, TOGGLE_BITS))
        .collect();
    (q, t)
}
