//! Signed outbound requests, as the Standard Webhooks spec defines them:
//! with `SWAGENT_WEBHOOK_SECRET` set, a request swagent sends to a backend
//! carries `webhook-id`, `webhook-timestamp` and `webhook-signature`, so the
//! backend can tell it came from swagent, unchanged and recently.
//!
//! This module owns the secret's format ([`Signer::parse`]) and the three
//! headers ([`Signer::sign_request`]). Which requests are signed is the
//! caller's decision (`handlers::http`, and its `sign: false`); how a
//! receiver verifies, and how to rotate, is in `docs/security.md`.
//!
//! The HMAC itself is the official `standardwebhooks` crate's (by the
//! spec's authors), so the construction `id.timestamp.body` is theirs, not
//! a copy of it.

use base64::Engine as _;
use reqwest::header::{HeaderName, HeaderValue};

/// `webhook-id`: the message's id, the same on every retry of it.
pub const ID: HeaderName = HeaderName::from_static(standardwebhooks::HEADER_WEBHOOK_ID);
/// `webhook-timestamp`: when this attempt was signed, in Unix seconds.
pub const TIMESTAMP: HeaderName =
    HeaderName::from_static(standardwebhooks::HEADER_WEBHOOK_TIMESTAMP);
/// `webhook-signature`: `v1,<base64>` per secret, separated by spaces.
pub const SIGNATURE: HeaderName =
    HeaderName::from_static(standardwebhooks::HEADER_WEBHOOK_SIGNATURE);

/// The prefix the spec gives symmetric secrets.
const PREFIX: &str = "whsec_";
/// The spec asks for 24 to 64 random bytes; shorter is refused.
pub const MIN_SECRET_BYTES: usize = 24;

/// Why `SWAGENT_WEBHOOK_SECRET` was refused. No variant holds the secret or
/// any part of it: the message is printed at start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretError {
    /// A secret without the `whsec_` prefix.
    #[error("{which} does not start with `whsec_`")]
    NoPrefix { which: String },
    /// What follows `whsec_` is not standard, padded base64.
    #[error("{which} is not base64 after `whsec_`")]
    NotBase64 { which: String },
    /// Fewer random bytes than the spec asks for.
    #[error(
        "{which} is {bytes} bytes; the Standard Webhooks spec asks for at least {MIN_SECRET_BYTES}"
    )]
    TooShort { which: String, bytes: usize },
}

/// Why a request could not be signed: the crate signs text, and a streamed
/// body has no bytes to sign before it is sent. Neither happens with the
/// JSON and form bodies swagent sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Unsignable {
    #[error("the request body is streamed, so it cannot be signed")]
    Streamed,
    #[error("the request body is not UTF-8 text, so it cannot be signed")]
    NotText,
}

/// The secrets that sign every outbound request, parsed once at start.
/// Every one of them signs: that is how the spec rotates a secret.
pub struct Signer {
    keys: Vec<standardwebhooks::Webhook>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer {{ secrets: {}, .. }}", self.keys.len())
    }
}

impl Signer {
    /// Parses space-separated `whsec_<base64>` secrets. `None` for a text
    /// with none (unset, as the configuration reads an empty variable).
    pub fn parse(text: &str) -> Result<Option<Signer>, SecretError> {
        let secrets: Vec<&str> = text.split_whitespace().collect();
        let mut keys = Vec::with_capacity(secrets.len());
        for (i, secret) in secrets.iter().enumerate() {
            let which = match secrets.len() {
                1 => "the secret".to_owned(),
                n => format!("secret {} of {n}", i + 1),
            };
            let Some(encoded) = secret.strip_prefix(PREFIX) else {
                return Err(SecretError::NoPrefix { which });
            };
            let key = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|_| SecretError::NotBase64 {
                    which: which.clone(),
                })?;
            if key.len() < MIN_SECRET_BYTES {
                return Err(SecretError::TooShort {
                    which,
                    bytes: key.len(),
                });
            }
            keys.push(standardwebhooks::Webhook::from_bytes(key).expect("a key of bytes is taken"));
        }
        Ok((!keys.is_empty()).then_some(Signer { keys }))
    }

    /// How many secrets sign.
    pub fn secrets(&self) -> usize {
        self.keys.len()
    }

    /// `webhook-signature`'s value for a message: one `v1,<base64>` per
    /// secret, in the order they were given, separated by spaces.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> Result<HeaderValue, Unsignable> {
        let mut value = String::new();
        for key in &self.keys {
            let one = key
                .sign(id, timestamp, body)
                .map_err(|_| Unsignable::NotText)?;
            if !value.is_empty() {
                value.push(' ');
            }
            value.push_str(&one);
        }
        Ok(HeaderValue::from_str(&value).expect("base64 is a valid header value"))
    }

    /// Adds the three headers to `request`, signed now over its body as it
    /// will be sent. `id` is the message's: a retry passes the same one,
    /// and gets a new timestamp and signature.
    pub fn sign_request(&self, id: &str, request: &mut reqwest::Request) -> Result<(), Unsignable> {
        let body = match request.body() {
            None => &[][..],
            Some(body) => body.as_bytes().ok_or(Unsignable::Streamed)?,
        };
        let now = i64::try_from(crate::clock::now()).unwrap_or(i64::MAX);
        let signature = self.sign(id, now, body)?;
        let headers = request.headers_mut();
        headers.insert(
            ID,
            HeaderValue::from_str(id).expect("an id is a header value"),
        );
        headers.insert(TIMESTAMP, HeaderValue::from(now));
        headers.insert(SIGNATURE, signature);
        Ok(())
    }
}

/// A fresh message id: `msg_` and 128 random bits in hex. The spec wants
/// no `.` in it, which would blur where the signed id ends.
pub fn message_id() -> String {
    format!("msg_{}", crate::random::hex(16))
}

/// A new secret as the spec serializes one: `whsec_` and the base64 of 32
/// random bytes (`swagent gen-creds`).
pub fn new_secret() -> String {
    format!("{PREFIX}{}", crate::random::base64(32))
}

#[cfg(test)]
mod tests {
    use super::{SecretError, Signer};

    /// The crate's own test vector, so the construction is the spec's.
    #[test]
    fn signs_the_specs_example() {
        let signer = Signer::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
            .unwrap()
            .unwrap();
        let body = br#"{"email":"test@example.com","username":"test_user"}"#;
        let value = signer
            .sign("msg_27UH4WbU6Z5A5EzD8u03UvzRbpk", 1649367553, body)
            .unwrap();
        assert_eq!(value, "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=");
    }

    #[test]
    fn every_secret_signs_in_order() {
        let one = "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD";
        let two = format!("whsec_{}", "A".repeat(32));
        let both = Signer::parse(&format!(" {one}\t{two} ")).unwrap().unwrap();
        let first = Signer::parse(one).unwrap().unwrap();
        let second = Signer::parse(&two).unwrap().unwrap();
        let sig = |s: &Signer| s.sign("msg_1", 7, b"{}").unwrap();
        let want = format!(
            "{} {}",
            sig(&first).to_str().unwrap(),
            sig(&second).to_str().unwrap()
        );
        assert_eq!(sig(&both), want.as_str());
        assert_eq!(both.secrets(), 2);
    }

    #[test]
    fn a_bad_secret_is_named_never_shown() {
        let short = format!("whsec_{}", "QUJD".repeat(5));
        for (text, want) in [
            (
                "C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
                "the secret does not start with `whsec_`",
            ),
            (
                "whsec_not*base64!",
                "the secret is not base64 after `whsec_`",
            ),
            (
                short.as_str(),
                "the secret is 15 bytes; the Standard Webhooks spec asks for at least 24",
            ),
            (
                "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD whsec_",
                "secret 2 of 2 is 0 bytes; the Standard Webhooks spec asks for at least 24",
            ),
        ] {
            let e: SecretError = Signer::parse(text).unwrap_err();
            assert_eq!(e.to_string(), want, "{text}");
        }
        assert!(Signer::parse(" \t").unwrap().is_none());
    }

    #[test]
    fn debug_shows_no_key() {
        let signer = Signer::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
            .unwrap()
            .unwrap();
        assert_eq!(format!("{signer:?}"), "Signer { secrets: 1, .. }");
    }

    #[test]
    fn new_secrets_parse_and_differ() {
        let (a, b) = (super::new_secret(), super::new_secret());
        assert_ne!(a, b);
        assert_eq!(a.len(), "whsec_".len() + 44);
        assert!(Signer::parse(&a).unwrap().is_some());
        assert!(super::message_id().starts_with("msg_"));
    }
}
