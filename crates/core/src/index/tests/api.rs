//! Ids, inputs, runs of equal hashes, and what the index reports.

use super::*;

#[test]
fn auto_ids_start_at_one_and_are_never_reused() {
    let mut ix = Index::new();
    assert_eq!(ix.next_id(), 1);
    assert_eq!(ix.insert(None, b"a", &[1, 2, 3]), Ok(1));
    assert_eq!(ix.insert(None, b"b", &[4]), Ok(2));
    assert_eq!(ix.remove(2), Ok(1));
    assert_eq!(ix.insert(None, b"c", &[5]), Ok(3));
    assert_eq!(ix.remove(3), Ok(1));
    assert_eq!(ix.remove(1), Ok(3));
    assert_eq!(ix.track_count(), 0);
    assert_eq!(ix.insert(None, b"", &[5]), Ok(4));
}

#[test]
fn explicit_ids_move_the_counter_and_existing_ids_change_nothing() {
    let mut ix = Index::new();
    assert_eq!(ix.insert(Some(10), b"x", &[7, 8]), Ok(10));
    assert_eq!(ix.next_id(), 11);
    assert_eq!(ix.insert(Some(5), b"y", &[9]), Ok(5));
    assert_eq!(ix.next_id(), 11);
    assert_eq!(
        ix.insert(Some(10), b"z", &[1, 2, 3]),
        Err(IndexError::IdExists(10))
    );
    assert_eq!(ix.track_count(), 2);
    assert_eq!(ix.frame_count(), 3);
    assert_eq!(ix.track(10).map(|t| t.descr), Some(&b"x"[..]));
    assert!(probe_all(&ix, &[1, 2, 3]).is_empty());
    assert_eq!(ix.insert(None, b"", &[1]), Ok(11));
}

#[test]
fn invalid_ids_and_inputs_are_refused() {
    let mut ix = Index::new();
    assert_eq!(ix.insert(Some(0), b"", &[1]), Err(IndexError::InvalidId));
    assert_eq!(ix.insert(Some(-3), b"", &[1]), Err(IndexError::InvalidId));
    assert_eq!(
        ix.insert(Some(i64::MAX), b"", &[1]),
        Err(IndexError::InvalidId)
    );
    assert_eq!(ix.insert(None, b"", &[]), Err(IndexError::Empty));
    assert_eq!(ix.remove(1), Err(IndexError::NoSuchTrack(1)));
    assert_eq!(ix.append(1, &[1]), Err(IndexError::NoSuchTrack(1)));
    assert_eq!(ix.set_descr(1, b"d"), Err(IndexError::NoSuchTrack(1)));
    assert_eq!(ix.track_count(), 0);
    assert_eq!(ix.next_id(), 1);
}

#[test]
fn too_long_tracks_are_refused_also_by_append() {
    let mut ix = Index::new();
    // Zeroed allocation: untouched pages cost nothing, and the length is
    // checked before any frame is read.
    let big = vec![0u32; MAX_TRACK_FRAMES + 1];
    assert_eq!(
        ix.insert(None, b"", &big),
        Err(IndexError::TooLong(MAX_TRACK_FRAMES + 1))
    );
    assert_eq!(ix.insert(None, b"", &[1, 2]), Ok(1));
    assert_eq!(
        ix.append(1, &big[..MAX_TRACK_FRAMES - 1]),
        Err(IndexError::TooLong(MAX_TRACK_FRAMES + 1))
    );
    assert_eq!(ix.frame_count(), 2);
    assert_eq!(ix.next_id(), 2);
}

#[test]
fn ids_run_out_at_max_id() {
    let mut ix = Index::new();
    assert_eq!(ix.insert(Some(MAX_ID), b"", &[1]), Ok(MAX_ID));
    assert_eq!(ix.insert(None, b"", &[2]), Err(IndexError::IdsExhausted));
    assert_eq!(ix.track_count(), 1);
    assert_eq!(ix.insert(Some(3), b"", &[2]), Ok(3));
}

#[test]
fn set_next_id_takes_the_max() {
    let mut ix = Index::new();
    ix.set_next_id(50);
    assert_eq!(ix.next_id(), 50);
    ix.set_next_id(20);
    assert_eq!(ix.next_id(), 50);
    assert_eq!(ix.insert(None, b"", &[1]), Ok(50));
}

#[test]
fn repeats_get_one_posting_at_the_run_start_and_positions_count_every_frame() {
    let mut ix = Index::new();
    let hs = [7, 7, 7, 9, 9, 7, 3, 3];
    assert_eq!(ix.insert(None, b"", &hs), Ok(1));
    assert_eq!(ix.frame_count(), 8);
    assert_eq!(
        probe_all(&ix, &[7, 9, 3, 4]),
        vec![(0, 1, 0), (0, 1, 5), (1, 1, 3), (2, 1, 6)]
    );
    assert_eq!(ix.track(1).map(|t| t.hashes), Some(&hs[..]));
    let st = ix.stats();
    assert_eq!(
        (
            st.tracks,
            st.frames,
            st.distinct_hashes,
            st.postings,
            st.longest_posting
        ),
        (1, 8, 3, 4, 2)
    );
}

#[test]
fn append_treats_a_repeat_across_the_join_as_the_same_run() {
    let mut ix = Index::new();
    assert_eq!(ix.insert(None, b"", &[1, 2]), Ok(1));
    assert_eq!(ix.append(1, &[2, 2, 5]), Ok(5));
    assert_eq!(ix.append(1, &[5, 1]), Ok(7));
    assert_eq!(ix.frame_count(), 7);
    assert_eq!(
        probe_all(&ix, &[1, 2, 5]),
        vec![(0, 1, 0), (0, 1, 6), (1, 1, 1), (2, 1, 4)]
    );
    assert_eq!(ix.remove(1), Ok(7));
    assert_eq!(ix.frame_count(), 0);
    assert!(probe_all(&ix, &[1, 2, 5]).is_empty());
}

#[test]
fn tracks_from_is_in_ascending_id_order() {
    let mut ix = Index::new();
    for id in [40, 3, 17, 8, 25] {
        assert_eq!(
            ix.insert(Some(id), format!("d{id}").as_bytes(), &[id as u32]),
            Ok(id)
        );
    }
    assert_eq!(ix.remove(17), Ok(1));
    let ids: Vec<_> = ix.tracks_from(0).map(|t| t.id).collect();
    assert_eq!(ids, vec![3, 8, 25, 40]);
    let ids: Vec<_> = ix
        .tracks_from(9)
        .map(|t| (t.id, t.descr.to_vec()))
        .collect();
    assert_eq!(ids, vec![(25, b"d25".to_vec()), (40, b"d40".to_vec())]);
    assert!(ix.set_descr(25, b"new").is_ok());
    assert_eq!(ix.track(25).map(|t| t.descr), Some(&b"new"[..]));
}

#[test]
fn clone_is_independent() {
    let mut a = Index::new();
    assert_eq!(a.insert(None, b"", &[1, 2, 3]), Ok(1));
    let b = a.clone();
    assert_eq!(a.remove(1), Ok(3));
    assert_eq!(b.track_count(), 1);
    assert_eq!(probe_all(&b, &[2]), vec![(0, 1, 1)]);
    assert!(probe_all(&a, &[2]).is_empty());
}

#[test]
fn index_is_send() {
    fn is_send<T: Send + 'static>() {}
    is_send::<Index>();
}

#[test]
fn append_to_the_last_track_grows_it_in_place() {
    let mut ix = Index::new();
    assert_eq!(ix.insert(None, b"", &[1, 2]), Ok(1));
    assert_eq!(ix.insert(None, b"", &[3, 4]), Ok(2));
    let before = ix.next_base;
    assert_eq!(ix.append(2, &[4, 5]), Ok(4));
    assert_eq!(ix.next_base, before + 2, "the last track moved");
    assert_eq!(ix.append(1, &[2, 6]), Ok(4));
    assert_eq!(
        ix.next_base,
        before + 2 + 4,
        "an inner track must move to the top"
    );
    ix.check();
    assert_eq!(
        probe_all(&ix, &[2, 4, 5, 6]),
        vec![(0, 1, 1), (1, 2, 1), (2, 2, 3), (3, 1, 3)]
    );
}

/// A hash repeated in many tracks (silence, say) keeps every posting.
#[test]
fn a_hash_shared_by_many_tracks_returns_every_posting() {
    let mut ix = Index::new();
    for k in 0..3000u32 {
        assert!(ix.insert(None, b"", &[k, 0xDEAD_BEEF, k + 1]).is_ok());
    }
    let mut n = 0;
    ix.probe(&[0xDEAD_BEEF], &mut |_, _, pos| {
        assert_eq!(pos, 1);
        n += 1;
    });
    assert_eq!(n, 3000);
    assert_eq!(ix.stats().longest_posting, 3000);
}

/// A hash in more postings than the matcher's cap stays whole in the index
/// but is a stop hash to lookups: their probe of it reports nothing, and
/// the other probes of the same call are untouched. At the cap it is not.
#[test]
fn a_stop_hash_is_whole_in_the_index_and_silent_to_lookups() {
    use crate::matcher::{FrameSource, STOP_HASH_POSTINGS};
    let common = 0xDEAD_BEEF;
    let mut ix = Index::new();
    let cap = STOP_HASH_POSTINGS as u32;
    for k in 0..cap {
        assert!(ix
            .insert(None, b"", &[3 * k + 1, common, 3 * k + 2])
            .is_ok());
    }
    let count = |ix: &Index, capped: bool, probes: &[u32]| {
        let mut n = vec![0usize; probes.len()];
        let mut hit = |i: usize, _: u32, _: u32| n[i] += 1;
        if capped {
            FrameSource::probe(ix, probes, &mut hit);
        } else {
            ix.probe(probes, &mut hit);
        }
        n
    };
    assert_eq!(count(&ix, true, &[common, 4]), [STOP_HASH_POSTINGS, 1]);
    // One more posting, in the delta and then merged into the run.
    assert!(ix.insert(None, b"", &[common]).is_ok());
    assert_eq!(count(&ix, false, &[common, 4]), [STOP_HASH_POSTINGS + 1, 1]);
    assert_eq!(count(&ix, true, &[common, 4]), [0, 1]);
    for k in 0..200u32 {
        assert!(ix.insert(None, b"", &[1_000_000 + k; 50]).is_ok());
    }
    assert_eq!(count(&ix, true, &[4, common]), [1, 0]);
    assert_eq!(count(&ix, false, &[common])[0], STOP_HASH_POSTINGS + 1);
}

#[test]
fn mem_usage_counts_what_the_index_holds() {
    let mut rng = Rng(11);
    let mut ix = Index::new();
    let empty = ix.mem_usage();
    for _ in 0..50 {
        assert!(ix.insert(None, b"", &random_track(&mut rng, 4000)).is_ok());
    }
    let per_frame = (ix.mem_usage() - empty) as f64 / ix.frame_count() as f64;
    // 4 bytes of hash sequence plus at least 5 of posting per random frame.
    assert!(
        per_frame > 9.0 && per_frame < 12.0,
        "{per_frame} bytes per frame"
    );
}

/// End to end through the matcher: a slice of a stored track (with the
/// postings spread over runs and deltas) is found at its position.
#[test]
fn lookup_finds_a_stored_slice_at_its_position() {
    let mut rng = Rng(21);
    let mut ix = Index::new();
    let mut target = Vec::new();
    for k in 0..60 {
        let hs = random_track(&mut rng, 3000);
        if k == 41 {
            target = hs.clone();
        }
        assert!(ix.insert(None, b"", &hs).is_ok());
    }
    let query = &target[1234..1534];
    let toggles = vec![0u32; query.len()];
    let found = ix.lookup(query, &toggles, &crate::matcher::LookupParams::default());
    let Ok(found) = found else {
        panic!("lookup failed")
    };
    assert_eq!(found.first().map(|m| (m.id, m.position)), Some((42, 1234)));
    let noise: Vec<u32> = random_track(&mut rng, 300);
    let found = ix.lookup(&noise, &toggles, &crate::matcher::LookupParams::default());
    assert_eq!(found.map(|v| v.len()), Ok(0));
}

#[test]
fn heap_blocks_are_disjoint_and_hold_most_of_the_memory() {
    let mut ix = Index::new();
    let mut rng = Rng(7);
    for _ in 0..40 {
        let hashes: Vec<u32> = (0..5_000).map(|_| rng.next() as u32).collect();
        ix.insert(None, b"t", &hashes).unwrap();
    }
    let mut blocks = Vec::new();
    ix.heap_blocks(&mut |at, bytes| blocks.push((at, bytes)));
    blocks.sort_unstable();
    assert!(blocks.windows(2).all(|w| w[0].0 + w[0].1 <= w[1].0));
    // Every block is the index's own memory, rounding and small tables aside.
    let total: usize = blocks.iter().map(|b| b.1).sum();
    let owned = ix.mem_usage();
    assert!(
        total <= owned && total * 10 >= owned * 9,
        "{total} of {owned}"
    );
}
