//! `monitor`: what played when in recordings, streams and on standard
//! input. Thin:
//! the engine is `auscout-monitor`; this file picks the sources and prints
//! the events.

use std::path::PathBuf;

use auscout_client::store::{Access, LookupOptions};
use auscout_monitor::{
    is_url, monitor, DecodedSource, Event, EventKind, Options, RawFormat, RawSource, SampleSource,
    Segment, StoreCatalog, UrlOptions, UrlSource,
};
use serde::Serialize;

use super::{open, Fatal};
use crate::args::MonitorArgs;
use crate::output::{csv_field, json_line, Format, Reporter};
use crate::walk;

/// The header of `monitor --csv` (the bench's score_monitor.py reads it).
pub const MONITOR_CSV_HEADER: &str =
    "stream,track,id,stream_start_s,stream_end_s,track_start_s,track_end_s,score";

enum Source {
    Stdin,
    /// A capture device (`None`: the default input).
    Mic(Option<String>),
    File(PathBuf),
    Url(String),
}

pub fn run(args: &MonitorArgs, out: &Reporter) -> Result<(), Fatal> {
    let raw: Option<RawFormat> = args.raw.as_deref().map(str::parse).transpose()?;
    if args.sources.is_empty() && !args.mic && args.device.is_none() {
        return Err(Fatal(
            "no recordings given (files, directories, URLs, - for standard input, or --mic)"
                .to_owned(),
        ));
    }
    let options = Options {
        sr: args.sr,
        gap: args.gap,
        outro: args.outro,
        window: args.window,
        ..Options::default()
    };
    options.validate()?;
    if !(args.stall > 0.0 && args.stall.is_finite()) {
        return Err(Fatal(format!(
            "--stall must be a positive number of seconds, not {}",
            args.stall
        )));
    }
    let url_options = UrlOptions {
        max_retries: args.max_retries,
        stall: std::time::Duration::from_secs_f64(args.stall),
        ..UrlOptions::default()
    };
    let mut sources = Vec::new();
    if args.mic || args.device.is_some() {
        sources.push(Source::Mic(args.device.clone()));
    }
    let mut paths = Vec::new();
    for s in &args.sources {
        if s == "-" {
            sources.push(Source::Stdin);
        } else if is_url(s) {
            sources.push(Source::Url(s.clone()));
        } else {
            paths.push(PathBuf::from(s));
        }
    }
    if raw.is_some() && !sources.iter().any(|s| matches!(s, Source::Stdin)) {
        return Err(Fatal(
            "--raw describes standard input: give - as a source".to_owned(),
        ));
    }
    let (files, errors) = walk::collect(&paths);
    for e in &errors {
        out.file_error(&e.path, &e.message);
    }
    sources.extend(files.into_iter().map(Source::File));
    let store = open(&args.connection, &args.key, Access::Read)?;
    if store.count()? == 0 {
        return Err(Fatal(format!(
            "the index '{}' is empty or does not exist",
            args.key.key.as_deref().unwrap_or("")
        )));
    }
    let catalog = StoreCatalog::new(
        &store,
        LookupOptions {
            threshold: args.threshold,
            limit: None,
            with_speed: false,
        },
    );
    if out.format == Format::Csv {
        out.result(MONITOR_CSV_HEADER);
    }
    let several = sources.len() > 1;
    for source in sources {
        let (name, opened): (String, Result<Box<dyn SampleSource>, _>) = match &source {
            Source::Stdin => (
                "-".to_owned(),
                match raw {
                    Some(format) => Ok(Box::new(RawSource::new(std::io::stdin(), format, true))
                        as Box<dyn SampleSource>),
                    None => DecodedSource::reader(std::io::stdin())
                        .map(|s| Box::new(s) as Box<dyn SampleSource>),
                },
            ),
            Source::File(p) => (
                p.display().to_string(),
                DecodedSource::file(p).map(|s| Box::new(s) as Box<dyn SampleSource>),
            ),
            Source::Mic(device) => (
                device.clone().unwrap_or_else(|| "mic".to_owned()),
                open_mic(device.as_deref()),
            ),
            Source::Url(u) => (
                u.clone(),
                UrlSource::open(u, url_options.clone())
                    .map(|s| Box::new(s) as Box<dyn SampleSource>),
            ),
        };
        let mut src = match opened {
            Ok(s) => s,
            Err(e) => {
                out.error(&format!("{name}: {e}"));
                continue;
            }
        };
        if several && out.format == Format::Plain {
            out.result(&format!("{name}:"));
        }
        let live = src.live();
        let mut print = |e: Event| print_event(out, &name, live, &e);
        if let Err(e) = monitor(src.as_mut(), &catalog, options.clone(), &mut print) {
            out.error(&format!("{name}: {e}"));
        }
    }
    Ok(())
}

#[cfg(feature = "mic")]
fn open_mic(device: Option<&str>) -> Result<Box<dyn SampleSource>, auscout_monitor::MonitorError> {
    auscout_monitor::MicSource::open(device).map(|s| Box::new(s) as Box<dyn SampleSource>)
}

#[cfg(not(feature = "mic"))]
fn open_mic(_: Option<&str>) -> Result<Box<dyn SampleSource>, auscout_monitor::MonitorError> {
    Err(auscout_monitor::MonitorError::BadOption(
        "this auscoutclient was built without microphone support (the `mic` feature, \
         which needs the ALSA headers: libasound2-dev)"
            .to_owned(),
    ))
}

/// One event as `monitor --json` prints it.
#[derive(Serialize)]
struct JsonEvent<'a> {
    event: &'static str,
    stream: &'a str,
    track: &'a str,
    id: u64,
    stream_start_s: f64,
    stream_end_s: f64,
    track_start_s: f64,
    track_end_s: f64,
    score: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    speed: Option<f64>,
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn print_event(out: &Reporter, stream: &str, live: bool, e: &Event) {
    let s = &e.segment;
    match (out.format, e.kind) {
        (Format::Json, kind) => out.result(&json_line(&JsonEvent {
            event: match kind {
                EventKind::Start => "start",
                EventKind::End => "end",
                EventKind::Cancel => "cancel",
            },
            stream,
            track: &s.track,
            id: s.id,
            stream_start_s: round3(s.stream_start),
            stream_end_s: round3(s.stream_end),
            track_start_s: round3(s.track_start),
            track_end_s: round3(s.track_end),
            score: round3(s.score),
            speed: (s.speed != 1.0).then_some(s.speed),
        })),
        (Format::Csv, EventKind::End) => out.result(&format!(
            "{},{},{},{:.3},{:.3},{:.3},{:.3},{:.3}",
            csv_field(stream),
            csv_field(&s.track),
            s.id,
            s.stream_start,
            s.stream_end,
            s.track_start,
            s.track_end,
            s.score
        )),
        (Format::Plain, EventKind::End) => out.result(&plain_line(s)),
        (Format::Plain, EventKind::Start) if live => out.result(&format!(
            "now playing: {}  since {}  from {}",
            s.track,
            clock(s.stream_start),
            short_clock(s.track_start)
        )),
        _ => {}
    }
}

/// `00:12:05.3 – 00:15:41.0  song.flac  from 0:33.2  score 0.81`
fn plain_line(s: &Segment) -> String {
    let mut line = format!(
        "{} – {}  {}  from {}  score {:.2}",
        clock(s.stream_start),
        clock(s.stream_end),
        s.track,
        short_clock(s.track_start),
        s.score
    );
    if s.speed != 1.0 {
        line.push_str(&format!("  speed {:.3}", s.speed));
    }
    line
}

/// `hh:mm:ss.d`
fn clock(seconds: f64) -> String {
    let tenths = (seconds.max(0.0) * 10.0).round() as u64;
    let (s, d) = (tenths / 10, tenths % 10);
    format!("{:02}:{:02}:{:02}.{d}", s / 3600, s / 60 % 60, s % 60)
}

/// `m:ss.d`
fn short_clock(seconds: f64) -> String {
    let tenths = (seconds.max(0.0) * 10.0).round() as u64;
    let (s, d) = (tenths / 10, tenths % 10);
    format!("{}:{:02}.{d}", s / 60, s % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_lines_read_like_a_log() {
        let s = Segment {
            id: 3,
            track: "song.flac".into(),
            stream_start: 725.3,
            stream_end: 941.04,
            track_start: 33.21,
            track_end: 250.0,
            score: 0.8123,
            speed: 1.0,
        };
        assert_eq!(
            plain_line(&s),
            "00:12:05.3 – 00:15:41.0  song.flac  from 0:33.2  score 0.81"
        );
        let fast = Segment { speed: 1.03, ..s };
        assert!(plain_line(&fast).ends_with("speed 1.030"));
        assert_eq!(clock(3725.06), "01:02:05.1");
    }
}
