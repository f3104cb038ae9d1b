//! Audio files → a stream of mono `f32` chunks, with symphonia (0.6 API).
//!
//! Every container and codec symphonia ships is enabled (WAV, FLAC, MP3, Ogg
//! Vorbis, M4A/AAC, ALAC, AIFF, CAF, MKV/WebM), plus Opus through libopus
//! ([`codecs`]: WebM/Opus as browsers record it, Ogg/Opus). Channels are
//! averaged to mono.
//! A damaged packet is skipped and counted, a container reset re-opens the
//! track, the end of the stream (or a file cut short) ends it cleanly; only a
//! file we cannot read at all is an error. The encoder priming an MP4 edit
//! list declares is dropped (symphonia 0.6.1 does not apply edit lists; see
//! [`crate::mp4_priming`]), so M4A/AAC positions match the original audio.

use std::collections::HashMap;
use std::fs::File;
use std::io::SeekFrom;
use std::path::Path;
use std::sync::OnceLock;

use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::codecs::registry::CodecRegistry;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::{MediaSource, MediaSourceStream};
use symphonia::core::meta::MetadataOptions;

use crate::error::FingerprintError;
use crate::mp4_priming::{read_primings, Priming};

/// Demuxer errors tolerated in a row before the file is declared unreadable.
const MAX_CONSECUTIVE_DEMUX_ERRORS: u32 = 16;

/// One decoded packet as mono samples.
#[derive(Debug, Clone, Copy)]
pub struct MonoChunk<'a> {
    /// Sample rate of these samples (it can change at a container reset).
    pub sample_rate: u32,
    pub samples: &'a [f32],
}

/// A streaming decoder over one audio file.
pub struct Decoder {
    format: Box<dyn FormatReader>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    /// Per-channel scratch, reused across packets.
    planes: Vec<Vec<f32>>,
    mono: Vec<f32>,
    /// MP4 edit-list priming by track id (empty for other containers).
    primings: HashMap<u32, Priming>,
    /// Leading samples of the current track still to drop: `None` until the
    /// first decoded packet gives the sample rate to convert the priming at.
    skip: Option<u64>,
    damaged_packets: u64,
    last_packet_error: Option<SymphoniaError>,
    decoded_frames: u64,
    stopped_early: Option<String>,
    finished: bool,
}

impl Decoder {
    /// Opens `path`, probing its container (the extension is only a hint).
    pub fn open(path: &Path) -> Result<Self, FingerprintError> {
        let file = File::open(path)?;
        if file.metadata()?.len() == 0 {
            return Err(FingerprintError::Decode(
                "the file is empty (0 bytes)".into(),
            ));
        }
        let extension = path.extension().and_then(|e| e.to_str());
        Self::from_source(Box::new(file), extension)
    }

    /// Decodes a stream that cannot seek (standard input, an HTTP body): the
    /// container is probed from what is read ahead, never by seeking back.
    pub fn from_reader<R: std::io::Read + Send + Sync + 'static>(
        reader: R,
        extension: Option<&str>,
    ) -> Result<Self, FingerprintError> {
        let source = symphonia::core::io::ReadOnlySource::new(reader);
        Self::from_source(Box::new(source), extension)
    }

    /// Decodes from any seekable or unseekable source (a file, a `Cursor` over bytes, …).
    pub fn from_source(
        mut source: Box<dyn MediaSource>,
        extension: Option<&str>,
    ) -> Result<Self, FingerprintError> {
        // The edit lists are read ahead of symphonia, from a seekable source
        // only (an unseekable MP4 is decoded with its priming, as before).
        let primings = if source.is_seekable() {
            let start = source.stream_position()?;
            let found = read_primings(&mut source);
            source.seek(SeekFrom::Start(start))?;
            found
        } else {
            HashMap::new()
        };
        let stream = MediaSourceStream::new(source, Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = extension {
            hint.with_extension(ext);
        }
        let format = symphonia::default::get_probe()
            .probe(
                &hint,
                stream,
                FormatOptions::default(),
                MetadataOptions::default(),
            )
            .map_err(|e| match e {
                SymphoniaError::Unsupported(_) => {
                    FingerprintError::Unsupported("not a known audio container format".into())
                }
                other => describe("reading the container header", other),
            })?;
        let (decoder, track_id) = open_track(format.as_ref())?;
        Ok(Decoder {
            format,
            decoder,
            track_id,
            planes: Vec::new(),
            mono: Vec::new(),
            primings,
            skip: None,
            damaged_packets: 0,
            last_packet_error: None,
            decoded_frames: 0,
            stopped_early: None,
            finished: false,
        })
    }

    /// The next packet's audio as mono, or `None` at the end of the stream.
    pub fn next_chunk(&mut self) -> Result<Option<MonoChunk<'_>>, FingerprintError> {
        let mut demux_errors = 0;
        while !self.finished {
            let packet = match self.format.next_packet() {
                Ok(Some(packet)) => packet,
                Ok(None) => break,
                Err(SymphoniaError::ResetRequired) => {
                    // A new logical stream (e.g. a chained Ogg): new track, new decoder.
                    let (decoder, track_id) = open_track(self.format.as_ref())?;
                    self.decoder = decoder;
                    self.track_id = track_id;
                    self.skip = None;
                    continue;
                }
                Err(SymphoniaError::IoError(e))
                    if e.kind() == std::io::ErrorKind::UnexpectedEof =>
                {
                    // A file cut short: keep what was decoded.
                    self.stopped_early = Some("the file ends in the middle of a packet".into());
                    break;
                }
                Err(e @ (SymphoniaError::DecodeError(_) | SymphoniaError::IoError(_))) => {
                    demux_errors += 1;
                    if demux_errors >= MAX_CONSECUTIVE_DEMUX_ERRORS {
                        if self.decoded_frames == 0 {
                            return Err(describe("reading packets", e));
                        }
                        self.stopped_early = Some(format!("stopped at a damaged section: {e}"));
                        break;
                    }
                    continue;
                }
                Err(e) => return Err(describe("reading packets", e)),
            };
            demux_errors = 0;
            if packet.track_id != self.track_id {
                continue;
            }
            match self.decoder.decode(&packet) {
                Ok(buffer) => {
                    let sample_rate = buffer.spec().rate();
                    let channels = buffer.num_planes();
                    if buffer.frames() == 0 || channels == 0 {
                        continue;
                    }
                    buffer.copy_to_vecs_planar::<f32>(&mut self.planes);
                    mix_to_mono(&self.planes[..channels], &mut self.mono);
                    let track_id = self.track_id;
                    let skip = self.skip.get_or_insert_with(|| {
                        self.primings
                            .get(&track_id)
                            .map_or(0, |p| p.samples_at(sample_rate))
                    });
                    if *skip > 0 {
                        let n = usize::try_from(*skip)
                            .unwrap_or(usize::MAX)
                            .min(self.mono.len());
                        self.mono.drain(..n);
                        *skip -= n as u64;
                        if self.mono.is_empty() {
                            continue;
                        }
                    }
                    self.decoded_frames += self.mono.len() as u64;
                    return Ok(Some(MonoChunk {
                        sample_rate,
                        samples: &self.mono,
                    }));
                }
                Err(SymphoniaError::ResetRequired) => self.decoder.reset(),
                Err(e) => {
                    // A damaged packet: skip it, the next one decodes on its own.
                    // Garbage can also parse as a feature the codec lacks
                    // (`Unsupported`), so that is skipped too; only a file where
                    // no packet decodes at all is an error (below).
                    self.damaged_packets += 1;
                    self.last_packet_error = Some(e);
                }
            }
        }
        self.finished = true;
        if self.decoded_frames == 0 {
            if let Some(e) = self.last_packet_error.take() {
                let n = self.damaged_packets;
                return Err(match describe("decoding audio", e) {
                    FingerprintError::Unsupported(what) => FingerprintError::Unsupported(format!(
                        "none of its {n} audio packets could be decoded: {what}"
                    )),
                    other => FingerprintError::Decode(format!(
                        "none of its {n} audio packets could be decoded: {other}"
                    )),
                });
            }
        }
        Ok(None)
    }

    /// Packets skipped because they failed to decode.
    pub fn damaged_packets(&self) -> u64 {
        self.damaged_packets
    }

    /// Why decoding ended before the container's end, if it did (the audio
    /// decoded up to there is still delivered).
    pub fn stopped_early(&self) -> Option<&str> {
        self.stopped_early.as_deref()
    }

    /// Mono frames delivered so far.
    pub fn decoded_frames(&self) -> u64 {
        self.decoded_frames
    }
}

/// The codecs every decode uses: symphonia's own, plus Opus (symphonia has
/// no Opus decoder; its Ogg and MKV/WebM demuxers do read Opus streams).
pub fn codecs() -> &'static CodecRegistry {
    static CODECS: OnceLock<CodecRegistry> = OnceLock::new();
    CODECS.get_or_init(|| {
        let mut registry = CodecRegistry::new();
        symphonia::default::register_enabled_codecs(&mut registry);
        registry.register_audio_decoder::<symphonia_adapter_libopus::OpusDecoder>();
        registry
    })
}

/// Picks the default audio track and builds its decoder (gapless: encoder
/// delay and padding are trimmed, so positions match the original audio).
fn open_track(format: &dyn FormatReader) -> Result<(Box<dyn AudioDecoder>, u32), FingerprintError> {
    let track = format
        .default_track(TrackType::Audio)
        .ok_or_else(|| FingerprintError::Unsupported("the file has no audio track".into()))?;
    let params = track
        .codec_params
        .as_ref()
        .and_then(|p| p.audio())
        .ok_or_else(|| {
            FingerprintError::Unsupported("the audio track has no codec parameters".into())
        })?;
    let decoder = codecs()
        .make_audio_decoder(params, &AudioDecoderOptions::default())
        .map_err(|e| match e {
            SymphoniaError::Unsupported(what) => {
                FingerprintError::Unsupported(format!("audio codec not supported ({what})"))
            }
            other => describe("opening the audio decoder", other),
        })?;
    Ok((decoder, track.id))
}

/// Averages the channel planes into `mono` (resized to the plane length).
fn mix_to_mono(planes: &[Vec<f32>], mono: &mut Vec<f32>) {
    let frames = planes.iter().map(Vec::len).min().unwrap_or(0);
    mono.clear();
    match planes {
        [] => {}
        [only] => mono.extend_from_slice(&only[..frames]),
        [first, rest @ ..] => {
            mono.extend_from_slice(&first[..frames]);
            for plane in rest {
                for (m, s) in mono.iter_mut().zip(plane) {
                    *m += s;
                }
            }
            let scale = 1.0 / planes.len() as f32;
            for m in mono.iter_mut() {
                *m *= scale;
            }
        }
    }
}

/// Turns a symphonia error met while `doing` something into our error.
fn describe(doing: &str, e: SymphoniaError) -> FingerprintError {
    match e {
        SymphoniaError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            FingerprintError::Decode(format!("the file ends unexpectedly while {doing}"))
        }
        SymphoniaError::IoError(io) => FingerprintError::Io(io),
        SymphoniaError::Unsupported(what) => {
            FingerprintError::Unsupported(format!("{what} (while {doing})"))
        }
        other => FingerprintError::Decode(format!("{other} (while {doing})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A minimal 16-bit PCM WAV in memory.
    fn wav_bytes(rate: u32, channels: u16, frames: &[Vec<i16>]) -> Vec<u8> {
        let data_len = (frames.len() * channels as usize * 2) as u32;
        let mut b = Vec::new();
        b.extend_from_slice(b"RIFF");
        b.extend_from_slice(&(36 + data_len).to_le_bytes());
        b.extend_from_slice(b"WAVEfmt ");
        b.extend_from_slice(&16u32.to_le_bytes());
        b.extend_from_slice(&1u16.to_le_bytes());
        b.extend_from_slice(&channels.to_le_bytes());
        b.extend_from_slice(&rate.to_le_bytes());
        b.extend_from_slice(&(rate * u32::from(channels) * 2).to_le_bytes());
        b.extend_from_slice(&(channels * 2).to_le_bytes());
        b.extend_from_slice(&16u16.to_le_bytes());
        b.extend_from_slice(b"data");
        b.extend_from_slice(&data_len.to_le_bytes());
        for frame in frames {
            for s in frame {
                b.extend_from_slice(&s.to_le_bytes());
            }
        }
        b
    }

    fn decode_all(bytes: Vec<u8>) -> Result<(u32, Vec<f32>), FingerprintError> {
        let mut d = Decoder::from_source(Box::new(Cursor::new(bytes)), Some("wav"))?;
        let mut rate = 0;
        let mut all = Vec::new();
        while let Some(chunk) = d.next_chunk()? {
            rate = chunk.sample_rate;
            all.extend_from_slice(chunk.samples);
        }
        Ok((rate, all))
    }

    #[test]
    fn stereo_is_averaged_to_mono() {
        let frames: Vec<Vec<i16>> = (0..1000).map(|i| vec![i as i16 * 8, -4000]).collect();
        let (rate, mono) = decode_all(wav_bytes(22050, 2, &frames)).unwrap();
        assert_eq!(rate, 22050);
        assert_eq!(mono.len(), 1000);
        for (i, m) in mono.iter().enumerate() {
            let expected = (i as f32 * 8.0 - 4000.0) / 2.0 / 32768.0;
            assert!((m - expected).abs() < 1e-6, "frame {i}: {m} vs {expected}");
        }
    }

    #[test]
    fn garbage_is_unsupported_not_a_panic() {
        let garbage: Vec<u8> = (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect();
        assert!(matches!(
            decode_all(garbage),
            Err(FingerprintError::Unsupported(_))
        ));
    }

    #[test]
    fn truncated_wav_keeps_what_is_there() {
        let frames: Vec<Vec<i16>> = (0..4000).map(|i| vec![(i % 100) as i16]).collect();
        let mut bytes = wav_bytes(8000, 1, &frames);
        bytes.truncate(44 + 2 * 1500 + 1); // cut inside a sample
        let (_, mono) = decode_all(bytes).unwrap();
        assert!(
            mono.len() <= 1500 && mono.len() > 1000,
            "{} samples",
            mono.len()
        );
    }

    #[test]
    fn header_only_is_an_error() {
        let bytes = wav_bytes(8000, 1, &[])[..20].to_vec();
        assert!(decode_all(bytes).is_err());
    }
}
