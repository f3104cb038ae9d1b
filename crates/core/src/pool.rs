//! The engine's threads: a small pool that runs whole jobs handed to it
//! ([`spawn`]: the Redis module's lookups) and helps with the parts of one
//! command that the calling thread splits off ([`map`], [`join`]: a lookup's
//! probes and verifications, an insert's postings).
//!
//! Splitting is *optional participation*: the caller publishes a section of
//! numbered items and starts working through them itself; an idle pool
//! thread that comes along claims items too, one at a time from the same
//! counter. A caller never waits for a pool thread to *start* — when none is
//! free (all busy with other jobs, or still waking up), the caller simply does
//! every item, so a split command is never slower than on one thread by more
//! than the cost of publishing (a lock and a few atomics). It waits only for
//! items a helper has already claimed. Under load, each pool thread works on
//! its own job and sections get no helpers; on an idle server a lookup gets
//! both cores.
//!
//! An idle pool thread spins for [`SPIN`] before it sleeps, so that work
//! arriving back to back does not pay a wake-up each time; a sleeping one is
//! woken when a job or a section arrives and no other thread is spinning.
//! With [`set_poll`], one idle thread at a time — the *poller* — then keeps
//! looking for work for that long after its last work, yielding its core at
//! every turn, before it sleeps too. A thread that slept resumes on a core
//! the host may have given to other work meanwhile (cold caches and TLB; on
//! a VM, a halted vCPU), which makes a lookup that follows a pause slower.
//! The poller costs up to one core while work arrives more often than the
//! poll period, so it is off by default (the trade-off is measured in
//! `docs/performance.md`). It yields to every other runnable thread, so it
//! delays none.
//!
//! The pool is the engine's own, not rayon's global one, so the host process
//! (Redis) keeps control of how many threads exist: threads are started when
//! first needed, at most [`MAX_THREADS`], and live as long as the process.

#![allow(unsafe_code)]

use std::any::Any;
use std::collections::VecDeque;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::Thread;
use std::time::{Duration, Instant};

/// More threads than this never help a lookup of a few thousand probes.
pub const MAX_THREADS: usize = 8;

/// How long an idle pool thread looks for work before it sleeps.
const SPIN: Duration = Duration::from_micros(100);
/// How long a caller whose items are done spins for a helper's last item
/// before it sleeps until the helper wakes it.
const WAIT_SPIN: Duration = Duration::from_micros(200);

/// The cores this process may use (affinity and cgroup quota included),
/// read once.
pub fn cores() -> usize {
    static CORES: OnceLock<usize> = OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

static INSERT_THREADS: AtomicUsize = AtomicUsize::new(1);
/// The poll period unless [`set_poll`] says otherwise: none.
pub const DEFAULT_POLL: Duration = Duration::ZERO;
/// How long the poller looks for work after its last (microseconds).
static POLL_US: AtomicU64 = AtomicU64::new(DEFAULT_POLL.as_micros() as u64);

/// How long one idle pool thread keeps looking for work after its last
/// before it sleeps (zero: every idle thread sleeps after [`SPIN`]).
pub fn set_poll(period: Duration) {
    POLL_US.store(
        u64::try_from(period.as_micros()).unwrap_or(u64::MAX),
        Ordering::Relaxed,
    );
}

fn poll_period() -> Duration {
    Duration::from_micros(POLL_US.load(Ordering::Relaxed))
}
static NICENESS: AtomicI32 = AtomicI32::new(0);

/// Pool threads started from now on run at the process's niceness plus
/// `delta` (Linux: per-thread `setpriority`; raising it needs privileges,
/// lowering does not). Call it before the pool's first use.
pub fn set_thread_niceness(delta: i32) {
    NICENESS.store(delta, Ordering::Relaxed);
}

/// Applies [`set_thread_niceness`] to the calling thread (each new pool
/// thread; the host's own background threads may call it too).
pub fn lower_priority() {
    let delta = NICENESS.load(Ordering::Relaxed);
    if delta == 0 {
        return;
    }
    // SAFETY: plain system calls about the calling thread; a failure leaves
    // its priority as it was.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        let now = libc::getpriority(libc::PRIO_PROCESS, tid);
        libc::setpriority(libc::PRIO_PROCESS, tid, now.saturating_add(delta));
    }
}
static JOB_THREADS: AtomicUsize = AtomicUsize::new(2);

/// Threads an insert may use to place its postings (1, the default, keeps
/// inserts on the calling thread).
pub fn set_insert_threads(n: usize) {
    INSERT_THREADS.store(n.clamp(1, MAX_THREADS), Ordering::Relaxed);
}

pub(crate) fn insert_threads() -> usize {
    INSERT_THREADS.load(Ordering::Relaxed)
}

/// How many jobs of [`spawn`] may run at once (one pool thread each; 2 by
/// default). Threads are started as jobs need them.
pub fn set_job_threads(n: usize) {
    JOB_THREADS.store(n.clamp(1, MAX_THREADS), Ordering::Relaxed);
    let p = pool();
    p.lock().jobs_allowed = n.clamp(1, MAX_THREADS);
    p.wake.notify_all();
}

pub type Job = Box<dyn FnOnce() + Send + 'static>;

/// A published section, its lifetime erased (see [`Section`]).
#[derive(Clone, Copy, PartialEq, Eq)]
struct SectionPtr(*const Section<'static>);

// SAFETY: a `SectionPtr` is only dereferenced while its section is published
// or has registered helpers, and `Section` is `Sync` (atomics, a mutex and a
// `Sync` closure); the owner keeps it alive until neither holds.
unsafe impl Send for SectionPtr {}

struct State {
    jobs: VecDeque<Job>,
    sections: Vec<SectionPtr>,
    threads: usize,
    running_jobs: usize,
    jobs_allowed: usize,
    sleeping: usize,
}

struct Pool {
    state: Mutex<State>,
    wake: Condvar,
    /// Bumped whenever work arrives, so spinning threads notice without the lock.
    epoch: AtomicUsize,
    spinning: AtomicUsize,
    /// Whether a thread is polling (see the module's documentation).
    polling: AtomicBool,
}

impl Pool {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a thread panicked while holding it; the
        // state itself is always left consistent (plain pushes and counts).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Tells an idle thread that work arrived: a spinning one sees the
    /// epoch; otherwise one sleeping thread is woken. Called with the lock held.
    fn announce(&self, st: &State, all: bool) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        if st.sleeping > 0 && self.spinning.load(Ordering::SeqCst) == 0 {
            if all {
                self.wake.notify_all();
            } else {
                self.wake.notify_one();
            }
        }
    }

    /// Starts threads until there are `n` (or as many as can be started).
    fn ensure_threads(&'static self, st: &mut State, n: usize) {
        while st.threads < n.min(MAX_THREADS) {
            let started = std::thread::Builder::new()
                .name(format!("auscout-pool-{}", st.threads))
                .spawn(move || self.work());
            if started.is_err() {
                break;
            }
            st.threads += 1;
        }
    }

    fn take(&self, st: &mut State) -> Option<Work> {
        if st.running_jobs < st.jobs_allowed {
            if let Some(job) = st.jobs.pop_front() {
                st.running_jobs += 1;
                return Some(Work::Job(job));
            }
        }
        for &ptr in &st.sections {
            // SAFETY: published sections are alive (see `SectionPtr`).
            let s = unsafe { &*ptr.0 };
            if s.has_room() {
                // Registered under the lock: the owner unpublishes under it too,
                // and waits for the registered helpers before it returns.
                s.helpers.fetch_add(1, Ordering::SeqCst);
                return Some(Work::Help(ptr));
            }
        }
        None
    }

    /// A pool thread's loop: run jobs and help sections; spin, then sleep.
    fn work(&'static self) {
        lower_priority();
        let mut last_work = Instant::now();
        loop {
            let found = {
                let mut st = self.lock();
                let found = self.take(&mut st);
                // Work announced while a thread watched for it (counted as
                // spinning) woke no sleeper: whoever takes work and leaves
                // more wakes one.
                if found.is_some()
                    && st.sleeping > 0
                    && self.spinning.load(Ordering::SeqCst) == 0
                    && self.take_ready(&st).is_some()
                {
                    self.wake.notify_one();
                }
                found
            };
            if let Some(work) = found {
                match work {
                    Work::Job(job) => {
                        // A job catches its own panics; this is the last line.
                        let _ = catch_unwind(AssertUnwindSafe(job));
                        self.lock().running_jobs -= 1;
                    }
                    Work::Help(ptr) => help(ptr),
                }
                last_work = Instant::now();
                continue;
            }
            if last_work.elapsed() < SPIN && self.watch(last_work, SPIN, std::hint::spin_loop) {
                continue;
            }
            if self.poll(last_work) {
                continue;
            }
            let mut st = self.lock();
            while self.take_ready(&st).is_none() {
                st.sleeping += 1;
                st = self.wake.wait(st).unwrap_or_else(|e| e.into_inner());
                st.sleeping -= 1;
            }
            drop(st);
            last_work = Instant::now();
        }
    }

    /// Watches for work announced from now on until `until` after `since`,
    /// calling `relax` between looks; returns whether work arrived. The
    /// watcher counts as spinning, so work announced meanwhile wakes no
    /// sleeper: the watcher takes it (and wakes one if it leaves more).
    fn watch(&self, since: Instant, until: Duration, relax: fn()) -> bool {
        self.spinning.fetch_add(1, Ordering::SeqCst);
        let seen = self.epoch.load(Ordering::SeqCst);
        while self.epoch.load(Ordering::SeqCst) == seen && since.elapsed() < until {
            relax();
        }
        self.spinning.fetch_sub(1, Ordering::SeqCst);
        self.epoch.load(Ordering::SeqCst) != seen
    }

    /// [`Pool::watch`]es until `poll_period()` after `since`, yielding the
    /// core at every turn, unless another thread is polling already.
    fn poll(&self, since: Instant) -> bool {
        let period = poll_period();
        if since.elapsed() >= period || self.polling.swap(true, Ordering::SeqCst) {
            return false;
        }
        let arrived = self.watch(since, period, std::thread::yield_now);
        self.polling.store(false, Ordering::SeqCst);
        arrived
    }

    /// Whether `take` would find something (without claiming it).
    fn take_ready(&self, st: &State) -> Option<()> {
        let job = st.running_jobs < st.jobs_allowed && !st.jobs.is_empty();
        // SAFETY: published sections are alive (see `SectionPtr`).
        let section = st.sections.iter().any(|p| unsafe { &*p.0 }.has_room());
        (job || section).then_some(())
    }
}

enum Work {
    Job(Job),
    Help(SectionPtr),
}

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool {
        state: Mutex::new(State {
            jobs: VecDeque::new(),
            sections: Vec::new(),
            threads: 0,
            running_jobs: 0,
            jobs_allowed: JOB_THREADS.load(Ordering::Relaxed),
            sleeping: 0,
        }),
        wake: Condvar::new(),
        epoch: AtomicUsize::new(0),
        spinning: AtomicUsize::new(0),
        polling: AtomicBool::new(false),
    })
}

/// Runs `job` on a pool thread: at once if one of the [`set_job_threads`]
/// job slots is free, else after the jobs before it. The job must catch its
/// own panics (one that escapes is dropped, and the thread lives on).
/// Returns the job when no thread can be started (the caller then runs it).
pub fn spawn(job: Job) -> Result<(), Job> {
    let p = pool();
    let mut st = p.lock();
    let want = st.jobs_allowed;
    p.ensure_threads(&mut st, want);
    if st.threads == 0 {
        return Err(job);
    }
    st.jobs.push_back(job);
    // Every idle thread wakes: one takes the job, the others spin and are
    // ready to help with the sections it splits off, so a helper's start
    // overlaps the job's own instead of following it.
    p.announce(&st, true);
    Ok(())
}

/// Items of one split command, claimed one at a time by the caller and by
/// at most `max_helpers` pool threads.
///
/// It lives on the caller's stack. Pool threads reach it through a pointer
/// whose lifetime is erased, which is sound because the caller (1) removes
/// it from the published list and (2) waits until every registered helper has
/// left before the section goes out of scope — in that order, even when an
/// item panics (see `Published::drop`). A helper registers only under the
/// pool's lock while the section is published, and touches nothing of it
/// after deregistering.
struct Section<'a> {
    next: AtomicUsize,
    len: usize,
    run: &'a (dyn Fn(usize) + Sync),
    helpers: AtomicUsize,
    max_helpers: usize,
    owner: Thread,
    panic: Mutex<Option<Box<dyn Any + Send>>>,
}

impl Section<'_> {
    fn has_room(&self) -> bool {
        self.next.load(Ordering::SeqCst) < self.len
            && self.helpers.load(Ordering::SeqCst) < self.max_helpers
    }

    /// Claims and runs items until none is left.
    fn drain(&self) {
        loop {
            let i = self.next.fetch_add(1, Ordering::SeqCst);
            if i >= self.len {
                return;
            }
            (self.run)(i);
        }
    }
}

/// A pool thread helps a section until its items are claimed.
fn help(ptr: SectionPtr) {
    // SAFETY: this thread registered as a helper under the pool's lock while
    // the section was published; the owner waits for it to deregister.
    let s = unsafe { &*ptr.0 };
    let owner = s.owner.clone();
    if let Err(payload) = catch_unwind(AssertUnwindSafe(|| s.drain())) {
        if let Ok(mut slot) = s.panic.lock() {
            slot.get_or_insert(payload);
        }
    }
    // After this the section may be gone: only the cloned handle is used.
    if s.helpers.fetch_sub(1, Ordering::SeqCst) == 1 {
        owner.unpark();
    }
}

/// Unpublishes a section and waits for its helpers when dropped, so the
/// section outlives every access even if the caller's own item panics.
struct Published<'a, 'b> {
    pool: &'static Pool,
    section: &'a Section<'b>,
}

impl Drop for Published<'_, '_> {
    fn drop(&mut self) {
        let ptr = SectionPtr((self.section as *const Section<'_>).cast());
        self.pool.lock().sections.retain(|&p| p != ptr);
        let start = Instant::now();
        while self.section.helpers.load(Ordering::SeqCst) > 0 {
            if start.elapsed() < WAIT_SPIN {
                std::hint::spin_loop();
            } else {
                std::thread::park_timeout(Duration::from_millis(1));
            }
        }
    }
}

/// Runs items `0..len` with `run`, on the calling thread and on up to
/// `threads - 1` idle pool threads.
fn run_section(threads: usize, len: usize, run: &(dyn Fn(usize) + Sync)) {
    let helpers = threads.saturating_sub(1).min(len.saturating_sub(1));
    if helpers == 0 {
        (0..len).for_each(run);
        return;
    }
    let p = pool();
    let section = Section {
        next: AtomicUsize::new(0),
        len,
        run,
        helpers: AtomicUsize::new(0),
        max_helpers: helpers,
        owner: std::thread::current(),
        panic: Mutex::new(None),
    };
    {
        let mut st = p.lock();
        p.ensure_threads(&mut st, helpers);
        st.sections
            .push(SectionPtr((&section as *const Section<'_>).cast()));
        p.announce(&st, false);
    }
    let published = Published {
        pool: p,
        section: &section,
    };
    section.drain();
    drop(published);
    let panic = section.panic.lock().ok().and_then(|mut p| p.take());
    if let Some(payload) = panic {
        resume_unwind(payload);
    }
}

/// `f` over `items`, results in order, on the calling thread and on up to
/// `threads - 1` idle pool threads (each item on one of them).
pub(crate) fn map<T: Sync, R: Send>(
    threads: usize,
    items: &[T],
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let out: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    run_section(threads, items.len(), &|i| {
        if let (Some(item), Some(slot)) = (items.get(i), out.get(i)) {
            let r = f(item);
            if let Ok(mut slot) = slot.lock() {
                *slot = Some(r);
            }
        }
    });
    out.into_iter()
        .filter_map(|m| m.into_inner().ok().flatten())
        .collect()
}

/// Runs `a` and `b`, the second possibly on an idle pool thread.
pub(crate) fn join<A: FnOnce() + Send, B: FnOnce() + Send>(a: A, b: B) {
    let a = Mutex::new(Some(a));
    let b = Mutex::new(Some(b));
    run_section(2, 2, &|i| {
        if i == 0 {
            if let Some(a) = a.lock().ok().and_then(|mut a| a.take()) {
                a();
            }
        } else if let Some(b) = b.lock().ok().and_then(|mut b| b.take()) {
            b();
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_keeps_order_with_helpers() {
        let items: Vec<u64> = (0..100).collect();
        for threads in [1, 2, 4] {
            let out = map(threads, &items, |&x| x * x);
            assert_eq!(out, items.iter().map(|x| x * x).collect::<Vec<_>>());
        }
    }

    #[test]
    fn a_helper_panic_reaches_the_caller() {
        let items: Vec<u32> = (0..64).collect();
        let r = catch_unwind(|| {
            map(2, &items, |&x| {
                assert!(x != 40, "item 40");
                x
            })
        });
        assert!(r.is_err());
        // The pool still works afterwards.
        assert_eq!(map(2, &items, |&x| x + 1).len(), 64);
    }

    #[test]
    fn spawned_jobs_run() {
        let (tx, rx) = std::sync::mpsc::channel();
        for i in 0..20u32 {
            let tx = tx.clone();
            let job: Job = Box::new(move || {
                let inner: Vec<u32> = map(2, &[i, i + 1], |&x| x * 2);
                let _ = tx.send(inner.iter().sum::<u32>());
            });
            assert!(spawn(job).is_ok());
        }
        let mut got: Vec<u32> = (0..20).map(|_| rx.recv().expect("a job ran")).collect();
        got.sort_unstable();
        assert_eq!(got, (0..20u32).map(|i| 4 * i + 2).collect::<Vec<_>>());
    }

    #[test]
    fn jobs_arriving_while_a_thread_polls_run_side_by_side() {
        set_poll(Duration::from_secs(1));
        for round in 0..50 {
            // Long enough for one thread to poll and the other to sleep.
            std::thread::sleep(Duration::from_millis(2));
            let (to_first, first_waits) = std::sync::mpsc::channel();
            let (met_tx, met) = std::sync::mpsc::channel();
            let first: Job = Box::new(move || {
                let second_ran = first_waits.recv_timeout(Duration::from_secs(5)).is_ok();
                let _ = met_tx.send(second_ran);
            });
            let second: Job = Box::new(move || {
                let _ = to_first.send(());
            });
            assert!(spawn(first).is_ok() && spawn(second).is_ok());
            assert_eq!(
                met.recv_timeout(Duration::from_secs(10)),
                Ok(true),
                "round {round}: the second job waited for the first"
            );
        }
    }

    #[test]
    fn join_runs_both() {
        let (mut x, mut y) = (0, 0);
        join(|| x = 1, || y = 2);
        assert_eq!((x, y), (1, 2));
    }
}
