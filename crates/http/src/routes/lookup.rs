//! `POST /v1/lookup`: an audio file in, the tracks it matches out.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use auscout_client::recognise::{recognise, Clip, Fallbacks, Warp};
use auscout_client::store::{Access, LookupOptions, TrackMatch};
use auscout_fingerprint::pipeline::HashOptions;
use axum::extract::{Query, Request, State};
use axum::Json;
use serde::Serialize;

use crate::audio::{cpu_permit, decode_mono, ms, Upload};
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
    /// When the clip was found only undone by a warp (see the client
    /// library's fallbacks): its tempo relative to the track's (1.07: 7 %
    /// fast) and its pitch; absent when found as played.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pitch: Option<f64>,
    /// Lookups made: 1, or more when fallbacks were tried.
    pub lookups: usize,
    pub timings_ms: Timings,
}

/// What the blocking part of a lookup found.
struct Found {
    matches: Vec<TrackMatch>,
    warp: Warp,
    lookups: usize,
    hop: f64,
    frames: usize,
    seconds: f64,
    decode: Duration,
    hash: Duration,
    lookup: Duration,
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
    let lopts = LookupOptions {
        threshold: p.threshold,
        limit: p.limit,
        with_speed: false,
    };
    let fallbacks = if state.config.no_fallbacks {
        Fallbacks::none()
    } else {
        Fallbacks::default()
    };
    let max_seconds = state.config.max_lookup_seconds;
    // Decoding, hashing and the fallbacks' warps are CPU work: one permit
    // covers them (and the lookups in between, a millisecond or two each).
    let permit = cpu_permit(&state).await?;
    let work_state = state.clone();
    let found = blocking(move || {
        let _permit = permit;
        let started = Instant::now();
        let (rate, mono) = decode_mono(upload.bytes, upload.hint.as_deref(), max_seconds)?;
        let decoded = Instant::now();
        let clip = Clip::from_samples(&mono, rate, &opts)?;
        let hash = decoded.elapsed();
        let mut lookup = Duration::ZERO;
        let recognition = recognise(&clip, &fallbacks, |fp, attempt| {
            let options = attempt.options(lopts);
            let (mut matches, took) = lookup_fresh(
                &work_state,
                key.as_deref(),
                &fp.hashes,
                &fp.toggles,
                options,
            )?;
            if let Some(limit) = lopts.limit {
                matches.truncate(limit as usize);
            }
            lookup += took;
            Ok::<_, ApiError>(matches)
        })?;
        let fp = clip.fingerprint();
        Ok(Found {
            matches: recognition.matches,
            warp: recognition.warp,
            lookups: recognition.passes.len(),
            hop: fp.hop_seconds(),
            frames: fp.hashes.len(),
            seconds: mono.len() as f64 / f64::from(rate.max(1)),
            decode: decoded - started,
            hash,
            lookup,
        })
    })
    .await?;
    state.metrics.lookup(!found.matches.is_empty());
    let warped = found.warp != Warp::NONE;
    Ok(Json(LookupReply {
        key: p.key.unwrap_or_else(|| state.config.key.clone()),
        matches: found
            .matches
            .into_iter()
            .map(|m| MatchOut {
                offset_s: params::round3(m.position as f64 * found.hop),
                descr: m.descr,
                id: m.id,
                score: params::round3(m.score),
            })
            .collect(),
        duration_s: params::round3(found.seconds),
        frames: found.frames,
        speed: warped.then_some(found.warp.tempo),
        pitch: warped.then_some(found.warp.pitch),
        lookups: found.lookups,
        timings_ms: Timings {
            decode: ms(found.decode),
            hash: ms(found.hash),
            lookup: ms(found.lookup),
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
