//! Growth and shrinkage: partitions split and resize, refs re-base, no
//! whole rebuild.

use super::*;
use crate::index::ref_lookup::radix_sort;

#[test]
fn geometry_grows_and_shrinks_with_the_index() {
    let mut rng = Rng(5);
    let mut ix = Index::new();
    let mut model = BTreeMap::new();
    let mut seen_buckets = Vec::new();
    for _ in 0..120 {
        let hs = random_track(&mut rng, 2500);
        let id = ix.insert(None, b"", &hs).unwrap_or(0);
        model.insert(id, hs);
        seen_buckets.push(ix.postings.geometry().0);
    }
    ix.check();
    seen_buckets.dedup();
    assert!(seen_buckets.len() >= 4, "buckets went {seen_buckets:?}");
    assert!(seen_buckets.windows(2).all(|w| w[0] < w[1]));
    let big = ix.postings.geometry().0;
    let ids: Vec<TrackId> = model.keys().copied().collect();
    for id in ids.iter().skip(3) {
        model.remove(id);
        assert!(ix.remove(*id).is_ok());
    }
    ix.check();
    assert!(ix.postings.geometry().0 * 8 <= big, "did not shrink");
    assert_probes_match(&ix, &model, &mut rng);
    assert_eq!(ix.rebuilds, 0);
}

/// A small ref space runs out again and again: live tracks are re-based and
/// keep their ids, hashes and postings.
#[test]
fn refs_running_out_rebase_the_live_tracks() {
    let mut rng = Rng(9);
    let mut ix = Index::with_ref_limit(20_000);
    let mut model = BTreeMap::new();
    for round in 0..60 {
        let hs = random_track(&mut rng, 900 + round * 7);
        let id = ix
            .insert(None, format!("t{round}").as_bytes(), &hs)
            .unwrap_or(0);
        model.insert(id, hs);
        if model.len() > 8 {
            let first = model.keys().next().copied().unwrap_or(0);
            model.remove(&first);
            assert!(ix.remove(first).is_ok());
        }
        if round % 5 == 0 {
            // Appending to a track that is not the last one moves it.
            let some = model.keys().next().copied().unwrap_or(0);
            let more = random_track(&mut rng, 50);
            let total = model.get_mut(&some).map(|v| {
                v.extend_from_slice(&more);
                v.len() as u64
            });
            assert_eq!(ix.append(some, &more).ok(), total);
        }
        ix.check();
        assert_probes_match(&ix, &model, &mut rng);
    }
    assert_eq!(ix.next_id(), 61);
    assert_eq!(ix.track(60).map(|t| t.descr), Some(&b"t59"[..]));
    // Live frames that can never fit are refused, and nothing changes.
    let huge = vec![1u32; 20_000];
    assert_eq!(
        ix.insert(None, b"", &huge),
        Err(IndexError::TooLong(20_000))
    );
    assert_eq!(ix.next_id(), 61);
    ix.check();
}

/// Growing from empty to far past the first partition's size splits
/// partitions one merge at a time (the table of partitions doubling as
/// needed) and never rebuilds the whole index; every step keeps the
/// invariants (each run posting where its hash says) and the answers of a
/// bulk load. Then removes shrink the directories, again without a rebuild.
#[test]
fn growth_and_shrinkage_split_and_resize_partitions_without_a_rebuild() {
    let mut rng = Rng(101);
    let mut ix = Index::new();
    let mut model = BTreeMap::new();
    let mut parts_seen = Vec::new();
    for k in 0..150 {
        // Tracks of varied length, some with repeats (runs share a posting).
        let len = 2000 + rng.below(14_000) as usize;
        let mut hs = random_track(&mut rng, len);
        if k % 7 == 0 {
            for j in (1..hs.len()).step_by(3) {
                hs[j] = hs[j - 1];
            }
        }
        let id = ix.insert(None, b"", &hs).unwrap_or(0);
        model.insert(id, hs);
        parts_seen.push(ix.postings.geometry().1);
        if k % 15 == 14 {
            ix.check();
            assert_equals_bulk_load(&ix, &model, &mut rng);
        }
    }
    assert_eq!(ix.rebuilds, 0, "growth rebuilt the whole index");
    let (buckets, parts, _) = ix.postings.geometry();
    // About 1.1M postings: well over 16 partitions of at most 32K.
    assert!(parts >= 32, "{parts} partitions");
    assert!(ix.postings.route_bits() >= 5);
    assert!(
        parts_seen.windows(2).all(|w| w[0] <= w[1]),
        "partitions never join"
    );
    assert!(buckets >= (parts as u64) << 9, "{buckets} buckets");
    // Shrink: remove all but a few tracks, with some inserts in between.
    let ids: Vec<TrackId> = model.keys().copied().collect();
    for (n, id) in ids.iter().enumerate().skip(4) {
        model.remove(id);
        assert!(ix.remove(*id).is_ok());
        if n % 40 == 0 {
            let hs = random_track(&mut rng, 500);
            let id = ix.insert(None, b"", &hs).unwrap_or(0);
            model.insert(id, hs);
        }
        if n % 25 == 0 {
            ix.check();
            assert_equals_bulk_load(&ix, &model, &mut rng);
        }
    }
    // Work of later changes completes the sweeps that drop the dead postings.
    for _ in 0..10 {
        let hs = random_track(&mut rng, 2000);
        let id = ix.insert(None, b"", &hs).unwrap_or(0);
        model.insert(id, hs);
    }
    ix.check();
    assert_equals_bulk_load(&ix, &model, &mut rng);
    assert_eq!(ix.rebuilds, 0, "shrinking rebuilt the whole index");
    let (small, _, dead) = ix.postings.geometry();
    assert_eq!(dead, 0);
    assert!(small * 8 <= buckets, "{buckets} -> {small} buckets");
}

#[test]
fn radix_sort_sorts_like_sort_unstable() {
    let mut rng = Rng(17);
    for len in [0usize, 1, 7, 1000, 40_000] {
        // Full-range values, and values sharing their high bytes.
        for mask in [u32::MAX, 0xFFF] {
            let mut v: Vec<u32> = (0..len).map(|_| rng.next() as u32 & mask).collect();
            let mut want = v.clone();
            want.sort_unstable();
            radix_sort(&mut v);
            assert_eq!(v, want, "len {len} mask {mask:#x}");
        }
    }
}

/// A small index gets more merge credit per insert than one sweep of its
/// partitions costs: once every partition has been merged, the rest of the
/// credit buys nothing, and the sweep must stop instead of visiting the
/// same clean partitions again and again (it did: ~160 idle sweeps, each a
/// hand-off to the pool with two threads, per insert of the first few
/// hundred thousand frames).
#[test]
fn a_small_index_does_not_sweep_its_clean_partitions_again_and_again() {
    let mut rng = Rng(0x51);
    let mut ix = Index::new();
    for t in 0..30 {
        let hs = random_track(&mut rng, 20_000);
        let before = ix.postings.visits;
        assert!(ix.insert(None, b"", &hs).is_ok());
        let visits = ix.postings.visits - before;
        let parts = ix.postings.geometry().1 as u64;
        // The partitions with something to merge, then at most one sweep
        // finding nothing (splits add partitions during the insert).
        assert!(
            visits <= 3 * parts + 2,
            "insert {t}: {visits} visits of {parts} partitions"
        );
    }
    ix.check();
}
