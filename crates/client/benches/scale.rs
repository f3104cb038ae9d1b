//! One logical index of 40M frames (2,000 synthetic tracks × 20,000 random
//! frames, the server bench's workload from `auscout_testkit::workload`) on one
//! server and on a local 3-master Redis Cluster, sharded 1, 3 or 6 ways,
//! driven through the client library's [`Store`] (the code `auscoutclient`
//! runs: sharded layout, fan-out, merge).
//!
//!     cargo build --release -p auscout-module                # the module
//!     cargo bench -p auscout-client --bench scale             # all six layouts
//!     AUSCOUT_SCALE_RUNS=single:1,cluster:3 cargo bench -p auscout-client --bench scale
//!     AUSCOUT_SCALE_TRACKS=200 cargo bench -p auscout-client --bench scale   # 4M frames, quick
//!
//! Other knobs: `AUSCOUT_SCALE_LOOKUPS` (of each kind, default 300),
//! `AUSCOUT_SCALE_PORT` (first port used, default 17000; a cluster uses the
//! next three and their bus ports +10000), `AUSCOUT_MODULE` (the module).
//! A run `single:N` is one redis-server holding N shard keys (`--shards N`
//! without `--cluster`; N = 1 is the plain unsharded key), `cluster:N` is a
//! fresh 3-master cluster (no replicas) with the index over N shards. Every
//! run starts fresh servers in temporary directories and kills them after.
//!
//! Figures: memory per frame = `used_memory` growth summed over the masters;
//! per-shard server time = SLOWLOG of `auscout.lookup` on each node (time
//! inside the command); "slowest shard" = per logical lookup, the largest of
//! its shards' server times; end to end = wall time of `Store::lookup` (encode,
//! send to every shard, wait for all, merge), one lookup at a time.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use auscout_client::store::{Access, Endpoint, LookupOptions, Store};

const MASTERS: u16 = 3;

// The same tracks and queries as the server bench (`crates/module/benches/server`).
use auscout_testkit::workload::{
    matching_query, random_query, track, FRAMES, QUERY_FRAMES, TOGGLE_BITS,
};
use auscout_testkit::{env_or, module_path, Rng};

/// A redis-server in its own temporary directory, killed on drop.
struct Node {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Node {
    fn start(port: u16, cluster: bool) -> Node {
        let dir = std::env::temp_dir().join(format!("auscout-scale-{port}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("node dir");
        let module = module_path();
        assert!(
            module.exists(),
            "build the module first: cargo build --release -p auscout-module ({})",
            module.display()
        );
        let mut cmd = Command::new("redis-server");
        cmd.args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--logfile", "redis.log"])
            .arg("--dir")
            .arg(&dir)
            .arg("--loadmodule")
            .arg(&module);
        if cluster {
            cmd.args([
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
            ]);
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server on PATH");
        let node = Node { child, port, dir };
        for _ in 0..200 {
            if node
                .conn()
                .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
                .is_ok()
            {
                return node;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("redis-server did not start on port {port}");
    }

    fn conn(&self) -> redis::RedisResult<redis::Connection> {
        redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))?
            .get_connection_with_timeout(Duration::from_secs(5))
    }

    fn info_field(&self, section: &str, field: &str) -> String {
        let mut c = self.conn().expect("connect");
        let info: String = redis::cmd("INFO").arg(section).query(&mut c).expect("INFO");
        info.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .unwrap_or_default()
            .trim()
            .to_owned()
    }

    fn cluster_ok(&self) -> bool {
        self.conn()
            .and_then(|mut c| redis::cmd("CLUSTER").arg("INFO").query::<String>(&mut c))
            .is_ok_and(|info| info.contains("cluster_state:ok"))
    }

    fn used_memory(&self) -> i64 {
        self.info_field("memory", "used_memory")
            .parse()
            .expect("used_memory")
    }

    fn slowlog(&self, on: bool) {
        let mut c = self.conn().expect("connect");
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("slowlog-log-slower-than")
            .arg(if on { 0 } else { -1 })
            .arg("slowlog-max-len")
            .arg(100_000)
            .query::<()>(&mut c)
            .expect("CONFIG SET");
        redis::cmd("SLOWLOG")
            .arg("RESET")
            .query::<()>(&mut c)
            .expect("SLOWLOG RESET");
    }

    /// Server time (µs) of each logged `auscout.lookup`, per key, oldest first.
    fn lookup_times(&self) -> HashMap<String, Vec<u64>> {
        let mut c = self.conn().expect("connect");
        let entries: Vec<redis::Value> = redis::cmd("SLOWLOG")
            .arg("GET")
            .arg(-1)
            .query(&mut c)
            .expect("SLOWLOG GET");
        let text = |v: Option<&redis::Value>| match v {
            Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
            _ => String::new(),
        };
        let mut out: HashMap<String, Vec<u64>> = HashMap::new();
        // Newest first in the reply.
        for e in entries.iter().rev() {
            let redis::Value::Array(fields) = e else {
                continue;
            };
            let (Some(redis::Value::Int(us)), Some(redis::Value::Array(args))) =
                (fields.get(2), fields.get(3))
            else {
                continue;
            };
            if text(args.first()).eq_ignore_ascii_case("auscout.lookup") {
                out.entry(text(args.get(1)))
                    .or_default()
                    .push(u64::try_from(*us).unwrap_or(0));
            }
        }
        out
    }
}

/// A fresh 3-master cluster (no replicas) on `port+1 ..= port+3`.
fn start_cluster(port: u16) -> Vec<Node> {
    let nodes: Vec<Node> = (1..=MASTERS).map(|i| Node::start(port + i, true)).collect();
    let out = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)))
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .stdin(Stdio::null())
        .output()
        .expect("redis-cli on PATH");
    assert!(
        out.status.success(),
        "cluster create: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !nodes.iter().all(Node::cluster_ok) {
        assert!(Instant::now() < deadline, "cluster did not become ok");
        std::thread::sleep(Duration::from_millis(100));
    }
    nodes
}

/// Wall time (ms) of one cluster pipeline holding, for each shard key, a
/// `BLPOP` on an empty list in that shard's slot with a 500 ms timeout. It
/// waits without using CPU, so ~500 ms per master (Redis wakes a blocked
/// client up to ~100 ms late; shards on the same master wait one after the
/// other on its connection) shows that the client's fan-out reaches the
/// masters at the same time, whatever the cores are doing.
fn fanout_ms(port: u16, keys: &[String]) -> f64 {
    let client = redis::cluster::ClusterClient::new(vec![format!("redis://127.0.0.1:{port}/")])
        .expect("url");
    let mut c = client.get_connection().expect("cluster connection");
    let mut pipe = redis::cluster::cluster_pipe();
    for k in keys {
        pipe.cmd("BLPOP").arg(format!("{k}:fanout")).arg(0.5);
    }
    let t = Instant::now();
    pipe.query::<Vec<redis::Value>>(&mut c)
        .expect("BLPOP pipeline");
    t.elapsed().as_secs_f64() * 1000.0
}

fn pct(v: &[f64], p: f64) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n => v[((n - 1) as f64 * p).round() as usize],
    }
}

struct Timing {
    /// Every shard's server time of every lookup (ms).
    shard: Vec<f64>,
    /// Per logical lookup, its slowest shard (ms).
    slowest: Vec<f64>,
    /// Per logical lookup, its shards' times added up (ms): what it costs
    /// when the shards cannot run at the same time (one free core).
    summed: Vec<f64>,
    /// Per logical lookup, the client's wall time (ms).
    client: Vec<f64>,
}

impl Timing {
    fn row(&self, what: &str, ok: &str) -> String {
        format!(
            "| {what} | {:.2} / {:.2} | {:.2} / {:.2} | {:.2} / {:.2} | {:.2} / {:.2} | {ok} |",
            pct(&self.shard, 0.5),
            pct(&self.shard, 0.99),
            pct(&self.slowest, 0.5),
            pct(&self.slowest, 0.99),
            pct(&self.summed, 0.5),
            pct(&self.summed, 0.99),
            pct(&self.client, 0.5),
            pct(&self.client, 0.99),
        )
    }
}

/// Runs `queries` through the store one at a time; returns the timings and
/// how many answers `judge` accepted.
fn time_lookups(
    store: &Store,
    nodes: &[Node],
    queries: &[(Vec<u32>, Vec<u32>)],
    judge: impl Fn(usize, &[auscout_client::store::TrackMatch]) -> bool,
) -> (Timing, usize) {
    for n in nodes {
        n.slowlog(true);
    }
    let mut client = Vec::with_capacity(queries.len());
    let mut ok = 0;
    for (i, (q, t)) in queries.iter().enumerate() {
        let start = Instant::now();
        let (matches, _) = store
            .lookup(q, t, LookupOptions::default())
            .expect("lookup");
        client.push(start.elapsed().as_secs_f64() * 1000.0);
        ok += usize::from(judge(i, &matches));
    }
    let mut per_key: HashMap<String, Vec<u64>> = HashMap::new();
    for n in nodes {
        per_key.extend(n.lookup_times());
        n.slowlog(false);
    }
    let shard: Vec<f64> = per_key
        .values()
        .flatten()
        .map(|&us| us as f64 / 1000.0)
        .collect();
    for (key, v) in &per_key {
        assert_eq!(v.len(), queries.len(), "{key}: one server entry per lookup");
    }
    let of_lookup = |i: usize| {
        per_key
            .values()
            .filter_map(move |v| v.get(i))
            .map(|&us| us as f64 / 1000.0)
    };
    let slowest = (0..queries.len())
        .map(|i| of_lookup(i).fold(0.0, f64::max))
        .collect();
    let summed = (0..queries.len()).map(|i| of_lookup(i).sum()).collect();
    (
        Timing {
            shard,
            slowest,
            summed,
            client,
        },
        ok,
    )
}

fn run(kind: &str, shards: u32, tracks: usize, lookups: usize, port: u16) -> Vec<String> {
    let cluster = kind == "cluster";
    let nodes = if cluster {
        start_cluster(port)
    } else {
        vec![Node::start(port, false)]
    };
    let before: Vec<i64> = nodes.iter().map(Node::used_memory).collect();
    let endpoint = Endpoint::new(None, "127.0.0.1", nodes[0].port, cluster).expect("endpoint");
    // One shard on one server is the plain key, as `auscoutclient` does it.
    let wanted = (cluster || shards > 1).then_some(shards);
    let store = Store::open(endpoint, "bench", wanted, Access::Write).expect("open");
    assert_eq!(store.layout().shard_count(), shards);

    // Build with two client threads (adds to different masters overlap).
    let t0 = Instant::now();
    let ids: Vec<AtomicUsize> = (0..tracks).map(|_| AtomicUsize::new(0)).collect();
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= tracks {
                    break;
                }
                let id = store
                    .add_track(&track(i as u64), &format!("track{i}"))
                    .expect("add");
                ids[i].store(id as usize, Ordering::Relaxed);
            });
        }
    });
    let build_s = t0.elapsed().as_secs_f64();
    let frames = (tracks * FRAMES) as f64;
    assert_eq!(store.size().expect("size"), (tracks * FRAMES) as i64);
    let growth: i64 = nodes
        .iter()
        .zip(&before)
        .map(|(n, b)| n.used_memory() - b)
        .sum();
    // Reopen so the lookups go to every shard key that now exists.
    let endpoint = Endpoint::new(None, "127.0.0.1", nodes[0].port, cluster).expect("endpoint");
    let store = Store::open(endpoint, "bench", wanted, Access::Read).expect("reopen");

    // Queries as in the server bench: 1,000 consecutive frames of a stored
    // track with 30 % of frames flipped in 2 of their 4 toggle bits; and
    // random frames.
    let mut rng = Rng(0x5eed);
    let mut truth = Vec::new();
    let mut matching = Vec::new();
    for _ in 0..lookups {
        let (t, start, q, toggles) = matching_query(&mut rng, tracks);
        matching.push((q, toggles));
        truth.push((ids[t].load(Ordering::Relaxed) as u64, start as i64));
    }
    let random: Vec<(Vec<u32>, Vec<u32>)> = (0..lookups).map(|_| random_query(&mut rng)).collect();
    let (hit, found) = time_lookups(&store, &nodes, &matching, |i, m| {
        m.first().is_some_and(|m| (m.id, m.position) == truth[i])
    });
    let (miss, empty) = time_lookups(&store, &nodes, &random, |_, m| m.is_empty());
    let fanout = cluster.then(|| fanout_ms(nodes[0].port, &store.layout().keys()));

    let name = format!(
        "{} × {} shard{}",
        if cluster {
            "3-master cluster"
        } else {
            "1 server"
        },
        shards,
        if shards == 1 { "" } else { "s" }
    );
    eprintln!(
        "{name}: {:.1}M frames built in {build_s:.1} s, {:.2} B/frame",
        frames / 1e6,
        growth as f64 / frames
    );
    if let Some(ms) = fanout {
        eprintln!(
            "{name}: {shards} blocking 500 ms calls (BLPOP), one per shard, in one cluster \
             pipeline: {ms:.0} ms (one after another would take {} ms)",
            shards * 500
        );
    }
    vec![
        format!("| {name} | {:.2} |", growth as f64 / frames),
        hit.row(
            &format!("{name}, matching"),
            &format!("{found}/{lookups} right"),
        ),
        miss.row(
            &format!("{name}, non-matching"),
            &format!("{}/{lookups} false", lookups - empty),
        ),
    ]
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let tracks: usize = env_or("AUSCOUT_SCALE_TRACKS", 2_000);
    let lookups: usize = env_or("AUSCOUT_SCALE_LOOKUPS", 300);
    let port: u16 = env_or("AUSCOUT_SCALE_PORT", 17_000);
    let runs = std::env::var("AUSCOUT_SCALE_RUNS")
        .unwrap_or_else(|_| "single:1,single:3,single:6,cluster:1,cluster:3,cluster:6".to_owned());
    let mut memory = Vec::new();
    let mut latency = Vec::new();
    for spec in runs.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (kind, shards) = spec.split_once(':').unwrap_or((spec, "1"));
        let shards: u32 = shards.parse().expect("AUSCOUT_SCALE_RUNS: kind:shards");
        assert!(
            matches!(kind, "single" | "cluster") && (1..=64).contains(&shards),
            "AUSCOUT_SCALE_RUNS: single:N or cluster:N, not {spec}"
        );
        let mut rows = run(kind, shards, tracks, lookups, port).into_iter();
        memory.extend(rows.next());
        latency.extend(rows);
    }
    println!(
        "## auscout scale: {tracks} tracks × {FRAMES} random frames = {:.1}M frames, \
         lookups of {QUERY_FRAMES} frames × {TOGGLE_BITS} toggle bits, {lookups} of each kind\n",
        (tracks * FRAMES) as f64 / 1e6
    );
    println!("| layout | memory per frame (B, used_memory growth over all masters) |\n|---|---|");
    for r in memory {
        println!("{r}");
    }
    println!(
        "\n| layout, queries | per-shard server ms (median / p99) | slowest shard per lookup | \
         shards summed per lookup | end to end, client | answers |\n|---|---|---|---|---|---|"
    );
    for r in latency {
        println!("{r}");
    }
}
