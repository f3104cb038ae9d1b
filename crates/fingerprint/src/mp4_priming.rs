//! The encoder priming of MP4/M4A audio tracks, read from their edit lists.
//!
//! An AAC encoder emits `priming` samples (1024 for ffmpeg, 2112 for iTunes)
//! before the first real one, and the MP4 container says so in the track's
//! edit list (`moov/trak/edts/elst`): the first edit starts at `media_time`,
//! in the units of the track's `mdhd` timescale. symphonia 0.6.1's MP4 reader
//! does not apply edit lists, so every decoded M4A/AAC file would start
//! ~23 ms late and every offset found in it would be off by that much. The
//! decoder drops these samples itself.
//!
//! Only the boxes on the path to those two fields are read, each size checked
//! against its parent, at most [`MAX_BOXES`] box headers in all, so a damaged
//! or hostile file costs a few reads and yields "no priming" (the audio is then
//! decoded as before), never an error.

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};

/// Box headers read at most while looking for the edit lists.
const MAX_BOXES: usize = 4096;

/// Where a track's audio really starts: `media_time / timescale` seconds into
/// its decoded samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Priming {
    pub media_time: u64,
    pub timescale: u32,
}

impl Priming {
    /// The priming in samples at `rate` Hz (rounded).
    pub fn samples_at(&self, rate: u32) -> u64 {
        if self.timescale == 0 {
            return 0;
        }
        let t = u128::from(self.timescale);
        let samples = (u128::from(self.media_time) * u128::from(rate) + t / 2) / t;
        u64::try_from(samples).unwrap_or(u64::MAX)
    }
}

/// The priming of every track with an edit list that starts past 0, by
/// track id (the `tkhd` id, which symphonia uses as its track id). Empty when
/// `src` is not an MP4 file or anything on the way is malformed. Reads from
/// the current position, which must be the file's start.
pub fn read_primings<R: Read + Seek>(src: &mut R) -> HashMap<u32, Priming> {
    let mut out = HashMap::new();
    let mut budget = MAX_BOXES;
    let Ok(end) = src.seek(SeekFrom::End(0)) else {
        return out;
    };
    if src.seek(SeekFrom::Start(0)).is_err() {
        return out;
    }
    // An MP4 file starts with `ftyp` (QuickTime files may start elsewhere,
    // but then we leave them as they were decoded before).
    match next_box(src, 0, end, &mut budget) {
        Some(b) if &b.kind == b"ftyp" => {}
        _ => return out,
    }
    let Some(moov) = find_child(src, 0, end, b"moov", &mut budget) else {
        return out;
    };
    let mut at = moov.body;
    while let Some(trak) = next_box(src, at, moov.end, &mut budget) {
        at = trak.end;
        if &trak.kind == b"trak" {
            if let Some((id, priming)) = read_trak(src, &trak, &mut budget) {
                out.insert(id, priming);
            }
        }
    }
    out
}

/// One box: its type, where its body starts and where it ends.
#[derive(Debug, Clone, Copy)]
struct BoxRef {
    kind: [u8; 4],
    body: u64,
    end: u64,
}

/// The box at `at`, if its header is readable and it fits in `..parent_end`.
fn next_box<R: Read + Seek>(
    src: &mut R,
    at: u64,
    parent_end: u64,
    budget: &mut usize,
) -> Option<BoxRef> {
    *budget = budget.checked_sub(1)?;
    if at.checked_add(8)? > parent_end {
        return None;
    }
    src.seek(SeekFrom::Start(at)).ok()?;
    let mut head = [0u8; 8];
    src.read_exact(&mut head).ok()?;
    let [s0, s1, s2, s3, k0, k1, k2, k3] = head;
    let kind = [k0, k1, k2, k3];
    let (size, header) = match u32::from_be_bytes([s0, s1, s2, s3]) {
        // Extends to the end of its parent.
        0 => (parent_end - at, 8),
        // A 64-bit size follows the type.
        1 => (read_u64(src)?, 16),
        n => (u64::from(n), 8),
    };
    let end = at.checked_add(size)?;
    if size < header || end > parent_end {
        return None;
    }
    Some(BoxRef {
        kind,
        body: at + header,
        end,
    })
}

/// The first child of type `kind` in `body..end`.
fn find_child<R: Read + Seek>(
    src: &mut R,
    body: u64,
    end: u64,
    kind: &[u8; 4],
    budget: &mut usize,
) -> Option<BoxRef> {
    let mut at = body;
    while let Some(b) = next_box(src, at, end, budget) {
        if &b.kind == kind {
            return Some(b);
        }
        at = b.end;
    }
    None
}

/// `(track id, priming)` of one `trak`, when it has an edit list whose
/// first non-empty edit starts past 0.
fn read_trak<R: Read + Seek>(
    src: &mut R,
    trak: &BoxRef,
    budget: &mut usize,
) -> Option<(u32, Priming)> {
    let tkhd = find_child(src, trak.body, trak.end, b"tkhd", budget)?;
    let id = read_u32_after_times(src, &tkhd)?;
    let edts = find_child(src, trak.body, trak.end, b"edts", budget)?;
    let elst = find_child(src, edts.body, edts.end, b"elst", budget)?;
    let media_time = read_first_media_time(src, &elst)?;
    let mdia = find_child(src, trak.body, trak.end, b"mdia", budget)?;
    let mdhd = find_child(src, mdia.body, mdia.end, b"mdhd", budget)?;
    let timescale = read_u32_after_times(src, &mdhd)?;
    (media_time > 0 && timescale > 0).then_some((
        id,
        Priming {
            media_time,
            timescale,
        },
    ))
}

/// The `version` byte of a full box (the 3 flag bytes are skipped).
fn full_box_version<R: Read + Seek>(src: &mut R, b: &BoxRef) -> Option<u8> {
    src.seek(SeekFrom::Start(b.body)).ok()?;
    let [version, ..] = read_array::<4, _>(src)?;
    Some(version)
}

/// The `u32` after a full box's version, flags and two time fields
/// (creation and modification, 4 or 8 bytes each): the track id of a `tkhd`,
/// the timescale of an `mdhd`.
fn read_u32_after_times<R: Read + Seek>(src: &mut R, b: &BoxRef) -> Option<u32> {
    let skip = match full_box_version(src, b)? {
        0 => 8,
        1 => 16,
        _ => return None,
    };
    within(b, 4 + skip + 4)?;
    src.seek(SeekFrom::Current(skip)).ok()?;
    read_u32(src)
}

/// `media_time` of the first edit that is not empty (an empty edit, time
/// −1, only delays the presentation, which a fingerprint does not need).
fn read_first_media_time<R: Read + Seek>(src: &mut R, elst: &BoxRef) -> Option<u64> {
    let version = full_box_version(src, elst)?;
    let entry_len: i64 = match version {
        0 => 12,
        1 => 20,
        _ => return None,
    };
    let count = read_u32(src)?;
    // Entries beyond the first two are never needed: at most one empty edit
    // comes before the real one.
    for k in 0..count.min(2) {
        within(elst, 8 + (i64::from(k) + 1) * entry_len)?;
        let media_time = match version {
            0 => {
                let _duration = read_u32(src)?;
                i64::from(read_u32(src)? as i32)
            }
            _ => {
                let _duration = read_u64(src)?;
                read_u64(src)? as i64
            }
        };
        let _rate = read_u32(src)?;
        if media_time >= 0 {
            return u64::try_from(media_time).ok();
        }
    }
    None
}

/// `Some(())` when `len` bytes of body fit in `b`.
fn within(b: &BoxRef, len: i64) -> Option<()> {
    let len = u64::try_from(len).ok()?;
    (b.body.checked_add(len)? <= b.end).then_some(())
}

fn read_array<const N: usize, R: Read>(src: &mut R) -> Option<[u8; N]> {
    let mut buf = [0u8; N];
    src.read_exact(&mut buf).ok()?;
    Some(buf)
}

fn read_u32<R: Read>(src: &mut R) -> Option<u32> {
    read_array::<4, _>(src).map(u32::from_be_bytes)
}

fn read_u64<R: Read>(src: &mut R) -> Option<u64> {
    read_array::<8, _>(src).map(u64::from_be_bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut b = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(body);
        b
    }

    fn full(version: u8, rest: &[u8]) -> Vec<u8> {
        let mut b = vec![version, 0, 0, 0];
        b.extend_from_slice(rest);
        b
    }

    /// A minimal MP4: `ftyp`, then `moov` with one `trak` (id, edit list
    /// entries as (duration, media_time), mdhd timescale), version 0 boxes.
    fn mp4(id: u32, edits: &[(u32, i32)], timescale: u32) -> Vec<u8> {
        let mut tkhd = vec![0u8; 8];
        tkhd.extend_from_slice(&id.to_be_bytes());
        tkhd.extend_from_slice(&[0u8; 68]);
        let mut elst = (edits.len() as u32).to_be_bytes().to_vec();
        for &(d, t) in edits {
            elst.extend_from_slice(&d.to_be_bytes());
            elst.extend_from_slice(&t.to_be_bytes());
            elst.extend_from_slice(&0x0001_0000u32.to_be_bytes());
        }
        let mut mdhd = vec![0u8; 8];
        mdhd.extend_from_slice(&timescale.to_be_bytes());
        mdhd.extend_from_slice(&[0u8; 8]);
        let trak = [
            boxed(b"tkhd", &full(0, &tkhd)),
            boxed(b"edts", &boxed(b"elst", &full(0, &elst))),
            boxed(b"mdia", &boxed(b"mdhd", &full(0, &mdhd))),
        ]
        .concat();
        let moov = [boxed(b"mvhd", &[0u8; 100]), boxed(b"trak", &trak)].concat();
        [
            boxed(b"ftyp", b"M4A \0\0\0\0"),
            boxed(b"mdat", &[0u8; 64]),
            boxed(b"moov", &moov),
        ]
        .concat()
    }

    #[test]
    fn reads_the_first_edit_of_each_track() {
        let got = read_primings(&mut Cursor::new(mp4(1, &[(3000, 1024)], 44_100)));
        let p = got.get(&1).copied().expect("track 1");
        assert_eq!(
            p,
            Priming {
                media_time: 1024,
                timescale: 44_100
            }
        );
        assert_eq!(p.samples_at(44_100), 1024);
        assert_eq!(p.samples_at(22_050), 512);
        // An empty edit first (media time −1) is skipped.
        let got = read_primings(&mut Cursor::new(mp4(2, &[(500, -1), (3000, 2112)], 48_000)));
        assert_eq!(got.get(&2).map(|p| p.media_time), Some(2112));
    }

    #[test]
    fn no_edit_or_a_zero_edit_is_no_priming() {
        assert!(read_primings(&mut Cursor::new(mp4(1, &[(3000, 0)], 44_100))).is_empty());
        assert!(read_primings(&mut Cursor::new(mp4(1, &[], 44_100))).is_empty());
    }

    #[test]
    fn other_files_and_damage_give_nothing() {
        assert!(read_primings(&mut Cursor::new(b"RIFF\0\0\0\0WAVEfmt ".to_vec())).is_empty());
        assert!(read_primings(&mut Cursor::new(Vec::new())).is_empty());
        let good = mp4(1, &[(3000, 1024)], 44_100);
        // Every truncation, and every single corrupted byte, must be handled
        // without a panic (whatever it yields).
        for cut in 0..good.len() {
            let _ = read_primings(&mut Cursor::new(good[..cut].to_vec()));
        }
        for i in 0..good.len() {
            for v in [0u8, 1, 0x7f, 0xff] {
                let mut bad = good.clone();
                bad[i] = v;
                let _ = read_primings(&mut Cursor::new(bad));
            }
        }
        // A box claiming more than its parent holds ends the walk.
        let mut bad = good.clone();
        let moov_at = 16 + 72; // after `ftyp` and `mdat`
        assert_eq!(&bad[moov_at + 4..moov_at + 8], b"moov");
        bad[moov_at..moov_at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(read_primings(&mut Cursor::new(bad)).is_empty());
    }
}
