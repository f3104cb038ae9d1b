//! The API key: when the service has one (`--api-key`), writes need
//! `Authorization: Bearer <key>`. Reads stay open, so the page works
//! without it.

use axum::http::header::AUTHORIZATION;
use axum::http::HeaderMap;

use crate::error::ApiError;
use crate::state::Shared;

/// Checks the bearer token of a write; `Ok` when the service has no key.
pub fn require_api_key(state: &Shared, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = state.config.api_key.as_deref() else {
        return Ok(());
    };
    let given = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
    match given {
        Some(token) if same(token.as_bytes(), expected.as_bytes()) => Ok(()),
        _ => Err(ApiError::Unauthorized),
    }
}

/// Compares in time independent of where the first difference is, so the
/// key cannot be guessed a byte at a time from response times.
fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::same;

    #[test]
    fn keys_compare_exactly() {
        assert!(same(b"s3cret", b"s3cret"));
        assert!(!same(b"s3cret", b"s3creT"));
        assert!(!same(b"s3cret", b"s3cre"));
        assert!(!same(b"", b"x"));
    }
}
