//! Summaries that are never lost (issue 28): `/post_prompt` keeps the
//! summary in the outbox before it answers 200; a worker delivers it with
//! the agent's `summary` handler, retries while the receiver is down or
//! swagent restarts, gives up on a 4xx, and an operator sends it again.

use std::path::Path;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::util::{agent_dir, eventually, Answer, Server, Swagent, Upstream};

/// An agent whose summary goes to `UPSTREAM/calls`.
const AGENT: &str = r#"name: crm
prompt: { text: You help. }
post_prompt: { text: "Summarize the call as JSON: {\"outcome\": ...}." }
summary:
  http:
    url: "UPSTREAM/calls"
    method: POST
    headers: { Authorization: "Bearer ${env:CRM_TOKEN}" }
    body: { call_id: "${call_id}", summary: "${summary.text}", data: "${summary.parsed}", caller: "${call.from}", id: "${summary.id}", log: "${summary.call_log}" }
"#;

/// A receiver whose status the test sets, and what it saw.
fn receiver(status: Arc<AtomicU16>) -> Upstream {
    Upstream::start(move |_| match status.load(Ordering::Relaxed) {
        200 => Answer::json(r#"{"ok": true}"#),
        400 => Answer::new("400 Bad Request", "application/json", r#"{"error": "no"}"#),
        _ => Answer::new("503 Service Unavailable", "application/json", "{}"),
    })
}

fn serve(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Server {
    let mut cmd = Swagent::new(["serve", "agent.yaml", "--audit-log", "audit.log"])
        .args(extra)
        .creds()
        .env("CRM_TOKEN", "crm-token")
        .dir(dir);
    for (k, v) in env {
        cmd = cmd.env(k, v);
    }
    cmd.start()
}

/// Posts a summary as the platform does: status and body.
fn post_summary(server: &Server, call_id: &str) -> (u16, Value) {
    post_with(&server.url, &token_query(server, call_id), call_id)
}

/// The `?__token=...` of the call's `post_prompt_url`.
fn token_query(server: &Server, call_id: &str) -> String {
    let doc: Value = server
        .post("/")
        .json(&json!({"call": {"call_id": call_id, "from": "+15557654321"}}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let url = doc["sections"]["main"][1]["ai"]["post_prompt_url"]
        .as_str()
        .unwrap();
    url[url.find('?').unwrap()..].to_owned()
}

/// Posts the summary of `call_id` to the server at `base`.
fn post_with(base: &str, query: &str, call_id: &str) -> (u16, Value) {
    let resp = crate::util::client()
        .post(format!("{base}/post_prompt/{query}"))
        .basic_auth(crate::util::USER, Some(crate::util::PASSWORD))
        .json(&json!({
            "call_id": call_id,
            "caller_id_num": "+15557654321",
            "global_data": {"tier": "gold"},
            "call_log": [{"role": "user", "content": "Thanks."}],
            "post_prompt_data": {"raw": "{\"outcome\": \"booked\"}", "parsed": [{"outcome": "booked"}]}
        }))
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.json().unwrap_or(Value::Null))
}

/// The audit events named `event`.
fn events(dir: &Path, event: &str) -> Vec<Value> {
    std::fs::read_to_string(dir.join("audit.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == event)
        .collect()
}

fn files_in(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

fn within(secs: u64, check: impl FnMut() -> bool) -> bool {
    eventually(Duration::from_secs(secs), check)
}

#[test]
fn a_summary_is_delivered_with_the_files_fields_and_its_id() {
    let status = Arc::new(AtomicU16::new(200));
    let up = receiver(status);
    let dir = agent_dir(&AGENT.replace("UPSTREAM", &up.url()), &[]);
    let server = serve(dir.path(), &["--outbox", "outbox"], &[]);
    assert_eq!(
        post_summary(&server, "call-1"),
        (200, json!({"response": "ok"}))
    );
    assert!(within(10, || !events(dir.path(), "summary_delivered").is_empty()));
    let seen = up.seen();
    assert_eq!(seen.len(), 1);
    let id = events(dir.path(), "summary_received")[0]["summary_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(id.starts_with("sum_"), "{id}");
    assert_eq!(
        (seen[0].method.as_str(), seen[0].target.as_str()),
        ("POST", "/calls")
    );
    assert_eq!(seen[0].header("authorization"), Some("Bearer crm-token"));
    assert_eq!(seen[0].header("webhook-id"), Some(id.as_str()));
    assert_eq!(
        serde_json::from_slice::<Value>(&seen[0].body).unwrap(),
        json!({"call_id": "call-1", "summary": "{\"outcome\": \"booked\"}",
               "data": {"outcome": "booked"}, "caller": "+15557654321", "id": id,
               "log": [{"role": "user", "content": "Thanks."}]})
    );
    assert_eq!(
        files_in(&dir.path().join("outbox/pending")),
        0,
        "delivered: gone"
    );
    let delivered = &events(dir.path(), "summary_delivered")[0];
    assert_eq!(delivered["summary_id"], id.as_str());
    assert_eq!(delivered["attempts"], 1);
    let log = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
    assert!(
        !log.contains("booked"),
        "the audit log never holds the summary"
    );
    for line in [
        "swagent_summary_deliveries_total{outcome=\"delivered\"} 1\n",
        "swagent_outbox_depth 0\n",
        "swagent_outbox_oldest_seconds 0\n",
    ] {
        let scraped = || server.get("/metrics").send().unwrap().text().unwrap();
        assert!(
            within(5, || scraped().contains(line)),
            "{line}: {}",
            scraped()
        );
    }
}

#[test]
fn a_receiver_down_then_up_gets_it_with_the_same_id() {
    let status = Arc::new(AtomicU16::new(503));
    let up = receiver(status.clone());
    let dir = agent_dir(&AGENT.replace("UPSTREAM", &up.url()), &[]);
    let server = serve(dir.path(), &["--outbox", "outbox"], &[]);
    assert_eq!(post_summary(&server, "call-2").0, 200);
    std::thread::sleep(Duration::from_secs(5));
    assert!(up.seen().len() >= 2, "retried while down");
    status.store(200, Ordering::Relaxed);
    assert!(within(15, || !events(dir.path(), "summary_delivered").is_empty()));
    let ids: Vec<String> = up
        .seen()
        .iter()
        .map(|s| s.header("webhook-id").unwrap().to_owned())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    assert!(!events(dir.path(), "summary_retry").is_empty());
    drop(server);
}

#[test]
fn a_summary_survives_sigkill_and_is_delivered_after_the_restart() {
    let status = Arc::new(AtomicU16::new(503));
    let up = receiver(status.clone());
    let dir = agent_dir(&AGENT.replace("UPSTREAM", &up.url()), &[]);
    let mut server = serve(dir.path(), &["--outbox", "outbox"], &[]);
    assert_eq!(post_summary(&server, "call-3").0, 200);
    assert_eq!(files_in(&dir.path().join("outbox/pending")), 1);
    server.signal(libc::SIGKILL);
    server.wait_exit(Duration::from_secs(5));
    status.store(200, Ordering::Relaxed);
    let _again = serve(dir.path(), &["--outbox", "outbox"], &[]);
    assert!(within(10, || !events(dir.path(), "summary_delivered").is_empty()));
    let last = up.seen().last().unwrap().clone();
    assert_eq!(
        serde_json::from_slice::<Value>(&last.body).unwrap()["call_id"],
        "call-3"
    );
    assert_eq!(files_in(&dir.path().join("outbox/pending")), 0);
}

#[test]
fn a_400_is_given_up_at_once_and_an_operator_sends_it_again() {
    let status = Arc::new(AtomicU16::new(400));
    let up = receiver(status.clone());
    let dir = agent_dir(&AGENT.replace("UPSTREAM", &up.url()), &[]);
    let _server = serve(dir.path(), &["--outbox", "outbox"], &[]);
    assert_eq!(post_summary(&_server, "call-4").0, 200);
    assert!(within(10, || !events(dir.path(), "summary_rejected").is_empty()));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(up.seen().len(), 1, "not retried");
    let rejected = &events(dir.path(), "summary_rejected")[0];
    assert_eq!(rejected["reason"], "the receiver answered 400 Bad Request");
    let id = rejected["summary_id"].as_str().unwrap().to_owned();
    let listed = Swagent::new(["outbox", "list", "outbox", "--format", "json"])
        .dir(dir.path())
        .run()
        .code(0);
    let rows: Value = serde_json::from_str(&listed.stdout).unwrap();
    assert_eq!(rows[0]["id"], id.as_str());
    assert_eq!(rows[0]["state"], "given-up");
    assert_eq!(rows[0]["reason"], "the receiver answered 400 Bad Request");
    Swagent::new(["outbox", "retry", "outbox", "sum_0000000000000_nope"])
        .dir(dir.path())
        .run()
        .code(1)
        .stderr_is("error: no summary `sum_0000000000000_nope` given up on\n");
    status.store(200, Ordering::Relaxed);
    Swagent::new(["outbox", "retry", "outbox", &id])
        .dir(dir.path())
        .run()
        .code(0)
        .stdout_is("1 summary sent back for delivery\n");
    assert!(within(10, || !events(dir.path(), "summary_delivered").is_empty()));
    assert_eq!(up.seen().len(), 2);
    assert_eq!(files_in(&dir.path().join("outbox/dead")), 0);
}

#[test]
fn a_full_outbox_answers_503_and_raises_an_alert() {
    let status = Arc::new(AtomicU16::new(503));
    let up = receiver(status);
    let dir = agent_dir(&AGENT.replace("UPSTREAM", &up.url()), &[]);
    let server = serve(
        dir.path(),
        &["--outbox", "outbox"],
        &[("SWAGENT_OUTBOX_MAX", "1")],
    );
    assert_eq!(post_summary(&server, "call-5").0, 200);
    assert_eq!(
        post_summary(&server, "call-6"),
        (
            503,
            json!({"error": "outbox_full", "message": "the summary cannot be kept now; try again later"})
        )
    );
    let alerts = events(dir.path(), "alert");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["rule"], "outbox_full");
    assert_eq!(files_in(&dir.path().join("outbox/pending")), 1);
}

#[test]
fn an_outbox_that_cannot_be_written_answers_503() {
    let status = Arc::new(AtomicU16::new(503));
    let up = receiver(status);
    let dir = agent_dir(&AGENT.replace("UPSTREAM", &up.url()), &[]);
    let server = serve(dir.path(), &["--outbox", "outbox"], &[]);
    let pending = dir.path().join("outbox/pending");
    std::fs::remove_dir(&pending).unwrap();
    std::fs::write(&pending, "not a folder").unwrap();
    assert_eq!(
        post_summary(&server, "call-7"),
        (
            503,
            json!({"error": "outbox_unavailable", "message": "the summary cannot be kept now; try again later"})
        )
    );
    assert_eq!(
        events(dir.path(), "summary_refused")[0]["outcome"],
        "outbox_unavailable"
    );
    assert!(events(dir.path(), "summary_received").is_empty());
}

/// Without `--outbox` summaries are still delivered, but `serve` says a
/// restart loses them and `check --production` fails the item.
#[test]
fn without_an_outbox_serve_warns_and_check_fails() {
    let status = Arc::new(AtomicU16::new(200));
    let up = receiver(status);
    let dir = agent_dir(&AGENT.replace("UPSTREAM", &up.url()), &[]);
    let mut server = serve(dir.path(), &[], &[]);
    assert_eq!(post_summary(&server, "call-8").0, 200);
    assert!(within(10, || up.seen().len() == 1));
    assert!(server.stop_and_log().contains(
        "swagent: WARNING: no `--outbox`: summaries wait in memory, and a restart loses the undelivered\n"
    ));
    let item = |extra: &[&str]| -> Value {
        let out = Swagent::new(["check", "agent.yaml", "--production", "--format", "json"])
            .args(extra)
            .creds()
            .env("CRM_TOKEN", "t")
            .dir(dir.path())
            .run();
        let items: Value = serde_json::from_str(&out.stdout).unwrap();
        let found = items["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == "outbox");
        found.unwrap().clone()
    };
    assert_eq!(
        item(&[]),
        json!({"id": "outbox", "title": "Summaries survive a restart", "status": "fail",
               "why": "no `--outbox`: summaries wait in memory, and a restart loses the undelivered (`SWAGENT_OUTBOX`)"})
    );
    assert_eq!(item(&["--outbox", "outbox"])["status"], "pass");
}

/// With `SWAGENT_WEBHOOK_SECRET`, a delivery is signed as Standard Webhooks
/// says, with the summary's id as the message id: the same on every retry.
#[test]
fn a_delivery_is_signed_with_the_summary_id() {
    let Some(py) = crate::util::webhooks_python("a_delivery_is_signed_with_the_summary_id") else {
        return;
    };
    let secret = "whsec_c3dhZ2VudCB0ZXN0IHdlYmhvb2sgc2VjcmV0LCBvbmU=";
    let status = Arc::new(AtomicU16::new(503));
    let up = receiver(status.clone());
    let dir = agent_dir(&AGENT.replace("UPSTREAM", &up.url()), &[]);
    let _server = {
        let server = serve(
            dir.path(),
            &["--outbox", "outbox"],
            &[("SWAGENT_WEBHOOK_SECRET", secret)],
        );
        assert_eq!(post_summary(&server, "call-9").0, 200);
        assert!(within(10, || !up.seen().is_empty()));
        status.store(200, Ordering::Relaxed);
        assert!(within(15, || !events(dir.path(), "summary_delivered").is_empty()));
        server
    };
    let id = events(dir.path(), "summary_received")[0]["summary_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let seen = up.seen();
    assert!(seen.len() >= 2, "a retry, then the delivery");
    for request in &seen {
        assert_eq!(request.header("webhook-id"), Some(id.as_str()));
        assert_eq!(crate::webhooks::verify(&py, secret, request), "verified");
    }
}

/// A 301 would turn the delivery's POST into a GET without its body: a
/// delivery follows no redirect, and a 3xx is given up on, not delivered.
/// A `Retry-After: 0` does not make the worker hammer the receiver.
#[test]
fn a_redirect_is_no_delivery_and_retry_after_zero_is_no_flood() {
    let moved = Upstream::start(|req| match req.method.as_str() {
        "POST" => Answer::new("301 Moved Permanently", "application/json", "{}")
            .header("Location", "/calls/"),
        _ => Answer::json("{}"),
    });
    let dir = agent_dir(&AGENT.replace("UPSTREAM", &moved.url()), &[]);
    let server = serve(dir.path(), &["--outbox", "outbox"], &[]);
    assert_eq!(post_summary(&server, "call-10").0, 200);
    assert!(within(10, || !events(dir.path(), "summary_rejected").is_empty()));
    assert_eq!(
        events(dir.path(), "summary_rejected")[0]["reason"],
        "the receiver answered 301 Moved Permanently"
    );
    assert!(
        moved.seen().iter().all(|s| s.method == "POST"),
        "not followed"
    );
    assert_eq!(files_in(&dir.path().join("outbox/dead")), 1);

    let eager = Upstream::start(|_| {
        Answer::new("503 Service Unavailable", "application/json", "{}").header("Retry-After", "0")
    });
    let dir = agent_dir(&AGENT.replace("UPSTREAM", &eager.url()), &[]);
    let server = serve(dir.path(), &["--outbox", "outbox"], &[]);
    assert_eq!(post_summary(&server, "call-11").0, 200);
    std::thread::sleep(Duration::from_secs(3));
    let tries = eager.seen().len();
    assert!((1..=3).contains(&tries), "{tries} attempts in 3 s");
}

/// Summaries arriving together cannot pass the bound together.
#[test]
fn concurrent_summaries_stay_within_the_bound() {
    let status = Arc::new(AtomicU16::new(503));
    let up = receiver(status);
    let dir = agent_dir(&AGENT.replace("UPSTREAM", &up.url()), &[]);
    let server = serve(
        dir.path(),
        &["--outbox", "outbox"],
        &[("SWAGENT_OUTBOX_MAX", "3")],
    );
    let calls: Vec<(String, String)> = (0..20)
        .map(|i| {
            let call_id = format!("call-c{i}");
            (token_query(&server, &call_id), call_id)
        })
        .collect();
    let base = server.url.clone();
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let posts: Vec<_> = calls
            .iter()
            .map(|(query, call_id)| s.spawn(|| post_with(&base, query, call_id).0))
            .collect();
        posts.into_iter().map(|p| p.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        3,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 503).count(),
        17,
        "{statuses:?}"
    );
    assert_eq!(files_in(&dir.path().join("outbox/pending")), 3);
}
