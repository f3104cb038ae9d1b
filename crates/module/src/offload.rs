//! Lookups answered from module threads, so the main thread keeps serving
//! other clients (a `PING`, an `auscout.add`) while lookups run.
//!
//! With `auscout.threads` ≥ 2, `auscout.lookup` parses and checks its
//! arguments on the main thread, blocks the client
//! (`RedisModule_BlockClient`), and hands the lookup to the engine's pool:
//! a module thread takes the index's read lock, looks up, copies the
//! answer out, and unblocks the client; the main thread then writes the
//! reply. The answer is exactly what the lookup gives inline: the same
//! engine runs on one state of the index, held by the read lock for the
//! whole lookup (writes wait for it on the main thread). The lookup holds its
//! own handle on the index, so a key deleted, renamed, overwritten or flushed
//! meanwhile is freed only after it.
//!
//! A client that cannot be blocked — inside `MULTI`/`EXEC` or a Lua script,
//! the replication stream, a module's `RM_Call`, while loading — gets its
//! lookup inline, as does every lookup with `auscout.threads 1`.
//!
//! A small lookup (at most [`HERE_MAX_PROBES`] probes) that arrives while
//! the server is idle — none answered on a module thread is under way, and
//! the main thread spent at most half of its time since its last inline
//! lookup on that lookup — is answered on the main thread too, with idle module threads helping with its probes
//! and verifications as they would on a module thread. A module thread
//! woken for a lookup that arrives after a pause starts cold (asleep, at
//! a lower priority, its caches elsewhere) and made such lookups slower
//! than `auscout.threads 1`; the main thread has just read the request.
//! Under a flood of lookups the rule sends all but about one in two
//! (at most) to module threads, so other clients wait for at most one
//! lookup.

#![allow(unsafe_code)]

use std::cell::Cell;
use std::os::raw::{c_int, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use auscout_core::matcher::{self, FrameSource};
use auscout_core::{Index, LookupParams, TrackId};
use redis_module::{raw, Context, ContextFlags, RedisValue};

use crate::error::CmdError;
use crate::guard::panic_message;
use crate::value::{self, SharedIndex};
use crate::{config, dropper, stats};

/// Niceness of the module's threads above the server's: the main thread
/// serves every other client (a `PING`, an `auscout.add`) and must not wait
/// for a core behind lookups. With 16 clients looking up flat out on 2
/// cores, `PING` p99 went from 8 ms at equal priority to 1.0–1.4 ms at +10.
pub const THREAD_NICENESS: i32 = 10;

/// One match, copied out of the index so the reply needs no lock.
struct Found {
    descr: Vec<u8>,
    id: i64,
    position: i64,
    score: f64,
    /// Fitted when the lookup asked for it (`WITHSPEED`).
    speed: Option<f64>,
}

type Answer = Result<Vec<Found>, CmdError>;

/// A lookup to answer: the index and the parsed arguments.
pub struct Request {
    pub index: SharedIndex,
    pub query: Vec<u32>,
    pub toggles: Vec<u32>,
    pub params: LookupParams,
}

/// Looks up and copies the answer out (counted in `INFO auscout`).
fn answer(index: &Index, r: &Request) -> Answer {
    answer_from(index, index, r)
}

/// [`answer`] with the postings reached through `src`.
fn answer_from(src: &(dyn FrameSource + Sync), index: &Index, r: &Request) -> Answer {
    let started = Instant::now();
    let matches = matcher::lookup(src, &r.query, &r.toggles, &r.params)?;
    stats::lookup_served(u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX));
    Ok(matches
        .into_iter()
        .map(|m| Found {
            descr: index.track(m.id).map_or(Vec::new(), |t| t.descr.to_vec()),
            id: m.id,
            position: m.position,
            score: m.score,
            speed: m.speed,
        })
        .collect())
}

/// `[[descr, id, position, score], …]`, each match with its `speed` after
/// the score when the lookup asked for it.
fn reply(answer: Answer) -> Result<RedisValue, CmdError> {
    Ok(RedisValue::Array(
        answer?
            .into_iter()
            .map(|m| {
                let mut fields = vec![
                    RedisValue::StringBuffer(m.descr),
                    RedisValue::Integer(m.id),
                    RedisValue::Integer(m.position),
                    RedisValue::Float(m.score),
                ];
                fields.extend(m.speed.map(RedisValue::Float));
                RedisValue::Array(fields)
            })
            .collect(),
    ))
}

/// Whether this call must answer before it returns.
fn must_run_inline(ctx: &Context) -> bool {
    let cannot_block = ContextFlags::MULTI
        | ContextFlags::LUA
        | ContextFlags::REPLICATED
        | ContextFlags::LOADING
        | ContextFlags::DENY_BLOCKING;
    config::threads() < 2 || ctx.get_flags().intersects(cannot_block)
}

/// Lookups handed to module threads and not answered yet.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// When the main thread (the only one calling [`lookup`]) last
    /// finished a lookup of its own, and how long that one took.
    static LAST_HERE: Cell<Option<(Instant, Duration)>> = const { Cell::new(None) };
}

/// The most probes of a lookup the main thread answers itself when idle:
/// a 1,000-frame query at 5 toggle bits per frame, about 1 ms at 40M
/// frames on one core, so a client arriving meanwhile waits no longer.
pub const HERE_MAX_PROBES: usize = 1 << 15;

/// Whether the main thread answers `request` itself: it is small and the
/// server idle (see the module's documentation).
fn answer_here_when_idle(request: &Request) -> bool {
    let probes = request.toggles.iter().try_fold(0usize, |n, t| {
        n.checked_add(1usize << t.count_ones())
            .filter(|&n| n <= HERE_MAX_PROBES)
    });
    probes.is_some()
        && IN_FLIGHT.load(Ordering::Acquire) == 0
        && LAST_HERE.with(|last| {
            last.get()
                .is_none_or(|(ended, took)| ended.elapsed() >= took)
        })
}

/// Answers on the main thread, remembering how long that took.
fn answer_here(request: &Request) -> Result<RedisValue, CmdError> {
    let started = Instant::now();
    let answer = answer(&value::read(&request.index), request);
    LAST_HERE.with(|last| last.set(Some((Instant::now(), started.elapsed()))));
    reply(answer)
}

/// `auscout.lookup` after its arguments were checked: answers inline, or
/// blocks the client and answers from a module thread (the reply is then
/// written by [`reply_blocked`]).
pub fn lookup(ctx: &Context, request: Request) -> Result<RedisValue, CmdError> {
    if must_run_inline(ctx) {
        let index = value::read(&request.index);
        return reply(answer(&index, &request));
    }
    if answer_here_when_idle(&request) {
        return answer_here(&request);
    }
    let (Some(block), Some(unblock)) = (
        // SAFETY: reading function pointers Redis filled in at module load.
        unsafe { raw::RedisModule_BlockClient },
        // SAFETY: as above.
        unsafe { raw::RedisModule_UnblockClient },
    ) else {
        let index = value::read(&request.index);
        return reply(answer(&index, &request));
    };
    // SAFETY: a command context of the main thread, callbacks with the
    // signatures Redis expects; no timeout.
    let bc = unsafe { block(ctx.ctx, Some(reply_blocked), None, Some(free_answer), 0) };
    if bc.is_null() {
        let index = value::read(&request.index);
        return reply(answer(&index, &request));
    }
    let blocked = Blocked(bc);
    IN_FLIGHT.fetch_add(1, Ordering::AcqRel);
    let job = Box::new(move || {
        let blocked = blocked;
        measure(&blocked, true);
        let result = catch_unwind(AssertUnwindSafe(|| answer_giving_way(&request)))
            .unwrap_or_else(|p| Err(CmdError::Internal(panic_message(p.as_ref()))));
        measure(&blocked, false);
        dropper::release(request.index);
        let privdata = Box::into_raw(Box::new(Some(result))).cast::<c_void>();
        IN_FLIGHT.fetch_sub(1, Ordering::AcqRel);
        // SAFETY: `bc` came from RedisModule_BlockClient and is unblocked
        // exactly once, here; Redis then owns `privdata` and hands it to
        // `reply_blocked` and `free_answer` on the main thread.
        unsafe { unblock(blocked.0, privdata) };
    });
    if let Err(job) = auscout_core::pool::spawn(job) {
        // No pool thread could be started: answer here (the client is
        // blocked already; the reply goes out when this command returns).
        job();
    }
    Ok(RedisValue::NoReply)
}

/// Times a lookup gives way to writes before it runs to its end regardless
/// (a stream of writes must not starve it).
const GIVE_WAY_AT_MOST: u32 = 3;

/// Answers on a module thread, giving way to writes: when a write waits for
/// the index, the lookup stops probing (what is left of it costs little),
/// lets go of the read lock, and starts again once the write is done, so the
/// write waits for a batch of probes instead of whole lookups. The answer is
/// that of one state of the index either way.
fn answer_giving_way(r: &Request) -> Answer {
    for _ in 0..GIVE_WAY_AT_MOST {
        let index = value::read(&r.index);
        let src = GivingWay {
            index: &index,
            lock: &r.index,
            gave_way: AtomicBool::new(false),
        };
        let answer = answer_from(&src, &index, r);
        if !src.gave_way.load(Ordering::Relaxed) {
            return answer;
        }
    }
    answer(&value::read(&r.index), r)
}

/// The index as a lookup's frame source that finds nothing once a write
/// waits (and remembers that it did).
struct GivingWay<'a> {
    index: &'a Index,
    lock: &'a value::Locked,
    gave_way: AtomicBool,
}

impl FrameSource for GivingWay<'_> {
    fn probe(&self, probes: &[u32], hit: &mut dyn FnMut(usize, u32, u32)) {
        if self.gave_way.load(Ordering::Relaxed) || self.lock.writer_waiting() {
            self.gave_way.store(true, Ordering::Relaxed);
            return;
        }
        FrameSource::probe(self.index, probes, hit);
    }

    fn hashes(&self, slot: u32) -> &[u32] {
        self.index.slot_hashes(slot)
    }

    fn id(&self, slot: u32) -> TrackId {
        self.index.slot_id(slot)
    }
}

/// A blocked client's handle, moved to the module thread that unblocks it.
struct Blocked(*mut raw::RedisModuleBlockedClient);

// SAFETY: Redis allows a blocked client's handle to be used from any thread
// for RM_UnblockClient and the time measurement calls, the only uses here.
unsafe impl Send for Blocked {}

/// Counts the module thread's time in the command's `SLOWLOG` and
/// `INFO commandstats` figures.
fn measure(b: &Blocked, start: bool) {
    // SAFETY: reading function pointers Redis filled in at module load; the
    // handle is live until it is unblocked.
    unsafe {
        let f = if start {
            raw::RedisModule_BlockedClientMeasureTimeStart
        } else {
            raw::RedisModule_BlockedClientMeasureTimeEnd
        };
        if let Some(f) = f {
            f(b.0);
        }
    }
}

type Slot = Option<Answer>;

/// Writes the reply of a lookup answered on a module thread (main thread).
unsafe extern "C" fn reply_blocked(
    ctx: *mut raw::RedisModuleCtx,
    _argv: *mut *mut raw::RedisModuleString,
    _argc: c_int,
) -> c_int {
    crate::guard::callback("lookup reply", raw::REDISMODULE_OK as c_int, || {
        let ctx = Context::new(ctx);
        // SAFETY: reading a function pointer Redis filled in at module load.
        let privdata = unsafe { raw::RedisModule_GetBlockedClientPrivateData }
            // SAFETY: `ctx` is the reply context Redis passes.
            .map_or(std::ptr::null_mut(), |get| unsafe { get(ctx.ctx) });
        // SAFETY: the privdata of our blocked clients is a `Box<Slot>`
        // (made in `lookup`), freed only by `free_answer` after this call.
        let slot = unsafe { privdata.cast::<Slot>().as_mut() };
        let answer = slot
            .and_then(Option::take)
            .unwrap_or_else(|| Err(CmdError::Internal("lookup answer missing".into())));
        ctx.reply(reply(answer).map_err(CmdError::into_redis));
        raw::REDISMODULE_OK as c_int
    })
}

/// Frees a blocked lookup's answer (after the reply, or unreplied when the
/// client went away).
unsafe extern "C" fn free_answer(_ctx: *mut raw::RedisModuleCtx, privdata: *mut c_void) {
    crate::guard::callback("lookup free", (), || {
        if !privdata.is_null() {
            // SAFETY: made by `Box::into_raw` in `lookup`; Redis frees it once.
            drop(unsafe { Box::from_raw(privdata.cast::<Slot>()) });
        }
    })
}
