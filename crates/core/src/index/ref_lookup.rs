//! From refs back to tracks: the slot and frame of one ref (a lookup's
//! hits), and the hashes of many refs at once (merges that re-address
//! postings).

use super::ref_map::RefMap;
use super::Slot;
use crate::prefetch::prefetch;

/// The slot and frame of ref `r` in `slots` (tracks in base order, mapped
/// by `map`), if a live track holds it.
#[inline]
pub(super) fn resolve_in(slots: &[Slot], map: &RefMap, r: u32) -> Option<(u32, u32)> {
    let (lo, hi) = map.candidates(r)?;
    let below = slots.get(lo..hi.min(slots.len()))?;
    let k = (lo + below.partition_point(|s| s.base <= r)).checked_sub(1)?;
    let s = slots.get(k)?;
    let pos = r - s.base;
    ((pos as usize) < s.hashes.len()).then_some((k as u32, pos))
}

/// Appends `hash << 32 | ref` to `out` for every ref of `refs` that a live
/// track holds, in no particular order (merges that re-address postings ask
/// for whole partitions of random refs). Sorted first, the refs find their
/// slots in one walk along the slots instead of a binary search each, and
/// their hashes are read in address order, each chunk prefetched first.
pub(super) fn hashes_at(slots: &[Slot], refs: &[u32], out: &mut Vec<u64>) {
    const CHUNK: usize = 32;
    let mut sorted = refs.to_vec();
    radix_sort(&mut sorted);
    let mut k = 0usize;
    let mut at = [(0u32, 0u32); CHUNK];
    for chunk in sorted.chunks(CHUNK) {
        let mut found = 0;
        for &r in chunk {
            while slots.get(k + 1).is_some_and(|s| s.base <= r) {
                k += 1;
            }
            let Some(s) = slots.get(k) else { continue };
            let pos = r.wrapping_sub(s.base);
            if r >= s.base && (pos as usize) < s.hashes.len() {
                prefetch(s.hashes.as_ptr().wrapping_add(pos as usize));
                if let Some(a) = at.get_mut(found) {
                    *a = (k as u32, r);
                    found += 1;
                }
            }
        }
        for &(s, r) in at.iter().take(found) {
            if let Some(slot) = slots.get(s as usize) {
                if let Some(&h) = slot.hashes.get(r.wrapping_sub(slot.base) as usize) {
                    out.push((u64::from(h) << 32) | u64::from(r));
                }
            }
        }
    }
}

/// Sorts `v` in four counting passes of one byte each (a byte all keys
/// share is skipped).
pub(super) fn radix_sort(v: &mut Vec<u32>) {
    let mut tmp = vec![0u32; v.len()];
    for shift in [0, 8, 16, 24] {
        let mut at = [0usize; 257];
        for &x in v.iter() {
            if let Some(c) = at.get_mut(((x >> shift) & 255) as usize + 1) {
                *c += 1;
            }
        }
        if at.contains(&v.len()) {
            continue;
        }
        for b in 1..at.len() {
            at[b] += at[b - 1];
        }
        for &x in v.iter() {
            if let Some(c) = at.get_mut(((x >> shift) & 255) as usize) {
                if let Some(t) = tmp.get_mut(*c) {
                    *t = x;
                }
                *c += 1;
            }
        }
        std::mem::swap(v, &mut tmp);
    }
}
