//! `POST /v1/monitor`: a long recording in, what played when out — the
//! segments `auscoutclient monitor --csv` prints, through the same engine
//! (`auscout-monitor`). One JSON document by default; with
//! `Accept: application/x-ndjson`, one JSON line per segment as soon as it
//! ends, then a last line `{"done":…}` (or `{"error":…}` when the work
//! fails half-way, the segments already sent being valid).
//!
//! The recording is decoded as it is monitored, one chunk at a time, each
//! chunk under a permit of the CPU cap: lookups waiting for a permit get
//! their turn between a monitor's chunks. The work stops when the client
//! goes away or the request times out.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Cursor;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use auscout_client::store::{Access, LookupOptions};
use auscout_fingerprint::decode::Decoder;
use auscout_monitor::{
    monitor, Catalog, Chunk, EventKind, Found, MonitorError, Options, SampleSource, Segment,
    StoreCatalog,
};
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use crate::audio::{ms, Upload};
use crate::error::ApiError;
use crate::params::{self, round3};
use crate::state::{blocking, Shared};

/// The media type of the streamed reply.
pub const NDJSON: &str = "application/x-ndjson";

/// One segment: the columns of `auscoutclient monitor --csv`, plus the
/// playback speed when it is not 1.
#[derive(Debug, Clone, Serialize)]
pub struct SegmentOut {
    pub stream: String,
    pub track: String,
    pub id: u64,
    pub stream_start_s: f64,
    pub stream_end_s: f64,
    pub track_start_s: f64,
    pub track_end_s: f64,
    pub score: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed: Option<f64>,
}

impl SegmentOut {
    fn new(stream: &str, s: &Segment) -> Self {
        SegmentOut {
            stream: stream.to_owned(),
            track: s.track.clone(),
            id: s.id,
            stream_start_s: round3(s.stream_start),
            stream_end_s: round3(s.stream_end),
            track_start_s: round3(s.track_start),
            track_end_s: round3(s.track_end),
            score: round3(s.score),
            speed: (s.speed != 1.0).then_some(s.speed),
        }
    }
}

/// What a whole recording gave.
#[derive(Debug, Serialize)]
pub struct Summary {
    /// Seconds of audio monitored.
    pub duration_s: f64,
    pub segments: usize,
    pub lookups: u64,
    pub timings_ms: MonitorTimings,
}

#[derive(Debug, Serialize)]
pub struct MonitorTimings {
    pub total: f64,
}

#[derive(Debug, Serialize)]
pub struct MonitorReply {
    pub key: String,
    pub stream: String,
    /// In the order they ended in the recording.
    pub segments: Vec<SegmentOut>,
    pub duration_s: f64,
    pub lookups: u64,
    pub timings_ms: MonitorTimings,
}

/// The parameters of `POST /v1/monitor`.
struct MonitorParams {
    key: Option<String>,
    threshold: Option<f64>,
    options: Options,
    stream: Option<String>,
}

impl MonitorParams {
    fn parse(query: &HashMap<String, String>) -> Result<Self, ApiError> {
        let lookup = params::LookupParams::parse(query)?;
        let seconds = |name: &str, min: f64, max: f64| -> Result<Option<f64>, ApiError> {
            match query.get(name) {
                None => Ok(None),
                Some(v) => match v.parse::<f64>() {
                    Ok(s) if (min..=max).contains(&s) => Ok(Some(s)),
                    _ => Err(ApiError::BadRequest(format!(
                        "{name} must be a number of seconds in [{min}, {max}], not {v:?}"
                    ))),
                },
            }
        };
        let defaults = Options::default();
        let options = Options {
            gap: seconds("gap", 0.0, 60.0)?.unwrap_or(defaults.gap),
            outro: seconds("outro", 0.0, 60.0)?.unwrap_or(defaults.outro),
            window: seconds("window", 1.0, 30.0)?.unwrap_or(defaults.window),
            ..defaults
        };
        let stream = match query.get("stream") {
            Some(s) if s.len() > 1024 => {
                return Err(ApiError::BadRequest(
                    "stream must be at most 1024 bytes".into(),
                ))
            }
            other => other.cloned(),
        };
        Ok(MonitorParams {
            key: lookup.key,
            threshold: lookup.threshold,
            options,
            stream,
        })
    }
}

pub async fn monitor_recording(
    State(state): State<Shared>,
    Query(query): Query<HashMap<String, String>>,
    request: Request,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let streamed = request
        .headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().contains(NDJSON));
    // The body first, as for lookups (see there).
    let upload = Upload::read(&state, request).await?;
    let p = MonitorParams::parse(&query)?;
    if upload.bytes.is_empty() {
        return Err(ApiError::UnsupportedAudio("the upload is empty".into()));
    }
    let stream = p
        .stream
        .clone()
        .or_else(|| upload.file_name.clone())
        .unwrap_or_else(|| "-".to_owned());
    let key = p.key.clone().unwrap_or_else(|| state.config.key.clone());
    let job = Job {
        state: state.clone(),
        upload,
        params: p,
        stream: stream.clone(),
        cancelled: Arc::new(AtomicBool::new(false)),
        runtime: tokio::runtime::Handle::current(),
    };
    if streamed {
        return Ok(stream_reply(job, started).await);
    }
    // Dropped (the client went away, the request timed out): the work stops.
    let cancel = CancelOnDrop(job.cancelled.clone());
    let outcome = blocking(move || {
        let mut segments = Vec::new();
        let ran = job.run(&mut |s| segments.push(s), &mut || ())?;
        Ok((ran, segments))
    })
    .await;
    drop(cancel);
    let (ran, segments) = outcome?;
    let summary = ran.summary(segments.len(), started);
    Ok(Json(MonitorReply {
        key,
        stream,
        segments,
        duration_s: summary.duration_s,
        lookups: summary.lookups,
        timings_ms: summary.timings_ms,
    })
    .into_response())
}

/// The streamed reply: the status is decided once the recording decodes and
/// the index answers (so those errors still get their status); then lines.
async fn stream_reply(job: Job, started: Instant) -> Response {
    let (lines, rx) = mpsc::channel::<Bytes>(64);
    let (ready_tx, ready_rx) = oneshot::channel::<Result<(), ApiError>>();
    let cancelled = job.cancelled.clone();
    let work = tokio::task::spawn_blocking(move || {
        let mut ready = Some(ready_tx);
        let mut count = 0usize;
        let stop = job.cancelled.clone();
        let send = |value: &dyn erased::Line| {
            let mut line = value.to_json();
            line.push(b'\n');
            if lines.blocking_send(Bytes::from(line)).is_err() {
                stop.store(true, Ordering::Relaxed);
            }
        };
        let result = job.run(
            &mut |s| {
                count += 1;
                send(&s);
            },
            &mut || {
                if let Some(r) = ready.take() {
                    let _ = r.send(Ok(()));
                }
            },
        );
        match (result, ready.take()) {
            // Failed before the recording decoded: the error gets its status.
            (Err(e), Some(r)) => {
                let _ = r.send(Err(e));
            }
            (Err(e), None) => send(&ErrorLine::from(&e)),
            (Ok(ran), r) => {
                if let Some(r) = r {
                    let _ = r.send(Ok(()));
                }
                send(&Done {
                    done: ran.summary(count, started),
                });
            }
        }
    });
    match ready_rx.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return e.into_response(),
        Err(_) => {
            let e = match work.await {
                Err(e) => format!("a worker failed: {e}"),
                Ok(()) => "the monitor ended without an answer".to_owned(),
            };
            return ApiError::Internal(e).into_response();
        }
    }
    // The body ends when the work drops its sender; a client that goes
    // away drops the receiver, and the work notices on its next chunk.
    let body = futures_util::stream::unfold((rx, CancelOnDrop(cancelled)), |(mut rx, c)| async {
        rx.recv()
            .await
            .map(|line| (Ok::<_, Infallible>(line), (rx, c)))
    });
    let mut response = Body::from_stream(body).into_response();
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(NDJSON));
    response
}

/// A JSON line of the streamed reply.
mod erased {
    pub trait Line {
        fn to_json(&self) -> Vec<u8>;
    }
    impl<T: serde::Serialize> Line for T {
        fn to_json(&self) -> Vec<u8> {
            serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec())
        }
    }
}

#[derive(Serialize)]
struct Done {
    done: Summary,
}

#[derive(Serialize)]
struct ErrorLine {
    error: ErrorBody,
}

#[derive(Serialize)]
struct ErrorBody {
    code: &'static str,
    message: String,
}

impl From<&ApiError> for ErrorLine {
    fn from(e: &ApiError) -> Self {
        if let ApiError::Internal(detail) = e {
            tracing::error!("internal error: {detail}");
        }
        ErrorLine {
            error: ErrorBody {
                code: e.code(),
                message: e.to_string(),
            },
        }
    }
}

/// Sets the flag when dropped.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// One recording to monitor.
struct Job {
    state: Shared,
    upload: Upload,
    params: MonitorParams,
    stream: String,
    cancelled: Arc<AtomicBool>,
    runtime: tokio::runtime::Handle,
}

/// What a finished run measured.
struct Ran {
    seconds: f64,
    lookups: u64,
}

impl Ran {
    fn summary(&self, segments: usize, started: Instant) -> Summary {
        Summary {
            duration_s: round3(self.seconds),
            segments,
            lookups: self.lookups,
            timings_ms: MonitorTimings {
                total: ms(started.elapsed()),
            },
        }
    }
}

impl Job {
    /// Monitors the whole recording (blocking); `on_segment` gets each
    /// segment as it ends; `on_ready` is called once, when the index has
    /// answered and a frame's audio decoded, before any segment.
    fn run(
        self,
        on_segment: &mut dyn FnMut(SegmentOut),
        on_ready: &mut dyn FnMut(),
    ) -> Result<Ran, ApiError> {
        let Job {
            state,
            upload,
            params: p,
            stream,
            cancelled,
            runtime,
        } = self;
        let key = p.key.as_deref();
        let index = state.index(key, Access::Read)?;
        let tracks = index.store.count().inspect_err(|_| state.forget(key))?;
        let options = LookupOptions {
            threshold: p.threshold,
            limit: None,
            with_speed: false,
        };
        let store_catalog;
        let catalog: &dyn Catalog = if tracks > 0 {
            store_catalog = StoreCatalog::new(&index.store, options);
            &store_catalog
        } else {
            // No index, or an empty one: nothing can be heard, but the
            // recording is still read (a bad one is still refused).
            &NoTracks
        };
        let counting = Counting {
            inner: catalog,
            lookups: AtomicU64::new(0),
        };
        let sr = p.options.sr;
        let frame = auscout_fingerprint::audiohash::frame_length(sr) as f64 / f64::from(sr);
        let mut source = UploadSource {
            decoder: Decoder::from_source(
                Box::new(Cursor::new(upload.bytes)),
                upload.hint.as_deref(),
            )?,
            permits: state.cpu.clone(),
            permit: None,
            runtime,
            cancelled,
            seconds: 0.0,
            frame_seconds: frame,
            on_ready: Some(on_ready),
        };
        let result = monitor(&mut source, &counting, p.options, &mut |event| {
            if event.kind == EventKind::End {
                on_segment(SegmentOut::new(&stream, &event.segment));
            }
        });
        if let Err(e) = result {
            if matches!(e, MonitorError::Server(_)) {
                state.forget(key);
            }
            return Err(monitor_error(e));
        }
        if source.seconds < frame {
            return Err(ApiError::TooShort(format!(
                "the recording is {:.3} s long, shorter than one frame ({frame:.3} s)",
                source.seconds
            )));
        }
        Ok(Ran {
            seconds: source.seconds,
            lookups: counting.lookups.load(Ordering::Relaxed),
        })
    }
}

fn monitor_error(e: MonitorError) -> ApiError {
    match e {
        MonitorError::Audio(e) => e.into(),
        MonitorError::Server(e) => e.into(),
        MonitorError::BadOption(m) => ApiError::BadRequest(m),
        MonitorError::Read(m) => ApiError::Unavailable(m),
    }
}

/// The uploaded recording as the monitor's source: decoded one chunk at a
/// time, each under a permit of the CPU cap; ends early (an error) once the
/// request is cancelled.
struct UploadSource<'a> {
    decoder: Decoder,
    permits: Arc<Semaphore>,
    permit: Option<OwnedSemaphorePermit>,
    runtime: tokio::runtime::Handle,
    cancelled: Arc<AtomicBool>,
    seconds: f64,
    /// One frame's audio: a recording shorter than that is refused.
    frame_seconds: f64,
    /// Called once a frame's audio decoded.
    on_ready: Option<&'a mut dyn FnMut()>,
}

impl SampleSource for UploadSource<'_> {
    fn next_chunk(&mut self) -> Result<Option<Chunk<'_>>, MonitorError> {
        // The last chunk's work is done: wait in line again.
        self.permit = None;
        if self.cancelled.load(Ordering::Relaxed) {
            return Err(MonitorError::Read("the request was cancelled".into()));
        }
        let permit = self
            .runtime
            .block_on(self.permits.clone().acquire_owned())
            .map_err(|_| MonitorError::Read("the service is shutting down".into()))?;
        self.permit = Some(permit);
        match self.decoder.next_chunk()? {
            Some(c) => {
                self.seconds += c.samples.len() as f64 / f64::from(c.sample_rate.max(1));
                if self.seconds >= self.frame_seconds {
                    if let Some(ready) = self.on_ready.take() {
                        ready();
                    }
                }
                Ok(Some(Chunk::Audio {
                    rate: c.sample_rate,
                    samples: c.samples,
                }))
            }
            None => Ok(None),
        }
    }
}

/// The catalog of an index without tracks.
struct NoTracks;

impl Catalog for NoTracks {
    fn lookup(&self, _: &[u32], _: &[u32]) -> Result<Vec<Found>, MonitorError> {
        Ok(Vec::new())
    }

    fn track_hashes(&self, _: u64) -> Result<Vec<u32>, MonitorError> {
        Ok(Vec::new())
    }

    fn max_toggle_bits(&self) -> u32 {
        auscout_core::defaults::MAX_TOGGLE_BITS
    }
}

/// A catalog that counts the lookups sent.
struct Counting<'a> {
    inner: &'a dyn Catalog,
    lookups: AtomicU64,
}

impl Catalog for Counting<'_> {
    fn lookup(&self, hashes: &[u32], toggles: &[u32]) -> Result<Vec<Found>, MonitorError> {
        self.lookups.fetch_add(1, Ordering::Relaxed);
        self.inner.lookup(hashes, toggles)
    }

    fn track_hashes(&self, id: u64) -> Result<Vec<u32>, MonitorError> {
        self.inner.track_hashes(id)
    }

    fn max_toggle_bits(&self) -> u32 {
        self.inner.max_toggle_bits()
    }
}
