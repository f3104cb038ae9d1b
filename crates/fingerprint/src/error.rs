//! The one error type of the fingerprint library. Messages name the problem in
//! words a user can act on; the caller (the CLI, the HTTP service) prefixes
//! the file name.

/// Everything that can go wrong between a path and its fingerprint.
#[derive(Debug, thiserror::Error)]
pub enum FingerprintError {
    /// The file could not be opened or read.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// No container or codec we know, or a feature of it we do not support.
    #[error("unsupported audio: {0}")]
    Unsupported(String),
    /// The file claims a known format but its contents are broken beyond skipping.
    #[error("cannot decode: {0}")]
    Decode(String),
    /// Too little audio for even one frame hash.
    #[error("audio too short: {seconds:.3} s, at least {min_seconds:.3} s needed")]
    TooShort { seconds: f64, min_seconds: f64 },
    /// An option outside its allowed range (e.g. `sr < 6000`, `toggles > 8`).
    #[error("bad option: {0}")]
    BadOption(String),
    /// The resampler refused its input; a bug rather than bad input, but reported, not panicked.
    #[error("resampling failed: {0}")]
    Resample(String),
}
