//! One logical index on one server or a Redis Cluster: the module's commands
//! over its shards ([`crate::shard`]), lookups possibly read from replicas
//! ([`crate::replicas`]).
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
use redis::{Cmd, ErrorKind, RedisError, Value};

use crate::endpoint::Conn;
pub use crate::endpoint::Endpoint;
use crate::error::{bad_reply, is_transient, ClientError};
use crate::replicas::{Pick, ReadFrom, Replicas};
use crate::reply::{self, ListEntry, ListPage};
use crate::shard::Layout;
use crate::topology::{node_addresses, settle};
/// How long transient errors are retried before the call fails. A cluster
/// failover takes `cluster-node-timeout` plus an election: seconds.
const RETRY_FOR: Duration = Duration::from_secs(30);
/// Tracks per `auscout.list` page when reading the descriptions.
const LIST_PAGE: u32 = 1000;

/// A match of a lookup, with the user-visible id.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackMatch {
    pub descr: String,
    pub id: u64,
    /// Frame of the track where the query's first frame aligns.
    pub position: i64,
    /// In [0, 1]: 0 chance, 1 identical.
    pub score: f64,
    /// The query's speed relative to the track as the server fitted it
    /// (1.05: played 5 % fast), when asked for with
    /// [`LookupOptions::with_speed`].
    pub speed: Option<f64>,
}

/// Lookup parameters passed to the server; `None` lets its defaults apply.
#[derive(Debug, Clone, Copy, Default)]
pub struct LookupOptions {
    pub threshold: Option<f64>,
    pub limit: Option<u32>,
    /// Ask for each match's speed (`WITHSPEED`; the server fits it, which
    /// costs a little per match).
    pub with_speed: bool,
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
        let (layout, existing) =
            settle(&endpoint, &mut conn, key, shards, access, RETRY_FOR).map_err(not_a_cluster)?;
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
                if options.with_speed {
                    cmd.arg("WITHSPEED");
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
                    speed: m.speed,
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

    /// `auscout.hashes` on the shard holding `id`: the track's length in
    /// frames and at most `count` of its hashes from frame `start`.
    pub fn track_hashes(
        &self,
        id: u64,
        start: u64,
        count: u64,
    ) -> Result<(u64, Vec<u32>), ClientError> {
        let (shard, local) = self.layout.locate(id);
        let mut cmd = redis::cmd("AUSCOUT.HASHES");
        cmd.arg(self.layout.shard_key(shard))
            .arg(local)
            .arg(start)
            .arg(count);
        let reply = self.with_retries(|c| c.run(&cmd))?;
        reply::track_hashes(reply).map_err(|detail| bad_reply("auscout.hashes", detail))
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

    /// One command with the store's retries (for the library's other
    /// modules: statistics, export and import).
    pub(crate) fn command(&self, cmd: &Cmd) -> Result<Value, ClientError> {
        self.with_retries(|c| c.run(cmd))
    }

    /// Commands sent together (a pipeline), with the store's retries.
    pub(crate) fn commands(&self, cmds: &[Cmd]) -> Result<Vec<Value>, ClientError> {
        self.with_retries(|c| c.run_all(cmds))
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
