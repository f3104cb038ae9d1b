//! The `AuScoutDS` native type: the callbacks Redis calls for persistence,
//! memory accounting, `DEBUG DIGEST`, `COPY` and freeing. Each one is an
//! `extern "C"` boundary and runs under [`guard::callback`].

#![allow(unsafe_code)]

use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_longlong, c_void};
use std::ptr;

use auscout_core::wire::encode_u32_be;
use redis_module::native_types::RedisType;
use redis_module::raw;

use crate::rdb::{self, LoadError, RdbRead, RdbWrite, ENCVER_CURRENT};
use crate::value::IndexValue;
use crate::{dropper, guard};

/// The type name of the C++ module too, so its RDB files load here.
pub const TYPE_NAME: &str = "AuScoutDS";

pub static AUSCOUT_TYPE: RedisType = RedisType::new(
    TYPE_NAME,
    ENCVER_CURRENT,
    raw::RedisModuleTypeMethods {
        version: raw::REDISMODULE_TYPE_METHOD_VERSION as u64,
        rdb_load: Some(rdb_load),
        rdb_save: Some(rdb_save),
        aof_rewrite: Some(aof_rewrite),
        mem_usage: Some(mem_usage),
        digest: Some(digest),
        free: Some(free),
        aux_load: None,
        aux_save: None,
        aux_save2: None,
        aux_save_triggers: 0,
        free_effort: Some(free_effort),
        // No `unlink`: Redis also calls it when RENAME or MOVE detach a value
        // that lives on, so it cannot mean "gone"; `free_effort` alone is
        // what sends a big value to the lazy-free thread.
        unlink: None,
        copy: Some(copy),
        defrag: None,
        copy2: None,
        free_effort2: None,
        mem_usage2: None,
        unlink2: None,
    },
);

/// Frees of more than this many units go to the lazy-free thread when the
/// key is unlinked (Redis compares `free_effort` with its threshold of 64).
const FRAMES_PER_EFFORT_UNIT: u64 = 1024;

struct IoReader(*mut raw::RedisModuleIO);

impl RdbRead for IoReader {
    fn unsigned(&mut self) -> Result<u64, LoadError> {
        raw::load_unsigned(self.0).map_err(|_| LoadError::Io)
    }
    fn signed(&mut self) -> Result<i64, LoadError> {
        raw::load_signed(self.0).map_err(|_| LoadError::Io)
    }
    fn buffer(&mut self) -> Result<Vec<u8>, LoadError> {
        let buf = raw::load_string_buffer(self.0).map_err(|_| LoadError::Io)?;
        Ok(buf.as_ref().to_vec())
    }
}

struct IoWriter(*mut raw::RedisModuleIO);

impl RdbWrite for IoWriter {
    fn unsigned(&mut self, v: u64) {
        raw::save_unsigned(self.0, v);
    }
    fn signed(&mut self, v: i64) {
        raw::save_signed(self.0, v);
    }
    fn buffer(&mut self, v: &[u8]) {
        raw::save_slice(self.0, v);
    }
}

/// Logs through the IO handle (goes to the server log with the key name).
fn log_io(rdb: *mut raw::RedisModuleIO, level: &std::ffi::CStr, msg: &str) {
    // SAFETY: the API function pointers are written once, when the module
    // is loaded, before any callback can run; reading one is a plain load.
    let Some(log) = (unsafe { raw::RedisModule_LogIOError }) else {
        return;
    };
    let Ok(msg) = CString::new(msg.replace('\0', " ")) else {
        return;
    };
    // SAFETY: `rdb` is the IO handle Redis passed to the running callback;
    // the format is "%s" with one NUL-terminated string that outlives the call.
    unsafe { log(rdb, level.as_ptr(), c"%s".as_ptr(), msg.as_ptr()) };
}

unsafe extern "C" fn rdb_load(rdb: *mut raw::RedisModuleIO, encver: c_int) -> *mut c_void {
    guard::callback("rdb_load", ptr::null_mut(), || {
        let mut reader = IoReader(rdb);
        let mut warn = |m: &str| log_io(rdb, c"warning", &format!("auscout: {m}"));
        match rdb::load(&mut reader, encver, &mut warn) {
            Ok(index) => Box::into_raw(Box::new(IndexValue::new(index))).cast::<c_void>(),
            Err(e) => {
                log_io(
                    rdb,
                    c"warning",
                    &format!("auscout: refusing to load an index: {e}"),
                );
                ptr::null_mut()
            }
        }
    })
}

/// # Safety
/// `value` is a pointer this module handed to Redis (a boxed `IndexValue`).
unsafe fn value_ref<'a>(value: *const c_void) -> Option<&'a IndexValue> {
    // SAFETY: per the contract above, `value` is null or points to a live
    // `IndexValue` that Redis keeps until it calls `free`.
    unsafe { value.cast::<IndexValue>().as_ref() }
}

unsafe extern "C" fn rdb_save(rdb: *mut raw::RedisModuleIO, value: *mut c_void) {
    guard::callback("rdb_save", (), || {
        // SAFETY: Redis passes the value it holds for the key being saved.
        if let Some(v) = unsafe { value_ref(value) } {
            rdb::save(&mut IoWriter(rdb), &v.index());
        }
    })
}

unsafe extern "C" fn aof_rewrite(
    aof: *mut raw::RedisModuleIO,
    key: *mut raw::RedisModuleString,
    value: *mut c_void,
) {
    guard::callback("aof_rewrite", (), || {
        // SAFETY: Redis passes the value of the key being rewritten, and
        // `aof`/`key` are the handles of this callback, as `rewrite` needs.
        if let Some(v) = unsafe { value_ref(value) } {
            // SAFETY: as above.
            unsafe { crate::aof::rewrite(aof, key, &v.index()) };
        }
    })
}

unsafe extern "C" fn mem_usage(value: *const c_void) -> usize {
    guard::callback("mem_usage", 0, || {
        // SAFETY: Redis passes the value it holds for the key.
        unsafe { value_ref(value) }.map_or(0, |v| {
            std::mem::size_of::<IndexValue>() + v.index().mem_usage()
        })
    })
}

unsafe extern "C" fn digest(md: *mut raw::RedisModuleDigest, value: *mut c_void) {
    guard::callback("digest", (), || {
        // SAFETY: Redis passes the value it holds for the key.
        let Some(v) = (unsafe { value_ref(value) }) else {
            return;
        };
        // SAFETY: API function pointers, written once at module load.
        let (Some(add_ll), Some(add_buf), Some(end)) = (unsafe {
            (
                raw::RedisModule_DigestAddLongLong,
                raw::RedisModule_DigestAddStringBuffer,
                raw::RedisModule_DigestEndSequence,
            )
        }) else {
            return;
        };
        let index = v.index();
        for track in index.tracks_from(1) {
            let bytes = encode_u32_be(track.hashes);
            // SAFETY: `md` is this callback's digest handle; the buffers are
            // valid for the lengths given for the duration of each call.
            unsafe {
                add_ll(md, track.id as c_longlong);
                add_buf(md, track.descr.as_ptr().cast::<c_char>(), track.descr.len());
                add_buf(md, bytes.as_ptr().cast::<c_char>(), bytes.len());
                end(md);
            }
        }
        // SAFETY: `md` is this callback's digest handle.
        unsafe {
            add_ll(md, index.next_id() as c_longlong);
            end(md);
        }
    })
}

/// May run on Redis' lazy-free thread: touches nothing but the value and atomics.
unsafe extern "C" fn free(value: *mut c_void) {
    guard::callback("free", (), || {
        if !value.is_null() {
            // SAFETY: a non-null value is the `Box<IndexValue>` this module
            // leaked to Redis (rdb_load, copy, set_value); Redis frees it once.
            dropper::drop_value(unsafe { Box::from_raw(value.cast::<IndexValue>()) });
        }
    })
}

unsafe extern "C" fn free_effort(_key: *mut raw::RedisModuleString, value: *const c_void) -> usize {
    guard::callback("free_effort", 0, || {
        // SAFETY: Redis passes the value it is about to free.
        unsafe { value_ref(value) }.map_or(0, |v| {
            let i = v.index();
            usize::try_from(i.track_count() + i.frame_count() / FRAMES_PER_EFFORT_UNIT)
                .unwrap_or(usize::MAX)
        })
    })
}

unsafe extern "C" fn copy(
    _from: *mut raw::RedisModuleString,
    _to: *mut raw::RedisModuleString,
    value: *const c_void,
) -> *mut c_void {
    guard::callback("copy", ptr::null_mut(), || {
        // SAFETY: Redis passes the value of the key being copied.
        unsafe { value_ref(value) }.map_or(ptr::null_mut(), |v| {
            Box::into_raw(Box::new(v.clone())).cast::<c_void>()
        })
    })
}
