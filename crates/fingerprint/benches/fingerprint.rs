//! Decode + resample + hash speed, reported by criterion as throughput in
//! "elem/s" where one element is one second of audio: the figure is directly
//! the × real-time factor on one core.
//!
//! `cargo bench -p auscout-fingerprint --bench fingerprint`
//!
//! Generates a 60 s synthetic stereo 44.1 kHz track and encodes it with
//! `ffmpeg` (MP3 128k, Ogg Vorbis q4, FLAC, AAC 128k); also times each stage
//! alone, and real music from `/tmp/bench/corpus/index` (or `$AUSCOUT_BENCH_MUSIC`,
//! a directory) when present: the first `.mp3` and `.ogg` found there.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use auscout_fingerprint::audiohash::Hasher;
use auscout_fingerprint::decode::Decoder;
use auscout_fingerprint::resample::StreamResampler;
use auscout_fingerprint::{fingerprint_file, HashOptions};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const RATE: u32 = 44_100;
const SECONDS: u64 = 60;

/// Deterministic music-like stereo: chords with harmonics, a chirp, noise bursts.
fn synthetic_music(rate: u32, seconds: u64) -> Vec<[f32; 2]> {
    let n = rate as usize * seconds as usize;
    let roots = [220.0, 261.6, 329.6, 196.0, 246.9, 293.7, 174.6, 349.2];
    let tau = 2.0 * std::f64::consts::PI;
    let mut rng = 0x9e37_79b9u32;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            let root = roots[(t * 2.0) as usize % roots.len()];
            let mut chord = 0.0;
            for (k, ratio) in [1.0, 1.25, 1.5].iter().enumerate() {
                for h in 1..=4 {
                    chord +=
                        (tau * root * ratio * f64::from(h) * t + k as f64).sin() / f64::from(h * h);
                }
            }
            let chirp = (tau * (100.0 + 20.0 * t) * t).sin();
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            let noise = f64::from(rng) / f64::from(u32::MAX) - 0.5;
            let burst = if (t * 3.0).fract() < 0.15 { noise } else { 0.0 };
            [
                (0.12 * chord + 0.15 * chirp + 0.3 * burst) as f32,
                (0.12 * chord - 0.1 * chirp + 0.2 * burst) as f32,
            ]
        })
        .collect()
}

fn generate(dir: &Path) -> Vec<(String, PathBuf)> {
    std::fs::create_dir_all(dir).expect("create bench dir");
    let wav = dir.join("music60.wav");
    if !wav.exists() {
        let spec = hound::WavSpec {
            channels: 2,
            sample_rate: RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&wav, spec).expect("create wav");
        for frame in synthetic_music(RATE, SECONDS) {
            for s in frame {
                w.write_sample((s.clamp(-1.0, 1.0) * 32767.0) as i16)
                    .expect("write wav");
            }
        }
        w.finalize().expect("finish wav");
    }
    let mut files = vec![("wav".to_string(), wav.clone())];
    for (ext, args) in [
        ("mp3", &["-c:a", "libmp3lame", "-b:a", "128k"][..]),
        ("ogg", &["-c:a", "libvorbis", "-q:a", "4"][..]),
        ("flac", &[][..]),
        ("m4a", &["-c:a", "aac", "-b:a", "128k"][..]),
    ] {
        let out = dir.join(format!("music60.{ext}"));
        if !out.exists() {
            let status = Command::new("ffmpeg")
                .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
                .arg(&wav)
                .args(args)
                .arg(&out)
                .status()
                .expect("ffmpeg must be installed for this benchmark");
            assert!(status.success(), "ffmpeg failed for {ext}");
        }
        files.push((ext.to_string(), out));
    }
    files
}

/// Seconds of audio in a file, by decoding it once.
fn duration_seconds(path: &Path) -> f64 {
    let mut d = Decoder::open(path).expect("decodable file");
    let (mut rate, mut frames) = (1, 0u64);
    while let Some(chunk) = d.next_chunk().expect("decodable file") {
        rate = chunk.sample_rate;
        frames += chunk.samples.len() as u64;
    }
    frames as f64 / f64::from(rate)
}

fn real_music() -> Vec<(String, PathBuf)> {
    let dir = std::env::var_os("AUSCOUT_BENCH_MUSIC")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/tmp/bench/corpus/index"));
    let Ok(entries) = std::fs::read_dir(&dir) else {
        eprintln!("no real music at {} (skipped)", dir.display());
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    paths.sort();
    ["mp3", "ogg"]
        .iter()
        .filter_map(|ext| {
            paths
                .iter()
                .find(|p| p.extension().and_then(|e| e.to_str()) == Some(ext))
                .map(|p| (format!("real-{ext}"), p.clone()))
        })
        .collect()
}

/// CPU time this thread has run, from `/proc/thread-self/schedstat` (ns). On a
/// shared machine wall-clock time includes waiting for a core; this does not.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// × real time per file measured in CPU time of one thread (best of 3 runs).
fn report_cpu_time(files: &[(String, PathBuf)], opts: &HashOptions) {
    eprintln!("\n× real time on one core, by CPU time (best of 3):");
    for (name, path) in files {
        let seconds = duration_seconds(path);
        let best = (0..3)
            .filter_map(|_| {
                let start = thread_cpu_ns()?;
                black_box(fingerprint_file(path, opts).expect("fingerprint"));
                Some(thread_cpu_ns()? - start)
            })
            .min();
        match best {
            Some(ns) => eprintln!(
                "  {name:>9}: {seconds:6.1} s of audio in {:7.1} ms CPU = {:6.0}× real time",
                ns as f64 / 1e6,
                seconds / (ns as f64 / 1e9)
            ),
            None => eprintln!("  {name}: /proc/thread-self/schedstat unavailable"),
        }
    }
    eprintln!();
}

fn bench_pipeline(c: &mut Criterion) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fingerprint_bench");
    let opts = HashOptions::default();
    let files: Vec<(String, PathBuf)> = generate(&dir).into_iter().chain(real_music()).collect();
    report_cpu_time(&files, &opts);

    let mut group = c.benchmark_group("fingerprint_file (elem/s = x real time)");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(15));
    for (name, path) in files {
        let seconds = duration_seconds(&path);
        eprintln!("{name}: {} ({seconds:.1} s)", path.display());
        group.throughput(Throughput::Elements(seconds.round().max(1.0) as u64));
        group.bench_function(&name, |b| {
            b.iter(|| fingerprint_file(black_box(&path), &opts).expect("fingerprint"))
        });
    }
    group.finish();
}

fn bench_stages(c: &mut Criterion) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fingerprint_bench");
    let files = generate(&dir);
    let mut group = c.benchmark_group("stages, 60 s (elem/s = x real time)");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(SECONDS));

    for (name, path) in files.iter().filter(|(n, _)| n == "mp3" || n == "ogg") {
        group.bench_function(format!("decode {name}"), |b| {
            b.iter(|| {
                let mut d = Decoder::open(path).expect("decodable");
                let mut n = 0usize;
                while let Some(chunk) = d.next_chunk().expect("decodable") {
                    n += chunk.samples.len();
                }
                n
            })
        });
    }

    let mono: Vec<f32> = synthetic_music(RATE, SECONDS)
        .iter()
        .map(|[l, r]| (l + r) / 2.0)
        .collect();
    group.bench_function("resample 44100 -> 6000", |b| {
        b.iter(|| {
            let mut r = StreamResampler::new(RATE, 6000).expect("resampler");
            let mut out = Vec::with_capacity(6000 * SECONDS as usize + 10_000);
            for chunk in mono.chunks(1152) {
                r.process(chunk, &mut out).expect("resample");
            }
            r.finish(&mut out).expect("resample");
            out.len()
        })
    });

    // Per-query overhead: a 2 s clip at 44.1 kHz, as a lookup hashes it.
    let clip = &mono[..2 * RATE as usize];
    group.throughput(Throughput::Elements(2));
    group.bench_function("fingerprint_samples, 2 s clip at 44100", |b| {
        b.iter(|| {
            auscout_fingerprint::fingerprint_samples(black_box(clip), RATE, &HashOptions::default())
                .expect("fingerprint")
                .hashes
                .len()
        })
    });
    group.throughput(Throughput::Elements(SECONDS));

    let at_6k: Vec<f32> = mono
        .iter()
        .step_by(7)
        .take(6000 * SECONDS as usize)
        .copied()
        .collect();
    group.bench_function("hash 6000 Hz", |b| {
        b.iter(|| {
            let mut h = Hasher::new(6000, 4).expect("hasher");
            for chunk in at_6k.chunks(4096) {
                h.push(chunk);
            }
            h.finish().expect("hashes").hashes.len()
        })
    });
    group.finish();
}

criterion_group!(benches, bench_pipeline, bench_stages);
criterion_main!(benches);
