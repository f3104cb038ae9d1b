//! Probe results against a naive model, and the bulk load against inserts.

use super::*;

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
