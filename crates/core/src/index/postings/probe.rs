//! Lookups: the probes of a query's hashes, with the cache misses of a
//! chunk of probes overlapped.

use super::{Postings, EMPTY};
use crate::prefetch::prefetch;

impl Postings {
    /// Appends `(i, r, exact)` to `out` for every stored posting that may
    /// hold the hash whose scramble is `ms[i]`. `exact` says the full hash
    /// matched (a delta posting); otherwise the fingerprint matched and the
    /// caller must confirm the hash against the track. Dead refs may be
    /// reported too: the caller drops them.
    ///
    /// A probe costs two dependent cache misses (directory entry, then
    /// fingerprints), and at 40M postings also two TLB misses. Done one probe
    /// after the other that is a chain of misses; instead each probe goes
    /// through three stages [`AHEAD`] probes apart: (1) locate it and
    /// prefetch its directory entry, (2) read the entry and prefetch the
    /// fingerprints (and the delta slot when the flag says so), (3) scan the
    /// fingerprints, prefetching the ref of each that matches. While one
    /// probe is scanned, the entries and fingerprints of the next `2·AHEAD`
    /// are on their way, so about that many misses stay in flight all along
    /// (stages run over chunks of probes, one after the other, left the
    /// pipeline empty at every chunk's end: 2–5 % more CPU per lookup). The refs are read
    /// only after every probe has been scanned. Prefetches, unlike loads,
    /// retire at once and so do not hold the reorder window while they wait.
    ///
    /// A probe with more than `cap` candidates (fingerprint matches and
    /// delta postings) reports none: its scan stops there, so a hash shared
    /// by much of the index costs about `cap` postings, not all of them.
    pub(in crate::index) fn probe(&self, ms: &[u32], cap: usize, out: &mut Vec<(u32, u32, bool)>) {
        let router = self.router();
        let (order, sorted) = order_by_top_bits(ms);
        // Per probe in flight, at `j % RING`: (partition, bucket), then the
        // run span to scan (empty when the run flags rule the hash out) and
        // whether the delta may hold it.
        let mut loc = [(0u32, 0u32); RING];
        let mut spans = [(0u32, 0u32, false); RING];
        // Fingerprint matches whose ref is still being fetched: (i, partition, index).
        let mut pending: Vec<(u32, u32, u32)> = Vec::new();
        for j in 0..sorted.len() + 2 * AHEAD {
            // Stage 1: probe j.
            if let Some(&m) = sorted.get(j) {
                let p = router.part_of(m);
                let b = match self.parts.get(p) {
                    Some(part) => {
                        let b = part.bucket_of(m);
                        prefetch(part.dir.as_ptr().wrapping_add(b));
                        b
                    }
                    None => 0,
                };
                loc[j % RING] = (p as u32, b as u32);
            }
            // Stage 2: probe j - AHEAD.
            if let Some(&m) = j.checked_sub(AHEAD).and_then(|at| sorted.get(at)) {
                let at = (j - AHEAD) % RING;
                let (p, b) = loc[at];
                spans[at] = self.parts.get(p as usize).map_or((0, 0, false), |part| {
                    let Some(&entry) = part.dir.get(b as usize) else {
                        return (0, 0, false);
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
                    (lo, hi, in_delta)
                });
            }
            // Stage 3: probe j - 2·AHEAD.
            let Some(at) = j.checked_sub(2 * AHEAD) else {
                continue;
            };
            let (Some(&m), Some(&i)) = (sorted.get(at), order.get(at)) else {
                continue;
            };
            let (p, _) = loc[at % RING];
            let (lo, hi, in_delta) = spans[at % RING];
            let Some(part) = self.parts.get(p as usize) else {
                continue;
            };
            let fp = m as u8;
            let (pending_before, out_before) = (pending.len(), out.len());
            let mut found_here = 0usize;
            let mut k = lo as usize;
            while k < hi as usize && found_here <= cap {
                let mut found = eq_bytes(load8(&part.fps, k), fp) & first_bytes(hi as usize - k);
                found_here += found.count_ones() as usize;
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
                    if e == EMPTY || found_here > cap {
                        break;
                    }
                    if (e >> 32) as u32 == m {
                        out.push((i, e as u32, true));
                        found_here += 1;
                    }
                    at = (at + 1) & mask;
                }
            }
            if found_here > cap {
                pending.truncate(pending_before);
                out.truncate(out_before);
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
}

/// Probes between two stages of [`Postings::probe`]: 32 keeps more misses
/// on their way than a core tracks at once. 8 was as slow as no pipeline;
/// 16, 24 and 48 within 1 % of 32 (lookups at 40M postings).
const AHEAD: usize = 32;
/// Slots of the stages' ring buffers: more than `2·AHEAD`, a power of two.
const RING: usize = 128;
const _: () = assert!(RING > 2 * AHEAD && RING.is_power_of_two());

/// Bytes `k..k + 8` of `bytes` as a little-endian word, zero past the end.
#[inline]
pub(super) fn load8(bytes: &[u8], k: usize) -> u64 {
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
pub(super) fn eq_bytes(w: u64, fp: u8) -> u64 {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    let x = w ^ (u64::from(fp) * 0x0101_0101_0101_0101);
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// The high bits of the first `n` bytes of a word (all 8 for `n ≥ 8`).
#[inline]
pub(super) fn first_bytes(n: usize) -> u64 {
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
pub(super) fn order_by_top_bits(ms: &[u32]) -> (Vec<u32>, Vec<u32>) {
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
