//! The router and its layers. Limits, timeouts, compression, CORS, tracing
//! and panic catching are tower layers; one middleware turns every error
//! response a layer produced (404 of the router, 413 of the body limit,
//! 503 of the timeout, 500 of a caught panic) into the JSON error shape and
//! records the request in the metrics.

use std::time::Instant;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::predicate::{NotForContentType, Predicate, SizeAbove};
use tower_http::compression::CompressionLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::{ApiError, ErrorCode};
use crate::routes::{lookup, monitor, page, status, tracks};
use crate::state::Shared;

/// Replies smaller than this many bytes go out uncompressed.
const COMPRESS_ABOVE: u16 = 1024;

/// Every route of the service.
pub fn router(state: Shared) -> Router {
    let config = &state.config;
    Router::new()
        .route("/", get(page::index))
        .route("/app.js", get(page::app_js))
        .route("/style.css", get(page::style_css))
        .route("/health", get(status::health))
        .route("/metrics", get(status::metrics))
        .route("/openapi.json", get(status::openapi))
        .route("/v1/lookup", post(lookup::lookup))
        .route("/v1/monitor", post(monitor::monitor_recording))
        .route("/v1/stats", get(status::stats))
        .route("/v1/tracks", get(tracks::list).post(tracks::add))
        .route("/v1/tracks/{id}", get(tracks::get).delete(tracks::delete))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        // Innermost first: the body limit, the timeout and caught panics are
        // turned into JSON errors by `observe`, which wraps them.
        .layer(DefaultBodyLimit::disable())
        .layer(RequestBodyLimitLayer::new(config.body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            config.request_timeout(),
        ))
        .layer(CatchPanicLayer::custom(|_| {
            ApiError::Internal("a handler panicked".into()).into_response()
        }))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(cors(&config.cors_origins))
        // Streamed lines must reach the client as they are written, not
        // when a compressor's buffer fills. A lookup's few hundred bytes
        // shrink by less than the gzip frame and the CPU it costs.
        .layer(
            CompressionLayer::new().compress_when(
                SizeAbove::new(COMPRESS_ABOVE)
                    .and(NotForContentType::GRPC)
                    .and(NotForContentType::IMAGES)
                    .and(NotForContentType::SSE)
                    .and(NotForContentType::const_new(monitor::NDJSON)),
            ),
        )
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

/// CORS for the configured origins; none configured: no CORS headers, so
/// browsers allow the page's own origin only.
fn cors(origins: &[String]) -> CorsLayer {
    let base = CorsLayer::new()
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            axum::http::header::CONTENT_TYPE,
            axum::http::header::AUTHORIZATION,
            axum::http::header::ACCEPT,
        ]);
    if origins.iter().any(|o| o == "*") {
        base.allow_origin(AllowOrigin::any())
    } else {
        let list: Vec<HeaderValue> = origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o.trim()).ok())
            .collect();
        base.allow_origin(AllowOrigin::list(list))
    }
}

/// Records the request in the metrics; an error response without a JSON
/// body (a layer's) gets one.
async fn observe(State(state): State<Shared>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let mut response = next.run(request).await;
    let status = response.status();
    let is_error = status.is_client_error() || status.is_server_error();
    if is_error && response.extensions().get::<ErrorCode>().is_none() {
        response = ApiError::from_status(status, state.config.body_limit).into_response();
    }
    let code = response.extensions().get::<ErrorCode>().map(|c| c.0);
    state.metrics.record(
        &method,
        &route,
        response.status().as_u16(),
        started.elapsed(),
        code,
    );
    response
}
