//! `auscoutclient monitor URL` against a local HTTP server started by the
//! test: a file whose connection is cut half-way (resumed with a range,
//! nothing lost), an endless MP3 stream cut off mid-way (reconnected: a
//! gap in the timeline, not an exit), an AAC radio stream with its "now
//! playing" lines, and the failures: an unreachable address, an error
//! status, a stream that stops sending.

use auscout_testkit::audio_server::{AudioServer, Ending, Reply};
use auscout_testkit::server as common;
mod support;

use std::path::Path;
use std::process::Output;
use std::sync::Arc;

use common::Server;
use support::recording::*;
use support::*;

/// The recording encoded as `ext` by ffmpeg.
fn encoded(dir: &Path, rec: &[f32], ext: &str) -> Arc<Vec<u8>> {
    let wav = join(dir, "recording.wav");
    if !wav.exists() {
        write_wav(&wav, rec, RATE, 1);
    }
    let out = join(dir, &format!("recording.{ext}"));
    encode(&wav, &out);
    Arc::new(std::fs::read(&out).expect("read the encoded recording"))
}

/// The segments match the truth; those after `cut` (s) are shifted by one
/// gap of 0 to 4 s (the time the stream was away).
fn assert_matches_truth_with_gap(out: &Output, truth: &[Truth], cut: f64) {
    let got = rows(&stdout(out));
    assert_eq!(got.len(), truth.len(), "{got:#?}\nvs\n{truth:#?}");
    let shifts: Vec<f64> = got
        .iter()
        .zip(truth)
        .filter(|(_, t)| t.start > cut)
        .map(|(r, t)| r.start - t.start)
        .collect();
    assert!(!shifts.is_empty(), "segments after the cut");
    let gap = shifts[shifts.len() / 2];
    assert!((0.0..4.0).contains(&gap), "gap {gap} s: {got:#?}");
    for (r, t) in got.iter().zip(truth) {
        let shift = if t.start > cut { gap } else { 0.0 };
        assert!(
            t.matches(r, shift),
            "{r:?} vs {t:?} (gap {gap})\nall: {got:#?}"
        );
    }
    assert_crossfades_overlap(&got, truth);
}

/// `auscoutclient monitor` of the index `music` on the server at `url`.
fn monitor(url: &str, args: &[&str]) -> Output {
    client(&[&["monitor", "-u", url, "-k", "music"], args].concat())
}

/// A failed run with one line on stderr containing `needle`.
fn assert_one_line_failure(out: &Output, needle: &str) {
    assert!(!out.status.success(), "should fail: {}", stdout(out));
    let err = stderr(out);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains(needle), "'{needle}' in: {err}");
}

#[test]
fn files_and_streams_over_http_come_back_as_their_truth() {
    let s = Server::start();
    let url = s.url();
    let dir = audio_dir();
    let (rec, truth) = setup(dir.path(), &url);
    let ogg = encoded(dir.path(), &rec, "ogg");
    let mp3 = encoded(dir.path(), &rec, "mp3");
    let aac = encoded(dir.path(), &rec, "aac");
    // The MP3 stream is cut in the silence after c.wav (60 to 64 s), at the
    // byte its bit rate puts at 61.5 s.
    let seconds = rec.len() as f64 / f64::from(RATE);
    let cut_s = 61.5;
    let cut = (mp3.len() as f64 * cut_s / seconds) as usize;
    let http = AudioServer::start(vec![
        (
            "/show.ogg",
            vec![
                Reply::File {
                    body: Arc::clone(&ogg),
                    content_type: "audio/ogg",
                    cut_at: Some(ogg.len() / 2),
                },
                Reply::File {
                    body: Arc::clone(&ogg),
                    content_type: "audio/ogg",
                    cut_at: None,
                },
            ],
        ),
        (
            "/live",
            vec![
                Reply::Stream {
                    body: Arc::new(mp3[..cut].to_vec()),
                    content_type: "audio/mpeg",
                    ending: Ending::Cut,
                },
                Reply::Stream {
                    body: Arc::new(mp3[cut..].to_vec()),
                    content_type: "audio/mpeg",
                    ending: Ending::Cut,
                },
            ],
        ),
        (
            "/aac",
            vec![Reply::Stream {
                body: aac,
                content_type: "audio/aacp",
                ending: Ending::Finish,
            }],
        ),
        (
            // Asked twice: as HTTP (which refuses the reply), then as Shoutcast.
            "/shoutcast",
            vec![
                Reply::Shoutcast {
                    body: Arc::clone(&mp3),
                    content_type: "audio/mpeg",
                    ending: Ending::Finish,
                };
                2
            ],
        ),
    ]);

    // A file cut half-way is resumed where it stopped: nothing is lost.
    let show = http.url("/show.ogg");
    let out = ok(monitor(&url, &["--csv", &show]));
    assert_matches_truth(&out, &truth);
    let asked = http.requests();
    assert_eq!(asked.len(), 2, "{asked:?}");
    assert_eq!(asked[1], format!("GET /show.ogg range {}-", ogg.len() / 2));

    // An endless stream cut off twice: reconnected once (a gap), then gone
    // for good after 2 retries; every segment is reported all the same.
    let live = http.url("/live");
    let out = monitor(&url, &["--csv", "--max-retries", "2", &live]);
    assert_one_line_failure(&out, "did not come back after 2 retries");
    assert_matches_truth_with_gap(&out, &truth, cut_s);
    let to_live = http
        .requests()
        .iter()
        .filter(|r| r.as_str() == "GET /live")
        .count();
    assert_eq!(to_live, 4, "{:?}", http.requests());

    // A radio stream (AAC): a "now playing" line as each track is heard,
    // then its segment; its end is a drop, and no retry is allowed.
    let radio = http.url("/aac");
    let out = monitor(&url, &["--max-retries", "0", &radio]);
    assert_one_line_failure(&out, "the stream ended");
    let text = stdout(&out);
    let playing: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("now playing: "))
        .map(|l| l.split("  ").next().unwrap_or(""))
        .collect();
    let tracks: Vec<&str> = truth.iter().map(|t| t.track).collect();
    assert_eq!(playing, tracks, "{text}");
    let segments = text.lines().filter(|l| l.contains(" – ")).count();
    assert_eq!(segments, truth.len(), "{text}");

    // A Shoutcast v1 station, which answers `ICY 200 OK`: the same stream.
    let shoutcast = http.url("/shoutcast");
    let out = monitor(&url, &["--csv", "--max-retries", "0", &shoutcast]);
    assert_one_line_failure(&out, "the stream ended");
    assert_matches_truth(&out, &truth);
}

#[test]
fn unreachable_failing_and_stalled_urls_are_one_clear_line() {
    let s = Server::start();
    let url = s.url();
    let dir = audio_dir();
    let (rec, truth) = setup(dir.path(), &url);
    let mp3 = encoded(dir.path(), &rec, "mp3");
    let seconds = rec.len() as f64 / f64::from(RATE);
    let cut = (mp3.len() as f64 * 61.5 / seconds) as usize;
    let http = AudioServer::start(vec![
        ("/gone", vec![Reply::Status(404)]),
        (
            "/stall",
            vec![Reply::Stream {
                body: Arc::new(mp3[..cut].to_vec()),
                content_type: "audio/mpeg",
                ending: Ending::Stall,
            }],
        ),
    ]);

    // Nothing listens on port 1.
    let out = monitor(&url, &["http://127.0.0.1:1/radio"]);
    assert_one_line_failure(&out, "cannot connect");

    let out = monitor(&url, &[&http.url("/gone")]);
    assert_one_line_failure(&out, "HTTP 404");

    // Stops sending after c.wav: what played before is reported, then the
    // stall is a drop, and the reconnection finds nothing (503).
    let out = monitor(
        &url,
        &[
            "--csv",
            "--stall",
            "1",
            "--max-retries",
            "1",
            &http.url("/stall"),
        ],
    );
    assert_one_line_failure(&out, "nothing received for too long");
    let got = rows(&stdout(&out));
    let before: Vec<&str> = truth
        .iter()
        .filter(|t| t.end < 61.0)
        .map(|t| t.track)
        .collect();
    let reported: Vec<&str> = got.iter().map(|r| r.track.as_str()).collect();
    assert_eq!(reported, before, "{got:#?}");
}
