//! The pure engine shared by the Redis module and the client: no Redis types,
//! tested and benchmarked with plain `cargo`.
//!
//! - [`wire`]: big-endian `u32` arrays, the format both halves exchange.
//! - [`index`]: tracks and the inverted index hash → (track, frame).
//! - [`matcher`]: time-aligned voting and bit-error-rate verification.

// Unsafe code lives only in the modules that allow it (hugepages, pool,
// prefetch, verify), each block with its `// SAFETY:` argument.
#![deny(unsafe_code)]

pub mod defaults;
#[cfg(any(test, feature = "fault-injection"))]
pub mod fault;
pub mod hugepages;
pub mod index;
pub mod matcher;
pub mod pool;
mod prefetch;
pub mod wire;

/// A fault point of the panic-safety tests (see `fault`); nothing in
/// builds without them.
macro_rules! fault_point {
    ($name:expr) => {
        #[cfg(any(test, feature = "fault-injection"))]
        $crate::fault::point($name);
    };
}
pub(crate) use fault_point;

pub use index::{Index, IndexError, IndexStats, TrackId, TrackView};
pub use matcher::{LookupError, LookupParams, Match};
