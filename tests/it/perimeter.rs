//! The perimeter over real HTTP(S): TLS, request signatures, rate limits,
//! security headers, allowed hosts.
//!
//! Limits recover within a window; so that a test need not wait a minute,
//! servers here set the internal `SWAGENT_RATE_WINDOW` (a few seconds) and
//! recovery is polled with a bounded deadline, never slept for.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::blocking::{Client, RequestBuilder, Response};
use ring::hmac;
use serde_json::{json, Value};

use crate::util::{Server, Swagent, PASSWORD, USER};

const KEY: &str = "PSKtest1234";

/// An agent whose `mark` function appends a line to `ran.log`, so a test can
/// tell whether it ran, and whose `limited` one does the same under a rate limit.
fn agent_dir() -> tempfile::TempDir {
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

fn serve(dir: &Path) -> Swagent {
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
    let server = serve(dir.path())
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
    let log = server.log();
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
        .env("SWAGENT_RATE_WINDOW", "10s")
        .start();
    for _ in 0..3 {
        assert_eq!(server.get("/health").send().unwrap().status().as_u16(), 200);
    }
    let resp = server.get("/health").send().unwrap();
    let secs = retry_after(&resp);
    // One request's share of the window (10 s / 3), rounded up.
    assert!((1..=4).contains(&secs), "Retry-After {secs}");
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
    eventually(Duration::from_secs(15), 200, || {
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

#[test]
fn failed_authentication_locks_the_address_out_then_recovers() {
    let dir = agent_dir();
    let server = serve(dir.path())
        .env("SWAGENT_AUTH_FAILURE_LIMIT", "3")
        .env("SWAGENT_RATE_WINDOW", "5s")
        .start();
    let wrong = || {
        crate::util::client()
            .get(format!("{}/", server.url))
            .basic_auth(USER, Some("wrong-password-123456"))
            .send()
            .unwrap()
    };
    for _ in 0..3 {
        assert_eq!(wrong().status().as_u16(), 401);
    }
    let resp = wrong();
    assert_eq!(retry_after(&resp), 5);
    assert_eq!(
        status_json(resp),
        (
            429,
            json!({"error": "too_many_failures", "message": "too many failed authentications; retry after 5 s"})
        )
    );
    // Locked out: the right password is refused the same way, so a guess
    // cannot be confirmed; /health, which needs no auth, still answers.
    let right = server.get("/").send().unwrap();
    assert_eq!(right.status().as_u16(), 429);
    assert_eq!(server.get("/health").send().unwrap().status().as_u16(), 200);
    eventually(Duration::from_secs(15), 200, || {
        server.get("/").send().unwrap().status().as_u16()
    });
}

#[test]
fn failed_tokens_and_signatures_count_as_failed_authentication() {
    let dir = agent_dir();
    let server = serve(dir.path())
        .env("SWAGENT_AUTH_FAILURE_LIMIT", "2")
        .start();
    let body = json!({"function": "secret", "call_id": "c-1"});
    let token = || server.swaig("?__token=forged", body.clone()).0;
    assert_eq!([token(), token(), token()], [403, 403, 429]);
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
}

// ---- HTTPS ----

struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
}

impl Pki {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// A CA and a leaf for 127.0.0.1/localhost signed by it: `chain.pem` (leaf
/// then CA), `leaf.key` (PKCS#8), and `other.key`, which matches nothing.
fn pki() -> Pki {
    let dir = tempfile::tempdir().unwrap();
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "swagent test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    std::fs::write(
        dir.path().join("chain.pem"),
        format!("{}{}", leaf.pem(), ca.pem()),
    )
    .unwrap();
    std::fs::write(dir.path().join("leaf.key"), leaf_key.serialize_pem()).unwrap();
    let other = rcgen::KeyPair::generate().unwrap();
    std::fs::write(dir.path().join("other.key"), other.serialize_pem()).unwrap();
    Pki {
        dir,
        ca_pem: ca.pem(),
    }
}

fn tls_client(ca_pem: &str) -> Client {
    Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .https_only(true)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

#[test]
fn https_end_to_end_with_a_verified_certificate() {
    let dir = agent_dir();
    let pki = pki();
    let server = serve(dir.path())
        .args([
            "--tls-cert".as_ref(),
            pki.path("chain.pem").as_os_str(),
            "--tls-key".as_ref(),
            pki.path("leaf.key").as_os_str(),
        ])
        .env("SWML_DOMAIN", "agent.example.com")
        .start();
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    let port = server.url.rsplit(':').next().unwrap().to_owned();
    let client = tls_client(&pki.ca_pem);
    let resp = client
        .post(format!("{}/", server.url))
        .basic_auth(USER, Some(PASSWORD))
        .json(&json!({"call_id": "call-1"}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    assert_eq!(resp.headers()["cache-control"], "no-store");
    let swml: Value = resp.json().unwrap();
    // Webhook URLs use https and SWML_DOMAIN.
    assert_eq!(
        swml["sections"]["main"][1]["ai"]["SWAIG"]["defaults"]["web_hook_url"],
        format!("https://{USER}:{PASSWORD}@agent.example.com:{port}/swaig/")
    );
    // A client that does not trust the CA is refused: the certificate is verified.
    let untrusting = Client::builder()
        .tls_built_in_root_certs(false)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    assert!(untrusting
        .get(format!("{}/health", server.url))
        .send()
        .is_err());
    // TLS 1.2 and 1.3 only: the server refuses a TLS 1.1 handshake that the
    // client is willing to make (security level 0 lets OpenSSL offer it).
    let addr = server.url.trim_start_matches("https://").to_owned();
    let s_client = |version: &str| {
        let out = std::process::Command::new("timeout")
            .args(["10", "openssl", "s_client", "-connect", &addr, version])
            .args(["-cipher", "DEFAULT@SECLEVEL=0"])
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.code(), text)
    };
    let (code, text) = s_client("-tls1_1");
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("alert handshake failure"), "{text}");
    let (code, text) = s_client("-tls1_2");
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("Protocol  : TLSv1.2"), "{text}");
    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = crate::util::client()
        .get(format!("{}/health", server.url.replace("https:", "http:")))
        .send();
    assert!(plain.is_err(), "{plain:?}");
}

#[test]
fn https_from_the_environment_with_hsts_off() {
    let dir = agent_dir();
    let pki = pki();
    let server = serve(dir.path())
        .env("SWML_SSL_ENABLED", "true")
        .env(
            "SWML_SSL_CERT_PATH",
            pki.path("chain.pem").to_str().unwrap(),
        )
        .env("SWML_SSL_KEY_PATH", pki.path("leaf.key").to_str().unwrap())
        .env("SWML_USE_HSTS", "false")
        .start();
    let resp = tls_client(&pki.ca_pem)
        .get(format!("{}/health", server.url))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers().get("strict-transport-security").is_none());
    assert_eq!(resp.headers()["x-frame-options"], "DENY");
}

#[test]
fn rsa_and_ec_keys_in_their_traditional_pem_forms_work() {
    let dir = agent_dir();
    let tmp = tempfile::tempdir().unwrap();
    let p = |n: &str| tmp.path().join(n).to_str().unwrap().to_owned();
    let sh = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    sh(&["genrsa", "-traditional", "-out", &p("rsa.key"), "2048"]);
    sh(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        &p("ec.key"),
    ]);
    for (key, header) in [
        ("rsa", "BEGIN RSA PRIVATE KEY"),
        ("ec", "BEGIN EC PRIVATE KEY"),
    ] {
        let key_path = p(&format!("{key}.key"));
        assert!(std::fs::read_to_string(&key_path).unwrap().contains(header));
        let cert = p(&format!("{key}.pem"));
        sh(&[
            "req",
            "-x509",
            "-new",
            "-key",
            &key_path,
            "-out",
            &cert,
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ]);
        let server = serve(dir.path())
            .args(["--tls-cert", &cert, "--tls-key", &key_path])
            .start();
        let ca = std::fs::read_to_string(&cert).unwrap();
        let status = tls_client(&ca)
            .get(format!("{}/health", server.url))
            .send()
            .unwrap()
            .status()
            .as_u16();
        assert_eq!(status, 200, "{key}");
    }
}

#[test]
fn bad_tls_configuration_refuses_to_start() {
    let dir = agent_dir();
    let pki = pki();
    let chain = pki.path("chain.pem");
    let missing = pki.path("missing.key");
    let garbage = pki.path("garbage.key");
    std::fs::write(&garbage, "not a key\n").unwrap();
    let d = |p: &Path| p.display().to_string();
    serve(dir.path())
        .env("SWML_SSL_ENABLED", "true")
        .env("SWML_SSL_CERT_PATH", &d(&chain))
        .env("SWML_SSL_KEY_PATH", &d(&missing))
        .run()
        .code(2)
        .stdout_is("")
        .stderr_is(&format!(
            "error: `SWML_SSL_KEY_PATH` (`{}`): cannot read: No such file or directory (os error 2)\n",
            d(&missing)
        ));
    serve(dir.path())
        .env("SWML_SSL_ENABLED", "yes")
        .env("SWML_SSL_KEY_PATH", &d(&missing))
        .run()
        .code(2)
        .stderr_is("error: `SWML_SSL_ENABLED` is true but `SWML_SSL_CERT_PATH` is not set\n");
    serve(dir.path())
        .args([
            "--tls-cert".as_ref(),
            chain.as_os_str(),
            "--tls-key".as_ref(),
            pki.path("other.key").as_os_str(),
        ])
        .run()
        .code(2)
        .stderr_is(&format!(
            "error: `--tls-key` (`{}`) does not match the certificate in `--tls-cert` (`{}`)\n",
            d(&pki.path("other.key")),
            d(&chain)
        ));
    serve(dir.path())
        .args([
            "--tls-cert".as_ref(),
            chain.as_os_str(),
            "--tls-key".as_ref(),
            garbage.as_os_str(),
        ])
        .run()
        .code(2)
        .stderr_is(&format!(
            "error: `--tls-key` (`{}`): no PEM private key (PKCS#8, RSA or EC) found\n",
            d(&garbage)
        ));
    serve(dir.path())
        .args([
            "--tls-cert".as_ref(),
            garbage.as_os_str(),
            "--tls-key".as_ref(),
            pki.path("leaf.key").as_os_str(),
        ])
        .run()
        .code(2)
        .stderr_is(&format!(
            "error: `--tls-cert` (`{}`): no PEM certificate found\n",
            d(&garbage)
        ));
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
