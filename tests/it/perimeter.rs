//! The perimeter over real HTTP: request signatures, rate limits, security
//! headers, allowed hosts. HTTPS is in `https.rs`.
//!
//! Limits recover within a window; so that a test need not wait a minute,
//! servers here set the internal `SWAGENT_RATE_WINDOW` (a few seconds) and
//! recovery is polled with a bounded deadline, never slept for.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::blocking::{RequestBuilder, Response};
use ring::hmac;
use serde_json::{json, Value};

use crate::util::{Server, Swagent, USER};

const KEY: &str = "PSKtest1234";

/// An agent whose `mark` function appends a line to `ran.log`, so a test can
/// tell whether it ran, and whose `limited` one does the same under a rate limit.
pub fn agent_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("mark.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho \"$1\" >> \"$(dirname \"$0\")/ran.log\"\necho marked\n",
    )
    .unwrap();
    let mut perms = std::fs::metadata(&script).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).unwrap();
    std::fs::write(
        dir.path().join("perim.yaml"),
        r#"name: perim
prompt: { text: A test agent. }
post_prompt: Summarize.
functions:
  mark:
    description: Marks that it ran.
    secure: false
    shell: { command: ["./mark.sh", "mark"] }
  limited:
    description: Marks that it ran, at most 2 per call and 3 overall a minute.
    secure: false
    rate_limit: { per_call: 2/min, global: 3/min }
    shell: { command: ["./mark.sh", "limited"] }
  secret:
    description: Needs its token.
    static: { response: ok }
"#,
    )
    .unwrap();
    dir
}

fn runs(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("ran.log"))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

pub fn serve(dir: &Path) -> Swagent {
    Swagent::new(["serve", "perim.yaml"]).creds().dir(dir)
}

fn status_json(resp: Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

fn hmac_hex(alg: hmac::Algorithm, key: &str, msg: &str) -> String {
    hex::encode(hmac::sign(
        &hmac::Key::new(alg, key.as_bytes()),
        msg.as_bytes(),
    ))
}

fn hmac_b64(key: &str, msg: &str) -> String {
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key.as_bytes()),
        msg.as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
}

const MARK: &str = r#"{"function":"mark","argument":{"parsed":[{}]},"call_id":"call-1"}"#;

fn post_raw(server: &Server, path: &str, body: &str) -> RequestBuilder {
    server
        .post(path)
        .header("content-type", "application/json")
        .body(body.to_owned())
}

fn invalid_signature() -> (u16, Value) {
    (
        403,
        json!({"error": "invalid_signature", "message": "missing or invalid request signature"}),
    )
}

#[test]
fn each_signature_scheme_is_accepted() {
    let dir = agent_dir();
    let server = serve(dir.path())
        .env("SIGNALWIRE_SIGNING_KEY", KEY)
        .env("SWAGENT_AUTH_FAILURE_LIMIT", "0")
        .start();
    wait_log(
        &server,
        "swagent: request signatures required (`SIGNALWIRE_SIGNING_KEY`)",
    );
    let url = format!("{}/swaig", server.url);
    let marked = || (200, json!({"response": "marked"}));
    let sha1 = hmac_hex(
        hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        KEY,
        &format!("{url}{MARK}"),
    );
    let sha256 = hmac_hex(hmac::HMAC_SHA256, KEY, &format!("{url}{MARK}"));
    let cases: Vec<(&str, &str, String)> = vec![
        ("X-SignalWire-Signature", "sha1", sha1.clone()),
        ("X-SignalWire-Sha256-Signature", "sha256", sha256.clone()),
        ("X-Twilio-Signature", "twilio alias", sha1.clone()),
    ];
    for (n, (header, what, sig)) in cases.into_iter().enumerate() {
        let resp = post_raw(&server, "/swaig", MARK)
            .header(header, sig)
            .send()
            .unwrap();
        assert_eq!(status_json(resp), marked(), "{what}");
        assert_eq!(runs(dir.path()), n + 1, "{what}");
    }
    // A wrong SHA-256 signature falls back to a right SHA-1 one, as in the SDK.
    let resp = post_raw(&server, "/swaig", MARK)
        .header("X-SignalWire-Sha256-Signature", "00")
        .header("X-SignalWire-Signature", &sha1)
        .send()
        .unwrap();
    assert_eq!(status_json(resp), marked());
    // JSON posted to a compatibility URL: bodySHA256 in the query.
    let digest = hex::encode(ring::digest::digest(&ring::digest::SHA256, MARK.as_bytes()));
    let query = format!("/swaig?bodySHA256={digest}");
    let sig = hmac_b64(KEY, &format!("{}{query}", server.url));
    let resp = post_raw(&server, &query, MARK)
        .header("X-SignalWire-Signature", &sig)
        .send()
        .unwrap();
    assert_eq!(status_json(resp), marked());
    assert_eq!(runs(dir.path()), 5);
    // The form scheme, on the SWML route: sorted parameters after the URL.
    let form = "To=%2B15551234567&From=%2B15557654321&CallSid=CA123&call_id=call-9";
    let signed = format!(
        "{}/CallSidCA123From+15557654321To+15551234567call_idcall-9",
        server.url
    );
    let resp = server
        .post("/")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("X-SignalWire-Signature", hmac_b64(KEY, &signed))
        .body(form)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let swml: Value = resp.json().unwrap();
    assert_eq!(swml["version"], "1.0.0");
    // GET is not signed by the platform and not checked.
    assert_eq!(server.get("/").send().unwrap().status().as_u16(), 200);
}

#[test]
fn each_tampering_is_refused_and_nothing_runs() {
    let dir = agent_dir();
    let mut server = serve(dir.path())
        .env("SIGNALWIRE_SIGNING_KEY", KEY)
        .env("SWAGENT_AUTH_FAILURE_LIMIT", "0")
        .start();
    let url = format!("{}/swaig", server.url);
    let sig = |key: &str, msg: &str| hmac_hex(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, key, msg);
    let good = sig(KEY, &format!("{url}{MARK}"));
    let mut flipped = good.clone();
    flipped.replace_range(0..1, if good.starts_with('0') { "1" } else { "0" });
    let localhost = url.replace("127.0.0.1", "localhost");
    let other_body = MARK.replace("call-1", "call-2");
    let cases: Vec<(&str, &str, String, &str)> = vec![
        (
            "url: trailing slash",
            "X-SignalWire-Signature",
            sig(KEY, &format!("{url}/{MARK}")),
            MARK,
        ),
        (
            "url: other host",
            "X-SignalWire-Signature",
            sig(KEY, &format!("{localhost}{MARK}")),
            MARK,
        ),
        (
            "url: https",
            "X-SignalWire-Signature",
            sig(KEY, &format!("{}{MARK}", url.replace("http:", "https:"))),
            MARK,
        ),
        ("body", "X-SignalWire-Signature", good.clone(), &other_body),
        (
            "header: one digit changed",
            "X-SignalWire-Signature",
            flipped,
            MARK,
        ),
        (
            "header: uppercase",
            "X-SignalWire-Signature",
            good.to_uppercase(),
            MARK,
        ),
        ("header: unknown name", "X-Signature", good.clone(), MARK),
        (
            "header: sha1 in the sha256 header",
            "X-SignalWire-Sha256-Signature",
            good.clone(),
            MARK,
        ),
        (
            "key",
            "X-SignalWire-Signature",
            sig("PSKtest12345", &format!("{url}{MARK}")),
            MARK,
        ),
    ];
    for (what, header, value, body) in cases {
        let resp = post_raw(&server, "/swaig", body)
            .header(header, value)
            .send()
            .unwrap();
        assert_eq!(status_json(resp), invalid_signature(), "{what}");
    }
    let unsigned = post_raw(&server, "/swaig", MARK).send().unwrap();
    assert_eq!(status_json(unsigned), invalid_signature(), "no signature");
    let pp = post_raw(&server, "/post_prompt", r#"{"call_id":"c"}"#)
        .send()
        .unwrap();
    assert_eq!(status_json(pp), invalid_signature(), "post_prompt");
    let swml = post_raw(&server, "/", r#"{"call_id":"c"}"#).send().unwrap();
    assert_eq!(status_json(swml), invalid_signature(), "SWML route");
    assert_eq!(runs(dir.path()), 0);
    // Signatures come before Basic Auth: no credentials and no signature is
    // 403; a valid signature without credentials is still 401.
    let anon = crate::util::client()
        .post(&url)
        .header("content-type", "application/json")
        .body(MARK);
    assert_eq!(status_json(anon.send().unwrap()), invalid_signature());
    let anon = crate::util::client()
        .post(&url)
        .header("content-type", "application/json")
        .header("X-SignalWire-Signature", &good)
        .body(MARK);
    assert_eq!(anon.send().unwrap().status().as_u16(), 401);
    assert_eq!(runs(dir.path()), 0);
    // Neither the key nor an expected signature reaches the log.
    let log = server.stop_and_log();
    assert!(!log.contains(KEY) && !log.contains(&good), "{log}");
}

#[test]
fn the_signed_url_comes_from_the_proxy_base_or_trusted_forwarded_headers() {
    let dir = agent_dir();
    let sig = |url: &str| {
        hmac_hex(
            hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            KEY,
            &format!("{url}{MARK}"),
        )
    };
    let server = serve(dir.path())
        .env("SIGNALWIRE_SIGNING_KEY", KEY)
        .env("SWML_PROXY_URL_BASE", "https://agent.example.com/")
        .start();
    let send = |server: &Server, sig: String| {
        post_raw(server, "/swaig", MARK)
            .header("X-SignalWire-Signature", sig)
            .header("X-Forwarded-Proto", "https")
            .header("X-Forwarded-Host", "fwd.example.com")
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(send(&server, sig("https://agent.example.com/swaig")), 200);
    assert_eq!(send(&server, sig(&format!("{}/swaig", server.url))), 403);
    drop(server);
    let trusted = serve(dir.path())
        .env("SIGNALWIRE_SIGNING_KEY", KEY)
        .env("SWML_TRUST_PROXY", "true")
        .start();
    assert_eq!(send(&trusted, sig("https://fwd.example.com/swaig")), 200);
    drop(trusted);
    let untrusted = serve(dir.path()).env("SIGNALWIRE_SIGNING_KEY", KEY).start();
    assert_eq!(send(&untrusted, sig("https://fwd.example.com/swaig")), 403);
    assert_eq!(
        send(&untrusted, sig(&format!("{}/swaig", untrusted.url))),
        200
    );
    assert_eq!(runs(dir.path()), 3);
}

#[test]
fn without_a_signing_key_a_warning_and_no_check() {
    let dir = agent_dir();
    let server = serve(dir.path()).start();
    wait_log(
        &server,
        "swagent: WARNING: no `SIGNALWIRE_SIGNING_KEY`; request signature validation is off",
    );
    let resp = post_raw(&server, "/swaig", MARK).send().unwrap();
    assert_eq!(status_json(resp), (200, json!({"response": "marked"})));
}

/// Waits (bounded) until the server has printed `line`.
fn wait_log(server: &Server, line: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.log().lines().any(|l| l == line) {
        assert!(
            Instant::now() < deadline,
            "no line {line:?} in:\n{}",
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `f` until it gives `want`, for at most `within`.
fn eventually(within: Duration, want: u16, mut f: impl FnMut() -> u16) {
    let deadline = Instant::now() + within;
    loop {
        let got = f();
        if got == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "still {got}, not {want}, after {within:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn retry_after(resp: &Response) -> u64 {
    resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn the_per_address_limit_is_hit_then_recovers() {
    let dir = agent_dir();
    let server = serve(dir.path())
        .env("SWML_RATE_LIMIT", "3")
        // One request refills every 10 s: the requests below must all land
        // within that, even on a loaded machine.
        .env("SWAGENT_RATE_WINDOW", "30s")
        .start();
    // A value copied from an SDK setup, where it was never applied, is said.
    let log = server.log();
    assert!(log.contains("swagent: WARNING: `SWML_RATE_LIMIT` is 3 requests a minute per address: SignalWire sends every call's webhooks from a few shared addresses, so a busy agent would get 429s (the default is 6000; SDK agents do not apply it)\n"), "{log}");
    assert!(log.contains("swagent: WARNING: `SWAGENT_RATE_WINDOW` is set: the address and failure limits count per 30s, not per minute (it is meant for tests)\n"), "{log}");
    for _ in 0..3 {
        assert_eq!(server.get("/health").send().unwrap().status().as_u16(), 200);
    }
    let resp = server.get("/health").send().unwrap();
    let secs = retry_after(&resp);
    // At most one request's share of the window (30 s / 3).
    assert!((1..=10).contains(&secs), "Retry-After {secs}");
    assert_eq!(
        status_json(resp),
        (
            429,
            json!({"error": "rate_limited", "message": format!("too many requests; retry after {secs} s")})
        )
    );
    // Every endpoint counts, before authentication.
    let anon = crate::util::client()
        .get(format!("{}/", server.url))
        .send()
        .unwrap();
    assert_eq!(anon.status().as_u16(), 429);
    eventually(Duration::from_secs(30), 200, || {
        server.get("/health").send().unwrap().status().as_u16()
    });
}

#[test]
fn forwarded_for_counts_only_behind_a_trusted_proxy() {
    let dir = agent_dir();
    let get = |server: &Server, from: &str| {
        server
            .get("/health")
            .header("X-Forwarded-For", format!("{from}, 10.0.0.1"))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let trusted = serve(dir.path())
        .env("SWML_RATE_LIMIT", "2")
        .env("SWML_TRUST_PROXY", "1")
        .start();
    let seen: Vec<u16> = ["203.0.113.1", "203.0.113.1", "203.0.113.1", "203.0.113.2"]
        .iter()
        .map(|a| get(&trusted, a))
        .collect();
    assert_eq!(seen, [200, 200, 429, 200]);
    drop(trusted);
    let direct = serve(dir.path()).env("SWML_RATE_LIMIT", "2").start();
    let seen: Vec<u16> = ["203.0.113.1", "203.0.113.2", "203.0.113.3"]
        .iter()
        .map(|a| get(&direct, a))
        .collect();
    assert_eq!(seen, [200, 200, 429]);
}

/// The flood guard counts an IPv6 /64 as one client, as the lock-outs do:
/// rotating the low 64 bits brings no fresh allowance (review of issue 25).
#[test]
fn the_flood_guard_counts_an_ipv6_64_as_one_client() {
    let dir = agent_dir();
    let server = serve(dir.path())
        .env("SWML_RATE_LIMIT", "2")
        .env("SWML_TRUST_PROXY", "1")
        .start();
    let from = |addr: &str| {
        server
            .get("/health")
            .header("X-Forwarded-For", addr)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let seen: Vec<u16> = [
        "2001:db8:5:6::1",
        "2001:db8:5:6::2",
        "2001:db8:5:6:ffff:1:2:3",
        "2001:db8:5:7::1",
    ]
    .iter()
    .map(|a| from(a))
    .collect();
    assert_eq!(seen, [200, 200, 429, 200]);
}

#[test]
fn failed_authentication_locks_the_address_out_then_recovers() {
    let dir = agent_dir();
    let server = serve(dir.path())
        .env("SWAGENT_AUTH_FAILURE_LIMIT", "2")
        // One failure is forgiven every 10 s: the failures below must all
        // land within that, even on a loaded machine.
        .env("SWAGENT_RATE_WINDOW", "20s")
        .start();
    let wrong = || {
        crate::util::client()
            .get(format!("{}/", server.url))
            .basic_auth(USER, Some("wrong-password-123456"))
            .send()
            .unwrap()
    };
    for _ in 0..2 {
        assert_eq!(wrong().status().as_u16(), 401);
    }
    let resp = wrong();
    assert_eq!(retry_after(&resp), 20);
    assert_eq!(
        status_json(resp),
        (
            429,
            json!({"error": "too_many_failures", "message": "too many failed authentications; retry after 20 s"})
        )
    );
    // Locked out: the right password is refused the same way, so a guess
    // cannot be confirmed; the probes, which need no auth, still answer.
    let right = server.get("/").send().unwrap();
    assert_eq!(right.status().as_u16(), 429);
    assert_eq!(server.get("/health").send().unwrap().status().as_u16(), 200);
    assert_eq!(server.get("/ready").send().unwrap().status().as_u16(), 200);
    eventually(Duration::from_secs(40), 200, || {
        server.get("/").send().unwrap().status().as_u16()
    });
}

/// Guesses from new addresses of one IPv6 /64 are one guesser's; another
/// /64, or the right password from an IPv4 client, is not locked out.
#[test]
fn an_ipv6_64_is_locked_out_as_one_client() {
    let dir = agent_dir();
    let server = serve(dir.path())
        .env("SWAGENT_AUTH_FAILURE_LIMIT", "2")
        .env("SWML_TRUST_PROXY", "1")
        .start();
    let from = |addr: &str, password: &str| {
        crate::util::client()
            .get(format!("{}/", server.url))
            .basic_auth(USER, Some(password))
            .header("X-Forwarded-For", addr)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let wrong = "wrong-password-123456";
    let seen: Vec<u16> = ["2001:db8:5:6::1", "2001:db8:5:6::2", "2001:db8:5:6:ffff::3"]
        .iter()
        .map(|a| from(a, wrong))
        .collect();
    assert_eq!(seen, [401, 401, 429]);
    assert_eq!(from("2001:db8:5:6:1234::77", crate::util::PASSWORD), 429);
    assert_eq!(from("2001:db8:5:7::1", crate::util::PASSWORD), 200);
    assert_eq!(from("203.0.113.9", crate::util::PASSWORD), 200);
}

#[test]
fn bad_signatures_lock_out_but_tokens_from_an_authenticated_client_do_not() {
    let dir = agent_dir();
    let server = serve(dir.path())
        .env("SWAGENT_AUTH_FAILURE_LIMIT", "2")
        .start();
    let body = json!({"function": "secret", "call_id": "c-1"});
    // A token this secret signed is no guess, even when it is refused:
    // expired, or for another call. Otherwise one call that outlives its
    // tokens would lock the platform's address out, and every call with it.
    let secret = swagent::token::Secret::new(crate::util::SECRET);
    let now = swagent::clock::now();
    let ours = [
        swagent::token::mint_with_nonce(&secret, "c-1", "secret", now - 1, "0011223344556677"),
        swagent::token::mint_with_nonce(&secret, "c-2", "secret", now + 600, "0011223344556677"),
    ];
    for _ in 0..2 {
        for t in &ours {
            let query = format!("?__token={}", t.replace('=', "%3D"));
            assert_eq!(server.swaig(&query, body.clone()).0, 403);
        }
    }
    // Nor is one of another secret, sent with the right password: a 256-bit
    // HMAC is no guess, and the platform sends such tokens after a rotation
    // (calls in progress) or from a replica with another secret. Refused,
    // but the address, and every new call from it, is not locked out.
    let other = swagent::token::Secret::new("another-secret-0123456789abcdef");
    let theirs =
        swagent::token::mint_with_nonce(&other, "c-1", "secret", now + 600, "0011223344556677");
    let theirs = format!("?__token={}", theirs.replace('=', "%3D"));
    for query in ["?__token=forged", theirs.as_str()] {
        for _ in 0..3 {
            assert_eq!(server.swaig(query, body.clone()).0, 403);
        }
    }
    assert_eq!(server.post("/").send().unwrap().status().as_u16(), 200);
    drop(server);
    let signed = serve(dir.path())
        .env("SWAGENT_AUTH_FAILURE_LIMIT", "2")
        .env("SIGNALWIRE_SIGNING_KEY", KEY)
        .start();
    let unsigned = || {
        post_raw(&signed, "/swaig", MARK)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!([unsigned(), unsigned(), unsigned()], [403, 403, 429]);
    assert_eq!(runs(dir.path()), 0);
    // The address is locked out now, but a request our signing key signed
    // comes from our SignalWire project: SignalWire's addresses are shared
    // by all its customers, and one of them sending us bad webhooks must not
    // lock our calls out. An unsigned request is still a failure past the
    // limit (429); a GET, which no signature covers, stays locked out.
    let sig = hmac_hex(
        hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        KEY,
        &format!("{}/swaig{MARK}", signed.url),
    );
    let resp = post_raw(&signed, "/swaig", MARK)
        .header("X-SignalWire-Signature", sig)
        .send()
        .unwrap();
    assert_eq!(status_json(resp), (200, json!({"response": "marked"})));
    assert_eq!(runs(dir.path()), 1);
    assert_eq!(unsigned(), 429);
    assert_eq!(runs(dir.path()), 1);
    assert_eq!(signed.get("/").send().unwrap().status().as_u16(), 429);
}

/// The signature covers URL and body, never the credentials: a captured
/// signed request, replayed with guessed passwords, is locked out after as
/// many failures as an address is, whatever body or header spelling rides
/// along, while other signed webhooks go on.
#[test]
fn a_replayed_signed_request_gets_no_more_guesses_than_an_address() {
    let dir = agent_dir();
    let server = serve(dir.path())
        .env("SWAGENT_AUTH_FAILURE_LIMIT", "2")
        .env("SIGNALWIRE_SIGNING_KEY", KEY)
        .start();
    let url = format!("{}/", server.url);
    let body = r#"{"call_id":"c-1"}"#;
    let sha256 = hmac_hex(hmac::HMAC_SHA256, KEY, &format!("{url}{body}"));
    let send = |body: &str, header: &str, sig: &str, password: &str| {
        crate::util::client()
            .post(&url)
            .basic_auth(crate::util::USER, Some(password))
            .header("content-type", "application/json")
            .header(header, sig)
            .body(body.to_owned())
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let guess = |password: &str| send(body, "X-SignalWire-Sha256-Signature", &sha256, password);
    assert_eq!(
        [
            guess("guess-one-1234567"),
            guess("guess-two-1234567"),
            guess("guess-three-12345")
        ],
        [401, 401, 429]
    );
    // Locked for this signature: the right password is refused as well,
    // and the request's SHA-1 signature brings no fresh count.
    assert_eq!(guess(crate::util::PASSWORD), 429);
    let sha1 = hmac_hex(
        hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        KEY,
        &format!("{url}{body}"),
    );
    assert_eq!(
        send(body, "X-SignalWire-Signature", &sha1, "guess-four-123456"),
        429
    );
    // Another signed webhook (another call) is SignalWire's and goes on.
    let other = r#"{"call_id":"c-2"}"#;
    let sig = hmac_hex(hmac::HMAC_SHA256, KEY, &format!("{url}{other}"));
    assert_eq!(
        send(
            other,
            "X-SignalWire-Sha256-Signature",
            &sig,
            crate::util::PASSWORD
        ),
        200
    );
    // The URL-only form signature fits any body: it is counted by the
    // signature, so new bodies bring no new guesses.
    let form = hmac_b64(KEY, &url);
    let form_guess = |n: u32, password: &str| {
        send(
            &format!("call_id=f-{n}"),
            "X-SignalWire-Signature",
            &form,
            password,
        )
    };
    assert_eq!(
        [
            form_guess(1, "guess-one-1234567"),
            form_guess(2, "guess-two-1234567"),
            form_guess(3, "guess-three-12345")
        ],
        [401, 401, 429]
    );
    assert_eq!(form_guess(4, crate::util::PASSWORD), 429);
}

/// The hex signatures cover URL and body joined: moving characters of the
/// query into the body (or the body's `{` into the query) keeps a captured
/// signature valid, and must not reset its count (review of issue 25).
#[test]
fn a_shifted_replay_of_a_signed_request_shares_its_budget() {
    let dir = agent_dir();
    let server = serve(dir.path())
        .env("SWAGENT_AUTH_FAILURE_LIMIT", "2")
        .env("SIGNALWIRE_SIGNING_KEY", KEY)
        .start();
    let signed = format!(
        "{}/swaig?__token=abcdef{}",
        server.url, r#"{"call_id":"c-1"}"#
    );
    let sig = hmac_hex(hmac::HMAC_SHA256, KEY, &signed);
    let guess = |query: &str, body: &str, password: &str| {
        crate::util::client()
            .post(format!("{}/swaig?__token={query}", server.url))
            .basic_auth(USER, Some(password))
            .header("content-type", "application/json")
            .header("X-SignalWire-Sha256-Signature", &sig)
            .body(body.to_owned())
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    let seen = [
        guess("abcdef", r#"{"call_id":"c-1"}"#, "guess-one-1234567"),
        guess("abcde", r#"f{"call_id":"c-1"}"#, "guess-two-1234567"),
        guess("abc", r#"def{"call_id":"c-1"}"#, "guess-three-12345"),
    ];
    assert_eq!(seen, [401, 401, 429]);
    // Locked for this capture: the right password is refused too.
    assert_eq!(
        guess("ab", r#"cdef{"call_id":"c-1"}"#, crate::util::PASSWORD),
        429
    );
    assert_eq!(runs(dir.path()), 0);
}

#[test]
fn a_function_over_its_rate_limit_does_not_run() {
    let dir = agent_dir();
    let server = serve(dir.path()).start();
    let call = |call_id: &str| {
        server
            .post("/swaig")
            .json(&json!({"function": "limited", "call_id": call_id}))
            .send()
            .unwrap()
    };
    let ok = (200, json!({"response": "marked"}));
    assert_eq!(status_json(call("a")), ok);
    assert_eq!(status_json(call("a")), ok);
    let limited = |resp: Response| {
        let secs = retry_after(&resp);
        let (status, body) = status_json(resp);
        assert_eq!(
            (status, body),
            (
                429,
                json!({
                    "error": "function_rate_limited",
                    "message": format!("the function was called too often; retry after {secs} s"),
                    "response": "Sorry, there have been too many requests for that just now. Please try again in a moment."
                })
            )
        );
    };
    // Per call: a third run in call `a`.
    limited(call("a"));
    assert_eq!(status_json(call("b")), ok);
    // Global: three runs were allowed over all calls.
    limited(call("c"));
    assert_eq!(runs(dir.path()), 3);
    // Other functions are not limited.
    let resp = server
        .post("/swaig")
        .json(&json!({"function": "mark", "call_id": "a"}))
        .send()
        .unwrap();
    assert_eq!(status_json(resp), ok);
}

#[test]
fn a_reload_keeps_the_counts_of_unchanged_rate_limits() {
    let dir = agent_dir();
    let server = serve(dir.path()).start();
    let call = || {
        let resp = server
            .post("/swaig")
            .json(&json!({"function": "limited", "call_id": "a"}))
            .send()
            .unwrap();
        resp.status().as_u16()
    };
    let file = dir.path().join("perim.yaml");
    // Rewrites the file and waits (bounded) until the SWML shows `prompt`.
    let reload = |edits: &[(&str, &str)], prompt: &str| {
        let mut text = std::fs::read_to_string(&file).unwrap();
        for (from, to) in edits {
            assert!(text.contains(from), "{text}");
            text = text.replace(from, to);
        }
        std::fs::write(&file, text).unwrap();
        server.signal(libc::SIGHUP);
        assert!(
            crate::util::eventually(Duration::from_secs(5), || server.swml("c")["sections"]
                ["main"][1]["ai"]["prompt"]["text"]
                == prompt),
            "{}",
            server.log()
        );
    };
    assert_eq!((call(), call(), call()), (200, 200, 429));
    // Another prompt, the same limits: call `a` has still used its budget.
    reload(&[("A test agent.", "Reloaded once.")], "Reloaded once.");
    assert_eq!(call(), 429);
    assert_eq!(runs(dir.path()), 2);
    // A changed limit starts afresh.
    reload(
        &[
            ("Reloaded once.", "Reloaded twice."),
            ("per_call: 2/min", "per_call: 3/min"),
        ],
        "Reloaded twice.",
    );
    assert_eq!(call(), 200);
    assert_eq!(runs(dir.path()), 3);
}

#[test]
fn security_headers_on_every_response_and_no_hsts_over_http() {
    let dir = agent_dir();
    let server = serve(dir.path()).start();
    let anon = crate::util::client().get(format!("{}/", server.url));
    let responses = [
        server.get("/health").send().unwrap(),
        server.get("/").send().unwrap(),
        anon.send().unwrap(),
        server.get("/nope").send().unwrap(),
    ];
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses, [200, 200, 401, 404]);
    for resp in &responses {
        let h = resp.headers();
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert_eq!(h["cache-control"], "no-store");
        assert!(h.get("strict-transport-security").is_none());
    }
}

#[test]
fn hosts_not_allowed_are_refused_before_auth() {
    let dir = agent_dir();
    let server = serve(dir.path())
        .env("SWML_ALLOWED_HOSTS", "agent.example.com, *.example.org")
        .start();
    let refused = (
        403,
        json!({"error": "host_not_allowed", "message": "the `Host` is not allowed"}),
    );
    // The Host reqwest sends is 127.0.0.1:PORT: not listed.
    assert_eq!(status_json(server.get("/").send().unwrap()), refused);
    let anon = crate::util::client().get(format!("{}/", server.url));
    assert_eq!(status_json(anon.send().unwrap()), refused);
    let with_host = |host: &str| {
        server
            .get("/")
            .header("Host", host)
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(with_host("agent.example.com"), 200);
    assert_eq!(with_host("a.example.org:8443"), 200);
    assert_eq!(with_host("evil.example.com"), 403);
    // The probes answer any host: load balancers and the incident plan's
    // `curl 127.0.0.1:3000/ready` ask by address.
    for probe in ["/health", "/ready"] {
        let r = crate::util::client()
            .get(format!("{}{probe}", server.url))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{probe}");
    }
    drop(server);
    // Behind a trusted proxy the webhook URLs take `X-Forwarded-Host`: it
    // is held to the list as well, so no client can send them elsewhere.
    // The SDK's name for the setting turns it on as well.
    let proxied = serve(dir.path())
        .env("SWML_ALLOWED_HOSTS", "agent.example.com")
        .env("SWML_TRUST_PROXY_HEADERS", "yes")
        .start();
    let forwarded = |fwd: &str| {
        proxied
            .post("/")
            .header("Host", "agent.example.com")
            .header("X-Forwarded-Host", fwd)
            .json(&json!({"call_id": "c-1"}))
            .send()
            .unwrap()
    };
    assert_eq!(status_json(forwarded("evil.example.com")), refused);
    let ok = forwarded("agent.example.com");
    assert_eq!(ok.status().as_u16(), 200);
    let doc = ok.text().unwrap();
    assert!(doc.contains("@agent.example.com/swaig"), "{doc}");
    assert!(!doc.contains("evil"), "{doc}");
}

#[test]
fn rate_limits_in_agent_files_are_validated() {
    let dir = tempfile::tempdir().unwrap();
    let head = "name: rl\nprompt: { text: x }\nfunctions:\n  f:\n    description: x\n    secure: false\n    static: { response: ok }\n";
    std::fs::write(
        dir.path().join("bad.yaml"),
        format!("{head}    rate_limit: {{ per_call: 0/min }}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("empty.yaml"),
        format!("{head}    rate_limit: {{}}\n"),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("good.yaml"),
        format!("{head}    rate_limit: {{ per_call: 5/min, global: 100/min }}\n"),
    )
    .unwrap();
    Swagent::new(["validate", "bad.yaml"])
        .dir(dir.path())
        .run()
        .code(1)
        .stderr_is("bad.yaml:8:17: error: invalid agent file: functions.f.rate_limit: `0/min`: the count must be at least 1\n  |\n8 |     rate_limit: { per_call: 0/min }\n  |                 ^\n1 of 1 agent file(s) invalid\n");
    Swagent::new(["validate", "--strict", "empty.yaml"])
        .dir(dir.path())
        .run()
        .code(1)
        .stderr_has("empty.yaml:8:5: warning: function `f`: `rate_limit` sets neither `per_call` nor `global`, so it limits nothing\n");
    Swagent::new(["validate", "good.yaml"])
        .dir(dir.path())
        .run()
        .code(0);
}
