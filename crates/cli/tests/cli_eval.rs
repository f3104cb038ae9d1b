//! `auscoutclient eval`: the accuracy harness on a small synthetic corpus,
//! indexed in memory (no Redis): the recall table, the results file, the
//! SVG plot, and scoring an existing results file.

mod support;

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

use support::*;

const RATE: u32 = 16000;
const TRACKS: u64 = 3;
const LENGTHS: [f64; 2] = [2.0, 5.0];

/// A corpus of three tracks, clips of each at two lengths, clean and with
/// noise at 15 dB SNR, and two clips of a track that is not indexed; the
/// manifest describing them.
fn bench(dir: &Path) -> (String, String) {
    let corpus = dir.join("corpus");
    let clips = dir.join("clips");
    fs::create_dir_all(&corpus).expect("corpus dir");
    fs::create_dir_all(&clips).expect("clips dir");
    let mut manifest = String::from("clip,kind,track,offset_s,length_s,distortion\n");
    for t in 0..TRACKS {
        let x = music(100 + t, 40.0, RATE);
        let name = format!("synth__track{t}.wav");
        write_wav(&corpus.join(&name), &x, RATE, 1);
        for (i, len) in LENGTHS.into_iter().enumerate() {
            let start = 6.0 + 9.0 * i as f64 + t as f64;
            let cut = excerpt(&x, RATE, start, len);
            for (distortion, audio) in [
                ("clean", cut.clone()),
                ("noise15", add_noise(&cut, 15.0, t)),
            ] {
                let clip = clips.join(format!("t{t}_{len}_{distortion}.wav"));
                write_wav(&clip, &audio, RATE, 1);
                let _ = writeln!(
                    manifest,
                    "{},pos,{name},{start},{len},{distortion}",
                    path_str(&clip)
                );
            }
        }
    }
    let unrelated = music(999, 20.0, RATE);
    for len in LENGTHS {
        let clip = clips.join(format!("neg_{len}.wav"));
        write_wav(&clip, &excerpt(&unrelated, RATE, 5.0, len), RATE, 1);
        let _ = writeln!(manifest, "{},neg,,,{len},clean", path_str(&clip));
    }
    let queries = dir.join("queries.csv");
    fs::write(&queries, manifest).expect("manifest");
    (path_str(&corpus), path_str(&queries))
}

/// `eval` over `corpus` and the manifest `queries`, quietly, with `extra`
/// options; its output once it succeeded.
fn eval_in_process(corpus: &str, queries: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["eval", "--corpus", corpus, "--queries", queries, "-q"];
    args.extend_from_slice(extra);
    ok(client(&args))
}

#[test]
fn eval_prints_recall_writes_results_and_a_well_formed_plot() {
    let dir = audio_dir();
    let (corpus, queries) = bench(dir.path());
    let results = path_str(&dir.path().join("results.csv"));
    let plot = dir.path().join("recall.svg");
    let out = eval_in_process(
        &corpus,
        &queries,
        &[
            "--out",
            &results,
            "--plot",
            &path_str(&plot),
            "--name",
            "synthetic",
        ],
    );
    let table = stdout(&out);
    assert!(
        table.starts_with("### synthetic: top-1 recall (%) by distortion and clip length"),
        "{table}"
    );
    assert!(table.contains("| distortion | 2 s | 5 s |"), "{table}");
    assert!(table.contains("| clean | 100 | 100 |"), "{table}");
    assert!(table.contains("| noise15 | "), "{table}");
    // Every clean clip and most noisy ones are found, at the right offset,
    // and nothing matches the unrelated clips.
    let all = table
        .lines()
        .find(|l| l.starts_with("all positives: "))
        .expect("summary line");
    let right: usize = all["all positives: ".len()..]
        .split('/')
        .next()
        .and_then(|n| n.parse().ok())
        .expect("count");
    assert!(right >= 10, "{all}");
    assert!(
        all.contains(&format!("offset within 0.5 s: {right}/{right}")),
        "{all}"
    );
    assert!(all.ends_with("wrong track: 0"), "{all}");
    assert!(
        table.contains("negatives: 0/2 false positives, 2 s: 0/1, 5 s: 0/1"),
        "{table}"
    );

    // The results file: a line per clip, the clean ones matched.
    let text = fs::read_to_string(&results).expect("results written");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("clip,match,offset_s,score,ms,pitch,tempo,passes,deep,speed")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 14);
    for r in rows
        .iter()
        .filter(|r| r[0].ends_with("_clean.wav") && !r[0].contains("neg_"))
    {
        assert!(r[1].starts_with("synth__track"), "{r:?}");
    }

    // The plot: a well-formed SVG with a line and a legend entry per distortion.
    let svg = fs::read_to_string(&plot).expect("plot written");
    assert_well_formed(&svg);
    assert!(
        svg.trim_start().starts_with("<svg"),
        "{}",
        &svg[..80.min(svg.len())]
    );
    let texts = svg_texts(&svg);
    assert!(texts.iter().any(|t| t == "clean"), "{texts:?}");
    assert!(texts.iter().any(|t| t == "noise15"), "{texts:?}");
    assert!(
        texts.iter().any(|t| t == "synthetic: top-1 recall"),
        "{texts:?}"
    );
    assert!(
        svg.matches("<polyline").count() >= 2,
        "a line per distortion"
    );
    assert!(texts.iter().any(|t| t == "clip length (s)"), "{texts:?}");
    assert!(texts.iter().any(|t| t == "top-1 recall (%)"), "{texts:?}");

    // Scoring the results file gives the same table.
    let rescored = ok(client(&[
        "eval",
        "--queries",
        &queries,
        "--results",
        &results,
        "--name",
        "synthetic",
    ]));
    let rescored = stdout(&rescored);
    let without_times = |t: &str| {
        t.lines()
            .filter(|l| !l.starts_with("lookup ms"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(without_times(&rescored), without_times(&table));
}

/// `--ceiling` verifies each missed clip at the manifest's alignment. With
/// a threshold no noisy clip reaches and no fallbacks, the noisy clips are
/// missed, yet at their true alignment they score far above chance: every
/// one is reachable at the fallbacks' minimum, and its score is printed.
#[test]
fn eval_ceiling_scores_the_missed_clips_at_their_true_alignment() {
    let dir = audio_dir();
    let (corpus, queries) = bench(dir.path());
    let out = eval_in_process(
        &corpus,
        &queries,
        &[
            "--threshold",
            "0.97",
            "--warps",
            "none",
            "--deep",
            "none",
            "--ceiling",
        ],
    );
    let table = stdout(&out);
    assert!(
        table.contains(
            "| distortion | clip | clips | found % | reachable at 0.97 % | reachable at 0.3 % |"
        ),
        "{table}"
    );
    let rows: Vec<Vec<&str>> = table
        .lines()
        .filter(|l| l.starts_with("| noise15 | ") && l.contains(" s | "))
        .map(|l| l.split('|').map(str::trim).collect())
        .collect();
    assert_eq!(rows.len(), LENGTHS.len(), "{table}");
    let mut missed = 0;
    for r in &rows {
        // | noise15 | 2 s | clips | found | at 0.97 | at 0.3 | scores |
        assert_eq!(r[3], TRACKS.to_string(), "{r:?}");
        assert_eq!(
            r[4], r[5],
            "nothing found is reachable at the threshold: {r:?}"
        );
        assert_eq!(r[6], "100", "{r:?}");
        for s in r[7].split_whitespace() {
            let s: f64 = s.parse().expect("a score");
            assert!((0.3..0.97).contains(&s), "{r:?}");
            missed += 1;
        }
    }
    assert!(missed > 0, "no noisy clip was missed: {table}");
}

#[test]
fn eval_scores_a_lookup_csv_and_counts_clips_without_an_answer() {
    let dir = audio_dir();
    let manifest = dir.path().join("queries.csv");
    fs::write(
        &manifest,
        "clip,kind,track,offset_s,length_s,distortion\n\
         a.wav,pos,t1.ogg,10,2,clean\n\
         b.wav,pos,t1.ogg,20,2,clean\n\
         c.wav,pos,t2.ogg,30,10,room\n\
         d.wav,neg,,,2,clean\n",
    )
    .expect("manifest");
    // What `lookup --csv` prints: b.wav found at the wrong offset, c.wav
    // given to the wrong track, d.wav (unrelated) matched, a.wav missing.
    let results = dir.path().join("lookup.csv");
    fs::write(
        &results,
        "clip,match,offset_s,score,ms\n\
         b.wav,t1.ogg,25.000,0.6000,1.000\n\
         c.wav,t1.ogg,30.000,0.3000,3.000\n\
         d.wav,t2.ogg,1.000,0.2600,2.000\n",
    )
    .expect("results");
    let out = ok(client(&[
        "eval",
        "--queries",
        &path_str(&manifest),
        "--results",
        &path_str(&results),
    ]));
    let table = stdout(&out);
    assert!(table.contains("| distortion | 2 s | 10 s |"), "{table}");
    assert!(table.contains("| clean | 50 | - |"), "{table}");
    assert!(table.contains("| room | - | 0 |"), "{table}");
    assert!(
        table
            .contains("all positives: 1/3 right (33.3%), offset within 0.5 s: 0/1, wrong track: 1"),
        "{table}"
    );
    assert!(
        table.contains("negatives: 1/1 false positives, 2 s: 1/1"),
        "{table}"
    );
    assert!(
        table.contains("lookup ms: median 2.00, p95 2.00, max 3.00"),
        "{table}"
    );
    assert!(table.contains("clips with no answer line: 1"), "{table}");
}

#[test]
fn eval_refuses_bad_arguments_and_files() {
    let dir = audio_dir();
    let manifest = dir.path().join("queries.csv");
    fs::write(&manifest, "clip,kind,track\nx.wav,pos,t\n").expect("manifest");
    let m = path_str(&manifest);
    // Neither a corpus nor results, or both: a usage error.
    let o = client(&["eval", "--queries", &m]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = client(&["eval", "--queries", &m, "--corpus", "c", "--results", "r"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = client(&["eval", "--queries", &m, "--results", "r", "--calibrate"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // A manifest without the columns eval needs.
    let o = client(&["eval", "--queries", &m, "--results", &m]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("no column length_s"), "{}", stderr(&o));
    // A corpus directory that does not exist.
    let o = client(&[
        "eval",
        "--queries",
        &path_str(&dir.path().join("none.csv")),
        "--corpus",
        "c",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("none.csv"), "{}", stderr(&o));
}

/// The contents of every `<text>` element, trimmed.
fn svg_texts(svg: &str) -> Vec<String> {
    svg.split("<text")
        .skip(1)
        .filter_map(|t| {
            let body = &t[t.find('>')? + 1..];
            Some(body[..body.find("</text>")?].trim().to_owned())
        })
        .collect()
}

/// Checks that `xml` is well-formed: every element closed in order, no
/// stray `<`, only the predefined entities and character references.
fn assert_well_formed(xml: &str) {
    let mut open: Vec<&str> = Vec::new();
    let mut rest = xml;
    while let Some(lt) = rest.find('<') {
        check_text(&rest[..lt]);
        let after = &rest[lt..];
        if let Some(body) = after.strip_prefix("<!--") {
            let end = body.find("-->").expect("comment closed");
            rest = &body[end + 3..];
            continue;
        }
        let gt = after.find('>').expect("tag closed");
        let tag = &after[1..gt];
        rest = &after[gt + 1..];
        if tag.starts_with('?') || tag.starts_with('!') {
            assert!(open.is_empty(), "declaration inside an element: {tag}");
            continue;
        }
        assert!(!tag.contains('<'), "'<' inside a tag: {tag}");
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(open.pop(), Some(name.trim()), "closing tag out of order");
        } else if !tag.ends_with('/') {
            let name = tag.split_whitespace().next().expect("tag name");
            open.push(name);
        }
        check_quotes(tag);
    }
    check_text(rest);
    assert!(open.is_empty(), "unclosed elements: {open:?}");
}

fn check_text(text: &str) {
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        let after = &rest[amp + 1..];
        let semi = after.find(';').expect("entity closed");
        let entity = &after[..semi];
        assert!(
            ["lt", "gt", "amp", "quot", "apos"].contains(&entity) || entity.starts_with('#'),
            "unknown entity &{entity};"
        );
        rest = &after[semi + 1..];
    }
}

fn check_quotes(tag: &str) {
    assert_eq!(
        tag.matches('"').count() % 2,
        0,
        "unbalanced quotes in <{tag}>"
    );
}
