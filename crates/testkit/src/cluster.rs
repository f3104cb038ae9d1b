//! A local Redis Cluster for tests: nodes with cluster mode on, and
//! `redis-cli` helpers to wait for replication and find slot owners.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::server::free_port;
use crate::Server;

/// A cluster node: a harness server with cluster mode on (killed on drop).
///
/// - Its cluster bus gets a free port of its own: by default it is the client
///   port + 10000, and Redis refuses to start when that exceeds 65535 — the
///   harness picks client ports from the whole ephemeral range (up to 60999).
/// - `repl-diskless-sync-delay 0`: a master otherwise waits 5 s for more
///   replicas before the first full sync, and a master killed inside that
///   window leaves a replica that never synced, which Redis Cluster rightly
///   refuses to promote (its data age is unbounded).
pub fn cluster_node() -> Server {
    cluster_node_with_timeout(1500)
}

/// [`cluster_node`] with its own `cluster-node-timeout` (ms): how long a
/// silent node takes to be judged failed.
pub fn cluster_node_with_timeout(node_timeout_ms: u32) -> Server {
    Server::builder()
        .arg("--cluster-enabled")
        .arg("yes")
        .arg("--cluster-config-file")
        .arg("nodes.conf")
        .arg("--cluster-node-timeout")
        .arg(&node_timeout_ms.to_string())
        .arg("--cluster-port")
        .arg(&free_port().to_string())
        .arg("--repl-diskless-sync-delay")
        .arg("0")
        .start()
}

/// `INFO replication` of a node as field → value.
pub fn replication(port: u16) -> HashMap<String, String> {
    redis_cli(port, &["INFO", "replication"])
        .lines()
        .filter_map(|l| l.trim().split_once(':'))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

/// Waits until every replica among `ports` has finished its full sync and
/// streams from its master: a replica still syncing cannot take over.
pub fn wait_replicas_synced(ports: &[u16], replicas: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let synced = ports
            .iter()
            .map(|&p| replication(p))
            .filter(|r| {
                r.get("role").map(String::as_str) == Some("slave")
                    && r.get("master_link_status").map(String::as_str) == Some("up")
                    && r.get("master_sync_in_progress").map(String::as_str) == Some("0")
            })
            .count();
        if synced == replicas {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{synced} of {replicas} replicas synced after 30 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the replica of the master on `port` has acknowledged all of
/// its master's replication stream, so killing the master loses no track.
pub fn wait_replica_caught_up(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = replication(port);
        let master = r.get("master_repl_offset").cloned().unwrap_or_default();
        // slave0:ip=…,port=…,state=online,offset=N,lag=0
        let replica = r.get("slave0").cloned().unwrap_or_default();
        let field = |name: &str| {
            replica
                .split(',')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                .map(str::to_owned)
        };
        if field("state").as_deref() == Some("online") && field("offset") == Some(master.clone()) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the replica of {port} did not catch up: master offset {master}, replica {replica}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `redis-cli -p port args…` → stdout.
pub fn redis_cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn cluster_info_ok(port: u16) -> bool {
    redis_cli(port, &["CLUSTER", "INFO"]).contains("cluster_state:ok")
}

/// The master port owning `key`'s slot, from CLUSTER NODES.
pub fn owner_port(port: u16, key: &str) -> u16 {
    let slot: u16 = redis_cli(port, &["CLUSTER", "KEYSLOT", key])
        .trim()
        .parse()
        .expect("slot");
    redis_cli(port, &["CLUSTER", "NODES"])
        .lines()
        .find(|l| l.contains("master") && !l.contains("fail") && slot_in(l, slot))
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|a| a.split(['@', ':']).nth(1))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no master owns {key}"))
}

/// True once a live master other than `dead` serves `key`.
pub fn owner_port_alive(port: u16, key: &str, dead: u16) -> bool {
    let Ok(slot) = redis_cli(port, &["CLUSTER", "KEYSLOT", key])
        .trim()
        .parse::<u16>()
    else {
        return false;
    };
    redis_cli(port, &["CLUSTER", "NODES"]).lines().any(|l| {
        l.contains("master")
            && !l.contains("fail")
            && slot_in(l, slot)
            && !l.contains(&format!(":{dead}@"))
    })
}

/// Does a CLUSTER NODES line own `slot`?
pub fn slot_in(line: &str, slot: u16) -> bool {
    line.split(' ').skip(8).any(|r| match r.split_once('-') {
        Some((a, b)) => {
            a.parse::<u16>().is_ok_and(|a| a <= slot) && b.parse::<u16>().is_ok_and(|b| slot <= b)
        }
        None => r.parse::<u16>() == Ok(slot),
    })
}
