//! `auscoutclient monitor --mic` and `--device NAME` through ALSA, without
//! a sound card: the test's ALSA configuration (`ALSA_CONFIG_PATH`) defines
//! a capture device that reads a file (ALSA's `file` plugin with `infile`,
//! over the `null` plugin), and the recording played into it must be
//! recognised with a "now playing" line.
#![cfg(feature = "mic")]

use auscout_testkit::server as common;
mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::Server;
use support::recording::*;
use support::*;

/// An ALSA configuration whose `default` and `auscout` capture devices play
/// `raw` (s16le, 8 kHz, mono).
fn alsa_config(dir: &Path, raw: &Path) -> String {
    let conf = join(dir, "asound.conf");
    let text = format!(
        r#"pcm.!default {{
    type plug
    slave {{ pcm "filesrc"; format S16_LE; rate {RATE}; channels 1 }}
}}
pcm.auscout {{
    type plug
    slave {{ pcm "filesrc"; format S16_LE; rate {RATE}; channels 1 }}
    hint.description "auscout test capture"
}}
pcm.filesrc {{
    type file
    slave.pcm "nullsrc"
    file "/dev/null"
    infile "{}"
    format "raw"
}}
pcm.nullsrc {{
    type null
}}
"#,
        raw.display()
    );
    std::fs::write(&conf, text).expect("write the ALSA configuration");
    path_str(&conf)
}

/// Runs `monitor` on a capture device until `want` appears on stdout (or
/// 60 s pass); returns stdout up to there.
fn monitor_until(args: &[&str], config: &str, want: &str) -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_auscoutclient"))
        .args(args)
        .env("ALSA_CONFIG_PATH", config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run auscoutclient");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while std::time::Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
                if line.contains(want) {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    let _ = child.kill();
    let out = child.wait_with_output().expect("wait");
    assert!(
        seen.contains(want),
        "'{want}' not seen in:\n{seen}\nstderr:\n{}",
        stderr(&out)
    );
    seen
}

#[test]
fn a_capture_device_that_plays_a_recording_is_recognised_live() {
    let s = Server::start();
    let url = s.url();
    let dir = audio_dir();
    let (rec, truth) = setup(dir.path(), &url);
    // The first excerpt (a.wav) and a little more, as raw PCM.
    let end = ((truth[0].end + 2.0) * f64::from(RATE)) as usize;
    let raw: Vec<u8> = rec[..end]
        .iter()
        .flat_map(|v| ((v.clamp(-1.0, 1.0) * 32767.0) as i16).to_le_bytes())
        .collect();
    let raw_path = join(dir.path(), "capture.raw");
    std::fs::write(&raw_path, raw).expect("write the capture file");
    let config = alsa_config(dir.path(), &raw_path);

    let seen = monitor_until(
        &["monitor", "-u", &url, "-k", "music", "--mic"],
        &config,
        "now playing: a.wav",
    );
    assert!(!seen.contains("now playing: b.wav"), "{seen}");

    monitor_until(
        &["monitor", "-u", &url, "-k", "music", "--device", "auscout"],
        &config,
        "now playing: a.wav",
    );

    // A device that does not exist: one line, a failure.
    let out = client(&[
        "monitor",
        "-u",
        &url,
        "-k",
        "music",
        "--device",
        "nosuchpcm",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("nosuchpcm"), "{}", stderr(&out));
}
