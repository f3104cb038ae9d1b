//! The monitoring engine: windowed lookups find tracks, followers
//! ([`crate::follow`]) track each one frame by frame, and segments come out
//! as "start" and "end" events.
//!
//! Per step of [`Options::every`] seconds, while no confirmed segment
//! explains the last second of audio, the last [`Options::window`] seconds
//! are looked up. Each match at an alignment no follower covers yet starts a
//! follower, which reads the track's hashes once, extends back through the
//! recent history to where the track began, and from then on follows every
//! new frame. A follower is reported ("start") once its evidence is
//! beyond what chance gives, and ends ("end") when its track has been gone
//! for the permitted gap; its boundaries are where the track stopped being
//! heard, not window edges.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use auscout_fingerprint::audiohash::{budget_toggle_bits, DEFAULT_PROBE_BUDGET};
use auscout_fingerprint::RankedHash;

use crate::catalog::Catalog;
use crate::follow::{Follower, BLOCK, CHANCE_BER, MAX_MATCH_BER};
use crate::hashing::HashStream;
use crate::{Event, EventKind, MonitorError, Segment};

/// How the engine runs; the defaults are what the benchmark measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// Hash rate (Hz).
    pub sr: u32,
    /// Dropouts shorter than this (s) do not split a segment.
    pub gap: f64,
    /// Seconds of audio per lookup.
    pub window: f64,
    /// Seconds between lookups while nothing explains the audio.
    pub every: f64,
    /// Seconds between lookups while a segment explains the audio (another
    /// track may play over it).
    pub every_explained: f64,
    /// Seconds of history kept to find where a track began.
    pub history: f64,
    /// Evidence a follower needs to be reported: Σ(θ − BER) over its frames.
    pub confirm: f64,
    /// Shortest segment reported (s).
    pub min_length: f64,
    /// Longest stretch (s) where the track is not heard but which is
    /// bridged when it comes back at the same alignment with nothing else
    /// recognised in between (quiet passages under noise, talk-over). A hole
    /// without audio longer than `gap` always splits.
    pub bridge: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sr: auscout_core::defaults::SAMPLE_RATE,
            gap: 2.0,
            window: 4.0,
            every: 1.0,
            every_explained: 5.0,
            history: 60.0,
            confirm: 20.0,
            min_length: 4.0,
            bridge: 30.0,
        }
    }
}

impl Options {
    pub fn validate(&self) -> Result<(), MonitorError> {
        let bad = |what: &str| Err(MonitorError::BadOption(what.to_owned()));
        if !(self.gap.is_finite() && self.gap >= 0.0) {
            return bad("--gap must be a non-negative number of seconds");
        }
        if !(self.window.is_finite() && (1.0..=30.0).contains(&self.window)) {
            return bad("the lookup window must be 1 to 30 seconds");
        }
        Ok(())
    }
}

/// The engine over one stream. Feed it audio with [`Monitor::push`],
/// holes with [`Monitor::gap`], and end with [`Monitor::finish`]; events
/// go to the callback as they happen.
pub struct Monitor<'c> {
    catalog: &'c dyn Catalog,
    opts: Options,
    hop: f64,
    hashes: HashStream,
    fresh: Vec<RankedHash>,
    /// Recent frames (`None`: no audio), `history[0]` is stream frame `hist_lo`.
    history: VecDeque<Option<RankedHash>>,
    hist_lo: u64,
    followers: Vec<Follower>,
    /// Recently closed followers: (id, alignment, end frame). A lookup
    /// window still reaching into one's tail must not start it again.
    closed: VecDeque<(u64, i64, u64)>,
    tracks: HashMap<u64, Arc<Vec<u32>>>,
    next_lookup: u64,
    lookups: u64,
    max_bits: u32,
}

impl<'c> Monitor<'c> {
    pub fn new(catalog: &'c dyn Catalog, opts: Options) -> Result<Self, MonitorError> {
        opts.validate()?;
        let hashes = HashStream::new(opts.sr)?;
        Ok(Monitor {
            catalog,
            hop: hashes.hop_seconds(),
            max_bits: catalog.max_toggle_bits(),
            hashes,
            opts,
            fresh: Vec::new(),
            history: VecDeque::new(),
            hist_lo: 0,
            followers: Vec::new(),
            closed: VecDeque::new(),
            tracks: HashMap::new(),
            next_lookup: 0,
            lookups: 0,
        })
    }

    /// Lookups sent so far.
    pub fn lookups(&self) -> u64 {
        self.lookups
    }

    /// Seconds of stream seen.
    pub fn position(&self) -> f64 {
        self.hist_hi() as f64 * self.hop
    }

    fn frames(&self, seconds: f64) -> u64 {
        (seconds / self.hop).round() as u64
    }

    fn hist_hi(&self) -> u64 {
        self.hist_lo + self.history.len() as u64
    }

    /// Mono audio at `rate` Hz.
    pub fn push(
        &mut self,
        rate: u32,
        samples: &[f32],
        on: &mut dyn FnMut(Event),
    ) -> Result<(), MonitorError> {
        let mut fresh = std::mem::take(&mut self.fresh);
        self.hashes.push(rate, samples, &mut fresh)?;
        self.absorb(&mut fresh, on)?;
        self.fresh = fresh;
        Ok(())
    }

    /// A hole of `seconds` without audio (a stream that reconnected).
    pub fn gap(&mut self, seconds: f64, on: &mut dyn FnMut(Event)) -> Result<(), MonitorError> {
        let mut fresh = std::mem::take(&mut self.fresh);
        let resume = self.hashes.gap(seconds, &mut fresh)?;
        self.absorb(&mut fresh, on)?;
        while self.hist_hi() < resume {
            self.history.push_back(None);
        }
        self.step(on)?;
        self.fresh = fresh;
        Ok(())
    }

    /// Ends the stream: every segment still open ends where its track was
    /// last heard.
    pub fn finish(mut self, on: &mut dyn FnMut(Event)) -> Result<(), MonitorError> {
        let mut fresh = Vec::new();
        self.hashes.finish(&mut fresh)?;
        self.absorb(&mut fresh, on)?;
        let followers = std::mem::take(&mut self.followers);
        for f in followers {
            self.close(f, on);
        }
        Ok(())
    }

    fn absorb(
        &mut self,
        fresh: &mut Vec<RankedHash>,
        on: &mut dyn FnMut(Event),
    ) -> Result<(), MonitorError> {
        for r in fresh.drain(..) {
            self.history.push_back(Some(r));
            if self.hist_hi().is_multiple_of(BLOCK as u64) {
                self.step(on)?;
            }
        }
        Ok(())
    }

    fn hashes_at(&self, first: u64) -> Vec<Option<u32>> {
        (first..first + BLOCK as u64)
            .map(|q| {
                q.checked_sub(self.hist_lo)
                    .and_then(|i| self.history.get(i as usize))
                    .copied()
                    .flatten()
                    .map(|r| r.hash)
            })
            .collect()
    }

    /// Runs after every new block: followers catch up, ended ones close,
    /// a lookup when one is due.
    fn step(&mut self, on: &mut dyn FnMut(Event)) -> Result<(), MonitorError> {
        let hi = self.hist_hi();
        let mut followers = std::mem::take(&mut self.followers);
        for f in followers.iter_mut() {
            while f.hi() + BLOCK as u64 <= hi {
                let h = self.hashes_at(f.hi());
                f.push_block(&h);
            }
        }
        self.followers = followers;
        self.review(on);
        if hi >= self.next_lookup {
            let explained = self.explained();
            let every = if explained {
                self.opts.every_explained
            } else {
                self.opts.every
            };
            self.next_lookup = hi + self.frames(every).max(BLOCK as u64);
            self.discover(on)?;
        }
        let keep = self.frames(self.opts.history) as usize;
        while self.history.len() > keep {
            self.history.pop_front();
            self.hist_lo += 1;
        }
        Ok(())
    }

    /// Is the last second of audio a confirmed segment's track?
    fn explained(&self) -> bool {
        let hi = self.hist_hi();
        let a = hi.saturating_sub(self.frames(1.0));
        self.followers
            .iter()
            .any(|f| f.confirmed && f.ber_over(a, hi) < f.theta())
    }

    /// Confirms followers with enough evidence, closes those whose track is
    /// gone, re-estimates levels as spans grow.
    fn review(&mut self, on: &mut dyn FnMut(Event)) {
        let gap = self.frames(self.opts.gap).max(BLOCK as u64);
        let min_len = self.frames(self.opts.min_length);
        let bridge = self.frames(self.opts.bridge).max(gap);
        let mut i = 0;
        while i < self.followers.len() {
            let f = &mut self.followers[i];
            let span = f.end - f.start;
            if span > 2 * f.estimated_at().max(200) {
                f.estimate_theta();
                f.settle(f.start + span / 2);
            }
            f.rejoin = self.opts.confirm;
            let (since, fallen) = f.since_end();
            let drop = (CHANCE_BER - f.theta()).max(0.02) * gap as f64;
            let f = &self.followers[i];
            let gone = since >= gap && fallen >= drop;
            let ended = gone
                && (!f.confirmed
                    || since >= bridge
                    || f.missing_since_end() >= gap
                    || self.other_after(i));
            if !f.confirmed
                && f.evidence >= self.opts.confirm
                && span >= min_len
                && f.level() <= MAX_MATCH_BER
                && !self.covered(i)
            {
                let f = &mut self.followers[i];
                f.confirmed = true;
                let seg = self.segment(&self.followers[i]);
                on(Event {
                    kind: EventKind::Start,
                    segment: seg,
                });
            }
            if ended {
                let f = self.followers.remove(i);
                self.close(f, on);
                continue;
            }
            // Unconfirmed followers that got nowhere are dropped early.
            let f = &self.followers[i];
            if !f.confirmed && f.hi() - f.end > 2 * gap && f.evidence < self.opts.confirm {
                self.followers.remove(i);
                continue;
            }
            i += 1;
        }
    }

    /// Has another confirmed track been heard since follower `i` was last?
    fn other_after(&self, i: usize) -> bool {
        let end = self.followers[i].end;
        let id = self.followers[i].id;
        self.followers
            .iter()
            .enumerate()
            .any(|(j, g)| j != i && g.confirmed && g.id != id && g.end > end + BLOCK as u64)
    }

    /// Is follower `i`'s span mostly inside a stronger confirmed one's?
    fn covered(&self, i: usize) -> bool {
        let f = &self.followers[i];
        let len = (f.end - f.start).max(1);
        self.followers.iter().enumerate().any(|(j, g)| {
            if j == i || !g.confirmed {
                return false;
            }
            let a = f.start.max(g.start);
            let b = f.end.min(g.end);
            b > a && (b - a) * 2 >= len && g.ber_over(a, b) <= f.ber_over(a, b)
        })
    }

    fn close(&mut self, f: Follower, on: &mut dyn FnMut(Event)) {
        if self.closed.len() >= 64 {
            self.closed.pop_front();
        }
        self.closed.push_back((f.id, f.offset_at(f.end), f.end));
        if f.confirmed {
            on(Event {
                kind: EventKind::End,
                segment: self.segment(&f),
            });
        }
    }

    /// A follower's span in seconds. A hash hears about 0.36 s of audio
    /// from its frame's start: the first matching hash starts where the
    /// track does (one that straddles a cut from silence or from unrelated
    /// audio does not match yet), and the track is heard until about three
    /// quarters into the last matching hash's audio (measured on the bench's
    /// hard cuts).
    fn segment(&self, f: &Follower) -> Segment {
        let span = auscout_fingerprint::audiohash::frame_length(self.opts.sr) as f64
            / f64::from(self.opts.sr);
        let tail = 0.75 * span;
        let speed = f.speed();
        let track_len = f.track_len() as f64 * self.hop + span;
        let clamp = |t: f64| t.clamp(0.0, track_len);
        let last = f.end.saturating_sub(1).max(f.start);
        Segment {
            id: f.id,
            track: f.descr.clone(),
            stream_start: f.start as f64 * self.hop,
            stream_end: last as f64 * self.hop + tail,
            track_start: clamp(f.track_frame(f.start) as f64 * self.hop),
            track_end: clamp(f.track_frame(last) as f64 * self.hop + tail * speed),
            score: f.score(),
            // Within half a percent the fit cannot tell a speed from 1.
            speed: if (speed - 1.0).abs() < 0.005 {
                1.0
            } else {
                (speed * 1000.0).round() / 1000.0
            },
        }
    }

    /// Looks up the last window; starts a follower for every new alignment.
    fn discover(&mut self, on: &mut dyn FnMut(Event)) -> Result<(), MonitorError> {
        let len = self.frames(self.opts.window) as usize;
        if self.history.len() < len {
            return Ok(());
        }
        let from = self.history.len() - len;
        let window: Vec<RankedHash> = self.history.range(from..).flatten().copied().collect();
        if window.len() < len {
            return Ok(()); // a hole in the window
        }
        let w0 = self.hist_lo + from as u64;
        let bits = budget_toggle_bits(len, 0, DEFAULT_PROBE_BUDGET, self.max_bits);
        let hashes: Vec<u32> = window.iter().map(|r| r.hash).collect();
        let toggles: Vec<u32> = window.iter().map(|r| r.toggles(bits)).collect();
        self.lookups += 1;
        let found = self.catalog.lookup(&hashes, &toggles)?;
        let mid = w0 + len as u64 / 2;
        for m in found {
            let offset = m.position - w0 as i64;
            let gap = self.frames(self.opts.gap);
            let known =
                self.followers
                    .iter()
                    .any(|f| f.id == m.id && (f.offset_at(mid) - offset).abs() <= 8)
                    || self.closed.iter().any(|&(id, o, end)| {
                        id == m.id && (o - offset).abs() <= 8 && w0 < end + gap
                    });
            if known {
                continue;
            }
            let track = match self.tracks.get(&m.id) {
                Some(t) => Arc::clone(t),
                None => {
                    let t = Arc::new(self.catalog.track_hashes(m.id)?);
                    if self.tracks.len() >= 64 {
                        self.tracks.clear();
                    }
                    self.tracks.insert(m.id, Arc::clone(&t));
                    t
                }
            };
            let f = self.start_follower(m.id, m.descr, track, offset, w0, len);
            self.followers.push(f);
        }
        self.review(on);
        Ok(())
    }

    /// A follower over the window, its level estimated there, extended back
    /// through the history to where the track began.
    fn start_follower(
        &self,
        id: u64,
        descr: String,
        track: Arc<Vec<u32>>,
        offset: i64,
        w0: u64,
        len: usize,
    ) -> Follower {
        let mut f = Follower::new(id, descr, track, offset, w0);
        let hi = self.hist_hi();
        while f.hi() + BLOCK as u64 <= hi {
            let h = self.hashes_at(f.hi());
            f.push_block(&h);
        }
        // The anchor: the window's best block.
        let mut best = (f64::MAX, w0);
        let mut q = f.lo();
        while q + (BLOCK as u64) <= (w0 + len as u64).min(f.hi()) {
            let b = f.ber_over(q, q + BLOCK as u64);
            if b < best.0 {
                best = (b, q);
            }
            q += BLOCK as u64;
        }
        let anchor = best.1;
        f.settle(anchor);
        f.estimate_theta();
        f.settle(anchor);
        // Back until the track has been gone for the permitted gap (or the
        // history ends).
        let gap = self.frames(self.opts.gap).max(BLOCK as u64);
        loop {
            if f.lo() < self.hist_lo + BLOCK as u64 {
                break;
            }
            let before = f.start;
            let h = self.hashes_at(f.lo() - BLOCK as u64);
            f.push_block_back(&h);
            f.settle(anchor);
            let gone = f.start - f.lo();
            if gone >= gap && f.ber_over(f.lo(), f.start) > f.theta() && before == f.start {
                break;
            }
        }
        f.estimate_theta();
        f.settle(anchor);
        f
    }
}
