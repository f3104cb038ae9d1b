//! Writes that panic half-way are undone. A panic inside a write is a bug,
//! but the module turns it into an error reply and goes on serving, so the
//! index must not be left half-changed: a track half-inserted, postings of
//! some partitions merged and others not, a tombstone without its dead
//! range.
//!
//! The tracks are the truth and everything else is derived from them (the
//! ref map, the postings). Each write records, before it changes anything,
//! what it will do to the track list ([`Undo`]); when a panic unwinds
//! through it, the index takes the tracks as the panic left them, undoes
//! that one change, builds itself anew from the result (as an RDB load
//! does, in time linear in its frames) and lets the panic go on. Should the
//! rebuild itself fail, the index says so ([`Index::is_damaged`]) and the
//! module refuses the key until it is deleted.
//!
//! Only the track being written can be half-changed: other tracks are
//! moved (compaction, re-basing) but never altered, and `Vec::retain`
//! leaves every slot whole.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use super::{Index, IndexError, TrackId};

/// How to get the track list from before a write back from the one a
/// panic in it left.
#[derive(Debug, Default)]
pub(super) enum Undo {
    /// The write has not changed any track yet.
    #[default]
    Nothing,
    /// Drop the track `id` (an insert).
    Drop { id: TrackId },
    /// Cut the track `id` back to `len` frames (an append in place).
    Truncate { id: TrackId, len: usize },
    /// Put the track `id` back as it was (an append that moves the track, a
    /// remove): a copy taken before the write, paid for by a write that
    /// already costs time linear in the track.
    Restore {
        id: TrackId,
        descr: Box<[u8]>,
        hashes: Vec<u32>,
    },
}

/// A track as the rebuild takes it: id, description, hashes.
type OwnedTrack = (TrackId, Box<[u8]>, Vec<u32>);

impl Index {
    /// Runs `write`, which sets `undo` before each change of the track list;
    /// a panic in it rolls the index back (see the module docs) and unwinds on.
    pub(super) fn undoable<T>(
        &mut self,
        undo: Undo,
        write: impl FnOnce(&mut Index, &mut Undo) -> T,
    ) -> T {
        let next_id = self.next_id;
        let mut undo = undo;
        match catch_unwind(AssertUnwindSafe(|| write(self, &mut undo))) {
            Ok(done) => done,
            Err(panic) => {
                self.roll_back(undo, next_id);
                resume_unwind(panic)
            }
        }
    }

    /// Rebuilds the index from its tracks with `undo` undone and the id
    /// counter at `next_id`; marks it damaged unless that succeeds.
    fn roll_back(&mut self, undo: Undo, next_id: TrackId) {
        self.damaged = true;
        crate::fault_point!("roll back");
        let mut tracks: Vec<OwnedTrack> = std::mem::take(&mut self.slots)
            .into_iter()
            .filter(|s| s.id != 0)
            .map(|s| (s.id, s.descr, s.hashes))
            .collect();
        match undo {
            Undo::Nothing => {}
            Undo::Drop { id } => tracks.retain(|t| t.0 != id),
            Undo::Truncate { id, len } => {
                for t in tracks.iter_mut().filter(|t| t.0 == id) {
                    t.2.truncate(len);
                }
            }
            Undo::Restore { id, descr, hashes } => {
                tracks.retain(|t| t.0 != id);
                tracks.push((id, descr, hashes));
            }
        }
        let ref_limit = self.ref_limit;
        // The old postings go first: the peak holds one copy of them.
        *self = Index {
            ref_limit,
            damaged: true,
            ..Index::new()
        };
        if let Ok(rebuilt) = Index::from_owned_tracks(ref_limit, next_id, tracks) {
            *self = rebuilt;
        }
    }

    /// [`Index::from_tracks`] taking the tracks' vectors instead of copying them.
    fn from_owned_tracks(
        ref_limit: u32,
        next_id: TrackId,
        tracks: Vec<OwnedTrack>,
    ) -> Result<Index, IndexError> {
        let mut ix = Index {
            ref_limit,
            ..Index::new()
        };
        for (id, descr, hashes) in tracks {
            let id = ix.check_new(Some(id), hashes.len())?;
            let base = ix.reserve(hashes.len())?;
            ix.push_slot(id, base, &descr, hashes);
        }
        ix.set_next_id(next_id);
        ix.rebuild(false);
        Ok(ix)
    }

    /// Whether a write's roll back failed: the index may be inconsistent and
    /// must not be used (the module refuses the key until it is deleted).
    pub fn is_damaged(&self) -> bool {
        self.damaged
    }
}
