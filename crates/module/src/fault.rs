//! Test builds only (feature `fault-injection`, never a release): the command
//! `auscout.faultinject n [STICKY]` arms the engine's fault points on the
//! main thread, where writes run, so that the `n`-th point a following
//! write passes panics (with `STICKY`, every point from it on). The panic
//! safety test drives writes into those panics through a real server.

#![allow(unsafe_code)]

use std::ffi::CStr;
use std::os::raw::c_int;

use redis_module::{raw, Context, RedisString, RedisValue, Status};

use crate::args;
use crate::error::CmdError;

/// Registers `auscout.faultinject` (called from the module's init).
pub fn register(ctx: &Context) -> Status {
    let name: &CStr = c"auscout.faultinject";
    // SAFETY: API function pointers are written once, at module load, which
    // is running now.
    let Some(create) = (unsafe { raw::RedisModule_CreateCommand }) else {
        return Status::Err;
    };
    // SAFETY: `ctx` is the init context; the name and flags are
    // NUL-terminated and static; the handler has the signature Redis calls.
    let rc = unsafe {
        create(
            ctx.ctx,
            name.as_ptr(),
            Some(faultinject_c),
            c"".as_ptr(),
            0,
            0,
            0,
        )
    };
    if rc == raw::Status::Ok as c_int {
        Status::Ok
    } else {
        Status::Err
    }
}

extern "C" fn faultinject_c(
    ctx: *mut raw::RedisModuleCtx,
    argv: *mut *mut raw::RedisModuleString,
    argc: c_int,
) -> c_int {
    let context = Context::new(ctx);
    let argv = redis_module::decode_args(ctx, argv, argc);
    let reply = crate::guard::command(&context, argv, faultinject);
    context.reply(reply) as c_int
}

/// `auscout.faultinject n [STICKY]` → OK; `n = 0` disarms.
fn faultinject(_ctx: &Context, argv: Vec<RedisString>) -> Result<RedisValue, CmdError> {
    let (n, sticky) = match argv.as_slice() {
        [_, n] => (n, false),
        [_, n, flag] if args::is_keyword(flag, "STICKY") => (n, true),
        _ => return Err(CmdError::WrongArity),
    };
    auscout_core::fault::arm(args::unsigned(n, "n")?, sticky);
    Ok(RedisValue::SimpleStringStatic("OK"))
}
