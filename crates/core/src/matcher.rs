//! Time-aligned voting and bit-error-rate verification (docs/design.md §4).
//!
//! A lookup runs in three steps:
//!
//! 1. **Vote** ([`vote`]): every query frame's hash, expanded over the bits
//!    its toggle mask marks, is probed in the index; every posting it hits
//!    votes for `(track, offset = track_pos - query_pos)`, offsets binned so
//!    that a frame or two of drift still lands together. A query frame counts
//!    at most once per bin, so 2^k variants cannot inflate a candidate.
//! 2. **Verify** ([`verify`]): the best-voted candidates are compared bit by
//!    bit with the stored hash sequence, block by block, each block free to
//!    drift a little from its neighbour (clips played slightly fast or slow).
//! 3. **Score** ([`chance`]): `1 − 2·BER` is rescaled by the level unrelated
//!    audio reaches at that many compared frames, so that one threshold holds
//!    the false-positive rate at every query length.
//!
//! The index is reached only through [`FrameSource`], so this module is tested
//! with a plain in-memory source and the index stays free to store postings
//! however it likes.

mod chance;
mod speed;
mod verify;
mod vote;

use crate::index::{Index, TrackId};

pub use verify::Anchor;

pub use crate::defaults::HARD_MAX_TOGGLE_BITS;

/// Options of one lookup.
#[derive(Debug, Clone, PartialEq)]
pub struct LookupParams {
    /// Minimum score in [0, 1]. 0.25 (the default, kept from the original
    /// client) is the level unrelated audio stays under in ≥ 99% of lookups at
    /// every query length (see `chance.rs`).
    pub threshold: f64,
    /// At most this many matches are returned (`None`: every track over the
    /// threshold). A limit above the number of candidates verified by
    /// default also verifies more of them (up to 256) so it can be filled.
    pub limit: Option<usize>,
    /// Toggle masks with more set bits than this are an error (default 8, the
    /// module's `auscout.max-toggle-bits`).
    pub max_toggle_bits: u32,
    /// Threads one lookup may use (probes and verification are split among
    /// them on the [`crate::pool`]); 1 runs it all on the calling thread.
    pub threads: usize,
    /// Fit each match's speed ([`Match::speed`]): about 0.15 ms per match
    /// of a 1,000-frame query (as much again as the lookup), so only when
    /// asked.
    pub with_speed: bool,
}

impl Default for LookupParams {
    fn default() -> Self {
        LookupParams {
            threshold: crate::defaults::THRESHOLD,
            limit: None,
            max_toggle_bits: crate::defaults::MAX_TOGGLE_BITS,
            threads: 1,
            with_speed: false,
        }
    }
}

/// One matching track.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    pub id: TrackId,
    /// Frame of the track aligned with the query's first frame. Negative when
    /// the query starts before the track (e.g. a clip with leading silence
    /// recorded before the track began); kept as is so that
    /// `position * hop / sr` stays the true offset.
    pub position: i64,
    /// 0 for chance, 1 for identical.
    pub score: f64,
    /// With [`LookupParams::with_speed`]: the query's speed relative to the
    /// track (1.05: the query is the track played 5 % fast; track frames per
    /// query frame), fitted over the whole query; otherwise `None`.
    pub speed: Option<f64>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LookupError {
    #[error("hash and toggle arrays differ in length ({0} vs {1})")]
    LengthMismatch(usize, usize),
    #[error("toggle mask has {bits} bits set, more than the cap of {cap}")]
    TooManyToggles { bits: u32, cap: u32 },
    #[error("empty query")]
    Empty,
}

/// A hash stored in more postings than this is a *stop hash*: a lookup's
/// probe of it finds nothing. Such a hash (silence, a steady tone) votes for
/// thousands of alignments at once and so tells nothing about which one is
/// right, while its postings would cost a lookup as much as all its other
/// probes together; a 1,000-frame query of random hashes at 40M frames has
/// about 1,000 true hits in all. 2,048 is far above what any informative
/// hash reaches (random hashes at 200M frames: about 0.05 postings each).
pub const STOP_HASH_POSTINGS: usize = 2048;

/// What the matcher needs from an index. Slots are the index's own dense
/// handles for live tracks; the matcher never interprets them.
pub trait FrameSource {
    /// Calls `hit(i, slot, pos)` for every stored posting whose hash equals
    /// `probes[i]`, unless the hash is a stop hash (more than
    /// [`STOP_HASH_POSTINGS`] postings, see `Index::probe_capped`): then for
    /// none. Within a track, a run of consecutive equal hashes has ONE
    /// posting, at the run's first frame.
    fn probe(&self, probes: &[u32], hit: &mut dyn FnMut(usize, u32, u32));
    /// The full hash sequence of the live track in `slot` (repeats included; pos indexes it).
    fn hashes(&self, slot: u32) -> &[u32];
    fn id(&self, slot: u32) -> TrackId;
}

/// How many of the best-voted candidates are verified by BER, at least. More
/// costs time and raises the level unrelated audio reaches (best of more
/// tries); `chance.rs` is calibrated with these three constants.
const VERIFIED_CANDIDATES: usize = 50;
/// Shorter queries verify more candidates: 50 × (1,000 / frames)², between 50
/// and [`MAX_VERIFIED`] (1,000 frames: 50; 700: 100; 500 and fewer: 200).
/// The true alignment of a noisy 1–5 s clip often has one or two votes, tied
/// with thousands of chance alignments, so a wider net finds it (on the
/// standard bench set: 6 of 1,614 clips more than with 50 candidates, and
/// one more noise10 5 s clip than with a rule linear in 1 / frames). A
/// short query's verification stays cheap (≤ 2× a 10 s query's: 200 × 500
/// frames), and a 1,000-frame query's is unchanged.
const VERIFY_SCALE_FRAMES: usize = 1_000;
const MAX_VERIFIED: usize = 200;
/// Candidates verified as one item when a lookup's verification is shared
/// out among threads (about 20-50 µs of work each for 1,000 frames).
const VERIFY_GROUP: usize = 8;

/// Every track whose score is ≥ `params.threshold`, best first, at most
/// `params.limit`, one per track (its best alignment).
pub fn lookup<S: FrameSource + Sync + ?Sized>(
    src: &S,
    query: &[u32],
    toggles: &[u32],
    params: &LookupParams,
) -> Result<Vec<Match>, LookupError> {
    let verdicts = lookup_candidates(src, query, toggles, params)?;
    let prepared = params.with_speed.then(|| verify::Query::new(query));
    let mut out: Vec<Match> = Vec::with_capacity(verdicts.len());
    let mut seen: Vec<u32> = Vec::with_capacity(verdicts.len());
    // `verdicts` is sorted best first, so the first verdict of a track is its
    // best alignment.
    for v in verdicts {
        if v.score < params.threshold || params.limit.is_some_and(|l| out.len() >= l) {
            break;
        }
        if seen.contains(&v.slot) {
            continue;
        }
        seen.push(v.slot);
        let speed = prepared
            .as_ref()
            .map(|q| speed::fit(q, src.hashes(v.slot), v.anchor));
        out.push(Match {
            id: v.id,
            position: v.position,
            score: v.score,
            speed,
        });
    }
    Ok(out)
}

/// One verified candidate, with the figures behind its score (for
/// diagnostics and for calibrating the score on real audio).
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub slot: u32,
    pub id: TrackId,
    /// Track frame aligned with query frame 0.
    pub position: i64,
    /// Query frames that voted for this alignment.
    pub votes: u32,
    /// Differing bits over the compared frames.
    pub bit_errors: u64,
    /// Query frames that overlapped the track.
    pub frames: u64,
    pub score: f64,
    /// Where verification started: the block the votes agreed on.
    pub anchor: Anchor,
}

impl Verdict {
    /// `1 − 2·BER`, before the length correction.
    pub fn similarity(&self) -> f64 {
        if self.frames == 0 {
            return 0.0;
        }
        1.0 - 2.0 * self.bit_errors as f64 / (32.0 * self.frames as f64)
    }
}

/// Every verified candidate, whatever its score, best first (ties by id, then
/// position), possibly several per track. [`lookup`] is this plus the
/// threshold, the limit and one answer per track.
///
/// The best-voted `clamp(50 × (1,000 / frames)², 50, 200)` alignments are
/// verified, the rule the score calibration was measured with; a `limit`
/// above that verifies `min(limit, 256)`, which raises the level unrelated
/// audio reaches only slightly (best of more tries). No limit is not a
/// larger one: it verifies the calibrated count (verifying 256 would cost
/// five times the verification of a 1,000-frame query for nothing).
pub fn lookup_candidates<S: FrameSource + Sync + ?Sized>(
    src: &S,
    query: &[u32],
    toggles: &[u32],
    params: &LookupParams,
) -> Result<Vec<Verdict>, LookupError> {
    validate(query, toggles, params)?;
    if params.limit == Some(0) {
        return Ok(Vec::new());
    }
    let frames = query.len().max(1);
    let by_length = (VERIFIED_CANDIDATES * VERIFY_SCALE_FRAMES / frames)
        .saturating_mul(VERIFY_SCALE_FRAMES)
        / frames;
    let wanted = VERIFIED_CANDIDATES
        .max(by_length.min(MAX_VERIFIED))
        .max(params.limit.map_or(0, |l| l.min(256)));
    let threads = params.threads.clamp(1, crate::pool::MAX_THREADS);
    let candidates = vote::best_candidates(src, query, toggles, wanted, threads);
    let prepared = verify::Query::new(query);
    let check = |cand: &vote::Candidate| {
        let hashes = src.hashes(cand.slot);
        let v = verify::verify(&prepared, hashes, cand.anchor_frame, cand.anchor_offset)?;
        Some(Verdict {
            slot: cand.slot,
            id: src.id(cand.slot),
            position: v.position,
            votes: cand.votes,
            bit_errors: v.errors,
            frames: v.frames,
            score: chance::score(v.errors, v.frames),
            anchor: v.anchor,
        })
    };
    // Splitting pays only when there is enough to verify; the groups are
    // shared out among the calling thread and idle pool threads.
    let parallel = threads > 1 && query.len() * candidates.len() >= 16 * 1024;
    // Each candidate reads about 4 bytes per query frame of its track, a
    // stretch anywhere in memory: the thread verifying a candidate first
    // prefetches the next one's stretch, so its misses overlap the compare.
    let verify_all = |group: &[vote::Candidate]| {
        let mut out = Vec::with_capacity(group.len());
        for (k, cand) in group.iter().enumerate() {
            if let Some(next) = group.get(k + 1) {
                verify::prefetch_span(src.hashes(next.slot), query.len(), next.anchor_offset);
            }
            out.extend(check(cand));
        }
        out
    };
    let mut out: Vec<Verdict> = if parallel {
        let groups: Vec<&[vote::Candidate]> = candidates.chunks(VERIFY_GROUP).collect();
        crate::pool::map(threads, &groups, |g| verify_all(g))
            .into_iter()
            .flatten()
            .collect()
    } else {
        verify_all(&candidates)
    };
    out.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.id.cmp(&b.id))
            .then(a.position.cmp(&b.position))
    });
    Ok(out)
}

/// One alignment as verification scores it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Alignment {
    /// Track frame aligned with query frame 0, as verification settled it.
    pub position: i64,
    /// Differing bits over the compared frames.
    pub bit_errors: u64,
    /// Informative query frames that overlapped the track.
    pub frames: u64,
    pub score: f64,
}

/// Verifies one alignment given outright, as if the votes had proposed it:
/// `query` against `track` with query frame 0 near track frame `position`
/// (the anchor block searched a few frames either side, the other blocks
/// following a drift as in a lookup). For a clip whose true alignment is
/// known, this is the best score any search over these hashes can give it:
/// what a lookup that missed the clip fell short of. `None` when the
/// alignment leaves the clip no frame on the track.
pub fn verify_alignment(query: &[u32], track: &[u32], position: i64) -> Option<Alignment> {
    let middle = query.len() / 2;
    let prepared = verify::Query::new(query);
    let v = verify::verify(&prepared, track, middle, position)?;
    Some(Alignment {
        position: v.position,
        bit_errors: v.errors,
        frames: v.frames,
        score: chance::score(v.errors, v.frames),
    })
}

fn validate(query: &[u32], toggles: &[u32], params: &LookupParams) -> Result<(), LookupError> {
    if query.is_empty() {
        return Err(LookupError::Empty);
    }
    if query.len() != toggles.len() {
        return Err(LookupError::LengthMismatch(query.len(), toggles.len()));
    }
    let cap = params.max_toggle_bits.min(HARD_MAX_TOGGLE_BITS);
    if let Some(bits) = toggles.iter().map(|t| t.count_ones()).find(|&b| b > cap) {
        return Err(LookupError::TooManyToggles { bits, cap });
    }
    Ok(())
}

/// The index is the matcher's frame source in production.
impl Index {
    /// Time-aligned lookup: every track scoring ≥ threshold, best first.
    pub fn lookup(
        &self,
        query: &[u32],
        toggles: &[u32],
        params: &LookupParams,
    ) -> Result<Vec<Match>, LookupError> {
        lookup(self, query, toggles, params)
    }
}

impl FrameSource for Index {
    fn probe(&self, probes: &[u32], hit: &mut dyn FnMut(usize, u32, u32)) {
        self.probe_capped(probes, STOP_HASH_POSTINGS, hit)
    }

    fn hashes(&self, slot: u32) -> &[u32] {
        self.slot_hashes(slot)
    }

    fn id(&self, slot: u32) -> TrackId {
        self.slot_id(slot)
    }
}

#[cfg(test)]
mod tests;
