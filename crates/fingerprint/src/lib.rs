//! auscout-fingerprint: audio to the frame hashes the auscout module indexes.
//! No Redis here: the client library and the CLI sit on top.
//!
//! Pipeline: [`decode`] (symphonia → mono f32) → [`resample`] (rubato → `sr`)
//! → [`audiohash`] (frame hashes + toggle masks, `docs/design.md`), driven by
//! [`pipeline`], which streams: samples are hashed as they are decoded.

#![forbid(unsafe_code)]

pub mod audiohash;
pub mod clip;
pub mod decode;
pub mod error;
pub mod mp4_priming;
mod noisy;
pub mod pipeline;
pub mod resample;

pub use audiohash::{Fingerprint, Hasher, RankedHash};
pub use clip::Clip;
pub use error::FingerprintError;
pub use pipeline::{fingerprint_file, fingerprint_samples, fingerprint_source, HashOptions};
