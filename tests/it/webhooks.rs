//! Signed outbound requests (Standard Webhooks): what swagent really sends
//! to backends, verified as a receiver would, with the spec authors' Python
//! package (`tests/fixtures/webhooks/verify.py`).

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::util::{
    agent_dir, eventually, python, root, token_in, webhooks_python, Answer, Seen, Server, Swagent,
    Upstream,
};

/// Three secrets as the spec serializes them: `whsec_` and 32 bytes.
const ONE: &str = "whsec_c3dhZ2VudCB0ZXN0IHdlYmhvb2sgc2VjcmV0LCBvbmU=";
const TWO: &str = "whsec_c3dhZ2VudCB0ZXN0IHdlYmhvb2sgc2VjcmV0LCB0d28=";
const NEITHER: &str = "whsec_YSByZWNlaXZlciB0aGF0IGtub3dzIG5laXRoZXIuLi4=";

const HEADERS: [&str; 3] = ["webhook-id", "webhook-timestamp", "webhook-signature"];

/// An agent whose functions call `up` every way an http handler can: a JSON
/// body with text that JSON escapes, a form, and a retried GET.
fn agent(up: &str) -> String {
    format!(
        r#"name: signed
prompt: {{ text: You help. }}
functions:
  book:
    description: Books a table.
    secure: false
    parameters:
      type: object
      properties:
        name: {{ type: string, maxLength: 40 }}
    http:
      url: {up}/book
      method: POST
      body: {{ name: "${{args.name}}", note: "café \"quoted\" ✓", party: 2 }}
  subscribe:
    description: Subscribes by form.
    secure: false
    http:
      url: {up}/subscribe
      method: POST
      form: {{ list: news, who: "a b&c" }}
  flaky:
    description: Retried GET.
    secure: false
    http:
      url: {up}/flaky
      retries: 2
  third_party:
    description: An API that refuses unknown headers.
    secure: false
    http:
      url: {up}/third-party
      sign: false
      headers: {{ webhook-id: "theirs" }}
"#
    )
}

/// An upstream whose `/flaky` fails its first request.
fn upstream() -> Upstream {
    let hits = std::sync::atomic::AtomicUsize::new(0);
    Upstream::start(move |req| {
        let first =
            req.target == "/flaky" && hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
        if first {
            Answer::new("503 Service Unavailable", "text/plain", "")
        } else {
            Answer::json(r#"{"response": "done"}"#)
        }
    })
}

fn serve(dir: &Path, secret: Option<&str>) -> Server {
    let s = Swagent::new(["serve", "agent.yaml"]).creds().dir(dir);
    match secret {
        Some(secret) => s.env("SWAGENT_WEBHOOK_SECRET", secret).start(),
        None => s.start(),
    }
}

fn call(server: &Server, function: &str, args: Value) {
    let (status, reply) = server.swaig(
        "",
        json!({"function": function, "call_id": "call-7", "argument": {"parsed": [args]}}),
    );
    assert_eq!(status, 200, "{function}: {reply}");
}

fn requests_to(up: &Upstream, path: &str) -> Vec<Seen> {
    up.seen()
        .into_iter()
        .filter(|s| s.target.split('?').next() == Some(path))
        .collect()
}

/// What the official package says of `seen` with `secret` alone:
/// `verified`, or `not verified: ...`.
pub(crate) fn verify(py: &Path, secret: &str, seen: &Seen) -> String {
    let fixture = root().join("tests/fixtures/webhooks/verify.py");
    let request = json!({
        "headers": seen
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect::<serde_json::Map<String, Value>>(),
        "body": seen.body,
    });
    let out = python(
        py,
        &[&fixture.display().to_string(), secret],
        request.to_string().as_bytes(),
    );
    assert!(matches!(out.status, Some(0 | 1)), "{out:?}");
    out.stdout.trim().to_owned()
}

/// The three headers are there, shaped as the spec says, whatever the secret.
fn assert_signed(seen: &Seen, signatures: usize) {
    let id = seen.header("webhook-id").expect("a webhook-id");
    assert!(
        regex::Regex::new(r"\Amsg_[0-9a-f]{32}\z")
            .unwrap()
            .is_match(id),
        "{id}"
    );
    let at: u64 = seen.header("webhook-timestamp").unwrap().parse().unwrap();
    assert!(swagent::clock::now().abs_diff(at) < 60, "{at}");
    let signature = seen.header("webhook-signature").unwrap();
    let one = regex::Regex::new(r"\Av1,[A-Za-z0-9+/]{43}=\z").unwrap();
    let parts: Vec<&str> = signature.split(' ').collect();
    assert_eq!(parts.len(), signatures, "{signature}");
    assert!(parts.iter().all(|p| one.is_match(p)), "{signature}");
}

fn assert_unsigned(seen: &Seen) {
    for h in HEADERS {
        assert_eq!(seen.header(h), None, "{h} in {:?}", seen.headers);
    }
}

#[test]
fn every_kind_of_request_is_signed_over_the_bytes_sent() {
    let up = upstream();
    let dir = agent_dir(&agent(&up.url()), &[]);
    let server = serve(dir.path(), Some(ONE));
    call(&server, "book", json!({"name": "Zoë \"Z\" O'Neil"}));
    call(&server, "subscribe", json!({}));
    call(&server, "flaky", json!({}));
    let book = requests_to(&up, "/book");
    let body: Value = serde_json::from_slice(&book[0].body).unwrap();
    assert_eq!(
        body,
        json!({"name": "Zoë \"Z\" O'Neil", "note": "café \"quoted\" ✓", "party": 2})
    );
    let subscribe = requests_to(&up, "/subscribe");
    assert_eq!(subscribe[0].body, b"list=news&who=a+b%26c");
    let flaky = requests_to(&up, "/flaky");
    assert_eq!(flaky.len(), 2, "the GET was retried once");
    assert_eq!(
        flaky[0].header("webhook-id"),
        flaky[1].header("webhook-id"),
        "a retry is the same message: a receiver drops the duplicate by its id"
    );
    let all = [&book[0], &subscribe[0], &flaky[0], &flaky[1]];
    for seen in all {
        assert_signed(seen, 1);
    }
    assert_ne!(
        book[0].header("webhook-id"),
        subscribe[0].header("webhook-id")
    );
    let Some(py) = webhooks_python("every_kind_of_request_is_signed_over_the_bytes_sent") else {
        return;
    };
    for seen in all {
        assert_eq!(
            verify(&py, ONE, seen),
            "verified",
            "{} {}",
            seen.method,
            seen.target
        );
        assert_eq!(
            verify(&py, TWO, seen),
            "not verified: No matching signature found",
            "another secret does not verify"
        );
    }
    // One byte changed in transit, and the receiver refuses it.
    let mut tampered = book[0].clone();
    tampered.body = String::from_utf8(tampered.body)
        .unwrap()
        .replace("\"party\":2", "\"party\":20")
        .into_bytes();
    assert_ne!(tampered.body, book[0].body);
    assert_eq!(
        verify(&py, ONE, &tampered),
        "not verified: No matching signature found"
    );
}

#[test]
fn during_a_rotation_every_secret_signs() {
    let up = upstream();
    let dir = agent_dir(&agent(&up.url()), &[]);
    // The new secret first, the old one still listed.
    let server = serve(dir.path(), Some(&format!("{TWO} {ONE}")));
    call(&server, "book", json!({"name": "Ann"}));
    let seen = &requests_to(&up, "/book")[0];
    assert_signed(seen, 2);
    let Some(py) = webhooks_python("during_a_rotation_every_secret_signs") else {
        return;
    };
    assert_eq!(
        verify(&py, ONE, seen),
        "verified",
        "a receiver on the old secret"
    );
    assert_eq!(
        verify(&py, TWO, seen),
        "verified",
        "a receiver on the new secret"
    );
    assert_eq!(
        verify(&py, NEITHER, seen),
        "not verified: No matching signature found"
    );
}

#[test]
fn sign_false_and_no_secret_send_no_webhook_headers() {
    let up = upstream();
    let dir = agent_dir(&agent(&up.url()), &[]);
    {
        let server = serve(dir.path(), Some(ONE));
        call(&server, "third_party", json!({}));
        let seen = &requests_to(&up, "/third-party")[0];
        assert_eq!(
            seen.header("webhook-id"),
            Some("theirs"),
            "the file's own header"
        );
        assert_eq!(seen.header("webhook-signature"), None);
        assert_eq!(seen.header("webhook-timestamp"), None);
    }
    for unset in [None, Some(""), Some("  ")] {
        let server = serve(dir.path(), unset);
        call(&server, "book", json!({"name": "Ann"}));
        let book = requests_to(&up, "/book");
        assert_unsigned(book.last().unwrap());
    }
}

#[test]
fn a_malformed_secret_refuses_to_start_without_showing_it() {
    let dir = agent_dir(
        "name: x\nprompt: { text: Hi. }\nfunctions:\n  look:\n    description: Looks.\n    secure: false\n    http: { url: \"http://127.0.0.1:9/look\" }\n",
        &[],
    );
    let short = "whsec_eHh4eHh4eHh4eHh4eHh4eA==";
    let unprefixed = "c3dhZ2VudCB0ZXN0IHdlYmhvb2sgc2VjcmV0LCBvbmU=";
    let second_short = format!("{ONE} {short}");
    for (secret, why) in [
        (unprefixed, "the secret does not start with `whsec_`"),
        (
            "whsec_c3dhZ2VudCB0ZXN0*IHdlYmhvb2sgc2VjcmV0",
            "the secret is not base64 after `whsec_`",
        ),
        (
            short,
            "the secret is 16 bytes; the Standard Webhooks spec asks for at least 24",
        ),
        (
            second_short.as_str(),
            "secret 2 of 2 is 16 bytes; the Standard Webhooks spec asks for at least 24",
        ),
    ] {
        let want = format!("error: `SWAGENT_WEBHOOK_SECRET`: {why}; give `whsec_` and the base64 of 32 random bytes (`swagent gen-creds` makes one)\n");
        for command in [
            &["serve", "agent.yaml"][..],
            &["call", "agent.yaml", "look"],
        ] {
            Swagent::new(command)
                .creds()
                .env("SWAGENT_WEBHOOK_SECRET", secret)
                .dir(dir.path())
                .run()
                .code(2)
                .stdout_is("")
                .stderr_is(&want)
                .never_shows(secret.trim_start_matches("whsec_").get(..12).unwrap());
        }
    }
}

#[test]
fn a_file_may_not_set_the_signature_headers_of_a_signed_request() {
    let dir = agent_dir(
        "name: x\nprompt: { text: Hi. }\nfunctions:\n  f:\n    description: F.\n    secure: false\n    http:\n      url: https://api.example.com/x\n      headers: { Webhook-Signature: \"v1,forged\" }\n",
        &[],
    );
    Swagent::new(["validate", "agent.yaml"])
        .dir(dir.path())
        .run()
        .code(1)
        .stderr_has("agent.yaml:9:18: error: function `f`: header `Webhook-Signature` is set by swagent when it signs the request (`SWAGENT_WEBHOOK_SECRET`); remove it, or add `sign: false`\n");
}

#[test]
fn a_run_by_hand_is_signed_too() {
    let up = upstream();
    let dir = agent_dir(&agent(&up.url()), &[]);
    Swagent::new(["call", "agent.yaml", "book", "--arg", "name=Ann"])
        .env("SWAGENT_WEBHOOK_SECRET", ONE)
        .dir(dir.path())
        .run()
        .code(0);
    let seen = &requests_to(&up, "/book")[0];
    assert_signed(seen, 1);
    if let Some(py) = webhooks_python("a_run_by_hand_is_signed_too") {
        assert_eq!(verify(&py, ONE, seen), "verified");
    }
}

/// The call hooks run through the same http handler: both are signed.
#[test]
fn the_call_hooks_are_signed() {
    let up = Upstream::start(|req| match req.method.as_str() {
        "GET" => Answer::json(r#"{"name": "Ann"}"#),
        _ => Answer::json(r#"{"ok": true}"#),
    });
    let yaml = format!(
        "name: hooks\nprompt: {{ text: You help. }}\non_call_start:\n  http: {{ url: \"{0}/callers\", query: {{ phone: \"${{call.from}}\" }} }}\non_call_end:\n  http: {{ url: \"{0}/ended\", method: POST, body: {{ call: \"${{call.call_id}}\", reason: \"${{hangup.reason}}\" }} }}\n",
        up.url()
    );
    let dir = agent_dir(&yaml, &[]);
    let server = serve(dir.path(), Some(ONE));
    let call = json!({"call": {"call_id": "call-9", "from": "+15557654321", "to": "+15551230001"}});
    let doc: Value = server.post("/").json(&call).send().unwrap().json().unwrap();
    let token = token_in(&doc, "hangup_hook");
    let query = format!(
        "?__token={}",
        url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>()
    );
    let (status, _) = server.swaig(
        &query,
        json!({"function": "hangup_hook", "call_id": "call-9", "reason": "hangup",
               "SWMLCall": {"from": "+15557654321"}, "argument": {"parsed": [{}], "raw": "{}"}}),
    );
    assert_eq!(status, 200);
    assert!(eventually(Duration::from_secs(5), || up.seen().len() == 2));
    let start = &requests_to(&up, "/callers")[0];
    let end = &requests_to(&up, "/ended")[0];
    assert_signed(start, 1);
    assert_signed(end, 1);
    let Some(py) = webhooks_python("the_call_hooks_are_signed") else {
        return;
    };
    assert_eq!(verify(&py, ONE, start), "verified", "on_call_start");
    assert_eq!(verify(&py, ONE, end), "verified", "on_call_end");
}
