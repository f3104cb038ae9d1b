//! What the service and its index are doing: `/health`, `/v1/stats`,
//! `/metrics`, and the API description `/openapi.json`.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Instant;

use auscout_client::store::Access;
use axum::extract::{Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::Json;
use serde::Serialize;

use crate::error::ApiError;
use crate::params;
use crate::state::Shared;

/// When the service started (for `uptime_s`).
pub fn started() -> Instant {
    static STARTED: OnceLock<Instant> = OnceLock::new();
    *STARTED.get_or_init(Instant::now)
}

#[derive(Debug, Serialize)]
pub struct Health {
    pub status: &'static str,
    pub redis: String,
    pub key: String,
    pub tracks: i64,
}

/// `GET /health`: 200 when Redis answers and the module is loaded (the
/// default index's `auscout.count` works), else 503.
pub async fn health(State(state): State<Shared>) -> Result<Json<Health>, ApiError> {
    let tracks = state
        .with_index(None, Access::Read, |index| index.store.count())
        .await?;
    Ok(Json(Health {
        status: "ok",
        redis: state.endpoint.shown().to_owned(),
        key: state.config.key.clone(),
        tracks,
    }))
}

#[derive(Debug, Serialize)]
pub struct Stats {
    pub key: String,
    pub tracks: i64,
    pub frames: i64,
    /// Bytes the index takes in Redis (`MEMORY USAGE`).
    pub memory_bytes: i64,
    /// Lookups this service answered since it started, and how many matched.
    pub lookups_served: u64,
    pub lookups_matched: u64,
    pub uptime_s: f64,
    /// Whether writes (adding, deleting tracks) need the API key.
    pub api_key_required: bool,
}

/// `GET /v1/stats?key=`
pub async fn stats(
    State(state): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Stats>, ApiError> {
    let key = params::key(&query)?;
    let (tracks, frames, memory_bytes) = state
        .with_index(key.clone(), Access::Read, |index| {
            Ok((
                index.store.count()?,
                index.store.size()?,
                index.store.memory_bytes()?,
            ))
        })
        .await?;
    let (lookups_served, lookups_matched) = state.metrics.lookups();
    Ok(Json(Stats {
        key: key.unwrap_or_else(|| state.config.key.clone()),
        tracks,
        frames,
        memory_bytes,
        lookups_served,
        lookups_matched,
        uptime_s: params::round3(started().elapsed().as_secs_f64()),
        api_key_required: state.config.api_key.is_some(),
    }))
}

/// `GET /metrics`: Prometheus text format.
pub async fn metrics(State(state): State<Shared>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(),
    )
}

/// The OpenAPI description of the API, written by hand next to the routes.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// `GET /openapi.json`
pub async fn openapi() -> impl IntoResponse {
    ([(CONTENT_TYPE, "application/json")], OPENAPI)
}
