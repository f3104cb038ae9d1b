//! The auscout Redis module: `auscout.*` commands over the native type
//! `AuScoutDS`, one key per fingerprint index. The engine is `auscout-core`;
//! this crate is the thin Redis glue around it.
//!
//! - [`commands`]: one function per command; [`args`]: argument parsing;
//!   [`offload`]: lookups answered from module threads.
//! - [`datatype`]: the type callbacks; [`rdb`]: the on-disk encodings;
//!   [`aof`]: AOF rewrite.
//! - [`config`]: module configs; [`info`] and [`stats`]: the INFO section.
//! - [`hugepages`]: keeps the indexes on transparent huge pages.
//! - [`guard`]: keeps panics from unwinding into Redis; [`dropper`]: frees
//!   big indexes off the main thread.

// Unsafe code (the raw module API) lives only in the modules that allow it
// (aof, datatype, hugepages, offload), each block with its `// SAFETY:` argument.
#![deny(unsafe_code)]

mod aof;
mod args;
mod commands;
mod config;
mod datatype;
mod dropper;
mod error;
#[cfg(feature = "fault-injection")]
mod fault;
mod guard;
mod hugepages;
mod info;
mod offload;
mod rdb;
mod stats;
mod value;

use redis_module::configuration::ConfigurationFlags;
use redis_module::{redis_module, Context, ModuleOptions, RedisString, Status};

use crate::datatype::AUSCOUT_TYPE;

// The Redis allocator aborts outside a running server, so unit tests use the
// system allocator.
#[cfg(not(test))]
type ModuleAlloc = redis_module::alloc::RedisAlloc;
#[cfg(not(test))]
const MODULE_ALLOC: ModuleAlloc = redis_module::alloc::RedisAlloc;
#[cfg(test)]
type ModuleAlloc = std::alloc::System;
#[cfg(test)]
const MODULE_ALLOC: ModuleAlloc = std::alloc::System;

fn init(ctx: &Context, _args: &[RedisString]) -> Status {
    // Short reads while loading an RDB or a RESTORE payload become errors we
    // return, instead of aborting the server.
    ctx.set_module_options(ModuleOptions::HANDLE_IO_ERRORS);
    auscout_core::pool::set_thread_niceness(offload::THREAD_NICENESS);
    config::apply_to_engine();
    #[cfg(feature = "fault-injection")]
    if let Status::Err = fault::register(ctx) {
        return Status::Err;
    }
    Status::Ok
}

/// Declares one guarded command function per `auscout.*` command.
macro_rules! guarded {
    ($($name:ident),* $(,)?) => {
        mod guarded {
            use redis_module::{Context, RedisResult, RedisString};
            $(
                pub fn $name(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
                    crate::guard::command(ctx, args, crate::commands::$name)
                }
            )*
        }
    };
}

guarded!(
    add,
    addtrack,
    append,
    setnextid,
    del,
    lookup,
    hashes,
    count,
    size,
    delkey,
    list,
    index,
    importdescr
);

redis_module! {
    name: "auscout",
    version: 1,
    allocator: (ModuleAlloc, MODULE_ALLOC),
    data_types: [AUSCOUT_TYPE],
    init: init,
    commands: [
        ["auscout.add", guarded::add, "write deny-oom", 1, 1, 1, ""],
        ["auscout.addtrack", guarded::addtrack, "write deny-oom", 1, 1, 1, ""],
        ["auscout.append", guarded::append, "write deny-oom", 1, 1, 1, ""],
        ["auscout.setnextid", guarded::setnextid, "write deny-oom", 1, 1, 1, ""],
        ["auscout.del", guarded::del, "write", 1, 1, 1, ""],
        ["auscout.lookup", guarded::lookup, "readonly", 1, 1, 1, ""],
        ["auscout.hashes", guarded::hashes, "readonly", 1, 1, 1, ""],
        ["auscout.count", guarded::count, "readonly fast", 1, 1, 1, ""],
        ["auscout.size", guarded::size, "readonly fast", 1, 1, 1, ""],
        ["auscout.delkey", guarded::delkey, "write", 1, 1, 1, ""],
        ["auscout.list", guarded::list, "readonly", 1, 1, 1, ""],
        ["auscout.index", guarded::index, "readonly", 1, 1, 1, ""],
        ["auscout.importdescr", guarded::importdescr, "write deny-oom", 1, 1, 1, ""],
    ],
    configurations: [
        i64: [
            ["max-toggle-bits", &config::MAX_TOGGLE_BITS, config::DEFAULT_MAX_TOGGLE_BITS, 0, config::MAX_TOGGLE_BITS_LIMIT, ConfigurationFlags::DEFAULT, None],
            ["threads", &config::THREADS, config::DEFAULT_THREADS, 1, config::THREADS_LIMIT, ConfigurationFlags::DEFAULT, None],
            ["poll-us", &config::POLL_US, config::DEFAULT_POLL_US, 0, config::POLL_US_LIMIT, ConfigurationFlags::DEFAULT, None],
        ],
        string: [
            ["default-threshold", &config::THRESHOLD, config::DEFAULT_THRESHOLD_STR, ConfigurationFlags::DEFAULT, None],
        ],
        // (the macro needs every kind listed when module args are used)
        bool: [
            ["hugepages", &config::HUGEPAGES, config::DEFAULT_HUGEPAGES, ConfigurationFlags::DEFAULT, None],
        ],
        enum: [],
        module_args_as_configuration: true,
    ]
}
