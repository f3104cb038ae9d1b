//! Argument parsing shared by the commands. Everything a client sends is
//! checked here before any key is touched, so a bad argument changes nothing.

use auscout_core::index::MAX_ID;
use auscout_core::wire::decode_u32_be;
use auscout_core::{LookupError, TrackId};
use redis_module::RedisString;

use crate::config;
use crate::error::CmdError;

/// A hash array: big-endian u32s, non-empty, a multiple of 4 bytes.
pub fn hashes(arg: &RedisString) -> Result<Vec<u32>, CmdError> {
    decode_u32_be(arg.as_slice()).map_err(|source| CmdError::Wire {
        what: "hash array",
        source,
    })
}

/// A toggle array (same wire format as the hash array).
pub fn toggles(arg: &RedisString) -> Result<Vec<u32>, CmdError> {
    decode_u32_be(arg.as_slice()).map_err(|source| CmdError::Wire {
        what: "toggle array",
        source,
    })
}

fn ascii(arg: &RedisString) -> Option<&str> {
    std::str::from_utf8(arg.as_slice()).ok()
}

/// A track id: a decimal integer in `1..=MAX_ID`.
pub fn id(arg: &RedisString) -> Result<TrackId, CmdError> {
    let text = ascii(arg).unwrap_or("");
    match text.parse::<i64>() {
        Ok(v) if (1..=MAX_ID).contains(&v) => Ok(v),
        _ => Err(CmdError::Arg(format!(
            "id '{}' is not an integer in 1..={MAX_ID}",
            arg.to_string_lossy()
        ))),
    }
}

/// A non-negative integer (cursor, count).
pub fn unsigned(arg: &RedisString, what: &str) -> Result<u64, CmdError> {
    ascii(arg)
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or_else(|| {
            CmdError::Arg(format!(
                "{what} '{}' is not a non-negative integer",
                arg.to_string_lossy()
            ))
        })
}

/// A lookup threshold: a number in [0, 1], NaN refused.
pub fn threshold(arg: &RedisString) -> Result<f64, CmdError> {
    config::parse_threshold(&arg.to_string_lossy()).map_err(CmdError::Arg)
}

/// True when `arg` is the keyword `name` (case-insensitive, like Redis options).
pub fn is_keyword(arg: &RedisString, name: &str) -> bool {
    arg.as_slice().eq_ignore_ascii_case(name.as_bytes())
}

/// Checks a query before it reaches the engine: equal lengths and no toggle
/// mask over the cap. (The matcher checks too; checking here keeps the
/// promise "bad input is an error reply" independent of the engine.)
pub fn check_query(
    query: &[u32],
    toggles: &[u32],
    max_toggle_bits: u32,
) -> Result<(), LookupError> {
    if query.len() != toggles.len() {
        return Err(LookupError::LengthMismatch(query.len(), toggles.len()));
    }
    if let Some(bits) = toggles
        .iter()
        .map(|t| t.count_ones())
        .find(|&b| b > max_toggle_bits)
    {
        return Err(LookupError::TooManyToggles {
            bits,
            cap: max_toggle_bits,
        });
    }
    Ok(())
}
