//! The matcher's own cost at the benchmark scale (2,000 tracks of
//! 20,000 random frames = 40M frames; a 1,000-frame query with 4 toggle bits
//! per frame = 16,000 probes), without the index's memory layout in the way.
//!
//! The source keeps the 40M hashes (so verification reads real memory) but
//! answers probes without an inverted index: a probe hits the one track the
//! query was cut from where that track really has the hash, and otherwise hits
//! a pseudo-random (slot, pos) at the rate a 40M-frame index of random hashes
//! gives (40M / 2^32 ≈ 0.0093 postings per probe). What is measured is
//! voting, candidate ranking and BER verification; `benches/index.rs` measures
//! the index's probe cost.
//!
//! `cargo bench -p auscout-core --bench matcher` (times are the thread's CPU
//! time, so other load on the machine does not inflate them).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Duration;

use auscout_core::matcher::{lookup, FrameSource, LookupParams};
use auscout_core::TrackId;
use criterion::{black_box, criterion_group, criterion_main, Criterion};

const TRACKS: u32 = 2000;
const FRAMES: u32 = 20_000;
const QUERY: usize = 1000;

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The bench's own map must not be what is measured: a multiply hash.
#[derive(Default)]
struct Mul(u64);

impl Hasher for Mul {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u32 keys")
    }
    fn write_u32(&mut self, k: u32) {
        self.0 = mix(u64::from(k));
    }
}

type Postings = HashMap<u32, Vec<u32>, BuildHasherDefault<Mul>>;

struct SimIndex {
    hashes: Vec<u32>,
    /// Real postings of the one track queries are cut from.
    target: Postings,
    target_slot: u32,
}

impl SimIndex {
    fn new(target_slot: u32) -> Self {
        let hashes: Vec<u32> = (0..u64::from(TRACKS * FRAMES))
            .map(|i| (mix(i) >> 32) as u32)
            .collect();
        let mut target = Postings::default();
        let start = (target_slot * FRAMES) as usize;
        for (pos, &h) in hashes[start..start + FRAMES as usize].iter().enumerate() {
            target.entry(h).or_default().push(pos as u32);
        }
        SimIndex {
            hashes,
            target,
            target_slot,
        }
    }
}

impl FrameSource for SimIndex {
    fn probe(&self, probes: &[u32], hit: &mut dyn FnMut(usize, u32, u32)) {
        // 40M / 2^32 of the 64-bit range: the chance a probe hits some other posting.
        const RATE: u64 = (TRACKS as u64 * FRAMES as u64) << 32;
        for (i, &h) in probes.iter().enumerate() {
            if let Some(ps) = self.target.get(&h) {
                for &p in ps {
                    hit(i, self.target_slot, p);
                }
            }
            let r = mix(u64::from(h) ^ 0xABCD_0000_0000);
            if r < RATE {
                let slot = (r % u64::from(TRACKS)) as u32;
                let pos = ((r >> 20) % u64::from(FRAMES)) as u32;
                hit(i, slot, pos);
            }
        }
    }
    fn hashes(&self, slot: u32) -> &[u32] {
        let s = (slot * FRAMES) as usize;
        &self.hashes[s..s + FRAMES as usize]
    }
    fn id(&self, slot: u32) -> TrackId {
        TrackId::from(slot) + 1
    }
}

/// 4 random toggle bits per frame; in 30% of frames 2 of them flipped.
fn query(src: &SimIndex, matching: bool) -> (Vec<u32>, Vec<u32>) {
    let mut seed = 99u64;
    let mut rnd = || {
        seed += 1;
        mix(seed)
    };
    let base = src.hashes(src.target_slot);
    let mut q = Vec::with_capacity(QUERY);
    let mut t = Vec::with_capacity(QUERY);
    for i in 0..QUERY {
        let mut mask = 0u32;
        while mask.count_ones() < 4 {
            mask |= 1 << (rnd() % 32);
        }
        let mut h = if matching {
            base[5000 + i]
        } else {
            (rnd() >> 32) as u32
        };
        if rnd() % 10 < 3 {
            let bits: Vec<u32> = (0..32).filter(|b| mask & (1 << b) != 0).collect();
            h ^= (1 << bits[0]) | (1 << bits[2]);
        }
        q.push(h);
        t.push(mask);
    }
    (q, t)
}

/// CPU time of this thread in ns, so other load on the machine does not
/// inflate the figure.
fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, exclusively borrowed timespec for the call.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn bench(c: &mut Criterion) {
    let src = SimIndex::new(777);
    let mut g = c.benchmark_group("lookup_1000x4_at_40M");
    // `matching_withspeed`: the same lookup fitting its match's speed too.
    for (name, matching, with_speed) in [
        ("matching", true, false),
        ("matching_withspeed", true, true),
        ("non_matching", false, false),
    ] {
        let params = LookupParams {
            with_speed,
            ..LookupParams::default()
        };
        let (q, t) = query(&src, matching);
        let got = lookup(&src, &q, &t, &params).unwrap_or_default();
        assert_eq!(
            got.first().map(|m| (m.id, m.position)),
            matching.then_some((778, 5000)),
            "{name}"
        );
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = thread_cpu_ns();
                for _ in 0..iters {
                    black_box(lookup(black_box(&src), black_box(&q), black_box(&t), &params).ok());
                }
                Duration::from_nanos(thread_cpu_ns().saturating_sub(start))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
