//! The engine's pool: a few threads that one lookup can spread its probes and
//! verifications over (`LookupParams::threads`), and one insert its postings
//! ([`set_insert_threads`]).
//!
//! Both are streams of independent cache misses, and one core keeps only so
//! many in flight; a second core doubles that. The pool is the engine's own,
//! not rayon's global one, so the host process (Redis) keeps control of how
//! many threads exist: it is created on first use with one thread per core
//! (at most [`MAX_THREADS`]) and lives as long as the process.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use rayon::prelude::*;

/// More threads than this never help a lookup of a few thousand probes.
pub const MAX_THREADS: usize = 8;

fn pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let n = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(MAX_THREADS);
        rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .thread_name(|i| format!("auscout-lookup-{i}"))
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

/// Runs `a` and `b` at once on the pool (one after the other when the pool
/// cannot be created).
pub(crate) fn join<A: FnOnce() + Send, B: FnOnce() + Send>(a: A, b: B) {
    match pool() {
        Some(p) => {
            p.install(|| rayon::join(a, b));
        }
        None => {
            a();
            b();
        }
    }
}

/// `f` over `items` on the pool, results in order; on the calling thread
/// when the pool cannot be created.
pub(crate) fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    match pool() {
        Some(p) => p.install(|| items.par_iter().map(&f).collect()),
        None => items.iter().map(f).collect(),
    }
}
