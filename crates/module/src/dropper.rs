//! Frees big indexes on a thread of our own.
//!
//! Redis frees a value in its lazy-free thread only for `UNLINK`,
//! `auscout.delkey` (an unlink) or when `lazyfree-lazy-*` is configured; a
//! plain `DEL`, `FLUSHALL`, an overwrite or `DEBUG RELOAD` call `free` on the
//! main thread, and dropping 40M frames there blocks every client for
//! seconds. So `free` hands big values to this thread and returns at once.
//! A lookup still under way on a freed key holds the index itself; when it
//! finishes it hands the index here too ([`release`]) instead of freeing it on
//! the module thread that serves lookups. Dropping only touches the index
//! itself, the allocator (thread-safe) and atomics (the INFO counters).

use std::any::Any;
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex, OnceLock};

use crate::value::{IndexValue, SharedIndex};

/// Values with fewer frames are dropped in place: cheaper than a hand-off.
pub const BACKGROUND_FREE_FRAMES: u64 = 1 << 16;

type Garbage = Box<dyn Any + Send>;

static QUEUE: OnceLock<Option<Mutex<Sender<Garbage>>>> = OnceLock::new();

fn queue() -> Option<&'static Mutex<Sender<Garbage>>> {
    QUEUE
        .get_or_init(|| {
            let (tx, rx) = channel::<Garbage>();
            std::thread::Builder::new()
                .name("auscout-free".into())
                .spawn(move || {
                    for garbage in rx {
                        drop(garbage);
                    }
                })
                .ok()
                .map(|_| Mutex::new(tx))
        })
        .as_ref()
}

/// Drops `garbage` on the free thread (in place if it cannot be reached).
fn send(garbage: Garbage) {
    let Some(queue) = queue() else {
        return drop(garbage);
    };
    let sent = match queue.lock() {
        Ok(tx) => tx.send(garbage).map_err(|e| e.0),
        Err(_) => Err(garbage),
    };
    if let Err(garbage) = sent {
        drop(garbage);
    }
}

/// Drops `value`, in the background when it is big.
pub fn drop_value(mut value: Box<IndexValue>) {
    if value.index().frame_count() < BACKGROUND_FREE_FRAMES {
        return drop(value);
    }
    value.uncount();
    send(value);
}

/// Lets go of a lookup's handle on an index: when it is the last one (the
/// key went away during the lookup) and the index is big, the free thread
/// drops it.
pub fn release(shared: SharedIndex) {
    // A count of 1 cannot grow again: only the key's value made new handles.
    if Arc::strong_count(&shared) == 1
        && crate::value::read(&shared).frame_count() >= BACKGROUND_FREE_FRAMES
    {
        send(Box::new(shared));
    }
}
