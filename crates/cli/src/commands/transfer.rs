//! `export KEY FILE` and `import FILE KEY`: an index to a portable file and
//! back (the library's `dump`: versioned, compressed, checksummed; an import
//! checks the whole file before writing anything and puts the index in
//! place at once).

use std::time::Instant;

use auscout_client::dump::{self, ImportOptions};
use auscout_client::shard::Layout;
use auscout_client::store::Access;

use super::{endpoint, open_key, Fatal};
use crate::args::{ExportArgs, ImportArgs};
use crate::output::{Format, Reporter};

pub fn export(args: &ExportArgs, out: &Reporter) -> Result<(), Fatal> {
    let store = open_key(&args.connection, &args.key, Access::Read)?;
    let start = Instant::now();
    let report = dump::export(&store, &args.file, &|_, _| {})?;
    let secs = start.elapsed().as_secs_f64();
    out.result(&match out.format {
        Format::Json => format!(
            "{{\"key\":{},\"file\":{},\"shards\":{},\"tracks\":{},\"frames\":{},\"seconds\":{secs:.2}}}",
            json_str(&args.key),
            json_str(&args.file.display().to_string()),
            report.shards,
            report.tracks,
            report.frames
        ),
        Format::Csv | Format::Plain => format!(
            "exported {}: {} tracks, {} frames{} to {} in {secs:.1} s",
            args.key,
            report.tracks,
            report.frames,
            shards_note(report.shards),
            args.file.display()
        ),
    });
    if report.vanished > 0 {
        out.info(&format!(
            "{} tracks were deleted while the export ran and are not in the file",
            report.vanished
        ));
    }
    Ok(())
}

pub fn import(args: &ImportArgs, out: &Reporter) -> Result<(), Fatal> {
    if args.key.is_empty() {
        return Err(Fatal("the key is empty".to_owned()));
    }
    if args.connection.shards.is_some() {
        return Err(Fatal(
            "import keeps the file's shards (so the ids stay the same); --shards does not apply"
                .to_owned(),
        ));
    }
    let start = Instant::now();
    let report = dump::import(
        endpoint(&args.connection)?,
        &args.key,
        &args.file,
        ImportOptions {
            replace: args.replace,
        },
        &|_, _| {},
    )?;
    let secs = start.elapsed().as_secs_f64();
    let shards = report.layout.shard_count();
    let keys = match &report.layout {
        Layout::Single { key } => key.clone(),
        Layout::Sharded { .. } => report.layout.keys().join(" "),
    };
    out.result(&match out.format {
        Format::Json => format!(
            "{{\"key\":{},\"file\":{},\"shards\":{shards},\"tracks\":{},\"frames\":{},\"replaced\":{},\"seconds\":{secs:.2}}}",
            json_str(&args.key),
            json_str(&args.file.display().to_string()),
            report.tracks,
            report.frames,
            report.replaced
        ),
        Format::Csv | Format::Plain => format!(
            "imported {} tracks, {} frames into {}{}{} in {secs:.1} s",
            report.tracks,
            report.frames,
            args.key,
            shards_note(shards),
            if report.replaced { ", replacing the index there" } else { "" },
        ),
    });
    if shards > 1 {
        out.info(&format!("keys: {keys}"));
    }
    Ok(())
}

fn shards_note(shards: u32) -> String {
    if shards > 1 {
        format!(" ({shards} shards)")
    } else {
        String::new()
    }
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}
