//! Server-wide counters for the `auscout` INFO section. Plain atomics: they are
//! updated on every write and by `free`, which may run on Redis' lazy-free
//! thread.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

static INDEXES: AtomicI64 = AtomicI64::new(0);
static TRACKS: AtomicI64 = AtomicI64::new(0);
static FRAMES: AtomicI64 = AtomicI64::new(0);
static LOOKUPS: AtomicU64 = AtomicU64::new(0);
static LOOKUP_MICROS: AtomicU64 = AtomicU64::new(0);

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// An index came into being (new key, RDB load, copy).
pub fn index_added(tracks: u64, frames: u64) {
    INDEXES.fetch_add(1, Ordering::Relaxed);
    tracks_changed(to_i64(tracks), to_i64(frames));
}

/// An index went away with what it still held.
pub fn index_removed(tracks: u64, frames: u64) {
    INDEXES.fetch_sub(1, Ordering::Relaxed);
    tracks_changed(-to_i64(tracks), -to_i64(frames));
}

/// Tracks or frames were added (positive) or removed (negative) in a live index.
pub fn tracks_changed(tracks: i64, frames: i64) {
    TRACKS.fetch_add(tracks, Ordering::Relaxed);
    FRAMES.fetch_add(frames, Ordering::Relaxed);
}

pub fn lookup_served(micros: u64) {
    LOOKUPS.fetch_add(1, Ordering::Relaxed);
    LOOKUP_MICROS.fetch_add(micros, Ordering::Relaxed);
}

#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    pub indexes: i64,
    pub tracks: i64,
    pub frames: i64,
    pub lookups: u64,
    pub lookup_micros: u64,
}

pub fn snapshot() -> Snapshot {
    Snapshot {
        indexes: INDEXES.load(Ordering::Relaxed),
        tracks: TRACKS.load(Ordering::Relaxed),
        frames: FRAMES.load(Ordering::Relaxed),
        lookups: LOOKUPS.load(Ordering::Relaxed),
        lookup_micros: LOOKUP_MICROS.load(Ordering::Relaxed),
    }
}
