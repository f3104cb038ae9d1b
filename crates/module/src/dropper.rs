//! Frees big indexes on a thread of our own.
//!
//! Redis frees a value in its lazy-free thread only for `UNLINK`,
//! `auscout.delkey` (an unlink) or when `lazyfree-lazy-*` is configured; a
//! plain `DEL`, `FLUSHALL`, an overwrite or `DEBUG RELOAD` call `free` on the
//! main thread, and dropping 40M frames there blocks every client for
//! seconds. So `free` hands big values to this thread and returns at once.
//! Dropping only touches the value itself, the allocator (thread-safe) and
//! atomics (the INFO counters).

use std::sync::mpsc::{channel, Sender};
use std::sync::{Mutex, OnceLock};

use crate::value::IndexValue;

/// Values with fewer frames are dropped in place: cheaper than a hand-off.
pub const BACKGROUND_FREE_FRAMES: u64 = 1 << 16;

static QUEUE: OnceLock<Option<Mutex<Sender<Box<IndexValue>>>>> = OnceLock::new();

fn queue() -> Option<&'static Mutex<Sender<Box<IndexValue>>>> {
    QUEUE
        .get_or_init(|| {
            let (tx, rx) = channel::<Box<IndexValue>>();
            std::thread::Builder::new()
                .name("auscout-free".into())
                .spawn(move || {
                    for value in rx {
                        drop(value);
                    }
                })
                .ok()
                .map(|_| Mutex::new(tx))
        })
        .as_ref()
}

/// Drops `value`, in the background when it is big.
pub fn drop_value(mut value: Box<IndexValue>) {
    if value.index().frame_count() < BACKGROUND_FREE_FRAMES {
        return drop(value);
    }
    let Some(queue) = queue() else {
        return drop(value);
    };
    value.uncount();
    let sent = match queue.lock() {
        Ok(tx) => tx.send(value).map_err(|e| e.0),
        Err(_) => Err(value),
    };
    if let Err(value) = sent {
        drop(value);
    }
}
