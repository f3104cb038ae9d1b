//! `auscoutclient monitor` end to end against a real `redis-server` with the
//! module: a recording built from synthetic tracks (a hard cut, a
//! crossfade, silence, unindexed music, a repeat, a 3 % speed-up) must come
//! back as its truth, one segment per excerpt with boundaries within 1 s,
//! whether read from a file, piped into standard input, or as raw PCM; bad
//! input is one clear line and a non-zero exit.

use auscout_testkit::server as common;
mod support;

use std::process::Output;

use common::Server;
use support::recording::*;
use support::*;

#[test]
fn a_recording_comes_back_as_its_truth_from_a_file_stdin_and_raw_pcm() {
    let s = Server::start();
    let url = s.url();
    let dir = audio_dir();
    let (rec, truth) = setup(dir.path(), &url);
    let file = join(dir.path(), "recording.wav");
    write_wav(&file, &rec, RATE, 1);
    let file = path_str(&file);

    let out = ok(client(&[
        "monitor", "-u", &url, "-k", "music", "--csv", &file,
    ]));
    assert_matches_truth(&out, &truth);

    // JSON events: a start and an end per segment; the fast one says its speed.
    let out = ok(client(&[
        "monitor", "-u", &url, "-k", "music", "--json", &file,
    ]));
    let events: Vec<serde_json::Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect();
    let count = |kind: &str| events.iter().filter(|e| e["event"] == kind).count();
    assert_eq!((count("start"), count("end")), (truth.len(), truth.len()));
    let fast = events
        .iter()
        .find(|e| e["event"] == "end" && e["track"] == "d.wav")
        .expect("d.wav ends");
    let speed = fast["speed"].as_f64().expect("a speed");
    assert!((speed - 1.03).abs() < 0.01, "speed {speed}");
    assert!(
        events
            .iter()
            .filter(|e| e["track"] != "d.wav")
            .all(|e| e.get("speed").is_none()),
        "{events:#?}"
    );

    // The same file through a pipe (probed without seeking).
    let bytes = std::fs::read(&file).expect("read");
    let out = ok(client_stdin(
        &["monitor", "-u", &url, "-k", "music", "--csv", "-"],
        bytes,
    ));
    assert_matches_truth(&out, &truth);

    // Raw PCM: 16-bit stereo at 8 kHz.
    let mut raw = Vec::new();
    for v in &rec {
        let s = (v.clamp(-1.0, 1.0) * 32767.0) as i16;
        raw.extend_from_slice(&s.to_le_bytes());
        raw.extend_from_slice(&s.to_le_bytes());
    }
    let out = ok(client_stdin(
        &[
            "monitor",
            "-u",
            &url,
            "-k",
            "music",
            "--csv",
            "--raw",
            "s16le:8000:2",
            "-",
        ],
        raw,
    ));
    assert_matches_truth(&out, &truth);
}

/// A failed run: non-zero exit and exactly one line on stderr naming the problem.
fn assert_one_line_failure(out: &Output, needle: &str) {
    assert!(!out.status.success(), "should fail: {}", stdout(out));
    let err = stderr(out);
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains(needle), "'{needle}' in: {err}");
}

#[test]
fn bad_input_is_one_clear_line_and_a_failure() {
    let s = Server::start();
    let url = s.url();
    let dir = audio_dir();
    let x = music(5, 10.0, RATE);
    let track = join(dir.path(), "t.wav");
    write_wav(&track, &x, RATE, 1);
    ok(client(&[
        "add",
        "-u",
        &url,
        "-k",
        "music",
        "--quiet",
        &path_str(&track),
    ]));

    let garbage: Vec<u8> = (0..20_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let out = client_stdin(&["monitor", "-u", &url, "-k", "music", "-"], garbage);
    assert_one_line_failure(&out, "-: ");

    let out = client_stdin(
        &[
            "monitor",
            "-u",
            &url,
            "-k",
            "music",
            "--raw",
            "s16le:abc",
            "-",
        ],
        vec![0; 100],
    );
    assert_one_line_failure(&out, "--raw");

    let out = client(&["monitor", "-u", &url, "-k", "nosuch", &path_str(&track)]);
    assert_one_line_failure(&out, "nosuch");

    let out = client(&["monitor", "-u", &url, &path_str(&track)]);
    assert_one_line_failure(&out, "-k");

    let out = client(&[
        "monitor",
        "-u",
        &url,
        "-k",
        "music",
        "--outro",
        "61",
        &path_str(&track),
    ]);
    assert_one_line_failure(&out, "--outro");

    let out = client(&["monitor", "-u", &url, "-k", "music", "missing.wav"]);
    assert_one_line_failure(&out, "missing.wav");
}
