//! Which track slot holds a ref, in constant time.
//!
//! Every posting a lookup finds is mapped back to its track. A binary search
//! over the slots' bases (11 dependent steps at 2,000 tracks) cost about
//! 55 ns per hit, a tenth of a two-thread lookup whose query matches (about
//! 1,000 hits). This table narrows the search to the slots whose base falls
//! in the hit's block of [`BLOCK`] refs: one or two for tracks of thousands
//! of frames.

/// Refs per block (a power of two): 4 bytes of table per 4,096 refs.
const SHIFT: u32 = 12;
const BLOCK: u64 = 1 << SHIFT;

/// `at[k]`: how many slots have a base ≤ `k · BLOCK`, for every block up to
/// one past the block of the last ref handed out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct RefMap {
    at: Vec<u32>,
}

impl RefMap {
    /// The map of slots with `bases` (increasing) whose refs end below `end`.
    pub(super) fn new(bases: impl IntoIterator<Item = u32>, end: u32) -> Self {
        let mut map = RefMap::default();
        let mut count = 0u32;
        for base in bases {
            count += 1;
            map.push(base, count, base);
        }
        map.cover(end, count);
        map
    }

    /// After slot number `count - 1` was added with `base` (at or above
    /// every other base's end) and the refs handed out now end below `end`.
    pub(super) fn push(&mut self, base: u32, count: u32, end: u32) {
        // Blocks up to the new base's own hold the slots before it...
        self.cover(base, count.saturating_sub(1));
        // ...and every block starting at or past it holds it too.
        let first = u64::from(base).div_ceil(BLOCK) as usize;
        if let Some(tail) = self.at.get_mut(first..) {
            tail.fill(count);
        }
        self.cover(end, count);
    }

    /// Extends the map up to one block past ref `end`, with `count` slots
    /// below every new block (right when every base is below the end of
    /// the refs handed out so far).
    pub(super) fn cover(&mut self, end: u32, count: u32) {
        let blocks = (u64::from(end) >> SHIFT) as usize + 2;
        if self.at.len() < blocks {
            self.at.resize(blocks, count);
        }
    }

    /// The slots among which the one holding `r` is: slot `k` holds it when
    /// `k + 1` is the number of slots with a base ≤ `r`, and that number is
    /// in the returned range (`None`: `r` is past every ref handed out).
    #[inline]
    pub(super) fn candidates(&self, r: u32) -> Option<(usize, usize)> {
        let k = (r >> SHIFT) as usize;
        let (&lo, &hi) = (self.at.get(k)?, self.at.get(k + 1)?);
        Some((lo as usize, hi as usize))
    }

    pub(super) fn mem_usage(&self) -> usize {
        super::memsize::alloc_size(self.at.capacity() * 4)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The number of bases ≤ r, the slow way.
    fn count_le(bases: &[u32], r: u32) -> usize {
        bases.iter().filter(|&&b| b <= r).count()
    }

    fn assert_brackets(map: &RefMap, bases: &[u32], end: u32) {
        for r in (0..end).step_by(97).chain([0, end.saturating_sub(1)]) {
            let (lo, hi) = map.candidates(r).expect("covered");
            let n = count_le(bases, r);
            assert!(lo <= n && n <= hi, "ref {r}: {n} not in {lo}..={hi}");
        }
    }

    #[test]
    fn pushes_and_a_fresh_map_agree_and_bracket_every_ref() {
        // Tracks of mixed lengths, gaps between them (removed tracks' refs).
        let lens = [5u32, 4096, 1, 1, 9000, 3, 20_000, 4095, 4097, 2];
        let mut bases = Vec::new();
        let mut map = RefMap::default();
        let mut end = 0u32;
        for (k, &len) in lens.iter().enumerate() {
            let base = end + if k % 3 == 0 { 700 } else { 0 };
            end = base + len;
            bases.push(base);
            map.push(base, bases.len() as u32, end);
            assert_brackets(&map, &bases, end);
        }
        assert_eq!(map, RefMap::new(bases.iter().copied(), end));
        // The last track grows in place.
        end += 10_000;
        map.cover(end, bases.len() as u32);
        assert_eq!(map, RefMap::new(bases.iter().copied(), end));
        assert_brackets(&map, &bases, end);
    }

    #[test]
    fn refs_past_the_end_are_not_covered() {
        let map = RefMap::new([0u32, 10], 20);
        assert!(map.candidates(1 << 20).is_none());
        assert_eq!(RefMap::default().candidates(0), None);
    }
}
