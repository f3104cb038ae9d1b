//! The value stored in a Redis key: one [`Index`] plus the bookkeeping that
//! keeps the server-wide INFO counters exact. Every change goes through here
//! so the counters cannot drift from the indexes they describe: a value is
//! counted when it is made (new key, RDB load, copy) and uncounted when it is
//! dropped (`free`, possibly on the lazy-free thread — atomics only).
//!
//! The index sits behind a read-write lock in an `Arc`: a lookup answered on
//! a module thread holds a clone and the read lock for the whole lookup, so
//! it sees one state of the index, and a key deleted, renamed, overwritten or
//! flushed meanwhile stays alive until the lookup is done. Every write runs
//! on the Redis main thread and takes the write lock, waiting for the
//! lookups under way on that key (a lookup never waits for the main thread,
//! so this cannot deadlock). While it waits, a flag tells those lookups to
//! give way (see `offload`): a write waits for about one batch of probes,
//! not for whole lookups. Reads on the main thread never wait: only the
//! main thread writes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use auscout_core::{Index, IndexError, TrackId};

use crate::{hugepages, stats};

/// An index and its lock, with the flag of a write waiting for it.
pub struct Locked {
    lock: RwLock<Index>,
    writer_waiting: AtomicBool,
}

impl Locked {
    /// Whether a write waits for the lookups holding the index.
    pub fn writer_waiting(&self) -> bool {
        self.writer_waiting.load(Ordering::Relaxed)
    }
}

/// An index shared between its key and the lookups under way on it.
pub type SharedIndex = Arc<Locked>;

/// The read lock of `shared` (waits while a write holds it or waits for it).
/// A panic while the write lock was held (a bug: the command's guard turned
/// it into an error reply) poisons the lock; the index rolled the write
/// back before the panic went on (or says it is damaged, and the commands
/// refuse it), so the lock's poison carries no news.
pub fn read(shared: &Locked) -> RwLockReadGuard<'_, Index> {
    shared.lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write(shared: &SharedIndex) -> RwLockWriteGuard<'_, Index> {
    hugepages::written(shared);
    shared.writer_waiting.store(true, Ordering::Relaxed);
    let guard = shared.lock.write().unwrap_or_else(|e| e.into_inner());
    shared.writer_waiting.store(false, Ordering::Relaxed);
    guard
}

fn signed(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub struct IndexValue {
    index: SharedIndex,
    /// Still counted in the INFO counters (see [`IndexValue::uncount`]).
    counted: bool,
}

impl IndexValue {
    /// Wraps a new or freshly loaded index and counts it.
    pub fn new(index: Index) -> Self {
        stats::index_added(index.track_count(), index.frame_count());
        let index = Arc::new(Locked {
            lock: RwLock::new(index),
            writer_waiting: AtomicBool::new(false),
        });
        hugepages::written(&index);
        Self {
            index,
            counted: true,
        }
    }

    /// Removes this value from the INFO counters now, ahead of a drop that
    /// happens later on another thread, so INFO never shows freed indexes.
    pub fn uncount(&mut self) {
        if std::mem::replace(&mut self.counted, false) {
            let index = self.index();
            stats::index_removed(index.track_count(), index.frame_count());
        }
    }

    /// The index, read-locked (never waits on the main thread).
    pub fn index(&self) -> RwLockReadGuard<'_, Index> {
        read(&self.index)
    }

    /// Whether a write's roll back failed (the index must not be used).
    pub fn is_damaged(&self) -> bool {
        self.index().is_damaged()
    }

    /// Another handle on the index, for a lookup on a module thread.
    pub fn shared(&self) -> SharedIndex {
        Arc::clone(&self.index)
    }

    pub fn insert(
        &mut self,
        id: Option<TrackId>,
        descr: &[u8],
        hashes: &[u32],
    ) -> Result<TrackId, IndexError> {
        let id = write(&self.index).insert(id, descr, hashes)?;
        stats::tracks_changed(1, signed(hashes.len() as u64));
        Ok(id)
    }

    pub fn append(&mut self, id: TrackId, hashes: &[u32]) -> Result<u64, IndexError> {
        let frames = write(&self.index).append(id, hashes)?;
        stats::tracks_changed(0, signed(hashes.len() as u64));
        Ok(frames)
    }

    pub fn remove(&mut self, id: TrackId) -> Result<u64, IndexError> {
        let frames = write(&self.index).remove(id)?;
        stats::tracks_changed(-1, -signed(frames));
        Ok(frames)
    }

    pub fn set_descr(&mut self, id: TrackId, descr: &[u8]) -> Result<(), IndexError> {
        write(&self.index).set_descr(id, descr)
    }

    pub fn set_next_id(&mut self, next: TrackId) {
        write(&self.index).set_next_id(next);
    }
}

impl Clone for IndexValue {
    /// A deep copy (the `COPY` command), counted as a new index.
    fn clone(&self) -> Self {
        Self::new(self.index().clone())
    }
}

impl Drop for IndexValue {
    fn drop(&mut self) {
        hugepages::dropped(&self.index);
        self.uncount();
    }
}
