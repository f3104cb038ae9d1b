//! One file per group of routes; each handler is small glue over the
//! state, the audio helpers and the client library.

pub mod lookup;
pub mod monitor;
pub mod page;
pub mod status;
pub mod tracks;
