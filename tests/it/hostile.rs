//! The bad input catalogue (issue 9): one table of hostile requests against
//! one real server serving a copy of `agents/bank.yaml`, and a second one
//! with a signing key and `SWML_ALLOWED_HOSTS`, each row with the exact status
//! and `error` code it must get.
//!
//! For every row: nothing the row is not meant to run has run (the bank's
//! `get_balance` script touches a marker), the answer is HTTP (no reset, no
//! 5xx), and the body never holds the password, the token secret or the
//! signing key (SWML aside, whose webhook URLs carry the password by design,
//! and only towards the request's own host). The table's servers switch off
//! the failed-authentication lock-out and the flood guard, which would turn
//! it into 429s; [`the_lock_out_counts_every_kind_of_failed_credential`]
//! proves the lock-out itself.

use std::io::Write as _;
use std::path::Path;

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine as _;
use ring::hmac;
use serde_json::{json, Value};
use swagent::token::{mint_with_nonce, Secret};

use crate::raw::{Answer, Raw};
use crate::serve::urlencode;
use crate::util::{sandbox, Server, Swagent, PASSWORD, SECRET, USER};

const KEY: &str = "PSK-hostile-signing-key-0123";
const HOURS: &str = "We are open 9 to 5, Monday to Friday.";
const BALANCE: &str = "The balance of the account ending in 5678 is 1,234.56 dollars.";
const NOT_JSON_ARGS: &str = "The arguments were not valid JSON. Please try again.";
const NOT_OBJECT_ARGS: &str = "The arguments must be an object. Please try again.";
const REQUIRED: &str = r#"Some arguments are not acceptable: "account" is a required property. Please ask the caller again."#;
const ACCOUNT: &str = "12345678";
const CALL: &str = "call-1";
const MIB: usize = 1024 * 1024;

/// A copy of `agents/` whose `get_balance` script touches `agents/ran`, and
/// whose `get_balance` schema refuses extra properties.
fn bank() -> tempfile::TempDir {
    let dir = sandbox();
    let script = dir.path().join("agents/scripts/balance.sh");
    let text = std::fs::read_to_string(&script).unwrap();
    let marked = text.replacen("set -eu\n", "set -eu\ntouch ran\n", 1);
    assert_ne!(text, marked, "balance.sh changed shape");
    std::fs::write(&script, marked).unwrap();
    let yaml = dir.path().join("agents/bank.yaml");
    let text = std::fs::read_to_string(&yaml).unwrap();
    let closed = text.replacen(
        "      required: [account]\n",
        "      required: [account]\n      additionalProperties: false\n",
        1,
    );
    assert_ne!(text, closed, "bank.yaml changed shape");
    std::fs::write(&yaml, closed).unwrap();
    dir
}

fn start(dir: &Path, envs: &[(&str, &str)]) -> Server {
    let mut s = Swagent::new(["serve", "agents/bank.yaml"])
        .creds()
        .dir(dir)
        .env("SWML_RATE_LIMIT", "0")
        .env("SWAGENT_AUTH_FAILURE_LIMIT", "0");
    for (k, v) in envs {
        s = s.env(k, v);
    }
    s.start()
}

/// Which server a row goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum To {
    /// No signing key, any `Host`.
    Open,
    /// `SIGNALWIRE_SIGNING_KEY` and `SWML_ALLOWED_HOSTS=127.0.0.1`.
    Strict,
}

/// What a row must get.
#[derive(Debug, Clone)]
enum Want {
    /// This status and `{"error": code, "message": ...}`.
    Err(u16, &'static str),
    /// This status from the HTTP layer, with no JSON body.
    Bare(u16),
    /// 200 `{"response": text}`, and the marked handler did not run.
    Say(String),
    /// 200 `{"response": text}`, and the marked handler ran.
    Ran(String),
    /// 200 SWML whose webhook URLs all start with `http://u:p@{host}/`
    /// (`None`: the server's own `127.0.0.1:PORT`).
    Swml(Option<&'static str>),
}

struct Row {
    name: &'static str,
    to: To,
    req: Raw,
    want: Want,
}

fn row(name: &'static str, req: Raw, want: Want) -> Row {
    Row {
        name,
        to: To::Open,
        req,
        want,
    }
}

fn strict(name: &'static str, req: Raw, want: Want) -> Row {
    Row {
        name,
        to: To::Strict,
        req,
        want,
    }
}

fn say(text: &str) -> Want {
    Want::Say(text.to_owned())
}

/// The reply for an `account` that does not match its pattern.
fn bad_account(value: &str) -> Want {
    // The reason is cut at 200 characters, so a huge value never comes back whole.
    let why = format!(
        "{} does not match \"^[0-9]{{6,12}}$\"",
        Value::String(value.to_owned())
    );
    let why = if why.chars().count() > 200 {
        format!("{}…", why.chars().take(200).collect::<String>())
    } else {
        why
    };
    Want::Say(format!(
        "Some arguments are not acceptable: the argument `account` is invalid: {why}. Please ask the caller again."
    ))
}

fn basic(creds: &[u8]) -> Vec<u8> {
    format!("Basic {}", STANDARD.encode(creds)).into_bytes()
}

fn good_creds() -> Vec<u8> {
    basic(format!("{USER}:{PASSWORD}").as_bytes())
}

/// `GET /` with these `Authorization` bytes.
fn swml_with(auth: Vec<u8>) -> Raw {
    Raw::new("GET", "/").h("Authorization", auth)
}

fn swaig(query: &str, body: &Value) -> Raw {
    Raw::new("POST", format!("/swaig{query}")).auth().json(body)
}

fn q(token: &str) -> String {
    format!("?__token={}", urlencode(token))
}

fn balance(args: Value) -> Value {
    json!({"function": "get_balance", "call_id": CALL, "argument": {"parsed": [args]}})
}

fn hours() -> Value {
    json!({"function": "get_hours", "call_id": CALL})
}

/// `{"function": "get_hours", "argument": ...}` nested `depth` arrays deep.
fn nested(depth: usize) -> Vec<u8> {
    format!(
        r#"{{"function":"get_hours","argument":{}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    )
    .into_bytes()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// A chunked body of `total` bytes in chunks of `size`, written by hand.
fn chunked(total: usize, size: usize) -> Vec<u8> {
    let mut body = Vec::new();
    let mut left = total;
    while left > 0 {
        let n = left.min(size);
        body.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        body.extend(std::iter::repeat_n(b' ', n));
        body.extend_from_slice(b"\r\n");
        left -= n;
    }
    body.extend_from_slice(b"0\r\n\r\n");
    body
}

fn sha256_sig(url: &str, body: &[u8]) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, KEY.as_bytes());
    let mut msg = url.as_bytes().to_vec();
    msg.extend_from_slice(body);
    hex::encode(hmac::sign(&key, &msg))
}

/// Every row. `strict_url` is the strict server's base URL, which the
/// signatures cover.
fn catalogue(strict_url: &str) -> Vec<Row> {
    let s = Secret::new(SECRET);
    let now = swagent::clock::now();
    let nonce = "0011223344556677";
    let token = mint_with_nonce(&s, CALL, "get_balance", now + 600, nonce);
    let other_secret = Secret::new("another-secret-0123456789abcdef");
    // The same token with its signature in uppercase hex (the SDK refuses it).
    let upper = {
        let text = String::from_utf8(URL_SAFE.decode(&token).unwrap()).unwrap();
        let (head, sig) = text.rsplit_once('.').unwrap();
        URL_SAFE.encode(format!("{head}.{}", sig.to_ascii_uppercase()))
    };
    // A call id whose token needs base64 padding.
    let padded = mint_with_nonce(&s, "call-12", "get_balance", now + 600, nonce);
    assert!(padded.ends_with('='));
    let padded_args = json!({"function": "get_balance", "call_id": "call-12", "argument": {"parsed": [{"account": ACCOUNT}]}});
    let dotted = mint_with_nonce(&s, "root.2", "get_balance", now + 600, nonce);
    // A token for a call id with `:` in it, split again with the same
    // signature: call `A`, an expiry of the caller's choosing, and the rest
    // of the signed text as the nonce. The Python SDK (3.7.5) takes it.
    let never_expires = {
        let minted = mint_with_nonce(
            &s,
            "A:get_balance:99999999999:x",
            "get_balance",
            now + 600,
            nonce,
        );
        let text = String::from_utf8(URL_SAFE.decode(&minted).unwrap()).unwrap();
        let sig = text.rsplit('.').next().unwrap();
        URL_SAFE.encode(format!(
            "A.get_balance.99999999999.x:get_balance:{}:{nonce}.{sig}",
            now + 600
        ))
    };
    let good_args = || balance(json!({ "account": ACCOUNT }));
    let marker_for = |v: &str| balance(json!({ "account": v }));
    let signed = |path: &str, body: &Value| {
        let body = body.to_string();
        let sig = sha256_sig(&format!("{strict_url}{path}"), body.as_bytes());
        Raw::new("POST", path.to_owned())
            .h("Content-Type", "application/json")
            .h("X-SignalWire-Sha256-Signature", sig)
            .body(body)
    };
    let unsigned = |path: &str, body: &Value| Raw::new("POST", path.to_owned()).auth().json(body);
    let long = |n: usize| "a".repeat(n);

    vec![
        // --- credentials: every one a 401 with a challenge, before anything runs.
        row("no credentials", Raw::new("GET", "/"), Want::Err(401, "unauthorized")),
        row("wrong password", swml_with(basic(format!("{USER}:{PASSWORD}x").as_bytes())), Want::Err(401, "unauthorized")),
        row("wrong user", swml_with(basic(format!("x:{PASSWORD}").as_bytes())), Want::Err(401, "unauthorized")),
        row("password with a trailing space", swml_with(basic(format!("{USER}:{PASSWORD} ").as_bytes())), Want::Err(401, "unauthorized")),
        row("empty Authorization", swml_with(Vec::new()), Want::Err(401, "unauthorized")),
        row("scheme only", swml_with(b"Basic".to_vec()), Want::Err(401, "unauthorized")),
        row("Bearer scheme", swml_with(format!("Bearer {PASSWORD}").into_bytes()), Want::Err(401, "unauthorized")),
        row("not base64", swml_with(b"Basic !!!not-base64!!!".to_vec()), Want::Err(401, "unauthorized")),
        row("extra base64 padding", swml_with([good_creds(), b"==".to_vec()].concat()), Want::Err(401, "unauthorized")),
        row("good header cut by one byte", swml_with(good_creds()[..good_creds().len() - 1].to_vec()), Want::Err(401, "unauthorized")),
        row("no colon", swml_with(basic(USER.as_bytes())), Want::Err(401, "unauthorized")),
        row("NUL after the password", swml_with(basic(format!("{USER}:{PASSWORD}\0").as_bytes())), Want::Err(401, "unauthorized")),
        row("non-UTF-8 credentials", swml_with(basic(b"u:\xff\xfe")), Want::Err(401, "unauthorized")),
        row("non-UTF-8 header bytes", swml_with(b"Basic \xff\xfe\xfd".to_vec()), Want::Err(401, "unauthorized")),
        row("tab after the scheme", swml_with([b"Basic\t".to_vec(), good_creds()[6..].to_vec()].concat()), Want::Err(401, "unauthorized")),
        row("wrong then right Authorization", Raw::new("GET", "/").h("Authorization", basic(b"u:wrong")).h("Authorization", good_creds()), Want::Err(401, "unauthorized")),
        row("16 KB Authorization", swml_with(format!("Basic {}", long(16 * 1024)).into_bytes()), Want::Err(401, "unauthorized")),
        row("NUL byte in the header", swml_with(b"Basic \0abc".to_vec()), Want::Bare(400)),
        row("64 KB Authorization", swml_with(format!("Basic {}", long(64 * 1024)).into_bytes()), Want::Err(401, "unauthorized")),
        row("256 KB Authorization", swml_with(format!("Basic {}", long(256 * 1024)).into_bytes()), Want::Bare(431)),
        row("lower-case scheme", swml_with([b"basic".to_vec(), good_creds()[5..].to_vec()].concat()), Want::Swml(None)),
        row("upper-case scheme", swml_with([b"BASIC".to_vec(), good_creds()[5..].to_vec()].concat()), Want::Swml(None)),
        row("two spaces after the scheme", swml_with([b"Basic ".to_vec(), good_creds()[5..].to_vec()].concat()), Want::Swml(None)),
        row("no credentials on /swaig", Raw::new("POST", "/swaig").json(&good_args()), Want::Err(401, "unauthorized")),
        row("no credentials with a valid token", Raw::new("POST", q(&token).replace('?', "/swaig?")).json(&good_args()), Want::Err(401, "unauthorized")),
        // --- tokens: every one a 403, and the secure function never runs.
        row("token missing", swaig("", &good_args()), Want::Err(403, "invalid_token")),
        row("token empty", swaig("?__token=", &good_args()), Want::Err(403, "invalid_token")),
        row("token garbage", swaig("?__token=not-a-token", &good_args()), Want::Err(403, "invalid_token")),
        row("token truncated", swaig(&q(&token[..token.len() - 8]), &good_args()), Want::Err(403, "invalid_token")),
        row("token padding stripped", swaig(&q(padded.trim_end_matches('=')), &padded_args), Want::Err(403, "invalid_token")),
        row("token with padding (control)", swaig(&q(&padded), &padded_args), Want::Ran(BALANCE.into())),
        row("token padding doubled", swaig(&q(&format!("{token}==")), &good_args()), Want::Err(403, "invalid_token")),
        row("token for another function", swaig(&q(&mint_with_nonce(&s, CALL, "transfer", now + 600, nonce)), &good_args()), Want::Err(403, "invalid_token")),
        row("token for another call", swaig(&q(&mint_with_nonce(&s, "call-2", "get_balance", now + 600, nonce)), &good_args()), Want::Err(403, "invalid_token")),
        row("token expired", swaig(&q(&mint_with_nonce(&s, CALL, "get_balance", now - 1, nonce)), &good_args()), Want::Err(403, "invalid_token")),
        row("token forged with another secret", swaig(&q(&mint_with_nonce(&other_secret, CALL, "get_balance", now + 600, nonce)), &good_args()), Want::Err(403, "invalid_token")),
        row("token signature in upper case", swaig(&q(&upper), &good_args()), Want::Err(403, "invalid_token")),
        row("token 10 KB", swaig(&q(&URL_SAFE.encode(long(7500))), &good_args()), Want::Err(403, "invalid_token")),
        row("token percent-garbage", swaig("?__token=%ff%fe%00", &good_args()), Want::Err(403, "invalid_token")),
        // `token` is read when `__token` is absent or empty, as the Python SDK reads it.
        row("token under `token` (control)", swaig(&format!("?token={}", urlencode(&token)), &good_args()), Want::Ran(BALANCE.into())),
        row("token under `token`, empty `__token` (control)", swaig(&format!("?__token=&token={}", urlencode(&token)), &good_args()), Want::Ran(BALANCE.into())),
        row("bad `__token` beside a good `token`", swaig(&format!("?__token=bad&token={}", urlencode(&token)), &good_args()), Want::Err(403, "invalid_token")),
        row("good `token` after a bad `__token`", swaig(&format!("?token={}&__token=bad", urlencode(&token)), &good_args()), Want::Err(403, "invalid_token")),
        row("`token` empty", swaig("?token=", &good_args()), Want::Err(403, "invalid_token")),
        row("`token` forged", swaig(&format!("?token={}", urlencode(&mint_with_nonce(&other_secret, CALL, "get_balance", now + 600, nonce))), &good_args()), Want::Err(403, "invalid_token")),
        row("token in the body", swaig("", &json!({"function": "get_balance", "call_id": CALL, "__token": token, "argument": {"parsed": [{"account": ACCOUNT}]}})), Want::Err(403, "invalid_token")),
        row("token, bad one first", swaig(&format!("?__token=bad&__token={}", urlencode(&token)), &good_args()), Want::Err(403, "invalid_token")),
        // The Python SDK reads the last of a repeated name and swagent would
        // read the first: a repeated name is refused, so no two readers differ.
        row("token, good one first", swaig(&format!("?__token={}&__token=bad", urlencode(&token)), &good_args()), Want::Err(403, "invalid_token")),
        row("the same good token twice", swaig(&format!("?__token={0}&__token={0}", urlencode(&token)), &good_args()), Want::Err(403, "invalid_token")),
        row("`token` twice", swaig(&format!("?token={0}&token={0}", urlencode(&token)), &good_args()), Want::Err(403, "invalid_token")),
        row("`token` twice beside a good `__token`", swaig(&format!("?__token={0}&token=a&token=b", urlencode(&token)), &good_args()), Want::Err(403, "invalid_token")),
        row("token without a call id in the body", swaig(&q(&token), &json!({"function": "get_balance", "argument": {"parsed": [{"account": ACCOUNT}]}})), Want::Err(403, "invalid_token")),
        row("SDK token for a dotted call id, other call", swaig(&q(&dotted), &json!({"function": "get_balance", "call_id": "2", "argument": {"parsed": [{"account": ACCOUNT}]}})), Want::Err(403, "invalid_token")),
        row("token re-split to never expire (call id with `:`)", swaig(&q(&never_expires), &json!({"function": "get_balance", "call_id": "A", "argument": {"parsed": [{"account": ACCOUNT}]}})), Want::Err(403, "invalid_token")),
        row("SWML for a call id with `:`", Raw::new("GET", "/?call_id=A:get_balance:99999999999:x").auth(), Want::Err(400, "invalid_call_id")),
        row("SDK token for a dotted call id", swaig(&q(&dotted), &json!({"function": "get_balance", "call_id": "root.2", "argument": {"parsed": [{"account": ACCOUNT}]}})), Want::Ran(BALANCE.into())),
        row("post_prompt without a token", Raw::new("POST", "/post_prompt").auth().json(&json!({"call_id": CALL, "post_prompt_data": {"raw": "x"}})), Want::Err(403, "invalid_token")),
        row("post_prompt with a function's token", Raw::new("POST", format!("/post_prompt{}", q(&token))).auth().json(&json!({"call_id": CALL, "post_prompt_data": {"raw": "x"}})), Want::Err(403, "invalid_token")),
        row("valid token and arguments (control)", swaig(&q(&token), &good_args()), Want::Ran(BALANCE.into())),
        // --- bodies.
        row("body not JSON", swaig("", &json!(null)).body("function=get_hours"), Want::Err(400, "bad_request")),
        row("body a JSON array", swaig("", &json!([hours()])), Want::Err(400, "bad_request")),
        row("body null", swaig("", &json!(null)), Want::Err(400, "bad_request")),
        row("body a number", swaig("", &json!(7)), Want::Err(400, "bad_request")),
        row("body a string", swaig("", &json!("get_hours")), Want::Err(400, "bad_request")),
        row("body empty", swaig("", &json!(null)).body(""), Want::Err(400, "bad_request")),
        row("JSON nested 10k levels", swaig("", &json!(null)).body(nested(10_000)), Want::Err(400, "bad_request")),
        row("JSON nested 100 levels", swaig("", &json!(null)).body(nested(100)), say(HOURS)),
        row("duplicate `function`, secure one last", swaig("", &json!(null)).body(r#"{"function":"get_hours","function":"get_balance","call_id":"call-1","argument":{"parsed":[{"account":"12345678"}]}}"#), Want::Err(403, "invalid_token")),
        row("duplicate `function`, open one last", swaig("", &json!(null)).body(r#"{"function":"get_balance","function":"get_hours"}"#), say(HOURS)),
        row("900 KB string in an unused field", swaig("", &json!({"function": "get_hours", "pad": long(900 * 1024)})), say(HOURS)),
        row("body of 1 MiB + 1 byte", swaig("", &json!(null)).body(vec![b' '; MIB + 1]), Want::Err(413, "payload_too_large")),
        row("chunked body over the limit", swaig("", &json!(null)).h("Transfer-Encoding", "chunked").no_length().body(chunked(MIB + 1, 256 * 1024)), Want::Err(413, "payload_too_large")),
        row("chunked body with a bad chunk size", swaig("", &json!(null)).h("Transfer-Encoding", "chunked").no_length().body("zz\r\n{}\r\n0\r\n\r\n"), Want::Err(400, "bad_request")),
        row("Content-Length shorter than the body", swaig("", &hours()).no_length().h("Content-Length", "5"), Want::Err(400, "bad_request")),
        row("Content-Length not a number", swaig("", &hours()).no_length().h("Content-Length", "12abc"), Want::Bare(400)),
        row("Content-Length and chunked both", swaig("", &json!(null)).h("Transfer-Encoding", "chunked").body("0\r\n\r\n"), Want::Bare(400)),
        row("Content-Type text/plain", Raw::new("POST", "/swaig").auth().h("Content-Type", "text/plain").body(hours().to_string()), Want::Err(415, "unsupported_media_type")),
        row("Content-Type missing", Raw::new("POST", "/swaig").auth().body(hours().to_string()), Want::Err(415, "unsupported_media_type")),
        row("Content-Type application/json-seq", Raw::new("POST", "/swaig").auth().h("Content-Type", "application/json-seq").body(hours().to_string()), Want::Err(415, "unsupported_media_type")),
        row("Content-Type with a charset", Raw::new("POST", "/swaig").auth().h("Content-Type", "application/json; charset=utf-8").body(hours().to_string()), say(HOURS)),
        row("Content-Type upper case", Raw::new("POST", "/swaig").auth().h("Content-Type", "APPLICATION/JSON").body(hours().to_string()), say(HOURS)),
        row("gzip garbage", swaig("", &json!(null)).h("Content-Encoding", "gzip").body(b"\x1f\x8b\x08garbage-not-deflate".to_vec()), Want::Err(415, "unsupported_encoding")),
        // Content codings are never decoded: no gzip bomb can go off.
        row("gzip bomb (10 MiB of zeros)", swaig("", &json!(null)).h("Content-Encoding", "gzip").body(gzip(&vec![0u8; 10 * MIB])), Want::Err(415, "unsupported_encoding")),
        row("gzip JSON", swaig("", &json!(null)).h("Content-Encoding", "gzip").body(gzip(hours().to_string().as_bytes())), Want::Err(415, "unsupported_encoding")),
        row("unknown Content-Encoding on plain JSON", swaig("", &hours()).h("Content-Encoding", "x-evil"), Want::Err(415, "unsupported_encoding")),
        row("identity Content-Encoding", swaig("", &hours()).h("Content-Encoding", "identity"), say(HOURS)),
        // --- encodings.
        row("UTF-16 body with a BOM", swaig("", &json!(null)).body([vec![0xff, 0xfe], hours().to_string().encode_utf16().flat_map(u16::to_le_bytes).collect()].concat()), Want::Err(400, "bad_request")),
        row("UTF-8 BOM before the JSON", swaig("", &json!(null)).body([b"\xef\xbb\xbf".to_vec(), hours().to_string().into_bytes()].concat()), Want::Err(400, "bad_request")),
        row("invalid UTF-8 in a JSON string", swaig("", &json!(null)).body(b"{\"function\":\"get_hours\",\"x\":\"\xff\xfe\"}".to_vec()), Want::Err(400, "bad_request")),
        row("lone surrogate escape", swaig("", &json!(null)).body(r#"{"function":"get_hours","x":"\ud800"}"#), Want::Err(400, "bad_request")),
        // --- function names.
        row("function missing", swaig("", &json!({"call_id": CALL})), Want::Err(400, "bad_request")),
        row("function unknown", swaig("", &json!({"function": "nope"})), Want::Err(404, "unknown_function")),
        row("function empty", swaig("", &json!({"function": ""})), Want::Err(400, "bad_request")),
        row("function a number", swaig("", &json!({"function": 7})), Want::Err(400, "bad_request")),
        row("function null", swaig("", &json!({"function": null})), Want::Err(400, "bad_request")),
        row("function an array", swaig("", &json!({"function": ["get_hours"]})), Want::Err(400, "bad_request")),
        row("function path traversal", swaig("", &json!({"function": "../scripts/balance.sh"})), Want::Err(404, "unknown_function")),
        row("function 10 KB", swaig("", &json!({"function": long(10 * 1024)})), Want::Err(404, "unknown_function")),
        row("function `post_prompt`", swaig("", &json!({"function": "post_prompt", "call_id": CALL})), Want::Err(404, "unknown_function")),
        row("function with a NUL", swaig("", &json!({"function": "get_hours\u{0}"})), Want::Err(404, "unknown_function")),
        row("function in upper case", swaig("", &json!({"function": "GET_HOURS"})), Want::Err(404, "unknown_function")),
        // --- arguments: 200 with a message for the AI, nothing run.
        row("argument of the wrong type", swaig(&q(&token), &balance(json!({"account": 12_345_678}))), say(r#"Some arguments are not acceptable: the argument `account` is invalid: 12345678 is not of type "string". Please ask the caller again."#)),
        row("argument not allowed", swaig(&q(&token), &balance(json!({"account": ACCOUNT, "admin": true}))), say(r#"Some arguments are not acceptable: Additional properties are not allowed ('admin' was unexpected). Please ask the caller again."#)),
        row("argument missing", swaig(&q(&token), &balance(json!({}))), say(REQUIRED)),
        row("argument too short", swaig(&q(&token), &marker_for("12")), bad_account("12")),
        row("argument.raw not JSON", swaig(&q(&token), &json!({"function": "get_balance", "call_id": CALL, "argument": {"raw": "{account: 1"}})), say(NOT_JSON_ARGS)),
        row("argument.raw a JSON array", swaig(&q(&token), &json!({"function": "get_balance", "call_id": CALL, "argument": {"raw": "[1]"}})), say(NOT_OBJECT_ARGS)),
        row("argument.parsed an object", swaig(&q(&token), &json!({"function": "get_balance", "call_id": CALL, "argument": {"parsed": {"account": ACCOUNT}}})), say(REQUIRED)),
        row("argument.parsed [null]", swaig(&q(&token), &json!({"function": "get_balance", "call_id": CALL, "argument": {"parsed": [null]}})), say(NOT_OBJECT_ARGS)),
        row("argument a string", swaig(&q(&token), &json!({"function": "get_balance", "call_id": CALL, "argument": "account=12345678"})), say(REQUIRED)),
        row("injection: `;`", swaig(&q(&token), &marker_for("12345678; touch ran")), bad_account("12345678; touch ran")),
        row("injection: `$(...)`", swaig(&q(&token), &marker_for("$(touch ran)")), bad_account("$(touch ran)")),
        row("injection: backticks", swaig(&q(&token), &marker_for("`touch ran`")), bad_account("`touch ran`")),
        row("injection: newline", swaig(&q(&token), &marker_for("12345678\ntouch ran")), bad_account("12345678\ntouch ran")),
        row("injection: option", swaig(&q(&token), &marker_for("--account=1 && id")), bad_account("--account=1 && id")),
        row("injection: path", swaig(&q(&token), &marker_for("../../../etc/passwd")), bad_account("../../../etc/passwd")),
        row("argument 100 KB", swaig(&q(&token), &marker_for(&long(100 * 1024))), bad_account(&long(100 * 1024))),
        row("injection: template", swaig(&q(&token), &marker_for("${env:PATH}")), bad_account("${env:PATH}")),
        // --- methods.
        row("GET /swaig", Raw::new("GET", "/swaig").auth(), Want::Err(405, "method_not_allowed")),
        row("PUT /swaig", swaig("", &hours()).method("PUT"), Want::Err(405, "method_not_allowed")),
        row("DELETE /swaig", Raw::new("DELETE", "/swaig").auth(), Want::Err(405, "method_not_allowed")),
        row("PATCH /swaig", swaig("", &hours()).method("PATCH"), Want::Err(405, "method_not_allowed")),
        row("OPTIONS /swaig", Raw::new("OPTIONS", "/swaig").auth(), Want::Err(405, "method_not_allowed")),
        row("HEAD /swaig", Raw::new("HEAD", "/swaig").auth(), Want::Bare(405)),
        row("made-up method", Raw::new("BREW", "/swaig").auth(), Want::Err(405, "method_not_allowed")),
        row("PUT /swaig without credentials", Raw::new("PUT", "/swaig"), Want::Err(401, "unauthorized")),
        row("GET /post_prompt", Raw::new("GET", "/post_prompt").auth(), Want::Err(405, "method_not_allowed")),
        row("DELETE /", Raw::new("DELETE", "/").auth(), Want::Err(405, "method_not_allowed")),
        // --- paths.
        row("/../etc/passwd", Raw::new("GET", "/../etc/passwd").auth(), Want::Err(404, "not_found")),
        row("/../etc/passwd without credentials", Raw::new("GET", "/../etc/passwd"), Want::Err(401, "unauthorized")),
        row("/%2e%2e/etc/passwd", Raw::new("GET", "/%2e%2e/etc/passwd").auth(), Want::Err(404, "not_found")),
        row("//swaig", swaig("", &hours()).target("//swaig"), Want::Err(404, "not_found")),
        row("/swaig%2F", swaig("", &hours()).target("/swaig%2F"), Want::Err(404, "not_found")),
        row("/%73waig (an encoded letter)", swaig("", &hours()).target("/%73waig"), say(HOURS)),
        row("/scripts/balance.sh", Raw::new("GET", "/scripts/balance.sh").auth(), Want::Err(404, "not_found")),
        row("8 KB path", Raw::new("GET", format!("/{}", long(8 * 1024))).auth(), Want::Err(404, "not_found")),
        row("64 KB path", Raw::new("GET", format!("/{}", long(64 * 1024))).auth(), Want::Bare(400)),
        row("absolute-form target", swaig("", &hours()).target("http://evil.example.com/swaig"), say(HOURS)),
        // --- headers: Host and forwarded headers on the open server.
        row("X-Forwarded-Host/Proto without --trust-proxy", Raw::new("GET", "/").auth().h("X-Forwarded-Host", "evil.example.com").h("X-Forwarded-Proto", "https"), Want::Swml(None)),
        row("Forwarded without --trust-proxy", Raw::new("GET", "/").auth().h("Forwarded", "host=evil.example.com;proto=https"), Want::Swml(None)),
        row("Host another name (no allow-list)", Raw::new("GET", "/").auth().host(Some(b"agent.example.com")), Want::Swml(Some("agent.example.com"))),
        row("Host with a space", Raw::new("GET", "/").auth().host(Some(b"evil example")), Want::Err(400, "bad_request")),
        row("Host with user info", Raw::new("GET", "/").auth().host(Some(b"u:p@evil.example.com")), Want::Err(400, "bad_request")),
        row("Host with a path", Raw::new("GET", "/").auth().host(Some(b"evil.example.com/x?")), Want::Err(400, "bad_request")),
        row("Host empty", Raw::new("GET", "/").auth().host(Some(b"")), Want::Err(400, "bad_request")),
        row("Host 300 characters", Raw::new("GET", "/").auth().host(Some(long(300).as_bytes())), Want::Err(400, "bad_request")),
        row("Host not UTF-8", Raw::new("GET", "/").auth().host(Some(b"\xff\xfe")), Want::Err(400, "bad_request")),
        row("no Host (HTTP/1.1)", Raw::new("GET", "/").auth().host(None), Want::Bare(400)),
        row("no Host (HTTP/1.0)", Raw { version: "HTTP/1.0", ..Raw::new("GET", "/").auth().host(None) }, Want::Swml(None)),
        // --- the strict server: allowed hosts, then signatures, then Basic Auth.
        strict("Host not allowed", Raw::new("GET", "/").auth().host(Some(b"evil.example.com")), Want::Err(403, "host_not_allowed")),
        strict("Host 10 KB", Raw::new("GET", "/").auth().host(Some(long(10 * 1024).as_bytes())), Want::Err(403, "host_not_allowed")),
        strict("no Host (HTTP/1.0)", Raw { version: "HTTP/1.0", ..Raw::new("GET", "/").auth().host(None) }, Want::Err(403, "host_not_allowed")),
        strict("unsigned, with credentials", unsigned("/swaig", &hours()), Want::Err(403, "invalid_signature")),
        strict("unsigned, without credentials", Raw::new("POST", "/swaig").json(&hours()), Want::Err(403, "invalid_signature")),
        strict("signature garbage", unsigned("/swaig", &hours()).h("X-SignalWire-Signature", "garbage"), Want::Err(403, "invalid_signature")),
        strict("signature not UTF-8", unsigned("/swaig", &hours()).h("X-SignalWire-Sha256-Signature", b"\xff\xfe".to_vec()), Want::Err(403, "invalid_signature")),
        strict("signature of another body", signed("/swaig", &hours()).auth().body(json!({"function": "get_hours", "x": 1}).to_string()), Want::Err(403, "invalid_signature")),
        strict("signed, unsigned path variant /swaig/", unsigned("/swaig/", &hours()), Want::Err(403, "invalid_signature")),
        strict("unsigned /%73waig (an encoded letter)", unsigned("/%73waig", &hours()), Want::Err(403, "invalid_signature")),
        strict("unsigned /post_prompt", unsigned("/post_prompt", &json!({"call_id": CALL})), Want::Err(403, "invalid_signature")),
        strict("unsigned SWML POST", unsigned("/", &json!({"call_id": CALL})), Want::Err(403, "invalid_signature")),
        strict("unsigned body over the limit", unsigned("/swaig", &json!(null)).body(vec![b' '; MIB + 1]), Want::Err(413, "payload_too_large")),
        strict("signed, wrong password", signed("/swaig", &hours()).h("Authorization", basic(b"u:wrong-password-0123")), Want::Err(401, "unauthorized")),
        strict("signed, secure function without a token", signed("/swaig", &good_args()).auth(), Want::Err(403, "invalid_token")),
        strict("signed, with credentials (control)", signed("/swaig", &hours()).auth(), say(HOURS)),
    ]
}

/// Checks one answer; `Err` says what is wrong.
fn judge(row: &Row, answer: &Answer, port: u16, marker: &Path) -> Result<(), String> {
    let Some(status) = answer.status() else {
        return Err(format!("no HTTP answer: {}", answer.body_text()));
    };
    let text = answer.body_text();
    if status >= 500 {
        return Err(format!("server error {status}: {text}"));
    }
    for secret in [SECRET, KEY] {
        if text.contains(secret) {
            return Err("the body holds a secret".into());
        }
    }
    if !matches!(row.want, Want::Swml(_)) && text.contains(PASSWORD) {
        return Err("the body holds the password".into());
    }
    let ran = marker.exists();
    let _ = std::fs::remove_file(marker);
    let body = answer.json();
    let reply = |want: &str| -> Result<(), String> {
        match (status, &body) {
            (200, Some(b)) if *b == json!({ "response": want }) => Ok(()),
            _ => Err(format!(
                "expected 200 {{\"response\": {want:?}}}, got {status} {text}"
            )),
        }
    };
    match &row.want {
        Want::Err(want, code) => {
            let ok = status == *want
                && body.as_ref().is_some_and(|b| {
                    b["error"] == *code
                        && b["message"].is_string()
                        && b.as_object().is_some_and(|o| o.len() == 2)
                });
            if !ok {
                return Err(format!("expected {want} `{code}`, got {status} {text}"));
            }
            if *want == 401 && answer.header("www-authenticate") != Some(r#"Basic realm="swagent""#)
            {
                return Err("a 401 without the Basic challenge".into());
            }
        }
        Want::Bare(want) => {
            if status != *want || body.is_some() {
                return Err(format!("expected a bare {want}, got {status} {text}"));
            }
        }
        Want::Say(text) => reply(text)?,
        Want::Ran(text) => {
            reply(text)?;
            if !ran {
                return Err("the handler did not run".into());
            }
        }
        Want::Swml(host) => {
            let own = format!("127.0.0.1:{port}");
            let host = host.unwrap_or(&own);
            let Some(doc) = body.filter(|_| status == 200) else {
                return Err(format!("expected SWML, got {status} {text}"));
            };
            let prefix = format!("http://{USER}:{PASSWORD}@{host}/");
            // Every URL in the document: the functions' and the summary's.
            let text = doc.to_string();
            let urls: Vec<&str> = regex::Regex::new(r#"[a-z]+://[^"]*"#)
                .unwrap()
                .find_iter(&text)
                .map(|m| m.as_str())
                .collect();
            if urls.len() < 3 || !urls.iter().all(|u| u.starts_with(&prefix)) {
                return Err(format!("webhook URLs not on {prefix}: {urls:?}"));
            }
            // The password appears in those URLs and nowhere else.
            if text.replace(&prefix, "").contains(PASSWORD) {
                return Err("the password appears outside the webhook URLs".into());
            }
        }
    }
    if ran && !matches!(row.want, Want::Ran(_)) {
        return Err("the handler ran".into());
    }
    Ok(())
}

#[test]
fn the_bad_input_catalogue() {
    let dir = bank();
    let open = start(dir.path(), &[]);
    let strict_server = start(
        dir.path(),
        &[
            ("SIGNALWIRE_SIGNING_KEY", KEY),
            ("SWML_ALLOWED_HOSTS", "127.0.0.1"),
        ],
    );
    let marker = dir.path().join("agents/ran");
    let rows = catalogue(&strict_server.url);
    assert!(rows.len() >= 60, "{} rows", rows.len());
    let mut failures = Vec::new();
    for row in &rows {
        let server = match row.to {
            To::Open => &open,
            To::Strict => &strict_server,
        };
        let answer = row.req.send(server.port());
        if let Err(why) = judge(row, &answer, server.port(), &marker) {
            failures.push(format!("{:?} `{}`: {why}", row.to, row.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
    eprintln!("the bad input catalogue: {} rows", rows.len());
    // Both servers are still up and serving.
    for server in [&open, &strict_server] {
        assert_eq!(
            Raw::new("GET", "/health").send(server.port()).status(),
            Some(200)
        );
    }
}

/// The status and JSON body (if any) a raw request gets.
fn status_of(req: &Raw, port: u16) -> (u16, Option<Value>) {
    let answer = req.send(port);
    (answer.status().unwrap_or(0), answer.json())
}

#[test]
fn the_lock_out_counts_every_kind_of_failed_credential() {
    let dir = bank();
    let server = Swagent::new(["serve", "agents/bank.yaml"])
        .creds()
        .dir(dir.path())
        .env("SWML_RATE_LIMIT", "0")
        .env("SWAGENT_AUTH_FAILURE_LIMIT", "7")
        .start();
    let p = server.port();
    let s = Secret::new(SECRET);
    let forged = mint_with_nonce(
        &Secret::new("forged-0123456789abcdef"),
        CALL,
        "get_balance",
        4_070_908_800,
        "0011223344556677",
    );
    // Bad requests from an authenticated client are not failed
    // authentications: three times the limit of them changes nothing. A
    // forged token among them is refused (and alerted on), but no 256-bit
    // HMAC is guessed this way, and the platform itself sends tokens of
    // another secret after a rotation: locking its address out would fail
    // every new call.
    let harmless: Vec<(Raw, u16)> = vec![
        (
            swaig(&q(&forged), &balance(json!({"account": ACCOUNT}))),
            403,
        ),
        (swaig("", &json!(null)).body("not json"), 400),
        (swaig("", &json!({"function": "nope"})), 404),
        (Raw::new("GET", "/swaig").auth(), 405),
        (Raw::new("POST", "/swaig").auth().body("{}"), 415),
        (Raw::new("GET", "/nope").auth(), 404),
        (swml_with(b"Basic \0".to_vec()), 400),
        (Raw::new("GET", "/").auth().host(Some(b"a b")), 400),
        (swaig("", &hours()), 200),
    ];
    for _ in 0..3 {
        for (req, want) in &harmless {
            assert_eq!(status_of(req, p).0, *want, "{req:?}");
        }
    }
    // Seven failures of seven kinds are answered as such...
    let failures: Vec<(Raw, u16)> = vec![
        (Raw::new("GET", "/"), 401),
        (swml_with(basic(format!("{USER}:wrong").as_bytes())), 401),
        (swml_with(basic(format!("x:{PASSWORD}").as_bytes())), 401),
        (swml_with(b"Basic !!!".to_vec()), 401),
        (swml_with(basic(USER.as_bytes())), 401),
        (swml_with(b"Bearer x".to_vec()), 401),
        (swml_with(b"Basic \xff".to_vec()), 401),
    ];
    for (req, want) in &failures {
        assert_eq!(status_of(req, p).0, *want, "{req:?}");
    }
    // ...the eighth is one too many, and then the right credentials and a
    // valid token are refused the same way, so a guess cannot be confirmed.
    let locked = (
        429,
        Some(
            json!({"error": "too_many_failures", "message": "too many failed authentications; retry after 60 s"}),
        ),
    );
    assert_eq!(status_of(&failures[1].0, p), locked);
    // (Retry-After counts down from here: compare the code, not the seconds.)
    let code = |(status, body): (u16, Option<Value>)| (status, body.map(|b| b["error"].clone()));
    let locked = (429, Some(json!("too_many_failures")));
    assert_eq!(code(status_of(&Raw::new("GET", "/").auth(), p)), locked);
    let token = mint_with_nonce(
        &s,
        CALL,
        "get_balance",
        swagent::clock::now() + 600,
        "0011223344556677",
    );
    let valid = swaig(&q(&token), &balance(json!({"account": ACCOUNT})));
    assert_eq!(code(status_of(&valid, p)), locked);
    assert!(!dir.path().join("agents/ran").exists());
    assert_eq!(status_of(&Raw::new("GET", "/health"), p).0, 200);
}

/// actix-http logs one ERROR line per request head it cannot parse, before
/// any middleware: without sampling, a stranger writes the log at will. At
/// most one such line a second comes out, and the next says how many were
/// left out (review of issue 25).
#[test]
fn malformed_request_heads_do_not_flood_the_log() {
    let mut server = Swagent::new(["serve", "hello.yaml"])
        .creds()
        .dir(&crate::util::root().join("agents"))
        .start();
    let started = std::time::Instant::now();
    let bad = Raw::new("GET", "/").h("Bad Header", "x");
    let mut sent = 0;
    // Until a second line says how many the first second left out (10 s at most).
    while !server.log().contains("more such lines since the last one)") {
        assert!(started.elapsed().as_secs() < 10, "{}", server.log());
        assert_eq!(bad.send(server.port()).status(), Some(400));
        sent += 1;
    }
    let seconds = started.elapsed().as_secs();
    let log = server.stop_and_log();
    let lines = log.matches("invalid Header provided").count();
    assert!(
        (2..=seconds as usize + 2).contains(&lines),
        "{lines} lines for {sent} requests in {seconds} s:\n{log}"
    );
}
