//! Uploaded audio: read from a raw body (with its `Content-Type`) or from a
//! multipart form (field `audio`, plus text fields), then decoded and hashed
//! with the fingerprint library on a blocking thread under the CPU cap.
//! (A lookup's decode, hash and fallbacks run in its handler, under the
//! same cap.)

use std::collections::HashMap;
use std::io::Cursor;

use auscout_fingerprint::decode::Decoder;
use auscout_fingerprint::pipeline::{fingerprint_source, HashOptions};
use auscout_fingerprint::Fingerprint;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header::CONTENT_TYPE;

use crate::error::ApiError;
use crate::state::{blocking, Shared};

/// The multipart field that carries the audio.
pub const AUDIO_FIELD: &str = "audio";

/// An uploaded file and the form's text fields.
pub struct Upload {
    pub bytes: Bytes,
    /// A format hint for the decoder (a file extension), from the
    /// `Content-Type` or the uploaded file's name.
    pub hint: Option<String>,
    /// The uploaded file's name, if the form gave one.
    pub file_name: Option<String>,
    /// Text fields of a multipart form (empty for a raw body).
    pub fields: HashMap<String, String>,
}

impl Upload {
    /// Reads the request body: multipart (`audio` field) or raw.
    pub async fn read(state: &Shared, request: Request) -> Result<Upload, ApiError> {
        let limit = state.config.body_limit;
        let content_type = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.to_ascii_lowercase());
        let too_large = |status: axum::http::StatusCode, text: String| {
            if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge(limit)
            } else {
                ApiError::BadRequest(text)
            }
        };
        if content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("multipart/form-data"))
        {
            let mut form = Multipart::from_request(request, state).await.map_err(|e| {
                too_large(e.status(), format!("bad multipart form: {}", e.body_text()))
            })?;
            let mut upload = Upload {
                bytes: Bytes::new(),
                hint: None,
                file_name: None,
                fields: HashMap::new(),
            };
            let mut found = false;
            while let Some(field) = form.next_field().await.map_err(|e| {
                too_large(e.status(), format!("bad multipart form: {}", e.body_text()))
            })? {
                let name = field.name().unwrap_or_default().to_owned();
                if name == AUDIO_FIELD {
                    upload.file_name = field.file_name().map(str::to_owned);
                    upload.hint = upload
                        .file_name
                        .as_deref()
                        .and_then(extension)
                        .or_else(|| field.content_type().and_then(hint_for_type));
                    upload.bytes = field.bytes().await.map_err(|e| {
                        too_large(e.status(), format!("bad multipart form: {}", e.body_text()))
                    })?;
                    found = true;
                } else {
                    let text = field.text().await.map_err(|e| {
                        too_large(e.status(), format!("bad multipart form: {}", e.body_text()))
                    })?;
                    upload.fields.insert(name, text);
                }
            }
            if !found {
                return Err(ApiError::BadRequest(format!(
                    "the form has no `{AUDIO_FIELD}` file field"
                )));
            }
            Ok(upload)
        } else {
            let bytes = Bytes::from_request(request, state)
                .await
                .map_err(|e| too_large(e.status(), e.body_text()))?;
            Ok(Upload {
                bytes,
                hint: content_type.as_deref().and_then(hint_for_type),
                file_name: None,
                fields: HashMap::new(),
            })
        }
    }
}

/// A file name's extension, lower case.
fn extension(name: &str) -> Option<String> {
    let (_, ext) = name.rsplit_once('.')?;
    (!ext.is_empty() && ext.len() <= 8).then(|| ext.to_ascii_lowercase())
}

/// The decoder hint for a MIME type (parameters such as `;codecs=opus` ignored).
fn hint_for_type(mime: &str) -> Option<String> {
    let base = mime
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let ext = match base.as_str() {
        "audio/wav" | "audio/wave" | "audio/x-wav" | "audio/vnd.wave" => "wav",
        "audio/mpeg" | "audio/mp3" => "mp3",
        "audio/flac" | "audio/x-flac" => "flac",
        "audio/ogg" | "application/ogg" | "audio/opus" => "ogg",
        "audio/webm" | "video/webm" => "webm",
        "audio/mp4" | "audio/x-m4a" | "audio/m4a" | "video/mp4" | "audio/aac" => "m4a",
        "audio/aiff" | "audio/x-aiff" => "aiff",
        "audio/x-caf" => "caf",
        "audio/x-matroska" | "video/x-matroska" => "mkv",
        _ => return None,
    };
    Some(ext.to_owned())
}

/// Decodes and hashes a whole upload in one streaming pass (for adding a
/// track: bounded memory whatever its length); runs under the CPU cap.
pub async fn hash_whole(
    state: &Shared,
    upload: Upload,
    opts: HashOptions,
) -> Result<Fingerprint, ApiError> {
    if upload.bytes.is_empty() {
        return Err(ApiError::UnsupportedAudio("the upload is empty".into()));
    }
    // The permit moves into the work: a request that times out stops
    // waiting, but its decode holds the permit until it really ends.
    let permit = cpu_permit(state).await?;
    blocking(move || {
        let _permit = permit;
        let source = Box::new(Cursor::new(upload.bytes));
        Ok(fingerprint_source(source, upload.hint.as_deref(), &opts)?)
    })
    .await
}

/// The first `max_seconds` of the audio as mono samples at its own rate.
/// Stops at a change of sample rate (a chained stream): a lookup needs
/// one stretch of audio, not all of it.
pub fn decode_mono(
    bytes: Bytes,
    hint: Option<&str>,
    max_seconds: f64,
) -> Result<(u32, Vec<f32>), ApiError> {
    let mut decoder = Decoder::from_source(Box::new(Cursor::new(bytes)), hint)?;
    let mut rate = 0;
    let mut mono = Vec::new();
    while let Some(chunk) = decoder.next_chunk()? {
        if rate == 0 {
            rate = chunk.sample_rate;
        } else if chunk.sample_rate != rate {
            break;
        }
        let limit = (max_seconds * f64::from(rate)) as usize;
        let room = limit.saturating_sub(mono.len());
        mono.extend_from_slice(&chunk.samples[..chunk.samples.len().min(room)]);
        if mono.len() >= limit {
            break;
        }
    }
    if rate == 0 {
        return Err(ApiError::UnsupportedAudio(
            "the upload holds no audio samples".into(),
        ));
    }
    Ok((rate, mono))
}

pub async fn cpu_permit(state: &Shared) -> Result<tokio::sync::OwnedSemaphorePermit, ApiError> {
    state
        .cpu
        .clone()
        .acquire_owned()
        .await
        .map_err(|_| ApiError::Unavailable("the service is shutting down".into()))
}

pub fn ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mime_types_give_decoder_hints() {
        assert_eq!(
            hint_for_type("audio/webm;codecs=opus").as_deref(),
            Some("webm")
        );
        assert_eq!(hint_for_type("Audio/MPEG").as_deref(), Some("mp3"));
        assert_eq!(hint_for_type("audio/mp4").as_deref(), Some("m4a"));
        assert_eq!(hint_for_type("application/octet-stream"), None);
        assert_eq!(extension("clip.Opus").as_deref(), Some("opus"));
        assert_eq!(extension("noext"), None);
    }
}
