//! The index at 40M frames (2,000 tracks × 20,000 random frames): bytes per
//! frame, `insert` of one more track, and `probe` of 16,000 hashes (1,000
//! query frames × 16 toggle variants), matching and not matching.
//!
//! `cargo bench -p auscout-core --bench index`
//! (`AUSCOUT_BENCH_TRACKS=200` for a quicker, smaller run;
//! `AUSCOUT_BENCH_BULK=1` bulk-loads the tracks instead of inserting them
//! one by one, as after an RDB load).

use std::hint::black_box;
use std::time::Instant;

use auscout_core::Index;
use criterion::{criterion_group, criterion_main, Criterion};

const FRAMES: usize = 20_000;

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);
impl Rng {
    fn next_u32(&mut self) -> u32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    }
    fn track(&mut self) -> Vec<u32> {
        (0..FRAMES).map(|_| self.next_u32()).collect()
    }
}

/// Resident set size in bytes (Linux).
fn rss() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// CPU time of this thread in seconds (robust to other processes sharing
/// the cores, unlike wall-clock time; 10 ms resolution).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // Fields after the parenthesised command: utime and stime are the 12th and 13th.
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let field = |k: usize| f.get(k).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    (field(11) + field(12)) / 100.0
}

/// Mean CPU time per call of `f` over `n` calls.
fn cpu_per_call(n: usize, mut f: impl FnMut()) -> f64 {
    let t = cpu_seconds();
    for _ in 0..n {
        f();
    }
    (cpu_seconds() - t) / n as f64
}

/// 16 variants of each query frame: every combination of 4 toggle bits.
fn variants(frames: &[u32]) -> Vec<u32> {
    let bits = [1u32 << 3, 1 << 11, 1 << 19, 1 << 27];
    let mut out = Vec::with_capacity(frames.len() * 16);
    for &h in frames {
        for combo in 0..16u32 {
            let mut v = h;
            for (k, &b) in bits.iter().enumerate() {
                if combo & (1 << k) != 0 {
                    v ^= b;
                }
            }
            out.push(v);
        }
    }
    out
}

fn bench_index(c: &mut Criterion) {
    let tracks: usize = std::env::var("AUSCOUT_BENCH_TRACKS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000);
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let mut ix = Index::new();
    let rss0 = rss().unwrap_or(0);
    let t0 = Instant::now();
    let mut kept = Vec::new();
    let mut slowest = (std::time::Duration::ZERO, 0u64);
    if std::env::var("AUSCOUT_BENCH_BULK").is_ok() {
        // The same tracks bulk-loaded (as after an RDB load): no deltas, one
        // allocation per partition.
        let all: Vec<Vec<u32>> = (0..tracks).map(|_| rng.track()).collect();
        kept = all.get(tracks / 2).cloned().unwrap_or_default();
        ix = Index::from_tracks(1, all.iter().map(|h| (None, &b""[..], &h[..])))
            .unwrap_or_else(|_| panic!("bulk load failed"));
    }
    for k in 0..if ix.frame_count() > 0 { 0 } else { tracks } {
        let hashes = rng.track();
        if k == tracks / 2 {
            kept = hashes.clone();
        }
        let t = Instant::now();
        if ix.insert(None, b"", &hashes).is_err() {
            panic!("insert failed");
        }
        let took = t.elapsed();
        if took > slowest.0 {
            slowest = (took, ix.frame_count());
        }
    }
    let built = t0.elapsed();
    println!(
        "slowest insert while building: {:.2?} at {} frames",
        slowest.0, slowest.1
    );
    let rss1 = rss().unwrap_or(0);
    let frames = ix.frame_count() as f64;
    let mem = ix.mem_usage();
    println!(
        "built {} frames in {:.2?}; mem_usage {:.2} B/frame; RSS growth {:.2} B/frame (mem_usage / RSS = {:.3})",
        ix.frame_count(),
        built,
        mem as f64 / frames,
        (rss1 - rss0) as f64 / frames,
        mem as f64 / (rss1 - rss0).max(1) as f64
    );

    let extra = rng.track();
    if std::env::var("AUSCOUT_BENCH_PROFILE").is_ok() {
        // A plain loop for `perf record` (skips criterion).
        for _ in 0..2_000 {
            let id = ix.insert(None, b"", black_box(&extra)).unwrap_or(0);
            let _ = ix.remove(id);
        }
        std::process::exit(0);
    }
    let per = cpu_per_call(300, || {
        let id = ix.insert(None, b"", black_box(&extra)).unwrap_or(0);
        let _ = ix.remove(id);
    });
    println!("insert+remove: {:.3} ms CPU per call", per * 1e3);
    // Only the insert is timed; the remove that restores the index between
    // iterations is not.
    c.bench_function("insert 20k-frame track", |b| {
        b.iter_custom(|iters| {
            let mut timed = std::time::Duration::ZERO;
            for _ in 0..iters {
                let t = Instant::now();
                let id = ix.insert(None, b"", black_box(&extra)).unwrap_or(0);
                timed += t.elapsed();
                let _ = ix.remove(id);
            }
            timed
        })
    });
    c.bench_function("remove 20k-frame track", |b| {
        b.iter_custom(|iters| {
            let mut timed = std::time::Duration::ZERO;
            for _ in 0..iters {
                let id = ix.insert(None, b"", black_box(&extra)).unwrap_or(0);
                let t = Instant::now();
                let _ = ix.remove(id);
                timed += t.elapsed();
            }
            timed
        })
    });

    let matching = variants(&kept[5_000..6_000]);
    let random: Vec<u32> = variants(&(0..1_000).map(|_| rng.next_u32()).collect::<Vec<_>>());
    for (name, probes) in [
        ("probe 16k matching", &matching),
        ("probe 16k non-matching", &random),
    ] {
        let mut hits = 0usize;
        ix.probe(probes, &mut |_, _, _| hits += 1);
        let per = cpu_per_call(2000, || {
            let mut n = 0u32;
            ix.probe(black_box(probes), &mut |i, s, p| {
                n = n.wrapping_add(i as u32 ^ s ^ p)
            });
            black_box(n);
        });
        println!("{name}: {hits} hits, {:.3} ms CPU per call", per * 1e3);
        c.bench_function(name, |b| {
            b.iter(|| {
                let mut n = 0u32;
                ix.probe(black_box(probes), &mut |i, s, p| {
                    n = n.wrapping_add(i as u32 ^ s ^ p)
                });
                black_box(n)
            })
        });
    }
    // A whole-index rebuild (what a re-base of the ref space costs, the
    // worst pause left) is the bulk load of the same tracks.
    let t = Instant::now();
    let bulk = Index::from_tracks(
        ix.next_id(),
        ix.tracks_from(0).map(|t| (Some(t.id), t.descr, t.hashes)),
    );
    println!(
        "bulk load (= full rebuild) of {} frames: {:.2?}",
        bulk.as_ref().map_or(0, |b| b.frame_count()),
        t.elapsed()
    );
    drop(bulk);
    let t = Instant::now();
    let st = ix.stats();
    println!("stats in {:.2?}: {st:?}", t.elapsed());
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50);
    targets = bench_index
}
criterion_main!(benches);
