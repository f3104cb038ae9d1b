//! Where the audio comes from: files (decoded as they are read), a stream
//! that cannot seek (standard input, probed from what is read ahead), or raw
//! PCM. Each yields mono chunks, or a hole in the timeline.

use std::io::Read;
use std::path::Path;

use auscout_fingerprint::decode::Decoder;

use crate::raw::{RawFormat, RawReader};
use crate::MonitorError;

/// A piece of a stream.
pub enum Chunk<'a> {
    /// Mono samples at `rate` Hz.
    Audio { rate: u32, samples: &'a [f32] },
    /// Seconds without audio (a stream that dropped and came back).
    Gap(f64),
}

/// A stream of audio.
pub trait SampleSource {
    /// The next chunk, `None` at the end.
    fn next_chunk(&mut self) -> Result<Option<Chunk<'_>>, MonitorError>;
    /// Whether the stream plays in real time (a "now playing" line makes sense).
    fn live(&self) -> bool {
        false
    }
}

/// Encoded audio in any container the client decodes.
pub struct DecodedSource {
    decoder: Decoder,
}

impl DecodedSource {
    pub fn file(path: &Path) -> Result<Self, MonitorError> {
        Ok(DecodedSource {
            decoder: Decoder::open(path)?,
        })
    }

    /// A reader that cannot seek, e.g. standard input.
    pub fn reader<R: Read + Send + Sync + 'static>(reader: R) -> Result<Self, MonitorError> {
        Ok(DecodedSource {
            decoder: Decoder::from_reader(reader, None)?,
        })
    }
}

impl SampleSource for DecodedSource {
    fn next_chunk(&mut self) -> Result<Option<Chunk<'_>>, MonitorError> {
        Ok(self.decoder.next_chunk()?.map(|c| Chunk::Audio {
            rate: c.sample_rate,
            samples: c.samples,
        }))
    }
}

/// Raw PCM from a reader.
pub struct RawSource<R> {
    reader: RawReader<R>,
    live: bool,
}

impl<R: Read> RawSource<R> {
    pub fn new(reader: R, format: RawFormat, live: bool) -> Self {
        RawSource {
            reader: RawReader::new(reader, format),
            live,
        }
    }
}

impl<R: Read> SampleSource for RawSource<R> {
    fn next_chunk(&mut self) -> Result<Option<Chunk<'_>>, MonitorError> {
        let rate = self.reader.format().rate;
        Ok(self
            .reader
            .next_chunk()?
            .map(|samples| Chunk::Audio { rate, samples }))
    }

    fn live(&self) -> bool {
        self.live
    }
}
