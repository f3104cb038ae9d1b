//! Options of `eval`, the accuracy harness.

use std::path::PathBuf;

use auscout_client::recognise::{Deep, Fallbacks, Warp};
use auscout_core::defaults;
use auscout_fingerprint::audiohash::{DEFAULT_PROBE_BUDGET, MAX_TOGGLE_BITS};
use auscout_fingerprint::HashOptions;
use clap::{ArgGroup, Args};

#[derive(Debug, Clone, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["corpus", "results"])))]
pub struct EvalArgs {
    /// The query manifest: a CSV with the columns clip, kind (pos or neg),
    /// track, offset_s, length_s and distortion
    #[arg(long, value_name = "CSV")]
    pub queries: PathBuf,
    /// Directory of the audio files to index (each file a track, named by
    /// its file name, which the manifest's `track` column gives)
    #[arg(long, value_name = "DIR")]
    pub corpus: Option<PathBuf>,
    /// Score this results file instead of looking anything up (what
    /// `lookup --csv` prints, or what `eval --out` wrote)
    #[arg(long, value_name = "CSV")]
    pub results: Option<PathBuf>,
    /// Write every clip's answer here (clip,match,offset_s,score,ms,pitch,tempo,passes,deep,speed)
    #[arg(long, value_name = "CSV", conflicts_with = "results")]
    pub out: Option<PathBuf>,
    /// Write a plot of recall against clip length, a line per distortion
    #[arg(long, value_name = "SVG")]
    pub plot: Option<PathBuf>,
    /// Name of the system in the table's heading and the plot's title
    #[arg(long, default_value = "auscout")]
    pub name: String,
    /// Keep fingerprints here (one small file per audio file and options,
    /// keyed by path, size and mtime): a second run decodes no audio
    #[arg(long, value_name = "DIR")]
    pub cache: Option<PathBuf>,
    #[command(flatten)]
    pub lookups: EvalLookups,
    #[command(flatten)]
    pub research: Research,
    /// No informational messages
    #[arg(short, long)]
    pub quiet: bool,
}

/// How the clips are looked up: the defaults are `lookup`'s against a server
/// running the shipped redis.conf.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Lookups")]
pub struct EvalLookups {
    /// Toggle bits per query frame (as `lookup -g`)
    #[arg(short = 'g', long, default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(0..=8))]
    pub toggles: u32,
    /// Query frames x 2^toggle bits a lookup may probe (as `lookup --probe-budget`)
    #[arg(long, default_value_t = DEFAULT_PROBE_BUDGET)]
    pub probe_budget: u64,
    /// The server's auscout.max-toggle-bits the lookups stand in for (the
    /// shipped redis.conf sets 9; the module's default is 8)
    #[arg(long, default_value_t = MAX_TOGGLE_BITS,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_TOGGLE_BITS)))]
    pub max_toggle_bits: u32,
    /// Lookup threshold in [0, 1]
    #[arg(short, long, default_value_t = defaults::THRESHOLD)]
    pub threshold: f64,
    /// Warps tried when a clip as played finds nothing: `none`, or
    /// PITCH:TEMPO,... (a bare number is a speed: pitch and tempo together).
    /// Default: `lookup`'s
    #[arg(long, value_name = "SPEC", value_parser = parse_warps)]
    pub warps: Option<Warps>,
    /// The deep pass tried when the warps find nothing: `none`, or
    /// BUDGET:VERIFIED (probe budget as a 10 s clip's, candidates verified).
    /// Default: `lookup`'s
    #[arg(long, value_name = "SPEC", value_parser = parse_deep)]
    pub deep: Option<DeepSpec>,
    /// Least score a match found by a warp must have (default: `lookup`'s)
    #[arg(long, value_name = "SCORE")]
    pub fallback_min_score: Option<f64>,
    /// `auscoutclient add` output (`PATH: id N` lines) giving each track's
    /// id and the insertion order, to rebuild the index that run made
    /// (default: ids 1, 2, ... in file-name order)
    #[arg(long, value_name = "FILE", conflicts_with = "results")]
    pub ids: Option<PathBuf>,
}

/// Measurements for fitting the matcher's chance model and the fallbacks'
/// minimum score.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Research")]
pub struct Research {
    /// Also look up windows of unrelated audio (the indexed tracks with
    /// their group hidden, and the tracks in the corpus's sibling directory
    /// `negatives`) and print quantiles of the best candidate's score per length
    #[arg(long, conflicts_with = "results")]
    pub calibrate: bool,
    /// Write every verified candidate of every lookup (the manifest's clips,
    /// and the windows of --calibrate) to this CSV
    #[arg(long, value_name = "CSV", conflicts_with = "results")]
    pub dump: Option<PathBuf>,
    /// Candidates verified per lookup for --dump and --calibrate
    /// (default: the engine's limit)
    #[arg(long, value_name = "N", conflicts_with = "results")]
    pub dump_limit: Option<usize>,
    /// Windows every STEP seconds of unrelated music through the whole
    /// chain (first pass and every warp): how many would match
    #[arg(long, value_name = "STEP", conflicts_with = "results")]
    pub unrelated: Option<f64>,
    /// For every positive clip missed, its score at its true alignment (the
    /// manifest's track and offset): the recall a search that always
    /// proposed that alignment would reach, per distortion and length
    #[arg(long, conflicts_with = "results")]
    pub ceiling: bool,
}

/// A parsed `--deep`.
#[derive(Debug, Clone, Copy)]
pub struct DeepSpec(pub Option<Deep>);

/// A parsed `--warps`.
#[derive(Debug, Clone)]
pub struct Warps(pub Vec<Warp>);

impl EvalLookups {
    /// How queries are hashed: as `lookup` hashes them.
    pub fn hash_options(&self) -> HashOptions {
        HashOptions {
            toggle_bits: self.toggles,
            probe_budget: self.probe_budget,
            max_toggle_bits: self.max_toggle_bits,
            ..HashOptions::default()
        }
    }

    /// The fallbacks, `lookup`'s unless the options say otherwise.
    pub fn fallbacks(&self) -> Fallbacks {
        let mut f = Fallbacks::default();
        if let Some(w) = &self.warps {
            f.warps.clone_from(&w.0);
        }
        if let Some(d) = self.deep {
            f.deep = d.0;
        }
        if let Some(s) = self.fallback_min_score {
            f.min_score = s;
        }
        f
    }
}

/// `none`, or `PITCH:TEMPO,…` with a bare number for a speed.
fn parse_warps(spec: &str) -> Result<Warps, String> {
    if spec == "none" {
        return Ok(Warps(Vec::new()));
    }
    spec.split(',')
        .map(|w| {
            let num = |v: &str| v.parse::<f64>().map_err(|e| format!("{w}: {e}"));
            match w.split_once(':') {
                Some((p, t)) => Ok(Warp {
                    pitch: num(p)?,
                    tempo: num(t)?,
                }),
                None => Ok(Warp::speed(num(w)?)),
            }
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Warps)
}

/// `none`, or `BUDGET:VERIFIED`.
fn parse_deep(spec: &str) -> Result<DeepSpec, String> {
    if spec == "none" {
        return Ok(DeepSpec(None));
    }
    let (b, v) = spec
        .split_once(':')
        .ok_or_else(|| "BUDGET:VERIFIED or none".to_owned())?;
    Ok(DeepSpec(Some(Deep {
        probe_budget: b.parse().map_err(|e| format!("{b}: {e}"))?,
        verified: v.parse().map_err(|e| format!("{v}: {e}"))?,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warps_parse() {
        assert!(parse_warps("none").expect("none").0.is_empty());
        let w = parse_warps("1.07,0.944:1").expect("two warps").0;
        assert_eq!(w.len(), 2);
        assert_eq!((w[1].pitch, w[1].tempo), (0.944, 1.0));
        assert!(parse_warps("fast").is_err());
        assert!(parse_deep("none").expect("none").0.is_none());
        let d = parse_deep("64000:256").expect("deep").0.expect("some");
        assert_eq!((d.probe_budget, d.verified), (64000, 256));
        assert!(parse_deep("64000").is_err());
    }
}
