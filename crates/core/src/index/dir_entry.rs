//! A bucket's directory entry: where the bucket's run postings are, and the
//! flags that let a probe stop at the directory (see `postings`).
//!
//! 16 bytes, four to a cache line and never straddling one. A probe reads
//! one entry and nothing else when the flags rule its hash out, so the
//! entry carries 64 run flags: at the usual load of about 19 postings per
//! bucket a probe of an absent hash then reads the fingerprints about a
//! quarter of the time, where 16 flags in an 8-byte entry sent it there
//! 69 % of the time (measured at 40M postings). Those reads were about a
//! third of a lookup's cache misses; the wider entries cost 0.4 bytes per
//! posting. The bucket's length is in the entry too, so a probe does not
//! read the next entry (in the next line for one bucket in four).
//!
//! The run flags are keyed by the 6 bits of `m` right after the bucket's
//! address ([`RUN_KEY_BITS`]), not by fingerprint bits: the run does not
//! store the top 3 of them, so the flags also rule out most postings whose
//! fingerprint matches but whose hash does not (each such match costs the
//! caller two more cache misses to reject).

/// Delta flags: 16, one per value of the 4 bits of `m` after the bucket.
pub(super) const DELTA_FLAG_BITS: u32 = 4;
/// Run flags: 64, one per value of the 6 bits of `m` after the bucket.
pub(super) const RUN_KEY_BITS: u32 = 6;
const DELTA_FLAGS_AT: u32 = 48;
const LEN_AT: u32 = 32;
/// A length field of this value means "this many or more": the next
/// entry's offset ends the bucket (a hash shared by thousands of tracks).
const LONG: u64 = 0xFFFF;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C, align(16))]
pub(super) struct Entry {
    /// Bits 0..32: offset of the bucket's first run posting; 32..48: its
    /// run postings (`LONG`: see the next entry); 48..64: delta flags.
    head: u64,
    /// Run flags: bit `key` for the run key (see [`RUN_KEY_BITS`]) of every
    /// posting in the bucket's run (more may be set: see `postings`).
    run: u64,
}

impl Entry {
    /// The entry of a bucket whose run postings are `offset..offset + len`,
    /// with run flags `run` and no delta flags.
    #[inline]
    pub(super) fn new(offset: usize, len: usize, run: u64) -> Entry {
        Entry {
            head: offset as u32 as u64 | (len as u64).min(LONG) << LEN_AT,
            run,
        }
    }

    #[inline]
    pub(super) fn offset(self) -> usize {
        self.head as u32 as usize
    }

    /// The bucket's run postings: `offset..end`. `next` is the following
    /// entry, read only for a bucket too long for the length field.
    #[inline]
    pub(super) fn span(self, next: impl FnOnce() -> Option<Entry>) -> (usize, usize) {
        let (lo, len) = (self.offset(), (self.head >> LEN_AT) & LONG);
        if len < LONG {
            (lo, lo + len as usize)
        } else {
            (lo, next().map_or(lo, Entry::offset).max(lo))
        }
    }

    #[inline]
    pub(super) fn run_flags(self) -> u64 {
        self.run
    }

    /// Whether the run may hold a posting with run key `key`.
    #[inline]
    pub(super) fn may_hold(self, key: u32) -> bool {
        self.run & run_flag(key) != 0
    }

    /// Whether the delta may hold a posting with delta flag `flag` (see
    /// [`delta_flag`]).
    #[inline]
    pub(super) fn delta_may_hold(self, flag: u64) -> bool {
        self.head & flag != 0
    }

    pub(super) fn add_run_flags(&mut self, flags: u64) {
        self.run |= flags;
    }

    #[inline]
    pub(super) fn set_delta_flag(&mut self, flag: u64) {
        self.head |= flag;
    }
}

/// The delta flag of a posting whose `m` has `sub` (below 16) as its 4 bits
/// after the bucket.
#[inline]
pub(super) fn delta_flag(sub: u32) -> u64 {
    1u64 << (DELTA_FLAGS_AT + (sub & ((1 << DELTA_FLAG_BITS) - 1)))
}

/// The run flag of run key `key` (below 64).
#[inline]
pub(super) fn run_flag(key: u32) -> u64 {
    1u64 << (key & ((1 << RUN_KEY_BITS) - 1))
}

/// `flags` of an old bucket whose address had `shift` more bits, the lowest
/// of them `low`, as flags of the bucket that takes in its postings when a
/// directory shrinks: a run key now starts `shift` bits earlier in `m`, with
/// those address bits, then the old key's top bits.
pub(super) fn shifted_flags(flags: u64, low: u32, shift: u32) -> u64 {
    if flags == 0 || shift == 0 {
        return flags;
    }
    if shift >= RUN_KEY_BITS {
        return run_flag(low >> (shift - RUN_KEY_BITS));
    }
    let mut out = 0;
    let mut rest = flags;
    while rest != 0 {
        let key = rest.trailing_zeros();
        out |= run_flag((low << (RUN_KEY_BITS - shift)) | (key >> shift));
        rest &= rest - 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_is_a_quarter_of_a_cache_line_and_aligned_to_it() {
        assert_eq!(std::mem::size_of::<Entry>(), 16);
        assert_eq!(std::mem::align_of::<Entry>(), 16);
    }

    #[test]
    fn span_uses_the_length_field_or_the_next_entry_for_long_buckets() {
        let e = Entry::new(100, 7, 0);
        assert_eq!(
            e.span(|| panic!("short buckets do not read the next entry")),
            (100, 107)
        );
        let long = Entry::new(5, 70_000, 0);
        assert_eq!(long.span(|| Some(Entry::new(70_005, 0, 0))), (5, 70_005));
        assert_eq!(long.span(|| None), (5, 5));
        let edge = Entry::new(0, 0xFFFE, 0);
        assert_eq!(edge.span(|| None), (0, 0xFFFE));
    }

    #[test]
    fn flags_and_fields_do_not_overlap() {
        let mut e = Entry::new(0xFFFF_FFFF, 3, run_flag(0) | run_flag(63) | run_flag(8));
        for sub in 0..16 {
            e.set_delta_flag(delta_flag(sub));
        }
        assert_eq!(e.offset(), 0xFFFF_FFFF);
        assert_eq!(e.span(|| None), (0xFFFF_FFFF, 0xFFFF_FFFF + 3));
        assert!(e.may_hold(0) && e.may_hold(63) && e.may_hold(8));
        assert!(!e.may_hold(1) && !e.may_hold(7));
        let fresh = Entry::new(9, 1, 0);
        assert!((0..64).all(|k| !fresh.may_hold(k)));
        assert!((0..16).all(|s| !fresh.delta_may_hold(delta_flag(s))));
        assert!((0..16).all(|s| e.delta_may_hold(delta_flag(s))));
    }

    #[test]
    fn shifted_flags_follow_the_key_bits_of_m() {
        // A posting's key in a bucket of `bits` address bits after the prefix.
        let key = |m: u32, bits: u32| (m << bits) >> (32 - RUN_KEY_BITS);
        let mut x = 0x9E37_79B9u32;
        for shift in 0..10 {
            for _ in 0..200 {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                let (old_bits, m) = (12, x);
                let old_bucket = m >> (32 - old_bits);
                let low = old_bucket & ((1 << shift) - 1);
                let moved = shifted_flags(run_flag(key(m, old_bits)), low, shift);
                assert_eq!(moved, run_flag(key(m, old_bits - shift)), "shift {shift}");
            }
        }
    }
}
