//! The tracks of an index: list (paged), one by id, add (upload), delete.
//! Writes need the API key when the service has one.

use std::collections::HashMap;

use auscout_client::store::{Access, TrackInfo};
use auscout_fingerprint::pipeline::HashOptions;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Serialize;

use crate::audio::{hash_whole, Upload};
use crate::auth::require_api_key;
use crate::error::ApiError;
use crate::params::{self, DEFAULT_PAGE, MAX_PAGE};
use crate::state::Shared;

/// The longest description accepted, in bytes.
const MAX_DESCR: usize = 1024;

#[derive(Debug, Serialize)]
pub struct TrackOut {
    pub id: u64,
    pub descr: String,
    pub frames: u64,
    /// Seconds of audio the frames cover (approximately: one frame per hop).
    pub duration_s: f64,
}

impl From<TrackInfo> for TrackOut {
    fn from(t: TrackInfo) -> Self {
        TrackOut {
            duration_s: params::round3(t.frames as f64 * hop_seconds()),
            id: t.id,
            descr: t.descr,
            frames: t.frames,
        }
    }
}

/// Seconds between frames at the default hashing rate.
fn hop_seconds() -> f64 {
    let sr = auscout_fingerprint::audiohash::MIN_SAMPLE_RATE;
    auscout_fingerprint::audiohash::hop_length(sr) as f64 / f64::from(sr)
}

#[derive(Debug, Serialize)]
pub struct TrackPage {
    pub key: String,
    pub tracks: Vec<TrackOut>,
    /// Pass as `cursor` for the next page; `null` after the last.
    pub next_cursor: Option<String>,
    /// Tracks in the whole index.
    pub total: i64,
}

/// `GET /v1/tracks?key=&cursor=&count=`
pub async fn list(
    State(state): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<TrackPage>, ApiError> {
    let key = params::key(&query)?;
    let cursor = params::cursor(query.get("cursor"))?;
    let count = match query.get("count") {
        Some(c) => params::bounded(c, "count", 1, MAX_PAGE)?,
        None => DEFAULT_PAGE,
    };
    let (tracks, next, total) = state
        .with_index(key.clone(), Access::Read, move |index| {
            let (tracks, next) = index.store.tracks(cursor, count)?;
            Ok((tracks, next, index.store.count()?))
        })
        .await?;
    Ok(Json(TrackPage {
        key: key.unwrap_or_else(|| state.config.key.clone()),
        tracks: tracks.into_iter().map(TrackOut::from).collect(),
        next_cursor: next.map(params::cursor_text),
        total,
    }))
}

/// `GET /v1/tracks/{id}?key=`
pub async fn get(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<TrackOut>, ApiError> {
    let key = params::key(&query)?;
    let id = params::track_id(&id)?;
    let track = state
        .with_index(key, Access::Read, move |index| index.store.track(id))
        .await?;
    match track {
        Some(t) => Ok(Json(t.into())),
        None => Err(ApiError::NotFound(format!("no track with id {id}"))),
    }
}

/// `POST /v1/tracks?key=&descr=`: the body is the audio (raw or the
/// multipart field `audio`); the description comes from `descr` (query
/// or form field), else the uploaded file's name.
pub async fn add(
    State(state): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    request: Request,
) -> Result<(StatusCode, Json<TrackOut>), ApiError> {
    // Unauthorised uploads are refused before their body is read; other
    // mistakes are answered after it (see the lookup handler).
    require_api_key(&state, &headers)?;
    let upload = Upload::read(&state, request).await?;
    let key = params::key(&query)?;
    let descr = query
        .get("descr")
        .or_else(|| upload.fields.get("descr"))
        .cloned()
        .or_else(|| upload.file_name.clone())
        .unwrap_or_default();
    if descr.trim().is_empty() {
        return Err(ApiError::BadRequest(
            "descr is required (a query parameter or a form field), or upload a named file".into(),
        ));
    }
    if descr.len() > MAX_DESCR {
        return Err(ApiError::BadRequest(format!(
            "descr must be at most {MAX_DESCR} bytes"
        )));
    }
    let opts = HashOptions {
        // Stored tracks need no toggles: those shape queries only.
        toggle_bits: 0,
        probe_budget: 0,
        ..HashOptions::default()
    };
    let fp = hash_whole(&state, upload, opts).await?;
    let frames = fp.hashes.len() as u64;
    let added_descr = descr.clone();
    let id = state
        .with_index(key.clone(), Access::Write, move |index| {
            index.store.add_track(&fp.hashes, &added_descr)
        })
        .await?;
    // The cached index may predate this index's first key or its layout.
    state.forget(key.as_deref());
    Ok((
        StatusCode::CREATED,
        Json(TrackInfo { id, descr, frames }.into()),
    ))
}

#[derive(Debug, Serialize)]
pub struct Deleted {
    pub id: u64,
    pub frames_removed: i64,
}

/// `DELETE /v1/tracks/{id}?key=`
pub async fn delete(
    State(state): State<Shared>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Result<Json<Deleted>, ApiError> {
    require_api_key(&state, &headers)?;
    let key = params::key(&query)?;
    let id = params::track_id(&id)?;
    let removed = state
        .with_index(key.clone(), Access::Read, move |index| {
            match index.store.track(id)? {
                None => Ok(None),
                Some(_) => index.store.delete(id).map(Some),
            }
        })
        .await?;
    state.forget(key.as_deref());
    match removed {
        Some(frames_removed) => Ok(Json(Deleted { id, frames_removed })),
        None => Err(ApiError::NotFound(format!("no track with id {id}"))),
    }
}
