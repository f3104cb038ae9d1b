//! Lookup latency by arrival pattern: the same lookups sent back to back, with
//! 5 ms of idleness before each, and with the client touching 8 MB of memory
//! before each (as any real client, or other traffic on the server, does to
//! the caches). Variants (sets of `CONFIG SET`s, e.g. `auscout.threads 1`)
//! take turns in blocks of [`BLOCK`] lookups, so each one sees the same
//! minutes of a machine whose speed drifts.
//!
//! Two clocks: the server time of `SLOWLOG` (time inside the command, which
//! for a lookup answered from a module thread also counts that thread's
//! time, but not the hand-offs), and the round trip the client sees (send
//! to reply, loopback included).

use std::hint::black_box;
use std::time::{Duration, Instant};

use redis::Connection;

use auscout_testkit::server::cpu_seconds;
use auscout_testkit::workload::random_query;
use auscout_testkit::Rng;

use crate::{be, pct, slowlog, slowlog_durations};

/// Lookups per turn of a variant.
const BLOCK: usize = 20;
/// Memory the client touches before each lookup of the cold pattern.
const TOUCH_BYTES: usize = 8 << 20;
/// Idleness before each lookup of the idle pattern.
const IDLE: Duration = Duration::from_millis(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    BackToBack,
    Idle,
    Touch,
}

impl Arrival {
    pub const ALL: [Arrival; 3] = [Arrival::BackToBack, Arrival::Idle, Arrival::Touch];

    /// The patterns named in `AUSCOUT_BENCH_ARRIVALS` (`back`, `idle`,
    /// `touch`, separated by `,`; default: all three).
    pub fn chosen() -> Vec<Arrival> {
        match std::env::var("AUSCOUT_BENCH_ARRIVALS") {
            Ok(spec) => spec
                .split(',')
                .filter(|name| !name.trim().is_empty())
                .map(|name| match name.trim() {
                    "back" => Arrival::BackToBack,
                    "idle" => Arrival::Idle,
                    "touch" => Arrival::Touch,
                    other => panic!("AUSCOUT_BENCH_ARRIVALS: unknown pattern '{other}'"),
                })
                .collect(),
            Err(_) => Arrival::ALL.to_vec(),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Arrival::BackToBack => "back to back",
            Arrival::Idle => "5 ms idle before each",
            Arrival::Touch => "client touches 8 MB before each",
        }
    }
}

/// A named set of configs a variant runs with.
pub struct Variant {
    pub name: String,
    pub configs: Vec<(String, String)>,
}

/// Parses `AUSCOUT_BENCH_VARIANTS`: variants separated by `;`, each a list
/// of `name=value` configs separated by `,` (`auscout.` is prefixed when
/// missing).
pub fn variants(spec: &str) -> Vec<Variant> {
    spec.split(';')
        .filter(|v| !v.trim().is_empty())
        .map(|v| {
            let configs: Vec<(String, String)> = v
                .split(',')
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, val)| {
                    let k = k.trim();
                    let k = if k.contains('.') {
                        k.to_owned()
                    } else {
                        format!("auscout.{k}")
                    };
                    (k, val.trim().to_owned())
                })
                .collect();
            Variant {
                name: v.trim().to_owned(),
                configs,
            }
        })
        .collect()
}

struct Query {
    hashes: Vec<u8>,
    toggles: Vec<u8>,
    /// (1-based id, position) a matching query must find.
    expect: Option<(i64, i64)>,
}

/// Matching and non-matching queries, alternating.
fn queries(tracks: usize, n: usize, seed: u64) -> Vec<Query> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            if i % 2 == 0 {
                let (t, start, q, toggles) = crate::matching_query(&mut rng, tracks);
                Query {
                    hashes: be(&q),
                    toggles: be(&toggles),
                    expect: Some((t as i64 + 1, start as i64)),
                }
            } else {
                let (q, toggles) = random_query(&mut rng);
                Query {
                    hashes: be(&q),
                    toggles: be(&toggles),
                    expect: None,
                }
            }
        })
        .collect()
}

#[derive(Default)]
struct Figures {
    server_us: Vec<u64>,
    round_trip_us: Vec<u64>,
    right: usize,
    matching: usize,
    false_hits: usize,
    /// The server's CPU time (all its threads) over the counted lookups.
    cpu_s: f64,
}

fn touch(buf: &mut [u8]) {
    for line in buf.chunks_mut(64) {
        line[0] = line[0].wrapping_add(1);
    }
    black_box(buf);
}

fn lookup(c: &mut Connection, q: &Query, f: &mut Figures) {
    let t = Instant::now();
    let reply: Vec<(Vec<u8>, i64, i64, String)> = redis::cmd("auscout.lookup")
        .arg("bench")
        .arg(&q.hashes)
        .arg(&q.toggles)
        .query(c)
        .expect("lookup");
    f.round_trip_us.push(t.elapsed().as_micros() as u64);
    match q.expect {
        Some(want) => {
            f.matching += 1;
            f.right += usize::from(reply.first().is_some_and(|m| (m.1, m.2) == want));
        }
        None => f.false_hits += usize::from(!reply.is_empty()),
    }
}

pub fn set_configs(c: &mut Connection, v: &Variant) {
    for (k, val) in &v.configs {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg(k)
            .arg(val)
            .query::<()>(c)
            .unwrap_or_else(|e| panic!("CONFIG SET {k} {val}: {e}"));
    }
}

/// Runs `lookups` lookups per variant in each arrival pattern and prints a
/// table: server-time median and p99, round-trip median and p99, and the
/// server's CPU per lookup (all its threads, the time between lookups
/// included: what a module thread polling for work costs).
pub fn run(c: &mut Connection, tracks: usize, lookups: usize, variants: &[Variant]) {
    let mut buf = vec![0u8; TOUCH_BYTES];
    let blocks = lookups.div_ceil(BLOCK).max(1);
    println!(
        "lookups by arrival pattern ({} per variant and pattern, in turns of {BLOCK}; half matching):",
        blocks * BLOCK
    );
    println!("| arrival | variant | server median | server p99 | round trip median | round trip p99 | server CPU per lookup | right / false |");
    println!("|---|---|---|---|---|---|---|---|");
    for arrival in Arrival::chosen() {
        // The queries depend on the pattern, not on which others run.
        let p = Arrival::ALL.iter().position(|&a| a == arrival).unwrap_or(0);
        let mut figures: Vec<Figures> = variants.iter().map(|_| Figures::default()).collect();
        for b in 0..blocks {
            for (v, variant) in variants.iter().enumerate() {
                set_configs(c, variant);
                let qs = queries(tracks, BLOCK + 1, 0x5eed + (p * 1000 + b) as u64);
                let f = &mut figures[v];
                // One lookup after the config change is not counted.
                let mut warm = Figures::default();
                lookup(c, &qs[0], &mut warm);
                slowlog(c, true);
                let cpu_before = cpu_seconds(c);
                for q in &qs[1..] {
                    match arrival {
                        Arrival::BackToBack => {}
                        Arrival::Idle => std::thread::sleep(IDLE),
                        Arrival::Touch => touch(&mut buf),
                    }
                    lookup(c, q, f);
                }
                f.cpu_s += cpu_seconds(c) - cpu_before;
                slowlog(c, false);
                f.server_us.extend(slowlog_durations(c, "auscout.lookup"));
            }
        }
        for (variant, f) in variants.iter().zip(&mut figures) {
            let ms = |v: &mut Vec<u64>, p: f64| pct(v, p);
            println!(
                "| {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {}/{} / {} |",
                arrival.name(),
                variant.name,
                ms(&mut f.server_us, 0.5),
                ms(&mut f.server_us, 0.99),
                ms(&mut f.round_trip_us, 0.5),
                ms(&mut f.round_trip_us, 0.99),
                1e3 * f.cpu_s / f.round_trip_us.len().max(1) as f64,
                f.right,
                f.matching,
                f.false_hits
            );
        }
    }
}
