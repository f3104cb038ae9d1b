//! Streaming mono resampling to the hash rate with rubato.
//!
//! The top hash band is centred at 2900 Hz and reaches up to Nyquist (3000 Hz
//! at the default 6000 Hz), so the resampler must keep everything below ~2950 Hz
//! flat and alias nothing into it. rubato's synchronous FFT resampler with long
//! blocks does both (with ~2048 output frames per block its automatic cutoff
//! sits at 0.99 × Nyquist; 1024 already dropped 2950 Hz by 1 dB) and costs little:
//! the FFT work per sample grows only with the log of the block. Rate pairs with
//! a tiny common divisor (44101 → 6000) simply get one-second blocks.
//!
//! Building a resampler (FFT plans, the filter) costs about as much as
//! resampling a second of audio, which matters for short query clips, so each
//! thread keeps the resamplers it has built and reuses them after a `reset`.

use std::cell::RefCell;

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Resampler, WindowFunction};

use crate::error::FingerprintError;

/// Target FFT block length on the output side: long enough for a sharp
/// anti-alias filter (see the module comment).
const FFT_BLOCK_OUT: usize = 2048;
/// Resamplers kept per thread for reuse (distinct rate pairs are few).
const POOL_SIZE: usize = 4;

thread_local! {
    /// Idle resamplers of this thread, by `(from, to)`.
    static POOL: RefCell<Vec<(usize, usize, Fft<f32>)>> = const { RefCell::new(Vec::new()) };
}

/// Resamples a mono stream from one fixed rate to another, chunk by chunk.
///
/// Output is aligned with the input (the filter delay is trimmed) and, after
/// [`StreamResampler::finish`], exactly `round(n_in × to / from)` samples long.
pub struct StreamResampler {
    from: u32,
    to: u32,
    /// `None` when `from == to`: samples pass through untouched.
    engine: Option<Engine>,
    samples_in: u64,
    samples_out: u64,
}

struct Engine {
    from: usize,
    to: usize,
    resampler: Fft<f32>,
    chunk: usize,
    pending: Vec<f32>,
    out: Vec<f32>,
    /// Output frames still to drop: the resampler's startup delay.
    delay_left: usize,
}

impl StreamResampler {
    /// A resampler from `from` Hz to `to` Hz (both non-zero).
    pub fn new(from: u32, to: u32) -> Result<Self, FingerprintError> {
        if from == 0 || to == 0 {
            return Err(FingerprintError::BadOption(format!(
                "cannot resample from {from} Hz to {to} Hz"
            )));
        }
        let engine = if from == to {
            None
        } else {
            Some(Engine::new(from as usize, to as usize)?)
        };
        Ok(StreamResampler {
            from,
            to,
            engine,
            samples_in: 0,
            samples_out: 0,
        })
    }

    /// Input rate.
    pub fn input_rate(&self) -> u32 {
        self.from
    }

    /// Output rate.
    pub fn output_rate(&self) -> u32 {
        self.to
    }

    /// Resamples `input`, appending every output sample that is ready to `out`.
    pub fn process(&mut self, input: &[f32], out: &mut Vec<f32>) -> Result<(), FingerprintError> {
        self.samples_in += input.len() as u64;
        let before = out.len();
        match &mut self.engine {
            None => out.extend_from_slice(input),
            Some(engine) => {
                engine.pending.extend_from_slice(input);
                engine.drain_full_chunks(out)?;
            }
        }
        self.samples_out += (out.len() - before) as u64;
        Ok(())
    }

    /// Flushes the filter tail, appending the last samples to `out`.
    pub fn finish(mut self, out: &mut Vec<f32>) -> Result<(), FingerprintError> {
        let total = (self.samples_in as u128 * u128::from(self.to) + u128::from(self.from) / 2)
            / u128::from(self.from);
        let total = u64::try_from(total).unwrap_or(u64::MAX);
        if let Some(engine) = &mut self.engine {
            // Zero-padding pushes the last real samples through the filter delay.
            while self.samples_out < total {
                let pad = engine.chunk - engine.pending.len() % engine.chunk;
                engine.pending.resize(engine.pending.len() + pad, 0.0);
                let before = out.len();
                engine.drain_full_chunks(out)?;
                let produced = (out.len() - before) as u64;
                let keep = produced.min(total - self.samples_out);
                out.truncate(before + keep as usize);
                self.samples_out += keep;
                if produced == 0 && engine.delay_left == 0 {
                    break; // never expected; guards against a loop without progress
                }
            }
        }
        Ok(())
    }
}

impl Engine {
    fn new(from: usize, to: usize) -> Result<Self, FingerprintError> {
        let gcd = gcd(from, to);
        let (min_in, min_out) = (from / gcd, to / gcd);
        let construction = |e: rubato::ResamplerConstructionError| {
            FingerprintError::Resample(format!("cannot resample {from} Hz to {to} Hz: {e}"))
        };
        // At least FFT_BLOCK_OUT output frames per FFT block, in an even number of
        // minimal blocks: the filter is centred half a block in, which is a whole
        // sample on both sides only when both block lengths are even (an odd input
        // block shifts the output by half an input sample).
        // A power of two, so the FFT length (2 × blocks × min_in) factors into small
        // primes: 44.1 kHz → 6 kHz gets 2^8·3·7², not 2·3·7²·103 (Rader's algorithm).
        let blocks = FFT_BLOCK_OUT.div_ceil(min_out).next_power_of_two().max(2);
        let block_in = blocks * min_in;
        // One FFT block per call: a short clip then pays for at most one block of
        // zero padding when flushed.
        let pooled = POOL.with(|pool| {
            let mut pool = pool.borrow_mut();
            let at = pool.iter().position(|(f, t, _)| (*f, *t) == (from, to))?;
            Some(pool.swap_remove(at).2)
        });
        let resampler = match pooled {
            Some(mut resampler) => {
                resampler.reset();
                resampler
            }
            None => Fft::<f32>::new_custom(
                from,
                to,
                block_in,
                1,
                1,
                WindowFunction::BlackmanHarris2,
                FixedSync::Input,
            )
            .map_err(construction)?,
        };
        let chunk = resampler.input_frames_max();
        Ok(Engine {
            from,
            to,
            chunk,
            out: vec![0.0; resampler.output_frames_max()],
            delay_left: resampler.output_delay(),
            pending: Vec::with_capacity(2 * chunk),
            resampler,
        })
    }

    /// Runs every complete input chunk in `pending` through the resampler.
    fn drain_full_chunks(&mut self, out: &mut Vec<f32>) -> Result<(), FingerprintError> {
        let mut start = 0;
        while self.pending.len() - start >= self.resampler.input_frames_next() {
            let need = self.resampler.input_frames_next();
            let input = InterleavedSlice::new(&self.pending[start..start + need], 1, need)
                .map_err(|e| FingerprintError::Resample(e.to_string()))?;
            let capacity = self.out.len();
            let mut output = InterleavedSlice::new_mut(&mut self.out, 1, capacity)
                .map_err(|e| FingerprintError::Resample(e.to_string()))?;
            let (read, written) = self
                .resampler
                .process_into_buffer(&input, &mut output, None)
                .map_err(|e| FingerprintError::Resample(e.to_string()))?;
            start += read;
            let skip = self.delay_left.min(written);
            self.delay_left -= skip;
            out.extend_from_slice(self.out.get(skip..written).unwrap_or(&[]));
            if read == 0 {
                break;
            }
        }
        self.pending.drain(..start);
        Ok(())
    }
}

impl Drop for StreamResampler {
    /// Hands the resampler back to this thread's pool for the next file.
    fn drop(&mut self) {
        if let Some(engine) = self.engine.take() {
            // `try_with`: during thread teardown the pool may already be gone.
            let _ = POOL.try_with(|pool| {
                let mut pool = pool.borrow_mut();
                if pool.len() >= POOL_SIZE {
                    pool.remove(0);
                }
                pool.push((engine.from, engine.to, engine.resampler));
            });
        }
    }
}

fn gcd(mut a: usize, mut b: usize) -> usize {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sine(freq: f64, rate: u32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| (2.0 * std::f64::consts::PI * freq * i as f64 / f64::from(rate)).sin() as f32)
            .collect()
    }

    /// A rising tone: unlike a sine, a shifted copy of it never matches itself.
    fn chirp(rate: u32, n: usize) -> Vec<f32> {
        (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                (2.0 * std::f64::consts::PI * (300.0 + 300.0 * t) * t).sin() as f32
            })
            .collect()
    }

    /// Largest difference from the ideal chirp at 6000 Hz, away from the edges.
    fn max_error_vs_chirp(got: &[f32]) -> f32 {
        let ideal = chirp(6000, got.len());
        got[600..got.len() - 600]
            .iter()
            .zip(&ideal[600..])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    }

    fn resample_chunked(input: &[f32], from: u32, to: u32, chunk: usize) -> Vec<f32> {
        let mut r = StreamResampler::new(from, to).unwrap();
        let mut out = Vec::new();
        for c in input.chunks(chunk) {
            r.process(c, &mut out).unwrap();
        }
        r.finish(&mut out).unwrap();
        out
    }

    /// Largest difference between `got` and the ideal sine, away from the edges.
    fn max_error_vs_ideal(got: &[f32], freq: f64, rate: u32) -> f32 {
        let ideal = sine(freq, rate, got.len());
        let edge = rate as usize / 10;
        got[edge..got.len() - edge]
            .iter()
            .zip(&ideal[edge..])
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max)
    }

    #[test]
    fn output_length_and_alignment_for_common_rates() {
        for from in [8000, 11025, 16000, 22050, 32000, 44100, 48000, 88200, 96000] {
            let n = from as usize * 2 + 123;
            let out = resample_chunked(&chirp(from, n), from, 6000, 1000);
            let expected = (n as u64 * 6000 + u64::from(from) / 2) / u64::from(from);
            assert_eq!(out.len() as u64, expected, "from {from}");
            // A delay left in, even a fraction of a sample, shows as a large error.
            let err = max_error_vs_chirp(&out);
            assert!(err < 0.01, "from {from}: max error {err}");
        }
    }

    #[test]
    fn keeps_the_top_band_and_removes_what_would_alias() {
        for from in [44100, 48000] {
            let n = from as usize * 2;
            for f in [2900.0, 2950.0] {
                let kept = resample_chunked(&sine(f, from, n), from, 6000, 4096);
                let err = max_error_vs_ideal(&kept, f, 6000);
                assert!(
                    err < 0.01,
                    "{from} Hz: {f} Hz should pass untouched, error {err}"
                );
            }
            // 3300 and 5000 Hz would fold to 2700 and 1000 Hz without the anti-alias filter.
            for f in [3300.0, 5000.0] {
                let out = resample_chunked(&sine(f, from, n), from, 6000, 4096);
                // Away from the edges, where a sine switched on or off is broadband.
                let middle = &out[1000..out.len() - 1000];
                let rms = (middle.iter().map(|s| s * s).sum::<f32>() / middle.len() as f32).sqrt();
                assert!(rms < 1e-3, "{from} Hz: {f} Hz leaked through at rms {rms}");
            }
        }
    }

    #[test]
    fn a_reused_resampler_starts_clean() {
        let a = chirp(48000, 30_000);
        let b: Vec<f32> = sine(777.0, 48000, 40_000);
        let fresh = std::thread::spawn({
            let b = b.clone();
            move || resample_chunked(&b, 48000, 6000, 1000)
        })
        .join()
        .unwrap();
        // Same thread: the second run takes the first one's resampler from the pool.
        let _ = resample_chunked(&a, 48000, 6000, 1000);
        let reused = resample_chunked(&b, 48000, 6000, 1000);
        assert_eq!(reused, fresh);
    }

    #[test]
    fn chunking_does_not_change_the_output() {
        let from = 44100;
        let input = chirp(from, 50_000);
        let a = resample_chunked(&input, from, 6000, 100);
        let b = resample_chunked(&input, from, 6000, 50_000);
        assert_eq!(a, b);
    }

    #[test]
    fn awkward_rate_pair_stays_aligned() {
        // gcd(44101, 6000) = 1: one FFT block is a whole second (and odd on the input side).
        let from = 44101;
        let out = resample_chunked(&chirp(from, 100_000), from, 6000, 3000);
        let expected = (100_000u64 * 6000 + 22050) / 44101;
        assert_eq!(out.len() as u64, expected);
        let err = max_error_vs_chirp(&out);
        assert!(err < 0.01, "max error {err}");
    }

    #[test]
    fn same_rate_passes_through_and_zero_rate_is_refused() {
        let input = sine(440.0, 6000, 1000);
        assert_eq!(resample_chunked(&input, 6000, 6000, 300), input);
        assert!(StreamResampler::new(0, 6000).is_err());
    }
}
