//! `list`: the tracks of an index, page by page: id, frames, length,
//! description. A sharded index is listed shard after shard, each in id
//! order; the cursor is where the listing goes on, written as the id a
//! track there would have, so it means the same on every run.

use auscout_client::shard::Layout;
use auscout_client::store::Access;
use auscout_client::{TrackCursor, TrackInfo};
use serde::Serialize;

use super::{open, track_seconds, Fatal};
use crate::args::ListArgs;
use crate::output::{csv_field, json_line, Format, Reporter};

/// Tracks asked of the server at once.
const PAGE: u64 = 1000;

#[derive(Serialize)]
struct JsonTrack<'a> {
    id: u64,
    descr: &'a str,
    frames: u64,
    seconds: f64,
}

pub fn run(args: &ListArgs, out: &Reporter) -> Result<(), Fatal> {
    let store = open(&args.connection, &args.key, Access::Read)?;
    let layout = store.layout();
    let mut cursor = decode(layout, args.cursor);
    let mut left = args.count;
    let mut listed = 0u64;
    match out.format {
        Format::Csv => out.result("id,descr,frames,seconds"),
        Format::Plain => out.result(&format!(
            "{:>10}  {:>9}  {:>9}  description",
            "id", "frames", "length"
        )),
        Format::Json => {}
    }
    loop {
        let page = left.map_or(PAGE, |l| l.min(PAGE));
        let (tracks, next) = store.tracks(cursor, u32::try_from(page).unwrap_or(u32::MAX))?;
        for t in &tracks {
            out.result(&line(out.format, t));
        }
        listed += tracks.len() as u64;
        left = left.map(|l| l.saturating_sub(tracks.len() as u64));
        match next {
            Some(next) if left != Some(0) => cursor = next,
            Some(next) => {
                out.info(&format!(
                    "more tracks follow: --cursor {}",
                    encode(layout, next)
                ));
                break;
            }
            None => break,
        }
    }
    if listed == 0 && args.cursor == 0 {
        out.info(&format!("index {} has no tracks", layout.name()));
    }
    Ok(())
}

fn line(format: Format, t: &TrackInfo) -> String {
    let seconds = track_seconds(t.frames);
    match format {
        Format::Plain => format!(
            "{:>10}  {:>9}  {:>9}  {}",
            t.id,
            t.frames,
            clock(seconds),
            t.descr
        ),
        Format::Csv => format!(
            "{},{},{},{:.2}",
            t.id,
            csv_field(&t.descr),
            t.frames,
            seconds
        ),
        Format::Json => json_line(&JsonTrack {
            id: t.id,
            descr: &t.descr,
            frames: t.frames,
            seconds: (seconds * 100.0).round() / 100.0,
        }),
    }
}

/// `m:ss.s`, or `h:mm:ss` from an hour on.
fn clock(seconds: f64) -> String {
    let tenths = (seconds * 10.0).round() as u64;
    let (h, m, s) = (tenths / 36_000, tenths / 600 % 60, tenths % 600);
    if h > 0 {
        format!("{h}:{m:02}:{:02}", s / 10)
    } else {
        format!("{m}:{:02}.{}", s / 10, s % 10)
    }
}

/// The cursor shown to the user: the id a track at that place would have.
fn encode(layout: &Layout, at: TrackCursor) -> u64 {
    layout.global_id(at.shard, at.local).unwrap_or(u64::MAX)
}

fn decode(layout: &Layout, cursor: u64) -> TrackCursor {
    let (shard, local) = layout.locate(cursor);
    TrackCursor { shard, local }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_through_ids() {
        let layout = Layout::numbered("k", 3);
        for (shard, local) in [(0, 0), (1, 0), (2, 7), (0, 12)] {
            let at = TrackCursor { shard, local };
            assert_eq!(decode(&layout, encode(&layout, at)), at);
        }
        assert_eq!(decode(&layout, 0), TrackCursor::default());
    }

    #[test]
    fn lengths_read_as_a_clock() {
        assert_eq!(clock(0.0), "0:00.0");
        assert_eq!(clock(61.25), "1:01.3");
        assert_eq!(clock(3725.0), "1:02:05");
    }
}
