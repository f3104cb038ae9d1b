//! Recognising a clip: one lookup of the clip as played and, only when that
//! finds nothing (or only a weak match, below), fallback lookups of the
//! clip undone by a small grid of warps (speed, pitch, tempo; see
//! `auscout_fingerprint::clip`), then a deep lookup for heavy noise
//! ([`Deep`]).
//!
//! A frame hash absorbs about ±4 % of speed; beyond that every frame's
//! bits change and the clip goes unfound. The grid's points are far enough
//! apart that together with that tolerance they cover speeds from −11 % to
//! +12 %, and pitch shifts of a semitone with the tempo kept: the warp
//! nearest to the true change leaves a residue the first pass absorbs
//! anyway. A clip found clearly on the first pass costs one lookup; one that
//! matches nothing pays every fallback (each a warp of the clip's spectra,
//! computed once, and a lookup), the next fallback's fingerprint made while
//! the server looks up the one before.
//!
//! A first-pass match that scores under [`Fallbacks::recheck_below`] is
//! checked against the warps as well. A clip played 6 % slow can still
//! reach the threshold on the first pass at a passage its track repeats
//! with variation; undone by the nearest warp it scores its true alignment
//! far higher (0.35 at a passage 12 s early against 0.90 at its own place).
//! The warp's match replaces the first pass's only when it scores
//! [`RECHECK_MARGIN`] higher: a warp that does not undo the change (a
//! tempo change undone as a speed change shifts the pitch) can land on
//! such a passage too, a little above the true alignment's weak score. A
//! clearly matched clip pays nothing more.
//!
//! Every extra lookup is another chance for unrelated audio to score over
//! the threshold, so a fallback's match must also reach
//! [`Fallbacks::min_score`], calibrated on unrelated music so that the
//! whole chain stays under the single lookup's false-positive rate.
//!
//! The driver is generic over the lookup, so the CLI ([`crate::Store`]),
//! the HTTP service, the monitor and in-process evaluations share it.

use std::borrow::Borrow;
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

/// The last fallback: the clip as played, looked up with toggle masks for
/// heavy noise and more candidates verified. Under heavy broadband noise a
/// frame's hash lands within its toggles of the stored one only where the
/// music stands out of the noise, so the true alignment of a noisy clip gets
/// a vote or two and ties with thousands of chance alignments. This pass
/// spends a larger probe budget on the frames most likely to land
/// (`Clip::fingerprint_for_noise`) and verifies more of the candidates;
/// once verified, the true alignment's bit error rate tells it from chance
/// at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Deep {
    /// Probes of the pass, as a 10 s clip's budget (a clip of at most
    /// 300 hashes gets 5× it, as in the ordinary budget); the server's
    /// toggle-bit cap still applies per frame.
    pub probe_budget: u64,
    /// Candidates verified: the lookup's `LIMIT` (the server verifies
    /// `min(limit, 256)` when that is more than its default).
    pub verified: usize,
}

/// The deep pass by default: four times the first pass' probe budget and
/// 256 verified candidates.
pub const DEFAULT_DEEP: Deep = Deep {
    probe_budget: 4 * auscout_fingerprint::audiohash::DEFAULT_PROBE_BUDGET,
    verified: 256,
};

/// What to try when the clip as played finds nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Fallbacks {
    /// Warps to undo, tried in order until one finds a match.
    pub warps: Vec<Warp>,
    /// Tried after every warp failed.
    pub deep: Option<Deep>,
    /// A fallback's best match must score at least this (the lookup's own
    /// threshold applies too).
    pub min_score: f64,
    /// A first-pass match scoring under this is checked against the warps
    /// too, and replaced by a warp's match that scores [`RECHECK_MARGIN`]
    /// higher.
    pub recheck_below: f64,
}

impl Default for Fallbacks {
    fn default() -> Self {
        Fallbacks {
            warps: DEFAULT_WARPS.to_vec(),
            deep: Some(DEFAULT_DEEP),
            min_score: DEFAULT_FALLBACK_MIN_SCORE,
            recheck_below: DEFAULT_RECHECK_BELOW,
        }
    }
}

impl Fallbacks {
    /// No fallback: the first pass only.
    pub fn none() -> Self {
        Fallbacks {
            warps: Vec::new(),
            deep: None,
            min_score: 1.0,
            recheck_below: 0.0,
        }
    }
}

/// One lookup the driver asks its caller to make.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Attempt {
    /// The warp undone ([`Warp::NONE`] for the first pass and the deep one).
    pub warp: Warp,
    /// Candidates to verify: pass it as the lookup's `LIMIT` (keeping only
    /// as many matches as the caller wants); `None` for the server's default.
    pub verified: Option<usize>,
}

impl Attempt {
    /// `base` (the caller's lookup options) with the `LIMIT` this attempt
    /// needs; keep the reply's first `base.limit` matches.
    pub fn options(&self, base: crate::store::LookupOptions) -> crate::store::LookupOptions {
        let verified = self.verified.map(|v| u32::try_from(v).unwrap_or(u32::MAX));
        crate::store::LookupOptions {
            limit: match (base.limit, verified) {
                (Some(l), Some(v)) => Some(l.max(v)),
                (l, v) => l.or(v),
            },
            ..base
        }
    }
}

/// The score a fallback's match needs by default (see the module comment).
pub const DEFAULT_FALLBACK_MIN_SCORE: f64 = 0.30;

/// First-pass matches under this are checked against the warps by default.
pub const DEFAULT_RECHECK_BELOW: f64 = 0.5;

/// How much higher than a weak first-pass match a warp's must score to
/// replace it. On the bench's hard sets the warp that undoes a speed or
/// pitch change gains 0.3–0.6 at the true alignment; the warps that landed
/// on another passage gained at most 0.23.
pub const RECHECK_MARGIN: f64 = 0.25;

/// One lookup the driver made.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pass {
    /// What was looked up.
    pub attempt: Attempt,
    /// Warping the spectra and looking up (for a fallback, the warp was
    /// made while the lookup before it ran: the two add up to more than
    /// the time the pass added).
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

/// The first pass: the clip as played, the server's default `LIMIT`.
pub const AS_PLAYED: Attempt = Attempt {
    warp: Warp::NONE,
    verified: None,
};

/// Looks `clip` up as played and, when that finds nothing or only a weak
/// match, undone by each of `fallbacks.warps` in turn until one finds a
/// match (then the deep pass, when nothing was found at all).
pub fn recognise<M: Scored, E: From<FingerprintError>>(
    clip: &Clip,
    fallbacks: &Fallbacks,
    mut lookup: impl FnMut(&Fingerprint, Attempt) -> Result<Vec<M>, E>,
) -> Result<Recognition<M>, E> {
    let start = Instant::now();
    let matches = lookup(clip.fingerprint(), AS_PLAYED)?;
    let first = Pass {
        attempt: AS_PLAYED,
        took: start.elapsed(),
    };
    after_first_pass(matches, first, fallbacks, || Ok(clip), lookup)
}

/// The rest of [`recognise`], for a caller that made the first pass itself
/// ([`AS_PLAYED`], which found `matches`): the fallbacks when it found
/// nothing or only a weak match. `clip` is called only then (a caller that
/// hashed the clip without keeping its spectra opens it there).
pub fn after_first_pass<M: Scored, E: From<FingerprintError>, C: Borrow<Clip>>(
    matches: Vec<M>,
    first: Pass,
    fallbacks: &Fallbacks,
    clip: impl FnOnce() -> Result<C, E>,
    lookup: impl FnMut(&Fingerprint, Attempt) -> Result<Vec<M>, E>,
) -> Result<Recognition<M>, E> {
    let as_played = |matches| Recognition {
        matches,
        warp: Warp::NONE,
        passes: vec![first],
    };
    let Some(best) = matches.first().map(Scored::score) else {
        if fallbacks.warps.is_empty() && fallbacks.deep.is_none() {
            return Ok(as_played(matches));
        }
        let mut found = fallback(clip()?.borrow(), fallbacks, lookup)?;
        found.passes.insert(0, first);
        return Ok(found);
    };
    if best >= fallbacks.recheck_below || fallbacks.warps.is_empty() {
        return Ok(as_played(matches));
    }
    // A weak match: a warp may align the clip better.
    let warps_only = Fallbacks {
        deep: None,
        ..fallbacks.clone()
    };
    let mut warped = fallback(clip()?.borrow(), &warps_only, lookup)?;
    let mut passes = vec![first];
    passes.append(&mut warped.passes);
    if warped
        .matches
        .first()
        .is_some_and(|m| m.score() >= best + RECHECK_MARGIN)
    {
        Ok(Recognition { passes, ..warped })
    } else {
        Ok(Recognition {
            passes,
            ..as_played(matches)
        })
    }
}

/// The fallbacks alone (for a caller that made the first lookup itself).
///
/// The fingerprints of the attempts are made on a helper thread, one
/// attempt ahead of the lookups: while the server looks up one warp, the
/// next is being computed, so a clip that matches nothing waits for the
/// longer of the two at each step instead of their sum. The attempts, their
/// order and the answer are those of making them one after the other; when
/// one finds a match the helper stops after the fingerprint it is making.
pub fn fallback<M: Scored, E: From<FingerprintError>>(
    clip: &Clip,
    fallbacks: &Fallbacks,
    mut lookup: impl FnMut(&Fingerprint, Attempt) -> Result<Vec<M>, E>,
) -> Result<Recognition<M>, E> {
    let warps = fallbacks.warps.iter().map(|&warp| {
        (
            Attempt {
                warp,
                verified: None,
            },
            None,
        )
    });
    let deep = fallbacks.deep.map(|d| {
        (
            Attempt {
                warp: Warp::NONE,
                verified: Some(d.verified),
            },
            Some(d),
        )
    });
    let attempts: Vec<(Attempt, Option<Deep>)> = warps.chain(deep).collect();
    let make = |(attempt, deep): &(Attempt, Option<Deep>)| {
        let start = Instant::now();
        let fp = match deep {
            None => clip.fingerprint_warped(attempt.warp),
            Some(d) => Ok(clip.fingerprint_for_noise(d.probe_budget)),
        };
        (*attempt, fp, start.elapsed())
    };
    std::thread::scope(|scope| {
        // Room for one fingerprint: the helper is at most one attempt
        // ahead, and stops when the receiver is gone (a match was found).
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let (attempts, make) = (&attempts, &make);
        let helper = scope.spawn(move || {
            for a in attempts {
                if tx.send(make(a)).is_err() {
                    break;
                }
            }
        });
        let found = look_up_in_turn(rx.iter(), fallbacks.min_score, &mut lookup);
        drop(rx);
        // The helper only computes fingerprints; a panic there is a bug
        // that must not pass silently.
        if let Err(panic) = helper.join() {
            std::panic::resume_unwind(panic);
        }
        found
    })
}

/// Looks up each fingerprint in turn until a match scores at least
/// `min_score`.
fn look_up_in_turn<M: Scored, E: From<FingerprintError>>(
    made: impl Iterator<Item = (Attempt, Result<Fingerprint, FingerprintError>, Duration)>,
    min_score: f64,
    lookup: &mut impl FnMut(&Fingerprint, Attempt) -> Result<Vec<M>, E>,
) -> Result<Recognition<M>, E> {
    let mut passes = Vec::new();
    for (attempt, fp, making) in made {
        let fp = match fp {
            Ok(fp) => fp,
            // Slowed down, a clip just long enough as played may give no hash.
            Err(FingerprintError::TooShort { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let start = Instant::now();
        let mut matches = lookup(&fp, attempt)?;
        passes.push(Pass {
            attempt,
            took: making + start.elapsed(),
        });
        if matches.first().is_some_and(|m| m.score() >= min_score) {
            matches.retain(|m| m.score() >= min_score);
            return Ok(Recognition {
                matches,
                warp: attempt.warp,
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

#[cfg(test)]
mod tests {
    use super::*;
    use auscout_fingerprint::HashOptions;
    use auscout_testkit::audio;

    struct Hit(f64);

    impl Scored for Hit {
        fn score(&self) -> f64 {
            self.0
        }
    }

    fn clip() -> Clip {
        Clip::from_samples(
            &audio::music(3, 6.0, 22_050),
            22_050,
            &HashOptions::default(),
        )
        .expect("clip")
    }

    /// Every attempt the driver makes, in order; the lookup answers from
    /// `answer(k)` for the k-th fallback.
    fn run(
        answer: impl Fn(usize) -> Result<Vec<Hit>, Failed>,
    ) -> (Result<Recognition<Hit>, Failed>, Vec<Attempt>) {
        let clip = clip();
        let mut seen = Vec::new();
        let found = fallback(&clip, &Fallbacks::default(), |fp, attempt| {
            assert!(!fp.hashes.is_empty());
            seen.push(attempt);
            answer(seen.len() - 1)
        });
        (found, seen)
    }

    /// An error of the test's lookup, or of a fingerprint.
    #[derive(Debug, PartialEq)]
    struct Failed(String);

    impl From<FingerprintError> for Failed {
        fn from(e: FingerprintError) -> Self {
            Failed(e.to_string())
        }
    }

    fn expected() -> Vec<Attempt> {
        let mut all: Vec<Attempt> = DEFAULT_WARPS
            .iter()
            .map(|&warp| Attempt {
                warp,
                verified: None,
            })
            .collect();
        all.push(Attempt {
            warp: Warp::NONE,
            verified: Some(DEFAULT_DEEP.verified),
        });
        all
    }

    #[test]
    fn every_fallback_is_tried_in_order_when_none_matches() {
        // A match under the fallbacks' minimum score is no match.
        let (found, seen) = run(|_| Ok(vec![Hit(DEFAULT_FALLBACK_MIN_SCORE - 0.01)]));
        let found = found.expect("no error");
        assert!(found.matches.is_empty());
        assert_eq!(seen, expected());
        assert_eq!(
            found.passes.iter().map(|p| p.attempt).collect::<Vec<_>>(),
            expected()
        );
    }

    #[test]
    fn the_first_fallback_that_matches_ends_the_chain() {
        let (found, seen) = run(|k| {
            Ok(if k == 2 {
                vec![Hit(0.9), Hit(0.2)]
            } else {
                Vec::new()
            })
        });
        let found = found.expect("no error");
        assert_eq!(seen, expected()[..3]);
        assert_eq!(found.warp, DEFAULT_WARPS[2]);
        assert_eq!(found.passes.len(), 3);
        // Matches under the minimum score are dropped.
        assert_eq!(found.matches.len(), 1);
    }

    /// The whole driver: `answer(0)` for the first pass, `answer(k)` for
    /// the k-th lookup after it.
    fn run_recognise(answer: impl Fn(usize) -> Vec<Hit>) -> (Recognition<Hit>, Vec<Attempt>) {
        let clip = clip();
        let mut seen = Vec::new();
        let found = recognise(&clip, &Fallbacks::default(), |_, attempt| {
            seen.push(attempt);
            Ok::<_, Failed>(answer(seen.len() - 1))
        });
        (found.expect("no error"), seen)
    }

    #[test]
    fn a_clear_first_pass_match_tries_nothing_else() {
        let (found, seen) = run_recognise(|_| vec![Hit(DEFAULT_RECHECK_BELOW)]);
        assert_eq!(seen.len(), 1);
        assert_eq!(found.warp, Warp::NONE);
        assert_eq!(found.passes.len(), 1);
    }

    #[test]
    fn a_weak_first_pass_match_gives_way_to_a_warp_that_scores_higher() {
        // The first pass scores 0.35; the second warp 0.8.
        let (found, seen) = run_recognise(|k| match k {
            0 => vec![Hit(0.35)],
            2 => vec![Hit(0.8)],
            _ => Vec::new(),
        });
        // The warps in order until one matches, never the deep pass.
        assert_eq!(seen.len(), 3);
        assert!(seen[1..].iter().all(|a| a.verified.is_none()));
        assert_eq!(found.warp, DEFAULT_WARPS[1]);
        assert_eq!(found.matches.len(), 1);
        assert_eq!(found.matches[0].0, 0.8);
        assert_eq!(found.passes.len(), 3);
    }

    #[test]
    fn a_weak_first_pass_match_stays_when_no_warp_scores_clearly_higher() {
        // Every warp finds nothing, or matches less well.
        let (found, seen) = run_recognise(|k| match k {
            0 => vec![Hit(0.35)],
            3 => vec![Hit(0.32)],
            _ => Vec::new(),
        });
        assert_eq!(seen.len(), 4);
        assert_eq!(found.warp, Warp::NONE);
        assert_eq!(found.matches[0].0, 0.35);
        assert_eq!(found.passes.len(), 4);
        // A warp's match higher, but by less than the margin.
        let (found, seen) = run_recognise(|k| match k {
            0 => vec![Hit(0.35)],
            1 => vec![Hit(0.35 + RECHECK_MARGIN - 0.01)],
            _ => Vec::new(),
        });
        assert_eq!(seen.len(), 2);
        assert_eq!(found.warp, Warp::NONE);
        assert_eq!(found.matches[0].0, 0.35);
    }

    #[test]
    fn the_clip_is_opened_only_when_a_fallback_runs() {
        let first = || Pass {
            attempt: AS_PLAYED,
            took: Duration::ZERO,
        };
        let mut opened = 0;
        for (score, opens) in [(0.9, 0), (0.35, 1)] {
            let before = opened;
            let found = after_first_pass(
                vec![Hit(score)],
                first(),
                &Fallbacks::default(),
                || {
                    opened += 1;
                    Ok::<_, Failed>(clip())
                },
                |_, _| Ok(Vec::new()),
            )
            .expect("no error");
            assert_eq!(opened - before, opens, "first pass scoring {score}");
            assert_eq!(found.matches[0].0, score);
        }
    }

    #[test]
    fn a_lookup_error_ends_the_chain_with_that_error() {
        let (found, seen) = run(|k| {
            if k == 1 {
                Err(Failed("down".into()))
            } else {
                Ok(Vec::new())
            }
        });
        assert_eq!(found.err(), Some(Failed("down".into())));
        assert_eq!(seen.len(), 2);
    }
}
