//! Bad input, each met with a one-line message that names the file or the
//! problem, the other files going on, and a non-zero exit: undecodable,
//! empty and too-short files, missing paths, bad options, an unreachable
//! server, a wrong password, a key of another type.

use auscout_testkit::server as common;
mod support;

use std::net::TcpListener;
use std::path::PathBuf;

use common::Server;
use serde_json::Value;
use support::*;

/// A good clip plus one of each kind of bad file; returns (dir, good, bad).
fn mixed_files() -> (tempfile::TempDir, PathBuf, Vec<PathBuf>) {
    let dir = audio_dir();
    let good = dir.path().join("good.wav");
    write_wav(&good, &music(21, 8.0, 8000), 8000, 1);
    let garbage = dir.path().join("garbage.ogg");
    std::fs::write(&garbage, b"OggS but then nothing sensible ".repeat(40)).expect("write");
    let empty = dir.path().join("empty.flac");
    std::fs::write(&empty, b"").expect("write");
    let short = dir.path().join("short.wav");
    write_wav(&short, &music(22, 0.2, 8000), 8000, 1);
    let missing = dir.path().join("gone").join("missing.wav");
    (dir, good, vec![garbage, empty, short, missing])
}

fn args_with(fixed: &[&str], paths: &[PathBuf]) -> Vec<String> {
    fixed
        .iter()
        .map(|s| s.to_string())
        .chain(paths.iter().map(|p| path_str(p)))
        .collect()
}

fn run(args: &[String]) -> std::process::Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    client(&args)
}

/// Every bad path has exactly one stderr line, starting with the path.
fn assert_one_line_each(err: &str, bad: &[PathBuf]) {
    assert_eq!(
        err.lines().count(),
        bad.len(),
        "one line per bad file:\n{err}"
    );
    for p in bad {
        assert!(
            err.lines().any(|l| l.starts_with(&path_str(p))),
            "{p:?} not named in:\n{err}"
        );
    }
}

#[test]
fn bad_files_are_reported_while_the_rest_is_added_and_looked_up() {
    let server = Server::start();
    let url = server.url();
    let (_dir, good, bad) = mixed_files();
    let all: Vec<PathBuf> = std::iter::once(good.clone())
        .chain(bad.iter().cloned())
        .collect();

    let out = run(&args_with(
        &["add", "-u", &url, "-k", "idx", "--json", "-q"],
        &all,
    ));
    assert_eq!(out.status.code(), Some(1));
    let added: Vec<Value> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    assert_eq!(added.len(), 1, "{added:?}");
    assert_eq!(added[0]["descr"], "good.wav");
    assert_one_line_each(&stderr(&out), &bad);

    let out = run(&args_with(
        &["lookup", "-u", &url, "-k", "idx", "--csv", "-q"],
        &all,
    ));
    assert_eq!(out.status.code(), Some(1));
    let rows = csv_rows(&stdout(&out));
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].clip, path_str(&good));
    assert_eq!(rows[0].matched, "good.wav");
    assert_one_line_each(&stderr(&out), &bad);
}

#[test]
fn usage_errors_are_one_line() {
    let dir = audio_dir();
    let clip = dir.path().join("c.wav");
    write_wav(&clip, &music(23, 1.0, 8000), 8000, 1);
    let clip = path_str(&clip);
    let cases: Vec<(Vec<&str>, i32, &str)> = vec![
        (
            vec!["lookup", "-k", "x", "--toggles", "9", &clip],
            2,
            "--toggles",
        ),
        (vec!["hash", "--sr", "4000", &clip], 2, "--sr"),
        (vec!["frobnicate", &clip], 2, "frobnicate"),
        (vec!["lookup", &clip], 1, "-k/--key"),
        (
            vec!["del", "-k", "x", "-i", "1", &clip],
            2,
            "unexpected argument",
        ),
        (vec!["del", "-k", "x", "-p", "1"], 2, "--id"),
        (vec!["lookup", "-k", "x", "-p", "1"], 1, "no files"),
    ];
    for (args, code, needle) in cases {
        let out = client(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
        assert!(stdout(&out).is_empty(), "{args:?}");
    }
}

#[test]
fn unreachable_server_is_one_line() {
    // A port that was free a moment ago: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("port");
    let (_dir, good, _) = mixed_files();
    for cmd in ["add", "lookup"] {
        let out = run(&args_with(
            &[cmd, "-s", "127.0.0.1", "-p", &port.to_string(), "-k", "x"],
            std::slice::from_ref(&good),
        ));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.contains(&format!("cannot connect to 127.0.0.1:{port}")),
            "{err}"
        );
    }
}

#[test]
fn wrong_password_is_one_line_and_not_echoed() {
    let server = Server::start();
    let mut conn = server.conn();
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("right-one")
        .exec(&mut conn)
        .expect("set password");
    let port = server.port;

    let wrong = format!("redis://:not-it@127.0.0.1:{port}/");
    let out = client(&["count", "-u", &wrong, "-k", "x"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("cannot connect"), "{err}");
    assert!(
        err.to_ascii_lowercase().contains("pass"),
        "names the password problem: {err}"
    );
    assert!(!err.contains("not-it"), "password echoed: {err}");

    let out = client(&[
        "count",
        "-p",
        &port.to_string(),
        "-s",
        "127.0.0.1",
        "-k",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));

    let right = format!("redis://:right-one@127.0.0.1:{port}/");
    let out = ok(client(&["count", "-u", &right, "-k", "x"]));
    assert_eq!(stdout(&out).trim(), "0");
}

#[test]
fn key_of_another_type_is_refused() {
    let server = Server::start();
    let url = server.url();
    let mut conn = server.conn();
    redis::cmd("SET")
        .arg("str")
        .arg("x")
        .exec(&mut conn)
        .expect("SET");
    let (_dir, good, _) = mixed_files();
    let good = path_str(&good);
    for args in [
        vec!["add", "-u", &url, "-k", "str", "-q", &good],
        vec!["add", "-u", &url, "-k", "str", "-q", "--force", &good],
        vec!["lookup", "-u", &url, "-k", "str", "-q", &good],
        vec!["count", "-u", &url, "-k", "str"],
        vec!["del", "-u", &url, "-k", "str", "-i", "1"],
    ] {
        let out = client(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains("WRONGTYPE"), "{args:?}: {err}");
    }
    let value: String = redis::cmd("GET").arg("str").query(&mut conn).expect("GET");
    assert_eq!(value, "x", "the string was left alone");
}
