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
//! beyond what chance gives and no other alignment explains its stretch
//! better, and ends ("end") when its track has been gone for the permitted
//! gap; its boundaries are where the track stopped being heard, not window
//! edges. Music that repeats (a loop, a chorus, a passage two tracks share)
//! matches at several alignments: the one that explains the stretch best
//! is the segment, and one reported before it was found is withdrawn
//! ("cancel").

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use auscout_fingerprint::audiohash::{budget_toggle_bits, DEFAULT_PROBE_BUDGET};
use auscout_fingerprint::RankedHash;

use crate::catalog::Catalog;
use crate::follow::{Follower, BLOCK, CHANCE_BER, MAX_MATCH_BER};
use crate::hashing::{HashStream, Hashed};
use crate::{Event, EventKind, MonitorError};

mod segment;

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
    /// Shortest segment reported (s) when the track is heard clearly (its
    /// level at most [`CLEAR_BER`]): a live "start" comes this soon.
    pub min_length_clear: f64,
    /// Longest stretch (s) where the track is not heard but which is
    /// bridged when it comes back at the same alignment with nothing else
    /// recognised in between (quiet passages under noise, talk-over). A hole
    /// without audio longer than `gap` always splits.
    pub bridge: f64,
    /// A track last heard within this many seconds (s) of its own end is
    /// reported to its end: a fade-out or quiet ending that noise or the
    /// next track covers is still the track playing out. 0: every boundary
    /// where the track is last heard.
    pub outro: f64,
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
            min_length_clear: 2.5,
            bridge: 30.0,
            outro: 5.0,
        }
    }
}

impl Options {
    pub fn validate(&self) -> Result<(), MonitorError> {
        let bad = |what: &str| Err(MonitorError::BadOption(what.to_owned()));
        if !(self.gap.is_finite() && self.gap >= 0.0) {
            return bad("--gap must be a non-negative number of seconds");
        }
        if !(self.outro.is_finite() && (0.0..=60.0).contains(&self.outro)) {
            return bad("--outro must be 0 to 60 seconds");
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
    fresh: Hashed,
    /// Recent frames (`None`: no audio), `history[0]` is stream frame `hist_lo`.
    history: VecDeque<Option<RankedHash>>,
    hist_lo: u64,
    /// Loudness of recent frames (stream frame, mean square), from
    /// `hist_lo` on: tells a track that fades in from one cut in.
    loudness: VecDeque<(u64, f32)>,
    followers: Vec<Follower>,
    /// Recently closed followers: (id, alignment, end frame). A lookup
    /// window still reaching into one's tail must not start it again.
    closed: VecDeque<(u64, i64, u64)>,
    /// Segments ended within the last `history` seconds: one closed a step
    /// after another that hears its span as well is the same music too.
    ended: VecDeque<Follower>,
    tracks: HashMap<u64, Arc<Vec<u32>>>,
    /// Stream frame of the last lookup.
    last_lookup: u64,
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
            fresh: Hashed::default(),
            history: VecDeque::new(),
            hist_lo: 0,
            loudness: VecDeque::new(),
            followers: Vec::new(),
            closed: VecDeque::new(),
            ended: VecDeque::new(),
            tracks: HashMap::new(),
            last_lookup: 0,
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
        let mut fresh = Hashed::default();
        self.hashes.finish(&mut fresh)?;
        self.absorb(&mut fresh, on)?;
        let followers = std::mem::take(&mut self.followers);
        self.close(followers, on);
        Ok(())
    }

    fn absorb(
        &mut self,
        fresh: &mut Hashed,
        on: &mut dyn FnMut(Event),
    ) -> Result<(), MonitorError> {
        self.loudness.extend(fresh.loudness.drain(..));
        for r in fresh.hashes.drain(..) {
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
        // Due a second after the last lookup while nothing explains the
        // audio, five seconds after it while something does: decided now,
        // so that a track that stops is looked past within a second.
        let every = if self.explained() {
            self.opts.every_explained
        } else {
            self.opts.every
        };
        if hi >= self.last_lookup + self.frames(every).max(BLOCK as u64) || self.lookups == 0 {
            self.last_lookup = hi;
            self.discover(on)?;
        }
        let keep = self.frames(self.opts.history) as usize;
        while self.history.len() > keep {
            self.history.pop_front();
            self.hist_lo += 1;
        }
        while self
            .loudness
            .front()
            .is_some_and(|&(q, _)| q < self.hist_lo)
        {
            self.loudness.pop_front();
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
        let min_len_clear = self.frames(self.opts.min_length_clear);
        let bridge = self.frames(self.opts.bridge).max(gap);
        let mut ending = Vec::new();
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
                && ((!f.confirmed && f.evidence < self.opts.confirm)
                    || (since >= bridge && f.hi() - f.heard(self.straddle()).1 >= bridge)
                    || f.missing_since_end() >= gap
                    || self.other_after(i));
            let long_enough = span >= min_len
                || (span >= min_len_clear && f.best_level(self.level_blocks()) <= CLEAR_BER);
            if !f.confirmed && long_enough && self.viable(f) && !self.dominated(i) {
                i = self.supersede(i, on);
                self.followers[i].confirmed = true;
                let f = &self.followers[i];
                let seg = self.segment(f, self.followers.iter());
                on(Event {
                    kind: EventKind::Start,
                    segment: seg,
                });
            }
            if ended {
                ending.push(self.followers.remove(i));
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
        if !ending.is_empty() {
            self.close(ending, on);
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

    /// Could `f` be reported: confirmed already, or with the evidence and
    /// the level a segment needs.
    fn viable(&self, f: &Follower) -> bool {
        f.confirmed
            || (f.evidence >= self.opts.confirm
                && f.best_level(self.level_blocks()) <= MAX_MATCH_BER)
    }

    /// Blocks over which a follower's level is judged: the shortest segment.
    fn level_blocks(&self) -> usize {
        (self.frames(self.opts.min_length) as usize).div_ceil(BLOCK)
    }

    /// Does another viable follower explain follower `i`'s span better? A
    /// track whose music repeats (a loop, a chorus) matches itself a few
    /// seconds apart, and two tracks may share a passage: of the
    /// alignments heard over one stretch, only the best is the track.
    fn dominated(&self, i: usize) -> bool {
        let f = &self.followers[i];
        self.followers
            .iter()
            .enumerate()
            .any(|(j, g)| j != i && explains_better(g, f) && self.viable(g))
    }

    /// Cancels the confirmed followers that follower `i` explains better
    /// (an alignment reported first, before the right one was found);
    /// returns `i`'s index afterwards.
    fn supersede(&mut self, mut i: usize, on: &mut dyn FnMut(Event)) -> usize {
        let mut j = 0;
        while j < self.followers.len() {
            let g = &self.followers[j];
            if j != i && g.confirmed && explains_better(&self.followers[i], g) {
                let g = self.followers.remove(j);
                if j < i {
                    i -= 1;
                }
                on(Event {
                    kind: EventKind::Cancel,
                    segment: self.segment(&g, std::iter::empty()),
                });
                self.forget(&g);
                continue;
            }
            j += 1;
        }
        i
    }

    /// Remembers a follower that is over, so that a lookup window still
    /// reaching into its tail does not start it again.
    fn forget(&mut self, f: &Follower) {
        if self.closed.len() >= 64 {
            self.closed.pop_front();
        }
        self.closed.push_back((f.id, f.offset_at(f.end), f.end));
    }

    /// Ends followers: each confirmed one is reported ("end"), unless its
    /// span lies within another confirmed follower's that hears it about as
    /// well ("cancel"): the same music heard at two alignments (a loop) or
    /// in two tracks (a shared passage) is one excerpt, the longer one.
    /// Shorter spans go first, so that of two alike one stays.
    fn close(&mut self, mut ending: Vec<Follower>, on: &mut dyn FnMut(Event)) {
        ending.sort_by_key(|f| f.end - f.start);
        let mut kept = vec![true; ending.len()];
        for k in 0..ending.len() {
            let g = &ending[k];
            self.forget(g);
            if !g.confirmed {
                kept[k] = false;
                continue;
            }
            let others = ending
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != k && kept[j])
                .map(|(_, f)| f)
                .chain(self.followers.iter())
                .chain(self.ended.iter());
            let straddle = self.straddle();
            let duplicate = others
                .filter(|f| f.confirmed)
                .any(|f| contains_as_well(f, f.heard(straddle), g));
            kept[k] = !duplicate;
            on(Event {
                kind: if duplicate {
                    EventKind::Cancel
                } else {
                    EventKind::End
                },
                segment: self.segment(g, ending.iter().chain(self.followers.iter())),
            });
        }
        let recent = self
            .hist_hi()
            .saturating_sub(self.frames(self.opts.history));
        self.ended.retain(|f| f.end >= recent);
        for (f, kept) in ending.into_iter().zip(kept) {
            if kept && f.end >= recent && self.ended.len() < MAX_ENDED {
                self.ended.push_back(f);
            }
        }
    }

    /// Looks up the last window; starts a follower for every new alignment.
    fn discover(&mut self, on: &mut dyn FnMut(Event)) -> Result<(), MonitorError> {
        // A stream younger than the window is looked up from half of it
        // on, so that what plays at its start is heard as soon.
        let len = (self.frames(self.opts.window) as usize).min(self.history.len());
        if len < self.frames(self.opts.window / 2.0) as usize {
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

/// A follower at or below this level is heard clearly: a phone in a room
/// sits near 0.30, unrelated audio that a lookup matched above 0.38
/// ([`MAX_MATCH_BER`]), clean copies, MP3s and 10 dB of noise below 0.25.
const CLEAR_BER: f64 = 0.25;

/// Ended segments kept for [`Monitor::close`]'s check (a minute of audio
/// holds a few).
const MAX_ENDED: usize = 16;

/// Has `g` followed most of `f`'s span, with fewer bit errors there than `f`?
fn explains_better(g: &Follower, f: &Follower) -> bool {
    let len = (f.end - f.start).max(1);
    let a = f.start.max(g.lo());
    let b = f.end.min(g.hi());
    b > a && (b - a) * 2 >= len && g.ber_over(a, b) < f.ber_over(a, b)
}

/// Share of `g`'s span that must lie in `f`'s for `g` to be a part of it.
const WITHIN: f64 = 0.8;
/// How much worse, as a share of the way to chance, `f` may hear `g`'s
/// span and still hear the same music.
const AS_WELL: f64 = 0.25;

/// Is `g`'s span within where `f` is heard (`heard`), with `f` hearing it
/// about as well as `g`? Two tracks never play at once beyond a crossfade,
/// so a span inside another's that the other also hears is the same music.
fn contains_as_well(f: &Follower, heard: (u64, u64), g: &Follower) -> bool {
    let len = (g.end - g.start).max(1);
    let a = g.start.max(heard.0);
    let b = g.end.min(heard.1);
    if b <= a || ((b - a) as f64) < WITHIN * len as f64 {
        return false;
    }
    let own = g.ber_over(g.start, g.end);
    f.ber_over(g.start, g.end) <= own + AS_WELL * (CHANCE_BER - own).max(0.0)
}
