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

/// The query as verification reads it, prepared once per lookup.
///
/// Only *informative* query frames are compared: a frame equal to the query
/// frame before it adds no evidence (digital silence is one hash repeated,
/// and would otherwise "match" every silent stretch of every track perfectly).
/// `mask[i]` is all ones for an informative frame and 0 otherwise, so the
/// comparison loop stays branch-free; `prefix[i]` counts informative frames
/// before `i`.
pub(super) struct Query<'a> {
    hashes: &'a [u32],
    mask: Vec<u32>,
    prefix: Vec<u32>,
}

impl<'a> Query<'a> {
    pub(super) fn new(hashes: &'a [u32]) -> Self {
        let mut mask = Vec::with_capacity(hashes.len());
        let mut prefix = Vec::with_capacity(hashes.len() + 1);
        let mut count = 0u32;
        let mut prev = None;
        for &h in hashes {
            prefix.push(count);
            let informative = prev != Some(h);
            mask.push(if informative { u32::MAX } else { 0 });
            count += u32::from(informative);
            prev = Some(h);
        }
        prefix.push(count);
        Query {
            hashes,
            mask,
            prefix,
        }
    }

    fn informative(&self, lo: usize, hi: usize) -> u64 {
        let at = |i: usize| u64::from(self.prefix.get(i).copied().unwrap_or(0));
        at(hi).saturating_sub(at(lo))
    }
}

/// Verifies the query against `track`, starting at the block holding
/// `anchor_frame` near `anchor_offset`. `None` when no frame overlaps.
pub(super) fn verify(
    query: &Query<'_>,
    track: &[u32],
    anchor_frame: usize,
    anchor_offset: i64,
) -> Option<Verified> {
    let len = query.hashes.len();
    let blocks = len.div_ceil(BLOCK);
    let first = (anchor_frame / BLOCK).min(blocks.checked_sub(1)?);
    let block = |k: usize| Block {
        query,
        start: k * BLOCK,
        end: ((k + 1) * BLOCK).min(len),
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

/// Prefetches the frames of `track` that verifying a query of `len` frames
/// near `offset` will read (drift included, clamped to the track).
pub(super) fn prefetch_span(track: &[u32], len: usize, offset: i64) {
    // Slack for the anchor search and for drift of up to 1 frame per block.
    let slack = ANCHOR_SEARCH + (len / BLOCK) as i64 * STEP + 1;
    let lo = (offset - slack).clamp(0, track.len() as i64) as usize;
    let hi = (offset + len as i64 + slack).clamp(0, track.len() as i64) as usize;
    // One prefetch per 64-byte line (16 frames).
    for i in (lo..hi).step_by(16) {
        crate::prefetch::prefetch(track.as_ptr().wrapping_add(i));
    }
}

/// Query frames `start..end`.
struct Block<'a, 'q> {
    query: &'a Query<'q>,
    start: usize,
    end: usize,
}

impl Block<'_, '_> {
    /// The best offset in `centre ± radius`; ties go to the offset nearest
    /// the centre.
    fn fit(&self, track: &[u32], centre: i64, radius: i64) -> BlockFit {
        let informative = self.query.informative(self.start, self.end);
        let mut best = BlockFit {
            errors: 0,
            frames: 0,
            offset: centre,
        };
        let mut best_cost = u64::MAX;
        for d in std::iter::once(0).chain((1..=radius).flat_map(|r| [-r, r])) {
            let offset = centre + d;
            let (errors, frames) = self.compare(track, offset);
            let cost = errors + OUTSIDE_COST * informative.saturating_sub(frames);
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

    /// Bit errors and informative overlapping frames with query frame `i`
    /// laid on track frame `i + offset` (which may be negative or past the end).
    fn compare(&self, track: &[u32], offset: i64) -> (u64, u64) {
        let lo = (self.start as i64).max(-offset);
        let hi = (self.end as i64).min(track.len() as i64 - offset);
        if hi <= lo {
            return (0, 0);
        }
        let (lo, hi) = (lo as usize, hi as usize);
        let (Some(q), Some(m), Some(t)) = (
            self.query.hashes.get(lo..hi),
            self.query.mask.get(lo..hi),
            track.get((lo as i64 + offset) as usize..(hi as i64 + offset) as usize),
        ) else {
            return (0, 0);
        };
        let errors: u32 = q
            .iter()
            .zip(m)
            .zip(t)
            .map(|((&h, &m), &th)| ((h ^ th) & m).count_ones())
            .sum();
        (u64::from(errors), self.query.informative(lo, hi))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_counts_only_overlap() {
        let track = [0u32, 0, 0, 0];
        let hashes = [u32::MAX, 1];
        let query = Query::new(&hashes);
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
        let v = verify(&Query::new(&silence), &track, 0, 0).expect("overlap");
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
        let v = verify(&Query::new(&query), &track, 10, 0).expect("overlap");
        assert_eq!(v.position, 0);
        assert_eq!(v.frames, 150);
        // Only the block straddling the dropped frame can pay any errors.
        assert!(v.errors <= 32 * 16, "errors {}", v.errors);
    }
}
