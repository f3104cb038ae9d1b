//! The fingerprint index of one Redis key: tracks (id, description, hash
//! sequence) and the inverted index hash → (track, frame).
//!
//! Memory: 4 bytes per frame for the hash sequences (the matcher verifies
//! against them) plus about 7.7 bytes per posting with its share of
//! directory and delta (see `postings`); one posting per run of equal
//! consecutive hashes. Measured: 11.77 bytes per frame at 40M random frames, and
//! `mem_usage` within 1.2% of the RSS growth (`cargo bench --bench index`).
//!
//! Each track owns a range of *global refs* `base .. base + frames`; a posting
//! is the `u32` ref of its frame. Bases are handed out in increasing order, so
//! the slots (tracks in base order) map a ref back to its track (a binary
//! search among the few slots `ref_map` leaves). A removed track leaves a tombstone slot and a dead ref range whose
//! postings merges purge later. Only the last track can grow in place
//! (`append`); another one moves to a fresh range.
//!
//! Pauses: inserts, appends and removes do work proportional to their frames
//! plus an amortised share of partition merges, which also split partitions
//! and resize their directories as the index grows or shrinks (see
//! `postings`): no change of size rebuilds the whole index. Building 40M
//! frames by 20,000-frame inserts, the worst insert takes about 10 ms in
//! process and 20–50 ms through the server bench (before, the rebuild at
//! 16.8M frames held the server about 1 s, and one at 67M would have taken
//! about four times that). One event still rebuilds the postings of the whole
//! index at once, in time linear in its frames: the 2^32 refs are used up
//! (after ~4G frames inserted since the last re-base) and all live tracks
//! are re-based. `Index::from_tracks` (RDB load) builds once, with no merges.

mod dir_entry;
mod heap_blocks;
mod memsize;
mod postings;
mod ref_lookup;
mod ref_map;
mod rollback;
mod runs;

use std::collections::BTreeMap;

use crate::prefetch::prefetch;
use memsize::alloc_size;
use postings::{addr_bits_for, mix, Postings};
use ref_lookup::{hashes_at, resolve_in};
use ref_map::RefMap;
use rollback::Undo;
use runs::{count_runs, postings_of, run_starts};

/// A track id: positive, unique within an index, never reused. Ids written by
/// the C++ module are large 64-bit values and are kept as they are.
pub type TrackId = i64;

/// Largest id accepted (explicit ids above it are refused).
pub const MAX_ID: TrackId = i64::MAX - 1;

/// Longest track accepted, in frames (2^26 ≈ 67M frames ≈ 8 days of audio at
/// 10.67 ms per frame). Positions must fit in `u32` with room to spare.
pub const MAX_TRACK_FRAMES: usize = 1 << 26;

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

/// A track slot; a removed track leaves a tombstone (`id == 0`, no hashes)
/// until the slots are compacted.
#[derive(Debug, Clone)]
struct Slot {
    id: TrackId,
    base: u32,
    descr: Box<[u8]>,
    hashes: Vec<u32>,
}

/// Refs at or above this are never handed out (`u32::MAX` marks an empty
/// delta slot).
const REF_LIMIT: u32 = u32::MAX - 1;

#[derive(Debug, Clone)]
pub struct Index {
    /// Tracks in increasing `base` order (tombstones included).
    slots: Vec<Slot>,
    /// Finds the slot of a ref (kept in step with `slots` and `next_base`).
    ref_map: RefMap,
    tombstones: usize,
    by_id: BTreeMap<TrackId, u32>,
    /// The first ref of the next track.
    next_base: u32,
    /// Refs stay below this (`REF_LIMIT`; smaller in tests, to exercise re-basing).
    ref_limit: u32,
    postings: Postings,
    frames: u64,
    next_id: TrackId,
    /// A write panicked and its roll back failed (see `rollback`).
    damaged: bool,
    /// Whole-postings rebuilds since creation (tests: growth never causes one).
    #[cfg(test)]
    rebuilds: u32,
}

impl Default for Index {
    fn default() -> Self {
        Self::new()
    }
}

impl Index {
    pub fn new() -> Self {
        Index {
            slots: Vec::new(),
            ref_map: RefMap::default(),
            tombstones: 0,
            by_id: BTreeMap::new(),
            next_base: 0,
            ref_limit: REF_LIMIT,
            postings: Postings::default(),
            frames: 0,
            next_id: 1,
            damaged: false,
            #[cfg(test)]
            rebuilds: 0,
        }
    }

    /// Builds an index from whole tracks at once (RDB load): one bulk build of
    /// the postings instead of many merges. Fails like the first failing
    /// `insert` would (duplicate id, empty or too long track).
    pub fn from_tracks<'a>(
        next_id: TrackId,
        tracks: impl IntoIterator<Item = (Option<TrackId>, &'a [u8], &'a [u32])>,
    ) -> Result<Self, IndexError> {
        let mut ix = Index::new();
        for (id, descr, hashes) in tracks {
            let id = ix.check_new(id, hashes.len())?;
            let base = ix.reserve(hashes.len())?;
            ix.push_slot(id, base, descr, hashes.to_vec());
        }
        ix.set_next_id(next_id);
        ix.rebuild(false);
        Ok(ix)
    }

    /// An empty index whose refs stay below `limit` (tests of re-basing).
    #[cfg(test)]
    fn with_ref_limit(limit: u32) -> Self {
        Index {
            ref_limit: limit.min(REF_LIMIT),
            ..Index::new()
        }
    }

    /// Checks the internal invariants (tests only).
    #[cfg(test)]
    fn check(&self) {
        self.postings
            .check(&|refs, out| hashes_at(&self.slots, refs, out));
        assert!(self.next_base <= self.ref_limit);
        let mut prev_end = 0u32;
        for (k, s) in self.slots.iter().enumerate() {
            assert!(s.base >= prev_end, "ref ranges overlap");
            prev_end = s.base + s.hashes.len() as u32;
            if s.id != 0 {
                assert_eq!(self.by_id.get(&s.id), Some(&(k as u32)));
            }
        }
        assert!(prev_end <= self.next_base);
        let bases = self.slots.iter().map(|s| s.base);
        assert_eq!(self.ref_map, RefMap::new(bases, self.next_base));
        assert_eq!(self.by_id.len() + self.tombstones, self.slots.len());
        let frames: u64 = self.slots.iter().map(|s| s.hashes.len() as u64).sum();
        assert_eq!(frames, self.frames);
        let postings: u64 = self.slots.iter().map(|s| count_runs(&s.hashes)).sum();
        assert_eq!(postings, self.postings.live());
    }

    /// Validates a new track: its id (or the next auto id) and its length.
    fn check_new(&self, id: Option<TrackId>, len: usize) -> Result<TrackId, IndexError> {
        if len == 0 {
            return Err(IndexError::Empty);
        }
        if len > MAX_TRACK_FRAMES {
            return Err(IndexError::TooLong(len));
        }
        match id {
            Some(id) if !(1..=MAX_ID).contains(&id) => Err(IndexError::InvalidId),
            Some(id) if self.by_id.contains_key(&id) => Err(IndexError::IdExists(id)),
            Some(id) => Ok(id),
            None if self.next_id > MAX_ID => Err(IndexError::IdsExhausted),
            None => Ok(self.next_id),
        }
    }

    /// A fresh ref range of `len` refs, re-basing every live track first when
    /// the ref space is used up. `TooLong` when even that leaves no room (the
    /// live frames of one index nearly fill 2^32).
    fn reserve(&mut self, len: usize) -> Result<u32, IndexError> {
        if ((self.ref_limit - self.next_base) as usize) < len {
            let live = self.frames;
            if live.saturating_add(len as u64) >= u64::from(self.ref_limit) {
                return Err(IndexError::TooLong(len));
            }
            self.rebuild(true);
        }
        let base = self.next_base;
        self.next_base += len as u32;
        Ok(base)
    }

    fn push_slot(&mut self, id: TrackId, base: u32, descr: &[u8], hashes: Vec<u32>) {
        self.next_id = self.next_id.max(id.saturating_add(1));
        self.frames += hashes.len() as u64;
        self.by_id.insert(id, self.slots.len() as u32);
        self.slots.push(Slot {
            id,
            base,
            descr: descr.into(),
            hashes,
        });
        self.ref_map
            .push(base, self.slots.len() as u32, self.next_base);
    }

    /// Adds a track. `id = None` takes the next free id; an explicit id that
    /// exists is an error and changes nothing. Returns the id. Like every
    /// write, a panic half-way leaves the index as it was (see `rollback`).
    pub fn insert(
        &mut self,
        id: Option<TrackId>,
        descr: &[u8],
        hashes: &[u32],
    ) -> Result<TrackId, IndexError> {
        let id = self.check_new(id, hashes.len())?;
        self.undoable(Undo::Drop { id }, |ix, _| {
            let base = ix.reserve(hashes.len())?;
            let entries = postings_of(None, hashes, base);
            // The track is in place before its postings: merges may look up
            // the hashes of any live ref.
            ix.push_slot(id, base, descr, hashes.to_vec());
            crate::fault_point!("insert: track in place, no postings yet");
            ix.add_postings(&entries);
            Ok(id)
        })
    }

    /// Appends frames to an existing track (AOF rewrite emits big tracks in
    /// chunks). Returns the track's frame count afterwards.
    pub fn append(&mut self, id: TrackId, hashes: &[u32]) -> Result<u64, IndexError> {
        self.undoable(Undo::Nothing, |ix, undo| ix.append_steps(id, hashes, undo))
    }

    fn append_steps(
        &mut self,
        id: TrackId,
        hashes: &[u32],
        undo: &mut Undo,
    ) -> Result<u64, IndexError> {
        let s = self.slot_of(id)?;
        let Some(slot) = self.slots.get(s) else {
            return Err(IndexError::NoSuchTrack(id));
        };
        let old_len = slot.hashes.len();
        let total = old_len.saturating_add(hashes.len());
        if total > MAX_TRACK_FRAMES {
            return Err(IndexError::TooLong(total));
        }
        if hashes.is_empty() {
            return Ok(total as u64);
        }
        let at_top = slot.base as usize + old_len == self.next_base as usize;
        if at_top && (self.ref_limit - self.next_base) as usize >= hashes.len() {
            // The last range grows in place: only the new frames get postings.
            *undo = Undo::Truncate { id, len: old_len };
            let base = slot.base;
            let prev = slot.hashes.last().copied();
            self.next_base += hashes.len() as u32;
            self.ref_map.cover(self.next_base, self.slots.len() as u32);
            if let Some(slot) = self.slots.get_mut(s) {
                slot.hashes.extend_from_slice(hashes);
            }
            self.frames += hashes.len() as u64;
            crate::fault_point!("append: frames in place, no postings yet");
            self.add_postings(&postings_of(prev, hashes, base + old_len as u32));
        } else {
            // Move the track to a fresh range at the top.
            *undo = Undo::Restore {
                id,
                descr: slot.descr.clone(),
                hashes: slot.hashes.clone(),
            };
            let (descr, mut all) = self.retire(id, s);
            crate::fault_point!("append: track retired, not yet moved");
            all.extend_from_slice(hashes);
            let base = self.reserve(all.len())?;
            let entries = postings_of(None, &all, base);
            self.push_slot(id, base, &descr, all);
            self.add_postings(&entries);
        }
        Ok(total as u64)
    }

    /// Adds postings (see `postings_of`) of frames already in their
    /// tracks, then does the merge work they pay for.
    fn add_postings(&mut self, entries: &[u64]) {
        let slots = &self.slots;
        let hashes_of = |refs: &[u32], out: &mut Vec<u64>| hashes_at(slots, refs, out);
        self.postings.add(entries, &hashes_of);
        crate::fault_point!("postings added, merges not yet done");
        self.postings.work(entries.len() as u64, &hashes_of);
    }

    /// Removes a track; returns the number of frames it had.
    pub fn remove(&mut self, id: TrackId) -> Result<u64, IndexError> {
        self.undoable(Undo::Nothing, |ix, undo| {
            let s = ix.slot_of(id)?;
            if let Some(slot) = ix.slots.get(s) {
                *undo = Undo::Restore {
                    id,
                    descr: slot.descr.clone(),
                    hashes: slot.hashes.clone(),
                };
            }
            let (_, hashes) = ix.retire(id, s);
            crate::fault_point!("remove: track retired, merges not yet done");
            let slots = &ix.slots;
            ix.postings
                .work(0, &|refs, out| hashes_at(slots, refs, out));
            Ok(hashes.len() as u64)
        })
    }

    /// Turns slot `s` (track `id`) into a tombstone, its refs dead; returns
    /// its description and hashes.
    fn retire(&mut self, id: TrackId, s: usize) -> (Box<[u8]>, Vec<u32>) {
        self.by_id.remove(&id);
        let Some(slot) = self.slots.get_mut(s) else {
            return Default::default();
        };
        let hashes = std::mem::take(&mut slot.hashes);
        let descr = std::mem::take(&mut slot.descr);
        slot.id = 0;
        let len = hashes.len();
        self.postings
            .kill(slot.base, slot.base + len as u32, count_runs(&hashes));
        self.frames -= len as u64;
        self.tombstones += 1;
        if self.tombstones > 64 && self.tombstones > self.slots.len() / 2 {
            self.compact_slots();
        }
        (descr, hashes)
    }

    /// Drops tombstones (refs do not depend on slot numbers, only ids move).
    fn compact_slots(&mut self) {
        self.slots.retain(|s| s.id != 0);
        self.slots.shrink_to_fit();
        self.tombstones = 0;
        for (k, s) in self.slots.iter().enumerate() {
            if let Some(v) = self.by_id.get_mut(&s.id) {
                *v = k as u32;
            }
        }
        self.remap();
    }

    /// Rebuilds all postings from the tracks (optionally re-basing them
    /// consecutively from ref 0 first).
    fn rebuild(&mut self, rebase: bool) {
        #[cfg(test)]
        {
            self.rebuilds += 1;
        }
        if rebase || self.tombstones > 0 {
            self.compact_slots();
        }
        if rebase {
            let mut next = 0u32;
            for s in self.slots.iter_mut() {
                s.base = next;
                next += s.hashes.len() as u32;
            }
            self.next_base = next;
            self.remap();
        }
        // Drop the old postings first: the peak holds one copy, not two.
        self.postings = Postings::default();
        crate::fault_point!("rebuild: old postings dropped");
        let live: u64 = self.slots.iter().map(|s| count_runs(&s.hashes)).sum();
        let slots = &self.slots;
        self.postings = Postings::build(addr_bits_for(live), &|emit| {
            for s in slots {
                run_starts(None, &s.hashes, s.base, |r, h| emit(mix(h), r));
            }
        });
    }

    /// Builds the ref map anew (slots renumbered or re-based).
    fn remap(&mut self) {
        self.ref_map = RefMap::new(self.slots.iter().map(|s| s.base), self.next_base);
    }

    fn slot_of(&self, id: TrackId) -> Result<usize, IndexError> {
        self.by_id
            .get(&id)
            .map(|&s| s as usize)
            .ok_or(IndexError::NoSuchTrack(id))
    }

    /// Replaces a track's description (the legacy side-key import uses it).
    pub fn set_descr(&mut self, id: TrackId, descr: &[u8]) -> Result<(), IndexError> {
        let s = self.slot_of(id)?;
        let slot = self.slots.get_mut(s).ok_or(IndexError::NoSuchTrack(id))?;
        slot.descr = descr.into();
        Ok(())
    }

    fn view(s: &Slot) -> TrackView<'_> {
        TrackView {
            id: s.id,
            descr: &s.descr,
            hashes: &s.hashes,
        }
    }

    pub fn track(&self, id: TrackId) -> Option<TrackView<'_>> {
        let s = *self.by_id.get(&id)?;
        self.slots.get(s as usize).map(Self::view)
    }

    /// Tracks with `id >= from`, in ascending id order (for paging and for
    /// deterministic persistence, digest and AOF rewrite).
    pub fn tracks_from(&self, from: TrackId) -> Box<dyn Iterator<Item = TrackView<'_>> + '_> {
        Box::new(
            self.by_id
                .range(from..)
                .filter_map(move |(_, &s)| self.slots.get(s as usize).map(Self::view)),
        )
    }

    pub fn track_count(&self) -> u64 {
        self.by_id.len() as u64
    }

    /// Frames over all tracks, repeats included (what `auscout.size` says).
    pub fn frame_count(&self) -> u64 {
        self.frames
    }

    /// The id the next `insert(None, ..)` takes; never decreases.
    pub fn next_id(&self) -> TrackId {
        self.next_id
    }

    /// Restores the id counter after loading (takes the max with the current).
    pub fn set_next_id(&mut self, next: TrackId) {
        self.next_id = self.next_id.max(next);
    }

    /// Bytes owned by this index (for `MEMORY USAGE` and `mem_usage`):
    /// capacities rounded to the allocator's size classes.
    pub fn mem_usage(&self) -> usize {
        // A B-tree leaf holds up to 11 (i64, u32) pairs in about 150 bytes.
        let by_id = self.by_id.len().div_ceil(8) * 160;
        std::mem::size_of::<Self>()
            + alloc_size(self.slots.capacity() * std::mem::size_of::<Slot>())
            + self
                .slots
                .iter()
                .map(|s| alloc_size(s.descr.len()) + alloc_size(s.hashes.capacity() * 4))
                .sum::<usize>()
            + by_id
            + self.ref_map.mem_usage()
            + self.postings.mem_usage()
    }

    /// Maps a ref to its live track's slot and frame; `None` for a dead ref.
    #[inline]
    fn resolve(&self, r: u32) -> Option<(u32, u32)> {
        resolve_in(&self.slots, &self.ref_map, r)
    }

    /// Index statistics: one sequential pass over the postings (a debugging
    /// view; about 1 s per 40M frames), resolving only postings whose
    /// fingerprints collide within a bucket.
    pub fn stats(&self) -> IndexStats {
        let mut st = IndexStats {
            tracks: self.track_count(),
            frames: self.frames,
            bytes: self.mem_usage() as u64,
            ..IndexStats::default()
        };
        let hash_of = |r: u32| {
            let (s, pos) = self.resolve(r)?;
            self.slots
                .get(s as usize)?
                .hashes
                .get(pos as usize)
                .copied()
        };
        (st.distinct_hashes, st.postings, st.longest_posting) = self.postings.stats(&hash_of);
        st
    }

    /// Calls `hit(i, slot, pos)` for every stored posting whose hash equals
    /// `probes[i]`: all of them, never truncated. Within a track, a run of
    /// consecutive equal hashes has one posting, at the run's first frame.
    /// A slot stays valid until the index is next changed.
    pub fn probe(&self, probes: &[u32], hit: &mut dyn FnMut(usize, u32, u32)) {
        self.probe_capped(probes, usize::MAX, hit);
    }

    /// [`Index::probe`], except that a probe with more than `cap` stored
    /// postings reports none (a *stop hash*, see
    /// [`crate::matcher::STOP_HASH_POSTINGS`]). Postings are counted as
    /// fingerprint candidates, before they are confirmed: a hash that
    /// shares its bucket and fingerprint byte with a stop hash (about one in
    /// 256 of the few hashes of that bucket) is a stop hash too.
    pub fn probe_capped(&self, probes: &[u32], cap: usize, hit: &mut dyn FnMut(usize, u32, u32)) {
        let ms: Vec<u32> = probes.iter().map(|&h| mix(h)).collect();
        let mut cands = Vec::new();
        self.postings.probe(&ms, cap, &mut cands);
        // Confirming a fingerprint match reads the track's hash: another
        // random read, so all of them are prefetched before any is compared.
        let mut found: Vec<(u32, u32, u32, bool)> = Vec::with_capacity(cands.len());
        for (i, r, exact) in cands {
            let Some((s, pos)) = self.resolve(r) else {
                continue;
            };
            if !exact {
                if let Some(t) = self.slots.get(s as usize) {
                    prefetch(t.hashes.as_ptr().wrapping_add(pos as usize));
                }
            }
            found.push((i, s, pos, exact));
        }
        for (i, s, pos, exact) in found {
            if !exact {
                let stored = self
                    .slots
                    .get(s as usize)
                    .and_then(|t| t.hashes.get(pos as usize));
                if stored != probes.get(i as usize) {
                    continue;
                }
            }
            hit(i as usize, s, pos);
        }
    }

    /// The full hash sequence of the live track in `slot` (empty for a
    /// removed or unknown slot).
    pub fn slot_hashes(&self, slot: u32) -> &[u32] {
        self.slots.get(slot as usize).map_or(&[], |s| &s.hashes)
    }

    /// The id of the track in `slot` (0 for a removed or unknown slot).
    pub fn slot_id(&self, slot: u32) -> TrackId {
        self.slots.get(slot as usize).map_or(0, |s| s.id)
    }
}

#[cfg(test)]
mod tests;
