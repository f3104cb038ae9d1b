//! Options of the commands that look at or move a whole index: `list`,
//! `stats`, `export`, `import`.

use std::path::PathBuf;

use clap::Args;

use super::{Connection, KeyArg, Output};

#[derive(Debug, Clone, Args)]
pub struct ListArgs {
    #[command(flatten)]
    pub key: KeyArg,
    /// Start at this cursor (0: the first track; a listing cut short by
    /// --count says where it stopped)
    #[arg(long, default_value_t = 0)]
    pub cursor: u64,
    /// List at most this many tracks (default: all)
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    #[command(flatten)]
    pub output: Output,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Clone, Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub key: KeyArg,
    #[command(flatten)]
    pub output: Output,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Redis key of the index to export
    #[arg(value_name = "KEY")]
    pub key: String,
    /// The file to write (replaced only once it is complete)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    #[command(flatten)]
    pub output: Output,
    #[command(flatten)]
    pub connection: Connection,
}

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// The file `export` wrote
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Redis key of the index to create
    #[arg(value_name = "KEY")]
    pub key: String,
    /// Replace an index that already exists under KEY (default: refuse)
    #[arg(long)]
    pub replace: bool,
    #[command(flatten)]
    pub output: Output,
    #[command(flatten)]
    pub connection: Connection,
}
