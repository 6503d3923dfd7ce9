//! The shipped reverse-proxy configs, `deploy/nginx.conf` and
//! `deploy/Caddyfile`, run for real in front of a real swagent, with only
//! their ports and certificate paths changed. Checked through each: TLS with a
//! verified certificate, the redirect to HTTPS, the body limit, a secure
//! function called with the URL the SWML gave, and the claims the comments
//! make (the caller's `X-Forwarded-For` is replaced, not appended, so the
//! lock-out keys on the real caller; no access log of webhook URLs).
//! Needs nginx and caddy, which `.ci/run` installs.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::blocking::Client;
use serde_json::{json, Value};

use crate::https::{pki_for, Pki};
use crate::perimeter::{agent_dir, serve};
use crate::util::{eventually, installed, root, Server, PASSWORD, USER};

const HOST: &str = "agent.example.com";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The shipped file with each `(from, to)` made. Each `from` must occur
/// exactly once, so a change to the file fails here instead of going untested.
fn patched(file: &str, edits: &[(&str, String)]) -> String {
    let mut text = std::fs::read_to_string(root().join(file)).unwrap();
    for (from, to) in edits {
        assert_eq!(
            text.matches(from).count(),
            1,
            "`{from}` is no longer once in {file}: update this test"
        );
        text = text.replace(from, to);
    }
    text
}

/// swagent started as the configs' comments say, and a lock-out after two
/// failed logins.
fn swagent(dir: &Path) -> Server {
    serve(dir)
        .args(["--host", "127.0.0.1", "--trust-proxy"])
        .env("SWML_PROXY_URL_BASE", &format!("https://{HOST}"))
        .env("SWML_ALLOWED_HOSTS", HOST)
        .env("SWAGENT_AUTH_FAILURE_LIMIT", "2")
        .start()
}

fn upstream_port(server: &Server) -> u16 {
    server.url.rsplit(':').next().unwrap().parse().unwrap()
}

/// A running proxy, killed on drop.
struct Proxy {
    child: Child,
    http: u16,
    https: u16,
    pki: Pki,
    dir: tempfile::TempDir,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a proxy built by `attempt` from two free ports, until one runs:
/// the ports are free when picked but only bound once the config has been
/// checked, and another test may take one in between.
fn start_proxy(
    name: &str,
    attempt: impl Fn(u16, u16) -> (Command, Pki, tempfile::TempDir),
) -> Proxy {
    let mut why = String::new();
    for _ in 0..3 {
        let (http, https) = (free_port(), free_port());
        let (cmd, pki, dir) = attempt(http, https);
        match Proxy::start(cmd, http, https, pki, dir) {
            Ok(proxy) => return proxy,
            Err(e) => why = e,
        }
    }
    panic!("{name} did not start in 3 attempts; the last: {why}");
}

impl Proxy {
    /// Runs `cmd` and waits until `/health` answers through it; the reason
    /// (and the proxy's error log) if it exits first or never answers.
    fn start(
        mut cmd: Command,
        http: u16,
        https: u16,
        pki: Pki,
        dir: tempfile::TempDir,
    ) -> Result<Proxy, String> {
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut proxy = Proxy {
            child,
            http,
            https,
            pki,
            dir,
        };
        proxy.wait_ready().map(|()| proxy)
    }

    /// A client that trusts only the test CA and finds `HOST` on loopback.
    fn client(&self) -> Client {
        Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(
                reqwest::Certificate::from_pem(self.pki.ca_pem.as_bytes()).unwrap(),
            )
            .resolve(HOST, SocketAddr::from(([127, 0, 0, 1], self.https)))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let client = self.client();
        let mut exited = None;
        let up = eventually(Duration::from_secs(20), || {
            exited = self.child.try_wait().unwrap();
            exited.is_some()
                || client
                    .get(format!("https://{HOST}/health"))
                    .send()
                    .is_ok_and(|r| r.status() == 200)
        });
        let log = std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default();
        match (up, exited) {
            (true, None) => Ok(()),
            (_, Some(status)) => Err(format!("the proxy exited ({status}); error.log:\n{log}")),
            (false, None) => Err(format!("the proxy never answered; error.log:\n{log}")),
        }
    }

    /// (status, `Location`) of a plain-HTTP request to the proxy.
    fn plain_http(&self, path: &str) -> (u16, String) {
        let resp = self
            .client()
            .get(format!("http://127.0.0.1:{}{path}", self.http))
            .header("Host", HOST)
            .send()
            .unwrap();
        let location = resp
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (resp.status().as_u16(), location)
    }
}

/// Checks a config passes `nginx -t` as shipped (but for ports and files),
/// then runs it.
fn nginx(upstream: u16) -> Proxy {
    start_proxy("nginx", |http, https| nginx_attempt(upstream, http, https))
}

fn nginx_attempt(upstream: u16, http: u16, https: u16) -> (Command, Pki, tempfile::TempDir) {
    let pki = pki_for(&[HOST]);
    let dir = tempfile::tempdir().unwrap();
    let site = patched(
        "deploy/nginx.conf",
        &[
            ("listen 80;", format!("listen 127.0.0.1:{http};")),
            ("listen [::]:80;", String::new()),
            ("listen 443 ssl;", format!("listen 127.0.0.1:{https} ssl;")),
            ("listen [::]:443 ssl;", String::new()),
            (
                "/etc/letsencrypt/live/agent.example.com/fullchain.pem",
                pki.path("chain.pem").display().to_string(),
            ),
            (
                "/etc/letsencrypt/live/agent.example.com/privkey.pem",
                pki.path("leaf.key").display().to_string(),
            ),
            (
                "proxy_pass http://127.0.0.1:3000;",
                format!("proxy_pass http://127.0.0.1:{upstream};"),
            ),
        ],
    );
    let d = dir.path().display();
    // The parts of nginx.conf a distribution provides around a site file.
    let conf = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
         events {{ worker_connections 64; }}\n\
         http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  \
         proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  \
         uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n{site}\n}}\n"
    );
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let args = |cmd: &mut Command| {
        cmd.arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&path)
            .arg("-e")
            .arg(dir.path().join("error.log"));
    };
    let mut test = Command::new("nginx");
    args(&mut test);
    let out = test.arg("-t").output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "nginx -t:\n{said}");
    assert!(said.contains("syntax is ok"), "{said}");
    let mut run = Command::new("nginx");
    args(&mut run);
    (run, pki, dir)
}

/// Checks the Caddyfile with `caddy validate`, then runs it. The global
/// options and `tls` line stand in for the ACME certificate a real
/// deployment gets (and keep Caddy off the network).
fn caddy(upstream: u16) -> Proxy {
    start_proxy("caddy", |http, https| caddy_attempt(upstream, http, https))
}

fn caddy_attempt(upstream: u16, http: u16, https: u16) -> (Command, Pki, tempfile::TempDir) {
    let pki = pki_for(&[HOST]);
    let dir = tempfile::tempdir().unwrap();
    let site = patched(
        "deploy/Caddyfile",
        &[
            (
                "agent.example.com {",
                format!(
                    "agent.example.com {{\n\tbind 127.0.0.1\n\ttls {} {}",
                    pki.path("chain.pem").display(),
                    pki.path("leaf.key").display()
                ),
            ),
            (
                "reverse_proxy 127.0.0.1:3000 {",
                format!("reverse_proxy 127.0.0.1:{upstream} {{"),
            ),
        ],
    );
    let conf = format!(
        "{{\n\tadmin off\n\thttp_port {http}\n\thttps_port {https}\n\tskip_install_trust\n}}\n\n{site}"
    );
    let path = dir.path().join("Caddyfile");
    std::fs::write(&path, conf).unwrap();
    let caddy = |sub: &str| {
        let mut cmd = Command::new("caddy");
        cmd.args([sub, "--adapter", "caddyfile", "--config"])
            .arg(&path)
            .env("HOME", dir.path())
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .env("XDG_CONFIG_HOME", dir.path().join("config"));
        cmd
    };
    let out = caddy("validate").output().unwrap();
    assert!(
        out.status.success(),
        "caddy validate:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (caddy("run"), pki, dir)
}

/// What both configs must do, through the proxy. `too_large` is a body
/// size one byte over the proxy's limit, and the proxy's answer to it.
fn exercise(proxy: &Proxy, server: &Server, too_large: (usize, u16)) {
    let client = proxy.client();
    let url = |path: &str| format!("https://{HOST}{path}");
    let resp = client.get(url("/health")).send().unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().unwrap(), r#"{"status":"ok"}"#);

    // The SWML names the proxy's URL; the secure function's URL from it,
    // called as the platform would (credentials in the URL), runs it.
    let resp = client
        .post(url("/"))
        .basic_auth(USER, Some(PASSWORD))
        .json(&json!({"call_id": "call-1"}))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    let swml: Value = resp.json().unwrap();
    let functions = swml["sections"]["main"][1]["ai"]["SWAIG"]["functions"]
        .as_array()
        .unwrap();
    let hook = functions
        .iter()
        .find(|f| f["function"] == "secret")
        .unwrap()["web_hook_url"]
        .as_str()
        .unwrap()
        .to_owned();
    let prefix = format!("https://{USER}:{PASSWORD}@{HOST}/swaig/?__token=");
    assert!(hook.starts_with(&prefix), "{hook}");
    let resp = client
        .post(&hook)
        .json(&json!({"function": "secret", "call_id": "call-1"}))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().unwrap(), r#"{"response":"ok"}"#);

    // One byte over the proxy's limit is refused by the proxy.
    let resp = client
        .post(url("/swaig"))
        .basic_auth(USER, Some(PASSWORD))
        .header("Content-Type", "application/json")
        .body(vec![b' '; too_large.0])
        .send()
        .unwrap();
    assert_eq!(resp.status(), too_large.1);

    // A caller cannot pick the address the lock-out counts against: each
    // failure claims another `X-Forwarded-For`, yet the third failure (the
    // limit is 2) locks the caller out, right password or not. Had the proxy
    // appended to the header, swagent (trusting the first hop) would have
    // seen four callers and answered 401, 401, 401, 200.
    let attempt = |password: &str, spoof: &str| {
        let resp = client
            .get(url("/"))
            .basic_auth(USER, Some(password))
            .header("X-Forwarded-For", spoof)
            .send()
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().unwrap()["error"].clone())
    };
    let wrong = "wrong-password-123456";
    let unauthorized = (401, json!("unauthorized"));
    let locked = (429, json!("too_many_failures"));
    assert_eq!(attempt(wrong, "203.0.113.1"), unauthorized);
    assert_eq!(attempt(wrong, "203.0.113.2"), unauthorized);
    assert_eq!(attempt(wrong, "203.0.113.3"), locked);
    assert_eq!(attempt(PASSWORD, "203.0.113.4"), locked);
    let log = server.log_with("from 127.0.0.1 ");
    assert!(log.contains("from 127.0.0.1 "), "{log}");
    assert!(!log.contains("203.0.113."), "{log}");
}

#[test]
fn the_shipped_nginx_config_fronts_swagent() {
    if !installed("the_shipped_nginx_config_fronts_swagent", "nginx", "nginx") {
        return;
    }
    let dir = agent_dir();
    let server = swagent(dir.path());
    let proxy = nginx(upstream_port(&server));
    assert_eq!(
        proxy.plain_http("/some/path?x=1"),
        (301, format!("https://{HOST}/some/path?x=1"))
    );
    // `client_max_body_size 1m` is 1 MiB, refused on its Content-Length.
    exercise(&proxy, &server, ((1 << 20) + 1, 413));
    // The HTTPS server logs nothing (webhook URLs carry credentials and
    // tokens); the redirect server's line shows logging itself worked.
    let log = std::fs::read_to_string(proxy.dir.path().join("access.log")).unwrap();
    assert!(log.contains("GET /some/path?x=1 "), "{log}");
    assert_eq!(log.lines().count(), 1, "{log}");
}

#[test]
fn the_shipped_caddyfile_fronts_swagent() {
    if !installed("the_shipped_caddyfile_fronts_swagent", "caddy", "caddy") {
        return;
    }
    let dir = agent_dir();
    let server = swagent(dir.path());
    let proxy = caddy(upstream_port(&server));
    assert_eq!(
        proxy.plain_http("/some/path?x=1"),
        (308, format!("https://{HOST}/some/path?x=1"))
    );
    // `max_size 1MB` is 10^6 bytes, under swagent's own 1 MiB, so only Caddy
    // can refuse 10^6 + 1. Caddy before 2.7 answers 502, not 413, as it
    // notices while streaming the body (caddyserver/caddy#5652).
    let version = Command::new("caddy")
        .arg("version")
        .output()
        .unwrap()
        .stdout;
    let version = String::from_utf8_lossy(&version);
    let minor: u32 = version
        .trim_start_matches('v')
        .strip_prefix("2.")
        .and_then(|rest| rest.split('.').next())
        .and_then(|m| m.parse().ok())
        .unwrap_or_else(|| panic!("`caddy version` said {version:?}"));
    exercise(
        &proxy,
        &server,
        (1_000_001, if minor < 7 { 502 } else { 413 }),
    );
}
