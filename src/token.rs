//! Function tokens: mint, decode, and the one verdict function.
//!
//! The format is the SignalWire Python SDK's, so both can serve one fleet and
//! each checks the other's tokens:
//! `base64url_padded("{call_id}.{function}.{expiry}.{nonce}.{sig}")` with
//! `sig = hex(HMAC-SHA256(secret, "{call_id}:{function}:{expiry}:{nonce}"))`.
//! `serve`, `verify-token` and `token mint` all use [`check`] and [`mint`];
//! there is no second implementation.

use base64::engine::general_purpose::URL_SAFE;
use base64::Engine as _;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use serde::Serialize;

/// The HMAC key for tokens, built once from `SIGNALWIRE_SWAIG_SECRET`.
#[derive(Clone)]
pub struct Secret {
    key: hmac::Key,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl Secret {
    /// The secret's UTF-8 bytes are the key, as in the Python SDK (no hex decoding).
    pub fn new(secret: &str) -> Secret {
        Secret {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()),
        }
    }

    /// Signs `message` (for confirmation codes and grants that reuse the secret).
    pub fn sign(&self, message: &[u8]) -> hmac::Tag {
        hmac::sign(&self.key, message)
    }

    /// Checks `tag` over `message` in constant time.
    pub fn verify(&self, message: &[u8], tag: &[u8]) -> bool {
        hmac::verify(&self.key, message, tag).is_ok()
    }
}

/// A fresh nonce, from a per-thread pool of ring's SystemRandom output.
///
/// Every rendered document needs one nonce per secure function; reading the
/// system source for each document was one `getrandom` call per SWML request
/// (bench/RESULTS.md). A nonce is printed in its token, so it is not a secret:
/// it must never repeat and must not be guessable, and both hold when each
/// pool byte comes from SystemRandom and is handed out once. The pool is
/// per thread, so no lock; swagent never forks without an immediate exec, so
/// no child can hand out the same bytes.
pub fn nonce() -> [u8; NONCE_BYTES] {
    NONCE_POOL.with(|pool| pool.borrow_mut().take())
}

/// Nonces per refill of a thread's pool.
const POOL_NONCES: usize = 128;

thread_local! {
    static NONCE_POOL: std::cell::RefCell<NoncePool> = const {
        std::cell::RefCell::new(NoncePool {
            bytes: [[0; NONCE_BYTES]; POOL_NONCES],
            next: POOL_NONCES,
        })
    };
}

struct NoncePool {
    bytes: [[u8; NONCE_BYTES]; POOL_NONCES],
    /// Index of the next unused nonce; `POOL_NONCES` when all are used.
    next: usize,
}

impl NoncePool {
    fn take(&mut self) -> [u8; NONCE_BYTES] {
        if self.next == POOL_NONCES {
            SystemRandom::new()
                .fill(self.bytes.as_flattened_mut())
                .expect("the system random source works");
            self.next = 0;
        }
        self.next += 1;
        self.bytes[self.next - 1]
    }
}

/// Random bytes in a nonce (16 hex characters, as the SDK's `secrets.token_hex(8)`).
pub const NONCE_BYTES: usize = 8;

/// Why a call id cannot go into a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallIdError {
    #[error("call id is empty")]
    Empty,
    #[error("call id is longer than 256 bytes")]
    TooLong,
    #[error("call id contains `:`, which would make the token's signed text ambiguous")]
    Colon,
    #[error("call id contains whitespace or control characters")]
    Control,
}

/// Checks that a call id can be bound into a token without ambiguity.
pub fn check_call_id(call_id: &str) -> Result<(), CallIdError> {
    if call_id.is_empty() {
        Err(CallIdError::Empty)
    } else if call_id.len() > 256 {
        Err(CallIdError::TooLong)
    } else if call_id.contains(':') {
        // The signed text is `call_id:function:expiry:nonce`: with a `:` in
        // the call id, one signature fits another split of the same text,
        // with an expiry the caller chose (and Python SDK servers, which do
        // not check the nonce's form, would take it).
        Err(CallIdError::Colon)
    } else if call_id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        Err(CallIdError::Control)
    } else {
        Ok(())
    }
}

/// Mints a token for `function` in `call_id`, expiring at `expiry` (unix seconds).
pub fn mint(
    secret: &Secret,
    call_id: &str,
    function: &str,
    expiry: u64,
) -> Result<String, CallIdError> {
    check_call_id(call_id)?;
    Ok(Minter::default()
        .mint(secret, call_id, function, expiry, &nonce())
        .to_owned())
}

/// Mints with a given nonce: deterministic, for tests and benchmarks.
pub fn mint_with_nonce(
    secret: &Secret,
    call_id: &str,
    function: &str,
    expiry: u64,
    nonce: &str,
) -> String {
    Minter::default()
        .seal(secret, call_id, function, expiry, nonce)
        .to_owned()
}

/// Buffers for minting, reused across tokens. The SWML of every call mints
/// one token per secure function; with one `Minter` per document that is
/// two allocations per document, not per token, and no `format!`.
#[derive(Default)]
pub struct Minter {
    plain: Vec<u8>,
    encoded: Vec<u8>,
}

impl Minter {
    /// A token with the hex of `nonce` as its nonce, valid until the next
    /// call. `call_id` must have passed [`check_call_id`].
    pub fn mint(
        &mut self,
        secret: &Secret,
        call_id: &str,
        function: &str,
        expiry: u64,
        nonce: &[u8; NONCE_BYTES],
    ) -> &str {
        let mut hex_nonce = [0u8; 2 * NONCE_BYTES];
        hex::encode_to_slice(nonce, &mut hex_nonce).expect("the buffer fits the hex");
        let nonce = std::str::from_utf8(&hex_nonce).expect("hex is ASCII");
        self.seal(secret, call_id, function, expiry, nonce)
    }

    /// Signs `{call_id}:{function}:{expiry}:{nonce}` and encodes
    /// `{call_id}.{function}.{expiry}.{nonce}.{sig}`.
    fn seal(
        &mut self,
        secret: &Secret,
        call_id: &str,
        function: &str,
        expiry: u64,
        nonce: &str,
    ) -> &str {
        let plain = &mut self.plain;
        plain.clear();
        // Expiry, separators and signature fit in 96.
        plain.reserve(call_id.len() + function.len() + nonce.len() + 96);
        plain.extend_from_slice(call_id.as_bytes());
        let mut separators = [0; 3];
        for (sep, field) in
            separators
                .iter_mut()
                .zip([function, itoa::Buffer::new().format(expiry), nonce])
        {
            *sep = plain.len();
            plain.push(b':');
            plain.extend_from_slice(field.as_bytes());
        }
        let tag = secret.sign(plain);
        for i in separators {
            plain[i] = b'.';
        }
        let mut sig = [0u8; 64];
        hex::encode_to_slice(tag.as_ref(), &mut sig).expect("the buffer fits the hex");
        plain.push(b'.');
        plain.extend_from_slice(&sig);
        // Into a plain buffer: `encode_string` goes through a chunked
        // encoder that checks UTF-8 per chunk.
        self.encoded.resize(
            base64::encoded_len(plain.len(), true).expect("a token is short"),
            0,
        );
        let n = URL_SAFE
            .encode_slice(&*plain, &mut self.encoded)
            .expect("the buffer is the encoded length");
        std::str::from_utf8(&self.encoded[..n]).expect("base64 is ASCII")
    }
}

/// A token's decoded fields. Nothing here is trusted until [`check`] says so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claims {
    pub call_id: String,
    pub function: String,
    pub expiry: u64,
    pub nonce: String,
    #[serde(skip)]
    sig: String,
}

/// Decodes a token without checking its signature.
pub fn decode(token: &str) -> Result<Claims, String> {
    if token.is_empty() {
        return Err("token is empty".into());
    }
    if token.len() > 2048 {
        return Err("token is longer than 2048 characters".into());
    }
    let bytes = URL_SAFE
        .decode(token)
        .map_err(|e| format!("not base64url: {e}"))?;
    let text = String::from_utf8(bytes).map_err(|_| "decoded token is not UTF-8".to_string())?;
    // From the right, as the SDK does: the call id is the only field that
    // may hold a dot (`root.2`).
    let mut parts = text.rsplitn(5, '.');
    let (Some(sig), Some(nonce), Some(expiry), Some(function), Some(call_id)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return Err("expected 5 fields `call_id.function.expiry.nonce.signature`".into());
    };
    if call_id.is_empty() || function.is_empty() {
        return Err("call id or function is empty".into());
    }
    // The signed text joins the fields with `:`. Each field but the call id
    // has one form, and none holds a `:`, so the text splits one way only.
    if call_id.contains(':') || function.contains(':') {
        return Err("call id or function contains `:`".into());
    }
    let expiry: u64 = expiry
        .bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| expiry.parse().ok())
        .flatten()
        .ok_or_else(|| format!("expiry `{expiry}` is not a number of seconds"))?;
    if nonce.len() != 2 * NONCE_BYTES
        || !nonce
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err("nonce is not 16 lowercase hex characters".into());
    }
    if sig.len() != 64 || !sig.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err("signature is not 64 lowercase hex characters".into());
    }
    Ok(Claims {
        call_id: call_id.to_owned(),
        function: function.to_owned(),
        expiry,
        nonce: nonce.to_owned(),
        sig: sig.to_owned(),
    })
}

/// The result of checking a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Valid,
    Expired,
    BadSignature,
    WrongFunction,
    WrongCall,
    Malformed(String),
}

impl Verdict {
    /// The verdict's name in JSON output and the audit log.
    pub fn code(&self) -> &'static str {
        match self {
            Verdict::Valid => "valid",
            Verdict::Expired => "expired",
            Verdict::BadSignature => "bad_signature",
            Verdict::WrongFunction => "wrong_function",
            Verdict::WrongCall => "wrong_call",
            Verdict::Malformed(_) => "malformed",
        }
    }

    /// A sentence for operators (never sent to HTTP callers).
    pub fn reason(&self) -> String {
        match self {
            Verdict::Valid => "signature, binding and expiry are valid".into(),
            Verdict::Expired => "the token has expired".into(),
            Verdict::BadSignature => "the signature does not match this secret".into(),
            Verdict::WrongFunction => "the token was minted for another function".into(),
            Verdict::WrongCall => "the token was minted for another call".into(),
            Verdict::Malformed(why) => format!("malformed token: {why}"),
        }
    }
}

/// What a token is checked against. `None` skips that binding (verify-token
/// without `--function`); the server always passes both.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    pub function: Option<&'a str>,
    pub call_id: Option<&'a str>,
    pub now: u64,
}

/// Decodes and checks a token. The signature is checked before anything the
/// token claims is believed; expiry is judged last so `expired` only ever
/// describes a token that is otherwise genuine and correctly bound.
pub fn check(secret: &Secret, token: &str, expect: Expect<'_>) -> (Verdict, Option<Claims>) {
    let claims = match decode(token) {
        Ok(c) => c,
        Err(why) => return (Verdict::Malformed(why), None),
    };
    let message = format!(
        "{}:{}:{}:{}",
        claims.call_id, claims.function, claims.expiry, claims.nonce
    );
    let sig = hex::decode(&claims.sig).unwrap_or_default();
    let verdict = if !secret.verify(message.as_bytes(), &sig) {
        Verdict::BadSignature
    } else if expect.function.is_some_and(|f| f != claims.function) {
        Verdict::WrongFunction
    } else if expect.call_id.is_some_and(|c| c != claims.call_id) {
        Verdict::WrongCall
    } else if claims.expiry <= expect.now {
        // The SDK compares with the fractional time, so a token is expired
        // from its expiry's first instant; whole seconds agree only this way.
        Verdict::Expired
    } else {
        Verdict::Valid
    };
    (verdict, Some(claims))
}

#[cfg(test)]
mod tests {
    use super::{check, decode, mint, mint_with_nonce, Expect, Secret, Verdict, URL_SAFE};
    use base64::Engine as _;

    const SECRET: &str = "test-secret-0123456789abcdef";
    const FAR: u64 = 4_070_908_800;

    fn expect<'a>(f: &'a str, c: &'a str) -> Expect<'a> {
        Expect {
            function: Some(f),
            call_id: Some(c),
            now: 1_700_000_000,
        }
    }

    #[test]
    fn deterministic_vector_matches_the_python_sdk() {
        // Computed with the SDK's algorithm, nonce 0011223344556677.
        let t = mint_with_nonce(
            &Secret::new(SECRET),
            "call-123",
            "get_balance",
            FAR,
            "0011223344556677",
        );
        assert_eq!(t, "Y2FsbC0xMjMuZ2V0X2JhbGFuY2UuNDA3MDkwODgwMC4wMDExMjIzMzQ0NTU2Njc3LmI1N2NiZWUxYzY0ODgwOTZlYzE0MjM5MTI5NWNmZWY4YjRhZTM2MzBhMzgzZjUzMWJhZDlhYjhkZTE3MWNmYjQ=");
    }

    #[test]
    fn each_verdict() {
        let s = Secret::new(SECRET);
        let t = mint(&s, "c1", "f", FAR).unwrap();
        assert_eq!(check(&s, &t, expect("f", "c1")).0, Verdict::Valid);
        assert_eq!(check(&s, &t, expect("g", "c1")).0, Verdict::WrongFunction);
        assert_eq!(check(&s, &t, expect("f", "c2")).0, Verdict::WrongCall);
        assert_eq!(
            check(&Secret::new("other"), &t, expect("f", "c1")).0,
            Verdict::BadSignature
        );
        let old = mint(&s, "c1", "f", 10).unwrap();
        assert_eq!(check(&s, &old, expect("f", "c1")).0, Verdict::Expired);
        // As the SDK judges it (`expiry < time.time()`, with fractions).
        let now = expect("f", "c1").now;
        let at_now = mint(&s, "c1", "f", now).unwrap();
        assert_eq!(check(&s, &at_now, expect("f", "c1")).0, Verdict::Expired);
        let next = mint(&s, "c1", "f", now + 1).unwrap();
        assert_eq!(check(&s, &next, expect("f", "c1")).0, Verdict::Valid);
        assert!(matches!(
            check(&s, "!!!", expect("f", "c1")).0,
            Verdict::Malformed(_)
        ));
        assert!(matches!(
            check(&s, "", expect("f", "c1")).0,
            Verdict::Malformed(_)
        ));
    }

    #[test]
    fn carries_dotted_call_ids_and_refuses_colons() {
        let s = Secret::new(SECRET);
        // As the SDK does: fields are split from the right, and only the
        // call id (`root.2` for a child call) may hold a dot.
        let t = mint(&s, "root.2", "f", FAR).unwrap();
        assert_eq!(check(&s, &t, expect("f", "root.2")).0, Verdict::Valid);
        assert_eq!(
            mint(&s, "a:f:9:x", "f", FAR).unwrap_err().to_string(),
            "call id contains `:`, which would make the token's signed text ambiguous"
        );
    }

    /// Each field of a token has one form, so its signed text splits one way.
    #[test]
    fn decode_takes_one_form_per_field() {
        let sig = "0".repeat(64);
        let token = |fields: &str| URL_SAFE.encode(format!("{fields}.{sig}"));
        assert!(decode(&token("c.f.4070908800.0011223344556677")).is_ok());
        for (fields, why) in [
            (
                "c.f.4070908800.x:f:1:0011223344556677",
                "nonce is not 16 lowercase hex characters",
            ),
            (
                "c.f.4070908800.00112233445566",
                "nonce is not 16 lowercase hex characters",
            ),
            (
                "c.f.4070908800.00112233445566AA",
                "nonce is not 16 lowercase hex characters",
            ),
            (
                "c.f.+4070908800.0011223344556677",
                "expiry `+4070908800` is not a number of seconds",
            ),
            (
                "c.f. 4070908800.0011223344556677",
                "expiry ` 4070908800` is not a number of seconds",
            ),
            (
                "a:f:9:x.f.4070908800.0011223344556677",
                "call id or function contains `:`",
            ),
            (
                "c.f:g.4070908800.0011223344556677",
                "call id or function contains `:`",
            ),
        ] {
            assert_eq!(decode(&token(fields)).unwrap_err(), why, "{fields}");
        }
    }

    #[test]
    fn decode_reports_what_is_malformed() {
        assert_eq!(
            decode("YWJj").unwrap_err(),
            "expected 5 fields `call_id.function.expiry.nonce.signature`"
        );
        // One spelling per token: surrounding whitespace is not stripped.
        let t = mint_with_nonce(&Secret::new(SECRET), "c", "f", FAR, "0011223344556677");
        assert!(decode(&t).is_ok());
        assert!(decode(&format!(" {t}"))
            .unwrap_err()
            .starts_with("not base64url"));
    }
}
