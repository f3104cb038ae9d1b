//! The whole pipeline, decode → resample → hash, streamed chunk by chunk so a
//! file of any length hashes in bounded memory.

use std::path::Path;

use symphonia::core::io::MediaSource;

use crate::audiohash::{
    Hasher, DEFAULT_PROBE_BUDGET, MAX_TOGGLE_BITS, MIN_SAMPLE_RATE, NUM_BANDS,
    SERVER_DEFAULT_MAX_TOGGLE_BITS,
};
use crate::decode::Decoder;
use crate::error::FingerprintError;
use crate::resample::StreamResampler;

pub use crate::audiohash::Fingerprint;

/// How to hash: the hash rate, the toggle bits per frame and how much audio to use.
#[derive(Debug, Clone, PartialEq)]
pub struct HashOptions {
    /// Rate the audio is resampled to before hashing (`--sr`, at least 6000).
    pub sr: u32,
    /// Bits per toggle mask (`-g/--toggles`, 0..=8): exactly this many when
    /// `probe_budget` is 0, otherwise the fewest.
    pub toggle_bits: u32,
    /// Frames × 2^bits a fingerprint's toggles may cost a lookup
    /// (`--probe-budget`): short clips get more toggle bits, up to
    /// `max_toggle_bits`, see
    /// [`crate::audiohash::budget_toggle_bits`]. 0 = exactly `toggle_bits`.
    pub probe_budget: u64,
    /// Most toggle bits a mask may have: the `auscout.max-toggle-bits` of the
    /// server the fingerprint is for (`--max-toggle-bits`, or asked from the
    /// server by `lookup`); more would be refused. Default: the module's
    /// default cap, 8.
    pub max_toggle_bits: u32,
    /// Use only the first this many seconds (`-n/--nsecs`); `None` or 0 = all.
    pub max_seconds: Option<f64>,
}

impl Default for HashOptions {
    fn default() -> Self {
        HashOptions {
            sr: MIN_SAMPLE_RATE,
            toggle_bits: 4,
            probe_budget: DEFAULT_PROBE_BUDGET,
            max_toggle_bits: SERVER_DEFAULT_MAX_TOGGLE_BITS,
            max_seconds: None,
        }
    }
}

impl HashOptions {
    /// Checks every option; the error names the one that is wrong.
    pub fn validate(&self) -> Result<(), FingerprintError> {
        if self.sr < MIN_SAMPLE_RATE {
            return Err(FingerprintError::BadOption(format!(
                "--sr {} is below the minimum of {MIN_SAMPLE_RATE} Hz",
                self.sr
            )));
        }
        if self.toggle_bits > MAX_TOGGLE_BITS {
            return Err(FingerprintError::BadOption(format!(
                "--toggles {} is outside 0..={MAX_TOGGLE_BITS}",
                self.toggle_bits
            )));
        }
        if let Some(s) = self.max_seconds {
            if !s.is_finite() || s < 0.0 {
                return Err(FingerprintError::BadOption(format!(
                    "--nsecs {s} must be a non-negative number of seconds"
                )));
            }
        }
        Ok(())
    }

    /// The sample budget at `sr`, or `None` for the whole signal.
    fn sample_limit(&self) -> Option<u64> {
        self.max_seconds
            .filter(|&s| s > 0.0)
            .map(|s| (s * f64::from(self.sr)).round() as u64)
    }
}

/// Fingerprints an audio file of any supported format.
pub fn fingerprint_file(path: &Path, opts: &HashOptions) -> Result<Fingerprint, FingerprintError> {
    opts.validate()?;
    run(Decoder::open(path)?, opts)
}

/// Fingerprints encoded audio from any source (e.g. a `Cursor` over bytes);
/// `extension` is an optional format hint such as `"mp3"`.
pub fn fingerprint_source(
    source: Box<dyn MediaSource>,
    extension: Option<&str>,
    opts: &HashOptions,
) -> Result<Fingerprint, FingerprintError> {
    opts.validate()?;
    run(Decoder::from_source(source, extension)?, opts)
}

/// Fingerprints mono samples at `sample_rate` (full scale ±1.0).
pub fn fingerprint_samples(
    mono: &[f32],
    sample_rate: u32,
    opts: &HashOptions,
) -> Result<Fingerprint, FingerprintError> {
    opts.validate()?;
    hash_samples(mono, sample_rate, opts, false).map(|(fp, _)| fp)
}

fn run(decoder: Decoder, opts: &HashOptions) -> Result<Fingerprint, FingerprintError> {
    hash_decoded(decoder, opts, false).map(|(fp, _)| fp)
}

/// What a pipeline asked to keep them keeps besides the fingerprint: the
/// samples at `opts.sr` the hashes were computed from, and every frame's
/// band energies (see [`crate::clip`]).
#[derive(Debug, Default)]
pub(crate) struct Kept {
    pub samples: Vec<f32>,
    pub energies: Vec<[f32; NUM_BANDS]>,
}

/// [`fingerprint_samples`], and with `keep` what [`Kept`] holds.
pub(crate) fn hash_samples(
    mono: &[f32],
    sample_rate: u32,
    opts: &HashOptions,
    keep: bool,
) -> Result<(Fingerprint, Kept), FingerprintError> {
    let mut pipeline = Pipeline::new(opts, keep)?;
    // Chunked like a decoder would deliver it, so the resampler's buffers stay small.
    for chunk in mono.chunks(1 << 16) {
        if !pipeline.push(sample_rate, chunk)? {
            break;
        }
    }
    pipeline.finish()
}

/// The fingerprint of everything `decoder` delivers, and with `keep` what
/// [`Kept`] holds.
pub(crate) fn hash_decoded(
    mut decoder: Decoder,
    opts: &HashOptions,
    keep: bool,
) -> Result<(Fingerprint, Kept), FingerprintError> {
    let mut pipeline = Pipeline::new(opts, keep)?;
    while let Some(chunk) = decoder.next_chunk()? {
        if !pipeline.push(chunk.sample_rate, chunk.samples)? {
            break;
        }
    }
    pipeline.finish()
}

/// Resampler and hasher glued together, with the `max_seconds` budget.
struct Pipeline {
    hasher: Hasher,
    resampler: Option<StreamResampler>,
    resampled: Vec<f32>,
    /// Every sample the hasher was fed, when kept.
    kept: Option<Vec<f32>>,
    limit: Option<u64>,
}

impl Pipeline {
    fn new(opts: &HashOptions, keep_samples: bool) -> Result<Self, FingerprintError> {
        let mut hasher = Hasher::with_budget(opts.sr, opts.toggle_bits, opts.probe_budget)?
            .cap_bits(opts.max_toggle_bits);
        if keep_samples {
            hasher = hasher.keep_energies();
        }
        Ok(Pipeline {
            hasher,
            resampler: None,
            resampled: Vec::new(),
            kept: keep_samples.then(Vec::new),
            limit: opts.sample_limit(),
        })
    }

    /// Feeds samples at `rate`; returns `false` once the sample budget is spent.
    fn push(&mut self, rate: u32, samples: &[f32]) -> Result<bool, FingerprintError> {
        if self.resampler.as_ref().map(StreamResampler::input_rate) != Some(rate) {
            // First chunk, or the stream changed rate at a reset: flush the old tail.
            self.flush_resampler()?;
            self.resampler = Some(StreamResampler::new(rate, self.hasher.sample_rate())?);
        }
        if let Some(resampler) = self.resampler.as_mut() {
            resampler.process(samples, &mut self.resampled)?;
        }
        Ok(self.feed_hasher())
    }

    fn finish(mut self) -> Result<(Fingerprint, Kept), FingerprintError> {
        self.flush_resampler()?;
        let kept = Kept {
            samples: self.kept.unwrap_or_default(),
            energies: self.hasher.take_energies(),
        };
        Ok((self.hasher.finish()?, kept))
    }

    fn flush_resampler(&mut self) -> Result<(), FingerprintError> {
        if let Some(resampler) = self.resampler.take() {
            resampler.finish(&mut self.resampled)?;
            self.feed_hasher();
        }
        Ok(())
    }

    /// Moves resampled samples into the hasher, up to the budget.
    fn feed_hasher(&mut self) -> bool {
        let room = self
            .limit
            .map_or(u64::MAX, |l| l.saturating_sub(self.hasher.samples_seen()));
        let take = self
            .resampled
            .len()
            .min(usize::try_from(room).unwrap_or(usize::MAX));
        self.hasher.push(&self.resampled[..take]);
        if let Some(kept) = self.kept.as_mut() {
            kept.extend_from_slice(&self.resampled[..take]);
        }
        self.resampled.clear();
        self.limit.is_none_or(|l| self.hasher.samples_seen() < l)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chirp(rate: u32, seconds: f64) -> Vec<f32> {
        let n = (f64::from(rate) * seconds) as usize;
        (0..n)
            .map(|i| {
                let t = i as f64 / f64::from(rate);
                let f = 200.0 + 150.0 * t;
                (0.5 * (2.0 * std::f64::consts::PI * f * t).sin()
                    + 0.3 * (2.0 * std::f64::consts::PI * 1300.0 * t).sin() * (3.0 * t).sin())
                    as f32
            })
            .collect()
    }

    fn bit_agreement(a: &[u32], b: &[u32]) -> f64 {
        let n = a.len().min(b.len());
        let diff: u32 = a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum();
        1.0 - f64::from(diff) / (32 * n) as f64
    }

    #[test]
    fn resampled_44k_agrees_with_native_6k() {
        let opts = HashOptions::default();
        let native = fingerprint_samples(&chirp(6000, 8.0), 6000, &opts).unwrap();
        let resampled = fingerprint_samples(&chirp(44100, 8.0), 44100, &opts).unwrap();
        assert_eq!(native.hashes.len(), resampled.hashes.len());
        let agreement = bit_agreement(&native.hashes, &resampled.hashes);
        eprintln!("44.1 kHz resampled vs native 6 kHz: bit agreement {agreement:.5}");
        assert!(agreement > 0.995, "bit agreement {agreement}");
    }

    #[test]
    fn max_seconds_limits_the_hashes() {
        let signal = chirp(6000, 10.0);
        let all = fingerprint_samples(&signal, 6000, &HashOptions::default()).unwrap();
        let opts = HashOptions {
            max_seconds: Some(3.0),
            ..HashOptions::default()
        };
        let part = fingerprint_samples(&signal, 6000, &opts).unwrap();
        // 18000 samples: (18000 - 2048) / 64 + 1 = 250 frames, 248 hashes.
        assert_eq!(part.hashes.len(), 248);
        assert_eq!(part.hashes[..], all.hashes[..248]);
        let zero = HashOptions {
            max_seconds: Some(0.0),
            ..HashOptions::default()
        };
        assert_eq!(fingerprint_samples(&signal, 6000, &zero).unwrap(), all);
    }

    #[test]
    fn options_are_validated() {
        let s = chirp(6000, 1.0);
        for bad in [
            HashOptions {
                sr: 5999,
                ..HashOptions::default()
            },
            HashOptions {
                toggle_bits: MAX_TOGGLE_BITS + 1,
                ..HashOptions::default()
            },
            HashOptions {
                max_seconds: Some(-1.0),
                ..HashOptions::default()
            },
            HashOptions {
                max_seconds: Some(f64::NAN),
                ..HashOptions::default()
            },
        ] {
            assert!(matches!(
                fingerprint_samples(&s, 6000, &bad),
                Err(FingerprintError::BadOption(_))
            ));
        }
    }
}
