//! `check --production` on the shipped agents, and every command of
//! docs/incident-response.md run against a real server.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::util::{
    eventually, installed, root, sandbox, skipped, token_in, Swagent, PASSWORD, SECRET, USER,
};

/// The production environment `agents/production-bank.yaml` documents.
fn production_env(s: Swagent, dir: &Path) -> Swagent {
    s.creds()
        .env(
            "SWML_BASIC_AUTH_PASSWORD",
            "p-0123456789abcdef0123456789abcdef",
        )
        .env("SWML_PROXY_URL_BASE", "https://bank-agent.example.com")
        .env("SWML_TRUST_PROXY", "true")
        .env(
            "SIGNALWIRE_SWAIG_SECRET",
            "0123456789abcdef0123456789abcdef-secret",
        )
        .env("SIGNALWIRE_SIGNING_KEY", "PSKtest1234")
        .env(
            "SWAGENT_WEBHOOK_SECRET",
            "whsec_c3dhZ2VudCB0ZXN0IHdlYmhvb2sgc2VjcmV0LCBvbmU=",
        )
        .env(
            "SWAGENT_AUDIT_LOG",
            &dir.join("audit.log").display().to_string(),
        )
        .env("CORE_API_TOKEN", "core-token")
        .env(
            "SWAGENT_CONFIRM_STORE",
            &confirm_store(dir).display().to_string(),
        )
}

/// A private folder for used confirmation codes, as the example's header
/// documents.
fn confirm_store(dir: &Path) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let store = dir.join("confirm");
    if !store.exists() {
        std::fs::create_dir(&store).unwrap();
        std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    store
}

/// `check FILE --production` in `dir`, with that environment.
fn check_production(dir: &Path, file: &str) -> Swagent {
    production_env(Swagent::new(["check", file, "--production"]), dir).dir(dir)
}

#[test]
fn check_fails_the_example_bank_without_production_settings() {
    let dir = sandbox();
    let out = Swagent::new(["check", "agents/bank.yaml", "--production"])
        .dir(dir.path())
        .run()
        .code(1);
    for line in [
        "[FAIL] HTTPS: neither `SWML_SSL_ENABLED` (with cert and key) nor an https `SWML_PROXY_URL_BASE`\n",
        "[FAIL] Basic Auth password: `SWML_BASIC_AUTH_PASSWORD` is not set: a password is generated at each start (development only)\n",
        "[FAIL] Functions that change something are confirmed: neither `confirm: true` nor a `reason` for `confirm: false`: get_balance\n",
        "[FAIL] Secure functions have rate limits: no `rate_limit` on: get_balance, transfer\n",
        "[FAIL] Alert rules: no `alerts:` in the agent file\n",
        "[????] Network exposure: verify by hand that only SignalWire (and your proxy) can reach swagent's port\n",
    ] {
        assert!(out.stdout.contains(line), "missing {line:?} in:\n{}", out.stdout);
    }
    assert!(
        out.stdout
            .ends_with("checklist: 11 pass, 9 fail, 6 cannot tell\n"),
        "{}",
        out.stdout
    );
}

#[test]
fn check_fails_a_proxy_whose_headers_are_not_trusted() {
    let dir = sandbox();
    let out = production_env(
        Swagent::new(["check", "agents/production-bank.yaml", "--production"]),
        dir.path(),
    )
    .env_remove("SWML_TRUST_PROXY")
    .dir(dir.path())
    .run()
    .code(1);
    let line = "[FAIL] Client addresses behind the proxy: `SWML_PROXY_URL_BASE` is set but the proxy's headers are not trusted (`--trust-proxy`, `SWML_TRUST_PROXY`): every request counts as from the proxy's address, so one client's failed logins lock out every caller, SignalWire included\n";
    assert!(out.stdout.contains(line), "{}", out.stdout);
    // The SDK's variable, or the flag `serve` is given, passes it.
    production_env(
        Swagent::new(["check", "agents/production-bank.yaml", "--production"]),
        dir.path(),
    )
    .env_remove("SWML_TRUST_PROXY")
    .env("SWML_TRUST_PROXY_HEADERS", "true")
    .dir(dir.path())
    .run()
    .code(0);
}

#[test]
fn check_fails_limits_turned_off_and_an_env_file_its_group_can_change() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = sandbox();
    let env = dir.path().join(".env");
    std::fs::write(&env, "PORT=3000\n").unwrap();
    std::fs::set_permissions(&env, std::fs::Permissions::from_mode(0o660)).unwrap();
    let out = production_env(
        Swagent::new(["check", "agents/production-bank.yaml", "--production"]),
        dir.path(),
    )
    .env("SWML_RATE_LIMIT", "0")
    .env("SWAGENT_AUTH_FAILURE_LIMIT", "0")
    .dir(dir.path())
    .run()
    .code(1);
    for line in [
        "[FAIL] Address and failure limits are on: `SWML_RATE_LIMIT` is 0: no address is limited in its requests; `SWAGENT_AUTH_FAILURE_LIMIT` is 0: failed logins, forged tokens and bad signatures are never locked out\n",
        "[FAIL] `.env` only its owner can change: `.env` has mode 0660: its group can change swagent's settings (`chmod 600 .env`)\n",
    ] {
        assert!(out.stdout.contains(line), "missing {line:?} in:\n{}", out.stdout);
    }
    // The same findings stop `serve --production` (issue 25: one list; the
    // `.env` mode is no longer said by every command that reads the file).
    let refused = production_env(
        Swagent::new(["serve", "agents/production-bank.yaml", "--production"]),
        dir.path(),
    )
    .env("SWML_RATE_LIMIT", "0")
    .env("SWAGENT_AUTH_FAILURE_LIMIT", "0")
    .dir(dir.path())
    .run()
    .code(2);
    for line in [
        "error: `--production` refuses to start: 2 hardening finding(s) fail (`swagent check --production` lists them all):\n",
        "  Address and failure limits are on: `SWML_RATE_LIMIT` is 0: no address is limited in its requests; `SWAGENT_AUTH_FAILURE_LIMIT` is 0: failed logins, forged tokens and bad signatures are never locked out\n",
        "  `.env` only its owner can change: `.env` has mode 0660: its group can change swagent's settings (`chmod 600 .env`)\n",
    ] {
        assert!(refused.stderr.contains(line), "missing {line:?} in:\n{}", refused.stderr);
    }
    assert!(
        !dir.path().join("audit.log").exists(),
        "a refused start opened the audit log"
    );
}

#[test]
fn check_passes_the_hardened_example_with_its_documented_environment() {
    let dir = sandbox();
    let out = production_env(
        Swagent::new([
            "check",
            "agents/production-bank.yaml",
            "--production",
            "--format",
            "json",
        ]),
        dir.path(),
    )
    .dir(dir.path())
    .run()
    .code(0);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["passed"], true);
    let failed: Vec<&serde_json::Value> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "fail")
        .collect();
    assert!(failed.is_empty(), "{failed:?}");
    let cannot: Vec<&str> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["status"] == "cannot_tell")
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        cannot,
        vec![
            "credential_age",
            "firewall",
            "log_collection",
            "security_review"
        ]
    );
}

#[test]
fn check_fails_when_git_tracks_the_env_file() {
    let dir = sandbox();
    std::fs::write(
        dir.path().join(".env"),
        format!("SWML_BASIC_AUTH_PASSWORD={PASSWORD}\n"),
    )
    .unwrap();
    let git = |args: &[&str]| {
        assert!(Command::new("git")
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap()
            .status
            .success());
    };
    git(&["init", "-q"]);
    git(&["add", ".env"]);
    let out = check_production(dir.path(), "agents/production-bank.yaml")
        .run()
        .code(1);
    assert!(out.stdout.contains("[FAIL] `.env` not tracked by git: git tracks `.env`: remove it (`git rm --cached .env`) and rotate every credential in it\n"), "{}", out.stdout);
}

/// A verifier that checks an account but grants the whole call fails the
/// check; the shipped agent binds it and passes.
#[test]
fn check_fails_a_verifier_whose_grant_is_not_bound() {
    let dir = sandbox();
    let file = dir.path().join("agents/production-bank.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let unbound = text
        .replace(
            "verifies_caller: { binds: [account] }",
            "verifies_caller: true",
        )
        .replace(
            "requires_verification: { account: from }",
            "requires_verification: true",
        );
    assert_ne!(unbound, text);
    std::fs::write(dir.path().join("agents/unbound.yaml"), &unbound).unwrap();
    let out = check_production(dir.path(), "agents/unbound.yaml")
        .run()
        .code(1);
    assert!(out.stdout.contains("[FAIL] Verification is bound to what was verified: `verify_pin` checks `account` but its grant holds for the whole call (`verifies_caller: { binds: [account] }`)\n"), "{}", out.stdout);
    // Marking the account `sensitive` as well changes nothing: it is still
    // what the PIN was checked for.
    let hidden = unbound.replace(
        r#"        account: { type: string, pattern: "^[0-9]{6,12}$" }"#,
        r#"        account: { type: string, pattern: "^[0-9]{6,12}$", sensitive: true }"#,
    );
    assert_ne!(hidden, unbound);
    std::fs::write(dir.path().join("agents/hidden.yaml"), hidden).unwrap();
    let out = check_production(dir.path(), "agents/hidden.yaml")
        .run()
        .code(1);
    assert!(out.stdout.contains("[FAIL] Verification is bound to what was verified: `verify_pin` checks `account`, `pin` but its grant holds for the whole call (`verifies_caller: { binds: [account] }`)\n"), "{}", out.stdout);
    // A verifier that declares nothing says nothing of what it checks.
    std::fs::write(
        dir.path().join("agents/undeclared.yaml"),
        "name: undeclared\nprompt: { text: Hi. }\nfunctions:\n  verify:\n    description: Checks.\n    verifies_caller: true\n    parameters: { type: object }\n    shell: { command: [\"/bin/true\"] }\n  balance:\n    description: Balance.\n    requires_verification: true\n    static: { response: ok }\n",
    )
    .unwrap();
    let out = check_production(dir.path(), "agents/undeclared.yaml")
        .run()
        .code(1);
    assert!(out.stdout.contains("[FAIL] Verification is bound to what was verified: `verify` declares no arguments, so nothing says what it checks, and its grant holds for the whole call\n"), "{}", out.stdout);
    let out = check_production(dir.path(), "agents/production-bank.yaml")
        .run()
        .code(0);
    assert!(out.stdout.contains("[pass] Verification is bound to what was verified: each verifier binds what it checks, or takes nothing but its secret\n"), "{}", out.stdout);
}

/// A binding verifier with its lock-out turned off fails the check.
#[test]
fn check_fails_a_verifier_without_a_lockout() {
    let dir = sandbox();
    let text = std::fs::read_to_string(dir.path().join("agents/production-bank.yaml")).unwrap();
    let off = text.replace(
        "verifies_caller: { binds: [account] }",
        "verifies_caller: { binds: [account], max_failures: false }",
    );
    assert_ne!(off, text);
    std::fs::write(dir.path().join("agents/off.yaml"), off).unwrap();
    let out = check_production(dir.path(), "agents/off.yaml")
        .run()
        .code(1);
    assert!(out.stdout.contains("[FAIL] Failed verifications lock the account out: `verify_pin` has `max_failures: false`\n"), "{}", out.stdout);
    let unlimited = text.replace(
        "rate_limit: { per_call: 3/min, global: 60/min }",
        "rate_limit: { per_call: 3/min }",
    );
    assert_ne!(unlimited, text);
    std::fs::write(dir.path().join("agents/unlimited.yaml"), unlimited).unwrap();
    let out = check_production(dir.path(), "agents/unlimited.yaml")
        .run()
        .code(1);
    assert!(out.stdout.contains("[FAIL] Failed verifications lock the account out: `verify_pin` has no `rate_limit.global`, so guesses spread over many accounts have no limit\n"), "{}", out.stdout);
    let out = check_production(dir.path(), "agents/production-bank.yaml")
        .run()
        .code(0);
    assert!(out.stdout.contains("[pass] Failed verifications lock the account out: each verifier that binds an account counts its failures (`max_failures`) and has a global rate limit\n"), "{}", out.stdout);
}

/// Used confirmation codes: a folder anyone can clear fails, a missing one
/// is not a folder, none at all cannot be judged from here.
#[test]
fn check_judges_the_confirmation_store() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = sandbox();
    let store = confirm_store(dir.path());
    let line = |out: &crate::util::Output| {
        out.stdout
            .lines()
            .find(|l| l.contains("Confirmation codes are single use across replicas"))
            .unwrap_or_default()
            .to_owned()
    };
    let out = check_production(dir.path(), "agents/production-bank.yaml")
        .run()
        .code(0);
    assert_eq!(
        line(&out),
        format!(
            "[pass] Confirmation codes are single use across replicas: `{}` records used codes",
            store.display()
        )
    );
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = check_production(dir.path(), "agents/production-bank.yaml")
        .run()
        .code(1);
    assert_eq!(line(&out), format!("[FAIL] Confirmation codes are single use across replicas: `{}` has mode 0777: others on this host can delete or add records of used codes (`chmod go-w` it)", store.display()));
    // The group counts as others.
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o770)).unwrap();
    check_production(dir.path(), "agents/production-bank.yaml")
        .run()
        .code(1);
    // A private folder inside one anyone may write can be swapped.
    let open = dir.path().join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let inner = open.join("inner");
    std::fs::create_dir(&inner).unwrap();
    std::fs::set_permissions(&inner, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = check_production(dir.path(), "agents/production-bank.yaml")
        .env("SWAGENT_CONFIRM_STORE", inner.to_str().unwrap())
        .run()
        .code(1);
    let swappable = |given: &Path, folder: &Path| {
        format!("[FAIL] Confirmation codes are single use across replicas: `{}` is in `{}`, mode 0777: others on this host can swap it for an empty folder, and a used code works again (`chmod go-w` that folder)", given.display(), folder.display())
    };
    assert_eq!(line(&out), swappable(&inner, &open));
    // So can a link to a private folder, when the link sits in such a folder.
    let private = dir.path().join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let link = open.join("link");
    std::os::unix::fs::symlink(&private, &link).unwrap();
    let out = check_production(dir.path(), "agents/production-bank.yaml")
        .env("SWAGENT_CONFIRM_STORE", link.to_str().unwrap())
        .run()
        .code(1);
    assert_eq!(line(&out), swappable(&link, &open));
    // Another user's folder: they can clear it. Only root can make one.
    // SAFETY: geteuid cannot fail and touches no memory.
    if unsafe { libc::geteuid() } == 0 {
        let theirs = dir.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        let out = check_production(dir.path(), "agents/production-bank.yaml")
            .env("SWAGENT_CONFIRM_STORE", theirs.to_str().unwrap())
            .run()
            .code(1);
        assert_eq!(line(&out), format!("[FAIL] Confirmation codes are single use across replicas: `{}` belongs to another user (uid 65534), who can delete the record of a used code, which then works again", theirs.display()));
        // Nor inside another user's folder, which they can rename in.
        std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mine = theirs.join("mine");
        std::fs::create_dir(&mine).unwrap();
        std::fs::set_permissions(&mine, std::fs::Permissions::from_mode(0o700)).unwrap();
        let out = check_production(dir.path(), "agents/production-bank.yaml")
            .env("SWAGENT_CONFIRM_STORE", mine.to_str().unwrap())
            .run()
            .code(1);
        assert_eq!(line(&out), format!("[FAIL] Confirmation codes are single use across replicas: `{}` is in `{}`, which belongs to another user (uid 65534), who can swap it for an empty folder, and a used code works again", mine.display(), theirs.display()));
    } else {
        skipped("SKIPPED the other-owner case of check_judges_the_confirmation_store: only root can give a folder to another user");
    }
    // A sticky folder like /tmp keeps others from deleting, not from
    // filling it, which slows every pruning.
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let out = check_production(dir.path(), "agents/production-bank.yaml")
        .run()
        .code(1);
    assert_eq!(line(&out), format!("[FAIL] Confirmation codes are single use across replicas: `{}` has mode 1777: others on this host can delete or add records of used codes (`chmod go-w` it)", store.display()));
    let out = check_production(dir.path(), "agents/production-bank.yaml")
        .env("SWAGENT_CONFIRM_STORE", "no-such-folder")
        .run()
        .code(1);
    assert_eq!(line(&out), "[FAIL] Confirmation codes are single use across replicas: `no-such-folder` is not a folder: `serve` would refuse to start");
    let out = check_production(dir.path(), "agents/production-bank.yaml")
        .env_remove("SWAGENT_CONFIRM_STORE")
        .run()
        .code(0);
    assert_eq!(line(&out), "[????] Confirmation codes are single use across replicas: no `--confirm-store`: a code is single use within one process; with replicas or restarts inside a code's lifetime, give them one shared folder (`SWAGENT_CONFIRM_STORE`)");
}

/// What the checklist promises holds for what a handler really receives:
/// an unanchored pattern constrains nothing, a shell program gets every
/// declared argument, and a plain-http upstream sees all in clear.
#[test]
fn check_fails_loose_arguments_and_plain_http_upstreams() {
    let dir = sandbox();
    let text = std::fs::read_to_string(dir.path().join("agents/production-bank.yaml")).unwrap();
    let loose = text
        .replace(
            r#"account: { type: string, pattern: "^[0-9]{6,12}$", description: The account number. }"#,
            r#"account: { type: string, pattern: "[0-9]", description: The account number. }
        note: { type: string }"#,
        )
        .replace("url: https://core.example.com/transfers", "url: http://core.example.com/transfers")
        .replace(
            "\nfunctions:\n",
            "\non_call_start: { http: { url: \"http://crm.example.com/c\" } }\non_call_end: { http: { url: \"http://crm.example.com/e\" } }\nfunctions:\n",
        )
        .replace(
            r#"to: { type: string, pattern: "^[0-9]{6,12}$" }"#,
            r#"to: { type: string, pattern: "^.*$" }"#,
        );
    assert_eq!(loose.matches("note: { type: string }").count(), 1);
    std::fs::write(dir.path().join("agents/loose.yaml"), loose).unwrap();
    let out = check_production(dir.path(), "agents/loose.yaml")
        .run()
        .code(1);
    for line in [
        "[FAIL] Arguments used by handlers are constrained: no anchored pattern (`^...$`), enum, format, maxLength or min/max on: `get_balance.account`, `get_balance.note`, `transfer.to`\n",
        "[FAIL] Upstreams are called over HTTPS: plain http (arguments and headers in clear on the network): transfer, on_call_end, on_call_start\n",
    ] {
        assert!(out.stdout.contains(line), "missing {line:?} in:\n{}", out.stdout);
    }
}

/// An audit trail others can append to proves nothing: `check` fails it and
/// `serve` warns, whether the variable names the file or a link to it.
#[test]
fn an_audit_log_others_can_write_fails_the_check_and_warns_at_start() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = sandbox();
    let log = dir.path().join("audit.log");
    std::fs::write(&log, "").unwrap();
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)).unwrap();
    let link = dir.path().join("audit-link.log");
    std::os::unix::fs::symlink(&log, &link).unwrap();
    let check = || {
        check_production(dir.path(), "agents/production-bank.yaml")
            .env("SWAGENT_AUDIT_LOG", &link.display().to_string())
            .run()
    };
    let out = check().code(1);
    let want = format!(
        "[FAIL] Audit log: `{}` has mode 0666: others on this host can add forged lines (`chmod 600` it)\n",
        link.display()
    );
    assert!(out.stdout.contains(&want), "{}", out.stdout);
    let server = Swagent::new(["serve", "agents/bank.yaml", "--audit-log", "audit-link.log"])
        .creds()
        .dir(dir.path())
        .start();
    // In the words of the item above (issue 25: one list).
    let warning = "swagent: WARNING: `audit-link.log` has mode 0666: others on this host can add forged lines (`chmod 600` it)";
    assert!(server.log_with(warning).contains(warning));
    drop(server);
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o640)).unwrap();
    let out = check().code(0);
    assert!(
        out.stdout
            .contains("[pass] Audit log: the audit log is set\n"),
        "{}",
        out.stdout
    );
    // Given as to `serve`, by option: the same verdicts.
    let by_option = |path: &str| {
        check_production(dir.path(), "agents/production-bank.yaml")
            .env("SWAGENT_AUDIT_LOG", "")
            .args(["--audit-log", path])
            .run()
    };
    assert!(by_option("audit-link.log")
        .code(0)
        .stdout
        .contains("[pass] Audit log: the audit log is set\n"));
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert!(by_option("audit-link.log")
        .code(1)
        .stdout
        .contains("[FAIL] Audit log: `audit-link.log` has mode 0666"));
    std::fs::set_permissions(&log, std::fs::Permissions::from_mode(0o640)).unwrap();
    // A folder anyone may write (without the sticky bit) lets anyone
    // replace the file, whatever its own mode.
    let folder = std::fs::canonicalize(dir.path()).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = check().code(1);
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o700)).unwrap();
    let want = format!(
        "[FAIL] Audit log: `{}` is in `{}`, mode 0777: anyone on this host can replace it (`chmod o-w` the folder)\n",
        link.display(),
        folder.display()
    );
    assert!(out.stdout.contains(&want), "{}", out.stdout);
    // So does a log not created yet, or a link, in such a folder.
    let open = folder.join("open");
    std::fs::create_dir(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::os::unix::fs::symlink(&log, open.join("link.log")).unwrap();
    for name in ["missing.log", "link.log"] {
        let path = open.join(name).display().to_string();
        let out = check_production(dir.path(), "agents/production-bank.yaml")
            .env("SWAGENT_AUDIT_LOG", &path)
            .run()
            .code(1);
        let want = format!(
            "[FAIL] Audit log: `{path}` is in `{}`, mode 0777: anyone on this host can replace it (`chmod o-w` the folder)\n",
            open.display()
        );
        assert!(out.stdout.contains(&want), "{}", out.stdout);
    }
    // A log `serve` could not open fails here too, without creating anything.
    let nowhere = dir.path().join("no-such-folder/audit.log");
    let out = check_production(dir.path(), "agents/production-bank.yaml")
        .env("SWAGENT_AUDIT_LOG", &nowhere.display().to_string())
        .run()
        .code(1);
    let want = format!(
        "[FAIL] Audit log: `{}` is in `{}`, which is not a folder\n",
        nowhere.display(),
        dir.path().join("no-such-folder").display()
    );
    assert!(out.stdout.contains(&want), "{}", out.stdout);
    assert!(!dir.path().join("no-such-folder").exists());
    // A link to a log not created yet is fine (`serve` creates it there); a
    // FIFO is not (`serve` refuses it), and `check` does not open it.
    let later = dir.path().join("later.log");
    std::os::unix::fs::symlink("not-yet.log", &later).unwrap();
    let fifo = dir.path().join("fifo.log");
    crate::util::mkfifo(&fifo);
    let verdict = |path: &Path| {
        check_production(dir.path(), "agents/production-bank.yaml")
            .env("SWAGENT_AUDIT_LOG", &path.display().to_string())
            .run()
            .stdout
            .lines()
            .find(|l| l.contains("Audit log"))
            .unwrap()
            .to_owned()
    };
    assert_eq!(verdict(&later), "[pass] Audit log: the audit log is set");
    assert!(!dir.path().join("not-yet.log").exists());
    assert_eq!(
        verdict(&fifo),
        format!("[FAIL] Audit log: `{}` is not a regular file (a FIFO, socket, device or folder): `serve` refuses it", fifo.display())
    );
}

#[test]
fn check_refuses_what_serve_would_refuse() {
    let dir = sandbox();
    for (name, value, said) in [
        ("SWML_PROXY_URL_BASE", "https://", "`SWML_PROXY_URL_BASE` is not a URL: empty host"),
        ("SWML_MAX_REQUEST_SIZE", "0", "`SWML_MAX_REQUEST_SIZE` must be a number of bytes from 4096 (below that, SignalWire's own webhooks are refused), not `0`"),
    ] {
        check_production(dir.path(), "agents/production-bank.yaml")
            .env(name, value)
            .run()
            .code(2)
            .stdout_is("")
            .stderr_is(&format!("error: `serve` would refuse these settings: {said}\n"));
    }
}

/// The `sh` blocks of the plan, one command each.
fn plan_commands() -> Vec<String> {
    let text = std::fs::read_to_string(root().join("docs/incident-response.md")).unwrap();
    let mut out = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.trim() == "```sh" {
            inside = true;
        } else if line.trim() == "```" {
            inside = false;
        } else if inside && !line.trim().is_empty() {
            out.push(line.to_owned());
        }
    }
    out
}

#[test]
fn every_command_of_the_incident_plan_runs() {
    if !installed("every_command_of_the_incident_plan_runs", "jq", "jq") {
        return;
    }
    let dir = sandbox();
    let audit = dir.path().join("audit.log");
    let state = dir.path().join("state.json");
    let password = "p-0123456789abcdef0123456789abcdef";
    let server = production_env(
        Swagent::new([
            "serve",
            "agents/production-bank.yaml",
            "--state-file",
            "state.json",
            "--audit-log",
            "audit.log",
            "--outbox",
            "outbox",
        ]),
        dir.path(),
    )
    // The plan's server is behind a proxy without signatures on loopback;
    // here the signing key is left out so the traffic below needs no signing.
    .env("SIGNALWIRE_SIGNING_KEY", "")
    .env("SWML_PROXY_URL_BASE", "")
    // As deploy/ sets it: the plan's scrapes must name the public host.
    .env("SWML_ALLOWED_HOSTS", "bank-agent.example.com")
    .dir(dir.path())
    .start();

    // Some traffic for the plan to look at: a failed login, a function call.
    let client = crate::util::client();
    let bad = client
        .post(format!("{}/swaig", server.url))
        .header("Host", "bank-agent.example.com")
        .basic_auth(USER, Some("wrong-password-xyz"))
        .send()
        .unwrap();
    assert_eq!(bad.status(), 401);
    let swml: serde_json::Value = client
        .post(format!("{}/", server.url))
        .header("Host", "bank-agent.example.com")
        .basic_auth(USER, Some(password))
        .json(&json!({"call_id": "call-42"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let token = token_in(&swml, "transfer");
    let hours: serde_json::Value = client
        .post(format!("{}/swaig", server.url))
        .header("Host", "bank-agent.example.com")
        .basic_auth(USER, Some(password))
        .json(&json!({"function": "get_hours", "call_id": "call-42"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(hours["response"], "We are open 9 to 5, Monday to Friday.");

    // The service's `.env`, which step 2 rotates.
    std::fs::write(
        dir.path().join(".env"),
        format!("SWML_BASIC_AUTH_PASSWORD={password}\nSIGNALWIRE_SWAIG_SECRET=0123456789abcdef0123456789abcdef-secret\n"),
    )
    .unwrap();
    let bin_dir = Path::new(crate::util::BIN).parent().unwrap().to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let commands = plan_commands();
    assert!(
        commands.len() >= 15,
        "the plan lost its commands: {commands:?}"
    );
    for cmd in commands {
        let cmd = cmd.replace("http://127.0.0.1:3000", &server.url);
        // Bounded: a command that hangs fails the test instead of holding it.
        let out = Command::new("timeout")
            .args(["60", "bash", "-c", &format!("set -euo pipefail\n{cmd}")])
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", &path)
            .env("HOME", dir.path())
            .env("SWAGENT_AUDIT_LOG", &audit)
            .env("SWAGENT_STATE_FILE", &state)
            .env("SWAGENT_OUTBOX", dir.path().join("outbox"))
            .env("SWML_BASIC_AUTH_USER", USER)
            .env("SWML_BASIC_AUTH_PASSWORD", password)
            .env("SWML_PROXY_URL_BASE", "https://bank-agent.example.com")
            .env("SWML_TRUST_PROXY", "true")
            .env(
                "SIGNALWIRE_SWAIG_SECRET",
                "0123456789abcdef0123456789abcdef-secret",
            )
            .env("SIGNALWIRE_SIGNING_KEY", "PSKtest1234")
            .env("CORE_API_TOKEN", "core-token")
            .env("AGENT_HOST", "bank-agent.example.com")
            .env("SWAGENT_PID", server.child.id().to_string())
            .env("CALL_ID", "call-42")
            .env("TOKEN", &token)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "plan command failed: {cmd}\nstatus: {:?}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The plan's steps took effect on the running server (which records
    // them after applying them, so give it the time).
    let events = || std::fs::read_to_string(&audit).unwrap();
    assert!(
        eventually(Duration::from_secs(10), || {
            let events = events();
            events.contains("\"event\":\"kill_switch_changed\"")
                && events.contains("\"event\":\"agent_reloaded\"")
        }),
        "{}",
        events()
    );
    let events = events();
    assert!(!events.contains(SECRET) && !events.contains(password));
}

/// `serve --production` (or `SWAGENT_PRODUCTION=true`) refuses to start on
/// any failing finding, such as secrets it would generate and no replica
/// shares; the documented production environment starts.
#[test]
fn serve_in_production_refuses_generated_secrets_and_starts_when_hardened() {
    let dir = sandbox();
    for production in [
        Swagent::new(["serve", "agents/hello.yaml", "--production"]),
        Swagent::new(["serve", "agents/hello.yaml"]).env("SWAGENT_PRODUCTION", "true"),
    ] {
        let out = production.dir(dir.path()).run().code(2).stdout_is("");
        for line in [
            "  Basic Auth password: `SWML_BASIC_AUTH_PASSWORD` is not set: a password is generated at each start (development only)\n",
            "  Function token secret: no `SIGNALWIRE_SWAIG_SECRET`; a random token secret is used, so tokens stop verifying after a restart and across replicas\n",
        ] {
            assert!(out.stderr.contains(line), "missing {line:?} in:\n{}", out.stderr);
        }
        assert!(!out.stderr.contains("serving agent"), "{}", out.stderr);
    }
    Swagent::new(["serve", "agents/hello.yaml"])
        .env("SWAGENT_PRODUCTION", "maybe")
        .dir(dir.path())
        .run()
        .code(2)
        .stderr_is("error: invalid value 'maybe' for '--production' (from the variable `SWAGENT_PRODUCTION`): value was not a boolean\n\nFor more information, try '--help'.\n");
    let server = production_env(
        Swagent::new(["serve", "agents/production-bank.yaml", "--production"]),
        dir.path(),
    )
    .dir(dir.path())
    .start();
    assert_eq!(server.get("/health").send().unwrap().status().as_u16(), 200);
    assert!(!server.log().contains("WARNING"), "{}", server.log());
}
