//! `POST /v1/lookup`: an audio file in, the tracks it matches out.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use auscout_client::store::{Access, LookupOptions, TrackMatch};
use auscout_fingerprint::pipeline::HashOptions;
use axum::extract::{Query, Request, State};
use axum::Json;
use serde::Serialize;

use crate::audio::{hash_for_lookup, ms, Upload};
use crate::error::ApiError;
use crate::params::{self, LookupParams};
use crate::state::{blocking, Shared};

#[derive(Debug, Serialize)]
pub struct MatchOut {
    pub descr: String,
    pub id: u64,
    /// Seconds into the track where the upload starts.
    pub offset_s: f64,
    /// In [0, 1]: 0 chance, 1 identical.
    pub score: f64,
}

#[derive(Debug, Serialize)]
pub struct Timings {
    pub decode: f64,
    pub hash: f64,
    pub lookup: f64,
    pub total: f64,
}

#[derive(Debug, Serialize)]
pub struct LookupReply {
    pub key: String,
    /// Best first; empty when nothing matches.
    pub matches: Vec<MatchOut>,
    /// Seconds of audio used (at most `--max-lookup-seconds`).
    pub duration_s: f64,
    /// Frame hashes sent to the server.
    pub frames: usize,
    pub timings_ms: Timings,
}

pub async fn lookup(
    State(state): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
    request: Request,
) -> Result<Json<LookupReply>, ApiError> {
    let started = Instant::now();
    // The body is read before the parameters are checked: a client that
    // writes its whole upload before reading the answer would otherwise
    // see the connection close under it instead of the 400.
    let upload = Upload::read(&state, request).await?;
    let p = LookupParams::parse(&query)?;
    // The toggle-bit cap comes from the server; without one (Redis down)
    // the request fails here, before any CPU is spent on it.
    let key = p.key.clone();
    let cap = state
        .with_index(key.clone(), Access::Read, |index| Ok(index.max_toggle_bits))
        .await?;
    let opts = HashOptions {
        max_toggle_bits: cap,
        ..HashOptions::default()
    };
    let hashed = hash_for_lookup(&state, upload, opts, state.config.max_lookup_seconds).await?;
    let fp = hashed.fingerprint;
    let hop = fp.hop_seconds();
    let frames = fp.hashes.len();
    let lopts = LookupOptions {
        threshold: p.threshold,
        limit: p.limit,
    };
    let lookup_state = state.clone();
    let (found, lookup_time) = blocking(move || {
        lookup_fresh(
            &lookup_state,
            key.as_deref(),
            &fp.hashes,
            &fp.toggles,
            lopts,
        )
    })
    .await?;
    state.metrics.lookup(!found.is_empty());
    Ok(Json(LookupReply {
        key: p.key.unwrap_or_else(|| state.config.key.clone()),
        matches: found
            .into_iter()
            .map(|m| MatchOut {
                offset_s: params::round3(m.position as f64 * hop),
                descr: m.descr,
                id: m.id,
                score: params::round3(m.score),
            })
            .collect(),
        duration_s: params::round3(hashed.seconds),
        frames,
        timings_ms: Timings {
            decode: hashed.decode_ms,
            hash: hashed.hash_ms,
            lookup: ms(lookup_time),
            total: ms(started.elapsed()),
        },
    }))
}

/// Looks up on the open index; when a shard has no key (the index is new,
/// or a shard got its first track after the index was opened), opens the
/// index afresh once. An index with no tracks at all matches nothing.
fn lookup_fresh(
    state: &Shared,
    key: Option<&str>,
    hashes: &[u32],
    toggles: &[u32],
    options: LookupOptions,
) -> Result<(Vec<TrackMatch>, Duration), ApiError> {
    for attempt in 0..2 {
        let index = state.index(key, Access::Read)?;
        match index.store.lookup(hashes, toggles, options) {
            Ok(found) => return Ok(found),
            Err(e) if e.is_no_such_key() && attempt == 0 => state.forget(key),
            Err(e) if e.is_no_such_key() => return Ok((Vec::new(), Duration::ZERO)),
            Err(e) => {
                state.forget(key);
                return Err(e.into());
            }
        }
    }
    Ok((Vec::new(), Duration::ZERO))
}
