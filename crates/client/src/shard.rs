//! How one logical index maps onto Redis keys (docs/design.md §6).
//!
//! - **Unsharded** (the default on a single server): the index is the key
//!   `KEY` itself, ids are the module's own.
//! - **Sharded** over `N` keys `KEY{t0}` … `KEY{tN-1}`: the hash tags put the
//!   shards in cluster slots of their own, so Redis Cluster spreads them over
//!   its masters. On a single server (`--shards` without `--cluster`) the tags
//!   are `0..N-1`. On a cluster they are the smallest integers whose slots
//!   lie on master `i mod M` for shard `i` — plain `{0},{1},{2}` would put two
//!   of three shards on the same master of a fresh 3-master cluster (slots
//!   13907, 9842, 5649). The layout is remembered in the small Redis hash
//!   `KEY{meta}` (fields `shards` = N and `tags` = "t0,t1,…"), written once,
//!   atomically, by the first `add`, so every later run and every other client
//!   agrees. The meta key exists exactly when the index is sharded.
//! - A track goes to shard `fnv1a64(description) mod N`: stable across runs
//!   and machines, so a resumed `add` checks the same shard, and even for
//!   many tracks.
//! - Ids stay unique across shards without any coordination: the module
//!   assigns shard-local ids, and the client shows `local × N + shard`. `del`
//!   with such an id goes straight to shard `id mod N`, local id `id / N`.
//!   Nothing of this is stored besides the layout, so it cannot get out of step.

use std::ops::RangeInclusive;

/// Field of the meta hash that holds the number of shards.
pub const META_SHARDS_FIELD: &str = "shards";
/// Field of the meta hash that holds the comma-separated hash tags.
pub const META_TAGS_FIELD: &str = "tags";
/// Redis Cluster's number of hash slots.
pub const CLUSTER_SLOTS: u16 = 16384;

/// Where one logical index lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// The whole index in one key.
    Single { key: String },
    /// The index spread over the keys `key{tag}`, one per tag, in shard order.
    Sharded { key: String, tags: Vec<String> },
}

impl Layout {
    /// A sharded layout with the tags `0..shards-1`.
    pub fn numbered(key: &str, shards: u32) -> Layout {
        Layout::Sharded {
            key: key.to_owned(),
            tags: (0..shards).map(|t| t.to_string()).collect(),
        }
    }

    /// The logical index name the user gave.
    pub fn name(&self) -> &str {
        match self {
            Layout::Single { key } | Layout::Sharded { key, .. } => key,
        }
    }

    /// Number of Redis keys holding the index (at least 1).
    pub fn shard_count(&self) -> u32 {
        match self {
            Layout::Single { .. } => 1,
            // Tags come from `--shards` (<= 4096) or from a parsed meta hash
            // (checked non-empty and bounded in `parse_meta`).
            Layout::Sharded { tags, .. } => u32::try_from(tags.len()).unwrap_or(u32::MAX).max(1),
        }
    }

    /// The Redis key of shard `shard` (`0..shard_count()`).
    pub fn shard_key(&self, shard: u32) -> String {
        match self {
            Layout::Single { key } => key.clone(),
            Layout::Sharded { key, tags } => {
                let tag = tags.get(shard as usize).map(String::as_str).unwrap_or("");
                format!("{key}{{{tag}}}")
            }
        }
    }

    /// All Redis keys of the index, in shard order.
    pub fn keys(&self) -> Vec<String> {
        (0..self.shard_count()).map(|s| self.shard_key(s)).collect()
    }

    /// The shard a track with this description is added to.
    pub fn shard_for(&self, descr: &str) -> u32 {
        // The modulo is < shard_count(), which is a u32.
        (fnv1a64(descr.as_bytes()) % u64::from(self.shard_count())) as u32
    }

    /// The id shown to the user for shard-local id `local` on `shard`.
    /// `None` when it would not fit in a u64.
    pub fn global_id(&self, shard: u32, local: u64) -> Option<u64> {
        local
            .checked_mul(u64::from(self.shard_count()))?
            .checked_add(u64::from(shard))
    }

    /// The shard and shard-local id of a user-visible id.
    pub fn locate(&self, id: u64) -> (u32, u64) {
        let n = u64::from(self.shard_count());
        ((id % n) as u32, id / n)
    }

    /// The meta hash fields that describe this layout (`None` if unsharded).
    pub fn meta_fields(&self) -> Option<(String, String)> {
        match self {
            Layout::Single { .. } => None,
            Layout::Sharded { tags, .. } => Some((tags.len().to_string(), tags.join(","))),
        }
    }
}

/// The key remembering how an index is sharded.
pub fn meta_key(key: &str) -> String {
    format!("{key}{{meta}}")
}

/// Rebuilds a layout from the meta hash fields; `None` when they are not a
/// layout this client wrote (the caller reports it).
pub fn parse_meta(key: &str, shards: &str, tags: Option<&str>) -> Option<Layout> {
    let n: u32 = shards.trim().parse().ok()?;
    if n == 0 || n > 4096 {
        return None;
    }
    let tags: Vec<String> = match tags {
        Some(t) => t.split(',').map(str::to_owned).collect(),
        None => (0..n).map(|t| t.to_string()).collect(),
    };
    let distinct: std::collections::HashSet<&String> = tags.iter().collect();
    let valid = tags.len() == n as usize
        && distinct.len() == tags.len()
        && tags
            .iter()
            .all(|t| !t.is_empty() && !t.contains(['{', '}']));
    valid.then(|| Layout::Sharded {
        key: key.to_owned(),
        tags,
    })
}

/// Picks `shards` hash tags (small integers, as strings) so that shard `i`
/// lands on master `i mod M`, with `masters` the slot ranges of each master.
/// Returns `None` when a master owns no slot (nothing to pick).
pub fn balanced_tags(shards: u32, masters: &[Vec<RangeInclusive<u16>>]) -> Option<Vec<String>> {
    if masters.is_empty() {
        return None;
    }
    let mut used = std::collections::HashSet::new();
    let mut tags = Vec::with_capacity(shards as usize);
    for shard in 0..shards as usize {
        let ranges = masters.get(shard % masters.len())?;
        // Every slot is hit by some integer below ~100k (crc16 spreads them
        // evenly), so this bound only guards against an empty range list.
        let tag = (0u32..1_000_000).filter(|t| !used.contains(t)).find(|t| {
            let slot = key_slot(t.to_string().as_bytes());
            ranges.iter().any(|r| r.contains(&slot))
        })?;
        used.insert(tag);
        tags.push(tag.to_string());
    }
    Some(tags)
}

/// The Redis Cluster slot of a key: CRC16 (XMODEM) of its hash tag — the part
/// between the first `{` and the next `}` if non-empty — or of the whole key.
pub fn key_slot(key: &[u8]) -> u16 {
    let hashed = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = key.get(open + 1..)?;
            let close = rest.iter().position(|&b| b == b'}')?;
            (close > 0).then(|| rest.get(..close)).flatten()
        })
        .unwrap_or(key);
    crc16_xmodem(hashed) % CLUSTER_SLOTS
}

fn crc16_xmodem(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// FNV-1a, 64 bit: tiny, stable across versions and platforms (unlike
/// `std`'s `DefaultHasher`), which is what a persistent shard choice needs.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_reference_vectors() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn shard_keys_use_hash_tags() {
        let l = Layout::numbered("music", 3);
        assert_eq!(l.keys(), vec!["music{0}", "music{1}", "music{2}"]);
        assert_eq!(meta_key("music"), "music{meta}");
        let s = Layout::Single {
            key: "music".into(),
        };
        assert_eq!(s.keys(), vec!["music"]);
    }

    #[test]
    fn ids_round_trip_and_never_collide() {
        let l = Layout::numbered("k", 5);
        let mut seen = std::collections::HashSet::new();
        for shard in 0..5 {
            for local in 0..100 {
                let id = l.global_id(shard, local).expect("fits");
                assert_eq!(l.locate(id), (shard, local));
                assert!(seen.insert(id), "id {id} given twice");
            }
        }
        assert_eq!(l.global_id(1, u64::MAX), None);
        let s = Layout::Single { key: "k".into() };
        assert_eq!(s.global_id(0, 42), Some(42));
        assert_eq!(s.locate(42), (0, 42));
    }

    #[test]
    fn shard_choice_is_stable_and_spread() {
        let l = Layout::numbered("k", 4);
        let mut per_shard = [0u32; 4];
        for i in 0..400 {
            let name = format!("track{i:03}.flac");
            let s = l.shard_for(&name);
            assert_eq!(s, l.shard_for(&name));
            per_shard[s as usize] += 1;
        }
        assert!(per_shard.iter().all(|&n| n > 60), "uneven: {per_shard:?}");
    }

    #[test]
    fn key_slots_match_redis() {
        // Values from `CLUSTER KEYSLOT` on Redis 7.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"music{0}"), 13907);
        assert_eq!(key_slot(b"{0}"), 13907);
        assert_eq!(key_slot(b"x{}y"), key_slot(b"x{}y"));
        assert_eq!(key_slot(b"{user1000}.following"), key_slot(b"user1000"));
    }

    #[test]
    fn balanced_tags_put_one_shard_per_master() {
        let masters = vec![vec![0..=5460], vec![5461..=10922], vec![10923..=16383]];
        let tags = balanced_tags(6, &masters).expect("found");
        for (i, tag) in tags.iter().enumerate() {
            let slot = key_slot(format!("k{{{tag}}}").as_bytes());
            assert!(
                masters[i % 3][0].contains(&slot),
                "shard {i} tag {tag} slot {slot}"
            );
        }
        let distinct: std::collections::HashSet<_> = tags.iter().collect();
        assert_eq!(distinct.len(), 6);
        assert_eq!(balanced_tags(2, &[]), None);
    }

    #[test]
    fn meta_round_trips_and_rejects_garbage() {
        let l = Layout::Sharded {
            key: "k".into(),
            tags: vec!["3".into(), "1".into(), "0".into()],
        };
        let (n, tags) = l.meta_fields().expect("sharded");
        assert_eq!(parse_meta("k", &n, Some(&tags)), Some(l));
        assert_eq!(parse_meta("k", "2", None), Some(Layout::numbered("k", 2)));
        assert_eq!(parse_meta("k", "0", None), None);
        assert_eq!(parse_meta("k", "x", None), None);
        assert_eq!(parse_meta("k", "2", Some("1")), None);
        assert_eq!(parse_meta("k", "2", Some("1,1")), None);
        assert_eq!(parse_meta("k", "1", Some("{")), None);
    }
}
