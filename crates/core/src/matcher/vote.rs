//! Step 1 of a lookup: time-aligned voting.
//!
//! Every hit of a query frame's hash variant votes for `(slot, offset bin)`,
//! `offset = track_pos - query_pos`. Bins are [`BIN_WIDTH`] offsets wide and a
//! candidate's strength adds its best neighbouring bin, so any ±2 frames of
//! drift around a centre stays inside one candidate. A query frame votes at
//! most once per bin: adjacent frames of a track differ by only a few bits, so
//! several variants of one frame often hit neighbouring positions of the same
//! track, and counting them all would reward toggle-heavy frames, not
//! agreement in time.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::FrameSource;

/// Offsets per bin (a power of two: the bin is an arithmetic shift).
const BIN_SHIFT: u32 = 2;
pub(super) const BIN_WIDTH: i64 = 1 << BIN_SHIFT;

/// A scratch map larger than this many entries is dropped after the lookup
/// instead of kept for the next one (a freak query must not pin memory).
const KEEP_SCRATCH_ENTRIES: usize = 1 << 16;

/// One (slot, offset bin) the votes point at, with where in the query and at
/// which offset the votes sit, so verification can start where they agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Candidate {
    pub slot: u32,
    /// Votes of the bin plus its best neighbour.
    pub votes: u32,
    /// Mean query frame of those votes.
    pub anchor_frame: usize,
    /// Mean offset of those votes, rounded.
    pub anchor_offset: i64,
}

#[derive(Debug, Clone, Copy)]
struct Bin {
    votes: u32,
    sum_offset: i64,
    sum_frame: u64,
}

/// A 64-bit multiply-fold hash: the vote keys are packed integers, SipHash's
/// DoS resistance buys nothing here and costs most of the voting time. The
/// fold makes every output bit depend on every key bit (hashbrown takes the
/// bucket from the low bits and the tag from the high ones).
#[derive(Default)]
struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u64(&mut self, k: u64) {
        let m = u128::from(k ^ self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835);
        self.0 = (m as u64) ^ ((m >> 64) as u64);
    }
}

type BinMap = HashMap<u64, Bin, BuildHasherDefault<FoldHasher>>;

/// One thread's buffers for collecting hits.
#[derive(Default)]
struct Scratch {
    probes: Vec<u32>,
    /// The query frame of each probe.
    frame_of: Vec<u32>,
    /// (bin key, query frame, offset) of every hit.
    hits: Vec<(u64, u32, i64)>,
}

thread_local! {
    // Reused across lookups on one thread: no allocation per lookup once
    // warm. Bins and hit buffers apart, so the thread counting votes can
    // also collect hits when a lookup is split over the pool.
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
    static BINS: RefCell<BinMap> = RefCell::new(BinMap::default());
}

/// Runs `f` with this thread's hit buffers (fresh ones if they are in use,
/// which only a `FrameSource` re-entering lookup from its callback causes).
fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut scratch) => {
            let out = f(&mut scratch);
            if scratch.hits.capacity() > KEEP_SCRATCH_ENTRIES
                || scratch.probes.capacity() > KEEP_SCRATCH_ENTRIES
            {
                *scratch = Scratch::default();
            }
            out
        }
        Err(_) => f(&mut Scratch::default()),
    })
}

/// Runs `f` with this thread's bin map, emptied (a fresh one if it is in use).
fn with_bins<R>(f: impl FnOnce(&mut BinMap) -> R) -> R {
    BINS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut bins) => {
            bins.clear();
            let out = f(&mut bins);
            if bins.capacity() > KEEP_SCRATCH_ENTRIES {
                *bins = BinMap::default();
            }
            out
        }
        Err(_) => f(&mut BinMap::default()),
    })
}

fn key(slot: u32, bin: i64) -> u64 {
    // |offset| < 2^33, so the bin fits an i32 with room to spare.
    (u64::from(slot) << 32) | u64::from(bin as i32 as u32)
}

/// The `k` strongest candidates, strongest first. With `threads > 1` the
/// batches of query frames are shared out among the calling thread and up
/// to `threads - 1` idle threads of the engine pool.
pub(super) fn best_candidates<S: FrameSource + Sync + ?Sized>(
    src: &S,
    query: &[u32],
    toggles: &[u32],
    k: usize,
    threads: usize,
) -> Vec<Candidate> {
    with_bins(|bins| run(src, query, toggles, k, threads, bins))
}

fn run<S: FrameSource + Sync + ?Sized>(
    src: &S,
    query: &[u32],
    toggles: &[u32],
    k: usize,
    threads: usize,
    bins: &mut BinMap,
) -> Vec<Candidate> {
    let probes: usize = toggles.iter().map(|t| 1usize << t.count_ones()).sum();
    if threads > 1 && probes >= 2 * MIN_PROBES_PER_THREAD {
        // Each batch of frames collects its hits on whichever thread claims
        // it (with that thread's scratch); the votes are then counted here.
        // Frames are disjoint between batches, so the per-frame dedup stays
        // exact, and counting is order-free.
        let ranges: Vec<std::ops::Range<usize>> = batches(0..query.len()).collect();
        let lists = crate::pool::map(threads, &ranges, |range| {
            with_scratch(|local| {
                collect_hits(src, query, toggles, range.clone(), local);
                local.hits.clone()
            })
        });
        for hits in &lists {
            count_votes(bins, hits);
        }
    } else {
        with_scratch(|s| {
            for batch in batches(0..query.len()) {
                collect_hits(src, query, toggles, batch, s);
                count_votes(bins, &s.hits);
            }
        });
    }
    rank(bins, k)
}

/// `frames` cut into consecutive batches of [`FRAMES_PER_BATCH`].
fn batches(frames: std::ops::Range<usize>) -> impl Iterator<Item = std::ops::Range<usize>> {
    frames
        .clone()
        .step_by(FRAMES_PER_BATCH)
        .map(move |first| first..(first + FRAMES_PER_BATCH).min(frames.end))
}

/// Below twice this many probes, a lookup is not shared out: publishing
/// it and waiting for a helper's batch costs more than it saves.
const MIN_PROBES_PER_THREAD: usize = 2048;

/// Query frames probed together. The index sorts and prefetches one batch,
/// so a batch of ~4,000 probes (at 4 toggle bits) overlaps its cache misses
/// where a frame's 16 alone could not; batches keep the hit list small even when a hash is
/// shared by thousands of tracks.
const FRAMES_PER_BATCH: usize = 256;

/// The hits of the query frames in `frames`, into `s.hits` as (bin key,
/// query frame, offset), at most one per (bin, frame).
fn collect_hits<S: FrameSource + ?Sized>(
    src: &S,
    query: &[u32],
    toggles: &[u32],
    frames: std::ops::Range<usize>,
    s: &mut Scratch,
) {
    s.probes.clear();
    s.frame_of.clear();
    for i in frames {
        let (Some(&hash), Some(&mask)) = (query.get(i), toggles.get(i)) else {
            break;
        };
        // A run of equal hashes has one posting, at its first frame, in the
        // index; probing only the query run's first frame keeps every frame of
        // an aligned run voting for the same offset.
        if i > 0 && query.get(i - 1) == Some(&hash) {
            continue;
        }
        expand_into(hash, mask, &mut s.probes);
        s.frame_of.resize(s.probes.len(), i as u32);
    }
    s.hits.clear();
    let (hits, frame_of) = (&mut s.hits, &s.frame_of);
    src.probe(&s.probes, &mut |p, slot, pos| {
        if let Some(&i) = frame_of.get(p) {
            let offset = i64::from(pos) - i64::from(i);
            hits.push((key(slot, offset >> BIN_SHIFT), i, offset));
        }
    });
    // A query frame votes at most once per bin (with its smallest offset
    // there): grouping by (bin, frame) makes that exact whatever order the
    // index reports hits in.
    s.hits.sort_unstable();
    s.hits.dedup_by(|b, a| a.0 == b.0 && a.1 == b.1);
}

/// Adds one vote per hit to its bin.
fn count_votes(bins: &mut BinMap, hits: &[(u64, u32, i64)]) {
    for &(key, i, offset) in hits {
        let bin = bins.entry(key).or_insert(Bin {
            votes: 0,
            sum_offset: 0,
            sum_frame: 0,
        });
        bin.votes += 1;
        bin.sum_offset += offset;
        bin.sum_frame += u64::from(i);
    }
}

/// `hash` XOR every subset of `mask` (2^popcount variants, `hash` itself
/// first), appended to `out`.
fn expand_into(hash: u32, mask: u32, out: &mut Vec<u32>) {
    // Subsets in ascending order: `sub - mask` borrows through the gaps.
    let mut sub = 0u32;
    loop {
        out.push(hash ^ sub);
        sub = sub.wrapping_sub(mask) & mask;
        if sub == 0 {
            break;
        }
    }
}

fn rank(bins: &BinMap, k: usize) -> Vec<Candidate> {
    let mut cands: Vec<(Candidate, u64)> = Vec::new();
    for (&key, bin) in bins {
        let slot = (key >> 32) as u32;
        let b = i64::from(key as u32 as i32);
        let below = bins.get(&self::key(slot, b - 1));
        let above = bins.get(&self::key(slot, b + 1));
        let votes = |n: Option<&Bin>| n.map_or(0, |n| n.votes);
        // Only a local maximum stands for its neighbourhood (ties go to the
        // lower bin), so one alignment does not fill several candidate places.
        if votes(below) >= bin.votes || votes(above) > bin.votes {
            continue;
        }
        let partner = if votes(above) > votes(below) {
            above
        } else {
            below
        };
        let (mut n, mut off, mut fr) = (bin.votes, bin.sum_offset, bin.sum_frame);
        if let Some(p) = partner {
            n += p.votes;
            off += p.sum_offset;
            fr += p.sum_frame;
        }
        let nn = i64::from(n.max(1));
        let cand = Candidate {
            slot,
            votes: n,
            anchor_frame: (fr / u64::from(n.max(1))) as usize,
            anchor_offset: (off + off.signum() * nn / 2) / nn,
        };
        cands.push((cand, key));
    }
    // Strongest first; ties by key so the answer does not depend on map order.
    let order =
        |a: &(Candidate, u64), b: &(Candidate, u64)| b.0.votes.cmp(&a.0.votes).then(a.1.cmp(&b.1));
    if cands.len() > k && k > 0 {
        cands.select_nth_unstable_by(k - 1, order);
        cands.truncate(k);
    }
    cands.sort_unstable_by(order);
    cands.into_iter().map(|(c, _)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expand_gives_every_subset_once() {
        let mut v = Vec::new();
        expand_into(0xF0F0_0000, 0b1011, &mut v);
        assert_eq!(v.len(), 8);
        assert_eq!(v.first(), Some(&0xF0F0_0000));
        let mut sorted = v.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), 8);
        assert!(v.iter().all(|h| (h ^ 0xF0F0_0000) & !0b1011 == 0));
    }

    #[test]
    fn negative_offsets_bin_apart_from_positive_ones() {
        assert_ne!(key(3, -1), key(3, 0));
        assert_ne!(key(3, -1), key(2, -1));
        assert_eq!((-1i64) >> BIN_SHIFT, -1);
    }
}
