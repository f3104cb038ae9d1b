//! The one error type of the command layer. Every variant renders with a
//! Redis error code first (`ERR …`, `WRONGTYPE …`), because clients branch on
//! that first word.

use auscout_core::wire::WireError;
use auscout_core::{IndexError, LookupError};
use redis_module::RedisError;

#[derive(Debug, thiserror::Error)]
pub enum CmdError {
    #[error("WRONGTYPE Operation against a key holding the wrong kind of value")]
    WrongType,
    #[error("ERR wrong number of arguments")]
    WrongArity,
    #[error("ERR no such key")]
    NoSuchKey,
    #[error("ERR invalid {what}: {source}")]
    Wire {
        what: &'static str,
        #[source]
        source: WireError,
    },
    #[error("ERR {0}")]
    Index(#[from] IndexError),
    #[error("ERR {0}")]
    Lookup(#[from] LookupError),
    /// A malformed argument (id, threshold, option …); the text says which.
    #[error("ERR {0}")]
    Arg(String),
    /// A bug caught by the panic guard: the command did nothing it could not undo.
    #[error("ERR internal error in auscout: {0}")]
    Internal(String),
    /// A write panicked and could not be undone: the index refuses every
    /// command but deletion.
    #[error("ERR this index was damaged by an internal error; delete the key and rebuild it")]
    Damaged,
}

impl CmdError {
    /// (`RedisError` has a blanket `From<impl Error>`; this keeps the arity
    /// error as Redis' own.)
    pub fn into_redis(self) -> RedisError {
        match self {
            // Let Redis word the arity error the way it does for its own commands.
            CmdError::WrongArity => RedisError::WrongArity,
            other => RedisError::String(other.to_string()),
        }
    }
}
