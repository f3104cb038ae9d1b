//! Writes a realistic workload for the module's server bench: the hashes of
//! real music, each file of a directory fingerprinted once and then taken
//! at many small speed variations (1.000, 1.001, 0.999, 1.002, …, as
//! slightly different masters or transfers of one recording would be),
//! until the tracks hold the frames asked for. Real hashes are far from
//! uniform (silence, steady tones, repeated bars); random ones are not.
//!
//!     cargo run --release -p auscout-cli --example warped_corpus -- DIR FRAMES OUT [--distinct]
//!     AUSCOUT_BENCH_WORKLOAD=OUT cargo bench -p auscout-module --bench server
//!
//! Every variation is the same recording, so a query matches all of them:
//! a lookup's true hits grow with the index, as in no catalogue. With
//! `--distinct`, each variation after the first has the 32 bit positions of
//! its hashes and toggles permuted (one permutation per variation): every
//! variation keeps the skew of real music (its repeated hashes, and the
//! all-zero and all-one hashes that every permutation keeps), but only its
//! own excerpts match it, as distinct recordings would.
//!
//! OUT holds one record per track: its frame count `n` (u32), then `n`
//! hashes and `n` toggle masks (4 bits each), all little-endian.

use std::io::Write;
use std::path::PathBuf;

use auscout_fingerprint::clip::Warp;
use auscout_fingerprint::{Clip, HashOptions};

/// Speed step between variations.
const STEP: f64 = 0.001;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (args, distinct) = match args.split_last() {
        Some((last, rest)) if last == "--distinct" => (rest, true),
        _ => (args.as_slice(), false),
    };
    let [dir, frames, out] = args else {
        return Err("usage: warped_corpus DIR FRAMES OUT [--distinct]".into());
    };
    let wanted: usize = frames.parse()?;
    let opts = HashOptions {
        toggle_bits: 4,
        probe_budget: 0,
        ..HashOptions::default()
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    let mut clips = Vec::new();
    for f in &files {
        match Clip::open(f, &opts) {
            Ok(c) => clips.push(c),
            Err(e) => eprintln!("{}: {e} (skipped)", f.display()),
        }
    }
    if clips.is_empty() {
        return Err(format!("no audio in {dir}").into());
    }
    let mut w = std::io::BufWriter::new(std::fs::File::create(out)?);
    let (mut total, mut tracks) = (0usize, 0usize);
    'variations: for j in 0u32.. {
        let k = f64::from(j.div_ceil(2));
        let speed = if j % 2 == 0 {
            1.0 + STEP * k
        } else {
            1.0 - STEP * k
        };
        let permutation = (distinct && j > 0).then(|| bit_permutation(u64::from(j)));
        for clip in &clips {
            let fp = clip.fingerprint_warped(Warp::speed(speed))?;
            if fp.hashes.is_empty() {
                continue;
            }
            w.write_all(&u32::try_from(fp.hashes.len())?.to_le_bytes())?;
            for &v in fp.hashes.iter().chain(&fp.toggles) {
                let v = permutation.as_ref().map_or(v, |p| permute(v, p));
                w.write_all(&v.to_le_bytes())?;
            }
            total += fp.hashes.len();
            tracks += 1;
            if total >= wanted {
                break 'variations;
            }
        }
        eprint!("\r{tracks} tracks, {:.1}M frames", total as f64 / 1e6);
    }
    w.flush()?;
    eprintln!("\r{tracks} tracks, {total} frames written to {out}");
    Ok(())
}

/// A permutation of the 32 bit positions, the same for the same `seed`.
fn bit_permutation(seed: u64) -> [u32; 32] {
    let mut rng = auscout_testkit::Rng::new(seed);
    let mut p: [u32; 32] = std::array::from_fn(|i| i as u32);
    for i in (1..32).rev() {
        p.swap(i, rng.below(i as u64 + 1) as usize);
    }
    p
}

/// `v` with bit `i` moved to bit `p[i]`.
fn permute(v: u32, p: &[u32; 32]) -> u32 {
    p.iter()
        .enumerate()
        .filter(|&(i, _)| v >> i & 1 == 1)
        .fold(0, |acc, (_, &to)| acc | 1 << to)
}
