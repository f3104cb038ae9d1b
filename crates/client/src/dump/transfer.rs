//! Export and import against a server or a cluster.
//!
//! Ids survive the trip because the shape of the index does: an index of
//! `N` shards is imported as `N` shards, track by track onto the shard and
//! the shard-local id it had, so the ids a user sees (`local × N + shard`)
//! are the same. On a cluster the shards' hash tags are chosen for the
//! target's masters, on a single server they are `0..N-1`; an unsharded
//! index stays one key.
//!
//! An import writes nothing until the whole file has been read and checked.
//! It then builds each shard under a temporary key in the same cluster slot
//! as its final key and only at the end renames them into place: on a
//! single server the renames, the removal of a replaced index and the
//! layout record happen in one `MULTI`/`EXEC`; on a cluster each shard's
//! rename is atomic and the layout record `KEY{meta}` (which makes a
//! sharded index visible) is written last. A failure before that removes
//! the temporary keys.

use std::path::PathBuf;

use redis::Cmd;

use super::format::FormatError;
use crate::error::ClientError;
use crate::reply;
use crate::shard::Layout;
use crate::store::Store;

mod from_file;
mod to_file;

pub use from_file::import;
pub use to_file::export;

/// Frames per `auscout.hashes` reply and per import command (1 MiB of
/// hashes in the wire format): long tracks go in several.
const CHUNK_FRAMES: usize = 1 << 18;

#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("{}: {source}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: FormatError,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("there is no index at {0}")]
    NoIndex(String),
    #[error("index {key} already exists ({tracks} tracks); import into a new key, or replace it with --replace")]
    Exists { key: String, tracks: i64 },
    #[error("import into {key} failed, nothing was imported: {detail}")]
    Failed { key: String, detail: String },
}

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportReport {
    pub shards: u32,
    pub tracks: u64,
    pub frames: u64,
    /// Tracks listed but deleted before their hashes were read.
    pub vanished: u64,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub layout: Layout,
    pub tracks: u64,
    pub frames: u64,
    /// An existing index was replaced.
    pub replaced: bool,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ImportOptions {
    /// Replace an index that exists under the key (else refuse).
    pub replace: bool,
}

/// Which of `keys` exist.
fn exists(store: &Store, keys: &[String]) -> Result<Vec<bool>, ClientError> {
    let cmds: Vec<Cmd> = keys.iter().map(|k| one("EXISTS", k)).collect();
    Ok(store
        .commands(&cmds)?
        .iter()
        .map(|v| reply::integer(v).is_ok_and(|n| n > 0))
        .collect())
}

fn one(command: &str, key: &str) -> Cmd {
    let mut cmd = redis::cmd(command);
    cmd.arg(key);
    cmd
}

fn reply_error(command: &'static str, detail: String) -> DumpError {
    DumpError::Client(crate::error::bad_reply(command, detail))
}
