//! Fingerprints of many files on every core, each through an optional
//! cache: one small binary file per audio file and hashing options, keyed
//! by the path, the size and the mtime, so a second run decodes no audio.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use auscout_fingerprint::{fingerprint_file, Fingerprint, HashOptions};
use rayon::prelude::*;

/// Changes whenever a file's fingerprint changes for the same options, so
/// that stale entries are recomputed rather than read.
const MAGIC: &[u8; 8] = b"AUSFP\x02\0\0";

/// Fingerprints `paths` in parallel, in order; an error per file that failed.
pub fn fingerprint_all(
    paths: &[PathBuf],
    opts: &HashOptions,
    cache: Option<&Path>,
) -> Vec<Result<Fingerprint, String>> {
    paths
        .par_iter()
        .map(|p| cached_fingerprint(p, opts, cache))
        .collect()
}

fn cached_fingerprint(
    path: &Path,
    opts: &HashOptions,
    cache: Option<&Path>,
) -> Result<Fingerprint, String> {
    let entry = cache.and_then(|dir| cache_file(path, opts, dir));
    if let Some((file, key)) = &entry {
        if let Some(fp) = load(file, key, opts.sr) {
            return Ok(fp);
        }
    }
    let fp = fingerprint_file(path, opts).map_err(|e| e.to_string())?;
    if let Some((file, key)) = &entry {
        // A failed cache write only costs time on the next run.
        let _ = save(file, key, &fp);
    }
    Ok(fp)
}

/// The cache file of `path` and the key its header must hold.
fn cache_file(path: &Path, opts: &HashOptions, cache: &Path) -> Option<(PathBuf, [u64; 3])> {
    let meta = fs::metadata(path).ok()?;
    let mtime = meta
        .modified()
        .ok()?
        .duration_since(UNIX_EPOCH)
        .ok()?
        .as_secs();
    // FNV-1a of the path and the options: a stable file name per pair.
    let options = u64::from(opts.sr) << 8
        | u64::from(opts.toggle_bits)
        | u64::from(opts.max_toggle_bits) << 32
        | opts.probe_budget << 40;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in path.to_string_lossy().bytes().chain(options.to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    Some((
        cache.join(format!("{h:016x}.fp")),
        [meta.len(), mtime, options],
    ))
}

/// Header (magic, key, hash count), then the hashes and the toggles, all
/// little-endian; written to a temporary file and renamed into place.
fn save(file: &Path, key: &[u64; 3], fp: &Fingerprint) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(40 + 8 * fp.hashes.len());
    buf.extend_from_slice(MAGIC);
    for k in key {
        buf.extend_from_slice(&k.to_le_bytes());
    }
    buf.extend_from_slice(&(fp.hashes.len() as u64).to_le_bytes());
    for v in fp.hashes.iter().chain(&fp.toggles) {
        buf.extend_from_slice(&v.to_le_bytes());
    }
    let tmp = file.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, buf)?;
    fs::rename(tmp, file)
}

/// The cached fingerprint, or `None` when the file is missing, foreign,
/// stale (another key) or cut short.
fn load(file: &Path, key: &[u64; 3], sr: u32) -> Option<Fingerprint> {
    let mut buf = Vec::new();
    fs::File::open(file).ok()?.read_to_end(&mut buf).ok()?;
    let (magic, rest) = buf.split_at_checked(8)?;
    if magic != MAGIC {
        return None;
    }
    let mut words = rest
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])));
    for k in key {
        if words.next()? != *k {
            return None;
        }
    }
    let n = usize::try_from(words.next()?).ok()?;
    let body = rest.get(32..)?;
    if body.len() != n.checked_mul(8)? {
        return None;
    }
    let vals: Vec<u32> = body
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes(c.try_into().unwrap_or([0; 4])))
        .collect();
    let (hashes, toggles) = vals.split_at(n);
    Some(Fingerprint {
        sr,
        hashes: hashes.to_vec(),
        toggles: toggles.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_fingerprint_loads_only_under_its_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("a.fp");
        let fp = Fingerprint {
            sr: 6000,
            hashes: vec![1, 2, 3],
            toggles: vec![4, 5, 6],
        };
        save(&file, &[1, 2, 3], &fp).expect("save");
        let back = load(&file, &[1, 2, 3], 6000).expect("loads");
        assert_eq!((back.hashes, back.toggles), (fp.hashes, fp.toggles));
        assert!(load(&file, &[1, 2, 4], 6000).is_none(), "stale key");
        let bytes = fs::read(&file).expect("read");
        fs::write(&file, &bytes[..bytes.len() - 1]).expect("cut");
        assert!(load(&file, &[1, 2, 3], 6000).is_none(), "cut short");
    }
}
