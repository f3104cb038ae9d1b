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

use super::dir_entry::{delta_flag, run_flag, shifted_flags, Entry, DELTA_FLAG_BITS, RUN_KEY_BITS};
use super::memsize::alloc_size;
use crate::prefetch::prefetch;

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

/// One partition: the postings whose `m` starts with its prefix of `depth`
/// bits (see `Postings::route`); its bucket is the next `dir_bits` bits of
/// `m`. An empty one owns no memory besides this struct.
///
/// The fields a probe reads for every hash (`depth`, `dir_bits`, `dir`,
/// `fps`) come first and together: partitions are 80 bytes apart, and
/// left to the compiler `depth` landed 50 bytes from `dir`, in another
/// cache line for most partitions (a probe of 16,000 hashes took 10 % more).
#[derive(Debug, Clone, Default)]
#[repr(C)]
struct Partition {
    depth: u8,
    dir_bits: u8,
    delta_len: u32,
    /// `2^D + 1` entries (or none): bucket `b`'s span of `fps` / `refs` and
    /// its flags; the last one only ends the run.
    dir: Box<[Entry]>,
    fps: Box<[u8]>,
    refs: Box<[u32]>,
    /// Open-addressing table (power-of-two length or empty) of `m << 32 | ref`.
    delta: Vec<u64>,
}

impl Partition {
    fn empty(depth: u32, dir_bits: u32) -> Self {
        Partition {
            depth: depth as u8,
            dir_bits: dir_bits as u8,
            ..Partition::default()
        }
    }

    /// The bucket of `m`: the `dir_bits` bits after the prefix.
    #[inline]
    fn bucket_of(&self, m: u32) -> usize {
        ((u64::from(m << self.depth) << self.dir_bits) >> 32) as usize
    }

    /// The run key of `m`: the 6 bits of `m` after the bucket.
    #[inline]
    fn run_key(&self, m: u32) -> u32 {
        run_key(m, u32::from(self.depth + self.dir_bits))
    }

    /// The delta flag of `m` within its directory entry: the 4 bits of `m`
    /// after the bucket, the top of its run key.
    #[inline]
    fn flag_of(&self, m: u32) -> u64 {
        delta_flag(self.run_key(m) >> (RUN_KEY_BITS - DELTA_FLAG_BITS))
    }

    fn buckets(&self) -> usize {
        1 << self.dir_bits
    }

    fn mem_usage(&self) -> usize {
        alloc_size(std::mem::size_of_val::<[Entry]>(&self.dir))
            + alloc_size(self.fps.len())
            + alloc_size(self.refs.len() * 4)
            + alloc_size(self.delta.capacity() * 8)
    }

    /// The run's postings of bucket `b`: (fingerprints, refs).
    #[inline]
    fn bucket(&self, b: usize) -> (&[u8], &[u32]) {
        if let Some((lo, hi)) = self.span(b) {
            if let (Some(f), Some(r)) = (self.fps.get(lo..hi), self.refs.get(lo..hi)) {
                return (f, r);
            }
        }
        (&[], &[])
    }

    /// Bucket `b`'s run postings: `lo..hi` of `fps` / `refs`.
    #[inline]
    fn span(&self, b: usize) -> Option<(usize, usize)> {
        let e = self.dir.get(b)?;
        Some(e.span(|| self.dir.get(b + 1).copied()))
    }
}

/// A partition rewritten by a merge, not yet in place.
#[derive(Debug, Default)]
struct Merged {
    part: Option<Partition>,
    /// After a split, `part` is the half whose next prefix bit is 0 and this
    /// the half whose bit is 1.
    upper: Option<Partition>,
    /// Dead postings it no longer holds.
    dropped: u64,
    /// Work done (postings rewritten plus the directory walk).
    cost: u64,
}

/// Refs whose tracks are gone: sorted disjoint ranges, and a coarse bitmap
/// (one bit per 2^12 refs) that answers "alive" for most refs in O(1).
#[derive(Debug, Clone, Default)]
struct DeadRanges {
    ranges: Vec<(u32, u32)>,
    coarse: Vec<u64>,
}

impl DeadRanges {
    fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    #[inline]
    fn contains(&self, r: u32) -> bool {
        let block = (r >> DEAD_BLOCK_SHIFT) as usize;
        let Some(&word) = self.coarse.get(block / 64) else {
            return false;
        };
        if word & (1 << (block % 64)) == 0 {
            return false;
        }
        let i = self.ranges.partition_point(|&(start, _)| start <= r);
        i > 0 && self.ranges.get(i - 1).is_some_and(|&(_, end)| r < end)
    }

    fn add(&mut self, start: u32, end: u32) {
        let i = self.ranges.partition_point(|&(s, _)| s < start);
        self.ranges.insert(i, (start, end));
        self.mark(start, end);
    }

    fn mark(&mut self, start: u32, end: u32) {
        let (first, last) = (
            (start >> DEAD_BLOCK_SHIFT) as usize,
            ((end - 1) >> DEAD_BLOCK_SHIFT) as usize,
        );
        if self.coarse.len() <= last / 64 {
            self.coarse.resize(last / 64 + 1, 0);
        }
        for block in first..=last {
            if let Some(w) = self.coarse.get_mut(block / 64) {
                *w |= 1 << (block % 64);
            }
        }
    }

    fn mem_usage(&self) -> usize {
        alloc_size(self.ranges.capacity() * 8) + alloc_size(self.coarse.capacity() * 8)
    }
}

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
        // and again over partitions just merged cost a 20,000-frame insert
        // into the first few hundred thousand frames 5–10 ms, and 3× that
        // with a second thread, one hand-off per idle sweep.)
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
            // its own partition); waking a pool thread per merge cost more
            // than the merges on this VM.
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

    /// The work `merged(p, &[], _)` will do (an estimate: dead postings may
    /// change the shape it gives the partition).
    fn merge_cost(&self, p: usize) -> u64 {
        let Some(part) = self.parts.get(p) else {
            return 0;
        };
        let no_dead = self.dead_new.is_empty() && self.dead_old.is_empty();
        if part.delta_len == 0 && (no_dead || part.refs.is_empty()) {
            return NOTHING_TO_MERGE;
        }
        let run = part.refs.len() as u64;
        let n = run + u64::from(part.delta_len);
        let (split, dir_bits) = shape_for(
            u32::from(part.depth),
            u32::from(part.dir_bits),
            n,
            split_at(p),
        );
        let recover = u32::from(split) + dir_bits > u32::from(part.dir_bits);
        n + part.buckets() as u64 + if recover { RECOVER_COST * run } else { 0 }
    }

    #[inline]
    fn is_dead(&self, r: u32) -> bool {
        self.dead_new.contains(r) || self.dead_old.contains(r)
    }

    /// Rewrites partition `p`'s run with its delta and `extra` merged in and
    /// dead refs dropped (splitting it when it has grown too big). Returns
    /// the work done.
    fn merge(&mut self, p: usize, extra: &[u64], hashes_of: &HashesOf) -> u64 {
        let m = self.merged(p, extra, hashes_of);
        self.install(p, m)
    }

    /// Puts a merge's result in place; returns its work.
    fn install(&mut self, p: usize, m: Merged) -> u64 {
        if let Some(new) = m.part {
            if let Some(upper) = m.upper {
                self.split_route(p, u32::from(new.depth) - 1);
                self.parts.push(upper);
            }
            if let Some(slot) = self.parts.get_mut(p) {
                *slot = new;
            }
            self.stored -= m.dropped;
            self.dead -= m.dropped.min(self.dead);
        }
        m.cost
    }

    /// Points the upper half of the route block of partition `p` (prefix
    /// length `depth`) at the partition about to be appended, doubling the
    /// table first when `p`'s prefix is as long as the table's. At most
    /// `2^MAX_DEPTH` entries are touched, once per split.
    fn split_route(&mut self, p: usize, depth: u32) {
        if depth >= self.route_bits {
            self.route = self.route.iter().flat_map(|&x| [x, x]).collect();
            self.route_bits += 1;
        }
        let len = 1usize << (self.route_bits - depth);
        let q = self.parts.len() as u16;
        if let Some(first) = self.route.iter().position(|&x| usize::from(x) == p) {
            if let Some(upper) = self.route.get_mut(first + len / 2..first + len) {
                upper.fill(q);
            }
        }
    }

    /// Partition `p` rewritten with its delta and `extra` merged in and dead
    /// refs dropped (`part: None` when there is nothing to rewrite), in the
    /// shape `shape_for` gives it: split in two halves one prefix bit
    /// longer, and/or with another directory size.
    ///
    /// The run stores of each posting only its bucket (the `dir_bits` bits
    /// after the prefix) and its fingerprint. A shape that needs no more
    /// address bits than that (same or smaller directory, or a split into
    /// halves of at most `dir_bits - 1` directory bits) regroups run buckets
    /// in order. One that needs more recovers `m` of every run posting from
    /// its track's hash (`hashes_of`, about one random read per posting):
    /// that happens once per doubling of a partition (its split) and when a
    /// small partition's directory grows.
    fn merged(&self, p: usize, extra: &[u64], hashes_of: &HashesOf) -> Merged {
        let no_dead = self.dead_new.is_empty() && self.dead_old.is_empty();
        let Some(part) = self.parts.get(p) else {
            return Merged::default();
        };
        let run_len = part.refs.len();
        if part.delta_len == 0 && extra.is_empty() && (no_dead || run_len == 0) {
            // Nothing to rewrite: only the visit is paid for.
            return Merged {
                cost: NOTHING_TO_MERGE,
                ..Merged::default()
            };
        }
        let mut fresh: Vec<u64> = Vec::with_capacity(part.delta_len as usize + extra.len());
        fresh.extend(part.delta.iter().copied().filter(|&e| e != EMPTY));
        fresh.extend_from_slice(extra);
        let mut cost = (run_len + fresh.len()) as u64 + part.buckets() as u64;
        let mut dropped = 0u64;
        if !no_dead {
            let before = fresh.len();
            fresh.retain(|&e| !self.is_dead(e as u32));
            dropped += (before - fresh.len()) as u64;
        }
        let live_run = if no_dead {
            run_len
        } else {
            part.refs.iter().filter(|&&r| !self.is_dead(r)).count()
        };
        let (depth, old_bits) = (u32::from(part.depth), u32::from(part.dir_bits));
        let (split, dir_bits) = shape_for(
            depth,
            old_bits,
            (live_run + fresh.len()) as u64,
            split_at(p),
        );
        if no_dead && !split && dir_bits == old_bits {
            fresh.sort_unstable();
            return Merged {
                part: Some(Self::spliced(part, &fresh)),
                upper: None,
                dropped: 0,
                cost,
            };
        }
        // Address bits of the result after the old prefix: the half, then the bucket.
        let out_bits = u32::from(split) + dir_bits;
        let recover = out_bits > old_bits;
        // Output address `a` (half, then bucket) of a posting.
        let address = |m: u32| ((u64::from(m << depth) << out_bits) >> 32) as usize;
        if recover {
            let refs: Vec<u32> = part
                .refs
                .iter()
                .copied()
                .filter(|&r| no_dead || !self.is_dead(r))
                .collect();
            let from = fresh.len();
            hashes_of(&refs, &mut fresh);
            for e in fresh.iter_mut().skip(from) {
                *e = (u64::from(mix((*e >> 32) as u32)) << 32) | (*e & 0xFFFF_FFFF);
            }
            // Run postings without a track are dead (a live one always has one).
            dropped += (run_len - (fresh.len() - from)) as u64;
            cost += RECOVER_COST * refs.len() as u64;
            fresh = group_by(&fresh, 1 << out_bits, |e| address((e >> 32) as u32)).0;
        } else {
            fresh.sort_unstable();
        }
        // Output address `a` gathers the run buckets
        // `a << shift .. (a + 1) << shift` and the fresh postings of `a`.
        let shift = old_bits.saturating_sub(out_bits);
        let nb = 1usize << dir_bits;
        let per_half = (run_len + fresh.len()) >> u32::from(split);
        let mut j = 0;
        let mut halves = Vec::with_capacity(2);
        for h in 0..1usize << u32::from(split) {
            let mut dir = Vec::with_capacity(nb + 1);
            let mut fps = Vec::with_capacity(per_half);
            let mut refs = Vec::with_capacity(per_half);
            for b in 0..nb {
                let a = (h << dir_bits) | b;
                let start = refs.len();
                let mut flags = 0;
                if !recover {
                    for ob in a << shift..(a + 1) << shift {
                        // The run keeps no `m` to compute keys from: the old
                        // flags carry over (those of dead postings too: a
                        // flag too many only costs a probe a scan).
                        let old = part.dir.get(ob).map_or(0, |e| e.run_flags());
                        flags |= shifted_flags(old, (ob & ((1 << shift) - 1)) as u32, shift);
                        let (f, r) = part.bucket(ob);
                        if no_dead {
                            fps.extend_from_slice(f);
                            refs.extend_from_slice(r);
                        } else {
                            for (&fp, &rf) in f.iter().zip(r) {
                                if self.is_dead(rf) {
                                    dropped += 1;
                                } else {
                                    fps.push(fp);
                                    refs.push(rf);
                                }
                            }
                        }
                    }
                }
                while let Some(&e) = fresh.get(j) {
                    if address((e >> 32) as u32) != a {
                        break;
                    }
                    j += 1;
                    let m = (e >> 32) as u32;
                    fps.push(m as u8);
                    refs.push(e as u32);
                    flags |= run_flag(run_key(m, depth + out_bits));
                }
                dir.push(Entry::new(start, refs.len() - start, flags));
            }
            dir.push(Entry::new(refs.len(), 0, 0));
            let child_depth = depth + u32::from(split);
            halves.push(if refs.is_empty() {
                Partition::empty(child_depth, dir_bits)
            } else {
                Partition {
                    dir: dir.into_boxed_slice(),
                    fps: fps.into_boxed_slice(),
                    refs: refs.into_boxed_slice(),
                    delta: Vec::new(),
                    delta_len: 0,
                    depth: child_depth as u8,
                    dir_bits: dir_bits as u8,
                }
            });
        }
        let upper = if split { halves.pop() } else { None };
        Merged {
            part: halves.pop(),
            upper,
            dropped,
            cost,
        }
    }

    /// `part`'s run with `fresh` (sorted, none dead) inserted, each after
    /// its bucket's postings: what the general merge builds when nothing is
    /// dead, but the run is copied in one piece between insertion points and
    /// the directory is shifted instead of rebuilt bucket by bucket (a merge
    /// inserts a few hundred postings into thousands; this is most of an
    /// add's merge work).
    fn spliced(part: &Partition, fresh: &[u64]) -> Partition {
        let nb = part.buckets();
        let total = part.refs.len() + fresh.len();
        let mut fps = Vec::with_capacity(total);
        let mut refs = Vec::with_capacity(total);
        // How many fresh postings go into each bucket, and their run flags.
        let mut added = vec![0u32; nb];
        let mut added_flags = vec![0u64; nb];
        let old_offset = |b: usize| part.dir.get(b).map_or(0, |d| d.offset());
        let mut copied = 0;
        for &e in fresh {
            let (m, rf) = ((e >> 32) as u32, e as u32);
            let b = part.bucket_of(m);
            // Everything of the old run up to the end of bucket `b` first.
            let end = old_offset(b + 1).max(copied);
            if let (Some(f), Some(r)) = (part.fps.get(copied..end), part.refs.get(copied..end)) {
                fps.extend_from_slice(f);
                refs.extend_from_slice(r);
            }
            copied = end;
            fps.push(m as u8);
            refs.push(rf);
            if let Some(c) = added.get_mut(b) {
                *c += 1;
            }
            if let Some(f) = added_flags.get_mut(b) {
                *f |= run_flag(part.run_key(m));
            }
        }
        if let (Some(f), Some(r)) = (part.fps.get(copied..), part.refs.get(copied..)) {
            fps.extend_from_slice(f);
            refs.extend_from_slice(r);
        }
        // The directory shifted: each bucket moves by the fresh postings in
        // front of it and grows by its own. The delta is merged, so its flags
        // go; the run flags gain the fresh ones. (One pass over zipped
        // slices: built entry by entry with lookups it made one-thread
        // inserts at 40M 1–3 % slower.)
        let fresh_dir;
        let old_dir: &[Entry] = if part.dir.len() == nb + 1 {
            &part.dir
        } else {
            fresh_dir = vec![Entry::default(); nb + 1];
            &fresh_dir
        };
        let mut dir = Vec::with_capacity(nb + 1);
        let mut moved = 0usize;
        for ((pair, &n), &flags) in old_dir.windows(2).zip(&added).zip(&added_flags) {
            if let [old, next] = pair {
                let len = next.offset().saturating_sub(old.offset()) + n as usize;
                dir.push(Entry::new(
                    old.offset() + moved,
                    len,
                    old.run_flags() | flags,
                ));
            }
            moved += n as usize;
        }
        dir.push(Entry::new(total, 0, 0));
        let dir = dir.into_boxed_slice();
        if refs.is_empty() {
            return Partition::empty(u32::from(part.depth), u32::from(part.dir_bits));
        }
        Partition {
            dir,
            fps: fps.into_boxed_slice(),
            refs: refs.into_boxed_slice(),
            delta: Vec::new(),
            delta_len: 0,
            depth: part.depth,
            dir_bits: part.dir_bits,
        }
    }

    /// Appends `(i, r, exact)` to `out` for every stored posting that may
    /// hold the hash whose scramble is `ms[i]`. `exact` says the full hash
    /// matched (a delta posting); otherwise the fingerprint matched and the
    /// caller must confirm the hash against the track. Dead refs may be
    /// reported too: the caller drops them.
    ///
    /// A probe costs two dependent cache misses (directory entry, then
    /// fingerprints), and at 40M postings also two TLB misses. Done one probe
    /// after the other that is a chain of misses; instead the probes go in
    /// small chunks through passes that each only *prefetch* the next level
    /// for the whole chunk, so the misses of a chunk overlap: (1) prefetch
    /// the directory entries, (2) read them, prefetch the fingerprints (and
    /// the delta slot when the flag says so), (3) scan the fingerprints,
    /// prefetching the ref of each that matches. The refs are read only
    /// after every chunk has been scanned. Prefetches, unlike loads, retire
    /// at once and so do not hold the reorder window while they wait.
    pub(super) fn probe(&self, ms: &[u32], out: &mut Vec<(u32, u32, bool)>) {
        const CHUNK: usize = 32;
        let router = self.router();
        let (order, sorted) = order_by_top_bits(ms);
        // Per probe of a chunk: (partition, bucket), then the run span to
        // scan (empty when the run flags rule the hash out) and whether the
        // delta may hold it.
        let mut loc = [(0u32, 0u32); CHUNK];
        let mut spans = [(0u32, 0u32, false); CHUNK];
        // Fingerprint matches whose ref is still being fetched: (i, partition, index).
        let mut pending: Vec<(u32, u32, u32)> = Vec::new();
        for (chunk, idx) in sorted.chunks(CHUNK).zip(order.chunks(CHUNK)) {
            for (&m, l) in chunk.iter().zip(loc.iter_mut()) {
                let p = router.part_of(m);
                let b = match self.parts.get(p) {
                    Some(part) => {
                        let b = part.bucket_of(m);
                        prefetch(part.dir.as_ptr().wrapping_add(b));
                        b
                    }
                    None => 0,
                };
                *l = (p as u32, b as u32);
            }
            for ((&m, &(p, b)), span) in chunk.iter().zip(loc.iter()).zip(spans.iter_mut()) {
                *span = (0, 0, false);
                let Some(part) = self.parts.get(p as usize) else {
                    continue;
                };
                let Some(&entry) = part.dir.get(b as usize) else {
                    continue;
                };
                let in_delta = entry.delta_may_hold(part.flag_of(m)) && part.delta_len > 0;
                // An absent flag makes the span empty, and then the
                // fingerprints are not fetched at all: three probes in four
                // at the usual load (fetching them anyway, the scan skipped,
                // cost 5 % of a lookup).
                let (lo, hi) = if entry.may_hold(part.run_key(m)) {
                    let (lo, hi) = entry.span(|| part.dir.get(b as usize + 1).copied());
                    (lo as u32, hi as u32)
                } else {
                    (0, 0)
                };
                if hi > lo {
                    let first = part.fps.as_ptr().wrapping_add(lo as usize);
                    let last = part.fps.as_ptr().wrapping_add(hi as usize - 1);
                    prefetch(first);
                    if (first as usize) >> 6 != (last as usize) >> 6 {
                        prefetch(last);
                    }
                }
                if in_delta {
                    let at = m as usize & part.delta.len().wrapping_sub(1);
                    prefetch(part.delta.as_ptr().wrapping_add(at));
                }
                *span = (lo, hi, in_delta);
            }
            for (((&m, &i), &(p, _)), &(lo, hi, in_delta)) in
                chunk.iter().zip(idx).zip(loc.iter()).zip(spans.iter())
            {
                let Some(part) = self.parts.get(p as usize) else {
                    continue;
                };
                let fp = m as u8;
                let mut k = lo as usize;
                while k < hi as usize {
                    let mut found =
                        eq_bytes(load8(&part.fps, k), fp) & first_bytes(hi as usize - k);
                    while found != 0 {
                        let at = k + (found.trailing_zeros() / 8) as usize;
                        prefetch(part.refs.as_ptr().wrapping_add(at));
                        pending.push((i, p, at as u32));
                        found &= found - 1;
                    }
                    k += 8;
                }
                if in_delta {
                    let mask = part.delta.len() - 1;
                    let mut at = m as usize & mask;
                    while let Some(&e) = part.delta.get(at) {
                        if e == EMPTY {
                            break;
                        }
                        if (e >> 32) as u32 == m {
                            out.push((i, e as u32, true));
                        }
                        at = (at + 1) & mask;
                    }
                }
            }
        }
        for (i, p, k) in pending {
            if let Some(&r) = self
                .parts
                .get(p as usize)
                .and_then(|part| part.refs.get(k as usize))
            {
                out.push((i, r, false));
            }
        }
    }

    /// (distinct hashes, live postings, longest posting list), in one
    /// sequential pass: within a bucket, postings with different fingerprints
    /// hold different hashes, so only postings sharing a fingerprint are
    /// resolved (`hash_of(ref)`: the hash, or `None` for a dead ref).
    pub(super) fn stats(&self, hash_of: &dyn Fn(u32) -> Option<u32>) -> (u64, u64, u64) {
        let (mut distinct, mut postings, mut longest) = (0u64, 0u64, 0u64);
        let any_dead = self.dead > 0;
        let mut entries: Vec<(u8, u32)> = Vec::new();
        let mut hashes: Vec<u32> = Vec::new();
        let mut seen = [0u16; 256];
        for part in &self.parts {
            let mut fresh: Vec<u64> = part.delta.iter().copied().filter(|&e| e != EMPTY).collect();
            fresh.sort_unstable();
            let mut j = 0;
            for b in 0..part.buckets() {
                entries.clear();
                let (f, r) = part.bucket(b);
                entries.extend(f.iter().copied().zip(r.iter().copied()));
                while let Some(&e) = fresh.get(j) {
                    if part.bucket_of((e >> 32) as u32) != b {
                        break;
                    }
                    entries.push(((e >> 32) as u8, e as u32));
                    j += 1;
                }
                if any_dead {
                    entries.retain(|&(_, r)| !self.is_dead(r));
                }
                // A fingerprint seen once in its bucket is one hash with one
                // posting; only shared fingerprints need their hashes.
                for &(fp, _) in entries.iter() {
                    if let Some(c) = seen.get_mut(fp as usize) {
                        *c = c.saturating_add(1);
                    }
                }
                hashes.clear();
                for &(fp, r) in entries.iter() {
                    if seen.get(fp as usize).copied().unwrap_or(0) == 1 {
                        distinct += 1;
                        postings += 1;
                        longest = longest.max(1);
                    } else if let Some(h) = hash_of(r) {
                        hashes.push(h);
                    }
                }
                for &(fp, _) in entries.iter() {
                    if let Some(c) = seen.get_mut(fp as usize) {
                        *c = 0;
                    }
                }
                hashes.sort_unstable();
                postings += hashes.len() as u64;
                for same in hashes.chunk_by(|a, b| a == b) {
                    distinct += 1;
                    longest = longest.max(same.len() as u64);
                }
            }
        }
        (distinct, postings, longest)
    }

    pub(super) fn mem_usage(&self) -> usize {
        std::mem::size_of::<Self>()
            + alloc_size(self.route.capacity() * 2)
            + alloc_size(self.parts.capacity() * std::mem::size_of::<Partition>())
            + self.parts.iter().map(Partition::mem_usage).sum::<usize>()
            + self.dead_old.mem_usage()
            + self.dead_new.mem_usage()
    }

    /// Builds the whole index at once from `(m, ref)` produced by `each`,
    /// which is called twice and must produce the same postings both times
    /// (first to count the buckets, then to fill them), so no temporary copy
    /// of the postings is needed.
    pub(super) fn build(addr_bits: u32, each: &EachPosting) -> Self {
        let mut out = Postings::with_addr_bits(addr_bits);
        let a = addr_bits.min(MAX_ADDR_BITS);
        let d = a.min(MAX_DIR_BITS);
        let nb = 1usize << d;
        let global = |m: u32| -> usize {
            if a == 0 {
                0
            } else {
                (m >> (32 - a)) as usize
            }
        };
        // Pass 1: postings per global bucket.
        let mut cursor = vec![0u32; 1usize << a];
        let mut total = 0u64;
        each(&mut |m, _| {
            if let Some(c) = cursor.get_mut(global(m)) {
                *c += 1;
                total += 1;
            }
        });
        // Directories, exactly sized runs, and write cursors local to each partition.
        for (p, part) in out.parts.iter_mut().enumerate() {
            let Some(counts) = cursor.get_mut(p * nb..(p + 1) * nb) else {
                continue;
            };
            let mut dir = Vec::with_capacity(nb + 1);
            let mut at = 0u32;
            for c in counts.iter_mut() {
                let n = *c;
                dir.push(Entry::new(at as usize, n as usize, 0));
                *c = at;
                at += n;
            }
            dir.push(Entry::new(at as usize, 0, 0));
            if at > 0 {
                part.dir = dir.into_boxed_slice();
                part.fps = vec![0u8; at as usize].into_boxed_slice();
                part.refs = vec![0u32; at as usize].into_boxed_slice();
            }
        }
        // Pass 2: scatter.
        let parts = &mut out.parts;
        each(&mut |m, r| {
            let g = global(m);
            if let (Some(c), Some(part)) = (cursor.get_mut(g), parts.get_mut(g >> d)) {
                let at = *c as usize;
                *c += 1;
                if let (Some(f), Some(rf)) = (part.fps.get_mut(at), part.refs.get_mut(at)) {
                    *f = m as u8;
                    *rf = r;
                }
                let key = part.run_key(m);
                if let Some(e) = part.dir.get_mut(g & (nb - 1)) {
                    e.add_run_flags(run_flag(key));
                }
            }
        });
        out.stored = total;
        out
    }

    /// Checks the internal invariants (tests only), with every run posting
    /// of a live track located by its hash (`hashes_of`).
    #[cfg(test)]
    pub(super) fn check(&self, hashes_of: &HashesOf) {
        // The route: each partition owns one aligned block of
        // `2^(route_bits - depth)` entries, and every partition has one.
        assert_eq!(self.route.len(), 1 << self.route_bits);
        assert!(self.route_bits <= MAX_DEPTH);
        let mut blocks = vec![(usize::MAX, 0usize); self.parts.len()];
        for (i, &p) in self.route.iter().enumerate() {
            let b = &mut blocks[usize::from(p)];
            if b.0 == usize::MAX {
                b.0 = i;
            }
            assert_eq!(b.0 + b.1, i, "route block of partition {p} not contiguous");
            b.1 += 1;
        }
        for (part, &(first, len)) in self.parts.iter().zip(&blocks) {
            let depth = u32::from(part.depth);
            assert!(depth <= self.route_bits);
            assert_eq!(len, 1 << (self.route_bits - depth), "block size");
            assert_eq!(first % len, 0, "block alignment");
            assert!(u32::from(part.dir_bits) <= MAX_DIR_BITS);
            assert!(depth + u32::from(part.dir_bits) <= MAX_ADDR_BITS);
        }
        let mut stored = 0u64;
        let mut found = Vec::new();
        for (p, part) in self.parts.iter().enumerate() {
            stored += part.refs.len() as u64 + u64::from(part.delta_len);
            assert_eq!(
                part.delta.iter().filter(|&&e| e != EMPTY).count(),
                part.delta_len as usize
            );
            assert!(part.delta_len as usize * 2 <= part.delta.len() || part.delta.is_empty());
            if !part.refs.is_empty() || part.delta_len > 0 {
                assert_eq!(part.dir.len(), part.buckets() + 1);
                assert_eq!(part.dir.last().map(|x| x.offset()), Some(part.refs.len()));
            }
            assert_eq!(part.fps.len(), part.refs.len());
            for b in 0..part.dir.len().saturating_sub(1) {
                let (f, r) = part.bucket(b);
                let (entry, next) = (part.dir[b], part.dir[b + 1]);
                assert_eq!(entry.span(|| Some(next)).1, next.offset(), "bucket length");
                found.clear();
                hashes_of(r, &mut found);
                found.sort_unstable_by_key(|&e| e as u32);
                for (&fp, &rf) in f.iter().zip(r) {
                    match found.binary_search_by_key(&rf, |&e| e as u32) {
                        Ok(k) => {
                            let m = mix((found[k] >> 32) as u32);
                            assert_eq!(self.part_of(m), p, "run posting in another partition");
                            assert_eq!(part.bucket_of(m), b, "run posting in another bucket");
                            assert_eq!(fp, m as u8, "fingerprint");
                            assert!(
                                entry.may_hold(part.run_key(m)),
                                "run posting without its flag"
                            );
                        }
                        Err(_) => assert!(self.is_dead(rf), "live posting without a track"),
                    }
                }
            }
            for &e in part.delta.iter().filter(|&&e| e != EMPTY) {
                let m = (e >> 32) as u32;
                assert_eq!(self.part_of(m), p, "delta posting in another partition");
                let entry = part.dir.get(part.bucket_of(m)).copied().unwrap_or_default();
                assert!(
                    entry.delta_may_hold(part.flag_of(m)),
                    "delta posting without its flag"
                );
            }
        }
        assert_eq!(stored, self.stored);
        assert!(self.dead <= self.stored);
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

/// Below this many postings an insert places them on the calling thread
/// (waking a pool thread costs tens of microseconds).
const PARALLEL_PLACE: usize = 4096;

/// Puts `entries` (grouped by partition, all within `parts`, whose first is
/// partition `first`; partition `first + k`'s group starts at `starts[k]`,
/// offsets counted from `starts[0]`) into their deltas, growing each delta
/// once, and sets their directory flags. Returns the partitions whose group
/// is too big for their delta: the caller merges those straight into their
/// runs. Each posting lands on two random lines (delta slot, directory
/// entry), so a chunk's lines are prefetched before any is written.
fn place_postings(
    router: Router,
    parts: &mut [Partition],
    first: usize,
    starts: &[usize],
    entries: &[u64],
) -> Vec<usize> {
    let base = starts.first().copied().unwrap_or(0);
    let mut direct = Vec::new();
    let mut placed = Vec::with_capacity(entries.len());
    for (k, part) in parts.iter_mut().enumerate() {
        let lo = starts.get(k).map_or(entries.len(), |&s| s - base);
        let hi = starts.get(k + 1).map_or(entries.len(), |&s| s - base);
        let n = hi.saturating_sub(lo);
        if n == 0 {
            continue;
        }
        if n >= DIRECT_MERGE || part.delta_len as usize + n > DELTA_MAX {
            direct.push(first + k);
            continue;
        }
        if part.dir.is_empty() {
            part.dir = vec![Entry::default(); part.buckets() + 1].into_boxed_slice();
        }
        delta_reserve(part, n);
        part.delta_len += n as u32;
        placed.extend_from_slice(entries.get(lo..hi).unwrap_or(&[]));
    }
    let local = |m: u32| router.part_of(m).wrapping_sub(first);
    for chunk in placed.chunks(64) {
        for &e in chunk {
            let m = (e >> 32) as u32;
            if let Some(part) = parts.get(local(m)) {
                prefetch(part.dir.as_ptr().wrapping_add(part.bucket_of(m)));
                let at = m as usize & part.delta.len().wrapping_sub(1);
                prefetch(part.delta.as_ptr().wrapping_add(at));
            }
        }
        for &e in chunk {
            let m = (e >> 32) as u32;
            if let Some(part) = parts.get_mut(local(m)) {
                place(&mut part.delta, e);
                let (b, flag) = (part.bucket_of(m), part.flag_of(m));
                if let Some(d) = part.dir.get_mut(b) {
                    d.set_delta_flag(flag);
                }
            }
        }
    }
    direct
}

/// Bytes `k..k + 8` of `bytes` as a little-endian word, zero past the end.
#[inline]
fn load8(bytes: &[u8], k: usize) -> u64 {
    match bytes
        .get(k..k + 8)
        .and_then(|s| <[u8; 8]>::try_from(s).ok())
    {
        Some(w) => u64::from_le_bytes(w),
        None => {
            let mut w = [0u8; 8];
            for (d, s) in w.iter_mut().zip(bytes.iter().skip(k)) {
                *d = *s;
            }
            u64::from_le_bytes(w)
        }
    }
}

/// Bit `8j + 7` set exactly where byte `j` of `w` equals `fp` (SWAR: the
/// bytes are compared in one go, without carries between them, so the
/// fingerprint scan has no data-dependent branch per posting).
#[inline]
fn eq_bytes(w: u64, fp: u8) -> u64 {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    let x = w ^ (u64::from(fp) * 0x0101_0101_0101_0101);
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// The high bits of the first `n` bytes of a word (all 8 for `n ≥ 8`).
#[inline]
fn first_bytes(n: usize) -> u64 {
    const HIGH: u64 = 0x8080_8080_8080_8080;
    if n >= 8 {
        HIGH
    } else {
        HIGH & ((1u64 << (8 * n)) - 1)
    }
}

/// The probe indexes ordered by the top 12 bits of their scrambled hash
/// (a counting sort), and the scrambled hashes in that order: neighbouring
/// probes then touch neighbouring memory (fewer TLB and cache misses).
fn order_by_top_bits(ms: &[u32]) -> (Vec<u32>, Vec<u32>) {
    const BITS: u32 = 12;
    let mut at = vec![0u32; (1 << BITS) + 1];
    for &m in ms {
        if let Some(c) = at.get_mut((m >> (32 - BITS)) as usize + 1) {
            *c += 1;
        }
    }
    for k in 1..at.len() {
        at[k] += at[k - 1];
    }
    let mut order = vec![0u32; ms.len()];
    let mut sorted = vec![0u32; ms.len()];
    for (i, &m) in ms.iter().enumerate() {
        if let Some(c) = at.get_mut((m >> (32 - BITS)) as usize) {
            if let (Some(o), Some(s)) = (order.get_mut(*c as usize), sorted.get_mut(*c as usize)) {
                *o = i as u32;
                *s = m;
            }
            *c += 1;
        }
    }
    (order, sorted)
}

/// `entries` grouped by `key` (below `keys`), in ascending key order (a
/// counting sort, stable), and where each key's group starts (`keys + 1`
/// offsets, the last one `entries.len()`).
fn group_by(entries: &[u64], keys: usize, key: impl Fn(u64) -> usize) -> (Vec<u64>, Vec<usize>) {
    let mut at = vec![0usize; keys + 1];
    for &e in entries {
        if let Some(c) = at.get_mut(key(e) + 1) {
            *c += 1;
        }
    }
    for k in 1..at.len() {
        at[k] += at[k - 1];
    }
    let starts = at.clone();
    let mut out = vec![0u64; entries.len()];
    for &e in entries {
        if let Some(c) = at.get_mut(key(e)) {
            if let Some(o) = out.get_mut(*c) {
                *o = e;
            }
            *c += 1;
        }
    }
    (out, starts)
}

/// Makes room for `more` entries in an open-addressing table, keeping its
/// load at most 1/2.
fn delta_reserve(part: &mut Partition, more: usize) {
    let need = (part.delta_len as usize + more) * 2;
    if need > part.delta.len() {
        let cap = need.next_power_of_two().max(16);
        let old = std::mem::replace(&mut part.delta, vec![EMPTY; cap]);
        for x in old {
            if x != EMPTY {
                place(&mut part.delta, x);
            }
        }
    }
}

/// Puts `e` in the first free slot from its home slot on (the table is never full).
fn place(table: &mut [u64], e: u64) {
    let mask = table.len().wrapping_sub(1);
    let mut k = (e >> 32) as usize & mask;
    for _ in 0..table.len() {
        match table.get_mut(k) {
            Some(slot) if *slot == EMPTY => {
                *slot = e;
                return;
            }
            _ => k = (k + 1) & mask,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_is_a_bijection_on_a_sample() {
        let mut seen: Vec<u32> = (0..1u32 << 16)
            .map(|h| mix(h.wrapping_mul(65_537)))
            .collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen.len(), 1 << 16);
    }

    #[test]
    fn addr_bits_grow_with_size_and_stop_at_the_cap() {
        assert_eq!(addr_bits_for(0), 0);
        assert_eq!(addr_bits_for(16), 0);
        assert_eq!(addr_bits_for(17), 1);
        assert_eq!(addr_bits_for(16 * 16), 4);
        assert_eq!(addr_bits_for(16 * 16 + 1), 5);
        assert_eq!(addr_bits_for(40_000_000), 22);
        assert_eq!(addr_bits_for(u64::MAX / 2), MAX_ADDR_BITS);
    }

    #[test]
    fn partitions_split_between_three_quarters_and_all_of_split_at() {
        let thresholds: Vec<u64> = (0..4096).map(split_at).collect();
        assert!(thresholds
            .iter()
            .all(|&t| t > SPLIT_AT / 4 * 3 && t <= SPLIT_AT));
        let (lo, hi) = (thresholds.iter().min(), thresholds.iter().max());
        assert!(hi.zip(lo).is_some_and(|(h, l)| h - l > SPLIT_AT / 5));
        // Too big: split (halves at a load in (LOAD, 2·LOAD]); in the band:
        // kept; out of it: resized; at the deepest prefix: never split.
        assert_eq!(shape_for(3, 10, SPLIT_AT + 1, SPLIT_AT), (true, 10));
        assert_eq!(shape_for(3, 10, 3000, SPLIT_AT), (false, 10));
        assert_eq!(shape_for(3, 10, 1000, SPLIT_AT), (false, 6));
        assert_eq!(shape_for(3, 2, 1000, SPLIT_AT), (false, 6));
        assert_eq!(shape_for(MAX_DEPTH, 10, 1 << 20, SPLIT_AT), (false, 10));
    }

    #[test]
    fn dead_ranges_contain_exactly_their_refs() {
        let mut d = DeadRanges::default();
        d.add(10, 20);
        d.add(0, 5);
        d.add(30, 31);
        d.add(9000, 13_000);
        let dead: Vec<u32> = (0..20_000).filter(|&r| d.contains(r)).collect();
        let want: Vec<u32> = (0..5)
            .chain(10..20)
            .chain(30..31)
            .chain(9000..13_000)
            .collect();
        assert_eq!(dead, want);
    }

    #[test]
    fn eq_bytes_marks_exactly_the_equal_bytes() {
        // Every byte value against fingerprints that stress the borrow and
        // high-bit cases (0x00, 0x7F, 0x80, 0xFF).
        for fp in [0x00u8, 0x01, 0x7F, 0x80, 0x81, 0xFE, 0xFF] {
            for v in 0..=255u8 {
                let w = u64::from_le_bytes([v, fp, v, 0x80, fp ^ 1, 0x7F, v, fp]);
                let want: u64 = [v, fp, v, 0x80, fp ^ 1, 0x7F, v, fp]
                    .iter()
                    .enumerate()
                    .filter(|(_, &b)| b == fp)
                    .map(|(j, _)| 0x80u64 << (8 * j))
                    .sum();
                assert_eq!(eq_bytes(w, fp), want, "fp {fp:#x} v {v:#x}");
            }
        }
    }

    #[test]
    fn load8_zero_fills_past_the_end_and_first_bytes_masks() {
        let bytes = [1u8, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        assert_eq!(
            load8(&bytes, 0),
            u64::from_le_bytes([1, 2, 3, 4, 5, 6, 7, 8])
        );
        assert_eq!(
            load8(&bytes, 7),
            u64::from_le_bytes([8, 9, 10, 0, 0, 0, 0, 0])
        );
        assert_eq!(load8(&bytes, 20), 0);
        assert_eq!(first_bytes(0), 0);
        assert_eq!(first_bytes(3), 0x0080_8080);
        assert_eq!(first_bytes(8), 0x8080_8080_8080_8080);
        assert_eq!(first_bytes(100), 0x8080_8080_8080_8080);
    }
}
