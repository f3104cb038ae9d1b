//! Synthetic music (a different melody per track: tones with harmonics, a
//! bass line, noise percussion), distortions of excerpts, WAV/FLAC writers.

use std::f64::consts::PI;
use std::path::Path;

use crate::Rng;

/// `seconds` of mono music at `rate` Hz, different for every `seed`: three
/// voices (melody, counter-melody, bass) on a per-track scale and tempo, each
/// with its own harmonics, envelope shape (plucked or swelling) and vibrato;
/// noise percussion of a per-track colour on a random subset of beats; a
/// little background hiss. Independent voices matter: a single decaying
/// voice makes every frame's hash look alike across tracks.
pub fn music(seed: u64, seconds: f64, rate: u32) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    let n = (seconds * f64::from(rate)) as usize;
    let sr = f64::from(rate);
    let mut out = vec![0f64; n];
    let beat = 0.15 + 0.2 * rng.unit();
    // A scale of 5 to 7 of the 12 semitones, over two octaves.
    let mut scale: Vec<i32> = (0..12).filter(|_| rng.unit() < 0.55).collect();
    if scale.len() < 3 {
        scale = vec![0, 3, 7];
    }
    let steps: Vec<i32> = scale
        .iter()
        .copied()
        .chain(scale.iter().map(|s| s + 12))
        .collect();
    let base = 110.0 * 2f64.powf(rng.below(24) as f64 / 12.0);
    for (voice, (octave, level)) in [(1.0, 0.5), (2.0, 0.3), (0.25, 0.35)]
        .into_iter()
        .enumerate()
    {
        let timbre: Vec<f64> = (1..=6).map(|h| rng.unit() / h as f64).collect();
        let swell = rng.unit() < 0.5;
        let vibrato = (4.0 + 3.0 * rng.unit(), 0.004 * rng.unit());
        let mut t = if voice == 1 {
            beat * rng.below(3) as f64
        } else {
            0.0
        };
        while t < seconds {
            let len = beat * [0.5, 1.0, 1.0, 1.5, 2.0, 3.0][rng.below(6) as usize];
            if rng.unit() < 0.85 {
                let step = steps[rng.below(steps.len() as u64) as usize];
                let freq = base * octave * 2f64.powf(f64::from(step) / 12.0);
                let note = Note {
                    start: t,
                    len,
                    freq,
                    swell,
                    vibrato,
                };
                add_note(&mut out, sr, &note, &timbre, level);
            }
            t += len;
        }
    }
    let colour = 0.05 + 0.9 * rng.unit();
    let burst = (0.05 * sr) as usize;
    let mut t = 0.0;
    while t < seconds {
        if rng.unit() < 0.6 {
            let start = (t * sr) as usize;
            let level = 0.1 + 0.2 * rng.unit();
            let mut y = 0.0;
            for i in 0..burst {
                y += colour * (rng.gauss() - y);
                if let Some(s) = out.get_mut(start + i) {
                    *s += level * y * (-(i as f64) / (0.012 * sr)).exp();
                }
            }
        }
        t += beat * [0.5, 1.0][rng.below(2) as usize];
    }
    for s in out.iter_mut() {
        *s += 0.003 * rng.gauss();
    }
    normalise(&out, 0.8)
}

struct Note {
    start: f64,
    len: f64,
    freq: f64,
    /// Swelling (slow attack) rather than plucked (fast attack, decay).
    swell: bool,
    /// Vibrato rate (Hz) and depth (fraction of the frequency).
    vibrato: (f64, f64),
}

fn add_note(out: &mut [f64], sr: f64, note: &Note, harmonics: &[f64], level: f64) {
    let first = (note.start * sr) as usize;
    let count = (note.len * sr) as usize;
    let (rate, depth) = note.vibrato;
    let mut phase = 0.0;
    for i in 0..count {
        let Some(s) = out.get_mut(first + i) else {
            break;
        };
        let t = i as f64 / sr;
        let env = if note.swell {
            (t / (0.6 * note.len)).min(1.0) * (1.0 - (t / note.len).powi(4))
        } else {
            (t / 0.008).min(1.0) * (-4.0 * t / note.len).exp()
        };
        phase += 2.0 * PI * note.freq * (1.0 + depth * (2.0 * PI * rate * t).sin()) / sr;
        let tone: f64 = harmonics
            .iter()
            .enumerate()
            .map(|(h, a)| a * (phase * (h + 1) as f64).sin())
            .sum();
        *s += level * env * tone;
    }
}

fn normalise(x: &[f64], peak: f64) -> Vec<f32> {
    let max = x.iter().fold(0f64, |m, v| m.max(v.abs())).max(1e-9);
    x.iter().map(|v| (v * peak / max) as f32).collect()
}

/// The part of `x` from `start` s lasting `len` s (at `rate`).
pub fn excerpt(x: &[f32], rate: u32, start: f64, len: f64) -> Vec<f32> {
    let a = (start * f64::from(rate)) as usize;
    let b = ((start + len) * f64::from(rate)) as usize;
    x.get(a.min(x.len())..b.min(x.len()))
        .unwrap_or(&[])
        .to_vec()
}

/// Adds white noise at `snr_db` below the signal's power.
pub fn add_noise(x: &[f32], snr_db: f64, seed: u64) -> Vec<f32> {
    let power = x.iter().map(|v| f64::from(*v).powi(2)).sum::<f64>() / x.len().max(1) as f64;
    let sigma = (power / 10f64.powf(snr_db / 10.0)).sqrt();
    let mut rng = Rng::new(seed);
    x.iter()
        .map(|v| (f64::from(*v) + sigma * rng.gauss()).clamp(-1.0, 1.0) as f32)
        .collect()
}

pub fn gain(x: &[f32], g: f32) -> Vec<f32> {
    x.iter().map(|v| (v * g).clamp(-1.0, 1.0)).collect()
}

/// Two cascaded one-pole low-pass filters at `cutoff` Hz.
pub fn low_pass(x: &[f32], rate: u32, cutoff: f64) -> Vec<f32> {
    let a = 1.0 - (-2.0 * PI * cutoff / f64::from(rate)).exp();
    let (mut y1, mut y2) = (0.0, 0.0);
    x.iter()
        .map(|v| {
            y1 += a * (f64::from(*v) - y1);
            y2 += a * (y1 - y2);
            y2 as f32
        })
        .collect()
}

/// The same sound at another sample rate (linear interpolation, same speed).
pub fn resample(x: &[f32], from: u32, to: u32) -> Vec<f32> {
    let ratio = f64::from(from) / f64::from(to);
    let n = (x.len() as f64 / ratio) as usize;
    (0..n)
        .map(|i| {
            let pos = i as f64 * ratio;
            let j = pos as usize;
            let frac = (pos - j as f64) as f32;
            let a = x.get(j).copied().unwrap_or(0.0);
            let b = x.get(j + 1).copied().unwrap_or(a);
            a + (b - a) * frac
        })
        .collect()
}

fn to_i16(v: f32) -> i16 {
    (v.clamp(-1.0, 1.0) * 32767.0).round() as i16
}

/// Writes 16-bit PCM WAV; with `channels == 2` the right channel is the
/// left one slightly quieter (so the downmix is exercised, not trivial).
pub fn write_wav(path: &Path, x: &[f32], rate: u32, channels: u16) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).expect("create wav");
    for &v in x {
        w.write_sample(to_i16(v)).expect("write sample");
        if channels == 2 {
            w.write_sample(to_i16(0.8 * v)).expect("write sample");
        }
    }
    w.finalize().expect("finish wav");
}

/// Writes 16-bit mono FLAC.
pub fn write_flac(path: &Path, x: &[f32], rate: u32) {
    use flacenc::component::BitRepr;
    use flacenc::error::Verify;
    let config = flacenc::config::Encoder::default()
        .into_verified()
        .expect("flac config");
    // flacenc records a short last block as the stream's minimum block size,
    // which makes the stream look variable-blocksize, and symphonia refuses
    // it; real encoders exclude the last block. Whole blocks avoid the issue.
    let mut samples: Vec<i32> = x.iter().map(|&v| i32::from(to_i16(v))).collect();
    let block = config.block_size.max(1);
    samples.resize(samples.len().div_ceil(block) * block, 0);
    let source = flacenc::source::MemSource::from_samples(&samples, 1, 16, rate as usize);
    let stream = flacenc::encode_with_fixed_block_size(&config, source, config.block_size)
        .expect("flac encode");
    let mut sink = flacenc::bitsink::ByteSink::new();
    stream.write(&mut sink).expect("flac write");
    std::fs::write(path, sink.as_slice()).expect("write flac");
}
