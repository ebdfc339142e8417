//! The proxy-wasm header-map wire format, as the Rust SDK reads and writes it:
//! `u32 count`, then `count` pairs of `u32 name_len, u32 value_len`, then each
//! name and value followed by a NUL byte. All integers little-endian.

use wasmtime::{Result, bail, format_err};

pub type Pairs = Vec<(String, Vec<u8>)>;

pub fn encode_map(pairs: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(pairs.len() as u32).to_le_bytes());
    for (name, value) in pairs {
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(&(value.len() as u32).to_le_bytes());
    }
    for (name, value) in pairs {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(value);
        out.push(0);
    }
    out
}

pub fn decode_map(bytes: &[u8]) -> Result<Pairs> {
    let u32_at = |at: usize| -> Result<usize> {
        match bytes.get(at..at + 4) {
            Some(b) => Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize),
            None => bail!("header map truncated at byte {at}"),
        }
    };
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let count = u32_at(0)?;
    let mut sizes = Vec::with_capacity(count);
    for i in 0..count {
        sizes.push((u32_at(4 + i * 8)?, u32_at(8 + i * 8)?));
    }
    let mut at = 4 + count * 8;
    let mut pairs = Vec::with_capacity(count);
    for (name_len, value_len) in sizes {
        let take = |at: &mut usize, len: usize| -> Result<Vec<u8>> {
            let data = bytes.get(*at..*at + len).ok_or_else(|| format_err!("header map truncated"))?;
            if bytes.get(*at + len) != Some(&0) {
                bail!("header map entry not NUL-terminated at byte {}", *at + len);
            }
            *at += len + 1;
            Ok(data.to_vec())
        };
        let name = String::from_utf8(take(&mut at, name_len)?)?;
        let value = take(&mut at, value_len)?;
        pairs.push((name, value));
    }
    if at != bytes.len() {
        bail!("header map has {} trailing bytes", bytes.len() - at);
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_exact_layout() {
        let pairs = vec![("a".to_string(), b"xy".to_vec()), (":path".to_string(), Vec::new())];
        let bytes = encode_map(&pairs);
        let want: Vec<u8> = [
            &2u32.to_le_bytes()[..],
            &1u32.to_le_bytes(),
            &2u32.to_le_bytes(),
            &5u32.to_le_bytes(),
            &0u32.to_le_bytes(),
            b"a\0xy\0:path\0\0",
        ]
        .concat();
        assert_eq!(bytes, want);
        assert_eq!(decode_map(&bytes).unwrap(), pairs);
        assert!(decode_map(&bytes[..bytes.len() - 1]).is_err());
    }
}
