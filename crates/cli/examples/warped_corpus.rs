//! Writes a realistic workload for the module's server bench: the hashes of
//! real music, each file of a directory fingerprinted once and then taken
//! at many small speed variations (1.000, 1.001, 0.999, 1.002, …, as
//! slightly different masters or transfers of one recording would be),
//! until the tracks hold the frames asked for. Real hashes are far from
//! uniform (silence, steady tones, repeated bars); random ones are not.
//!
//!     cargo run --release -p auscout-cli --example warped_corpus -- DIR FRAMES OUT
//!     AUSCOUT_BENCH_WORKLOAD=OUT cargo bench -p auscout-module --bench server
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
    let [dir, frames, out] = args.as_slice() else {
        return Err("usage: warped_corpus DIR FRAMES OUT".into());
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
    'variations: for j in 0.. {
        let k = f64::from((j + 1) / 2);
        let speed = if j % 2 == 0 {
            1.0 + STEP * k
        } else {
            1.0 - STEP * k
        };
        for clip in &clips {
            let fp = clip.fingerprint_warped(Warp::speed(speed))?;
            if fp.hashes.is_empty() {
                continue;
            }
            w.write_all(&u32::try_from(fp.hashes.len())?.to_le_bytes())?;
            for v in fp.hashes.iter().chain(&fp.toggles) {
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
