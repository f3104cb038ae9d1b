//! Fault injection for the tests of panic safety: named points inside the
//! index's writes that panic when a test arms them. Compiled only into unit
//! tests and builds with the `fault-injection` feature (the module's panic
//! safety test); elsewhere `fault_point!` expands to nothing.
//!
//! Arming is per thread: a write's own steps (not the pool's helpers) run on
//! the calling thread, and tests running in parallel do not disturb each
//! other.

use std::cell::Cell;

thread_local! {
    /// Points still to pass before one panics; 0 = disarmed.
    static COUNTDOWN: Cell<u64> = const { Cell::new(0) };
    /// Whether every point after the first that fires panics too.
    static STICKY: Cell<bool> = const { Cell::new(false) };
}

/// Arms the `n`-th fault point passed from now on (1 = the next one) to
/// panic; with `sticky`, every point after it panics too (a roll back's
/// own, say). `n = 0` disarms.
pub fn arm(n: u64, sticky: bool) {
    COUNTDOWN.with(|c| c.set(n));
    STICKY.with(|s| s.set(sticky));
}

/// Whether an armed point is still ahead (the last armed fault did not fire).
pub fn armed() -> bool {
    COUNTDOWN.with(|c| c.get() > 0)
}

/// A fault point: panics with `name` when the countdown reaches it.
pub fn point(name: &str) {
    let fire = COUNTDOWN.with(|c| match c.get() {
        0 => false,
        1 => {
            if !STICKY.with(Cell::get) {
                c.set(0);
            }
            true
        }
        n => {
            c.set(n - 1);
            false
        }
    });
    if fire {
        panic!("injected fault at {name}");
    }
}
