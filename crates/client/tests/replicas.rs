//! Lookups read from replicas through the library's `Store`: a primary with
//! two replicas answers exactly as the primary alone, spreads the lookups
//! over both replicas, and keeps answering — from the other replica or the
//! primary — when one replica is stopped mid-run or falls behind; a Redis
//! Cluster's replica answers the lookups of its master's shard.

use std::time::{Duration, Instant};

use auscout_client::store::{Access, Endpoint, LookupOptions, Store, TrackMatch};
use auscout_client::{ReadFrom, ReplicaPolicy};
use auscout_testkit::cluster::cluster_node_with_timeout;
use auscout_testkit::server::{info_field, wait_replicated, Server};
use auscout_testkit::Rng;

const POLICY: ReplicaPolicy = ReplicaPolicy {
    max_lag_bytes: 1 << 20,
    recheck: Duration::from_millis(100),
};

fn random_track(rng: &mut Rng, n: usize) -> Vec<u32> {
    (0..n).map(|_| rng.u32()).collect()
}

/// Lookups served by the module on this server so far.
fn lookups_served(s: &Server) -> u64 {
    info_field(&mut s.conn(), "auscout", "auscout_lookups")
        .and_then(|v| v.parse().ok())
        .expect("INFO auscout")
}

fn replica_of(primary: &Server) -> Server {
    Server::builder()
        .arg("--replicaof")
        .arg("127.0.0.1")
        .arg(&primary.port.to_string())
        .start()
}

fn endpoint(port: u16, cluster: bool) -> Endpoint {
    Endpoint::new(None, "127.0.0.1", port, cluster).expect("endpoint")
}

/// (query, toggles): excerpts of some tracks and unknown audio.
fn queries(rng: &mut Rng, tracks: &[Vec<u32>]) -> Vec<(Vec<u32>, Vec<u32>)> {
    (0..24)
        .map(|i| {
            let h = if i % 4 == 3 {
                random_track(rng, 3000)
            } else {
                tracks[i % tracks.len()].clone()
            };
            let start = rng.below(2000) as usize;
            let q = h[start..start + 600].to_vec();
            let t = (0..600).map(|_| 0b1111 << rng.below(28)).collect();
            (q, t)
        })
        .collect()
}

fn answers(store: &Store, qs: &[(Vec<u32>, Vec<u32>)]) -> Vec<Vec<TrackMatch>> {
    qs.iter()
        .map(|(q, t)| {
            store
                .lookup(q, t, LookupOptions::default())
                .expect("lookup")
                .0
        })
        .collect()
}

#[test]
fn a_primary_and_two_replicas_answer_alike_when_one_stops_or_lags() {
    let primary = Server::builder()
        .arg("--repl-diskless-sync-delay")
        .arg("0")
        .start();
    let mut replicas = [Some(replica_of(&primary)), Some(replica_of(&primary))];
    let mut rng = Rng::new(15);
    let tracks: Vec<Vec<u32>> = (0..30).map(|_| random_track(&mut rng, 3000)).collect();
    let writer =
        Store::open(endpoint(primary.port, false), "idx", None, Access::Write).expect("open");
    for (k, h) in tracks.iter().enumerate() {
        writer.add_track(h, &format!("track {k}")).expect("add");
    }
    let on_primary: Vec<&Server> = replicas.iter().flatten().collect();
    wait_replicated(&primary, &on_primary);
    let qs = queries(&mut rng, &tracks);
    let reference = answers(&writer, &qs);
    assert!(reference.iter().filter(|a| !a.is_empty()).count() >= 12);

    let addrs: Vec<String> = replicas
        .iter()
        .flatten()
        .map(|r| format!("127.0.0.1:{}", r.port))
        .collect();
    let reader = Store::open(
        endpoint(primary.port, false)
            .with_replicas(&addrs)
            .expect("replicas")
            .replica_policy(POLICY),
        "idx",
        None,
        Access::Read,
    )
    .expect("open");
    assert_eq!(reader.replica_count(), 2);
    // Two rounds, further apart than a verdict stands: a replica that failed
    // a check or a lookup once (a busy machine) is out of the rotation until
    // its next check, and its lookups go to the other replica or the primary;
    // nearly all go to the replicas, to both.
    assert_eq!(answers(&reader, &qs), reference);
    std::thread::sleep(POLICY.recheck * 2);
    assert_eq!(answers(&reader, &qs), reference);
    let served: Vec<u64> = replicas.iter().flatten().map(lookups_served).collect();
    let links: Vec<String> = replicas
        .iter()
        .flatten()
        .map(|r| field(r, "replication", "master_link_status"))
        .collect();
    assert!(
        served.iter().all(|&n| n > 0),
        "both replicas serve: {served:?}, links {links:?}"
    );
    assert!(
        served.iter().sum::<u64>() >= 2 * qs.len() as u64 - 4,
        "{served:?}"
    );

    // One replica stops mid-run: the other one and the primary answer.
    let mut run = answers(&reader, &qs[..12]);
    drop(replicas[0].take());
    run.extend(answers(&reader, &qs[12..]));
    assert_eq!(run, reference);
    let second = replicas[1].as_ref().expect("second replica");
    assert!(
        lookups_served(second) > served[1],
        "the live replica serves"
    );

    // The live replica loses its primary: it falls behind a new track, and
    // the primary answers in its place.
    redis::cmd("REPLICAOF")
        .arg("127.0.0.1")
        .arg(1)
        .query::<()>(&mut second.conn())
        .expect("REPLICAOF");
    let new = random_track(&mut rng, 3000);
    let id = writer.add_track(&new, "new").expect("add");
    std::thread::sleep(POLICY.recheck * 2);
    let before = lookups_served(second);
    let t = vec![0b1111; 500];
    let (found, _) = reader
        .lookup(&new[100..600], &t, LookupOptions::default())
        .expect("lookup");
    assert_eq!(found.first().map(|m| m.id), Some(id), "{found:?}");
    assert_eq!(answers(&reader, &qs), reference);
    assert_eq!(lookups_served(second), before, "a lagging replica served");
}

fn field(s: &Server, section: &str, name: &str) -> String {
    info_field(&mut s.conn(), section, name).unwrap_or_default()
}

fn cluster_ok(s: &Server) -> bool {
    redis::cmd("CLUSTER")
        .arg("INFO")
        .query::<String>(&mut s.conn())
        .is_ok_and(|i| i.contains("cluster_state:ok"))
}

#[test]
fn a_cluster_replica_answers_its_masters_shard() {
    // The smallest cluster: one master with every slot and its replica.
    let (master, replica) = (
        cluster_node_with_timeout(500),
        cluster_node_with_timeout(500),
    );
    let mut m = master.conn();
    let mut r = replica.conn();
    redis::cmd("CLUSTER")
        .arg("ADDSLOTSRANGE")
        .arg(0)
        .arg(16383)
        .query::<()>(&mut m)
        .expect("ADDSLOTSRANGE");
    let bus: u16 = redis::cmd("CONFIG")
        .arg("GET")
        .arg("cluster-port")
        .query::<Vec<String>>(&mut m)
        .expect("CONFIG GET")[1]
        .parse()
        .expect("port");
    redis::cmd("CLUSTER")
        .arg("MEET")
        .arg("127.0.0.1")
        .arg(master.port)
        .arg(bus)
        .query::<()>(&mut r)
        .expect("MEET");
    let id: String = redis::cmd("CLUSTER")
        .arg("MYID")
        .query(&mut m)
        .expect("MYID");
    let deadline = Instant::now() + Duration::from_secs(20);
    while redis::cmd("CLUSTER")
        .arg("REPLICATE")
        .arg(&id)
        .query::<()>(&mut r)
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "the replica never met its master"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // CLUSTER SLOTS lists a replica once its replication offset, gossiped,
    // is not 0: after the first write it receives.
    let nodes_listed = |s: &Server| {
        redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query::<redis::Value>(&mut s.conn())
            .is_ok_and(|v| match v {
                redis::Value::Array(e) => {
                    matches!(e.first(), Some(redis::Value::Array(f)) if f.len() == 4)
                }
                _ => false,
            })
    };
    while field(&replica, "replication", "master_link_status") != "up"
        || !cluster_ok(&master)
        || !cluster_ok(&replica)
    {
        assert!(Instant::now() < deadline, "the cluster never came up");
        std::thread::sleep(Duration::from_millis(50));
    }

    let mut rng = Rng::new(16);
    let tracks: Vec<Vec<u32>> = (0..12).map(|_| random_track(&mut rng, 3000)).collect();
    let writer =
        Store::open(endpoint(master.port, true), "songs", None, Access::Write).expect("open");
    for (k, h) in tracks.iter().enumerate() {
        writer.add_track(h, &format!("track {k}")).expect("add");
    }
    wait_replicated(&master, &[&replica]);
    while !nodes_listed(&master) {
        assert!(Instant::now() < deadline, "the replica is never listed");
        std::thread::sleep(Duration::from_millis(50));
    }
    let qs = queries(&mut rng, &tracks);
    let reference = answers(&writer, &qs);
    let reader = Store::open(
        endpoint(master.port, true)
            .read_from(ReadFrom::Replicas)
            .replica_policy(POLICY),
        "songs",
        None,
        Access::Read,
    )
    .expect("open");
    assert_eq!(reader.replica_count(), 1);
    assert_eq!(answers(&reader, &qs), reference);
    assert!(lookups_served(&replica) >= qs.len() as u64 - 2);
}
