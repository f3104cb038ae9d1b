//! One function per `auscout.*` command: parse and validate every argument
//! first, then touch the key, then replicate and notify. Replies and
//! replication are documented in `docs/commands.md`.

use auscout_core::index::MAX_ID;
use auscout_core::{Index, LookupParams, TrackId};
use redis_module::key::{RedisKey, RedisKeyWritable};
use redis_module::{Context, KeyType, NotifyEvent, RedisString, RedisValue};

use crate::datatype::AUSCOUT_TYPE;
use crate::error::CmdError;
use crate::value::IndexValue;
use crate::{args, config, offload};

type CmdResult = Result<RedisValue, CmdError>;

/// Default and maximum page size of `auscout.list`.
pub const LIST_DEFAULT_COUNT: u64 = 100;
pub const LIST_MAX_COUNT: u64 = 10_000;

/// The index in `key`, if any. An index a failed roll back left damaged
/// (see `auscout_core::index::rollback`) is refused until it is deleted.
fn read_index(key: &RedisKey) -> Result<Option<&IndexValue>, CmdError> {
    let value = key
        .get_value::<IndexValue>(&AUSCOUT_TYPE)
        .map_err(|_| CmdError::WrongType)?;
    match value {
        Some(v) if v.is_damaged() => Err(CmdError::Damaged),
        other => Ok(other),
    }
}

/// [`read_index`] for writing.
fn write_index(key: &RedisKeyWritable) -> Result<Option<&mut IndexValue>, CmdError> {
    let value = any_index(key)?;
    match value {
        Some(v) if v.is_damaged() => Err(CmdError::Damaged),
        other => Ok(other),
    }
}

/// The index in `key`, damaged or not (for deleting it).
fn any_index(key: &RedisKeyWritable) -> Result<Option<&mut IndexValue>, CmdError> {
    key.get_value::<IndexValue>(&AUSCOUT_TYPE)
        .map_err(|_| CmdError::WrongType)
}

fn notify(ctx: &Context, event: &str, key: &RedisString) {
    ctx.notify_keyspace_event(NotifyEvent::MODULE, event, key);
}

/// Adds a track, creating the index when the key is empty, and replicates the
/// command with the id made explicit so replicas and the AOF assign the same id.
fn add_track(
    ctx: &Context,
    key_name: &RedisString,
    hashes_arg: &RedisString,
    descr: Option<&RedisString>,
    id: Option<TrackId>,
) -> CmdResult {
    let hashes = args::hashes(hashes_arg)?;
    let descr_bytes = descr.map_or(&[][..], |d| d.as_slice());
    let key = ctx.open_key_writable(key_name);
    let id = match write_index(&key)? {
        Some(value) => value.insert(id, descr_bytes, &hashes)?,
        None => {
            let mut index = Index::new();
            let id = index.insert(id, descr_bytes, &hashes)?;
            key.set_value(&AUSCOUT_TYPE, IndexValue::new(index))
                .map_err(|e| CmdError::Internal(e.to_string()))?;
            id
        }
    };
    let id_text = id.to_string();
    match descr {
        Some(d) => {
            ctx.replicate(
                "auscout.addtrack",
                &[
                    key_name.as_slice(),
                    hashes_arg.as_slice(),
                    d.as_slice(),
                    id_text.as_bytes(),
                ],
            );
            notify(ctx, "auscout.addtrack", key_name);
        }
        None => {
            ctx.replicate(
                "auscout.add",
                &[
                    key_name.as_slice(),
                    hashes_arg.as_slice(),
                    id_text.as_bytes(),
                ],
            );
            notify(ctx, "auscout.add", key_name);
        }
    }
    Ok(RedisValue::Integer(id))
}

/// `auscout.add key hasharray [id]` → id
pub fn add(ctx: &Context, argv: Vec<RedisString>) -> CmdResult {
    match argv.as_slice() {
        [_, key, hashes] => add_track(ctx, key, hashes, None, None),
        [_, key, hashes, id] => {
            let id = args::id(id)?;
            add_track(ctx, key, hashes, None, Some(id))
        }
        _ => Err(CmdError::WrongArity),
    }
}

/// `auscout.addtrack key hasharray descr [id]` → id
pub fn addtrack(ctx: &Context, argv: Vec<RedisString>) -> CmdResult {
    match argv.as_slice() {
        [_, key, hashes, descr] => add_track(ctx, key, hashes, Some(descr), None),
        [_, key, hashes, descr, id] => {
            let id = args::id(id)?;
            add_track(ctx, key, hashes, Some(descr), Some(id))
        }
        _ => Err(CmdError::WrongArity),
    }
}

/// `auscout.append key id hasharray` → the track's frame count afterwards.
/// Emitted by the AOF rewrite for tracks longer than one chunk.
pub fn append(ctx: &Context, argv: Vec<RedisString>) -> CmdResult {
    let [_, key_name, id, hashes] = argv.as_slice() else {
        return Err(CmdError::WrongArity);
    };
    let id = args::id(id)?;
    let hashes = args::hashes(hashes)?;
    let key = ctx.open_key_writable(key_name);
    let value = write_index(&key)?.ok_or(CmdError::NoSuchKey)?;
    let frames = value.append(id, &hashes)?;
    ctx.replicate_verbatim();
    notify(ctx, "auscout.append", key_name);
    Ok(RedisValue::Integer(
        i64::try_from(frames).unwrap_or(i64::MAX),
    ))
}

/// `auscout.setnextid key next` → OK. Raises the id counter (never lowers
/// it); emitted last by the AOF rewrite so replay keeps ids unique.
pub fn setnextid(ctx: &Context, argv: Vec<RedisString>) -> CmdResult {
    let [_, key_name, next] = argv.as_slice() else {
        return Err(CmdError::WrongArity);
    };
    let next = args::unsigned(next, "next id")?;
    let next = TrackId::try_from(next)
        .ok()
        .filter(|n| (1..=MAX_ID.saturating_add(1)).contains(n))
        .ok_or_else(|| CmdError::Arg(format!("next id {next} is out of range")))?;
    let key = ctx.open_key_writable(key_name);
    let value = write_index(&key)?.ok_or(CmdError::NoSuchKey)?;
    value.set_next_id(next);
    ctx.replicate_verbatim();
    notify(ctx, "auscout.setnextid", key_name);
    Ok(RedisValue::SimpleStringStatic("OK"))
}

/// `auscout.del key id` → frames removed; the key goes with its last track.
pub fn del(ctx: &Context, argv: Vec<RedisString>) -> CmdResult {
    let [_, key_name, id] = argv.as_slice() else {
        return Err(CmdError::WrongArity);
    };
    let id = args::id(id)?;
    let key = ctx.open_key_writable(key_name);
    let value = write_index(&key)?.ok_or(CmdError::NoSuchKey)?;
    let frames = value.remove(id)?;
    let now_empty = value.index().track_count() == 0;
    notify(ctx, "auscout.del", key_name);
    if now_empty {
        // Like any empty Redis collection, an empty index does not linger.
        key.delete()
            .map_err(|e| CmdError::Internal(e.to_string()))?;
        ctx.notify_keyspace_event(NotifyEvent::GENERIC, "del", key_name);
    }
    ctx.replicate_verbatim();
    Ok(RedisValue::Integer(
        i64::try_from(frames).unwrap_or(i64::MAX),
    ))
}

/// `auscout.lookup key hasharray togglearray [threshold] [LIMIT n] [WITHSPEED]`
/// → `[[descr, id, position, score], …]` (`[…, score, speed]` with
/// `WITHSPEED`), best first; answered from a module thread when the client
/// can be blocked (see `offload`).
pub fn lookup(ctx: &Context, argv: Vec<RedisString>) -> CmdResult {
    let [_, key_name, hashes, toggles, rest @ ..] = argv.as_slice() else {
        return Err(CmdError::WrongArity);
    };
    let query = args::hashes(hashes)?;
    let toggles = args::toggles(toggles)?;
    let mut params = LookupParams {
        threshold: config::default_threshold(),
        limit: None,
        max_toggle_bits: config::max_toggle_bits(),
        threads: config::threads(),
        with_speed: false,
    };
    let mut rest = rest.iter();
    let mut first = true;
    while let Some(arg) = rest.next() {
        if args::is_keyword(arg, "LIMIT") {
            let n = rest.next().ok_or(CmdError::WrongArity)?;
            let n = args::unsigned(n, "LIMIT")?;
            if n == 0 {
                return Err(CmdError::Arg("LIMIT must be positive".into()));
            }
            params.limit = Some(usize::try_from(n).unwrap_or(usize::MAX));
        } else if args::is_keyword(arg, "WITHSPEED") {
            params.with_speed = true;
        } else if first {
            params.threshold = args::threshold(arg)?;
        } else {
            return Err(CmdError::Arg(format!(
                "unknown option '{}'",
                arg.to_string_lossy()
            )));
        }
        first = false;
    }

    args::check_query(&query, &toggles, params.max_toggle_bits)?;

    let key = ctx.open_key(key_name);
    let value = read_index(&key)?.ok_or(CmdError::NoSuchKey)?;
    offload::lookup(
        ctx,
        offload::Request {
            index: value.shared(),
            query,
            toggles,
            params,
        },
    )
}

/// Most frames one `auscout.hashes` reply carries: 16 MB of hashes (26 hours
/// of audio), so one call never builds an unbounded reply; a client pages
/// through longer tracks with `start`.
pub const HASHES_MAX_COUNT: u64 = 1 << 22;

/// `auscout.hashes key id [start [count]]` → `[frames, hasharray]`: the
/// track's frame count and its hashes from frame `start` (default 0), at most
/// `count` of them (default and cap [`HASHES_MAX_COUNT`]), in the wire
/// format; an empty string past the track's end. A monitor reads a matched
/// track's hashes once and follows it frame by frame on its side.
pub fn hashes(ctx: &Context, argv: Vec<RedisString>) -> CmdResult {
    let (key_name, id, start, count) = match argv.as_slice() {
        [_, key, id] => (key, id, None, None),
        [_, key, id, start] => (key, id, Some(start), None),
        [_, key, id, start, count] => (key, id, Some(start), Some(count)),
        _ => return Err(CmdError::WrongArity),
    };
    let id = args::id(id)?;
    let start = start.map_or(Ok(0), |s| args::unsigned(s, "start"))?;
    let count = count.map_or(Ok(HASHES_MAX_COUNT), |c| args::unsigned(c, "count"))?;
    let key = ctx.open_key(key_name);
    let value = read_index(&key)?.ok_or(CmdError::NoSuchKey)?;
    let index = value.index();
    let track = index
        .track(id)
        .ok_or(auscout_core::IndexError::NoSuchTrack(id))?;
    let frames = track.hashes.len();
    let from = usize::try_from(start).unwrap_or(usize::MAX).min(frames);
    let take = usize::try_from(count.min(HASHES_MAX_COUNT)).unwrap_or(usize::MAX);
    let to = from.saturating_add(take).min(frames);
    Ok(RedisValue::Array(vec![
        RedisValue::Integer(i64::try_from(frames).unwrap_or(i64::MAX)),
        RedisValue::StringBuffer(auscout_core::wire::encode_u32_be(&track.hashes[from..to])),
    ]))
}

/// `auscout.count key` → tracks (0 for a missing key).
pub fn count(ctx: &Context, argv: Vec<RedisString>) -> CmdResult {
    let [_, key_name] = argv.as_slice() else {
        return Err(CmdError::WrongArity);
    };
    let key = ctx.open_key(key_name);
    let n = read_index(&key)?.map_or(0, |v| v.index().track_count());
    Ok(RedisValue::Integer(i64::try_from(n).unwrap_or(i64::MAX)))
}

/// `auscout.size key` → frames (0 for a missing key).
pub fn size(ctx: &Context, argv: Vec<RedisString>) -> CmdResult {
    let [_, key_name] = argv.as_slice() else {
        return Err(CmdError::WrongArity);
    };
    let key = ctx.open_key(key_name);
    let n = read_index(&key)?.map_or(0, |v| v.index().frame_count());
    Ok(RedisValue::Integer(i64::try_from(n).unwrap_or(i64::MAX)))
}

/// `auscout.delkey key` → OK. Unlinks, so a big index is freed in the background.
pub fn delkey(ctx: &Context, argv: Vec<RedisString>) -> CmdResult {
    let [_, key_name] = argv.as_slice() else {
        return Err(CmdError::WrongArity);
    };
    let key = ctx.open_key_writable(key_name);
    any_index(&key)?.ok_or(CmdError::NoSuchKey)?;
    key.unlink()
        .map_err(|e| CmdError::Internal(e.to_string()))?;
    ctx.notify_keyspace_event(NotifyEvent::GENERIC, "del", key_name);
    ctx.replicate_verbatim();
    Ok(RedisValue::SimpleStringStatic("OK"))
}

/// `auscout.list key [cursor] [COUNT n]` → `[next_cursor, [[id, descr, frames], …]]`.
/// The cursor is the id to continue from; `"0"` starts and ends an iteration.
pub fn list(ctx: &Context, argv: Vec<RedisString>) -> CmdResult {
    let [_, key_name, rest @ ..] = argv.as_slice() else {
        return Err(CmdError::WrongArity);
    };
    let mut cursor = 0u64;
    let mut count = LIST_DEFAULT_COUNT;
    let mut rest = rest.iter();
    let mut first = true;
    while let Some(arg) = rest.next() {
        if args::is_keyword(arg, "COUNT") {
            let n = rest.next().ok_or(CmdError::WrongArity)?;
            count = args::unsigned(n, "COUNT")?;
            if !(1..=LIST_MAX_COUNT).contains(&count) {
                return Err(CmdError::Arg(format!(
                    "COUNT must be in 1..={LIST_MAX_COUNT}"
                )));
            }
        } else if first {
            cursor = args::unsigned(arg, "cursor")?;
        } else {
            return Err(CmdError::Arg(format!(
                "unknown option '{}'",
                arg.to_string_lossy()
            )));
        }
        first = false;
    }

    let key = ctx.open_key(key_name);
    let value = read_index(&key)?.ok_or(CmdError::NoSuchKey)?;
    let from = TrackId::try_from(cursor).unwrap_or(TrackId::MAX).max(1);
    let take = usize::try_from(count).unwrap_or(usize::MAX);
    let mut page = Vec::new();
    let mut next = 0;
    for (i, t) in value.index().tracks_from(from).enumerate() {
        if i == take {
            next = t.id;
            break;
        }
        page.push(RedisValue::Array(vec![
            RedisValue::Integer(t.id),
            RedisValue::StringBuffer(t.descr.to_vec()),
            RedisValue::Integer(i64::try_from(t.hashes.len()).unwrap_or(i64::MAX)),
        ]));
    }
    Ok(RedisValue::Array(vec![
        RedisValue::BulkString(next.to_string()),
        RedisValue::Array(page),
    ]))
}

/// `auscout.index key` → `[name, value, …]`: tracks, frames, distinct hashes,
/// postings, longest posting list, bytes, next id.
pub fn index(ctx: &Context, argv: Vec<RedisString>) -> CmdResult {
    let [_, key_name] = argv.as_slice() else {
        return Err(CmdError::WrongArity);
    };
    let key = ctx.open_key(key_name);
    let value = read_index(&key)?.ok_or(CmdError::NoSuchKey)?;
    let index = value.index();
    let s = index.stats();
    let next_id = index.next_id();
    drop(index);
    let int = |v: u64| RedisValue::Integer(i64::try_from(v).unwrap_or(i64::MAX));
    let field = |name: &str| RedisValue::SimpleString(name.to_owned());
    Ok(RedisValue::Array(vec![
        field("tracks"),
        int(s.tracks),
        field("frames"),
        int(s.frames),
        field("distinct_hashes"),
        int(s.distinct_hashes),
        field("postings"),
        int(s.postings),
        field("longest_posting"),
        int(s.longest_posting),
        field("bytes"),
        int(s.bytes),
        field("next_id"),
        RedisValue::Integer(next_id),
    ]))
}

/// `auscout.importdescr key` → descriptions imported. Pulls the C++ module's
/// side keys into the index: for every track, the hash `<key>:<id>` field
/// `descr` becomes the track's description and the side key is deleted; the
/// id counter `<key>:counter` is deleted too. Replicated verbatim (replicas
/// hold the same side keys).
pub fn importdescr(ctx: &Context, argv: Vec<RedisString>) -> CmdResult {
    let [_, key_name] = argv.as_slice() else {
        return Err(CmdError::WrongArity);
    };
    let key = ctx.open_key_writable(key_name);
    let value = write_index(&key)?.ok_or(CmdError::NoSuchKey)?;
    let ids: Vec<TrackId> = value.index().tracks_from(1).map(|t| t.id).collect();
    let side_name = |suffix: &str| {
        let mut name = key_name.as_slice().to_vec();
        name.push(b':');
        name.extend_from_slice(suffix.as_bytes());
        ctx.create_string(name)
    };
    let mut imported = 0i64;
    let mut changed = false;
    for id in ids {
        let name = side_name(&id.to_string());
        let side = ctx.open_key_writable(&name);
        if side.key_type() != KeyType::Hash {
            continue;
        }
        if let Ok(Some(descr)) = side.hash_get("descr") {
            value.set_descr(id, descr.as_slice())?;
            imported += 1;
        }
        side.delete()
            .map_err(|e| CmdError::Internal(e.to_string()))?;
        ctx.notify_keyspace_event(NotifyEvent::GENERIC, "del", &name);
        changed = true;
    }
    let counter = side_name("counter");
    let counter_key = ctx.open_key_writable(&counter);
    if counter_key.key_type() == KeyType::String {
        counter_key
            .delete()
            .map_err(|e| CmdError::Internal(e.to_string()))?;
        ctx.notify_keyspace_event(NotifyEvent::GENERIC, "del", &counter);
        changed = true;
    }
    if changed {
        notify(ctx, "auscout.importdescr", key_name);
        ctx.replicate_verbatim();
    }
    Ok(RedisValue::Integer(imported))
}
