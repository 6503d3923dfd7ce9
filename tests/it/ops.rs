//! Issue 8: kill switch, SIGUSR1, SIGHUP reload, metrics and alerts on a real
//! server (tests/fixtures/ops/ops.yaml).

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::util::{client, eventually, metric, root, Server, Swagent};

fn setup(extra_alert: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut text = std::fs::read_to_string(root().join("tests/fixtures/ops/ops.yaml")).unwrap();
    if let Some(a) = extra_alert {
        text.push_str(&format!("  - {a}\n"));
    }
    std::fs::write(dir.path().join("ops.yaml"), text).unwrap();
    dir
}

fn start(dir: &Path) -> Server {
    Swagent::new([
        "serve",
        "ops.yaml",
        "--state-file",
        "state.json",
        "--audit-log",
        "audit.log",
    ])
    .creds()
    .dir(dir)
    .start()
}

fn call(server: &Server, function: &str, args: Value) -> Value {
    let (status, body) = server.swaig(
        "",
        json!({"function": function, "call_id": "c1", "argument": {"parsed": [args]}}),
    );
    assert_eq!(status, 200, "{body}");
    body
}

const UNAVAILABLE: &str =
    "That service is unavailable right now. Offer the caller another way to get help.";

/// `swagent disable pay ARGS` in `dir`, then waits until the server refuses it.
fn disable_pay(server: &Server, dir: &Path, args: &[&str]) {
    Swagent::new([&["disable", "pay"][..], args].concat())
        .dir(dir)
        .run()
        .code(0)
        .stdout_is("state.json: disabled: pay\n");
    assert!(
        eventually(Duration::from_secs(10), || call(
            server,
            "pay",
            json!({"amount": 5})
        ) == json!({"response": UNAVAILABLE})),
        "`pay` still runs 10 s after `swagent disable {}`",
        args.join(" ")
    );
}

fn audit_events(dir: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(dir.join("audit.log")).unwrap_or_default();
    // Complete lines only: this may read while the server writes one.
    text[..text.rfind('\n').map_or(0, |i| i + 1)]
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn disable_and_enable_apply_to_a_running_server_without_a_restart() {
    let dir = setup(None);
    let server = start(dir.path());
    assert_eq!(
        call(&server, "pay", json!({"amount": 5})),
        json!({"response": "Paid."})
    );

    disable_pay(&server, dir.path(), &["--state-file", "state.json"]);
    // Other functions keep working.
    assert_eq!(
        call(&server, "get_hours", json!({})),
        json!({"response": "We are open 9 to 5."})
    );

    Swagent::new(["enable", "pay", "--state-file", "state.json"])
        .dir(dir.path())
        .run()
        .code(0)
        .stdout_is("state.json: all functions enabled\n");
    assert!(eventually(Duration::from_secs(10), || call(
        &server,
        "pay",
        json!({"amount": 5})
    ) == json!({"response": "Paid."})));

    // The watcher records the change after it applies it: wait for the line.
    let changes = || -> Vec<String> {
        audit_events(dir.path())
            .iter()
            .filter(|e| e["event"] == "kill_switch_changed")
            .map(|e| e["state"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(
        eventually(Duration::from_secs(10), || changes()
            == ["disabled: pay", "all functions enabled"]),
        "{:?}",
        changes()
    );
    assert!(audit_events(dir.path())
        .iter()
        .any(|e| e["event"] == "function_disabled" && e["function"] == "pay"));
}

/// The options read from variables read `.env` too: `.env` is loaded before
/// the command line is parsed. It was loaded after, so a `.env` holding
/// `SWAGENT_AUDIT_LOG` and `SWAGENT_STATE_FILE` (as production-bank.yaml
/// suggests) served with neither, and `disable` asked for `--state-file`.
#[test]
fn the_audit_log_and_kill_switch_can_be_set_in_dotenv() {
    let dir = setup(None);
    std::fs::write(
        dir.path().join(".env"),
        "SWAGENT_AUDIT_LOG=audit.log\nSWAGENT_STATE_FILE=state.json\n",
    )
    .unwrap();
    let server = Swagent::new(["serve", "ops.yaml"])
        .creds()
        .dir(dir.path())
        .start();
    assert_eq!(
        call(&server, "pay", json!({"amount": 5})),
        json!({"response": "Paid."})
    );
    assert!(audit_events(dir.path())
        .iter()
        .any(|e| e["event"] == "function_called" && e["function"] == "pay"));
    disable_pay(&server, dir.path(), &[]);
}

/// Each `disable` reads, changes and replaces the file; run at once, one
/// used to lose another's change (23 of 40 pairs in review).
#[test]
fn concurrent_disables_all_take_effect() {
    let dir = tempfile::tempdir().unwrap();
    let names: Vec<String> = (0..12).map(|i| format!("f{i}")).collect();
    let children: Vec<std::process::Child> = names
        .iter()
        .map(|n| {
            std::process::Command::new(crate::util::BIN)
                .args(["disable", n, "--state-file", "state.json"])
                .current_dir(dir.path())
                .env_clear()
                .stdout(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("state.json")).unwrap())
            .unwrap();
    let mut disabled: Vec<&str> = state["disabled"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    disabled.sort_unstable();
    let mut want: Vec<&str> = names.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(disabled, want);
}

#[test]
fn disable_checks_names_against_the_agent_when_given() {
    let dir = setup(None);
    Swagent::new([
        "disable",
        "nope",
        "--state-file",
        "state.json",
        "--agent",
        "ops.yaml",
    ])
    .dir(dir.path())
    .run()
    .code(2)
    .stderr_is("error: agent `ops` has no function `nope`\n");
    assert!(!dir.path().join("state.json").exists());
}

#[test]
fn sigusr1_disables_everything() {
    let dir = setup(None);
    let server = start(dir.path());
    server.signal(libc::SIGUSR1);
    assert!(eventually(Duration::from_secs(10), || call(
        &server,
        "get_hours",
        json!({})
    ) == json!({"response": UNAVAILABLE})));
    assert_eq!(
        call(&server, "pay", json!({"amount": 1})),
        json!({"response": UNAVAILABLE})
    );
    // Written to the state file, so `enable --all` undoes it.
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("state.json")).unwrap())
            .unwrap();
    assert_eq!(state["all"], true);
    Swagent::new(["enable", "--all", "--state-file", "state.json"])
        .dir(dir.path())
        .run()
        .code(0);
    assert!(eventually(Duration::from_secs(10), || call(
        &server,
        "pay",
        json!({"amount": 1})
    ) == json!({"response": "Paid."})));
}

#[test]
fn sighup_reloads_a_valid_file_and_keeps_the_old_agent_on_an_invalid_one() {
    let dir = setup(None);
    let server = start(dir.path());
    let file = dir.path().join("ops.yaml");
    let original = std::fs::read_to_string(&file).unwrap();

    reload_to(&server, &file, &original, "We are open 8 to 8.");

    write_and_reload(
        &server,
        dir.path(),
        &original.replace(
            "description: Opening hours.",
            "description: Opening hours.\n    secure: maybe",
        ),
        "reload_failed",
    );
    assert_eq!(
        call(&server, "get_hours", json!({})),
        json!({"response": "We are open 8 to 8."})
    );
    let failed = audit_events(dir.path())
        .into_iter()
        .find(|e| e["event"] == "reload_failed")
        .unwrap();
    // Where, not what: the file's lines and values stay out of both logs.
    let said = "`ops.yaml` is not a valid agent file (`swagent validate` shows the lines):\nops.yaml:9:13: error: invalid agent file: functions.get_hours.secure: invalid type: a string, expected a boolean";
    assert_eq!(failed["error"], said);
    // The log indents a message's later lines.
    let kept = format!(
        "SIGHUP: reload failed, the previous agent keeps serving: {}\n",
        said.replace('\n', "\n    ")
    );
    let log = server.log_with(&kept);
    assert!(log.contains(&kept), "{log}");
    assert!(!log.contains("maybe"), "{log}");

    // A valid file after the invalid one is picked up.
    reload_to(&server, &file, &original, "We are open 7 to 7.");

    // A reload's warnings are logged, as they are at start.
    let with_lookup = original.replace(
        "alerts:",
        "  lookup:\n    description: Looks up.\n    secure: false\n    http:\n      url: https://api.example.com/x\n      headers: { X-Key: \"${env:OPS_TEST_UNSET}\" }\nalerts:",
    );
    reload_to(&server, &file, &with_lookup, "We are open 6 to 6.");
    let warning = "SIGHUP: ops.yaml:27:26: warning: function `lookup`: environment variable `OPS_TEST_UNSET` is not set";
    assert!(server.log_with(warning).contains(warning));
}

/// Writes `text` to `ops.yaml`, sends SIGHUP and waits (bounded) for the
/// audit `event` it leads to.
fn write_and_reload(server: &Server, dir: &Path, text: &str, event: &str) {
    std::fs::write(dir.join("ops.yaml"), text).unwrap();
    server.signal(libc::SIGHUP);
    assert!(
        eventually(Duration::from_secs(5), || audit_events(dir)
            .iter()
            .any(|e| e["event"] == event)),
        "no `{event}` in the audit log"
    );
}

/// Rewrites the hours, sends SIGHUP and waits (bounded) for the new reply.
fn reload_to(server: &Server, file: &Path, original: &str, hours: &str) {
    std::fs::write(file, original.replace("We are open 9 to 5.", hours)).unwrap();
    server.signal(libc::SIGHUP);
    assert!(eventually(Duration::from_secs(5), || call(
        server,
        "get_hours",
        json!({})
    ) == json!({ "response": hours })));
}

/// Alert rates count per clock minute: leaves at least 20 s of this one
/// (the tests need a few seconds; a loaded machine may stretch them).
fn fresh_minute() {
    use chrono::Timelike as _;
    let second = chrono::Utc::now().second();
    if second >= 40 {
        std::thread::sleep(Duration::from_secs(u64::from(61 - second)));
    }
}

#[test]
fn an_alert_rule_counts_across_a_reload() {
    let dir = setup(None);
    let server = start(dir.path());
    let file = dir.path().join("ops.yaml");
    let original = std::fs::read_to_string(&file).unwrap();
    let rule = "`get_hours` more than 2 calls per minute";
    let fired = || {
        audit_events(dir.path())
            .into_iter()
            .filter(|e| e["event"] == "alert" && e["rule"] == rule)
            .map(|e| e["observed"].clone())
            .collect::<Vec<_>>()
    };
    fresh_minute();
    assert_eq!(
        call(&server, "get_hours", json!({})),
        json!({"response": "We are open 9 to 5."})
    );
    // A reload that changes the reply and leaves the rule as it was.
    write_and_reload(
        &server,
        dir.path(),
        &original.replace("We are open 9 to 5.", "We are open 8 to 8."),
        "agent_reloaded",
    );
    assert_eq!(
        call(&server, "get_hours", json!({})),
        json!({"response": "We are open 8 to 8."})
    );
    assert_eq!(fired(), Vec::<Value>::new());
    // The third call of the minute, the first call before the reload counted.
    call(&server, "get_hours", json!({}));
    assert_eq!(fired(), [json!("3 in the current minute")]);
}

#[test]
fn metrics_need_auth_and_move() {
    let dir = setup(None);
    let server = start(dir.path());
    let resp = client()
        .get(format!("{}/metrics", server.url))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 401);
    call(&server, "pay", json!({"amount": 5}));
    call(&server, "pay", json!({"amount": 7}));
    server
        .post("/")
        .json(&json!({"call_id": "c1"}))
        .send()
        .unwrap();
    // A refused call id starts no call.
    for bad in ["c:1", "c\n2"] {
        let resp = server
            .post("/")
            .json(&json!({ "call_id": bad }))
            .send()
            .unwrap();
        assert_eq!(resp.status(), 400, "{bad:?}");
    }
    // Unknown paths share one label: a caller cannot mint time series.
    assert_eq!(server.get("/nope/1").send().unwrap().status(), 404);
    assert_eq!(server.get("/nope/2").send().unwrap().status(), 404);
    let text = server.get("/metrics").send().unwrap().text().unwrap();
    assert_eq!(
        metric(
            &text,
            "swagent_requests_total{route=\"other\",status=\"404\"}"
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "swagent_function_calls_total{function=\"pay\",outcome=\"ok\"}"
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "swagent_auth_failures_total"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "swagent_calls_started_total"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "swagent_requests_total{route=\"metrics\",status=\"401\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "swagent_requests_total{route=\"swaig\",status=\"200\"}"
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            "swagent_function_duration_seconds_count{function=\"pay\"}"
        ),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        metric(&text, "swagent_function_disabled{function=\"pay\"}"),
        Some(0.0),
        "{text}"
    );
    // Public metrics need no credentials.
    let public = Swagent::new(["serve", "ops.yaml", "--metrics-public"])
        .creds()
        .dir(dir.path())
        .start();
    assert_eq!(
        client()
            .get(format!("{}/metrics", public.url))
            .send()
            .unwrap()
            .status(),
        200
    );
}

#[test]
fn each_kind_of_alert_fires() {
    // A window that excludes now, whatever the time of day.
    let hour = chrono::Utc::now()
        .format("%H")
        .to_string()
        .parse::<u32>()
        .unwrap();
    let window = if hour < 12 {
        "13:00-14:00"
    } else {
        "01:00-02:00"
    };
    let rule =
        format!("{{ business_hours: \"Mon-Sun {window} UTC\", functions: [pay], block: true }}");
    let dir = setup(Some(&rule));
    let server = start(dir.path());
    fresh_minute();

    // Rate: the third call in a minute crosses max_per_minute 2.
    for _ in 0..3 {
        call(&server, "get_hours", json!({}));
    }
    // After hours: blocked.
    let blocked = call(&server, "pay", json!({"amount": 5}));
    assert_eq!(
        blocked,
        json!({"response": "I can't do that over the phone right now. Offer the caller another way to get help."})
    );
    // Auth failures: the second in a minute crosses 1.
    for _ in 0..2 {
        client()
            .post(format!("{}/swaig", server.url))
            .send()
            .unwrap();
    }
    let alerts: Vec<Value> = audit_events(dir.path())
        .into_iter()
        .filter(|e| e["event"] == "alert")
        .collect();
    let rules: Vec<&str> = alerts.iter().map(|a| a["rule"].as_str().unwrap()).collect();
    assert!(
        rules.contains(&"`get_hours` more than 2 calls per minute"),
        "{rules:?}"
    );
    assert!(
        rules.contains(&"function called outside business hours"),
        "{rules:?}"
    );
    assert!(
        rules.contains(&"more than 1 failed authentications per minute"),
        "{rules:?}"
    );
    let rate = alerts
        .iter()
        .find(|a| a["rule"] == "`get_hours` more than 2 calls per minute")
        .unwrap();
    assert_eq!(rate["observed"], "3 in the current minute");
    assert_eq!(rate["call_id"], "c1");
    let alert = "ALERT `function called outside business hours`";
    assert!(server.log_with(alert).contains(alert));
}

#[test]
fn an_alert_line_escapes_the_call_id() {
    let dir = setup(None);
    let server = start(dir.path());
    fresh_minute();
    // An open function takes any call id; the third call crosses the rule.
    let forged = "c1\n[2026-11-26T23:59:59Z INFO  swagent] FORGED\u{2028}x";
    for _ in 0..3 {
        let (status, _) = server.swaig(
            "",
            json!({"function": "get_hours", "call_id": forged, "argument": {"parsed": [{}]}}),
        );
        assert_eq!(status, 200);
    }
    let log = server.log_with("ALERT");
    let line = log
        .lines()
        .find(|l| l.contains("ALERT"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        line.ends_with("in call `c1\\u{a}[2026-11-26T23:59:59Z INFO  swagent] FORGED\\u{2028}x`"),
        "{line}"
    );
}

#[test]
fn forged_tokens_count_toward_the_auth_failure_alert() {
    let dir = setup(None);
    let server = start(dir.path());
    fresh_minute();
    // Right password, forged token: alerted on, though not locked out.
    for n in 0..2 {
        let resp = server
            .post(&format!("/post_prompt?__token=forged{n}"))
            .json(&json!({"call_id": "c1", "post_prompt_data": {"raw": "x"}}))
            .send()
            .unwrap();
        assert_eq!(resp.status(), 403);
    }
    let alerts: Vec<Value> = audit_events(dir.path())
        .into_iter()
        .filter(|e| e["event"] == "alert")
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(
        alerts[0]["rule"],
        "more than 1 failed authentications per minute"
    );
    assert_eq!(alerts[0]["observed"], "2 in the current minute");
    assert_eq!(alerts[0]["client_ip"], "127.0.0.1");
}

#[test]
fn a_large_amount_raises_an_alert_and_is_blocked() {
    let dir = setup(None);
    let server = start(dir.path());
    assert_eq!(
        call(&server, "pay", json!({"amount": 1000})),
        json!({"response": "Paid."})
    );
    let big = call(&server, "pay", json!({"amount": 2500}));
    assert_eq!(
        big,
        json!({"response": "I can't do that over the phone right now. Offer the caller another way to get help."})
    );
    let alert = audit_events(dir.path())
        .into_iter()
        .find(|e| e["event"] == "alert")
        .unwrap();
    assert_eq!(alert["rule"], "`pay` with `amount` above 1000");
    assert_eq!(alert["observed"], "2500");
    assert_eq!(alert["outcome"], "blocked");
    assert_eq!(alert["client_ip"], "127.0.0.1");
    assert_eq!(alert["function"], "pay");
}

#[test]
fn a_flood_of_bad_logins_is_sampled_in_the_log_but_complete_in_the_audit_log() {
    let dir = setup(None);
    let server = Swagent::new(["serve", "ops.yaml", "--audit-log", "audit.log"])
        .creds()
        .env("SWAGENT_AUTH_FAILURE_LIMIT", "0")
        .env("RUST_LOG", "warn")
        .dir(dir.path())
        .start();
    let started = std::time::Instant::now();
    for _ in 0..50 {
        let resp = client()
            .post(format!("{}/swaig", server.url))
            .basic_auth("u", Some("wrong-password-000"))
            .send()
            .unwrap();
        assert_eq!(resp.status(), 401);
    }
    let seconds = started.elapsed().as_secs() as usize;
    let audited = audit_events(dir.path())
        .iter()
        .filter(|e| e["event"] == "auth_failed")
        .count();
    assert_eq!(audited, 50);
    // Lines reach the relay thread asynchronously; wait for at least one.
    assert!(eventually(Duration::from_secs(5), || server
        .log()
        .contains("auth failed (mismatch)")));
    let logged = server.log().matches("auth failed (mismatch)").count();
    assert!(
        logged <= seconds + 2,
        "{logged} WARN lines for 50 failures in {seconds} s: the log is not sampled"
    );
}

#[test]
fn a_state_file_that_becomes_empty_keeps_functions_disabled() {
    let dir = setup(None);
    let server = start(dir.path());
    disable_pay(&server, dir.path(), &["--state-file", "state.json"]);
    // Truncated by something other than swagent (which replaces it whole).
    std::fs::write(dir.path().join("state.json"), "").unwrap();
    let said = "kill switch: `state.json` does not parse, keeping the current state: it is empty (`swagent enable --all` enables everything)";
    assert!(server.log_with(said).contains(said));
    assert_eq!(
        call(&server, "pay", json!({"amount": 5})),
        json!({"response": UNAVAILABLE})
    );
    // Nothing that reads the file takes "empty" as "nothing disabled": not a
    // change to one function (it would write a state without `pay`), not
    // `call`, not a replica that restarts.
    let empty = "`state.json` is not a kill-switch state file: it is empty (`swagent enable --all` enables everything)";
    Swagent::new(["disable", "get_hours", "--state-file", "state.json"])
        .dir(dir.path())
        .run()
        .code(2)
        .stdout_is("")
        .stderr_is(&format!("error: {empty}; a change to one function needs the state it changes, and `--all` replaces the file (keeping a copy)\n"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("state.json")).unwrap(),
        ""
    );
    Swagent::new(["call", "ops.yaml", "pay", "--arg", "amount=5"])
        .args(["--state-file", "state.json"])
        .dir(dir.path())
        .run()
        .code(2)
        .stdout_is("")
        .stderr_is(&format!("error: {empty}\n"));
    Swagent::new(["serve", "ops.yaml", "--state-file", "state.json"])
        .creds()
        .dir(dir.path())
        .run()
        .code(2)
        .stdout_is("")
        .stderr_has(empty);
    assert_eq!(
        call(&server, "pay", json!({"amount": 5})),
        json!({"response": UNAVAILABLE})
    );
}

#[test]
fn disable_all_replaces_a_state_file_that_does_not_parse_and_keeps_a_copy() {
    let dir = setup(None);
    std::fs::write(dir.path().join("state.json"), "{\"all\": tru").unwrap();
    // A change to one function needs the old state, and says so.
    Swagent::new(["disable", "pay", "--state-file", "state.json"])
        .dir(dir.path())
        .run()
        .code(2)
        .stderr_has("error: `state.json` is not a kill-switch state file: ");
    let out = Swagent::new(["disable", "--all", "--state-file", "state.json"])
        .dir(dir.path())
        .run()
        .code(0)
        .stdout_is("state.json: all functions disabled\n");
    let kept: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("state.json.unreadable-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    let kept_path = dir.path().join(&kept[0]);
    assert_eq!(
        out.stderr,
        format!(
            "warning: `state.json` did not parse; it was replaced, and the old content kept at `{}`\n",
            kept[0]
        )
    );
    assert_eq!(
        std::fs::read_to_string(&kept_path).unwrap(),
        "{\"all\": tru"
    );
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("state.json")).unwrap())
            .unwrap();
    assert_eq!(state["all"], true);
}

#[test]
fn disable_writes_through_a_symlinked_state_file() {
    let dir = setup(None);
    std::fs::create_dir(dir.path().join("shared")).unwrap();
    std::os::unix::fs::symlink("shared/state.json", dir.path().join("state.json")).unwrap();
    // The replica watches the real file; the operator names the link.
    let server = Swagent::new(["serve", "ops.yaml", "--state-file", "shared/state.json"])
        .creds()
        .dir(dir.path())
        .start();
    Swagent::new(["disable", "pay", "--state-file", "state.json"])
        .dir(dir.path())
        .run()
        .code(0)
        .stdout_is("state.json: disabled: pay\n")
        .stderr_is("note: the names were not checked against an agent; pass `--agent FILE` to catch a typo\n");
    assert!(std::fs::symlink_metadata(dir.path().join("state.json"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert!(eventually(Duration::from_secs(10), || call(
        &server,
        "pay",
        json!({"amount": 5})
    ) == json!({"response": UNAVAILABLE})));
}

#[test]
fn disable_refuses_a_lock_file_that_is_a_symlink_or_a_fifo() {
    let dir = setup(None);
    // Someone who can write the folder points the lock at a file of theirs
    // choosing: `disable` (perhaps run as root) must not create or open it.
    std::os::unix::fs::symlink("victim", dir.path().join("state.json.lock")).unwrap();
    Swagent::new(["disable", "pay", "--state-file", "state.json"])
        .dir(dir.path())
        .run()
        .code(2)
        .stdout_is("")
        .stderr_is("error: cannot open `state.json.lock`: is a symbolic link\n");
    assert!(!dir.path().join("victim").exists());
    assert!(!dir.path().join("state.json").exists());

    std::fs::remove_file(dir.path().join("state.json.lock")).unwrap();
    crate::util::mkfifo(&dir.path().join("state.json.lock"));
    Swagent::new(["disable", "pay", "--state-file", "state.json"])
        .dir(dir.path())
        .run()
        .code(2)
        .stderr_is(
            "error: cannot open `state.json.lock`: is not a regular file (a FIFO, socket or device)\n",
        );
    assert!(!dir.path().join("state.json").exists());
}

#[test]
fn disable_gives_up_on_a_lock_held_by_a_stuck_process_after_10_s() {
    use std::os::fd::AsRawFd as _;
    let dir = setup(None);
    let held = std::fs::File::create(dir.path().join("state.json.lock")).unwrap();
    // SAFETY: flock on a descriptor this test owns.
    assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX) }, 0);
    let started = std::time::Instant::now();
    Swagent::new(["disable", "pay", "--state-file", "state.json"])
        .dir(dir.path())
        .run()
        .code(2)
        .stderr_is("error: cannot lock `state.json.lock`: another process has held it for 10 s (a `swagent disable` or `enable` that is stuck?)\n");
    assert!(started.elapsed() >= Duration::from_secs(10));
    assert!(!dir.path().join("state.json").exists());
    // Once the holder lets go, the next one goes through.
    drop(held);
    Swagent::new(["disable", "pay", "--state-file", "state.json"])
        .dir(dir.path())
        .run()
        .code(0)
        .stdout_is("state.json: disabled: pay\n");
}

#[test]
fn a_fifo_is_refused_as_state_file_and_agent_file_and_never_holds_up_sigterm() {
    let dir = setup(None);
    crate::util::mkfifo(&dir.path().join("fifo.json"));
    Swagent::new(["serve", "ops.yaml", "--state-file", "fifo.json"])
        .creds()
        .dir(dir.path())
        .run()
        .code(2)
        .stderr_has(
            "error: cannot read `fifo.json`: is not a regular file (a FIFO, socket or device)",
        );

    let mut server = start(dir.path());
    let file = dir.path().join("ops.yaml");
    std::fs::remove_file(&file).unwrap();
    crate::util::mkfifo(&file);
    server.signal(libc::SIGHUP);
    let said = "SIGHUP: reload failed, the previous agent keeps serving: cannot read `ops.yaml`: is not a regular file (a FIFO, socket or device)";
    assert!(server.log_with(said).contains(said));
    assert_eq!(
        call(&server, "get_hours", json!({})),
        json!({"response": "We are open 9 to 5."})
    );
    // The state file turns into a FIFO too: the watcher says so, and the
    // server still stops at once on SIGTERM.
    std::fs::remove_file(dir.path().join("state.json")).ok();
    crate::util::mkfifo(&dir.path().join("state.json"));
    let said =
        "kill switch: cannot read `state.json`: is not a regular file (a FIFO, socket or device)";
    assert!(server.log_with(said).contains(said));
    server.signal(libc::SIGTERM);
    // Not held by the FIFO: an open that blocked would never return.
    assert_eq!(server.wait_exit(Duration::from_secs(20)), Some(0));
}

#[test]
fn a_disabled_function_over_its_rate_limit_says_unavailable() {
    let dir = crate::util::agent_dir(
        "name: rl\nprompt: { text: x }\nfunctions:\n  pay:\n    description: Pays.\n    secure: false\n    rate_limit: { per_call: 1/min }\n    static: { response: Paid. }\n",
        &[],
    );
    let server = Swagent::new(["serve", "agent.yaml", "--state-file", "state.json"])
        .creds()
        .dir(dir.path())
        .start();
    let pay = || {
        server.swaig(
            "",
            json!({"function": "pay", "call_id": "c1", "argument": {"parsed": [{}]}}),
        )
    };
    assert_eq!(pay(), (200, json!({"response": "Paid."})));
    assert_eq!(pay().0, 429);
    Swagent::new(["disable", "pay", "--state-file", "state.json"])
        .dir(dir.path())
        .run()
        .code(0);
    assert!(
        eventually(Duration::from_secs(10), || pay()
            == (200, json!({"response": UNAVAILABLE}))),
        "{:?}",
        pay()
    );
}

#[test]
fn a_required_audit_log_whose_folder_vanished_stops_service_until_it_is_back() {
    let dir = setup(None);
    std::fs::create_dir(dir.path().join("ad")).unwrap();
    let server = Swagent::new([
        "serve",
        "ops.yaml",
        "--audit-log",
        "ad/audit.log",
        "--audit-required",
    ])
    .creds()
    .dir(dir.path())
    .start();
    let ready = || {
        client()
            .get(format!("{}/ready", server.url))
            .send()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(ready(), 200);
    std::fs::remove_dir_all(dir.path().join("ad")).unwrap();
    server.signal(libc::SIGHUP);
    // The old file is still open, but it is gone from where it is looked for.
    assert!(eventually(Duration::from_secs(5), || ready() == 503));
    let (status, body) = server.swaig(
        "",
        json!({"function": "get_hours", "call_id": "c1", "argument": {"parsed": [{}]}}),
    );
    assert_eq!((status, &body["error"]), (503, &json!("audit_unavailable")));
    std::fs::create_dir(dir.path().join("ad")).unwrap();
    assert!(eventually(Duration::from_secs(5), || ready() == 200));
    // `/ready` turns with the reopened file; the line is written after.
    let log = || std::fs::read_to_string(dir.path().join("ad/audit.log")).unwrap();
    assert!(
        eventually(Duration::from_secs(10), || log()
            .contains("\"event\":\"audit_recovered\"")),
        "{}",
        log()
    );
    assert_eq!(
        call(&server, "get_hours", json!({}))["response"],
        "We are open 9 to 5."
    );
    // Again without a SIGHUP: the once-a-second check of the path sees it,
    // and sees it come back, with no request in between.
    std::fs::remove_dir_all(dir.path().join("ad")).unwrap();
    assert!(eventually(Duration::from_secs(5), || ready() == 503));
    let said = "the audit log was moved or deleted without a SIGHUP and cannot be reopened: cannot write the audit log `ad/audit.log`: No such file or directory (os error 2); lines go to the file it had open until its path can be opened again";
    assert!(server.log_with(said).contains(said));
    std::fs::create_dir(dir.path().join("ad")).unwrap();
    assert!(eventually(Duration::from_secs(5), || ready() == 200));
    let said = "the audit log is back at its path";
    assert!(server.log_with(said).contains(said));
    // And with the SIGHUP logrotate sends, before the path check's next
    // look: the file says it is back, and nothing else is asked in between.
    std::fs::remove_dir_all(dir.path().join("ad")).unwrap();
    assert!(eventually(Duration::from_secs(5), || ready() == 503));
    std::fs::create_dir(dir.path().join("ad")).unwrap();
    server.signal(libc::SIGHUP);
    let recovered = || {
        std::fs::read_to_string(dir.path().join("ad/audit.log")).is_ok_and(|t| {
            t.lines()
                .next()
                .is_some_and(|l| l.contains("\"event\":\"audit_recovered\""))
        })
    };
    // Before the fix the SIGHUP brought the log back without a word, and the
    // path check then found nothing to say: the first line was
    // `agent_reloaded`.
    assert!(
        eventually(Duration::from_secs(5), recovered),
        "{:?}",
        std::fs::read_to_string(dir.path().join("ad/audit.log"))
    );
}

#[test]
fn a_state_file_in_a_missing_folder_is_refused_at_start() {
    let dir = setup(None);
    Swagent::new(["serve", "ops.yaml", "--state-file", "nowhere/state.json"])
        .creds()
        .dir(dir.path())
        .run()
        .code(2)
        .stdout_is("")
        .stderr_is("error: the folder of `--state-file` `nowhere/state.json` does not exist, so `swagent disable` could not write it\n");
}

#[test]
fn disable_says_when_it_creates_the_state_file() {
    let dir = setup(None);
    // A mistyped path: no server watches the file it makes.
    Swagent::new(["disable", "pay", "--state-file", "stat.json"])
        .dir(dir.path())
        .run()
        .code(0)
        .stdout_is("stat.json: disabled: pay\n")
        .stderr_is("note: `stat.json` did not exist and was created; only servers started with this `--state-file` follow it\nnote: the names were not checked against an agent; pass `--agent FILE` to catch a typo\n");
    // A change to a file that exists is not news.
    Swagent::new(["disable", "get_hours", "--state-file", "stat.json"])
        .args(["--agent", "ops.yaml"])
        .dir(dir.path())
        .run()
        .code(0)
        .stdout_is("stat.json: disabled: get_hours, pay\n")
        .stderr_is("");
}

#[test]
fn root_changes_no_state_file_in_a_folder_another_user_controls() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        crate::util::skipped("SKIPPED ops::root_changes_no_state_file_in_a_folder_another_user_controls: it needs root to act as two users");
        return;
    }
    // The service's folder, owned by `nobody`, who has linked the state file
    // to a file only root may write.
    let dir = tempfile::tempdir().unwrap();
    let folder = std::fs::canonicalize(dir.path()).unwrap();
    std::os::unix::fs::chown(&folder, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o700)).unwrap();
    let rootonly = tempfile::tempdir().unwrap();
    let victim = rootonly.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, folder.join("state.json")).unwrap();
    std::os::unix::fs::lchown(folder.join("state.json"), Some(65534), Some(65534)).unwrap();
    let refused = format!(
        "error: cannot change `state.json`: `{}` is owned by uid 65534 with mode 0700: as root, swagent writes only in folders no other user can change (they could point the file anywhere, or read it); run this as that folder's owner\n",
        folder.display()
    );
    for args in [&["disable", "--all"][..], &["enable", "pay"][..]] {
        Swagent::new(args)
            .args(["--state-file", "state.json"])
            .dir(&folder)
            .run()
            .code(2)
            .stdout_is("")
            .stderr_is(&refused);
    }
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    assert!(!rootonly.path().join("victim.lock").exists());
    // As the folder's owner, it works (on a file of its own).
    std::fs::remove_file(folder.join("state.json")).unwrap();
    let as_owner = |args: &[&str]| crate::util::as_nobody(&folder, args);
    let out = as_owner(&["disable", "pay", "--state-file", "state.json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A lock root left there (by an older swagent) is named with a way out.
    std::fs::remove_file(folder.join("state.json.lock")).unwrap();
    std::fs::File::create(folder.join("state.json.lock")).unwrap();
    std::fs::set_permissions(
        folder.join("state.json.lock"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let out = as_owner(&["enable", "pay", "--state-file", "state.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: cannot open `state.json.lock`: Permission denied (os error 13) (it belongs to uid 0: remove it, or give it to the user the servers run as)\n"
    );
}
