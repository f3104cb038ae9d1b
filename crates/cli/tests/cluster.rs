//! One logical index sharded over a local Redis Cluster (3 masters +
//! 3 replicas on loopback, each `redis-server --cluster-enabled yes
//! --loadmodule …`), driven through the `auscoutclient` binary.
//!
//! - the same tracks on a single server and on the cluster give the same answers;
//! - `export`/`import` carry an index from the single server to the cluster
//!   and back unchanged, and the cluster's sharded index onto the server;
//! - `redis-cli --cluster reshard` moves slots of one master (the slot of an
//!   index shard among them) while lookups keep running and keep answering right;
//! - a master is killed, its replica takes over, and count, size and lookups
//!   are what they were.

use auscout_testkit::server as common;
mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use auscout_testkit::cluster::{
    cluster_info_ok, cluster_node, owner_port, owner_port_alive, redis_cli as cli, replication,
    slot_in, wait_replica_caught_up, wait_replicas_synced,
};
use common::Server;
use support::{excerpt, music, write_wav};

const TRACKS: usize = 200;
const TRACK_SECS: f64 = 6.0;
const SR: u32 = 8000;

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().expect("spawn")
}

fn client(args: &[&str]) -> String {
    let out = support::ok(support::client(args));
    support::stdout(&out)
}

/// (clip file name, expected track file name, expected offset in seconds)
type Expect = Vec<(String, String, f64)>;
/// (clip, match, offset_s, score) from `lookup --csv`.
type Answer = (String, String, Option<f64>, Option<f64>);

/// Writes the tracks to `dir/tracks`, 3 s clips of every 6th track (plus 4 of
/// never-indexed audio) to `dir/clips`.
fn corpus(dir: &Path) -> Expect {
    let tracks = dir.join("tracks");
    let clips = dir.join("clips");
    std::fs::create_dir_all(&tracks).expect("mkdir");
    std::fs::create_dir_all(&clips).expect("mkdir");
    let mut expect = Vec::new();
    for t in 0..TRACKS {
        let audio = music(t as u64 + 1, TRACK_SECS, SR);
        let name = format!("track{t:03}.wav");
        write_wav(&tracks.join(&name), &audio, SR, 1);
        if t % 10 == 0 {
            let off = 0.5 + (t % 3) as f64;
            let clip_name = format!("clip{t:03}.wav");
            write_wav(
                &clips.join(&clip_name),
                &excerpt(&audio, SR, off, 3.0),
                SR,
                1,
            );
            expect.push((clip_name, name, off));
        }
    }
    for u in 0..4 {
        let clip_name = format!("unknown{u}.wav");
        write_wav(&clips.join(&clip_name), &music(10_000 + u, 3.0, SR), SR, 1);
        expect.push((clip_name, String::new(), 0.0));
    }
    expect
}

/// Looks up every clip: (clip file name, match, offset, score) rows sorted by
/// clip, from `lookup --csv`.
fn lookup(conn: &[&str], clips: &Path) -> Vec<Answer> {
    lookup_in(conn, "songs", clips)
}

/// [`lookup`] in the index `key`.
fn lookup_in(conn: &[&str], key: &str, clips: &Path) -> Vec<Answer> {
    let mut args = vec!["lookup"];
    args.extend_from_slice(conn);
    let clips = clips.to_string_lossy().into_owned();
    args.extend_from_slice(&["-k", key, "--csv", "--quiet", &clips]);
    let mut rows: Vec<Answer> = support::csv_rows(&client(&args))
        .into_iter()
        .map(|r| {
            let clip = Path::new(&r.clip)
                .file_name()
                .expect("clip name")
                .to_string_lossy()
                .into_owned();
            (clip, r.matched, r.offset_s, r.score)
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

fn check_answers(rows: &[Answer], expect: &Expect) {
    assert_eq!(rows.len(), expect.len(), "one CSV row per clip");
    for (clip, track, off) in expect {
        let row = rows
            .iter()
            .find(|r| &r.0 == clip)
            .unwrap_or_else(|| panic!("no row for {clip}"));
        if track.is_empty() {
            // Unindexed audio: whether it matches is the matcher's business
            // (the module's tests/lookup.rs, cli_lookup.rs, the bench); here the cluster
            // must only answer what the single server answers, compared whole
            // by the callers.
            continue;
        }
        assert_eq!(&row.1, track, "{clip}: wrong match (row {row:?})");
        assert!(
            row.2.is_some_and(|o| (o - off).abs() <= 0.5),
            "{clip}: offset {:?} vs {off}",
            row.2
        );
    }
}

/// The shard keys of the logical index `songs`, from the layout the client
/// remembers in `songs{meta}`.
fn shard_keys(port: u16) -> Vec<String> {
    let tags = cli(port, &["-c", "HGET", "songs{meta}", "tags"]);
    tags.trim()
        .split(',')
        .filter(|t| !t.is_empty())
        .map(|t| format!("songs{{{t}}}"))
        .collect()
}

/// Sum of `cmd` (auscout.count / auscout.size) over the shard keys, straight
/// from the cluster.
fn shard_sum(port: u16, cmd: &str, keys: &[String]) -> i64 {
    keys.iter()
        .map(|k| {
            let out = cli(port, &["-c", cmd, k]);
            out.trim()
                .parse::<i64>()
                .unwrap_or_else(|_| panic!("{cmd} {k}: {out}"))
        })
        .sum()
}

/// `export` and `import` between the single server and the cluster: the
/// single server's index onto the cluster (one key there) and back, with
/// the same digest (ids, descriptions, hashes, id counter) and, on the
/// cluster, the same answers; the cluster's sharded index onto the single
/// server with the same three shards and ids.
fn export_import_round_trips(single: u16, cluster: &[&str], root: &Path, reference: &[Answer]) {
    let file = |name: &str| root.join(name).to_string_lossy().into_owned();
    let sp = single.to_string();
    let with_cluster = |args: &[&str]| {
        let mut all = vec![args[0]];
        all.extend_from_slice(cluster);
        all.extend_from_slice(&args[1..]);
        client(&all)
    };
    client(&["export", "-p", &sp, "songs", &file("single.auscout")]);
    with_cluster(&["import", &file("single.auscout"), "copy"]);
    assert_eq!(
        lookup_in(cluster, "copy", &root.join("clips")),
        reference,
        "the imported copy answers otherwise"
    );
    with_cluster(&["export", "copy", &file("copy.auscout")]);
    client(&["import", "-p", &sp, &file("copy.auscout"), "back"]);
    let digest = |key: &str| cli(single, &["DEBUG", "DIGEST-VALUE", key]);
    assert_eq!(
        digest("back"),
        digest("songs"),
        "single -> cluster -> single"
    );
    with_cluster(&["export", "songs", &file("sharded.auscout")]);
    client(&["import", "-p", &sp, &file("sharded.auscout"), "sharded"]);
    let on_single = client(&["list", "-p", &sp, "-k", "sharded", "--json"]);
    assert_eq!(on_single, with_cluster(&["list", "-k", "songs", "--json"]));
    assert_eq!(on_single.lines().count(), TRACKS);
    assert_eq!(
        cli(single, &["HGET", "sharded{meta}", "shards"]).trim(),
        "3"
    );
    // The copy would only ride along through the resharding below.
    cli(cluster_port(cluster), &["-c", "DEL", "copy"]);
}

/// The port in `--cluster -p PORT`.
fn cluster_port(conn: &[&str]) -> u16 {
    conn.iter()
        .skip_while(|a| **a != "-p")
        .nth(1)
        .and_then(|p| p.parse().ok())
        .expect("-p PORT")
}

/// One scenario, one cluster (a failover on a second cluster would double the
/// cost for nothing: every step before the kill is the same).
#[test]
fn sharded_index_on_a_cluster_matches_a_single_server_survives_resharding_and_failover() {
    let dir = support::audio_dir();
    let root = dir.path();
    let expect = corpus(root);

    // The reference: one server holding the same tracks.
    let single = Server::start();
    let single_port = single.port.to_string();
    client(&[
        "add",
        "-p",
        &single_port,
        "-k",
        "songs",
        "--quiet",
        root.join("tracks").to_str().expect("utf8"),
    ]);
    let reference = lookup(&["-p", &single_port], &root.join("clips"));
    check_answers(&reference, &expect);

    // 3 masters + 3 replicas.
    let mut nodes: Vec<Option<Server>> = (0..6).map(|_| Some(cluster_node())).collect();
    let ports: Vec<u16> = nodes.iter().flatten().map(|n| n.port).collect();
    let addrs: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let mut create = Command::new("redis-cli");
    create.arg("--cluster").arg("create").args(&addrs).args([
        "--cluster-replicas",
        "1",
        "--cluster-yes",
    ]);
    let out = run(&mut create);
    assert!(
        out.status.success(),
        "cluster create: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ports.iter().all(|&p| cluster_info_ok(p)) {
        assert!(Instant::now() < deadline, "cluster did not become ok");
        std::thread::sleep(Duration::from_millis(200));
    }
    wait_replicas_synced(&ports, 3);
    let entry = ports[0].to_string();
    let conn = ["--cluster", "-p", entry.as_str()];

    let mut add = vec!["add"];
    add.extend_from_slice(&conn);
    let tracks_dir = root.join("tracks").to_string_lossy().into_owned();
    add.extend_from_slice(&["-k", "songs", "--quiet", &tracks_dir]);
    client(&add);
    // Default: one shard per master, each shard on its own master.
    let keys = shard_keys(ports[0]);
    assert_eq!(keys.len(), 3, "one shard per master: {keys:?}");
    let mut owners: Vec<u16> = keys.iter().map(|k| owner_port(ports[0], k)).collect();
    owners.sort_unstable();
    owners.dedup();
    assert_eq!(owners.len(), 3, "the shards sit on three different masters");
    for k in &keys {
        let n: i64 = cli(ports[0], &["-c", "auscout.count", k])
            .trim()
            .parse()
            .expect("count");
        assert!(n > 0, "shard {k} holds no track: tracks are not spread");
    }
    assert_eq!(shard_sum(ports[0], "auscout.count", &keys), TRACKS as i64);
    let size = shard_sum(ports[0], "auscout.size", &keys);
    assert_eq!(
        size,
        cli(single.port, &["auscout.size", "songs"])
            .trim()
            .parse::<i64>()
            .expect("size")
    );
    let client_count = |port: &str| {
        client(&["count", "--cluster", "-p", port, "-k", "songs"])
            .trim()
            .to_string()
    };
    let client_size = |port: &str| {
        client(&["size", "--cluster", "-p", port, "-k", "songs"])
            .trim()
            .to_string()
    };
    assert_eq!(client_count(&entry), TRACKS.to_string());
    assert_eq!(client_size(&entry), size.to_string());
    let on_cluster = lookup(&conn, &root.join("clips"));
    assert_eq!(on_cluster, reference, "cluster and single server disagree");
    export_import_round_trips(single.port, &conn, root, &reference);

    // Read from the replicas: the same answers, given by the replicas.
    let (masters, replicas): (Vec<u16>, Vec<u16>) = ports
        .iter()
        .partition(|&&p| replication(p).get("role").map(String::as_str) == Some("master"));
    for &m in &masters {
        wait_replica_caught_up(m);
    }
    let served = |ports: &[u16]| -> u64 {
        ports
            .iter()
            .map(|&p| {
                let info = cli(p, &["INFO", "auscout"]);
                info.lines()
                    .find_map(|l| l.trim().strip_prefix("auscout_lookups:"))
                    .and_then(|v| v.parse::<u64>().ok())
                    .expect("INFO auscout")
            })
            .sum()
    };
    let (by_masters, by_replicas) = (served(&masters), served(&replicas));
    let mut from_replicas = conn.to_vec();
    from_replicas.extend(["--read-from", "replicas"]);
    let on_replicas = lookup(&from_replicas, &root.join("clips"));
    assert_eq!(
        on_replicas, reference,
        "replicas and the single server disagree"
    );
    // Every shard's lookup of every clip, all but a few (a replica slow to
    // answer its check on a busy machine leaves one to its master) on replicas.
    let total = (expect.len() * keys.len()) as u64;
    let (m, r) = (
        served(&masters) - by_masters,
        served(&replicas) - by_replicas,
    );
    // At least one lookup per clip and shard; a clip the first lookup does
    // not find makes one more per fallback.
    assert!(m + r >= total, "{m} + {r} lookups for {total}");
    assert!(
        r * 10 >= (m + r) * 9,
        "replicas answered {r} of {} lookups",
        m + r
    );

    // Reshard: move every slot of the master that owns the first shard to
    // another master (redis-cli MIGRATEs the index key: DUMP/RESTORE of the
    // type) while lookups keep running and keep answering right.
    let moved_key = keys[0].clone();
    let slot: u16 = cli(ports[0], &["CLUSTER", "KEYSLOT", &moved_key])
        .trim()
        .parse()
        .expect("slot");
    let nodes_txt = cli(ports[0], &["CLUSTER", "NODES"]);
    let owner_line = nodes_txt
        .lines()
        .find(|l| l.contains("master") && slot_in(l, slot))
        .expect("owner of the first shard")
        .to_string();
    let owner = owner_line.split(' ').next().unwrap_or_default().to_string();
    // redis-cli moves the source's lowest slots first: move the owner's slots
    // from the start of its range up to the shard's slot, and no more, so the
    // owner keeps some slots and three masters still vote in the failover below.
    let moved = owner_line
        .split(' ')
        .skip(8)
        .find_map(|r| {
            let (a, b) = r.split_once('-')?;
            let (a, b) = (a.parse::<u16>().ok()?, b.parse::<u16>().ok()?);
            (a <= slot && slot < b).then(|| usize::from(slot - a) + 1)
        })
        .expect("the shard's slot inside one of the owner's ranges, not its last slot");
    let target = nodes_txt
        .lines()
        .find(|l| l.contains("master") && !l.starts_with(&owner))
        .map(|l| l.split(' ').next().unwrap_or_default().to_string())
        .expect("another master");
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicUsize::new(0));
    let lookups = {
        let (stop, rounds, expect) = (stop.clone(), rounds.clone(), expect.clone());
        let clips = root.join("clips");
        let entry = entry.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let rows = lookup(&["--cluster", "-p", &entry], &clips);
                check_answers(&rows, &expect);
                rounds.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    while rounds.load(Ordering::Relaxed) == 0 {
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = run(Command::new("redis-cli")
        .args(["--cluster", "reshard", &addrs[0]])
        .args([
            "--cluster-from",
            &owner,
            "--cluster-to",
            &target,
            "--cluster-slots",
            &moved.to_string(),
            "--cluster-yes",
        ]));
    assert!(
        out.status.success(),
        "reshard: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Let lookups run on the new layout too.
    let r0 = rounds.load(Ordering::Relaxed);
    let deadline = Instant::now() + Duration::from_secs(60);
    while rounds.load(Ordering::Relaxed) < r0 + 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    stop.store(true, Ordering::Relaxed);
    lookups
        .join()
        .expect("lookups during the reshard answered right");
    assert!(
        rounds.load(Ordering::Relaxed) >= r0 + 2,
        "lookups ran after the reshard"
    );
    let new_owner = owner_port(ports[0], &moved_key);
    assert_ne!(
        Some(new_owner),
        owner_line
            .split(' ')
            .nth(1)
            .and_then(|a| a.split(['@', ':']).nth(1))
            .and_then(|p| p.parse().ok()),
        "the shard moved"
    );
    assert_eq!(client_count(&entry), TRACKS.to_string());

    // Failover: kill the master of a shard the reshard did not touch; its
    // replica takes over.
    let nodes_txt = cli(ports[0], &["CLUSTER", "NODES"]);
    let node_of_port = |port: u16| {
        nodes_txt
            .lines()
            .find(|l| l.contains(&format!(":{port}@")))
            .and_then(|l| l.split(' ').next())
            .unwrap_or_default()
            .to_string()
    };
    let failed_key = keys
        .iter()
        .find(|k| {
            let id = node_of_port(owner_port(ports[0], k));
            id != owner && id != target
        })
        .expect("a shard on the third master")
        .clone();
    let victim_port = owner_port(ports[0], &failed_key);
    let survivor = *ports.iter().find(|&&p| p != victim_port).expect("survivor");
    let victim = ports
        .iter()
        .position(|&p| p == victim_port)
        .expect("victim node");
    // The kill must find the replica synced and caught up: otherwise Redis
    // (rightly) does not promote it, or the promoted copy misses tracks.
    wait_replica_caught_up(victim_port);
    drop(nodes[victim].take()); // kills the master
                                // A client started while the replica has not yet taken over (the lost
                                // master unreachable, then CLUSTERDOWN) waits the failover out.
    assert_eq!(
        client_count(&survivor.to_string()),
        TRACKS.to_string(),
        "count asked during the failover"
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while !(cluster_info_ok(survivor) && owner_port_alive(survivor, &failed_key, victim_port)) {
        if Instant::now() > deadline {
            let logs: Vec<String> = nodes
                .iter()
                .flatten()
                .map(|n| {
                    let log = n.log();
                    // Why a replica did not take over is logged once, maybe
                    // long before the tail ("Disconnected from master for
                    // longer than allowed", election attempts).
                    let why: Vec<&str> = log
                        .lines()
                        .filter(|l| l.contains("ailover") || l.contains("longer than allowed"))
                        .take(12)
                        .collect();
                    let tail: Vec<&str> = log.lines().rev().take(12).collect();
                    format!(
                        "--- {}\n{}\n[…]\n{}",
                        n.port,
                        why.join("\n"),
                        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                    )
                })
                .collect();
            panic!(
                "no failover of {victim_port}:\n{}\n{}",
                cli(survivor, &["CLUSTER", "NODES"]),
                logs.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let survivor_s = survivor.to_string();
    assert_eq!(client_count(&survivor_s), TRACKS.to_string());
    assert_eq!(client_size(&survivor_s), size.to_string());
    let after = lookup(&["--cluster", "-p", &survivor_s], &root.join("clips"));
    assert_eq!(after, reference, "answers after failover");
    drop(nodes);
}
