//! `http://` and `https://` sources: a file, or an endless stream (Icecast,
//! Shoutcast, any server that sends audio without a length), decoded as it
//! arrives.
//!
//! A file (a response with a length) that drops is resumed where it
//! stopped with a `Range` request, so its timeline has no hole. A stream
//! that drops — the connection fails, stalls for [`UrlOptions::stall`], or
//! a radio stream (`icy-*` headers) ends — is reconnected with backoff and
//! decoded anew; the time it was away is a [`Chunk::Gap`] in the timeline.
//! After [`UrlOptions::max_retries`] failed attempts in a row the source
//! gives up with an error. The first connection is not retried: a wrong
//! address fails at once.

use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use auscout_fingerprint::decode::Decoder;

use crate::icy;
use crate::source::{Chunk, SampleSource};
use crate::MonitorError;

/// How a URL source copes with a network that fails.
#[derive(Debug, Clone, PartialEq)]
pub struct UrlOptions {
    /// Failed reconnection attempts in a row before giving up.
    pub max_retries: u32,
    /// The wait before the first attempt; doubled after each failure, up to
    /// [`UrlOptions::max_backoff`].
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// A connection that sends nothing for this long has dropped.
    pub stall: Duration,
}

impl Default for UrlOptions {
    fn default() -> Self {
        UrlOptions {
            max_retries: 10,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            stall: Duration::from_secs(10),
        }
    }
}

impl UrlOptions {
    fn wait(&self, attempt: u32) -> Duration {
        self.backoff
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_backoff)
    }
}

/// Whether `s` names a URL source.
pub fn is_url(s: &str) -> bool {
    let lower = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// How a response's body ended, as its reader saw it.
#[derive(Debug, Clone, Default)]
enum BodyEnd {
    #[default]
    Open,
    /// All of it arrived.
    Complete,
    /// The connection failed or stalled (why).
    Dropped(String),
}

/// What the reader tells the source: how the body ended and when the last
/// byte came.
#[derive(Debug)]
struct BodyState {
    end: BodyEnd,
    last_data: Instant,
}

type Shared = Arc<Mutex<BodyState>>;

/// One response's body as the decoder reads it. A failure is recorded in
/// the shared state and reads as the end, so the decoder stops cleanly and
/// the source decides what follows. A file's body is resumed with `Range`
/// first.
struct Body {
    reader: Box<dyn Read + Send>,
    agent: ureq::Agent,
    url: String,
    /// Bytes delivered so far (of the whole file, for a resumed one).
    position: u64,
    /// The file's length; `None` for a stream.
    length: Option<u64>,
    options: UrlOptions,
    state: Shared,
}

impl Body {
    fn set_end(&self, end: BodyEnd) {
        if let Ok(mut s) = self.state.lock() {
            s.end = end;
        }
    }

    /// Asks for the rest of a file from `position` on, with backoff.
    fn resume(&mut self, why: &str) -> Result<(), String> {
        let mut last = why.to_owned();
        for attempt in 0..self.options.max_retries {
            std::thread::sleep(self.options.wait(attempt));
            let response = self
                .agent
                .get(&self.url)
                .header("Range", &format!("bytes={}-", self.position))
                .call();
            match response {
                Ok(r) if r.status() == 206 => {
                    self.reader = Box::new(r.into_body().into_reader());
                    return Ok(());
                }
                Ok(r) => {
                    return Err(format!(
                        "the connection dropped ({why}) and the server cannot resume the file \
                         (HTTP {} to a range request)",
                        r.status()
                    ))
                }
                Err(e) => last = describe_call(e),
            }
        }
        Err(format!(
            "the connection dropped and did not come back after {} retries: {last}",
            self.options.max_retries
        ))
    }
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let read = match self.reader.read(buf) {
                // A file that ends short of its length was cut off.
                Ok(0) if !buf.is_empty() && self.length.is_some_and(|l| self.position < l) => {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the connection closed before the end of the file",
                    ))
                }
                other => other,
            };
            match read {
                Ok(0) if buf.is_empty() => return Ok(0),
                Ok(0) => {
                    self.set_end(BodyEnd::Complete);
                    return Ok(0);
                }
                Ok(n) => {
                    self.position += n as u64;
                    if let Ok(mut s) = self.state.lock() {
                        s.last_data = Instant::now();
                    }
                    return Ok(n);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let why = describe_io(&e);
                    if self.length.is_some_and(|l| self.position < l) {
                        match self.resume(&why) {
                            Ok(()) => continue,
                            Err(message) => self.set_end(BodyEnd::Dropped(message)),
                        }
                    } else {
                        self.set_end(BodyEnd::Dropped(why));
                    }
                    return Ok(0);
                }
            }
        }
    }
}

fn describe_io(e: &std::io::Error) -> String {
    let timed_out = matches!(
        e.kind(),
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
    ) || matches!(
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<ureq::Error>()),
        Some(ureq::Error::Timeout(_))
    );
    if timed_out {
        "nothing received for too long".to_owned()
    } else {
        e.to_string()
    }
}

/// A request's failure in words.
fn describe_call(e: ureq::Error) -> String {
    match e {
        ureq::Error::StatusCode(code) => format!("the server answered HTTP {code}"),
        ureq::Error::Timeout(_) => "nothing received for too long".to_owned(),
        other => format!("cannot connect: {other}"),
    }
}

/// What a response's head tells about its body.
struct Head {
    /// `None` for a stream.
    length: Option<u64>,
    /// `icy-*` headers, or a Shoutcast v1 reply: a radio stream.
    radio: bool,
    content_type: Option<String>,
}

impl Head {
    /// The head of an HTTP response, and its body.
    fn of_response(response: ureq::http::Response<ureq::Body>) -> (Head, Box<dyn Read + Send>) {
        let headers = response.headers();
        let head = Head {
            length: headers
                .get("content-length")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok()),
            radio: headers.keys().any(|k| k.as_str().starts_with("icy-")),
            content_type: headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        };
        (head, Box::new(response.into_body().into_reader()))
    }
}

/// symphonia wants a `Sync` reader; the body is only ever used from the
/// thread that owns it, so a `Mutex` reached through `&mut` (no locking)
/// supplies that.
struct SyncRead<R>(Mutex<R>);

impl<R: Read> Read for SyncRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.0.get_mut() {
            Ok(r) => r.read(buf),
            Err(poisoned) => poisoned.into_inner().read(buf),
        }
    }
}

/// Audio from an `http://` or `https://` URL.
pub struct UrlSource {
    url: String,
    agent: ureq::Agent,
    options: UrlOptions,
    decoder: Option<Decoder>,
    state: Shared,
    /// An endless stream (no length): plays in real time, reconnects.
    live: bool,
    /// A response with `icy-*` headers: a radio stream, whose end is a drop.
    radio: bool,
    /// The server answered as Shoutcast v1 (`ICY 200 OK`): reconnections
    /// go straight to [`icy::get`].
    shoutcast: bool,
    samples: Vec<f32>,
}

impl UrlSource {
    /// Connects and probes the audio; fails at once if either fails.
    pub fn open(url: &str, options: UrlOptions) -> Result<Self, MonitorError> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_connect(Some(Duration::from_secs(10)))
            .timeout_recv_response(Some(options.stall.max(Duration::from_secs(1))))
            .timeout_per_read(Some(options.stall))
            .build()
            .into();
        let mut source = UrlSource {
            url: url.to_owned(),
            agent,
            options,
            decoder: None,
            state: Arc::new(Mutex::new(BodyState {
                end: BodyEnd::Open,
                last_data: Instant::now(),
            })),
            live: false,
            radio: false,
            shoutcast: false,
            samples: Vec::new(),
        };
        source.connect().map_err(MonitorError::Read)?;
        Ok(source)
    }

    /// One connection: a response, its body under a new decoder.
    fn connect(&mut self) -> Result<(), String> {
        let (head, reader) = if self.shoutcast {
            self.shoutcast_reply(None)?
        } else {
            match self.agent.get(&self.url).call() {
                Ok(response) => Head::of_response(response),
                // A status line HTTP does not know: a Shoutcast v1 `ICY 200 OK`?
                Err(e @ ureq::Error::Protocol(_)) => self.shoutcast_reply(Some(e))?,
                Err(e) => return Err(describe_call(e)),
            }
        };
        let length = head.length;
        self.radio = head.radio;
        self.live = length.is_none();
        let hint = head
            .content_type
            .as_deref()
            .and_then(extension_of_type)
            .or_else(|| extension_of_path(&self.url));
        let state = Arc::new(Mutex::new(BodyState {
            end: BodyEnd::Open,
            last_data: Instant::now(),
        }));
        self.state = Arc::clone(&state);
        let body = Body {
            reader,
            agent: self.agent.clone(),
            url: self.url.clone(),
            position: 0,
            length,
            options: self.options.clone(),
            state,
        };
        let decoder =
            Decoder::from_reader(SyncRead(Mutex::new(body)), hint).map_err(|e| {
                match self.body_end() {
                    BodyEnd::Dropped(why) => why,
                    _ => e.to_string(),
                }
            })?;
        self.decoder = Some(decoder);
        Ok(())
    }

    /// The reply of a Shoutcast v1 server, asked over a plain connection;
    /// `refused` is what the HTTP client said of it (none once the server
    /// is known to answer so).
    fn shoutcast_reply(
        &mut self,
        refused: Option<ureq::Error>,
    ) -> Result<(Head, Box<dyn Read + Send>), String> {
        let Some(reply) = icy::get(&self.url, self.options.stall)? else {
            return Err(refused.map_or_else(
                || "the server no longer answers as Shoutcast".to_owned(),
                describe_call,
            ));
        };
        self.shoutcast = true;
        let head = Head {
            length: None,
            radio: true,
            content_type: reply.content_type,
        };
        Ok((head, reply.audio))
    }

    fn body_end(&self) -> BodyEnd {
        self.state
            .lock()
            .map(|s| s.end.clone())
            .unwrap_or(BodyEnd::Open)
    }

    fn last_data(&self) -> Instant {
        self.state
            .lock()
            .map(|s| s.last_data)
            .unwrap_or_else(|_| Instant::now())
    }

    /// Reconnects a stream with backoff; the seconds it was away.
    fn reconnect(&mut self, why: &str) -> Result<f64, MonitorError> {
        let since = self.last_data();
        self.decoder = None;
        let mut last = why.to_owned();
        for attempt in 0..self.options.max_retries {
            std::thread::sleep(self.options.wait(attempt));
            match self.connect() {
                Ok(()) => return Ok(since.elapsed().as_secs_f64()),
                Err(e) => last = e,
            }
        }
        Err(MonitorError::Read(format!(
            "the stream dropped ({why}) and did not come back after {} retries: {last}",
            self.options.max_retries
        )))
    }
}

impl SampleSource for UrlSource {
    fn next_chunk(&mut self) -> Result<Option<Chunk<'_>>, MonitorError> {
        let Some(decoder) = self.decoder.as_mut() else {
            return Ok(None);
        };
        // The samples are copied out so that the decoder can be replaced
        // (a reconnection) in the same call.
        let failure = match decoder.next_chunk() {
            Ok(Some(c)) => {
                self.samples.clear();
                self.samples.extend_from_slice(c.samples);
                return Ok(Some(Chunk::Audio {
                    rate: c.sample_rate,
                    samples: &self.samples,
                }));
            }
            Ok(None) => None,
            Err(e) => Some(e),
        };
        let dropped = match (self.body_end(), self.live) {
            (BodyEnd::Dropped(why), true) => why,
            (BodyEnd::Complete, true) if self.radio => "the stream ended".to_owned(),
            (BodyEnd::Dropped(why), false) => return Err(MonitorError::Read(why)),
            _ => {
                self.decoder = None;
                return match failure {
                    Some(e) => Err(e.into()),
                    None => Ok(None),
                };
            }
        };
        let away = self.reconnect(&dropped)?;
        Ok(Some(Chunk::Gap(away)))
    }

    fn live(&self) -> bool {
        self.live
    }
}

/// The container a `Content-Type` names, as a probe hint.
fn extension_of_type(content_type: &str) -> Option<&'static str> {
    let mime = content_type.split(';').next()?.trim().to_ascii_lowercase();
    Some(match mime.as_str() {
        "audio/mpeg" | "audio/mp3" | "audio/mpeg3" | "audio/x-mpeg" => "mp3",
        "audio/aac" | "audio/aacp" | "audio/x-aac" | "audio/x-hx-aac-adts" => "aac",
        "audio/ogg" | "application/ogg" | "audio/vorbis" | "audio/opus" => "ogg",
        "audio/flac" | "audio/x-flac" => "flac",
        "audio/wav" | "audio/x-wav" | "audio/wave" | "audio/vnd.wave" => "wav",
        "audio/mp4" | "audio/x-m4a" | "audio/m4a" => "m4a",
        "audio/webm" | "video/webm" => "webm",
        _ => return None,
    })
}

/// The extension of the URL's path, as a probe hint.
fn extension_of_path(url: &str) -> Option<&'static str> {
    let path = url.split(['?', '#']).next()?;
    let ext = path.rsplit_once('.')?.1.to_ascii_lowercase();
    const KNOWN: [&str; 12] = [
        "mp3", "aac", "ogg", "oga", "opus", "flac", "wav", "m4a", "mp4", "webm", "mkv", "aiff",
    ];
    KNOWN.iter().find(|k| **k == ext).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_hints() {
        assert!(is_url("http://radio.example/live"));
        assert!(is_url("HTTPS://x"));
        assert!(!is_url("-"));
        assert!(!is_url("httpfile.mp3"));
        assert_eq!(extension_of_type("audio/mpeg"), Some("mp3"));
        assert_eq!(extension_of_type("audio/aacp; charset=x"), Some("aac"));
        assert_eq!(extension_of_type("text/html"), None);
        assert_eq!(extension_of_path("http://h/a/show.ogg?x=1"), Some("ogg"));
        assert_eq!(extension_of_path("http://h/live"), None);
    }

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let o = UrlOptions::default();
        assert_eq!(o.wait(0), Duration::from_millis(500));
        assert_eq!(o.wait(2), Duration::from_secs(2));
        assert_eq!(o.wait(40), Duration::from_secs(30));
    }
}
