//! The pHash audio frame hash with toggle masks, exactly as docs/design.md §1 defines
//! it (Haitsma–Kalker style, the parameters of libpHashAudio).
//!
//! [`Hasher`] is streaming: push mono samples at `sr` in chunks of any size,
//! then [`Hasher::finish`]. It keeps only the last frame's worth of samples and
//! the band energies of the last three frames, so memory does not grow with
//! the length of the input (apart from the output, 8 bytes per hash).

use crate::error::FingerprintError;

mod bands;
mod spectrum;

pub(crate) use bands::BandWeights;
pub(crate) use spectrum::spectra;
use spectrum::FrameSpectrum;

/// The lowest sample rate the hash is defined for (the 33 bands reach 2900 Hz).
pub const MIN_SAMPLE_RATE: u32 = auscout_core::defaults::SAMPLE_RATE;
/// Toggle masks have at most this many bits (the CLI's `-g` keeps the
/// original's 0–8; a 9th comes from the probe budget, for a server whose
/// `auscout.max-toggle-bits` allows it).
pub const MAX_TOGGLE_BITS: u32 = auscout_core::defaults::FINGERPRINT_MAX_TOGGLE_BITS;
/// The module's default `auscout.max-toggle-bits`: what a fingerprint may use
/// when the server's cap is not known.
pub const SERVER_DEFAULT_MAX_TOGGLE_BITS: u32 = auscout_core::defaults::MAX_TOGGLE_BITS;
/// Default probe budget of a query: frames × 2^toggle bits. It is what a
/// 1,000-frame (10.7 s) query with 4 toggle bits costs the server, so shorter
/// queries get more bits (a 5 s clip 5) at no more than that cost: few frames
/// are exactly when every frame's chance of landing within its toggles of the
/// stored hash matters most (noisy short clips).
pub const DEFAULT_PROBE_BUDGET: u64 = 16_000;
/// Queries of at most this many hashes (3.2 s at 6000 Hz) get
/// [`SHORT_QUERY_BUDGET_FACTOR`] times the budget: under heavy broadband noise half of
/// a frame's bits are coin flips, and a 1–3 s clip has too few frames for
/// one of them to land within 6 toggle bits of the stored hash (bench: 9 bits
/// at 2 s find 2 of the 4 noise10 clips 6 bits missed; at 1 s, 9 bits instead
/// of 8 find 2 more room clips). A short lookup then probes up to 5× what a
/// 10 s one does, and a long one no more than the budget.
pub const SHORT_QUERY_FRAMES: usize = 300;
pub const SHORT_QUERY_BUDGET_FACTOR: u64 = 5;

/// Toggle bits per frame for a query of `frames` hashes: the most bits in
/// `min_bits..=max_bits` with `frames × 2^bits ≤ budget` (×
/// [`SHORT_QUERY_BUDGET_FACTOR`] for a short query), and never fewer than
/// `min_bits` (both capped at `max_bits`, itself at most [`MAX_TOGGLE_BITS`]:
/// the cap of the server the query goes to). A budget of 0 means exactly
/// `min_bits`.
pub fn budget_toggle_bits(frames: usize, min_bits: u32, mut budget: u64, max_bits: u32) -> u32 {
    let max_bits = max_bits.min(MAX_TOGGLE_BITS);
    let min_bits = min_bits.min(max_bits);
    if budget == 0 {
        return min_bits;
    }
    if frames <= SHORT_QUERY_FRAMES {
        budget = budget.saturating_mul(SHORT_QUERY_BUDGET_FACTOR);
    }
    let frames = (frames as u64).max(1);
    (min_bits..=max_bits)
        .rev()
        .find(|&b| frames.saturating_mul(1 << b) <= budget)
        .unwrap_or(min_bits)
}

/// Bits per rank entry in the packed `u64` (a bit index is 0..32).
const RANK_FIELD: u32 = 5;
/// Number of Bark-spaced bands; adjacent pairs give the 32 hash bits.
pub const NUM_BANDS: usize = 33;
const NUM_BITS: usize = NUM_BANDS - 1;

/// Band centre frequencies in Hz (docs/design.md §1).
pub const BAND_CENTRES_HZ: [f64; NUM_BANDS] = [
    50.0, 75.0, 100.0, 125.0, 150.0, 200.0, 250.0, 300.0, 350.0, 400.0, 450.0, 510.0, 570.0, 635.0,
    700.0, 770.0, 840.0, 920.0, 1000.0, 1085.0, 1170.0, 1270.0, 1370.0, 1485.0, 1600.0, 1725.0,
    1850.0, 2000.0, 2150.0, 2325.0, 2500.0, 2700.0, 2900.0,
];

/// Band weights below this are left out of the sparse table. The weights fall
/// off by 10× per 0.42 Bark above a band centre and per 1.06 Bark below it, so
/// this skips half of the 33 × 1025 multiply-adds per frame while each band
/// energy stays within 1e-6 of the spectrum's total (f32 rounding territory:
/// the golden vectors hash identically with no floor at all).
const WEIGHT_FLOOR: f64 = 1e-6;

/// Frame length `L`: the largest power of two not above 0.4 s of audio.
pub fn frame_length(sr: u32) -> usize {
    let max = (0.4 * f64::from(sr)).floor() as usize;
    // `max >= 1` for any sr >= 3; the hasher refuses sr < MIN_SAMPLE_RATE anyway.
    1usize << (usize::BITS - 1 - max.max(1).leading_zeros())
}

/// Hop `H = L / 32` between frame starts.
pub fn hop_length(sr: u32) -> usize {
    frame_length(sr) / 32
}

/// Fewest samples that yield one hash: three frames (hash `t` needs frames `t±1`).
pub fn min_samples(sr: u32) -> usize {
    frame_length(sr) + 2 * hop_length(sr)
}

/// The hashes of one signal and, for each, the mask of its least reliable bits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// Sample rate the hashes were computed at.
    pub sr: u32,
    /// One 32-bit hash per frame `t = 1 .. T-2`; `hashes[k]` starts `k * H / sr` s in.
    pub hashes: Vec<u32>,
    /// `toggles[k]`: the `p` bits of `hashes[k]` most likely to flip.
    pub toggles: Vec<u32>,
}

impl Fingerprint {
    /// Seconds between consecutive hashes (`H / sr`).
    pub fn hop_seconds(&self) -> f64 {
        hop_length(self.sr) as f64 / f64::from(self.sr)
    }

    /// Seconds into the signal where hash `k` lies.
    pub fn position_seconds(&self, k: usize) -> f64 {
        k as f64 * self.hop_seconds()
    }
}

/// A frame hash with its least reliable bits in order (most likely to flip
/// first), so the toggle mask of any width can be taken later: a stream's
/// hashes are produced before it is known how many frames a lookup window
/// will hold, and so how many toggle bits its budget allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RankedHash {
    pub hash: u32,
    ranks: u64,
}

impl RankedHash {
    /// The mask of the `bits` least reliable bits (at most [`MAX_TOGGLE_BITS`]).
    pub fn toggles(&self, bits: u32) -> u32 {
        mask_of(self.ranks, bits)
    }
}

/// Streaming frame hasher: `new`, any number of `push`es, `finish`.
pub struct Hasher {
    sr: u32,
    toggle_bits: u32,
    /// 0: every mask gets `toggle_bits` bits; otherwise the bits are chosen at
    /// [`Hasher::finish`] from the hash count ([`budget_toggle_bits`]).
    probe_budget: u64,
    /// Most bits a budgeted mask gets ([`Hasher::cap_bits`]).
    max_bits: u32,
    frame_len: usize,
    hop: usize,
    spectrum: FrameSpectrum,
    /// Samples not yet consumed by a frame; frames start at `pending[next_frame..]`.
    pending: Vec<f32>,
    next_frame: usize,
    /// Band energies of the last three frames, `energies[f % 3]` for frame `f`.
    energies: [[f32; NUM_BANDS]; 3],
    frames: usize,
    samples_seen: u64,
    hashes: Vec<u32>,
    /// Fixed bits: the masks. With a budget: each frame's [`MAX_TOGGLE_BITS`]
    /// least reliable bit indices, most likely to flip first, packed
    /// [`RANK_FIELD`] bits each in a `u64` (the mask width is only known at
    /// the end).
    toggles: Vec<u32>,
    ranks: Vec<u64>,
    /// Every frame's band energies, when kept ([`Hasher::keep_energies`]).
    kept_energies: Option<Vec<[f32; NUM_BANDS]>>,
}

impl Hasher {
    /// A hasher for mono audio at `sr` Hz with `toggle_bits` bits per toggle mask.
    pub fn new(sr: u32, toggle_bits: u32) -> Result<Self, FingerprintError> {
        Self::with_budget(sr, toggle_bits, 0)
    }

    /// A hasher whose toggle masks get [`budget_toggle_bits`]`(hashes,
    /// min_bits, probe_budget)` bits each (`probe_budget` 0: exactly `min_bits`).
    pub fn with_budget(
        sr: u32,
        min_bits: u32,
        probe_budget: u64,
    ) -> Result<Self, FingerprintError> {
        let toggle_bits = min_bits;
        if toggle_bits > MAX_TOGGLE_BITS {
            return Err(FingerprintError::BadOption(format!(
                "toggles must be 0..={MAX_TOGGLE_BITS}, got {toggle_bits}"
            )));
        }
        if sr < MIN_SAMPLE_RATE {
            return Err(FingerprintError::BadOption(format!(
                "sample rate {sr} Hz is below the minimum of {MIN_SAMPLE_RATE} Hz"
            )));
        }
        let frame_len = frame_length(sr);
        Ok(Hasher {
            sr,
            toggle_bits,
            probe_budget,
            max_bits: MAX_TOGGLE_BITS,
            frame_len,
            hop: frame_len / 32,
            spectrum: FrameSpectrum::new(sr),
            pending: Vec::with_capacity(2 * frame_len),
            next_frame: 0,
            energies: [[0.0; NUM_BANDS]; 3],
            frames: 0,
            samples_seen: 0,
            hashes: Vec::new(),
            toggles: Vec::new(),
            ranks: Vec::new(),
            kept_energies: None,
        })
    }

    /// Keeps every frame's band energies (132 bytes a frame), taken with
    /// [`Hasher::take_energies`]: a query clip's noise pass needs exactly
    /// these, and keeping them costs less than computing them again.
    pub(crate) fn keep_energies(mut self) -> Self {
        self.kept_energies = Some(Vec::new());
        self
    }

    /// The band energies of every frame so far, when kept (empty otherwise).
    pub(crate) fn take_energies(&mut self) -> Vec<[f32; NUM_BANDS]> {
        self.kept_energies
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// Budgeted masks get at most `max_bits` bits (the server's
    /// `auscout.max-toggle-bits`; never more than [`MAX_TOGGLE_BITS`]).
    pub fn cap_bits(mut self, max_bits: u32) -> Self {
        self.max_bits = max_bits.min(MAX_TOGGLE_BITS);
        self
    }

    /// The sample rate this hasher expects.
    pub fn sample_rate(&self) -> u32 {
        self.sr
    }

    /// Total samples pushed so far.
    pub fn samples_seen(&self) -> u64 {
        self.samples_seen
    }

    /// Hashes produced so far.
    pub fn hash_count(&self) -> usize {
        self.hashes.len()
    }

    /// Number of band weights kept in the sparse table (out of `33 × (L/2+1)`).
    pub fn band_weight_count(&self) -> usize {
        self.spectrum.tables.bands.len()
    }

    /// Feeds more mono samples at `sr`; hashes every frame that is now complete.
    pub fn push(&mut self, samples: &[f32]) {
        self.samples_seen += samples.len() as u64;
        self.pending.extend_from_slice(samples);
        while self.next_frame + self.frame_len <= self.pending.len() {
            self.hash_frame(self.next_frame);
            self.next_frame += self.hop;
        }
        // Drop consumed samples in batches, not per hop, to keep the copying small.
        if self.next_frame >= self.frame_len {
            self.pending.drain(..self.next_frame);
            self.next_frame = 0;
        }
    }

    /// A hasher for an endless stream: every hash keeps its ranked bits and
    /// is taken out with [`Hasher::drain_ranked`] as it is produced, so
    /// memory stays bounded whatever the stream's length.
    pub fn ranked(sr: u32) -> Result<Self, FingerprintError> {
        Self::with_budget(sr, 0, DEFAULT_PROBE_BUDGET)
    }

    /// Moves the hashes produced since the last call to `out`, with their
    /// ranked bits. Ranks are kept by a hasher built with a probe budget
    /// ([`Hasher::ranked`], [`Hasher::with_budget`]); a fixed-width hasher's
    /// hashes come with rank 0 everywhere (their masks are not ranked).
    pub fn drain_ranked(&mut self, out: &mut Vec<RankedHash>) {
        let ranks = std::mem::take(&mut self.ranks);
        out.extend(
            self.hashes
                .drain(..)
                .enumerate()
                .map(|(i, hash)| RankedHash {
                    hash,
                    ranks: ranks.get(i).copied().unwrap_or(0),
                }),
        );
        self.toggles.clear();
    }

    /// Ends the stream and returns the fingerprint; `TooShort` when the signal
    /// had fewer than three frames and so no hash.
    pub fn finish(self) -> Result<Fingerprint, FingerprintError> {
        if self.hashes.is_empty() {
            return Err(FingerprintError::TooShort {
                seconds: self.samples_seen as f64 / f64::from(self.sr),
                min_seconds: min_samples(self.sr) as f64 / f64::from(self.sr),
            });
        }
        let toggles = if self.probe_budget == 0 {
            self.toggles
        } else {
            let bits = budget_toggle_bits(
                self.hashes.len(),
                self.toggle_bits,
                self.probe_budget,
                self.max_bits,
            );
            self.ranks.iter().map(|&r| mask_of(r, bits)).collect()
        };
        Ok(Fingerprint {
            sr: self.sr,
            hashes: self.hashes,
            toggles,
        })
    }

    /// Band energies of the frame starting at `pending[start]`, then the hash of
    /// the frame before it once two neighbours exist.
    fn hash_frame(&mut self, start: usize) {
        let frame = &self.pending[start..start + self.frame_len];
        let f = self.frames;
        let mut current = [0f32; NUM_BANDS];
        self.spectrum.band_energies(frame, &mut current);
        self.energies[f % 3] = current;
        if let Some(all) = self.kept_energies.as_mut() {
            all.push(current);
        }
        self.frames += 1;
        if f >= 2 {
            let (prev, next) = (&self.energies[(f - 2) % 3], &self.energies[f % 3]);
            if self.probe_budget == 0 {
                let (hash, ranks) = hash_ranked(prev, next, self.toggle_bits);
                self.hashes.push(hash);
                self.toggles.push(mask_of(ranks, self.toggle_bits));
            } else {
                let (hash, ranks) = hash_ranked(prev, next, MAX_TOGGLE_BITS);
                self.hashes.push(hash);
                self.ranks.push(ranks);
            }
        }
    }
}

/// The hash of frame `t` from the band energies of frames `t-1` and `t+1`,
/// and its toggle mask: the `p` bits with the smallest exact `|D|`, ties
/// broken by the lower bit index so the result is deterministic.
#[cfg(test)]
fn hash_bits(prev: &[f32; NUM_BANDS], next: &[f32; NUM_BANDS], p: u32) -> (u32, u32) {
    let (hash, ranks) = hash_ranked(prev, next, p);
    (hash, mask_of(ranks, p))
}

/// The mask of the first `p` bit indices packed in `ranks` (field `i` = the
/// `i`-th least reliable bit).
pub(crate) fn mask_of(ranks: u64, p: u32) -> u32 {
    (0..p.min(MAX_TOGGLE_BITS)).fold(0u32, |t, i| {
        t | (0x8000_0000 >> ((ranks >> (RANK_FIELD * i)) & 0x1f))
    })
}

/// The hash of frame `t` and its `p` least reliable bits (smallest exact
/// `|D|`, ties by the lower bit index), most likely to flip first, packed
/// [`RANK_FIELD`] bits per index for [`mask_of`]. Since the order is kept, the masks of every
/// width up to `p` are prefixes of it.
pub(crate) fn hash_ranked(prev: &[f32; NUM_BANDS], next: &[f32; NUM_BANDS], p: u32) -> (u32, u64) {
    let mut hash = 0u32;
    // One sort key per bit: `|D|`, then the bit index. A non-negative float
    // orders as its bit pattern does (as `total_cmp` orders it), so the
    // keys order by `|D|` with ties by the lower bit, and the low
    // `RANK_FIELD` bits of a key are its bit index.
    let mut keys = [0u64; NUM_BITS];
    for (m, key) in keys.iter_mut().enumerate() {
        let d = (next[m] - next[m + 1]) - (prev[m] - prev[m + 1]);
        if d > 0.0 {
            hash |= 0x8000_0000 >> m;
        }
        *key = (u64::from(d.abs().to_bits()) << RANK_FIELD) | m as u64;
    }
    // The `p` smallest keys in order, by taking the least one `p` times
    // (p <= 9 of 32; branch-free minimums, cheaper than a sort).
    let p = p.min(MAX_TOGGLE_BITS);
    let mut ranks = 0u64;
    for i in 0..p {
        let least = keys.iter().copied().min().unwrap_or(u64::MAX);
        let m = least & 0x1f;
        ranks |= m << (RANK_FIELD * i);
        if let Some(key) = keys.get_mut(m as usize) {
            *key = u64::MAX;
        }
    }
    (hash, ranks)
}

#[cfg(test)]
mod tests;
