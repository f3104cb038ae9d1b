//! Unit tests of the index: API semantics, and probe results against a naive
//! model over many random inserts, appends and removes.

use std::collections::{BTreeMap, HashMap};

use super::*;

/// A tiny deterministic generator (xorshift64*), so tests need no `rand`.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// All postings as a sorted list of (probe index, id, pos).
fn probe_all(ix: &Index, probes: &[u32]) -> Vec<(usize, TrackId, u32)> {
    let mut out = Vec::new();
    ix.probe(probes, &mut |i, slot, pos| {
        assert_eq!(
            ix.slot_hashes(slot).get(pos as usize),
            Some(&probes[i]),
            "posting points at another hash"
        );
        out.push((i, ix.slot_id(slot), pos));
    });
    out.sort_unstable();
    out
}

/// The postings a naive model expects: first frame of each run of equal hashes.
fn model_probe(model: &BTreeMap<TrackId, Vec<u32>>, probes: &[u32]) -> Vec<(usize, TrackId, u32)> {
    let mut by_hash: HashMap<u32, Vec<(TrackId, u32)>> = HashMap::new();
    for (&id, hs) in model {
        for (k, &h) in hs.iter().enumerate() {
            if k == 0 || hs[k - 1] != h {
                by_hash.entry(h).or_default().push((id, k as u32));
            }
        }
    }
    let mut out = Vec::new();
    for (i, h) in probes.iter().enumerate() {
        for &(id, pos) in by_hash.get(h).map(|v| v.as_slice()).unwrap_or(&[]) {
            out.push((i, id, pos));
        }
    }
    out.sort_unstable();
    out
}

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

/// Random inserts, appends and removes with small alphabets (many collisions,
/// long runs) and full-range hashes; probe results must equal the model's.
#[test]
fn random_operations_match_a_naive_model() {
    for seed in 1..=4u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut ix = Index::new();
        let mut model: BTreeMap<TrackId, Vec<u32>> = BTreeMap::new();
        let alphabet = [u32::MAX as u64, 50, 3000, 1 << 20][seed as usize % 4];
        for step in 0..600 {
            let op = rng.below(10);
            if op < 5 || model.is_empty() {
                let max_len = if rng.below(20) == 0 { 5000 } else { 300 };
                let len = 1 + rng.below(max_len) as usize;
                let mut hs = Vec::with_capacity(len);
                for _ in 0..len {
                    let h = if !hs.is_empty() && rng.below(4) == 0 {
                        hs[hs.len() - 1]
                    } else {
                        rng.below(alphabet + 1) as u32
                    };
                    hs.push(h);
                }
                let explicit = if rng.below(3) == 0 {
                    Some(1 + rng.below(2000) as i64)
                } else {
                    None
                };
                match ix.insert(explicit, b"", &hs) {
                    Ok(id) => assert!(model.insert(id, hs).is_none()),
                    Err(IndexError::IdExists(id)) => assert!(model.contains_key(&id)),
                    Err(e) => panic!("{e}"),
                }
            } else if op < 7 {
                let k = rng.below(model.len() as u64) as usize;
                let Some((&id, _)) = model.iter().nth(k) else {
                    continue;
                };
                let len = 1 + rng.below(100) as usize;
                let last = model[&id][model[&id].len() - 1];
                let more: Vec<u32> = (0..len)
                    .map(|_| {
                        if rng.below(3) == 0 {
                            last
                        } else {
                            rng.below(alphabet + 1) as u32
                        }
                    })
                    .collect();
                let total = model.get_mut(&id).map(|v| {
                    v.extend_from_slice(&more);
                    v.len() as u64
                });
                assert_eq!(ix.append(id, &more).ok(), total);
            } else {
                let k = rng.below(model.len() as u64) as usize;
                let Some((&id, _)) = model.iter().nth(k) else {
                    continue;
                };
                let hs = model.remove(&id).unwrap_or_default();
                assert_eq!(ix.remove(id), Ok(hs.len() as u64));
            }
            ix.check();
            assert_eq!(ix.track_count(), model.len() as u64);
            assert_eq!(
                ix.frame_count(),
                model.values().map(|v| v.len() as u64).sum::<u64>()
            );
            if step % 37 == 0 {
                let mut probes: Vec<u32> =
                    (0..200).map(|_| rng.below(alphabet + 1) as u32).collect();
                for hs in model.values().take(5) {
                    probes.extend_from_slice(&hs[..hs.len().min(50)]);
                }
                assert_eq!(
                    probe_all(&ix, &probes),
                    model_probe(&model, &probes),
                    "seed {seed} step {step}"
                );
                let mut lists: HashMap<u32, u64> = HashMap::new();
                for hs in model.values() {
                    for (k, &h) in hs.iter().enumerate() {
                        if k == 0 || hs[k - 1] != h {
                            *lists.entry(h).or_default() += 1;
                        }
                    }
                }
                let st = ix.stats();
                assert_eq!(
                    (st.distinct_hashes, st.postings, st.longest_posting),
                    (
                        lists.len() as u64,
                        lists.values().sum::<u64>(),
                        lists.values().copied().max().unwrap_or(0)
                    )
                );
                let ids: Vec<_> = ix
                    .tracks_from(1)
                    .map(|t| (t.id, t.hashes.to_vec()))
                    .collect();
                let want: Vec<_> = model.iter().map(|(&i, h)| (i, h.clone())).collect();
                assert_eq!(ids, want);
            }
        }
    }
}

fn random_track(rng: &mut Rng, len: usize) -> Vec<u32> {
    (0..len).map(|_| rng.next() as u32).collect()
}

/// Probes every stored frame's hash of `model` (a sample) plus random misses.
fn assert_probes_match(ix: &Index, model: &BTreeMap<TrackId, Vec<u32>>, rng: &mut Rng) {
    let mut probes: Vec<u32> = (0..500).map(|_| rng.next() as u32).collect();
    for hs in model.values() {
        probes.extend(hs.iter().step_by(97));
    }
    assert_eq!(probe_all(ix, &probes), model_probe(model, &probes));
}

/// Enough postings for many partitions: merges, dead-ref purging and
/// geometry changes all happen, and probes stay exact throughout.
#[test]
fn merges_purge_dead_postings_and_keep_probes_exact() {
    let mut rng = Rng(77);
    let mut ix = Index::new();
    let mut model = BTreeMap::new();
    for _ in 0..150 {
        let hs = random_track(&mut rng, 3000);
        let id = ix.insert(None, b"", &hs).unwrap_or(0);
        model.insert(id, hs);
    }
    ix.check();
    let (buckets, parts, _) = ix.postings.geometry();
    assert!(parts > 1, "{buckets} buckets in one partition");
    assert_probes_match(&ix, &model, &mut rng);
    // Remove every other track: their postings turn dead, then merges drop them.
    let ids: Vec<TrackId> = model.keys().copied().step_by(2).collect();
    for id in ids {
        let hs = model.remove(&id).unwrap_or_default();
        assert_eq!(ix.remove(id), Ok(hs.len() as u64));
        ix.check();
    }
    assert_probes_match(&ix, &model, &mut rng);
    for _ in 0..40 {
        let hs = random_track(&mut rng, 3000);
        let id = ix.insert(None, b"", &hs).unwrap_or(0);
        model.insert(id, hs);
        ix.check();
    }
    assert_probes_match(&ix, &model, &mut rng);
    assert_eq!(
        ix.postings.geometry().2,
        0,
        "dead postings left after two sweeps"
    );
    let st = ix.stats();
    assert_eq!(
        st.postings,
        model.values().map(|v| v.len() as u64).sum::<u64>()
    );
    assert_eq!(st.tracks, model.len() as u64);
}

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

#[test]
fn bulk_load_equals_one_by_one_inserts() {
    let mut rng = Rng(3);
    let tracks: Vec<(TrackId, Vec<u8>, Vec<u32>)> = (0..40)
        .map(|k| {
            (
                3 * k + 1,
                format!("d{k}").into_bytes(),
                random_track(&mut rng, 1000 + k as usize),
            )
        })
        .collect();
    let bulk = Index::from_tracks(
        500,
        tracks.iter().map(|(id, d, h)| (Some(*id), &d[..], &h[..])),
    );
    let Ok(bulk) = bulk else {
        panic!("bulk load failed")
    };
    bulk.check();
    let mut one = Index::new();
    for (id, d, h) in &tracks {
        assert_eq!(one.insert(Some(*id), d, h), Ok(*id));
    }
    assert_eq!(bulk.next_id(), 500);
    let a: Vec<_> = bulk
        .tracks_from(0)
        .map(|t| (t.id, t.descr.to_vec(), t.hashes.to_vec()))
        .collect();
    let b: Vec<_> = one
        .tracks_from(0)
        .map(|t| (t.id, t.descr.to_vec(), t.hashes.to_vec()))
        .collect();
    assert_eq!(a, b);
    let probes: Vec<u32> = tracks
        .iter()
        .flat_map(|t| t.2.iter().step_by(13).copied())
        .collect();
    assert_eq!(probe_all(&bulk, &probes), probe_all(&one, &probes));
    let dup = Index::from_tracks(
        1,
        [
            (Some(4), &b""[..], &[1u32][..]),
            (Some(4), &b""[..], &[2u32][..]),
        ],
    );
    assert_eq!(dup.err(), Some(IndexError::IdExists(4)));
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

/// Equal hashes share one home slot in a delta table: a track alternating
/// two hashes, added whole and in many small appends, must stay fast and
/// exact (no quadratic clustering).
#[test]
fn alternating_hashes_stay_fast_and_exact() {
    let mut ix = Index::new();
    let big: Vec<u32> = (0..400_000u32)
        .map(|k| if k % 2 == 0 { 7 } else { 9 })
        .collect();
    assert_eq!(ix.insert(None, b"", &big), Ok(1));
    for k in 0..300u32 {
        let small: Vec<u32> = (0..600u32)
            .map(|j| if j % 2 == 0 { 7 } else { 100 + k })
            .collect();
        assert!(ix.insert(None, b"", &small).is_ok());
    }
    ix.check();
    let mut n = 0u64;
    ix.probe(&[7], &mut |_, _, _| n += 1);
    assert_eq!(n, 200_000 + 300 * 300);
    assert_eq!(ix.stats().longest_posting, 200_000 + 300 * 300);
}

/// Inserts big enough to place their postings on two threads leave the same
/// index (checked invariants, exact probes) as the bulk load of the same
/// tracks. The thread setting is process-wide; whatever other tests do with
/// it, the answer must not change.
#[test]
fn inserts_placed_on_two_threads_equal_a_bulk_load() {
    crate::pool::set_insert_threads(2);
    let mut rng = Rng(41);
    let tracks: Vec<Vec<u32>> = (0..60).map(|_| random_track(&mut rng, 9000)).collect();
    let mut two = Index::new();
    let mut model = BTreeMap::new();
    for h in &tracks {
        let Ok(id) = two.insert(None, b"", h) else {
            panic!("insert failed")
        };
        model.insert(id, h.clone());
    }
    // Deltas hold postings placed by both threads: check them before any
    // rebuild hides them.
    two.check();
    assert_probes_match(&two, &model, &mut rng);
    let bulk = Index::from_tracks(1, tracks.iter().map(|h| (None, &b""[..], &h[..])));
    let Ok(bulk) = bulk else {
        panic!("bulk load failed")
    };
    let probes: Vec<u32> = tracks
        .iter()
        .flat_map(|h| h.iter().step_by(7).copied())
        .collect();
    assert_eq!(probe_all(&bulk, &probes), probe_all(&two, &probes));
    // Removals leave dead postings that paired merges must purge exactly.
    let ids: Vec<TrackId> = model.keys().copied().step_by(3).collect();
    for id in ids {
        assert!(two.remove(id).is_ok());
        model.remove(&id);
    }
    for _ in 0..10 {
        let h = random_track(&mut rng, 9000);
        let Ok(id) = two.insert(None, b"", &h) else {
            panic!("insert failed")
        };
        model.insert(id, h);
    }
    two.check();
    assert_probes_match(&two, &model, &mut rng);
    crate::pool::set_insert_threads(1);
}

/// The probes of `ix` equal those of a bulk load of the same tracks (and
/// those of the naive model).
fn assert_equals_bulk_load(ix: &Index, model: &BTreeMap<TrackId, Vec<u32>>, rng: &mut Rng) {
    let bulk = Index::from_tracks(
        ix.next_id(),
        model.iter().map(|(&id, h)| (Some(id), &b""[..], &h[..])),
    );
    let Ok(bulk) = bulk else {
        panic!("bulk load failed")
    };
    bulk.check();
    let mut probes: Vec<u32> = (0..2000).map(|_| rng.next() as u32).collect();
    for hs in model.values() {
        probes.extend(hs.iter().step_by(31));
    }
    let got = probe_all(ix, &probes);
    assert_eq!(got, probe_all(&bulk, &probes));
    assert_eq!(got, model_probe(model, &probes));
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
