//! `list`, `stats`, `export` and `import` end to end: the binary against
//! real redis-servers with the module. An exported index imported on
//! another server has the same digest (ids, descriptions, hashes, id
//! counter) and answers lookups the same; a foreign, truncated or corrupt
//! file is refused with a one-line message and imports nothing; an existing
//! index is replaced only when asked.

use auscout_testkit::server as common;
mod support;

use std::path::Path;
use std::process::Output;

use common::{wire, Server};
use redis::{cmd, Connection, Value};
use serde_json::Value as Json;
use support::*;

const SR: u32 = 8000;

/// Six tracks of synthetic music in `dir`; returns their file paths.
fn library(dir: &Path) -> Vec<String> {
    (0..6)
        .map(|t| {
            let path = dir.join(format!("song{t}.wav"));
            write_wav(&path, &music(t + 1, 8.0 + t as f64, SR), SR, 1);
            path_str(&path)
        })
        .collect()
}

fn run(args: &[&str]) -> Output {
    client(args)
}

fn json_lines(o: &Output) -> Vec<Json> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// Every key of a server (a test server holds few).
fn keys(c: &mut Connection) -> Vec<String> {
    let mut k: Vec<String> = cmd("KEYS").arg("*").query(c).expect("KEYS");
    k.sort();
    k
}

fn digest(c: &mut Connection, key: &str) -> String {
    cmd("DEBUG")
        .arg("DIGEST-VALUE")
        .arg(key)
        .query::<Vec<String>>(c)
        .expect("digest")
        .concat()
}

/// The matches of every clip in `clips` (file, descr, id, position, score).
fn answers(url: &str, key: &str, clips: &Path) -> Vec<String> {
    let o = ok(run(&[
        "lookup",
        "-u",
        url,
        "-k",
        key,
        "--json",
        "--quiet",
        &path_str(clips),
    ]));
    let mut rows: Vec<String> = json_lines(&o)
        .iter()
        .map(|j| {
            let file = Path::new(j["file"].as_str().unwrap_or(""))
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            format!("{file} {}", j["matches"])
        })
        .collect();
    rows.sort();
    rows
}

/// An index `music` on a fresh server: the library added, one track
/// deleted (a gap in the ids, the counter past the last), one track with a
/// description that is not UTF-8.
fn source(dir: &Path) -> Server {
    let files = library(dir);
    let s = Server::start();
    let url = s.url();
    let mut args = vec!["add", "-u", &url, "-k", "music", "--quiet"];
    args.extend(files.iter().map(String::as_str));
    ok(run(&args));
    ok(run(&["del", "-u", &url, "-k", "music", "-i", "2"]));
    let mut c = s.conn();
    let _: i64 = cmd("auscout.addtrack")
        .arg("music")
        .arg(wire(&(1..=300u32).map(|i| i * 7919).collect::<Vec<_>>()))
        .arg(b"caf\xe9 \xff".as_slice())
        .query(&mut c)
        .expect("addtrack");
    s
}

#[test]
fn list_pages_through_the_tracks_in_every_format() {
    let dir = audio_dir();
    let s = source(dir.path());
    let url = s.url();
    let all = json_lines(&ok(run(&["list", "-u", &url, "-k", "music", "--json"])));
    let ids: Vec<u64> = all.iter().map(|t| t["id"].as_u64().expect("id")).collect();
    assert_eq!(ids, vec![1, 3, 4, 5, 6, 7]);
    // Each song is listed with its length (song N lasts 8 + N s), but for
    // the one deleted (add numbers the files in the order they finish).
    let songs: Vec<&Json> = all
        .iter()
        .filter(|t| t["descr"] != "caf\u{fffd} \u{fffd}")
        .collect();
    assert_eq!(songs.len(), 5);
    for t in songs {
        let n: f64 = t["descr"]
            .as_str()
            .and_then(|d| d.strip_prefix("song")?.strip_suffix(".wav")?.parse().ok())
            .expect("songN.wav");
        let seconds = t["seconds"].as_f64().expect("seconds");
        assert!((seconds - (8.0 + n)).abs() < 0.1, "{t}");
    }
    assert_eq!(all[5]["frames"], 300);
    // Paging: two at a time, the cursor from the message on stderr.
    let mut paged = Vec::new();
    let mut cursor = "0".to_owned();
    loop {
        let o = ok(run(&[
            "list", "-u", &url, "-k", "music", "--json", "--count", "2", "--cursor", &cursor,
        ]));
        paged.extend(json_lines(&o));
        match stderr(&o).split("--cursor ").nth(1) {
            Some(next) => cursor = next.trim().to_owned(),
            None => break,
        }
    }
    assert_eq!(paged, all);
    let csv = stdout(&ok(run(&["list", "-u", &url, "-k", "music", "--csv"])));
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("id,descr,frames,seconds"));
    assert_eq!(lines.count(), 6);
    let human = stdout(&ok(run(&["list", "-u", &url, "-k", "music"])));
    assert!(human
        .lines()
        .next()
        .is_some_and(|h| h.contains("description")));
    let last = human.lines().last().unwrap_or("");
    assert!(
        last.starts_with("         7        300     0:03.6  caf"),
        "{human}"
    );
    // A missing index lists nothing, and says so.
    let o = ok(run(&["list", "-u", &url, "-k", "nothing"]));
    assert!(stderr(&o).contains("no tracks"), "{}", stderr(&o));
}

#[test]
fn stats_add_up_what_the_index_holds() {
    let dir = audio_dir();
    let s = source(dir.path());
    let url = s.url();
    let mut c = s.conn();
    let count: i64 = cmd("auscout.count")
        .arg("music")
        .query(&mut c)
        .expect("count");
    let size: i64 = cmd("auscout.size")
        .arg("music")
        .query(&mut c)
        .expect("size");
    let memory: i64 = cmd("MEMORY")
        .arg("USAGE")
        .arg("music")
        .query(&mut c)
        .expect("memory");
    let j = &json_lines(&ok(run(&["stats", "-u", &url, "-k", "music", "--json"])))[0];
    assert_eq!(j["index"]["tracks"], count);
    assert_eq!(j["index"]["frames"], size);
    assert_eq!(j["index"]["memory_bytes"], memory);
    assert_eq!(j["index"]["shards"], 1);
    assert_eq!(j["info"]["auscout_indexes"], 1);
    assert_eq!(j["info"]["auscout_tracks"], count);
    let human = stdout(&ok(run(&["stats", "-u", &url, "-k", "music"])));
    assert!(
        human.contains("tracks") && human.contains("bytes per frame"),
        "{human}"
    );
    assert!(human.contains("auscout_frames"), "{human}");
}

#[test]
fn an_export_imports_elsewhere_exactly_and_bad_files_import_nothing() {
    let dir = audio_dir();
    let s = source(dir.path());
    let url = s.url();
    let file = dir.path().join("music.auscout");
    let file_s = path_str(&file);
    let o = ok(run(&["export", "-u", &url, "music", &file_s]));
    assert!(stdout(&o).contains("6 tracks"), "{}", stdout(&o));
    let bytes = std::fs::read(&file).expect("the export");
    assert_eq!(&bytes[..8], b"\x89AUSCOUT");

    // Another server: the same index, to the digest and the lookups.
    let t = Server::start();
    let turl = t.url();
    ok(run(&["import", "-u", &turl, &file_s, "copy"]));
    let (mut sc, mut tc) = (s.conn(), t.conn());
    assert_eq!(digest(&mut tc, "copy"), digest(&mut sc, "music"));
    let clips = dir.path().join("clips");
    std::fs::create_dir_all(&clips).expect("mkdir");
    for t in [0u64, 3, 5] {
        let x = excerpt(&music(t + 1, 8.0 + t as f64, SR), SR, 2.0, 4.0);
        write_wav(&clips.join(format!("clip{t}.wav")), &x, SR, 1);
    }
    write_wav(&clips.join("other.wav"), &music(99, 4.0, SR), SR, 1);
    assert_eq!(
        answers(&turl, "copy", &clips),
        answers(&url, "music", &clips)
    );
    // The id counter came along: the next track takes the id the source's would.
    let next: i64 = cmd("auscout.add")
        .arg("copy")
        .arg(wire(&[1, 2, 3]))
        .query(&mut tc)
        .expect("add");
    assert_eq!(next, 8);

    // An existing index is refused, then replaced when asked.
    let o = run(&["import", "-u", &turl, &file_s, "copy"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    ok(run(&["import", "-u", &turl, "--replace", &file_s, "copy"]));
    assert_eq!(digest(&mut tc, "copy"), digest(&mut sc, "music"));

    // Bad files: a one-line reason, exit 1, no key written (not even a
    // temporary one).
    let before = keys(&mut tc);
    let mut flipped = bytes.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    let wav = std::fs::read(dir.path().join("song0.wav")).expect("wav");
    let mut newer = bytes.clone();
    newer[8] = 9;
    for (name, contents, reason) in [
        (
            "truncated",
            bytes[..bytes.len() * 2 / 3].to_vec(),
            "truncated",
        ),
        ("flipped", flipped, "corrupt"),
        ("foreign", wav, "not an auscout export"),
        ("empty", Vec::new(), "not an auscout export"),
        ("newer", newer, "newer auscout"),
    ] {
        let bad = dir.path().join(name);
        std::fs::write(&bad, contents).expect("write");
        let o = run(&["import", "-u", &turl, &path_str(&bad), "fresh"]);
        assert_eq!(o.status.code(), Some(1), "{name}");
        let err = stderr(&o);
        assert_eq!(err.lines().count(), 1, "{name}: {err}");
        assert!(err.contains(reason), "{name}: {err}");
        assert_eq!(keys(&mut tc), before, "{name} left keys behind");
    }
    let o = run(&[
        "export",
        "-u",
        &url,
        "nothing",
        &path_str(&dir.path().join("x")),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no index at nothing"), "{}", stderr(&o));
    assert!(!dir.path().join("x").exists());
}

#[test]
fn a_sharded_index_keeps_its_shards_and_ids() {
    let dir = audio_dir();
    let files = library(dir.path());
    let s = Server::start();
    let url = s.url();
    let mut args = vec!["add", "-u", &url, "-k", "sh", "--shards", "3", "--quiet"];
    args.extend(files.iter().map(String::as_str));
    ok(run(&args));
    let file = path_str(&dir.path().join("sh.auscout"));
    ok(run(&["export", "-u", &url, "sh", &file]));
    let t = Server::start();
    let turl = t.url();
    ok(run(&["import", "-u", &turl, &file, "sh"]));
    let listed = |u: &str| json_lines(&ok(run(&["list", "-u", u, "-k", "sh", "--json"])));
    assert_eq!(listed(&turl), listed(&url));
    let (mut sc, mut tc) = (s.conn(), t.conn());
    for k in ["sh{0}", "sh{1}", "sh{2}"] {
        assert_eq!(digest(&mut tc, k), digest(&mut sc, k), "{k}");
    }
    let j = &json_lines(&ok(run(&["stats", "-u", &turl, "-k", "sh", "--json"])))[0];
    assert_eq!(j["index"]["shards"], 3);
    assert_eq!(j["index"]["tracks"], 6);
    let meta: Value = cmd("HGET")
        .arg("sh{meta}")
        .arg("shards")
        .query(&mut tc)
        .expect("meta");
    assert_eq!(meta, Value::BulkString(b"3".to_vec()));
}
