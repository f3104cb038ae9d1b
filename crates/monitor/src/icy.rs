//! Shoutcast v1 servers, which answer `ICY 200 OK` where HTTP has a status
//! line. HTTP clients refuse that line, so when one does, the request is
//! sent again over a plain TCP connection and the reply's head read here;
//! what follows the head is the audio, sent as it plays. Such servers speak
//! plain `http://` only, and send no length: the reply is always a stream.

use std::io::{Cursor, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The most a reply's head may take before its audio starts.
const MAX_HEAD: usize = 16 * 1024;

/// A Shoutcast v1 reply: its `content-type`, and the audio.
pub(crate) struct IcyReply {
    pub content_type: Option<String>,
    pub audio: Box<dyn Read + Send>,
}

/// Requests `url` over a plain connection. `Ok(None)`: the server answered
/// something other than `ICY 200` (the caller reports its own error then).
/// `stall` bounds the connection and every read.
pub(crate) fn get(url: &str, stall: Duration) -> Result<Option<IcyReply>, String> {
    let uri: ureq::http::Uri = url.parse().map_err(|e| format!("{url}: {e}"))?;
    if uri
        .scheme_str()
        .is_some_and(|s| !s.eq_ignore_ascii_case("http"))
    {
        return Ok(None);
    }
    let host = uri.host().ok_or_else(|| format!("{url}: no host"))?;
    let port = uri.port_u16().unwrap_or(80);
    let target = uri.path_and_query().map_or("/", |p| p.as_str());
    let addrs = (host.trim_start_matches('[').trim_end_matches(']'), port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot connect: {e}"))?;
    let mut last = "no address".to_owned();
    let mut conn = None;
    for addr in addrs {
        match TcpStream::connect_timeout(&addr, stall) {
            Ok(c) => {
                conn = Some(c);
                break;
            }
            Err(e) => last = e.to_string(),
        }
    }
    let mut conn = conn.ok_or_else(|| format!("cannot connect: {last}"))?;
    conn.set_read_timeout(Some(stall))
        .and_then(|()| conn.set_write_timeout(Some(stall)))
        .map_err(|e| format!("cannot connect: {e}"))?;
    write!(
        conn,
        "GET {target} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: auscoutclient\r\nAccept: */*\r\n\r\n"
    )
    .map_err(|e| format!("cannot connect: {e}"))?;
    let (head, rest) = read_head(&mut conn)?;
    match parse_head(&head) {
        Head::Ok { content_type } => Ok(Some(IcyReply {
            content_type,
            audio: Box::new(Cursor::new(rest).chain(conn)),
        })),
        Head::Refused(status) => Err(format!("the server answered '{status}'")),
        Head::NotIcy => Ok(None),
    }
}

/// Reads up to the blank line that ends the head: the head, and the bytes
/// of the body that came with it.
fn read_head(conn: &mut impl Read) -> Result<(String, Vec<u8>), String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    loop {
        if let Some(end) = find(&got, b"\r\n\r\n") {
            let rest = got.split_off(end + 4);
            return Ok((String::from_utf8_lossy(&got).into_owned(), rest));
        }
        if got.len() > MAX_HEAD {
            return Err("the server's reply has no end of its head".to_owned());
        }
        match conn.read(&mut buf) {
            Ok(0) => return Err("the server closed the connection before its reply".to_owned()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading the server's reply: {e}")),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// What a reply's head says.
#[derive(Debug, PartialEq)]
enum Head {
    /// `ICY 200`: the audio follows.
    Ok { content_type: Option<String> },
    /// Another `ICY` status (its line).
    Refused(String),
    /// Not a Shoutcast v1 reply.
    NotIcy,
}

fn parse_head(head: &str) -> Head {
    let mut lines = head.lines();
    let status = lines.next().unwrap_or("").trim();
    let mut words = status.split_whitespace();
    if words.next() != Some("ICY") {
        return Head::NotIcy;
    }
    if words.next() != Some("200") {
        return Head::Refused(status.to_owned());
    }
    Head::Ok {
        content_type: lines.find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-type")
                .then(|| value.trim().to_owned())
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_icy_head_gives_its_type_and_the_audio_after_it() {
        let reply = b"ICY 200 OK\r\nicy-name:x\r\nContent-Type: audio/mpeg\r\n\r\nAUDIO";
        let (head, rest) = read_head(&mut &reply[..]).expect("a head");
        assert_eq!(rest, b"AUDIO");
        let content_type = Some("audio/mpeg".to_owned());
        assert_eq!(parse_head(&head), Head::Ok { content_type });
        let content_type = None;
        assert_eq!(parse_head("ICY 200 OK\r\n\r\n"), Head::Ok { content_type });
    }

    #[test]
    fn other_heads_are_refusals_or_not_icy() {
        assert_eq!(parse_head("HTTP/1.1 200 OK\r\n"), Head::NotIcy);
        assert_eq!(parse_head(""), Head::NotIcy);
        assert_eq!(
            parse_head("ICY 401 Unauthorized\r\n"),
            Head::Refused("ICY 401 Unauthorized".to_owned())
        );
        assert!(read_head(&mut &b"ICY 200 OK\r\n"[..]).is_err());
    }
}
