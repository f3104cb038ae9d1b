//! One frame's magnitude spectrum: Hamming window, real FFT, `|X[k]|` for
//! the `L/2 + 1` bins. The hash and a clip's warps both take their spectra
//! from here, so a warp sees exactly the magnitudes the hash saw.

use std::sync::Arc;

use realfft::num_complex::Complex;

use super::bands::FrameTables;
use super::{frame_length, hop_length, NUM_BANDS};

/// The buffers of one frame's analysis, reused from frame to frame.
pub(super) struct FrameSpectrum {
    pub(super) tables: Arc<FrameTables>,
    fft_in: Vec<f32>,
    fft_out: Vec<Complex<f32>>,
    fft_scratch: Vec<Complex<f32>>,
    magnitudes: Vec<f32>,
}

impl FrameSpectrum {
    pub(super) fn new(sr: u32) -> Self {
        let tables = FrameTables::for_rate(sr);
        FrameSpectrum {
            fft_in: tables.fft.make_input_vec(),
            fft_out: tables.fft.make_output_vec(),
            fft_scratch: tables.fft.make_scratch_vec(),
            magnitudes: vec![0.0; frame_length(sr) / 2 + 1],
            tables,
        }
    }

    /// The magnitude spectrum of `frame` (`L` samples).
    pub(super) fn magnitudes(&mut self, frame: &[f32]) -> &[f32] {
        for ((x, s), w) in self.fft_in.iter_mut().zip(frame).zip(&self.tables.window) {
            *x = s * w;
        }
        // Lengths come from the plan itself, so this cannot fail; a failure would
        // leave the previous spectrum in place rather than panic.
        let _ = self.tables.fft.process_with_scratch(
            &mut self.fft_in,
            &mut self.fft_out,
            &mut self.fft_scratch,
        );
        for (m, c) in self.magnitudes.iter_mut().zip(&self.fft_out) {
            *m = (c.re * c.re + c.im * c.im).sqrt();
        }
        &self.magnitudes
    }

    /// The band energies of `frame`.
    pub(super) fn band_energies(&mut self, frame: &[f32], out: &mut [f32; NUM_BANDS]) {
        self.magnitudes(frame);
        self.tables.bands.energies(&self.magnitudes, out);
    }
}

/// The magnitude spectrum of every frame of `samples` at `sr`, frame after
/// frame (`L/2 + 1` values each), on the hash's grid: frame `f` starts at
/// sample `f × H`, as long as it fits.
pub(crate) fn spectra(samples: &[f32], sr: u32) -> Vec<f32> {
    let (len, hop) = (frame_length(sr), hop_length(sr));
    let frames = if samples.len() >= len {
        (samples.len() - len) / hop + 1
    } else {
        0
    };
    let mut spectrum = FrameSpectrum::new(sr);
    let mut out = Vec::with_capacity(frames * (len / 2 + 1));
    for f in 0..frames {
        let start = f * hop;
        if let Some(frame) = samples.get(start..start + len) {
            out.extend_from_slice(spectrum.magnitudes(frame));
        }
    }
    out
}
