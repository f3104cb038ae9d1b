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
pub(super) fn verify(
    query: &[u32],
    track: &[u32],
    anchor_frame: usize,
    anchor_offset: i64,
) -> Option<Verified> {
    let blocks: Vec<&[u32]> = query.chunks(BLOCK).collect();
    let first = (anchor_frame / BLOCK).min(blocks.len().checked_sub(1)?);
    let start = |k: usize| (k * BLOCK) as i64;

    let anchor = fit(
        blocks.get(first)?,
        start(first),
        track,
        anchor_offset,
        ANCHOR_SEARCH,
    );
    let (mut errors, mut frames) = (anchor.errors, anchor.frames);
    let mut position = anchor.offset;

    let mut prev = anchor.offset;
    for (k, block) in blocks.iter().enumerate().skip(first + 1) {
        let f = fit(block, start(k), track, prev, STEP);
        (errors, frames, prev) = (errors + f.errors, frames + f.frames, f.offset);
    }
    prev = anchor.offset;
    for k in (0..first).rev() {
        let f = fit(blocks.get(k)?, start(k), track, prev, STEP);
        (errors, frames, prev) = (errors + f.errors, frames + f.frames, f.offset);
        position = f.offset;
    }
    (frames > 0).then_some(Verified {
        errors,
        frames,
        position,
    })
}

/// The best offset in `centre ± radius` for the block starting at query frame
/// `start`; ties go to the offset nearest the centre.
fn fit(block: &[u32], start: i64, track: &[u32], centre: i64, radius: i64) -> BlockFit {
    let mut best = BlockFit {
        errors: 0,
        frames: 0,
        offset: centre,
    };
    let mut best_cost = u64::MAX;
    for d in std::iter::once(0).chain((1..=radius).flat_map(|r| [-r, r])) {
        let offset = centre + d;
        let (errors, frames) = compare(block, start + offset, track);
        let cost = errors + OUTSIDE_COST * (block.len() as u64 - frames);
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

/// Bit errors and overlapping frames of `block` laid on `track` from track
/// frame `at` (which may be negative or past the end).
fn compare(block: &[u32], at: i64, track: &[u32]) -> (u64, u64) {
    let len = track.len() as i64;
    let lo = (-at).clamp(0, block.len() as i64);
    let hi = (len - at).clamp(lo, block.len() as i64);
    let (Some(q), Some(t)) = (
        block.get(lo as usize..hi as usize),
        track.get((lo + at) as usize..(hi + at).max(0) as usize),
    ) else {
        return (0, 0);
    };
    let errors = q
        .iter()
        .zip(t)
        .map(|(a, b)| u64::from((a ^ b).count_ones()))
        .sum();
    (errors, q.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_counts_only_overlap() {
        let track = [0u32, 0, 0, 0];
        let block = [u32::MAX, u32::MAX];
        assert_eq!(compare(&block, -1, &track), (32, 1));
        assert_eq!(compare(&block, 0, &track), (64, 2));
        assert_eq!(compare(&block, 3, &track), (32, 1));
        assert_eq!(compare(&block, 4, &track), (0, 0));
        assert_eq!(compare(&block, -5, &track), (0, 0));
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
