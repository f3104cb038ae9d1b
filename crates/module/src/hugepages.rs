//! Keeps the indexes on transparent huge pages: a background thread asks
//! the kernel to collapse an index's memory into huge pages once writes
//! have stopped for a moment (see `auscout_core::hugepages` for why and
//! how; measured at 40M frames, 20–30 % of the resident index was on huge
//! pages right after a build, and lookups took up to a third longer than
//! on a settled server).
//!
//! Every write and every new index tells [`written`]. The thread waits for
//! writes to stop for [`QUIET`], then for each index still alive takes its
//! read lock just long enough to list its heap blocks, lets go, and
//! collapses the regions they cover one by one, stopping when a write
//! comes. It passes again every second or two for the next 12 s, then at
//! 20 and 30 s (the allocator purges what the last writes freed over the
//! following seconds, splitting pages anew); a region already on a huge
//! page costs one system call. From the pass after 1 s of quiet on, it
//! first has the allocator purge at once what it would purge over those
//! seconds ([`purge_allocator`]), so that what the pass collapses stays
//! collapsed. It never holds the lock while the kernel copies, never runs
//! on Redis's main thread, and allocates nothing in the index's name:
//! `used_memory` and `MEMORY USAGE` stay what they were.
//!
//! No pass runs while Redis has a child process (an RDB save, an AOF
//! rewrite): a collapse copies pages the child still shares, which would
//! cost their memory twice until it exits.
//!
//! `auscout.hugepages no` turns it off. With THP `never`, on kernels
//! before 6.1, or when Redis disabled THP for itself (`disable-thp` on
//! hosts with THP `always`), nothing is done.

#![allow(unsafe_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use auscout_core::hugepages;
use redis_module::{raw, ContextFlags, ThreadSafeContext};

use crate::config;
use crate::value::{self, Locked, SharedIndex};

/// Quiet after the last write before each pass: the first collapses what
/// the writes left, the later ones what the allocator's purging split since
/// (jemalloc purges freed memory over 10 s by default, a little at a time,
/// so passes follow every second or two through that time). A pass that
/// finds every region on huge pages costs about a system call per 2 MB.
const QUIET: [Duration; 10] = [
    Duration::from_millis(250),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(6),
    Duration::from_secs(8),
    Duration::from_secs(10),
    Duration::from_secs(12),
    Duration::from_secs(20),
    Duration::from_secs(30),
];

/// The first pass preceded by a purge of the allocator (one after 1 s of
/// quiet). A purge holds the allocator's arenas for a moment, which other
/// clients wait for; from 1 s of quiet on, a steady trickle of writes (an
/// add every second) never triggers one, while after a build it makes the
/// collapse stick at once.
const PURGE_FROM_PASS: usize = 1;

/// How long to wait before trying again while Redis has a child process.
const CHILD_RETRY: Duration = Duration::from_secs(1);

/// Writes so far (a pass stops when this moves).
static WRITES: AtomicU64 = AtomicU64::new(0);

struct State {
    /// Every live index written or made since the module loaded, by the
    /// address of its lock.
    indexes: HashMap<usize, Weak<Locked>>,
    last_write: Option<Instant>,
    /// Passes done since the last write.
    passes: usize,
}

struct Keeper {
    state: Mutex<State>,
    wake: Condvar,
}

/// The keeper, its thread started on first use; `None` where huge pages
/// are off or the thread could not start.
fn keeper() -> Option<&'static Arc<Keeper>> {
    static KEEPER: OnceLock<Option<Arc<Keeper>>> = OnceLock::new();
    KEEPER
        .get_or_init(|| {
            let page = hugepages::huge_page_size()?;
            if !hugepages::collapse_supported(page) {
                return None;
            }
            let keeper = Arc::new(Keeper {
                state: Mutex::new(State {
                    indexes: HashMap::new(),
                    last_write: None,
                    passes: QUIET.len(),
                }),
                wake: Condvar::new(),
            });
            let k = Arc::clone(&keeper);
            std::thread::Builder::new()
                .name("auscout-thp".into())
                .spawn(move || run(&k, page))
                .ok()?;
            Some(keeper)
        })
        .as_ref()
}

/// Called for every write to `index` and every new index (main thread,
/// or the thread loading an RDB): a lock and a map insert.
pub fn written(index: &SharedIndex) {
    if !config::hugepages() {
        return;
    }
    let Some(keeper) = keeper() else { return };
    WRITES.fetch_add(1, Ordering::Relaxed);
    let mut state = keeper.state.lock().unwrap_or_else(|e| e.into_inner());
    state
        .indexes
        .entry(Arc::as_ptr(index) as usize)
        .or_insert_with(|| Arc::downgrade(index));
    state.last_write = Some(Instant::now());
    state.passes = 0;
    drop(state);
    keeper.wake.notify_one();
}

/// Called when a key lets go of its index (the index itself is freed
/// once the lookups holding it are done).
pub fn dropped(index: &SharedIndex) {
    let Some(keeper) = keeper() else { return };
    let mut state = keeper.state.lock().unwrap_or_else(|e| e.into_inner());
    state.indexes.remove(&(Arc::as_ptr(index) as usize));
}

/// Whether Redis has a child process (asks on the main thread's lock).
fn child_active(ts: &ThreadSafeContext<redis_module::DetachedFromClient>) -> bool {
    ts.lock().get_flags().contains(ContextFlags::ACTIVE_CHILD)
}

/// The keeper's thread: waits for the next pass to be due, then runs it.
fn run(keeper: &Keeper, page: usize) {
    auscout_core::pool::lower_priority();
    // SAFETY: reading a function pointer Redis filled in at module load
    // (absent only outside a server: the module's unit tests).
    if unsafe { raw::RedisModule_GetThreadSafeContext }.is_none() {
        return;
    }
    let ts = ThreadSafeContext::new();
    loop {
        let (due_pass, indexes) = {
            let mut state = keeper.state.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                let due = match (state.last_write, QUIET.get(state.passes)) {
                    (Some(at), Some(&quiet)) => at + quiet,
                    _ => {
                        state = keeper.wake.wait(state).unwrap_or_else(|e| e.into_inner());
                        continue;
                    }
                };
                let now = Instant::now();
                if now >= due {
                    break;
                }
                state = keeper
                    .wake
                    .wait_timeout(state, due - now)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            state.indexes.retain(|_, weak| weak.strong_count() > 0);
            (
                state.passes,
                state.indexes.values().cloned().collect::<Vec<_>>(),
            )
        };
        if !config::hugepages() {
            // Turned off: no more passes until a write while it is on.
            let mut state = keeper.state.lock().unwrap_or_else(|e| e.into_inner());
            state.passes = QUIET.len();
            continue;
        }
        if child_active(&ts) {
            std::thread::sleep(CHILD_RETRY);
            continue;
        }
        let writes = WRITES.load(Ordering::Relaxed);
        if due_pass >= PURGE_FROM_PASS {
            purge_allocator();
        }
        match pass(&indexes, page, writes) {
            Pass::Done => {
                let mut state = keeper.state.lock().unwrap_or_else(|e| e.into_inner());
                if WRITES.load(Ordering::Relaxed) == writes {
                    state.passes += 1;
                }
            }
            // A write came: the next pass is due after quiet again.
            Pass::Interrupted => {}
        }
    }
}

enum Pass {
    Done,
    Interrupted,
}

/// `mallctl` of jemalloc: name, old value, its length, new value, its length.
type Mallctl = unsafe extern "C" fn(
    *const libc::c_char,
    *mut libc::c_void,
    *mut usize,
    *mut libc::c_void,
    usize,
) -> libc::c_int;

/// Has Redis's allocator hand the memory freed so far back to the kernel
/// now instead of over its decay time (jemalloc: about 10 s, a little at a
/// time), so that a pass collapses pages that no later purge splits.
/// jemalloc is reached as `mallctl` (a system jemalloc, as Debian's Redis
/// links) or `je_mallctl` (the copy Redis bundles); with neither (Redis
/// built on libc malloc), nothing is done.
fn purge_allocator() {
    static MALLCTL: OnceLock<Option<Mallctl>> = OnceLock::new();
    let mallctl = MALLCTL.get_or_init(|| {
        [c"je_mallctl", c"mallctl"].iter().find_map(|name| {
            // SAFETY: dlsym only looks the name up in the loaded objects.
            let f = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
            // SAFETY: a `mallctl` exported by jemalloc has this signature
            // (its stable API since 3.0).
            (!f.is_null()).then(|| unsafe { std::mem::transmute::<*mut libc::c_void, Mallctl>(f) })
        })
    });
    if let Some(mallctl) = mallctl {
        // SAFETY: "arena.<MALLCTL_ARENAS_ALL>.purge" takes and returns no
        // value; jemalloc is thread-safe, and a purge only returns unused
        // pages to the kernel.
        unsafe {
            mallctl(
                c"arena.4096.purge".as_ptr(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                0,
            );
        }
    }
}

/// Collapses the regions of `indexes` while no write comes after `writes`.
fn pass(indexes: &[Weak<Locked>], page: usize, writes: u64) -> Pass {
    for weak in indexes {
        let mut blocks = Vec::new();
        if let Some(index) = weak.upgrade() {
            value::read(&index).heap_blocks(&mut |at, bytes| blocks.push((at, bytes)));
        }
        // Lock and index dropped: a key deleted meanwhile is freed as usual,
        // and collapsing its memory after that is harmless (see `collapse`).
        for region in hugepages::regions(&mut blocks, page) {
            if WRITES.load(Ordering::Relaxed) != writes {
                return Pass::Interrupted;
            }
            hugepages::collapse(region, page);
        }
    }
    Pass::Done
}
