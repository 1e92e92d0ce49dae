//! API keys: `tmq_` followed by 40 random base62 characters (≈238 bits). Only the SHA-256 of
//! a key is stored: for a secret that random a fast hash is right — no guessing attack can
//! exploit its speed — and it lets authentication find the key through an index.

use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};

/// The recognisable start of every API key (secret scanners can match on it).
pub const API_KEY_PREFIX: &str = "tmq_";
/// Random characters after the prefix.
pub const API_KEY_RANDOM_LEN: usize = 40;
/// Characters of a key kept visible for listings (`tmq_` plus eight).
pub const VISIBLE_PREFIX_LEN: usize = API_KEY_PREFIX.len() + 8;

/// A new key: (the secret, its visible prefix, its hash).
pub(crate) fn generate() -> (String, String, String) {
    // `rand::rng()` is a CSPRNG seeded from the OS.
    let random: String = rand::rng()
        .sample_iter(&Alphanumeric)
        .take(API_KEY_RANDOM_LEN)
        .map(char::from)
        .collect();
    let key = format!("{API_KEY_PREFIX}{random}");
    let prefix = key[..VISIBLE_PREFIX_LEN].to_owned();
    let hashed = hash(&key);
    (key, prefix, hashed)
}

/// Whether `token` has the shape of an API key (cheap filter before a database lookup).
pub(crate) fn looks_like_api_key(token: &str) -> bool {
    token.len() == API_KEY_PREFIX.len() + API_KEY_RANDOM_LEN
        && token.starts_with(API_KEY_PREFIX)
        && token[API_KEY_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric())
}

/// Lower-case hex SHA-256.
pub(crate) fn hash(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_documented_shape_and_differ() {
        let (a, prefix, h) = generate();
        let (b, _, _) = generate();
        assert_ne!(a, b);
        assert!(looks_like_api_key(&a), "{a}");
        assert!(a.starts_with(&prefix) && prefix.len() == 12);
        assert_eq!(h, hash(&a));
        assert_eq!(h.len(), 64);
        assert!(!looks_like_api_key("tmq_short"));
        assert!(!looks_like_api_key(&format!("xyz_{}", &a[4..])));
    }
}
