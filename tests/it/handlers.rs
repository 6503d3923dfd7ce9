//! Handlers against real processes and a real local upstream: injection
//! attempts that never execute, environment isolation, timeouts that leave
//! no process behind, bounded output and concurrency, and http requests that
//! go exactly where the agent file says.

use std::time::Duration;

use serde_json::{json, Value};

use crate::util::{
    agent_dir, alive, client, closed_port, eventually, Answer, Server, Swagent, Upstream, PASSWORD,
    USER,
};

const FAILED: &str = "Sorry, that service is not working right now; please try again later.";
const TOO_LONG: &str = "That took too long; please try again later.";

/// Prints its argv, environment, stdin and open descriptors as one JSON
/// object. The shebang
/// names the interpreter's real path: the script's environment is empty, so a
/// wrapper like a pyenv shim on PATH would not work there.
fn probe_py() -> String {
    let out = std::process::Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 is installed");
    let python = String::from_utf8(out.stdout).unwrap();
    format!(
        "#!{}\nimport json, os, sys\nfds = {{}}\nfor f in os.listdir('/proc/self/fd'):\n    try: fds[f] = os.readlink('/proc/self/fd/' + f)\n    except OSError: pass\nprint(json.dumps({{\"argv\": sys.argv[1:], \"env\": dict(os.environ), \"stdin\": sys.stdin.read(), \"fds\": fds}}))\n",
        python.trim()
    )
}

fn shell_agent(extra: &str) -> String {
    format!(
        r#"name: shells
prompt:
  text: You run scripts.
functions:
  probe:
    description: Echoes what it got.
    secure: false
    parameters:
      type: object
      properties:
        q: {{ type: string }}
    shell:
      command: ["./probe.py", "${{args.q}}", "--q=${{args.q}}"]
      env: [LANG, ALLOWED_VAR]
      max_output: 2MiB
{extra}"#
    )
}

fn start(dir: &std::path::Path, envs: &[(&str, &str)]) -> Server {
    let mut s = Swagent::new(["serve", "agent.yaml"]).creds().dir(dir);
    for (k, v) in envs {
        s = s.env(k, v);
    }
    s.start()
}

/// Calls an open function; (status, reply).
fn call(server: &Server, function: &str, args: Value) -> (u16, Value) {
    server.swaig(
        "",
        json!({"function": function, "call_id": "call-7", "argument": {"parsed": [args]}}),
    )
}

fn probe_reply(server: &Server, q: &str) -> Value {
    let (status, reply) = call(server, "probe", json!({ "q": q }));
    assert_eq!(status, 200, "{reply}");
    let text = reply["response"].as_str().expect("a response");
    serde_json::from_str(text).unwrap_or_else(|_| panic!("not the probe's JSON: {text:?}"))
}

#[test]
fn injection_attempts_are_data_never_executed() {
    let dir = agent_dir(&shell_agent(""), &[("probe.py", &probe_py())]);
    let mut server = start(dir.path(), &[("LANG", "C.UTF-8")]);
    let marker = dir.path().join("pwned");
    let m = marker.display().to_string();
    let values = vec![
        format!("; touch {m}"),
        format!("$(touch {m})"),
        format!("`touch {m}`"),
        format!("a\ntouch {m}\n"),
        format!("| touch {m}"),
        format!("&& touch {m}"),
        format!("> {m}"),
        "-rf".to_string(),
        "--help".to_string(),
        "-".to_string(),
        "${env:SWML_BASIC_AUTH_PASSWORD}".to_string(),
        "'\"\\ $HOME *".to_string(),
        // Unicode that terminals and parsers trip on: RTL override,
        // combining marks, non-characters, emoji, a BOM.
        "\u{202e}gnp.exe \u{0301}\u{ffff}\u{fffe} 🦀 \u{feff}".to_string(),
        "x".repeat(100 * 1024),
    ];
    for q in &values {
        let got = probe_reply(&server, q);
        assert_eq!(got["argv"], json!([q, format!("--q={q}")]), "{q:.60}");
        assert_eq!(got["env"]["SWAIG_ARG_Q"], json!(q));
        assert_eq!(got["stdin"], json!(json!({ "q": q }).to_string()));
        assert!(!marker.exists(), "{q:.60} executed something");
    }
    // The value stays literal: no template inside it is expanded.
    let log = server.stop_and_log();
    assert!(!log.contains(PASSWORD), "{log}");
}

#[test]
fn values_the_os_cannot_carry_fail_safely() {
    let stdin_only = r#"  stdin_only:
    description: Reads its argument from stdin only.
    secure: false
    parameters:
      type: object
      properties:
        q: { type: string }
    shell: { command: ["./probe.py"], max_output: 4MiB }
"#;
    let dir = agent_dir(&shell_agent(stdin_only), &[("probe.py", &probe_py())]);
    let server = start(dir.path(), &[("LANG", "C.UTF-8")]);
    // A NUL byte cannot be in an argv element, and 1 MB is over the kernel's
    // limit for one argument: both refuse to start, with the safe message.
    let nul = "a\u{0}; touch pwned".to_string();
    let long = "y".repeat(1_000_000);
    for q in [&nul, &long] {
        let (status, reply) = call(&server, "probe", json!({ "q": q }));
        assert_eq!((status, reply), (200, json!({ "response": FAILED })));
    }
    assert!(!dir.path().join("pwned").exists());
    // The log names the argument, not the program, as the cause.
    let program = dir.path().join("./probe.py").display().to_string();
    for why in [
        "holds a NUL byte, which no argument can carry".to_owned(),
        "would be 1000000 bytes, and an argument may hold at most 131071; a long value is better read from the JSON on stdin".to_owned(),
    ] {
        let line = format!("function `probe` failed: argument 1 of `{program}` {why}\n");
        let log = server.log_with(&line);
        assert!(log.contains(&line), "{line}\n{log}");
    }
    // The same values do not stop a program that takes them on stdin: no
    // `SWAIG_ARG_Q` (no variable can hold them), and the JSON in full.
    for q in [&nul, &long] {
        let (status, reply) = call(&server, "stdin_only", json!({ "q": q }));
        assert_eq!(status, 200);
        let got: Value = serde_json::from_str(reply["response"].as_str().unwrap()).unwrap();
        assert_eq!(got["argv"], json!([]));
        assert_eq!(got["env"].get("SWAIG_ARG_Q"), None);
        assert_eq!(got["stdin"], json!(json!({ "q": q }).to_string()));
    }
    // JSON cannot carry a lone surrogate: the body is refused before anything.
    let resp = server
        .post("/swaig")
        .header("content-type", "application/json")
        .body(r#"{"function":"probe","argument":{"parsed":[{"q":"\ud800"}]}}"#)
        .send()
        .unwrap();
    assert_eq!(resp.status(), 400);
}

#[test]
fn the_environment_is_empty_but_for_path_the_allowlist_and_swaig_vars() {
    let dir = agent_dir(&shell_agent(""), &[("probe.py", &probe_py())]);
    let server = start(
        dir.path(),
        &[
            ("LANG", "C.UTF-8"),
            ("ALLOWED_VAR", "allowed"),
            ("OTHER_VAR", "must-not-leak"),
            ("SIGNALWIRE_SIGNING_KEY", "signing-key-must-not-leak"),
            ("CORE_API_TOKEN", "core-must-not-leak"),
        ],
    );
    // With a signing key set, the request must be signed (JSON scheme).
    let body =
        json!({"function": "probe", "call_id": "call-7", "argument": {"parsed": [{"q": "hello"}]}})
            .to_string();
    let url = format!("{}/swaig", server.url);
    let sig = hex::encode(ring::hmac::sign(
        &ring::hmac::Key::new(
            ring::hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            b"signing-key-must-not-leak",
        ),
        format!("{url}{body}").as_bytes(),
    ));
    let reply: Value = server
        .post("/swaig")
        .header("content-type", "application/json")
        .header("X-SignalWire-Signature", sig)
        .body(body)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let got: Value = serde_json::from_str(reply["response"].as_str().expect("a response")).unwrap();
    let env = got["env"].as_object().unwrap();
    let mut keys: Vec<&str> = env.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        vec![
            "ALLOWED_VAR",
            "LANG",
            "PATH",
            "SWAIG_ARG_Q",
            "SWAIG_CALL_ID",
            "SWAIG_FUNCTION"
        ]
    );
    assert_eq!(env["SWAIG_FUNCTION"], "probe");
    assert_eq!(env["SWAIG_CALL_ID"], "call-7");
    assert_eq!(env["SWAIG_ARG_Q"], "hello");
    assert_eq!(env["ALLOWED_VAR"], "allowed");
    assert_eq!(got["stdin"], r#"{"q":"hello"}"#);
    // Nothing of the server's is inherited: not the listening socket, not a
    // caller's connection, not a log: only the three pipes.
    let fds = got["fds"].as_object().unwrap();
    let held: Vec<&str> = fds
        .iter()
        .filter(|(fd, _)| !["0", "1", "2"].contains(&fd.as_str()))
        .map(|(_, target)| target.as_str().unwrap())
        .collect();
    assert_eq!(held, Vec::<&str>::new(), "{fds:?}");
    for fd in ["0", "1", "2"] {
        assert!(fds[fd].as_str().unwrap().starts_with("pipe:"), "{fds:?}");
    }
    let text = got.to_string();
    for secret in [
        PASSWORD,
        crate::util::SECRET,
        "must-not-leak",
        "core-must-not-leak",
    ] {
        assert!(!text.contains(secret), "{secret} reached the script");
    }
}

const HANG: &str = "#!/bin/sh\n# Ignores SIGTERM, so only the SIGKILL after the grace period ends it.\ntrap '' TERM\necho $$ > hang.pid\nsleep 60 &\necho $! > hang-child.pid\nwait\n";
const LINGER: &str = "#!/bin/sh\n# A background child keeps stdout open after the script exits.\nsleep 100 &\necho $! > linger-child.pid\necho '{\"response\": \"done\"}'\n";
const FLOOD: &str = "#!/bin/sh\necho $$ > flood.pid\nexec yes 0123456789abcdef\n";
const FAIL: &str =
    "#!/bin/sh\necho 'stderr-detail /etc/secret-path' >&2\necho 'partial output'\nexit 3\n";
const SLOW: &str = "#!/bin/sh\n# Holds its slot until the test creates `release` (bounded to 10 s).\ntouch started\ni=0\nwhile [ ! -e release ] && [ $i -lt 500 ]; do sleep 0.02; i=$((i+1)); done\necho released\n";

fn process_agent() -> tempfile::TempDir {
    let extra = r#"  hang:
    description: Never finishes.
    secure: false
    shell:
      command: ["./hang.sh"]
      timeout: 1s
  linger:
    description: Leaves a child behind.
    secure: false
    shell:
      command: ["./linger.sh"]
      timeout: 5s
  flood:
    description: Too much output.
    secure: false
    shell:
      command: ["./flood.sh"]
      max_output: 64KiB
  fail:
    description: Exits non-zero.
    secure: false
    shell:
      command: ["./fail.sh"]
  slow:
    description: One at a time.
    secure: false
    shell:
      command: ["./slow.sh"]
      concurrency: 1
"#;
    agent_dir(
        &shell_agent(extra),
        &[
            ("probe.py", &probe_py()),
            ("hang.sh", HANG),
            ("linger.sh", LINGER),
            ("flood.sh", FLOOD),
            ("fail.sh", FAIL),
            ("slow.sh", SLOW),
        ],
    )
}

fn pid_in(dir: &std::path::Path, file: &str) -> i32 {
    std::fs::read_to_string(dir.join(file))
        .unwrap_or_else(|_| panic!("{file} was not written"))
        .trim()
        .parse()
        .unwrap()
}

/// A SWAIG call on a thread of its own: (status, reply) when joined.
fn call_in_background(server: &Server, function: &str) -> std::thread::JoinHandle<(u16, Value)> {
    let (url, function) = (server.url.clone(), function.to_owned());
    std::thread::spawn(move || {
        let resp = client()
            .post(format!("{url}/swaig"))
            .basic_auth(USER, Some(PASSWORD))
            .json(&json!({"function": function, "call_id": "call-7"}))
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.json::<Value>().unwrap())
    })
}

/// A SWAIG call bounded by `within` (the client gives up after it).
fn call_within(server: &Server, function: &str, within: Duration) -> (u16, Value) {
    let resp = reqwest::blocking::Client::builder()
        .timeout(within)
        .build()
        .unwrap()
        .post(format!("{}/swaig", server.url))
        .basic_auth(USER, Some(PASSWORD))
        .json(&json!({"function": function, "call_id": "call-7"}))
        .send()
        .unwrap_or_else(|e| panic!("`{function}` was not answered within {within:?}: {e}"));
    (resp.status().as_u16(), resp.json().unwrap())
}

#[test]
fn a_hanging_script_is_killed_with_its_group_and_the_caller_hears_a_safe_message() {
    let dir = process_agent();
    let server = start(dir.path(), &[("LANG", "C.UTF-8")]);
    // It answers after its 1 s timeout and 1 s of grace; the bound only keeps
    // a regression from hanging the test.
    let (status, reply) = call_within(&server, "hang", Duration::from_secs(20));
    assert_eq!((status, reply), (200, json!({ "response": TOO_LONG })));
    for file in ["hang.pid", "hang-child.pid"] {
        let pid = pid_in(dir.path(), file);
        assert!(
            eventually(Duration::from_secs(5), || !alive(pid)),
            "{file}: process {pid} survived"
        );
    }
    assert!(
        eventually(Duration::from_secs(5), || server
            .log()
            .contains("function `hang` timed out after 1s")),
        "{}",
        server.log()
    );
}

#[test]
fn a_lingering_background_child_neither_hangs_the_request_nor_survives() {
    let dir = process_agent();
    let server = start(dir.path(), &[("LANG", "C.UTF-8")]);
    // The child sleeps 100 s holding stdout; the reply comes within the 5 s
    // timeout and 1 s of grace, far from the child's 100 s.
    let (status, reply) = call_within(&server, "linger", Duration::from_secs(30));
    assert_eq!((status, reply), (200, json!({ "response": "done" })));
    let pid = pid_in(dir.path(), "linger-child.pid");
    assert!(
        eventually(Duration::from_secs(5), || !alive(pid)),
        "background child {pid} survived"
    );
}

#[test]
fn huge_output_is_cut_off_and_the_process_killed() {
    let dir = process_agent();
    let server = start(dir.path(), &[("LANG", "C.UTF-8")]);
    let (status, reply) = call_within(&server, "flood", Duration::from_secs(30));
    assert_eq!((status, reply), (200, json!({ "response": FAILED })));
    let pid = pid_in(dir.path(), "flood.pid");
    assert!(
        eventually(Duration::from_secs(5), || !alive(pid)),
        "`yes` ({pid}) survived"
    );
}

#[test]
fn a_failing_script_gives_a_safe_message_and_its_stderr_only_to_the_log() {
    let dir = process_agent();
    let server = start(dir.path(), &[("LANG", "C.UTF-8")]);
    let resp = server
        .post("/swaig")
        .json(&json!({"function": "fail", "call_id": "call-7"}))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap(),
        json!({ "response": FAILED })
    );
    assert!(!text.contains("stderr-detail") && !text.contains("partial output"));
    assert!(
        eventually(Duration::from_secs(5), || server
            .log()
            .contains("stderr-detail /etc/secret-path")),
        "{}",
        server.log()
    );
}

/// A script that echoes a caller's argument to stderr cannot forge a log
/// line or reorder one: line breaks and bidi controls come out escaped
/// (review of issue 25).
#[test]
fn a_handlers_stderr_is_escaped_in_the_log() {
    let extra = r#"  echo_err:
    description: Says its argument on stderr and fails.
    secure: false
    parameters:
      type: object
      properties:
        text: { type: string }
    shell:
      command: ["./echo_err.sh", "${args.text}"]
"#;
    let dir = agent_dir(
        &shell_agent(extra),
        &[
            ("probe.py", &probe_py()),
            (
                "echo_err.sh",
                "#!/bin/sh\nprintf '%s\\n' \"$1\" >&2\nexit 1\n",
            ),
        ],
    );
    let mut server = start(dir.path(), &[("LANG", "C.UTF-8")]);
    let forged = "x\r\n[2026-01-01T00:00:00Z INFO  swagent] all is well \u{202e}gnp.exe";
    let (status, reply) = call(&server, "echo_err", json!({ "text": forged }));
    assert_eq!((status, reply), (200, json!({ "response": FAILED })));
    let log = server.stop_and_log();
    assert!(
        log.contains("stderr: x\\u{d}\\u{a}[2026-01-01T00:00:00Z INFO  swagent] all is well \\u{202e}gnp.exe"),
        "{log}"
    );
    assert!(!log.contains('\u{202e}'), "{log}");
    assert!(
        !log.lines().any(|l| l.starts_with("[2026-01-01T00:00:00Z")),
        "{log}"
    );
}

#[test]
fn a_saturated_function_answers_503_busy_at_once() {
    let dir = process_agent();
    let server = start(dir.path(), &[("LANG", "C.UTF-8")]);
    let first = call_in_background(&server, "slow");
    assert!(eventually(Duration::from_secs(10), || dir
        .path()
        .join("started")
        .exists()));
    let resp = server
        .post("/swaig")
        .json(&json!({"function": "slow", "call_id": "call-8"}))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 503);
    assert_eq!(resp.headers()["retry-after"], "1");
    assert_eq!(
        resp.json::<Value>().unwrap(),
        json!({"error": "busy", "message": "the function is busy; try again shortly"})
    );
    // A reload (here of the prompt) keeps the slot the running call holds.
    let file = dir.path().join("agent.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace("You run scripts.", "You run scripts, reloaded."),
    )
    .unwrap();
    server.signal(libc::SIGHUP);
    assert!(eventually(Duration::from_secs(5), || server.swml("c")
        ["sections"]["main"][1]["ai"]["prompt"]["text"]
        == "You run scripts, reloaded."));
    let resp = server
        .post("/swaig")
        .json(&json!({"function": "slow", "call_id": "call-9"}))
        .send()
        .unwrap();
    assert_eq!(
        resp.status(),
        503,
        "a reload freed the slot of a running call"
    );
    std::fs::write(dir.path().join("release"), "").unwrap();
    assert_eq!(
        first.join().unwrap(),
        (200, json!({ "response": "released" }))
    );
    // The slot is free again.
    let (status, _) = call_within(&server, "slow", Duration::from_secs(12));
    assert_eq!(status, 200);
}

/// The http test agent, every function aimed at `up` (or elsewhere).
fn http_agent(up: &str, down_port: u16) -> String {
    format!(
        r#"name: https
prompt:
  text: You call APIs.
functions:
  lookup:
    description: Path and query templating.
    secure: false
    parameters:
      type: object
      properties:
        seg: {{ type: string }}
        q: {{ type: string }}
    http:
      url: {up}/items/${{args.seg}}/detail
      query: {{ q: "${{args.q}}", fixed: "1" }}
      output: "Item ${{response.name}} costs ${{response.price}}."
  pay:
    description: JSON body types.
    secure: false
    parameters:
      type: object
      properties:
        amount: {{ type: number }}
        flag: {{ type: boolean }}
        note: {{ type: string }}
    http:
      url: {up}/pay
      method: POST
      headers: {{ X-Note: "${{args.note}}" }}
      body: {{ amount: "${{args.amount}}", flag: "${{args.flag}}", note: "${{args.note}}", text: "n=${{args.amount}}", list: ["${{args.amount}}", 1] }}
  down:
    description: Nobody listens.
    secure: false
    http:
      url: http://127.0.0.1:{down_port}/x
  slow:
    description: Answers too late; no time is left for its retries.
    secure: false
    http:
      url: {up}/slow
      timeout: 500ms
      retries: 2
  slow_body:
    description: Sends its head at once and its body too late.
    secure: false
    http:
      url: {up}/slow-body
      timeout: 500ms
  unavailable:
    description: Always 503; its retries would outlast its timeout.
    secure: false
    http:
      url: {up}/unavailable
      timeout: 2s
      retries: 10
  broken:
    description: Answers 500.
    secure: false
    http:
      url: {up}/500
  garbage:
    description: Answers non-JSON.
    secure: false
    http:
      url: {up}/garbage
      output: "Got ${{response.x}}."
  redirect_away:
    description: Redirects to another origin.
    secure: false
    http:
      url: {up}/redirect-away
  redirect_home:
    description: Redirects within the origin.
    secure: false
    actions_from_output: [say]
    http:
      url: {up}/redirect-home
  error_key:
    description: Answers with an error key.
    secure: false
    http:
      url: {up}/error-key
      error_keys: [error]
  big:
    description: Answers too much.
    secure: false
    http:
      url: {up}/big
      max_response: 1KiB
  flaky:
    description: Retried GET.
    secure: false
    http:
      url: {up}/flaky
      retries: 2
  flaky_post:
    description: Not retried.
    secure: false
    http:
      url: {up}/flaky
      method: POST
  passthrough:
    description: No output; the upstream's response field.
    secure: false
    http:
      url: {up}/passthrough
  plain:
    description: No output, no response field.
    secure: false
    http:
      url: {up}/plain
  one_at_a_time:
    description: A slow upstream taken one request at a time.
    secure: false
    http:
      url: {up}/held
      concurrency: 1
"#
    )
}

struct HttpRig {
    _dir: tempfile::TempDir,
    server: Server,
    up: Upstream,
    elsewhere: Upstream,
    /// `/held` answers once this is set (or after 8 s, within the function's
    /// default 10 s timeout).
    held: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

fn http_rig() -> HttpRig {
    let elsewhere = Upstream::start(|_| Answer::json(r#"{"response": "stolen"}"#));
    let away = format!("{}/stolen", elsewhere.url());
    let flaky_hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let held = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let release = held.clone();
    let up = Upstream::start(move |req| {
        let path = req.target.split('?').next().unwrap_or("");
        match path {
            "/pay" => Answer::json(r#"{"ok": true}"#),
            "/slow" => Answer::json(r#"{"response": "late"}"#).after(Duration::from_secs(3)),
            "/slow-body" => {
                Answer::json(r#"{"response": "late"}"#).stalling(Duration::from_secs(3))
            }
            "/unavailable" => Answer::new("503 Service Unavailable", "text/plain", ""),
            "/500" => Answer::new("500 Internal Server Error", "text/plain", "boom /var/lib/x"),
            "/garbage" => Answer::new("200 OK", "application/json", "<html>not json"),
            "/redirect-away" => {
                Answer::new(&format!("302 Found\r\nLocation: {away}"), "text/plain", "")
            }
            "/redirect-home" => {
                Answer::new("302 Found\r\nLocation: /passthrough", "text/plain", "")
            }
            "/error-key" => Answer::json(r#"{"error": "account locked", "response": "no"}"#),
            "/big" => Answer::json(&format!(r#"{{"response": "{}"}}"#, "z".repeat(4096))),
            "/flaky" => {
                let n = flaky_hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if n < 2 {
                    Answer::new("503 Service Unavailable", "text/plain", "")
                } else {
                    Answer::json(r#"{"response": "third time lucky"}"#)
                }
            }
            "/passthrough" => {
                Answer::json(r#"{"response": "from upstream", "action": [{"say": "hi"}]}"#)
            }
            "/plain" => Answer::json(r#"{"status": "ok"}"#),
            "/held" => {
                let until = std::time::Instant::now() + Duration::from_secs(8);
                while !release.load(std::sync::atomic::Ordering::SeqCst)
                    && std::time::Instant::now() < until
                {
                    std::thread::sleep(Duration::from_millis(5));
                }
                Answer::json(r#"{"response": "held"}"#)
            }
            p if p.starts_with("/items/") => Answer::json(r#"{"name": "Widget", "price": 12.5}"#),
            _ => Answer::new("404 Not Found", "text/plain", ""),
        }
    });
    let dir = agent_dir(&http_agent(&up.url(), closed_port()), &[]);
    let server = start(dir.path(), &[]);
    HttpRig {
        _dir: dir,
        server,
        up,
        elsewhere,
        held,
    }
}

impl HttpRig {
    fn seen_paths(&self, prefix: &str) -> Vec<crate::util::Seen> {
        self.up
            .seen()
            .into_iter()
            .filter(|s| s.target.starts_with(prefix))
            .collect()
    }
}

#[test]
fn a_saturated_http_function_answers_503_busy_without_a_second_request() {
    let rig = http_rig();
    let first = call_in_background(&rig.server, "one_at_a_time");
    assert!(eventually(Duration::from_secs(10), || rig
        .seen_paths("/held")
        .len()
        == 1));
    let (status, body) = call(&rig.server, "one_at_a_time", json!({}));
    assert_eq!(
        (status, body),
        (
            503,
            json!({"error": "busy", "message": "the function is busy; try again shortly"})
        )
    );
    rig.held.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(first.join().unwrap(), (200, json!({"response": "held"})));
    assert_eq!(
        rig.seen_paths("/held").len(),
        1,
        "the busy call reached the upstream"
    );
    // The slot is free again.
    assert_eq!(
        call(&rig.server, "one_at_a_time", json!({})),
        (200, json!({"response": "held"}))
    );
    assert!(rig
        .server
        .log_with("refused: concurrency limit reached")
        .contains("function `one_at_a_time` refused: concurrency limit reached"));
}

#[test]
fn templated_path_and_query_values_stay_inside_their_component() {
    let rig = http_rig();
    // (segment, query, what the upstream must see; None = refused, nothing sent)
    let cases: [(&str, &str, Option<&str>); 5] = [
        (
            "../admin?x=1&y#frag",
            "a&b=c#d?e",
            Some("/items/..%2Fadmin%3Fx%3D1%26y%23frag/detail?q=a%26b%3Dc%23d%3Fe&fixed=1"),
        ),
        (
            "caf\u{e9} /x",
            "1 2+3",
            Some("/items/caf%C3%A9%20%2Fx/detail?q=1+2%2B3&fixed=1"),
        ),
        // A whole segment of `..` or `.` would climb out of `/items/` once
        // the URL is parsed, and an empty one where `//` is collapsed: refused.
        ("..", "x", None),
        (".", "x", None),
        ("", "x", None),
    ];
    for (seg, q, want) in cases {
        let before = rig.up.seen().len();
        let (status, reply) = call(&rig.server, "lookup", json!({"seg": seg, "q": q}));
        let seen = rig.up.seen();
        let new: Vec<&str> = seen[before..].iter().map(|s| s.target.as_str()).collect();
        match want {
            Some(target) => {
                assert_eq!(
                    (status, reply),
                    (200, json!({"response": "Item Widget costs 12.5."}))
                );
                assert_eq!(new, vec![target], "{seg}");
            }
            None => {
                assert_eq!(
                    (status, reply),
                    (200, json!({ "response": FAILED })),
                    "{seg}"
                );
                assert_eq!(new, Vec::<&str>::new(), "{seg}");
            }
        }
    }
    let refused = "an argument made a whole path segment `.`, `..` or empty; refused";
    assert!(rig.server.log_with(refused).contains(refused));
}

#[test]
fn json_bodies_keep_types_and_headers_refuse_line_breaks() {
    let rig = http_rig();
    let (status, reply) = call(
        &rig.server,
        "pay",
        json!({"amount": 12.5, "flag": true, "note": "hi \"there\""}),
    );
    assert_eq!(
        (status, reply),
        (200, json!({"response": "The request was completed."}))
    );
    let seen = rig.seen_paths("/pay");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    assert_eq!(seen[0].header("x-note"), Some("hi \"there\""));
    let body: Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(
        body,
        json!({"amount": 12.5, "flag": true, "note": "hi \"there\"", "text": "n=12.5", "list": [12.5, 1]})
    );
    // CR/LF in a header value: refused, nothing sent, no header added.
    for note in ["x\r\nX-Injected: 1", "x\nX-Injected: 1", "x\rY"] {
        let (status, reply) = call(
            &rig.server,
            "pay",
            json!({"amount": 1, "flag": false, "note": note}),
        );
        assert_eq!(
            (status, reply),
            (200, json!({ "response": FAILED })),
            "{note:?}"
        );
    }
    assert_eq!(rig.seen_paths("/pay").len(), 1);
}

#[test]
fn upstream_failures_become_safe_messages() {
    let rig = http_rig();
    let cases = [
        ("down", FAILED),
        ("slow", TOO_LONG),
        ("slow_body", TOO_LONG),
        ("broken", FAILED),
        ("garbage", FAILED),
        // An error key with a `response` is the backend's refusal, which the
        // caller hears (issue 27); `tests/it/actions.rs` has the rest.
        ("error_key", "no"),
        ("big", FAILED),
    ];
    for (function, want) in cases {
        let (status, reply) = call(&rig.server, function, json!({}));
        assert_eq!(
            (status, reply),
            (200, json!({ "response": want })),
            "{function}"
        );
    }
    // `big` was called last: once its line is in, so are the others.
    let log = rig
        .server
        .log_with("response is larger than `max_response` (1024 bytes)");
    assert!(
        log.contains("function `slow` timed out after 500ms"),
        "{log}"
    );
    // A body cut off by the timeout is a timeout, not "error decoding".
    assert!(
        log.contains("function `slow_body` timed out after 500ms"),
        "{log}"
    );
    assert!(!log.contains("decoding"), "{log}");
    // Why a request failed is said, down to the cause, and the URL is not.
    assert!(
        log.contains("function `down` failed: error sending request: client error (Connect): tcp connect error: Connection refused (os error 111)"),
        "{log}"
    );
    assert!(
        log.contains("upstream answered 500 Internal Server Error"),
        "{log}"
    );
    assert!(
        log.contains("upstream response is not JSON, and `output` needs JSON"),
        "{log}"
    );
    assert!(
        log.contains("response is larger than `max_response` (1024 bytes)"),
        "{log}"
    );
}

#[test]
fn redirects_are_followed_only_within_the_origin() {
    let rig = http_rig();
    let (status, reply) = call(&rig.server, "redirect_away", json!({}));
    assert_eq!((status, reply), (200, json!({ "response": FAILED })));
    assert_eq!(
        rig.elsewhere.seen().len(),
        0,
        "the other origin was contacted"
    );
    let (status, reply) = call(&rig.server, "redirect_home", json!({}));
    assert_eq!(
        (status, reply),
        (
            200,
            json!({"response": "from upstream", "action": [{"say": "hi"}]})
        )
    );
    assert_eq!(rig.seen_paths("/passthrough").len(), 1);
}

#[test]
fn get_is_retried_on_server_errors_and_post_is_not() {
    let rig = http_rig();
    let (status, reply) = call(&rig.server, "flaky", json!({}));
    assert_eq!(
        (status, reply),
        (200, json!({"response": "third time lucky"}))
    );
    assert_eq!(rig.seen_paths("/flaky").len(), 3);
    let (status, _) = call(&rig.server, "flaky_post", json!({}));
    assert_eq!(status, 200);
    assert_eq!(rig.seen_paths("/flaky").len(), 4, "a POST is sent once");
}

#[test]
fn retries_stay_within_the_functions_timeout() {
    let rig = http_rig();
    // The first attempt used the whole 500 ms: no retry is sent.
    assert_eq!(
        call(&rig.server, "slow", json!({})),
        (200, json!({ "response": TOO_LONG }))
    );
    assert_eq!(rig.seen_paths("/slow").len(), 1);
    // Ten retries of an instant 503 would take minutes of back-off; within
    // 2 s there is room for three (after 200, 400 and 800 ms), the last of
    // them with 600 ms to spare; a slow machine may leave room for two.
    assert_eq!(
        call(&rig.server, "unavailable", json!({})),
        (200, json!({ "response": FAILED }))
    );
    let sent = rig.seen_paths("/unavailable").len();
    assert!((3..=4).contains(&sent), "{sent} attempts");
    let log = rig.server.log_with("function `unavailable` failed");
    assert!(
        log.contains("function `unavailable` failed: upstream answered 503 Service Unavailable"),
        "{log}"
    );
}

#[test]
fn without_output_the_reply_is_the_response_field_or_a_generic_success() {
    let rig = http_rig();
    assert_eq!(
        call(&rig.server, "plain", json!({})),
        (200, json!({"response": "The request was completed."}))
    );
}

#[test]
fn static_replies_pass_actions_through_and_template_call_data() {
    let yaml = r#"name: statics
prompt:
  text: You answer.
functions:
  hold:
    description: Puts the caller on hold.
    secure: false
    parameters:
      type: object
      properties:
        who: { type: string }
    static:
      response: "One moment, ${args.who}; call ${call_id}, tier ${global_data.tier}."
      action:
        - say: One moment.
        - set_global_data: { on_hold: true }
        - { SWML: { version: "1.0.0", sections: { main: [{ play: { url: "silence:2" } }] } } }
"#;
    let dir = agent_dir(yaml, &[]);
    let server = start(dir.path(), &[]);
    let (status, reply) = server.swaig(
        "",
        json!({"function": "hold", "call_id": "call-3", "global_data": {"tier": "gold"},
               "argument": {"parsed": [{"who": "${env:PATH} Ann"}]}}),
    );
    assert_eq!(
        (status, reply),
        (
            200,
            json!({
                "response": "One moment, ${env:PATH} Ann; call call-3, tier gold.",
                "action": [
                    {"say": "One moment."},
                    {"set_global_data": {"on_hold": true}},
                    {"SWML": {"version": "1.0.0", "sections": {"main": [{"play": {"url": "silence:2"}}]}}}
                ]
            })
        )
    );
}

/// `format` is enforced, as the rest of the schema is: a value that is no
/// email never reaches the handler.
#[test]
fn formats_are_enforced() {
    let yaml = r#"name: formats
prompt: { text: You answer. }
functions:
  notify:
    description: Sends a note.
    secure: false
    parameters:
      type: object
      properties:
        email: { type: string, format: email }
      required: [email]
    static: { response: "Sent to ${args.email}." }
"#;
    let dir = agent_dir(yaml, &[]);
    let server = start(dir.path(), &[]);
    let ask = |email: &str| {
        server.swaig(
            "",
            json!({"function": "notify", "call_id": "c-1", "argument": {"parsed": [{"email": email}]}}),
        )
    };
    assert_eq!(
        ask("ann@example.com"),
        (200, json!({"response": "Sent to ann@example.com."}))
    );
    assert_eq!(
        ask("--not an email; $(id)"),
        (
            200,
            json!({"response": "Some arguments are not acceptable: the argument `email` is invalid: \"--not an email; $(id)\" is not a \"email\". Please ask the caller again."})
        )
    );
}

/// A refused `sensitive` value never comes back to the AI, alone or inside
/// the whole object an error quotes; errors that only name properties stay.
#[test]
fn refused_sensitive_values_are_not_repeated() {
    let yaml = r#"name: secrets
prompt: { text: You answer. }
functions:
  check:
    description: Checks a PIN.
    secure: false
    parameters:
      type: object
      properties:
        pin: { type: string, pattern: "^[0-9]{4}$", sensitive: true }
        account: { type: string }
      required: [pin]
      maxProperties: 2
    static: { response: ok }
"#;
    let dir = agent_dir(yaml, &[]);
    let server = start(dir.path(), &[]);
    let ask = |args: Value| {
        server.swaig(
            "",
            json!({"function": "check", "call_id": "c-1", "argument": {"parsed": [args]}}),
        )
    };
    let (status, reply) = ask(json!({"pin": "98x7", "account": "12", "extra": 1}));
    assert_eq!(status, 200);
    assert_eq!(
        reply,
        json!({"response": "Some arguments are not acceptable: the arguments do not fit the function (not repeated: they hold a sensitive value); the argument `pin` is invalid (a sensitive value, not repeated). Please ask the caller again."})
    );
    let (_, reply) = ask(json!({"account": "98x7"}));
    assert_eq!(
        reply,
        json!({"response": "Some arguments are not acceptable: \"pin\" is a required property. Please ask the caller again."})
    );
}

#[test]
fn argument_names_cannot_shape_the_environment() {
    // The schema allows extra properties, so the caller picks these keys.
    // Only declared arguments become variables: `Q` once replaced the
    // checked `q` in `SWAIG_ARG_Q`, its last key winning.
    let dir = agent_dir(&shell_agent(""), &[("probe.py", &probe_py())]);
    let server = start(dir.path(), &[]);
    let (status, reply) = call(
        &server,
        "probe",
        json!({"q": "x", "Q": "../../etc/passwd; $(id)", "PATH=/tmp/evil:": "1", "LD_PRELOAD": "/tmp/evil.so", "a b": "2", "ok_name": "3"}),
    );
    assert_eq!(status, 200, "{reply}");
    let got: Value = serde_json::from_str(reply["response"].as_str().unwrap()).unwrap();
    let env = got["env"].as_object().unwrap();
    let mut keys: Vec<&str> = env
        .keys()
        .map(String::as_str)
        .filter(|k| k.starts_with("SWAIG_ARG_"))
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, vec!["SWAIG_ARG_Q"]);
    assert_eq!(env["SWAIG_ARG_Q"], "x");
    assert!(env.get("LD_PRELOAD").is_none());
    assert_ne!(env["PATH"].as_str().unwrap(), "/tmp/evil:");
    // Every argument still reaches the program, as JSON on stdin.
    let stdin: Value = serde_json::from_str(got["stdin"].as_str().unwrap()).unwrap();
    assert_eq!(stdin["PATH=/tmp/evil:"], "1");
}
