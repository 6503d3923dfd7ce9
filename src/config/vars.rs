//! Every variable swagent reads, as data: its name, default, the Python SDK's
//! name for it, and what a bad value gets. `docs/configuration.md` is made
//! from [`VARS`] ([`markdown`]); a test fails when the two differ.

/// `SWML_BASIC_AUTH_USER`, as in the SDK.
pub const USER: &str = "SWML_BASIC_AUTH_USER";
/// `SWML_BASIC_AUTH_PASSWORD`, as in the SDK.
pub const PASSWORD: &str = "SWML_BASIC_AUTH_PASSWORD";
/// The HMAC key of function tokens, as in the SDK.
pub const SECRET: &str = "SIGNALWIRE_SWAIG_SECRET";
/// SignalWire's request-signing key, as in the SDK.
pub const SIGNING_KEY: &str = "SIGNALWIRE_SIGNING_KEY";
/// The Standard Webhooks secrets that sign swagent's outbound requests.
pub const WEBHOOK_SECRET: &str = "SWAGENT_WEBHOOK_SECRET";
pub const PROXY_URL_BASE: &str = "SWML_PROXY_URL_BASE";
/// swagent's name for trusting the proxy's headers (`--trust-proxy`).
pub const TRUST_PROXY: &str = "SWML_TRUST_PROXY";
/// The SDK's name for the same setting.
pub const TRUST_PROXY_HEADERS: &str = "SWML_TRUST_PROXY_HEADERS";
pub const SSL_ENABLED: &str = "SWML_SSL_ENABLED";
pub const SSL_CERT_PATH: &str = "SWML_SSL_CERT_PATH";
pub const SSL_KEY_PATH: &str = "SWML_SSL_KEY_PATH";
pub const DOMAIN: &str = "SWML_DOMAIN";
pub const USE_HSTS: &str = "SWML_USE_HSTS";
pub const HSTS_MAX_AGE: &str = "SWML_HSTS_MAX_AGE";
pub const ALLOWED_HOSTS: &str = "SWML_ALLOWED_HOSTS";
pub const RATE_LIMIT: &str = "SWML_RATE_LIMIT";
pub const MAX_REQUEST_SIZE: &str = "SWML_MAX_REQUEST_SIZE";
pub const PORT: &str = "PORT";
/// Not `HOST`, which shells and platforms set for their own reasons.
pub const HOST: &str = "SWAGENT_HOST";
pub const AUTH_FAILURE_LIMIT: &str = "SWAGENT_AUTH_FAILURE_LIMIT";
/// For tests: the interval of the address and failure limits.
pub const RATE_WINDOW: &str = "SWAGENT_RATE_WINDOW";
pub const BODY_TIMEOUT: &str = "SWAGENT_BODY_TIMEOUT";
pub const MAX_CONNECTIONS: &str = "SWAGENT_MAX_CONNECTIONS";
pub const UNVERIFIED_BODIES: &str = "SWAGENT_UNVERIFIED_BODIES";
pub const AUDIT_LOG: &str = "SWAGENT_AUDIT_LOG";
pub const CONFIRM_STORE: &str = "SWAGENT_CONFIRM_STORE";
pub const OUTBOX: &str = "SWAGENT_OUTBOX";
pub const OUTBOX_MAX: &str = "SWAGENT_OUTBOX_MAX";
pub const STATE_FILE: &str = "SWAGENT_STATE_FILE";
pub const PRODUCTION: &str = "SWAGENT_PRODUCTION";

/// One variable, for the docs.
#[derive(Debug, Clone, Copy)]
pub struct Var {
    pub name: &'static str,
    /// The flag that takes its place on the command line, if any.
    pub flag: Option<&'static str>,
    /// What unset (or empty) means.
    pub default: &'static str,
    /// The SignalWire Python SDK's variable for it, if it has one.
    pub sdk: Option<&'static str>,
    /// Values that stop `serve` at start (exit 2).
    pub refused: &'static str,
    /// Values `serve` starts with but warns about (refused by `--production`).
    pub warned: &'static str,
    pub meaning: &'static str,
}

/// Every variable swagent reads, in the order of the docs.
pub const VARS: &[Var] = &[
    Var {
        name: USER,
        flag: None,
        default: "`signalwire`",
        sdk: Some(USER),
        refused: "one with `:`",
        warned: "",
        meaning: "the Basic Auth user",
    },
    Var {
        name: PASSWORD,
        flag: None,
        default: "a random one, made and printed at each start (development only)",
        sdk: Some(PASSWORD),
        refused: "under 16 characters, unless `--allow-weak-password`",
        warned: "unset, or under 32 characters",
        meaning: "the Basic Auth password",
    },
    Var {
        name: SECRET,
        flag: None,
        default: "a random one at each start: tokens stop verifying after a restart and across replicas",
        sdk: Some(SECRET),
        refused: "",
        warned: "unset, under 32 bytes, or with spaces around it",
        meaning: "the HMAC key of function tokens",
    },
    Var {
        name: SIGNING_KEY,
        flag: None,
        default: "unset: request signatures are not checked",
        sdk: Some(SIGNING_KEY),
        refused: "",
        warned: "unset, or with spaces around it",
        meaning: "SignalWire's signing key: webhooks must be signed with it",
    },
    Var {
        name: WEBHOOK_SECRET,
        flag: None,
        default: "unset: outbound requests are not signed",
        sdk: None,
        refused: "a secret without `whsec_`, not base64 after it, or under 24 bytes",
        warned: "",
        meaning: "`whsec_` secrets, space-separated, that sign every request swagent sends to a backend (Standard Webhooks); each signs, so a new one can go first while the old one still verifies",
    },
    Var {
        name: PROXY_URL_BASE,
        flag: None,
        default: "unset: webhook URLs are built from the request's `Host`",
        sdk: Some(PROXY_URL_BASE),
        refused: "not an http(s) URL with a host; one with credentials, a query, a fragment or spaces",
        warned: "set without `SWML_TRUST_PROXY`",
        meaning: "the public base URL SignalWire calls; webhook URLs and signature checks use it",
    },
    Var {
        name: TRUST_PROXY,
        flag: Some("--trust-proxy"),
        default: "`false`",
        sdk: Some(TRUST_PROXY_HEADERS),
        refused: "not a boolean; one that disagrees with `SWML_TRUST_PROXY_HEADERS`",
        warned: "",
        meaning: "trust the proxy's `X-Forwarded-*` headers for webhook URLs and the client's address",
    },
    Var {
        name: TRUST_PROXY_HEADERS,
        flag: Some("--trust-proxy"),
        default: "`false`",
        sdk: Some(TRUST_PROXY_HEADERS),
        refused: "not a boolean; one that disagrees with `SWML_TRUST_PROXY`",
        warned: "",
        meaning: "the SDK's name for `SWML_TRUST_PROXY`",
    },
    Var {
        name: SSL_ENABLED,
        flag: None,
        default: "`false`",
        sdk: Some(SSL_ENABLED),
        refused: "not a boolean; `true` without both paths",
        warned: "",
        meaning: "serve HTTPS with the two files below (`--tls-cert` and `--tls-key` do the same)",
    },
    Var {
        name: SSL_CERT_PATH,
        flag: Some("--tls-cert"),
        default: "unset",
        sdk: Some(SSL_CERT_PATH),
        refused: "unreadable, or no PEM certificate in it",
        warned: "set while `SWML_SSL_ENABLED` is not true",
        meaning: "the PEM certificate chain, leaf first",
    },
    Var {
        name: SSL_KEY_PATH,
        flag: Some("--tls-key"),
        default: "unset",
        sdk: Some(SSL_KEY_PATH),
        refused: "unreadable, encrypted, or not the certificate's key",
        warned: "set while `SWML_SSL_ENABLED` is not true; a file others can read",
        meaning: "the PEM private key (PKCS#8, RSA or EC)",
    },
    Var {
        name: DOMAIN,
        flag: None,
        default: "unset",
        sdk: Some(DOMAIN),
        refused: "not a host name",
        warned: "",
        meaning: "the host of webhook URLs when swagent serves HTTPS itself",
    },
    Var {
        name: USE_HSTS,
        flag: None,
        default: "`true`",
        sdk: Some(USE_HSTS),
        refused: "not a boolean",
        warned: "",
        meaning: "send `Strict-Transport-Security` when serving HTTPS",
    },
    Var {
        name: HSTS_MAX_AGE,
        flag: None,
        default: "`31536000` (a year)",
        sdk: Some(HSTS_MAX_AGE),
        refused: "not a number of seconds",
        warned: "",
        meaning: "the HSTS `max-age`",
    },
    Var {
        name: ALLOWED_HOSTS,
        flag: None,
        default: "`*`: any `Host`",
        sdk: Some(ALLOWED_HOSTS),
        refused: "an entry with a scheme, port, path, empty label or stray `*`",
        warned: "",
        meaning: "the host names requests may name; others are 403 (the SDK reads it but does not apply it)",
    },
    Var {
        name: RATE_LIMIT,
        flag: None,
        default: "`6000`",
        sdk: Some(RATE_LIMIT),
        refused: "not a number",
        warned: "`0` (off), or under 600",
        meaning: "requests a minute per client, an IPv4 address or IPv6 /64 (the SDK reads it but does not apply it)",
    },
    Var {
        name: MAX_REQUEST_SIZE,
        flag: None,
        default: "`1048576` (1 MiB; the SDK allows 10 MB)",
        sdk: Some(MAX_REQUEST_SIZE),
        refused: "not a number, or under 4096",
        warned: "",
        meaning: "the largest request body, in bytes; larger is 413",
    },
    Var {
        name: PORT,
        flag: Some("--port"),
        default: "`3000`",
        sdk: Some(PORT),
        refused: "not a port number",
        warned: "",
        meaning: "the port to listen on; `0` picks a free one",
    },
    Var {
        name: HOST,
        flag: Some("--host"),
        default: "`127.0.0.1`",
        sdk: None,
        refused: "empty",
        warned: "",
        meaning: "the address to listen on (never read from `HOST`)",
    },
    Var {
        name: AUTH_FAILURE_LIMIT,
        flag: None,
        default: "`10`",
        sdk: None,
        refused: "not a number",
        warned: "`0` (off)",
        meaning: "failed authentications a minute per client before it is locked out for the rest of the minute",
    },
    Var {
        name: RATE_WINDOW,
        flag: None,
        default: "`60s`",
        sdk: None,
        refused: "not a duration above 0",
        warned: "set",
        meaning: "for tests only: the interval of the two limits above",
    },
    Var {
        name: BODY_TIMEOUT,
        flag: None,
        default: "`10s`",
        sdk: None,
        refused: "not a duration above 0, or over 600 s",
        warned: "",
        meaning: "how long a request body may take to arrive once its head has (408 after)",
    },
    Var {
        name: MAX_CONNECTIONS,
        flag: None,
        default: "what the open-file limit leaves, after a reserve for handlers and logs",
        sdk: None,
        refused: "not a number above 0",
        warned: "",
        meaning: "a lower cap on connections at once",
    },
    Var {
        name: UNVERIFIED_BODIES,
        flag: None,
        default: "`16777216` (16 MiB), and at least `SWML_MAX_REQUEST_SIZE`",
        sdk: None,
        refused: "not a number, or under `SWML_MAX_REQUEST_SIZE`",
        warned: "",
        meaning: "bytes that bodies read before their sender is known (signature checks) may hold at once",
    },
    Var {
        name: AUDIT_LOG,
        flag: Some("--audit-log"),
        default: "unset: no audit log",
        sdk: None,
        refused: "a file that cannot be opened for appending, or is not a regular file",
        warned: "unset; a file or folder others can write",
        meaning: "the audit log (JSON lines), or `-` for stdout",
    },
    Var {
        name: CONFIRM_STORE,
        flag: Some("--confirm-store"),
        default: "unset: a confirmation code is single use within one process",
        sdk: None,
        refused: "not a folder",
        warned: "a folder others can write, or inside one",
        meaning: "a folder shared by replicas that records used confirmation codes",
    },
    Var {
        name: OUTBOX,
        flag: Some("--outbox"),
        default: "unset: summaries wait in memory, and a restart loses the undelivered",
        sdk: None,
        refused: "a folder that cannot be made or written",
        warned: "unset, for an agent with `summary`",
        meaning: "the folder where summaries wait, durably, until delivered",
    },
    Var {
        name: OUTBOX_MAX,
        flag: None,
        default: "`10000,1GiB`",
        sdk: None,
        refused: "not a count, a size (`512MiB`) or both, comma-separated; zero",
        warned: "",
        meaning: "the most summaries and bytes the outbox holds; past it, `/post_prompt` answers 503",
    },
    Var {
        name: STATE_FILE,
        flag: Some("--state-file"),
        default: "unset: `swagent disable` cannot reach the server",
        sdk: None,
        refused: "a file whose folder does not exist; an empty file",
        warned: "",
        meaning: "the kill-switch state file `swagent disable` writes and every replica watches",
    },
    Var {
        name: PRODUCTION,
        flag: Some("--production"),
        default: "`false`",
        sdk: None,
        refused: "not a boolean",
        warned: "",
        meaning: "refuse to start while any hardening finding fails (what `check --production` lists)",
    },
];

/// Text for a table cell: `|` would end the cell.
fn cell(text: &str) -> String {
    if text.is_empty() {
        return String::new();
    }
    text.replace('|', "\\|")
}

/// `docs/configuration.md`, made from [`VARS`].
pub fn markdown() -> String {
    let mut out = String::from(
        "# Configuration\n\n\
         <!-- Generated from `src/config/vars.rs` by `UPDATE_DOCS=1 cargo test`; do not edit. -->\n\n\
         Every environment variable swagent reads. Each is read once, when a command starts,\n\
         from the environment or from a `.env` file in the working directory (the real\n\
         environment wins). Empty counts as unset. Booleans are `true`/`false`, `yes`/`no`,\n\
         `on`/`off`, `y`/`n`, `t`/`f` or `1`/`0`, in any case.\n\n\
         ## Contents\n\n\
         - [Variables](#variables)\n\
         - [Refused and warned](#refused-and-warned)\n\
         - [Also read](#also-read)\n\n\
         ## Variables\n\n\
         | variable | flag | default | Python SDK | meaning |\n\
         | --- | --- | --- | --- | --- |\n",
    );
    for v in VARS {
        let sdk = match v.sdk {
            Some(name) if name == v.name => "same".to_owned(),
            Some(name) => format!("`{name}`"),
            None => String::new(),
        };
        let flag = v.flag.map(|f| format!("`{f}`")).unwrap_or_default();
        out.push_str(&format!(
            "| `{}` | {flag} | {} | {sdk} | {} |\n",
            v.name,
            cell(v.default),
            cell(v.meaning)
        ));
    }
    out.push_str(
        "\n## Refused and warned\n\n\
         A refused value stops `serve` at start with exit code 2 and a message naming the\n\
         variable; `check --production` refuses it the same way. A warned value is a\n\
         hardening finding: `serve` says it at start, `check --production` fails its item,\n\
         and `serve --production` refuses to start.\n\n\
         | variable | refused | warned |\n\
         | --- | --- | --- |\n",
    );
    for v in VARS {
        out.push_str(&format!(
            "| `{}` | {} | {} |\n",
            v.name,
            cell(v.refused),
            cell(v.warned)
        ));
    }
    out.push_str(
        "\n## Also read\n\n\
         - `RUST_LOG`: what the server log holds (`info` by default), as env_logger reads it.\n\
         - `HTTPS_PROXY`, `HTTP_PROXY`, `NO_PROXY`: the proxy of `http` handlers' requests.\n\
         - `PATH`, and the variables a `shell` handler's `env` names: passed to its program.\n\
         - `USER`: who `swagent disable` and `enable` record as the author of a change.\n",
    );
    out
}
