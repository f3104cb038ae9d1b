//! `auscout.lookup` through Redis: reply shape, ordering, positions, LIMIT,
//! thresholds (explicit and the config default), RESP2 and RESP3 scores.

use auscout_testkit::server as common;

use common::{config_set, wire, Server};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::{cmd, Connection, Value};

type Hit = (String, i64, i64, f64);

fn random(rng: &mut StdRng, n: usize) -> Vec<u32> {
    (0..n).map(|_| rng.random()).collect()
}

/// 20 random tracks of 3,000 frames; every even one with a description.
fn populate(c: &mut Connection, rng: &mut StdRng) -> Vec<(i64, Vec<u32>)> {
    (0..20)
        .map(|i| {
            let h = random(rng, 3000);
            let id: i64 = if i % 2 == 0 {
                cmd("auscout.addtrack")
                    .arg("idx")
                    .arg(wire(&h))
                    .arg(format!("song {i}"))
                    .query(c)
                    .unwrap()
            } else {
                cmd("auscout.add")
                    .arg("idx")
                    .arg(wire(&h))
                    .query(c)
                    .unwrap()
            };
            (id, h)
        })
        .collect()
}

fn lookup(c: &mut Connection, q: &[u32], t: &[u32], extra: &[&str]) -> Vec<Hit> {
    cmd("auscout.lookup")
        .arg("idx")
        .arg(wire(q))
        .arg(wire(t))
        .arg(extra)
        .query(c)
        .unwrap()
}

/// Flips one of the toggled bits in `share` of the frames (distortion the
/// toggles are meant to absorb).
fn distort(rng: &mut StdRng, q: &[u32], share: f64) -> (Vec<u32>, Vec<u32>) {
    let toggles: Vec<u32> = (0..q.len())
        .map(|_| 0b1111 << rng.random_range(0..28))
        .collect();
    let q = q
        .iter()
        .zip(&toggles)
        .map(|(&h, &m)| {
            if rng.random_bool(share) {
                h ^ (m & m.wrapping_neg())
            } else {
                h
            }
        })
        .collect();
    (q, toggles)
}

#[test]
fn finds_the_track_at_the_right_position() {
    let s = Server::start();
    let mut c = s.conn();
    let mut rng = StdRng::seed_from_u64(9);
    let tracks = populate(&mut c, &mut rng);
    for (k, (id, h)) in tracks.iter().enumerate().step_by(3) {
        let q = &h[700..1200];
        let hits = lookup(&mut c, q, &vec![0; q.len()], &[]);
        assert!(!hits.is_empty(), "track {id} not found");
        let (descr, found, pos, score) = &hits[0];
        assert_eq!(found, id);
        assert_eq!(*pos, 700);
        assert!(*score > 0.99, "identical frames score {score}");
        let expected = if k % 2 == 0 {
            format!("song {k}")
        } else {
            String::new()
        };
        assert_eq!(
            descr, &expected,
            "descr is \"\" for tracks added without one"
        );
    }
}

#[test]
fn distorted_queries_are_found_through_their_toggles() {
    let s = Server::start();
    let mut c = s.conn();
    let mut rng = StdRng::seed_from_u64(10);
    let tracks = populate(&mut c, &mut rng);
    let (id, h) = &tracks[5];
    let (q, t) = distort(&mut rng, &h[100..400], 0.3);
    let hits = lookup(&mut c, &q, &t, &["0.3"]);
    assert_eq!(
        hits.first().map(|h| (h.1, h.2)),
        Some((*id, 100)),
        "{hits:?}"
    );
}

#[test]
fn unknown_audio_returns_nothing_and_results_are_sorted_and_limited() {
    let s = Server::start();
    let mut c = s.conn();
    let mut rng = StdRng::seed_from_u64(11);
    let tracks = populate(&mut c, &mut rng);
    for _ in 0..20 {
        let q = random(&mut rng, 300);
        assert!(lookup(&mut c, &q, &vec![0; 300], &[]).is_empty());
    }
    // The same audio in three tracks: all three come back, best first.
    let shared = tracks[0].1[..600].to_vec();
    let mut ids = Vec::new();
    for noise in [0u32, 1, 2] {
        let mut h = shared.clone();
        for x in h.iter_mut().step_by(5) {
            *x ^= (1 << noise) - 1 + noise; // more noise, lower score
        }
        let id: i64 = cmd("auscout.add")
            .arg("idx")
            .arg(wire(&h))
            .query(&mut c)
            .unwrap();
        ids.push(id);
    }
    let q = &shared[100..400];
    let hits = lookup(&mut c, q, &vec![0; q.len()], &["0.5"]);
    assert!(hits.len() >= 3, "{hits:?}");
    assert!(
        hits.windows(2).all(|w| w[0].3 >= w[1].3),
        "best first: {hits:?}"
    );
    let limited = lookup(&mut c, q, &vec![0; q.len()], &["0.5", "LIMIT", "2"]);
    assert_eq!(limited.len(), 2);
    assert_eq!(limited[..], hits[..2]);
    let limited = lookup(&mut c, q, &vec![0; q.len()], &["limit", "1"]);
    assert_eq!(limited.len(), 1, "LIMIT without a threshold, lower case");
}

#[test]
fn default_threshold_comes_from_the_config() {
    let s = Server::start();
    let mut c = s.conn();
    let mut rng = StdRng::seed_from_u64(12);
    let tracks = populate(&mut c, &mut rng);
    let (id, h) = &tracks[3];
    let (q, t) = distort(&mut rng, &h[0..500], 0.5);
    let hits = lookup(&mut c, &q, &t, &[]);
    let score = hits.first().map(|h| h.3).unwrap_or(0.0);
    assert_eq!(hits.first().map(|h| h.1), Some(*id));
    assert!(score < 1.0);
    config_set(&mut c, "auscout.default-threshold", "1").unwrap();
    assert!(
        lookup(&mut c, &q, &t, &[]).is_empty(),
        "score {score} is under the new default"
    );
    assert_eq!(
        lookup(&mut c, &q, &t, &["0.2"]).len(),
        1,
        "an explicit threshold wins"
    );
}

#[test]
fn score_is_a_bulk_string_in_resp2_and_a_double_in_resp3() {
    let s = Server::start();
    let mut c = s.conn();
    let mut rng = StdRng::seed_from_u64(13);
    let tracks = populate(&mut c, &mut rng);
    let q = wire(&tracks[0].1[..200]);
    let t = wire(&[0; 200]);
    let reply: Value = cmd("auscout.lookup")
        .arg("idx")
        .arg(&q)
        .arg(&t)
        .query(&mut c)
        .unwrap();
    let Value::Array(hits) = reply else {
        panic!("{reply:?}")
    };
    let Some(Value::Array(first)) = hits.first() else {
        panic!("{hits:?}")
    };
    assert!(matches!(first[3], Value::BulkString(_)), "{first:?}");

    let mut c3 = redis::Client::open(format!("{}?protocol=resp3", s.url()))
        .unwrap()
        .get_connection()
        .unwrap();
    let reply: Value = cmd("auscout.lookup")
        .arg("idx")
        .arg(&q)
        .arg(&t)
        .query(&mut c3)
        .unwrap();
    let Value::Array(hits) = reply else {
        panic!("{reply:?}")
    };
    let Some(Value::Array(first)) = hits.first() else {
        panic!("{hits:?}")
    };
    assert!(matches!(first[3], Value::Double(_)), "{first:?}");
}

#[test]
fn threads_change_speed_not_answers() {
    // Long queries are split over the engine pool (default 2 threads); one
    // thread must give the very same reply, for hits and for misses.
    let s = Server::start();
    let mut c = s.conn();
    let mut rng = StdRng::seed_from_u64(21);
    let tracks = populate(&mut c, &mut rng);
    let mut queries = Vec::new();
    for (_, h) in tracks.iter().step_by(4) {
        queries.push(distort(&mut rng, &h[500..2000], 0.3));
    }
    let unknown = random(&mut rng, 1500);
    queries.push((unknown, vec![0b1111; 1500]));
    let mut replies = Vec::new();
    for threads in ["2", "1", "8"] {
        config_set(&mut c, "auscout.threads", threads).unwrap();
        let all: Vec<Vec<Hit>> = queries
            .iter()
            .map(|(q, t)| lookup(&mut c, q, t, &["0"]))
            .collect();
        assert!(all.iter().filter(|r| !r.is_empty()).count() >= 5);
        replies.push(all);
    }
    assert_eq!(replies[0], replies[1]);
    assert_eq!(replies[1], replies[2]);
}

/// A track whose neighbouring frames share most bits, as the hashes of
/// overlapping audio frames do: each frame flips two bits of the one before.
fn smooth(rng: &mut StdRng, n: usize) -> Vec<u32> {
    let mut h: u32 = rng.random();
    (0..n)
        .map(|_| {
            h ^= (1 << rng.random_range(0..32)) | (1 << rng.random_range(0..32));
            h
        })
        .collect()
}

/// `frames` query frames of `track` from `at`, as a clip played `speed`
/// times fast hashes them: query frame `i` is track frame `at + speed·i`.
fn played(track: &[u32], at: usize, speed: f64, frames: usize) -> Vec<u32> {
    (0..frames)
        .map(|i| track[at + (i as f64 * speed).round() as usize])
        .collect()
}

#[test]
fn withspeed_adds_the_fitted_speed_of_each_match() {
    let s = Server::start();
    let mut c = s.conn();
    let mut rng = StdRng::seed_from_u64(31);
    populate(&mut c, &mut rng);
    let track = smooth(&mut rng, 6000);
    let id: i64 = cmd("auscout.addtrack")
        .arg("idx")
        .arg(wire(&track))
        .arg("fast")
        .query(&mut c)
        .unwrap();
    for (speed, frames) in [(1.03, 900), (1.05, 500), (1.07, 900), (0.96, 700)] {
        let q = played(&track, 1500, speed, frames);
        let (q, t) = distort(&mut rng, &q, 0.2);
        let plain: Vec<Hit> = lookup(&mut c, &q, &t, &[]);
        let with: Vec<(String, i64, i64, f64, f64)> = cmd("auscout.lookup")
            .arg("idx")
            .arg(wire(&q))
            .arg(wire(&t))
            .arg("WITHSPEED")
            .query(&mut c)
            .unwrap();
        let first = with.first().expect("the played track is found");
        assert_eq!(first.1, id, "speed {speed}");
        assert!(
            (first.4 - speed).abs() <= 0.01 * speed,
            "played at {speed}: reported {}",
            first.4
        );
        // The option adds the speed and changes nothing else.
        let without: Vec<Hit> = with.iter().map(|h| (h.0.clone(), h.1, h.2, h.3)).collect();
        assert_eq!(without, plain, "speed {speed}");
    }
}

#[test]
fn withspeed_goes_with_a_threshold_and_a_limit() {
    let s = Server::start();
    let mut c = s.conn();
    let mut rng = StdRng::seed_from_u64(32);
    let tracks = populate(&mut c, &mut rng);
    let q = &tracks[4].1[1000..1400];
    let t = vec![0; q.len()];
    for extra in [
        &["0.3", "WITHSPEED"][..],
        &["0.3", "LIMIT", "1", "withspeed"],
        &["WITHSPEED", "LIMIT", "1"],
    ] {
        let reply: Value = cmd("auscout.lookup")
            .arg("idx")
            .arg(wire(q))
            .arg(wire(&t))
            .arg(extra)
            .query(&mut c)
            .unwrap();
        let Value::Array(hits) = reply else {
            panic!("{reply:?}")
        };
        let Some(Value::Array(first)) = hits.first() else {
            panic!("{extra:?}: {hits:?}")
        };
        assert_eq!(first.len(), 5, "{extra:?}: {first:?}");
        assert_eq!(first[1], Value::Int(tracks[4].0));
        let Value::BulkString(speed) = &first[4] else {
            panic!("a bulk string in RESP2: {first:?}")
        };
        let speed: f64 = std::str::from_utf8(speed).unwrap().parse().unwrap();
        assert!((speed - 1.0).abs() < 0.005, "{extra:?}: {speed}");
    }
    // The threshold comes first, as without the option.
    let err = cmd("auscout.lookup")
        .arg("idx")
        .arg(wire(q))
        .arg(wire(&t))
        .arg("WITHSPEED")
        .arg("0.3")
        .query::<Value>(&mut c)
        .unwrap_err();
    assert!(err.to_string().contains("unknown option"), "{err}");
}
