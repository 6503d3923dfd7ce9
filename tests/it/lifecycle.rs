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

/// The SWML of a call from `from`, as the platform posts it, checked
/// against the official schema.
fn swml(server: &Server, from: &str) -> Value {
    let doc = server
        .post("/")
        .json(&json!({"call": {"call_id": "call-9", "from": from, "to": "+15551230001", "direction": "inbound"}}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    official(&doc);
    doc
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
  *5) echo '{"response": "We do not know this number."}'; exit 1 ;;
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
        "+15550000005",
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
            == [
                "timeout",
                "error",
                "reserved_key",
                "not_an_object",
                "refused",
            ]
    }));
}

#[test]
fn a_required_lookup_that_fails_answers_with_after_failure() {
    let yaml = format!(
        "{SHELL_AGENT}  required: true\n  after_failure:\n    - answer: {{}}\n    - play: {{ url: \"say:We cannot take your call right now.\" }}\n    - hangup: {{}}\n"
    );
    let (_dir, server) = serve(&yaml, &[("lookup.sh", LOOKUP)]);
    for failing in ["+15550000008", "+15550000009"] {
        assert_eq!(
            swml(&server, failing),
            json!({"version": "1.0.0", "sections": {"main": [
                {"answer": {}}, {"play": {"url": "say:We cannot take your call right now."}}, {"hangup": {}}]}}),
            "{failing}: failed, then timed out"
        );
    }
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
fn the_call_is_named_only_in_the_hooks_and_their_names_are_the_platforms() {
    let yaml = r#"name: bad
prompt: { text: Hi. }
on_call_start:
  shell: { command: ["./x.sh", "${call.from}"], timeout: 30s }
  after_failure: [{ hangup: {} }]
functions:
  f:
    description: F.
    static: { response: "From ${call.from}." }
  hangup_hook:
    description: H.
    static: { response: "${hangup.reason}" }
params: { swaig_post_conversation: false }
on_call_end:
  call_log: true
  shell: { command: ["./x.sh", "${args.x}"] }
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
            "agent.yaml:9:31: error: function `f`: `${call.from}` is only available in `on_call_start`, `on_call_end` and `summary`",
            "agent.yaml:10:3: error: function `hangup_hook`: the platform calls a function of this name itself, never at the AI's choice: use `on_call_end`",
            "agent.yaml:12:26: error: function `hangup_hook`: `${hangup.reason}` is only available in `on_call_end`",
            "agent.yaml:13:36: warning: `params.swaig_post_conversation: false`: `on_call_end` will not get the call log",
            "agent.yaml:16:33: error: function `on_call_end`: template names `${args.x}` but no such argument is declared",
        ]
    );
}

/// The document checked against the official schema (the SDK's file,
/// embedded), with the contexts extension.
fn official(doc: &Value) {
    static SCHEMA: std::sync::OnceLock<jsonschema::Validator> = std::sync::OnceLock::new();
    let schema = SCHEMA.get_or_init(|| {
        let mut schema = swagent::swml::schema::official();
        swagent::swml::schema::extend(&mut schema);
        jsonschema::validator_for(&schema).expect("the official schema compiles")
    });
    let errors: Vec<String> = schema.iter_errors(doc).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}\n{doc}");
}

const CONTEXTS_AGENT: &str = r#"name: pick
prompt: { text: You help. }
global_data: { company: Northwind }
contexts:
  default:
    steps: [{ name: greet, text: Greet the caller., valid_steps: [] }]
  vip:
    steps: [{ name: welcome, text: Welcome a known caller by name., valid_steps: [] }]
on_call_start:
  shell: { command: ["./lookup.sh", "${call.from}"] }
"#;

/// A known caller starts in `vip`; a number ending in 5 names a context the
/// file lacks, in 4 a context that is no string.
const PICK: &str = r#"#!/bin/sh
case "$1" in
  *5) echo '{"context": "nowhere"}' ;;
  *4) echo '{"context": ["vip"]}' ;;
  *3) echo '{"name": "Bo", "context": "default"}' ;;
  *) echo '{"name": "Ann", "context": "vip"}' ;;
esac
"#;

fn functions(doc: &Value) -> Value {
    doc["sections"]["main"][1]["ai"]["SWAIG"]["functions"].clone()
}

#[test]
fn the_lookup_picks_the_starting_context() {
    let (dir, server) = serve(CONTEXTS_AGENT, &[("lookup.sh", PICK)]);
    let doc = swml(&server, "+15557654321");
    assert_eq!(
        global_data(&doc),
        json!({"company": "Northwind", "name": "Ann"}),
        "`context` picks; it is no data"
    );
    assert_eq!(
        functions(&doc),
        json!([{
            "function": "startup_hook",
            "description": "Internal: the call starts in the context its lookup chose.",
            "parameters": {"type": "object", "properties": {}},
            "data_map": {"output": {"response": "", "action": [{"change_context": "vip"}]}}
        }])
    );
    official(&doc);
    let doc = swml(&server, "+15557654323");
    assert_eq!(global_data(&doc)["name"], "Bo");
    assert!(
        functions(&doc).is_null(),
        "`default` is where a call starts anyway"
    );
    for from in ["+15557654325", "+15557654324"] {
        let doc = swml(&server, from);
        assert_eq!(global_data(&doc), json!({"company": "Northwind"}), "{from}");
        assert!(functions(&doc).is_null(), "{from}");
    }
    assert!(eventually(std::time::Duration::from_secs(5), || {
        audit_outcomes(dir.path(), "call_start_failed") == ["unknown_context", "unknown_context"]
    }));
}

/// An agent told when its calls end: the payload, the call and its data
/// reach the program; `${hangup.X}` its arguments.
const END_AGENT: &str = r#"name: ending
prompt: { text: You help. }
on_call_end:
  shell: { command: ["./ended.sh", "${hangup.ai_session_id}", "${call.from}", "${call.to}", "${global_data.order}"] }
"#;

/// Writes its arguments and stdin to `ended.json` in its folder; a session
/// named `fail` exits 2.
const ENDED: &str = r#"#!/bin/sh
[ "$1" = fail ] && exit 2
payload=$(cat)
printf '{"args": ["%s", "%s", "%s", "%s"], "payload": %s}' "$1" "$2" "$3" "$4" "$payload" > ended.json
echo '{"response": "ignored", "action": [{"hangup": true}]}'
"#;

/// A hangup as the platform posts it, with the conversation.
fn hangup_payload(session: &str) -> Value {
    json!({
        "function": "hangup_hook",
        "call_id": "call-9",
        "ai_session_id": session,
        "caller_id_num": "+15557654321",
        "global_data": {"order": "A-17"},
        "SWMLCall": {"from": "+15557654321", "to": "+15551230001", "direction": "inbound"},
        "call_log": [{"role": "user", "content": "Bye."}],
        "raw_call_log": [{"role": "user", "content": "Bye."}],
        "argument": {"parsed": [{}], "raw": "{}"}
    })
}

#[test]
fn on_call_end_is_the_platforms_hangup_hook_and_tells_the_program() {
    let (dir, server) = serve(END_AGENT, &[("ended.sh", ENDED)]);
    let doc = swml(&server, "+15557654321");
    let ai = &doc["sections"]["main"][1]["ai"];
    assert_eq!(ai["params"], json!({"swaig_post_swml_vars": true}));
    let hook = &functions(&doc)[0];
    assert_eq!(hook["function"], "hangup_hook");
    assert_eq!(
        hook["parameters"],
        json!({"type": "object", "properties": {}})
    );
    official(&doc);
    let token = crate::util::token_in(&doc, "hangup_hook");
    let query = format!("?__token={}", urlencoding(&token));
    let (status, reply) = server.swaig(&query, hangup_payload("sess-1"));
    assert_eq!(
        (status, reply),
        (200, json!({"response": ""})),
        "its output is ignored"
    );
    let ended: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("ended.json")).unwrap())
            .unwrap();
    assert_eq!(
        ended["args"],
        json!(["sess-1", "+15557654321", "+15551230001", "A-17"])
    );
    let mut want = hangup_payload("sess-1");
    let sent = want.as_object_mut().unwrap();
    sent.remove("call_log");
    sent.remove("raw_call_log");
    assert_eq!(
        ended["payload"], want,
        "without `call_log: true`, no call log"
    );
    let (status, reply) = server.swaig(&query, hangup_payload("fail"));
    assert_eq!((status, reply), (200, json!({"response": ""})));
    assert!(eventually(std::time::Duration::from_secs(5), || {
        audit_outcomes(dir.path(), "call_end_notified") == ["ok"]
            && audit_outcomes(dir.path(), "call_end_failed") == ["error"]
    }));
}

fn urlencoding(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[test]
fn on_call_end_is_refused_without_its_token() {
    let (dir, server) = serve(END_AGENT, &[("ended.sh", ENDED)]);
    let doc = swml(&server, "+15557654321");
    let other_call = swml_for_call(&server, "call-10");
    for query in [
        String::new(),
        "?__token=forged".to_owned(),
        // A token of another call.
        format!(
            "?__token={}",
            urlencoding(&crate::util::token_in(&other_call, "hangup_hook"))
        ),
    ] {
        let (status, reply) = server.swaig(&query, hangup_payload("sess-1"));
        assert_eq!(
            (status, reply),
            (
                403,
                json!({"error": "invalid_token", "message": "missing or invalid function token"})
            ),
            "{query}"
        );
    }
    assert!(
        !dir.path().join("ended.json").exists(),
        "the program never ran"
    );
    drop(doc);
}

fn swml_for_call(server: &Server, call_id: &str) -> Value {
    server
        .post("/")
        .json(&json!({"call": {"call_id": call_id, "from": "+15557654321"}}))
        .send()
        .unwrap()
        .json()
        .unwrap()
}

#[test]
fn on_call_end_with_call_log_posts_it_to_an_upstream() {
    let up = Upstream::start(|_| Answer::json(r#"{"ok": true}"#));
    let yaml = format!(
        "name: ending\nprompt: {{ text: You help. }}\non_call_end:\n  call_log: true\n  http: {{ url: \"{}/calls\", method: POST, body: {{ call: \"${{call.call_id}}\", direction: \"${{call.direction}}\", log: \"${{hangup.call_log}}\" }} }}\n",
        up.url()
    );
    let (_dir, server) = serve(&yaml, &[]);
    let doc = swml(&server, "+15557654321");
    assert_eq!(
        doc["sections"]["main"][1]["ai"]["params"],
        json!({"swaig_post_swml_vars": true, "swaig_post_conversation": true})
    );
    let query = format!(
        "?__token={}",
        urlencoding(&crate::util::token_in(&doc, "hangup_hook"))
    );
    let (status, _) = server.swaig(&query, hangup_payload("sess-2"));
    assert_eq!(status, 200);
    let seen = up.seen();
    assert_eq!(seen.len(), 1);
    let body: Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(
        body,
        json!({"call": "call-9", "direction": "inbound", "log": [{"role": "user", "content": "Bye."}]})
    );
}

/// The shipped example greets a returning caller by name: its CRM, a local
/// upstream here, knows one number.
#[test]
fn the_concierge_greets_a_returning_caller_by_name() {
    let up = Upstream::start(|req| match (req.method.as_str(), req.target.as_str()) {
        ("GET", "/callers?phone=%2B15557654321") => {
            Answer::json(r#"{"context": "returning", "name": "Ann", "booking": "B-1042"}"#)
        }
        ("GET", _) => Answer::json("{}"),
        _ => Answer::json(r#"{"ok": true}"#),
    });
    let yaml = std::fs::read_to_string(crate::util::root().join("agents/concierge.yaml"))
        .unwrap()
        .replace("https://crm.example.com", &up.url());
    let dir = agent_dir(&yaml, &[]);
    let server = Swagent::new(["serve", "agent.yaml"])
        .creds()
        .env("CRM_TOKEN", "crm-token")
        .dir(dir.path())
        .start();
    let post = |from: &str| -> Value {
        let call = json!({"call": {"call_id": "call-9", "from": from, "to": "+15551230001"}});
        server
            .post("/concierge")
            .json(&call)
            .send()
            .unwrap()
            .json()
            .unwrap()
    };
    let known = post("+15557654321");
    assert_eq!(
        global_data(&known),
        json!({"hotel": "Harbour Hotel", "name": "Ann", "booking": "B-1042"})
    );
    let starts_in = |doc: &Value| {
        functions(doc)
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["function"] == "startup_hook")
            .map(|f| f["data_map"]["output"]["action"][0]["change_context"].clone())
    };
    assert_eq!(starts_in(&known), Some(json!("returning")));
    official(&known);
    let stranger = post("+15550000000");
    assert_eq!(global_data(&stranger), json!({"hotel": "Harbour Hotel"}));
    assert_eq!(starts_in(&stranger), None);
    let query = format!(
        "?__token={}",
        urlencoding(&crate::util::token_in(&known, "hangup_hook"))
    );
    let resp = server
        .post(&format!("/concierge/swaig{query}"))
        .json(&{
            let mut payload = hangup_payload("sess-3");
            payload["global_data"] = global_data(&known);
            payload
        })
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = up.seen();
    assert_eq!(seen[0].header("authorization"), Some("Bearer crm-token"));
    let told = seen
        .iter()
        .find(|s| s.target == "/calls")
        .expect("the CRM was told");
    assert_eq!(
        serde_json::from_slice::<Value>(&told.body).unwrap(),
        json!({"call": "call-9", "from": "+15557654321", "booking": "B-1042",
               "log": [{"role": "user", "content": "Bye."}]})
    );
    // The summary reaches the CRM too.
    let url = known["sections"]["main"][1]["ai"]["post_prompt_url"]
        .as_str()
        .unwrap();
    let resp = server
        .post(&format!("/concierge/post_prompt/{}", &url[url.find('?').unwrap()..]))
        .json(&json!({"call_id": "call-9", "global_data": {"name": "Ann"},
                      "post_prompt_data": {"raw": "{\"request\": \"late checkout\", \"callback\": false}"}}))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(eventually(std::time::Duration::from_secs(10), || up
        .seen()
        .iter()
        .any(|s| s.target == "/notes")));
    let note = up
        .seen()
        .into_iter()
        .find(|s| s.target == "/notes")
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&note.body).unwrap(),
        json!({"call": "call-9", "guest": "Ann", "note": {"request": "late checkout", "callback": false}})
    );
}
