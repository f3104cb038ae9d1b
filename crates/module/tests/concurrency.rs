//! Lookups answered on module threads while other clients write: every
//! answer is one the lookup gives on some state of the index between its
//! sending and its reply (checked against the engine run serially on every
//! state), a key deleted, renamed, overwritten or flushed under a running
//! lookup is no problem, and `MULTI`/`EXEC` and Lua get their lookups
//! inline, in order with the writes around them.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use auscout_core::{Index, LookupParams};
use auscout_testkit::server::{info_field, wire, Server};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::{cmd, Connection};

type Hit = (Vec<u8>, i64, i64, f64);

const THRESHOLD: f64 = 0.2;

fn random_track(rng: &mut StdRng, n: usize) -> Vec<u32> {
    (0..n).map(|_| rng.random()).collect()
}

/// An excerpt of `h` with 4 toggle bits per frame and one of them flipped in
/// a third of the frames.
fn query_of(rng: &mut StdRng, h: &[u32], len: usize) -> (Vec<u32>, Vec<u32>) {
    let start = rng.random_range(0..h.len() - len);
    let toggles: Vec<u32> = (0..len)
        .map(|_| 0b1111 << rng.random_range(0..28))
        .collect();
    let q = h[start..start + len]
        .iter()
        .zip(&toggles)
        .map(|(&x, &m)| {
            if rng.random_bool(0.3) {
                x ^ (m & m.wrapping_neg())
            } else {
                x
            }
        })
        .collect();
    (q, toggles)
}

fn lookup(c: &mut Connection, key: &str, q: &[u32], t: &[u32]) -> redis::RedisResult<Vec<Hit>> {
    cmd("auscout.lookup")
        .arg(key)
        .arg(wire(q))
        .arg(wire(t))
        .arg(THRESHOLD)
        .query(c)
}

fn model_lookup(ix: &Index, q: &[u32], t: &[u32]) -> Vec<Hit> {
    let params = LookupParams {
        threshold: THRESHOLD,
        ..LookupParams::default()
    };
    let Ok(found) = ix.lookup(q, t, &params) else {
        panic!("model lookup failed")
    };
    found
        .into_iter()
        .map(|m| {
            let descr = ix.track(m.id).map_or(Vec::new(), |t| t.descr.to_vec());
            (descr, m.id, m.position, m.score)
        })
        .collect()
}

#[derive(Clone)]
enum Op {
    Add(usize),
    Del(i64),
}

/// What one reader saw: the query, the reply, and the writes completed
/// before it was sent (`lo`) and started before its reply came (`hi`).
struct Reading {
    query: usize,
    reply: Vec<Hit>,
    lo: usize,
    hi: usize,
}

#[test]
fn concurrent_lookups_and_writes_answer_as_some_serial_order() {
    answers_follow_some_serial_order(Server::start());
}

#[test]
fn with_a_module_thread_polling_answers_still_follow_some_serial_order() {
    answers_follow_some_serial_order(
        Server::builder()
            .module_arg("poll-us")
            .module_arg("10000")
            .start(),
    );
}

/// Lookups from several clients while another writes: each answer is that
/// of the index between two writes made while the lookup was under way.
fn answers_follow_some_serial_order(s: Server) {
    let mut c = s.conn();
    let mut rng = StdRng::seed_from_u64(77);
    let tracks: Vec<Vec<u32>> = (0..40).map(|_| random_track(&mut rng, 2500)).collect();
    let add = |c: &mut Connection, k: usize| -> i64 {
        cmd("auscout.addtrack")
            .arg("idx")
            .arg(wire(&tracks[k]))
            .arg(format!("track {k}"))
            .query(c)
            .expect("addtrack")
    };
    // Track 0 stays, so the key never goes away.
    let mut live: Vec<(usize, i64)> = (0..10).map(|k| (k, add(&mut c, k))).collect();
    let initial = live.clone();
    let queries: Vec<(Vec<u32>, Vec<u32>)> = (0..60)
        .map(|i| query_of(&mut rng, &tracks[i % tracks.len()], 400))
        .collect();

    let started = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let writing = Arc::new(AtomicBool::new(true));
    let readers: Vec<_> = (0..3u64)
        .map(|r| {
            let (started, done, writing) = (started.clone(), done.clone(), writing.clone());
            let queries = queries.clone();
            let mut c = s.conn();
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(r);
                let mut seen = Vec::new();
                let mut after = 0;
                while after < 5 {
                    if !writing.load(Ordering::SeqCst) {
                        after += 1;
                    }
                    let k = rng.random_range(0..queries.len());
                    let lo = done.load(Ordering::SeqCst);
                    let reply =
                        lookup(&mut c, "idx", &queries[k].0, &queries[k].1).expect("lookup");
                    let hi = started.load(Ordering::SeqCst);
                    seen.push(Reading {
                        query: k,
                        reply,
                        lo,
                        hi,
                    });
                }
                seen
            })
        })
        .collect();

    let mut ops = Vec::new();
    let mut next = 10;
    for _ in 0..50 {
        let op = if next < tracks.len() && (live.len() < 3 || rng.random_bool(0.6)) {
            next += 1;
            Op::Add(next - 1)
        } else {
            let i = rng.random_range(1..live.len());
            Op::Del(live.remove(i).1)
        };
        started.fetch_add(1, Ordering::SeqCst);
        match &op {
            Op::Add(k) => live.push((*k, add(&mut c, *k))),
            Op::Del(id) => {
                let _: i64 = cmd("auscout.del")
                    .arg("idx")
                    .arg(*id)
                    .query(&mut c)
                    .expect("del");
            }
        }
        done.fetch_add(1, Ordering::SeqCst);
        ops.push(op);
    }
    writing.store(false, Ordering::SeqCst);
    let readings: Vec<Reading> = readers
        .into_iter()
        .flat_map(|h| h.join().expect("reader"))
        .collect();

    // Replay: the model after j writes is state j; each reading must equal
    // the model's answer in one of the states its lookup overlapped.
    let mut model = Index::new();
    for &(k, id) in &initial {
        assert_eq!(
            model.insert(None, format!("track {k}").as_bytes(), &tracks[k]),
            Ok(id)
        );
    }
    let mut matched = vec![false; readings.len()];
    for j in 0..=ops.len() {
        for (r, ok) in readings.iter().zip(matched.iter_mut()) {
            if !*ok && (r.lo..=r.hi).contains(&j) {
                let (q, t) = &queries[r.query];
                *ok = model_lookup(&model, q, t) == r.reply;
            }
        }
        match ops.get(j) {
            Some(Op::Add(k)) => {
                assert!(model
                    .insert(None, format!("track {k}").as_bytes(), &tracks[*k])
                    .is_ok());
            }
            Some(Op::Del(id)) => assert!(model.remove(*id).is_ok()),
            None => {}
        }
    }
    let overlapping = readings.iter().filter(|r| r.hi > r.lo).count();
    let found = readings.iter().filter(|r| !r.reply.is_empty()).count();
    let wrong = matched.iter().filter(|ok| !**ok).count();
    if let Some(r) = matched.iter().position(|ok| !ok).map(|i| &readings[i]) {
        panic!(
            "{wrong} of {} lookups answered as no serial order would; first: query {}, \
             writes {}..={}, reply {:?}",
            readings.len(),
            r.query,
            r.lo,
            r.hi,
            r.reply
        );
    }
    assert!(overlapping > 0, "no lookup overlapped a write");
    assert!(
        found > 0 && found < readings.len(),
        "{found} of {} found something",
        readings.len()
    );
}

/// Waits until the server reports a blocked client (a lookup under way on a
/// module thread).
fn wait_blocked(c: &mut Connection) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while info_field(c, "clients", "blocked_clients").as_deref() != Some("1") {
        assert!(
            Instant::now() < deadline,
            "the lookup never showed as blocked"
        );
    }
}

#[test]
fn a_key_deleted_renamed_or_flushed_under_a_running_lookup() {
    // 9 toggle bits on 3,000 frames: 1.5M probes, a lookup long enough to
    // be caught running.
    let s = Server::builder()
        .module_arg("max-toggle-bits")
        .module_arg("9")
        .start();
    let mut c = s.conn();
    let mut rng = StdRng::seed_from_u64(5);
    let tracks: Vec<Vec<u32>> = (0..100).map(|_| random_track(&mut rng, 5000)).collect();
    let build = |c: &mut Connection| {
        for (k, h) in tracks.iter().enumerate() {
            let _: i64 = cmd("auscout.addtrack")
                .arg("orig")
                .arg(wire(h))
                .arg(format!("track {k}"))
                .query(c)
                .expect("addtrack");
        }
    };
    build(&mut c);
    let q = tracks[7][1000..4000].to_vec();
    let t = vec![0x1ff << 3; q.len()];
    let expected = lookup(&mut c, "orig", &q, &t).expect("lookup");
    assert_eq!(expected.first().map(|h| (h.1, h.2)), Some((8, 1000)));

    let ways: [&[&str]; 7] = [
        &["DEL", "idx"],
        &["UNLINK", "idx"],
        &["RENAME", "idx", "other"],
        &["SET", "idx", "a string now"],
        &["auscout.del", "idx", "8"],
        &["FLUSHALL", "ASYNC"],
        &["FLUSHALL"],
    ];
    for way in ways {
        if info_field(&mut c, "keyspace", "db0").is_none_or(|v| !v.contains("keys=")) {
            build(&mut c);
        }
        let _: () = cmd("DEL")
            .arg("idx")
            .arg("other")
            .query(&mut c)
            .expect("DEL");
        let copied: i64 = cmd("COPY")
            .arg("orig")
            .arg("idx")
            .query(&mut c)
            .expect("COPY");
        assert_eq!(copied, 1);
        let mut looker = s.conn();
        let (q2, t2) = (q.clone(), t.clone());
        let running = std::thread::spawn(move || lookup(&mut looker, "idx", &q2, &t2));
        wait_blocked(&mut c);
        let mut destroy = cmd(way[0]);
        destroy.arg(&way[1..]);
        let _: redis::Value = destroy
            .query(&mut c)
            .unwrap_or_else(|e| panic!("{way:?}: {e}"));
        let answer = running.join().expect("lookup thread");
        let answer = answer.unwrap_or_else(|e| panic!("{way:?}: {e}"));
        if way[0] == "auscout.del" {
            // A write waits for the lookups holding the index; one queued
            // behind it may also run after it: both answers are serial.
            let after = lookup(&mut c, "idx", &q, &t).expect("lookup");
            assert!(after.is_empty(), "{after:?}");
            assert!(answer == expected || answer == after, "{way:?}: {answer:?}");
        } else {
            // The lookup holds the index it started on.
            assert_eq!(answer, expected, "{way:?}");
        }
        let pong: String = cmd("PING").query(&mut c).expect("the server lives");
        assert_eq!(pong, "PONG");
    }
    // Every index freed is uncounted; FLUSHALL left none.
    let deadline = Instant::now() + Duration::from_secs(10);
    while info_field(&mut c, "auscout", "auscout_indexes").as_deref() != Some("0") {
        assert!(
            Instant::now() < deadline,
            "indexes still counted after FLUSHALL"
        );
    }
    assert_eq!(
        info_field(&mut c, "auscout", "auscout_frames").as_deref(),
        Some("0")
    );
}

#[test]
fn lookups_inside_multi_and_lua_see_the_writes_before_them() {
    let s = Server::start();
    let mut c = s.conn();
    let mut rng = StdRng::seed_from_u64(6);
    let tracks: Vec<Vec<u32>> = (0..6).map(|_| random_track(&mut rng, 3000)).collect();
    for h in &tracks[..5] {
        let _: i64 = cmd("auscout.add")
            .arg("idx")
            .arg(wire(h))
            .query(&mut c)
            .expect("add");
    }
    let (q, t) = query_of(&mut rng, &tracks[5], 1000);
    let (q0, t0) = query_of(&mut rng, &tracks[0], 1000);
    assert!(lookup(&mut c, "idx", &q, &t).expect("lookup").is_empty());

    let (before, id, after): (Vec<Hit>, i64, Vec<Hit>) = redis::pipe()
        .atomic()
        .cmd("auscout.lookup")
        .arg("idx")
        .arg(wire(&q))
        .arg(wire(&t))
        .arg(THRESHOLD)
        .cmd("auscout.add")
        .arg("idx")
        .arg(wire(&tracks[5]))
        .cmd("auscout.lookup")
        .arg("idx")
        .arg(wire(&q))
        .arg(wire(&t))
        .arg(THRESHOLD)
        .query(&mut c)
        .expect("MULTI/EXEC");
    assert!(before.is_empty(), "{before:?}");
    assert_eq!(id, 6);
    assert_eq!(after.first().map(|h| h.1), Some(6), "{after:?}");
    assert_eq!(after, lookup(&mut c, "idx", &q, &t).expect("lookup"));

    let script = "return redis.call('auscout.lookup', KEYS[1], ARGV[1], ARGV[2], ARGV[3])";
    let in_lua: Vec<Hit> = cmd("EVAL")
        .arg(script)
        .arg(1)
        .arg("idx")
        .arg(wire(&q0))
        .arg(wire(&t0))
        .arg(THRESHOLD)
        .query(&mut c)
        .expect("EVAL");
    assert_eq!(in_lua.first().map(|h| h.1), Some(1));
    assert_eq!(in_lua, lookup(&mut c, "idx", &q0, &t0).expect("lookup"));
    let script = "redis.call('auscout.del', KEYS[1], 6) \
                  return redis.call('auscout.lookup', KEYS[1], ARGV[1], ARGV[2], ARGV[3])";
    let gone: Vec<Hit> = cmd("EVAL")
        .arg(script)
        .arg(1)
        .arg("idx")
        .arg(wire(&q))
        .arg(wire(&t))
        .arg(THRESHOLD)
        .query(&mut c)
        .expect("EVAL");
    assert!(gone.is_empty(), "{gone:?}");
}
