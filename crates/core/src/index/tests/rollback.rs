//! A write that panics half-way leaves the index as it was before it: every
//! fault point of insert, append (in place and moving) and remove is tried
//! in turn, and afterwards the tracks, the probes and the invariants are
//! those of the index before the write, and the index goes on working.

use std::panic::{catch_unwind, AssertUnwindSafe};

use super::*;
use crate::fault;

/// An index of `n` random tracks big enough for merges and splits to run,
/// with the model of its tracks.
fn sample(rng: &mut Rng, n: usize) -> (Index, BTreeMap<TrackId, Vec<u32>>) {
    let mut ix = Index::new();
    let mut model = BTreeMap::new();
    for _ in 0..n {
        let len = 200 + rng.below(3000) as usize;
        let h = random_track(rng, len);
        let id = ix.insert(None, b"t", &h).expect("insert");
        model.insert(id, h);
    }
    (ix, model)
}

/// The tracks as (id, descr, hashes), and the index's next id.
type State = (Vec<(TrackId, Vec<u8>, Vec<u32>)>, TrackId);

fn state(ix: &Index) -> State {
    let tracks = ix
        .tracks_from(1)
        .map(|t| (t.id, t.descr.to_vec(), t.hashes.to_vec()))
        .collect();
    (tracks, ix.next_id())
}

/// Runs `write` with the `n`-th fault point armed; `true` if it panicked.
fn with_fault(n: u64, sticky: bool, write: impl FnOnce()) -> bool {
    fault::arm(n, sticky);
    let panicked = catch_unwind(AssertUnwindSafe(write)).is_err();
    fault::arm(0, false);
    panicked
}

/// Every fault point of `write` (as run on a fresh copy of `base`) in turn:
/// each panic leaves the copy equal to `base`; returns how many fired.
fn every_fault_rolls_back(
    base: &Index,
    model: &BTreeMap<TrackId, Vec<u32>>,
    rng: &mut Rng,
    write: impl Fn(&mut Index),
) -> u64 {
    let before = state(base);
    let mut fired = 0;
    for n in 1.. {
        let mut ix = base.clone();
        if !with_fault(n, false, || write(&mut ix)) {
            break;
        }
        fired += 1;
        assert!(!ix.is_damaged(), "fault {n}: roll back failed");
        assert_eq!(state(&ix), before, "fault {n}: tracks changed");
        ix.check();
        assert_probes_match(&ix, model, rng);
        // And it goes on working: the same write now succeeds.
        write(&mut ix);
        ix.check();
    }
    fired
}

#[test]
fn a_panicking_insert_is_undone() {
    let mut rng = Rng(11);
    let (ix, model) = sample(&mut rng, 40);
    let new = random_track(&mut rng, 5000);
    let fired = every_fault_rolls_back(&ix, &model, &mut rng, |ix| {
        ix.insert(None, b"new", &new).expect("insert");
    });
    assert!(fired >= 2, "only {fired} fault points in an insert");
}

#[test]
fn a_panicking_append_is_undone_in_place_and_when_moving() {
    let mut rng = Rng(12);
    let (ix, model) = sample(&mut rng, 40);
    let more = random_track(&mut rng, 4000);
    let last = *model.keys().last().expect("tracks");
    let first = *model.keys().next().expect("tracks");
    // The last track grows in place; the first one moves to the top.
    for id in [last, first] {
        let fired = every_fault_rolls_back(&ix, &model, &mut rng, |ix| {
            ix.append(id, &more).expect("append");
        });
        assert!(fired >= 2, "only {fired} fault points appending to {id}");
    }
}

#[test]
fn a_panicking_remove_is_undone() {
    let mut rng = Rng(13);
    let (ix, model) = sample(&mut rng, 40);
    let id = *model.keys().nth(7).expect("tracks");
    let fired = every_fault_rolls_back(&ix, &model, &mut rng, |ix| {
        ix.remove(id).expect("remove");
    });
    assert!(fired >= 1, "no fault point in a remove");
}

#[test]
fn a_panic_during_a_rebase_is_undone() {
    // Refs run out on this insert, so it re-bases every track first.
    let mut rng = Rng(14);
    let mut ix = Index::with_ref_limit(40_000);
    let mut model = BTreeMap::new();
    for _ in 0..12 {
        let h = random_track(&mut rng, 3000);
        model.insert(ix.insert(None, b"", &h).expect("insert"), h);
    }
    let victims: Vec<TrackId> = model.keys().copied().step_by(2).collect();
    for id in victims {
        ix.remove(id).expect("remove");
        model.remove(&id);
    }
    let new = random_track(&mut rng, 6000);
    let rebuilds = ix.rebuilds;
    let fired = every_fault_rolls_back(&ix, &model, &mut rng, |ix| {
        ix.insert(None, b"", &new).expect("insert");
    });
    assert!(
        fired >= 3,
        "only {fired} fault points in a re-basing insert"
    );
    let mut probe = ix.clone();
    probe.insert(None, b"", &new).expect("insert");
    assert!(probe.rebuilds > rebuilds, "the insert did not re-base");
}

#[test]
fn a_failed_roll_back_marks_the_index_damaged() {
    let mut rng = Rng(15);
    let (mut ix, _) = sample(&mut rng, 10);
    let new = random_track(&mut rng, 1000);
    // Every fault point from the first on panics: the roll back's too.
    assert!(with_fault(1, true, || {
        let _ = ix.insert(None, b"new", &new);
    }));
    assert!(ix.is_damaged());
}

#[test]
fn fault_points_are_disarmed_by_default() {
    let mut rng = Rng(16);
    let (mut ix, _) = sample(&mut rng, 10);
    assert!(!fault::armed());
    ix.insert(None, b"", &random_track(&mut rng, 100))
        .expect("insert");
    assert!(!ix.is_damaged());
}
