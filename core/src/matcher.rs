//! Time-aligned voting and bit-error-rate verification (DESIGN §4).
//!
//! SKELETON: the public types below are the contract; bodies are filled in by
//! the matcher work.

use crate::index::TrackId;

/// Options of one lookup.
#[derive(Debug, Clone, PartialEq)]
pub struct LookupParams {
    /// Minimum score in [0, 1].
    pub threshold: f64,
    /// At most this many matches are returned.
    pub limit: usize,
    /// Toggle masks with more set bits than this are an error.
    pub max_toggle_bits: u32,
}

/// One matching track.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    pub id: TrackId,
    /// Frame of the track aligned with the query's first frame (may be
    /// negative when the query starts before the track).
    pub position: i64,
    /// 0 for chance, 1 for identical.
    pub score: f64,
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

#[doc(hidden)]
pub fn lookup_placeholder() {}
