//! End-to-end benchmark through a real `redis-server` with the release build
//! of the module (`cargo bench -p auscout --bench server`). It measures what
//! a user of the server sees:
//!
//! - memory per indexed frame, from `INFO memory` growth (`used_memory`);
//! - `auscout.add` of a 20,000-frame track: server time per call;
//! - `auscout.lookup` of 1,000 frames with 4 toggle bits per frame, for a
//!   matching query (30% of frames with 2 bits flipped under their toggles)
//!   and a non-matching one: median and p99 server time;
//! - `auscout.delkey` of the whole index: how long other clients wait.
//!
//! Server time is read from the slow log (threshold 0), so network and client
//! time are excluded. Sizes: env `AUSCOUT_BENCH_TRACKS` (default 2000) ×
//! `AUSCOUT_BENCH_FRAMES` (default 20000), `AUSCOUT_BENCH_QUERIES` (default 300).

#[path = "../tests/common/mod.rs"]
mod common;

use std::thread;
use std::time::{Duration, Instant};

use common::{info_field, wire, Server};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use redis::{cmd, Connection, Value};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn used_memory(c: &mut Connection) -> i64 {
    info_field(c, "memory", "used_memory")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Server-side durations (µs) of the slow-log entries for `command`, then clears the log.
fn slowlog_micros(c: &mut Connection, command: &str) -> Vec<u64> {
    let entries: Vec<Value> = cmd("SLOWLOG")
        .arg("GET")
        .arg(-1)
        .query(c)
        .unwrap_or_default();
    let _: () = cmd("SLOWLOG").arg("RESET").query(c).unwrap();
    let mut out = Vec::new();
    for e in entries {
        let Value::Array(fields) = e else { continue };
        let (Some(Value::Int(us)), Some(Value::Array(argv))) = (fields.get(2), fields.get(3))
        else {
            continue;
        };
        let name = argv
            .first()
            .and_then(|a| redis::from_redis_value::<String>(a).ok())
            .unwrap_or_default();
        if name.eq_ignore_ascii_case(command) {
            out.push(*us as u64);
        }
    }
    out
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(what: &str, mut us: Vec<u64>) {
    us.sort_unstable();
    println!(
        "{what:<44} n={:<5} median {:>8.3} ms   p99 {:>8.3} ms   max {:>8.3} ms",
        us.len(),
        percentile(&us, 0.5) as f64 / 1000.0,
        percentile(&us, 0.99) as f64 / 1000.0,
        us.last().copied().unwrap_or(0) as f64 / 1000.0
    );
}

/// A random toggle mask with `bits` set bits.
fn toggle(rng: &mut StdRng, bits: u32) -> u32 {
    let mut m = 0u32;
    while m.count_ones() < bits {
        m |= 1 << rng.random_range(0..32);
    }
    m
}

fn main() {
    let tracks = env_usize("AUSCOUT_BENCH_TRACKS", 2000);
    let frames = env_usize("AUSCOUT_BENCH_FRAMES", 20_000);
    let queries = env_usize("AUSCOUT_BENCH_QUERIES", 300);
    println!(
        "auscout server benchmark: {tracks} tracks x {frames} frames, module {}",
        common::module_path().display()
    );

    let s = Server::builder()
        .arg("--slowlog-log-slower-than")
        .arg("0")
        .arg("--slowlog-max-len")
        .arg("100000")
        .start();
    let mut c = s.conn();
    let mut rng = StdRng::seed_from_u64(2024);

    // Keep a few tracks client-side to build matching queries from.
    let keep_every = (tracks / 50).max(1);
    let mut kept: Vec<Vec<u32>> = Vec::new();
    let before = used_memory(&mut c);
    let _: () = cmd("SLOWLOG").arg("RESET").query(&mut c).unwrap();
    let started = Instant::now();
    for i in 0..tracks {
        let h: Vec<u32> = (0..frames).map(|_| rng.random()).collect();
        let _: i64 = cmd("auscout.add")
            .arg("bench")
            .arg(wire(&h))
            .query(&mut c)
            .unwrap();
        if i % keep_every == 0 {
            kept.push(h);
        }
    }
    let load_secs = started.elapsed().as_secs_f64();
    let add_us = slowlog_micros(&mut c, "auscout.add");
    let after = used_memory(&mut c);
    let total_frames = (tracks * frames) as f64;
    let usage: i64 = cmd("MEMORY")
        .arg("USAGE")
        .arg("bench")
        .query(&mut c)
        .unwrap_or(0);
    println!(
        "memory: used_memory grew {:.1} MB = {:.2} bytes/frame; MEMORY USAGE {:.1} MB ({:.2} of growth); loaded in {load_secs:.1} s",
        (after - before) as f64 / 1e6,
        (after - before) as f64 / total_frames,
        usage as f64 / 1e6,
        usage as f64 / (after - before).max(1) as f64,
    );
    report(&format!("auscout.add ({frames} frames)"), add_us);

    // Matching: 1,000 frames from a stored track; 4 toggle bits per frame; in
    // 30% of frames 2 of those bits flipped.
    for _ in 0..queries {
        let t = &kept[rng.random_range(0..kept.len())];
        let len = 1000.min(t.len());
        let start = rng.random_range(0..=t.len() - len);
        let mut q = t[start..start + len].to_vec();
        let toggles: Vec<u32> = (0..len).map(|_| toggle(&mut rng, 4)).collect();
        for (h, m) in q.iter_mut().zip(&toggles) {
            if rng.random_bool(0.3) {
                let bits: Vec<u32> = (0..32).filter(|b| m & (1 << b) != 0).collect();
                *h ^= 1 << bits[0];
                *h ^= 1 << bits[1];
            }
        }
        let r: Vec<Value> = cmd("auscout.lookup")
            .arg("bench")
            .arg(wire(&q))
            .arg(wire(&toggles))
            .query(&mut c)
            .unwrap();
        if r.is_empty() {
            eprintln!("warning: a matching query found nothing");
        }
    }
    report(
        "auscout.lookup 1000 frames, matching",
        slowlog_micros(&mut c, "auscout.lookup"),
    );

    let mut false_hits = 0;
    for _ in 0..queries {
        let q: Vec<u32> = (0..1000).map(|_| rng.random()).collect();
        let toggles: Vec<u32> = (0..1000).map(|_| toggle(&mut rng, 4)).collect();
        let r: Vec<Value> = cmd("auscout.lookup")
            .arg("bench")
            .arg(wire(&q))
            .arg(wire(&toggles))
            .query(&mut c)
            .unwrap();
        false_hits += usize::from(!r.is_empty());
    }
    report(
        "auscout.lookup 1000 frames, non-matching",
        slowlog_micros(&mut c, "auscout.lookup"),
    );
    println!("non-matching queries with a match: {false_hits}/{queries}");

    // Delete the whole index while another client pings.
    let url = s.url();
    let pinger = thread::spawn(move || {
        let mut p = redis::Client::open(url).unwrap().get_connection().unwrap();
        let mut worst = Duration::ZERO;
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            let t = Instant::now();
            let _: String = cmd("PING").query(&mut p).unwrap();
            worst = worst.max(t.elapsed());
            thread::sleep(Duration::from_millis(1));
        }
        worst
    });
    thread::sleep(Duration::from_millis(200));
    let t = Instant::now();
    let _: String = cmd("auscout.delkey").arg("bench").query(&mut c).unwrap();
    let delkey = t.elapsed();
    let worst_ping = pinger.join().unwrap_or_default();
    println!(
        "auscout.delkey: {:.3} ms to reply; worst PING latency of another client meanwhile {:.3} ms",
        delkey.as_secs_f64() * 1000.0,
        worst_ping.as_secs_f64() * 1000.0
    );
}
