//! Import: the whole file checked first, then each shard built under a
//! temporary key in its final key's slot and renamed into place at the end.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use auscout_core::wire::encode_u32_be;
use redis::Cmd;

use super::{exists, one, reply_error, DumpError, ImportOptions, ImportReport, CHUNK_FRAMES};
use crate::dump::format::{FormatError, Header, Reader};
use crate::endpoint::Endpoint;
use crate::reply;
use crate::shard::{self, Layout};
use crate::store::{Access, Store};
use crate::topology::master_slot_ranges;

/// An import sends its commands in pipelines of about this many bytes.
const BATCH_BYTES: usize = 8 << 20;

/// What a whole, checked file holds, shard by shard.
struct Checked {
    header: Header,
    /// Per shard: tracks and frames.
    shards: Vec<(u64, u64)>,
    tracks: u64,
    frames: u64,
}

/// Reads the whole file and checks it (structure, bounds, ids, checksum).
fn check_file(path: &Path) -> Result<Checked, DumpError> {
    let mut reader = open_reader(path)?;
    let file_err = |source| DumpError::File {
        path: path.to_owned(),
        source,
    };
    let mut shards = vec![(0u64, 0u64); reader.header().next_ids.len()];
    while let Some(t) = reader.next_track().map_err(file_err)? {
        if let Some(s) = shards.get_mut(t.shard as usize) {
            s.0 += 1;
            s.1 += t.hashes.len() as u64;
        }
    }
    let (tracks, frames) = reader.totals();
    Ok(Checked {
        header: reader.header().clone(),
        shards,
        tracks,
        frames,
    })
}

fn open_reader(path: &Path) -> Result<Reader<BufReader<File>>, DumpError> {
    let file = File::open(path).map_err(|source| DumpError::Io {
        path: path.to_owned(),
        source,
    })?;
    Reader::open(BufReader::new(file)).map_err(|source| DumpError::File {
        path: path.to_owned(),
        source,
    })
}

/// Imports the file at `path` as index `key` (see the module docs).
/// `progress(tracks, frames)` is called as the tracks go in.
pub fn import(
    endpoint: Endpoint,
    key: &str,
    path: &Path,
    options: ImportOptions,
    progress: &dyn Fn(u64, u64),
) -> Result<ImportReport, DumpError> {
    let checked = check_file(path)?;
    let cluster = endpoint.is_cluster();
    let store = Store::open(endpoint, key, None, Access::Read)?;
    let old = store.layout().clone();
    let new = target_layout(&store, key, checked.header.next_ids.len(), cluster)?;
    let meta = shard::meta_key(key);
    let mut occupied = old.keys();
    occupied.extend(new.keys());
    occupied.push(meta.clone());
    occupied.sort();
    occupied.dedup();
    let existing = exists(&store, &occupied)?;
    let replaced = existing.iter().any(|&e| e);
    if replaced && !options.replace {
        return Err(DumpError::Exists {
            key: key.to_owned(),
            tracks: store.count().unwrap_or(0),
        });
    }
    let temps: Vec<String> = new
        .keys()
        .iter()
        .map(|k| temp_key(k, cluster))
        .collect::<Result<_, _>>()
        .map_err(|detail| DumpError::Failed {
            key: key.to_owned(),
            detail,
        })?;
    if exists(&store, &temps)?.iter().any(|&e| e) {
        return Err(DumpError::Failed {
            key: key.to_owned(),
            detail: "a temporary key of another import is in the way".into(),
        });
    }
    let failed = |detail: String| DumpError::Failed {
        key: key.to_owned(),
        detail,
    };
    let built = fill(&store, path, &temps, &checked, progress).and_then(|()| {
        let retired: Vec<String> = old
            .keys()
            .into_iter()
            .filter(|k| !new.keys().contains(k))
            .collect();
        commit(&store, &new, &temps, &retired, &meta, cluster)
    });
    if let Err(e) = built {
        for t in &temps {
            let _ = store.command(&one("DEL", t));
        }
        return Err(match e {
            DumpError::Client(c) => failed(c.to_string()),
            other => other,
        });
    }
    Ok(ImportReport {
        layout: new,
        tracks: checked.tracks,
        frames: checked.frames,
        replaced,
    })
}

/// The layout of `shards` shards for `key` on this server or cluster.
fn target_layout(
    store: &Store,
    key: &str,
    shards: usize,
    cluster: bool,
) -> Result<Layout, DumpError> {
    let n = u32::try_from(shards).unwrap_or(u32::MAX);
    if n <= 1 {
        return Ok(Layout::Single {
            key: key.to_owned(),
        });
    }
    if !cluster {
        return Ok(Layout::numbered(key, n));
    }
    let masters = master_slot_ranges(store.command(redis::cmd("CLUSTER").arg("SLOTS"))?)?;
    let tags = shard::balanced_tags(n, &masters).ok_or_else(|| DumpError::Failed {
        key: key.to_owned(),
        detail: "the cluster has no master serving slots".into(),
    })?;
    Ok(Layout::Sharded {
        key: key.to_owned(),
        tags,
    })
}

/// A key no one uses, in the same cluster slot as `key` (so that a rename
/// works on a cluster): the key's own hash tag kept, or the key made the
/// tag.
fn temp_key(key: &str, cluster: bool) -> Result<String, String> {
    let nonce = format!(
        "{:x}{:x}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    );
    let slot = shard::key_slot(key.as_bytes());
    let same_slot = |k: &String| !cluster || shard::key_slot(k.as_bytes()) == slot;
    let plain = [
        format!("{key}:auscout-import-{nonce}"),
        format!("{{{key}}}:auscout-import-{nonce}"),
    ];
    // A key whose slot no tag of its own can name (it holds a `}`): a tag
    // found by trying, about one in 16,384 lands in its slot.
    let searched = (0..1_000_000u32).map(|i| format!("{{auscout-import-{nonce}-{i}}}"));
    plain
        .into_iter()
        .chain(searched)
        .find(same_slot)
        .ok_or_else(|| format!("no temporary key shares the cluster slot of {key}"))
}

/// Streams the file's tracks into the temporary keys and sets their id
/// counters; checks each shard's count and size afterwards.
fn fill(
    store: &Store,
    path: &Path,
    temps: &[String],
    checked: &Checked,
    progress: &dyn Fn(u64, u64),
) -> Result<(), DumpError> {
    let file_err = |source| DumpError::File {
        path: path.to_owned(),
        source,
    };
    let mut reader = open_reader(path)?;
    let mut batch = Batch::default();
    let (mut tracks, mut frames) = (0u64, 0u64);
    let mut top: BTreeMap<u32, u64> = BTreeMap::new();
    while let Some(t) = reader.next_track().map_err(file_err)? {
        let Some(temp) = temps.get(t.shard as usize) else {
            return Err(file_err(FormatError::Corrupt(
                "a track beyond the shards".into(),
            )));
        };
        let mut chunks = t.hashes.chunks(CHUNK_FRAMES);
        if let Some(first) = chunks.next() {
            let mut add = redis::cmd("AUSCOUT.ADDTRACK");
            add.arg(temp)
                .arg(encode_u32_be(first))
                .arg(&t.descr)
                .arg(t.id);
            batch.push(store, add, 4 * first.len() + t.descr.len(), Some(t.id))?;
        }
        for chunk in chunks {
            let mut append = redis::cmd("AUSCOUT.APPEND");
            append.arg(temp).arg(t.id).arg(encode_u32_be(chunk));
            batch.push(store, append, 4 * chunk.len(), None)?;
        }
        let top_id = top.entry(t.shard).or_insert(0);
        *top_id = (*top_id).max(t.id);
        tracks += 1;
        frames += t.hashes.len() as u64;
        progress(tracks, frames);
    }
    batch.flush(store)?;
    for (&shard, &top_id) in &top {
        let next = checked
            .header
            .next_ids
            .get(shard as usize)
            .copied()
            .unwrap_or(1)
            .max(top_id + 1);
        let mut set = redis::cmd("AUSCOUT.SETNEXTID");
        if let Some(temp) = temps.get(shard as usize) {
            set.arg(temp).arg(next);
            store.command(&set)?;
        }
    }
    for (shard, temp) in temps.iter().enumerate() {
        let want = checked.shards.get(shard).copied().unwrap_or((0, 0));
        let count = reply::integer(&store.command(&one("AUSCOUT.COUNT", temp))?).unwrap_or(-1);
        let size = reply::integer(&store.command(&one("AUSCOUT.SIZE", temp))?).unwrap_or(-1);
        if (count, size) != (want.0 as i64, want.1 as i64) {
            return Err(DumpError::Failed {
                key: temp.clone(),
                detail: format!(
                    "shard {shard} holds {count} tracks and {size} frames after the import, the file {} and {}",
                    want.0, want.1
                ),
            });
        }
    }
    Ok(())
}

/// Commands sent in pipelines of about [`BATCH_BYTES`].
#[derive(Default)]
struct Batch {
    cmds: Vec<Cmd>,
    /// The id each `addtrack` must answer with.
    ids: Vec<Option<u64>>,
    bytes: usize,
}

impl Batch {
    fn push(
        &mut self,
        store: &Store,
        cmd: Cmd,
        bytes: usize,
        id: Option<u64>,
    ) -> Result<(), DumpError> {
        self.cmds.push(cmd);
        self.ids.push(id);
        self.bytes += bytes + 64;
        if self.bytes >= BATCH_BYTES {
            self.flush(store)?;
        }
        Ok(())
    }

    fn flush(&mut self, store: &Store) -> Result<(), DumpError> {
        if self.cmds.is_empty() {
            return Ok(());
        }
        let replies = store.commands(&self.cmds)?;
        for (reply, want) in replies.iter().zip(&self.ids) {
            if let Some(want) = want {
                let got = reply::integer(reply).map_err(|d| reply_error("auscout.addtrack", d))?;
                if u64::try_from(got).ok() != Some(*want) {
                    return Err(reply_error(
                        "auscout.addtrack",
                        format!("id {got} instead of {want}"),
                    ));
                }
            }
        }
        self.cmds.clear();
        self.ids.clear();
        self.bytes = 0;
        Ok(())
    }
}

/// Puts the built shards in place (see the module docs).
fn commit(
    store: &Store,
    new: &Layout,
    temps: &[String],
    retired: &[String],
    meta: &str,
    cluster: bool,
) -> Result<(), DumpError> {
    let mut steps: Vec<Cmd> = Vec::new();
    for (temp, key) in temps.iter().zip(new.keys()) {
        let mut rename = redis::cmd("RENAME");
        rename.arg(temp).arg(key);
        steps.push(rename);
    }
    for key in retired {
        steps.push(one("DEL", key));
    }
    steps.push(one("DEL", meta));
    if let Some((n, tags)) = new.meta_fields() {
        let mut hset = redis::cmd("HSET");
        hset.arg(meta)
            .arg(shard::META_SHARDS_FIELD)
            .arg(n)
            .arg(shard::META_TAGS_FIELD)
            .arg(tags);
        steps.push(hset);
    }
    if cluster {
        // Slot by slot; the layout record last.
        for step in &steps {
            store.command(step)?;
        }
    } else {
        let mut atomic = vec![redis::cmd("MULTI")];
        atomic.extend(steps);
        atomic.push(redis::cmd("EXEC"));
        store.commands(&atomic)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_keys_share_their_keys_slot() {
        for key in ["music", "music{7}", "a{b}c", "{x}", "x{}y", "a}b"] {
            let temp = temp_key(key, true).expect("a temp key");
            assert_ne!(temp, key);
            assert_eq!(
                shard::key_slot(temp.as_bytes()),
                shard::key_slot(key.as_bytes()),
                "{key} -> {temp}"
            );
        }
    }
}
