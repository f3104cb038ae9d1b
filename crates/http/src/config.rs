//! The service's flags. Each is also an environment variable
//! (`AUSCOUT_LISTEN`, `AUSCOUT_REDIS_URL`, …), so a container or a unit file
//! configures it without a command line.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;

/// Recognise audio over HTTP: a JSON API and a web page in front of Redis
/// with the auscout module.
///
/// Example: auscout-http --key music --api-key s3cret
///          then open http://127.0.0.1:8080/
#[derive(Debug, Clone, Parser)]
#[command(name = "auscout-http", version)]
pub struct Config {
    /// Address and port to listen on.
    #[arg(long, env = "AUSCOUT_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Redis as `redis://[user:pass@]host:port/db`; overrides --server/--port.
    #[arg(short = 'u', long = "url", env = "AUSCOUT_REDIS_URL")]
    pub redis_url: Option<String>,

    /// Redis host (a path starting with `/` is a Unix socket).
    #[arg(
        short = 's',
        long,
        env = "AUSCOUT_REDIS_HOST",
        default_value = "localhost"
    )]
    pub server: String,

    /// Redis port.
    #[arg(short = 'p', long, env = "AUSCOUT_REDIS_PORT", default_value_t = 6379)]
    pub port: u16,

    /// The server is a node of a Redis Cluster.
    #[arg(long, env = "AUSCOUT_CLUSTER")]
    pub cluster: bool,

    /// One logical index over N keys (as `auscoutclient --shards`).
    #[arg(long, env = "AUSCOUT_SHARDS")]
    pub shards: Option<u32>,

    /// Where lookups go: `replicas` sends them to replicas in sync (a
    /// cluster's, or those of one server: --replica, else those it lists),
    /// falling back to the primary. Writes always go to the primary.
    #[arg(long, env = "AUSCOUT_READ_FROM", value_enum, default_value_t = ReadFrom::Primary)]
    pub read_from: ReadFrom,

    /// A replica of the server (not of a cluster) for lookups, HOST:PORT;
    /// may be repeated (comma separated in the env var); implies
    /// --read-from replicas.
    #[arg(
        long = "replica",
        env = "AUSCOUT_REPLICAS",
        value_name = "HOST:PORT",
        value_delimiter = ','
    )]
    pub replicas: Vec<String>,

    /// The index a request uses when it names none (`?key=`).
    #[arg(short = 'k', long, env = "AUSCOUT_KEY", default_value = "auscout")]
    pub key: String,

    /// Bearer token required by writes (POST and DELETE on /v1/tracks);
    /// without it writes are open to anyone who reaches the service.
    #[arg(long, env = "AUSCOUT_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// Origins allowed to call the API from a browser (CORS), comma
    /// separated; `*` allows any. None: same-origin only.
    #[arg(long, env = "AUSCOUT_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Largest request body in bytes (uploads).
    #[arg(long, env = "AUSCOUT_BODY_LIMIT", default_value_t = 20 * 1024 * 1024)]
    pub body_limit: usize,

    /// Seconds a request may take before it is answered 503.
    #[arg(long, env = "AUSCOUT_REQUEST_TIMEOUT", default_value_t = 30.0)]
    pub request_timeout: f64,

    /// Decodes and hashes running at once (CPU-bound work, off the async
    /// threads); 0 = the number of cores.
    #[arg(long, env = "AUSCOUT_WORKERS", default_value_t = 0)]
    pub workers: usize,

    /// Seconds a Redis call retries a lost connection before the request
    /// is answered 503.
    #[arg(long, env = "AUSCOUT_REDIS_RETRY", default_value_t = 2.0)]
    pub redis_retry: f64,

    /// Look a clip up as played only: no fallback lookups undoing a change
    /// of speed or pitch when it matches nothing (faster for audio that
    /// matches nothing, as a microphone in a quiet room).
    #[arg(long, env = "AUSCOUT_NO_FALLBACKS")]
    pub no_fallbacks: bool,

    /// Most seconds of an upload used for a lookup (a long recording is cut).
    #[arg(long, env = "AUSCOUT_MAX_LOOKUP_SECONDS", default_value_t = 60.0)]
    pub max_lookup_seconds: f64,
}

/// `--read-from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReadFrom {
    Primary,
    Replicas,
}

impl Config {
    pub fn request_timeout(&self) -> Duration {
        seconds(self.request_timeout, 30.0)
    }

    pub fn redis_retry(&self) -> Duration {
        seconds(self.redis_retry, 2.0)
    }

    pub fn workers(&self) -> usize {
        if self.workers > 0 {
            self.workers
        } else {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        }
    }

    /// Checks what clap cannot; the message names the flag.
    pub fn validate(&self) -> Result<(), String> {
        if self.key.is_empty() {
            return Err("--key must not be empty".into());
        }
        if self.body_limit == 0 {
            return Err("--body-limit must be positive".into());
        }
        for (name, v) in [
            ("--request-timeout", self.request_timeout),
            ("--redis-retry", self.redis_retry),
            ("--max-lookup-seconds", self.max_lookup_seconds),
        ] {
            if !v.is_finite() || v <= 0.0 {
                return Err(format!("{name} must be a positive number of seconds"));
            }
        }
        if self.shards == Some(0) {
            return Err("--shards must be at least 1".into());
        }
        if matches!(&self.api_key, Some(k) if k.is_empty()) {
            return Err("--api-key must not be empty".into());
        }
        Ok(())
    }
}

fn seconds(v: f64, default: f64) -> Duration {
    Duration::try_from_secs_f64(v).unwrap_or(Duration::from_secs_f64(default))
}
