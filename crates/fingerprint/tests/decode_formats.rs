//! The decoder on real encoded files of every promised format, made at test
//! time from one synthetic WAV with `ffmpeg` (packages: ffmpeg, which brings
//! libmp3lame, libvorbis and the native AAC/FLAC/ALAC encoders). Each must
//! decode to the right duration and hash like the WAV it came from; broken,
//! empty and too-short files must be errors, never panics.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use auscout_fingerprint::decode::Decoder;
use auscout_fingerprint::{fingerprint_file, FingerprintError, HashOptions};

const RATE: u32 = 44_100;
const SECONDS: f64 = 10.0;

/// A deterministic music-like stereo signal: chords with harmonics changing every
/// half second, a slow chirp, and noise bursts, each channel mixed differently.
fn synthetic_music(rate: u32, seconds: f64) -> Vec<[f32; 2]> {
    let n = (f64::from(rate) * seconds) as usize;
    let roots = [220.0, 261.6, 329.6, 196.0, 246.9, 293.7, 174.6, 349.2];
    let mut rng = 0x9e37_79b9u32;
    (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            let step = (t * 2.0) as usize;
            let root = roots[step % roots.len()];
            let tau = 2.0 * std::f64::consts::PI;
            let mut chord = 0.0;
            for (k, ratio) in [1.0, 1.25, 1.5].iter().enumerate() {
                for h in 1..=4 {
                    let f = root * ratio * f64::from(h);
                    chord += (tau * f * t + k as f64).sin() / f64::from(h * h);
                }
            }
            let env = 1.0 - (t * 2.0).fract() * 0.6;
            let chirp = (tau * (100.0 + 120.0 * t) * t).sin();
            rng ^= rng << 13;
            rng ^= rng >> 17;
            rng ^= rng << 5;
            let noise = f64::from(rng) / f64::from(u32::MAX) - 0.5;
            let burst = if (t * 3.0).fract() < 0.15 { noise } else { 0.0 };
            let left = 0.12 * chord * env + 0.15 * chirp + 0.3 * burst;
            let right = 0.12 * chord * env - 0.1 * chirp + 0.2 * burst;
            [left as f32, right as f32]
        })
        .collect()
}

fn write_wav(path: &Path, rate: u32, frames: &[[f32; 2]]) {
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for frame in frames {
        for s in frame {
            w.write_sample((s.clamp(-1.0, 1.0) * 32767.0) as i16)
                .unwrap();
        }
    }
    w.finalize().unwrap();
}

/// Runs ffmpeg; returns what it wrote to stdout.
fn ffmpeg(args: &[&str]) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ffmpeg ({e}): install the `ffmpeg` package"));
    assert!(
        out.status.success(),
        "ffmpeg {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// One encoded variant of the reference WAV.
struct Variant {
    file: &'static str,
    ffmpeg_args: &'static [&'static str],
    lossy: bool,
    /// Hashes this variant may lag the WAV by. None does: MP3 (LAME header)
    /// and Vorbis are trimmed by symphonia, AAC in MP4 by our edit-list
    /// reader (`m4a_starts_where_the_wav_starts` checks it to the sample).
    max_lag: usize,
    /// Written by ffmpeg to a pipe, not a file: a streaming muxer cannot go
    /// back to fill in sizes, so a WebM comes out as browsers' MediaRecorder
    /// writes it (segment and clusters of unknown size, no cues).
    piped: bool,
}

const VARIANTS: &[Variant] = &[
    Variant {
        file: "music.flac",
        ffmpeg_args: &[],
        lossy: false,
        max_lag: 0,
        piped: false,
    },
    Variant {
        file: "music.mp3",
        ffmpeg_args: &["-c:a", "libmp3lame", "-b:a", "128k"],
        lossy: true,
        max_lag: 0,
        piped: false,
    },
    Variant {
        file: "music.ogg",
        ffmpeg_args: &["-c:a", "libvorbis", "-q:a", "4"],
        lossy: true,
        max_lag: 0,
        piped: false,
    },
    Variant {
        file: "music.m4a",
        ffmpeg_args: &["-c:a", "aac", "-b:a", "128k"],
        lossy: true,
        max_lag: 0,
        piped: false,
    },
    Variant {
        file: "music-alac.m4a",
        ffmpeg_args: &["-c:a", "alac"],
        lossy: false,
        max_lag: 0,
        piped: false,
    },
    Variant {
        file: "music.aiff",
        ffmpeg_args: &[],
        lossy: false,
        max_lag: 0,
        piped: false,
    },
    Variant {
        file: "music-f32.wav",
        ffmpeg_args: &["-c:a", "pcm_f32le"],
        lossy: false,
        max_lag: 0,
        piped: false,
    },
    Variant {
        file: "music-s24.wav",
        ffmpeg_args: &["-c:a", "pcm_s24le"],
        lossy: false,
        max_lag: 0,
        piped: false,
    },
    // Other rates and channel counts: resampled by ffmpeg, so compared as lossy.
    Variant {
        file: "music-48k-mono.flac",
        ffmpeg_args: &["-ar", "48000", "-ac", "1"],
        lossy: true,
        max_lag: 0,
        piped: false,
    },
    Variant {
        file: "music-22k.mp3",
        ffmpeg_args: &["-ar", "22050", "-c:a", "libmp3lame", "-b:a", "64k"],
        lossy: true,
        max_lag: 0,
        piped: false,
    },
    Variant {
        file: "music-6ch.flac",
        ffmpeg_args: &["-af", "pan=5.1|FL=c0|FR=c1|FC=c0|LFE=c1|BL=c0|BR=c1"],
        lossy: false,
        max_lag: 0,
        piped: false,
    },
    // Opus through libopus: Ogg/Opus, WebM/Opus, and WebM as MediaRecorder streams it.
    Variant {
        file: "music.opus",
        ffmpeg_args: &["-c:a", "libopus", "-b:a", "96k"],
        lossy: true,
        max_lag: 0,
        piped: false,
    },
    Variant {
        file: "music.webm",
        ffmpeg_args: &["-c:a", "libopus", "-b:a", "64k"],
        lossy: true,
        max_lag: 0,
        piped: false,
    },
    Variant {
        file: "music-streamed.webm",
        ffmpeg_args: &["-c:a", "libopus", "-b:a", "48k", "-f", "webm"],
        lossy: true,
        max_lag: 0,
        piped: true,
    },
];

/// Generates the reference WAV and every variant once per test run.
fn fixtures() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("decode_formats");
        std::fs::create_dir_all(&dir).unwrap();
        let wav = dir.join("music.wav");
        write_wav(&wav, RATE, &synthetic_music(RATE, SECONDS));
        let wav_str = wav.to_str().unwrap();
        for v in VARIANTS {
            let out = dir.join(v.file);
            let mut args = vec!["-i", wav_str];
            args.extend_from_slice(v.ffmpeg_args);
            if v.piped {
                args.push("pipe:1");
                let bytes = ffmpeg(&args);
                std::fs::write(&out, bytes).unwrap();
            } else {
                args.push(out.to_str().unwrap());
                ffmpeg(&args);
            }
        }
        // Shorter than one 0.4 s frame, as WAV and as MP3.
        write_wav(&dir.join("short.wav"), RATE, &synthetic_music(RATE, 0.2));
        ffmpeg(&[
            "-i",
            dir.join("short.wav").to_str().unwrap(),
            dir.join("short.mp3").to_str().unwrap(),
        ]);
        dir
    })
}

/// Decodes the whole file: (sample rate, mono frames).
fn decode(path: &Path) -> Result<(u32, u64), FingerprintError> {
    let mut d = Decoder::open(path)?;
    let (mut rate, mut frames) = (0, 0u64);
    while let Some(chunk) = d.next_chunk()? {
        rate = chunk.sample_rate;
        frames += chunk.samples.len() as u64;
    }
    Ok((rate, frames))
}

fn bit_agreement(a: &[u32], b: &[u32]) -> f64 {
    let n = a.len().min(b.len());
    let diff: u32 = a.iter().zip(b).map(|(x, y)| (x ^ y).count_ones()).sum();
    1.0 - f64::from(diff) / (32 * n) as f64
}

/// The lag (in hashes, `got` behind `reference`) in `0..=max_lag` with the best
/// bit agreement, and that agreement.
fn best_alignment(reference: &[u32], got: &[u32], max_lag: usize) -> (usize, f64) {
    (0..=max_lag)
        .map(|lag| (lag, bit_agreement(reference, got.get(lag..).unwrap_or(&[]))))
        .fold((0, f64::MIN), |best, x| if x.1 > best.1 { x } else { best })
}

#[test]
fn every_format_decodes_to_the_right_duration() {
    let dir = fixtures();
    for name in std::iter::once("music.wav").chain(VARIANTS.iter().map(|v| v.file)) {
        let (rate, frames) = decode(&dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let seconds = frames as f64 / f64::from(rate);
        eprintln!("{name}: {rate} Hz, {seconds:.4} s");
        assert!(
            (seconds - SECONDS).abs() <= SECONDS * 0.01,
            "{name}: decoded {seconds} s, expected {SECONDS} s"
        );
    }
}

#[test]
fn every_format_hashes_like_the_wav() {
    let dir = fixtures();
    let opts = HashOptions::default();
    let reference = fingerprint_file(&dir.join("music.wav"), &opts).unwrap();
    for v in VARIANTS {
        let fp = fingerprint_file(&dir.join(v.file), &opts)
            .unwrap_or_else(|e| panic!("{}: {e}", v.file));
        let (lag, agreement) = best_alignment(&reference.hashes, &fp.hashes, v.max_lag);
        eprintln!(
            "{}: {} hashes (wav {}), bit agreement {agreement:.4} at lag {lag}",
            v.file,
            fp.hashes.len(),
            reference.hashes.len()
        );
        let count_diff = fp.hashes.len().abs_diff(reference.hashes.len());
        assert!(
            count_diff <= 3,
            "{}: {} hashes vs {}",
            v.file,
            fp.hashes.len(),
            reference.hashes.len()
        );
        let floor = if v.lossy { 0.90 } else { 0.99 };
        assert!(agreement >= floor, "{}: bit agreement {agreement}", v.file);
    }
}

/// Every decoded mono sample of `path`.
fn decode_samples(path: &Path) -> Vec<f32> {
    let mut d = Decoder::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut all = Vec::new();
    while let Some(chunk) = d.next_chunk().unwrap() {
        all.extend_from_slice(chunk.samples);
    }
    all
}

/// The shift in samples (`got[i + lag] ≈ reference[i]`) in `-max..=max` that
/// correlates best over one second from `at`.
fn sample_lag(reference: &[f32], got: &[f32], at: usize, max: i64) -> i64 {
    let window = &reference[at..at + RATE as usize];
    let score = |lag: i64| -> f64 {
        let start = (at as i64 + lag) as usize;
        let other = &got[start..start + window.len()];
        let dot: f64 = window
            .iter()
            .zip(other)
            .map(|(a, b)| f64::from(a * b))
            .sum();
        let energy: f64 = other.iter().map(|b| f64::from(b * b)).sum();
        dot / energy.sqrt().max(1e-12)
    };
    (-max..=max)
        .max_by(|&a, &b| score(a).total_cmp(&score(b)))
        .unwrap()
}

#[test]
fn m4a_starts_where_the_wav_starts() {
    // ffmpeg's AAC encoder emits 1024 priming samples and records them in
    // the edit list; without applying it the audio came out 1024 samples
    // (23 ms) late.
    let dir = fixtures();
    let wav = decode_samples(&dir.join("music.wav"));
    for (file, rate) in [("music.m4a", RATE), ("music-22k.m4a", 22_050)] {
        let path = dir.join(file);
        if rate != RATE && !path.exists() {
            ffmpeg(&[
                "-i",
                dir.join("music.wav").to_str().unwrap(),
                "-ar",
                "22050",
                "-c:a",
                "aac",
                path.to_str().unwrap(),
            ]);
        }
        let m4a = decode_samples(&path);
        // Compare at 44.1 kHz: the 22 kHz file's samples are spread out by
        // linear interpolation (plenty for a correlation peak).
        let m4a: Vec<f32> = if rate == RATE {
            m4a
        } else {
            let step = f64::from(rate) / f64::from(RATE);
            (0..(m4a.len() as f64 / step) as usize)
                .map(|i| {
                    let x = i as f64 * step;
                    let (k, f) = (x as usize, (x.fract()) as f32);
                    let a = m4a.get(k).copied().unwrap_or(0.0);
                    let b = m4a.get(k + 1).copied().unwrap_or(a);
                    a + (b - a) * f
                })
                .collect()
        };
        for at in [RATE as usize, 5 * RATE as usize] {
            let lag = sample_lag(&wav, &m4a, at, 2048);
            eprintln!("{file}: lag {lag} samples at {at}");
            assert!(lag.abs() <= 2, "{file}: {lag} samples off at {at}");
        }
    }
}

#[test]
fn garbage_and_truncated_headers_are_errors() {
    let dir = fixtures();
    let garbage = dir.join("garbage.mp3");
    let bytes: Vec<u8> = (0..20_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&garbage, bytes).unwrap();
    let err = fingerprint_file(&garbage, &HashOptions::default()).unwrap_err();
    eprintln!("garbage: {err}");

    for name in [
        "music.flac",
        "music.mp3",
        "music.ogg",
        "music.m4a",
        "music.wav",
        "music.opus",
        "music.webm",
    ] {
        let full = std::fs::read(dir.join(name)).unwrap();
        let cut = dir.join(format!("header-only-{name}"));
        std::fs::write(&cut, &full[..40.min(full.len())]).unwrap();
        let result = fingerprint_file(&cut, &HashOptions::default());
        eprintln!(
            "{name} cut to 40 bytes: {result:?}",
            result = result.as_ref().map(|f| f.hashes.len())
        );
        assert!(result.is_err(), "{name} cut to 40 bytes hashed");
    }
}

#[test]
fn truncated_files_keep_the_audio_before_the_cut() {
    let dir = fixtures();
    let opts = HashOptions::default();
    for name in [
        "music.flac",
        "music.mp3",
        "music.ogg",
        "music.wav",
        "music.opus",
        "music-streamed.webm",
    ] {
        let full = std::fs::read(dir.join(name)).unwrap();
        let cut = dir.join(format!("half-{name}"));
        std::fs::write(&cut, &full[..full.len() / 2]).unwrap();
        // Must not panic; a partial fingerprint or an error are both acceptable
        // for a container that indexes its end, but these stream.
        let (rate, frames) = decode(&cut).unwrap_or_else(|e| panic!("half {name}: {e}"));
        let seconds = frames as f64 / f64::from(rate);
        eprintln!("half {name}: {seconds:.2} s");
        assert!(
            seconds > SECONDS * 0.4 && seconds < SECONDS * 0.6,
            "half {name}: {seconds} s"
        );
        assert!(fingerprint_file(&cut, &opts).is_ok());
    }
    // MP4 keeps its index at the end or start; cutting it must at least not panic.
    let full = std::fs::read(dir.join("music.m4a")).unwrap();
    let cut = dir.join("half-music.m4a");
    std::fs::write(&cut, &full[..full.len() / 2]).unwrap();
    let result = fingerprint_file(&cut, &opts);
    eprintln!(
        "half music.m4a: {:?}",
        result.as_ref().map(|f| f.hashes.len())
    );
}

#[test]
fn damaged_packets_are_skipped() {
    let dir = fixtures();
    let opts = HashOptions::default();
    let reference = fingerprint_file(&dir.join("music.wav"), &opts).unwrap();
    for name in [
        "music.mp3",
        "music.ogg",
        "music.flac",
        "music.m4a",
        "music.opus",
    ] {
        // (A damaged MKV/WebM cluster ends the stream: symphonia's demuxer
        // does not resync. What came before is kept, as in a truncated file.)
        let mut bytes = std::fs::read(dir.join(name)).unwrap();
        // Scribble over 1 KB in the middle: a few packets, not the headers.
        let mid = bytes.len() / 2;
        for (i, b) in bytes[mid..mid + 1024].iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37) ^ 0x5a;
        }
        let damaged = dir.join(format!("damaged-{name}"));
        std::fs::write(&damaged, &bytes).unwrap();
        let mut d = Decoder::open(&damaged).unwrap_or_else(|e| panic!("damaged {name}: {e}"));
        let (mut rate, mut frames) = (1, 0u64);
        while let Some(chunk) = d
            .next_chunk()
            .unwrap_or_else(|e| panic!("damaged {name}: {e}"))
        {
            rate = chunk.sample_rate;
            frames += chunk.samples.len() as u64;
        }
        let seconds = frames as f64 / f64::from(rate);
        let fp = fingerprint_file(&damaged, &opts).unwrap();
        // Before the damage the audio is intact; after it, a lost packet shifts
        // the rest, so only the first 40% is compared position by position.
        let before = reference.hashes.len() * 2 / 5;
        let (lag, agreement) = best_alignment(&reference.hashes[..before], &fp.hashes, 3);
        eprintln!(
            "damaged {name}: {seconds:.2} s, {} packets skipped, stopped early: {:?}, \
             bit agreement before the damage {agreement:.4} at lag {lag}",
            d.damaged_packets(),
            d.stopped_early()
        );
        // Decoding goes on after the damage: at most a second or so is lost.
        assert!(seconds > SECONDS * 0.85, "damaged {name}: {seconds} s");
        assert!(agreement > 0.9, "damaged {name}: agreement {agreement}");
    }
}

#[test]
fn empty_missing_and_too_short_files_are_errors() {
    let dir = fixtures();
    let opts = HashOptions::default();
    let empty = dir.join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    let err = fingerprint_file(&empty, &opts).unwrap_err();
    assert!(matches!(err, FingerprintError::Decode(_)), "{err}");

    let err = fingerprint_file(&dir.join("no-such-file.wav"), &opts).unwrap_err();
    assert!(matches!(err, FingerprintError::Io(_)), "{err}");

    for name in ["short.wav", "short.mp3"] {
        let err = fingerprint_file(&dir.join(name), &opts).unwrap_err();
        eprintln!("{name}: {err}");
        assert!(
            matches!(err, FingerprintError::TooShort { .. }),
            "{name}: {err}"
        );
    }
}

/// Peak resident memory of this process (`VmHWM`), in MB.
fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A 20-minute 44.1 kHz stereo WAV (212 MB) hashes in bounded memory: decode,
/// resample and hash stream chunk by chunk. Run alone so the peak is its own:
/// `cargo test --release -p auscout-client --test decode_formats -- --ignored long_file`
#[test]
#[ignore = "writes a 212 MB file; run on demand"]
fn long_file_hashes_in_bounded_memory() {
    const MINUTES: u32 = 20;
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("long-20min.wav");
    // Written a second at a time, so the test itself never holds the signal.
    let one_second = synthetic_music(RATE, 1.0);
    let spec = hound::WavSpec {
        channels: 2,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(&path, spec).unwrap();
    for second in 0..MINUTES * 60 {
        // Vary each second a little so the hashes are not one repeated block.
        let gain = 0.5 + 0.5 * ((second % 7) as f32 / 7.0);
        for frame in &one_second {
            for s in frame {
                w.write_sample((s * gain * 32767.0) as i16).unwrap();
            }
        }
    }
    w.finalize().unwrap();
    let before = peak_rss_mb();
    let fp = fingerprint_file(&path, &HashOptions::default()).unwrap();
    let after = peak_rss_mb();
    let _ = std::fs::remove_file(&path);
    let expected = (u64::from(MINUTES) * 60 * 6000 - 2048) / 64 + 1 - 2;
    eprintln!(
        "{MINUTES} min: {} hashes, peak RSS {before:.1} MB before, {after:.1} MB after hashing",
        fp.hashes.len()
    );
    assert_eq!(fp.hashes.len() as u64, expected);
    assert!(after < 100.0, "peak RSS {after} MB");
}
