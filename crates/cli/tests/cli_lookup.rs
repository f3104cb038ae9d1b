//! End to end: the `auscoutclient` binary against a real `redis-server` with
//! the module loaded. Synthetic music is indexed with `add`, distorted
//! excerpts come back with the right track and offset, unindexed audio with
//! nothing; `add` resumes, `del` removes, `--shards` spreads one index over
//! several keys on one server.

use auscout_testkit::server as common;
mod support;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use common::Server;
use serde_json::Value;
use support::*;

const TRACK_SECONDS: f64 = 16.0;
const CLIP_SECONDS: f64 = 5.0;

#[test]
fn add_lookup_resume_and_delete() {
    let server = Server::start();
    let url = server.url();
    let lib = audio_dir();
    let signals = write_library(lib.path(), TRACKS, TRACK_SECONDS);
    let lib_path = path_str(lib.path());

    // add: every file once, with distinct ids, described by its file name.
    let added = add_json(&url, "music", &[&lib_path]);
    assert_eq!(added.len(), TRACKS.len(), "{added:?}");
    let mut ids = HashMap::new();
    for a in &added {
        assert_eq!(a["skipped"], false, "{a}");
        let descr = a["descr"].as_str().expect("descr").to_owned();
        let id = a["id"].as_u64().expect("id");
        assert!(
            ids.values().all(|&other| other != id),
            "id {id} given twice"
        );
        ids.insert(descr, id);
    }
    let names: HashSet<&str> = TRACKS.iter().map(|t| t.name).collect();
    assert_eq!(
        ids.keys().map(String::as_str).collect::<HashSet<_>>(),
        names
    );
    assert_eq!(count(&url, "music"), TRACKS.len() as i64);

    // Distorted excerpts (each at its own offset) and unindexed music.
    let clips = audio_dir();
    let cases: Vec<(&str, &str, f64)> = vec![
        ("clean.wav", "t0.wav", 7.0),
        ("noise.wav", "t1.wav", 9.3),
        ("gain.wav", "t2.flac", 3.5),
        ("lowpass.wav", "t3.flac", 10.0),
        ("resampled.wav", "t4.wav", 9.1),
        ("noise_flac.flac", "t0.wav", 10.6),
    ];
    for (clip, track, start) in &cases {
        let t = TRACKS.iter().find(|t| t.name == *track).expect("track");
        let x = excerpt(&signals[track], t.rate, *start, CLIP_SECONDS);
        let (y, rate) = match *clip {
            "noise.wav" => (add_noise(&x, 10.0, 7), t.rate),
            "noise_flac.flac" => (add_noise(&x, 15.0, 8), t.rate),
            "gain.wav" => (gain(&x, 0.2), t.rate),
            "lowpass.wav" => (low_pass(&x, t.rate, 2000.0), t.rate),
            "resampled.wav" => (resample(&x, t.rate, 8000), 8000),
            _ => (x, t.rate),
        };
        write_track(clips.path(), clip, &y, rate, 1);
    }
    write_wav(
        &clips.path().join("unknown.wav"),
        &music(99, CLIP_SECONDS, 22050),
        22050,
        1,
    );
    write_wav(
        &clips.path().join("unknown2.wav"),
        &music(100, CLIP_SECONDS, 44100),
        44100,
        2,
    );

    let out = ok(client(&[
        "lookup",
        "-u",
        &url,
        "-k",
        "music",
        "--csv",
        "--quiet",
        &path_str(clips.path()),
    ]));
    let rows = csv_rows(&stdout(&out));
    assert_eq!(
        rows.len(),
        cases.len() + 2,
        "one row per clip:\n{}",
        stdout(&out)
    );
    let by_clip: HashMap<String, Row> = rows
        .into_iter()
        .map(|r| {
            let name = Path::new(&r.clip)
                .file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned();
            (name, r)
        })
        .collect();
    for (clip, track, start) in &cases {
        let row = &by_clip[*clip];
        assert_eq!(row.matched, *track, "{clip}: {row:?}");
        let offset = row.offset_s.expect("offset");
        assert!(
            (offset - start).abs() <= 0.5,
            "{clip}: offset {offset}, expected {start}"
        );
        let score = row.score.expect("score");
        assert!(score > 0.0 && score <= 1.0, "{clip}: score {score}");
        assert!(row.ms >= 0.0);
    }
    for clip in ["unknown.wav", "unknown2.wav"] {
        let row = &by_clip[clip];
        assert_eq!(row.matched, "", "unindexed {clip} matched: {row:?}");
        assert_eq!(row.offset_s, None);
    }

    // --json: every match with descr, id, position and its offset in seconds.
    let clean = path_str(&clips.path().join("clean.wav"));
    let out = ok(client(&[
        "lookup", "-u", &url, "-k", "music", "--json", &clean,
    ]));
    let j: Value = serde_json::from_str(stdout(&out).trim()).expect("one json object");
    assert_eq!(j["file"], clean.as_str());
    let best = &j["matches"][0];
    assert_eq!(best["descr"], "t0.wav");
    assert_eq!(best["id"].as_u64(), Some(ids["t0.wav"]));
    let position = best["position"].as_i64().expect("position");
    let offset = best["offset_s"].as_f64().expect("offset");
    assert!(
        (offset - position as f64 * 64.0 / 6000.0).abs() < 1e-9,
        "{best}"
    );
    // And the clip's speed relative to the track, as the server measured it.
    let speed = best["speed"].as_f64().expect("speed");
    assert!((speed - 1.0).abs() < 0.005, "{best}");

    // A clip played 6 % fast (pitch and tempo): its measured speed.
    let rate = 22050;
    let x = excerpt(&signals["t0.wav"], rate, 3.0, CLIP_SECONDS * 1.06);
    let fast = clips.path().join("fast.wav");
    write_wav(
        &fast,
        &resample(&x, (f64::from(rate) * 1.06) as u32, rate),
        rate,
        1,
    );
    let out = ok(client(&[
        "lookup",
        "-u",
        &url,
        "-k",
        "music",
        "--json",
        &path_str(&fast),
    ]));
    let j: Value = serde_json::from_str(stdout(&out).trim()).expect("one json object");
    let best = &j["matches"][0];
    assert_eq!(best["descr"], "t0.wav", "{j}");
    let speed = best["speed"].as_f64().expect("speed");
    assert!((speed - 1.06).abs() < 0.01, "{j}");
    let offset = best["offset_s"].as_f64().expect("offset");
    assert!((offset - 3.0).abs() < 0.5, "{j}");

    // Plain text names the file and the match.
    let out = ok(client(&["lookup", "-u", &url, "-k", "music", &clean]));
    let text = stdout(&out);
    assert!(text.starts_with(&format!("{clean}: 1 match")), "{text}");
    assert!(
        text.contains(&format!("t0.wav  id {}", ids["t0.wav"])),
        "{text}"
    );

    // Resume: a second run indexes nothing new; a new file alone is added.
    let again = add_json(&url, "music", &[&lib_path]);
    assert_eq!(again.len(), TRACKS.len());
    assert!(
        again
            .iter()
            .all(|a| a["skipped"] == true && a.get("id").is_none()),
        "{again:?}"
    );
    assert_eq!(count(&url, "music"), TRACKS.len() as i64);
    // Nothing indexed: the summary gives the counts and no speed.
    let out = ok(client(&["add", "-u", &url, "-k", "music", &lib_path]));
    let summary = format!(
        "added 0, skipped {} already indexed, failed 0\n",
        TRACKS.len()
    );
    assert!(stderr(&out).ends_with(&summary), "{}", stderr(&out));
    write_wav(&lib.path().join("t5.wav"), &music(6, 10.0, 22050), 22050, 1);
    let third = add_json(&url, "music", &[&lib_path]);
    let new: Vec<&Value> = third.iter().filter(|a| a["skipped"] == false).collect();
    assert_eq!(new.len(), 1, "{third:?}");
    assert_eq!(new[0]["descr"], "t5.wav");
    assert_eq!(count(&url, "music"), TRACKS.len() as i64 + 1);

    // --force adds again.
    let t5 = path_str(&lib.path().join("t5.wav"));
    let forced = add_json(&url, "music", &["--force", &t5]);
    assert_eq!(forced.len(), 1);
    assert_eq!(forced[0]["skipped"], false);
    assert_eq!(count(&url, "music"), TRACKS.len() as i64 + 2);

    // del by id: frames come back, the track is gone from lookups.
    let id = ids["t0.wav"].to_string();
    let out = ok(client(&["del", "-u", &url, "-k", "music", "-i", &id]));
    let text = stdout(&out);
    let frames: i64 = text
        .trim()
        .rsplit(' ')
        .nth(1)
        .and_then(|f| f.parse().ok())
        .expect("frames in output");
    assert!(frames > 1400, "{text}");
    assert_eq!(count(&url, "music"), TRACKS.len() as i64 + 1);
    let out = ok(client(&[
        "lookup", "-u", &url, "-k", "music", "--csv", "--quiet", &clean,
    ]));
    let rows = csv_rows(&stdout(&out));
    assert_eq!(rows.len(), 1);
    assert_ne!(rows[0].matched, "t0.wav", "deleted track still found");
}

#[test]
fn options_limit_work_and_legacy_flags_parse() {
    let server = Server::start();
    let url = server.url();
    let lib = audio_dir();
    let tracks = &TRACKS[..2];
    let signals = write_library(lib.path(), tracks, 12.0);
    // The original's spelling: `-c add -d DIR`, host and port.
    let port = server.port.to_string();
    ok(client(&[
        "-c",
        "add",
        "-s",
        "127.0.0.1",
        "-p",
        &port,
        "-k",
        "lib",
        "-d",
        &path_str(lib.path()),
        "-q",
    ]));
    assert_eq!(count(&url, "lib"), 2);
    let size: i64 = stdout(&ok(client(&["size", "-u", &url, "-k", "lib"])))
        .trim()
        .parse()
        .expect("size");
    // 12 s at 6000 Hz: (72000 - 2048) / 64 + 1 frames, 2 fewer hashes; a
    // resampler may shift the length by a few samples.
    let per_track = (72000 - 2048) / 64 - 1;
    assert!((size - 2 * per_track).abs() <= 4, "size {size}");

    // -n uses only the first seconds of a clip: a 6 s clip cut to 2 s still
    // finds its track at the clip's start.
    let clips = audio_dir();
    let clip = clips.path().join("c.wav");
    write_wav(
        &clip,
        &excerpt(&signals["t0.wav"], 22050, 4.0, 6.0),
        22050,
        1,
    );
    let out = ok(client(&[
        "lookup",
        "-u",
        &url,
        "-k",
        "lib",
        "-n",
        "2",
        "--json",
        &path_str(&clip),
    ]));
    let j: Value = serde_json::from_str(stdout(&out).trim()).expect("json");
    assert_eq!(j["matches"][0]["descr"], "t0.wav", "{j}");
    let offset = j["matches"][0]["offset_s"].as_f64().expect("offset");
    assert!((offset - 4.0).abs() <= 0.5, "{j}");

    // A 2 s clip gets 8 toggle bits from the probe budget; a server capped
    // at 5 would refuse them: lookup asks the cap and stays within it, and
    // an explicit --max-toggle-bits over the cap is the server's error.
    common::config_set(&mut server.conn(), "auscout.max-toggle-bits", "5").expect("CONFIG SET");
    let two_s = ["lookup", "-u", &url, "-k", "lib", "-n", "2", "--json"];
    let out = ok(client(&[&two_s[..], &[&path_str(&clip)]].concat()));
    let j: Value = serde_json::from_str(stdout(&out).trim()).expect("json");
    assert_eq!(j["matches"][0]["descr"], "t0.wav", "{j}");
    let out = client(&[&two_s[..], &["--max-toggle-bits", "8", &path_str(&clip)]].concat());
    assert!(!out.status.success(), "8 bits went through a cap of 5");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("toggle"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A threshold above any score returns nothing; -l caps the matches.
    let out = ok(client(&[
        "lookup",
        "-u",
        &url,
        "-k",
        "lib",
        "-t",
        "1.0",
        "--json",
        &path_str(&clip),
    ]));
    let j: Value = serde_json::from_str(stdout(&out).trim()).expect("json");
    let strict = j["matches"].as_array().expect("matches").len();
    let out = ok(client(&[
        "lookup",
        "-u",
        &url,
        "-k",
        "lib",
        "-t",
        "0",
        "-l",
        "1",
        "--json",
        &path_str(&clip),
    ]));
    let j: Value = serde_json::from_str(stdout(&out).trim()).expect("json");
    assert!(j["matches"].as_array().expect("matches").len() <= 1, "{j}");
    assert!(strict <= 1, "threshold 1.0 let {strict} matches through");
}

#[test]
fn sharded_index_on_one_server() {
    let server = Server::start();
    let url = server.url();
    let mut conn = server.conn();
    let lib = audio_dir();
    let tracks = &TRACKS[..4];
    let signals = write_library(lib.path(), tracks, 12.0);
    let lib_path = path_str(lib.path());

    let added = add_json(&url, "big", &["--shards", "3", &lib_path]);
    assert_eq!(added.len(), 4);
    let ids: HashMap<String, u64> = added
        .iter()
        .map(|a| {
            (
                a["descr"].as_str().expect("descr").to_owned(),
                a["id"].as_u64().expect("id"),
            )
        })
        .collect();
    assert_eq!(
        ids.values().collect::<HashSet<_>>().len(),
        4,
        "ids not unique: {ids:?}"
    );

    // The layout is remembered, the tracks live in the shard keys.
    let meta: HashMap<String, String> = redis::cmd("HGETALL")
        .arg("big{meta}")
        .query(&mut conn)
        .expect("meta");
    assert_eq!(
        meta.get("shards").map(String::as_str),
        Some("3"),
        "{meta:?}"
    );
    assert_eq!(
        meta.get("tags").map(String::as_str),
        Some("0,1,2"),
        "{meta:?}"
    );
    let exists: i64 = redis::cmd("EXISTS")
        .arg("big")
        .query(&mut conn)
        .expect("exists");
    assert_eq!(exists, 0, "the logical name is not a key");
    let mut per_shard = 0;
    for shard in 0..3 {
        let n: i64 = redis::cmd("AUSCOUT.COUNT")
            .arg(format!("big{{{shard}}}"))
            .query(&mut conn)
            .expect("count");
        per_shard += n;
    }
    assert_eq!(per_shard, 4);
    assert_eq!(count(&url, "big"), 4, "count sums the shards");
    // Each id names its shard: the track is in key big{id mod 3}.
    for (descr, id) in &ids {
        let key = format!("big{{{}}}", id % 3);
        let v: redis::Value = redis::cmd("AUSCOUT.LIST")
            .arg(&key)
            .arg(0)
            .arg("COUNT")
            .arg(100)
            .query(&mut conn)
            .expect("list");
        let page = auscout_client::reply::list_page(v).expect("a list page");
        assert!(
            page.descrs.contains(descr),
            "{descr} (id {id}) not in {key}: {page:?}"
        );
    }

    // Lookups fan out and merge; the id shown is the global one.
    let clips = audio_dir();
    for t in tracks {
        let clip = clips.path().join(format!("clip_{}.wav", t.name));
        write_wav(
            &clip,
            &add_noise(&excerpt(&signals[t.name], t.rate, 5.0, 4.0), 15.0, t.seed),
            t.rate,
            1,
        );
    }
    let out = ok(client(&[
        "lookup",
        "-u",
        &url,
        "-k",
        "big",
        "--json",
        "--quiet",
        &path_str(clips.path()),
    ]));
    for line in stdout(&out).lines() {
        let j: Value = serde_json::from_str(line).expect("json");
        let file = j["file"].as_str().expect("file");
        let best = &j["matches"][0];
        let descr = best["descr"].as_str().expect("a match");
        assert!(
            file.ends_with(&format!("clip_{descr}.wav")),
            "{file} matched {descr}"
        );
        assert_eq!(best["id"].as_u64(), Some(ids[descr]), "{j}");
    }

    // Later runs agree with the stored layout; a different one is refused.
    let again = add_json(&url, "big", &[&lib_path]);
    assert!(again.iter().all(|a| a["skipped"] == true), "{again:?}");
    let out = client(&["add", "-u", &url, "-k", "big", "--shards", "2", &lib_path]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("sharded over 3 keys"),
        "{}",
        stderr(&out)
    );

    // del finds the shard from the id alone.
    let id = ids["t2.flac"].to_string();
    ok(client(&["del", "-u", &url, "-k", "big", "-i", &id]));
    assert_eq!(count(&url, "big"), 3);
}

/// Lookups served by the module on `server` so far.
fn lookups_served(server: &Server) -> u64 {
    common::info_field(&mut server.conn(), "auscout", "auscout_lookups")
        .and_then(|v| v.parse().ok())
        .expect("INFO auscout")
}

/// `lookup --json` of every clip in `clips`: (file, matches) sorted by file.
fn lookup_json(args: &[&str], clips: &Path) -> Vec<(String, Value)> {
    let mut all = vec!["lookup", "--json", "--quiet"];
    all.extend_from_slice(args);
    let clips = path_str(clips);
    all.push(&clips);
    let mut rows: Vec<(String, Value)> = stdout(&ok(client(&all)))
        .lines()
        .map(|l| {
            let j: Value = serde_json::from_str(l).expect("json");
            (
                j["file"].as_str().expect("file").to_owned(),
                j["matches"].clone(),
            )
        })
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

#[test]
fn lookups_read_from_a_replica() {
    let primary = Server::builder()
        .arg("--repl-diskless-sync-delay")
        .arg("0")
        .start();
    let replica = Server::builder()
        .arg("--replicaof")
        .arg("127.0.0.1")
        .arg(&primary.port.to_string())
        .start();
    let url = primary.url();
    let lib = audio_dir();
    let tracks = &TRACKS[..3];
    let signals = write_library(lib.path(), tracks, 12.0);
    add_json(&url, "songs", &[&path_str(lib.path())]);
    common::wait_replicated(&primary, &[&replica]);
    let clips = audio_dir();
    for t in tracks {
        let clip = excerpt(&signals[t.name], t.rate, 3.0, 4.0);
        write_wav(
            &clips.path().join(format!("clip_{}.wav", t.name)),
            &clip,
            t.rate,
            1,
        );
    }
    let reference = lookup_json(&["-u", &url, "-k", "songs"], clips.path());
    assert!(
        reference.iter().all(|(_, m)| m[0]["descr"].is_string()),
        "{reference:?}"
    );

    // Listed with --replica, or found through the primary's INFO replication.
    let at = format!("127.0.0.1:{}", replica.port);
    let on_primary = lookups_served(&primary);
    for how in [
        &["--replica", at.as_str()][..],
        &["--read-from", "replicas"][..],
    ] {
        let before = lookups_served(&replica);
        let mut args = vec!["-u", url.as_str(), "-k", "songs"];
        args.extend_from_slice(how);
        assert_eq!(lookup_json(&args, clips.path()), reference, "{how:?}");
        // The replication state each side reported, should the replica not
        // have been judged usable.
        let replication = |s: &Server| -> String {
            redis::cmd("INFO")
                .arg("replication")
                .query(&mut s.conn())
                .unwrap_or_default()
        };
        assert_eq!(
            lookups_served(&replica) - before,
            tracks.len() as u64,
            "{how:?}\nprimary:\n{}\nreplica:\n{}",
            replication(&primary),
            replication(&replica)
        );
    }
    assert_eq!(lookups_served(&primary), on_primary);

    // A replica address given with --cluster is refused in one line.
    let out = client(&[
        "lookup",
        "--cluster",
        "-u",
        &url,
        "-k",
        "songs",
        "--replica",
        &at,
        "x.wav",
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("single primary"), "{}", stderr(&out));
}
