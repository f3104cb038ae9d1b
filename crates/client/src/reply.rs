//! Decoding the module's replies (docs/design.md §3) from `redis::Value`s. Pure, so
//! the odd shapes a server may send (RESP2 bulk-string scores, RESP3 doubles)
//! are unit-tested without a server.

use redis::Value;

/// One match as a shard reports it (ids are shard-local).
#[derive(Debug, Clone, PartialEq)]
pub struct ShardMatch {
    pub descr: String,
    pub id: u64,
    pub position: i64,
    pub score: f64,
    /// The clip's speed relative to the track, when the lookup asked for it
    /// (`WITHSPEED`).
    pub speed: Option<f64>,
}

/// One page of `auscout.list`: the cursor to continue from (`None` when
/// done) and the descriptions of the tracks on the page.
#[derive(Debug, Clone, PartialEq)]
pub struct ListPage {
    pub next: Option<String>,
    pub descrs: Vec<String>,
}

/// `auscout.lookup`: an array of `[descr, id, position, score]`, each with
/// a fifth field, the speed, after `WITHSPEED`.
pub fn matches(value: Value) -> Result<Vec<ShardMatch>, String> {
    let items = match value {
        Value::Array(items) | Value::Set(items) => items,
        Value::Nil => return Ok(Vec::new()),
        other => return Err(format!("expected an array, got {}", kind(&other))),
    };
    items.into_iter().map(one_match).collect()
}

fn one_match(value: Value) -> Result<ShardMatch, String> {
    let fields = match value {
        Value::Array(fields) => fields,
        other => return Err(format!("expected a match array, got {}", kind(&other))),
    };
    let mut fields = fields.into_iter();
    let (Some(descr), Some(id), Some(position), Some(score), speed, None) = (
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
        fields.next(),
    ) else {
        return Err("a match has neither 4 nor 5 fields".to_owned());
    };
    let id = integer(&id)?;
    Ok(ShardMatch {
        descr: text(descr)?,
        id: u64::try_from(id).map_err(|_| format!("negative track id {id}"))?,
        position: integer(&position)?,
        score: float(&score)?,
        speed: speed.as_ref().map(float).transpose()?,
    })
}

/// One track of an `auscout.list` page, with its shard-local id.
#[derive(Debug, Clone, PartialEq)]
pub struct ListEntry {
    pub id: u64,
    pub descr: String,
    pub frames: u64,
}

/// `auscout.hashes`: `[frames, hasharray]`, the track's length in frames and
/// the requested hashes (an empty string past the track's end).
pub fn track_hashes(value: Value) -> Result<(u64, Vec<u32>), String> {
    let fields = match value {
        Value::Array(fields) => fields,
        other => return Err(format!("expected [frames, hashes], got {}", kind(&other))),
    };
    let [frames, hashes] = <[Value; 2]>::try_from(fields)
        .map_err(|f| format!("expected [frames, hashes], got {} fields", f.len()))?;
    let frames = integer(&frames)?;
    let frames = u64::try_from(frames).map_err(|_| format!("negative frame count {frames}"))?;
    let bytes = match hashes {
        Value::BulkString(bytes) => bytes,
        other => return Err(format!("expected a hash array, got {}", kind(&other))),
    };
    if bytes.is_empty() {
        return Ok((frames, Vec::new()));
    }
    let hashes = auscout_core::wire::decode_u32_be(&bytes).map_err(|e| e.to_string())?;
    Ok((frames, hashes))
}

/// `auscout.list key cursor COUNT n`: `[next_cursor, [[id, descr, frames], …]]`,
/// the cursor `0` when the listing is complete. Returns the next cursor (0
/// at the end) and the tracks.
pub fn list_entries(value: Value) -> Result<(u64, Vec<ListEntry>), String> {
    let fields = match value {
        Value::Array(fields) => fields,
        other => return Err(format!("expected [cursor, tracks], got {}", kind(&other))),
    };
    let [cursor, tracks] = <[Value; 2]>::try_from(fields)
        .map_err(|f| format!("expected [cursor, tracks], got {} fields", f.len()))?;
    let cursor = integer(&cursor)?;
    let cursor = u64::try_from(cursor).map_err(|_| format!("negative cursor {cursor}"))?;
    let tracks = match tracks {
        Value::Array(tracks) => tracks,
        other => return Err(format!("expected an array of tracks, got {}", kind(&other))),
    };
    let entries = tracks
        .into_iter()
        .map(|t| {
            let fields = match t {
                Value::Array(fields) => fields,
                other => return Err(format!("expected a track entry, got {}", kind(&other))),
            };
            let [id, descr, frames] = <[Value; 3]>::try_from(fields)
                .map_err(|f| format!("a track entry has {} fields, expected 3", f.len()))?;
            let (id, frames) = (integer(&id)?, integer(&frames)?);
            Ok(ListEntry {
                id: u64::try_from(id).map_err(|_| format!("negative track id {id}"))?,
                descr: text(descr)?,
                frames: u64::try_from(frames).map_err(|_| format!("negative frames {frames}"))?,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((cursor, entries))
}

/// [`list_entries`] as the descriptions and the next cursor (`None` when done).
pub fn list_page(value: Value) -> Result<ListPage, String> {
    let (cursor, entries) = list_entries(value)?;
    Ok(ListPage {
        next: (cursor != 0).then(|| cursor.to_string()),
        descrs: entries.into_iter().map(|e| e.descr).collect(),
    })
}

/// An integer reply (also accepted as a numeric string).
pub fn integer(value: &Value) -> Result<i64, String> {
    match value {
        Value::Int(i) => Ok(*i),
        Value::BulkString(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| "expected an integer, got a non-numeric string".to_owned()),
        Value::SimpleString(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("expected an integer, got {s:?}")),
        other => Err(format!("expected an integer, got {}", kind(other))),
    }
}

/// The value of a one-parameter `CONFIG GET` reply (`[name, value]` in
/// RESP2, a map in RESP3) as a `u32`; `None` for anything else (the
/// parameter unknown, so an empty reply).
pub fn config_u32(value: &Value) -> Option<u32> {
    let v = match value {
        Value::Array(pair) => pair.get(1)?,
        Value::Map(pairs) => &pairs.first()?.1,
        _ => return None,
    };
    u32::try_from(integer(v).ok()?).ok()
}

/// A score: a RESP3 double, or a RESP2 bulk string holding one.
pub fn float(value: &Value) -> Result<f64, String> {
    let parsed = match value {
        Value::Double(d) => Some(*d),
        Value::Int(i) => Some(*i as f64),
        Value::BulkString(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.trim().parse().ok()),
        Value::SimpleString(s) => s.trim().parse().ok(),
        _ => None,
    };
    match parsed {
        Some(f) if f.is_finite() => Ok(f),
        _ => Err(format!("expected a score, got {}", kind(value))),
    }
}

/// A description: bytes, shown lossily if they are not UTF-8.
pub fn text(value: Value) -> Result<String, String> {
    match value {
        Value::BulkString(b) => Ok(String::from_utf8(b)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())),
        Value::SimpleString(s) | Value::VerbatimString { text: s, .. } => Ok(s),
        other => Err(format!("expected a string, got {}", kind(&other))),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Nil => "nil",
        Value::Int(_) => "an integer",
        Value::BulkString(_) | Value::SimpleString(_) | Value::VerbatimString { .. } => "a string",
        Value::Array(_) | Value::Set(_) => "an array",
        Value::Map(_) => "a map",
        Value::Double(_) => "a double",
        Value::Okay => "OK",
        _ => "an unexpected value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn config_values_in_resp2_and_resp3() {
        let name = bulk("auscout.max-toggle-bits");
        assert_eq!(
            config_u32(&Value::Array(vec![name.clone(), bulk("9")])),
            Some(9)
        );
        assert_eq!(
            config_u32(&Value::Map(vec![(name.clone(), bulk("8"))])),
            Some(8)
        );
        assert_eq!(config_u32(&Value::Array(vec![])), None);
        assert_eq!(config_u32(&Value::Array(vec![name, bulk("x")])), None);
    }

    #[test]
    fn matches_accept_string_and_double_scores() {
        let reply = Value::Array(vec![
            Value::Array(vec![
                bulk("a.wav"),
                Value::Int(3),
                Value::Int(120),
                bulk("0.75"),
            ]),
            Value::Array(vec![
                bulk("b.wav"),
                Value::Int(4),
                Value::Int(-2),
                Value::Double(0.5),
            ]),
        ]);
        let got = matches(reply).expect("parses");
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            ShardMatch {
                descr: "a.wav".into(),
                id: 3,
                position: 120,
                score: 0.75,
                speed: None
            }
        );
        assert_eq!(got[1].position, -2);
        assert_eq!(got[1].score, 0.5);
        assert_eq!(matches(Value::Array(vec![])).expect("empty"), vec![]);
    }

    #[test]
    fn matches_with_their_speed() {
        let reply = Value::Array(vec![
            Value::Array(vec![
                bulk("a.wav"),
                Value::Int(3),
                Value::Int(120),
                bulk("0.75"),
                bulk("1.0625"),
            ]),
            Value::Array(vec![
                bulk("b.wav"),
                Value::Int(4),
                Value::Int(7),
                Value::Double(0.5),
                Value::Double(0.97),
            ]),
        ]);
        let got = matches(reply).expect("parses");
        assert_eq!(got[0].speed, Some(1.0625));
        assert_eq!(got[1].speed, Some(0.97));
        let six = Value::Array(vec![Value::Array(vec![
            bulk("a"),
            Value::Int(1),
            Value::Int(0),
            bulk("1"),
            bulk("1"),
            bulk("1"),
        ])]);
        assert!(matches(six).is_err());
        let bad_speed = Value::Array(vec![Value::Array(vec![
            bulk("a"),
            Value::Int(1),
            Value::Int(0),
            bulk("1"),
            Value::Nil,
        ])]);
        assert!(matches(bad_speed).is_err());
    }

    #[test]
    fn malformed_matches_are_errors_not_panics() {
        let short = Value::Array(vec![Value::Array(vec![bulk("a"), Value::Int(1)])]);
        assert!(matches(short).is_err());
        let bad_score = Value::Array(vec![Value::Array(vec![
            bulk("a"),
            Value::Int(1),
            Value::Int(0),
            bulk("x"),
        ])]);
        assert!(matches(bad_score).is_err());
        let neg_id = Value::Array(vec![Value::Array(vec![
            bulk("a"),
            Value::Int(-1),
            Value::Int(0),
            bulk("1"),
        ])]);
        assert!(matches(neg_id).is_err());
        assert!(matches(Value::Int(3)).is_err());
        assert!(float(&bulk("nan")).is_err());
    }

    #[test]
    fn list_pages_parse_and_malformed_ones_are_errors() {
        let page = Value::Array(vec![
            bulk("7"),
            Value::Array(vec![
                Value::Array(vec![Value::Int(3), bulk("a.wav"), Value::Int(500)]),
                Value::Array(vec![Value::Int(5), bulk("b.mp3"), Value::Int(20)]),
            ]),
        ]);
        let (next, entries) = list_entries(page.clone()).expect("parses");
        assert_eq!(next, 7);
        assert_eq!(
            entries[1],
            ListEntry {
                id: 5,
                descr: "b.mp3".into(),
                frames: 20
            }
        );
        let descrs = list_page(page).expect("parses");
        assert_eq!(descrs.next.as_deref(), Some("7"));
        assert_eq!(descrs.descrs, vec!["a.wav", "b.mp3"]);
        let short = Value::Array(vec![
            bulk("0"),
            Value::Array(vec![Value::Array(vec![Value::Int(3), bulk("a")])]),
        ]);
        assert!(list_entries(short).is_err());
        assert!(list_entries(Value::Int(0)).is_err());
    }

    #[test]
    fn track_hashes_reply() {
        let reply = Value::Array(vec![
            Value::Int(7),
            Value::BulkString(vec![0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef]),
        ]);
        assert_eq!(track_hashes(reply), Ok((7, vec![1, 0xdead_beef])));
        let past_end = Value::Array(vec![Value::Int(7), Value::BulkString(Vec::new())]);
        assert_eq!(track_hashes(past_end), Ok((7, Vec::new())));
        let odd = Value::Array(vec![Value::Int(7), Value::BulkString(vec![1, 2, 3])]);
        assert!(track_hashes(odd).is_err());
        assert!(track_hashes(Value::Array(vec![Value::Int(-1), Value::Nil])).is_err());
        assert!(track_hashes(Value::Int(3)).is_err());
    }
}
