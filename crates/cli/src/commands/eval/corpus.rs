//! The corpus, indexed in memory in the module's own engine
//! ([`auscout_core::Index`]): what a server would hold after `add`, without
//! Redis, so a matcher change is measured in seconds.

use std::fs;
use std::path::{Path, PathBuf};

use auscout_core::matcher::FrameSource;
use auscout_core::{Index, TrackId};
use auscout_fingerprint::HashOptions;

use super::cache::fingerprint_all;
use super::manifest::read_ids;

/// The indexed corpus: track `k` (0-based, in insertion order) has id
/// `k + 1`, the file name `names[k]` and the audio file `files[k]`.
#[derive(Default)]
pub struct Corpus {
    pub index: Index,
    pub names: Vec<String>,
    pub files: Vec<PathBuf>,
}

impl Corpus {
    /// Fingerprints every file of `dir` with `opts` and indexes it. Files go
    /// in file-name order, or in the order (and so with the ids) of the
    /// `add` output `ids`, when given; files that add run did not list come
    /// last. A file that cannot be decoded is reported and left out.
    pub fn build(
        dir: &Path,
        ids: Option<&Path>,
        opts: &HashOptions,
        cache: Option<&Path>,
        skipped: &dyn Fn(&Path, &str),
    ) -> Result<Corpus, String> {
        let mut files: Vec<PathBuf> = fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        if let Some(ids) = ids {
            let ids = read_ids(ids)?;
            files.sort_by_key(|f| ids.get(f).copied().unwrap_or(TrackId::MAX));
        }
        let mut corpus = Corpus::default();
        for (path, fp) in files.iter().zip(fingerprint_all(&files, opts, cache)) {
            match fp {
                Ok(fp) => {
                    let name = file_name(path);
                    let id = corpus.names.len() as TrackId + 1;
                    corpus
                        .index
                        .insert(Some(id), name.as_bytes(), &fp.hashes)
                        .map_err(|e| format!("{name}: {e}"))?;
                    corpus.names.push(name);
                    corpus.files.push(path.clone());
                }
                Err(e) => skipped(path, &e),
            }
        }
        if corpus.names.is_empty() {
            return Err(format!("{}: no audio file could be indexed", dir.display()));
        }
        Ok(corpus)
    }

    /// The file name of track `id`, empty for an unknown id.
    pub fn name(&self, id: TrackId) -> &str {
        usize::try_from(id.wrapping_sub(1))
            .ok()
            .and_then(|i| self.names.get(i))
            .map_or("", String::as_str)
    }

    pub fn hashes_of(&self, id: TrackId) -> &[u32] {
        self.index.track(id).map_or(&[], |t| t.hashes)
    }

    /// The ids of every track whose group (the file name before `__`: one
    /// game's soundtrack, which reuses its own material) is `group`.
    pub fn group_ids(&self, group: &str) -> Vec<TrackId> {
        (1..=self.names.len() as TrackId)
            .filter(|&id| group_of(self.name(id)) == group)
            .collect()
    }
}

/// The group of a track's file name: what comes before `__`.
pub fn group_of(name: &str) -> &str {
    name.split("__").next().unwrap_or_default()
}

pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

impl FrameSource for Corpus {
    fn probe(&self, probes: &[u32], hit: &mut dyn FnMut(usize, u32, u32)) {
        FrameSource::probe(&self.index, probes, hit)
    }
    fn hashes(&self, slot: u32) -> &[u32] {
        FrameSource::hashes(&self.index, slot)
    }
    fn id(&self, slot: u32) -> TrackId {
        FrameSource::id(&self.index, slot)
    }
}

/// The corpus with some tracks hidden: unrelated audio for the tracks it
/// was cut from.
pub struct Hiding<'a> {
    pub src: &'a Corpus,
    pub hidden: Vec<TrackId>,
}

impl FrameSource for Hiding<'_> {
    fn probe(&self, probes: &[u32], hit: &mut dyn FnMut(usize, u32, u32)) {
        self.src.probe(probes, &mut |i, slot, pos| {
            if !self.hidden.contains(&self.src.id(slot)) {
                hit(i, slot, pos);
            }
        });
    }
    fn hashes(&self, slot: u32) -> &[u32] {
        self.src.hashes(slot)
    }
    fn id(&self, slot: u32) -> TrackId {
        self.src.id(slot)
    }
}
