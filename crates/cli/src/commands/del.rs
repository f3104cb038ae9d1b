//! `del`: delete tracks by id.

use auscout_client::store::Access;

use super::{open, Fatal};
use crate::args::DelArgs;
use crate::output::{Format, Reporter};

/// Deletes every id given; an id that fails is reported and the others go on.
pub fn run(args: &DelArgs, out: &Reporter) -> Result<(), Fatal> {
    let store = open(&args.connection, &args.key, Access::Read)?;
    for &id in &args.ids {
        match store.delete(id) {
            Ok(frames) => out.result(&match out.format {
                Format::Json => format!("{{\"id\":{id},\"frames\":{frames}}}"),
                Format::Csv | Format::Plain => format!("deleted id {id}: {frames} frames"),
            }),
            Err(e) => out.error(&format!("id {id}: {e}")),
        }
    }
    Ok(())
}
