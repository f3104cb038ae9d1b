//! Merges: a partition's delta folded into its run, dead refs dropped, and
//! the partition split or its directory resized as its size asks.

use super::partition::Partition;
use super::place::group_by;
use super::{
    mix, run_key, shape_for, split_at, HashesOf, Postings, EMPTY, NOTHING_TO_MERGE, RECOVER_COST,
};
use crate::index::dir_entry::{run_flag, shifted_flags, Entry};

/// A partition rewritten by a merge, not yet in place.
#[derive(Debug, Default)]
pub(super) struct Merged {
    pub(super) part: Option<Partition>,
    /// After a split, `part` is the half whose next prefix bit is 0 and this
    /// the half whose bit is 1.
    pub(super) upper: Option<Partition>,
    /// Dead postings it no longer holds.
    pub(super) dropped: u64,
    /// Work done (postings rewritten plus the directory walk).
    pub(super) cost: u64,
}

impl Postings {
    /// The work `merged(p, &[], _)` will do (an estimate: dead postings may
    /// change the shape it gives the partition).
    pub(super) fn merge_cost(&self, p: usize) -> u64 {
        let Some(part) = self.parts.get(p) else {
            return 0;
        };
        let no_dead = self.dead_new.is_empty() && self.dead_old.is_empty();
        if part.delta_len == 0 && (no_dead || part.refs.is_empty()) {
            return NOTHING_TO_MERGE;
        }
        let run = part.refs.len() as u64;
        let n = run + u64::from(part.delta_len);
        let (split, dir_bits) = shape_for(
            u32::from(part.depth),
            u32::from(part.dir_bits),
            n,
            split_at(p),
        );
        let recover = u32::from(split) + dir_bits > u32::from(part.dir_bits);
        n + part.buckets() as u64 + if recover { RECOVER_COST * run } else { 0 }
    }

    /// Rewrites partition `p`'s run with its delta and `extra` merged in and
    /// dead refs dropped (splitting it when it has grown too big). Returns
    /// the work done.
    pub(super) fn merge(&mut self, p: usize, extra: &[u64], hashes_of: &HashesOf) -> u64 {
        let m = self.merged(p, extra, hashes_of);
        self.install(p, m)
    }

    /// Puts a merge's result in place; returns its work.
    pub(super) fn install(&mut self, p: usize, m: Merged) -> u64 {
        if let Some(new) = m.part {
            if let Some(upper) = m.upper {
                self.split_route(p, u32::from(new.depth) - 1);
                crate::fault_point!("merge: route split, half not yet installed");
                self.parts.push(upper);
            }
            if let Some(slot) = self.parts.get_mut(p) {
                *slot = new;
            }
            self.stored -= m.dropped;
            self.dead -= m.dropped.min(self.dead);
        }
        m.cost
    }

    /// Points the upper half of the route block of partition `p` (prefix
    /// length `depth`) at the partition about to be appended, doubling the
    /// table first when `p`'s prefix is as long as the table's. At most
    /// `2^MAX_DEPTH` entries are touched, once per split.
    fn split_route(&mut self, p: usize, depth: u32) {
        if depth >= self.route_bits {
            self.route = self.route.iter().flat_map(|&x| [x, x]).collect();
            self.route_bits += 1;
        }
        let len = 1usize << (self.route_bits - depth);
        let q = self.parts.len() as u16;
        if let Some(first) = self.route.iter().position(|&x| usize::from(x) == p) {
            if let Some(upper) = self.route.get_mut(first + len / 2..first + len) {
                upper.fill(q);
            }
        }
    }

    /// Partition `p` rewritten with its delta and `extra` merged in and dead
    /// refs dropped (`part: None` when there is nothing to rewrite), in the
    /// shape `shape_for` gives it: split in two halves one prefix bit
    /// longer, and/or with another directory size.
    ///
    /// The run stores of each posting only its bucket (the `dir_bits` bits
    /// after the prefix) and its fingerprint. A shape that needs no more
    /// address bits than that (same or smaller directory, or a split into
    /// halves of at most `dir_bits - 1` directory bits) regroups run buckets
    /// in order. One that needs more recovers `m` of every run posting from
    /// its track's hash (`hashes_of`, about one random read per posting):
    /// that happens once per doubling of a partition (its split) and when a
    /// small partition's directory grows.
    pub(super) fn merged(&self, p: usize, extra: &[u64], hashes_of: &HashesOf) -> Merged {
        let no_dead = self.dead_new.is_empty() && self.dead_old.is_empty();
        let Some(part) = self.parts.get(p) else {
            return Merged::default();
        };
        let run_len = part.refs.len();
        if part.delta_len == 0 && extra.is_empty() && (no_dead || run_len == 0) {
            // Nothing to rewrite: only the visit is paid for.
            return Merged {
                cost: NOTHING_TO_MERGE,
                ..Merged::default()
            };
        }
        let mut fresh: Vec<u64> = Vec::with_capacity(part.delta_len as usize + extra.len());
        fresh.extend(part.delta.iter().copied().filter(|&e| e != EMPTY));
        fresh.extend_from_slice(extra);
        let mut cost = (run_len + fresh.len()) as u64 + part.buckets() as u64;
        let mut dropped = 0u64;
        if !no_dead {
            let before = fresh.len();
            fresh.retain(|&e| !self.is_dead(e as u32));
            dropped += (before - fresh.len()) as u64;
        }
        let live_run = if no_dead {
            run_len
        } else {
            part.refs.iter().filter(|&&r| !self.is_dead(r)).count()
        };
        let (depth, old_bits) = (u32::from(part.depth), u32::from(part.dir_bits));
        let (split, dir_bits) = shape_for(
            depth,
            old_bits,
            (live_run + fresh.len()) as u64,
            split_at(p),
        );
        if no_dead && !split && dir_bits == old_bits {
            fresh.sort_unstable();
            return Merged {
                part: Some(Self::spliced(part, &fresh)),
                upper: None,
                dropped: 0,
                cost,
            };
        }
        // Address bits of the result after the old prefix: the half, then the bucket.
        let out_bits = u32::from(split) + dir_bits;
        let recover = out_bits > old_bits;
        // Output address `a` (half, then bucket) of a posting.
        let address = |m: u32| ((u64::from(m << depth) << out_bits) >> 32) as usize;
        if recover {
            let refs: Vec<u32> = part
                .refs
                .iter()
                .copied()
                .filter(|&r| no_dead || !self.is_dead(r))
                .collect();
            let from = fresh.len();
            hashes_of(&refs, &mut fresh);
            for e in fresh.iter_mut().skip(from) {
                *e = (u64::from(mix((*e >> 32) as u32)) << 32) | (*e & 0xFFFF_FFFF);
            }
            // Run postings without a track are dead (a live one always has one).
            dropped += (run_len - (fresh.len() - from)) as u64;
            cost += RECOVER_COST * refs.len() as u64;
            fresh = group_by(&fresh, 1 << out_bits, |e| address((e >> 32) as u32)).0;
        } else {
            fresh.sort_unstable();
        }
        // Output address `a` gathers the run buckets
        // `a << shift .. (a + 1) << shift` and the fresh postings of `a`.
        let shift = old_bits.saturating_sub(out_bits);
        let nb = 1usize << dir_bits;
        let per_half = (run_len + fresh.len()) >> u32::from(split);
        let mut j = 0;
        let mut halves = Vec::with_capacity(2);
        for h in 0..1usize << u32::from(split) {
            let mut dir = Vec::with_capacity(nb + 1);
            let mut fps = Vec::with_capacity(per_half);
            let mut refs = Vec::with_capacity(per_half);
            for b in 0..nb {
                let a = (h << dir_bits) | b;
                let start = refs.len();
                let mut flags = 0;
                if !recover {
                    for ob in a << shift..(a + 1) << shift {
                        // The run keeps no `m` to compute keys from: the old
                        // flags carry over (those of dead postings too: a
                        // flag too many only costs a probe a scan).
                        let old = part.dir.get(ob).map_or(0, |e| e.run_flags());
                        flags |= shifted_flags(old, (ob & ((1 << shift) - 1)) as u32, shift);
                        let (f, r) = part.bucket(ob);
                        if no_dead {
                            fps.extend_from_slice(f);
                            refs.extend_from_slice(r);
                        } else {
                            for (&fp, &rf) in f.iter().zip(r) {
                                if self.is_dead(rf) {
                                    dropped += 1;
                                } else {
                                    fps.push(fp);
                                    refs.push(rf);
                                }
                            }
                        }
                    }
                }
                while let Some(&e) = fresh.get(j) {
                    if address((e >> 32) as u32) != a {
                        break;
                    }
                    j += 1;
                    let m = (e >> 32) as u32;
                    fps.push(m as u8);
                    refs.push(e as u32);
                    flags |= run_flag(run_key(m, depth + out_bits));
                }
                dir.push(Entry::new(start, refs.len() - start, flags));
            }
            dir.push(Entry::new(refs.len(), 0, 0));
            let child_depth = depth + u32::from(split);
            halves.push(if refs.is_empty() {
                Partition::empty(child_depth, dir_bits)
            } else {
                Partition {
                    dir: dir.into_boxed_slice(),
                    fps: fps.into_boxed_slice(),
                    refs: refs.into_boxed_slice(),
                    delta: Vec::new(),
                    delta_len: 0,
                    depth: child_depth as u8,
                    dir_bits: dir_bits as u8,
                }
            });
        }
        let upper = if split { halves.pop() } else { None };
        Merged {
            part: halves.pop(),
            upper,
            dropped,
            cost,
        }
    }

    /// `part`'s run with `fresh` (sorted, none dead) inserted, each after
    /// its bucket's postings: what the general merge builds when nothing is
    /// dead, but the run is copied in one piece between insertion points and
    /// the directory is shifted instead of rebuilt bucket by bucket (a merge
    /// inserts a few hundred postings into thousands; this is most of an
    /// add's merge work).
    fn spliced(part: &Partition, fresh: &[u64]) -> Partition {
        let nb = part.buckets();
        let total = part.refs.len() + fresh.len();
        let mut fps = Vec::with_capacity(total);
        let mut refs = Vec::with_capacity(total);
        // How many fresh postings go into each bucket, and their run flags.
        let mut added = vec![0u32; nb];
        let mut added_flags = vec![0u64; nb];
        let old_offset = |b: usize| part.dir.get(b).map_or(0, |d| d.offset());
        let mut copied = 0;
        for &e in fresh {
            let (m, rf) = ((e >> 32) as u32, e as u32);
            let b = part.bucket_of(m);
            // Everything of the old run up to the end of bucket `b` first.
            let end = old_offset(b + 1).max(copied);
            if let (Some(f), Some(r)) = (part.fps.get(copied..end), part.refs.get(copied..end)) {
                fps.extend_from_slice(f);
                refs.extend_from_slice(r);
            }
            copied = end;
            fps.push(m as u8);
            refs.push(rf);
            if let Some(c) = added.get_mut(b) {
                *c += 1;
            }
            if let Some(f) = added_flags.get_mut(b) {
                *f |= run_flag(part.run_key(m));
            }
        }
        if let (Some(f), Some(r)) = (part.fps.get(copied..), part.refs.get(copied..)) {
            fps.extend_from_slice(f);
            refs.extend_from_slice(r);
        }
        // The directory shifted: each bucket moves by the fresh postings in
        // front of it and grows by its own. The delta is merged, so its flags
        // go; the run flags gain the fresh ones. (One pass over zipped
        // slices: built entry by entry with lookups it made one-thread
        // inserts at 40M 1–3 % slower.)
        let fresh_dir;
        let old_dir: &[Entry] = if part.dir.len() == nb + 1 {
            &part.dir
        } else {
            fresh_dir = vec![Entry::default(); nb + 1];
            &fresh_dir
        };
        let mut dir = Vec::with_capacity(nb + 1);
        let mut moved = 0usize;
        for ((pair, &n), &flags) in old_dir.windows(2).zip(&added).zip(&added_flags) {
            if let [old, next] = pair {
                let len = next.offset().saturating_sub(old.offset()) + n as usize;
                dir.push(Entry::new(
                    old.offset() + moved,
                    len,
                    old.run_flags() | flags,
                ));
            }
            moved += n as usize;
        }
        dir.push(Entry::new(total, 0, 0));
        let dir = dir.into_boxed_slice();
        if refs.is_empty() {
            return Partition::empty(u32::from(part.depth), u32::from(part.dir_bits));
        }
        Partition {
            dir,
            fps: fps.into_boxed_slice(),
            refs: refs.into_boxed_slice(),
            delta: Vec::new(),
            delta_len: 0,
            depth: part.depth,
            dir_bits: part.dir_bits,
        }
    }
}
