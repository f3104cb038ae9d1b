//! The CLI's commands, one file each: walk the paths, fingerprint files in
//! parallel, call the [`Store`], print. Every per-file problem is reported on
//! one line and the other files go on; the caller turns any failure into a
//! non-zero exit.

mod add;
mod del;
mod eval;
mod hash;
mod list;
mod lookup;
mod monitor;
mod stats;
mod transfer;

use std::path::{Path, PathBuf};

use auscout_client::store::{Access, Endpoint, Store};
use auscout_client::ClientError;
use auscout_fingerprint::audiohash::{frame_length, hop_length};
use auscout_fingerprint::pipeline::{Fingerprint, HashOptions};
use auscout_fingerprint::FingerprintError;
use rayon::prelude::*;

use crate::args::{Command, Connection, Files, Hashing, KeyArg, KeyedArgs, ReadFrom, Toggles};
use crate::output::Reporter;
use crate::walk;

/// What can go wrong with one file: its audio, or the server's answer.
#[derive(Debug, thiserror::Error)]
enum FileError {
    #[error(transparent)]
    Audio(#[from] FingerprintError),
    #[error(transparent)]
    Server(#[from] ClientError),
}

/// A problem that stops the whole run before any file is processed.
#[derive(Debug)]
pub struct Fatal(pub String);

impl<E: std::fmt::Display> From<E> for Fatal {
    fn from(e: E) -> Self {
        Fatal(e.to_string())
    }
}

/// Runs one command; `Ok` even when some files failed (the reporter counts them).
pub fn run(command: &Command, out: &Reporter) -> Result<(), Fatal> {
    match command {
        Command::Hash(args) => hash::run(args, out),
        Command::Add(args) => add::run(args, out),
        Command::Lookup(args) => lookup::run(args, out),
        Command::Monitor(args) => monitor::run(args, out),
        Command::Del(args) => del::run(args, out),
        Command::Count(args) => print_number(args, out, Store::count),
        Command::Size(args) => print_number(args, out, Store::size),
        Command::List(args) => list::run(args, out),
        Command::Stats(args) => stats::run(args, out),
        Command::Export(args) => transfer::export(args, out),
        Command::Import(args) => transfer::import(args, out),
        Command::Eval(args) => eval::run(args, out),
    }
}

fn print_number(
    args: &KeyedArgs,
    out: &Reporter,
    read: impl Fn(&Store) -> Result<i64, ClientError>,
) -> Result<(), Fatal> {
    let n = read(&open(&args.connection, &args.key, Access::Read)?)?;
    out.result(&n.to_string());
    Ok(())
}

/// `probe_budget` 0: exactly `toggle_bits` (see [`HashOptions`]); masks of
/// at most `--max-toggle-bits`, or the module's default cap. `None`: no
/// toggles (what `add` sends).
fn hash_options(hashing: &Hashing, toggles: Option<&Toggles>) -> HashOptions {
    let default = HashOptions::default();
    HashOptions {
        sr: hashing.sr,
        toggle_bits: toggles.map_or(0, |t| t.toggles),
        probe_budget: toggles.map_or(0, |t| t.probe_budget),
        max_toggle_bits: toggles
            .and_then(|t| t.max_toggle_bits)
            .unwrap_or(default.max_toggle_bits),
        max_seconds: (hashing.nsecs > 0.0).then_some(hashing.nsecs),
    }
}

fn open(connection: &Connection, key: &KeyArg, access: Access) -> Result<Store, Fatal> {
    let key = key
        .key
        .as_deref()
        .ok_or_else(|| Fatal("missing -k/--key: the index to use".to_owned()))?;
    open_key(connection, key, access)
}

/// [`open`] for a key given as an argument.
fn open_key(connection: &Connection, key: &str, access: Access) -> Result<Store, Fatal> {
    if key.is_empty() {
        return Err(Fatal("the key (-k) is empty".to_owned()));
    }
    Ok(Store::open(
        endpoint(connection)?,
        key,
        connection.shards,
        access,
    )?)
}

/// Where the server is, as the connection options say.
fn endpoint(connection: &Connection) -> Result<Endpoint, Fatal> {
    Ok(Endpoint::new(
        connection.url.as_deref(),
        &connection.server,
        connection.port,
        connection.cluster,
    )?
    .read_from(match connection.read_from {
        ReadFrom::Primary => auscout_client::ReadFrom::Primary,
        ReadFrom::Replicas => auscout_client::ReadFrom::Replicas,
    })
    .with_replicas(&connection.replicas)?)
}

/// Walks the paths, reporting the missing ones; errors if none were given.
/// Sets the number of files processed in parallel (`-j`).
fn files(given: &Files, out: &Reporter) -> Result<Vec<PathBuf>, Fatal> {
    if let Some(jobs) = given.jobs {
        // Only fails if a global pool exists already, which is harmless.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(jobs.max(1))
            .build_global();
    }
    let paths = given.all_paths();
    if paths.is_empty() {
        return Err(Fatal("no files or directories given".to_owned()));
    }
    let (files, errors) = walk::collect(&paths);
    for e in &errors {
        out.file_error(&e.path, &e.message);
    }
    Ok(files)
}

/// Runs `work` on every file in parallel, with the progress bar.
fn for_each_file(files: &[PathBuf], out: &Reporter, work: impl Fn(&Path) + Sync) {
    out.start(files.len());
    files.par_iter().for_each(|f| {
        work(f);
        out.tick();
    });
    out.finish();
}

/// Seconds of audio a fingerprint covers (for the speed summary).
fn audio_seconds(fp: &Fingerprint) -> f64 {
    seconds_of(fp.hashes.len() as u64, fp.sr)
}

/// Seconds of audio `frames` hashes cover at sample rate `sr`.
fn seconds_of(frames: u64, sr: u32) -> f64 {
    let hop = hop_length(sr) as f64;
    ((frames + 1) as f64 * hop + frame_length(sr) as f64) / f64::from(sr)
}

/// Seconds of audio a stored track of `frames` hashes covers, hashed at
/// the default sample rate (what `add` uses unless told otherwise).
fn track_seconds(frames: u64) -> f64 {
    if frames == 0 {
        0.0
    } else {
        seconds_of(frames, auscout_core::defaults::SAMPLE_RATE)
    }
}
