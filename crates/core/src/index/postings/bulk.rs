//! Whole-index passes: building the postings at once, and their statistics.

use super::{EachPosting, Postings, EMPTY, MAX_ADDR_BITS, MAX_DIR_BITS};
use crate::index::dir_entry::{run_flag, Entry};

impl Postings {
    /// (distinct hashes, live postings, longest posting list), in one
    /// sequential pass: within a bucket, postings with different fingerprints
    /// hold different hashes, so only postings sharing a fingerprint are
    /// resolved (`hash_of(ref)`: the hash, or `None` for a dead ref).
    pub(in crate::index) fn stats(&self, hash_of: &dyn Fn(u32) -> Option<u32>) -> (u64, u64, u64) {
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

    /// Builds the whole index at once from `(m, ref)` produced by `each`,
    /// which is called twice and must produce the same postings both times
    /// (first to count the buckets, then to fill them), so no temporary copy
    /// of the postings is needed.
    pub(in crate::index) fn build(addr_bits: u32, each: &EachPosting) -> Self {
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
}
