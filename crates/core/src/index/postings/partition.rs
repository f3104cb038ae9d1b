//! A partition of the postings (directory, run, delta) and the dead-ref set.

use super::{run_key, DEAD_BLOCK_SHIFT};
use crate::index::dir_entry::{delta_flag, Entry, DELTA_FLAG_BITS, RUN_KEY_BITS};
use crate::index::memsize::alloc_size;

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
pub(super) struct Partition {
    pub(super) depth: u8,
    pub(super) dir_bits: u8,
    pub(super) delta_len: u32,
    /// `2^D + 1` entries (or none): bucket `b`'s span of `fps` / `refs` and
    /// its flags; the last one only ends the run.
    pub(super) dir: Box<[Entry]>,
    pub(super) fps: Box<[u8]>,
    pub(super) refs: Box<[u32]>,
    /// Open-addressing table (power-of-two length or empty) of `m << 32 | ref`.
    pub(super) delta: Vec<u64>,
}

impl Partition {
    pub(super) fn empty(depth: u32, dir_bits: u32) -> Self {
        Partition {
            depth: depth as u8,
            dir_bits: dir_bits as u8,
            ..Partition::default()
        }
    }

    /// The bucket of `m`: the `dir_bits` bits after the prefix.
    #[inline]
    pub(super) fn bucket_of(&self, m: u32) -> usize {
        ((u64::from(m << self.depth) << self.dir_bits) >> 32) as usize
    }

    /// The run key of `m`: the 6 bits of `m` after the bucket.
    #[inline]
    pub(super) fn run_key(&self, m: u32) -> u32 {
        run_key(m, u32::from(self.depth + self.dir_bits))
    }

    /// The delta flag of `m` within its directory entry: the 4 bits of `m`
    /// after the bucket, the top of its run key.
    #[inline]
    pub(super) fn flag_of(&self, m: u32) -> u64 {
        delta_flag(self.run_key(m) >> (RUN_KEY_BITS - DELTA_FLAG_BITS))
    }

    pub(super) fn buckets(&self) -> usize {
        1 << self.dir_bits
    }

    pub(super) fn mem_usage(&self) -> usize {
        alloc_size(std::mem::size_of_val::<[Entry]>(&self.dir))
            + alloc_size(self.fps.len())
            + alloc_size(self.refs.len() * 4)
            + alloc_size(self.delta.capacity() * 8)
    }

    /// The heap blocks this partition owns, each as `(address, bytes)`.
    pub(super) fn heap_blocks(&self, f: &mut dyn FnMut(usize, usize)) {
        let blocks = [
            (
                self.dir.as_ptr() as usize,
                std::mem::size_of_val::<[Entry]>(&self.dir),
            ),
            (self.fps.as_ptr() as usize, self.fps.len()),
            (self.refs.as_ptr() as usize, self.refs.len() * 4),
            (self.delta.as_ptr() as usize, self.delta.capacity() * 8),
        ];
        for (at, bytes) in blocks {
            if bytes > 0 {
                f(at, bytes);
            }
        }
    }

    /// The run's postings of bucket `b`: (fingerprints, refs).
    #[inline]
    pub(super) fn bucket(&self, b: usize) -> (&[u8], &[u32]) {
        if let Some((lo, hi)) = self.span(b) {
            if let (Some(f), Some(r)) = (self.fps.get(lo..hi), self.refs.get(lo..hi)) {
                return (f, r);
            }
        }
        (&[], &[])
    }

    /// Bucket `b`'s run postings: `lo..hi` of `fps` / `refs`.
    #[inline]
    pub(super) fn span(&self, b: usize) -> Option<(usize, usize)> {
        let e = self.dir.get(b)?;
        Some(e.span(|| self.dir.get(b + 1).copied()))
    }
}

/// Refs whose tracks are gone: sorted disjoint ranges, and a coarse bitmap
/// (one bit per 2^12 refs) that answers "alive" for most refs in O(1).
#[derive(Debug, Clone, Default)]
pub(super) struct DeadRanges {
    pub(super) ranges: Vec<(u32, u32)>,
    pub(super) coarse: Vec<u64>,
}

impl DeadRanges {
    pub(super) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    #[inline]
    pub(super) fn contains(&self, r: u32) -> bool {
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

    pub(super) fn add(&mut self, start: u32, end: u32) {
        let i = self.ranges.partition_point(|&(s, _)| s < start);
        self.ranges.insert(i, (start, end));
        self.mark(start, end);
    }

    pub(super) fn mark(&mut self, start: u32, end: u32) {
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

    pub(super) fn mem_usage(&self) -> usize {
        alloc_size(self.ranges.capacity() * 8) + alloc_size(self.coarse.capacity() * 8)
    }
}
