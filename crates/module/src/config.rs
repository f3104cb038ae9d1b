//! Module configs, visible as `CONFIG GET auscout.*`, settable with
//! `CONFIG SET`, in `redis.conf` after the `loadmodule` line, or as
//! `loadmodule libauscout.so default-threshold 0.3 max-toggle-bits 6 threads 1`.
//!
//! Redis 7.0 has no float configs, so the threshold is a string config that
//! validates its value on every set (a bad value fails `CONFIG SET` and a bad
//! `loadmodule` argument fails the load).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

use auscout_core::defaults;

use redis_module::configuration::ConfigurationContext;
use redis_module::{ConfigurationValue, RedisError, RedisString};

/// `auscout.default-threshold`: lookups without an explicit threshold use it.
pub const DEFAULT_THRESHOLD: f64 = defaults::THRESHOLD;
pub const DEFAULT_THRESHOLD_STR: &str = defaults::THRESHOLD_STR;
/// `auscout.max-toggle-bits`: toggle masks with more set bits are refused;
/// each bit doubles the probes of a frame, so the cap bounds lookup time.
/// The default, 8, keeps a lookup within 2^8 probes per frame (the original
/// client's largest `-g`); the shipped redis.conf raises it to 9, what
/// the client's probe budget gives a 1–2 s query (5× the probes of a 10 s
/// query at 4 bits); the client asks the server and stays within its cap.
pub const DEFAULT_MAX_TOGGLE_BITS: i64 = defaults::MAX_TOGGLE_BITS as i64;
/// Upper bound of the toggle cap itself (2^16 probes per frame is already slow).
pub const MAX_TOGGLE_BITS_LIMIT: i64 = defaults::HARD_MAX_TOGGLE_BITS as i64;
/// `auscout.threads`: with 2 or more, lookups run on that many module
/// threads while the main thread serves other clients (see `offload`), and
/// one command may spread its work over that many threads — a lookup its
/// probes and verifications, an add (on the main thread, which it holds,
/// so writes stay atomic) the placing of its postings. 1 keeps all work on
/// the main thread.
pub const DEFAULT_THREADS: i64 = 2;
pub const THREADS_LIMIT: i64 = auscout_core::pool::MAX_THREADS as i64;
/// `auscout.poll-us`: after its last work, one idle module thread keeps
/// looking for the next for this long before it sleeps (see
/// `auscout_core::pool`): lower latency for lookups that come less than
/// that apart, for up to a core of CPU. 0 (the default) lets every idle
/// thread sleep at once.
pub const DEFAULT_POLL_US: i64 = auscout_core::pool::DEFAULT_POLL.as_micros() as i64;
/// One second: past that, polling saves nothing a wake-up costs.
pub const POLL_US_LIMIT: i64 = 1_000_000;
/// `auscout.hugepages`: keep the indexes on transparent huge pages (see
/// `hugepages`); `no` stops collapsing them (what is on huge pages stays).
pub const DEFAULT_HUGEPAGES: bool = true;
pub static HUGEPAGES: AtomicBool = AtomicBool::new(DEFAULT_HUGEPAGES);

pub fn hugepages() -> bool {
    HUGEPAGES.load(Ordering::Relaxed)
}

/// An `f64` in [0, 1] stored as its bits so it can be read without a lock.
pub struct ThresholdConfig(AtomicU64);

impl ThresholdConfig {
    pub const fn new(v: f64) -> Self {
        Self(AtomicU64::new(v.to_bits()))
    }

    pub fn value(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// Parses a threshold: a finite number in [0, 1].
pub fn parse_threshold(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("threshold '{s}' is not a number"))?;
    if v.is_nan() || !(0.0..=1.0).contains(&v) {
        return Err(format!("threshold '{s}' is outside [0, 1]"));
    }
    Ok(v)
}

impl ConfigurationValue<RedisString> for ThresholdConfig {
    fn get(&self, _ctx: &ConfigurationContext) -> RedisString {
        RedisString::create(None, self.value().to_string())
    }

    fn set(&self, _ctx: &ConfigurationContext, val: RedisString) -> Result<(), RedisError> {
        let s = val.try_as_str()?;
        let v = parse_threshold(s).map_err(RedisError::String)?;
        self.0.store(v.to_bits(), Ordering::Relaxed);
        Ok(())
    }
}

/// An integer config that checks its range on every set: Redis 7.0 checks
/// the bounds of `CONFIG SET`, but not of a default taken from `loadmodule`
/// arguments.
pub struct BoundedConfig {
    value: AtomicI64,
    name: &'static str,
    min: i64,
    max: i64,
    /// Tells the engine a new value, if it keeps its own copy.
    on_set: Option<fn(i64)>,
}

impl BoundedConfig {
    const fn new(name: &'static str, default: i64, min: i64, max: i64) -> Self {
        Self {
            value: AtomicI64::new(default),
            name,
            min,
            max,
            on_set: None,
        }
    }

    fn value(&self) -> i64 {
        self.value.load(Ordering::Relaxed)
    }
}

impl ConfigurationValue<i64> for BoundedConfig {
    fn get(&self, _ctx: &ConfigurationContext) -> i64 {
        self.value()
    }

    fn set(&self, _ctx: &ConfigurationContext, val: i64) -> Result<(), RedisError> {
        if !(self.min..=self.max).contains(&val) {
            return Err(RedisError::String(format!(
                "{} {val} is outside {}..={}",
                self.name, self.min, self.max
            )));
        }
        self.value.store(val, Ordering::Relaxed);
        if let Some(f) = self.on_set {
            f(val);
        }
        Ok(())
    }
}

pub static THRESHOLD: ThresholdConfig = ThresholdConfig::new(DEFAULT_THRESHOLD);
pub static MAX_TOGGLE_BITS: BoundedConfig = BoundedConfig::new(
    "max-toggle-bits",
    DEFAULT_MAX_TOGGLE_BITS,
    0,
    MAX_TOGGLE_BITS_LIMIT,
);
pub static THREADS: BoundedConfig = BoundedConfig {
    on_set: Some(engine_threads),
    ..BoundedConfig::new("threads", DEFAULT_THREADS, 1, THREADS_LIMIT)
};

pub static POLL_US: BoundedConfig = BoundedConfig {
    on_set: Some(engine_poll),
    ..BoundedConfig::new("poll-us", DEFAULT_POLL_US, 0, POLL_US_LIMIT)
};

fn engine_poll(us: i64) {
    let us = u64::try_from(us).unwrap_or(0);
    auscout_core::pool::set_poll(std::time::Duration::from_micros(us));
}

/// Inserts read the thread count from the engine (lookups get it per
/// call), and so does the pool that answers lookups off the main thread.
fn engine_threads(n: i64) {
    let n = usize::try_from(n).unwrap_or(1);
    auscout_core::pool::set_insert_threads(n);
    auscout_core::pool::set_job_threads(n);
}

pub fn default_threshold() -> f64 {
    THRESHOLD.value()
}

pub fn max_toggle_bits() -> u32 {
    u32::try_from(MAX_TOGGLE_BITS.value()).unwrap_or(0)
}

pub fn threads() -> usize {
    usize::try_from(THREADS.value()).unwrap_or(1)
}

/// Hands the configs the engine keeps its own copy of to it (at load, before
/// any `CONFIG SET`).
pub fn apply_to_engine() {
    engine_threads(THREADS.value());
    engine_poll(POLL_US.value());
}
