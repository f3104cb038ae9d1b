//! RDB (and `DUMP`/`RESTORE`) encodings of an index, one decoder per layout.
//!
//! - [`ENCVER_LEGACY`] (0): what the C++ Redis-AudioScout module wrote under
//!   the same type name `AuScoutDS`: `u64` track count; per track `i64` id,
//!   `u64` frame count, then per stored frame `u64` hash and `i64` position.
//!   It stored a run of equal consecutive hashes once, so the sequence is
//!   rebuilt from the positions, a gap repeating the hash before it.
//! - [`ENCVER_COMPACT`] (1, current): `u64` next id, `u64` track count; per
//!   track `i64` id, string descr, and the whole hash sequence as ONE string
//!   (big-endian u32s, the wire format) instead of one opcode per frame.
//!
//! Every count read from a payload is bounded before anything is allocated
//! for it, and every short read is an error (the module sets
//! `HANDLE_IO_ERRORS`), so a forged `RESTORE` payload is refused, not fatal.

use auscout_core::index::MAX_ID;
use auscout_core::wire::{decode_u32_be, encode_u32_be, WireError};
use auscout_core::{Index, IndexError, TrackId};

pub const ENCVER_LEGACY: i32 = 0;
pub const ENCVER_COMPACT: i32 = 1;
/// The encoding `rdb_save` writes.
pub const ENCVER_CURRENT: i32 = ENCVER_COMPACT;

/// Longest track a legacy payload may describe (positions are frame numbers;
/// 2^24 frames is about 50 hours of audio at 93.75 frames/s). Bounds the
/// allocation a forged position could cause.
pub const LEGACY_MAX_FRAMES: u64 = 1 << 24;
/// Preallocation cap for counts read from a payload: larger counts are still
/// accepted, they just grow as the data actually arrives.
const PREALLOC_CAP: u64 = 1 << 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LoadError {
    #[error("short read or I/O error")]
    Io,
    #[error("unknown encoding version {0}")]
    UnknownVersion(i32),
    #[error("corrupt payload: {0}")]
    Corrupt(String),
    #[error("track {id}: {source}")]
    Index {
        id: TrackId,
        #[source]
        source: IndexError,
    },
    #[error("track {id}: bad hash sequence: {source}")]
    Wire {
        id: TrackId,
        #[source]
        source: WireError,
    },
}

/// What the decoders need from a `RedisModuleIO`; a trait so the decoders are
/// unit-tested without a server.
pub trait RdbRead {
    fn unsigned(&mut self) -> Result<u64, LoadError>;
    fn signed(&mut self) -> Result<i64, LoadError>;
    fn buffer(&mut self) -> Result<Vec<u8>, LoadError>;
}

/// What the encoder needs from a `RedisModuleIO`.
pub trait RdbWrite {
    fn unsigned(&mut self, v: u64);
    fn signed(&mut self, v: i64);
    fn buffer(&mut self, v: &[u8]);
}

/// Decodes one index written with encoding `encver`. `warn` receives notes
/// about data that was repaired rather than refused (legacy ids).
pub fn load(
    r: &mut dyn RdbRead,
    encver: i32,
    warn: &mut dyn FnMut(&str),
) -> Result<Index, LoadError> {
    match encver {
        ENCVER_LEGACY => load_legacy(r, warn),
        ENCVER_COMPACT => load_compact(r),
        other => Err(LoadError::UnknownVersion(other)),
    }
}

pub fn save(w: &mut dyn RdbWrite, index: &Index) {
    w.unsigned(u64::try_from(index.next_id()).unwrap_or(0));
    w.unsigned(index.track_count());
    for track in index.tracks_from(1) {
        w.signed(track.id);
        w.buffer(track.descr);
        w.buffer(&encode_u32_be(track.hashes));
    }
}

fn load_compact(r: &mut dyn RdbRead) -> Result<Index, LoadError> {
    let next_id = r.unsigned()?;
    let next_id = TrackId::try_from(next_id)
        .ok()
        .filter(|n| (1..=MAX_ID.saturating_add(1)).contains(n))
        .ok_or_else(|| LoadError::Corrupt(format!("next id {next_id} out of range")))?;
    let tracks = r.unsigned()?;
    let mut index = Index::new();
    for _ in 0..tracks {
        let id = r.signed()?;
        let descr = r.buffer()?;
        let bytes = r.buffer()?;
        let hashes = decode_u32_be(&bytes).map_err(|source| LoadError::Wire { id, source })?;
        index
            .insert(Some(id), &descr, &hashes)
            .map_err(|source| LoadError::Index { id, source })?;
    }
    index.set_next_id(next_id);
    Ok(index)
}

fn load_legacy(r: &mut dyn RdbRead, warn: &mut dyn FnMut(&str)) -> Result<Index, LoadError> {
    let tracks = r.unsigned()?;
    let mut loaded: Vec<(i64, Vec<u32>)> = Vec::with_capacity(tracks.min(PREALLOC_CAP) as usize);
    for _ in 0..tracks {
        let id = r.signed()?;
        let frames = r.unsigned()?;
        if frames > LEGACY_MAX_FRAMES {
            return Err(LoadError::Corrupt(format!("track {id}: {frames} frames")));
        }
        let mut stored = Vec::with_capacity(frames.min(PREALLOC_CAP) as usize);
        for _ in 0..frames {
            let hash = r.unsigned()?;
            let pos = r.signed()?;
            stored.push((hash, pos));
        }
        loaded.push((id, rebuild_sequence(id, stored)?));
    }

    // The C++ ids mix a millisecond clock into the high bits and are often
    // negative; valid ids are kept as they are, the others get fresh ids
    // above all kept ones (logged, so side-key descriptions can be remapped).
    let mut index = Index::new();
    let mut repaired = Vec::new();
    for (id, hashes) in loaded {
        if (1..=MAX_ID).contains(&id) {
            index
                .insert(Some(id), b"", &hashes)
                .map_err(|source| LoadError::Index { id, source })?;
        } else {
            repaired.push((id, hashes));
        }
    }
    for (old, hashes) in repaired {
        let new = index
            .insert(None, b"", &hashes)
            .map_err(|source| LoadError::Index { id: old, source })?;
        warn(&format!(
            "legacy track id {old} is not in 1..={MAX_ID}; loaded as id {new}"
        ));
    }
    Ok(index)
}

/// Rebuilds a legacy track's hash sequence from its stored `(hash, position)`
/// pairs: frame `p` takes the hash stored at `p`, or the one before it when a
/// run of repeats was stored once. The C++ module compared each hash with the
/// previous one starting from 0, so frames before the first stored position
/// were hashes equal to 0. (Repeats at the very end of a track were not
/// stored and cannot be recovered: the sequence ends at the last position.)
pub fn rebuild_sequence(id: TrackId, mut stored: Vec<(u64, i64)>) -> Result<Vec<u32>, LoadError> {
    if stored.is_empty() {
        return Err(LoadError::Corrupt(format!("track {id} has no frames")));
    }
    let mut last = 0u64;
    for &(hash, pos) in &stored {
        if u32::try_from(hash).is_err() {
            return Err(LoadError::Corrupt(format!(
                "track {id}: hash {hash} exceeds 32 bits"
            )));
        }
        let p = u64::try_from(pos)
            .ok()
            .filter(|p| *p < LEGACY_MAX_FRAMES)
            .ok_or_else(|| {
                LoadError::Corrupt(format!("track {id}: position {pos} out of range"))
            })?;
        last = last.max(p);
    }
    stored.sort_by_key(|&(_, pos)| pos);
    let len = usize::try_from(last + 1)
        .map_err(|_| LoadError::Corrupt(format!("track {id} too long")))?;
    let mut seq = Vec::with_capacity(len);
    let mut pairs = stored.iter().peekable();
    let mut current = 0u32;
    for frame in 0..len {
        while let Some(&&(hash, pos)) = pairs.peek() {
            if usize::try_from(pos).is_ok_and(|p| p <= frame) {
                current = hash as u32;
                pairs.next();
            } else {
                break;
            }
        }
        seq.push(current);
    }
    Ok(seq)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// An in-memory stream of RDB values (the opcodes' payloads).
    #[derive(Default)]
    struct Mem {
        vals: VecDeque<Val>,
    }
    enum Val {
        U(u64),
        S(i64),
        B(Vec<u8>),
    }
    impl RdbRead for Mem {
        fn unsigned(&mut self) -> Result<u64, LoadError> {
            match self.vals.pop_front() {
                Some(Val::U(v)) => Ok(v),
                _ => Err(LoadError::Io),
            }
        }
        fn signed(&mut self) -> Result<i64, LoadError> {
            match self.vals.pop_front() {
                Some(Val::S(v)) => Ok(v),
                _ => Err(LoadError::Io),
            }
        }
        fn buffer(&mut self) -> Result<Vec<u8>, LoadError> {
            match self.vals.pop_front() {
                Some(Val::B(v)) => Ok(v),
                _ => Err(LoadError::Io),
            }
        }
    }
    impl RdbWrite for Mem {
        fn unsigned(&mut self, v: u64) {
            self.vals.push_back(Val::U(v));
        }
        fn signed(&mut self, v: i64) {
            self.vals.push_back(Val::S(v));
        }
        fn buffer(&mut self, v: &[u8]) {
            self.vals.push_back(Val::B(v.to_vec()));
        }
    }

    #[test]
    fn compact_round_trip_keeps_tracks_and_next_id() {
        let mut index = Index::new();
        index.insert(None, b"one", &[1, 2, 3]).unwrap();
        index.insert(Some(7), b"", &[u32::MAX, 0]).unwrap();
        let gone = index.insert(None, b"gone", &[5]).unwrap();
        index.remove(gone).unwrap();
        let mut m = Mem::default();
        save(&mut m, &index);
        let loaded = load(&mut m, ENCVER_CURRENT, &mut |_| {}).unwrap();
        assert!(m.vals.is_empty(), "everything written is read back");
        let tracks = |i: &Index| -> Vec<(TrackId, Vec<u8>, Vec<u32>)> {
            i.tracks_from(1)
                .map(|t| (t.id, t.descr.to_vec(), t.hashes.to_vec()))
                .collect()
        };
        assert_eq!(tracks(&loaded), tracks(&index));
        assert_eq!(loaded.next_id(), gone + 1);
    }

    #[test]
    fn legacy_layout_loads_with_gaps_and_repaired_ids() {
        let mut m = Mem::default();
        m.vals.extend([
            Val::U(2),
            // id 9: frames 0..=3 stored as (4@0, 6@2)
            Val::S(9),
            Val::U(2),
            Val::U(4),
            Val::S(0),
            Val::U(6),
            Val::S(2),
            // a negative C++ id
            Val::S(-5),
            Val::U(1),
            Val::U(8),
            Val::S(0),
        ]);
        let mut notes = Vec::new();
        let index = load(&mut m, ENCVER_LEGACY, &mut |n| notes.push(n.to_owned())).unwrap();
        assert_eq!(
            index.track(9).map(|t| t.hashes.to_vec()),
            Some(vec![4, 4, 6])
        );
        assert_eq!(index.track(10).map(|t| t.hashes.to_vec()), Some(vec![8]));
        assert_eq!(notes.len(), 1);
    }

    #[test]
    fn rebuild_fills_gaps_with_previous_hash() {
        let seq = rebuild_sequence(1, vec![(7, 0), (9, 3), (8, 1)]).unwrap();
        assert_eq!(seq, vec![7, 8, 8, 9]);
    }

    #[test]
    fn rebuild_fills_leading_gap_with_zero_hashes() {
        // The C++ module skipped leading hashes equal to its initial "previous" 0.
        assert_eq!(
            rebuild_sequence(1, vec![(5, 2), (6, 3)]).unwrap(),
            vec![0, 0, 5, 6]
        );
    }

    #[test]
    fn rebuild_refuses_bad_positions_and_hashes() {
        assert!(rebuild_sequence(1, vec![(5, -1)]).is_err());
        assert!(rebuild_sequence(1, vec![(5, LEGACY_MAX_FRAMES as i64)]).is_err());
        assert!(rebuild_sequence(1, vec![(1 << 40, 0)]).is_err());
        assert!(rebuild_sequence(1, vec![]).is_err());
    }

    #[test]
    fn unknown_version_is_an_error() {
        let mut m = Mem::default();
        assert_eq!(
            load(&mut m, 9, &mut |_| {}).err(),
            Some(LoadError::UnknownVersion(9))
        );
    }

    #[test]
    fn legacy_count_over_bound_is_refused_before_reading_frames() {
        let mut m = Mem::default();
        m.vals
            .extend([Val::U(1), Val::S(5), Val::U(LEGACY_MAX_FRAMES + 1)]);
        assert!(matches!(
            load(&mut m, ENCVER_LEGACY, &mut |_| {}),
            Err(LoadError::Corrupt(_))
        ));
    }

    #[test]
    fn legacy_short_read_is_an_error() {
        let mut m = Mem::default();
        m.vals
            .extend([Val::U(2), Val::S(5), Val::U(1), Val::U(3), Val::S(0)]);
        assert_eq!(
            load(&mut m, ENCVER_LEGACY, &mut |_| {}).err(),
            Some(LoadError::Io)
        );
    }

    #[test]
    fn compact_short_read_is_an_error() {
        let mut m = Mem::default();
        m.vals.extend([Val::U(3), Val::U(1), Val::S(1)]);
        assert_eq!(
            load(&mut m, ENCVER_COMPACT, &mut |_| {}).err(),
            Some(LoadError::Io)
        );
    }

    #[test]
    fn compact_refuses_bad_hash_buffer() {
        let mut m = Mem::default();
        m.vals.extend([
            Val::U(3),
            Val::U(1),
            Val::S(1),
            Val::B(vec![]),
            Val::B(vec![1, 2, 3]),
        ]);
        assert!(matches!(
            load(&mut m, ENCVER_COMPACT, &mut |_| {}),
            Err(LoadError::Wire { .. })
        ));
    }
}
