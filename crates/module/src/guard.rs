//! Panic guards. The `redis-module` command wrapper does not catch unwinds and
//! an unwind across an `extern "C"` boundary aborts the whole server, so every
//! command body and every type callback runs inside `catch_unwind`.

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};

use redis_module::{Context, RedisResult, RedisString, RedisValue};

use crate::error::CmdError;

/// Renders a panic payload for an error reply or the log.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_owned()
    }
}

/// Runs a command body; a panic becomes an `ERR internal error …` reply.
pub fn command(
    ctx: &Context,
    args: Vec<RedisString>,
    body: fn(&Context, Vec<RedisString>) -> Result<RedisValue, CmdError>,
) -> RedisResult {
    match catch_unwind(AssertUnwindSafe(|| body(ctx, args))) {
        Ok(result) => result.map_err(CmdError::into_redis),
        Err(payload) => {
            let msg = panic_message(payload.as_ref());
            ctx.log_warning(&format!("auscout: command panicked: {msg}"));
            Err(CmdError::Internal(msg).into_redis())
        }
    }
}

/// Runs a type callback; a panic yields `fallback` instead of unwinding into Redis.
pub fn callback<T>(name: &str, fallback: T, body: impl FnOnce() -> T) -> T {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(v) => v,
        Err(payload) => {
            // No context here (callbacks may run off the main thread); the
            // context-free log call still reaches the server log.
            redis_module::logging::log_warning(format!(
                "auscout: {name} callback panicked: {}",
                panic_message(payload.as_ref())
            ));
            fallback
        }
    }
}
