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
    let cli = match Cli::try_parse_from(legacy_command_args(std::env::args_os().collect())) {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let format = if cli.opts.json {
        Format::Json
    } else if cli.opts.csv {
        Format::Csv
    } else {
        Format::Plain
    };
    let out = Reporter::new(format, cli.opts.quiet);
    if let Err(fatal) = commands::run(&cli.command, &cli.opts, &out) {
        out.error(&fatal.0);
    }
    if out.failures() > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Help and version go out as clap renders them; a usage error is one line
/// (clap's first), exit status 2.
fn usage_error(e: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let rendered = e.render().to_string();
    let first = rendered
        .lines()
        .next()
        .unwrap_or("bad arguments")
        .trim_start_matches("error: ");
    eprintln!("auscoutclient: {first} (see --help)");
    ExitCode::from(2)
}
