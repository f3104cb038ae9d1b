//! The value stored in a Redis key: one [`Index`] plus the bookkeeping that
//! keeps the server-wide INFO counters exact. Every change goes through here
//! so the counters cannot drift from the indexes they describe: a value is
//! counted when it is made (new key, RDB load, copy) and uncounted when it is
//! dropped (`free`, possibly on the lazy-free thread — atomics only).

use auscout_core::{Index, IndexError, TrackId};

use crate::stats;

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub struct IndexValue {
    index: Index,
    /// Still counted in the INFO counters (see [`IndexValue::uncount`]).
    counted: bool,
}

impl IndexValue {
    /// Wraps a new or freshly loaded index and counts it.
    pub fn new(index: Index) -> Self {
        stats::index_added(index.track_count(), index.frame_count());
        Self {
            index,
            counted: true,
        }
    }

    /// Removes this value from the INFO counters now, ahead of a drop that
    /// happens later on another thread, so INFO never shows freed indexes.
    pub fn uncount(&mut self) {
        if std::mem::replace(&mut self.counted, false) {
            stats::index_removed(self.index.track_count(), self.index.frame_count());
        }
    }

    pub fn index(&self) -> &Index {
        &self.index
    }

    pub fn insert(
        &mut self,
        id: Option<TrackId>,
        descr: &[u8],
        hashes: &[u32],
    ) -> Result<TrackId, IndexError> {
        let id = self.index.insert(id, descr, hashes)?;
        stats::tracks_changed(1, signed(hashes.len() as u64));
        Ok(id)
    }

    pub fn append(&mut self, id: TrackId, hashes: &[u32]) -> Result<u64, IndexError> {
        let frames = self.index.append(id, hashes)?;
        stats::tracks_changed(0, signed(hashes.len() as u64));
        Ok(frames)
    }

    pub fn remove(&mut self, id: TrackId) -> Result<u64, IndexError> {
        let frames = self.index.remove(id)?;
        stats::tracks_changed(-1, -signed(frames));
        Ok(frames)
    }

    pub fn set_descr(&mut self, id: TrackId, descr: &[u8]) -> Result<(), IndexError> {
        self.index.set_descr(id, descr)
    }

    pub fn set_next_id(&mut self, next: TrackId) {
        self.index.set_next_id(next);
    }
}

impl Clone for IndexValue {
    /// A deep copy (the `COPY` command), counted as a new index.
    fn clone(&self) -> Self {
        Self::new(self.index.clone())
    }
}

impl Drop for IndexValue {
    fn drop(&mut self) {
        self.uncount();
    }
}
