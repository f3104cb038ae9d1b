//! Step 2 of a lookup: bit-error-rate verification of one candidate.
//!
//! The whole query is compared with the track's hash sequence, block by block.
//! A clip played 2% fast drifts ~1.3 frames per 64-frame block (19 frames over
//! a 10 s clip), so no single offset fits a whole long clip; each block takes
//! the best offset within [`STEP`] of its neighbour's, starting from the block
//! where the votes agreed and walking outwards in both directions.

/// Frames per verification block.
pub(super) const BLOCK: usize = 32;
/// How far a block's offset may move from its neighbour's.
const STEP: i64 = 1;
/// How far the first block searches around the voted offset: a vote bin is
/// [`super::vote::BIN_WIDTH`] wide and its mean can sit between two offsets.
const ANCHOR_SEARCH: i64 = super::vote::BIN_WIDTH - 1;
/// Cost of a query frame that falls outside the track: what chance gives (half
/// of 32 bits wrong), so an alignment cannot win by hanging off the edge.
const OUTSIDE_COST: u64 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Verified {
    /// Differing bits over the compared frames.
    pub errors: u64,
    /// Query frames that overlapped the track.
    pub frames: u64,
    /// Track frame aligned with query frame 0 (the first block's offset).
    pub position: i64,
}

#[derive(Debug, Clone, Copy)]
struct BlockFit {
    errors: u64,
    frames: u64,
    offset: i64,
}

/// Verifies `query` against `track`, starting at the block holding
/// `anchor_frame` near `anchor_offset`. `None` when no frame overlaps.
///
/// Only *informative* query frames are compared: a frame equal to the query
/// frame before it adds no evidence (digital silence is one hash repeated,
/// and would otherwise "match" every silent stretch of every track perfectly).
pub(super) fn verify(
    query: &[u32],
    track: &[u32],
    anchor_frame: usize,
    anchor_offset: i64,
) -> Option<Verified> {
    let blocks = query.len().div_ceil(BLOCK);
    let first = (anchor_frame / BLOCK).min(blocks.checked_sub(1)?);
    let block = |k: usize| Block {
        query,
        start: k * BLOCK,
        end: ((k + 1) * BLOCK).min(query.len()),
    };

    let anchor = block(first).fit(track, anchor_offset, ANCHOR_SEARCH);
    let (mut errors, mut frames) = (anchor.errors, anchor.frames);
    let mut position = anchor.offset;

    let mut prev = anchor.offset;
    for k in first + 1..blocks {
        let f = block(k).fit(track, prev, STEP);
        (errors, frames, prev) = (errors + f.errors, frames + f.frames, f.offset);
    }
    prev = anchor.offset;
    for k in (0..first).rev() {
        let f = block(k).fit(track, prev, STEP);
        (errors, frames, prev) = (errors + f.errors, frames + f.frames, f.offset);
        position = f.offset;
    }
    (frames > 0).then_some(Verified {
        errors,
        frames,
        position,
    })
}

/// Query frames `start..end`.
struct Block<'a> {
    query: &'a [u32],
    start: usize,
    end: usize,
}

impl Block<'_> {
    /// The best offset in `centre ± radius`; ties go to the offset nearest
    /// the centre.
    fn fit(&self, track: &[u32], centre: i64, radius: i64) -> BlockFit {
        let informative = self.informative();
        let mut best = BlockFit {
            errors: 0,
            frames: 0,
            offset: centre,
        };
        let mut best_cost = u64::MAX;
        for d in std::iter::once(0).chain((1..=radius).flat_map(|r| [-r, r])) {
            let offset = centre + d;
            let (errors, frames) = self.compare(track, offset);
            let cost = errors + OUTSIDE_COST * (informative - frames);
            if cost < best_cost {
                best_cost = cost;
                best = BlockFit {
                    errors,
                    frames,
                    offset,
                };
            }
        }
        best
    }

    /// Informative frames of the block: those that differ from the query
    /// frame before them.
    fn informative(&self) -> u64 {
        self.compare_range(&[], 0, true).1
    }

    /// Bit errors and informative overlapping frames with query frame `i`
    /// laid on track frame `i + offset` (which may be negative or past the end).
    fn compare(&self, track: &[u32], offset: i64) -> (u64, u64) {
        self.compare_range(track, offset, false)
    }

    /// With `count_all`, counts every informative frame of the block as
    /// overlapping (errors are then meaningless): the block's total.
    fn compare_range(&self, track: &[u32], offset: i64, count_all: bool) -> (u64, u64) {
        let (mut lo, mut hi) = (self.start as i64, self.end as i64);
        if !count_all {
            lo = lo.max(-offset);
            hi = hi.min(track.len() as i64 - offset);
        }
        if hi <= lo {
            return (0, 0);
        }
        let (lo, hi) = (lo as usize, hi as usize);
        let Some(q) = self.query.get(lo..hi) else {
            return (0, 0);
        };
        // The frame before each compared one (none before the query's first).
        let before = lo.checked_sub(1).and_then(|b| self.query.get(b)).copied();
        let prevs = std::iter::once(before).chain(q.iter().map(|&h| Some(h)));
        if count_all {
            return (
                0,
                q.iter().zip(prevs).filter(|(h, p)| Some(**h) != *p).count() as u64,
            );
        }
        let Some(t) = track.get((lo as i64 + offset) as usize..(hi as i64 + offset) as usize)
        else {
            return (0, 0);
        };
        let (mut errors, mut frames) = (0u64, 0u64);
        for ((&h, p), &th) in q.iter().zip(prevs).zip(t) {
            if Some(h) != p {
                errors += u64::from((h ^ th).count_ones());
                frames += 1;
            }
        }
        (errors, frames)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_counts_only_overlap() {
        let track = [0u32, 0, 0, 0];
        let query = [u32::MAX, 1];
        let b = Block {
            query: &query,
            start: 0,
            end: 2,
        };
        assert_eq!(b.compare(&track, -1), (1, 1));
        assert_eq!(b.compare(&track, 0), (33, 2));
        assert_eq!(b.compare(&track, 3), (32, 1));
        assert_eq!(b.compare(&track, 4), (0, 0));
        assert_eq!(b.compare(&track, -5), (0, 0));
    }

    #[test]
    fn repeated_query_frames_are_not_evidence() {
        let track = [7u32; 100];
        let silence = [7u32; 100];
        let v = verify(&silence, &track, 0, 0).expect("overlap");
        assert_eq!((v.errors, v.frames), (0, 1));
    }

    #[test]
    fn verify_follows_a_dropped_frame() {
        // Track 0..200 (distinct hashes); the query skips frame 100.
        let track: Vec<u32> = (0..200u32).map(|i| i.wrapping_mul(0x9E37_79B9)).collect();
        let query: Vec<u32> = track
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 100)
            .map(|(_, h)| *h)
            .take(150)
            .collect();
        let v = verify(&query, &track, 10, 0).expect("overlap");
        assert_eq!(v.position, 0);
        assert_eq!(v.frames, 150);
        // Only the block straddling the dropped frame can pay any errors.
        assert!(v.errors <= 32 * 16, "errors {}", v.errors);
    }
}
