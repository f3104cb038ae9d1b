//! auscoutclient: turns audio into pHash frame fingerprints and talks to the
//! auscout Redis module. The `auscoutclient` binary is a thin CLI over this.
//!
//! Pipeline: [`decode`] (symphonia → mono f32) → [`resample`] (rubato → `sr`)
//! → [`audiohash`] (frame hashes + toggle masks, DESIGN §1), driven by
//! [`fingerprint`]. [`store`] holds the Redis calls, cluster sharding included.

pub mod audiohash;
pub mod decode;
pub mod error;
pub mod fingerprint;
pub mod mp4_priming;
pub mod reply;
pub mod resample;
pub mod shard;
pub mod store;

pub use audiohash::{Fingerprint, Hasher};
pub use error::ClientError;
pub use fingerprint::{fingerprint_file, fingerprint_samples, fingerprint_source, HashOptions};
