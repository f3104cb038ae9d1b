//! Step 3 of a lookup: from bit errors to a score that means the same at every
//! query length.
//!
//! `s = 1 − 2·BER` is 0 for chance and 1 for identical, but the best of many
//! tried alignments of unrelated audio lands well above 0 when few frames are
//! compared: hash frames overlap 31/32, so 90 frames (1 s) hold only a handful
//! of independent 32-bit words, and verification keeps the best of ~50
//! candidates, each block the best of a few offsets. The level `m(n)` that
//! unrelated audio rarely exceeds with `n` compared frames is
//! modelled as `A + C / sqrt(n)` and the score is mapped piecewise-linearly so
//! that `s = m(n)` scores exactly [`CHANCE_SCORE`] (0.25, the default
//! threshold), `s = 0` scores 0 and `s = 1` scores 1. One threshold is then
//! right at every length, and a lower threshold trades more false positives
//! for recall in the same way at every length.
//!
//! `n` counts informative compared frames only (see `verify.rs`), so a query
//! of repeated hashes (digital silence) cannot look long.
//!
//! Calibration (`auscoutclient eval --calibrate --dump` on the 55-track /
//! 3.2 h bench corpus, queries with the client's probe budget: 9 toggle
//! bits for 1–2 s, 8 for 3 s, down to 4 from about 5.7 s; 50–200 verified
//! candidates): unrelated audio is (a) windows of 1–10 s cut every 0.5 s from
//! the 6 unindexed tracks (~2,850 lookups per length) and (b) windows every
//! 2 s of each indexed track with its whole game hidden from the index
//! (~4,800 per length; a game reuses its own material, so leaving one track
//! out is not "unrelated"). With `A = 0.06, C = 2.6`, (a) scores ≥ 0.25 in
//! 0.38 / 0.31 / 0.04 / 0.11 / 0.04 / 0.04 / 0 / 0 / 0% of lookups at 60 /
//! 91 / 154 / 185 / 248 / 279 / 435 / 466 / 903 hashes (a 1 s clip has
//! `(6000 − 2048) / 64 − 1` = 60), (b) in at most 0.04%, and none of the
//! bench's 60 negative clips does, while no positive clip of the standard set
//! is lost. A smaller `C` lets more chance through on short queries (2.5:
//! 0.70% of (a) at 60 hashes); a larger one loses noisy positives (2.7: a
//! noise10 5 s clip). The margin under 1% is for bigger indexes, where the
//! best of the verified candidates reaches a little higher.

/// The score given to `m(n)`, the level unrelated audio stays under (≥ 99.6%
/// of lookups on the calibration set).
pub(super) const CHANCE_SCORE: f64 = 0.25;
const A: f64 = 0.06;
const C: f64 = 2.6;

/// `m(n)`: the `1 − 2·BER` that unrelated audio rarely exceeds with `n`
/// informative frames compared (calibrated above).
pub(super) fn chance_ceiling(frames: u64) -> f64 {
    A + C / (frames.max(1) as f64).sqrt()
}

/// Score in [0, 1] of `errors` differing bits over `frames` 32-bit frames.
pub(super) fn score(errors: u64, frames: u64) -> f64 {
    if frames == 0 {
        return 0.0;
    }
    let s = 1.0 - 2.0 * errors as f64 / (32.0 * frames as f64);
    let m = chance_ceiling(frames);
    if m >= 1.0 {
        // Too few frames to tell anything from chance.
        return (CHANCE_SCORE * s.max(0.0)).min(CHANCE_SCORE * 0.999);
    }
    let v = if s <= m {
        CHANCE_SCORE * s / m
    } else {
        // = CHANCE_SCORE + (1 − CHANCE_SCORE)·(s − m)/(1 − m), written so
        // that s = 1 gives exactly 1 whatever m rounds to.
        1.0 - (1.0 - CHANCE_SCORE) * (1.0 - s) / (1.0 - m)
    };
    v.clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_scores_one_and_chance_scores_zero() {
        assert_eq!(score(0, 1000), 1.0);
        assert_eq!(score(16 * 1000, 1000), 0.0);
        assert_eq!(score(32 * 1000, 1000), 0.0);
    }

    #[test]
    fn ceiling_maps_to_the_default_threshold() {
        for n in [90u64, 200, 500, 1000, 5000] {
            let m = chance_ceiling(n);
            let errors = ((1.0 - m) / 2.0 * 32.0 * n as f64).round() as u64;
            assert!((score(errors, n) - CHANCE_SCORE).abs() < 0.01, "n {n}");
        }
    }

    #[test]
    fn same_ber_scores_higher_on_longer_queries() {
        // BER 0.3 at 90 and at 900 frames.
        assert!(score(864, 90) < score(8640, 900));
    }

    #[test]
    fn score_is_monotonic_in_errors() {
        let mut last = f64::INFINITY;
        for e in (0..=32 * 200).step_by(50) {
            let s = score(e, 200);
            assert!(s <= last);
            last = s;
        }
    }
}
