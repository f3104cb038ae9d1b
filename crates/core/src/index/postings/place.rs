//! Inserts: postings grouped by partition and placed in the deltas.

use super::partition::Partition;
use super::{Router, DELTA_MAX, DIRECT_MERGE, EMPTY};
use crate::index::dir_entry::Entry;
use crate::prefetch::prefetch;

/// Below this many postings an insert places them on the calling thread
/// (waking a pool thread costs tens of microseconds).
pub(super) const PARALLEL_PLACE: usize = 4096;

/// Puts `entries` (grouped by partition, all within `parts`, whose first is
/// partition `first`; partition `first + k`'s group starts at `starts[k]`,
/// offsets counted from `starts[0]`) into their deltas, growing each delta
/// once, and sets their directory flags. Returns the partitions whose group
/// is too big for their delta: the caller merges those straight into their
/// runs. Each posting lands on two random lines (delta slot, directory
/// entry), so a chunk's lines are prefetched before any is written.
pub(super) fn place_postings(
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

/// `entries` grouped by `key` (below `keys`), in ascending key order (a
/// counting sort, stable), and where each key's group starts (`keys + 1`
/// offsets, the last one `entries.len()`).
pub(super) fn group_by(
    entries: &[u64],
    keys: usize,
    key: impl Fn(u64) -> usize,
) -> (Vec<u64>, Vec<usize>) {
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
