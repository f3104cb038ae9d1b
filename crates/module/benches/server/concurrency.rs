//! Lookups under concurrent traffic: one client sending lookups back to
//! back, then [`CLIENTS`] clients doing so at once while another sends
//! `PING` every 2 ms and another adds a 20,000-frame track every second.
//! Figures: lookups per second (and the ratio to one client), `PING` round
//! trips, `auscout.add` round trips against the same adds on an otherwise
//! idle server, whether every lookup answered what it answered alone, and
//! the CPU time the server's threads and the bench's clients spent.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use redis::Connection;

use auscout_testkit::workload::random_query;
use auscout_testkit::Rng;

use crate::be;

/// Clients sending lookups at once.
const CLIENTS: usize = 16;
/// Distinct queries the clients cycle through (half matching).
const QUERIES: usize = 64;
const PING_EVERY: Duration = Duration::from_millis(2);
const ADD_EVERY: Duration = Duration::from_secs(1);

type Answer = Vec<(Vec<u8>, i64, i64, String)>;

fn lookup(c: &mut Connection, q: &(Vec<u8>, Vec<u8>)) -> Answer {
    redis::cmd("auscout.lookup")
        .arg("bench")
        .arg(&q.0)
        .arg(&q.1)
        .query(c)
        .expect("lookup")
}

fn ms(mut v: Vec<f64>, p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Adds a fresh track every [`ADD_EVERY`] until `stop`; the round trips (ms).
fn adder(mut c: Connection, stop: Arc<AtomicBool>, seed: u64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut k = seed;
    while !stop.load(Ordering::Relaxed) {
        let h = be(&crate::track(k));
        k += 1;
        let t = Instant::now();
        let _: i64 = redis::cmd("auscout.add")
            .arg("bench")
            .arg(h)
            .query(&mut c)
            .expect("add");
        out.push(t.elapsed().as_secs_f64() * 1e3);
        std::thread::sleep(ADD_EVERY.saturating_sub(t.elapsed()));
    }
    out
}

/// Runs the measurement for `secs` seconds of load.
pub fn run(client: &redis::Client, server_pid: u32, tracks: usize, secs: u64) {
    let conn = || client.get_connection().expect("connection");
    let mut rng = Rng(0xc0c0);
    let queries: Vec<(Vec<u8>, Vec<u8>)> = (0..QUERIES)
        .map(|i| {
            let (q, t) = if i % 2 == 0 {
                let (_, _, q, t) = crate::matching_query(&mut rng, tracks);
                (q, t)
            } else {
                random_query(&mut rng)
            };
            (be(&q), be(&t))
        })
        .collect();
    let span = Duration::from_secs(secs);

    // Adds on an idle server: the yardstick for adds under load.
    let stop = Arc::new(AtomicBool::new(false));
    let idle_adds = {
        let s = stop.clone();
        let c = conn();
        let h = std::thread::spawn(move || adder(c, s, 50_000_000));
        std::thread::sleep(Duration::from_secs(5));
        stop.store(true, Ordering::Relaxed);
        h.join().expect("adder")
    };

    // One client: the answers, then its rate.
    let mut c = conn();
    let alone: Vec<Answer> = queries.iter().map(|q| lookup(&mut c, q)).collect();
    let server_before = crate::cpu::by_thread_name(server_pid);
    let t = Instant::now();
    let mut n = 0usize;
    while t.elapsed() < span {
        lookup(&mut c, &queries[n % QUERIES]);
        n += 1;
    }
    let one_rate = n as f64 / t.elapsed().as_secs_f64();
    let one_cpu: f64 = crate::cpu::spent(&server_before, &crate::cpu::by_thread_name(server_pid))
        .values()
        .sum();

    // Many clients, a pinger and an adder.
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let wrong = Arc::new(AtomicU64::new(0));
    let alone = Arc::new(alone);
    let queries = Arc::new(queries);
    let pings = Arc::new(Mutex::new(Vec::new()));
    let pinger = {
        let (stop, pings, mut c) = (stop.clone(), pings.clone(), conn());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let _: String = redis::cmd("PING").query(&mut c).expect("PING");
                let rt = t.elapsed();
                if let Ok(mut p) = pings.lock() {
                    p.push(rt.as_secs_f64() * 1e3);
                }
                std::thread::sleep(PING_EVERY.saturating_sub(rt));
            }
        })
    };
    let add = {
        let (s, c) = (stop.clone(), conn());
        std::thread::spawn(move || adder(c, s, 60_000_000))
    };
    let (server_before, bench_before) = (
        crate::cpu::by_thread_name(server_pid),
        crate::cpu::by_thread_name(std::process::id()),
    );
    let t = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (stop, done, wrong) = (stop.clone(), done.clone(), wrong.clone());
            let (alone, queries, mut c) = (alone.clone(), queries.clone(), conn());
            std::thread::spawn(move || {
                let mut k = i * 7;
                while !stop.load(Ordering::Relaxed) {
                    let got = lookup(&mut c, &queries[k % QUERIES]);
                    if got != alone[k % QUERIES] {
                        wrong.fetch_add(1, Ordering::Relaxed);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                    k += 1;
                }
            })
        })
        .collect();
    std::thread::sleep(span);
    stop.store(true, Ordering::Relaxed);
    let elapsed = t.elapsed().as_secs_f64();
    let server_cpu = crate::cpu::spent(&server_before, &crate::cpu::by_thread_name(server_pid));
    let bench_cpu: f64 = crate::cpu::spent(
        &bench_before,
        &crate::cpu::by_thread_name(std::process::id()),
    )
    .values()
    .sum();
    for h in clients {
        h.join().expect("client");
    }
    pinger.join().expect("pinger");
    let adds = add.join().expect("adder");
    let many = done.load(Ordering::Relaxed) as f64 / elapsed;
    let pings = pings.lock().map(|p| p.clone()).unwrap_or_default();
    println!(
        "concurrency ({secs} s each): 1 client {one_rate:.0} lookups/s; {CLIENTS} clients {many:.0} lookups/s ({:.2}x) with PING every 2 ms and an add every second",
        many / one_rate
    );
    println!(
        "  one client: the server's CPU {:.3} ms per lookup (all its threads)",
        1e3 * one_cpu / n.max(1) as f64
    );
    println!(
        "  PING round trip: median {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} pings)",
        ms(pings.clone(), 0.5),
        ms(pings.clone(), 0.99),
        ms(pings.clone(), 1.0),
        pings.len()
    );
    println!(
        "  auscout.add round trip: median {:.3} ms, max {:.3} ms ({} adds); idle server: median {:.3} ms, max {:.3} ms",
        ms(adds.clone(), 0.5),
        ms(adds.clone(), 1.0),
        adds.len(),
        ms(idle_adds.clone(), 0.5),
        ms(idle_adds.clone(), 1.0)
    );
    let module_cpu: f64 = server_cpu
        .iter()
        .filter(|(name, _)| name.starts_with("auscout-pool"))
        .map(|(_, s)| s)
        .sum();
    let main_cpu = server_cpu.get("redis-server").copied().unwrap_or(0.0);
    let other_cpu = server_cpu.values().sum::<f64>() - module_cpu - main_cpu;
    let lookups = done.load(Ordering::Relaxed).max(1) as f64;
    println!(
        "  CPU of the {secs} s with {CLIENTS} clients: module threads {module_cpu:.2} s ({:.3} ms per lookup), Redis main thread {main_cpu:.2} s, other server threads {other_cpu:.2} s, the bench's clients {bench_cpu:.2} s",
        1e3 * module_cpu / lookups
    );
    println!(
        "  lookups answering otherwise than alone: {} of {}",
        wrong.load(Ordering::Relaxed),
        done.load(Ordering::Relaxed)
    );
}
