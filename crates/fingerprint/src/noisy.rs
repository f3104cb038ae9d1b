//! Toggle masks for a clip under heavy broadband noise.
//!
//! A hash bit is the sign of a difference `D` of band energies; noise moves
//! `D` by an amount that depends on the band (white noise puts more energy
//! into the wide high bands, pink noise into the low ones) but hardly on
//! time. The ordinary masks toggle the bits with the smallest `|D|` and give
//! every frame the same number of bits; under heavy noise that spends most
//! probes on frames where the music is quiet and nearly every bit is a coin
//! flip. Here each bit's margin is measured against its band's typical
//! `|D|` over the clip (the noise level, when noise dominates), a frame's
//! chance of landing within its toggles of the stored hash is estimated
//! from those margins, and the probe budget goes where it buys the most of
//! that chance: loud frames get up to the cap of bits, hopeless ones few.
//!
//! The hashes are those of the ordinary fingerprint; only the masks differ.

use crate::audiohash::{MAX_TOGGLE_BITS, NUM_BANDS};

const NUM_BITS: usize = NUM_BANDS - 1;

/// Bits every frame gets whatever its margins (so a frame the model
/// misjudges still probes its likeliest neighbours).
const MIN_BITS: u32 = 2;

/// Hashes and noise-aware toggle masks of the frames `energies.windows(3)`
/// make, at most `budget` probes (`Σ 2^bits`) in all and `max_bits` per frame.
pub(crate) fn hash_for_noise(
    energies: &[[f32; NUM_BANDS]],
    budget: u64,
    max_bits: u32,
) -> (Vec<u32>, Vec<u32>) {
    if energies.len() < 3 {
        return (Vec::new(), Vec::new());
    }
    let max_bits = max_bits.min(MAX_TOGGLE_BITS);
    let min_bits = MIN_BITS.min(max_bits);
    let d: Vec<[f32; NUM_BITS]> = energies
        .windows(3)
        .map(|w| {
            let (prev, next) = (&w[0], &w[2]);
            std::array::from_fn(|m| (next[m] - next[m + 1]) - (prev[m] - prev[m + 1]))
        })
        .collect();
    let hashes: Vec<u32> = d
        .iter()
        .map(|d| {
            d.iter()
                .enumerate()
                .filter(|(_, &x)| x > 0.0)
                .fold(0u32, |h, (m, _)| h | (0x8000_0000 >> m))
        })
        .collect();
    // Each bit's typical |D| over the clip: the median (robust to the few
    // frames where the music dominates).
    let scale: [f32; NUM_BITS] = std::array::from_fn(|m| {
        let mut v: Vec<f32> = d.iter().map(|d| d[m].abs()).collect();
        let mid = v.len() / 2;
        let (_, median, _) = v.select_nth_unstable_by(mid, f32::total_cmp);
        median.max(f32::MIN_POSITIVE)
    });
    // Per frame: bits from most to least likely to flip, and the chance
    // that each one holds.
    let frames: Vec<([u8; NUM_BITS], [f64; NUM_BITS])> = d
        .iter()
        .map(|d| {
            let r: [f32; NUM_BITS] = std::array::from_fn(|m| d[m].abs() / scale[m]);
            let mut order: [u8; NUM_BITS] = std::array::from_fn(|m| m as u8);
            order.sort_by(|&a, &b| r[a as usize].total_cmp(&r[b as usize]));
            let holds = order.map(|m| 1.0 - flip_chance(r[m as usize]));
            (order, holds)
        })
        .collect();
    // chance[t][k]: the frame lands within its first k toggles.
    let chance = |t: usize, k: u32| -> f64 {
        frames
            .get(t)
            .map_or(0.0, |(_, holds)| holds[k as usize..].iter().product())
    };
    let mut bits = vec![min_bits; frames.len()];
    let mut spent: u64 = frames.len() as u64 * (1u64 << min_bits);
    // Greedy: the next bit goes to the frame whose chance rises most per
    // added probe (a max-heap over frames, keys refreshed on pop).
    let mut heap: std::collections::BinaryHeap<(Gain, usize)> = (0..frames.len())
        .filter(|_| min_bits < max_bits)
        .map(|t| {
            (
                gain(chance(t, min_bits), chance(t, min_bits + 1), min_bits),
                t,
            )
        })
        .collect();
    while let Some((g, t)) = heap.pop() {
        let Some(k) = bits.get(t).copied() else { break };
        let cost = 1u64 << k;
        if g.0 <= 0.0 || spent + cost > budget {
            continue;
        }
        spent += cost;
        bits[t] = k + 1;
        if k + 1 < max_bits {
            heap.push((gain(chance(t, k + 1), chance(t, k + 2), k + 1), t));
        }
    }
    let toggles = frames
        .iter()
        .zip(&bits)
        .map(|((order, _), &k)| {
            order[..k as usize]
                .iter()
                .fold(0u32, |mask, &m| mask | (0x8000_0000 >> m))
        })
        .collect();
    (hashes, toggles)
}

/// Chance that noise flips a bit whose margin is `r` times its band's
/// median `|D|`: for `D` mostly noise, the median `|D|` is 0.674 of the
/// noise's spread, so `P(flip) ≈ Φ(−0.674 r)` (Φ in its logistic form).
fn flip_chance(r: f32) -> f64 {
    1.0 / (1.0 + (1.702 * 0.674 * f64::from(r)).exp())
}

/// Chance gained per added probe, going from `k` to `k + 1` bits.
fn gain(from: f64, to: f64, k: u32) -> Gain {
    Gain((to - from) / (1u64 << k) as f64)
}

/// A gain, ordered as a float (never NaN: chances are finite products).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Gain(f64);

impl Eq for Gain {}

impl PartialOrd for Gain {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Gain {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn energies(seed: u64, n: usize) -> Vec<[f32; NUM_BANDS]> {
        let mut x = seed | 1;
        (0..n)
            .map(|t| {
                std::array::from_fn(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // Loud frames every tenth.
                    let loud = if t % 10 == 0 { 20.0 } else { 1.0 };
                    loud * (x % 1000) as f32 / 1000.0
                })
            })
            .collect()
    }

    #[test]
    fn the_budget_and_the_cap_hold() {
        let e = energies(3, 500);
        let (hashes, toggles) = hash_for_noise(&e, 20_000, 9);
        assert_eq!(hashes.len(), 498);
        assert_eq!(toggles.len(), 498);
        let probes: u64 = toggles.iter().map(|t| 1u64 << t.count_ones()).sum();
        assert!(probes <= 20_000, "{probes}");
        assert!(probes > 15_000, "budget left unused: {probes}");
        assert!(toggles.iter().all(|t| (2..=9).contains(&t.count_ones())));
    }

    #[test]
    fn hashes_are_the_ordinary_ones() {
        let e = energies(5, 200);
        let (hashes, _) = hash_for_noise(&e, 10_000, 9);
        let ordinary: Vec<u32> = e
            .windows(3)
            .map(|w| {
                let (w0, w2) = (&w[0], &w[2]);
                crate::audiohash::hash_ranked(w0, w2, 0).0
            })
            .collect();
        assert_eq!(hashes, ordinary);
    }

    #[test]
    fn loud_frames_get_more_bits() {
        let e = energies(7, 400);
        let (_, toggles) = hash_for_noise(&e, 8_000, 9);
        // Frames t whose window holds a loud frame (t or t + 2).
        let bits = |loud: bool| {
            let v: Vec<u32> = toggles
                .iter()
                .enumerate()
                .filter(|(t, _)| (t % 10 == 0 || (t + 2) % 10 == 0) == loud)
                .map(|(_, m)| m.count_ones())
                .collect();
            f64::from(v.iter().sum::<u32>()) / v.len() as f64
        };
        assert!(
            bits(true) > bits(false) + 1.0,
            "{} {}",
            bits(true),
            bits(false)
        );
    }
}
