//! The engine's pool: a few threads that one lookup can spread its probes and
//! verifications over (`LookupParams::threads`), and one insert its postings
//! ([`set_insert_threads`]).
//!
//! Both are streams of independent cache misses, and one core keeps only so
//! many in flight; a second core doubles that. The pool is the engine's own,
//! not rayon's global one, so the host process (Redis) keeps control of how
//! many threads exist: it is created on first use with one thread per core
//! but one (at least 1, at most [`MAX_THREADS`]), since the calling thread
//! always does a share too, and lives as long as the process. With a thread
//! per core, on the benches' 2-core VM, an idle pool thread looking for
//! work competed with the two working ones; with one thread fewer, server
//! lookups and adds at 40M frames ran faster or the same in interleaved
//! runs (see the README).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// More threads than this never help a lookup of a few thousand probes.
pub const MAX_THREADS: usize = 8;

/// The cores this process may use (affinity and cgroup quota included),
/// read once.
fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let n = cores().saturating_sub(1).clamp(1, MAX_THREADS);
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("auscout-pool-{i}"))
            .build()
            .ok()
    })
    .as_ref()
}

static INSERT_THREADS: AtomicUsize = AtomicUsize::new(1);

/// Threads an insert may use to place its postings (1, the default, keeps
/// inserts on the calling thread).
pub fn set_insert_threads(n: usize) {
    INSERT_THREADS.store(n.clamp(1, MAX_THREADS), Ordering::Relaxed);
}

pub(crate) fn insert_threads() -> usize {
    INSERT_THREADS.load(Ordering::Relaxed)
}

/// Runs `a` on the calling thread while a pool thread runs `b` (one after
/// the other when the pool cannot be created).
///
/// The caller works too instead of handing everything over and sleeping:
/// that saves a thread hand-off per call, which matters for commands of a
/// millisecond.
pub(crate) fn join<A: FnOnce() + Send, B: FnOnce() + Send>(a: A, b: B) {
    match pool() {
        Some(p) => {
            let pending = AtomicUsize::new(1);
            p.in_place_scope(|s| {
                s.spawn(|_| {
                    b();
                    pending.fetch_sub(1, Ordering::Release);
                });
                a();
                wait_briefly(&pending);
            })
        }
        None => {
            a();
            b();
        }
    }
}

/// `f` over `items`, results in order: the first item on the calling thread,
/// the others on the pool (all on the calling thread when the pool cannot be
/// created).
pub(crate) fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let Some(p) = pool() else {
        return items.iter().map(f).collect();
    };
    let mut out: Vec<Option<R>> = items.iter().map(|_| None).collect();
    let f = &f;
    let pending = AtomicUsize::new(items.len().saturating_sub(1));
    let pending = &pending;
    p.in_place_scope(|s| {
        let mut slots = out.iter_mut().zip(items);
        let first = slots.next();
        for (slot, item) in slots {
            s.spawn(move |_| {
                *slot = Some(f(item));
                pending.fetch_sub(1, Ordering::Release);
            });
        }
        if let Some((slot, item)) = first {
            *slot = Some(f(item));
        }
        wait_briefly(pending);
    });
    out.into_iter().flatten().collect()
}

/// Waits (spinning) until `pending` reaches 0, for at most `SPIN_LIMIT`.
///
/// The caller has done its own share. Left to the scope, it would go to
/// sleep on the scope's latch when the pool's share is not done yet, and
/// waking it again costs about what a pool thread's start on an idle core
/// does (tens of microseconds on the benches' VM). Spinning instead made
/// two-thread lookups of 1,000 frames at 40M frames 4–8 % faster in
/// process (A/B alternating per query; one-thread lookups and inserts
/// unchanged). The core spun on is the caller's own, idle otherwise, and
/// spinning only happens when the process may use two cores or more: on
/// one core it would take the time of the very thread it waits for. The
/// limit is short because the pool's share can itself be waiting for a
/// core: spinning up to 2 ms put the server's lookup p99 at 3.0–4.2 ms
/// (1.4–2.5 before); at 200 µs it stayed at 1.1–2.3 ms.
fn wait_briefly(pending: &AtomicUsize) {
    const SPIN_LIMIT: Duration = Duration::from_micros(200);
    if cores() < 2 {
        return;
    }
    let start = Instant::now();
    let mut k = 0u32;
    while pending.load(Ordering::Acquire) > 0 {
        std::hint::spin_loop();
        k = k.wrapping_add(1);
        if k.is_multiple_of(256) && start.elapsed() > SPIN_LIMIT {
            return;
        }
    }
}
