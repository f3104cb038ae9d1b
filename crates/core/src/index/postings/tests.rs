use super::probe::{eq_bytes, first_bytes, load8};
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
