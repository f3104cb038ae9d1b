//! The inverted index hash → postings, in about 7.7 bytes per posting (5
//! in the run, the rest its share of directory and delta).
//!
//! A posting is a `u32` *global ref* (`track base + frame`, see `Index`). Its
//! key is `m = mix(hash)`, a bijective scramble of the frame hash: real audio
//! hashes are far from uniform, the scrambled ones spread evenly over the
//! partitions and buckets addressed by the top bits of `m`.
//!
//! Layout: extendible hashing of *partitions*. A table of `2^G` entries
//! (`route`, at most 2^14) maps the top `G` bits of `m` to a partition; a
//! partition has its own prefix length `L ≤ G` (it owns `2^(G-L)` entries)
//! and its own directory of `2^D` buckets addressed by the `D` bits of `m`
//! after its prefix (`D ≤ 10`, `L + D ≤ 24`), sized for a load of about
//! 8–32 postings per bucket. Each partition holds
//! - an immutable *run*: a directory of `2^D + 1` entries, then per posting
//!   the low byte of `m` (a fingerprint, scanned to skip non-matching
//!   postings) and the ref. The bits of `m` between the bucket and the
//!   fingerprint are not stored: a fingerprint hit is confirmed by the caller
//!   against the track's hash.
//! - a small mutable *delta*: an open-addressing table of `(m, ref)` in one
//!   `u64` (linear probing, load ≤ 1/2), so an insert is O(1).
//!
//! Each directory entry (`dir_entry`) also carries flags that let a probe
//! stop at the directory: 64 *run flags*, one per value of the 6 bits of
//! `m` after the bucket (the *run key*) present in the bucket's run, and 16
//! *delta flags*, one per value of the first 4 of them, set when the delta
//! may hold such a posting. A probe thus costs one cache miss (the directory)
//! when its hash is absent, about three times in four at the usual load,
//! and two otherwise (directory, fingerprints); it touches the delta only
//! when flagged.
//!
//! After each change, a cursor merges partitions round-robin (delta into run,
//! dead refs dropped) within a work budget proportional to the change, so no
//! single insert pays for the whole index, deltas stay near
//! `run / (2 · WORK_PER_POSTING)` on average, and a removed track's postings
//! are gone within two sweeps.
//!
//! The same merges follow the index as it grows or shrinks; nothing is
//! rebuilt at once. A merge leaving a partition of more than 24K–32K
//! postings (`split_at`) splits it into two partitions one prefix bit
//! longer (the table doubles first when needed; a copy of at most 2^14
//! entries), and a merge whose partition's load has left `[2, 32]` gives it
//! a directory sized anew. The run does not store the address bits a bigger
//! directory or a split needs, so such a merge reads them back from the
//! tracks' hashes (`HashesOf`): one random read per posting, once per
//! doubling of each partition, paid from the same budget. Partitions never
//! join again: a shrinking index keeps its partitions with smaller
//! directories. Only a re-base of the ref space still rebuilds everything
//! (see `Index`).

mod bulk;
#[cfg(test)]
mod check;
mod merge;
mod partition;
mod place;
mod probe;
#[cfg(test)]
mod tests;

use super::dir_entry::RUN_KEY_BITS;
use super::memsize::alloc_size;
use merge::Merged;
use partition::{DeadRanges, Partition};
use place::{group_by, place_postings, PARALLEL_PLACE};

/// Directory bits per partition (at most): a partition of 2^10 buckets holds
/// about 8K–32K postings, so one merge rewrites well under 200 KB.
const MAX_DIR_BITS: u32 = 10;
/// The fingerprint is the low byte of `m`; bucket addresses (partition
/// prefix and directory bits) use at most the top 24 bits.
pub(super) const MAX_ADDR_BITS: u32 = 24;
/// Deepest partition prefix: 2^14 partitions at most, each still with the
/// full `MAX_DIR_BITS` (partition numbers fit in `u16`).
const MAX_DEPTH: u32 = MAX_ADDR_BITS - MAX_DIR_BITS;
/// A merge leaving more postings than this (a load of `4·LOAD` at the full
/// directory) splits the partition in two; the halves start at a load of
/// about `2·LOAD`. Each partition splits a little earlier, by up to a
/// quarter (see `split_at`).
const SPLIT_AT: u64 = (4 * LOAD) << MAX_DIR_BITS;
/// Merge work charged per posting whose scrambled hash is recovered from its
/// track (a merge that needs more address bits than the run stores; see
/// `Postings::merged`), besides the copy. A recovery takes several copies'
/// time (~25 ns, a random read), but charging that in full slowed the sweep
/// while a doubling's splits went on, and more deltas overflowed into
/// unbudgeted merges (`DELTA_MAX`): in process, building 40M frames by
/// 20,000-frame inserts, charged at 4 there were 329 inserts merging three
/// or more partitions that way, at 1 there were 192.
const RECOVER_COST: u64 = 1;
/// Postings per bucket when a partition's directory is sized: in
/// `(LOAD, 2·LOAD]`; a merge re-sizes it when the load has left
/// `[LOAD/4, 4·LOAD]`.
const LOAD: u64 = 8;
/// Merge work (postings rewritten) granted per posting inserted.
const WORK_PER_POSTING: u64 = 8;
/// Merge work granted per posting removed (sweeps dead postings away).
const WORK_PER_REMOVED: u64 = 2;
/// A partition receiving this many postings at once merges them straight
/// into its run, and a delta never grows past `DELTA_MAX`: equal hashes (a
/// track alternating two hashes, say) share one home slot in the delta, so
/// its linear-probing clusters must stay short.
const DIRECT_MERGE: usize = 1024;
const DELTA_MAX: usize = 4096;
/// Most a merge costs besides its postings (the directory walk; a partition
/// of `2^D` buckets costs `2^D`).
const MERGE_OVERHEAD: u64 = 1 << MAX_DIR_BITS;
/// Cost of visiting a partition with nothing to rewrite.
const NOTHING_TO_MERGE: u64 = 64;
/// Most merge work planned as one batch (see `Postings::work`).
const MAX_BATCH_COST: u64 = 1 << 20;
/// Least merge work a batch must hold to be split over two threads (a
/// hand-off costs about what rewriting a few thousand postings does).
const PARALLEL_MERGE: u64 = 1 << 14;
/// An empty delta slot: ref `u32::MAX` is never handed out.
const EMPTY: u64 = u64::MAX;
/// Granularity of the coarse dead-ref bitmap (refs per bit).
const DEAD_BLOCK_SHIFT: u32 = 12;

/// A bijective scramble of the 32-bit hash (lowbias32 by C. Wellons).
#[inline]
pub(super) fn mix(h: u32) -> u32 {
    let mut x = h;
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

/// The run key of `m` in a bucket addressed by its top `addr_bits` bits:
/// the 6 bits after them (see `dir_entry`).
#[inline]
fn run_key(m: u32, addr_bits: u32) -> u32 {
    (m << addr_bits) >> (32 - RUN_KEY_BITS)
}

/// The address bits that suit `postings`: a load in `(LOAD, 2·LOAD]`.
pub(super) fn addr_bits_for(postings: u64) -> u32 {
    let buckets = postings.div_ceil(2 * LOAD).max(1);
    (64 - (buckets - 1).leading_zeros()).min(MAX_ADDR_BITS)
}

/// Directory bits for a partition of prefix length `depth` holding `n`
/// postings: a load in `(LOAD, 2·LOAD]` where the caps allow.
fn dir_bits_for(n: u64, depth: u32) -> u32 {
    addr_bits_for(n)
        .min(MAX_DIR_BITS)
        .min(MAX_ADDR_BITS.saturating_sub(depth))
}

/// The size above which a merge splits partition `p`: `SPLIT_AT` less up
/// to a quarter, pseudo-random per partition number. Scrambled hashes fill
/// all partitions alike, so with one threshold they would all split within
/// one sweep, each split a re-addressing merge (see `Postings::merged`):
/// spread over thresholds 3/4–1 of the size, the splits of one doubling
/// are spread over a quarter of it.
fn split_at(p: usize) -> u64 {
    let jitter = u64::from(mix(p as u32) >> 24);
    SPLIT_AT - (((SPLIT_AT / 4) * jitter) >> 8)
}

/// What a merge makes of a partition of prefix length `depth` and `dir_bits`
/// directory bits that will hold `n` postings: `(split, dir_bits)`, the
/// directory bits being each half's after a split. The directory is kept
/// while its load stays within `[LOAD/4, 4·LOAD]` (changing it costs a
/// rewrite that may have to recover hashes, see `merged`).
fn shape_for(depth: u32, dir_bits: u32, n: u64, split_at: u64) -> (bool, u32) {
    if n > split_at && depth < MAX_DEPTH {
        return (true, dir_bits_for(n / 2, depth + 1));
    }
    let buckets = 1u64 << dir_bits;
    if n * 4 >= LOAD * buckets && n <= 4 * LOAD * buckets {
        (false, dir_bits)
    } else {
        (false, dir_bits_for(n, depth))
    }
}

/// Appends `hash << 32 | ref` to its second argument for every ref of the
/// first whose track is live, in any order: the index keeps the tracks, the
/// postings ask it when a merge needs address bits its run does not store.
pub(super) type HashesOf<'a> = dyn Fn(&[u32], &mut Vec<u64>) + Sync + 'a;

/// Calls its argument with `(m, ref)` for every posting to store.
pub(super) type EachPosting<'a> = dyn Fn(&mut dyn FnMut(u32, u32)) + 'a;

#[derive(Debug, Clone)]
pub(super) struct Postings {
    /// Extendible hashing: entry `i` is the partition of every `m` whose top
    /// `route_bits` bits are `i`. A partition of prefix length `depth` owns
    /// an aligned block of `2^(route_bits - depth)` entries. A merge that
    /// leaves a partition too big splits it: the upper half of its block
    /// then names a new partition appended to `parts` (the table doubles
    /// first when the partition's depth is `route_bits`). Partitions never
    /// join again; a shrinking one takes a smaller directory instead.
    route: Vec<u16>,
    route_bits: u32,
    parts: Vec<Partition>,
    /// Postings stored, dead ones included.
    stored: u64,
    /// Stored postings whose track is gone (purged by merges).
    dead: u64,
    /// Next partition the round-robin merge rewrites, and the work in hand.
    /// A partition split off during a sweep is appended after the cursor
    /// and merged again before the sweep ends (harmless: it starts clean).
    cursor: usize,
    credit: u64,
    /// Dead ranges recorded before the current sweep began (every partition
    /// merged since has dropped them), and during it.
    dead_old: DeadRanges,
    dead_new: DeadRanges,
    /// Partition visits of the merge sweeps since creation (tests: an
    /// insert does not sweep over and over).
    #[cfg(test)]
    pub(super) visits: u64,
}

impl Default for Postings {
    fn default() -> Self {
        Self::with_addr_bits(0)
    }
}

impl Postings {
    /// Empty postings of `2^addr_bits` buckets: `2^(addr_bits - D)`
    /// partitions of `2^D` buckets, `D = min(addr_bits, MAX_DIR_BITS)`.
    pub(super) fn with_addr_bits(addr_bits: u32) -> Self {
        let addr_bits = addr_bits.min(MAX_ADDR_BITS);
        let dir_bits = addr_bits.min(MAX_DIR_BITS);
        let depth = addr_bits - dir_bits;
        let nparts = 1usize << depth;
        Postings {
            route: (0..nparts).map(|p| p as u16).collect(),
            route_bits: depth,
            parts: vec![Partition::empty(depth, dir_bits); nparts],
            stored: 0,
            dead: 0,
            cursor: 0,
            credit: 0,
            dead_old: DeadRanges::default(),
            dead_new: DeadRanges::default(),
            #[cfg(test)]
            visits: 0,
        }
    }

    /// Live postings.
    #[cfg(test)]
    pub(super) fn live(&self) -> u64 {
        self.stored - self.dead
    }

    #[inline]
    fn router(&self) -> Router<'_> {
        Router {
            route: &self.route,
            bits: self.route_bits,
        }
    }

    #[inline]
    fn part_of(&self, m: u32) -> usize {
        self.router().part_of(m)
    }

    /// Adds postings, each `m << 32 | ref` (`m` the scrambled hash).
    ///
    /// Each posting lands at a random place (its delta slot and its
    /// directory flag), so the work is organised for the CPU to overlap
    /// those cache misses: postings are grouped by partition (a counting
    /// sort), then each partition's delta is grown once and chunk by chunk
    /// the target lines are first prefetched and only then written. With a
    /// second thread each half of the partitions does its own growing and
    /// placing (growing tables is a quarter of an insert).
    pub(super) fn add(&mut self, entries: &[u64], hashes_of: &HashesOf) {
        let np = self.parts.len();
        let (grouped, starts) = group_by(entries, np, |e| self.part_of((e >> 32) as u32));
        let router = Router {
            route: &self.route,
            bits: self.route_bits,
        };
        let mid = np / 2;
        let direct =
            if crate::pool::insert_threads() > 1 && entries.len() >= PARALLEL_PLACE && mid > 0 {
                let split = starts.get(mid).copied().unwrap_or(0);
                let (low, high) = self.parts.split_at_mut(mid);
                let (first, second) = grouped.split_at(split);
                let (low_starts, high_starts) = starts.split_at(mid);
                let mut direct_high = Vec::new();
                let mut direct = Vec::new();
                crate::pool::join(
                    || direct = place_postings(router, low, 0, low_starts, first),
                    || direct_high = place_postings(router, high, mid, high_starts, second),
                );
                direct.extend(direct_high);
                direct
            } else {
                place_postings(router, &mut self.parts, 0, &starts, &grouped)
            };
        // Big groups go straight into their runs. A merge may split its
        // partition, which appends one: the numbers in `direct` stay valid.
        for p in direct {
            let (lo, hi) = (
                starts.get(p).copied().unwrap_or(0),
                starts.get(p + 1).copied().unwrap_or(0),
            );
            if let Some(group) = grouped.get(lo..hi) {
                self.merge(p, group, hashes_of);
            }
        }
        self.stored += entries.len() as u64;
    }

    /// Marks refs `start..end` (holding `postings` postings) as dead.
    pub(super) fn kill(&mut self, start: u32, end: u32, postings: u64) {
        if start < end {
            self.dead_new.add(start, end);
        }
        self.dead += postings;
        self.credit = self.credit.saturating_add(postings * WORK_PER_REMOVED);
    }

    /// Grants merge work for `inserted` new postings and spends what is in hand.
    pub(super) fn work(&mut self, inserted: u64, hashes_of: &HashesOf) {
        self.credit = self.credit.saturating_add(inserted * WORK_PER_POSTING);
        // A sweep that rewrites every partition costs about `stored`: never
        // carry more credit than that (a long quiet stretch must not buy a pause).
        let full = self.stored + MERGE_OVERHEAD * self.parts.len() as u64;
        self.credit = self.credit.min(full);
        let threads = crate::pool::insert_threads().min(2);
        // Partitions visited in a row that had nothing to rewrite: once that
        // is all of them, the credit has nothing left to buy. (A small index
        // gets more credit per insert than one sweep costs; sweeping again
        // and again over partitions just merged would cost a 20,000-frame
        // insert into the first few hundred thousand frames 5–10 ms, and 3×
        // that with a second thread, one hand-off per idle sweep.)
        let mut idle = 0usize;
        while self.credit > 0 && !self.parts.is_empty() {
            if idle >= self.parts.len() {
                self.credit = 0;
                break;
            }
            // The partitions from the cursor whose merges spend the credit, up
            // to the end of the sweep and at most `MAX_BATCH_COST` at once
            // (their rewritten copies coexist with the originals until
            // installed). Planned first, so that with a second thread the whole
            // batch is one hand-off (each merge only reads the index besides
            // its own partition); waking a pool thread per merge costs more
            // than the merges themselves.
            let budget = self.credit.min(MAX_BATCH_COST);
            let (mut end, mut planned) = (self.cursor, 0u64);
            let mut costs = Vec::new();
            while end < self.parts.len() && planned < budget {
                let cost = self.merge_cost(end);
                costs.push(cost);
                planned += cost;
                end += 1;
            }
            let batch: Vec<usize> = (self.cursor..end).collect();
            #[cfg(test)]
            {
                self.visits += batch.len() as u64;
            }
            for &cost in &costs {
                idle = if cost == NOTHING_TO_MERGE {
                    idle + 1
                } else {
                    0
                };
            }
            // A hand-off to the pool costs tens of microseconds: only a batch
            // with real work is split.
            let merged: Vec<Merged> = if threads > 1 && batch.len() > 1 && planned >= PARALLEL_MERGE
            {
                // Two groups of about equal cost.
                let mut acc = 0;
                let half = costs
                    .iter()
                    .position(|&cost| {
                        acc += cost;
                        2 * acc >= planned
                    })
                    .map_or(batch.len(), |k| k + 1)
                    .min(batch.len() - 1);
                let this = &*self;
                let (first, second) = batch.split_at(half);
                crate::pool::map(2, &[first, second], |group| {
                    group
                        .iter()
                        .map(|&p| this.merged(p, &[], hashes_of))
                        .collect::<Vec<_>>()
                })
                .into_iter()
                .flatten()
                .collect()
            } else {
                batch
                    .iter()
                    .map(|&p| self.merged(p, &[], hashes_of))
                    .collect()
            };
            // Installing may split partitions: the halves are appended, so
            // the numbers of the batch stay valid.
            let cost: u64 = batch
                .iter()
                .zip(merged)
                .map(|(&p, m)| self.install(p, m))
                .sum();
            self.credit = self.credit.saturating_sub(cost);
            self.cursor = end;
            if self.cursor >= self.parts.len() {
                self.cursor = 0;
                // Every partition has been merged since `dead_old` was recorded.
                self.dead_old = std::mem::take(&mut self.dead_new);
            }
        }
    }

    #[inline]
    fn is_dead(&self, r: u32) -> bool {
        self.dead_new.contains(r) || self.dead_old.contains(r)
    }

    pub(super) fn mem_usage(&self) -> usize {
        std::mem::size_of::<Self>()
            + alloc_size(self.route.capacity() * 2)
            + alloc_size(self.parts.capacity() * std::mem::size_of::<Partition>())
            + self.parts.iter().map(Partition::mem_usage).sum::<usize>()
            + self.dead_old.mem_usage()
            + self.dead_new.mem_usage()
    }

    /// The heap blocks of the partitions, each as `(address, bytes)` (the
    /// route table and the dead ranges are small and stay in cache).
    pub(super) fn heap_blocks(&self, f: &mut dyn FnMut(usize, usize)) {
        f(
            self.parts.as_ptr() as usize,
            self.parts.len() * std::mem::size_of::<Partition>(),
        );
        for p in &self.parts {
            p.heap_blocks(f);
        }
    }

    /// Bits of the route table (tests).
    #[cfg(test)]
    pub(super) fn route_bits(&self) -> u32 {
        self.route_bits
    }

    /// Buckets over all partitions, partitions, dead postings (tests).
    #[cfg(test)]
    pub(super) fn geometry(&self) -> (u64, usize, u64) {
        let buckets = self.parts.iter().map(|p| p.buckets() as u64).sum();
        (buckets, self.parts.len(), self.dead)
    }
}

/// The route of `Postings`, apart from it so threads placing postings in
/// disjoint partitions can share it.
#[derive(Debug, Clone, Copy)]
struct Router<'a> {
    route: &'a [u16],
    bits: u32,
}

impl Router<'_> {
    /// The partition of `m`: one lookup in a table of at most 2^14 `u16`
    /// (32 KB) that stays in cache.
    #[inline]
    fn part_of(self, m: u32) -> usize {
        let i = ((u64::from(m) << self.bits) >> 32) as usize;
        self.route.get(i).map_or(0, |&p| usize::from(p))
    }
}
