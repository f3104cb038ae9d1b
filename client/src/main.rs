//! `auscoutclient`: index audio files in Redis and recognise clips of them.
//! A thin CLI over the `auscoutclient` library; see `--help`.
//!
//! Exit status: 0 when everything worked, 1 when anything failed (a file, a
//! path, the server), 2 for a usage error.

mod cli;
mod commands;
mod output;
mod walk;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{legacy_command_args, Cli};
use crate::output::{Format, Reporter};

fn main() -> ExitCode {
    let cli = Cli::parse_from(legacy_command_args(std::env::args_os().collect()));
    let format = if cli.opts.json {
        Format::Json
    } else if cli.opts.csv {
        Format::Csv
    } else {
        Format::Plain
    };
    let out = Reporter::new(format, cli.opts.quiet);
    if let Err(fatal) = commands::run(cli.command, &cli.opts, &out) {
        out.error(&fatal.0);
    }
    if out.failures() > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
