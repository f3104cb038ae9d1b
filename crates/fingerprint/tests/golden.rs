//! The frame hash against the reference vectors of libpHashAudio
//! (`tests/data/golden/`, see its README): same hash count, ≥ 99.9% equal bits.
//! Toggles may differ where the reference sorted `floor(|D|)`; the test
//! reports how many do.

use std::path::PathBuf;

use auscout_fingerprint::{fingerprint_file, fingerprint_samples, HashOptions};

/// The vendored reference vectors (see `tests/data/golden/README.md`).
fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/golden")
}

/// `index,hash,toggle` rows of the reference CSV.
fn read_reference(dir: &std::path::Path) -> (Vec<u32>, Vec<u32>) {
    let text = std::fs::read_to_string(dir.join("signal-6000hz.p4.csv")).unwrap();
    let mut hashes = Vec::new();
    let mut toggles = Vec::new();
    for (i, line) in text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .enumerate()
    {
        let cols: Vec<&str> = line.trim().split(',').collect();
        assert_eq!(cols.len(), 3, "line {}: {line}", i + 2);
        assert_eq!(cols[0].parse::<usize>().unwrap(), i);
        hashes.push(cols[1].parse().unwrap());
        toggles.push(cols[2].parse().unwrap());
    }
    (hashes, toggles)
}

/// The WAV's 16-bit samples read as `sample / 32768`, as the reference did.
fn read_samples(dir: &std::path::Path) -> Vec<f32> {
    let mut reader = hound::WavReader::open(dir.join("signal-6000hz.wav")).unwrap();
    let spec = reader.spec();
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (6000, 1, 16)
    );
    reader
        .samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect()
}

#[test]
fn hashes_match_the_reference() {
    let dir = golden_dir();
    let (ref_hashes, ref_toggles) = read_reference(&dir);
    let samples = read_samples(&dir);
    assert_eq!(samples.len(), 72_000);
    let opts = HashOptions {
        sr: 6000,
        toggle_bits: 4,
        probe_budget: 0,
        ..HashOptions::default()
    };
    let fp = fingerprint_samples(&samples, 6000, &opts).unwrap();

    assert_eq!(ref_hashes.len(), 1092);
    assert_eq!(fp.hashes.len(), ref_hashes.len(), "hash count");
    let differing_bits: u32 = fp
        .hashes
        .iter()
        .zip(&ref_hashes)
        .map(|(a, b)| (a ^ b).count_ones())
        .sum();
    let total_bits = 32 * ref_hashes.len() as u32;
    let agreement = 1.0 - f64::from(differing_bits) / f64::from(total_bits);
    let differing_hashes = fp
        .hashes
        .iter()
        .zip(&ref_hashes)
        .filter(|(a, b)| a != b)
        .count();
    // The bits that flip are the near-zero |D| ones, which the toggles point at.
    let flips_outside_own_toggles = fp
        .hashes
        .iter()
        .zip(&ref_hashes)
        .zip(&fp.toggles)
        .map(|((a, b), t)| ((a ^ b) & !t).count_ones())
        .sum::<u32>();
    let differing_toggles = fp
        .toggles
        .iter()
        .zip(&ref_toggles)
        .filter(|(a, b)| a != b)
        .count();
    eprintln!(
        "golden: {} hashes; bit agreement {:.5} ({differing_bits} of {total_bits} bits differ, \
         in {differing_hashes} hashes; {flips_outside_own_toggles} of them outside our toggles); \
         toggles differing from the floored reference: {differing_toggles} of {}",
        fp.hashes.len(),
        agreement,
        ref_toggles.len()
    );
    assert!(agreement >= 0.999, "bit agreement {agreement}");
    assert!(fp.toggles.iter().all(|t| t.count_ones() == 4));
}

#[test]
fn decoding_the_wav_gives_the_same_hashes() {
    let dir = golden_dir();
    let opts = HashOptions {
        sr: 6000,
        toggle_bits: 4,
        probe_budget: 0,
        ..HashOptions::default()
    };
    let from_samples = fingerprint_samples(&read_samples(&dir), 6000, &opts).unwrap();
    let from_file = fingerprint_file(&dir.join("signal-6000hz.wav"), &opts).unwrap();
    assert_eq!(from_file, from_samples);
}
