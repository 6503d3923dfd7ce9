//! Actions from programs and upstreams (issue 27): only the kinds and
//! targets a function's `actions_from_output` lists reach the platform;
//! anything else fails the call with a safe sentence and an
//! `action_refused` audit event naming the kind, never the content.

use serde_json::{json, Value};

use crate::util::{agent_dir, eventually, Answer, Server, Swagent, Upstream};

const FAILED: &str = "Sorry, that service is not working right now; please try again later.";

const AGENT: &str = r#"name: actions
prompt: { text: You help. }
contexts:
  default:
    steps:
      - { name: choose, text: Choose., valid_steps: [locked, done] }
      - { name: locked, text: Locked. }
      - { name: done, text: Done. }
functions:
  speak:
    description: Says hello.
    secure: false
    actions_from_output: [say]
    shell: { command: ["./emit.sh"] }
  mute:
    description: The same program, allowed no action.
    secure: false
    shell: { command: ["./emit.sh"] }
  move:
    description: Moves on.
    secure: false
    parameters:
      type: object
      properties: { to: { type: string, enum: [locked, done] } }
      required: [to]
    actions_from_output: { change_step: [locked] }
    shell: { command: ["./move.sh", "--", "${args.to}"] }
  grab:
    description: Sets data.
    secure: false
    actions_from_output: [set_global_data]
    shell: { command: ["./grant.sh"] }
  dial:
    description: An upstream that would dial.
    secure: false
    actions_from_output: [say, hangup]
    http: { url: "UPSTREAM/connect" }
  notify:
    description: Tells the page a booking was made.
    secure: false
    parameters: { type: object, properties: { verb: { type: string, enum: [user_event, play] } }, required: [verb] }
    actions_from_output: [user_event]
    shell: { command: ["./event.sh", "${args.verb}"] }
  unbind:
    description: Would drop the caller's verification.
    secure: false
    actions_from_output: [unset_global_data]
    shell: { command: ["./unbind.sh"] }
"#;

/// A `user_event`, or a `play` dressed as one.
const EVENT: &str = "#!/bin/sh\nif [ \"$1\" = play ]; then v='{\"play\": {\"url\": \"say:hi\"}}'; else v='{\"user_event\": {\"event\": {\"type\": \"booked\"}}}'; fi\nprintf '{\"response\": \"ok\", \"action\": [{\"SWML\": {\"version\": \"1.0.0\", \"sections\": {\"main\": [%s]}}}]}' \"$v\"\n";
const UNBIND: &str = "#!/bin/sh\necho '{\"response\": \"ok\", \"action\": [{\"unset_global_data\": [\"note\", \"swagent_verified\"]}]}'\n";

const EMIT: &str = "#!/bin/sh\necho '{\"response\": \"ok\", \"action\": [{\"say\": \"hello\"}]}'\n";
const MOVE: &str =
    "#!/bin/sh\nprintf '{\"response\": \"moved\", \"action\": [{\"change_step\": \"%s\"}]}' \"$2\"\n";
const GRANT: &str = "#!/bin/sh\necho '{\"response\": \"ok\", \"action\": [{\"set_global_data\": {\"swagent_verified\": \"forged\"}}]}'\n";
/// What the SDK's `connect()` returns: a transfer to a number of the upstream's choosing.
const CONNECT: &str = r#"{"response": "Connecting you.", "action": [{"SWML": {"version": "1.0.0", "sections": {"main": [{"connect": {"to": "+19005550100"}}]}}, "transfer": "true"}]}"#;

struct Rig {
    server: Server,
    audit: std::path::PathBuf,
    _dir: tempfile::TempDir,
    _up: Upstream,
}

fn rig() -> Rig {
    let up = Upstream::start(|_| Answer::json(CONNECT));
    let dir = agent_dir(
        &AGENT.replace("UPSTREAM", &up.url()),
        &[
            ("emit.sh", EMIT),
            ("move.sh", MOVE),
            ("grant.sh", GRANT),
            ("event.sh", EVENT),
            ("unbind.sh", UNBIND),
        ],
    );
    let audit = dir.path().join("audit.log");
    let server = Swagent::new(["serve", "agent.yaml", "--audit-log"])
        .args([audit.as_os_str()])
        .creds()
        .dir(dir.path())
        .start();
    Rig {
        server,
        audit,
        _dir: dir,
        _up: up,
    }
}

fn call(rig: &Rig, function: &str, args: Value) -> (u16, Value) {
    call_on(&rig.server, function, args)
}

/// A call of `function` in `call-1`, its actions checked against the schema.
fn call_on(server: &Server, function: &str, args: Value) -> (u16, Value) {
    official(server.swaig(
        "",
        json!({"function": function, "call_id": "call-1", "argument": {"parsed": [args]}}),
    ))
}

/// The agent in `dir` served with its audit log at `audit`.
fn serve_audited(dir: &std::path::Path, audit: &std::path::Path) -> Server {
    Swagent::new(["serve", "agent.yaml", "--audit-log"])
        .args([audit.as_os_str()])
        .creds()
        .dir(dir)
        .start()
}

/// A reply whose every action meets the official schema's `Action` union
/// (the SDK's file, embedded), with the listed differences.
fn official(reply: (u16, Value)) -> (u16, Value) {
    for action in reply.1["action"].as_array().into_iter().flatten() {
        assert!(
            swagent::swml::schema::action_conforms(action),
            "not an action the platform takes: {action}"
        );
    }
    reply
}

/// The `kind` of each `action_refused` event so far.
fn refused_kinds(rig: &Rig) -> Vec<String> {
    std::fs::read_to_string(&rig.audit)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "action_refused")
        .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// A `user_event` passes where listed; a `play` in its place, and the
/// removal of a verification grant, are refused.
#[test]
fn user_events_pass_and_grants_cannot_be_removed() {
    let rig = rig();
    assert_eq!(
        call(&rig, "notify", json!({"verb": "user_event"})),
        (
            200,
            json!({"response": "ok", "action": [{"SWML": {"version": "1.0.0", "sections": {"main": [{"user_event": {"event": {"type": "booked"}}}]}}}]})
        )
    );
    assert_eq!(
        call(&rig, "notify", json!({"verb": "play"})),
        (200, json!({"response": FAILED}))
    );
    assert_eq!(
        call(&rig, "unbind", json!({})),
        (200, json!({"response": FAILED}))
    );
    assert!(eventually(std::time::Duration::from_secs(5), || {
        refused_kinds(&rig) == ["SWML", "unset_global_data"]
    }));
}

#[test]
fn an_allowed_kind_passes_and_the_same_output_is_refused_where_not_allowed() {
    let rig = rig();
    assert_eq!(
        call(&rig, "speak", json!({})),
        (200, json!({"response": "ok", "action": [{"say": "hello"}]}))
    );
    assert_eq!(
        call(&rig, "mute", json!({})),
        (200, json!({"response": FAILED}))
    );
    assert!(eventually(
        std::time::Duration::from_secs(5),
        || refused_kinds(&rig) == ["say"]
    ));
}

#[test]
fn an_upstream_returning_a_connect_is_refused_and_nothing_reaches_the_platform() {
    let mut rig = rig();
    assert_eq!(
        call(&rig, "dial", json!({})),
        (200, json!({"response": FAILED}))
    );
    assert!(eventually(
        std::time::Duration::from_secs(5),
        || refused_kinds(&rig) == ["transfer"]
    ));
    let log = rig.server.stop_and_log();
    let audit = std::fs::read_to_string(&rig.audit).unwrap();
    for text in [&log, &audit] {
        assert!(
            !text.contains("+19005550100"),
            "the number was logged:\n{text}"
        );
    }
    assert!(
        log.contains("function `dial`: its handler's output carried a `transfer` action that its `actions_from_output` does not allow; the call failed"),
        "{log}"
    );
}

#[test]
fn a_step_outside_the_listed_targets_and_a_forged_grant_are_refused() {
    let rig = rig();
    assert_eq!(
        call(&rig, "move", json!({"to": "locked"})),
        (
            200,
            json!({"response": "moved", "action": [{"change_step": "locked"}]})
        )
    );
    assert_eq!(
        call(&rig, "move", json!({"to": "done"})),
        (200, json!({"response": FAILED}))
    );
    assert_eq!(
        call(&rig, "grab", json!({})),
        (200, json!({"response": FAILED}))
    );
    assert!(eventually(std::time::Duration::from_secs(5), || {
        refused_kinds(&rig) == ["change_step", "set_global_data"]
    }));
}

const UNAVAILABLE: &str =
    "That can't be done on this line right now. Offer the caller another way to get help.";

/// A transfer whose `${env:...}` number is unset is off, said at start; a
/// call that reaches it hears so, and so does a text to a caller without a
/// number. Nothing is sent to the platform either way.
#[test]
fn an_unset_destination_and_a_caller_without_a_number_turn_the_action_off() {
    let yaml = r#"name: off
prompt: { text: You help. }
functions:
  to_host:
    description: Transfers to the host stand.
    secure: false
    static: { response: "Transferring you." }
    actions:
      - transfer: { to: "${env:HOST_STAND_NUMBER}" }
  text_me:
    description: Texts the caller.
    secure: false
    static: { response: "Texting you." }
    actions:
      - send_sms: { to: caller, from: "+15550001111", body: "Your table is booked." }
  to_desk:
    description: Transfers to the desk.
    secure: false
    static: { response: "Transferring you." }
    actions:
      - transfer: { to: "${env:DESK_NUMBER}" }
  book:
    description: Books a table, then texts the caller.
    secure: false
    shell: { command: ["./book.sh"] }
    actions:
      - set_global_data: { booked: true }
      - send_sms: { to: caller, from: "+15550001111", body: "Your table is booked." }
"#;
    let book = "#!/bin/sh\necho booked >> booked.txt\necho 'Booked for eight.'\n";
    let dir = agent_dir(yaml, &[("book.sh", book)]);
    let audit = dir.path().join("audit.log");
    let mut server = Swagent::new(["serve", "agent.yaml", "--audit-log"])
        .args([audit.as_os_str()])
        .creds()
        .env_remove("HOST_STAND_NUMBER")
        .env("DESK_NUMBER", "")
        .dir(dir.path())
        .start();
    let body = |function: &str, caller: &str| json!({"function": function, "call_id": "call-1", "caller_id_num": caller, "argument": {"parsed": [{}]}});
    for off in ["to_host", "to_desk"] {
        assert_eq!(
            server.swaig("", body(off, "+15557654321")),
            (200, json!({"response": UNAVAILABLE})),
            "{off}"
        );
    }
    // The program booked: its reply stands, without the text, and says so.
    assert_eq!(
        official(server.swaig("", body("book", "anonymous"))),
        (
            200,
            json!({"response": "Booked for eight. (No text message could be sent on this call: tell the caller.)",
                   "action": [{"set_global_data": {"booked": true}}]})
        )
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("booked.txt")).unwrap(),
        "booked\n"
    );
    for caller in ["anonymous", "sip:ann@example.com"] {
        assert_eq!(
            server.swaig("", body("text_me", caller)),
            (200, json!({"response": UNAVAILABLE}))
        );
    }
    assert_eq!(
        official(server.swaig("", body("text_me", "+15557654321"))).1["action"][0]["SWML"]
            ["sections"]["main"][0]["send_sms"]["to_number"],
        "+15557654321"
    );
    let log = server.stop_and_log();
    assert!(
        log.contains("warning: function `to_host`: `${env:HOST_STAND_NUMBER}` is empty or unset, so this action is off"),
        "{log}"
    );
    assert!(log.contains("function `to_host`: its `transfer` action is unavailable: `${env:HOST_STAND_NUMBER}` was empty or unset when the agent loaded"), "{log}");
    let kinds: Vec<String> = std::fs::read_to_string(&audit)
        .unwrap()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| e["event"] == "action_unavailable")
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        ["transfer", "transfer", "send_sms", "send_sms", "send_sms"]
    );
}

/// A backend that refuses for a reason the caller should hear (a 4xx, an
/// error key, exit status 1, each with a `response`) is heard, capped at 1
/// KiB, and no action runs; anything else keeps the safe sentence.
#[test]
fn a_refusal_in_words_is_heard_and_runs_no_actions() {
    let up = Upstream::start(|req| match req.target.as_str() {
        "/full" => Answer::new(
            "409 Conflict",
            "application/json",
            r#"{"response": "We have no table for twelve; I can take a message.", "outcome": "booked"}"#,
        ),
        "/long" => Answer::new(
            "422 Unprocessable Entity",
            "application/json",
            &format!(r#"{{"response": "{}"}}"#, "é".repeat(800)),
        ),
        "/bare" => Answer::new("404 Not Found", "application/json", r#"{"error": "no"}"#),
        "/down" => Answer::new(
            "503 Service Unavailable",
            "application/json",
            r#"{"response": "maintenance"}"#,
        ),
        "/keyed" => Answer::json(r#"{"error": "closed", "response": "We are closed on Mondays."}"#),
        "/keyed_bare" => Answer::json(r#"{"error": "closed"}"#),
        _ => Answer::json(r#"{"response": "Booked.", "id": "B-1"}"#),
    });
    let yaml = r#"name: refusals
prompt: { text: You help. }
functions:
  book:
    description: Books.
    secure: false
    parameters: { type: object, properties: { path: { type: string, enum: [full, long, bare, down, ok] } }, required: [path] }
    http: { url: "UPSTREAM/${args.path}" }
    actions:
      - set_global_data: { booking: "${response.id}" }
  book_keyed:
    description: Books, refusing with an error key.
    secure: false
    parameters: { type: object, properties: { path: { type: string, enum: [keyed, keyed_bare] } }, required: [path] }
    http: { url: "UPSTREAM/${args.path}", error_keys: [error] }
    actions:
      - hangup: true
  book_by_script:
    description: Books by a program.
    secure: false
    parameters: { type: object, properties: { code: { type: integer } }, required: [code] }
    shell: { command: ["./refuse.sh", "${args.code}"] }
    actions:
      - hangup: true
"#
    .replace("UPSTREAM", &up.url());
    let refuse = "#!/bin/sh\necho '{\"response\": \"That date is closed.\"}'\nexit \"$1\"\n";
    let dir = agent_dir(&yaml, &[("refuse.sh", refuse)]);
    let audit = dir.path().join("audit.log");
    let server = serve_audited(dir.path(), &audit);
    let call = |function: &str, args: Value| call_on(&server, function, args);
    assert_eq!(
        call("book", json!({"path": "full"})),
        (
            200,
            json!({"response": "We have no table for twelve; I can take a message."})
        )
    );
    let (_, long) = call("book", json!({"path": "long"}));
    assert_eq!(
        long["response"].as_str().unwrap(),
        "é".repeat(512),
        "cut to 1 KiB on a character"
    );
    for path in ["bare", "down"] {
        assert_eq!(
            call("book", json!({"path": path})),
            (200, json!({"response": FAILED})),
            "{path}"
        );
    }
    assert_eq!(
        call("book", json!({"path": "ok"})),
        (
            200,
            json!({"response": "Booked.", "action": [{"set_global_data": {"booking": "B-1"}}]})
        )
    );
    assert_eq!(
        call("book_keyed", json!({"path": "keyed"})),
        (200, json!({"response": "We are closed on Mondays."}))
    );
    assert_eq!(
        call("book_keyed", json!({"path": "keyed_bare"})),
        (200, json!({"response": FAILED}))
    );
    assert_eq!(
        call("book_by_script", json!({"code": 1})),
        (200, json!({"response": "That date is closed."}))
    );
    assert_eq!(
        call("book_by_script", json!({"code": 2})),
        (200, json!({"response": FAILED}))
    );
    let results: Vec<String> = {
        let read = || std::fs::read_to_string(&audit).unwrap_or_default();
        assert!(eventually(std::time::Duration::from_secs(5), || read()
            .lines()
            .filter(|l| l.contains("\"function_called\""))
            .count()
            == 9));
        read()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|e| e["event"] == "function_called")
            .map(|e| e["outcome"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    assert_eq!(
        results,
        ["refused", "refused", "error", "error", "ok", "refused", "error", "refused", "error"]
    );
}

/// The backend decides which outcome, the file decides what: a program and
/// an upstream each pick one by name; a name the file lacks fails the call;
/// without a name, `actions` run.
#[test]
fn outcomes_are_picked_by_the_handler_and_defined_by_the_file() {
    let up = Upstream::start(|req| match req.target.as_str() {
        "/human?open=1" => {
            Answer::json(r#"{"outcome": "transfer", "response": "The host stand is open."}"#)
        }
        "/human?open=0" => Answer::json(r#"{"outcome": "message", "response": "Nobody is free."}"#),
        _ => Answer::json(r#"{"outcome": "dial_my_friend", "response": "Sure."}"#),
    });
    let yaml = r#"name: outcomes
prompt: { text: You help. }
contexts:
  default:
    steps: [{ name: main, text: Help. }]
  help:
    steps: [{ name: note, text: Take a message. }]
functions:
  request_human:
    description: Asks for a person.
    secure: false
    parameters: { type: object, properties: { open: { type: integer, enum: [0, 1, 2] } }, required: [open] }
    http: { url: "UPSTREAM/human", query: { open: "${args.open}" } }
    outcomes:
      transfer: [ { say: "Connecting you now." }, { transfer: { to: "+15551230001" } } ]
      message: [ { set_global_data: { wants_callback: true } }, { change_context: help } ]
  decide:
    description: A program decides.
    secure: false
    parameters: { type: object, properties: { pick: { type: string, enum: [message, none, bare] } }, required: [pick] }
    shell: { command: ["./decide.sh", "${args.pick}"] }
    actions: [ { say: "Nothing to do." } ]
    outcomes:
      message: [ { change_context: help } ]
"#
    .replace("UPSTREAM", &up.url());
    let decide = "#!/bin/sh\ncase \"$1\" in\n  none) echo '{\"response\": \"ok\"}' ;;\n  bare) echo '{\"outcome\": \"message\"}' ;;\n  *) printf '{\"outcome\": \"%s\", \"response\": \"ok\"}' \"$1\" ;;\nesac\n";
    let dir = agent_dir(&yaml, &[("decide.sh", decide)]);
    let audit = dir.path().join("audit.log");
    let server = serve_audited(dir.path(), &audit);
    let call = |function: &str, args: Value| call_on(&server, function, args);
    let (_, open) = call("request_human", json!({"open": 1}));
    assert_eq!(open["response"], "The host stand is open.");
    assert_eq!(open["action"][0], json!({"say": "Connecting you now."}));
    assert_eq!(
        open["action"][1]["SWML"]["sections"]["main"][0]["connect"]["to"],
        "+15551230001"
    );
    assert_eq!(
        call("request_human", json!({"open": 0})),
        (
            200,
            json!({"response": "Nobody is free.", "action": [{"set_global_data": {"wants_callback": true}}, {"change_context": "help"}]})
        )
    );
    assert_eq!(
        call("request_human", json!({"open": 2})),
        (200, json!({"response": FAILED}))
    );
    assert_eq!(
        call("decide", json!({"pick": "message"})),
        (
            200,
            json!({"response": "ok", "action": [{"change_context": "help"}]})
        )
    );
    assert_eq!(
        call("decide", json!({"pick": "bare"})),
        (
            200,
            json!({"response": "Done.", "action": [{"change_context": "help"}]})
        ),
        "an outcome needs no words, and its JSON is not read out"
    );
    assert_eq!(
        call("decide", json!({"pick": "none"})),
        (
            200,
            json!({"response": "ok", "action": [{"say": "Nothing to do."}]})
        )
    );
    assert!(eventually(std::time::Duration::from_secs(5), || {
        std::fs::read_to_string(&audit)
            .unwrap_or_default()
            .contains("\"outcome_refused\"")
    }));
    assert!(
        !std::fs::read_to_string(&audit)
            .unwrap()
            .contains("dial_my_friend"),
        "the unknown name was logged"
    );
}

/// Moves made by functions count for reach: an agent whose tools drive
/// every move (`valid_steps: []` everywhere) validates under `--strict`.
#[test]
fn moves_made_by_actions_count_for_reach() {
    let yaml = r#"name: scoped
prompt: { text: You help. }
contexts:
  default:
    steps:
      - { name: choose, text: Choose., valid_steps: [], valid_contexts: [], functions: [lock, escalate] }
      - { name: locked, text: Locked., valid_steps: [], valid_contexts: [] }
  help:
    steps: [{ name: note, text: Take a note., valid_steps: [], valid_contexts: [] }]
functions:
  lock:
    description: Locks the booking.
    static: { response: Locked. }
    actions: [ { change_step: locked } ]
  escalate:
    description: Asks the backend.
    actions_from_output: { change_context: [help] }
    shell: { command: ["./escalate.sh"] }
"#;
    let dir = agent_dir(
        yaml,
        &[("escalate.sh", "#!/bin/sh\necho '{\"response\": \"ok\"}'\n")],
    );
    Swagent::new(["validate", "--strict", "agent.yaml"])
        .dir(dir.path())
        .run()
        .code(0)
        .stdout_is("1 agent file(s) valid\n");
    std::fs::write(
        dir.path().join("agent.yaml"),
        yaml.replace("    actions: [ { change_step: locked } ]\n", "")
            .replace("    actions_from_output: { change_context: [help] }\n", ""),
    )
    .unwrap();
    let out = Swagent::new(["validate", "--strict", "agent.yaml"])
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
            "agent.yaml:7:9: error: step `locked` of context `default` cannot be reached: no step the conversation reaches moves to it (`valid_steps`, `next`, `completion_action`, a function's `change_step`)",
            "agent.yaml:8:3: error: context `help` is never entered: no step the conversation reaches lists it in `valid_contexts` (nor its context), and no function's `change_context` names it",
        ]
    );
}

/// The shipped examples: the receptionist transfers by department, the
/// clinic texts the caller a booking confirmation once it is confirmed.
#[test]
fn the_receptionist_transfers_and_the_clinic_texts() {
    let server = Swagent::new(["serve", "agents/receptionist.yaml"])
        .creds()
        .dir(&crate::util::root())
        .start();
    let doc: Value = server
        .post("/receptionist")
        .json(&json!({"call_id": "call-1"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let token = crate::util::token_in(&doc, "transfer_to");
    let transfer = |department: &str| -> (u16, Value) {
        let resp = server
            .post("/receptionist/swaig")
            .query(&[("__token", &token)])
            .json(&json!({"function": "transfer_to", "call_id": "call-1",
                          "argument": {"parsed": [{"department": department}]}}))
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.json().unwrap())
    };
    assert_eq!(
        official(transfer("sales")),
        (
            200,
            json!({"response": "Transferring you to sales now.", "post_process": true, "action": [
                {"SWML": {"version": "1.0.0", "sections": {"main": [{"connect": {"to": "+15551230001"}}]}},
                 "transfer": "true"}]})
        )
    );
    let (status, refused) = transfer("+19005550100");
    assert_eq!(
        (status, refused),
        (
            200,
            json!({"response": "Some arguments are not acceptable: the argument `department` is invalid: \"+19005550100\" is not one of \"sales\" or \"billing\". Please ask the caller again."})
        ),
        "a number the caller names is no department, and no action"
    );

    let server = Swagent::new(["serve", "agents/clinic.yaml"])
        .creds()
        .env("SCHEDULING_API_KEY", "k")
        .dir(&crate::util::root())
        .start();
    let doc: Value = server
        .post("/clinic")
        .json(&json!({"call_id": "call-2"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let token = crate::util::token_in(&doc, "book");
    let book =
        |args: Value| -> Value {
            server
            .post("/clinic/swaig")
            .query(&[("__token", &token)])
            .json(&json!({"function": "book", "call_id": "call-2", "caller_id_num": "+15557654321",
                          "argument": {"parsed": [args]}}))
            .send()
            .unwrap()
            .json()
            .unwrap()
        };
    let asked = book(json!({"slot_id": "AB12CD34", "name": "Ann Lee"}));
    let text = asked["response"].as_str().unwrap();
    let code = text
        .split("confirmation \"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    assert!(
        asked.get("action").is_none(),
        "nothing is sent before the yes"
    );
    let booked = book(json!({"slot_id": "AB12CD34", "name": "Ann Lee", "confirmation": code}));
    official((200, booked.clone()));
    assert_eq!(
        booked,
        json!({"response": "Booked slot AB12CD34. We look forward to seeing you.", "action": [
            {"SWML": {"version": "1.0.0", "sections": {"main": [{"send_sms": {
                "to_number": "+15557654321", "from_number": "+15550001111",
                "body": "Riverside Health Clinic: Ann Lee, your appointment (slot AB12CD34) is booked. Call us to change it."}}]}}}]})
    );
}
