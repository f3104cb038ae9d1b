//! A query clip that can be fingerprinted again as if it had been played at
//! another speed, pitch or tempo.
//!
//! A frame hash absorbs a speed change of a few percent (toggle bits, and
//! verification that follows a slow drift), not more: a clip played 8 % fast
//! has every frequency 8 % high and every frame 8 % early. A [`Clip`] keeps
//! the magnitude spectrum of every frame it hashed, so undoing such a change
//! costs no new FFT: a frequency scale is a different band-weight table
//! (bin `j` weighs as the original frequency `f_j / pitch` would), a tempo
//! is a different frame grid (the original's frame `j` lies at the clip's
//! frame `j / tempo`, its band energies interpolated between the two
//! nearest frames). A [`Warp`] of both undoes a speed change, of one alone a
//! pitch shift with the tempo kept or a tempo change with the pitch kept.
//! The spectra are computed (from the clip's samples at the hash rate, by
//! the hash's own code, so bit for bit the same) only when a warp first
//! needs them: a clip found as played never pays for them. The band
//! energies the hash computed are kept (132 bytes a frame): the noise pass
//! (`Clip::fingerprint_for_noise`) and a tempo-only warp start from them.
//! The lookup's fallbacks (`auscout-client`'s `recognise`) try a small grid
//! of warps this way when a clip as played finds nothing.

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use symphonia::core::io::MediaSource;

use crate::audiohash::{
    budget_toggle_bits, frame_length, hash_ranked, mask_of, min_samples, spectra, BandWeights,
    NUM_BANDS, SHORT_QUERY_BUDGET_FACTOR, SHORT_QUERY_FRAMES,
};
use crate::decode::Decoder;
use crate::error::FingerprintError;
use crate::pipeline::{hash_decoded, hash_samples, Fingerprint, HashOptions, Kept};

/// How a clip differs from the original it was recorded from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Warp {
    /// Every frequency of the clip is `pitch` times the original's (1.06:
    /// about a semitone up).
    pub pitch: f64,
    /// The clip goes `tempo` times as fast as the original (1.06: 6 % fast,
    /// 6 % shorter).
    pub tempo: f64,
}

impl Warp {
    /// The clip as played.
    pub const NONE: Warp = Warp {
        pitch: 1.0,
        tempo: 1.0,
    };

    /// Played `factor` times fast, pitch and tempo together (a turntable or
    /// a tape running fast, `sox speed`).
    pub fn speed(factor: f64) -> Warp {
        Warp {
            pitch: factor,
            tempo: factor,
        }
    }

    /// The range a warp factor must lie in.
    pub const RANGE: std::ops::RangeInclusive<f64> = 0.5..=2.0;

    fn validate(&self) -> Result<(), FingerprintError> {
        for (name, v) in [("pitch", self.pitch), ("tempo", self.tempo)] {
            if !Self::RANGE.contains(&v) {
                return Err(FingerprintError::BadOption(format!(
                    "{name} factor {v} is outside 0.5..=2"
                )));
            }
        }
        Ok(())
    }
}

/// A fingerprinted clip with the samples behind its hashes.
#[derive(Debug, Clone)]
pub struct Clip {
    opts: HashOptions,
    played: Fingerprint,
    /// The samples at `opts.sr` the hashes were computed from.
    samples: Vec<f32>,
    /// Every frame's band energies as the hash computed them: those of
    /// [`Clip::energies`] at pitch 1, without computing the spectra.
    energies_played: Vec<[f32; NUM_BANDS]>,
    /// Magnitude spectrum of every frame, `bins` values each, once a warp
    /// has needed them.
    spectra: OnceLock<Vec<f32>>,
    bins: usize,
}

impl Clip {
    /// Decodes and fingerprints `path` with `opts`, keeping its samples.
    pub fn open(path: &Path, opts: &HashOptions) -> Result<Clip, FingerprintError> {
        opts.validate()?;
        let (played, kept) = hash_decoded(Decoder::open(path)?, opts, true)?;
        Ok(Self::new(opts, played, kept))
    }

    /// [`Clip::open`] for encoded audio from any source; `extension` is a
    /// format hint such as `"mp3"`.
    pub fn from_source(
        source: Box<dyn MediaSource>,
        extension: Option<&str>,
        opts: &HashOptions,
    ) -> Result<Clip, FingerprintError> {
        opts.validate()?;
        let decoder = Decoder::from_source(source, extension)?;
        let (played, kept) = hash_decoded(decoder, opts, true)?;
        Ok(Self::new(opts, played, kept))
    }

    /// [`Clip::open`] for a stream that cannot seek (standard input, an
    /// HTTP body): the container is probed from what is read ahead.
    pub fn from_reader<R: std::io::Read + Send + Sync + 'static>(
        reader: R,
        opts: &HashOptions,
    ) -> Result<Clip, FingerprintError> {
        opts.validate()?;
        let decoder = Decoder::from_reader(reader, None)?;
        let (played, kept) = hash_decoded(decoder, opts, true)?;
        Ok(Self::new(opts, played, kept))
    }

    /// [`Clip::open`] for mono samples at `sample_rate` (full scale ±1.0).
    pub fn from_samples(
        mono: &[f32],
        sample_rate: u32,
        opts: &HashOptions,
    ) -> Result<Clip, FingerprintError> {
        opts.validate()?;
        let (played, kept) = hash_samples(mono, sample_rate, opts, true)?;
        Ok(Self::new(opts, played, kept))
    }

    fn new(opts: &HashOptions, played: Fingerprint, kept: Kept) -> Clip {
        Clip {
            opts: opts.clone(),
            played,
            samples: kept.samples,
            energies_played: kept.energies,
            spectra: OnceLock::new(),
            bins: frame_length(opts.sr) / 2 + 1,
        }
    }

    /// The fingerprint of the clip as played: what `fingerprint_file` gives.
    pub fn fingerprint(&self) -> &Fingerprint {
        &self.played
    }

    /// The options it was hashed with.
    pub fn options(&self) -> &HashOptions {
        &self.opts
    }

    /// The fingerprint of the original the clip was recorded from, if the
    /// clip is that original changed by `warp`: hashes on the original's
    /// frame grid, toggles as the options give a fingerprint of that many
    /// hashes. [`Warp::NONE`] gives [`Clip::fingerprint`] again.
    pub fn fingerprint_warped(&self, warp: Warp) -> Result<Fingerprint, FingerprintError> {
        self.fingerprint_warped_with(warp, &self.opts)
    }

    /// [`Clip::fingerprint_warped`] with other toggle options (`opts.sr`
    /// must be the clip's: the spectra are at that rate).
    pub fn fingerprint_warped_with(
        &self,
        warp: Warp,
        opts: &HashOptions,
    ) -> Result<Fingerprint, FingerprintError> {
        warp.validate()?;
        opts.validate()?;
        let sr = self.opts.sr;
        if opts.sr != sr {
            return Err(FingerprintError::BadOption(format!(
                "the clip was analysed at {sr} Hz, not {} Hz",
                opts.sr
            )));
        }
        let grid = retimed(&self.energies(warp.pitch), warp.tempo);
        if grid.len() < 3 {
            let seconds = self.played.position_seconds(grid.len()) / warp.tempo;
            return Err(FingerprintError::TooShort {
                seconds,
                min_seconds: min_samples(sr) as f64 / f64::from(sr),
            });
        }
        let width = if opts.probe_budget == 0 {
            opts.toggle_bits
        } else {
            budget_toggle_bits(
                grid.len() - 2,
                opts.toggle_bits,
                opts.probe_budget,
                opts.max_toggle_bits,
            )
        };
        let (hashes, toggles) = grid
            .windows(3)
            .map(|w| {
                let (hash, ranks) = hash_ranked(&w[0], &w[2], width);
                (hash, mask_of(ranks, width))
            })
            .unzip();
        Ok(Fingerprint {
            sr,
            hashes,
            toggles,
        })
    }
}

impl Clip {
    /// The fingerprint of the clip as played with toggle masks for heavy
    /// broadband noise (see `noisy.rs`): the same hashes, at most
    /// `probe_budget` probes (× the short-query factor for a clip of at
    /// most `SHORT_QUERY_FRAMES` hashes, as the ordinary budget), spent
    /// where the music stands out of the noise.
    pub fn fingerprint_for_noise(&self, probe_budget: u64) -> Fingerprint {
        let frames = self.played.hashes.len();
        let budget = if frames <= SHORT_QUERY_FRAMES {
            probe_budget.saturating_mul(SHORT_QUERY_BUDGET_FACTOR)
        } else {
            probe_budget
        };
        let (hashes, toggles) =
            crate::noisy::hash_for_noise(&self.energies(1.0), budget, self.opts.max_toggle_bits);
        Fingerprint {
            sr: self.opts.sr,
            hashes,
            toggles,
        }
    }

    /// Band energies of every frame, the bands scaled by `pitch`: at pitch 1
    /// those the hash kept (the same table over the same spectra).
    fn energies(&self, pitch: f64) -> std::borrow::Cow<'_, [[f32; NUM_BANDS]]> {
        if pitch == 1.0 {
            return std::borrow::Cow::Borrowed(&self.energies_played);
        }
        std::borrow::Cow::Owned(self.energies_from_spectra(pitch))
    }

    /// Band energies of every frame from the spectra, the bands scaled by
    /// `pitch`.
    fn energies_from_spectra(&self, pitch: f64) -> Vec<[f32; NUM_BANDS]> {
        let bands = warped_bands(self.opts.sr, pitch);
        self.spectra
            .get_or_init(|| spectra(&self.samples, self.opts.sr))
            .chunks_exact(self.bins)
            .map(|mag| {
                let mut e = [0f32; NUM_BANDS];
                bands.energies(mag, &mut e);
                e
            })
            .collect()
    }
}

/// Band energies on the original's frame grid: frame `j` of the original
/// lies at frame `j / tempo` of the clip, between two frames of it.
fn retimed(energies: &[[f32; NUM_BANDS]], tempo: f64) -> Vec<[f32; NUM_BANDS]> {
    if tempo == 1.0 || energies.is_empty() {
        return energies.to_vec();
    }
    let last = energies.len() - 1;
    let count = (last as f64 * tempo).floor() as usize + 1;
    (0..count)
        .map(|j| {
            let x = j as f64 / tempo;
            let i = (x.floor() as usize).min(last);
            let a = (x - i as f64) as f32;
            let (lo, hi) = (&energies[i], &energies[(i + 1).min(last)]);
            let mut e = [0f32; NUM_BANDS];
            for ((e, l), h) in e.iter_mut().zip(lo).zip(hi) {
                *e = l + a * (h - l);
            }
            e
        })
        .collect()
}

/// Band tables of frequency-scaled clips, built once per (rate, scale) and
/// process: building one costs ~2 ms (34k `powf`s), more than a warp of a
/// 10 s clip. Lookups use a handful of scales; the cache is bounded anyway.
fn warped_bands(sr: u32, pitch: f64) -> Arc<BandWeights> {
    const KEEP: usize = 32;
    static CACHE: Mutex<Vec<(u32, u64, Arc<BandWeights>)>> = Mutex::new(Vec::new());
    let key = pitch.to_bits();
    // A poisoned lock only means another thread panicked mid-insert; the
    // list itself is always valid.
    let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((_, _, t)) = cache.iter().find(|(r, k, _)| *r == sr && *k == key) {
        return Arc::clone(t);
    }
    let table = Arc::new(BandWeights::scaled(sr, frame_length(sr), pitch));
    if cache.len() >= KEEP {
        cache.remove(0);
    }
    cache.push((sr, key, Arc::clone(&table)));
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use auscout_testkit::audio;

    const RATE: u32 = 44_100;

    fn opts() -> HashOptions {
        HashOptions {
            max_toggle_bits: 9,
            ..HashOptions::default()
        }
    }

    /// Share of equal bits between `a` and `b[offset..]`.
    fn agreement(a: &[u32], b: &[u32], offset: usize) -> f64 {
        let b = &b[offset..];
        let n = a.len().min(b.len());
        let diff: u32 = a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum();
        1.0 - f64::from(diff) / (32 * n) as f64
    }

    #[test]
    fn no_warp_gives_the_fingerprint_as_played() {
        let x = audio::music(3, 6.0, RATE);
        let clip = Clip::from_samples(&x, RATE, &opts()).unwrap();
        let again = clip.fingerprint_warped(Warp::NONE).unwrap();
        assert_eq!(&again, clip.fingerprint());
        let file = crate::fingerprint_samples(&x, RATE, &opts()).unwrap();
        assert_eq!(&file, clip.fingerprint());
    }

    #[test]
    fn spectra_are_computed_when_a_warp_first_needs_them() {
        let x = audio::music(4, 3.0, RATE);
        let clip = Clip::from_samples(&x, RATE, &opts()).unwrap();
        assert!(clip.spectra.get().is_none());
        clip.fingerprint_warped(Warp::speed(1.07)).unwrap();
        // One spectrum per frame: every hash's frame and its two neighbours.
        let frames = clip.fingerprint().hashes.len() + 2;
        assert_eq!(clip.spectra.get().map(Vec::len), Some(frames * clip.bins));
    }

    #[test]
    fn the_energies_the_hash_kept_are_those_of_the_spectra() {
        // A cut clip too: the kept energies stop where the hashed samples do.
        for max_seconds in [None, Some(2.5)] {
            let x = audio::music(6, 4.0, RATE);
            let o = HashOptions {
                max_seconds,
                ..opts()
            };
            let clip = Clip::from_samples(&x, RATE, &o).unwrap();
            assert!(clip.spectra.get().is_none());
            let kept = clip.energies(1.0).into_owned();
            assert_eq!(kept.len(), clip.fingerprint().hashes.len() + 2);
            assert_eq!(kept, clip.energies_from_spectra(1.0), "{max_seconds:?}");
        }
    }

    #[test]
    fn a_clip_played_7_percent_fast_is_undone() {
        let track = audio::music(11, 20.0, RATE);
        let original = crate::fingerprint_samples(&track, RATE, &opts()).unwrap();
        // 4.8 s from 3.2 s in (hash 300), played 7 % fast: declared at a
        // 7 % higher rate and resampled back to 44.1 kHz.
        let excerpt = audio::excerpt(&track, RATE, 3.2, 4.8);
        let fast = audio::resample(&excerpt, 47_187, RATE);
        let clip = Clip::from_samples(&fast, RATE, &opts()).unwrap();
        let played = agreement(&clip.fingerprint().hashes, &original.hashes, 300);
        let undone = clip.fingerprint_warped(Warp::speed(1.07)).unwrap();
        let fixed = agreement(&undone.hashes, &original.hashes, 300);
        eprintln!("bit agreement: as played {played:.3}, undone {fixed:.3}");
        assert!(fixed > 0.85, "undone {fixed}");
        assert!(played < 0.7, "as played {played}");
        // The wrong direction does not help.
        let wrong = clip.fingerprint_warped(Warp::speed(1.0 / 1.07)).unwrap();
        assert!(agreement(&wrong.hashes, &original.hashes, 300) < 0.7);
    }

    /// Notes of 0.2 s (three harmonics each) with every frequency times
    /// `pitch`: the same tune pitched, its tempo kept.
    fn tune(pitch: f64, seconds: f64) -> Vec<f32> {
        let mut rng = auscout_testkit::Rng::new(7);
        let notes: Vec<f64> = (0..(seconds / 0.2) as usize + 1)
            .map(|_| 200.0 * 2f64.powf(rng.below(30) as f64 / 12.0))
            .collect();
        (0..(seconds * f64::from(RATE)) as usize)
            .map(|i| {
                let t = i as f64 / f64::from(RATE);
                let f = notes[(t / 0.2) as usize] * pitch;
                let tau = 2.0 * std::f64::consts::PI * f * t;
                (0.5 * tau.sin() + 0.25 * (2.0 * tau).sin() + 0.12 * (3.0 * tau).sin()) as f32
            })
            .collect()
    }

    #[test]
    fn a_clip_pitched_a_semitone_with_its_tempo_kept_is_undone() {
        let original = crate::fingerprint_samples(&tune(1.0, 6.0), RATE, &opts()).unwrap();
        let clip = Clip::from_samples(&tune(1.059, 6.0), RATE, &opts()).unwrap();
        let played = agreement(&clip.fingerprint().hashes, &original.hashes, 0);
        let undone = clip
            .fingerprint_warped(Warp {
                pitch: 1.059,
                tempo: 1.0,
            })
            .unwrap();
        assert_eq!(undone.hashes.len(), clip.fingerprint().hashes.len());
        let fixed = agreement(&undone.hashes, &original.hashes, 0);
        eprintln!("bit agreement: as played {played:.3}, undone {fixed:.3}");
        // Note changes dominate a tune's hashes, so even as played most bits
        // agree; undoing the pitch halves the disagreement.
        assert!(fixed > 0.88, "undone {fixed}");
        assert!(
            1.0 - fixed < 0.6 * (1.0 - played),
            "as played {played}, undone {fixed}"
        );
    }

    #[test]
    fn warps_out_of_range_are_refused() {
        let x = audio::music(5, 2.0, RATE);
        let clip = Clip::from_samples(&x, RATE, &opts()).unwrap();
        for bad in [0.2, 3.0, f64::NAN] {
            assert!(clip.fingerprint_warped(Warp::speed(bad)).is_err());
        }
    }
}
