//! Raw PCM (`--raw s16le:44100:2`): the sample format, rate and channels,
//! read from any byte stream and mixed down to mono.

use std::io::Read;

use crate::MonitorError;

/// Sample encodings of raw PCM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleFormat {
    U8,
    S16le,
    S16be,
    S24le,
    S32le,
    F32le,
}

impl SampleFormat {
    fn bytes(self) -> usize {
        match self {
            SampleFormat::U8 => 1,
            SampleFormat::S16le | SampleFormat::S16be => 2,
            SampleFormat::S24le => 3,
            SampleFormat::S32le | SampleFormat::F32le => 4,
        }
    }

    fn decode(self, b: &[u8]) -> f32 {
        match self {
            SampleFormat::U8 => (f32::from(b[0]) - 128.0) / 128.0,
            SampleFormat::S16le => f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0,
            SampleFormat::S16be => f32::from(i16::from_be_bytes([b[0], b[1]])) / 32768.0,
            SampleFormat::S24le => {
                (i32::from_le_bytes([0, b[0], b[1], b[2]]) >> 8) as f32 / 8_388_608.0
            }
            SampleFormat::S32le => {
                i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as f32 / 2_147_483_648.0
            }
            SampleFormat::F32le => {
                let v = f32::from_le_bytes([b[0], b[1], b[2], b[3]]);
                if v.is_finite() {
                    v.clamp(-1.0, 1.0)
                } else {
                    0.0
                }
            }
        }
    }
}

/// What `--raw FORMAT:RATE:CHANNELS` describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawFormat {
    pub sample: SampleFormat,
    pub rate: u32,
    pub channels: u16,
}

impl std::str::FromStr for RawFormat {
    type Err = MonitorError;

    /// `s16le:44100:2`; formats u8, s16le, s16be, s24le, s32le, f32le; rate
    /// 1,000 to 768,000 Hz; 1 to 32 channels (channels default to 1).
    fn from_str(s: &str) -> Result<Self, MonitorError> {
        let bad = |why: &str| {
            MonitorError::BadOption(format!(
                "--raw '{s}': {why} (expected FORMAT:RATE[:CHANNELS], e.g. s16le:44100:2)"
            ))
        };
        let mut parts = s.split(':');
        let sample = match parts.next().unwrap_or("").to_ascii_lowercase().as_str() {
            "u8" => SampleFormat::U8,
            "s16le" | "s16" => SampleFormat::S16le,
            "s16be" => SampleFormat::S16be,
            "s24le" => SampleFormat::S24le,
            "s32le" => SampleFormat::S32le,
            "f32le" | "f32" => SampleFormat::F32le,
            _ => {
                return Err(bad(
                    "unknown sample format (u8, s16le, s16be, s24le, s32le, f32le)",
                ))
            }
        };
        let rate: u32 = parts
            .next()
            .and_then(|r| r.parse().ok())
            .filter(|r| (1_000..=768_000).contains(r))
            .ok_or_else(|| bad("the rate must be 1000 to 768000 Hz"))?;
        let channels: u16 = match parts.next() {
            None => 1,
            Some(c) => c
                .parse()
                .ok()
                .filter(|c| (1..=32).contains(c))
                .ok_or_else(|| bad("channels must be 1 to 32"))?,
        };
        if parts.next().is_some() {
            return Err(bad("too many fields"));
        }
        Ok(RawFormat {
            sample,
            rate,
            channels,
        })
    }
}

/// Reads raw PCM in chunks, mixing channels to mono.
pub struct RawReader<R> {
    reader: R,
    format: RawFormat,
    bytes: Vec<u8>,
    /// Bytes of an incomplete frame carried to the next read.
    held: usize,
    mono: Vec<f32>,
}

impl<R: Read> RawReader<R> {
    pub fn new(reader: R, format: RawFormat) -> Self {
        let frame = format.sample.bytes() * usize::from(format.channels);
        RawReader {
            reader,
            format,
            // About 0.1 s per chunk at 44.1 kHz stereo 16-bit.
            bytes: vec![0; frame * 4096],
            held: 0,
            mono: Vec::new(),
        }
    }

    pub fn format(&self) -> RawFormat {
        self.format
    }

    /// The next samples, `None` at the end of the stream (a last partial
    /// frame is dropped).
    pub fn next_chunk(&mut self) -> Result<Option<&[f32]>, MonitorError> {
        let width = self.format.sample.bytes();
        let frame = width * usize::from(self.format.channels);
        loop {
            let n = match self.reader.read(&mut self.bytes[self.held..]) {
                Ok(0) => return Ok(None),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(MonitorError::Read(e.to_string())),
            };
            let have = self.held + n;
            let whole = have - have % frame;
            if whole == 0 {
                self.held = have;
                continue;
            }
            self.mono.clear();
            let scale = 1.0 / f32::from(self.format.channels);
            for f in self.bytes[..whole].chunks_exact(frame) {
                let sum: f32 = f
                    .chunks_exact(width)
                    .map(|b| self.format.sample.decode(b))
                    .sum();
                self.mono.push(sum * scale);
            }
            self.bytes.copy_within(whole..have, 0);
            self.held = have - whole;
            return Ok(Some(&self.mono));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_and_bad_ones_say_why() {
        let f: RawFormat = "s16le:44100:2".parse().unwrap();
        assert_eq!(
            f,
            RawFormat {
                sample: SampleFormat::S16le,
                rate: 44100,
                channels: 2
            }
        );
        assert_eq!("f32le:8000".parse::<RawFormat>().unwrap().channels, 1);
        for bad in [
            "",
            "s16le",
            "x:44100:2",
            "s16le:0:2",
            "s16le:44100:0",
            "s16le:44100:2:1",
            "s16le:abc",
        ] {
            let e = bad.parse::<RawFormat>().unwrap_err().to_string();
            assert!(e.contains("--raw"), "{bad}: {e}");
        }
    }

    #[test]
    fn stereo_is_mixed_and_split_frames_carry_over() {
        let format: RawFormat = "s16le:8000:2".parse().unwrap();
        let mut bytes = Vec::new();
        for i in 0..1000i16 {
            bytes.extend_from_slice(&(i * 10).to_le_bytes());
            bytes.extend_from_slice(&(-(i * 10)).to_le_bytes());
        }
        // A reader that hands out 3 bytes at a time splits every frame.
        struct Trickle(Vec<u8>, usize);
        impl Read for Trickle {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = buf.len().min(3).min(self.0.len() - self.1);
                buf[..n].copy_from_slice(&self.0[self.1..self.1 + n]);
                self.1 += n;
                Ok(n)
            }
        }
        let mut r = RawReader::new(Trickle(bytes, 0), format);
        let mut all = Vec::new();
        while let Some(c) = r.next_chunk().unwrap() {
            all.extend_from_slice(c);
        }
        assert_eq!(all.len(), 1000);
        assert!(all.iter().all(|&s| s == 0.0));
    }
}
