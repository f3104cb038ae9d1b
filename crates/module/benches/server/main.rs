//! The server yardstick, through a real redis-server with the module loaded:
//! memory per frame, `auscout.add` and `auscout.lookup` server time, and how
//! long other clients wait while a big index is deleted.
//!
//!     cargo bench -p auscout-module --bench server                  # 2,000 tracks x 20,000 frames (40M)
//!     AUSCOUT_BENCH_TRACKS=200 cargo bench -p auscout-module --bench server   # a quick 4M-frame run
//!     AUSCOUT_BENCH_LOOKUPS=3000 cargo bench -p auscout-module --bench server # more lookups per pattern and variant (default 300)
//!     AUSCOUT_BENCH_THREADS=1 cargo bench -p auscout-module --bench server    # adds on one thread (default: auscout.threads 2)
//!     AUSCOUT_BENCH_VARIANTS='threads=1;threads=2' ...                 # the lookup variants compared (default: DEFAULT_VARIANTS)
//!     AUSCOUT_BENCH_ARRIVALS=idle,touch ...                          # some arrival patterns only (back, idle, touch; default all)
//!     AUSCOUT_BENCH_SETTLE_SECS=300 ...    # lookups only after the server sat idle that long (see below)
//!     AUSCOUT_BENCH_CONCURRENCY_SECS=0 ...                             # skip the concurrency part (default 10 s per phase)
//!     AUSCOUT_BENCH_CONCURRENCY_VARIANTS='threads=1;threads=2' ...     # its variants (default threads=2)
//!     AUSCOUT_BENCH_HOT=20 ...   # every 20th frame of every track is one shared hash (default 0: none)
//!     AUSCOUT_BENCH_WORKLOAD=FILE ... # real music instead of random hashes (the CLI's `warped_corpus` example)
//!
//! The server runs as `auscout-run` starts it, with `MALLOC_CONF=thp:always`
//! (transparent huge pages; `MALLOC_CONF= cargo bench …` runs it without).
//! The allocator's purging of memory freed by the build's merges splits
//! most of those pages during the build; the module collapses the index
//! onto huge pages again once writes have stopped for a moment (see
//! `hugepages.rs` in the module). The bench prints how much of the
//! server's memory is on huge pages right after the build, a second later
//! (when the lookups start) and after the lookups;
//! `AUSCOUT_BENCH_SETTLE_SECS` measures the lookups of a server that has
//! sat idle longer.
//!
//! Lookups run in three arrival patterns (see `arrivals.rs`), each variant
//! in turn. Server time comes from SLOWLOG (threshold 0 while measuring):
//! the time Redis spent inside the command, without network or client
//! overhead; lookups also get the round trip the client sees. The
//! concurrency part also reports CPU time by thread (`cpu.rs`): the
//! module's threads per lookup, Redis's main thread, and the bench's own
//! clients, which share the machine's cores with the server.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Connection;

const TIMED_ADDS: usize = 100;

mod arrivals;
mod concurrency;
mod cpu;

use auscout_testkit::workload::{matching_query_hot, track_hot, FRAMES, QUERY_FRAMES};
use auscout_testkit::Rng;
use auscout_testkit::{env_or, module_path};

/// `AUSCOUT_BENCH_HOT`: every this-many-th frame of each track is the
/// workload's hot hash (0: none).
pub(crate) fn hot_every() -> usize {
    env_or("AUSCOUT_BENCH_HOT", 0)
}

type Tracks = Vec<(Vec<u32>, Vec<u32>)>;

/// `AUSCOUT_BENCH_WORKLOAD`: the tracks (hashes, toggles) of a workload
/// file written by the CLI's `warped_corpus` example, if one is given.
pub(crate) fn file_tracks() -> Option<&'static Tracks> {
    static TRACKS: std::sync::OnceLock<Option<Tracks>> = std::sync::OnceLock::new();
    TRACKS
        .get_or_init(|| {
            let path = std::env::var_os("AUSCOUT_BENCH_WORKLOAD")?;
            let bytes = std::fs::read(&path).expect("AUSCOUT_BENCH_WORKLOAD file");
            let words: Vec<u32> = bytes
                .chunks_exact(4)
                .map(|w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]))
                .collect();
            let mut tracks = Vec::new();
            let mut at = 0;
            while let Some(&n) = words.get(at) {
                let n = n as usize;
                let body = words.get(at + 1..at + 1 + 2 * n).expect("a whole track");
                tracks.push((body[..n].to_vec(), body[n..].to_vec()));
                at += 1 + 2 * n;
            }
            assert!(!tracks.is_empty(), "no tracks in the workload file");
            Some(tracks)
        })
        .as_ref()
}

/// Track `seed` of this run's workload.
pub(crate) fn track(seed: u64) -> Vec<u32> {
    match file_tracks() {
        Some(t) => t[seed as usize % t.len()].0.clone(),
        None => track_hot(seed, hot_every()),
    }
}

/// A query matching one of the first `tracks` tracks of this run's
/// workload: (track number, start frame, hashes, toggles).
pub(crate) fn matching_query(rng: &mut Rng, tracks: usize) -> (usize, usize, Vec<u32>, Vec<u32>) {
    let Some(all) = file_tracks() else {
        return matching_query_hot(rng, tracks, hot_every());
    };
    let t = rng.below(tracks as u64) as usize;
    let (h, toggles) = &all[t];
    let start = rng.below(h.len().saturating_sub(QUERY_FRAMES).max(1) as u64) as usize;
    let end = (start + QUERY_FRAMES).min(h.len());
    (
        t,
        start,
        h[start..end].to_vec(),
        toggles[start..end].to_vec(),
    )
}

pub(crate) fn be(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_be_bytes()).collect()
}

struct Server {
    child: Child,
    _dir: PathBuf,
}
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self._dir);
    }
}

fn start(port: u16) -> (Server, redis::Client) {
    let dir = std::env::temp_dir().join(format!("auscout-bench-{port}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("bench dir");
    let module = module_path();
    assert!(
        module.exists(),
        "build the module first: cargo build --release ({})",
        module.display()
    );
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(&dir)
        .arg("--loadmodule")
        .arg(&module)
        // `auscout.threads` for the adds (lookups are measured at 1 and 2).
        .args([
            "threads",
            &std::env::var("AUSCOUT_BENCH_THREADS").unwrap_or("2".into()),
        ])
        // As deployed (scripts/auscout-run.sh); an explicit MALLOC_CONF wins.
        .env(
            "MALLOC_CONF",
            std::env::var("MALLOC_CONF").unwrap_or("thp:always".into()),
        )
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server on PATH");
    let server = Server { child, _dir: dir };
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).expect("url");
    for _ in 0..100 {
        if let Ok(mut c) = client.get_connection() {
            if redis::cmd("PING").query::<String>(&mut c).is_ok() {
                return (server, client);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("redis-server did not start on port {port}");
}

/// The variants the arrival patterns compare unless `AUSCOUT_BENCH_VARIANTS`
/// says otherwise: one thread, the default, and the default with a module
/// thread polling for 10 ms. Each sets every config the others do, since a
/// config stays set from one variant's turn to the next.
const DEFAULT_VARIANTS: &str = "threads=1,poll-us=0;threads=2,poll-us=0;threads=2,poll-us=10000";

/// A field of `INFO memory` (bytes).
fn memory_field(c: &mut Connection, field: &str) -> i64 {
    auscout_testkit::server::info_field(c, "memory", field)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("INFO memory has no {field}"))
}

fn used_memory(c: &mut Connection) -> i64 {
    memory_field(c, "used_memory")
}

/// Resident memory of the server (`used_memory_rss`, in MB).
fn rss_mb(c: &mut Connection) -> f64 {
    memory_field(c, "used_memory_rss") as f64 / 1e6
}

/// Server-side durations (µs) of the logged commands named `name`, then resets the log.
pub(crate) fn slowlog_durations(c: &mut Connection, name: &str) -> Vec<u64> {
    let entries: Vec<redis::Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(-1)
        .query(c)
        .expect("SLOWLOG");
    let mut out = Vec::new();
    for e in entries {
        if let redis::Value::Array(fields) = e {
            let dur = match fields.get(2) {
                Some(redis::Value::Int(d)) => *d as u64,
                _ => continue,
            };
            let cmd = match fields.get(3) {
                Some(redis::Value::Array(args)) => match args.first() {
                    Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).to_lowercase(),
                    _ => continue,
                },
                _ => continue,
            };
            if cmd == name {
                out.push(dur);
            }
        }
    }
    redis::cmd("SLOWLOG")
        .arg("RESET")
        .query::<()>(c)
        .expect("SLOWLOG RESET");
    out
}

pub(crate) fn slowlog(c: &mut Connection, on: bool) {
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(if on { 0 } else { -1 })
        .query::<()>(c)
        .expect("CONFIG SET");
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-max-len")
        .arg(100_000)
        .query::<()>(c)
        .expect("CONFIG SET");
}

pub(crate) fn pct(v: &mut [u64], p: f64) -> f64 {
    v.sort_unstable();
    if v.is_empty() {
        return f64::NAN;
    }
    let i = ((v.len() - 1) as f64 * p).round() as usize;
    v[i] as f64 / 1000.0
}

/// Deletes `key` with `how` while another client pings; returns the longest
/// time (ms) that client waited for an answer.
fn delete_while_pinging(
    client: &redis::Client,
    c: &mut Connection,
    how: &[&str],
    key: &str,
) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let mut pinger = client.get_connection().expect("conn");
    let flag = stop.clone();
    let handle = std::thread::spawn(move || {
        let mut worst = Duration::ZERO;
        while !flag.load(Ordering::Relaxed) {
            let t = Instant::now();
            let _: String = redis::cmd("PING").query(&mut pinger).expect("PING");
            worst = worst.max(t.elapsed());
            std::thread::sleep(Duration::from_millis(1));
        }
        worst
    });
    std::thread::sleep(Duration::from_millis(100));
    let mut cmd = redis::cmd(how[0]);
    for a in &how[1..] {
        cmd.arg(*a);
    }
    cmd.arg(key).query::<redis::Value>(c).expect("delete");
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    handle.join().expect("pinger").as_secs_f64() * 1000.0
}

/// "huge pages: H of R MB": how much of the server's resident memory is
/// backed by transparent huge pages (Linux; lookups miss the TLB far more
/// on small pages).
fn huge_pages(server: &Server) -> String {
    let path = format!("/proc/{}/smaps_rollup", server.child.id());
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let kb = |field: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
    };
    match (kb("AnonHugePages:"), kb("Rss:")) {
        (Some(h), Some(r)) => format!("huge pages: {:.0} of {:.0} MB resident", h / 1e3, r / 1e3),
        _ => "huge pages: unknown".into(),
    }
}

/// The machine's load averages (Linux), printed with the figures: on a
/// shared machine they say how much of the time was the module's.
fn load() -> String {
    std::fs::read_to_string("/proc/loadavg").map_or("unknown".into(), |l| {
        l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
    })
}

fn main() {
    let load_before = load();
    let tracks: usize = match file_tracks() {
        Some(t) => env_or("AUSCOUT_BENCH_TRACKS", t.len()).min(t.len()),
        None => env_or("AUSCOUT_BENCH_TRACKS", 2_000),
    };
    // Frames before each track, and in all.
    let frames_at: Vec<usize> = (0..=tracks)
        .scan(0, |sum, i| {
            let before = *sum;
            if i < tracks {
                *sum += file_tracks().map_or(FRAMES, |t| t[i].0.len());
            }
            Some(before)
        })
        .collect();
    // Lookups of each kind (more for a steadier p99, or to profile the server).
    let lookups: usize = env_or("AUSCOUT_BENCH_LOOKUPS", 300);
    let (server, client) = start(auscout_testkit::server::free_port());
    let mut c = client.get_connection().expect("connection");
    slowlog(&mut c, false);
    let before = used_memory(&mut c);

    // Every add is logged: the worst one of the whole build is where a
    // growing index would pause the server; the log is drained every 100
    // adds so it never holds more than that.
    let t0 = Instant::now();
    slowlog(&mut c, true);
    let mut all_adds: Vec<u64> = Vec::with_capacity(tracks);
    for i in 0..tracks {
        let id: i64 = redis::cmd("auscout.add")
            .arg("bench")
            .arg(be(&track(i as u64)))
            .query(&mut c)
            .expect("auscout.add");
        assert_eq!(id, i as i64 + 1);
        if i % 100 == 99 || i + 1 == tracks {
            // SLOWLOG GET lists the newest entry first.
            all_adds.extend(slowlog_durations(&mut c, "auscout.add").into_iter().rev());
        }
        if i % 200 == 199 {
            eprint!("\r  {} / {tracks} tracks", i + 1);
            let _ = std::io::stderr().flush();
        }
    }
    eprintln!();
    let build_s = t0.elapsed().as_secs_f64();
    slowlog(&mut c, false);
    let (worst_at, worst_add) = all_adds
        .iter()
        .copied()
        .enumerate()
        .max_by_key(|&(_, d)| d)
        .unwrap_or((0, 0));
    let mut adds = all_adds[all_adds.len().saturating_sub(TIMED_ADDS)..].to_vec();
    let frames = frames_at[tracks] as f64;
    let after = used_memory(&mut c);
    let rss_built = rss_mb(&mut c);
    let usage: i64 = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg("bench")
        .arg("SAMPLES")
        .arg(0)
        .query(&mut c)
        .expect("MEMORY USAGE");
    let growth = (after - before) as f64;

    // Lookup results are printed as they are measured.
    println!(
        "## auscout server benchmark: {tracks} tracks, {:.1}M frames{}",
        frames / 1e6,
        match (file_tracks().is_some(), hot_every()) {
            (true, _) => " of real music (AUSCOUT_BENCH_WORKLOAD)".to_owned(),
            (false, 0) => format!(" ({FRAMES} random frames each)"),
            (false, n) => format!(" ({FRAMES} random frames each, every {n}th one shared hash)"),
        }
    );
    println!("after the build: {}", huge_pages(&server));
    // The module collapses an index onto huge pages once writes have
    // stopped for a moment: the lookups start a second after the build.
    std::thread::sleep(Duration::from_secs(1));
    println!("1 s later: {}", huge_pages(&server));
    let settle: u64 = env_or("AUSCOUT_BENCH_SETTLE_SECS", 0);
    if settle > 0 {
        std::thread::sleep(Duration::from_secs(settle));
        println!("after {settle} s idle: {}", huge_pages(&server));
    }
    let variants = arrivals::variants(
        &std::env::var("AUSCOUT_BENCH_VARIANTS").unwrap_or(DEFAULT_VARIANTS.into()),
    );
    arrivals::run(&mut c, tracks, lookups, &variants);
    println!("after the lookups: {}", huge_pages(&server));
    let secs: u64 = env_or("AUSCOUT_BENCH_CONCURRENCY_SECS", 10);
    if secs > 0 {
        let spec =
            std::env::var("AUSCOUT_BENCH_CONCURRENCY_VARIANTS").unwrap_or("threads=2".into());
        for v in arrivals::variants(&spec) {
            arrivals::set_configs(&mut c, &v);
            println!("variant {}:", v.name);
            concurrency::run(&client, server.child.id(), tracks, secs);
        }
    }
    // Back to the server's defaults.
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("auscout.threads")
        .arg(std::env::var("AUSCOUT_BENCH_THREADS").unwrap_or("2".into()))
        .query::<()>(&mut c)
        .expect("CONFIG SET");

    // auscout.index walks every posting (O(n)): how long it holds the server.
    slowlog(&mut c, true);
    let stats: Vec<redis::Value> = redis::cmd("auscout.index")
        .arg("bench")
        .query(&mut c)
        .expect("auscout.index");
    let index_ms = slowlog_durations(&mut c, "auscout.index")
        .first()
        .map_or(f64::NAN, |&us| us as f64 / 1e3);
    slowlog(&mut c, false);
    println!(
        "auscout.index (statistics, {} fields): {index_ms:.0} ms server time",
        stats.len() / 2
    );

    // Deleting the whole index while another client pings.
    let mut waits = Vec::new();
    for how in [&["auscout.delkey"][..], &["DEL"][..], &["UNLINK"][..]] {
        redis::cmd("COPY")
            .arg("bench")
            .arg("victim")
            .query::<i64>(&mut c)
            .expect("COPY");
        let worst = delete_while_pinging(&client, &mut c, how, "victim");
        waits.push((how[0], worst));
    }
    let rss_deleted = rss_mb(&mut c);

    println!("build (client-side, {tracks} x auscout.add): {build_s:.1} s");
    println!(
        "memory: used_memory growth {:.2} B/frame; MEMORY USAGE {:.2} B/frame ({:+.1}% of growth)",
        growth / frames,
        usage as f64 / frames,
        100.0 * (usage as f64 - growth) / growth
    );
    println!(
        "resident memory (used_memory_rss): {rss_built:.0} MB after the build; {rss_deleted:.0} MB after three copies of the index were made and deleted; used_memory {:.0} MB",
        used_memory(&mut c) as f64 / 1e6
    );
    println!("auscout.add of a track (last {TIMED_ADDS} adds): median {:.3} ms, p99 {:.3} ms, max {:.3} ms", pct(&mut adds, 0.5), pct(&mut adds, 0.99), pct(&mut adds, 1.0));
    println!(
        "auscout.add, worst of all {} adds: {:.3} ms (add #{}, at {:.1}M frames)",
        all_adds.len(),
        worst_add as f64 / 1000.0,
        worst_at + 1,
        frames_at[worst_at] as f64 / 1e6
    );
    for (how, worst) in waits {
        println!("{how} of the whole index: longest wait of another client {worst:.1} ms");
    }
    println!(
        "load average (1, 5, 15 min) at the start: {load_before}; at the end: {}",
        load()
    );
}
