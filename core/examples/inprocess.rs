//! The issue-2 workload without Redis: 2,000 tracks × 20,000 random frames
//! (40M) in an `Index`, then wall-clock medians of `Index::lookup` (1,000
//! frames × 4 toggle bits, matching and not) and of `Index::insert` (20,000
//! frames), each with 1 and 2 threads. Shows how much of the server time is
//! the engine's own work.
//!
//!     cargo run --release -p auscout-core --example inprocess            # built by 2,000 inserts, like the server bench
//!     AUSCOUT_BULK=1 cargo run --release -p auscout-core --example inprocess   # bulk-loaded (as after an RDB load)
//!     AUSCOUT_BENCH_TRACKS=200 ...                                        # 4M frames

use std::time::Instant;

use auscout_core::{Index, LookupParams};

/// xorshift64*: reproducible data without a rand dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 32) as u32
    }
    fn track(&mut self) -> Vec<u32> {
        (0..20_000).map(|_| self.next()).collect()
    }
}

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
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    let data: Vec<Vec<u32>> = (0..tracks).map(|_| rng.track()).collect();
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
    println!("{} frames built in {:.1?}", ix.frame_count(), t.elapsed());

    let bits = [1u32 << 3, 1 << 11, 1 << 19, 1 << 27];
    let toggles = vec![bits.iter().sum::<u32>(); 1_000];
    for threads in [1, 2] {
        let params = LookupParams {
            threads,
            ..LookupParams::default()
        };
        for matching in [true, false] {
            let (mut times, mut found) = (Vec::new(), 0);
            for k in 0..500 {
                let q: Vec<u32> = if matching {
                    let track = &data[(k * 7) % data.len()];
                    (0..1_000)
                        .map(|i| match rng.next() % 10 {
                            0..=2 => track[i + 5_000] ^ bits[0] ^ bits[2],
                            _ => track[i + 5_000],
                        })
                        .collect()
                } else {
                    (0..1_000).map(|_| rng.next()).collect()
                };
                let t = Instant::now();
                found += ix.lookup(&q, &toggles, &params)?.len();
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
            let (med, p99) = median(times);
            println!("lookup, {threads} thread(s), matching {matching}: median {med:.3} ms, p99 {p99:.3} ms ({found} found of 500)");
        }
    }
    for threads in [1, 2] {
        auscout_core::pool::set_insert_threads(threads);
        let mut times = Vec::new();
        for _ in 0..100 {
            let h = rng.track();
            let t = Instant::now();
            let id = ix.insert(None, b"", &h)?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
            ix.remove(id)?;
        }
        let (med, p99) = median(times);
        println!(
            "insert of 20,000 frames, {threads} thread(s): median {med:.3} ms, p99 {p99:.3} ms"
        );
    }
    Ok(())
}
