//! Faults on a real server (issue 9): an audit log on a full disk, logrotate
//! and SIGHUP, SIGTERM with requests in flight, a handler flooding stderr.
//!
//! Hanging, stdout-flooding and failing handlers and a down or slow upstream
//! are in `handlers.rs`; an invalid agent file and SIGHUP is in `ops.rs`.
//! Every wait here is a poll with a deadline.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::os::fd::AsRawFd as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use regex::Regex;
use serde_json::{json, Value};

use crate::raw::{KeptAlive, Raw};

use crate::util::{
    agent_dir, alive, client, eventually, installed, metric, skipped, Server, Swagent, PASSWORD,
    USER,
};

const AGENT: &str = r#"name: faults
prompt: { text: You test faults. }
functions:
  hours:
    description: Opening hours.
    secure: false
    static: { response: Nine to five. }
  slow:
    description: Holds until the test creates `release`.
    secure: false
    shell: { command: ["./slow.sh"], timeout: 20s, concurrency: 8 }
  noisy:
    description: Floods stderr forever.
    secure: false
    shell: { command: ["./noisy.sh"], timeout: 1s }
  family:
    description: Starts a child in the background, then holds like `slow`.
    secure: false
    shell: { command: ["./family.sh"], timeout: 20s }
"#;

/// Appends its pid to `started`, then holds until `release` exists (15 s at most).
const SLOW: &str = "#!/bin/sh\necho $$ >> started\ni=0\nwhile [ ! -e release ] && [ $i -lt 750 ]; do sleep 0.02; i=$((i+1)); done\necho done\n";
const NOISY: &str = "#!/bin/sh\necho $$ > noisy.pid\nexec yes stderr-flood >&2\n";
/// Leaves a background `sleep` (its pid in `child.pid`), then holds like SLOW.
const FAMILY: &str = "#!/bin/sh\nsleep 60 &\necho $! > child.pid\ni=0\nwhile [ ! -e release ] && [ $i -lt 750 ]; do sleep 0.02; i=$((i+1)); done\necho done\n";

const UNAVAILABLE: &str = r#"{"error":"audit_unavailable","message":"the service is unavailable"}"#;
const ENOSPC: &str = "No space left on device (os error 28)";

fn faults_dir() -> tempfile::TempDir {
    agent_dir(
        AGENT,
        &[
            ("slow.sh", SLOW),
            ("noisy.sh", NOISY),
            ("family.sh", FAMILY),
        ],
    )
}

fn serve(dir: &Path, extra: &[&str]) -> Swagent {
    Swagent::new(["serve", "agent.yaml"])
        .args(extra)
        .creds()
        .dir(dir)
}

/// (status, body text) of a call to the open `hours` function.
fn hours(server: &Server) -> (u16, String) {
    let resp = server
        .post("/swaig")
        .json(&json!({"function": "hours", "call_id": "c-1"}))
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.text().unwrap())
}

fn wrong_password(server: &Server) -> u16 {
    client()
        .get(format!("{}/", server.url))
        .basic_auth(USER, Some("wrong-password-0123456789"))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

fn health(server: &Server) -> u16 {
    client()
        .get(format!("{}/health", server.url))
        .send()
        .unwrap()
        .status()
        .as_u16()
}

/// (status, body text) of the readiness probe, without credentials.
fn ready(server: &Server) -> (u16, String) {
    let resp = client()
        .get(format!("{}/ready", server.url))
        .send()
        .unwrap();
    (resp.status().as_u16(), resp.text().unwrap())
}

const READY: &str = r#"{"status":"ready"}"#;
const NOT_READY: &str = r#"{"status":"not_ready"}"#;

fn events(path: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // Complete lines only: this may read while the server writes one.
    text[..text.rfind('\n').map_or(0, |i| i + 1)]
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["event"].as_str().unwrap().to_owned()
        })
        .collect()
}

const OK: &str = r#"{"response":"Nine to five."}"#;

#[test]
fn an_audit_log_on_a_full_disk_is_reported_loudly_and_serving_goes_on() {
    let Some(disk) =
        Tmpfs::mount("faults::an_audit_log_on_a_full_disk_is_reported_loudly_and_serving_goes_on")
    else {
        return;
    };
    fill(&disk.path().join("filler"));
    let log = disk.path().join("audit.log");
    let dir = faults_dir();
    let server = serve(dir.path(), &["--audit-log", log.to_str().unwrap()]).start();
    let lost = format!(
        "AUDIT LOG WRITE FAILED, events are being lost: cannot write the audit log `{}`: {ENOSPC}",
        log.display()
    );
    // The start-up line already failed.
    assert!(
        eventually(Duration::from_secs(5), || server.log().contains(&lost)),
        "{}",
        server.log()
    );
    let before = server.log().matches(&lost).count();
    assert_eq!(hours(&server), (200, OK.into()));
    assert_eq!(wrong_password(&server), 401);
    assert_eq!(health(&server), 200);
    // Each lost event is reported, not only the first.
    assert!(
        eventually(Duration::from_secs(5), || server
            .log()
            .matches(&lost)
            .count()
            >= before + 2),
        "{}",
        server.log()
    );
}

#[test]
fn a_required_audit_log_that_cannot_be_written_stops_the_start() {
    let dir = faults_dir();
    // A device is no log: `/dev/null` would take every line and look healthy.
    for device in ["/dev/full", "/dev/null"] {
        serve(
            dir.path(),
            &["--audit-log", device, "--audit-required", "--port", "0"],
        )
        .run()
        .code(2)
        .stderr_is(&format!(
            "error: cannot open the audit log `{device}`: is not a regular file (a FIFO, socket or device)\n"
        ));
    }
    let Some(disk) =
        Tmpfs::mount("faults::a_required_audit_log_that_cannot_be_written_stops_the_start")
    else {
        return;
    };
    fill(&disk.path().join("filler"));
    let log = disk.path().join("audit.log");
    serve(
        dir.path(),
        &["--audit-log", log.to_str().unwrap(), "--audit-required", "--port", "0"],
    )
    .run()
    .code(2)
    .stderr_has(&format!(
        "error: cannot write the audit log `{}`: {ENOSPC}; `--audit-required` does not start without an audit log\n",
        log.display()
    ))
    .never_shows("serving agent");
}

/// A 1 MiB tmpfs, unmounted on drop; `None` where mounting is not allowed.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// `test` names the test in the skip notice.
    fn mount(test: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(dir.path())
            .output();
        match out {
            Ok(out) if out.status.success() => Some(Tmpfs { dir }),
            Ok(out) => {
                skipped(&format!(
                    "SKIPPED {test} (its tmpfs part): cannot mount a tmpfs here (needs root): {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
                None
            }
            Err(e) => {
                skipped(&format!(
                    "SKIPPED {test} (its tmpfs part): cannot run `mount`: {e}"
                ));
                None
            }
        }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes zeros to `path` until the file system is full.
fn fill(path: &Path) {
    use std::io::Write as _;
    let mut f = std::fs::File::create(path).unwrap();
    let block = vec![0u8; 64 * 1024];
    loop {
        if let Err(e) = f.write_all(&block) {
            assert_eq!(e.raw_os_error(), Some(libc::ENOSPC), "{e}");
            return;
        }
    }
}

#[test]
fn a_required_audit_log_on_a_disk_that_fills_refuses_then_recovers_by_itself() {
    let Some(disk) = Tmpfs::mount(
        "faults::a_required_audit_log_on_a_disk_that_fills_refuses_then_recovers_by_itself",
    ) else {
        return;
    };
    let log = disk.path().join("audit.log");
    let dir = faults_dir();
    let server = serve(
        dir.path(),
        &["--audit-log", log.to_str().unwrap(), "--audit-required"],
    )
    .start();
    assert_eq!(hours(&server), (200, OK.into()));
    assert_eq!(ready(&server), (200, READY.into()));
    fill(&disk.path().join("filler"));
    // The log's last page may still hold a few lines: call until it is full.
    let mut answers = Vec::new();
    assert!(
        eventually(Duration::from_secs(20), || {
            answers.push(hours(&server));
            answers.last().unwrap().0 == 503
        }),
        "never refused: {answers:?}"
    );
    assert_eq!(answers.last().unwrap(), &(503, UNAVAILABLE.into()));
    // Refused before credentials are looked at; /health still answers,
    // /ready says to send calls elsewhere.
    assert_eq!(wrong_password(&server), 503);
    assert_eq!(health(&server), 200);
    assert_eq!(ready(&server), (503, NOT_READY.into()));
    let stderr = server.log_with(ENOSPC);
    assert!(stderr.contains(ENOSPC), "{stderr}");
    // Room again. A drained instance gets only probes: the probe itself
    // writes, and the instance is ready again without a signal or a call.
    std::fs::remove_file(disk.path().join("filler")).unwrap();
    assert_eq!(ready(&server), (200, READY.into()));
    assert_eq!(
        events(&log).last().map(String::as_str),
        Some("audit_recovered")
    );
    assert_eq!(hours(&server), (200, OK.into()));
    let seen = events(&log);
    assert_eq!(seen.first().map(String::as_str), Some("server_started"));
    assert!(seen.iter().any(|e| e == "audit_recovered"), "{seen:?}");
    assert_eq!(seen.last().map(String::as_str), Some("function_called"));
}

#[test]
fn sighup_lets_go_of_a_rotated_audit_log() {
    let dir = faults_dir();
    let server = serve(dir.path(), &["--audit-log", "audit.log"]).start();
    let log = dir.path().join("audit.log");
    let rotated = dir.path().join("audit.log.1");
    assert_eq!(wrong_password(&server), 401);
    assert!(eventually(Duration::from_secs(5), || events(&log)
        .contains(&"auth_failed".to_owned())));
    std::fs::rename(&log, &rotated).unwrap();
    server.signal(libc::SIGHUP);
    // The reload's own event is the first line of the new file (unless the
    // once-a-second check of the path got there between rename and signal).
    let new_lines = || {
        let mut seen = events(&log);
        seen.retain(|e| e != "audit_log_reopened");
        seen
    };
    assert!(
        eventually(Duration::from_secs(5), || new_lines() == ["agent_reloaded"]),
        "{:?}",
        events(&log)
    );
    assert_eq!(wrong_password(&server), 401);
    assert_eq!(new_lines(), ["agent_reloaded", "auth_failed"]);
    assert_eq!(events(&rotated), ["server_started", "auth_failed"]);
}

/// Without a SIGHUP (logrotate with no `postrotate`, a clean-up by hand),
/// a moved or deleted log is noticed within a second and reopened at its
/// path, with a line that says so; a required log keeps the server ready.
#[test]
fn an_audit_log_moved_or_deleted_without_sighup_is_reopened_at_its_path() {
    let dir = faults_dir();
    let server = serve(
        dir.path(),
        &["--audit-log", "audit.log", "--audit-required"],
    )
    .start();
    let log = dir.path().join("audit.log");
    let moved = dir.path().join("audit.log.1");
    let within = Duration::from_secs(5);
    assert_eq!(wrong_password(&server), 401);
    assert!(eventually(within, || events(&log).contains(&"auth_failed".to_owned())));

    std::fs::rename(&log, &moved).unwrap();
    assert!(
        eventually(within, || events(&log) == ["audit_log_reopened"]),
        "{:?}",
        events(&log)
    );
    assert_eq!(wrong_password(&server), 401);
    assert_eq!(events(&log), ["audit_log_reopened", "auth_failed"]);
    assert_eq!(events(&moved), ["server_started", "auth_failed"]);

    std::fs::remove_file(&log).unwrap();
    assert!(
        eventually(within, || events(&log) == ["audit_log_reopened"]),
        "{:?}",
        events(&log)
    );
    assert_eq!(ready(&server), (200, READY.to_owned()));
    let said = "the audit log was moved or deleted without a SIGHUP: reopened it at its path";
    assert!(
        eventually(within, || server.log().matches(said).count() == 2),
        "{}",
        server.log()
    );
    let line: Value = serde_json::from_str(std::fs::read_to_string(&log).unwrap().trim()).unwrap();
    assert_eq!(line["reason"], "the file at its path was not the one open");

    // A FIFO put in its place is refused, never opened (an open or a write
    // would block): requests are answered, and the required log counts as
    // failing until a file can be opened there again.
    std::fs::remove_file(&log).unwrap();
    crate::util::mkfifo(&log);
    assert!(eventually(within, || ready(&server).0 == 503));
    let said = "the audit log was moved or deleted without a SIGHUP and cannot be reopened: cannot write the audit log `audit.log`: is not a regular file (a FIFO, socket or device); lines go to the file it had open until its path can be opened again";
    assert!(server.log_with(said).contains(said), "{}", server.log());
    assert_eq!(hours(&server), (503, UNAVAILABLE.to_owned()));
    std::fs::remove_file(&log).unwrap();
    assert!(eventually(within, || ready(&server) == (200, READY.to_owned())));
    assert_eq!(hours(&server), (200, OK.to_owned()));
}

#[test]
fn sigterm_lets_requests_in_flight_finish_and_refuses_new_connections() {
    let dir = faults_dir();
    let mut server = serve(dir.path(), &[]).start();
    let url = server.url.clone();
    let addr = url.trim_start_matches("http://").to_owned();
    let inflight: Vec<_> = (0..4)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || {
                let resp = client()
                    .post(format!("{url}/swaig"))
                    .basic_auth(USER, Some(PASSWORD))
                    .json(&json!({"function": "slow", "call_id": format!("c-{i}")}))
                    .send()
                    .map_err(|e| e.to_string())?;
                Ok::<_, String>((resp.status().as_u16(), resp.text().unwrap()))
            })
        })
        .collect();
    let started = dir.path().join("started");
    assert!(eventually(Duration::from_secs(10), || {
        std::fs::read_to_string(&started).is_ok_and(|s| s.lines().count() == 4)
    }));
    server.signal(libc::SIGTERM);
    // New connections are refused while the four are still being served.
    assert!(
        eventually(Duration::from_secs(10), || std::net::TcpStream::connect(
            &addr
        )
        .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionRefused)),
        "still accepting connections after SIGTERM"
    );
    assert_eq!(server.child.try_wait().unwrap(), None, "exited too early");
    std::fs::write(dir.path().join("release"), "").unwrap();
    for t in inflight {
        assert_eq!(
            t.join().unwrap(),
            Ok((200, r#"{"response":"done"}"#.to_owned()))
        );
    }
    server.assert_stops_cleanly();
}

/// A server that stops while a handler runs takes the handler's whole
/// process group with it, not only the program it started.
#[test]
fn a_server_stopping_mid_call_leaves_no_orphaned_processes() {
    let dir = faults_dir();
    let mut server = serve(dir.path(), &[]).start();
    let url = server.url.clone();
    let call = std::thread::spawn(move || {
        client()
            .post(format!("{url}/swaig"))
            .basic_auth(USER, Some(PASSWORD))
            .json(&json!({"function": "family", "call_id": "c-1"}))
            .send()
            .map(|r| r.status().as_u16())
            .map_err(|e| e.to_string())
    });
    let pid_file = dir.path().join("child.pid");
    let mut child = 0;
    assert!(eventually(Duration::from_secs(10), || {
        child = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        child > 0
    }));
    assert!(alive(child));
    // SIGQUIT: stop now, without waiting for the call.
    server.signal(libc::SIGQUIT);
    assert!(
        eventually(Duration::from_secs(10), || server
            .child
            .try_wait()
            .unwrap()
            .is_some()),
        "the server did not stop"
    );
    let orphaned = !eventually(Duration::from_secs(5), || !alive(child));
    if orphaned {
        // SAFETY: plain kill of a pid this test's script started.
        unsafe { libc::kill(child, libc::SIGKILL) };
    }
    assert!(
        !orphaned,
        "the handler's background child {child} outlived the server"
    );
    assert!(call.join().unwrap().is_err(), "the call was answered");
}

#[test]
fn a_handler_flooding_stderr_is_stopped_at_its_timeout() {
    let dir = faults_dir();
    let mut server = serve(dir.path(), &[]).start();
    let resp = server
        .post("/swaig")
        .json(&json!({"function": "noisy", "call_id": "c-1"}))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().unwrap(),
        json!({"response": "That took too long; please try again later."})
    );
    let pid: i32 = std::fs::read_to_string(dir.path().join("noisy.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(eventually(Duration::from_secs(5), || !alive(pid)));
    // What it wrote is neither answered nor kept in the log.
    let log = server.stop_and_log();
    assert!(!log.contains("stderr-flood"), "{log}");
}

/// Records what it did in `paid`, then fills the disk the audit log is on.
const PAY: &str =
    "#!/bin/sh\necho paid >> paid\nhead -c 4000000 /dev/zero > \"$1\" 2>/dev/null\necho Paid.\n";

#[test]
fn a_handler_that_ran_is_answered_even_when_its_audit_line_cannot_be_written() {
    let Some(disk) = Tmpfs::mount(
        "faults::a_handler_that_ran_is_answered_even_when_its_audit_line_cannot_be_written",
    ) else {
        return;
    };
    let log = disk.path().join("audit.log");
    let filler = disk.path().join("filler");
    let agent = format!(
        "name: fills\nprompt: {{ text: x }}\nfunctions:\n  pay:\n    description: Pays.\n    secure: false\n    parameters: {{ type: object, properties: {{ notes: {{ type: array, items: {{ type: string }} }} }} }}\n    shell: {{ command: [\"./pay.sh\", \"{}\"] }}\n",
        filler.display()
    );
    let dir = agent_dir(&agent, &[("pay.sh", PAY)]);
    let server = serve(
        dir.path(),
        &["--audit-log", log.to_str().unwrap(), "--audit-required"],
    )
    .start();
    // The line about the payment is larger than a page (32 notes of the 256
    // characters the log keeps of each), so the full disk
    // cannot take it into the log's last page.
    let pay = || {
        let resp = server
            .post("/swaig")
            .json(&json!({"function": "pay", "call_id": "c-1", "argument": {"parsed": [{"notes": vec!["n".repeat(256); 32]}]}}))
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.text().unwrap())
    };
    // The payment happened: the AI is told so, not that it failed (a retry
    // would pay twice).
    assert_eq!(pay(), (200, r#"{"response":"Paid."}"#.into()));
    let lost = "audit log: `function_called` for `pay` in call `c-1` was not recorded, and the function had already run; new calls are refused until the log can be written";
    assert!(server.log_with(lost).contains(lost), "{}", server.log());
    // Nothing runs that the log cannot record first: a small line may still
    // fit (so the log counts as writable again), the call's own does not.
    assert_eq!(pay(), (503, UNAVAILABLE.into()));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("paid")).unwrap(),
        "paid\n"
    );
    let seen = events(&log);
    assert_eq!(
        seen.iter().filter(|e| *e == "function_started").count(),
        1,
        "{seen:?}"
    );
    assert!(!seen.contains(&"function_called".to_owned()), "{seen:?}");
}

const ECHO_AGENT: &str = "name: fds\nprompt: { text: x }\nfunctions:\n  echo:\n    description: Says hi.\n    secure: false\n    shell: { command: [\"/bin/echo\", \"hi\"] }\n";

fn echo_call() -> Raw {
    Raw::new("POST", "/swaig")
        .auth()
        .json(&json!({"function": "echo", "call_id": "c-1"}))
}

#[test]
fn a_flood_of_idle_connections_leaves_descriptors_for_handlers() {
    let dir = agent_dir(ECHO_AGENT, &[]);
    let mut server = serve(dir.path(), &[]).open_files(128).start();
    let budget = Regex::new(
        r"swagent: up to (\d+) connections at once \(open-file limit 128; (\d+) descriptors kept for handlers and logs\)",
    )
    .unwrap();
    let log = server.log_with("connections at once");
    let split = budget.captures(&log).expect("the budget line");
    let (cap, kept): (usize, usize) = (split[1].parse().unwrap(), split[2].parse().unwrap());
    // At least 64 kept; connections get the rest, split evenly by worker.
    assert!((1..=64).contains(&cap) && kept >= 64, "{log}");
    // A connection the platform opened before the flood.
    let mut platform = KeptAlive::open(server.port());
    assert_eq!(
        platform.send(&echo_call()).body_text(),
        r#"{"response":"hi"}"#
    );
    // Idle connections need no credentials. Past the cap they wait in the
    // listen queue; past the queue, connecting times out.
    let mut idle = Vec::new();
    for _ in 0..250 {
        match TcpStream::connect_timeout(
            &([127, 0, 0, 1], server.port()).into(),
            Duration::from_millis(300),
        ) {
            Ok(s) => idle.push(s),
            Err(_) => break,
        }
    }
    assert!(
        idle.len() > cap,
        "only {} connections were made",
        idle.len()
    );
    // Without the cap, every descriptor went to a connection, and this
    // call's pipes failed: "Sorry, that service is not working right now".
    for _ in 0..3 {
        let answer = platform.send(&echo_call());
        assert_eq!(
            (answer.status(), answer.body_text()),
            (Some(200), r#"{"response":"hi"}"#.into())
        );
    }
    // The cap is in the metrics, and reached.
    let scrape = |platform: &mut KeptAlive| {
        platform
            .send(&Raw::new("GET", "/metrics").auth())
            .body_text()
    };
    let text = scrape(&mut platform);
    assert_eq!(
        metric(&text, "swagent_connections_max "),
        Some(cap as f64),
        "{text}"
    );
    assert_eq!(
        metric(&text, "swagent_connections_open "),
        Some(cap as f64),
        "{text}"
    );
    drop(idle);
    assert!(
        eventually(Duration::from_secs(10), || metric(
            &scrape(&mut platform),
            "swagent_connections_open "
        ) == Some(1.0)),
        "{}",
        scrape(&mut platform)
    );
    // Once the flood is gone, new connections are served again.
    let answer = echo_call().send(server.port());
    assert_eq!(
        (answer.status(), answer.body_text()),
        (Some(200), r#"{"response":"hi"}"#.into())
    );
    drop(platform);
    let log = server.stop_and_log();
    assert!(!log.contains("Too many open files"), "{log}");
    // 16 programs at once (the default `concurrency`) fit in what is kept.
    assert!(!log.contains("WARNING: functions may run"), "{log}");
}

#[test]
fn a_connection_cap_the_open_file_limit_cannot_hold_is_refused_at_start() {
    let dir = agent_dir(ECHO_AGENT, &[]);
    serve(dir.path(), &["--port", "0"])
        .open_files(1024)
        .env("SWAGENT_MAX_CONNECTIONS", "5000")
        .run()
        .code(2)
        .stderr_has(
            "`SWAGENT_MAX_CONNECTIONS` is 5000, but the open-file limit (1024) leaves room for ",
        )
        .stderr_has(
            " connections; raise `ulimit -n` (`LimitNOFILE=` under systemd) or ask for fewer",
        );
    serve(dir.path(), &["--port", "0"])
        .env("SWAGENT_MAX_CONNECTIONS", "many")
        .run()
        .code(2)
        .stderr_has(
            "`SWAGENT_MAX_CONNECTIONS` must be a number of connections above 0, not `many`",
        );
    serve(dir.path(), &["--port", "0"])
        .open_files(40)
        .run()
        .code(2)
        .stderr_has("the open-file limit (40) is too low to serve: ");
    // A cap within the limit is taken as asked (rounded down to the workers).
    let server = serve(dir.path(), &[])
        .env("SWAGENT_MAX_CONNECTIONS", "64")
        .start();
    let log = server.log_with("connections at once");
    let cap: usize = Regex::new(r"swagent: up to (\d+) connections at once \(open-file limit \d+; \d+ descriptors kept for handlers and logs\)")
        .unwrap()
        .captures(&log)
        .expect("the budget line")[1]
        .parse()
        .unwrap();
    // The server splits connections evenly among as many workers as cores.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    assert_eq!(cap, 64 / workers * workers, "{log}");
    // Functions that could hold more than is kept are said at start.
    let busy = agent_dir(
        &format!(
            "{}  fetch:\n    description: Fetches.\n    secure: false\n    http: {{ url: \"http://127.0.0.1:9/x\", concurrency: 10 }}\n",
            ECHO_AGENT.replace("\"hi\"] }", "\"hi\"], concurrency: 30 }")
        ),
        &[],
    );
    let server = serve(busy.path(), &[]).open_files(128).start();
    let warning = Regex::new(r"swagent: WARNING: functions may run 30 programs and 10 http requests at once, which hold up to 100 descriptors, more than the \d+ kept beside connections; raise `ulimit -n`, lower `concurrency` or set `SWAGENT_MAX_CONNECTIONS`\n").unwrap();
    let log = server.log_with("WARNING: functions may run");
    assert!(warning.is_match(&log), "{log}");
}

#[test]
fn a_body_that_never_finishes_arriving_is_408_and_the_connection_closes() {
    let dir = agent_dir(ECHO_AGENT, &[]);
    let paid = dir.path().join("ran");
    // With a signing key the body is read by the signature check, before
    // the route: both readers are bounded.
    for key in [None, Some("PSK_test_key")] {
        let mut s = serve(dir.path(), &[]).env("SWAGENT_BODY_TIMEOUT", "1s");
        if let Some(key) = key {
            s = s.env("SIGNALWIRE_SIGNING_KEY", key);
        }
        let server = s.start();
        // The head, then a body that comes a byte every 100 ms: 60 s in all.
        // Had the server waited for all of it, the answer would be a 400
        // (spaces are no JSON), not a 408.
        let slow = Raw::new("POST", "/swaig")
            .auth()
            .h("Content-Type", "application/json")
            .h("Content-Length", "600")
            .body(vec![b' '; 600])
            .no_length()
            .trickle(Duration::from_millis(100));
        let answer = slow.send(server.port());
        assert_eq!(answer.status(), Some(408), "{key:?}: {answer:?}");
        assert_eq!(
            answer.json(),
            Some(
                json!({"error": "request_timeout", "message": "the request body did not arrive within 1 s"})
            ),
            "{key:?}"
        );
        assert_eq!(answer.header("connection"), Some("close"), "{key:?}");
        assert!(!paid.exists());
    }
}

#[test]
fn the_listen_queue_holds_more_than_std_gives() {
    let test = "faults::the_listen_queue_holds_more_than_std_gives";
    if !installed(test, "ss", "iproute2") {
        return;
    }
    let somaxconn: u64 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    if somaxconn <= 128 {
        // The kernel's own cap (.ci/run raises it).
        skipped(&format!("SKIPPED {test}: `net.core.somaxconn` is {somaxconn}, so no backlog can exceed std's 128"));
        return;
    }
    let dir = agent_dir(ECHO_AGENT, &[]);
    let server = serve(dir.path(), &[]).start();
    let out = Command::new("ss")
        .args(["-ltnH", &format!("sport = :{}", server.port())])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    // A listening socket's `Send-Q` is its backlog, as the kernel holds it.
    let backlog: u64 = text
        .split_whitespace()
        .nth(2)
        .unwrap_or_else(|| panic!("no listening socket in {text:?}"))
        .parse()
        .unwrap();
    assert_eq!(backlog, somaxconn.min(2048), "{text}");
}

#[test]
fn unverified_bodies_share_a_budget_that_no_stranger_can_exceed() {
    let dir = agent_dir(ECHO_AGENT, &[]);
    let start = || {
        serve(dir.path(), &[])
            .env("SIGNALWIRE_SIGNING_KEY", "PSK_test_key")
            .env("SWML_MAX_REQUEST_SIZE", "65536")
    };
    start()
        .env("SWAGENT_UNVERIFIED_BODIES", "65535")
        .run()
        .code(2)
        .stderr_has("`SWAGENT_UNVERIFIED_BODIES` is 65535 bytes, less than one body of `SWML_MAX_REQUEST_SIZE` (65536 bytes); raise it or lower `SWML_MAX_REQUEST_SIZE`");
    let server = start().env("SWAGENT_UNVERIFIED_BODIES", "150000").start();
    let port = server.port();
    let scrape = |line: &str| {
        let text = Raw::new("GET", "/metrics").auth().send(port).body_text();
        metric(&text, line)
    };
    // Two strangers on two addresses, with neither credentials nor a
    // signature, each send 60,000 bytes of a 65,536-byte body and then wait.
    // Each holds what its body allocated: 60,000 bytes, or 65,536 if they
    // came in pieces. (One address may hold 65,536: an eighth of the budget,
    // but at least one body of the largest size.)
    let head = |length: usize| {
        format!("POST /swaig HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n")
    };
    let holders: Vec<TcpStream> = ["127.0.0.2", "127.0.0.3"]
        .into_iter()
        .map(|source| {
            let mut s = connect_from(source, port);
            s.write_all(head(65536).as_bytes()).unwrap();
            s.write_all(&[b' '; 60_000]).unwrap();
            s
        })
        .collect();
    assert!(eventually(Duration::from_secs(5), || scrape(
        "swagent_unverified_body_bytes "
    )
    .is_some_and(|held| (120_000.0..=131_072.0).contains(&held))));
    let call = |pad: usize| {
        Raw::new("POST", "/swaig")
            .json(&json!({"function": "echo", "call_id": "c-1", "pad": "x".repeat(pad)}))
    };
    // A body that fits in what is left is read and judged as ever.
    let small = call(1000).send(port);
    assert_eq!(small.status(), Some(403), "{small:?}");
    assert_eq!(small.json().unwrap()["error"], "invalid_signature");
    // One that does not is refused before it is read in full.
    let big = call(40_000).send(port);
    assert_eq!(big.status(), Some(503), "{big:?}");
    assert_eq!(
        big.json(),
        Some(
            json!({"error": "overloaded", "message": "too many request bodies are being read; try again shortly"})
        )
    );
    assert_eq!(big.header("retry-after"), Some("1"));
    assert_eq!(big.header("connection"), Some("close"));
    let log = server.log_with("bodies not yet verified");
    assert!(
        log.contains("request refused: bodies not yet verified fill `SWAGENT_UNVERIFIED_BODIES` (150000 bytes, at most 65536 from one address): a flood of slow bodies, or a budget too small for the traffic (0 more since the last such line)"),
        "{log}"
    );
    // A body the budget has room for, from an address that holds its share
    // already, is refused; from another address it is read.
    let from = |source: &str| {
        let mut s = connect_from(source, port);
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        s.write_all(format!("{}{}", head(10_000), " ".repeat(10_000)).as_bytes())
            .unwrap();
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer.lines().next().unwrap_or_default().to_owned()
    };
    assert_eq!(from("127.0.0.2"), "HTTP/1.1 503 Service Unavailable");
    assert_eq!(from("127.0.0.4"), "HTTP/1.1 403 Forbidden");
    assert_eq!(
        scrape("swagent_rate_limited_total{limit=\"unverified_bodies\"} "),
        Some(2.0)
    );
    // What the strangers held is given back when they go.
    drop(holders);
    assert!(eventually(Duration::from_secs(5), || scrape(
        "swagent_unverified_body_bytes "
    ) == Some(0.0)));
    let again = call(40_000).send(port);
    assert_eq!(again.status(), Some(403), "{again:?}");
    assert_eq!(again.json().unwrap()["error"], "invalid_signature");
}

/// A connection to the server from another loopback address (`127.0.0.x`),
/// for what is counted per address.
fn connect_from(source: &str, port: u16) -> TcpStream {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    let local: std::net::SocketAddr = format!("{source}:0").parse().unwrap();
    s.bind(&local.into()).unwrap();
    s.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], port)).into())
        .unwrap();
    s.into()
}

/// `swagent_connections_open` as a fresh connection sees it (itself included).
fn connections_open(server: &Server) -> Option<f64> {
    let text = Raw::new("GET", "/metrics")
        .auth()
        .send(server.port())
        .body_text();
    metric(&text, "swagent_connections_open ")
}

#[test]
fn connections_stuck_on_an_unread_body_or_answer_are_closed() {
    let dir = agent_dir(ECHO_AGENT, &[]);
    // Stuck connections are closed after 3 to 6 body timeouts.
    let server = serve(dir.path(), &[])
        .env("SWAGENT_BODY_TIMEOUT", "1s")
        .start();
    // No credentials needed. A chunked body the route never reads: actix
    // answers, then drains the body for as long as the client sends it.
    let mut chunked = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    chunked
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        .unwrap();
    // An answer never read: requests pipelined into a small receive buffer.
    let unread = TcpStream::connect(("127.0.0.1", server.port())).unwrap();
    let small: libc::c_int = 4096;
    // SAFETY: a valid socket and a c_int option value of the right size.
    let set = unsafe {
        libc::setsockopt(
            unread.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            std::ptr::addr_of!(small).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    assert_eq!(set, 0);
    unread
        .set_write_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut writer = unread.try_clone().unwrap();
    let pipelined = std::thread::spawn(move || {
        let requests = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n".repeat(20_000);
        let _ = writer.write_all(requests.as_bytes());
    });
    assert!(
        eventually(Duration::from_secs(3), || connections_open(&server)
            == Some(3.0)),
        "{:?}",
        connections_open(&server)
    );
    // Both are closed; the scrape's own connection is the only one left.
    assert!(
        eventually(Duration::from_secs(15), || connections_open(&server)
            == Some(1.0)),
        "{:?}",
        connections_open(&server)
    );
    chunked
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut got = Vec::new();
    let read = chunked.read_to_end(&mut got);
    assert!(
        read.is_ok()
            || read
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "{read:?}"
    );
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200 OK\r\n"));
    // (The pipelining client is not read to its end: through a 4 KiB
    // window, what the server had queued takes minutes to come.)
    drop(unread);
    let _ = pipelined.join();
    // A connection that is merely slow is not stuck: a handler may take
    // longer than the watch (here 5 s against 3 to 6 s).
    let slow_agent = agent_dir(
        "name: slow\nprompt: { text: x }\nfunctions:\n  wait:\n    description: Waits.\n    secure: false\n    shell: { command: [\"/bin/sleep\", \"7\"], timeout: 10s }\n",
        &[],
    );
    let slow = serve(slow_agent.path(), &[])
        .env("SWAGENT_BODY_TIMEOUT", "1s")
        .start();
    let answer = Raw::new("POST", "/swaig")
        .auth()
        .json(&json!({"function": "wait", "call_id": "c-1"}))
        .send(slow.port());
    assert_eq!(answer.status(), Some(200), "{answer:?}");
}

#[test]
fn a_huge_argument_cannot_fill_the_audit_log() {
    let dir = agent_dir(ECHO_AGENT, &[]);
    let log = dir.path().join("audit.log");
    let server = serve(dir.path(), &["--audit-log", log.to_str().unwrap()]).start();
    // Just under the 1 MiB body limit, in one argument and in many.
    let one = json!({"note": "A".repeat(1_000_000)});
    let many = json!({"notes": vec!["A"; 200_000]});
    for args in [one, many] {
        let answer = Raw::new("POST", "/swaig")
            .auth()
            .json(&json!({"function": "echo", "call_id": "c-1", "argument": {"parsed": [args]}}))
            .send(server.port());
        assert_eq!(answer.status(), Some(200), "{answer:?}");
    }
    let text = std::fs::read_to_string(&log).unwrap();
    let called: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "function_called")
        .collect();
    assert_eq!(called.len(), 2, "{text:.2000}");
    assert_eq!(
        called[0]["arguments"],
        json!({"note": format!("{}… (1000000 bytes)", "A".repeat(256))})
    );
    assert_eq!(
        called[1]["arguments"],
        json!("(800011 bytes of arguments, not kept)")
    );
    assert!(text.len() < 8 * 1024, "{} bytes of audit log", text.len());
}
