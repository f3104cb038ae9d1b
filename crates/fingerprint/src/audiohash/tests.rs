//! The hash against its definition: frame counts, streaming and chunking,
//! the toggle budget and selection, gain invariance, the sparse band table.

use super::*;

fn hash_all(samples: &[f32], sr: u32, p: u32) -> Result<Fingerprint, FingerprintError> {
    let mut h = Hasher::new(sr, p)?;
    h.push(samples);
    h.finish()
}

/// Deterministic pseudo-noise plus a few tones, so every band has energy.
fn test_signal(n: usize, sr: u32) -> Vec<f32> {
    let mut state = 0x1234_5678u32;
    (0..n)
        .map(|i| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let noise = (state as f32 / u32::MAX as f32) - 0.5;
            let t = i as f32 / sr as f32;
            let tones = (2.0 * std::f32::consts::PI * 440.0 * t).sin()
                + 0.5 * (2.0 * std::f32::consts::PI * (300.0 + 200.0 * t) * t).sin();
            0.3 * tones + 0.2 * noise
        })
        .collect()
}

#[test]
fn frame_and_hop_follow_the_sample_rate() {
    assert_eq!(frame_length(6000), 2048);
    assert_eq!(hop_length(6000), 64);
    assert_eq!(frame_length(8000), 2048);
    assert_eq!(frame_length(11025), 4096);
    assert_eq!(frame_length(44100), 16384);
    assert_eq!(min_samples(6000), 2048 + 128);
}

#[test]
fn signal_of_t_frames_gives_t_minus_2_hashes() {
    let sr = 6000;
    // 10 frames exactly: L + 9H samples, plus a few that complete no frame.
    let n = 2048 + 9 * 64 + 63;
    let fp = hash_all(&test_signal(n, sr), sr, 4).unwrap();
    assert_eq!(fp.hashes.len(), 8);
    assert_eq!(fp.toggles.len(), 8);
}

#[test]
fn drained_ranked_hashes_equal_a_whole_fingerprint() {
    let sr = 6000;
    let signal = test_signal(6000 * 4, sr);
    let mut whole = Hasher::with_budget(sr, 0, DEFAULT_PROBE_BUDGET).unwrap();
    whole.push(&signal);
    let fp = whole.finish().unwrap();
    let bits = budget_toggle_bits(fp.hashes.len(), 0, DEFAULT_PROBE_BUDGET, MAX_TOGGLE_BITS);
    let mut stream = Hasher::ranked(sr).unwrap();
    let mut got = Vec::new();
    for chunk in signal.chunks(777) {
        stream.push(chunk);
        stream.drain_ranked(&mut got);
    }
    let hashes: Vec<u32> = got.iter().map(|r| r.hash).collect();
    let toggles: Vec<u32> = got.iter().map(|r| r.toggles(bits)).collect();
    assert_eq!(hashes, fp.hashes);
    assert_eq!(toggles, fp.toggles);
    assert_eq!(stream.hash_count(), 0, "drained");
}

#[test]
fn chunked_pushes_equal_one_push() {
    let sr = 6000;
    let signal = test_signal(6000 * 3 + 17, sr);
    let whole = hash_all(&signal, sr, 5).unwrap();
    let mut h = Hasher::new(sr, 5).unwrap();
    for chunk in signal.chunks(777) {
        h.push(chunk);
    }
    h.push(&[]);
    assert_eq!(h.finish().unwrap(), whole);
}

#[test]
fn budget_gives_short_queries_more_toggle_bits() {
    // Clips of 1, 2, 3, 5 and 10 s at 6000 Hz: (6000·s − 2048) / 64 − 1 hashes.
    let bits: Vec<u32> = [60, 154, 248, 435, 903]
        .iter()
        .map(|&n| budget_toggle_bits(n, 4, DEFAULT_PROBE_BUDGET, MAX_TOGGLE_BITS))
        .collect();
    assert_eq!(bits, [9, 9, 8, 5, 4]);
    // The budget (5× for a short query) is never exceeded unless the floor
    // demands it, and is used up to the cap.
    for n in 1..3000usize {
        let b = budget_toggle_bits(n, 4, DEFAULT_PROBE_BUDGET, MAX_TOGGLE_BITS);
        let budget = if n <= SHORT_QUERY_FRAMES {
            SHORT_QUERY_BUDGET_FACTOR * DEFAULT_PROBE_BUDGET
        } else {
            DEFAULT_PROBE_BUDGET
        };
        assert!((4..=MAX_TOGGLE_BITS).contains(&b), "n {n}");
        assert!(b == 4 || (n as u64) << b <= budget, "n {n}");
        assert!(
            b == MAX_TOGGLE_BITS || (n as u64) << (b + 1) > budget,
            "n {n}"
        );
    }
    // A 10 s query costs no more than before the short-query rule.
    assert!(
        903 << budget_toggle_bits(903, 4, DEFAULT_PROBE_BUDGET, MAX_TOGGLE_BITS)
            <= DEFAULT_PROBE_BUDGET
    );
    assert_eq!(
        budget_toggle_bits(0, 4, DEFAULT_PROBE_BUDGET, MAX_TOGGLE_BITS),
        MAX_TOGGLE_BITS
    );
    assert_eq!(
        budget_toggle_bits(1_000_000, 4, DEFAULT_PROBE_BUDGET, MAX_TOGGLE_BITS),
        4
    );
    assert_eq!(budget_toggle_bits(10, 4, 0, MAX_TOGGLE_BITS), 4);
    assert_eq!(budget_toggle_bits(10, 6, 0, MAX_TOGGLE_BITS), 6);
    assert_eq!(
        budget_toggle_bits(10, 12, 0, MAX_TOGGLE_BITS),
        MAX_TOGGLE_BITS
    );
    assert_eq!(
        budget_toggle_bits(100_000, 12, DEFAULT_PROBE_BUDGET, MAX_TOGGLE_BITS),
        MAX_TOGGLE_BITS
    );
    assert_eq!(
        budget_toggle_bits(10, 4, u64::MAX, MAX_TOGGLE_BITS),
        MAX_TOGGLE_BITS
    );
    // The server's cap bounds everything, the floor included.
    assert_eq!(budget_toggle_bits(154, 4, DEFAULT_PROBE_BUDGET, 9), 9);
    assert_eq!(budget_toggle_bits(154, 4, DEFAULT_PROBE_BUDGET, 8), 8);
    assert_eq!(budget_toggle_bits(154, 4, DEFAULT_PROBE_BUDGET, 6), 6);
    assert_eq!(budget_toggle_bits(154, 8, 0, 6), 6);
    assert_eq!(
        budget_toggle_bits(154, 4, DEFAULT_PROBE_BUDGET, 12),
        MAX_TOGGLE_BITS
    );
}

#[test]
fn budget_masks_equal_fixed_masks_of_the_chosen_width() {
    let sr = 6000;
    for seconds in [1.0, 2.0, 3.0, 5.0] {
        let signal = test_signal((6000.0 * seconds) as usize, sr);
        let mut h = Hasher::with_budget(sr, 4, DEFAULT_PROBE_BUDGET).unwrap();
        h.push(&signal);
        let budgeted = h.finish().unwrap();
        let p = budget_toggle_bits(
            budgeted.hashes.len(),
            4,
            DEFAULT_PROBE_BUDGET,
            MAX_TOGGLE_BITS,
        );
        assert!(p > 4, "{seconds} s");
        assert_eq!(budgeted, hash_all(&signal, sr, p).unwrap(), "{seconds} s");
    }
}

#[test]
fn toggles_have_exactly_p_bits() {
    let sr = 6000;
    let signal = test_signal(6000 * 2, sr);
    for p in 0..=MAX_TOGGLE_BITS {
        let fp = hash_all(&signal, sr, p).unwrap();
        assert!(fp.toggles.iter().all(|t| t.count_ones() == p), "p = {p}");
    }
}

#[test]
fn toggles_pick_smallest_abs_d_with_ties_by_index() {
    // prev all zero; next chosen so D[m] = next[m] - next[m+1] is known.
    let prev = [0f32; NUM_BANDS];
    let mut next = [0f32; NUM_BANDS];
    // Build next backwards so that D[m] = target[m].
    let mut target = [5f32; NUM_BITS];
    target[3] = -0.5; // smallest |D|
    target[7] = 1.0; // ties with 20
    target[20] = -1.0;
    target[30] = 2.0;
    for m in (0..NUM_BITS).rev() {
        next[m] = next[m + 1] + target[m];
    }
    let (hash, toggle) = hash_bits(&prev, &next, 3);
    let expected_toggle = (0x8000_0000u32 >> 3) | (0x8000_0000 >> 7) | (0x8000_0000 >> 20);
    assert_eq!(toggle, expected_toggle);
    // D > 0 everywhere except bits 3 and 20.
    let expected_hash = !((0x8000_0000u32 >> 3) | (0x8000_0000 >> 20));
    assert_eq!(hash, expected_hash);
    // With p = 4 the next smallest is bit 30 (|D| = 2).
    let (_, toggle4) = hash_bits(&prev, &next, 4);
    assert_eq!(toggle4, expected_toggle | (0x8000_0000 >> 30));
}

#[test]
fn toggle_selection_equals_a_full_sort() {
    // |D| values from a small set, so ties are everywhere.
    let mut state = 0xdead_beefu32;
    for _ in 0..500 {
        let prev = [0f32; NUM_BANDS];
        let mut next = [0f32; NUM_BANDS];
        let mut abs_d = [0f32; NUM_BITS];
        for m in (0..NUM_BITS).rev() {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            let d = (state % 7) as f32 - 3.0;
            abs_d[m] = d.abs();
            next[m] = next[m + 1] + d;
        }
        let mut order: Vec<usize> = (0..NUM_BITS).collect();
        order.sort_by(|&a, &b| abs_d[a].total_cmp(&abs_d[b]).then(a.cmp(&b)));
        for p in 0..=MAX_TOGGLE_BITS {
            let expected = order[..p as usize]
                .iter()
                .fold(0u32, |t, &m| t | (0x8000_0000 >> m));
            assert_eq!(hash_bits(&prev, &next, p).1, expected, "p = {p}");
        }
        // The ranks list the bits in that order: least reliable first.
        let (_, ranks) = hash_ranked(&prev, &next, MAX_TOGGLE_BITS);
        for (i, &m) in order[..MAX_TOGGLE_BITS as usize].iter().enumerate() {
            assert_eq!(
                (ranks >> (RANK_FIELD as usize * i)) & 0x1f,
                m as u64,
                "rank {i}"
            );
        }
    }
}

#[test]
fn hash_ignores_gain() {
    // Every bit is the sign of a linear combination of band energies, so a gain
    // (a power of two, exact in float) leaves the hash unchanged.
    let sr = 6000;
    let signal = test_signal(6000 * 2, sr);
    let louder: Vec<f32> = signal.iter().map(|s| s * 4.0).collect();
    assert_eq!(
        hash_all(&signal, sr, 4).unwrap().hashes,
        hash_all(&louder, sr, 4).unwrap().hashes
    );
}

#[test]
fn too_short_and_bad_options_are_errors() {
    let sr = 6000;
    let short = test_signal(min_samples(sr) - 1, sr);
    assert!(matches!(
        hash_all(&short, sr, 4),
        Err(FingerprintError::TooShort { .. })
    ));
    assert!(hash_all(&test_signal(min_samples(sr), sr), sr, 4).is_ok());
    assert!(matches!(
        Hasher::new(5999, 4),
        Err(FingerprintError::BadOption(_))
    ));
    assert!(matches!(
        Hasher::new(6000, MAX_TOGGLE_BITS + 1),
        Err(FingerprintError::BadOption(_))
    ));
}

#[test]
fn sparse_band_table_matches_dense_energies() {
    let sr = 6000;
    let frame_len = frame_length(sr);
    let sparse = BandWeights::new(sr, frame_len);
    assert!(sparse.len() < NUM_BANDS * (frame_len / 2 + 1));
    let mag: Vec<f32> = (0..=frame_len / 2)
        .map(|j| 1.0 + (j as f32 * 0.37).sin().abs())
        .collect();
    let mut got = [0f32; NUM_BANDS];
    sparse.energies(&mag, &mut got);
    let bin_hz = 3000.0 / (frame_len / 2) as f64;
    let bark = |f: f64| 6.0 * (f / 600.0).asinh();
    for (b, centre) in BAND_CENTRES_HZ.iter().enumerate() {
        let dense: f64 = mag
            .iter()
            .enumerate()
            .map(|(j, &m)| {
                let d = bark(j as f64 * bin_hz) - bark(*centre);
                let w = 10f64.powf((-2.5 * (d / 1.06 - 0.5)).min(d / 1.06 + 0.5).min(0.0));
                w * f64::from(m)
            })
            .sum();
        let rel = (f64::from(got[b]) - dense).abs() / dense;
        assert!(rel < 1e-5, "band {b}: sparse {} dense {dense}", got[b]);
    }
}
