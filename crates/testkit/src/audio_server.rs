//! A local HTTP server that serves encoded audio the way real servers do,
//! and fails the way they fail: a file with its length (and ranges), an
//! endless chunked stream with `icy-*` headers like an Icecast station, a
//! Shoutcast v1 station (`ICY 200 OK`), a connection cut off mid-way, a
//! stream that stops sending. Each path answers its successive requests
//! from a script; a path whose script is used up answers 503.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How a reply ends once its bytes are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// Properly (a stream's last chunk, a file's last byte).
    Finish,
    /// The connection is cut without a proper end.
    Cut,
    /// The connection stays open and nothing more comes.
    Stall,
}

/// One answer to one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A file with `Content-Length`. A `Range: bytes=N-` request gets `206`
    /// and the bytes from `N`. With `cut_at`, the bytes stop there (on a
    /// full or a range request alike) and the connection is cut.
    File {
        body: Arc<Vec<u8>>,
        content_type: &'static str,
        cut_at: Option<usize>,
    },
    /// A radio stream: chunked, no length, `icy-name` and `icy-br` headers.
    Stream {
        body: Arc<Vec<u8>>,
        content_type: &'static str,
        ending: Ending,
    },
    /// A Shoutcast v1 station: `ICY 200 OK` instead of an HTTP status
    /// line, then the bytes as they are, no length, no chunks.
    Shoutcast {
        body: Arc<Vec<u8>>,
        content_type: &'static str,
        ending: Ending,
    },
    /// An error status, no body.
    Status(u16),
}

/// The server; stops (and cuts stalled connections) when dropped.
pub struct AudioServer {
    port: u16,
    stop: Arc<AtomicBool>,
    /// Every request line received, in order.
    requests: Arc<Mutex<Vec<String>>>,
}

impl AudioServer {
    /// Serves `scripts`: for each path, the replies to its first, second, …
    /// request.
    pub fn start(scripts: Vec<(&str, Vec<Reply>)>) -> AudioServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a local port");
        let port = listener.local_addr().expect("local address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let scripts: HashMap<String, Vec<Reply>> = scripts
            .into_iter()
            .map(|(p, mut r)| {
                r.reverse();
                (p.to_owned(), r)
            })
            .collect();
        let scripts = Arc::new(Mutex::new(scripts));
        {
            let stop = Arc::clone(&stop);
            let requests = Arc::clone(&requests);
            thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let (stop, requests, scripts) = (
                        Arc::clone(&stop),
                        Arc::clone(&requests),
                        Arc::clone(&scripts),
                    );
                    thread::spawn(move || serve(conn, &stop, &requests, &scripts));
                }
            });
        }
        AudioServer {
            port,
            stop,
            requests,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The request lines and `Range` headers received so far.
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for AudioServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wakes the accept loop up so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(
    mut conn: TcpStream,
    stop: &AtomicBool,
    requests: &Mutex<Vec<String>>,
    scripts: &Mutex<HashMap<String, Vec<Reply>>>,
) {
    let Ok(read_half) = conn.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() || line.is_empty() {
        return;
    }
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut range_from = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 || header.trim().is_empty() {
            break;
        }
        let lower = header.to_ascii_lowercase();
        if let Some(v) = lower.strip_prefix("range:") {
            range_from = v
                .trim()
                .strip_prefix("bytes=")
                .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
        }
    }
    if let Ok(mut r) = requests.lock() {
        r.push(match range_from {
            Some(n) => format!("GET {path} range {n}-"),
            None => format!("GET {path}"),
        });
    }
    let reply = scripts
        .lock()
        .ok()
        .and_then(|mut s| s.get_mut(&path).and_then(Vec::pop))
        .unwrap_or(Reply::Status(503));
    let ending = match reply {
        Reply::Status(code) => {
            let _ = write!(
                conn,
                "HTTP/1.1 {code} Status\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            Ending::Finish
        }
        Reply::File {
            body,
            content_type,
            cut_at,
        } => {
            let from = range_from.unwrap_or(0).min(body.len());
            let head = if range_from.is_some() {
                format!(
                    "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {from}-{}/{}\r\n",
                    body.len().saturating_sub(1),
                    body.len()
                )
            } else {
                "HTTP/1.1 200 OK\r\n".to_owned()
            };
            let _ = write!(
                conn,
                "{head}Content-Type: {content_type}\r\nContent-Length: {}\r\n\
                 Accept-Ranges: bytes\r\nConnection: close\r\n\r\n",
                body.len() - from
            );
            let to = cut_at.filter(|&c| c > from).unwrap_or(body.len());
            let _ = conn.write_all(&body[from..to.min(body.len())]);
            if to < body.len() {
                Ending::Cut
            } else {
                Ending::Finish
            }
        }
        Reply::Stream {
            body,
            content_type,
            ending,
        } => {
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nTransfer-Encoding: chunked\r\n\
                 icy-name: auscout test radio\r\nicy-br: 128\r\nConnection: close\r\n\r\n"
            );
            for chunk in body.chunks(4096) {
                let _ = write!(conn, "{:x}\r\n", chunk.len());
                let _ = conn.write_all(chunk);
                let _ = conn.write_all(b"\r\n");
            }
            if ending == Ending::Finish {
                let _ = conn.write_all(b"0\r\n\r\n");
            } else if ending == Ending::Cut {
                // Half a chunk: the stream is cut in the middle of one.
                let _ = conn.write_all(b"1000\r\n\x00\x01");
            }
            ending
        }
        Reply::Shoutcast {
            body,
            content_type,
            ending,
        } => {
            let _ = write!(
                conn,
                "ICY 200 OK\r\nicy-name:auscout test radio\r\ncontent-type:{content_type}\r\n\
                 icy-br:128\r\n\r\n"
            );
            let _ = conn.write_all(&body);
            ending
        }
    };
    let _ = conn.flush();
    if ending == Ending::Stall {
        while !stop.load(Ordering::Relaxed) {
            thread::sleep(Duration::from_millis(50));
        }
    }
    let _ = conn.shutdown(Shutdown::Both);
}
