//! The postings' internal invariants, checked by the tests.

use super::{mix, HashesOf, Postings, EMPTY, MAX_ADDR_BITS, MAX_DEPTH, MAX_DIR_BITS};

impl Postings {
    /// Checks the internal invariants (tests only), with every run posting
    /// of a live track located by its hash (`hashes_of`).
    #[cfg(test)]
    pub(in crate::index) fn check(&self, hashes_of: &HashesOf) {
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
}
