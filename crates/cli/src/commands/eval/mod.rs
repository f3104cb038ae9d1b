//! `eval`: the accuracy harness. Indexes a corpus in memory in the module's
//! own engine (no Redis), looks up every clip of a query manifest as
//! `lookup` would, and prints top-1 recall by distortion and clip length;
//! or, with `--results`, scores the answers a `lookup --csv` run gave.
//! `--plot` draws recall against clip length as SVG.

mod cache;
mod calibrate;
mod ceiling;
mod corpus;
mod lookups;
mod manifest;
mod plot;
mod score;
mod unrelated;

use std::path::Path;
use std::time::Instant;

use auscout_core::matcher::{self, LookupParams};
use auscout_fingerprint::HashOptions;

use self::calibrate::{Calibration, Dump};
use self::corpus::Corpus;
use self::lookups::{look_up, ResultsFile};
use self::manifest::{read_queries, read_results, Answer, Query};
use self::score::Score;
use super::Fatal;
use crate::args::EvalArgs;
use crate::output::Reporter;

pub fn run(args: &EvalArgs, out: &Reporter) -> Result<(), Fatal> {
    let queries = read_queries(&args.queries)?;
    if queries.is_empty() {
        return Err(Fatal(format!("{}: no clips", args.queries.display())));
    }
    let score = match (&args.results, &args.corpus) {
        (Some(results), _) => {
            let answers = read_results(results)?;
            Score::new(&queries, |i| {
                queries.get(i).and_then(|q| answers.get(&q.clip))
            })
        }
        (None, Some(corpus)) => {
            let answers = index_and_look_up(args, corpus, &queries, out)?;
            Score::new(&queries, |i| answers.get(i))
        }
        (None, None) => return Err(Fatal("give --corpus or --results".into())),
    };
    if score.distortions.is_empty() {
        out.error(&format!(
            "{}: no positive clips to score",
            args.queries.display()
        ));
    }
    out.result(score.render(&args.name).trim_end());
    if let Some(path) = &args.plot {
        plot::write_svg(&score, &format!("{}: top-1 recall", args.name), path)?;
        out.info(&format!("plot written to {}", path.display()));
    }
    Ok(())
}

/// Indexes the corpus, looks up every query, runs the research options;
/// the answers in manifest order.
fn index_and_look_up(
    args: &EvalArgs,
    corpus_dir: &Path,
    queries: &[Query],
    out: &Reporter,
) -> Result<Vec<Answer>, Fatal> {
    let cache = args.cache.as_deref();
    if let Some(dir) = cache {
        std::fs::create_dir_all(dir).map_err(|e| Fatal(format!("{}: {e}", dir.display())))?;
    }
    // Queries as `lookup` hashes them; tracks as `add` does, with the
    // toggles of a fixed width that calibration windows cut from them use.
    let opts = args.lookups.hash_options();
    let fixed = HashOptions {
        probe_budget: 0,
        ..opts.clone()
    };
    let t0 = Instant::now();
    let corpus = Corpus::build(
        corpus_dir,
        args.lookups.ids.as_deref(),
        &fixed,
        cache,
        &|path, e| out.file_error(path, &format!("not indexed: {e}")),
    )?;
    out.info(&format!(
        "indexed {} tracks, {} frames in {:.1} s",
        corpus.names.len(),
        corpus.index.frame_count(),
        t0.elapsed().as_secs_f64()
    ));
    let clips: Vec<_> = queries.iter().map(|q| q.clip.clone().into()).collect();
    let t1 = Instant::now();
    let prints = cache::fingerprint_all(&clips, &opts, cache);
    out.info(&format!(
        "fingerprinted {} clips in {:.1} s",
        clips.len(),
        t1.elapsed().as_secs_f64()
    ));

    // The engine refuses masks over the cap, as the server would.
    let params = LookupParams {
        threshold: args.lookups.threshold,
        max_toggle_bits: args.lookups.max_toggle_bits,
        // Only the results file shows the speed (fitting it costs a little).
        with_speed: args.out.is_some(),
        ..LookupParams::default()
    };
    let research = LookupParams {
        threshold: 0.0,
        limit: args.research.dump_limit.or(params.limit),
        ..params.clone()
    };
    let fallbacks = args.lookups.fallbacks();
    let mut dump = Dump::create(args.research.dump.as_deref())?;
    let mut results = args.out.as_deref().map(ResultsFile::create).transpose()?;
    let mut answers = Vec::with_capacity(queries.len());
    for (q, fp) in queries.iter().zip(&prints) {
        let looked = match fp {
            Ok(fp) => {
                if dump.is_open() {
                    if let Ok(v) =
                        matcher::lookup_candidates(&corpus, &fp.hashes, &fp.toggles, &research)
                    {
                        let truth = if q.positive { q.offset_s } else { None };
                        let set = if q.positive { "pos" } else { "neg" };
                        dump.write(
                            set,
                            &q.clip,
                            &q.length,
                            &q.distortion,
                            &q.track,
                            truth,
                            &corpus.names,
                            &v,
                        );
                    }
                }
                Some(look_up(&corpus, q, fp, &opts, &params, &fallbacks)?)
            }
            Err(e) => {
                out.file_error(Path::new(&q.clip), e);
                None
            }
        };
        if let Some(r) = results.as_mut() {
            r.write(&q.clip, looked.as_ref())?;
        }
        answers.push(looked.map(|l| l.answer).unwrap_or_default());
    }
    if let Some(r) = results {
        r.finish()?;
    }
    if args.research.ceiling {
        let table = ceiling::ceiling_table(
            &corpus,
            queries,
            &prints,
            &answers,
            params.threshold,
            fallbacks.min_score,
        );
        out.result(table.trim_end());
    }
    if let Some(step) = args.research.unrelated {
        let table =
            unrelated::unrelated_chain(&corpus, corpus_dir, &opts, &params, &fallbacks, step)?;
        out.result(table.trim_end());
    }
    if args.research.calibrate {
        let cal = Calibration {
            src: &corpus,
            corpus_dir,
            opts: &opts,
            params: research,
            cache,
        };
        out.result(cal.run(queries, &prints, &mut dump).trim_end());
    }
    dump.finish()?;
    Ok(answers)
}
