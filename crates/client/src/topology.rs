//! Where an index lives on the servers: its shard layout (remembered in
//! `KEY{meta}`), the shards that exist, and a cluster's masters and nodes
//! from `CLUSTER SLOTS`.

use std::time::{Duration, Instant};

use redis::{Cmd, ErrorKind, Value};

use crate::endpoint::{Conn, Endpoint};
use crate::error::{bad_reply, is_transient, ClientError};
use crate::reply;
use crate::shard::{self, Layout};
use crate::store::Access;

/// [`settle_layout`] and [`existing_shards`], riding through a cluster in
/// the middle of a failover: for a few seconds it answers CLUSTERDOWN,
/// TRYAGAIN, or not at all from the lost master, and is asked again on a
/// fresh connection (the old one keeps asking the lost master) with backoff
/// until `retry_for` has passed, as every later command is. A server that
/// is no cluster node (ClusterConnectionNotFound) is told at once.
pub(crate) fn settle(
    endpoint: &Endpoint,
    conn: &mut Conn,
    key: &str,
    shards: Option<u32>,
    access: Access,
    retry_for: Duration,
) -> Result<(Layout, Vec<u32>), ClientError> {
    let deadline = Instant::now() + retry_for;
    let mut pause = Duration::from_millis(50);
    loop {
        let settled = settle_layout(conn, endpoint.is_cluster(), key, shards, access)
            .and_then(|layout| existing_shards(conn, &layout).map(|existing| (layout, existing)));
        match settled {
            Err(ClientError::Redis(e))
                if endpoint.is_cluster()
                    && is_transient(&e)
                    && e.kind() != ErrorKind::ClusterConnectionNotFound
                    && Instant::now() + pause < deadline =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(1));
                *conn = endpoint.connect()?;
            }
            other => return other,
        }
    }
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
pub(crate) fn master_slot_ranges(
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
pub(crate) fn node_addresses(slots: &Value) -> Vec<(String, u16)> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
