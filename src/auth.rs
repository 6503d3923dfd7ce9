//! Layer 2: HTTP Basic Auth: the credentials, and the decision as a pure
//! function of the `Authorization` header.
//!
//! The comparison is constant-time and length-blind. A header that is
//! exactly `Basic base64(user:password)`, the form every client sends, is
//! compared in constant time over a fixed 256 bytes, whatever its length.
//! Any other header (another case or spacing, or a longer one) is decoded and
//! checked against an HMAC tag of `user:password` under a per-process random
//! key with `ring::hmac::verify`. Both paths accept the same headers; the
//! first spares the decode and the HMAC on nearly every request.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

use crate::config::vars::{PASSWORD as PASSWORD_VAR, USER as USER_VAR};

/// The default user, as in the SDK.
pub const DEFAULT_USER: &str = "signalwire";
/// Shorter configured passwords are refused unless explicitly allowed.
pub const MIN_PASSWORD_LEN: usize = 16;

/// Where the password came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Configured,
    Generated,
}

/// The Basic Auth credentials of a running server.
pub struct Credentials {
    pub user: String,
    password: String,
    pub origin: Origin,
    key: hmac::Key,
    tag: hmac::Tag,
    exact: ExactHeader,
}

/// Longest `Authorization` header the exact path compares (in words).
const EXACT_WORDS: usize = 32;

/// `Basic base64(user:password)`, zero-padded to a fixed size, and its
/// length; `None` when it does not fit, and then every header takes the
/// HMAC path.
struct ExactHeader(Option<([u64; EXACT_WORDS], u64)>);

impl ExactHeader {
    fn new(user: &str, password: &str) -> ExactHeader {
        let header = format!("Basic {}", STANDARD.encode(format!("{user}:{password}")));
        ExactHeader(pad(header.as_bytes()).map(|words| (words, header.len() as u64)))
    }

    /// Constant time in the header's content and in the expected header;
    /// only whether `header` fits the fixed size shows, and that is public.
    fn matches(&self, header: &[u8]) -> bool {
        let (Some((expected, len)), Some(words)) = (&self.0, pad(header)) else {
            return false;
        };
        (words[..].ct_eq(&expected[..]) & (header.len() as u64).ct_eq(len)).into()
    }
}

/// `bytes` zero-padded into words, or `None` when it is longer than they hold.
fn pad(bytes: &[u8]) -> Option<[u64; EXACT_WORDS]> {
    let mut padded = [0u8; EXACT_WORDS * 8];
    padded.get_mut(..bytes.len())?.copy_from_slice(bytes);
    let mut words = [0u64; EXACT_WORDS];
    for (w, chunk) in words.iter_mut().zip(padded.chunks_exact(8)) {
        *w = u64::from_ne_bytes(chunk.try_into().expect("chunks of 8"));
    }
    Some(words)
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .field("password", &"***")
            .field("origin", &self.origin)
            .finish()
    }
}

/// Why credentials could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("`{PASSWORD_VAR}` is {len} characters; use at least {MIN_PASSWORD_LEN} (`swagent gen-creds` makes one), or pass `--allow-weak-password` for local experiments")]
    WeakPassword { len: usize },
    #[error("`{USER_VAR}` must not be empty or contain `:`")]
    BadUser,
}

impl Credentials {
    /// Builds credentials from a user and password.
    pub fn new(user: String, password: String, origin: Origin) -> Credentials {
        let mut seed = [0u8; 32];
        SystemRandom::new()
            .fill(&mut seed)
            .expect("the system random source works");
        let key = hmac::Key::new(hmac::HMAC_SHA256, &seed);
        let tag = hmac::sign(&key, format!("{user}:{password}").as_bytes());
        let exact = ExactHeader::new(&user, &password);
        Credentials {
            user,
            password,
            origin,
            key,
            tag,
            exact,
        }
    }

    /// The password, for embedding in webhook URLs (never for logs).
    pub fn password(&self) -> &str {
        &self.password
    }

    /// Decides a request from its `Authorization` header.
    pub fn check(&self, header: Option<&[u8]>) -> Result<(), Failure> {
        let header = header.ok_or(Failure::Missing)?;
        if self.exact.matches(header) {
            return Ok(());
        }
        self.check_decoded(header)
    }

    /// The general path: any case of `Basic`, any spacing, against the HMAC tag.
    fn check_decoded(&self, header: &[u8]) -> Result<(), Failure> {
        let header = std::str::from_utf8(header).map_err(|_| Failure::NotUtf8)?;
        let (scheme, rest) = header.trim().split_once(' ').ok_or(Failure::WrongScheme)?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(Failure::WrongScheme);
        }
        let decoded = STANDARD
            .decode(rest.trim())
            .map_err(|_| Failure::BadBase64)?;
        let text = std::str::from_utf8(&decoded).map_err(|_| Failure::NotUtf8)?;
        // RFC 7617: split at the first colon; the password may hold more.
        if !text.contains(':') {
            return Err(Failure::NoColon);
        }
        hmac::verify(&self.key, text.as_bytes(), self.tag.as_ref()).map_err(|_| Failure::Mismatch)
    }
}

/// Why a request was not authenticated. All of them answer 401; the variant
/// is for logs and metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Missing,
    WrongScheme,
    BadBase64,
    NotUtf8,
    NoColon,
    Mismatch,
}

impl Failure {
    /// A short code for logs.
    pub fn code(self) -> &'static str {
        match self {
            Failure::Missing => "missing",
            Failure::WrongScheme => "wrong_scheme",
            Failure::BadBase64 => "bad_base64",
            Failure::NotUtf8 => "not_utf8",
            Failure::NoColon => "no_colon",
            Failure::Mismatch => "mismatch",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Credentials, Failure, Origin};
    use crate::random::password as random_password;
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine as _;

    fn basic(s: &[u8]) -> Vec<u8> {
        format!("Basic {}", STANDARD.encode(s)).into_bytes()
    }

    /// An `Authorization` header (or none) and the decision it must get.
    type Case = (Option<Vec<u8>>, Result<(), Failure>);

    #[test]
    fn decision_table() {
        let c = Credentials::new("u".into(), "p:with:colons".into(), Origin::Configured);
        let cases: Vec<Case> = vec![
            (Some(basic(b"u:p:with:colons")), Ok(())),
            (
                Some(format!("bAsIc {}", STANDARD.encode("u:p:with:colons")).into_bytes()),
                Ok(()),
            ),
            (
                Some(format!(" Basic  {} ", STANDARD.encode("u:p:with:colons")).into_bytes()),
                Ok(()),
            ),
            (None, Err(Failure::Missing)),
            (Some(b"".to_vec()), Err(Failure::WrongScheme)),
            (Some(b"Basic".to_vec()), Err(Failure::WrongScheme)),
            (Some(b"Bearer abc".to_vec()), Err(Failure::WrongScheme)),
            (
                Some(b"Basic !!!notbase64".to_vec()),
                Err(Failure::BadBase64),
            ),
            (Some(basic(b"no-colon")), Err(Failure::NoColon)),
            (Some(basic(b"u:p")), Err(Failure::Mismatch)),
            (Some(basic(b"u:p:with:colons ")), Err(Failure::Mismatch)),
            (Some(basic(b"U:p:with:colons")), Err(Failure::Mismatch)),
            (Some(basic(b"\xff\xfe:x")), Err(Failure::NotUtf8)),
            (Some(b"Basic \xff".to_vec()), Err(Failure::NotUtf8)),
            (Some(basic(b":")), Err(Failure::Mismatch)),
        ];
        for (header, want) in cases {
            assert_eq!(
                c.check(header.as_deref()),
                want,
                "{:?}",
                header.as_deref().map(String::from_utf8_lossy)
            );
        }
    }

    /// The exact path accepts only what the HMAC path accepts: the one
    /// canonical header, not any change of one byte, a truncation, an
    /// extension (NUL padding included) or another user's header.
    #[test]
    fn the_exact_path_accepts_only_the_canonical_header() {
        let c = Credentials::new(
            "bench".into(),
            "s3cret-password-1234".into(),
            Origin::Configured,
        );
        let good = basic(b"bench:s3cret-password-1234");
        assert!(c.exact.matches(&good));
        assert_eq!(c.check_decoded(&good), Ok(()));
        let mut variants: Vec<Vec<u8>> = Vec::new();
        for i in 0..good.len() {
            for flip in [0x01u8, 0x20, 0x80] {
                let mut v = good.clone();
                v[i] ^= flip;
                variants.push(v);
            }
            variants.push(good[..i].to_vec());
        }
        for tail in [&b"\0"[..], b"=", b" ", b"\0\0\0\0\0\0\0\0"] {
            variants.push([&good[..], tail].concat());
        }
        variants.push(basic(b"bench:s3cret-password-123"));
        variants.push(basic(b"other:s3cret-password-1234"));
        for v in variants {
            assert!(!c.exact.matches(&v), "{:?}", String::from_utf8_lossy(&v));
            // Whatever the HMAC path says about it, `check` says the same.
            assert_eq!(c.check(Some(&v)), c.check_decoded(&v));
        }
    }

    /// Credentials too long for the exact path still work, through the HMAC.
    #[test]
    fn long_credentials_take_the_hmac_path() {
        let password = "p".repeat(300);
        let c = Credentials::new("u".into(), password.clone(), Origin::Configured);
        let good = basic(format!("u:{password}").as_bytes());
        assert!(good.len() > 256);
        assert!(!c.exact.matches(&good));
        assert_eq!(c.check(Some(&good)), Ok(()));
        assert_eq!(c.check(Some(&basic(b"u:p"))), Err(Failure::Mismatch));
        // A disabled exact path matches nothing, not even an empty header.
        assert!(!c.exact.matches(b""));
    }

    #[test]
    fn generated_passwords_are_long_distinct_and_url_safe() {
        let a = random_password(43);
        let b = random_password(43);
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(a
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    }
}
