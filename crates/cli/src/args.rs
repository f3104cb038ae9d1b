//! Command-line arguments. Each subcommand takes only its own options, built
//! from the groups below (connection, index key, hashing, query, output,
//! files). The original C++ client's flags keep working: `-k -s -p -g -t -n
//! -i -d`, `--sr`, the command given as `-c CMD`/`--cmd CMD`, and options
//! before the command (`auscoutclient -k K add DIR`): [`reorder_args`] moves
//! the command to the front before clap parses.

mod eval;
mod index_tools;

use std::ffi::OsString;
use std::path::PathBuf;

use auscout_core::defaults;
use auscout_fingerprint::audiohash::{DEFAULT_PROBE_BUDGET, MAX_TOGGLE_BITS};
use clap::{Args, Parser, Subcommand};
pub use eval::EvalArgs;
pub use index_tools::{ExportArgs, ImportArgs, ListArgs, StatsArgs};

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
        auscoutclient add --cluster -s 10.0.0.5 -p 7000 -k music ~/Music\n  \
        auscoutclient list -k music\n  \
        auscoutclient export music music.auscout\n\n\
        `auscoutclient <command> --help` lists a command's options."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Fingerprint files and add each as a track (description = file name)
    #[command(after_help = "Example:\n  auscoutclient add -k music ~/Music --csv > ids.csv")]
    Add(AddArgs),
    /// Delete tracks by the ids `add` printed
    #[command(after_help = "Example:\n  auscoutclient del -k music -i 42")]
    Del(DelArgs),
    /// Look files up and print their matches
    #[command(after_help = "Examples:\n  \
        auscoutclient lookup -k music clip.mp3\n  \
        auscoutclient lookup -k music clips/ --csv > results.csv")]
    Lookup(LookupArgs),
    /// What played when: follow recordings, directories or standard input
    /// and print every excerpt of an indexed track with its times
    #[command(after_help = "Examples:\n  \
        auscoutclient monitor -k music show.mp3\n  \
        auscoutclient monitor -k music recordings/ --csv > airplay.csv\n  \
        ffmpeg -i stream.m3u8 -f s16le -ac 1 -ar 16000 - | auscoutclient monitor -k music --raw s16le:16000:1 -\n  \
        arecord -f cd | auscoutclient monitor -k music --json -")]
    Monitor(MonitorArgs),
    /// Fingerprint files and print the hashes (no Redis)
    #[command(after_help = "Example:\n  auscoutclient hash --json song.flac")]
    Hash(HashCmdArgs),
    /// Print the number of tracks in the index
    #[command(after_help = "Example:\n  auscoutclient count -k music")]
    Count(KeyedArgs),
    /// Print the number of frames in the index
    #[command(after_help = "Example:\n  auscoutclient size -k music")]
    Size(KeyedArgs),
    /// List the tracks: id, frames, length, description
    #[command(after_help = "Examples:\n  \
        auscoutclient list -k music\n  \
        auscoutclient list -k music --count 100 --cursor 301 --csv")]
    List(ListArgs),
    /// Show the index's statistics and the module's INFO section
    #[command(after_help = "Example:\n  auscoutclient stats -k music --json")]
    Stats(StatsArgs),
    /// Write an index to a file (ids, descriptions, hashes) for import
    #[command(after_help = "Examples:\n  \
        auscoutclient export music music.auscout\n  \
        auscoutclient export --cluster -p 7000 music music.auscout")]
    Export(ExportArgs),
    /// Create an index from a file export wrote; the ids stay the same
    #[command(after_help = "Examples:\n  \
        auscoutclient import music.auscout music\n  \
        auscoutclient import --cluster -p 7000 music.auscout music\n  \
        auscoutclient import --replace music.auscout music")]
    Import(ImportArgs),
    /// Measure accuracy: index a corpus in memory (no Redis), look up a
    /// manifest of clips, print recall by distortion and clip length
    #[command(after_help = "Examples:\n  \
        auscoutclient eval --corpus bench/corpus/index --queries bench/q/queries.csv --plot recall.svg\n  \
        auscoutclient lookup -k bench --csv bench/q/clips > q.csv\n  \
        auscoutclient eval --queries bench/q/queries.csv --results q.csv")]
    Eval(EvalArgs),
}

impl Command {
    /// Every subcommand's name, for [`reorder_args`].
    const NAMES: &'static [&'static str] = &[
        "add", "del", "lookup", "monitor", "hash", "count", "size", "list", "stats", "export",
        "import", "eval",
    ];
}

/// Where the server is.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Connection")]
pub struct Connection {
    /// Redis server host name or IP address (a path starting with / is a Unix socket)
    #[arg(short, long, default_value = "localhost")]
    pub server: String,
    /// Redis server port
    #[arg(short, long, default_value_t = 6379)]
    pub port: u16,
    /// Redis URL redis://[user:pass@]host:port/db (overrides -s and -p)
    #[arg(short, long)]
    pub url: Option<String>,
    /// Talk to a Redis Cluster (-s/-p or -u name any node)
    #[arg(long)]
    pub cluster: bool,
    /// Spread the index over N keys KEY{0}..KEY{N-1} (remembered in KEY{meta})
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub shards: Option<u32>,
    /// Where lookups go: `replicas` sends them to replicas in sync (a
    /// cluster's, or those of one server: --replica, else those it lists),
    /// falling back to the primary
    #[arg(long, value_enum, default_value_t = ReadFrom::Primary)]
    pub read_from: ReadFrom,
    /// A replica of the server (not of a cluster) for lookups, HOST:PORT;
    /// may be repeated; implies --read-from replicas
    #[arg(long = "replica", value_name = "HOST:PORT")]
    pub replicas: Vec<String>,
}

/// `--read-from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReadFrom {
    Primary,
    Replicas,
}

/// The index.
#[derive(Debug, Clone, Args)]
pub struct KeyArg {
    /// Redis key of the index
    #[arg(short, long)]
    pub key: Option<String>,
}

/// How audio becomes hashes.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Hashing")]
pub struct Hashing {
    /// Sample rate the audio is resampled to before hashing (Hz, >= 6000)
    #[arg(long, default_value_t = defaults::SAMPLE_RATE,
          value_parser = clap::value_parser!(u32).range(i64::from(defaults::SAMPLE_RATE)..))]
    pub sr: u32,
    /// Seconds of each file to use, 0 for all
    #[arg(short, long, default_value_t = 0.0)]
    pub nsecs: f64,
}

/// The toggle masks a query is sent with.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Toggle bits")]
pub struct Toggles {
    /// Toggle bits per query frame: the bits most likely to flip, 0 to 8
    /// (the fewest: short clips get more within --probe-budget)
    #[arg(short = 'g', long, default_value_t = 4,
          value_parser = clap::value_parser!(u32).range(0..=8))]
    pub toggles: u32,
    /// Query frames x 2^toggle bits a lookup may probe: clips shorter than
    /// ~10 s get more toggle bits (up to --max-toggle-bits; clips of at most
    /// 3.2 s get 5x the budget); 0 = exactly -g bits
    #[arg(long, default_value_t = DEFAULT_PROBE_BUDGET)]
    pub probe_budget: u64,
    /// Most toggle bits per query frame the server accepts (its
    /// auscout.max-toggle-bits; 0 to 9). Default: lookup asks the server, 8
    /// (the module's default) if it cannot tell
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..=i64::from(MAX_TOGGLE_BITS)))]
    pub max_toggle_bits: Option<u32>,
}

/// What a lookup returns.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Matching")]
pub struct Matching {
    /// Lookup threshold in [0, 1] (default: the server's)
    #[arg(short, long)]
    pub threshold: Option<f64>,
    /// Return at most this many matches per lookup
    #[arg(short, long)]
    pub limit: Option<u32>,
}

/// The files a command works on.
#[derive(Debug, Clone, Args)]
pub struct Files {
    /// Audio files or directories (walked recursively)
    pub paths: Vec<PathBuf>,
    /// Directory of audio files (walked recursively); may be repeated
    #[arg(short, long)]
    pub dir: Vec<PathBuf>,
    /// Files processed in parallel (default: all cores)
    #[arg(short, long)]
    pub jobs: Option<usize>,
}

impl Files {
    /// Every path given, `-d` directories first as the original took them.
    pub fn all_paths(&self) -> Vec<PathBuf> {
        self.dir.iter().chain(self.paths.iter()).cloned().collect()
    }
}

/// How results are printed.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Output")]
pub struct Output {
    /// Print one JSON object per line
    #[arg(long, conflicts_with = "csv")]
    pub json: bool,
    /// Print CSV
    #[arg(long)]
    pub csv: bool,
    /// No progress bar and no informational messages
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Args)]
pub struct AddArgs {
    #[command(flatten)]
    pub key: KeyArg,
    #[command(flatten)]
    pub files: Files,
    /// Index files even when a track of that name is already there
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub hashing: Hashing,
    #[command(flatten)]
    pub output: Output,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Clone, Args)]
pub struct DelArgs {
    #[command(flatten)]
    pub key: KeyArg,
    /// Track id to delete; may be repeated
    #[arg(short, long = "id", required = true)]
    pub ids: Vec<u64>,
    #[command(flatten)]
    pub output: Output,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Clone, Args)]
pub struct LookupArgs {
    #[command(flatten)]
    pub key: KeyArg,
    #[command(flatten)]
    pub files: Files,
    #[command(flatten)]
    pub matching: Matching,
    #[command(flatten)]
    pub toggles: Toggles,
    #[command(flatten)]
    pub hashing: Hashing,
    #[command(flatten)]
    pub output: Output,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Clone, Args)]
pub struct MonitorArgs {
    #[command(flatten)]
    pub key: KeyArg,
    /// Recordings: audio files, directories (walked recursively), http:// or
    /// https:// URLs (a file or an endless stream), or - for standard input
    /// (any container the client decodes, or raw PCM with --raw)
    pub sources: Vec<String>,
    /// Standard input is raw PCM: FORMAT:RATE[:CHANNELS], FORMAT one of u8,
    /// s16le, s16be, s24le, s32le, f32le (e.g. s16le:44100:2)
    #[arg(long, value_name = "FORMAT:RATE[:CHANNELS]")]
    pub raw: Option<String>,
    /// Dropouts shorter than this many seconds do not split a segment
    #[arg(long, default_value_t = 2.0)]
    pub gap: f64,
    /// A track last heard within this many seconds of its own end is
    /// reported to its end (a fade-out covered by noise or by the next
    /// track); 0 reports every end where the track was last heard
    #[arg(long, default_value_t = 5.0)]
    pub outro: f64,
    /// Seconds of audio per lookup
    #[arg(long, default_value_t = 4.0)]
    pub window: f64,
    /// A URL stream that drops is reconnected (backoff 0.5 s doubling to
    /// 30 s); give up after this many failed attempts in a row
    #[arg(long, default_value_t = 10)]
    pub max_retries: u32,
    /// A URL that sends nothing for this many seconds has dropped
    #[arg(long, default_value_t = 10.0)]
    pub stall: f64,
    /// Monitor the microphone (the default input device), live
    #[arg(long)]
    pub mic: bool,
    /// Monitor this capture device (e.g. an ALSA PCM name such as hw:1,0)
    #[arg(long, value_name = "NAME")]
    pub device: Option<String>,
    /// Lookup threshold in [0, 1] (default: the server's)
    #[arg(short, long)]
    pub threshold: Option<f64>,
    /// Sample rate the audio is hashed at (Hz); must be the one the index was built with
    #[arg(long, default_value_t = defaults::SAMPLE_RATE,
          value_parser = clap::value_parser!(u32).range(i64::from(defaults::SAMPLE_RATE)..))]
    pub sr: u32,
    #[command(flatten)]
    pub output: Output,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Clone, Args)]
pub struct HashCmdArgs {
    #[command(flatten)]
    pub files: Files,
    #[command(flatten)]
    pub toggles: Toggles,
    #[command(flatten)]
    pub hashing: Hashing,
    #[command(flatten)]
    pub output: Output,
}

/// A command that only needs the index: `count`, `size`.
#[derive(Debug, Clone, Args)]
pub struct KeyedArgs {
    #[command(flatten)]
    pub key: KeyArg,
    #[command(flatten)]
    pub output: Output,
    #[command(flatten)]
    pub connection: Connection,
}

impl Command {
    /// The output options of any command.
    pub fn output(&self) -> Output {
        match self {
            Command::Add(a) => a.output.clone(),
            Command::Del(a) => a.output.clone(),
            Command::Lookup(a) => a.output.clone(),
            Command::Monitor(a) => a.output.clone(),
            Command::Hash(a) => a.output.clone(),
            Command::Count(a) | Command::Size(a) => a.output.clone(),
            Command::List(a) => a.output.clone(),
            Command::Stats(a) => a.output.clone(),
            Command::Export(a) => a.output.clone(),
            Command::Import(a) => a.output.clone(),
            // Tables in Markdown; the answers go to --out as CSV.
            Command::Eval(a) => Output {
                json: false,
                csv: false,
                quiet: a.quiet,
            },
        }
    }
}

/// Options that take a value, so that [`reorder_args`] does not mistake a
/// value (`-k add`) for the command.
const VALUE_OPTIONS: &[&str] = &[
    "-k",
    "--key",
    "-s",
    "--server",
    "-p",
    "--port",
    "-u",
    "--url",
    "--shards",
    "-g",
    "--toggles",
    "--probe-budget",
    "--max-toggle-bits",
    "-t",
    "--threshold",
    "-l",
    "--limit",
    "--sr",
    "-n",
    "--nsecs",
    "-i",
    "--id",
    "-d",
    "--dir",
    "-j",
    "--jobs",
    "--raw",
    "--gap",
    "--window",
    "--max-retries",
    "--stall",
    "--queries",
    "--corpus",
    "--results",
    "--out",
    "--plot",
    "--name",
    "--cache",
    "--warps",
    "--fallback-min-score",
    "--ids",
    "--dump",
    "--dump-limit",
    "--unrelated",
    "--device",
];

/// Puts the command first, as clap wants it, whichever way the original
/// client was called: `-c CMD`, `--cmd CMD`, `--cmd=CMD`, or options before
/// the command (`auscoutclient -k K add DIR`).
pub fn reorder_args(args: Vec<OsString>) -> Vec<OsString> {
    let mut iter = args.into_iter();
    let Some(program) = iter.next() else {
        return Vec::new();
    };
    let rest: Vec<OsString> = iter.collect();
    let mut out = Vec::with_capacity(rest.len() + 1);
    let mut command = None;
    let mut i = 0;
    while i < rest.len() {
        let arg = &rest[i];
        let text = arg.to_str().unwrap_or("");
        if command.is_none() && (text == "-c" || text == "--cmd") && i + 1 < rest.len() {
            command = Some(rest[i + 1].clone());
            i += 2;
            continue;
        }
        if command.is_none() {
            if let Some(value) = text.strip_prefix("--cmd=") {
                command = Some(OsString::from(value));
                i += 1;
                continue;
            }
            if Command::NAMES.contains(&text) || text == "help" {
                command = Some(arg.clone());
                i += 1;
                continue;
            }
            if VALUE_OPTIONS.contains(&text) && i + 1 < rest.len() {
                out.push(arg.clone());
                out.push(rest[i + 1].clone());
                i += 2;
                continue;
            }
            if text == "--" {
                // Everything after `--` is a path; the command must come before.
                out.extend(rest[i..].iter().cloned());
                break;
            }
        }
        out.push(arg.clone());
        i += 1;
    }
    let mut args = vec![program];
    args.extend(command);
    args.extend(out);
    args
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(reorder_args(os(args)))
    }

    #[test]
    fn legacy_cmd_flag_becomes_the_subcommand() {
        let got = reorder_args(os(&["a", "-k", "x", "-c", "lookup", "-d", "dir"]));
        assert_eq!(got, os(&["a", "lookup", "-k", "x", "-d", "dir"]));
        let got = reorder_args(os(&["a", "--cmd=add", "-k", "x"]));
        assert_eq!(got, os(&["a", "add", "-k", "x"]));
        let got = reorder_args(os(&["a", "add", "-k", "x"]));
        assert_eq!(got, os(&["a", "add", "-k", "x"]));
    }

    #[test]
    fn options_before_the_command_still_work() {
        let got = reorder_args(os(&["a", "-k", "add", "lookup", "clip.wav"]));
        assert_eq!(got, os(&["a", "lookup", "-k", "add", "clip.wav"]));
        let cli = parse(&["a", "-k", "music", "lookup", "clip.wav", "-g", "2"]).expect("parses");
        let Command::Lookup(args) = &cli.command else {
            panic!("not lookup: {:?}", cli.command);
        };
        assert_eq!(args.key.key.as_deref(), Some("music"));
        assert_eq!(args.toggles.toggles, 2);
        assert_eq!(args.files.paths, vec![PathBuf::from("clip.wav")]);
        let cli = parse(&["a", "-d", "dir", "add", "x.wav"]).expect("parses");
        let Command::Add(args) = &cli.command else {
            panic!("not add: {:?}", cli.command);
        };
        let want = vec![PathBuf::from("dir"), PathBuf::from("x.wav")];
        assert_eq!(args.files.all_paths(), want);
    }

    #[test]
    fn a_path_named_like_a_command_after_the_command_is_a_path() {
        let cli = parse(&["a", "lookup", "-k", "m", "add"]).expect("parses");
        let Command::Lookup(args) = &cli.command else {
            panic!("not lookup: {:?}", cli.command);
        };
        assert_eq!(args.files.paths, vec![PathBuf::from("add")]);
    }

    #[test]
    fn each_command_takes_only_its_own_options() {
        assert!(parse(&["a", "lookup", "--force", "x.wav"]).is_err());
        assert!(parse(&["a", "lookup", "-i", "3", "x.wav"]).is_err());
        assert!(parse(&["a", "add", "-g", "3", "x.wav"]).is_err());
        assert!(parse(&["a", "add", "-t", "0.3", "x.wav"]).is_err());
        assert!(parse(&["a", "hash", "-k", "m", "x.wav"]).is_err());
        assert!(parse(&["a", "hash", "--cluster", "x.wav"]).is_err());
        assert!(parse(&["a", "count", "--sr", "8000", "-k", "m"]).is_err());
        assert!(parse(&["a", "del", "-k", "m", "x.wav"]).is_err());
        assert!(parse(&["a", "del", "-k", "m"]).is_err(), "del needs an id");
        assert!(parse(&["a", "del", "-k", "m", "-i", "4", "-i", "5"]).is_ok());
    }

    #[test]
    fn default_toggles_are_the_library_defaults() {
        // The eval harness measures accuracy with `HashOptions::default()`;
        // `lookup` must send the same toggles.
        let lib = auscout_fingerprint::HashOptions::default();
        let toggles = |args: &[&str]| match parse(args).expect("parses").command {
            Command::Lookup(a) => a.toggles,
            other => panic!("not lookup: {other:?}"),
        };
        let t = toggles(&["a", "lookup", "x.wav"]);
        assert_eq!(t.toggles, lib.toggle_bits);
        assert_eq!(t.probe_budget, lib.probe_budget);
        // Not given: `lookup` asks the server for its cap.
        assert_eq!(t.max_toggle_bits, None);
        assert_eq!(
            toggles(&["a", "lookup", "--probe-budget", "0", "x"]).probe_budget,
            0
        );
        let t = toggles(&["a", "lookup", "--max-toggle-bits", "9", "x"]);
        assert_eq!(t.max_toggle_bits, Some(9));
    }

    #[test]
    fn out_of_range_values_are_refused() {
        assert!(parse(&["a", "lookup", "-g", "9"]).is_err());
        assert!(parse(&["a", "lookup", "--max-toggle-bits", "10"]).is_err());
        assert!(parse(&["a", "hash", "--sr", "5000"]).is_err());
        assert!(parse(&["a", "add", "--shards", "0"]).is_err());
        assert!(parse(&["a", "lookup", "--json", "--csv"]).is_err());
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
