//! `auscoutclient`: index audio files in Redis and recognise clips of them.
//! A thin CLI over the `auscoutclient` library; see `--help`.
//!
//! Exit status: 0 when everything worked, 1 when anything failed (a file, a
//! path, the server), 2 for a usage error.

#![forbid(unsafe_code)]

mod args;
mod commands;
mod output;
mod walk;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{reorder_args, Cli};
use crate::output::{Format, Reporter};

fn main() -> ExitCode {
    let cli = match Cli::try_parse_from(reorder_args(std::env::args_os().collect())) {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let output = cli.command.output();
    let format = if output.json {
        Format::Json
    } else if output.csv {
        Format::Csv
    } else {
        Format::Plain
    };
    let out = Reporter::new(format, output.quiet);
    if let Err(fatal) = commands::run(&cli.command, &out) {
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
    // clap's message is its first line, or, when that ends with a colon
    // ("required arguments were not provided:"), the lines that follow up
    // to the usage line.
    let rendered = e.render().to_string();
    let mut lines = rendered.lines().map(str::trim).filter(|l| !l.is_empty());
    let mut message = lines
        .next()
        .unwrap_or("bad arguments")
        .trim_start_matches("error: ")
        .to_owned();
    if message.ends_with(':') {
        for more in lines.take_while(|l| !l.starts_with("Usage:")) {
            message.push(' ');
            message.push_str(more);
        }
    }
    eprintln!("auscoutclient: {message} (see --help)");
    ExitCode::from(2)
}
