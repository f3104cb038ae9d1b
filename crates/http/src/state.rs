//! What every handler shares: the configuration, the open indexes, the cap
//! on CPU-bound work and the metrics.
//!
//! The Redis client library is synchronous, so every Redis call and every
//! decode runs on tokio's blocking threads, never on the async ones. Decoding
//! and hashing also hold a permit of [`AppState::cpu`]: at most `--workers`
//! of them run at once, the rest wait their turn without a thread.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use auscout_client::store::{Access, Endpoint, Store};
use auscout_client::ClientError;
use tokio::sync::Semaphore;

use crate::config::{Config, ReadFrom};
use crate::error::ApiError;
use crate::metrics::Metrics;

/// One open index and what the server told about it.
pub struct Index {
    pub store: Store,
    /// The server's `auscout.max-toggle-bits` (the module's default if it
    /// will not say).
    pub max_toggle_bits: u32,
}

pub struct AppState {
    pub config: Config,
    pub endpoint: Endpoint,
    pub cpu: Arc<Semaphore>,
    pub metrics: Metrics,
    /// Indexes opened so far, by key. A [`Store`] reads the index's layout
    /// and its existing shards when opened, so an entry is dropped (and
    /// opened again on next use) after a write, and after an error that
    /// may mean the layout changed or the server went away.
    indexes: Mutex<HashMap<String, Arc<Index>>>,
}

pub type Shared = Arc<AppState>;

impl AppState {
    pub fn new(config: Config) -> Result<Self, String> {
        config.validate()?;
        let endpoint = Endpoint::new(
            config.redis_url.as_deref(),
            &config.server,
            config.port,
            config.cluster,
        )
        .map_err(|e| e.to_string())?
        .read_from(match config.read_from {
            ReadFrom::Primary => auscout_client::ReadFrom::Primary,
            ReadFrom::Replicas => auscout_client::ReadFrom::Replicas,
        })
        .with_replicas(&config.replicas)
        .map_err(|e| e.to_string())?;
        Ok(AppState {
            cpu: Arc::new(Semaphore::new(config.workers())),
            config,
            endpoint,
            metrics: Metrics::default(),
            indexes: Mutex::new(HashMap::new()),
        })
    }

    /// The index `key` (the default one when `None`), opened if needed.
    /// Blocking: call from a blocking thread.
    pub fn index(&self, key: Option<&str>, access: Access) -> Result<Arc<Index>, ApiError> {
        let key = key.unwrap_or(&self.config.key);
        if access == Access::Read {
            if let Some(index) = self.indexes.lock().ok().and_then(|m| m.get(key).cloned()) {
                return Ok(index);
            }
        }
        let store = Store::open(self.endpoint.clone(), key, self.config.shards, access)?
            .with_retry_for(self.config.redis_retry());
        let max_toggle_bits = store
            .max_toggle_bits()
            .unwrap_or(auscout_core::defaults::MAX_TOGGLE_BITS);
        let index = Arc::new(Index {
            store,
            max_toggle_bits,
        });
        if access == Access::Read {
            if let Ok(mut m) = self.indexes.lock() {
                m.insert(key.to_owned(), index.clone());
            }
        }
        Ok(index)
    }

    /// Forgets the open index `key`: the next request opens it afresh.
    pub fn forget(&self, key: Option<&str>) {
        let key = key.unwrap_or(&self.config.key);
        if let Ok(mut m) = self.indexes.lock() {
            m.remove(key);
        }
    }

    /// Runs a Redis call on index `key` on a blocking thread. An error that
    /// may be stale state (a lost server, a shard that appeared) drops the
    /// open index, so the next request starts from a fresh one.
    pub async fn with_index<T, F>(
        self: &Shared,
        key: Option<String>,
        access: Access,
        call: F,
    ) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&Index) -> Result<T, ClientError> + Send + 'static,
    {
        let state = self.clone();
        blocking(move || {
            let index = state.index(key.as_deref(), access)?;
            call(&index).map_err(|e| {
                state.forget(key.as_deref());
                ApiError::from(e)
            })
        })
        .await
    }
}

/// Runs `work` on a blocking thread; a panic in it becomes a 500, not a crash.
pub async fn blocking<T, F>(work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ApiError> + Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) => Err(ApiError::Internal(format!("a worker failed: {e}"))),
    }
}
