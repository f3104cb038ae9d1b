//! Matcher tests over a plain in-memory [`FrameSource`].
//!
//! Tracks are "smooth" random sequences: each frame flips ~3 random bits of
//! the previous one, as real hashes of overlapping frames do, so adjacent
//! frames are similar, runs of equal hashes occur, and toggled variants hit
//! neighbouring positions — the situations the voting must cope with.

use std::collections::HashMap;

use super::*;

/// splitmix64: a seeded generator so every test is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn u32(&mut self) -> u32 {
        (self.next() >> 32) as u32
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, p: f64) -> bool {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }
    /// A mask of `k` distinct random bits.
    fn mask(&mut self, k: u32) -> u32 {
        let mut m = 0u32;
        while m.count_ones() < k {
            m |= 1 << self.below(32);
        }
        m
    }
}

fn smooth_track(rng: &mut Rng, len: usize) -> Vec<u32> {
    let mut h = rng.u32();
    (0..len)
        .map(|_| {
            for _ in 0..3 {
                if rng.chance(0.9) {
                    h ^= 1 << rng.below(32);
                }
            }
            h
        })
        .collect()
}

#[derive(Default)]
struct MemSource {
    postings: HashMap<u32, Vec<(u32, u32)>>,
    tracks: Vec<(TrackId, Vec<u32>)>,
}

impl MemSource {
    fn add(&mut self, id: TrackId, hashes: Vec<u32>) -> u32 {
        let slot = self.tracks.len() as u32;
        for (pos, &h) in hashes.iter().enumerate() {
            if pos > 0 && hashes[pos - 1] == h {
                continue; // one posting per run, at its first frame
            }
            self.postings.entry(h).or_default().push((slot, pos as u32));
        }
        self.tracks.push((id, hashes));
        slot
    }

    fn random(rng: &mut Rng, tracks: usize, len: usize) -> Self {
        let mut src = MemSource::default();
        for t in 0..tracks {
            src.add(100 + t as TrackId, smooth_track(rng, len));
        }
        src
    }
}

impl FrameSource for MemSource {
    fn probe(&self, probes: &[u32], hit: &mut dyn FnMut(usize, u32, u32)) {
        for (i, h) in probes.iter().enumerate() {
            for &(slot, pos) in self.postings.get(h).map_or(&[][..], |v| v.as_slice()) {
                hit(i, slot, pos);
            }
        }
    }
    fn hashes(&self, slot: u32) -> &[u32] {
        &self.tracks[slot as usize].1
    }
    fn id(&self, slot: u32) -> TrackId {
        self.tracks[slot as usize].0
    }
}

fn params() -> LookupParams {
    LookupParams::default()
}

/// Query = `track[at..at+len]` with 4 toggle bits per frame; `flipped` of the
/// frames get 2 of their toggle bits flipped (the distortion toggles model).
fn distorted_query(
    rng: &mut Rng,
    track: &[u32],
    at: usize,
    len: usize,
    flipped: f64,
) -> (Vec<u32>, Vec<u32>) {
    let mut q = Vec::with_capacity(len);
    let mut t = Vec::with_capacity(len);
    for &h in &track[at..at + len] {
        let mask = rng.mask(4);
        let mut h = h;
        if rng.chance(flipped) {
            let bits: Vec<u32> = (0..32).filter(|b| mask & (1 << b) != 0).collect();
            let a = bits[rng.below(4)];
            let b = loop {
                let b = bits[rng.below(4)];
                if b != a {
                    break b;
                }
            };
            h ^= (1 << a) | (1 << b);
        }
        q.push(h);
        t.push(mask);
    }
    (q, t)
}

#[test]
fn exact_query_is_found_at_its_position() {
    let mut rng = Rng(1);
    let src = MemSource::random(&mut rng, 50, 3000);
    let target = 17;
    let q = src.tracks[target].1[1234..1234 + 500].to_vec();
    let got = lookup(&src, &q, &vec![0; q.len()], &params()).unwrap();
    let first = got.first().expect("a match");
    assert_eq!(first.id, 100 + target as TrackId);
    assert_eq!(first.position, 1234);
    assert_eq!(first.score, 1.0);
}

#[test]
fn distorted_queries_are_found() {
    let mut rng = Rng(2);
    let src = MemSource::random(&mut rng, 100, 3000);
    for trial in 0..40 {
        let target = rng.below(100);
        let len = [90, 200, 500, 1000][trial % 4];
        let at = rng.below(3000 - len);
        let (q, t) = distorted_query(&mut rng, &src.tracks[target].1, at, len, 0.3);
        let got = lookup(&src, &q, &t, &params()).unwrap();
        let first = got
            .first()
            .unwrap_or_else(|| panic!("trial {trial} (len {len}) found nothing"));
        assert_eq!(first.id, 100 + target as TrackId, "trial {trial}");
        assert_eq!(first.position, at as i64, "trial {trial}");
    }
}

/// Unrelated queries must score under the default threshold in ≥ 99% of
/// lookups at every length. The index and the queries share "silence" hashes
/// (the same few values everywhere) so that candidates do get votes and go
/// through verification instead of being empty.
#[test]
fn unrelated_queries_match_nothing_at_every_length() {
    let mut rng = Rng(3);
    let silence = [0u32, u32::MAX, 0x8000_0000];
    let mut src = MemSource::default();
    for t in 0..200 {
        let mut tr = smooth_track(&mut rng, 2000);
        for _ in 0..10 {
            let at = rng.below(tr.len());
            tr[at] = silence[rng.below(3)];
        }
        src.add(t, tr);
    }
    for len in [90usize, 200, 500, 1000] {
        let trials = 100;
        let mut positives = 0;
        let mut verified_any = 0;
        // Threshold 0 returns every verified candidate, so one lookup shows
        // both that verification ran and what the best score was.
        let any = LookupParams {
            threshold: 0.0,
            ..params()
        };
        for _ in 0..trials {
            let mut q = smooth_track(&mut rng, len);
            for _ in 0..len / 20 {
                let at = rng.below(len);
                q[at] = silence[rng.below(3)];
            }
            let t: Vec<u32> = (0..len).map(|_| rng.mask(4)).collect();
            let got = lookup(&src, &q, &t, &any).unwrap();
            if let Some(best) = got.first() {
                verified_any += 1;
                if best.score >= params().threshold {
                    positives += 1;
                }
            }
        }
        assert!(
            verified_any == trials,
            "len {len}: only {verified_any} lookups had a candidate to verify"
        );
        assert!(
            positives * 100 <= trials,
            "len {len}: {positives}/{trials} false positives"
        );
    }
}

#[test]
fn a_clip_played_two_percent_fast_is_found() {
    let mut rng = Rng(4);
    let src = MemSource::random(&mut rng, 50, 4000);
    for (trial, target) in [3usize, 21, 44].into_iter().enumerate() {
        let at = 500 + 700 * trial;
        // Every 50th frame dropped: 1,000 query frames span 1,020 track frames.
        let q: Vec<u32> = src.tracks[target].1[at..]
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 50 != 49)
            .map(|(_, h)| *h)
            .take(1000)
            .collect();
        let t: Vec<u32> = (0..q.len()).map(|_| rng.mask(4)).collect();
        let got = lookup(&src, &q, &t, &params()).unwrap();
        let first = got.first().expect("a match");
        assert_eq!(first.id, 100 + target as TrackId);
        assert!(
            (first.position - at as i64).abs() <= 1,
            "position {} vs {at}",
            first.position
        );
        assert!(first.score > 0.8, "score {}", first.score);
    }
}

#[test]
fn bad_queries_are_errors() {
    let src = MemSource::default();
    let p = LookupParams {
        max_toggle_bits: 4,
        ..params()
    };
    assert_eq!(lookup(&src, &[], &[], &p), Err(LookupError::Empty));
    assert_eq!(
        lookup(&src, &[1, 2], &[0], &p),
        Err(LookupError::LengthMismatch(2, 1))
    );
    assert_eq!(
        lookup(&src, &[1, 2], &[0, 0b11111], &p),
        Err(LookupError::TooManyToggles { bits: 5, cap: 4 })
    );
    // A caller's cap never lifts the hard one: 2^32 probes would hang.
    let wide = LookupParams {
        max_toggle_bits: 32,
        ..params()
    };
    assert_eq!(
        lookup(&src, &[1], &[u32::MAX], &wide),
        Err(LookupError::TooManyToggles {
            bits: 32,
            cap: HARD_MAX_TOGGLE_BITS
        })
    );
    assert_eq!(lookup(&src, &[1], &[0b1111], &p), Ok(vec![]));
}

/// One hash sits in thousands of tracks (like digital silence); the query
/// holds it too. The right track must still come first, where it is.
#[test]
fn a_hash_shared_by_thousands_of_tracks_does_not_hide_the_right_one() {
    let mut rng = Rng(5);
    let common = 0x5555_5555;
    let mut src = MemSource::default();
    for t in 0..3000 {
        let mut tr = smooth_track(&mut rng, 300);
        for _ in 0..8 {
            let at = rng.below(300);
            tr[at] = common;
        }
        src.add(t, tr);
    }
    let target = 1234;
    let mut tr = src.tracks[target].1.clone();
    for at in (0..300).step_by(7) {
        tr[at] = common;
    }
    src.tracks[target].1.clear();
    let target_id = 99_999;
    src.add(target_id, tr.clone());
    let (q, t) = distorted_query(&mut rng, &tr, 50, 200, 0.3);
    let got = lookup(&src, &q, &t, &params()).unwrap();
    let first = got.first().expect("a match");
    assert_eq!((first.id, first.position), (target_id, 50));
}

/// The same through the index, where the shared hash is a stop hash (far
/// more postings than `STOP_HASH_POSTINGS`): the right track still comes
/// first, where it is, on one thread and on two.
#[test]
fn a_stop_hash_in_the_index_does_not_hide_the_right_one() {
    let mut rng = Rng(6);
    let common = 0x5555_5555;
    let mut ix = Index::new();
    let mut target = Vec::new();
    for t in 0..3000 {
        let mut tr = smooth_track(&mut rng, 300);
        let every = if t == 1234 { 7 } else { 37 };
        for at in (rng.below(every)..300).step_by(every) {
            tr[at] = common;
        }
        if t == 1234 {
            target = tr.clone();
        }
        assert!(ix.insert(None, b"", &tr).is_ok());
    }
    let mut shared = 0;
    ix.probe(&[common], &mut |_, _, _| shared += 1);
    assert!(shared > 4 * STOP_HASH_POSTINGS, "{shared} postings");
    let (q, t) = distorted_query(&mut rng, &target, 50, 200, 0.3);
    for threads in [1, 2] {
        let p = LookupParams {
            threads,
            ..params()
        };
        let got = ix.lookup(&q, &t, &p).unwrap();
        let first = got.first().expect("a match");
        assert_eq!((first.id, first.position), (1235, 50));
    }
}

#[test]
fn a_query_repeating_its_hashes_still_aligns() {
    // Both the track and the query hold long runs of equal hashes.
    let mut rng = Rng(6);
    let mut src = MemSource::random(&mut rng, 20, 2000);
    let run: Vec<u32> = smooth_track(&mut rng, 100)
        .into_iter()
        .flat_map(|h| [h; 6])
        .collect();
    src.add(7777, run.clone());
    let q = run[123..123 + 300].to_vec();
    let got = lookup(&src, &q, &vec![0; q.len()], &params()).unwrap();
    let first = got.first().expect("a match");
    assert_eq!((first.id, first.position), (7777, 123));
}

#[test]
fn results_are_one_per_track_best_first_and_limited() {
    let mut rng = Rng(7);
    let mut src = MemSource::random(&mut rng, 10, 1000);
    // Three copies of one track and a distorted fourth: all match.
    let base = smooth_track(&mut rng, 1000);
    for id in [501, 502, 503] {
        src.add(id, base.clone());
    }
    let q = base[100..400].to_vec();
    let t = vec![0; q.len()];
    let got = lookup(&src, &q, &t, &params()).unwrap();
    let ids: Vec<TrackId> = got.iter().map(|m| m.id).collect();
    assert_eq!(ids, vec![501, 502, 503]);
    assert!(got.windows(2).all(|w| w[0].score >= w[1].score));
    let one = lookup(
        &src,
        &q,
        &t,
        &LookupParams {
            limit: Some(1),
            ..params()
        },
    )
    .unwrap();
    assert_eq!(one.len(), 1);
}

#[test]
fn lookups_split_over_threads_answer_exactly_as_one_thread() {
    // Same verdicts (scores, positions, order) whatever the thread count,
    // for matching and unrelated queries, short and long: the split changes
    // where work runs, never what is counted.
    let mut rng = Rng(77);
    let src = MemSource::random(&mut rng, 40, 4000);
    for (len, matching) in [(90, true), (1000, true), (1000, false), (3000, true)] {
        let (q, t) = if matching {
            let at = rng.below(4000 - len);
            let track = src.tracks[rng.below(40)].1.clone();
            distorted_query(&mut rng, &track, at, len, 0.3)
        } else {
            let q: Vec<u32> = (0..len).map(|_| rng.u32()).collect();
            let t: Vec<u32> = (0..len).map(|_| rng.mask(4)).collect();
            (q, t)
        };
        let one = lookup_candidates(&src, &q, &t, &params()).unwrap();
        assert!(!one.is_empty());
        for threads in [2, 3, 8] {
            let many = LookupParams {
                threads,
                ..params()
            };
            assert_eq!(
                lookup_candidates(&src, &q, &t, &many).unwrap(),
                one,
                "len {len} threads {threads}"
            );
        }
    }
}

/// A clip too noisy for any probe to land is still scored at its known
/// alignment as a lookup would score it, and an unrelated alignment of the
/// same clip scores at chance.
#[test]
fn a_known_alignment_is_scored_as_a_lookup_would_score_it() {
    let mut rng = Rng(9);
    let src = MemSource::random(&mut rng, 20, 3000);
    let track = &src.tracks[5].1;
    let (at, len) = (1200, 470);
    // 9 of 32 bits flipped in every frame: no toggle mask of a few bits
    // holds them, yet the clip is far from chance (BER 0.28).
    let q: Vec<u32> = track[at..at + len]
        .iter()
        .map(|&h| h ^ rng.mask(9))
        .collect();
    let found = lookup(&src, &q, &vec![0; len], &params()).unwrap();
    assert!(found.is_empty(), "exact probes found {found:?}");

    let a = verify_alignment(&q, track, at as i64 + 2).expect("an alignment");
    assert_eq!(a.position, at as i64);
    assert_eq!(a.bit_errors, 9 * a.frames);
    assert_eq!(a.score, chance::score(a.bit_errors, a.frames));
    assert!(a.score > 0.45, "score {}", a.score);

    let off = verify_alignment(&q, track, 100).expect("an alignment");
    assert!(off.score < chance::CHANCE_SCORE, "{off:?}");
    assert!(verify_alignment(&q, track, 5000).is_none());
}
