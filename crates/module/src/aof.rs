//! AOF rewrite: an index is re-emitted as the module's own commands, so it
//! works with and without the RDB preamble (`aof-use-rdb-preamble no`).
//!
//! Per track, in id order: `auscout.addtrack key <first chunk> descr id`, then
//! `auscout.append key id <chunk>` for the rest of a track longer than
//! [`AOF_CHUNK_FRAMES`] (keeps each AOF command, and the memory replay needs
//! for it, small). Last, `auscout.setnextid key next_id`, so ids deleted before
//! the rewrite are not handed out again after a replay.

#![allow(unsafe_code)]

use std::ffi::CStr;
use std::os::raw::{c_char, c_longlong};

use auscout_core::wire::encode_u32_be;
use auscout_core::Index;
use redis_module::raw;

/// Frames per emitted command (256 KiB of hashes).
pub const AOF_CHUNK_FRAMES: usize = 1 << 16;

/// Emits the commands that rebuild `index` under `key`.
///
/// # Safety
/// `aof` and `key` must be the pointers Redis passed to the `aof_rewrite` callback.
pub unsafe fn rewrite(
    aof: *mut raw::RedisModuleIO,
    key: *mut raw::RedisModuleString,
    index: &Index,
) {
    // SAFETY: API function pointers are written once, at module load.
    let Some(emit) = (unsafe { raw::RedisModule_EmitAOF }) else {
        return;
    };
    let addtrack: &CStr = c"auscout.addtrack";
    let append: &CStr = c"auscout.append";
    let setnextid: &CStr = c"auscout.setnextid";
    for track in index.tracks_from(1) {
        let mut chunks = track.hashes.chunks(AOF_CHUNK_FRAMES);
        let Some(first) = chunks.next() else { continue };
        let bytes = encode_u32_be(first);
        // SAFETY: `aof` and `key` are this callback's handles (the caller's
        // contract); the format "sbbl" matches the arguments, each buffer
        // valid for its length during the call.
        unsafe {
            emit(
                aof,
                addtrack.as_ptr(),
                c"sbbl".as_ptr(),
                key,
                bytes.as_ptr().cast::<c_char>(),
                bytes.len(),
                track.descr.as_ptr().cast::<c_char>(),
                track.descr.len(),
                track.id as c_longlong,
            );
        }
        for chunk in chunks {
            let bytes = encode_u32_be(chunk);
            // SAFETY: as above, format "slb".
            unsafe {
                emit(
                    aof,
                    append.as_ptr(),
                    c"slb".as_ptr(),
                    key,
                    track.id as c_longlong,
                    bytes.as_ptr().cast::<c_char>(),
                    bytes.len(),
                );
            }
        }
    }
    // An empty index (only a legacy RDB can hold one) has no key to set the
    // counter on; it is simply not re-created.
    if index.track_count() > 0 {
        // SAFETY: as above, format "sl".
        unsafe {
            emit(
                aof,
                setnextid.as_ptr(),
                c"sl".as_ptr(),
                key,
                index.next_id() as c_longlong,
            );
        }
    }
}
