//! The wire format (docs/design.md §2): a hash or toggle array is a byte string of
//! consecutive `u32` values in network byte order.

use byteorder::{BigEndian, ByteOrder};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    #[error("array is empty")]
    Empty,
    #[error("array length {0} is not a multiple of 4 bytes")]
    NotMultipleOf4(usize),
}

/// Decodes a big-endian `u32` array. A length that is zero or not a multiple
/// of 4 is an error, never a silent truncation.
pub fn decode_u32_be(bytes: &[u8]) -> Result<Vec<u32>, WireError> {
    if bytes.is_empty() {
        return Err(WireError::Empty);
    }
    if !bytes.len().is_multiple_of(4) {
        return Err(WireError::NotMultipleOf4(bytes.len()));
    }
    let mut out = vec![0u32; bytes.len() / 4];
    BigEndian::read_u32_into(bytes, &mut out);
    Ok(out)
}

/// Encodes `values` as a big-endian `u32` array.
pub fn encode_u32_be(values: &[u32]) -> Vec<u8> {
    let mut out = vec![0u8; values.len() * 4];
    BigEndian::write_u32_into(values, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_is_big_endian() {
        let bytes = encode_u32_be(&[1, 0xdead_beef]);
        assert_eq!(bytes, [0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef]);
        assert_eq!(decode_u32_be(&bytes).unwrap(), vec![1, 0xdead_beef]);
    }

    #[test]
    fn bad_lengths_are_errors() {
        assert_eq!(decode_u32_be(&[]), Err(WireError::Empty));
        assert_eq!(decode_u32_be(&[1, 2, 3]), Err(WireError::NotMultipleOf4(3)));
        assert_eq!(decode_u32_be(&[0; 7]), Err(WireError::NotMultipleOf4(7)));
    }
}
