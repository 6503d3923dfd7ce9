//! Random values from ring's `SystemRandom`: secrets, passwords, ids.

use base64::Engine as _;
use ring::rand::{SecureRandom, SystemRandom};

/// Random lowercase hex from ring's SystemRandom.
pub fn hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut buf)
        .expect("the system random source works");
    hex::encode(buf)
}

/// A URL-safe random password of `len` characters from ring's SystemRandom.
pub fn password(len: usize) -> String {
    let mut bytes = vec![0u8; len.div_ceil(4) * 3];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the system random source works");
    let mut s = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    s.truncate(len);
    s
}

/// Standard, padded base64 of `bytes` random bytes from ring's SystemRandom.
pub fn base64(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut buf)
        .expect("the system random source works");
    base64::engine::general_purpose::STANDARD.encode(buf)
}
