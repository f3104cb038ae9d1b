//! Moving a whole index in and out of Redis: `export` writes it to a
//! portable file ([`format`]: versioned, compressed, checksummed) with its
//! ids, descriptions and hashes; `import` checks a whole file before it
//! writes anything, builds the index under temporary keys and renames them
//! into place at the end, so readers see no index or all of it.

pub mod format;
mod transfer;

pub use transfer::{export, import, DumpError, ExportReport, ImportOptions, ImportReport};
