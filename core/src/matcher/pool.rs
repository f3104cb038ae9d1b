//! The lookup pool: a few threads that a single lookup can spread its probes
//! and verifications over (`LookupParams::threads`).
//!
//! A probe is a handful of cache misses, so one core keeps only so many in
//! flight; a second core doubles that. The pool is the engine's own, not
//! rayon's global one, so the host process (Redis) keeps control of how many
//! threads exist: it is created on the first parallel lookup with one thread
//! per core (at most [`MAX_THREADS`]) and lives as long as the process.

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

/// `f` over `items` on the pool, results in order; on the calling thread
/// when the pool cannot be created.
pub(super) fn map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    match pool() {
        Some(p) => p.install(|| items.par_iter().map(&f).collect()),
        None => items.iter().map(f).collect(),
    }
}
