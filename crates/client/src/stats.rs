//! What `auscoutclient stats` shows: an index's statistics summed over its
//! shards (`auscout.index`, `MEMORY USAGE`), and the module's `INFO auscout`
//! section of every server holding the index (each master of a cluster),
//! summed.

use redis::{Cmd, Value};

use crate::error::{bad_reply, ClientError};
use crate::reply;
use crate::store::Store;

/// An index's statistics over all its shards.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexStats {
    /// Redis keys the index is spread over, and how many of them exist.
    pub shards: u32,
    pub shards_present: u32,
    pub tracks: u64,
    /// Frames (hashes) over all tracks, repeats included.
    pub frames: u64,
    /// Distinct hashes, summed over the shards (a hash on two shards counts
    /// twice).
    pub distinct_hashes: u64,
    pub postings: u64,
    /// Longest posting list of any shard.
    pub longest_posting: u64,
    /// What the index reports it holds, in bytes.
    pub index_bytes: u64,
    /// `MEMORY USAGE` of the keys: the index plus Redis' own overhead.
    pub memory_bytes: u64,
}

/// The `INFO auscout` fields of one server, in the order it gave them.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerInfo {
    /// The node's address on a cluster, the endpoint otherwise.
    pub node: String,
    pub fields: Vec<(String, String)>,
}

impl Store {
    /// `auscout.index` and `MEMORY USAGE` of every shard that exists, summed.
    pub fn index_stats(&self) -> Result<IndexStats, ClientError> {
        let keys = self.layout().keys();
        let exists: Vec<Cmd> = keys.iter().map(|k| one("EXISTS", k)).collect();
        let present: Vec<&String> = keys
            .iter()
            .zip(self.commands(&exists)?)
            .filter(|(_, v)| reply::integer(v).is_ok_and(|n| n > 0))
            .map(|(k, _)| k)
            .collect();
        let mut stats = IndexStats {
            shards: self.layout().shard_count(),
            shards_present: u32::try_from(present.len()).unwrap_or(u32::MAX),
            ..IndexStats::default()
        };
        if present.is_empty() {
            return Ok(stats);
        }
        let index: Vec<Cmd> = present.iter().map(|k| one("AUSCOUT.INDEX", k)).collect();
        for v in self.commands(&index)? {
            let fields = index_fields(v).map_err(|d| bad_reply("auscout.index", d))?;
            let get = |name: &str| {
                fields
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or(0, |&(_, v)| v)
            };
            stats.tracks += get("tracks");
            stats.frames += get("frames");
            stats.distinct_hashes += get("distinct_hashes");
            stats.postings += get("postings");
            stats.longest_posting = stats.longest_posting.max(get("longest_posting"));
            stats.index_bytes += get("bytes");
        }
        let memory: Vec<Cmd> = present
            .iter()
            .map(|k| {
                let mut cmd = redis::cmd("MEMORY");
                cmd.arg("USAGE").arg(k);
                cmd
            })
            .collect();
        for v in self.commands(&memory)? {
            if !matches!(v, Value::Nil) {
                let n = reply::integer(&v).map_err(|d| bad_reply("MEMORY USAGE", d))?;
                stats.memory_bytes += u64::try_from(n).unwrap_or(0);
            }
        }
        Ok(stats)
    }

    /// `INFO auscout` of the server, or of every master of a cluster.
    pub fn server_info(&self) -> Result<Vec<ServerInfo>, ClientError> {
        let mut cmd = redis::cmd("INFO");
        cmd.arg("auscout");
        // A cluster connection asks every master and answers with a map
        // from node to reply; a single server answers with its text.
        match self.command(&cmd)? {
            Value::Map(nodes) => nodes
                .into_iter()
                .map(|(node, text)| {
                    Ok(ServerInfo {
                        node: reply::text(node).map_err(|d| bad_reply("INFO", d))?,
                        fields: info_fields(&reply::text(text).map_err(|d| bad_reply("INFO", d))?),
                    })
                })
                .collect(),
            text => Ok(vec![ServerInfo {
                node: self.endpoint().shown().to_owned(),
                fields: info_fields(&reply::text(text).map_err(|d| bad_reply("INFO", d))?),
            }]),
        }
    }
}

/// The `INFO auscout` fields of several servers added up: counters summed,
/// the average lookup time recomputed from the sums.
pub fn sum_info(servers: &[ServerInfo]) -> Vec<(String, f64)> {
    let mut total: Vec<(String, f64)> = Vec::new();
    for server in servers {
        for (name, value) in &server.fields {
            let Ok(v) = value.parse::<f64>() else {
                continue;
            };
            match total.iter_mut().find(|(n, _)| n == name) {
                Some((_, t)) => *t += v,
                None => total.push((name.clone(), v)),
            }
        }
    }
    let get = |name: &str| total.iter().find(|(n, _)| n == name).map(|&(_, v)| v);
    let avg = match (get("auscout_lookup_usec"), get("auscout_lookups")) {
        (Some(usec), Some(n)) if n > 0.0 => usec / n,
        _ => 0.0,
    };
    for (name, v) in total.iter_mut() {
        if name == "auscout_lookup_avg_usec" {
            *v = avg;
        }
    }
    total
}

fn one(command: &str, key: &str) -> Cmd {
    let mut cmd = redis::cmd(command);
    cmd.arg(key);
    cmd
}

/// `auscout.index`'s flat `[name, value, …]` reply (a map in RESP3).
pub(crate) fn index_fields(value: Value) -> Result<Vec<(String, u64)>, String> {
    let pairs: Vec<(Value, Value)> = match value {
        Value::Array(flat) => {
            let mut it = flat.into_iter();
            let mut pairs = Vec::new();
            while let (Some(n), Some(v)) = (it.next(), it.next()) {
                pairs.push((n, v));
            }
            pairs
        }
        Value::Map(pairs) => pairs,
        other => return Err(format!("expected name/value pairs, got {other:?}")),
    };
    pairs
        .into_iter()
        .map(|(n, v)| {
            let n = reply::text(n)?;
            let v = reply::integer(&v)?;
            Ok((n, u64::try_from(v).unwrap_or(0)))
        })
        .collect()
}

/// `name:value` lines of an INFO reply (section headers and blanks skipped).
fn info_fields(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_sections_parse_and_add_up() {
        let a = "# auscout\r\nauscout_indexes:2\r\nauscout_lookups:3\r\nauscout_lookup_usec:300\r\nauscout_lookup_avg_usec:100.0\r\n";
        let b = "# auscout\r\nauscout_indexes:1\r\nauscout_lookups:1\r\nauscout_lookup_usec:500\r\nauscout_lookup_avg_usec:500.0\r\n";
        let servers: Vec<ServerInfo> = [a, b]
            .iter()
            .map(|t| ServerInfo {
                node: "n".into(),
                fields: info_fields(t),
            })
            .collect();
        assert_eq!(servers[0].fields.len(), 4);
        let total = sum_info(&servers);
        let get = |n: &str| total.iter().find(|(k, _)| k == n).map(|&(_, v)| v);
        assert_eq!(get("auscout_indexes"), Some(3.0));
        assert_eq!(get("auscout_lookups"), Some(4.0));
        assert_eq!(get("auscout_lookup_avg_usec"), Some(200.0));
    }

    #[test]
    fn index_replies_parse_flat_or_as_a_map() {
        let flat = Value::Array(vec![
            Value::SimpleString("tracks".into()),
            Value::Int(3),
            Value::SimpleString("frames".into()),
            Value::Int(30),
        ]);
        let want = vec![("tracks".to_owned(), 3), ("frames".to_owned(), 30)];
        assert_eq!(index_fields(flat), Ok(want.clone()));
        let map = Value::Map(vec![
            (Value::SimpleString("tracks".into()), Value::Int(3)),
            (Value::SimpleString("frames".into()), Value::Int(30)),
        ]);
        assert_eq!(index_fields(map), Ok(want));
        assert!(index_fields(Value::Int(1)).is_err());
    }
}
