//! Export and import against a server or a cluster.
//!
//! Ids survive the trip because the shape of the index does: an index of
//! `N` shards is imported as `N` shards, track by track onto the shard and
//! the shard-local id it had, so the ids a user sees (`local × N + shard`)
//! are the same. On a cluster the shards' hash tags are chosen for the
//! target's masters, on a single server they are `0..N-1`; an unsharded
//! index stays one key.
//!
//! An import writes nothing until the whole file has been read and checked.
//! It then builds each shard under a temporary key in the same cluster slot
//! as its final key and only at the end renames them into place: on a
//! single server the renames, the removal of a replaced index and the
//! layout record happen in one `MULTI`/`EXEC`; on a cluster each shard's
//! rename is atomic and the layout record `KEY{meta}` (which makes a
//! sharded index visible) is written last. A failure before that removes
//! the temporary keys.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use auscout_core::wire::{decode_u32_be, encode_u32_be};
use redis::{Cmd, Value};

use super::format::{FormatError, Header, Reader, Track, Writer};
use crate::endpoint::Endpoint;
use crate::error::ClientError;
use crate::reply;
use crate::shard::{self, Layout};
use crate::stats::index_fields;
use crate::store::{Access, Store};
use crate::topology::master_slot_ranges;

/// Tracks listed per `auscout.list` call while exporting.
const LIST_PAGE: u32 = 500;
/// Frames per `auscout.hashes` reply and per import command (1 MiB of
/// hashes in the wire format): long tracks go in several.
const CHUNK_FRAMES: usize = 1 << 18;
/// An import sends its commands in pipelines of about this many bytes.
const BATCH_BYTES: usize = 8 << 20;

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: FormatError,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("there is no index at {0}")]
    NoIndex(String),
    #[error("index {key} already exists ({tracks} tracks); import into a new key, or replace it with --replace")]
    Exists { key: String, tracks: i64 },
    #[error("import into {key} failed, nothing was imported: {detail}")]
    Failed { key: String, detail: String },
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportReport {
    pub shards: u32,
    pub tracks: u64,
    pub frames: u64,
    /// Tracks listed but deleted before their hashes were read.
    pub vanished: u64,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub layout: Layout,
    pub tracks: u64,
    pub frames: u64,
    /// An existing index was replaced.
    pub replaced: bool,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ImportOptions {
    /// Replace an index that exists under the key (else refuse).
    pub replace: bool,
}

/// Writes the index `store` is open on to `path` (through a temporary file
/// beside it, renamed when complete). Writes during an export may or may
/// not be in the file. `progress(tracks, frames)` is called as it goes.
pub fn export(
    store: &Store,
    path: &Path,
    progress: &dyn Fn(u64, u64),
) -> Result<ExportReport, DumpError> {
    let layout = store.layout().clone();
    let keys = layout.keys();
    let present = exists(store, &keys)?;
    if !present.iter().any(|&p| p) {
        return Err(DumpError::NoIndex(layout.name().to_owned()));
    }
    let mut next_ids = Vec::with_capacity(keys.len());
    for (key, &here) in keys.iter().zip(&present) {
        let next = if here {
            let fields = index_fields(store.command(&one("AUSCOUT.INDEX", key))?)
                .map_err(|d| reply_error("auscout.index", d))?;
            fields
                .iter()
                .find(|(n, _)| n == "next_id")
                .map_or(1, |&(_, v)| v)
        } else {
            1
        };
        next_ids.push(next);
    }
    let header = Header {
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        key: layout.name().to_owned(),
        next_ids,
    };
    let partial = partial_path(path);
    let io = |source| DumpError::Io {
        path: path.to_owned(),
        source,
    };
    let result = (|| {
        let file = File::create(&partial).map_err(io)?;
        let mut writer = Writer::new(BufWriter::new(file), &header).map_err(io)?;
        let mut report = ExportReport {
            shards: layout.shard_count(),
            tracks: 0,
            frames: 0,
            vanished: 0,
        };
        for (shard, (key, &here)) in (0u32..).zip(keys.iter().zip(&present)) {
            if here {
                export_shard(store, shard, key, &mut writer, &mut report, progress)?;
            }
        }
        let out = writer.finish().map_err(io)?;
        let file = out.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&partial, path).map_err(io)?;
        Ok(report)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

fn export_shard<W: Write>(
    store: &Store,
    shard: u32,
    key: &str,
    writer: &mut Writer<W>,
    report: &mut ExportReport,
    progress: &dyn Fn(u64, u64),
) -> Result<(), DumpError> {
    let io = |source| DumpError::Io {
        path: PathBuf::from(key),
        source,
    };
    let mut cursor = 0u64;
    loop {
        let mut list = redis::cmd("AUSCOUT.LIST");
        list.arg(key).arg(cursor).arg("COUNT").arg(LIST_PAGE);
        let (next, entries) =
            raw_list_page(store.command(&list)?).map_err(|d| reply_error("auscout.list", d))?;
        let firsts: Vec<Cmd> = entries
            .iter()
            .map(|(id, _, _)| hashes_cmd(key, *id, 0))
            .collect();
        // One pipeline per page; should a track vanish meanwhile (its
        // command fails), the page is read again track by track.
        let replies: Vec<Option<Value>> = match store.commands(&firsts) {
            Ok(replies) => replies.into_iter().map(Some).collect(),
            Err(_) => firsts.iter().map(|c| store.command(c).ok()).collect(),
        };
        for ((id, descr, _), first) in entries.into_iter().zip(replies) {
            let Some(first) = first else {
                report.vanished += 1;
                continue;
            };
            let hashes = read_hashes(store, key, id, first)?;
            let frames = hashes.len() as u64;
            writer
                .track(&Track {
                    shard,
                    id,
                    descr,
                    hashes,
                })
                .map_err(io)?;
            report.tracks += 1;
            report.frames += frames;
            progress(report.tracks, report.frames);
        }
        if next == 0 {
            return Ok(());
        }
        cursor = next;
    }
}

/// A track's hashes from the first `auscout.hashes` reply on, asking for
/// more chunks while the track has more frames.
fn read_hashes(store: &Store, key: &str, id: u64, first: Value) -> Result<Vec<u32>, DumpError> {
    let (frames, mut hashes) = hashes_reply(first)?;
    while hashes.len() < frames {
        let (_, more) = hashes_reply(store.command(&hashes_cmd(key, id, hashes.len()))?)?;
        if more.is_empty() {
            break;
        }
        hashes.extend(more);
    }
    Ok(hashes)
}

fn hashes_cmd(key: &str, id: u64, start: usize) -> Cmd {
    let mut cmd = redis::cmd("AUSCOUT.HASHES");
    cmd.arg(key).arg(id).arg(start).arg(CHUNK_FRAMES);
    cmd
}

/// `[frames, hasharray]`.
fn hashes_reply(value: Value) -> Result<(usize, Vec<u32>), DumpError> {
    let bad = |d: String| reply_error("auscout.hashes", d);
    let Value::Array(fields) = value else {
        return Err(bad("expected [frames, hasharray]".into()));
    };
    let [frames, bytes] =
        <[Value; 2]>::try_from(fields).map_err(|_| bad("expected [frames, hasharray]".into()))?;
    let frames = reply::integer(&frames).map_err(bad)?;
    let bytes = match bytes {
        Value::BulkString(b) => b,
        _ => return Err(bad("the hash array is not a string".into())),
    };
    let hashes = if bytes.is_empty() {
        Vec::new()
    } else {
        decode_u32_be(&bytes).map_err(|e| bad(e.to_string()))?
    };
    Ok((usize::try_from(frames).unwrap_or(0), hashes))
}

/// A listed track: id, description (raw bytes), frames.
type Listed = (u64, Vec<u8>, u64);

/// `auscout.list` with the descriptions as raw bytes (they need not be
/// UTF-8): the next cursor (0 at the end) and the tracks.
fn raw_list_page(value: Value) -> Result<(u64, Vec<Listed>), String> {
    let Value::Array(fields) = value else {
        return Err("expected [cursor, tracks]".into());
    };
    let [cursor, tracks] =
        <[Value; 2]>::try_from(fields).map_err(|_| "expected [cursor, tracks]".to_owned())?;
    let cursor = u64::try_from(reply::integer(&cursor)?).map_err(|_| "negative cursor")?;
    let Value::Array(tracks) = tracks else {
        return Err("expected an array of tracks".into());
    };
    let entries = tracks
        .into_iter()
        .map(|t| {
            let Value::Array(f) = t else {
                return Err("expected a track entry".to_owned());
            };
            let [id, descr, frames] = <[Value; 3]>::try_from(f)
                .map_err(|_| "a track entry is not [id, descr, frames]")?;
            let descr = match descr {
                Value::BulkString(b) => b,
                Value::SimpleString(s) => s.into_bytes(),
                _ => return Err("a description is not a string".to_owned()),
            };
            let id = u64::try_from(reply::integer(&id)?).map_err(|_| "negative id")?;
            let frames = u64::try_from(reply::integer(&frames)?).map_err(|_| "negative frames")?;
            Ok((id, descr, frames))
        })
        .collect::<Result<Vec<_>, String>>()?;
    Ok((cursor, entries))
}

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

/// Which of `keys` exist.
fn exists(store: &Store, keys: &[String]) -> Result<Vec<bool>, ClientError> {
    let cmds: Vec<Cmd> = keys.iter().map(|k| one("EXISTS", k)).collect();
    Ok(store
        .commands(&cmds)?
        .iter()
        .map(|v| reply::integer(v).is_ok_and(|n| n > 0))
        .collect())
}

fn one(command: &str, key: &str) -> Cmd {
    let mut cmd = redis::cmd(command);
    cmd.arg(key);
    cmd
}

fn reply_error(command: &'static str, detail: String) -> DumpError {
    DumpError::Client(crate::error::bad_reply(command, detail))
}

/// `dir/.name.partial-PID`: where an export is written before it is complete.
fn partial_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export".into());
    path.with_file_name(format!(".{name}.partial-{}", std::process::id()))
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

    #[test]
    fn list_pages_keep_descriptions_as_bytes() {
        let page = Value::Array(vec![
            Value::BulkString(b"0".to_vec()),
            Value::Array(vec![Value::Array(vec![
                Value::Int(3),
                Value::BulkString(vec![0xFF, b'a']),
                Value::Int(10),
            ])]),
        ]);
        assert_eq!(
            raw_list_page(page),
            Ok((0, vec![(3, vec![0xFF, b'a'], 10)]))
        );
        assert!(raw_list_page(Value::Int(1)).is_err());
    }
}
