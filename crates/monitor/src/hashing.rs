//! Audio chunks at any rate → frame hashes at the hash rate, and the
//! loudness of each hop, as a stream: resampled and hashed as they come,
//! nothing kept but the last frame's worth of samples.

use auscout_fingerprint::audiohash::hop_length;
use auscout_fingerprint::resample::StreamResampler;
use auscout_fingerprint::{FingerprintError, Hasher, RankedHash};

/// What a [`HashStream`] produces, appended as the audio is hashed.
#[derive(Debug, Default)]
pub struct Hashed {
    pub hashes: Vec<RankedHash>,
    /// Loudness: the mean square of each hop of samples at the hash rate,
    /// with its stream frame (frame `k`'s audio starts with hop `k`).
    pub loudness: Vec<(u64, f32)>,
}

pub struct HashStream {
    sr: u32,
    hasher: Hasher,
    resampler: Option<StreamResampler>,
    resampled: Vec<f32>,
    /// Stream frame of the current hasher's first hash.
    base: u64,
    /// Hashes the current hasher has produced.
    made: u64,
    /// The hop being summed: its frame, sum of squares, samples.
    hop_at: (u64, f64, usize),
}

impl HashStream {
    pub fn new(sr: u32) -> Result<Self, FingerprintError> {
        Ok(HashStream {
            sr,
            hasher: Hasher::ranked(sr)?,
            resampler: None,
            resampled: Vec::new(),
            base: 0,
            made: 0,
            hop_at: (0, 0.0, 0),
        })
    }

    /// Seconds between frames.
    pub fn hop_seconds(&self) -> f64 {
        hop_length(self.sr) as f64 / f64::from(self.sr)
    }

    /// Stream frame of the next hash.
    pub fn next_frame(&self) -> u64 {
        self.base + self.made
    }

    /// Hashes `samples` at `rate`, appending the new hashes and loudness
    /// to `out`.
    pub fn push(
        &mut self,
        rate: u32,
        samples: &[f32],
        out: &mut Hashed,
    ) -> Result<(), FingerprintError> {
        if self.resampler.as_ref().map(StreamResampler::input_rate) != Some(rate) {
            self.flush_resampler(out)?;
            self.resampler = Some(StreamResampler::new(rate, self.sr)?);
        }
        if let Some(r) = self.resampler.as_mut() {
            r.process(samples, &mut self.resampled)?;
        }
        self.feed(out);
        Ok(())
    }

    fn flush_resampler(&mut self, out: &mut Hashed) -> Result<(), FingerprintError> {
        if let Some(r) = self.resampler.take() {
            r.finish(&mut self.resampled)?;
            self.feed(out);
        }
        Ok(())
    }

    fn feed(&mut self, out: &mut Hashed) {
        let hop = hop_length(self.sr);
        let (mut frame, mut sum, mut n) = self.hop_at;
        for &x in &self.resampled {
            sum += f64::from(x) * f64::from(x);
            n += 1;
            if n == hop {
                out.loudness.push((frame, (sum / hop as f64) as f32));
                (frame, sum, n) = (frame + 1, 0.0, 0);
            }
        }
        self.hop_at = (frame, sum, n);
        self.hasher.push(&self.resampled);
        self.resampled.clear();
        let before = out.hashes.len();
        self.hasher.drain_ranked(&mut out.hashes);
        self.made += (out.hashes.len() - before) as u64;
    }

    /// A hole of `seconds` in the stream: the audio before it is hashed to
    /// its end and hashing starts afresh after it, so frame numbers stay
    /// stream time. Returns the first frame after the hole.
    pub fn gap(&mut self, seconds: f64, out: &mut Hashed) -> Result<u64, FingerprintError> {
        self.flush_resampler(out)?;
        // Where the audio so far ends, in frames (hash k covers k·hop on).
        let ended =
            self.base as f64 + self.hasher.samples_seen() as f64 / hop_length(self.sr) as f64;
        let resume = (ended + seconds.max(0.0) / self.hop_seconds()).ceil() as u64;
        self.hasher = Hasher::ranked(self.sr)?;
        self.base = resume.max(self.next_frame());
        self.made = 0;
        self.hop_at = (self.base, 0.0, 0);
        Ok(self.base)
    }

    /// Ends the stream, hashing what the resampler still holds.
    pub fn finish(&mut self, out: &mut Hashed) -> Result<(), FingerprintError> {
        self.flush_resampler(out)
    }
}
