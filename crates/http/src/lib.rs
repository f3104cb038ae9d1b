//! auscout-http: recognise audio over HTTP. A JSON API and a web page in
//! front of Redis with the auscout module, built on axum and tower-http,
//! reusing the fingerprint library (decode, hash) and the client library
//! (the Redis calls, one server or a Cluster).
//!
//! - [`config`]: the flags (each also an environment variable)
//! - [`app`]: the router and its layers
//! - [`routes`]: the handlers, one file per group
//! - [`audio`]: uploads → fingerprints, off the async threads, under a cap
//! - [`state`]: what the handlers share; [`error`]: the JSON error type

#![forbid(unsafe_code)]

pub mod app;
pub mod audio;
pub mod auth;
pub mod config;
pub mod error;
pub mod metrics;
pub mod params;
pub mod routes;
pub mod state;

use std::future::Future;
use std::sync::Arc;

pub use config::Config;

/// Serves until `shutdown` completes, then finishes the requests in flight.
pub async fn serve(
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), String> {
    let listen = config.listen;
    let state = Arc::new(state::AppState::new(config)?);
    routes::status::started();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    tracing::info!(
        "auscout-http listening on http://{local}/ (Redis {}, index {})",
        state.endpoint.shown(),
        state.config.key
    );
    axum::serve(listener, app::router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(|e| format!("server error: {e}"))
}
