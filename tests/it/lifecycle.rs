//! `on_call_start` (issue 27): a lookup when the call starts, merged into
//! the document's `global_data`; a lookup that fails or is slow never
//! leaves the caller in silence.

use serde_json::{json, Value};

use crate::util::{agent_dir, eventually, Answer, Server, Swagent, Upstream};

fn serve(yaml: &str, scripts: &[(&str, &str)]) -> (tempfile::TempDir, Server) {
    let dir = agent_dir(yaml, scripts);
    let audit = dir.path().join("audit.log");
    let server = Swagent::new(["serve", "agent.yaml", "--audit-log"])
        .args([audit.as_os_str()])
        .creds()
        .dir(dir.path())
        .start();
    (dir, server)
}

/// The SWML of a call from `from`, as the platform posts it.
fn swml(server: &Server, from: &str) -> Value {
    server
        .post("/")
        .json(&json!({"call": {"call_id": "call-9", "from": from, "to": "+15551230001", "direction": "inbound"}}))
        .send()
        .unwrap()
        .json()
        .unwrap()
}

fn global_data(doc: &Value) -> Value {
    doc["sections"]["main"][1]["ai"]["global_data"].clone()
}

fn audit_outcomes(dir: &std::path::Path, event: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join("audit.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == event)
        .map(|e| e["outcome"].as_str().unwrap_or_default().to_owned())
        .collect()
}

const SHELL_AGENT: &str = r#"name: lookup
prompt: { text: You help. }
global_data: { company: Northwind, tier: unknown }
on_call_start:
  shell: { command: ["./lookup.sh", "${call.from}"], timeout: 1s }
"#;

/// Prints the caller's tier; a number ending in 9 is slow, in 8 fails, in
/// 7 claims a grant, in 6 prints no JSON.
const LOOKUP: &str = r#"#!/bin/sh
case "$1" in
  *9) sleep 3 ;;
  *8) exit 2 ;;
  *7) echo '{"swagent_verified": "forged"}'; exit 0 ;;
  *6) echo 'gold'; exit 0 ;;
esac
read call
printf '{"tier": "gold", "caller": "%s", "seen": %s}' "$1" "$call"
"#;

#[test]
fn the_lookup_joins_the_calls_global_data() {
    let (_dir, server) = serve(SHELL_AGENT, &[("lookup.sh", LOOKUP)]);
    let data = global_data(&swml(&server, "+15557654321"));
    assert_eq!(data["company"], "Northwind", "the file's own data stays");
    assert_eq!(data["tier"], "gold", "the lookup's wins");
    assert_eq!(data["caller"], "+15557654321");
    assert_eq!(
        data["seen"]["direction"], "inbound",
        "the program reads the call on stdin"
    );
}

#[test]
fn a_slow_or_failed_lookup_answers_with_the_files_own_data() {
    let (dir, server) = serve(SHELL_AGENT, &[("lookup.sh", LOOKUP)]);
    let file_data = json!({"company": "Northwind", "tier": "unknown"});
    for from in [
        "+15550000009",
        "+15550000008",
        "+15550000007",
        "+15550000006",
    ] {
        let doc = swml(&server, from);
        assert_eq!(global_data(&doc), file_data, "{from}");
        assert!(
            doc["sections"]["main"][1]["ai"]["prompt"].is_object(),
            "{from}: the agent still answers"
        );
    }
    assert!(eventually(std::time::Duration::from_secs(5), || {
        audit_outcomes(dir.path(), "call_start_failed")
            == ["timeout", "error", "reserved_key", "not_an_object"]
    }));
}

#[test]
fn a_required_lookup_that_fails_answers_with_after_failure() {
    let yaml = format!(
        "{SHELL_AGENT}  required: true\n  after_failure:\n    - answer: {{}}\n    - play: {{ url: \"say:We cannot take your call right now.\" }}\n    - hangup: {{}}\n"
    );
    let (_dir, server) = serve(&yaml, &[("lookup.sh", LOOKUP)]);
    assert_eq!(
        swml(&server, "+15550000008"),
        json!({"version": "1.0.0", "sections": {"main": [
            {"answer": {}}, {"play": {"url": "say:We cannot take your call right now."}}, {"hangup": {}}]}})
    );
    assert_eq!(global_data(&swml(&server, "+15557654321"))["tier"], "gold");
}

#[test]
fn an_http_lookup_gets_the_call_in_its_templates() {
    let up = Upstream::start(|req| {
        if req.target == "/customers?phone=%2B15557654321" {
            Answer::json(r#"{"name": "Ann", "vip": true}"#)
        } else {
            Answer::new("404 Not Found", "application/json", "{}")
        }
    });
    let yaml = format!(
        "name: crm\nprompt: {{ text: You help. }}\non_call_start:\n  http: {{ url: \"{}/customers\", query: {{ phone: \"${{call.from}}\" }} }}\n",
        up.url()
    );
    let (_dir, server) = serve(&yaml, &[]);
    assert_eq!(
        global_data(&swml(&server, "+15557654321")),
        json!({"name": "Ann", "vip": true})
    );
    assert!(
        global_data(&swml(&server, "+15550000000")).is_null(),
        "a 404 leaves the file's (no) data"
    );
}

#[test]
fn the_call_is_named_only_in_on_call_start() {
    let yaml = r#"name: bad
prompt: { text: Hi. }
on_call_start:
  shell: { command: ["./x.sh", "${call.from}"], timeout: 30s }
  after_failure: [{ hangup: {} }]
functions:
  f:
    description: F.
    static: { response: "From ${call.from}." }
"#;
    let dir = agent_dir(yaml, &[("x.sh", "#!/bin/sh\n")]);
    let out = Swagent::new(["validate", "agent.yaml"])
        .dir(dir.path())
        .run()
        .code(1);
    let lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.starts_with("agent.yaml"))
        .collect();
    assert_eq!(
        lines,
        [
            "agent.yaml:4:58: error: `on_call_start`: `timeout` is at most 10s: the caller hears nothing until the lookup ends",
            "agent.yaml:5:3: error: `on_call_start`: `after_failure` is used only with `required: true`; without it a failed lookup answers with the file's own `global_data`",
            "agent.yaml:9:31: error: function `f`: `${call.from}` is only available in `on_call_start`",
        ]
    );
}
