//! `auscoutclient lookup -`: a clip piped into standard input, in any
//! container the client decodes, probed without seeking, against a real
//! `redis-server` with the module.

use auscout_testkit::server as common;
mod support;

use common::Server;
use support::*;

const RATE: u32 = 22050;

#[test]
fn a_clip_on_standard_input_is_recognised_in_any_container() {
    let s = Server::start();
    let url = s.url();
    let dir = audio_dir();
    let tracks: Vec<Vec<f32>> = (0..3).map(|i| music(40 + i, 30.0, RATE)).collect();
    let mut add = vec!["add", "-u", &url, "-k", "music", "--quiet"];
    let names = ["a.wav", "b.wav", "c.wav"];
    let paths: Vec<String> = names
        .iter()
        .zip(&tracks)
        .map(|(n, x)| {
            let p = join(dir.path(), n);
            write_wav(&p, x, RATE, 1);
            path_str(&p)
        })
        .collect();
    add.extend(paths.iter().map(String::as_str));
    ok(client(&add));

    // 8 s of b.wav from 12 s, as WAV, MP3 and Ogg Vorbis.
    let clip = join(dir.path(), "clip.wav");
    write_wav(&clip, &excerpt(&tracks[1], RATE, 12.0, 8.0), RATE, 2);
    let mut files = vec![clip.clone()];
    for ext in ["mp3", "ogg"] {
        let encoded = join(dir.path(), &format!("clip.{ext}"));
        encode(&clip, &encoded);
        files.push(encoded);
    }
    for file in &files {
        let bytes = std::fs::read(file).expect("read the clip");
        let out = ok(client_stdin(
            &["lookup", "-u", &url, "-k", "music", "--csv", "-"],
            bytes,
        ));
        let rows = csv_rows(&stdout(&out));
        assert_eq!(rows.len(), 1, "{}: {rows:?}", file.display());
        assert_eq!(rows[0].clip, "-");
        assert_eq!(rows[0].matched, "b.wav", "{}: {rows:?}", file.display());
        let offset = rows[0].offset_s.expect("an offset");
        assert!(
            (offset - 12.0).abs() < 0.5,
            "{}: offset {offset}",
            file.display()
        );
    }

    // Standard input next to a file: both looked up, standard input first.
    let other = join(dir.path(), "other.wav");
    write_wav(&other, &excerpt(&tracks[2], RATE, 3.0, 8.0), RATE, 1);
    let bytes = std::fs::read(&files[1]).expect("read the clip");
    let out = ok(client_stdin(
        &[
            "lookup",
            "-u",
            &url,
            "-k",
            "music",
            "--csv",
            "-",
            &path_str(&other),
        ],
        bytes,
    ));
    let rows = csv_rows(&stdout(&out));
    let found: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r.clip.as_str(), r.matched.as_str()))
        .collect();
    assert_eq!(
        found,
        [("-", "b.wav"), (path_str(&other).as_str(), "c.wav")]
    );

    // Music that is not indexed: no match, and a success.
    let unknown = join(dir.path(), "unknown.wav");
    write_wav(&unknown, &music(99, 8.0, RATE), RATE, 1);
    let out = ok(client_stdin(
        &["lookup", "-u", &url, "-k", "music", "-"],
        std::fs::read(&unknown).expect("read"),
    ));
    assert!(stdout(&out).starts_with("-: no match"), "{}", stdout(&out));

    // Garbage: one line naming standard input, and a failure.
    let garbage: Vec<u8> = (0..20_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    let out = client_stdin(&["lookup", "-u", &url, "-k", "music", "-q", "-"], garbage);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.starts_with("-: "), "{err}");
}
