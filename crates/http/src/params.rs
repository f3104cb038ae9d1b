//! Query parameters and path segments, checked by hand so that every
//! mistake gets a 400 that names the parameter and what it must be.

use std::collections::HashMap;

use auscout_client::store::TrackCursor;

use crate::error::ApiError;

/// Tracks per page of `GET /v1/tracks` unless `count` says otherwise.
pub const DEFAULT_PAGE: u32 = 50;
/// The largest `count` a page may ask for.
pub const MAX_PAGE: u32 = 1000;
/// The largest `limit` a lookup may ask for.
pub const MAX_LIMIT: u32 = 100;

/// `?key=`: the index to use, `None` for the service's default.
pub fn key(query: &HashMap<String, String>) -> Result<Option<String>, ApiError> {
    match query.get("key") {
        None => Ok(None),
        Some(k) if k.is_empty() => Err(ApiError::BadRequest("key must not be empty".into())),
        Some(k) if k.len() > 512 => {
            Err(ApiError::BadRequest("key must be at most 512 bytes".into()))
        }
        Some(k) => Ok(Some(k.clone())),
    }
}

/// The parameters of `POST /v1/lookup`.
#[derive(Debug, Default)]
pub struct LookupParams {
    pub key: Option<String>,
    pub threshold: Option<f64>,
    pub limit: Option<u32>,
}

impl LookupParams {
    pub fn parse(query: &HashMap<String, String>) -> Result<Self, ApiError> {
        let threshold = match query.get("threshold") {
            None => None,
            Some(t) => match t.parse::<f64>() {
                Ok(v) if (0.0..=1.0).contains(&v) => Some(v),
                _ => {
                    return Err(ApiError::BadRequest(format!(
                        "threshold must be a number in [0, 1], not {t:?}"
                    )))
                }
            },
        };
        let limit = match query.get("limit") {
            None => None,
            Some(l) => Some(bounded(l, "limit", 1, MAX_LIMIT)?),
        };
        Ok(LookupParams {
            key: key(query)?,
            threshold,
            limit,
        })
    }
}

/// An integer parameter in `min..=max`.
pub fn bounded(value: &str, name: &str, min: u32, max: u32) -> Result<u32, ApiError> {
    match value.parse::<u32>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(ApiError::BadRequest(format!(
            "{name} must be an integer in {min}..={max}, not {value:?}"
        ))),
    }
}

/// A track id from the path.
pub fn track_id(value: &str) -> Result<u64, ApiError> {
    match value.parse::<u64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(ApiError::BadRequest(format!(
            "a track id is a positive integer, not {value:?}"
        ))),
    }
}

/// `?cursor=`: `0` (or none) starts; otherwise what a page returned as
/// `next_cursor`, `SHARD-ID`.
pub fn cursor(value: Option<&String>) -> Result<TrackCursor, ApiError> {
    let Some(value) = value.filter(|v| !v.is_empty() && v.as_str() != "0") else {
        return Ok(TrackCursor::default());
    };
    let bad = || {
        ApiError::BadRequest(format!(
            "cursor must be 0 or a next_cursor a page returned, not {value:?}"
        ))
    };
    let (shard, local) = value.split_once('-').ok_or_else(bad)?;
    Ok(TrackCursor {
        shard: shard.parse().map_err(|_| bad())?,
        local: local.parse().map_err(|_| bad())?,
    })
}

/// A cursor as `next_cursor` shows it.
pub fn cursor_text(c: TrackCursor) -> String {
    format!("{}-{}", c.shard, c.local)
}

/// Rounds to 3 decimals (milliseconds, thousandths of a score) for JSON.
pub fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn lookup_params_are_checked() {
        let p = LookupParams::parse(&q(&[("threshold", "0.3"), ("limit", "5")])).unwrap();
        assert_eq!((p.threshold, p.limit, p.key), (Some(0.3), Some(5), None));
        for bad in [
            q(&[("threshold", "1.5")]),
            q(&[("threshold", "x")]),
            q(&[("threshold", "NaN")]),
            q(&[("limit", "0")]),
            q(&[("limit", "-1")]),
            q(&[("limit", "101")]),
            q(&[("key", "")]),
        ] {
            assert!(matches!(
                LookupParams::parse(&bad),
                Err(ApiError::BadRequest(_))
            ));
        }
    }

    #[test]
    fn cursors_round_trip() {
        let c = TrackCursor {
            shard: 2,
            local: 17,
        };
        assert_eq!(cursor(Some(&cursor_text(c))).unwrap(), c);
        assert_eq!(cursor(None).unwrap(), TrackCursor::default());
        assert_eq!(cursor(Some(&"0".into())).unwrap(), TrackCursor::default());
        assert!(cursor(Some(&"7".into())).is_err());
        assert!(cursor(Some(&"a-b".into())).is_err());
    }

    #[test]
    fn track_ids_are_positive() {
        assert_eq!(track_id("12").unwrap(), 12);
        assert!(track_id("0").is_err());
        assert!(track_id("x").is_err());
    }
}
