//! The fingerprint index of one Redis key: tracks (id, description, hash
//! sequence) and the inverted index hash → (track, frame).
//!
//! FIRST VERSION: straightforward and correct (a `HashMap` of posting lists),
//! far over the memory budget; the compact layout replaces the internals
//! behind the same API.

use std::collections::{BTreeMap, HashMap};

use crate::matcher::{LookupError, LookupParams, Match};

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

#[derive(Debug, Clone)]
struct Track {
    id: TrackId,
    descr: Box<[u8]>,
    hashes: Vec<u32>,
}

#[derive(Debug, Clone)]
pub struct Index {
    /// Live tracks by slot; a removed track leaves `None` (slot reused later).
    slots: Vec<Option<Track>>,
    free_slots: Vec<u32>,
    by_id: BTreeMap<TrackId, u32>,
    /// hash → (slot, pos) for the first frame of every run of equal hashes.
    postings: HashMap<u32, Vec<(u32, u32)>>,
    frames: u64,
    next_id: TrackId,
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
            free_slots: Vec::new(),
            by_id: BTreeMap::new(),
            postings: HashMap::new(),
            frames: 0,
            next_id: 1,
        }
    }

    /// Adds a track. `id = None` takes the next free id; an explicit id that
    /// exists is an error and changes nothing. Returns the id.
    pub fn insert(
        &mut self,
        id: Option<TrackId>,
        descr: &[u8],
        hashes: &[u32],
    ) -> Result<TrackId, IndexError> {
        if hashes.is_empty() {
            return Err(IndexError::Empty);
        }
        if hashes.len() > MAX_TRACK_FRAMES {
            return Err(IndexError::TooLong(hashes.len()));
        }
        let id = match id {
            Some(id) => {
                if !(1..=MAX_ID).contains(&id) {
                    return Err(IndexError::InvalidId);
                }
                if self.by_id.contains_key(&id) {
                    return Err(IndexError::IdExists(id));
                }
                id
            }
            None => {
                if self.next_id > MAX_ID {
                    return Err(IndexError::IdsExhausted);
                }
                self.next_id
            }
        };
        self.next_id = self.next_id.max(id + 1);
        let slot = match self.free_slots.pop() {
            Some(s) => s,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        self.by_id.insert(id, slot);
        self.slots[slot as usize] = Some(Track {
            id,
            descr: descr.into(),
            hashes: Vec::new(),
        });
        self.extend_track(slot, hashes);
        Ok(id)
    }

    fn extend_track(&mut self, slot: u32, more: &[u32]) {
        let Some(Some(track)) = self.slots.get_mut(slot as usize) else {
            return;
        };
        let mut prev = track.hashes.last().copied();
        let start = track.hashes.len() as u32;
        for (k, &h) in more.iter().enumerate() {
            if prev != Some(h) {
                self.postings
                    .entry(h)
                    .or_default()
                    .push((slot, start + k as u32));
            }
            prev = Some(h);
        }
        track.hashes.extend_from_slice(more);
        self.frames += more.len() as u64;
    }

    fn slot_of(&self, id: TrackId) -> Result<u32, IndexError> {
        self.by_id
            .get(&id)
            .copied()
            .ok_or(IndexError::NoSuchTrack(id))
    }

    /// Appends frames to an existing track (AOF rewrite emits big tracks in
    /// chunks). Returns the track's frame count afterwards.
    pub fn append(&mut self, id: TrackId, hashes: &[u32]) -> Result<u64, IndexError> {
        let slot = self.slot_of(id)?;
        let old = self
            .slots
            .get(slot as usize)
            .and_then(|t| t.as_ref())
            .map_or(0, |t| t.hashes.len());
        let total = old.saturating_add(hashes.len());
        if total > MAX_TRACK_FRAMES {
            return Err(IndexError::TooLong(total));
        }
        self.extend_track(slot, hashes);
        Ok(total as u64)
    }

    /// Removes a track; returns the number of frames it had.
    pub fn remove(&mut self, id: TrackId) -> Result<u64, IndexError> {
        let slot = self.slot_of(id)?;
        self.by_id.remove(&id);
        let Some(track) = self.slots.get_mut(slot as usize).and_then(Option::take) else {
            return Err(IndexError::NoSuchTrack(id));
        };
        for &h in &track.hashes {
            if let Some(list) = self.postings.get_mut(&h) {
                list.retain(|&(s, _)| s != slot);
                if list.is_empty() {
                    self.postings.remove(&h);
                }
            }
        }
        self.free_slots.push(slot);
        self.frames -= track.hashes.len() as u64;
        Ok(track.hashes.len() as u64)
    }

    /// Replaces a track's description (the legacy side-key import uses it).
    pub fn set_descr(&mut self, id: TrackId, descr: &[u8]) -> Result<(), IndexError> {
        let slot = self.slot_of(id)?;
        match self.slots.get_mut(slot as usize) {
            Some(Some(t)) => {
                t.descr = descr.into();
                Ok(())
            }
            _ => Err(IndexError::NoSuchTrack(id)),
        }
    }

    fn view(t: &Track) -> TrackView<'_> {
        TrackView {
            id: t.id,
            descr: &t.descr,
            hashes: &t.hashes,
        }
    }

    pub fn track(&self, id: TrackId) -> Option<TrackView<'_>> {
        let slot = *self.by_id.get(&id)?;
        self.slots.get(slot as usize)?.as_ref().map(Self::view)
    }

    /// Tracks with `id >= from`, in ascending id order (for paging and for
    /// deterministic persistence, digest and AOF rewrite).
    pub fn tracks_from(&self, from: TrackId) -> Box<dyn Iterator<Item = TrackView<'_>> + '_> {
        Box::new(
            self.by_id.range(from..).filter_map(move |(_, &slot)| {
                self.slots.get(slot as usize)?.as_ref().map(Self::view)
            }),
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

    /// Bytes owned by this index (for `MEMORY USAGE` and `mem_usage`).
    pub fn mem_usage(&self) -> usize {
        let mut n = std::mem::size_of::<Self>();
        n += self.slots.capacity() * std::mem::size_of::<Option<Track>>();
        n += self.free_slots.capacity() * 4;
        n += self.by_id.len() * 32;
        for t in self.slots.iter().flatten() {
            n += t.descr.len() + t.hashes.capacity() * 4;
        }
        n += self.postings.capacity() * (4 + std::mem::size_of::<Vec<(u32, u32)>>() + 1);
        for l in self.postings.values() {
            n += l.capacity() * 8;
        }
        n
    }

    pub fn stats(&self) -> IndexStats {
        IndexStats {
            tracks: self.track_count(),
            frames: self.frames,
            distinct_hashes: self.postings.len() as u64,
            postings: self.postings.values().map(|l| l.len() as u64).sum(),
            longest_posting: self
                .postings
                .values()
                .map(|l| l.len() as u64)
                .max()
                .unwrap_or(0),
            bytes: self.mem_usage() as u64,
        }
    }

    /// Calls `hit(i, slot, pos)` for every stored posting whose hash equals
    /// `probes[i]`. Within a track, a run of consecutive equal hashes has one
    /// posting, at the run's first frame.
    pub fn probe(&self, probes: &[u32], hit: &mut dyn FnMut(usize, u32, u32)) {
        for (i, h) in probes.iter().enumerate() {
            if let Some(list) = self.postings.get(h) {
                for &(slot, pos) in list {
                    hit(i, slot, pos);
                }
            }
        }
    }

    /// The full hash sequence of the live track in `slot` (empty for a dead slot).
    pub fn slot_hashes(&self, slot: u32) -> &[u32] {
        match self.slots.get(slot as usize) {
            Some(Some(t)) => &t.hashes,
            _ => &[],
        }
    }

    /// The id of the track in `slot` (0 for a dead slot).
    pub fn slot_id(&self, slot: u32) -> TrackId {
        match self.slots.get(slot as usize) {
            Some(Some(t)) => t.id,
            _ => 0,
        }
    }

    /// Time-aligned lookup (DESIGN §4): every track scoring ≥ threshold, best first.
    pub fn lookup(
        &self,
        query: &[u32],
        toggles: &[u32],
        params: &LookupParams,
    ) -> Result<Vec<Match>, LookupError> {
        crate::matcher::lookup(self, query, toggles, params)
    }
}

impl crate::matcher::FrameSource for Index {
    fn probe(&self, probes: &[u32], hit: &mut dyn FnMut(usize, u32, u32)) {
        for (i, h) in probes.iter().enumerate() {
            if let Some(list) = self.postings.get(h) {
                for &(slot, pos) in list {
                    hit(i, slot, pos);
                }
            }
        }
    }

    fn hashes(&self, slot: u32) -> &[u32] {
        self.slots.get(slot as usize).and_then(Option::as_ref).map_or(&[], |t| &t.hashes)
    }

    fn id(&self, slot: u32) -> TrackId {
        self.slots.get(slot as usize).and_then(Option::as_ref).map_or(0, |t| t.id)
    }
}

#[cfg(test)]
mod tests;
