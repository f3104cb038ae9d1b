//! What the service's tests share: the `auscout-http` binary started
//! against a real redis-server with the module, a small HTTP client, and
//! real encoded audio made at test time.

#![allow(dead_code)] // each test binary uses its own part of this

pub mod show;
pub mod webdriver;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use auscout_testkit::audio;
use serde_json::Value;

pub const RATE: u32 = 22_050;
/// Seconds of each synthetic track.
pub const TRACK_SECONDS: f64 = 30.0;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A running `auscout-http`, stopped (SIGTERM) on drop.
pub struct Service {
    child: Option<Child>,
    pub base: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Service {
    /// Starts the service in front of the Redis on `redis_port`, with
    /// extra flags, and waits until it accepts connections.
    pub fn start(redis_port: u16, extra: &[&str]) -> Service {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let log = dir.path().join("service.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_auscout-http"))
            .args(["--port", &redis_port.to_string()])
            .args(["--server", "127.0.0.1"])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--key", "songs"])
            .args(extra)
            .env("AUSCOUT_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .spawn()
            .expect("start auscout-http");
        let service = Service {
            child: Some(child),
            base: format!("http://127.0.0.1:{port}"),
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "auscout-http did not listen in time:\n{}",
                service.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        service
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends SIGTERM and waits for the exit: `Some(true)` for a clean one.
    pub fn terminate(&mut self) -> Option<bool> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status.success());
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Some(false);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A response: status, headers we look at, body.
pub struct Reply {
    pub status: u16,
    pub content_type: String,
    pub www_authenticate: Option<String>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}): status {} {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Asserts an error reply: the status, and `{"error":{"code","message"}}`.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.text());
        let v = self.json();
        assert_eq!(v["error"]["code"], code, "{v}");
        let message = v["error"]["message"].as_str().unwrap_or("");
        assert!(!message.is_empty(), "no message: {v}");
        assert!(
            self.content_type.starts_with("application/json"),
            "{}",
            self.content_type
        );
    }
}

fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into()
    })
}

fn reply(result: Result<ureq::http::Response<ureq::Body>, ureq::Error>, what: &str) -> Reply {
    let mut r = result.unwrap_or_else(|e| panic!("{what}: {e}"));
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header("content-type").unwrap_or_default();
    let www_authenticate = header("www-authenticate");
    let body = r
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_vec()
        .unwrap_or_else(|e| panic!("{what}: reading the body: {e}"));
    Reply {
        status: r.status().as_u16(),
        content_type,
        www_authenticate,
        body,
    }
}

pub fn get(url: &str) -> Reply {
    reply(agent().get(url).call(), url)
}

pub fn delete(url: &str, token: Option<&str>) -> Reply {
    let mut req = agent().delete(url);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    reply(req.call(), url)
}

/// POSTs `body` with a content type (and a bearer token).
pub fn post(url: &str, content_type: &str, body: &[u8], token: Option<&str>) -> Reply {
    let mut req = agent().post(url).header("Content-Type", content_type);
    if let Some(t) = token {
        req = req.header("Authorization", &format!("Bearer {t}"));
    }
    reply(req.send(body), url)
}

/// POSTs a multipart form: `(name, file name, bytes)` parts (a part with no
/// file name is a text field).
pub fn post_form(url: &str, parts: &[(&str, Option<&str>, &[u8])], token: Option<&str>) -> Reply {
    let boundary = "auscout-test-boundary-7d1e";
    let mut body = Vec::new();
    for (name, file, bytes) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some(f) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n\
                     Content-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    post(
        url,
        &format!("multipart/form-data; boundary={boundary}"),
        &body,
        token,
    )
}

/// An answer read off a bare socket: what an HTTP client library would
/// hide (an early reply to an unsent body, the headers as sent).
pub struct RawAnswer {
    pub status: u16,
    pub head: String,
    pub body: String,
}

impl RawAnswer {
    /// The value of header `name` (any case), if the answer has it.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|l| {
            let (n, value) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| value.trim())
        })
    }
}

/// Writes a raw request head (no body) and reads the answer, up to the end
/// of the connection or of a JSON body (the connection may stay open).
pub fn raw_request(base: &str, head: &str) -> RawAnswer {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream.write_all(head.as_bytes()).expect("write head");
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        if answer.ends_with(b"}}") {
            break;
        }
    }
    let text = String::from_utf8_lossy(&answer).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    RawAnswer {
        status: head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// [`raw_request`]'s status and body.
pub fn head_only(base: &str, head: &str) -> (u16, String) {
    let answer = raw_request(base, head);
    (answer.status, answer.body)
}

/// Synthetic tracks and clips of them, as files, made once per test binary.
pub struct Fixtures {
    pub dir: PathBuf,
}

impl Fixtures {
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn bytes(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }
}

/// Track `i` (seed `i`) as `track{i}.wav`; clips of track 1 from 12 s on,
/// 5 s long, as WAV, MP3, Ogg/Opus, WebM/Opus and M4A/AAC, and as WAV
/// played 7 % fast; a clip of music
/// that is in no track; a 0.2 s WAV; bytes that are no audio.
pub fn fixtures() -> &'static Fixtures {
    static DIR: OnceLock<Fixtures> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("http-fixtures");
        std::fs::create_dir_all(&dir).expect("fixture dir");
        let mut tracks = Vec::new();
        for i in 0..3u64 {
            let x = audio::music(100 + i, TRACK_SECONDS, RATE);
            audio::write_wav(&dir.join(format!("track{i}.wav")), &x, RATE, 2);
            tracks.push(x);
        }
        let clip = audio::excerpt(&tracks[1], RATE, 12.0, 5.0);
        audio::write_wav(&dir.join("clip.wav"), &clip, RATE, 1);
        // The clip played 7 % fast (a tape running fast): the same samples
        // declared at a higher rate.
        let fast_rate = (f64::from(RATE) * 1.07).round() as u32;
        audio::write_wav(&dir.join("clip-fast.wav"), &clip, fast_rate, 1);
        let stranger = audio::music(999, 5.0, RATE);
        audio::write_wav(&dir.join("stranger.wav"), &stranger, RATE, 1);
        audio::write_wav(&dir.join("short.wav"), &clip[..RATE as usize / 5], RATE, 1);
        let wav = dir.join("clip.wav");
        for (name, codec) in [
            ("clip.mp3", &["-c:a", "libmp3lame", "-b:a", "128k"][..]),
            ("clip.opus", &["-c:a", "libopus", "-b:a", "64k"][..]),
            ("clip.webm", &["-c:a", "libopus", "-b:a", "48k"][..]),
            ("clip.m4a", &["-c:a", "aac", "-b:a", "128k"][..]),
        ] {
            ffmpeg(&wav, codec, &dir.join(name));
        }
        let noise: Vec<u8> = (0..20_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        std::fs::write(dir.join("garbage.bin"), noise).expect("write garbage");
        Fixtures { dir }
    })
}

/// Encodes `input` with ffmpeg's `codec` arguments.
pub fn ffmpeg(input: &Path, codec: &[&str], output: &Path) {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(input)
        .args(codec)
        .arg(output)
        .output()
        .unwrap_or_else(|e| panic!("cannot run ffmpeg ({e}): install the `ffmpeg` package"));
    assert!(
        out.status.success(),
        "ffmpeg failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Adds `track{i}.wav` for i in 0..3 through the API; returns their ids.
pub fn add_tracks(service: &Service, token: Option<&str>) -> Vec<u64> {
    let f = fixtures();
    (0..3)
        .map(|i| {
            let name = format!("track{i}.wav");
            let r = post(
                &service.url(&format!("/v1/tracks?descr={name}")),
                "audio/wav",
                &f.bytes(&name),
                token,
            );
            assert_eq!(r.status, 201, "{}", r.text());
            r.json()["id"].as_u64().expect("an id")
        })
        .collect()
}
