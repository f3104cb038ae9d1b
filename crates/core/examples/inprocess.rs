//! The server bench's workload without Redis: the tracks and queries of
//! `crates/module/benches/server` (2,000 tracks × 20,000 random frames = 40M) in an
//! `Index`, then wall-clock medians of `Index::lookup` (1,000 frames × 4
//! toggle bits, matching and not) and of `Index::insert` (20,000 frames), each
//! with 1 and 2 threads. Shows how much of the server time is the engine's own
//! work.
//!
//!     cargo run --release -p auscout-core --example inprocess            # built by 2,000 inserts, like the server bench
//!     AUSCOUT_BULK=1 cargo run --release -p auscout-core --example inprocess   # bulk-loaded (as after an RDB load)
//!     AUSCOUT_BENCH_TRACKS=200 ...                                        # 4M frames

use std::time::Instant;

use auscout_core::{Index, LookupParams};

use auscout_testkit::workload::{matching_query, random_query, track};
use auscout_testkit::Rng;

/// (median, p99) of `v`.
fn median(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |p: f64| {
        v.get(((v.len() - 1) as f64 * p) as usize)
            .copied()
            .unwrap_or(f64::NAN)
    };
    (at(0.5), at(0.99))
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let tracks: usize = std::env::var("AUSCOUT_BENCH_TRACKS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000);
    let data: Vec<Vec<u32>> = (0..tracks as u64).map(track).collect();
    let t = Instant::now();
    let mut ix = if std::env::var("AUSCOUT_BULK").is_ok() {
        Index::from_tracks(1, data.iter().map(|h| (None, &b""[..], &h[..])))?
    } else {
        let mut ix = Index::new();
        for h in &data {
            ix.insert(None, b"", h)?;
        }
        ix
    };
    println!(
        "{} frames built in {:.1?}, {:.2} bytes/frame",
        ix.frame_count(),
        t.elapsed(),
        ix.mem_usage() as f64 / ix.frame_count() as f64
    );

    let t = Instant::now();
    let stats = ix.stats();
    println!(
        "stats ({} distinct hashes, longest posting list {}) in {:.0?}",
        stats.distinct_hashes,
        stats.longest_posting,
        t.elapsed()
    );

    for threads in [1, 2] {
        let params = LookupParams {
            threads,
            ..LookupParams::default()
        };
        let mut rng = Rng(0x5eed);
        for matching in [true, false] {
            let (mut times, mut right) = (Vec::new(), 0);
            for _ in 0..500 {
                let (t, start, q, toggles) = if matching {
                    matching_query(&mut rng, tracks)
                } else {
                    let (q, toggles) = random_query(&mut rng);
                    (usize::MAX, 0, q, toggles)
                };
                let started = Instant::now();
                let found = ix.lookup(&q, &toggles, &params)?;
                times.push(started.elapsed().as_secs_f64() * 1e3);
                let expected = (t as i64 + 1, start as i64);
                right += usize::from(match found.first() {
                    Some(m) => matching && (m.id, m.position) == expected,
                    None => !matching,
                });
            }
            let (med, p99) = median(times);
            println!("lookup, {threads} thread(s), matching {matching}: median {med:.3} ms, p99 {p99:.3} ms ({right}/500 right)");
        }
    }
    let mut rng = Rng(0xADD);
    for threads in [1, 2] {
        auscout_core::pool::set_insert_threads(threads);
        let mut times = Vec::new();
        for _ in 0..100 {
            let h = track(1_000_000 + rng.next_u64() % 1_000_000);
            let t = Instant::now();
            ix.insert(None, b"", &h)?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let (med, p99) = median(times);
        println!(
            "insert of 20,000 frames, {threads} thread(s): median {med:.3} ms, p99 {p99:.3} ms"
        );
    }
    Ok(())
}
