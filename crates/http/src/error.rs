//! The one error type of the service. Every error renders as
//! `{"error":{"code":"…","message":"…"}}` with the status its code implies;
//! messages say what to change, never how the service is built inside.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use auscout_client::ClientError;
use auscout_fingerprint::FingerprintError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A query parameter, path segment or form field is wrong (400).
    #[error("{0}")]
    BadRequest(String),
    /// A write without the right `Authorization: Bearer` token (401).
    #[error("missing or wrong API key: send Authorization: Bearer <key>")]
    Unauthorized,
    /// No such track, or no such route (404).
    #[error("{0}")]
    NotFound(String),
    /// The body is over the configured limit (413).
    #[error("the request body is over the limit of {0} bytes")]
    TooLarge(usize),
    /// The route exists, the method does not (405).
    #[error("method not allowed on this route")]
    MethodNotAllowed,
    /// Audio in a format or codec that cannot be decoded (415).
    #[error("{0}")]
    UnsupportedAudio(String),
    /// Audio too short for one frame hash (422).
    #[error("{0}")]
    TooShort(String),
    /// Redis is unreachable or not answering (503).
    #[error("{0}")]
    Unavailable(String),
    /// The request took longer than the configured timeout (503).
    #[error("the request took too long and was stopped")]
    Timeout,
    /// A bug; the details go to the log, not to the client (500).
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedAudio(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::TooShort(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unavailable(_) | ApiError::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The machine-readable code (stable: clients branch on it).
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::TooLarge(_) => "payload_too_large",
            ApiError::UnsupportedAudio(_) => "unsupported_audio",
            ApiError::TooShort(_) => "audio_too_short",
            ApiError::Unavailable(_) => "redis_unavailable",
            ApiError::Timeout => "timeout",
            ApiError::Internal(_) => "internal",
        }
    }

    /// The error a bare status stands for, when a layer (routing, the body
    /// limit, the timeout) answered before any handler ran.
    pub fn from_status(status: StatusCode, body_limit: usize) -> ApiError {
        match status {
            StatusCode::NOT_FOUND => ApiError::NotFound("no such route".into()),
            StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge(body_limit),
            // Only the timeout layer answers a bare 503 (handlers' 503s
            // carry their own JSON).
            StatusCode::REQUEST_TIMEOUT | StatusCode::SERVICE_UNAVAILABLE => ApiError::Timeout,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                ApiError::UnsupportedAudio("unsupported content type".into())
            }
            s if s.is_client_error() => {
                ApiError::BadRequest(s.canonical_reason().unwrap_or("bad request").to_lowercase())
            }
            _ => ApiError::Internal(format!("status {status}")),
        }
    }
}

#[derive(Serialize)]
struct Body<'a> {
    error: Inner<'a>,
}

#[derive(Serialize)]
struct Inner<'a> {
    code: &'a str,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(detail) = &self {
            tracing::error!("internal error: {detail}");
        }
        let status = self.status();
        let body = Body {
            error: Inner {
                code: self.code(),
                message: self.to_string(),
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response.extensions_mut().insert(ErrorCode(self.code()));
        response
    }
}

/// The error code of a response, for the metrics.
#[derive(Debug, Clone, Copy)]
pub struct ErrorCode(pub &'static str);

impl From<FingerprintError> for ApiError {
    fn from(e: FingerprintError) -> Self {
        match e {
            FingerprintError::Unsupported(_) | FingerprintError::Decode(_) => {
                ApiError::UnsupportedAudio(format!("cannot decode the audio: {e}"))
            }
            // In memory, a read error can only be the data ending early.
            FingerprintError::Io(_) => {
                ApiError::UnsupportedAudio(format!("cannot decode the audio: {e}"))
            }
            FingerprintError::TooShort { .. } => ApiError::TooShort(e.to_string()),
            FingerprintError::BadOption(_) => ApiError::BadRequest(e.to_string()),
            FingerprintError::Resample(_) => ApiError::Internal(e.to_string()),
        }
    }
}

impl From<ClientError> for ApiError {
    fn from(e: ClientError) -> Self {
        if e.is_unreachable() {
            ApiError::Unavailable(format!("Redis is unavailable: {e}"))
        } else {
            match e {
                // An error reply: the module is missing, the key holds
                // another type, the server refuses (OOM, read-only) …
                ClientError::Redis(_) | ClientError::Layout { .. } => {
                    ApiError::Unavailable(format!("Redis refused the request: {e}"))
                }
                other => ApiError::Internal(other.to_string()),
            }
        }
    }
}
