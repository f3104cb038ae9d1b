//! Turns the paths on the command line into the list of files to process:
//! files as given, directories walked recursively for audio files.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

/// Extensions of the formats the decoder reads; other files in a walked
/// directory (cover art, playlists, text) are left alone. A file named on
/// the command line is tried whatever its extension.
const AUDIO_EXTENSIONS: &[&str] = &[
    "wav", "wave", "flac", "mp3", "mp2", "ogg", "oga", "opus", "m4a", "m4b", "mp4", "aac", "aif",
    "aiff", "aifc", "caf", "mka", "mkv", "webm",
];

/// A path that could not be used, with the reason.
#[derive(Debug)]
pub struct WalkError {
    pub path: PathBuf,
    pub message: String,
}

/// Files to process, in command-line order and sorted within each directory,
/// and the paths that could not be read.
pub fn collect(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<WalkError>) {
    let mut files = Vec::new();
    let mut errors = Vec::new();
    let mut seen_dirs = HashSet::new();
    for path in paths {
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => walk_dir(path, &mut seen_dirs, &mut files, &mut errors),
            Ok(_) => files.push(path.clone()),
            Err(e) => errors.push(WalkError {
                path: path.clone(),
                message: describe(&e),
            }),
        }
    }
    (files, errors)
}

fn walk_dir(
    dir: &Path,
    seen: &mut HashSet<PathBuf>,
    files: &mut Vec<PathBuf>,
    errors: &mut Vec<WalkError>,
) {
    // Symlinked directories are followed, but each real directory once, so
    // a link loop cannot recurse forever.
    match std::fs::canonicalize(dir) {
        Ok(real) => {
            if !seen.insert(real) {
                return;
            }
        }
        Err(e) => {
            errors.push(WalkError {
                path: dir.to_owned(),
                message: describe(&e),
            });
            return;
        }
    }
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            errors.push(WalkError {
                path: dir.to_owned(),
                message: describe(&e),
            });
            return;
        }
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    paths.sort();
    for path in paths {
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_dir() => walk_dir(&path, seen, files, errors),
            Ok(meta) if meta.is_file() && is_audio(&path) => files.push(path),
            Ok(_) => {}
            // A dangling symlink inside a folder is not worth failing for.
            Err(_) => {}
        }
    }
}

fn is_audio(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| AUDIO_EXTENSIONS.iter().any(|a| a.eq_ignore_ascii_case(e)))
}

fn describe(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_recursively_keeping_audio_files_sorted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir_all(root.join("b/c")).expect("mkdir");
        for f in [
            "b/c/z.flac",
            "b/a.MP3",
            "b/o.opus",
            "cover.jpg",
            "a.wav",
            "notes.txt",
        ] {
            std::fs::write(root.join(f), b"x").expect("write");
        }
        let given = root.join("notes.txt");
        let missing = root.join("missing.wav");
        let (files, errors) = collect(&[root.to_owned(), given.clone(), missing.clone()]);
        let expected = vec![
            root.join("a.wav"),
            root.join("b/a.MP3"),
            root.join("b/c/z.flac"),
            root.join("b/o.opus"),
            given,
        ];
        assert_eq!(files, expected);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, missing);
        assert_eq!(errors[0].message, "no such file or directory");
    }

    #[cfg(unix)]
    #[test]
    fn symlink_loops_end() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path();
        std::fs::create_dir(root.join("d")).expect("mkdir");
        std::fs::write(root.join("d/x.ogg"), b"x").expect("write");
        std::os::unix::fs::symlink(root, root.join("d/loop")).expect("symlink");
        let (files, errors) = collect(&[root.to_owned()]);
        assert_eq!(files, vec![root.join("d/x.ogg")]);
        assert!(errors.is_empty());
    }
}
