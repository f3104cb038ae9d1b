//! Recognising a clip: one lookup of the clip as played and, only when that
//! finds nothing, fallback lookups of the clip undone by a small grid of
//! warps (speed, pitch, tempo; see `auscout_fingerprint::clip`).
//!
//! A frame hash absorbs about ±4 % of speed; beyond that every frame's
//! bits change and the clip goes unfound. The grid's points are far enough
//! apart that together with that tolerance they cover speeds from −11 % to
//! +12 %, and pitch shifts of a semitone with the tempo kept: the warp
//! nearest to the true change leaves a residue the first pass absorbs
//! anyway. A clip found on the first pass costs what it always did; one that
//! matches nothing pays every fallback (each a warp of the kept spectra and
//! a lookup, no new FFT).
//!
//! Every extra lookup is another chance for unrelated audio to score over
//! the threshold, so a fallback's match must also reach
//! [`Fallbacks::min_score`], calibrated on unrelated music so that the
//! whole chain stays under the single lookup's false-positive rate.
//!
//! The driver is generic over the lookup, so the CLI ([`crate::Store`]),
//! the HTTP service, the monitor and in-process evaluations share it.

use std::time::{Duration, Instant};

pub use auscout_fingerprint::clip::{Clip, Warp};
use auscout_fingerprint::{Fingerprint, FingerprintError};

/// Something with a score in [0, 1] (a match of a lookup).
pub trait Scored {
    fn score(&self) -> f64;
}

impl Scored for crate::TrackMatch {
    fn score(&self) -> f64 {
        self.score
    }
}

impl Scored for auscout_core::matcher::Match {
    fn score(&self) -> f64 {
        self.score
    }
}

/// The warps tried after a first pass that found nothing, in order.
pub const DEFAULT_WARPS: [Warp; 4] = [
    Warp {
        pitch: 0.93,
        tempo: 0.93,
    },
    Warp {
        pitch: 1.07,
        tempo: 1.07,
    },
    Warp {
        pitch: 0.944,
        tempo: 1.0,
    },
    Warp {
        pitch: 1.059,
        tempo: 1.0,
    },
];

/// What to try when the clip as played finds nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Fallbacks {
    /// Warps to undo, tried in order until one finds a match.
    pub warps: Vec<Warp>,
    /// A fallback's best match must score at least this (the lookup's own
    /// threshold applies too).
    pub min_score: f64,
}

impl Default for Fallbacks {
    fn default() -> Self {
        Fallbacks {
            warps: DEFAULT_WARPS.to_vec(),
            min_score: DEFAULT_FALLBACK_MIN_SCORE,
        }
    }
}

impl Fallbacks {
    /// No fallback: the first pass only.
    pub fn none() -> Self {
        Fallbacks {
            warps: Vec::new(),
            min_score: 1.0,
        }
    }
}

/// The score a fallback's match needs by default (see the module comment).
pub const DEFAULT_FALLBACK_MIN_SCORE: f64 = 0.30;

/// One lookup the driver made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pass {
    /// The warp undone ([`Warp::NONE`] for the first pass).
    pub warp: Warp,
    /// Warping the spectra and looking up.
    pub took: Duration,
}

/// What [`recognise`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Recognition<M> {
    /// The matches of the pass that found any, best first; empty for none.
    pub matches: Vec<M>,
    /// The warp of that pass: the clip is its original changed by it
    /// (`tempo` is the speed factor of a speed change).
    pub warp: Warp,
    /// Every lookup made, in order.
    pub passes: Vec<Pass>,
}

/// Looks `clip` up as played and, when that finds nothing, undone by each
/// of `fallbacks.warps` in turn until one finds a match.
pub fn recognise<M: Scored, E: From<FingerprintError>>(
    clip: &Clip,
    fallbacks: &Fallbacks,
    mut lookup: impl FnMut(&Fingerprint, Warp) -> Result<Vec<M>, E>,
) -> Result<Recognition<M>, E> {
    let start = Instant::now();
    let matches = lookup(clip.fingerprint(), Warp::NONE)?;
    let first = Pass {
        warp: Warp::NONE,
        took: start.elapsed(),
    };
    if !matches.is_empty() {
        return Ok(Recognition {
            matches,
            warp: Warp::NONE,
            passes: vec![first],
        });
    }
    let mut found = fallback(clip, fallbacks, lookup)?;
    found.passes.insert(0, first);
    Ok(found)
}

/// The fallbacks alone (for a caller that made the first lookup itself).
pub fn fallback<M: Scored, E: From<FingerprintError>>(
    clip: &Clip,
    fallbacks: &Fallbacks,
    mut lookup: impl FnMut(&Fingerprint, Warp) -> Result<Vec<M>, E>,
) -> Result<Recognition<M>, E> {
    let mut passes = Vec::with_capacity(fallbacks.warps.len());
    for &warp in &fallbacks.warps {
        let start = Instant::now();
        let fp = match clip.fingerprint_warped(warp) {
            Ok(fp) => fp,
            // Slowed down, a clip just long enough as played may give no hash.
            Err(FingerprintError::TooShort { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let mut matches = lookup(&fp, warp)?;
        passes.push(Pass {
            warp,
            took: start.elapsed(),
        });
        if matches
            .first()
            .is_some_and(|m| m.score() >= fallbacks.min_score)
        {
            matches.retain(|m| m.score() >= fallbacks.min_score);
            return Ok(Recognition {
                matches,
                warp,
                passes,
            });
        }
    }
    Ok(Recognition {
        matches: Vec::new(),
        warp: Warp::NONE,
        passes,
    })
}
