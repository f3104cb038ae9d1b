//! `hash`: fingerprint files and print their hashes, without Redis.

use auscout_fingerprint::pipeline::fingerprint_file;

use super::{audio_seconds, files, for_each_file, hash_options, Fatal};
use crate::args::HashCmdArgs;
use crate::output::{json_line, Format, JsonHash, Reporter};

pub fn run(args: &HashCmdArgs, out: &Reporter) -> Result<(), Fatal> {
    let files = files(&args.files, out)?;
    let hopts = hash_options(&args.hashing, Some(&args.toggles));
    for_each_file(&files, out, |path| match fingerprint_file(path, &hopts) {
        Ok(fp) => {
            let shown = path.display().to_string();
            let line = match out.format {
                Format::Json => json_line(&JsonHash {
                    file: &shown,
                    sr: fp.sr,
                    hashes: &fp.hashes,
                    toggles: &fp.toggles,
                }),
                Format::Csv | Format::Plain => {
                    format!(
                        "{shown}: {} hashes, {:.2} s at {} Hz",
                        fp.hashes.len(),
                        audio_seconds(&fp),
                        fp.sr
                    )
                }
            };
            out.result(&line);
        }
        Err(e) => out.file_error(path, &e.to_string()),
    });
    Ok(())
}
