//! `stats`: an index's statistics (summed over its shards) and the module's
//! `INFO auscout` section (summed over the servers holding it: each master
//! of a cluster).

use auscout_client::stats::{sum_info, IndexStats, ServerInfo};
use auscout_client::store::Access;
use serde_json::{json, Map, Value};

use super::{open, track_seconds, Fatal};
use crate::args::StatsArgs;
use crate::output::{Format, Reporter};

pub fn run(args: &StatsArgs, out: &Reporter) -> Result<(), Fatal> {
    let store = open(&args.connection, &args.key, Access::Read)?;
    let index = store.index_stats()?;
    let servers = store.server_info()?;
    let name = store.layout().name().to_owned();
    if out.format == Format::Json {
        out.result(&json_report(&name, &index, &servers).to_string());
        return Ok(());
    }
    let where_ = if index.shards > 1 {
        format!(
            "{} shards, {} present{}",
            index.shards,
            index.shards_present,
            if store.endpoint().is_cluster() {
                format!(", on a cluster of {} masters", servers.len())
            } else {
                String::new()
            }
        )
    } else {
        "one key".to_owned()
    };
    out.result(&format!("index {name} ({where_})"));
    if index.shards_present == 0 {
        out.result("  no tracks (the key does not exist)");
    } else {
        let audio = duration(track_seconds(index.frames));
        let per_frame = index.memory_bytes as f64 / index.frames.max(1) as f64;
        for (label, value) in [
            ("tracks", group(index.tracks)),
            (
                "frames",
                format!("{} ({audio} of audio)", group(index.frames)),
            ),
            ("distinct hashes", group(index.distinct_hashes)),
            ("postings", group(index.postings)),
            ("longest posting", group(index.longest_posting)),
            (
                "memory",
                format!(
                    "{} (MEMORY USAGE; {per_frame:.2} bytes per frame)",
                    bytes(index.memory_bytes)
                ),
            ),
        ] {
            out.result(&format!("  {label:<16} {value}"));
        }
    }
    let over = if servers.len() > 1 {
        format!(", summed over {} servers", servers.len())
    } else {
        String::new()
    };
    out.result(&format!("server (INFO auscout{over})"));
    for (field, value) in sum_info(&servers) {
        let shown = if value.fract() == 0.0 {
            group(value as u64)
        } else {
            format!("{value:.1}")
        };
        out.result(&format!("  {field:<24} {shown}"));
    }
    Ok(())
}

fn json_report(name: &str, index: &IndexStats, servers: &[ServerInfo]) -> Value {
    let summed: Map<String, Value> = sum_info(servers)
        .into_iter()
        .map(|(k, v)| {
            let v = if v.fract() == 0.0 {
                json!(v as u64)
            } else {
                json!(v)
            };
            (k, v)
        })
        .collect();
    let nodes: Vec<Value> = servers
        .iter()
        .map(|s| {
            let fields: Map<String, Value> = s
                .fields
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            json!({ "node": s.node, "fields": fields })
        })
        .collect();
    json!({
        "key": name,
        "index": {
            "shards": index.shards,
            "shards_present": index.shards_present,
            "tracks": index.tracks,
            "frames": index.frames,
            "seconds": (track_seconds(index.frames) * 10.0).round() / 10.0,
            "distinct_hashes": index.distinct_hashes,
            "postings": index.postings,
            "longest_posting": index.longest_posting,
            "index_bytes": index.index_bytes,
            "memory_bytes": index.memory_bytes,
        },
        "info": summed,
        "servers": nodes,
    })
}

/// 1234567 → "1,234,567".
fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes in the largest binary unit that keeps a number of at least 1.
fn bytes(n: u64) -> String {
    let mut v = n as f64;
    for unit in ["bytes", "KiB", "MiB", "GiB"] {
        if v < 1024.0 || unit == "GiB" {
            return if unit == "bytes" {
                format!("{n} bytes")
            } else {
                format!("{v:.1} {unit}")
            };
        }
        v /= 1024.0;
    }
    format!("{n} bytes")
}

/// Seconds as `12.3 s`, `4.5 min` or `6.7 h`.
fn duration(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.1} s")
    } else if seconds < 3600.0 {
        format!("{:.1} min", seconds / 60.0)
    } else {
        format!("{:.1} h", seconds / 3600.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(5_004_321), "5,004,321");
    }

    #[test]
    fn sizes_and_durations_pick_their_unit() {
        assert_eq!(bytes(900), "900 bytes");
        assert_eq!(bytes(33_808), "33.0 KiB");
        assert_eq!(bytes(3 << 30), "3.0 GiB");
        assert_eq!(duration(29.3), "29.3 s");
        assert_eq!(duration(600.0), "10.0 min");
        assert_eq!(duration(7200.0), "2.0 h");
    }
}
