//! `auscoutclient hash`: fingerprints without Redis, as plain text or JSON.

mod support;

use serde_json::Value;
use support::*;

fn hash_json(args: &[&str]) -> Vec<Value> {
    let mut all = vec!["hash", "--json", "--quiet"];
    all.extend_from_slice(args);
    let out = ok(client(&all));
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).expect("json line"))
        .collect()
}

fn u32s(v: &Value) -> Vec<u32> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_u64().and_then(|x| u32::try_from(x).ok()).expect("u32"))
        .collect()
}

#[test]
fn json_fingerprints_of_wav_and_flac_agree() {
    let dir = audio_dir();
    let x = music(11, 6.0, 16000);
    let wav = dir.path().join("a.wav");
    let flac = dir.path().join("a.flac");
    write_wav(&wav, &x, 16000, 1);
    write_flac(&flac, &x, 16000);
    let got = hash_json(&[&path_str(&wav), &path_str(&flac)]);
    assert_eq!(got.len(), 2);
    let by_file = |name: &str| {
        got.iter()
            .find(|j| j["file"].as_str().is_some_and(|f| f.ends_with(name)))
            .expect(name)
    };
    let (a, b) = (by_file("a.wav"), by_file("a.flac"));
    assert_eq!(a["sr"], 6000);
    let (ha, ta) = (u32s(&a["hashes"]), u32s(&a["toggles"]));
    // 6 s at 6000 Hz: (36000 - 2048) / 64 + 1 frames, two fewer hashes; the
    // FLAC is padded to whole blocks, so it may have a few more.
    let expected = (36000 - 2048) / 64 - 1;
    assert!(
        (ha.len() as i64 - expected).abs() <= 2,
        "{} hashes",
        ha.len()
    );
    assert_eq!(ha.len(), ta.len());
    // 529 hashes × 2^5 is over the default probe budget of 16,000: 4 bits.
    assert!(ta.iter().all(|t| t.count_ones() == 4), "default -g 4");
    let hb = u32s(&b["hashes"]);
    assert_eq!(hb[..ha.len()], ha[..], "lossless FLAC hashes like the WAV");
}

#[test]
fn toggles_nsecs_and_sr_options() {
    let dir = audio_dir();
    let wav = dir.path().join("b.wav");
    write_wav(&wav, &music(12, 5.0, 22050), 22050, 2);
    let p = path_str(&wav);

    let none = &hash_json(&["-g", "0", "--probe-budget", "0", &p])[0];
    assert!(u32s(&none["toggles"]).iter().all(|&t| t == 0));
    // 5 s, ~435 hashes: the default budget (16,000 probes) allows 5 bits,
    // whatever smaller -g asks for; a budget of 1,000 only the -g floor.
    for args in [&["-g", "0"][..], &[]] {
        let mut args = args.to_vec();
        args.push(&p);
        let t = u32s(&hash_json(&args)[0]["toggles"]);
        assert!(t.iter().all(|t| t.count_ones() == 5), "{args:?}");
    }
    let small = &hash_json(&["-g", "2", "--probe-budget", "1000", &p])[0];
    assert!(u32s(&small["toggles"]).iter().all(|t| t.count_ones() == 2));
    let eight = &hash_json(&["-g", "8", &p])[0];
    assert!(u32s(&eight["toggles"]).iter().all(|t| t.count_ones() == 8));
    assert_eq!(
        none["hashes"], eight["hashes"],
        "toggles do not change the hashes"
    );

    // -n 2: the first 2 s only, the same hashes as the start of the whole.
    let part = &hash_json(&["-n", "2", &p])[0];
    let (part, whole) = (u32s(&part["hashes"]), u32s(&none["hashes"]));
    assert_eq!(part.len(), (12000 - 2048) / 64 - 1);
    let same = part.iter().zip(&whole).filter(|(a, b)| a == b).count();
    assert!(
        same as f64 >= 0.95 * part.len() as f64,
        "{same}/{} equal",
        part.len()
    );

    let fast = &hash_json(&["--sr", "8000", &p])[0];
    assert_eq!(fast["sr"], 8000);
    assert!(u32s(&fast["hashes"]).len() > whole.len());

    let out = ok(client(&["hash", &p]));
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!("{p}: {} hashes, ", whole.len())),
        "{text}"
    );
    assert!(text.trim_end().ends_with("at 6000 Hz"), "{text}");
}

#[test]
fn bad_files_fail_one_line_each_and_the_rest_goes_on() {
    let dir = audio_dir();
    let good = dir.path().join("good.wav");
    write_wav(&good, &music(13, 3.0, 8000), 8000, 1);
    let garbage = dir.path().join("garbage.mp3");
    std::fs::write(&garbage, b"this is not audio at all, just text ".repeat(50)).expect("write");
    let empty = dir.path().join("empty.wav");
    std::fs::write(&empty, b"").expect("write");
    let short = dir.path().join("short.wav");
    write_wav(&short, &music(14, 0.1, 8000), 8000, 1);
    let missing = dir.path().join("missing.flac");
    let bad = [&garbage, &empty, &short, &missing];

    let mut args = vec!["hash".to_owned(), "--json".to_owned(), path_str(&good)];
    args.extend(bad.iter().map(|p| path_str(p)));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = client(&args);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 1, "only the good file hashes: {lines:?}");
    assert!(lines[0].contains("good.wav"));
    let err = stderr(&out);
    assert_eq!(
        err.lines().count(),
        bad.len(),
        "one line per bad file:\n{err}"
    );
    for p in bad {
        let line = err
            .lines()
            .find(|l| l.starts_with(&path_str(p)))
            .unwrap_or_else(|| panic!("{p:?} in:\n{err}"));
        assert!(
            line.len() > path_str(p).len() + 5,
            "a reason is given: {line}"
        );
    }
    assert!(err.contains("too short"), "{err}");
    assert!(err.contains("no such file"), "{err}");
}
