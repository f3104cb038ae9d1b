//! The numbers the module, the fingerprint library, the client and the CLI
//! must agree on, defined once.

/// The rate audio is hashed at by default, and the lowest one the hash is
/// defined for (its 33 bands reach 2,900 Hz).
pub const SAMPLE_RATE: u32 = 6000;

/// The lookup threshold when none is given (the module's
/// `auscout.default-threshold`): the score unrelated audio stays under at
/// every query length (see the matcher's `chance`).
pub const THRESHOLD: f64 = 0.25;
/// [`THRESHOLD`] as the module's string config reads it.
pub const THRESHOLD_STR: &str = "0.25";

/// The module's default `auscout.max-toggle-bits`: a toggle mask with more
/// bits set is refused (each bit doubles a frame's probes). A fingerprint
/// whose server's cap is unknown stays within it.
pub const MAX_TOGGLE_BITS: u32 = 8;

/// The most toggle bits the fingerprint library puts in a mask: short clips
/// get a 9th from the probe budget when the server allows it (the shipped
/// `redis.conf` sets `auscout.max-toggle-bits 9`).
pub const FINGERPRINT_MAX_TOGGLE_BITS: u32 = 9;

/// Hard ceiling on toggle bits per frame, whatever a cap says: 2^16 probes
/// per frame is already far past any useful query.
pub const HARD_MAX_TOGGLE_BITS: u32 = 16;
