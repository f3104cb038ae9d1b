//! Command-line arguments. The flags are those of the original C++
//! `auscoutclient` (`-k -s -p -g -t -n -i -d`, `--sr`), plus the ones a Rust
//! rewrite adds (`-u`, `-j`, `--json`, `--csv`, `--force`, `--cluster`,
//! `--shards`). Every option is global so both `auscoutclient add -k K DIR`
//! and `auscoutclient -k K add DIR` work, as the original accepted options
//! in any order.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "auscoutclient",
    version,
    about = "Index audio files in Redis (auscout module) and recognise clips of them",
    after_help = "Examples:\n  \
        auscoutclient add -k music ~/Music\n  \
        auscoutclient lookup -k music clip1.mp3 clips/ --csv > results.csv\n  \
        auscoutclient del -k music -i 42\n  \
        auscoutclient hash --json song.flac\n  \
        auscoutclient add --cluster -s 10.0.0.5 -p 7000 -k music ~/Music"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    #[command(flatten)]
    pub opts: Options,
}

#[derive(Debug, Clone, PartialEq, Eq, Subcommand)]
pub enum Command {
    /// Fingerprint files and add each as a track (description = file name)
    Add(Files),
    /// Delete the track with the id `add` printed (-i)
    Del,
    /// Look files up and print their matches
    Lookup(Files),
    /// Fingerprint files and print the hashes (no Redis)
    Hash(Files),
    /// Print the number of tracks in the index
    Count,
    /// Print the number of frames in the index
    Size,
}

#[derive(Debug, Clone, Args)]
pub struct Options {
    /// Redis key of the index
    #[arg(short, long, global = true)]
    pub key: Option<String>,
    /// Redis server host name or IP address
    #[arg(short, long, global = true, default_value = "localhost")]
    pub server: String,
    /// Redis server port
    #[arg(short, long, global = true, default_value_t = 6379)]
    pub port: u16,
    /// Redis URL redis://[user:pass@]host:port/db (overrides -s and -p)
    #[arg(short, long, global = true)]
    pub url: Option<String>,
    /// Toggle bits per query frame: the bits most likely to flip, 0 to 8
    /// (the fewest: short clips get more within --probe-budget)
    #[arg(short = 'g', long, global = true, default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(0..=8))]
    pub toggles: u32,
    /// Query frames x 2^toggle bits a lookup may probe: clips shorter than
    /// ~10 s get more toggle bits (up to --max-toggle-bits; clips of at most
    /// 3.2 s get 5x the budget); 0 = exactly -g bits
    #[arg(long, global = true, default_value_t = auscout_fingerprint::audiohash::DEFAULT_PROBE_BUDGET)]
    pub probe_budget: u64,
    /// Most toggle bits per query frame the server accepts (its
    /// auscout.max-toggle-bits; 0 to 9). Default: lookup asks the server, 8
    /// (the module's default) if it cannot tell
    #[arg(long, global = true,
          value_parser = clap::value_parser!(u32).range(0..=i64::from(auscout_fingerprint::audiohash::MAX_TOGGLE_BITS)))]
    pub max_toggle_bits: Option<u32>,
    /// Lookup threshold in [0, 1] (default: the server's)
    #[arg(short, long, global = true)]
    pub threshold: Option<f64>,
    /// Return at most this many matches per lookup
    #[arg(short, long, global = true)]
    pub limit: Option<u32>,
    /// Sample rate the audio is resampled to before hashing (Hz, >= 6000)
    #[arg(long, global = true, default_value_t = 6000,
          value_parser = clap::value_parser!(u32).range(6000..))]
    pub sr: u32,
    /// Seconds of each file to use, 0 for all
    #[arg(short, long, global = true, default_value_t = 0.0)]
    pub nsecs: f64,
    /// Track id to delete (del)
    #[arg(short, long, global = true)]
    pub id: Option<u64>,
    /// Directory of audio files (walked recursively); may be repeated
    #[arg(short, long, global = true)]
    pub dir: Vec<PathBuf>,
    /// Files processed in parallel (default: all cores)
    #[arg(short, long, global = true)]
    pub jobs: Option<usize>,
    /// No progress bar and no informational messages
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Print one JSON object per file
    #[arg(long, global = true, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV: clip,match,offset_s,score,ms (lookup) or file,id (add)
    #[arg(long, global = true)]
    pub csv: bool,
    /// add: index files even when a track of that name is already there
    #[arg(long, global = true)]
    pub force: bool,
    /// Talk to a Redis Cluster (-s/-p or -u name any node)
    #[arg(long, global = true)]
    pub cluster: bool,
    /// Spread the index over N keys KEY{0}..KEY{N-1} (remembered in KEY{meta})
    #[arg(long, global = true,
          value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub shards: Option<u32>,
}

/// The files a command works on.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct Files {
    /// Audio files or directories (walked recursively)
    pub paths: Vec<PathBuf>,
}

impl Options {
    /// Every path given, `-d` directories first as the original took them.
    pub fn all_paths(&self, files: &Files) -> Vec<PathBuf> {
        self.dir.iter().chain(files.paths.iter()).cloned().collect()
    }
}

/// Rewrites the original client's `-c CMD` / `--cmd CMD` / `--cmd=CMD` into
/// the subcommand position, so old scripts keep working.
pub fn legacy_command_args(args: Vec<OsString>) -> Vec<OsString> {
    let mut out = Vec::with_capacity(args.len());
    let mut command = None;
    let mut iter = args.into_iter();
    if let Some(program) = iter.next() {
        out.push(program);
    }
    while let Some(arg) = iter.next() {
        if command.is_none() && (arg == "-c" || arg == "--cmd") {
            command = iter.next();
            continue;
        }
        if command.is_none() {
            if let Some(value) = arg.to_str().and_then(|a| a.strip_prefix("--cmd=")) {
                command = Some(OsString::from(value));
                continue;
            }
        }
        out.push(arg);
    }
    if let Some(command) = command {
        out.insert(1.min(out.len()), command);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn legacy_cmd_flag_becomes_the_subcommand() {
        let got = legacy_command_args(os(&["a", "-k", "x", "-c", "lookup", "-d", "dir"]));
        assert_eq!(got, os(&["a", "lookup", "-k", "x", "-d", "dir"]));
        let got = legacy_command_args(os(&["a", "--cmd=add", "-k", "x"]));
        assert_eq!(got, os(&["a", "add", "-k", "x"]));
        let got = legacy_command_args(os(&["a", "add", "-k", "x"]));
        assert_eq!(got, os(&["a", "add", "-k", "x"]));
    }

    #[test]
    fn options_parse_in_any_order() {
        let cli = Cli::try_parse_from(["a", "-k", "music", "lookup", "clip.wav", "-g", "2"]);
        let cli = cli.expect("parses");
        let Command::Lookup(files) = &cli.command else {
            panic!("not lookup: {:?}", cli.command);
        };
        assert_eq!(cli.opts.key.as_deref(), Some("music"));
        assert_eq!(cli.opts.toggles, 2);
        assert_eq!(files.paths, vec![PathBuf::from("clip.wav")]);
        let cli = Cli::try_parse_from(["a", "-d", "dir", "add", "x.wav"]).expect("parses");
        let Command::Add(files) = &cli.command else {
            panic!("not add: {:?}", cli.command);
        };
        let want = vec![PathBuf::from("dir"), PathBuf::from("x.wav")];
        assert_eq!(cli.opts.all_paths(files), want);
    }

    #[test]
    fn default_toggles_are_the_library_defaults() {
        // The eval harness measures accuracy with `HashOptions::default()`;
        // `lookup` must send the same toggles.
        let cli = Cli::try_parse_from(["a", "lookup", "x.wav"]).expect("parses");
        let lib = auscout_fingerprint::HashOptions::default();
        assert_eq!(cli.opts.toggles, lib.toggle_bits);
        assert_eq!(cli.opts.probe_budget, lib.probe_budget);
        let cli = Cli::try_parse_from(["a", "lookup", "--probe-budget", "0", "x.wav"]);
        assert_eq!(cli.expect("parses").opts.probe_budget, 0);
        // Not given: `lookup` asks the server for its cap.
        assert_eq!(cli_max_bits(&["a", "lookup", "x.wav"]), None);
        assert_eq!(
            cli_max_bits(&["a", "lookup", "--max-toggle-bits", "9", "x"]),
            Some(9)
        );
    }

    fn cli_max_bits(args: &[&str]) -> Option<u32> {
        Cli::try_parse_from(args)
            .expect("parses")
            .opts
            .max_toggle_bits
    }

    #[test]
    fn out_of_range_values_are_refused() {
        assert!(Cli::try_parse_from(["a", "lookup", "-g", "9"]).is_err());
        assert!(Cli::try_parse_from(["a", "lookup", "--max-toggle-bits", "10"]).is_err());
        assert!(Cli::try_parse_from(["a", "hash", "--sr", "5000"]).is_err());
        assert!(Cli::try_parse_from(["a", "add", "--shards", "0"]).is_err());
        assert!(Cli::try_parse_from(["a", "lookup", "--json", "--csv"]).is_err());
        assert!(
            Cli::try_parse_from(["a", "del", "x.wav"]).is_err(),
            "del takes no paths"
        );
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
