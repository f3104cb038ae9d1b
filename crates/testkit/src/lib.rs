//! What auscout's tests and benches share, so that no test crate includes
//! another's files:
//!
//! - [`server`]: a real `redis-server` with the module loaded, on its own
//!   port and directory, killed on drop; helpers for `INFO` and `CONFIG`.
//! - [`audio`]: synthetic music, distortions of excerpts, WAV and FLAC writers.
//! - [`workload`]: the random tracks and queries of the server benchmarks.
//! - [`audio_server`]: a local HTTP server of encoded audio files and
//!   streams that fails on cue.

#![forbid(unsafe_code)]

pub mod audio;
pub mod audio_server;
pub mod cluster;
mod rng;
pub mod server;
pub mod workload;

pub use rng::Rng;
pub use server::{module_path, wait_replicated, wire, Server, ServerBuilder};

/// The environment variable `name` parsed, or `default` when it is unset or
/// does not parse (the benches' knobs).
pub fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
