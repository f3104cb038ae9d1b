//! auscout-client: the Redis side of auscout as a library. A [`Store`] is one
//! logical index on one server or spread over the shards of a Redis Cluster
//! ([`shard`]); it adds, deletes and looks up tracks with the module's
//! commands and parses their replies ([`reply`]); lookups may go to replicas
//! ([`replicas`]). Fingerprints come from `auscout-fingerprint`;
//! [`recognise`] looks a clip up with fallbacks for clips played at another
//! speed, pitch or tempo.

#![forbid(unsafe_code)]

pub mod dump;
pub mod endpoint;
pub mod error;
pub mod recognise;
pub mod replicas;
pub mod reply;
pub mod shard;
pub mod stats;
pub mod store;
mod topology;

pub use error::ClientError;
pub use replicas::{ReadFrom, ReplicaPolicy};
pub use store::{Access, Endpoint, LookupOptions, Store, TrackCursor, TrackInfo, TrackMatch};
