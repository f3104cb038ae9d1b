//! Load benchmark of `POST /v1/lookup`: the `auscout-http` binary in front
//! of a redis-server with the module on the same machine, an index of real
//! tracks, 5 s clips (WAV and MP3, alternating) posted by concurrent clients.
//!
//!   AUSCOUT_BENCH_CORPUS=DIR cargo bench -p auscout-http --bench load
//!
//! DIR holds the audio files to index (any format the library decodes).
//! Each is indexed at its own speed and at `SPEEDS` (as if played 2 % and 4 %
//! fast or slow: different hashes, so the index holds 5 tracks per file).
//! Clips are cut from the originals at random offsets (seeded).
//!
//! Runs:
//! - **paced**: `CLIENTS` clients each sending `RATE` requests/s on a fixed
//!   schedule (an open loop: a slow answer does not slow the offered load,
//!   and latency counts from the scheduled send, so waiting is not hidden);
//! - **saturated**: the same clients sending back to back (a closed loop),
//!   for the most requests/s the machine gives.
//!
//! The service's resident memory is sampled every 1,000 requests.
//! Knobs (env): AUSCOUT_BENCH_CLIENTS (16), AUSCOUT_BENCH_RATES (paced runs,
//! requests/s per client: "5,10"), AUSCOUT_BENCH_REQUESTS (10,000 per run), AUSCOUT_BENCH_CLIPS (64),
//! AUSCOUT_BENCH_MAX_FILES (all), AUSCOUT_BENCH_MODULE_THREADS (the module's
//! `auscout.threads`, 1).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use auscout_client::store::{Access, Endpoint, Store};
use auscout_fingerprint::decode::Decoder;
use auscout_fingerprint::pipeline::{fingerprint_samples, HashOptions};
use auscout_testkit::{audio, env_or, Rng, Server};

const SPEEDS: [f64; 4] = [0.96, 0.98, 1.02, 1.04];
const CLIP_SECONDS: f64 = 5.0;

struct Clip {
    body: Vec<u8>,
    mime: &'static str,
    /// The description of the track it comes from.
    descr: String,
    offset: f64,
}

fn main() {
    let Some(corpus) = std::env::var_os("AUSCOUT_BENCH_CORPUS").map(PathBuf::from) else {
        eprintln!("load: set AUSCOUT_BENCH_CORPUS to a directory of audio files to index");
        std::process::exit(2);
    };
    let clients: usize = env_or("AUSCOUT_BENCH_CLIENTS", 16);
    let rates: Vec<f64> = std::env::var("AUSCOUT_BENCH_RATES")
        .unwrap_or_else(|_| "5,10".into())
        .split(',')
        .filter_map(|r| r.trim().parse().ok())
        .collect();
    let requests: usize = env_or("AUSCOUT_BENCH_REQUESTS", 10_000);
    let n_clips: usize = env_or("AUSCOUT_BENCH_CLIPS", 64);
    let max_files: usize = env_or("AUSCOUT_BENCH_MAX_FILES", usize::MAX);

    // One module thread per command: under many concurrent lookups on a
    // few cores, splitting each one over threads only adds hand-offs.
    let module_threads: u32 = env_or("AUSCOUT_BENCH_MODULE_THREADS", 1);
    let redis = Server::builder()
        .module_arg("auscout.threads")
        .module_arg(&module_threads.to_string())
        .start();
    let work = tempfile::tempdir().expect("tempdir");
    let clips = build_index(&corpus, &redis, work.path(), n_clips, max_files);

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let mut service = Command::new(env!("CARGO_BIN_EXE_auscout-http"))
        .args(["--port", &redis.port.to_string(), "--server", "127.0.0.1"])
        .args(["--listen", &format!("127.0.0.1:{port}"), "--key", "bench"])
        .env("AUSCOUT_LOG", "warn")
        .stdin(Stdio::null())
        .spawn()
        .expect("start auscout-http");
    let base = format!("http://127.0.0.1:{port}");
    wait_listening(port);

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    // Warm up: connections, resamplers, the index's pages.
    run(&agent, &base, &clips, clients, 200, None, &service);

    println!(
        "machine: {} cores; auscout.threads {module_threads}; {} clients; {} requests per run; \
         clips: {} (WAV and MP3, {CLIP_SECONDS} s)",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        clients,
        requests,
        clips.len()
    );
    let mut conn = redis.conn();
    let runs = rates
        .iter()
        .map(|&r| (format!("paced {r}/s per client"), Some(r)))
        .chain(std::iter::once(("saturated".to_owned(), None)));
    for (name, pace) in runs {
        let name = name.as_str();
        let before = (cpu_seconds(service.id()), redis_cpu_seconds(&mut conn));
        let r = run(&agent, &base, &clips, clients, requests, pace, &service);
        let after = (cpu_seconds(service.id()), redis_cpu_seconds(&mut conn));
        let n = r.latencies.len().max(1) as f64;
        let (http_ms, redis_ms) = (
            (after.0 - before.0) * 1e3 / n,
            (after.1 - before.1) * 1e3 / n,
        );
        r.print(name, pace.map(|p| p * clients as f64));
        println!(
            "{name}: CPU per request: service {http_ms:.2} ms, Redis {redis_ms:.2} ms \
             (2 cores would serve at most {:.0} req/s)",
            2000.0 / (http_ms + redis_ms)
        );
    }
    let _ = Command::new("kill")
        .args(["-TERM", &service.id().to_string()])
        .status();
    let _ = service.wait();
}

/// Indexes every file of `corpus` at its own speed and at `SPEEDS`, and
/// cuts `n_clips` clips (WAV and MP3 alternately) from the originals.
fn build_index(
    corpus: &Path,
    redis: &Server,
    work: &Path,
    n_clips: usize,
    max_files: usize,
) -> Vec<Clip> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus)
        .expect("read the corpus directory")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files.truncate(max_files);
    let endpoint = Endpoint::new(Some(&redis.url()), "", 0, false).expect("endpoint");
    let store = Store::open(endpoint, "bench", None, Access::Write).expect("open the index");
    let opts = HashOptions {
        toggle_bits: 0,
        probe_budget: 0,
        ..HashOptions::default()
    };
    let started = Instant::now();
    let mut originals = Vec::new();
    for path in &files {
        let Some((rate, mono)) = decode(path) else {
            eprintln!("load: skipping {} (cannot decode)", path.display());
            continue;
        };
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        for speed in std::iter::once(1.0).chain(SPEEDS) {
            // Declaring the samples at rate × speed plays them that much faster.
            let declared = (f64::from(rate) * speed).round() as u32;
            let fp = fingerprint_samples(&mono, declared, &opts).expect("hash a track");
            let descr = if speed == 1.0 {
                name.clone()
            } else {
                format!("{name} @{speed}")
            };
            store.add_track(&fp.hashes, &descr).expect("add a track");
        }
        originals.push((name, rate, mono));
    }
    if originals.is_empty() {
        eprintln!(
            "load: no audio file decodes in {} (the files to index, not their parent directory)",
            corpus.display()
        );
        std::process::exit(2);
    }
    let tracks = store.count().expect("count");
    let frames = store.size().expect("size");
    println!(
        "index: {tracks} tracks ({} files × {} speeds), {frames} frames, built in {:.0} s",
        originals.len(),
        SPEEDS.len() + 1,
        started.elapsed().as_secs_f64()
    );

    let mut rng = Rng::new(7);
    let mut clips = Vec::new();
    for i in 0..n_clips {
        let (name, rate, mono) = &originals[rng.below(originals.len() as u64) as usize];
        let seconds = mono.len() as f64 / f64::from(*rate);
        let offset = ((seconds - CLIP_SECONDS - 1.0).max(0.0) * rng.unit()).floor();
        let x = audio::excerpt(mono, *rate, offset, CLIP_SECONDS);
        let wav = work.join(format!("clip{i}.wav"));
        audio::write_wav(&wav, &x, *rate, 2);
        let (body, mime) = if i % 2 == 0 {
            (std::fs::read(&wav).expect("read clip"), "audio/wav")
        } else {
            let mp3 = work.join(format!("clip{i}.mp3"));
            let ok = Command::new("ffmpeg")
                .args(["-nostdin", "-v", "error", "-y", "-i"])
                .arg(&wav)
                .args(["-c:a", "libmp3lame", "-b:a", "128k"])
                .arg(&mp3)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "ffmpeg could not make an MP3 clip (install ffmpeg)");
            (std::fs::read(&mp3).expect("read clip"), "audio/mpeg")
        };
        clips.push(Clip {
            body,
            mime,
            descr: name.clone(),
            offset,
        });
    }
    clips
}

/// A whole file as mono samples.
fn decode(path: &Path) -> Option<(u32, Vec<f32>)> {
    let mut d = Decoder::open(path).ok()?;
    let mut rate = 0;
    let mut mono = Vec::new();
    while let Some(chunk) = d.next_chunk().ok()? {
        if rate != 0 && chunk.sample_rate != rate {
            break;
        }
        rate = chunk.sample_rate;
        mono.extend_from_slice(chunk.samples);
    }
    (rate > 0 && mono.len() > rate as usize * 10).then_some((rate, mono))
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "auscout-http did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[derive(Default)]
struct Outcome {
    latencies: Vec<Duration>,
    wav: Vec<Duration>,
    mp3: Vec<Duration>,
    errors: usize,
    wrong: usize,
    late: usize,
    rss_mb: Vec<f64>,
    elapsed: Duration,
}

/// Sends `total` lookups from `clients` threads; `pace` = requests/s per
/// client (open loop), `None` = back to back.
fn run(
    agent: &ureq::Agent,
    base: &str,
    clips: &[Clip],
    clients: usize,
    total: usize,
    pace: Option<f64>,
    service: &Child,
) -> Outcome {
    let next = AtomicUsize::new(0);
    let outcome = Mutex::new(Outcome::default());
    let url = format!("{base}/v1/lookup");
    let started = Instant::now();
    std::thread::scope(|s| {
        for c in 0..clients {
            let (next, outcome, url) = (&next, &outcome, &url);
            s.spawn(move || {
                let period = pace.map(|p| Duration::from_secs_f64(1.0 / p));
                // Clients start spread over one period.
                let mut due = period.map(|p| started + p.mul_f64(c as f64 / clients as f64));
                let mut k = c;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let from = match (due, period) {
                        (Some(at), Some(p)) => {
                            let now = Instant::now();
                            if at > now {
                                std::thread::sleep(at - now);
                            } else if now - at > p {
                                outcome.lock().map(|mut o| o.late += 1).ok();
                            }
                            due = Some(at + p);
                            at
                        }
                        _ => Instant::now(),
                    };
                    let clip = &clips[k % clips.len()];
                    k += clients;
                    let result = agent
                        .post(url.as_str())
                        .header("Content-Type", clip.mime)
                        .send(&clip.body[..]);
                    let latency = from.elapsed();
                    let (ok, right) = match result {
                        Ok(mut r) if r.status() == 200 => {
                            let body = r.body_mut().read_to_string().unwrap_or_default();
                            (true, is_right(&body, clip))
                        }
                        _ => (false, false),
                    };
                    let mut o = outcome.lock().expect("outcome");
                    o.latencies.push(latency);
                    if clip.mime == "audio/wav" {
                        o.wav.push(latency);
                    } else {
                        o.mp3.push(latency);
                    }
                    o.errors += usize::from(!ok);
                    o.wrong += usize::from(ok && !right);
                    if (i + 1) % 1000 == 0 {
                        o.rss_mb.push(rss_mb(service.id()));
                    }
                }
            });
        }
    });
    let mut o = outcome.into_inner().expect("outcome");
    o.elapsed = started.elapsed();
    o
}

/// The best match is the clip's track (at its own speed) at its offset.
fn is_right(body: &str, clip: &Clip) -> bool {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let best = &v["matches"][0];
    best["descr"] == clip.descr.as_str()
        && best["offset_s"]
            .as_f64()
            .is_some_and(|o| (o - clip.offset).abs() < 0.5)
}

fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// CPU time (user + system) a process has used, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at ")".
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of stat, 12 and 13 after ")";
    // Linux counts them in 100 Hz ticks (USER_HZ).
    (ticks(11) + ticks(12)) / 100.0
}

/// CPU time Redis has used (all its threads, the module's included).
fn redis_cpu_seconds(conn: &mut redis::Connection) -> f64 {
    let info: String = redis::cmd("INFO")
        .arg("cpu")
        .query(conn)
        .unwrap_or_default();
    info.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k == "used_cpu_user" || k == "used_cpu_sys").then(|| v.trim().parse::<f64>().ok())?
        })
        .sum()
}

fn quantile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i].as_secs_f64() * 1e3
}

impl Outcome {
    fn print(mut self, name: &str, offered: Option<f64>) {
        for v in [&mut self.latencies, &mut self.wav, &mut self.mp3] {
            v.sort_unstable();
        }
        let n = self.latencies.len();
        let offered = offered.map_or(String::new(), |o| format!(" (offered {o:.0}/s)"));
        println!(
            "{name}: {n} requests in {:.1} s = {:.1} req/s{offered}; latency ms: median {:.1}, \
             p90 {:.1}, p99 {:.1}, max {:.1} (WAV median {:.1} p99 {:.1}; MP3 median {:.1} p99 {:.1}); \
             errors {}, wrong or no match {}, late sends {}",
            self.elapsed.as_secs_f64(),
            n as f64 / self.elapsed.as_secs_f64(),
            quantile(&self.latencies, 0.5),
            quantile(&self.latencies, 0.9),
            quantile(&self.latencies, 0.99),
            quantile(&self.latencies, 1.0),
            quantile(&self.wav, 0.5),
            quantile(&self.wav, 0.99),
            quantile(&self.mp3, 0.5),
            quantile(&self.mp3, 0.99),
            self.errors,
            self.wrong,
            self.late
        );
        let rss: Vec<String> = self.rss_mb.iter().map(|m| format!("{m:.0}")).collect();
        println!(
            "{name}: service RSS every 1,000 requests (MB): {}",
            rss.join(" ")
        );
    }
}
