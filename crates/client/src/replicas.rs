//! Lookups served by replicas (`ReadFrom::Replicas`): a lookup is read-only,
//! so any replica that is in sync can answer it, and each replica adds the
//! lookups per second of one more server.
//!
//! - One primary: the replicas are the addresses given, or, when none is
//!   given, the ones the primary lists in `INFO replication`.
//! - A Redis Cluster: the replicas of each master from `CLUSTER SLOTS`; a
//!   lookup on a shard key goes to a replica of the master owning its slot,
//!   over a connection that has sent `READONLY`.
//!
//! A replica answers only while it is *usable*: it is a replica
//! (`role:slave`) whose link to its primary is up and not in a full sync, and
//! whose replication offset trails the primary's by at most
//! [`ReplicaPolicy::max_lag_bytes`]. The verdict is checked again after
//! [`ReplicaPolicy::recheck`]; a replica that fails a command (down,
//! loading, a redirect) is unusable until then. Whatever a replica cannot
//! answer goes to the primary, so a lookup never fails for a replica's sake.
//! Lookups rotate over the usable replicas of their shard.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::{Cmd, ConnectionAddr, ConnectionInfo, RedisError, Value};

use crate::reply;
use crate::shard::key_slot;

/// How long to wait for a replica's connection before calling it down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long a replica may take to answer before it counts as down.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Where lookups are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReadFrom {
    /// The primary (masters, on a cluster) answers everything.
    #[default]
    Primary,
    /// Usable replicas answer lookups; the primary answers the rest.
    Replicas,
}

/// When a replica may answer lookups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplicaPolicy {
    /// Most replication stream (bytes) a replica may trail its primary by
    /// (one 20,000-frame `auscout.add` is about 80 KB of it).
    pub max_lag_bytes: u64,
    /// How long a verdict on a replica stands before it is checked again.
    pub recheck: Duration,
}

impl Default for ReplicaPolicy {
    fn default() -> Self {
        ReplicaPolicy {
            max_lag_bytes: 1 << 20,
            recheck: Duration::from_secs(1),
        }
    }
}

/// A server lookups may go to, with its idle connections.
struct Node {
    info: ConnectionInfo,
    pool: Mutex<Vec<redis::Connection>>,
    verdict: Mutex<Option<(Instant, bool)>>,
    /// The last verdict, readable while a check holds `verdict`.
    last: AtomicU8,
}

const UNKNOWN: u8 = 0;
const USABLE: u8 = 1;
const UNUSABLE: u8 = 2;

impl Node {
    fn new(info: ConnectionInfo) -> Self {
        Node {
            info,
            pool: Mutex::new(Vec::new()),
            verdict: Mutex::new(None),
            last: AtomicU8::new(UNKNOWN),
        }
    }

    fn connect(&self, readonly: bool) -> Result<redis::Connection, RedisError> {
        if let Some(c) = self.pool.lock().ok().and_then(|mut p| p.pop()) {
            return Ok(c);
        }
        let mut c =
            redis::Client::open(self.info.clone())?.get_connection_with_timeout(CONNECT_TIMEOUT)?;
        c.set_read_timeout(Some(READ_TIMEOUT))?;
        if readonly {
            redis::cmd("READONLY").query::<()>(&mut c)?;
        }
        Ok(c)
    }

    fn give_back(&self, c: redis::Connection) {
        if let Ok(mut pool) = self.pool.lock() {
            pool.push(c);
        }
    }

    /// `INFO replication` as field → value.
    fn replication(&self, readonly: bool) -> Result<HashMap<String, String>, RedisError> {
        let mut c = self.connect(readonly)?;
        let info: String = redis::cmd("INFO").arg("replication").query(&mut c)?;
        self.give_back(c);
        Ok(info
            .lines()
            .filter_map(|l| l.trim().split_once(':'))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect())
    }
}

/// A primary and its replicas; on a cluster, with the slots it serves.
struct Group {
    slots: Vec<RangeInclusive<u16>>,
    primary: Node,
    replicas: Vec<Node>,
}

/// The replicas a store sends its lookups to.
pub(crate) struct Replicas {
    groups: Vec<Group>,
    cluster: bool,
    policy: ReplicaPolicy,
    next: AtomicUsize,
}

/// Where one shard's lookup is sent: group and replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Pick(usize, usize);

impl Replicas {
    /// One primary and the given replicas.
    pub(crate) fn single(
        primary: ConnectionInfo,
        replicas: Vec<ConnectionInfo>,
        policy: ReplicaPolicy,
    ) -> Self {
        Replicas {
            groups: vec![Group {
                slots: Vec::new(),
                primary: Node::new(primary),
                replicas: replicas.into_iter().map(Node::new).collect(),
            }],
            cluster: false,
            policy,
            next: AtomicUsize::new(0),
        }
    }

    /// The replicas a primary lists in its `INFO replication` (`slaveN:ip=…,port=…`).
    pub(crate) fn listed_by(info: &str, like: &ConnectionInfo) -> Vec<ConnectionInfo> {
        info.lines()
            .filter(|l| l.starts_with("slave") && l.contains(":ip="))
            .filter_map(|l| {
                let fields = l.split_once(':')?.1;
                let field = |name: &str| {
                    fields
                        .split(',')
                        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                };
                let port = field("port")?.parse().ok()?;
                Some(with_addr(like, field("ip")?, port))
            })
            .collect()
    }

    /// The masters and replicas of a `CLUSTER SLOTS` reply; `like` gives the
    /// credentials and the host of nodes that announce none.
    pub(crate) fn cluster(slots: &Value, like: &ConnectionInfo, policy: ReplicaPolicy) -> Self {
        let mut groups: Vec<(String, Group)> = Vec::new();
        let default_host = match &like.addr {
            ConnectionAddr::Tcp(host, _) | ConnectionAddr::TcpTls { host, .. } => host.clone(),
            _ => "127.0.0.1".to_owned(),
        };
        let Value::Array(entries) = slots else {
            return Self::from_groups(Vec::new(), policy);
        };
        for entry in entries {
            let Value::Array(fields) = entry else {
                continue;
            };
            let slot = |v: Option<&Value>| {
                v.and_then(|v| reply::integer(v).ok())
                    .and_then(|i| u16::try_from(i).ok())
            };
            let (Some(start), Some(end)) = (slot(fields.first()), slot(fields.get(1))) else {
                continue;
            };
            let node = |v: &Value| {
                let Value::Array(n) = v else { return None };
                let host = n.first().and_then(|h| reply::text(h.clone()).ok())?;
                let host = if host.is_empty() {
                    default_host.clone()
                } else {
                    host
                };
                let port = n
                    .get(1)
                    .and_then(|p| reply::integer(p).ok())
                    .and_then(|p| u16::try_from(p).ok())?;
                Some((host, port))
            };
            let mut nodes = fields.iter().skip(2).filter_map(node);
            let Some((host, port)) = nodes.next() else {
                continue;
            };
            let name = format!("{host}:{port}");
            let at = match groups.iter().position(|(n, _)| *n == name) {
                Some(at) => at,
                None => {
                    groups.push((
                        name,
                        Group {
                            slots: Vec::new(),
                            primary: Node::new(with_addr(like, &host, port)),
                            replicas: nodes
                                .map(|(h, p)| Node::new(with_addr(like, &h, p)))
                                .collect(),
                        },
                    ));
                    groups.len() - 1
                }
            };
            if let Some((_, g)) = groups.get_mut(at) {
                g.slots.push(start..=end);
            }
        }
        Self::from_groups(groups.into_iter().map(|(_, g)| g).collect(), policy)
    }

    fn from_groups(groups: Vec<Group>, policy: ReplicaPolicy) -> Self {
        Replicas {
            groups,
            cluster: true,
            policy,
            next: AtomicUsize::new(0),
        }
    }

    /// Replicas known, over all groups.
    pub(crate) fn count(&self) -> usize {
        self.groups.iter().map(|g| g.replicas.len()).sum()
    }

    /// A usable replica for `key`, rotating over them; `None`: the primary.
    pub(crate) fn pick(&self, key: &str) -> Option<Pick> {
        let g = if self.cluster {
            let slot = key_slot(key.as_bytes());
            self.groups
                .iter()
                .position(|g| g.slots.iter().any(|r| r.contains(&slot)))?
        } else {
            0
        };
        let group = self.groups.get(g)?;
        let n = group.replicas.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..n)
            .map(|k| (start + k) % n)
            .find(|&r| self.usable(group, r))
            .map(|r| Pick(g, r))
    }

    /// The standing verdict on replica `r` of `group`, checked again when
    /// it is older than the policy allows. While another thread checks it
    /// again, the last verdict stands rather than being waited for (a check
    /// of a host that does not answer takes the connect timeout); only the
    /// very first check is waited for.
    fn usable(&self, group: &Group, r: usize) -> bool {
        let Some(node) = group.replicas.get(r) else {
            return false;
        };
        let mut verdict = match node.verdict.try_lock() {
            Ok(v) => v,
            Err(_) => match node.last.load(Ordering::Relaxed) {
                USABLE => return true,
                UNUSABLE => return false,
                _ => match node.verdict.lock() {
                    Ok(v) => v,
                    Err(_) => return false,
                },
            },
        };
        if let Some((at, ok)) = *verdict {
            if at.elapsed() < self.policy.recheck {
                return ok;
            }
        }
        let ok = self.check(group, node);
        *verdict = Some((Instant::now(), ok));
        node.last
            .store(if ok { USABLE } else { UNUSABLE }, Ordering::Relaxed);
        ok
    }

    /// A replica in sync with its primary, within the lag allowed. The
    /// replica's offset is read first, so the lag is never underestimated.
    fn check(&self, group: &Group, node: &Node) -> bool {
        let Ok(repl) = node.replication(self.cluster) else {
            return false;
        };
        let field = |k: &str| repl.get(k).map(String::as_str);
        if field("role") != Some("slave")
            || field("master_link_status") != Some("up")
            || field("master_sync_in_progress") != Some("0")
        {
            return false;
        }
        let Some(offset) = field("slave_repl_offset").and_then(|v| v.parse::<u64>().ok()) else {
            return false;
        };
        match group.primary.replication(false) {
            Ok(p) => p
                .get("master_repl_offset")
                .and_then(|v| v.parse::<u64>().ok())
                .is_some_and(|primary| primary.saturating_sub(offset) <= self.policy.max_lag_bytes),
            // The primary cannot be asked (failing over, say): the replica's
            // own link status is all there is to go by.
            Err(_) => true,
        }
    }

    fn mark_down(&self, pick: Pick) {
        if let Some(node) = self.node(pick) {
            if let Ok(mut v) = node.verdict.lock() {
                *v = Some((Instant::now(), false));
            }
            node.last.store(UNUSABLE, Ordering::Relaxed);
        }
    }

    fn node(&self, Pick(g, r): Pick) -> Option<&Node> {
        self.groups.get(g)?.replicas.get(r)
    }

    /// Runs each batch of commands on its replica, all batches in flight at
    /// once; a batch whose replica fails answers `None` (and the replica is
    /// unusable until its next check).
    pub(crate) fn run(&self, batches: &[(Pick, Vec<Cmd>)]) -> Vec<Option<Vec<Value>>> {
        let mut sent: Vec<Option<redis::Connection>> = batches
            .iter()
            .map(|(pick, cmds)| {
                let node = self.node(*pick)?;
                let mut c = node.connect(self.cluster).ok()?;
                let mut pipe = redis::pipe();
                for cmd in cmds {
                    pipe.add_command(cmd.clone());
                }
                c.send_packed_command(&pipe.get_packed_pipeline()).ok()?;
                Some(c)
            })
            .collect();
        batches
            .iter()
            .zip(sent.iter_mut())
            .map(|((pick, cmds), conn)| {
                let answer = conn.take().and_then(|mut c| {
                    let replies: Option<Vec<Value>> = cmds
                        .iter()
                        .map(|_| c.recv_response().ok())
                        .collect::<Option<Vec<Value>>>()
                        .filter(|r| !r.iter().any(|v| matches!(v, Value::ServerError(_))));
                    if replies.is_some() {
                        if let Some(node) = self.node(*pick) {
                            node.give_back(c);
                        }
                    }
                    replies
                });
                if answer.is_none() {
                    self.mark_down(*pick);
                }
                answer
            })
            .collect()
    }
}

/// `like` (credentials, database) at another address.
fn with_addr(like: &ConnectionInfo, host: &str, port: u16) -> ConnectionInfo {
    ConnectionInfo {
        addr: ConnectionAddr::Tcp(host.to_owned(), port),
        redis: like.redis.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redis::IntoConnectionInfo;

    #[test]
    fn replicas_listed_by_a_primary() {
        let like = "redis://:pw@10.0.0.1:6379/2"
            .into_connection_info()
            .expect("url");
        let info = "# Replication\r\nrole:master\r\nconnected_slaves:2\r\n\
                    slave0:ip=10.0.0.2,port=6380,state=online,offset=42,lag=0\r\n\
                    slave1:ip=10.0.0.3,port=6381,state=wait_bgsave,offset=0,lag=0\r\n\
                    master_repl_offset:42\r\n";
        let found = Replicas::listed_by(info, &like);
        let addrs: Vec<_> = found.iter().map(|i| i.addr.to_string()).collect();
        assert_eq!(addrs, ["10.0.0.2:6380", "10.0.0.3:6381"]);
        assert!(found
            .iter()
            .all(|i| i.redis.db == 2 && i.redis.password.is_some()));
    }

    #[test]
    fn cluster_replicas_grouped_by_master_and_found_by_slot() {
        let node = |port: i64| {
            Value::Array(vec![
                Value::BulkString(b"127.0.0.1".to_vec()),
                Value::Int(port),
                Value::BulkString(format!("id{port}").into_bytes()),
            ])
        };
        let entry = |a: i64, b: i64, nodes: Vec<Value>| {
            let mut v = vec![Value::Int(a), Value::Int(b)];
            v.extend(nodes);
            Value::Array(v)
        };
        let slots = Value::Array(vec![
            entry(0, 8000, vec![node(7000), node(7002), node(7003)]),
            entry(8001, 16383, vec![node(7001)]),
            entry(16000, 16000, vec![node(7000), node(7002), node(7003)]),
        ]);
        let like = "redis://127.0.0.1:7000"
            .into_connection_info()
            .expect("url");
        let r = Replicas::cluster(&slots, &like, ReplicaPolicy::default());
        assert_eq!(r.groups.len(), 2);
        assert_eq!(r.count(), 2);
        assert_eq!(r.groups[0].slots, vec![0..=8000, 16000..=16000]);
        // A master without replicas: its keys go to the primary.
        let key_of_second = (0..)
            .map(|i| format!("k{i}"))
            .find(|k| (8001..16000).contains(&key_slot(k.as_bytes())))
            .expect("a key");
        assert_eq!(r.pick(&key_of_second), None);
    }
}
