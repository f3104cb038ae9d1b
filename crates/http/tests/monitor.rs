//! `POST /v1/monitor` end to end: the `auscout-http` binary in front of a
//! real redis-server with the module, a recording made of indexed tracks
//! (a hard cut, silence, unindexed music) encoded as MP3 and Ogg/Opus; its
//! segments come back as JSON and as JSON Lines streamed while the
//! recording is read; every error has its status; Redis stopped under the
//! service is a 503, and the same service monitors again once it is back.

mod common;

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use auscout_testkit::Server;
use common::show::{recording, TRUTH};
use common::{add_tracks, fixtures, get, post, post_form, Service};
use serde_json::Value;

/// Asserts `segments` are the truth (boundaries within 1 s), from `stream`.
fn assert_truth(segments: &[Value], stream: &str, what: &str) {
    assert_eq!(segments.len(), TRUTH.len(), "{what}: {segments:?}");
    for (s, t) in segments.iter().zip(&TRUTH) {
        assert_eq!(s["track"], t.track, "{what}: {s}");
        assert_eq!(s["stream"], stream, "{what}: {s}");
        assert!(s["id"].as_u64().is_some_and(|id| id > 0), "{what}: {s}");
        let near = |field: &str, want: f64| {
            let got = s[field].as_f64().unwrap_or(f64::NAN);
            assert!(
                (got - want).abs() <= 1.0,
                "{what}: {field} {got} ≠ {want}: {s}"
            );
        };
        near("stream_start_s", t.start);
        near("stream_end_s", t.end);
        near("track_start_s", t.track_start);
        near("track_end_s", t.track_start + (t.end - t.start));
        let score = s["score"].as_f64().unwrap_or(0.0);
        assert!(score > 0.5 && score <= 1.0, "{what}: score {score}");
        assert!(s.get("speed").is_none(), "{what}: {s}");
    }
}

/// POSTs with `Accept: application/x-ndjson`; returns the status, the
/// content type and the lines with the seconds after the reply's head
/// each arrived.
fn post_streamed(url: &str, content_type: &str, body: &[u8]) -> (u16, String, Vec<(f64, Value)>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into();
    let mut r = agent
        .post(url)
        .header("Content-Type", content_type)
        .header("Accept", "application/x-ndjson")
        .send(body)
        .unwrap_or_else(|e| panic!("{url}: {e}"));
    let head = Instant::now();
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut lines = Vec::new();
    for line in BufReader::new(r.body_mut().as_reader()).lines() {
        let line = line.expect("a line of the reply");
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        lines.push((head.elapsed().as_secs_f64(), v));
    }
    (status, content_type, lines)
}

#[test]
fn a_recording_gives_its_segments_as_json_and_as_json_lines() {
    let redis = Server::start();
    let service = Service::start(redis.port, &[]);
    add_tracks(&service, None);

    // JSON: raw MP3, named by `stream`.
    let r = post(
        &service.url("/v1/monitor?stream=show"),
        "audio/mpeg",
        &recording("show.mp3"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["key"], "songs");
    assert_eq!(v["stream"], "show");
    assert_truth(v["segments"].as_array().expect("segments"), "show", "JSON");
    let duration = v["duration_s"].as_f64().expect("duration_s");
    assert!((duration - 53.0).abs() < 0.3, "duration {duration}");
    assert!(v["lookups"].as_u64().unwrap() > 5, "{v}");

    // JSON Lines: Ogg/Opus as a form, named after its file.
    let form_body = {
        let boundary = "monitor-test-boundary";
        let mut b = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"audio\"; \
             filename=\"show.opus\"\r\nContent-Type: audio/ogg\r\n\r\n"
        )
        .into_bytes();
        b.extend(recording("show.opus"));
        b.extend(format!("\r\n--{boundary}--\r\n").into_bytes());
        (format!("multipart/form-data; boundary={boundary}"), b)
    };
    let (status, content_type, lines) =
        post_streamed(&service.url("/v1/monitor"), &form_body.0, &form_body.1);
    assert_eq!(status, 200, "{lines:?}");
    assert_eq!(content_type, "application/x-ndjson");
    let (last, segments) = lines.split_last().expect("lines");
    let segments: Vec<Value> = segments.iter().map(|(_, v)| v.clone()).collect();
    assert_truth(&segments, "show.opus", "JSON Lines");
    let done = &last.1["done"];
    assert_eq!(done["segments"], 2, "{last:?}");
    assert!(
        (done["duration_s"].as_f64().unwrap() - 53.0).abs() < 0.3,
        "{done}"
    );

    // An index without tracks hears nothing, and says so with a 200.
    let r = post(
        &service.url("/v1/monitor?key=empty-index"),
        "audio/mpeg",
        &recording("show.mp3"),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["segments"], serde_json::json!([]));
}

#[test]
fn json_lines_are_sent_while_the_recording_is_read() {
    let redis = Server::start();
    let service = Service::start(redis.port, &[]);
    add_tracks(&service, None);
    let (status, _, lines) = post_streamed(
        &service.url("/v1/monitor"),
        "audio/mpeg",
        &recording("long.mp3"),
    );
    assert_eq!(status, 200, "{lines:?}");
    let segments: Vec<Value> = lines[..lines.len() - 1]
        .iter()
        .map(|(_, v)| v.clone())
        .collect();
    assert_truth(&segments, "-", "long recording");
    let (first_at, _) = lines[0];
    let (done_at, done) = lines.last().expect("a done line");
    let total_ms = done["done"]["timings_ms"]["total"]
        .as_f64()
        .expect("timings");
    // The segments end in the first 45 s of a 195 s recording: their lines
    // come while the unindexed tail is still being monitored, not with the
    // last line.
    assert!(
        done_at - first_at > 0.25 * total_ms / 1000.0,
        "the first segment came {first_at:.2} s after the head, the end {done_at:.2} s \
         (monitoring took {total_ms} ms): the reply was not streamed"
    );
}

#[test]
fn monitor_errors_have_their_status() {
    let redis = Server::start();
    let service = Service::start(redis.port, &["--body-limit", "400000"]);
    add_tracks(&Service::start(redis.port, &[]), None);
    let f = fixtures();
    let monitor = |query: &str, mime: &str, body: &[u8]| {
        post(
            &service.url(&format!("/v1/monitor{query}")),
            mime,
            body,
            None,
        )
    };
    let clip = f.bytes("clip.mp3");
    for query in [
        "?gap=-1",
        "?gap=abc",
        "?outro=-1",
        "?outro=61",
        "?window=0.5",
        "?window=31",
        "?threshold=2",
        "?key=",
    ] {
        monitor(query, "audio/mpeg", &clip).assert_error(400, "bad_request");
    }
    post_form(
        &service.url("/v1/monitor"),
        &[("file", Some("clip.mp3"), &clip)],
        None,
    )
    .assert_error(400, "bad_request");
    let (status, body) = common::head_only(
        &service.base,
        "POST /v1/monitor HTTP/1.1\r\nHost: test\r\nContent-Type: audio/mpeg\r\n\
         Content-Length: 5000000\r\n\r\n",
    );
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("\"payload_too_large\""), "{body}");
    monitor("", "application/octet-stream", &f.bytes("garbage.bin"))
        .assert_error(415, "unsupported_audio");
    monitor("", "audio/wav", b"").assert_error(415, "unsupported_audio");
    monitor("", "audio/wav", &f.bytes("short.wav")).assert_error(422, "audio_too_short");
    // Streamed, errors found before the first line still get their status.
    for (file, status, code) in [
        ("garbage.bin", 415, "unsupported_audio"),
        ("short.wav", 422, "audio_too_short"),
    ] {
        let (got, content_type, lines) = post_streamed(
            &service.url("/v1/monitor"),
            "application/octet-stream",
            &f.bytes(file),
        );
        assert_eq!(got, status, "{file}: {lines:?}");
        assert!(
            content_type.starts_with("application/json"),
            "{content_type}"
        );
        assert_eq!(lines[0].1["error"]["code"], code, "{file}: {lines:?}");
    }
    let ok = monitor("", "audio/mpeg", &clip);
    assert_eq!(ok.status, 200, "{}", ok.text());
    // After all that, the service still monitors.
    let segments = ok.json()["segments"].clone();
    assert!(
        segments
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["track"] == "track1.wav"),
        "{segments}"
    );
}

#[test]
fn monitor_with_redis_down_is_503_and_recovers() {
    let mut redis = Server::start();
    let service = Service::start(redis.port, &["--redis-retry", "0.5"]);
    add_tracks(&service, None);
    let _: () = redis::cmd("SAVE").query(&mut redis.conn()).expect("SAVE");
    redis.stop();
    let show = recording("show.mp3");
    post(&service.url("/v1/monitor"), "audio/mpeg", &show, None)
        .assert_error(503, "redis_unavailable");
    let (status, _, lines) = post_streamed(&service.url("/v1/monitor"), "audio/mpeg", &show);
    assert_eq!(status, 503, "{lines:?}");
    assert_eq!(lines[0].1["error"]["code"], "redis_unavailable");
    get(&service.url("/health")).assert_error(503, "redis_unavailable");

    redis.resume();
    let r = post(&service.url("/v1/monitor"), "audio/mpeg", &show, None);
    assert_eq!(r.status, 200, "{}", r.text());
    assert_truth(
        r.json()["segments"].as_array().expect("segments"),
        "-",
        "after Redis came back",
    );
}
