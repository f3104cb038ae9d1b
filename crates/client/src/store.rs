//! The Redis side of the client: connections (one server or a Redis Cluster),
//! the module's commands, and one logical index spread over shards
//! ([`crate::shard`]).
//!
//! A [`Store`] is shared by the worker threads: each call borrows a
//! connection from a small pool (one per thread at most), so files are
//! fingerprinted and sent in parallel without a connection per file.
//! Transient failures — a lost connection, `-TRYAGAIN`, `-CLUSTERDOWN`
//! while a replica takes over, a redirect the cluster client gave up on —
//! are retried with backoff for a bounded time; everything else is reported.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use auscout_core::wire::encode_u32_be;
use redis::cluster::{ClusterClient, ClusterConnection};
use redis::{
    Cmd, ConnectionAddr, ConnectionInfo, ErrorKind, IntoConnectionInfo, RedisError, Value,
};

use crate::error::ClientError;
use crate::replicas::{Pick, ReadFrom, ReplicaPolicy, Replicas};
use crate::reply::{self, ListEntry, ListPage};
use crate::shard::{self, Layout};

/// How long to wait for a TCP connection before calling a server unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long transient errors are retried before the call fails. A cluster
/// failover takes `cluster-node-timeout` plus an election: seconds.
const RETRY_FOR: Duration = Duration::from_secs(30);
/// Tracks per `auscout.list` page when reading the descriptions.
const LIST_PAGE: u32 = 1000;

/// Where the server is: one Redis, or any node of a Redis Cluster.
#[derive(Debug, Clone)]
pub struct Endpoint {
    info: ConnectionInfo,
    cluster: bool,
    shown: String,
    read_from: ReadFrom,
    /// Replicas of a single primary, as given (none: ask the primary).
    replicas: Vec<ConnectionInfo>,
    policy: ReplicaPolicy,
}

impl Endpoint {
    /// From a `redis://[user:pass@]host:port/db` URL, or a host (a path
    /// starting with `/` is a Unix socket) and port.
    pub fn new(
        url: Option<&str>,
        host: &str,
        port: u16,
        cluster: bool,
    ) -> Result<Self, ClientError> {
        let (info, shown) = match url {
            Some(url) => (url.into_connection_info(), redact(url)),
            None if host.starts_with('/') => (
                format!("unix://{host}").into_connection_info(),
                host.to_owned(),
            ),
            None => (
                (host, port).into_connection_info(),
                format!("{host}:{port}"),
            ),
        };
        let info = info.map_err(|source| ClientError::Connect {
            target: shown.clone(),
            source,
        })?;
        Ok(Endpoint {
            info,
            cluster,
            shown,
            read_from: ReadFrom::Primary,
            replicas: Vec::new(),
            policy: ReplicaPolicy::default(),
        })
    }

    /// Where lookups go (see [`crate::replicas`]).
    pub fn read_from(mut self, read_from: ReadFrom) -> Self {
        self.read_from = read_from;
        self
    }

    /// The replicas of a single primary, as `host:port` (they share its
    /// credentials); lookups then go to them. A cluster finds its replicas
    /// itself.
    pub fn with_replicas(mut self, addrs: &[String]) -> Result<Self, ClientError> {
        if self.cluster && !addrs.is_empty() {
            return Err(ClientError::Connect {
                target: self.shown.clone(),
                source: RedisError::from((
                    ErrorKind::InvalidClientConfig,
                    "replica addresses are for a single primary; a cluster's are found with read-from replicas",
                )),
            });
        }
        for addr in addrs {
            let bad = || ClientError::Connect {
                target: addr.clone(),
                source: RedisError::from((ErrorKind::InvalidClientConfig, "expected HOST:PORT")),
            };
            let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
            let port: u16 = port.parse().map_err(|_| bad())?;
            self.replicas.push(ConnectionInfo {
                addr: ConnectionAddr::Tcp(host.trim_matches(['[', ']']).to_owned(), port),
                redis: self.info.redis.clone(),
            });
        }
        if !addrs.is_empty() {
            self.read_from = ReadFrom::Replicas;
        }
        Ok(self)
    }

    /// When a replica may answer (default: [`ReplicaPolicy::default`]).
    pub fn replica_policy(mut self, policy: ReplicaPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The server as shown in messages (password removed).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    pub fn is_cluster(&self) -> bool {
        self.cluster
    }

    fn connect(&self) -> Result<Conn, ClientError> {
        self.connect_via(&[])
    }

    /// Connects; on a cluster, through the given node or, if it is down
    /// (e.g. failing over), any of `also` (nodes seen earlier).
    fn connect_via(&self, also: &[(String, u16)]) -> Result<Conn, ClientError> {
        let wrap = |source| ClientError::Connect {
            target: self.shown.clone(),
            source,
        };
        if self.cluster {
            let mut nodes = vec![self.info.clone()];
            nodes.extend(also.iter().map(|(host, port)| ConnectionInfo {
                addr: ConnectionAddr::Tcp(host.clone(), *port),
                redis: self.info.redis.clone(),
            }));
            let client = ClusterClient::builder(nodes)
                .connection_timeout(CONNECT_TIMEOUT)
                .build()
                .map_err(wrap)?;
            Ok(Conn::Cluster(Box::new(
                client.get_connection().map_err(wrap)?,
            )))
        } else {
            let client = redis::Client::open(self.info.clone()).map_err(wrap)?;
            Ok(Conn::Single(
                client
                    .get_connection_with_timeout(CONNECT_TIMEOUT)
                    .map_err(wrap)?,
            ))
        }
    }
}

/// Hides the password of a URL shown in messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

enum Conn {
    Single(redis::Connection),
    Cluster(Box<ClusterConnection>),
}

impl Conn {
    fn run(&mut self, cmd: &Cmd) -> Result<Value, RedisError> {
        match self {
            Conn::Single(c) => cmd.query(c),
            Conn::Cluster(c) => cmd.query(c.as_mut()),
        }
    }

    /// Sends all commands before reading any reply: on a cluster the nodes
    /// work on them in parallel (the fan-out of a sharded lookup).
    fn run_all(&mut self, cmds: &[Cmd]) -> Result<Vec<Value>, RedisError> {
        match self {
            Conn::Single(c) => {
                let mut pipe = redis::pipe();
                for cmd in cmds {
                    pipe.add_command(cmd.clone());
                }
                pipe.query(c)
            }
            Conn::Cluster(c) => {
                let mut pipe = redis::cluster::cluster_pipe();
                for cmd in cmds {
                    pipe.add_command(cmd.clone());
                }
                match pipe.query(c.as_mut()) {
                    // A pipeline hands redirects back as plain errors; one
                    // command at a time, the cluster client follows them
                    // (ASKING included) while a slot migrates.
                    Err(e)
                        if matches!(
                            e.kind(),
                            ErrorKind::Moved | ErrorKind::Ask | ErrorKind::TryAgain
                        ) =>
                    {
                        cmds.iter().map(|cmd| cmd.query(c.as_mut())).collect()
                    }
                    other => other,
                }
            }
        }
    }
}

/// A match of a lookup, with the user-visible id.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackMatch {
    pub descr: String,
    pub id: u64,
    /// Frame of the track where the query's first frame aligns.
    pub position: i64,
    /// In [0, 1]: 0 chance, 1 identical.
    pub score: f64,
}

/// Lookup parameters passed to the server; `None` lets its defaults apply.
#[derive(Debug, Clone, Copy, Default)]
pub struct LookupOptions {
    pub threshold: Option<f64>,
    pub limit: Option<u32>,
}

/// A track as listed, with its user-visible id.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackInfo {
    pub id: u64,
    pub descr: String,
    /// Frame hashes stored for it.
    pub frames: u64,
}

/// Where a listing of a (possibly sharded) index goes on: the shard, and
/// the shard-local id to continue from. `TrackCursor::default()` starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrackCursor {
    pub shard: u32,
    pub local: u64,
}

/// What [`Store::open`] may do about an index's shard layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Read the layout; never write it.
    Read,
    /// Create the layout if the index has none yet (`add`).
    Write,
}

/// One logical index on one server or cluster.
pub struct Store {
    endpoint: Endpoint,
    layout: Layout,
    /// Shards to query in a lookup: those that existed when the store was
    /// opened (a shard no track has reached yet has no key, and the module
    /// answers a lookup on a missing key with an error).
    lookup_shards: Vec<u32>,
    /// Every cluster node (masters and replicas) seen when opening: a
    /// reconnect during a failover must not depend on the one node named on
    /// the command line still being up.
    cluster_nodes: Vec<(String, u16)>,
    pool: Mutex<Vec<Conn>>,
    /// How long transient failures are retried ([`Store::with_retry_for`]).
    retry_for: Duration,
    /// Replicas lookups go to (`ReadFrom::Replicas`).
    replicas: Option<Replicas>,
}

impl Store {
    /// Connects (failing at once if the server is unreachable or refuses
    /// the credentials) and settles the index's layout:
    /// - a layout remembered in `KEY{meta}` wins; `shards` must agree with it;
    /// - otherwise `shards`, or on a cluster one shard per master, makes the
    ///   index sharded — remembered if `access` is [`Access::Write`];
    /// - otherwise the index is the single key `KEY`.
    pub fn open(
        endpoint: Endpoint,
        key: &str,
        shards: Option<u32>,
        access: Access,
    ) -> Result<Self, ClientError> {
        let mut conn = endpoint.connect()?;
        // The cluster client connects lazily: a server that is no cluster
        // node shows up only here, as "no connections found".
        let not_a_cluster = |e: ClientError| match e {
            ClientError::Redis(source)
                if endpoint.is_cluster()
                    && source.kind() == ErrorKind::ClusterConnectionNotFound =>
            {
                ClientError::Connect {
                    target: format!("{} (is it a node of a Redis Cluster?)", endpoint.shown),
                    source,
                }
            }
            other => other,
        };
        let layout = settle_layout(&mut conn, endpoint.is_cluster(), key, shards, access)
            .map_err(not_a_cluster)?;
        let existing = existing_shards(&mut conn, &layout).map_err(not_a_cluster)?;
        // With no shard there at all, ask them all: the module then says
        // the index does not exist, which is what the user needs to hear.
        let lookup_shards = if existing.is_empty() {
            (0..layout.shard_count()).collect()
        } else {
            existing
        };
        let slots = if endpoint.is_cluster() {
            Some(conn.run(redis::cmd("CLUSTER").arg("SLOTS"))?)
        } else {
            None
        };
        let cluster_nodes = slots.as_ref().map(node_addresses).unwrap_or_default();
        let replicas = match (endpoint.read_from, &slots) {
            (ReadFrom::Primary, _) => None,
            (ReadFrom::Replicas, Some(slots)) => {
                Some(Replicas::cluster(slots, &endpoint.info, endpoint.policy))
            }
            (ReadFrom::Replicas, None) => {
                let listed = if endpoint.replicas.is_empty() {
                    let info = conn.run(redis::cmd("INFO").arg("replication"))?;
                    let info = reply::text(info)
                        .map_err(|detail| bad_reply("INFO replication", detail))?;
                    Replicas::listed_by(&info, &endpoint.info)
                } else {
                    endpoint.replicas.clone()
                };
                Some(Replicas::single(
                    endpoint.info.clone(),
                    listed,
                    endpoint.policy,
                ))
            }
        };
        Ok(Store {
            endpoint,
            layout,
            lookup_shards,
            cluster_nodes,
            pool: Mutex::new(vec![conn]),
            retry_for: RETRY_FOR,
            replicas,
        })
    }

    /// Retries transient failures (a lost connection, a failover) for
    /// `retry_for` instead of the default 30 s: a service answering
    /// requests would rather say "unavailable" soon.
    pub fn with_retry_for(mut self, retry_for: Duration) -> Self {
        self.retry_for = retry_for;
        self
    }

    /// Replicas lookups may go to (0 unless reading from replicas).
    pub fn replica_count(&self) -> usize {
        self.replicas.as_ref().map_or(0, Replicas::count)
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// `auscout.addtrack`: adds a track to its shard, returns its id.
    pub fn add_track(&self, hashes: &[u32], descr: &str) -> Result<u64, ClientError> {
        let shard = self.layout.shard_for(descr);
        let mut cmd = redis::cmd("AUSCOUT.ADDTRACK");
        cmd.arg(self.layout.shard_key(shard))
            .arg(encode_u32_be(hashes))
            .arg(descr);
        let local = self.with_retries(|c| c.run(&cmd))?;
        let local =
            reply::integer(&local).map_err(|detail| bad_reply("auscout.addtrack", detail))?;
        let local = u64::try_from(local)
            .map_err(|_| bad_reply("auscout.addtrack", format!("negative id {local}")))?;
        self.layout
            .global_id(shard, local)
            .ok_or_else(|| bad_reply("auscout.addtrack", format!("id {local} too large")))
    }

    /// `auscout.del` on the shard holding `id`: the number of frames removed.
    pub fn delete(&self, id: u64) -> Result<i64, ClientError> {
        let (shard, local) = self.layout.locate(id);
        let mut cmd = redis::cmd("AUSCOUT.DEL");
        cmd.arg(self.layout.shard_key(shard)).arg(local);
        let frames = self.with_retries(|c| c.run(&cmd))?;
        reply::integer(&frames).map_err(|detail| bad_reply("auscout.del", detail))
    }

    /// `auscout.lookup` on every shard at once, merged best score first:
    /// each shard on a usable replica when reading from replicas, else (and
    /// whenever that replica fails) on the primary. Returns the matches and
    /// the time the server round trips took.
    pub fn lookup(
        &self,
        hashes: &[u32],
        toggles: &[u32],
        options: LookupOptions,
    ) -> Result<(Vec<TrackMatch>, Duration), ClientError> {
        let hashes = encode_u32_be(hashes);
        let toggles = encode_u32_be(toggles);
        let keys: Vec<String> = self
            .lookup_shards
            .iter()
            .map(|&shard| self.layout.shard_key(shard))
            .collect();
        let cmds: Vec<Cmd> = keys
            .iter()
            .map(|key| {
                let mut cmd = redis::cmd("AUSCOUT.LOOKUP");
                cmd.arg(key).arg(&hashes).arg(&toggles);
                if let Some(t) = options.threshold {
                    cmd.arg(t);
                }
                if let Some(n) = options.limit {
                    cmd.arg("LIMIT").arg(n);
                }
                cmd
            })
            .collect();
        let start = Instant::now();
        let mut replies: Vec<Option<Value>> = match &self.replicas {
            Some(replicas) => ask_replicas(replicas, &keys, &cmds),
            None => vec![None; cmds.len()],
        };
        let missing: Vec<usize> = (0..replies.len())
            .filter(|&i| replies[i].is_none())
            .collect();
        if !missing.is_empty() {
            let todo: Vec<Cmd> = missing.iter().map(|&i| cmds[i].clone()).collect();
            let got = self.with_retries(|c| match todo.as_slice() {
                [one] => c.run(one).map(|v| vec![v]),
                many => c.run_all(many),
            })?;
            for (i, v) in missing.into_iter().zip(got) {
                replies[i] = Some(v);
            }
        }
        let elapsed = start.elapsed();
        let replies = replies.into_iter().map(|v| v.unwrap_or(Value::Nil));
        let mut found = Vec::new();
        for (&shard, value) in self.lookup_shards.iter().zip(replies) {
            for m in reply::matches(value).map_err(|detail| bad_reply("auscout.lookup", detail))? {
                let id = self
                    .layout
                    .global_id(shard, m.id)
                    .ok_or_else(|| bad_reply("auscout.lookup", format!("id {} too large", m.id)))?;
                found.push(TrackMatch {
                    descr: m.descr,
                    id,
                    position: m.position,
                    score: m.score,
                });
            }
        }
        // Best first; ties by id so the order is reproducible.
        found.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.id.cmp(&b.id)));
        if let Some(n) = options.limit {
            found.truncate(n as usize);
        }
        Ok((found, elapsed))
    }

    /// The server's `auscout.max-toggle-bits` (on a cluster, as the node
    /// that answers reports it), or `None` when it cannot be read (an ACL
    /// without `CONFIG`, a proxy, an old module).
    pub fn max_toggle_bits(&self) -> Option<u32> {
        let mut cmd = redis::cmd("CONFIG");
        cmd.arg("GET").arg("auscout.max-toggle-bits");
        let reply = self.with_retries(|c| c.run(&cmd)).ok()?;
        reply::config_u32(&reply)
    }

    /// `auscout.count`: tracks, summed over the shards.
    pub fn count(&self) -> Result<i64, ClientError> {
        self.sum("AUSCOUT.COUNT", "auscout.count")
    }

    /// `auscout.size`: frames, summed over the shards.
    pub fn size(&self) -> Result<i64, ClientError> {
        self.sum("AUSCOUT.SIZE", "auscout.size")
    }

    fn sum(&self, command: &str, shown: &'static str) -> Result<i64, ClientError> {
        let cmds: Vec<Cmd> = self
            .layout
            .keys()
            .into_iter()
            .map(|key| {
                let mut cmd = redis::cmd(command);
                cmd.arg(key);
                cmd
            })
            .collect();
        let replies = self.with_retries(|c| c.run_all(&cmds))?;
        replies.iter().try_fold(0i64, |total, v| {
            let n = reply::integer(v).map_err(|detail| bad_reply(shown, detail))?;
            Ok(total.saturating_add(n))
        })
    }

    /// Up to `count` tracks from `cursor` on, in shard then id order, and
    /// where to continue (`None` when the listing is complete).
    pub fn tracks(
        &self,
        cursor: TrackCursor,
        count: u32,
    ) -> Result<(Vec<TrackInfo>, Option<TrackCursor>), ClientError> {
        let mut found = Vec::new();
        let mut at = cursor;
        while at.shard < self.layout.shard_count() {
            let room = (count as usize).saturating_sub(found.len());
            if room == 0 {
                return Ok((found, Some(at)));
            }
            let (next, entries) = self.list_shard(at, u32::try_from(room).unwrap_or(u32::MAX))?;
            for e in entries {
                found.push(self.track_info(at.shard, e)?);
            }
            at = match next {
                0 => TrackCursor {
                    shard: at.shard + 1,
                    local: 0,
                },
                local => TrackCursor { local, ..at },
            };
        }
        Ok((found, None))
    }

    /// The track with user-visible id `id`, if the index has it.
    pub fn track(&self, id: u64) -> Result<Option<TrackInfo>, ClientError> {
        let (shard, local) = self.layout.locate(id);
        if local == 0 {
            return Ok(None); // ids start at 1 on every shard
        }
        let (_, entries) = self.list_shard(TrackCursor { shard, local }, 1)?;
        match entries.into_iter().next() {
            Some(e) if e.id == local => self.track_info(shard, e).map(Some),
            _ => Ok(None),
        }
    }

    /// Bytes the index takes in Redis (`MEMORY USAGE`, summed over the shards).
    pub fn memory_bytes(&self) -> Result<i64, ClientError> {
        let cmds: Vec<Cmd> = self
            .layout
            .keys()
            .into_iter()
            .map(|key| {
                let mut cmd = redis::cmd("MEMORY");
                cmd.arg("USAGE").arg(key);
                cmd
            })
            .collect();
        let replies = self.with_retries(|c| c.run_all(&cmds))?;
        replies.iter().try_fold(0i64, |total, v| match v {
            Value::Nil => Ok(total),
            v => {
                let n = reply::integer(v).map_err(|detail| bad_reply("MEMORY USAGE", detail))?;
                Ok(total.saturating_add(n))
            }
        })
    }

    /// One `auscout.list` page of a shard; a shard without a key is empty.
    fn list_shard(
        &self,
        at: TrackCursor,
        count: u32,
    ) -> Result<(u64, Vec<ListEntry>), ClientError> {
        let mut cmd = redis::cmd("AUSCOUT.LIST");
        cmd.arg(self.layout.shard_key(at.shard))
            .arg(at.local)
            .arg("COUNT")
            .arg(count.clamp(1, LIST_PAGE));
        match self.with_retries(|c| c.run(&cmd)) {
            Ok(page) => {
                reply::list_entries(page).map_err(|detail| bad_reply("auscout.list", detail))
            }
            Err(e) if e.is_no_such_key() => Ok((0, Vec::new())),
            Err(e) => Err(e),
        }
    }

    fn track_info(&self, shard: u32, e: ListEntry) -> Result<TrackInfo, ClientError> {
        let id = self
            .layout
            .global_id(shard, e.id)
            .ok_or_else(|| bad_reply("auscout.list", format!("id {} too large", e.id)))?;
        Ok(TrackInfo {
            id,
            descr: e.descr,
            frames: e.frames,
        })
    }

    /// The descriptions of every track in the index (`auscout.list`, paged),
    /// for `add` to skip files indexed by an earlier run.
    pub fn descriptions(&self) -> Result<std::collections::HashSet<String>, ClientError> {
        let mut all = std::collections::HashSet::new();
        for key in self.layout.keys() {
            // The module refuses to list a missing key; a new index has none.
            let exists = self.with_retries(|c| c.run(redis::cmd("EXISTS").arg(&key)))?;
            if reply::integer(&exists).map_err(|detail| bad_reply("EXISTS", detail))? == 0 {
                continue;
            }
            let mut cursor = "0".to_owned();
            // Bounded: a cursor that never ends would be a server bug, not a
            // reason to loop forever.
            for _ in 0..10_000_000 {
                let mut cmd = redis::cmd("AUSCOUT.LIST");
                cmd.arg(&key).arg(&cursor).arg("COUNT").arg(LIST_PAGE);
                let page = self.with_retries(|c| c.run(&cmd))?;
                let ListPage { next, descrs } =
                    reply::list_page(page).map_err(|detail| bad_reply("auscout.list", detail))?;
                all.extend(descrs);
                match next {
                    Some(next) if next != cursor => cursor = next,
                    _ => break,
                }
            }
        }
        Ok(all)
    }

    /// Runs `call` on a pooled connection, retrying transient failures on a
    /// fresh connection with backoff until the retry time has passed.
    fn with_retries<T>(
        &self,
        mut call: impl FnMut(&mut Conn) -> Result<T, RedisError>,
    ) -> Result<T, ClientError> {
        let deadline = Instant::now() + self.retry_for;
        let mut pause = Duration::from_millis(50);
        loop {
            let attempt = self.take_conn().and_then(|mut conn| match call(&mut conn) {
                Ok(v) => {
                    self.give_back(conn);
                    Ok(v)
                }
                Err(e) => {
                    // A connection that saw a server error reply is fine;
                    // one that saw an I/O error is not reused.
                    if !is_transient(&e) {
                        self.give_back(conn);
                    }
                    Err(ClientError::Redis(e))
                }
            });
            match attempt {
                Err(e) if retryable(&e) && Instant::now() + pause < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                other => return other,
            }
        }
    }

    fn take_conn(&self) -> Result<Conn, ClientError> {
        let pooled = self.pool.lock().map(|mut p| p.pop()).unwrap_or(None);
        match pooled {
            Some(conn) => Ok(conn),
            None => self.endpoint.connect_via(&self.cluster_nodes),
        }
    }

    fn give_back(&self, conn: Conn) {
        if let Ok(mut pool) = self.pool.lock() {
            pool.push(conn);
        }
    }
}

/// Sends each shard's lookup to a usable replica of its key, if any: the
/// replies, `None` for the shards the primary must answer.
fn ask_replicas(replicas: &Replicas, keys: &[String], cmds: &[Cmd]) -> Vec<Option<Value>> {
    let mut replies: Vec<Option<Value>> = vec![None; cmds.len()];
    let mut batches: Vec<(Pick, Vec<Cmd>)> = Vec::new();
    let mut shards_of: Vec<Vec<usize>> = Vec::new();
    for (i, (key, cmd)) in keys.iter().zip(cmds).enumerate() {
        let Some(pick) = replicas.pick(key) else {
            continue;
        };
        match batches.iter().position(|(p, _)| *p == pick) {
            Some(b) => {
                batches[b].1.push(cmd.clone());
                shards_of[b].push(i);
            }
            None => {
                batches.push((pick, vec![cmd.clone()]));
                shards_of.push(vec![i]);
            }
        }
    }
    for (answer, shards) in replicas.run(&batches).into_iter().zip(shards_of) {
        for (i, v) in shards.into_iter().zip(answer.into_iter().flatten()) {
            replies[i] = Some(v);
        }
    }
    replies
}

/// The shards whose key exists.
fn existing_shards(conn: &mut Conn, layout: &Layout) -> Result<Vec<u32>, ClientError> {
    let cmds: Vec<Cmd> = layout
        .keys()
        .into_iter()
        .map(|key| {
            let mut cmd = redis::cmd("EXISTS");
            cmd.arg(key);
            cmd
        })
        .collect();
    let replies = conn.run_all(&cmds)?;
    let mut existing = Vec::new();
    for (shard, value) in (0u32..).zip(replies) {
        if reply::integer(&value).map_err(|detail| bad_reply("EXISTS", detail))? > 0 {
            existing.push(shard);
        }
    }
    Ok(existing)
}

/// Reads (or, for `add`, creates) the layout of index `key`.
fn settle_layout(
    conn: &mut Conn,
    cluster: bool,
    key: &str,
    shards: Option<u32>,
    access: Access,
) -> Result<Layout, ClientError> {
    let meta_key = shard::meta_key(key);
    let mut get = redis::cmd("HMGET");
    get.arg(&meta_key)
        .arg(shard::META_SHARDS_FIELD)
        .arg(shard::META_TAGS_FIELD);
    let stored = read_meta(key, conn.run(&get)?)?;
    if let Some(layout) = stored {
        return agree(key, layout, shards);
    }
    let wanted = match (shards, cluster) {
        (Some(n), false) => Layout::numbered(key, n),
        (Some(n), true) => cluster_layout(conn, key, Some(n))?,
        (None, true) if access == Access::Write => cluster_layout(conn, key, None)?,
        // Reading an index that was never sharded: the plain key.
        (None, _) => {
            return Ok(Layout::Single {
                key: key.to_owned(),
            })
        }
    };
    if access == Access::Read {
        return Ok(wanted);
    }
    let Some((n, tags)) = wanted.meta_fields() else {
        return Ok(wanted);
    };
    // Create-if-absent and read back in one atomic step, so two clients
    // starting together end up with the same layout.
    let mut create = redis::cmd("EVAL");
    create
        .arg(
            "if redis.call('EXISTS', KEYS[1]) == 0 then \
               redis.call('HSET', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]) end \
             return redis.call('HMGET', KEYS[1], ARGV[1], ARGV[3])",
        )
        .arg(1)
        .arg(&meta_key)
        .arg(shard::META_SHARDS_FIELD)
        .arg(n)
        .arg(shard::META_TAGS_FIELD)
        .arg(tags);
    match read_meta(key, conn.run(&create)?)? {
        Some(layout) => agree(key, layout, shards),
        None => Err(ClientError::Layout {
            key: key.to_owned(),
            detail: format!("could not write {meta_key}"),
        }),
    }
}

/// Parses an `HMGET shards tags` reply; `None` when the index is unsharded.
fn read_meta(key: &str, value: Value) -> Result<Option<Layout>, ClientError> {
    let fields = match value {
        Value::Array(fields) => fields,
        other => return Err(bad_reply("HMGET", format!("{other:?}"))),
    };
    let mut fields = fields.into_iter().map(|v| match v {
        Value::Nil => None,
        other => reply::text(other).ok(),
    });
    let (shards, tags) = (fields.next().flatten(), fields.next().flatten());
    let Some(shards) = shards else {
        return Ok(None);
    };
    shard::parse_meta(key, &shards, tags.as_deref())
        .map(Some)
        .ok_or_else(|| ClientError::Layout {
            key: key.to_owned(),
            detail: format!(
                "{} holds a layout this client does not understand",
                shard::meta_key(key)
            ),
        })
}

fn agree(key: &str, layout: Layout, shards: Option<u32>) -> Result<Layout, ClientError> {
    match shards {
        Some(n) if n != layout.shard_count() => Err(ClientError::Layout {
            key: key.to_owned(),
            detail: format!(
                "it is sharded over {} keys, not --shards {n}",
                layout.shard_count()
            ),
        }),
        _ => Ok(layout),
    }
}

/// A sharded layout over the masters of a cluster: `shards` of them, or one
/// per master, each on master `i mod M`.
fn cluster_layout(conn: &mut Conn, key: &str, shards: Option<u32>) -> Result<Layout, ClientError> {
    let masters = master_slot_ranges(conn.run(&redis::cmd("CLUSTER").arg("SLOTS").clone())?)?;
    let n = match shards {
        Some(n) => n,
        None => u32::try_from(masters.len()).unwrap_or(u32::MAX).max(1),
    };
    let tags = shard::balanced_tags(n, &masters).ok_or_else(|| ClientError::Layout {
        key: key.to_owned(),
        detail: "the cluster has no master serving slots".to_owned(),
    })?;
    Ok(Layout::Sharded {
        key: key.to_owned(),
        tags,
    })
}

/// Slot ranges per master from `CLUSTER SLOTS`, masters ordered by their
/// lowest slot so the shard order is the same from any node.
fn master_slot_ranges(
    value: Value,
) -> Result<Vec<Vec<std::ops::RangeInclusive<u16>>>, ClientError> {
    let bad = |detail: &str| bad_reply("CLUSTER SLOTS", detail.to_owned());
    let Value::Array(entries) = value else {
        return Err(bad("not an array"));
    };
    let mut by_master: std::collections::BTreeMap<String, Vec<std::ops::RangeInclusive<u16>>> =
        std::collections::BTreeMap::new();
    for entry in entries {
        let Value::Array(fields) = entry else {
            return Err(bad("an entry is not an array"));
        };
        let mut fields = fields.into_iter();
        let (Some(start), Some(end), Some(Value::Array(master))) =
            (fields.next(), fields.next(), fields.next())
        else {
            return Err(bad("an entry is too short"));
        };
        let slot = |v: &Value| reply::integer(v).ok().and_then(|i| u16::try_from(i).ok());
        let (Some(start), Some(end)) = (slot(&start), slot(&end)) else {
            return Err(bad("a slot is not a number"));
        };
        // The node id (third field) names a master uniquely; host:port too.
        let name = master
            .into_iter()
            .take(3)
            .map(|v| {
                reply::text(v.clone())
                    .or_else(|_| reply::integer(&v).map(|i| i.to_string()))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join(":");
        by_master.entry(name).or_default().push(start..=end);
    }
    let mut masters: Vec<_> = by_master.into_values().collect();
    masters.sort_by_key(|ranges| ranges.iter().map(|r| *r.start()).min());
    Ok(masters)
}

/// Every node address (`host`, `port`) in a `CLUSTER SLOTS` reply, masters
/// and replicas, without repeats. Malformed entries are skipped: this list
/// is only a fallback for reconnecting.
fn node_addresses(slots: &Value) -> Vec<(String, u16)> {
    let mut found: Vec<(String, u16)> = Vec::new();
    let Value::Array(entries) = slots else {
        return found;
    };
    for entry in entries {
        let Value::Array(fields) = entry else {
            continue;
        };
        for node in fields.iter().skip(2) {
            let Value::Array(node) = node else { continue };
            let host = node.first().and_then(|h| reply::text(h.clone()).ok());
            let port = node
                .get(1)
                .and_then(|p| reply::integer(p).ok())
                .and_then(|p| u16::try_from(p).ok());
            if let (Some(host), Some(port)) = (host, port) {
                // An empty host means "the address you reached me at"; the
                // node named on the command line covers that one.
                if !host.is_empty() && !found.iter().any(|(h, p)| *h == host && *p == port) {
                    found.push((host, port));
                }
            }
        }
    }
    found
}

fn bad_reply(command: &'static str, detail: String) -> ClientError {
    ClientError::Reply { command, detail }
}

/// Failures that another attempt, maybe on a new connection, can cure.
fn is_transient(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || matches!(
            e.kind(),
            ErrorKind::TryAgain
                | ErrorKind::ClusterDown
                | ErrorKind::MasterDown
                | ErrorKind::BusyLoadingError
                | ErrorKind::Moved
                | ErrorKind::Ask
                | ErrorKind::ReadOnly
                | ErrorKind::ClusterConnectionNotFound
        )
}

fn retryable(e: &ClientError) -> bool {
    match e {
        ClientError::Redis(e) => is_transient(e),
        // Reconnecting while a node is down: keep trying until the deadline.
        ClientError::Connect { source, .. } => {
            source.is_io_error()
                || source.is_connection_refusal()
                || source.is_timeout()
                || is_transient(source)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(redact("redis://u:secret@h:1/2"), "redis://***@h:1/2");
        assert_eq!(redact("redis://h:1"), "redis://h:1");
    }

    #[test]
    fn cluster_slots_group_by_master_in_slot_order() {
        let node = |port: i64, id: &str| {
            Value::Array(vec![
                Value::BulkString(b"127.0.0.1".to_vec()),
                Value::Int(port),
                Value::BulkString(id.as_bytes().to_vec()),
            ])
        };
        let entry = |a: i64, b: i64, port: i64, id: &str| {
            Value::Array(vec![
                Value::Int(a),
                Value::Int(b),
                node(port, id),
                node(port + 3, "r"),
            ])
        };
        let reply = Value::Array(vec![
            entry(10923, 16383, 7002, "c"),
            entry(0, 5460, 7000, "a"),
            entry(5461, 10922, 7001, "b"),
            entry(16000, 16000, 7000, "a"),
        ]);
        let nodes = node_addresses(&reply);
        let ports: Vec<u16> = nodes.iter().map(|n| n.1).collect();
        assert_eq!(ports, vec![7002, 7005, 7000, 7003, 7001, 7004]);
        let masters = master_slot_ranges(reply).expect("parses");
        assert_eq!(
            masters,
            vec![
                vec![0..=5460, 16000..=16000],
                vec![5461..=10922],
                vec![10923..=16383]
            ]
        );
        assert!(master_slot_ranges(Value::Int(1)).is_err());
    }
}
