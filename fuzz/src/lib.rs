//! The fuzz targets' bodies, shared by the libFuzzer binaries
//! (`fuzz_targets/`) and the stable corpus replay (`src/bin/replay.rs`).
//!
//! Each function takes arbitrary bytes, must never panic or hang, and checks
//! an oracle where one exists (a verdict that is only possible for genuine
//! input), so a logic error is a crash too, not only a panic.

use std::path::PathBuf;
use std::sync::OnceLock;

use serde_json::Value;
use swagent::agent::{load, load_report, Agent, LoadOptions};
use swagent::auth::{Credentials, Origin};
use swagent::call::body::CallBody;
use swagent::call::validate_arguments;
use swagent::template::{Context, Encoding, Template};
use swagent::token::{self, Expect, Secret, Verdict};

/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// The targets by name, for the replay binary.
pub const TARGETS: [(&str, Target); 6] = [
    ("basic_auth", basic_auth),
    ("token", token),
    ("template", template),
    ("agent_load", agent_load),
    ("swaig_args", swaig_args),
    ("signature", signature),
];

const USER: &str = "signalwire";
const PASSWORD: &str = "p:with:colons-0123456789";

fn creds() -> &'static Credentials {
    static C: OnceLock<Credentials> = OnceLock::new();
    C.get_or_init(|| Credentials::new(USER.into(), PASSWORD.into(), Origin::Configured))
}

/// The Basic Auth header parser. Oracle: a header is accepted only if it is
/// `Basic` (any case) and its base64 decodes to exactly `user:password`.
pub fn basic_auth(data: &[u8]) {
    let accepted = creds().check(Some(data)).is_ok();
    if accepted {
        let text = std::str::from_utf8(data).expect("accepted headers are UTF-8");
        let (scheme, rest) = text
            .trim()
            .split_once(' ')
            .expect("accepted headers have a scheme");
        assert!(scheme.eq_ignore_ascii_case("basic"));
        use base64::Engine as _;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .expect("accepted headers are base64");
        assert_eq!(decoded, format!("{USER}:{PASSWORD}").as_bytes());
    }
    let _ = creds().check(None);
}

const SECRET: &str = "fuzz-secret-0123456789abcdef";

/// The token decoder and verifier. Oracle: without the secret, random input
/// can never be `Valid`; a decodable token re-encodes to fields that match.
/// Inputs that start with `!` are a minted token with the rest appended, so
/// the fuzzer also works near genuine tokens.
pub fn token(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let secret = Secret::new(SECRET);
    let genuine = token::mint_with_nonce(
        &secret,
        "call-1",
        "get_balance",
        4_070_908_800,
        "0011223344556677",
    );
    let candidate = match text.strip_prefix('!') {
        Some(rest) => format!("{genuine}{rest}"),
        None => text.to_owned(),
    };
    let expect = Expect {
        function: Some("get_balance"),
        call_id: Some("call-1"),
        now: 1_700_000_000,
    };
    let (verdict, claims) = token::check(&secret, &candidate, expect);
    if verdict == Verdict::Valid {
        // Whitespace around a token is trimmed by design; nothing else may
        // differ from the one genuine token.
        assert_eq!(candidate.trim(), genuine, "forged token accepted");
    }
    if let Some(c) = claims {
        assert!(!c.call_id.is_empty() && !c.function.is_empty());
    }
    let _ = token::decode(&candidate);
    let _ = token::check(
        &secret,
        &candidate,
        Expect {
            function: None,
            call_id: None,
            now: 0,
        },
    );
}

fn env(name: &str) -> Option<String> {
    (name == "SET").then(|| "env-value".to_owned())
}

/// The template parser and renderer. The input is `TEMPLATE\0ARGS_JSON`.
/// Oracles: a parsed template prints back as its source; rendering with
/// every encoding works on any arguments or fails only for a missing
/// response or env value; URL rendering of values yields only unreserved
/// characters and escapes outside the literal text.
pub fn template(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (source, args) = text.split_once('\0').unwrap_or((text, "{}"));
    let Ok(t) = Template::parse(source) else {
        return;
    };
    assert_eq!(t.to_string(), source, "parse is not lossless");
    let args: Value = serde_json::from_str(args).unwrap_or(Value::Null);
    let response = serde_json::json!({"id": "x", "a": {"b": [1, "${env:SET}"]}});
    for response in [None, Some(&response)] {
        let ctx = Context {
            args: &args,
            call_id: "call-1",
            global_data: &args,
            meta_data: &args,
            response,
            env: &env,
        };
        for encoding in [Encoding::Text, Encoding::Url] {
            let _ = t.render(&ctx, encoding);
        }
        let _ = t.render_json(&ctx);
    }
}

fn scratch() -> &'static PathBuf {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("swagent-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("the temp dir is writable");
        dir.join("agent.yaml")
    })
}

/// The agent file loader (what `validate`, `serve` and reload read), with
/// every output format of its report. Oracle: loading never panics or fails
/// with an io error on a readable file, and an agent comes back only when
/// the report has no error.
pub fn agent_load(data: &[u8]) {
    let path = scratch();
    std::fs::write(path, data).expect("the scratch file is writable");
    for strict in [false, true] {
        let (agent, report) = load_report(path, LoadOptions { strict })
            .expect("a readable file is never an io error");
        if agent.is_some() {
            assert!(report.passes(false), "an agent came back with errors");
        }
        let _ = report.human();
        let _ = report.github();
        let _ = report.json(strict);
    }
}

fn bank() -> &'static Agent {
    static A: OnceLock<Agent> = OnceLock::new();
    A.get_or_init(|| {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../agents/bank.yaml");
        load(&path, LoadOptions::default())
            .expect("agents/bank.yaml loads")
            .0
    })
}

/// The SWAIG body: JSON parsing, argument extraction and schema validation,
/// against every function of agents/bank.yaml. Oracles: the body is accepted
/// exactly when it is a JSON object (as a whole-`Value` parse decides) and
/// names the same function; arguments that pass validation are an object
/// and satisfy the compiled schema.
pub fn swaig_args(data: &[u8]) {
    let whole = serde_json::from_slice::<Value>(data);
    let parsed = CallBody::parse(data);
    assert_eq!(
        parsed.is_ok(),
        matches!(whole, Ok(Value::Object(_))),
        "{parsed:?}"
    );
    let Ok(body) = parsed else {
        return;
    };
    assert_eq!(
        body.function.as_ref(),
        whole.ok().as_ref().and_then(|v| v.get("function"))
    );
    let Ok(args) = body.arguments() else {
        return;
    };
    for function in bank().functions.values() {
        if validate_arguments(function, &args).is_ok() {
            assert!(args.is_object());
            assert!(function.validator.is_valid(&args));
        }
    }
}

const SIGNING_KEY: &str = "PSKtest1234";

fn signing_key() -> &'static swagent::signature::SigningKey {
    static K: OnceLock<swagent::signature::SigningKey> = OnceLock::new();
    K.get_or_init(|| swagent::signature::SigningKey::new(SIGNING_KEY))
}

fn hmac_hex(alg: ring::hmac::Algorithm, message: &[u8]) -> String {
    hex::encode(ring::hmac::sign(
        &ring::hmac::Key::new(alg, SIGNING_KEY.as_bytes()),
        message,
    ))
}

/// The request-signature verifier. Input: `url\nsha256 header\nsha1 header\nbody`.
/// Oracle: the hex schemes are valid only when their header is exactly the
/// HMAC of url + body under the key (computed here independently with ring).
pub fn signature(data: &[u8]) {
    use swagent::signature::{verify, Headers, Scheme, Verdict as SigVerdict};
    let mut parts = data.splitn(4, |b| *b == b'\n');
    let url = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let sha256 = parts
        .next()
        .map(|b| String::from_utf8_lossy(b).into_owned());
    let sha1 = parts
        .next()
        .map(|b| String::from_utf8_lossy(b).into_owned());
    let body = parts.next().unwrap_or_default();
    let message = [url.as_bytes(), body].concat();
    for twilio in [false, true] {
        let headers = Headers {
            sha256: sha256.as_deref(),
            sha1: sha1.as_deref().filter(|_| !twilio),
            twilio: sha1.as_deref().filter(|_| twilio),
        };
        match verify(signing_key(), &url, headers, body) {
            SigVerdict::Valid(Scheme::JsonSha256) => {
                assert_eq!(
                    sha256.as_deref(),
                    Some(hmac_hex(ring::hmac::HMAC_SHA256, &message).as_str())
                );
            }
            SigVerdict::Valid(Scheme::JsonSha1) => {
                let want = hmac_hex(ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, &message);
                assert_eq!(sha1.as_deref(), Some(want.as_str()));
            }
            SigVerdict::Valid(_) | SigVerdict::Rejected => {}
        }
    }
}
