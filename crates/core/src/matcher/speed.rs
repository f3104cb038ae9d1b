//! The speed of a matched clip relative to its track.
//!
//! A clip played `s` times fast holds the track's frame `s·i` at its own
//! frame `i`, so a match is a line `track = c + s·query` through the
//! alignment verification found. Verification follows a drift of at most a
//! frame per block (about 3 %) and scores what it follows; its block
//! offsets are too coarse to measure a speed from. Here the line is fitted
//! by the bit errors of the whole query against the track, pivoting on the
//! point where the votes agreed (the anchor, whose offset verification
//! settled to a whole frame): a coarse grid of slopes over speeds
//! 0.88–1.12, then a fine grid around the best with the pivot also moved a
//! frame either side. A slope wrong by `e` misplaces the query's frames by
//! up to `e·reach` frames (`reach`: the query frames on the far side of
//! the pivot), so the coarse grid's step keeps that under two frames
//! (neighbouring frames of real audio share most of their bits) and the
//! fine grid's under a quarter frame. The fit only reads the track: a
//! match's score and alignment are those of verification.
//! How close the fit comes on real music: docs/accuracy.md.

use super::verify::{Anchor, Query};

/// Speeds tried: from `1 − RANGE` to `1 + RANGE`. A match farther off
/// would not have been found (a frame hash absorbs about ±4 %; the client's
/// fallbacks undo a grid of warps before looking up).
const RANGE: f64 = 0.12;
/// Largest misplacement of a query frame between neighbouring slopes of
/// the coarse grid, and of the fine one, in frames.
const COARSE_FRAMES: f64 = 2.0;
const FINE_FRAMES: f64 = 0.25;
/// The coarse grid's step is at most this (a long query's basin is narrow).
const MAX_COARSE_STEP: f64 = 0.004;
/// The coarse grid reads every this many informative frames: it only has
/// to find the basin the fine grid then searches with every frame.
const COARSE_STRIDE: usize = 2;
/// The fine grid tries the pivot's track frame this far either side of the
/// anchor's (verification settles a block's offset to a whole frame).
const PIVOT_SLACK: i64 = 1;
/// Cost of a query frame the line puts outside the track: chance.
const OUTSIDE_COST: u64 = 16;
/// Track positions are fixed point with this many fractional bits.
const FRACTION_BITS: u32 = 16;
const ONE: i64 = 1 << FRACTION_BITS;

/// The speed (track frames per query frame) of the line through `anchor`
/// that best aligns `query` with `track`.
pub(super) fn fit(query: &Query<'_>, track: &[u32], anchor: Anchor) -> f64 {
    let len = query.hashes.len();
    let reach = anchor
        .frame
        .max(len.saturating_sub(1).saturating_sub(anchor.frame))
        .max(1) as f64;
    // Informative frames as (distance from the pivot, hash).
    let frames: Vec<(i64, u32)> = query
        .hashes
        .iter()
        .zip(&query.mask)
        .enumerate()
        .filter(|(_, (_, &m))| m != 0)
        .map(|(i, (&h, _))| (i as i64 - anchor.frame as i64, h))
        .collect();
    let sparse: Vec<(i64, u32)> = frames.iter().step_by(COARSE_STRIDE).copied().collect();
    let line = Line {
        track,
        pivot: anchor.frame as i64 + anchor.offset,
    };
    let coarse = (COARSE_FRAMES / reach).min(MAX_COARSE_STEP);
    let fine = FINE_FRAMES / reach;
    let rough = line.best_slope(&sparse, 1.0 - RANGE, 1.0 + RANGE, coarse, 0..=0);
    // The coarse grid kept the pivot where the anchor put it; a pivot a
    // frame off tilts its best slope by up to a frame over the reach.
    let around = coarse + PIVOT_SLACK as f64 / reach;
    line.best_slope(
        &frames,
        rough - around,
        rough + around,
        fine,
        -PIVOT_SLACK..=PIVOT_SLACK,
    )
}

/// Lines through a track frame near `pivot`.
struct Line<'a> {
    track: &'a [u32],
    pivot: i64,
}

impl Line<'_> {
    /// The slope in `lo..=hi` (steps of `step`) of least cost, the pivot
    /// moved by any of `shifts`; ties go to the slope nearest 1 (a clip
    /// played as the track was, unless the errors say otherwise).
    fn best_slope(
        &self,
        frames: &[(i64, u32)],
        lo: f64,
        hi: f64,
        step: f64,
        shifts: std::ops::RangeInclusive<i64>,
    ) -> f64 {
        let steps = ((hi - lo) / step).round().max(0.0) as usize;
        let mut best = (u64::MAX, f64::INFINITY, 1.0);
        for k in 0..=steps {
            let s = lo + step * k as f64;
            let slope = (s * ONE as f64).round() as i64;
            let cost = shifts
                .clone()
                .map(|c| self.cost(frames, slope, c))
                .min()
                .unwrap_or(u64::MAX);
            let from_one = (s - 1.0).abs();
            if cost < best.0 || (cost == best.0 && from_one < best.1) {
                best = (cost, from_one, s);
            }
        }
        best.2
    }

    /// Bit errors of `frames` laid on the line of fixed-point slope `slope`
    /// through the pivot moved by `shift`, scaled by [`ONE`]. A frame the
    /// line puts between two track frames costs their errors interpolated
    /// linearly, so the cost changes smoothly with the slope and a short
    /// query's speed is found to a fraction of a frame.
    fn cost(&self, frames: &[(i64, u32)], slope: i64, shift: i64) -> u64 {
        let at = (self.pivot + shift) * ONE;
        let mut cost = 0u64;
        for &(rel, h) in frames {
            let x = at + rel * slope;
            let j = x >> FRACTION_BITS;
            let w = (x & (ONE - 1)) as u64;
            let (e0, e1) = match usize::try_from(j)
                .ok()
                .and_then(|j| self.track.get(j..j.checked_add(2)?))
            {
                Some(&[a, b]) => (
                    u64::from((h ^ a).count_ones()),
                    u64::from((h ^ b).count_ones()),
                ),
                _ => (self.errors(h, j), self.errors(h, j + 1)),
            };
            cost += (ONE as u64 - w) * e0 + w * e1;
        }
        cost
    }

    /// Bit errors of `h` against track frame `j` ([`OUTSIDE_COST`] off the track).
    fn errors(&self, h: u32, j: i64) -> u64 {
        usize::try_from(j)
            .ok()
            .and_then(|j| self.track.get(j))
            .map_or(OUTSIDE_COST, |&t| u64::from((h ^ t).count_ones()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Smooth random hashes: each frame flips a few bits of the one before,
    /// as the hashes of overlapping audio frames do.
    fn smooth(seed: u64, len: usize) -> Vec<u32> {
        let mut x = seed | 1;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut h = next() as u32;
        (0..len)
            .map(|_| {
                let r = next();
                h ^= (1 << (r % 32)) | (1 << ((r >> 8) % 32));
                h
            })
            .collect()
    }

    /// Frames of `track` from `at`, as a clip played `speed` times fast
    /// hashes them (nearest frame).
    fn played(track: &[u32], at: usize, speed: f64, len: usize) -> Vec<u32> {
        (0..len)
            .map(|i| track[at + (i as f64 * speed).round() as usize])
            .collect()
    }

    #[test]
    fn the_speed_of_a_clip_is_found() {
        let track = smooth(7, 6000);
        for (speed, len, pivot) in [
            (1.0, 900, 450),
            (1.05, 900, 450),
            (0.94, 900, 100),
            (1.03, 180, 170),
            (0.97, 400, 16),
            (1.11, 800, 400),
        ] {
            let hashes = played(&track, 1000, speed, len);
            let query = Query::new(&hashes);
            // The anchor as verification gives it: the true offset, or a
            // frame off.
            let offset = 1000 + (pivot as f64 * (speed - 1.0)).round() as i64 + 1;
            let got = fit(
                &query,
                &track,
                Anchor {
                    frame: pivot,
                    offset,
                },
            );
            assert!(
                (got - speed).abs() < 0.002,
                "speed {speed}, {len} frames: fitted {got}"
            );
        }
    }

    #[test]
    fn unrelated_frames_do_not_bend_the_fit() {
        // A third of the clip replaced by other audio: the rest still holds.
        let track = smooth(9, 5000);
        let other = smooth(10, 5000);
        let mut hashes = played(&track, 2000, 1.04, 900);
        hashes[300..600].copy_from_slice(&other[100..400]);
        let query = Query::new(&hashes);
        let offset = 2000 + (100.0 * 0.04f64).round() as i64;
        let got = fit(&query, &track, Anchor { frame: 100, offset });
        assert!((got - 1.04).abs() < 0.002, "fitted {got}");
    }
}
