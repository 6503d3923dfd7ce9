//! Test helpers: run the real binary, start a real server, talk HTTP to it.
//!
//! When an assertion fails, the helpers print the command, its folder, its
//! status and both outputs, so a failure explains itself.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_swagent");
pub const USER: &str = "u";
pub const PASSWORD: &str = "p-0123456789abcdef0123";
pub const SECRET: &str = "test-secret-0123456789abcdef";

/// The repository root (for `agents/`).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A temporary folder with a copy of `agents/` in it.
pub fn sandbox() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&root().join("agents"), &dir.path().join("agents"));
    dir
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// What a finished command produced.
#[derive(Debug)]
pub struct Output {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub describe: String,
}

impl Output {
    fn fail(&self, what: &str) -> ! {
        panic!(
            "{what}\n--- command: {}\n--- status: {:?}\n--- stdout:\n{}\n--- stderr:\n{}",
            self.describe, self.status, self.stdout, self.stderr
        )
    }

    /// Asserts the exit code.
    pub fn code(self, code: i32) -> Output {
        if self.status != Some(code) {
            self.fail(&format!("expected exit code {code}"));
        }
        self
    }

    /// Asserts stdout exactly.
    pub fn stdout_is(self, want: &str) -> Output {
        if self.stdout != want {
            self.fail(&format!("stdout differs; expected:\n{want}"));
        }
        self
    }

    /// Asserts stderr exactly.
    pub fn stderr_is(self, want: &str) -> Output {
        if self.stderr != want {
            self.fail(&format!("stderr differs; expected:\n{want}"));
        }
        self
    }

    /// Asserts stdout contains `needle`.
    pub fn stdout_has(self, needle: &str) -> Output {
        if !self.stdout.contains(needle) {
            self.fail(&format!("stdout lacks {needle:?}"));
        }
        self
    }

    /// Asserts stderr contains `needle`.
    pub fn stderr_has(self, needle: &str) -> Output {
        if !self.stderr.contains(needle) {
            self.fail(&format!("stderr lacks {needle:?}"));
        }
        self
    }

    /// Asserts neither output contains `needle`.
    pub fn never_shows(self, needle: &str) -> Output {
        if self.stdout.contains(needle) || self.stderr.contains(needle) {
            self.fail(&format!("output shows {needle:?}"));
        }
        self
    }
}

/// A `swagent` invocation with a clean environment: only PATH, plus what the
/// test sets. The working folder defaults to a fresh temporary one.
#[must_use]
pub struct Swagent {
    cmd: Command,
    describe: String,
    stdin: Option<Vec<u8>>,
    /// The default working folder, so a `.env` in the repository can never
    /// leak into a test; `.dir()` replaces it.
    tmp: Option<tempfile::TempDir>,
}

impl Swagent {
    pub fn new<I, S>(args: I) -> Swagent
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let mut cmd = Command::new(BIN);
        let args: Vec<std::ffi::OsString> =
            args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        cmd.args(&args)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        let describe = format!(
            "swagent {}",
            args.iter()
                .map(|a| a.to_string_lossy())
                .collect::<Vec<_>>()
                .join(" ")
        );
        let tmp = tempfile::tempdir().unwrap();
        cmd.current_dir(tmp.path());
        Swagent {
            cmd,
            describe,
            stdin: None,
            tmp: Some(tmp),
        }
    }

    /// More arguments.
    pub fn args<I, S>(mut self, args: I) -> Swagent
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        for a in args {
            self.describe = format!("{} {}", self.describe, a.as_ref().to_string_lossy());
            self.cmd.arg(a);
        }
        self
    }

    pub fn env(mut self, k: &str, v: &str) -> Swagent {
        self.cmd.env(k, v);
        self
    }

    /// Unsets a variable an earlier step set.
    pub fn env_remove(mut self, k: &str) -> Swagent {
        self.cmd.env_remove(k);
        self
    }

    /// A variable whose value need not be UTF-8.
    pub fn env_os(mut self, k: &str, v: &std::ffi::OsStr) -> Swagent {
        self.cmd.env(k, v);
        self
    }

    /// Runs with this open-file limit (`ulimit -n`), soft and hard.
    pub fn open_files(mut self, n: u64) -> Swagent {
        use std::os::unix::process::CommandExt as _;
        let limit = libc::rlimit {
            rlim_cur: n as libc::rlim_t,
            rlim_max: n as libc::rlim_t,
        };
        // SAFETY: setrlimit is async-signal-safe and touches only the child.
        unsafe {
            self.cmd.pre_exec(move || {
                if libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 {
                    Ok(())
                } else {
                    Err(std::io::Error::last_os_error())
                }
            });
        }
        self.describe = format!("(ulimit -n {n}) {}", self.describe);
        self
    }

    /// The test credentials and secret.
    pub fn creds(self) -> Swagent {
        self.env("SWML_BASIC_AUTH_USER", USER)
            .env("SWML_BASIC_AUTH_PASSWORD", PASSWORD)
            .env("SIGNALWIRE_SWAIG_SECRET", SECRET)
    }

    pub fn dir(mut self, dir: &Path) -> Swagent {
        self.cmd.current_dir(dir);
        self.tmp = None;
        self.describe = format!("(in {}) {}", dir.display(), self.describe);
        self
    }

    pub fn stdin(mut self, data: impl Into<Vec<u8>>) -> Swagent {
        self.stdin = Some(data.into());
        self.cmd.stdin(Stdio::piped());
        self
    }

    /// Runs to completion (bounded: a hung command fails the test).
    pub fn run(mut self) -> Output {
        self.cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = self.cmd.spawn().expect("the binary starts");
        if let Some(data) = self.stdin.take() {
            feed(&mut child, data);
        }
        let out = wait_bounded(child, &self.describe);
        Output {
            status: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            describe: self.describe,
        }
    }

    /// Starts `serve` (the args must include `serve FILE`; `--port 0` is
    /// added) and waits until it prints its address.
    pub fn start(mut self) -> Server {
        self.cmd
            .args(["--port", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.cmd.spawn().expect("the binary starts");
        let (tx, rx) = mpsc::channel::<String>();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let mut readers = Vec::new();
        for stream in [
            Box::new(child.stderr.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stdout.take().unwrap()),
        ] {
            let tx = tx.clone();
            let log = log.clone();
            readers.push(std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    eprintln!("[server] {line}");
                    log.lock().unwrap().push_str(&format!("{line}\n"));
                    let _ = tx.send(line);
                }
            }));
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(i) = line.find(" on http") {
                        let url = line[i + 4..].split_whitespace().next().unwrap().to_owned();
                        return Server {
                            child,
                            url,
                            log,
                            readers,
                            _rx: rx,
                            _tmp: self.tmp.take(),
                        };
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "`{}` did not start:\n{}",
                        self.describe,
                        log.lock().unwrap()
                    );
                }
            }
        }
    }
}

/// A running `swagent serve`, killed on drop.
pub struct Server {
    pub child: Child,
    /// `http://127.0.0.1:PORT` (or https).
    pub url: String,
    log: std::sync::Arc<std::sync::Mutex<String>>,
    /// The threads reading its stdout and stderr; they end at end of file.
    readers: Vec<std::thread::JoinHandle<()>>,
    _rx: mpsc::Receiver<String>,
    _tmp: Option<tempfile::TempDir>,
}

impl Server {
    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// Everything the server printed so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The log once it holds `needle` (or after 10 s without it). A line is
    /// written before its response is sent, but it reaches this process
    /// through a pipe and a reader thread: reading right after the response
    /// can miss the last lines.
    pub fn log_with(&self, needle: &str) -> String {
        eventually(Duration::from_secs(10), || self.log().contains(needle));
        self.log()
    }

    /// Stops the server (SIGTERM, then a clean exit) and returns everything
    /// it printed. For checks that something was never logged: [`Server::log`]
    /// can lag behind the server by what is still in the pipe, and an absent
    /// line proves nothing until the output has ended.
    pub fn stop_and_log(&mut self) -> String {
        self.signal(libc::SIGTERM);
        self.assert_stops_cleanly();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        for reader in std::mem::take(&mut self.readers) {
            // A handler's orphan could hold the pipe open: bounded.
            while !reader.is_finished() {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the server's output did not end within 10 s of its exit"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
            reader.join().unwrap();
        }
        self.log()
    }

    /// Sends a signal to the server.
    pub fn signal(&self, sig: i32) {
        // SAFETY: plain kill of our own child.
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Waits for exit (bounded) and returns the exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            if std::time::Instant::now() > deadline {
                panic!("server did not exit within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits (bounded) for a clean exit after SIGTERM: code 0 and `stopped`
    /// in the output, which in-flight requests had to finish before.
    pub fn assert_stops_cleanly(&mut self) {
        assert_eq!(self.wait_exit(Duration::from_secs(35)), Some(0));
        assert!(
            eventually(Duration::from_secs(5), || self
                .log()
                .contains("swagent: stopped")),
            "{}",
            self.log()
        );
    }

    /// A client request to `path` with the test credentials.
    pub fn post(&self, path: &str) -> reqwest::blocking::RequestBuilder {
        client()
            .post(format!("{}{path}", self.url))
            .basic_auth(USER, Some(PASSWORD))
    }

    /// A GET with the test credentials.
    pub fn get(&self, path: &str) -> reqwest::blocking::RequestBuilder {
        client()
            .get(format!("{}{path}", self.url))
            .basic_auth(USER, Some(PASSWORD))
    }

    /// The SWML document for `call_id` (POST with the call id in the body).
    pub fn swml(&self, call_id: &str) -> serde_json::Value {
        self.post("/")
            .json(&serde_json::json!({ "call_id": call_id }))
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    /// A SWAIG call with a JSON body.
    pub fn swaig(&self, query: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let resp = self
            .post(&format!("/swaig{query}"))
            .json(&body)
            .send()
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().unwrap_or(serde_json::Value::Null))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A blocking client with a bounded timeout.
pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The `__token` of a function's `web_hook_url` in a SWML document.
pub fn token_in(swml: &serde_json::Value, function: &str) -> String {
    // The `ai` verb, wherever the verbs around it put it in `main`.
    let ai = swml["sections"]["main"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|v| v.get("ai"))
        .unwrap();
    let functions = ai["SWAIG"]["functions"].as_array().unwrap();
    let f = functions
        .iter()
        .find(|f| f["function"] == function)
        .unwrap();
    let url = f["web_hook_url"].as_str().unwrap();
    let raw = url.split("__token=").nth(1).unwrap();
    url::form_urlencoded::parse(format!("t={raw}").as_bytes())
        .next()
        .unwrap()
        .1
        .into_owned()
}

/// A Python with `signalwire-sdk`, or `None` with a printed reason.
/// Set `SWAGENT_SDK_PYTHON` to a venv's python; CI (`.ci/run`) does.
pub fn sdk_python(test: &str) -> Option<PathBuf> {
    python_with("signalwire").or_else(|| {
        skipped(&format!(
            "SKIPPED {test}: the SignalWire Python SDK is not installed (run `just sdk-venv` or set SWAGENT_SDK_PYTHON)"
        ));
        None
    })
}

/// A Python with the spec authors' `standardwebhooks` package, or `None`
/// with a printed reason. It lives in the same venv as the SDK.
pub fn webhooks_python(test: &str) -> Option<PathBuf> {
    python_with("standardwebhooks").or_else(|| {
        skipped(&format!(
            "SKIPPED {test}: the `standardwebhooks` Python package is not installed (run `just sdk-venv` or set SWAGENT_SDK_PYTHON)"
        ));
        None
    })
}

/// The first of `SWAGENT_SDK_PYTHON` and `target/sdk-venv` that imports `module`.
fn python_with(module: &str) -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("SWAGENT_SDK_PYTHON").map(PathBuf::from),
        Some(root().join("target/sdk-venv/bin/python")),
    ];
    candidates.into_iter().flatten().find(|p| {
        p.exists()
            && Command::new(p)
                .args(["-c", &format!("import {module}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
    })
}

/// Says plainly that a test (or part of one) is skipped, or fails it under
/// CI, which must provide what it needs. Written to the process's stderr, not
/// through `eprintln!`, which the test harness captures and shows only for
/// failed tests: a skip must be seen in a run that passes.
pub fn skipped(msg: &str) {
    assert!(
        !in_ci(std::env::var("CI").ok().as_deref()),
        "{msg}; CI must provide it"
    );
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "{msg}");
}

/// Whether `CI` says this is CI: `true` or `1`, as CI services set it. An
/// empty `CI` or `CI=false` is a developer's machine, where a missing tool
/// is a skip, not a failure.
fn in_ci(value: Option<&str>) -> bool {
    matches!(value.map(str::trim), Some("true" | "1"))
}

#[test]
fn only_ci_true_or_1_is_ci() {
    for (value, ci) in [
        (None, false),
        (Some(""), false),
        (Some("false"), false),
        (Some("0"), false),
        (Some("true"), true),
        (Some("1"), true),
    ] {
        assert_eq!(in_ci(value), ci, "{value:?}");
    }
}

/// Whether `program` can be run. If not, says plainly that `test` is
/// skipped, and fails under CI, which must install it (`package`).
pub fn installed(test: &str, program: &str, package: &str) -> bool {
    let runs = Command::new(program)
        .arg("-h")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !runs {
        skipped(&format!(
            "SKIPPED {test}: `{program}` is not installed (apt-get install {package})"
        ));
    }
    runs
}

/// A file of the SDK interop fixtures (`tests/fixtures/sdk/`).
pub fn sdk_fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/sdk").join(name)
}

/// The SDK-minted fixture tokens: (call_id, function, token), secret [`SECRET`].
pub fn sdk_fixture_tokens() -> Vec<(String, String, String)> {
    let text = std::fs::read_to_string(sdk_fixture("tokens.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["secret"], SECRET, "the fixtures use the test secret");
    v["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["call_id"].as_str().unwrap().to_owned(),
                t["function"].as_str().unwrap().to_owned(),
                t["token"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

/// Runs a Python (the SDK venv's) with arguments and stdin, bounded in time.
pub fn python(py: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = Command::new(py);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("python starts");
    feed(&mut child, stdin.to_vec());
    let describe = format!("{} {}", py.display(), args.join(" "));
    let out = wait_bounded(child, &describe);
    Output {
        status: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        describe,
    }
}

/// Runs the binary as `nobody` (uid and gid 65534, no other groups) in
/// `dir`, for the tests of what one user's files do to another's commands.
/// Needs root.
pub fn as_nobody(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(BIN)
        .args(args)
        .current_dir(dir)
        .env_clear()
        .output()
        .expect("setpriv runs")
}

/// Writes `data` to the child's stdin from a thread, then closes it: written
/// here, a child that does not read (or fills its stdout first) would block
/// the test before [`wait_bounded`] could bound it. A child that stops
/// reading early (as it may, past a limit) closes the pipe: not a failure.
fn feed(child: &mut Child, data: Vec<u8>) {
    let mut stdin = child.stdin.take().unwrap();
    std::thread::spawn(move || {
        let _ = stdin.write_all(&data);
    });
}

/// Waits for `child` for at most 60 s; a hung child is killed and fails the test.
fn wait_bounded(child: Child, describe: &str) -> std::process::Output {
    let (tx, rx) = mpsc::channel();
    let pid = child.id();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            // SAFETY: plain kill of our own child.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("`{describe}` did not finish within 60 s");
        }
    }
}

/// A temporary folder with `agent.yaml` and executable scripts next to it.
pub fn agent_dir(yaml: &str, scripts: &[(&str, &str)]) -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("agent.yaml"), yaml).unwrap();
    for (name, body) in scripts {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    dir
}

/// Makes a FIFO at `path`.
pub fn mkfifo(path: &Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path this test owns.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

/// Polls `check` until it is true or `within` passes; returns the last result.
pub fn eventually(within: Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + within;
    loop {
        if check() {
            return true;
        }
        if std::time::Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Replaces every `__token=...` query value with `__token=TOKEN`, so
/// documents that differ only in their random nonces compare equal.
pub fn normalize_tokens(doc: &serde_json::Value) -> serde_json::Value {
    let re = regex::Regex::new(r"__token=[^&\x22]*").unwrap();
    let text = re
        .replace_all(&doc.to_string(), "__token=TOKEN")
        .into_owned();
    serde_json::from_str(&text).unwrap()
}

/// Every `__token` in a SWML document, decoded: (where, call_id, function, expiry).
pub fn tokens_in(doc: &serde_json::Value) -> Vec<(String, String, String, u64)> {
    let re = regex::Regex::new(r"__token=([^&\x22]*)").unwrap();
    let text = doc.to_string();
    re.captures_iter(&text)
        .map(|c| {
            let raw = c.get(1).unwrap().as_str();
            let token: String = url::form_urlencoded::parse(format!("t={raw}").as_bytes())
                .next()
                .unwrap()
                .1
                .into_owned();
            let claims = swagent::token::decode(&token).expect("a well-formed token");
            (token, claims.call_id, claims.function, claims.expiry)
        })
        .collect()
}

/// One request an [`Upstream`] received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    /// Path and query, exactly as sent on the request line.
    pub target: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What an [`Upstream`] answers: raw bytes written after a short pause,
/// optionally with a stall after the first `n` bytes (a body that trickles).
pub struct Answer {
    pub delay: Duration,
    pub bytes: Vec<u8>,
    pub stall: Option<(usize, Duration)>,
}

impl Answer {
    /// `HTTP/1.1 {status}` with a body and `Connection: close`.
    pub fn new(status: &str, content_type: &str, body: &str) -> Answer {
        Answer {
            delay: Duration::ZERO,
            stall: None,
            bytes: format!(
                "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .into_bytes(),
        }
    }

    pub fn json(body: &str) -> Answer {
        Answer::new("200 OK", "application/json", body)
    }

    /// The same answer with one more header.
    pub fn header(mut self, name: &str, value: &str) -> Answer {
        let line_end = self.bytes.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
        let line = format!("{name}: {value}\r\n");
        self.bytes.splice(line_end..line_end, line.into_bytes());
        self
    }

    pub fn after(mut self, delay: Duration) -> Answer {
        self.delay = delay;
        self
    }

    /// Sends the head and the body's first byte at once, the rest `pause` later.
    pub fn stalling(mut self, pause: Duration) -> Answer {
        let head = self
            .bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap()
            + 4;
        self.stall = Some((head + 1, pause));
        self
    }
}

type Route = Box<dyn Fn(&Seen) -> Answer + Send + Sync>;

/// A tiny HTTP/1.1 server on a free loopback port, in threads, for handler
/// tests: it records every request and answers through `route`. It stops
/// accepting when dropped (the accept loop polls a flag).
pub struct Upstream {
    pub port: u16,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Upstream {
    pub fn start(route: impl Fn(&Seen) -> Answer + Send + Sync + 'static) -> Upstream {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let route: Arc<Route> = Arc::new(Box::new(route));
        let (seen2, stop2) = (seen.clone(), stop.clone());
        std::thread::spawn(move || {
            // Bounded: stops with the test (flag) or after two minutes at most.
            let deadline = std::time::Instant::now() + Duration::from_secs(120);
            while !stop2.load(Ordering::Relaxed) && std::time::Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (seen, route) = (seen2.clone(), route.clone());
                        std::thread::spawn(move || serve_one(stream, &seen, &route));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Upstream { port, seen, stop }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

fn serve_one(mut stream: std::net::TcpStream, seen: &std::sync::Mutex<Vec<Seen>>, route: &Route) {
    use std::io::Read as _;
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_owned();
    let target = first.next().unwrap_or("").to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < len {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    let req = Seen {
        method,
        target,
        headers,
        body,
    };
    seen.lock().unwrap().push(req.clone());
    let answer = route(&req);
    std::thread::sleep(answer.delay);
    let (first, pause) = answer.stall.unwrap_or((answer.bytes.len(), Duration::ZERO));
    let _ = stream.write_all(&answer.bytes[..first]);
    let _ = stream.flush();
    std::thread::sleep(pause);
    let _ = stream.write_all(&answer.bytes[first..]);
    let _ = stream.flush();
}

/// True while a process exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the `(comm)` field.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// A free loopback port with nothing listening on it (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// The value of the first line of Prometheus text that starts with `line_start`.
pub fn metric(text: &str, line_start: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// The official SWML schema of the installed SignalWire SDK (`schema.json`
/// in its package), or `None` (said plainly; a failure under CI).
pub fn sdk_schema(test: &str) -> Option<serde_json::Value> {
    let py = sdk_python(test)?;
    let script = "import importlib.resources, sys; sys.stdout.write(importlib.resources.files('signalwire').joinpath('schema.json').read_text())";
    let out = python(&py, &["-c", script], b"").code(0);
    Some(serde_json::from_str(&out.stdout).expect("the SDK's schema is JSON"))
}

/// What `swagent swml FILE` prints (FILE under the repository), with the
/// test credentials, a fixed call id and base URL, and the examples' env.
pub fn swml_of(file: &str, call_id: &str) -> String {
    Swagent::new([
        "swml",
        file,
        "--call-id",
        call_id,
        "--base-url",
        "https://agent.example.com",
    ])
    .dir(&root())
    .creds()
    .env("CORE_API_TOKEN", "x")
    .env("SCHEDULING_API_KEY", "y")
    .env("CRM_TOKEN", "z")
    .run()
    .code(0)
    .stdout
}

/// A SWML document checked by the SDK's own validator
/// (`tests/fixtures/sdk/validate_swml.py`).
pub fn sdk_validate(py: &Path, doc: &serde_json::Value) -> Output {
    python(
        py,
        &[sdk_fixture("validate_swml.py").to_str().unwrap()],
        doc.to_string().as_bytes(),
    )
}
