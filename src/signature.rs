//! SignalWire request signatures (`SIGNALWIRE_SIGNING_KEY`): the decision as
//! a pure function of the signing key, the URL the platform called, the
//! signature headers and the raw body.
//!
//! It follows the SignalWire Python SDK's `webhook_middleware.validate` and
//! `webhook_validator.validate_webhook_signature` branch for branch:
//!
//! 1. `X-SignalWire-Sha256-Signature`, when present: lowercase hex
//!    HMAC-SHA256(key, url + body). If it fails, the SHA-1 header is tried.
//! 2. `X-SignalWire-Signature` (else its alias `X-Twilio-Signature`):
//!    - scheme A: lowercase hex HMAC-SHA1(key, url + body);
//!    - scheme B (compatibility/form): base64 HMAC-SHA1(key, url + the form
//!      parameters of the body sorted by name, each name then its value), and
//!      the same with no parameters (JSON posted to a compatibility URL), each
//!      with the URL as given and with its default port added or removed. When
//!      the URL carries `bodySHA256`, the body's SHA-256 must match it too.
//!
//! Every comparison is `ring::hmac::verify` (constant time) against the
//! decoded presented signature. The outcome says only "valid, by this scheme"
//! or "rejected": which branch failed is deliberately not kept, so it cannot
//! reach a log or a response. This module does not rebuild the URL or read
//! the body; the server does (see `server::guard`).

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ring::{digest, hmac};

/// Name of the signing key variable, as in the SignalWire Python SDK.
pub const SIGNING_KEY_VAR: &str = "SIGNALWIRE_SIGNING_KEY";
/// The SHA-256 signature header (checked first).
pub const SHA256_HEADER: &str = "x-signalwire-sha256-signature";
/// The SHA-1 signature header.
pub const SHA1_HEADER: &str = "x-signalwire-signature";
/// The compatibility alias of [`SHA1_HEADER`].
pub const TWILIO_HEADER: &str = "x-twilio-signature";

/// The project's Signing Key, kept only as HMAC keys.
pub struct SigningKey {
    sha1: hmac::Key,
    sha256: hmac::Key,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(***)")
    }
}

impl SigningKey {
    /// A key from its text; the HMAC key is its UTF-8 bytes, as in the SDK.
    pub fn new(key: &str) -> SigningKey {
        SigningKey {
            sha1: hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key.as_bytes()),
            sha256: hmac::Key::new(hmac::HMAC_SHA256, key.as_bytes()),
        }
    }
}

/// The signature headers of a request (values as sent).
#[derive(Debug, Default, Clone, Copy)]
pub struct Headers<'a> {
    /// `X-SignalWire-Sha256-Signature`.
    pub sha256: Option<&'a str>,
    /// `X-SignalWire-Signature`.
    pub sha1: Option<&'a str>,
    /// `X-Twilio-Signature`, used only without `X-SignalWire-Signature`.
    pub twilio: Option<&'a str>,
}

/// Which scheme a valid signature used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Hex HMAC-SHA256 of url + body.
    JsonSha256,
    /// Hex HMAC-SHA1 of url + body.
    JsonSha1,
    /// Base64 HMAC-SHA1 of url + sorted form parameters.
    Form,
    /// Base64 HMAC-SHA1 of a url carrying `bodySHA256`, with the digest matching.
    BodySha256,
}

/// The decision on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Valid(Scheme),
    /// Missing, malformed or wrong: deliberately one value.
    Rejected,
}

/// Decides whether `body`, posted to `url` with `headers`, was signed with `key`.
pub fn verify(key: &SigningKey, url: &str, headers: Headers<'_>, body: &[u8]) -> Verdict {
    // The SDK works on the body as text; a body that is not UTF-8 fails there.
    let Ok(body) = std::str::from_utf8(body) else {
        return Verdict::Rejected;
    };
    let message = [url.as_bytes(), body.as_bytes()].concat();
    if let Some(sig) = headers.sha256.filter(|s| !s.is_empty()) {
        if hex_matches(&key.sha256, &message, sig) {
            return Verdict::Valid(Scheme::JsonSha256);
        }
    }
    let Some(sig) = headers.sha1.or(headers.twilio).filter(|s| !s.is_empty()) else {
        return Verdict::Rejected;
    };
    if hex_matches(&key.sha1, &message, sig) {
        return Verdict::Valid(Scheme::JsonSha1);
    }
    let Ok(presented) = STANDARD.decode(sig) else {
        return Verdict::Rejected;
    };
    let params = form_concat(body);
    for candidate in candidate_urls(url) {
        for (concat, scheme) in [(params.as_str(), Scheme::Form), ("", Scheme::Form)] {
            let signed = format!("{candidate}{concat}");
            if hmac::verify(&key.sha1, signed.as_bytes(), &presented).is_ok() {
                match body_sha256_matches(&candidate, body) {
                    BodyDigest::Absent => return Verdict::Valid(scheme),
                    BodyDigest::Matches => return Verdict::Valid(Scheme::BodySha256),
                    // The SDK keeps trying the other shapes and URLs.
                    BodyDigest::Differs => {}
                }
            }
        }
    }
    Verdict::Rejected
}

/// What a valid signature vouches for, as one value per signed request: the
/// key failures after it are counted by (the signature covers URL and body,
/// never the credentials, so a captured request can be replayed with guesses).
/// The hex schemes both sign the text URL + body, joined: one digest of that
/// text, so the SHA-1 and the SHA-256 header of one request share a count,
/// and so does a replay that moves characters across the join. The
/// form schemes may sign the URL alone (the body is then free): their
/// decoded signature, of which the base64 decoder allows one spelling.
pub fn replay_key(url: &str, headers: Headers<'_>, body: &[u8], scheme: Scheme) -> Option<Vec<u8>> {
    match scheme {
        Scheme::JsonSha256 | Scheme::JsonSha1 => {
            let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
            ctx.update(b"json\n");
            // No separator: `?__token=ab` + `c{...}` signs as `?__token=abc` + `{...}`.
            ctx.update(url.as_bytes());
            ctx.update(body);
            Some(ctx.finish().as_ref().to_vec())
        }
        Scheme::Form | Scheme::BodySha256 => STANDARD.decode(headers.sha1.or(headers.twilio)?).ok(),
    }
}

/// Whether `sig` is the lowercase hex HMAC of `message`. Uppercase is refused,
/// as the SDK compares the hex text case-sensitively.
fn hex_matches(key: &hmac::Key, message: &[u8], sig: &str) -> bool {
    if !sig
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return false;
    }
    match hex::decode(sig) {
        Ok(presented) => hmac::verify(key, message, &presented).is_ok(),
        Err(_) => false,
    }
}

/// The form parameters of `body` sorted by name (stable, so repeated names
/// keep their order), each name followed by its value. Parsing is Python's
/// `parse_qsl(keep_blank_values=True)`: `+` is a space, `%XX` decoded, a
/// segment without `=` has an empty value, empty segments are skipped.
pub fn form_concat(body: &str) -> String {
    let mut pairs: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    pairs.into_iter().map(|(k, v)| k + &v).collect()
}

/// `url` as given, plus the variant with the default port added (when it has
/// none) or removed (when it has the default one). A non-default port gives
/// only `url`. Done on the text: a URL parser would normalize the port away.
pub fn candidate_urls(url: &str) -> Vec<String> {
    let mut out = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return out;
    };
    let standard = match scheme.to_ascii_lowercase().as_str() {
        "http" => "80",
        "https" => "443",
        _ => return out,
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    // userinfo is not part of what the platform signs; the host is after it.
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (format!("{u}@"), h),
        None => (String::new(), authority),
    };
    let (host, port) = match hostport.rfind(':') {
        Some(i) if !hostport[i..].contains(']') => (&hostport[..i], Some(&hostport[i + 1..])),
        _ => (hostport, None),
    };
    if host.is_empty() {
        return out;
    }
    let variant = match port {
        None | Some("") => format!("{scheme}://{userinfo}{host}:{standard}{tail}"),
        Some(p) if p == standard => format!("{scheme}://{userinfo}{host}{tail}"),
        Some(_) => return out,
    };
    if variant != url {
        out.push(variant);
    }
    out
}

enum BodyDigest {
    Absent,
    Matches,
    Differs,
}

/// Checks `bodySHA256` in the query of `url` (the last one wins, as with the
/// SDK's dict) against the SHA-256 of `body`.
fn body_sha256_matches(url: &str, body: &str) -> BodyDigest {
    let query = url
        .split_once('?')
        .map(|(_, q)| q.split('#').next().unwrap_or(""))
        .unwrap_or("");
    let Some(expected) = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(k, _)| k == "bodySHA256")
        .map(|(_, v)| v.into_owned())
        .last()
    else {
        return BodyDigest::Absent;
    };
    let actual = hex::encode(digest::digest(&digest::SHA256, body.as_bytes()));
    // The digest is not secret, but compare in constant time all the same.
    #[allow(deprecated)]
    let same = ring::constant_time::verify_slices_are_equal(actual.as_bytes(), expected.as_bytes())
        .is_ok();
    if same {
        BodyDigest::Matches
    } else {
        BodyDigest::Differs
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    use super::{candidate_urls, form_concat, verify, Headers, Scheme, SigningKey, Verdict};

    fn sha1(sig: &str) -> Headers<'_> {
        Headers {
            sha1: Some(sig),
            ..Headers::default()
        }
    }

    /// The vectors of the SDK's `security.md`, all verified by the SDK.
    #[test]
    fn sdk_documentation_vectors() {
        let key = SigningKey::new("PSKtest1234567890abcdef");
        let body = br#"{"event":"call.state","params":{"call_id":"abc-123","state":"answered"}}"#;
        assert_eq!(
            verify(
                &key,
                "https://example.ngrok.io/webhook",
                sha1("c3c08c1fefaf9ee198a100d5906765a6f394bf0f"),
                body
            ),
            Verdict::Valid(Scheme::JsonSha1)
        );
        let form = SigningKey::new("12345");
        let body = b"CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212";
        assert_eq!(
            verify(
                &form,
                "https://mycompany.com/myapp.php?foo=1&bar=2",
                sha1("RSOYDt4T1cUTdK1PDd93/VVr8B8="),
                body
            ),
            Verdict::Valid(Scheme::Form)
        );
        assert_eq!(
            verify(
                &key,
                "https://example.ngrok.io/webhook?bodySHA256=69f3cbfc18e386ef8236cb7008cd5a54b7fed637a8cb3373b5a1591d7f0fd5f4",
                sha1("dfO9ek8mxyFtn2nMz24plPmPfIY="),
                br#"{"event":"call.state"}"#
            ),
            Verdict::Valid(Scheme::BodySha256)
        );
    }

    /// Vectors computed independently and accepted by the SDK's validators.
    #[test]
    fn independent_vectors() {
        let key = SigningKey::new("PSKtest1234");
        let url = "https://example.com/swaig";
        let body = br#"{"function":"get_hours","argument":{"parsed":[{}]},"call_id":"call-123"}"#;
        assert_eq!(
            verify(
                &key,
                url,
                sha1("4da6265711cce32448ed0ad998cf5c41d1b0eef4"),
                body
            ),
            Verdict::Valid(Scheme::JsonSha1)
        );
        let both = Headers {
            sha256: Some("b4bcf1595cfa8f1b9096a6e3d591ad9efdbacc94c16575d65994b1974d8c4108"),
            sha1: Some("wrong"),
            twilio: None,
        };
        assert_eq!(
            verify(&key, url, both, body),
            Verdict::Valid(Scheme::JsonSha256)
        );
        let form = b"To=%2B15551234567&From=%2B15557654321&CallSid=CA123&Digits=42";
        assert_eq!(
            form_concat(std::str::from_utf8(form).unwrap()),
            "CallSidCA123Digits42From+15557654321To+15551234567"
        );
        for u in [url, "https://example.com:443/swaig"] {
            assert_eq!(
                verify(&key, u, sha1("STul5t1nhEgQQ2Pm087h051qj14="), form),
                Verdict::Valid(Scheme::Form),
                "{u}"
            );
        }
        let body = br#"{"event":"call.state","call_id":"call-123"}"#;
        let url = "https://example.com/swaig?bodySHA256=addaf98480d4f76dde183419011ccce8d9136bc43944331630c722504a95702b";
        assert_eq!(
            verify(&key, url, sha1("jWnodMefZ93tibGCc2DBoPq8SXE="), body),
            Verdict::Valid(Scheme::BodySha256)
        );
        let longer = br#"{"event":"call.state","call_id":"call-123"} "#;
        assert_eq!(
            verify(&key, url, sha1("jWnodMefZ93tibGCc2DBoPq8SXE="), longer),
            Verdict::Rejected
        );
        // The live check against the SDK agent: plain http with a port.
        let live = "http://127.0.0.1:3999/swaig/";
        let body = br#"{"function":"get_hours","argument":{"parsed":[{}]},"call_id":"call-123"}"#;
        assert_eq!(
            verify(
                &key,
                live,
                sha1("01ee3dfbd268ec6689cc5f8b21b7ed1dece55bdd"),
                body
            ),
            Verdict::Valid(Scheme::JsonSha1)
        );
    }

    #[test]
    fn tampering_is_rejected() {
        let key = SigningKey::new("PSKtest1234");
        let url = "https://example.com/swaig";
        let body: &[u8] =
            br#"{"function":"get_hours","argument":{"parsed":[{}]},"call_id":"call-123"}"#;
        let good = "4da6265711cce32448ed0ad998cf5c41d1b0eef4";
        let cases: Vec<(&str, &str, Headers<'_>, &[u8])> = vec![
            ("other url", "https://example.com/swaig/", sha1(good), body),
            ("other host", "https://example.org/swaig", sha1(good), body),
            (
                "other body",
                url,
                sha1(good),
                br#"{"function":"get_hours"}"#,
            ),
            (
                "uppercase hex",
                url,
                sha1("4DA6265711CCE32448ED0AD998CF5C41D1B0EEF4"),
                body,
            ),
            ("no header", url, Headers::default(), body),
            ("empty header", url, sha1(""), body),
            ("not hex", url, sha1("zz"), body),
            (
                "sha256 value in sha1 header",
                url,
                sha1("b4bcf1595cfa8f1b9096a6e3d591ad9efdbacc94c16575d65994b1974d8c4108"),
                body,
            ),
            ("not utf-8", url, sha1(good), b"\xff"),
            (
                "wrong sha256, no sha1",
                url,
                Headers {
                    sha256: Some("00"),
                    ..Headers::default()
                },
                body,
            ),
        ];
        for (what, u, h, b) in cases {
            assert_eq!(verify(&key, u, h, b), Verdict::Rejected, "{what}");
        }
        let other = SigningKey::new("PSKtest12345");
        assert_eq!(verify(&other, url, sha1(good), body), Verdict::Rejected);
    }

    #[test]
    fn twilio_header_is_an_alias_used_only_without_the_signalwire_one() {
        let key = SigningKey::new("PSKtest1234");
        let url = "https://example.com/swaig";
        let body = br#"{"function":"get_hours","argument":{"parsed":[{}]},"call_id":"call-123"}"#;
        let good = "4da6265711cce32448ed0ad998cf5c41d1b0eef4";
        let alias = Headers {
            twilio: Some(good),
            ..Headers::default()
        };
        assert_eq!(
            verify(&key, url, alias, body),
            Verdict::Valid(Scheme::JsonSha1)
        );
        let shadowed = Headers {
            sha1: Some("00"),
            twilio: Some(good),
            sha256: None,
        };
        assert_eq!(verify(&key, url, shadowed, body), Verdict::Rejected);
    }

    #[test]
    fn form_signature_over_repeated_names_keeps_their_order() {
        let key = SigningKey::new("k");
        let url = "https://h/x";
        let body = "b=2&a=z&a=y&c";
        assert_eq!(form_concat(body), "azayb2c");
        let tag = ring::hmac::sign(
            &ring::hmac::Key::new(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, b"k"),
            b"https://h/xazayb2c",
        );
        let sig = base64::engine::general_purpose::STANDARD.encode(tag.as_ref());
        assert_eq!(
            verify(&key, url, sha1(&sig), body.as_bytes()),
            Verdict::Valid(Scheme::Form)
        );
        assert_eq!(
            verify(&key, url, sha1(&sig), b"b=2&a=y&a=z&c"),
            Verdict::Rejected
        );
    }

    #[test]
    fn default_port_variants() {
        let cases: Vec<(&str, Vec<&str>)> = vec![
            (
                "https://e.com/x",
                vec!["https://e.com/x", "https://e.com:443/x"],
            ),
            (
                "https://e.com:443/x?q=1",
                vec!["https://e.com:443/x?q=1", "https://e.com/x?q=1"],
            ),
            ("http://e.com", vec!["http://e.com", "http://e.com:80"]),
            (
                "http://e.com:80?a",
                vec!["http://e.com:80?a", "http://e.com?a"],
            ),
            (
                "http://127.0.0.1:3999/swaig/",
                vec!["http://127.0.0.1:3999/swaig/"],
            ),
            (
                "https://[::1]/x",
                vec!["https://[::1]/x", "https://[::1]:443/x"],
            ),
            (
                "https://[::1]:443/x",
                vec!["https://[::1]:443/x", "https://[::1]/x"],
            ),
            ("ftp://e.com/x", vec!["ftp://e.com/x"]),
            ("not a url", vec!["not a url"]),
        ];
        for (url, want) in cases {
            assert_eq!(candidate_urls(url), want, "{url}");
        }
    }
}
