//! The per-rate tables every frame hash uses: the Hamming window, the FFT
//! plan and the sparse Bark band-weight table, built once per sample rate.

use std::sync::{Arc, Mutex};

use realfft::{RealFftPlanner, RealToComplex};

use super::{frame_length, BAND_CENTRES_HZ, NUM_BANDS, WEIGHT_FLOOR};

/// The sparse band-weight table: for each band the contiguous run of FFT bins
/// whose weight is above [`WEIGHT_FLOOR`] (the weight is unimodal in the bin).
pub(crate) struct BandWeights {
    /// Per band: first bin and the index of its first weight in `weights`, and the run length.
    runs: Vec<(usize, usize, usize)>,
    weights: Vec<f32>,
}

impl BandWeights {
    pub(super) fn new(sr: u32, frame_len: usize) -> Self {
        Self::scaled(sr, frame_len, 1.0)
    }

    /// The table for audio whose every frequency is `freq_scale` times the
    /// original's (a clip pitched up 6 %: 1.06): bin `j` weighs in band `b`
    /// as the original frequency `f_j / freq_scale` does, so the band
    /// energies are the original's (up to a common factor, which no hash
    /// bit sees). 1.0 is the hash's own table.
    pub(crate) fn scaled(sr: u32, frame_len: usize, freq_scale: f64) -> Self {
        let bin_hz = (f64::from(sr) / 2.0) / (frame_len / 2) as f64 / freq_scale;
        let bark = |f: f64| 6.0 * (f / 600.0).asinh();
        let bin_barks: Vec<f64> = (0..=frame_len / 2)
            .map(|j| bark(j as f64 * bin_hz))
            .collect();
        let mut runs = Vec::with_capacity(NUM_BANDS);
        let mut weights = Vec::new();
        for centre in BAND_CENTRES_HZ {
            let centre_bark = bark(centre);
            let all: Vec<f64> = bin_barks
                .iter()
                .map(|b| {
                    let d = b - centre_bark;
                    let lo = -2.5 * (d / 1.06 - 0.5);
                    let hi = d / 1.06 + 0.5;
                    10f64.powf(lo.min(hi).min(0.0))
                })
                .collect();
            let first = all.iter().position(|&w| w >= WEIGHT_FLOOR).unwrap_or(0);
            let end = all
                .iter()
                .rposition(|&w| w >= WEIGHT_FLOOR)
                .map_or(0, |l| l + 1);
            let kept = all.get(first..end).unwrap_or(&[]);
            runs.push((first, weights.len(), kept.len()));
            weights.extend(kept.iter().map(|&w| w as f32));
        }
        BandWeights { runs, weights }
    }

    /// `E[b] = Σ_j weight_b[j] * mag[j]` for every band.
    pub(crate) fn energies(&self, mag: &[f32], out: &mut [f32; NUM_BANDS]) {
        for (e, &(first, offset, len)) in out.iter_mut().zip(&self.runs) {
            let m = mag.get(first..first + len).unwrap_or(&[]);
            let w = self.weights.get(offset..offset + len).unwrap_or(&[]);
            *e = dot(m, w);
        }
    }

    /// Number of stored weights (for the benchmark's report).
    pub(super) fn len(&self) -> usize {
        self.weights.len()
    }
}

/// A dot product in eight independent lanes, so the compiler can vectorise it
/// (a single running sum would force strict left-to-right float order).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let (ca, ra) = a.as_chunks::<8>();
    let (cb, rb) = b.as_chunks::<8>();
    let mut lanes = [0f32; 8];
    for (xa, xb) in ca.iter().zip(cb) {
        for ((l, x), y) in lanes.iter_mut().zip(xa).zip(xb) {
            *l += x * y;
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    lanes.iter().sum::<f32>() + tail
}

/// What every hasher at one sample rate shares: the Hamming window, the FFT
/// plan and the band-weight table. Building them costs ~2 ms (34k `powf`s),
/// which would dominate hashing a short query clip, so they are built once
/// per rate and process.
pub(super) struct FrameTables {
    pub(super) window: Vec<f32>,
    pub(super) fft: Arc<dyn RealToComplex<f32>>,
    pub(super) bands: BandWeights,
}

impl FrameTables {
    pub(super) fn for_rate(sr: u32) -> Arc<FrameTables> {
        static CACHE: Mutex<Vec<(u32, Arc<FrameTables>)>> = Mutex::new(Vec::new());
        // A poisoned lock only means another thread panicked mid-insert; the
        // list itself is always valid.
        let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, tables)) = cache.iter().find(|(rate, _)| *rate == sr) {
            return Arc::clone(tables);
        }
        let frame_len = frame_length(sr);
        let denom = (frame_len - 1) as f64;
        let tables = Arc::new(FrameTables {
            window: (0..frame_len)
                .map(|i| {
                    (0.54 - 0.46 * (2.0 * std::f64::consts::PI * i as f64 / denom).cos()) as f32
                })
                .collect(),
            fft: RealFftPlanner::<f32>::new().plan_fft_forward(frame_len),
            bands: BandWeights::new(sr, frame_len),
        });
        cache.push((sr, Arc::clone(&tables)));
        tables
    }
}
