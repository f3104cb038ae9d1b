//! auscout-monitor: what played when, in a long recording or a live stream.
//!
//! [`monitor`] reads a [`SampleSource`] (a file decoded as it is read,
//! standard input, raw PCM, a URL), hashes it as a stream, and reports every
//! excerpt of an indexed track as a [`Segment`], through "start" and "end"
//! [`Event`]s, against a [`Catalog`] (a Redis index through
//! [`StoreCatalog`]). Memory stays bounded whatever the stream's length: a
//! minute of recent hashes, and the hashes of the tracks being followed.
//!
//! - [`engine`]: windowed lookups, followers, events;
//! - [`follow`]: following one track frame by frame (pure);
//! - [`hashing`]: audio → hashes (and loudness) as a stream;
//! - [`source`], [`raw`], [`url`]: where the audio comes from (files,
//!   standard input, raw PCM, `http://` and `https://` streams, Shoutcast
//!   v1 through `icy`), [`mic`]
//!   (a capture device through `cpal`, with the `mic` feature).

#![forbid(unsafe_code)]

pub mod catalog;
pub mod engine;
pub mod follow;
pub mod hashing;
mod icy;
#[cfg(feature = "mic")]
pub mod mic;
pub mod raw;
pub mod source;
pub mod url;

pub use catalog::{Catalog, Found, StoreCatalog};
pub use engine::{Monitor, Options};
#[cfg(feature = "mic")]
pub use mic::{mic_devices, MicSource};
pub use raw::RawFormat;
pub use source::{Chunk, DecodedSource, RawSource, SampleSource};
pub use url::{is_url, UrlOptions, UrlSource};

use auscout_client::ClientError;
use auscout_fingerprint::FingerprintError;

/// One continuous excerpt of one track in the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub id: u64,
    /// The track's description (the file name `add` stored).
    pub track: String,
    /// Where the track is heard in the stream (s).
    pub stream_start: f64,
    pub stream_end: f64,
    /// Where in the track the excerpt begins and ends (s), within the track.
    pub track_start: f64,
    pub track_end: f64,
    /// `1 − 2·BER` over the segment, in [0, 1].
    pub score: f64,
    /// Playback speed relative to the indexed track (1.0 unchanged).
    pub speed: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A segment is first recognised (its end is not known yet).
    Start,
    /// A segment is over, with its final boundaries.
    End,
    /// A segment reported as started was another alignment of what a
    /// better match explains (a track whose music repeats, two tracks
    /// sharing a passage): no "end" follows it, the better match starts.
    Cancel,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub kind: EventKind,
    pub segment: Segment,
}

#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error(transparent)]
    Audio(#[from] FingerprintError),
    #[error(transparent)]
    Server(#[from] ClientError),
    #[error("{0}")]
    BadOption(String),
    #[error("reading the stream: {0}")]
    Read(String),
}

/// Monitors `source` to its end against `catalog`, handing every event to
/// `on` as it happens. On an error (a stream that fails, the server), the
/// segments still open are ended where their tracks were last heard before
/// the error is returned, so nothing already recognised is lost.
pub fn monitor(
    source: &mut dyn SampleSource,
    catalog: &dyn Catalog,
    options: Options,
    on: &mut dyn FnMut(Event),
) -> Result<(), MonitorError> {
    let mut engine = Monitor::new(catalog, options)?;
    let failure = loop {
        let step = match source.next_chunk() {
            Ok(Some(Chunk::Audio { rate, samples })) => engine.push(rate, samples, on),
            Ok(Some(Chunk::Gap(seconds))) => engine.gap(seconds, on),
            Ok(None) => break None,
            Err(e) => Err(e),
        };
        if let Err(e) = step {
            break Some(e);
        }
    };
    let finished = engine.finish(on);
    match failure {
        Some(e) => Err(e),
        None => finished,
    }
}
