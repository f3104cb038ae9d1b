//! A follower's span as a reported segment: where its track is first and
//! last heard, in stream and track time, with its speed, and how far a
//! track heard into its final seconds plays out.

use super::Monitor;
use crate::follow::Follower;
use crate::Segment;

/// How much louder (in power) audio that fades in is 1.2–1.8 s after its
/// start than in its first 0.3 s: 6 dB. A linear fade-in of 1–4 s rises
/// 16–20 dB over that stretch from its first moment, while music cut in
/// mostly stays within 6 dB there (but for a quiet first note).
const FADE_IN_RISE: f64 = 4.0;

impl Monitor<'_> {
    /// Where another track is first heard after `f`'s span: the earliest
    /// start of a confirmed follower of another track among `others` that
    /// begins after `f` was last heard.
    fn next_start<'a>(
        &self,
        f: &Follower,
        others: impl Iterator<Item = &'a Follower>,
    ) -> Option<u64> {
        let straddle = self.straddle();
        others
            .filter(|g| g.confirmed && g.id != f.id && g.start + straddle > f.end)
            .map(|g| g.heard(straddle).0)
            .min()
    }

    /// Does the audio fade in from stream frame `q`: is it at least
    /// [`FADE_IN_RISE`] times louder 1.2–1.8 s on than in its first 0.3 s?
    /// A track cut in is about as loud at once as it stays; one brought up
    /// under another, or over a track's quiet ending, is not.
    fn fades_in(&self, q: u64) -> bool {
        let mean = |from: f64, to: f64| -> Option<f64> {
            let (a, b) = (q + self.frames(from), q + self.frames(to));
            let v: Vec<f64> = self
                .loudness
                .iter()
                .filter(|&&(k, _)| (a..b).contains(&k))
                .map(|&(_, p)| f64::from(p))
                .collect();
            (2 * v.len() as u64 >= b - a).then(|| v.iter().sum::<f64>() / v.len() as f64)
        };
        match (mean(0.0, 0.3), mean(1.2, 1.8)) {
            (Some(first), Some(later)) => later >= FADE_IN_RISE * first.max(1e-12),
            _ => false,
        }
    }

    /// Seconds of audio one hash hears.
    fn hash_seconds(&self) -> f64 {
        auscout_fingerprint::audiohash::frame_length(self.opts.sr) as f64 / f64::from(self.opts.sr)
    }

    /// Frames of audio one hash hears: the frames past a boundary that
    /// straddle it.
    pub(super) fn straddle(&self) -> u64 {
        (self.hash_seconds() / self.hop).round() as u64
    }

    /// A follower's span in seconds, from where its track is first heard
    /// to where it is last heard ([`Follower::heard`]: beyond the span
    /// while the track is still heard faintly, as in a crossfade). A hash
    /// hears about 0.36 s of audio from its frame's start: the first
    /// matching hash starts where the track does (one that straddles a cut
    /// from silence or from unrelated audio does not match yet), and the
    /// track is heard until about three quarters into the last matching
    /// hash's audio (measured on the bench's hard cuts).
    ///
    /// `others` are the followers a next track may be among; they are
    /// looked at only when the outro applies.
    pub(super) fn segment<'a>(
        &self,
        f: &Follower,
        others: impl Iterator<Item = &'a Follower>,
    ) -> Segment {
        let span = self.hash_seconds();
        let (speed, speed_error) = f.speed_fit();
        let track_len = f.track_len() as f64 * self.hop + span;
        let clamp = |t: f64| t.clamp(0.0, track_len);
        // A span shorter than the shortest segment (just reported, on a live
        // source) is too short to tell a speed: its first blocks may still
        // be settling on the alignment.
        let resolvable = if f.end - f.start < self.frames(self.opts.min_length) {
            f64::INFINITY
        } else {
            (3.0 * speed_error).max(0.005)
        };
        let (heard_start, heard_end) = f.heard(self.straddle());
        // A hash that hears the track faintly hears it in part of its
        // audio: from halfway into a pushed start's hash, to halfway into a
        // pushed end's.
        let (start, lead) = if heard_start < f.start {
            (
                heard_start,
                (0.5 * span).min((f.start - heard_start) as f64 * self.hop),
            )
        } else {
            (f.start, 0.0)
        };
        let (last, tail) = if heard_end > f.end {
            (heard_end - 1, 0.5 * span)
        } else {
            (f.end.saturating_sub(1).max(f.start), 0.75 * span)
        };
        let mut stream_end = last as f64 * self.hop + tail;
        let mut track_end = f.track_frame(last) as f64 * self.hop + tail * speed;
        // Last heard in its final seconds: the track plays out to its end
        // (its fade-out is covered by noise, talk or the next track), though
        // no further than the audio received so far, nor past the start of
        // a track that cuts in rather than fading in.
        let left = track_len - track_end;
        if left > 0.0 && left <= self.opts.outro {
            let mut until = self.hist_hi() as f64 * self.hop + span;
            if let Some(q) = self.next_start(f, others).filter(|&q| !self.fades_in(q)) {
                until = until.min(q as f64 * self.hop + 0.5 * span);
            }
            let more = (left / speed).min(until - stream_end).max(0.0);
            stream_end += more;
            track_end += more * speed;
        }
        Segment {
            id: f.id,
            track: f.descr.clone(),
            stream_start: start as f64 * self.hop + lead,
            stream_end,
            track_start: clamp(f.track_frame(start) as f64 * self.hop + lead * speed),
            track_end: clamp(track_end),
            score: f.score(),
            // Within half a percent, or three standard errors of the fit,
            // a speed is not told from 1.
            speed: if (speed - 1.0).abs() < resolvable {
                1.0
            } else {
                (speed * 1000.0).round() / 1000.0
            },
        }
    }
}
