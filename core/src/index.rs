//! The fingerprint index of one Redis key: tracks (id, description, hash
//! sequence) and the inverted index hash → (track, frame).
//!
//! SKELETON: the public API below is the contract the Redis glue (`src/`)
//! codes against. Bodies are filled in by the index work.

use crate::matcher::{self, LookupError, LookupParams, Match};

/// A track id: positive, unique within an index, never reused. Ids written by
/// the C++ module are large 64-bit values and are kept as they are.
pub type TrackId = i64;

/// Largest id accepted (explicit ids above it are refused).
pub const MAX_ID: TrackId = i64::MAX - 1;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IndexError {
    #[error("id {0} already exists")]
    IdExists(TrackId),
    #[error("no track with id {0}")]
    NoSuchTrack(TrackId),
    #[error("id must be an integer in 1..={max}", max = MAX_ID)]
    InvalidId,
    #[error("no ids left in this index")]
    IdsExhausted,
    #[error("empty hash array")]
    Empty,
    #[error("track too long: {0} frames")]
    TooLong(usize),
}

/// A read-only view of one track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackView<'a> {
    pub id: TrackId,
    pub descr: &'a [u8],
    /// The hash of every frame, as submitted (repeats included): position `k`
    /// of a match refers to `hashes[k]`.
    pub hashes: &'a [u32],
}

/// What `auscout.index` reports.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexStats {
    pub tracks: u64,
    pub frames: u64,
    pub distinct_hashes: u64,
    pub postings: u64,
    pub longest_posting: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Index {
    // filled in by the index work
}

impl Index {
    pub fn new() -> Self {
        todo!()
    }

    /// Adds a track. `id = None` takes the next free id; an explicit id that
    /// exists is an error and changes nothing. Returns the id.
    pub fn insert(&mut self, id: Option<TrackId>, descr: &[u8], hashes: &[u32]) -> Result<TrackId, IndexError> {
        let _ = (id, descr, hashes);
        todo!()
    }

    /// Appends frames to an existing track (AOF rewrite emits big tracks in
    /// chunks). Returns the track's frame count afterwards.
    pub fn append(&mut self, id: TrackId, hashes: &[u32]) -> Result<u64, IndexError> {
        let _ = (id, hashes);
        todo!()
    }

    /// Removes a track; returns the number of frames it had.
    pub fn remove(&mut self, id: TrackId) -> Result<u64, IndexError> {
        let _ = id;
        todo!()
    }

    /// Replaces a track's description (the legacy side-key import uses it).
    pub fn set_descr(&mut self, id: TrackId, descr: &[u8]) -> Result<(), IndexError> {
        let _ = (id, descr);
        todo!()
    }

    pub fn track(&self, id: TrackId) -> Option<TrackView<'_>> {
        let _ = id;
        todo!()
    }

    /// Tracks with `id >= from`, in ascending id order (for paging and for
    /// deterministic persistence, digest and AOF rewrite).
    pub fn tracks_from(&self, from: TrackId) -> Box<dyn Iterator<Item = TrackView<'_>> + '_> {
        let _ = from;
        todo!()
    }

    pub fn track_count(&self) -> u64 {
        todo!()
    }

    /// Frames over all tracks, repeats included (what `auscout.size` says).
    pub fn frame_count(&self) -> u64 {
        todo!()
    }

    /// The id the next `insert(None, ..)` takes; never decreases.
    pub fn next_id(&self) -> TrackId {
        todo!()
    }

    /// Restores the id counter after loading (takes the max with the current).
    pub fn set_next_id(&mut self, next: TrackId) {
        let _ = next;
        todo!()
    }

    /// Bytes owned by this index (for `MEMORY USAGE` and `mem_usage`).
    pub fn mem_usage(&self) -> usize {
        todo!()
    }

    pub fn stats(&self) -> IndexStats {
        todo!()
    }

    /// Time-aligned lookup (DESIGN §4): every track scoring ≥ threshold, best first.
    pub fn lookup(&self, query: &[u32], toggles: &[u32], params: &LookupParams) -> Result<Vec<Match>, LookupError> {
        let _ = (query, toggles, params, matcher::lookup_placeholder);
        todo!()
    }
}
