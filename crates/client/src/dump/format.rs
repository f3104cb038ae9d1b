//! The export file format (see `docs/export-format.md`), pure: a writer
//! and a reader over any `Write`/`Read`, no Redis.
//!
//! ```text
//! file   = magic "\x89AUSCOUT" | version u16 | flags u16 | zlib(body)
//! body   = header | track* | end
//! header = u32 length | hash format u8 | created u64 | key str16
//!          | shards u32 | next id u64 per shard
//! track  = 0x01 | shard u32 | id u64 | descr bytes32 | frames u32 | hash u32 * frames
//! end    = 0xFF | tracks u64 | frames u64 | crc32 u32
//! ```
//!
//! Integers are little-endian; `str16`/`bytes32` are a u16/u32 length and
//! the bytes. The CRC-32 covers every body byte before it. Every length read
//! is bounded before anything is allocated for it, and a file is only good
//! once its end record has been read, checked, and nothing follows.

use std::collections::HashSet;
use std::io::{self, BufReader, Read, Write};

use auscout_core::index::{MAX_ID, MAX_TRACK_FRAMES};
use flate2::bufread::ZlibDecoder;
use flate2::write::ZlibEncoder;
use flate2::Compression;

/// The first 8 bytes of every export file: a non-ASCII byte first, so that
/// no text file starts like one.
pub const MAGIC: [u8; 8] = *b"\x89AUSCOUT";
/// The format version this build writes and the newest it reads.
pub const VERSION: u16 = 1;
/// `flags` bit 0: the body is a zlib stream (always set in version 1).
const FLAG_ZLIB: u16 = 1;
/// Hashes of the audio hash in this repository: 32-bit, one per 64-sample
/// hop at 6,000 Hz.
pub const HASH_FORMAT: u8 = 1;
const TAG_TRACK: u8 = 0x01;
const TAG_END: u8 = 0xFF;
/// Longest header and description accepted on reading.
const MAX_HEADER: u32 = 1 << 20;
const MAX_DESCR: u32 = 64 << 20;
/// Most shards an index can have (as the client's layouts allow).
const MAX_SHARDS: u32 = 4096;

/// What an export file is about, written before its tracks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Seconds since the Unix epoch when the export began.
    pub created: u64,
    /// The key the index was exported from.
    pub key: String,
    /// The id counter of each shard (one entry for an unsharded index):
    /// the id the next added track would have taken.
    pub next_ids: Vec<u64>,
}

/// One track: its shard, its shard-local id (the id a user sees for an
/// unsharded index), description and hashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Track {
    pub shard: u32,
    pub id: u64,
    pub descr: Vec<u8>,
    pub hashes: Vec<u32>,
}

/// Why a file is not a good export; each says so in words a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("not an auscout export (it does not start with the format's magic bytes)")]
    Foreign,
    #[error("made by a newer auscout (format version {0}; this build reads up to {VERSION})")]
    NewerVersion(u16),
    #[error("unsupported flags {0:#06x} in the file header")]
    Flags(u16),
    #[error("the file is truncated (it ends before its end record)")]
    Truncated,
    #[error("the file is corrupt: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Io(#[from] io::Error),
}

fn corrupt(what: impl Into<String>) -> FormatError {
    FormatError::Corrupt(what.into())
}

/// Body bytes are written through this: counted into the CRC as they go.
struct Crc<W> {
    inner: W,
    crc: crc32fast::Hasher,
}

impl<W: Write> Write for Crc<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc.update(buf.get(..n).unwrap_or(&[]));
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes an export: [`Writer::new`] with the header, [`Writer::track`] per
/// track, [`Writer::finish`] for the end record.
pub struct Writer<W: Write> {
    body: Crc<ZlibEncoder<W>>,
    tracks: u64,
    frames: u64,
    shards: u32,
}

impl<W: Write> Writer<W> {
    pub fn new(mut out: W, header: &Header) -> io::Result<Self> {
        out.write_all(&MAGIC)?;
        out.write_all(&VERSION.to_le_bytes())?;
        out.write_all(&FLAG_ZLIB.to_le_bytes())?;
        let mut body = Crc {
            inner: ZlibEncoder::new(out, Compression::default()),
            crc: crc32fast::Hasher::new(),
        };
        let shards = u32::try_from(header.next_ids.len())
            .ok()
            .filter(|&n| (1..=MAX_SHARDS).contains(&n))
            .ok_or_else(|| invalid("an index has 1 to 4096 shards"))?;
        let key = header.key.as_bytes();
        let key_len = u16::try_from(key.len()).map_err(|_| invalid("key too long"))?;
        let mut h = Vec::new();
        h.push(HASH_FORMAT);
        h.extend_from_slice(&header.created.to_le_bytes());
        h.extend_from_slice(&key_len.to_le_bytes());
        h.extend_from_slice(key);
        h.extend_from_slice(&shards.to_le_bytes());
        for next in &header.next_ids {
            h.extend_from_slice(&next.to_le_bytes());
        }
        let len = u32::try_from(h.len()).map_err(|_| invalid("header too long"))?;
        body.write_all(&len.to_le_bytes())?;
        body.write_all(&h)?;
        Ok(Writer {
            body,
            tracks: 0,
            frames: 0,
            shards,
        })
    }

    pub fn track(&mut self, t: &Track) -> io::Result<()> {
        if t.shard >= self.shards {
            return Err(invalid("track on a shard the header does not have"));
        }
        let descr_len = u32::try_from(t.descr.len())
            .ok()
            .filter(|&n| n <= MAX_DESCR)
            .ok_or_else(|| invalid("description too long"))?;
        let frames = u32::try_from(t.hashes.len()).map_err(|_| invalid("track too long"))?;
        let mut rec = Vec::with_capacity(21 + t.descr.len() + 4 * t.hashes.len());
        rec.push(TAG_TRACK);
        rec.extend_from_slice(&t.shard.to_le_bytes());
        rec.extend_from_slice(&t.id.to_le_bytes());
        rec.extend_from_slice(&descr_len.to_le_bytes());
        rec.extend_from_slice(&t.descr);
        rec.extend_from_slice(&frames.to_le_bytes());
        for h in &t.hashes {
            rec.extend_from_slice(&h.to_le_bytes());
        }
        self.body.write_all(&rec)?;
        self.tracks += 1;
        self.frames += u64::from(frames);
        Ok(())
    }

    /// Writes the end record and returns the output (flushed).
    pub fn finish(mut self) -> io::Result<W> {
        let mut end = vec![TAG_END];
        end.extend_from_slice(&self.tracks.to_le_bytes());
        end.extend_from_slice(&self.frames.to_le_bytes());
        self.body.write_all(&end)?;
        let crc = self.body.crc.clone().finalize();
        let mut zlib = self.body.inner;
        zlib.write_all(&crc.to_le_bytes())?;
        let mut out = zlib.finish()?;
        out.flush()?;
        Ok(out)
    }
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, what.to_owned())
}

/// Reads an export. [`Reader::open`] checks the magic, the version and the
/// header; [`Reader::next_track`] yields the tracks, each checked, and after
/// the last one the end record; only an `Ok(None)` from it means the whole
/// file is good.
pub struct Reader<R: Read> {
    body: CrcRead<ZlibDecoder<BufReader<R>>>,
    header: Header,
    seen: HashSet<(u32, u64)>,
    tracks: u64,
    frames: u64,
    done: bool,
}

/// Body bytes are read through this: counted into the CRC as they go.
struct CrcRead<R> {
    inner: R,
    crc: crc32fast::Hasher,
}

impl<R: Read> Read for CrcRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc.update(buf.get(..n).unwrap_or(&[]));
        Ok(n)
    }
}

impl<R: Read> Reader<R> {
    pub fn open(mut input: R) -> Result<Self, FormatError> {
        let mut start = [0u8; 12];
        let got = read_up_to(&mut input, &mut start)?;
        if got < 8 || start[..8] != MAGIC {
            return Err(FormatError::Foreign);
        }
        if got < start.len() {
            return Err(FormatError::Truncated);
        }
        let version = u16::from_le_bytes([start[8], start[9]]);
        if version > VERSION || version == 0 {
            return Err(FormatError::NewerVersion(version));
        }
        let flags = u16::from_le_bytes([start[10], start[11]]);
        if flags != FLAG_ZLIB {
            return Err(FormatError::Flags(flags));
        }
        let mut body = CrcRead {
            inner: ZlibDecoder::new(BufReader::new(input)),
            crc: crc32fast::Hasher::new(),
        };
        let len = read_u32(&mut body)?;
        if len > MAX_HEADER {
            return Err(corrupt(format!("header of {len} bytes")));
        }
        let h = read_bytes(&mut body, len as usize)?;
        let header = parse_header(&h)?;
        Ok(Reader {
            body,
            header,
            seen: HashSet::new(),
            tracks: 0,
            frames: 0,
            done: false,
        })
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The next track, or `None` once the end record has been read and
    /// checked (totals, CRC, nothing after it).
    pub fn next_track(&mut self) -> Result<Option<Track>, FormatError> {
        if self.done {
            return Ok(None);
        }
        match read_u8(&mut self.body)? {
            TAG_TRACK => self.track().map(Some),
            TAG_END => {
                self.end()?;
                self.done = true;
                Ok(None)
            }
            tag => Err(corrupt(format!("unknown record tag {tag:#04x}"))),
        }
    }

    fn track(&mut self) -> Result<Track, FormatError> {
        let b = &mut self.body;
        let shard = read_u32(b)?;
        let id = read_u64(b)?;
        let descr_len = read_u32(b)?;
        if descr_len > MAX_DESCR {
            return Err(corrupt(format!("a description of {descr_len} bytes")));
        }
        let descr = read_bytes(b, descr_len as usize)?;
        let frames = read_u32(b)? as usize;
        let n = self.tracks + 1;
        if shard >= self.header.next_ids.len() as u32 {
            return Err(corrupt(format!(
                "track {n} is on shard {shard}, beyond the header's"
            )));
        }
        if id == 0 || id > MAX_ID as u64 {
            return Err(corrupt(format!("track {n} has id {id}")));
        }
        if frames == 0 || frames > MAX_TRACK_FRAMES {
            return Err(corrupt(format!("track {n} has {frames} frames")));
        }
        if !self.seen.insert((shard, id)) {
            return Err(corrupt(format!("id {id} appears twice on shard {shard}")));
        }
        let bytes = read_bytes(b, 4 * frames)?;
        let hashes = bytes
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        self.tracks += 1;
        self.frames += frames as u64;
        Ok(Track {
            shard,
            id,
            descr,
            hashes,
        })
    }

    fn end(&mut self) -> Result<(), FormatError> {
        let tracks = read_u64(&mut self.body)?;
        let frames = read_u64(&mut self.body)?;
        let computed = self.body.crc.clone().finalize();
        let mut crc = [0u8; 4];
        read_exact(&mut self.body.inner, &mut crc)?;
        if (tracks, frames) != (self.tracks, self.frames) {
            return Err(corrupt(format!(
                "the end record counts {tracks} tracks and {frames} frames, the file holds {} and {}",
                self.tracks, self.frames
            )));
        }
        if u32::from_le_bytes(crc) != computed {
            return Err(corrupt("checksum mismatch"));
        }
        let mut rest = [0u8; 1];
        if read_up_to(&mut self.body.inner, &mut rest)? > 0 {
            return Err(corrupt("data after the end record"));
        }
        let mut after = [0u8; 1];
        if read_up_to(self.body.inner.get_mut(), &mut after)? > 0 {
            return Err(corrupt("data after the compressed body"));
        }
        Ok(())
    }

    /// Tracks and frames read so far.
    pub fn totals(&self) -> (u64, u64) {
        (self.tracks, self.frames)
    }
}

fn parse_header(h: &[u8]) -> Result<Header, FormatError> {
    let mut r = h;
    let format = read_u8(&mut r)?;
    if format != HASH_FORMAT {
        return Err(corrupt(format!(
            "hash format {format}, this build knows {HASH_FORMAT}"
        )));
    }
    let created = read_u64(&mut r)?;
    let key_len = u16::from_le_bytes([read_u8(&mut r)?, read_u8(&mut r)?]);
    let key = read_bytes(&mut r, key_len as usize)?;
    let key = String::from_utf8(key).map_err(|_| corrupt("the key name is not UTF-8"))?;
    let shards = read_u32(&mut r)?;
    if !(1..=MAX_SHARDS).contains(&shards) {
        return Err(corrupt(format!("{shards} shards")));
    }
    let next_ids = (0..shards)
        .map(|_| read_u64(&mut r))
        .collect::<Result<Vec<_>, _>>()?;
    if !r.is_empty() {
        return Err(corrupt("header longer than its fields"));
    }
    Ok(Header {
        created,
        key,
        next_ids,
    })
}

/// Reads as much of `buf` as the input has; the count read.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> Result<usize, FormatError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(stream_error(e)),
        }
    }
    Ok(got)
}

fn read_exact(r: &mut impl Read, buf: &mut [u8]) -> Result<(), FormatError> {
    if read_up_to(r, buf)? < buf.len() {
        return Err(FormatError::Truncated);
    }
    Ok(())
}

/// `n` bytes, allocated as they arrive (a corrupt length cannot make it
/// allocate more than the file holds).
fn read_bytes(r: &mut impl Read, n: usize) -> Result<Vec<u8>, FormatError> {
    let mut out = Vec::new();
    let got = r
        .take(n as u64)
        .read_to_end(&mut out)
        .map_err(stream_error)?;
    if got < n {
        return Err(FormatError::Truncated);
    }
    Ok(out)
}

fn read_u8(r: &mut impl Read) -> Result<u8, FormatError> {
    let mut b = [0u8; 1];
    read_exact(r, &mut b)?;
    Ok(b[0])
}

fn read_u32(r: &mut impl Read) -> Result<u32, FormatError> {
    let mut b = [0u8; 4];
    read_exact(r, &mut b)?;
    Ok(u32::from_le_bytes(b))
}

fn read_u64(r: &mut impl Read) -> Result<u64, FormatError> {
    let mut b = [0u8; 8];
    read_exact(r, &mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// A damaged zlib stream reads as an error of kind `InvalidInput` or
/// `InvalidData`; one cut short as `UnexpectedEof`.
fn stream_error(e: io::Error) -> FormatError {
    match e.kind() {
        io::ErrorKind::UnexpectedEof => FormatError::Truncated,
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidData => {
            corrupt(format!("the compressed body does not decompress ({e})"))
        }
        _ => FormatError::Io(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Header, Vec<Track>) {
        let header = Header {
            created: 1_700_000_000,
            key: "music".into(),
            next_ids: vec![4, 9],
        };
        let tracks = vec![
            Track {
                shard: 0,
                id: 1,
                descr: b"first.flac".to_vec(),
                hashes: (0..500u32).map(|i| i.wrapping_mul(2_654_435_761)).collect(),
            },
            Track {
                shard: 1,
                id: 8,
                descr: vec![0xFF, 0x00, b'x'],
                hashes: vec![7; 3],
            },
            Track {
                shard: 0,
                id: 3,
                descr: Vec::new(),
                hashes: vec![1, 2, 3, 4],
            },
        ];
        (header, tracks)
    }

    fn write(header: &Header, tracks: &[Track]) -> Vec<u8> {
        let mut w = Writer::new(Vec::new(), header).expect("header");
        for t in tracks {
            w.track(t).expect("track");
        }
        w.finish().expect("finish")
    }

    fn read(bytes: &[u8]) -> Result<(Header, Vec<Track>), FormatError> {
        let mut r = Reader::open(bytes)?;
        let mut tracks = Vec::new();
        while let Some(t) = r.next_track()? {
            tracks.push(t);
        }
        Ok((r.header().clone(), tracks))
    }

    #[test]
    fn a_file_reads_back_exactly() {
        let (header, tracks) = sample();
        let bytes = write(&header, &tracks);
        assert_eq!(&bytes[..8], &MAGIC);
        let (h, t) = read(&bytes).expect("reads");
        assert_eq!(h, header);
        assert_eq!(t, tracks);
    }

    #[test]
    fn every_truncation_is_refused() {
        let (header, tracks) = sample();
        let bytes = write(&header, &tracks);
        for len in 0..bytes.len() {
            let got = read(&bytes[..len]);
            assert!(
                matches!(
                    got,
                    Err(FormatError::Truncated | FormatError::Foreign | FormatError::Corrupt(_))
                ),
                "cut at {len} of {}: {got:?}",
                bytes.len()
            );
        }
    }

    #[test]
    fn no_flipped_bit_changes_what_is_read() {
        // A flip is refused, or lands where it changes nothing (the unused
        // bits after the last deflate block).
        let (header, tracks) = sample();
        let bytes = write(&header, &tracks);
        let mut refused = 0;
        for at in 0..bytes.len() {
            for bit in [0x01u8, 0x10, 0x80] {
                let mut bad = bytes.clone();
                bad[at] ^= bit;
                match read(&bad) {
                    Err(_) => refused += 1,
                    Ok(got) => assert_eq!(got, (header.clone(), tracks.clone()), "byte {at}"),
                }
            }
        }
        assert!(refused >= 3 * bytes.len() - 3, "{refused} refused");
    }

    #[test]
    fn appended_bytes_are_refused() {
        let (header, tracks) = sample();
        let mut bytes = write(&header, &tracks);
        bytes.push(0);
        assert!(matches!(read(&bytes), Err(FormatError::Corrupt(_))));
    }

    #[test]
    fn foreign_and_newer_files_are_named_as_such() {
        assert!(matches!(read(b""), Err(FormatError::Foreign)));
        assert!(matches!(
            read(b"id,descr\n1,a\n"),
            Err(FormatError::Foreign)
        ));
        assert!(matches!(
            read(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"),
            Err(FormatError::Foreign)
        ));
        let (header, tracks) = sample();
        let mut bytes = write(&header, &tracks);
        bytes[8] = 2;
        let e = read(&bytes).expect_err("newer");
        assert!(matches!(e, FormatError::NewerVersion(2)));
        assert!(e.to_string().contains("newer"));
    }

    #[test]
    fn a_consistent_file_with_bad_contents_is_refused() {
        let (header, mut tracks) = sample();
        tracks.push(tracks[0].clone());
        let e = read(&write(&header, &tracks)).expect_err("duplicate id");
        assert!(e.to_string().contains("appears twice"), "{e}");
        let (header, mut tracks) = sample();
        tracks[1].hashes.clear();
        assert!(read(&write(&header, &tracks)).is_err(), "an empty track");
    }
}
