//! Following one track through the stream at one alignment, frame by frame.
//!
//! A lookup says "track T, its frame p lines up with stream frame q". From
//! there the stream's hashes are compared with the track's stored hashes
//! block by block, each block free to move one frame from the previous one's
//! alignment (a station playing a few percent fast drifts a frame every few
//! dozen frames). Every frame gets its bit errors (0..=32); the segment is
//! the stretch around the lookup's window where the errors stay below a
//! level `theta` between the track's own level and chance:
//! with `x = theta − errors/32`, the segment maximises `Σ x` (a Page CUSUM
//! in both directions), so its boundaries fall where the track stops being
//! heard, to the frame, whatever window found it.

use std::collections::VecDeque;
use std::sync::Arc;

/// Frames per block: one alignment per block.
pub const BLOCK: usize = 16;
/// Bit error rate of unrelated audio followed at a fixed alignment (with the
/// block's one frame of freedom): measured on real music at 0.47–0.49.
pub const CHANCE_BER: f64 = 0.48;
/// A track heard through a phone in a room sits near 0.30; a followed
/// alignment whose level is above this is not the track.
pub const MAX_MATCH_BER: f64 = 0.38;
/// Where `theta` sits between the track's own level and chance.
const THETA_AT: f64 = 0.5;
/// A track is heard at all next to a segment while its frames stay, on the
/// whole, this far below chance (see [`Follower::heard`]).
pub const HEARD_MARGIN: f64 = 0.06;
/// Evidence `Σ (heard − BER)` that pushes a boundary outward.
pub const HEARD_EVIDENCE: f64 = 3.0;
/// Chance as [`Follower::heard`] counts it is at most this: a control
/// alignment above it is audio the track's frames run against (an
/// anti-correlated passage), and must not make frames at chance look heard.
const CHANCE_CAP: f64 = 0.5;
/// How far (frames, about 10 s) from the followed alignment the control
/// alignment sits: far enough that a track is unlike itself there.
const CONTROL_SHIFT: i64 = 937;
/// Frames either side of a boundary over which chance is measured (~10 s).
const CHANCE_REACH: u64 = 937;
/// Good blocks before the fitted drift carries the alignment.
const DRIFT_BLOCKS: f64 = 8.0;
/// Marks a frame with no audio (a gap in the stream).
pub const MISSING: u8 = u8::MAX;

/// One track followed at one alignment.
pub struct Follower {
    pub id: u64,
    pub descr: String,
    track: Arc<Vec<u32>>,
    /// Stream frame of `errors[0]` (a multiple of [`BLOCK`]).
    lo: u64,
    errors: VecDeque<u8>,
    /// Per frame, the errors against the same track far from the alignment
    /// ([`CONTROL_SHIFT`]): what chance gives in this very audio.
    control: VecDeque<u8>,
    /// Per block from `lo`: track frame = stream frame + offset.
    offsets: VecDeque<i64>,
    /// Alignment carried to the next block forward: the last good block's
    /// (`good_at`), drifting at the fitted speed across bad ones.
    offset: i64,
    good_at: u64,
    /// Least-squares sums of track frame over stream frame across the good
    /// blocks followed forward, relative to `origin`: the drift.
    fit: [f64; 5],
    origin: u64,
    theta: f64,
    /// Span of the segment: `start..end` stream frames.
    pub start: u64,
    pub end: u64,
    /// Σx from `start` to `end`.
    pub evidence: f64,
    /// Σx from `start` to the last frame followed, to track the running maximum.
    run: f64,
    /// Page's CUSUM since `end` (`max(0, r + x)`): a run of the track at
    /// the same alignment after a hole, which rejoins the segment once it
    /// reaches the rejoin level.
    after: f64,
    /// Evidence a run after a hole needs to rejoin the segment.
    pub rejoin: f64,
    /// Where `theta` was last estimated (span length then).
    estimated_at: u64,
    pub confirmed: bool,
}

/// Bit errors of stream hash `q` against the track at `offset`: chance (16)
/// outside the track, [`MISSING`] where the stream has no audio.
fn frame_errors(track: &[u32], hash: Option<u32>, pos: i64) -> u8 {
    let Some(h) = hash else { return MISSING };
    match usize::try_from(pos).ok().and_then(|p| track.get(p)) {
        Some(t) => (h ^ t).count_ones() as u8,
        None => 16,
    }
}

impl Follower {
    /// A follower of `track` aligned so that stream frame `q` is track frame
    /// `q + offset`, not yet fed.
    pub fn new(id: u64, descr: String, track: Arc<Vec<u32>>, offset: i64, at: u64) -> Self {
        let lo = at - at % BLOCK as u64;
        Follower {
            id,
            descr,
            track,
            lo,
            errors: VecDeque::new(),
            control: VecDeque::new(),
            offsets: VecDeque::new(),
            offset,
            good_at: lo,
            fit: [0.0; 5],
            origin: lo,
            theta: (0.25 + CHANCE_BER) / 2.0,
            start: lo,
            end: lo,
            evidence: 0.0,
            run: 0.0,
            after: 0.0,
            rejoin: f64::INFINITY,
            estimated_at: 0,
            confirmed: false,
        }
    }

    /// First stream frame not yet followed.
    pub fn hi(&self) -> u64 {
        self.lo + self.errors.len() as u64
    }

    pub fn lo(&self) -> u64 {
        self.lo
    }

    pub fn theta(&self) -> f64 {
        self.theta
    }

    /// The alignment expected at stream frame `q` past the last good block:
    /// a station playing fast drifts a frame every few dozen, and a
    /// stretch where the track is not heard (talk, a quiet passage under
    /// noise) must not lose it.
    pub fn predicted_offset(&self, q: u64) -> i64 {
        let [n, sx, sy, sxx, sxy] = self.fit;
        let den = n * sxx - sx * sx;
        if n < DRIFT_BLOCKS || den <= 0.0 || q <= self.good_at {
            return self.offset;
        }
        let drift = ((n * sxy - sx * sy) / den - 1.0).clamp(-0.2, 0.25);
        self.offset + (drift * (q - self.good_at) as f64).round() as i64
    }

    /// The alignment at stream frame `q` (the nearest followed block's).
    pub fn offset_at(&self, q: u64) -> i64 {
        if q < self.lo {
            return self.offsets.front().copied().unwrap_or(self.offset);
        }
        let b = ((q - self.lo) / BLOCK as u64) as usize;
        self.offsets.get(b).copied().unwrap_or(self.offset)
    }

    /// Best alignment of one block near `around`, and its per-frame errors.
    fn fit_block(&self, hashes: &[Option<u32>], first: u64, around: i64) -> (i64, [u8; BLOCK]) {
        let mut best = (u32::MAX, around, [MISSING; BLOCK]);
        for d in [around, around - 1, around + 1] {
            let mut errs = [MISSING; BLOCK];
            let mut total = 0u32;
            for (i, (e, h)) in errs.iter_mut().zip(hashes).enumerate() {
                *e = frame_errors(&self.track, *h, (first + i as u64) as i64 + d);
                total += u32::from(if *e == MISSING { 16 } else { *e });
            }
            if total < best.0 {
                best = (total, d, errs);
            }
        }
        (best.1, best.2)
    }

    fn x(&self, e: u8) -> f64 {
        let ber = if e == MISSING {
            CHANCE_BER
        } else {
            f64::from(e) / 32.0
        };
        self.theta - ber
    }

    /// Follows one more block forward; `hashes` are stream frames
    /// `hi()..hi()+BLOCK`.
    pub fn push_block(&mut self, hashes: &[Option<u32>]) {
        let first = self.hi();
        let (d, errs) = self.fit_block(hashes, first, self.predicted_offset(first));
        if block_ber(&errs) < self.theta {
            self.offset = d;
            self.good_at = first;
            let x = (first - self.origin) as f64;
            let y = x + d as f64;
            for (sum, v) in self.fit.iter_mut().zip([1.0, x, y, x * x, x * y]) {
                *sum += v;
            }
        }
        let (_, control) = self.fit_block(hashes, first, self.control_offset(first, d));
        self.control.extend(control);
        self.offsets.push_back(d);
        for (i, &e) in errs.iter().enumerate() {
            self.errors.push_back(e);
            let x = self.x(e);
            self.run += x;
            self.after = (self.after + x).max(0.0);
            if self.run > self.evidence || self.after >= self.rejoin {
                // Further on, or back after a hole where the track was not
                // heard (masked by noise, talked over): the hole is part of
                // the segment, and its cost no longer counts against it.
                self.evidence = self.evidence.max(self.run);
                self.run = self.evidence;
                self.after = 0.0;
                self.end = first + i as u64 + 1;
            }
        }
    }

    /// Follows one block backward: `hashes` are stream frames `lo()-BLOCK..lo()`.
    pub fn push_block_back(&mut self, hashes: &[Option<u32>]) {
        let Some(first) = self.lo.checked_sub(BLOCK as u64) else {
            return;
        };
        let around = self.offsets.front().copied().unwrap_or(self.offset);
        let (d, errs) = self.fit_block(hashes, first, around);
        // A bad block keeps the alignment of its good neighbour.
        let d = if block_ber(&errs) < self.theta {
            d
        } else {
            around
        };
        let (_, errs) = if d == around {
            self.fit_only(hashes, first, d)
        } else {
            (d, errs)
        };
        self.offsets.push_front(d);
        for &e in errs.iter().rev() {
            self.errors.push_front(e);
        }
        let (_, control) = self.fit_block(hashes, first, self.control_offset(first, d));
        for &e in control.iter().rev() {
            self.control.push_front(e);
        }
        self.lo = first;
    }

    /// The control alignment for a block at stream frame `first` followed
    /// at `d`: [`CONTROL_SHIFT`] frames earlier in the track, or later near
    /// its start.
    fn control_offset(&self, first: u64, d: i64) -> i64 {
        if first as i64 + d >= CONTROL_SHIFT {
            d - CONTROL_SHIFT
        } else {
            d + CONTROL_SHIFT
        }
    }

    /// Chance here: the median block BER of the control alignment within
    /// [`CHANCE_REACH`] frames of stream frame `q`.
    pub fn chance_near(&self, q: u64) -> f64 {
        let a = q.saturating_sub(CHANCE_REACH).max(self.lo);
        let b = (q + CHANCE_REACH).min(self.hi());
        if b <= a {
            return CHANCE_BER;
        }
        let from = ((a - self.lo) as usize) / BLOCK * BLOCK;
        let to = (b - self.lo) as usize;
        median(
            self.control
                .range(from..to)
                .copied()
                .collect::<Vec<u8>>()
                .chunks(BLOCK)
                .filter(|c| c.len() == BLOCK)
                .map(block_ber)
                .collect(),
        )
    }

    fn fit_only(&self, hashes: &[Option<u32>], first: u64, d: i64) -> (i64, [u8; BLOCK]) {
        let mut errs = [MISSING; BLOCK];
        for (i, (e, h)) in errs.iter_mut().zip(hashes).enumerate() {
            *e = frame_errors(&self.track, *h, (first + i as u64) as i64 + d);
        }
        (d, errs)
    }

    /// Σx over `lo..q` as a prefix array; recomputes the span from scratch:
    /// the start is where the prefix is lowest before `anchor`, the end
    /// where it is highest from `anchor` on.
    pub fn settle(&mut self, anchor: u64) {
        let anchor = anchor.clamp(self.lo, self.hi());
        let mut s = 0.0;
        let (mut min_s, mut start) = (0.0, self.lo);
        let mut prefix = Vec::with_capacity(self.errors.len() + 1);
        prefix.push(0.0);
        for (i, &e) in self.errors.iter().enumerate() {
            let q = self.lo + i as u64;
            if q <= anchor && s < min_s {
                min_s = s;
                start = q;
            }
            s += self.x(e);
            prefix.push(s);
        }
        let from = (anchor - self.lo) as usize;
        let (mut max_s, mut end) = (f64::MIN, anchor);
        for (i, &p) in prefix.iter().enumerate().skip(from) {
            if p > max_s {
                max_s = p;
                end = self.lo + i as u64;
            }
        }
        self.start = start;
        self.end = end.max(start);
        self.evidence = max_s - min_s;
        self.run = s - min_s;
        self.after = 0.0;
    }

    /// Where the track is heard at all: each boundary of the span pushed
    /// outward over frames whose errors stay, on the whole, below what
    /// chance gives in this audio (the control alignment's level near the
    /// boundary, [`Follower::chance_near`], at most [`CHANCE_CAP`]) by
    /// [`HEARD_MARGIN`]. Inside a
    /// crossfade, under talk or in a quiet passage under noise the track
    /// sits between its own level and chance: too weak to hold a segment,
    /// which `theta` guards, but still the track.
    ///
    /// The push goes to where `Σ (heard − BER)`, summed from the boundary
    /// out, peaks, if that peak reaches [`HEARD_EVIDENCE`]. The first
    /// `straddle` frames past a boundary hear the boundary itself (a hash
    /// hears that many frames of audio): they count towards the evidence
    /// (in a fade they hear the track more clearly than any frame beyond
    /// them), but the push ends beyond them, and only where the frames
    /// beyond them are heard on the whole as well. At a cut those frames
    /// hear the track's first or last moments, and unrelated audio beyond
    /// them runs at chance, so its sum drifts down from the first frames:
    /// a cut stays where it is.
    pub fn heard(&self, straddle: u64) -> (u64, u64) {
        let push = |heard: f64, errs: &mut dyn Iterator<Item = u8>| -> Option<usize> {
            // Σ over every frame from the boundary, and over those beyond
            // the straddle alone.
            let (mut all, mut beyond) = (0.0, 0.0);
            let (mut best, mut at) = (HEARD_EVIDENCE, None);
            for (k, e) in errs.enumerate() {
                let ber = if e == MISSING {
                    CHANCE_BER
                } else {
                    f64::from(e) / 32.0
                };
                all += heard - ber;
                if (k as u64) < straddle {
                    continue;
                }
                beyond += heard - ber;
                if all >= best && beyond >= 0.0 {
                    best = all;
                    at = Some(k);
                }
            }
            at
        };
        let a = (self.start - self.lo) as usize;
        let b = ((self.end - self.lo) as usize).min(self.errors.len());
        let heard = |q: u64| self.chance_near(q).min(CHANCE_CAP) - HEARD_MARGIN;
        let start = match push(
            heard(self.start),
            &mut self.errors.range(..a).rev().copied(),
        ) {
            Some(k) => self.start - k as u64 - 1,
            None => self.start,
        };
        let end = match push(heard(self.end), &mut self.errors.range(b..).copied()) {
            Some(k) => self.end + k as u64 + 1,
            None => self.end,
        };
        (start, end)
    }

    /// Sets `theta` from the span's own level: the median block BER of the
    /// span, halfway to chance. Returns the level.
    pub fn estimate_theta(&mut self) -> f64 {
        let level = self.level();
        self.theta = level + THETA_AT * (CHANCE_BER - level).max(0.0);
        self.estimated_at = self.end - self.start;
        level
    }

    /// Span length when `theta` was last estimated.
    pub fn estimated_at(&self) -> u64 {
        self.estimated_at
    }

    /// Median block BER over the span (chance when empty).
    pub fn level(&self) -> f64 {
        median(
            self.span_errors()
                .chunks(BLOCK)
                .filter(|c| c.len() == BLOCK)
                .map(block_ber)
                .collect(),
        )
    }

    /// The level where the track is heard best: the lowest median block
    /// BER over `blocks` consecutive blocks of the span (over the whole span
    /// when it is shorter). A span bridging a hole (talk over the music, a
    /// quiet passage under noise) is judged by where the track is heard, not
    /// by the hole.
    pub fn best_level(&self, blocks: usize) -> f64 {
        let bers: Vec<f64> = self
            .span_errors()
            .chunks(BLOCK)
            .filter(|c| c.len() == BLOCK)
            .map(block_ber)
            .collect();
        let w = blocks.max(1);
        if bers.len() <= w {
            return median(bers);
        }
        bers.windows(w)
            .map(|x| median(x.to_vec()))
            .fold(CHANCE_BER, f64::min)
    }

    fn span_errors(&self) -> Vec<u8> {
        let a = (self.start - self.lo) as usize;
        let b = (self.end - self.lo) as usize;
        self.errors
            .range(a..b.min(self.errors.len()))
            .copied()
            .collect()
    }

    /// Mean BER over the stream frames `a..b` (clipped to what was followed).
    pub fn ber_over(&self, a: u64, b: u64) -> f64 {
        let a = a.clamp(self.lo, self.hi());
        let b = b.clamp(a, self.hi());
        let errs: Vec<u8> = self
            .errors
            .range((a - self.lo) as usize..(b - self.lo) as usize)
            .copied()
            .collect();
        if errs.is_empty() {
            return CHANCE_BER;
        }
        block_ber(&errs)
    }

    /// `1 − 2·BER` over the span, in [0, 1].
    pub fn score(&self) -> f64 {
        (1.0 - 2.0 * block_ber(&self.span_errors())).clamp(0.0, 1.0)
    }

    /// Frames since the span's end, and how far Σx has fallen since.
    pub fn since_end(&self) -> (u64, f64) {
        (self.hi() - self.end, self.evidence - self.run)
    }

    /// Frames without audio since the span's end.
    pub fn missing_since_end(&self) -> u64 {
        let a = (self.end - self.lo) as usize;
        self.errors.range(a..).filter(|&&e| e == MISSING).count() as u64
    }

    /// Playback speed: the slope of track frame over stream frame across
    /// the span's good blocks (least squares), 1.0 with too few of them.
    pub fn speed(&self) -> f64 {
        self.speed_fit().0
    }

    /// [`Follower::speed`] and its standard error (from the scatter of the
    /// blocks' alignments about the fitted line: on a short span a frame
    /// of jitter weighs a lot).
    pub fn speed_fit(&self) -> (f64, f64) {
        let mut points = Vec::new();
        for (b, &off) in self.offsets.iter().enumerate() {
            let first = self.lo + (b * BLOCK) as u64;
            if first < self.start || first + BLOCK as u64 > self.end {
                continue;
            }
            let a = (first - self.lo) as usize;
            let errs: Vec<u8> = self.errors.range(a..a + BLOCK).copied().collect();
            if block_ber(&errs) >= self.theta {
                continue;
            }
            let x = (first - self.start) as f64;
            points.push((x, x + off as f64));
        }
        let n = points.len() as f64;
        if n < 8.0 {
            return (1.0, f64::INFINITY);
        }
        let (mx, my) = points
            .iter()
            .fold((0.0, 0.0), |(a, b), &(x, y)| (a + x / n, b + y / n));
        let sxx: f64 = points.iter().map(|&(x, _)| (x - mx).powi(2)).sum();
        let sxy: f64 = points.iter().map(|&(x, y)| (x - mx) * (y - my)).sum();
        if sxx <= 0.0 {
            return (1.0, f64::INFINITY);
        }
        let slope = sxy / sxx;
        let residual: f64 = points
            .iter()
            .map(|&(x, y)| (y - my - slope * (x - mx)).powi(2))
            .sum();
        let error = (residual / (n - 2.0) / sxx).sqrt();
        if slope.is_finite() {
            (slope.clamp(0.8, 1.25), error)
        } else {
            (1.0, f64::INFINITY)
        }
    }

    /// Track frame at stream frame `q`.
    pub fn track_frame(&self, q: u64) -> i64 {
        q as i64 + self.offset_at(q)
    }

    pub fn track_len(&self) -> usize {
        self.track.len()
    }

    /// Drops followed frames before `q` that are outside the span (memory
    /// stays bounded by the span, not the stream).
    pub fn trim_before(&mut self, q: u64) {
        let q = q.min(self.start);
        let q = q - q % BLOCK as u64;
        while self.lo + (BLOCK as u64) <= q && self.offsets.len() > 1 {
            for _ in 0..BLOCK {
                self.errors.pop_front();
                self.control.pop_front();
            }
            self.offsets.pop_front();
            self.lo += BLOCK as u64;
        }
    }
}

/// Median of block BERs (chance when there are none).
fn median(mut bers: Vec<f64>) -> f64 {
    if bers.is_empty() {
        return CHANCE_BER;
    }
    bers.sort_by(f64::total_cmp);
    bers[bers.len() / 2]
}

/// Mean BER of some frames ([`MISSING`] ones count as chance).
pub fn block_ber(errs: &[u8]) -> f64 {
    if errs.is_empty() {
        return CHANCE_BER;
    }
    let total: f64 = errs
        .iter()
        .map(|&e| {
            if e == MISSING {
                CHANCE_BER * 32.0
            } else {
                f64::from(e)
            }
        })
        .sum();
    total / (32.0 * errs.len() as f64)
}

#[cfg(test)]
mod tests;
