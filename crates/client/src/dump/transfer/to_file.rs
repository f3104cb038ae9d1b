//! Export: every shard's tracks, listed in pages and read back in chunks,
//! written to a temporary file beside the target and renamed when complete.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use auscout_core::wire::decode_u32_be;
use redis::{Cmd, Value};

use super::{exists, one, reply_error, DumpError, ExportReport, CHUNK_FRAMES};
use crate::dump::format::{Header, Track, Writer};
use crate::reply;
use crate::stats::index_fields;
use crate::store::Store;

/// Tracks listed per `auscout.list` call while exporting.
const LIST_PAGE: u32 = 500;

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
