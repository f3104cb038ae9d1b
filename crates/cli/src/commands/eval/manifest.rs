//! The files `eval` reads: the query manifest, a results file, and the
//! ids an `add` run printed. All are CSV (RFC 4180 quoting) or plain lines.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use auscout_core::TrackId;

/// One clip of the query manifest.
#[derive(Debug, Clone)]
pub struct Query {
    /// The clip's path, as the results file names it.
    pub clip: String,
    /// `pos`: a clip of an indexed track; anything else: unrelated audio
    /// that must match nothing.
    pub positive: bool,
    /// The file name of the track the clip was cut from (positives).
    pub track: String,
    /// Where in the track the clip starts, in seconds (positives).
    pub offset_s: Option<f64>,
    /// The clip's length in seconds, as the manifest writes it.
    pub length: String,
    pub distortion: String,
}

impl Query {
    /// The clip's length in seconds (0 when the manifest's is not a number).
    pub fn seconds(&self) -> f64 {
        self.length.parse().unwrap_or(0.0)
    }
}

/// One clip's answer: the best match, or none.
#[derive(Debug, Clone, Default)]
pub struct Answer {
    /// The file name of the best track, empty for no match.
    pub matched: String,
    /// Where the clip starts in that track, in seconds.
    pub offset_s: Option<f64>,
    pub score: Option<f64>,
    /// Time of the lookups, when known.
    pub ms: Option<f64>,
}

/// Reads a query manifest: columns `clip,kind,track,offset_s,length_s,distortion`
/// in any order, more columns allowed.
pub fn read_queries(path: &Path) -> Result<Vec<Query>, String> {
    let table = Table::read(path)?;
    let (clip, kind, len) = (
        table.col("clip")?,
        table.col("kind")?,
        table.col("length_s")?,
    );
    let (track, off, dist) = (
        table.col("track")?,
        table.col("offset_s")?,
        table.col("distortion")?,
    );
    Ok(table
        .rows
        .iter()
        .map(|r| Query {
            clip: Table::get(r, clip),
            positive: Table::get(r, kind) == "pos",
            track: Table::get(r, track),
            offset_s: Table::get(r, off).parse().ok(),
            length: Table::get(r, len),
            distortion: Table::get(r, dist),
        })
        .collect())
}

/// Reads a results file: columns `clip,match` and optionally `offset_s`,
/// `score`, `ms` (what `lookup --csv` prints). Keyed by clip; a clip
/// listed twice keeps its last line.
pub fn read_results(path: &Path) -> Result<HashMap<String, Answer>, String> {
    let table = Table::read(path)?;
    let (clip, matched) = (table.col("clip")?, table.col("match")?);
    let optional = |name: &str| table.col(name).ok();
    let (off, score, ms) = (optional("offset_s"), optional("score"), optional("ms"));
    let number = |r: &[String], c: Option<usize>| c.and_then(|c| Table::get(r, c).parse().ok());
    Ok(table
        .rows
        .iter()
        .map(|r| {
            let answer = Answer {
                matched: Table::get(r, matched),
                offset_s: number(r, off),
                score: number(r, score),
                ms: number(r, ms),
            };
            (Table::get(r, clip), answer)
        })
        .collect())
}

/// `PATH: id N` lines of `auscoutclient add` output, as path → id.
pub fn read_ids(path: &Path) -> Result<HashMap<PathBuf, TrackId>, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| {
            let (file, id) = l.rsplit_once(": id ")?;
            Some((PathBuf::from(file), id.trim().parse().ok()?))
        })
        .collect())
}

/// A CSV file with a header line.
struct Table {
    path: PathBuf,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    fn read(path: &Path) -> Result<Table, String> {
        let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut lines = text.lines().filter(|l| !l.trim().is_empty());
        let header = split_csv(
            lines
                .next()
                .ok_or_else(|| format!("{}: empty file", path.display()))?,
        );
        Ok(Table {
            path: path.to_owned(),
            header,
            rows: lines.map(split_csv).collect(),
        })
    }

    fn col(&self, name: &str) -> Result<usize, String> {
        self.header
            .iter()
            .position(|h| h.trim() == name)
            .ok_or_else(|| format!("{}: no column {name}", self.path.display()))
    }

    fn get(row: &[String], col: usize) -> String {
        row.get(col).cloned().unwrap_or_default()
    }
}

/// Splits one CSV line (double-quoted fields with `""` escapes).
fn split_csv(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        let Some(cur) = out.last_mut() else { break };
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(String::new()),
            _ => cur.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_lines_split_with_quotes() {
        assert_eq!(split_csv("a,b,,c"), ["a", "b", "", "c"]);
        assert_eq!(
            split_csv("\"a,b\",\"say \"\"hi\"\"\""),
            ["a,b", "say \"hi\""]
        );
    }

    #[test]
    fn results_read_by_column_name() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("r.csv");
        fs::write(&path, "ms,clip,match\n1.5,\"x,1.wav\",t.ogg\n,y.wav,\n").expect("write");
        let r = read_results(&path).expect("reads");
        assert_eq!(r["x,1.wav"].matched, "t.ogg");
        assert_eq!(r["x,1.wav"].ms, Some(1.5));
        assert_eq!(r["y.wav"].matched, "");
        assert_eq!(r["y.wav"].offset_s, None);
        fs::write(&path, "clip,score\nx.wav,1\n").expect("write");
        let e = read_results(&path).expect_err("no match column");
        assert!(e.ends_with("no column match"), "{e}");
    }
}
