//! Operator tools: `gen-creds`, `verify-token`, `token mint`, `swml`, `call`,
//! `completions`, and `--help`.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;

use serde_json::{json, Value};
use swagent::token::{mint_with_nonce, Secret};

use crate::util::{
    agent_dir, normalize_tokens, python, root, sandbox, sdk_fixture, sdk_fixture_tokens,
    sdk_python, skipped, tokens_in, Answer, Swagent, Upstream, SECRET,
};

const FAR: u64 = 4_070_908_800;
const NONCE: &str = "0011223344556677";
/// `call-123` / `get_balance` / 2099, nonce 0011223344556677, secret SECRET.
const DETERMINISTIC: &str = "Y2FsbC0xMjMuZ2V0X2JhbGFuY2UuNDA3MDkwODgwMC4wMDExMjIzMzQ0NTU2Njc3LmI1N2NiZWUxYzY0ODgwOTZlYzE0MjM5MTI5NWNmZWY4YjRhZTM2MzBhMzgzZjUzMWJhZDlhYjhkZTE3MWNmYjQ=";

fn is_url_safe(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn is_lower_hex(s: &str) -> bool {
    s.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f'))
}

/// `whsec_` and the padded base64 of 32 bytes, as the spec serializes a secret.
fn is_webhook_secret(s: &str) -> bool {
    regex::Regex::new(r"\Awhsec_[A-Za-z0-9+/]{43}=\z")
        .unwrap()
        .is_match(s)
}

/// The variables `gen-creds` sets, in its order.
const KEYS: [&str; 4] = [
    "SWML_BASIC_AUTH_USER",
    "SWML_BASIC_AUTH_PASSWORD",
    "SIGNALWIRE_SWAIG_SECRET",
    "SWAGENT_WEBHOOK_SECRET",
];

/// `KEY=value` lines of a `.env` text, in order.
fn env_pairs(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

#[test]
fn gen_creds_prints_distinct_strong_values() {
    let dir = tempfile::tempdir().unwrap();
    let mut passwords = Vec::new();
    let mut secrets = Vec::new();
    let mut webhook_secrets = Vec::new();
    for _ in 0..5 {
        let out = Swagent::new(["gen-creds"]).dir(dir.path()).run().code(0);
        let pairs = env_pairs(&out.stdout);
        let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, KEYS);
        assert_eq!(out.stdout.lines().count(), 4);
        assert_eq!(pairs[0].1, "signalwire");
        let (password, secret) = (pairs[1].1.clone(), pairs[2].1.clone());
        assert_eq!(password.len(), 48, "{password}");
        assert!(is_url_safe(&password), "{password}");
        assert_eq!(secret.len(), 64, "{secret}");
        assert!(is_lower_hex(&secret), "{secret}");
        assert!(is_webhook_secret(&pairs[3].1), "{}", pairs[3].1);
        passwords.push(password);
        secrets.push(secret);
        webhook_secrets.push(pairs[3].1.clone());
    }
    for list in [&mut passwords, &mut secrets, &mut webhook_secrets] {
        list.sort();
        list.dedup();
        assert_eq!(list.len(), 5, "values repeat across runs");
    }
    // Not degenerate: a 48-character password uses many distinct characters.
    let distinct: std::collections::HashSet<char> = passwords[0].chars().collect();
    assert!(distinct.len() > 16, "{}", passwords[0]);
}

#[test]
fn gen_creds_length_user_and_formats() {
    let dir = tempfile::tempdir().unwrap();
    for n in ["32", "100"] {
        let out = Swagent::new(["gen-creds", "--length", n])
            .dir(dir.path())
            .run()
            .code(0);
        let pw = &env_pairs(&out.stdout)[1].1;
        assert_eq!(pw.len().to_string(), n);
        assert!(is_url_safe(pw));
    }
    Swagent::new(["gen-creds", "--length", "31"])
        .dir(dir.path())
        .run()
        .code(2)
        .stdout_is("")
        .stderr_is("error: `--length` must be from 32 to 1024, not 31\n");
    let env = regex::Regex::new(
        r"\ASWML_BASIC_AUTH_USER=ops\nSWML_BASIC_AUTH_PASSWORD=[A-Za-z0-9_-]{48}\nSIGNALWIRE_SWAIG_SECRET=[0-9a-f]{64}\nSWAGENT_WEBHOOK_SECRET=whsec_[A-Za-z0-9+/]{43}=\n\z",
    )
    .unwrap();
    let out = Swagent::new(["gen-creds", "--user", "ops", "--format", "env"])
        .dir(dir.path())
        .run()
        .code(0);
    assert!(env.is_match(&out.stdout), "{}", out.stdout);
    let shell = regex::Regex::new(
        r"\Aexport SWML_BASIC_AUTH_USER='ops'\nexport SWML_BASIC_AUTH_PASSWORD='[A-Za-z0-9_-]{48}'\nexport SIGNALWIRE_SWAIG_SECRET='[0-9a-f]{64}'\nexport SWAGENT_WEBHOOK_SECRET='whsec_[A-Za-z0-9+/]{43}='\n\z",
    )
    .unwrap();
    let out = Swagent::new(["gen-creds", "--user", "ops", "--format", "shell"])
        .dir(dir.path())
        .run()
        .code(0);
    assert!(shell.is_match(&out.stdout), "{}", out.stdout);
    let out = Swagent::new(["gen-creds", "--user", "ops", "--format", "json"])
        .dir(dir.path())
        .run()
        .code(0);
    assert_eq!(out.stdout.lines().count(), 1);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    let obj = v.as_object().unwrap();
    let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    assert_eq!(keys, KEYS);
    assert_eq!(obj["SWML_BASIC_AUTH_USER"], "ops");
    let pw = obj["SWML_BASIC_AUTH_PASSWORD"].as_str().unwrap();
    assert!(pw.len() == 48 && is_url_safe(pw));
    let secret = obj["SIGNALWIRE_SWAIG_SECRET"].as_str().unwrap();
    assert!(secret.len() == 64 && is_lower_hex(secret));
    assert!(is_webhook_secret(
        obj["SWAGENT_WEBHOOK_SECRET"].as_str().unwrap()
    ));
    // A user that could break a `user:pass@` URL or a `.env` line is refused.
    Swagent::new(["gen-creds", "--user", "a:b"])
        .dir(dir.path())
        .run()
        .code(2)
        .stderr_is("error: `--user` must be letters, digits or `_.-@`\n");
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

const WROTE_ALL: &str = "wrote SWML_BASIC_AUTH_USER, SWML_BASIC_AUTH_PASSWORD, SIGNALWIRE_SWAIG_SECRET, SWAGENT_WEBHOOK_SECRET to .env\n";

#[test]
fn gen_creds_write_creates_0600_and_never_overwrites_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join(".env");
    Swagent::new(["gen-creds", "--write", ".env"])
        .dir(dir.path())
        .run()
        .code(0)
        .stdout_is(WROTE_ALL);
    assert_eq!(mode(&env), 0o600);
    let first = std::fs::read_to_string(&env).unwrap();
    let keys: Vec<String> = env_pairs(&first).into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, KEYS);
    // Again without --force: refused, file unchanged, nothing printed on stdout.
    Swagent::new(["gen-creds", "--write", ".env"])
        .dir(dir.path())
        .run()
        .code(2)
        .stdout_is("")
        .stderr_is("error: `.env` already sets `SWML_BASIC_AUTH_USER`; pass `--force` to replace it (or `--rotate` to replace the password and secret)\n")
        .never_shows(&env_pairs(&first)[1].1);
    assert_eq!(std::fs::read_to_string(&env).unwrap(), first);
    // No temporary file is left behind either.
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, [".env"]);
}

#[test]
fn gen_creds_write_merges_and_force_replaces_only_its_lines() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join(".env");
    std::fs::write(
        &env,
        "# my settings\nPORT=8080\n\n# keep me\nexport HOST=0.0.0.0\n",
    )
    .unwrap();
    std::fs::set_permissions(&env, std::fs::Permissions::from_mode(0o644)).unwrap();
    // Missing keys are added; everything else stays, in place.
    Swagent::new(["gen-creds", "--write", ".env"])
        .dir(dir.path())
        .run()
        .code(0)
        .stdout_is(WROTE_ALL);
    let text = std::fs::read_to_string(&env).unwrap();
    assert!(
        text.starts_with("# my settings\nPORT=8080\n\n# keep me\nexport HOST=0.0.0.0\nSWML_BASIC_AUTH_USER=signalwire\n"),
        "{text}"
    );
    assert_eq!(mode(&env), 0o600, "credentials make the file private");
    // --force replaces exactly its lines, where they are, and adds the missing one.
    std::fs::write(
        &env,
        "# head\nSWML_BASIC_AUTH_USER=old-user\nPORT=8080\n# middle\nSWML_BASIC_AUTH_PASSWORD=old-password-0123456789\nSIGNALWIRE_SWAIG_SECRET=old\n# tail\n",
    )
    .unwrap();
    Swagent::new([
        "gen-creds",
        "--write",
        ".env",
        "--force",
        "--user",
        "new-user",
    ])
    .dir(dir.path())
    .run()
    .code(0)
    .stdout_is(WROTE_ALL);
    let text = std::fs::read_to_string(&env).unwrap();
    let re = regex::Regex::new(
        r"\A# head\nSWML_BASIC_AUTH_USER=new-user\nPORT=8080\n# middle\nSWML_BASIC_AUTH_PASSWORD=[A-Za-z0-9_-]{48}\nSIGNALWIRE_SWAIG_SECRET=[0-9a-f]{64}\n# tail\nSWAGENT_WEBHOOK_SECRET=whsec_[A-Za-z0-9+/]{43}=\n\z",
    )
    .unwrap();
    assert!(re.is_match(&text), "{text}");
}

const ROTATED: &str =
    "wrote SWML_BASIC_AUTH_PASSWORD, SIGNALWIRE_SWAIG_SECRET, SWAGENT_WEBHOOK_SECRET to .env\n";

#[test]
fn gen_creds_rotate_keeps_the_user_and_replaces_password_and_secret() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join(".env");
    std::fs::write(
        &env,
        "SWML_BASIC_AUTH_USER=ops\n# why\nSWML_BASIC_AUTH_PASSWORD=old-password-0123456789\nSIGNALWIRE_SWAIG_SECRET=oldsecret\n",
    )
    .unwrap();
    Swagent::new(["gen-creds", "--write", ".env", "--rotate"])
        .dir(dir.path())
        .run()
        .code(0)
        .stdout_is(ROTATED)
        .stderr_is("note: every token handed out with the old `SIGNALWIRE_SWAIG_SECRET` stops verifying; restart every replica with the new values\n");
    let text = std::fs::read_to_string(&env).unwrap();
    let re = regex::Regex::new(
        r"\ASWML_BASIC_AUTH_USER=ops\n# why\nSWML_BASIC_AUTH_PASSWORD=[A-Za-z0-9_-]{48}\nSIGNALWIRE_SWAIG_SECRET=[0-9a-f]{64}\nSWAGENT_WEBHOOK_SECRET=whsec_[A-Za-z0-9+/]{43}=\n\z",
    )
    .unwrap();
    assert!(re.is_match(&text), "{text}");
    // A password set in the real environment wins over the rotated file.
    Swagent::new(["gen-creds", "--write", ".env", "--rotate"])
        .dir(dir.path())
        .env("SWML_BASIC_AUTH_PASSWORD", "exported-password-0123456789")
        .run()
        .code(0)
        .stderr_is("note: every token handed out with the old `SIGNALWIRE_SWAIG_SECRET` stops verifying; restart every replica with the new values\nnote: `SWAGENT_WEBHOOK_SECRET` lists the new secret first and keeps the old ones, so every one signs; once each backend verifies with the new one, remove the old and restart\nwarning: `SWML_BASIC_AUTH_PASSWORD` is also set in this shell's environment, which wins over `.env`: rotate it where it is set too\n");
    // --rotate and --force need --write.
    Swagent::new(["gen-creds", "--rotate"])
        .dir(dir.path())
        .run()
        .code(2)
        .stderr_has("--write");
    // Flags that would be dropped without a word are refused, file untouched.
    let before = std::fs::read_to_string(&env).unwrap();
    for (flags, said) in [
        (
            &["--rotate", "--force"][..],
            "error: the argument '--rotate' cannot be used with '--force'\n",
        ),
        (
            &["--rotate", "--user", "bob"][..],
            "error: the argument '--rotate' cannot be used with '--user <USER>'\n",
        ),
        (
            &["--format", "json"][..],
            "error: `--write` writes `NAME=value` lines; `--format` is for printing\n",
        ),
    ] {
        Swagent::new(["gen-creds", "--write", ".env"])
            .args(flags)
            .dir(dir.path())
            .run()
            .code(2)
            .stdout_is("")
            .stderr_has(said);
    }
    assert_eq!(std::fs::read_to_string(&env).unwrap(), before);
    // `export` and a tab sets the key, as the shell and the server read it.
    std::fs::write(
        &env,
        "SWML_BASIC_AUTH_USER=ops\nexport\tSWML_BASIC_AUTH_PASSWORD=old-password-0123456789\nSIGNALWIRE_SWAIG_SECRET=oldsecret\n",
    )
    .unwrap();
    Swagent::new(["gen-creds", "--write", ".env", "--rotate"])
        .dir(dir.path())
        .run()
        .code(0)
        .stdout_is(ROTATED);
    assert!(!std::fs::read_to_string(&env)
        .unwrap()
        .contains("old-password"));
    // A byte-order mark (a Windows editor) does not hide the first key: it
    // is rotated in place, not added twice, and the mark is not kept.
    std::fs::write(
        &env,
        "\u{feff}SWML_BASIC_AUTH_PASSWORD=old-password-0123456789\nSIGNALWIRE_SWAIG_SECRET=oldsecret\n",
    )
    .unwrap();
    Swagent::new(["gen-creds", "--write", ".env", "--rotate"])
        .dir(dir.path())
        .run()
        .code(0);
    let text = std::fs::read_to_string(&env).unwrap();
    assert!(!text.starts_with('\u{feff}'), "{text:?}");
    assert_eq!(
        text.matches("SWML_BASIC_AUTH_PASSWORD=").count(),
        1,
        "{text}"
    );
    assert!(!text.contains("old-password"), "{text}");
}

#[test]
fn gen_creds_rotate_puts_a_new_webhook_secret_before_the_old() {
    const OLD: &str = "whsec_c3dhZ2VudCB0ZXN0IHdlYmhvb2sgc2VjcmV0LCBvbmU=";
    let up = Upstream::start(|_| Answer::json(r#"{"response": "ok"}"#));
    let dir = agent_dir(
        &format!(
            "name: x\nprompt: {{ text: Hi. }}\nfunctions:\n  look:\n    description: Looks.\n    secure: false\n    http: {{ url: \"{}/look\" }}\n",
            up.url()
        ),
        &[],
    );
    let env = dir.path().join(".env");
    std::fs::write(
        &env,
        format!("SIGNALWIRE_SWAIG_SECRET=oldsecret\nexport SWAGENT_WEBHOOK_SECRET='{OLD}' # since May\n"),
    )
    .unwrap();
    Swagent::new(["gen-creds", "--write", ".env", "--rotate"])
        .dir(dir.path())
        .run()
        .code(0)
        .stderr_has("note: `SWAGENT_WEBHOOK_SECRET` lists the new secret first and keeps the old ones, so every one signs; once each backend verifies with the new one, remove the old and restart\n");
    let text = std::fs::read_to_string(&env).unwrap();
    let line = regex::Regex::new(&format!(
        "(?m)^SWAGENT_WEBHOOK_SECRET=\"(whsec_[A-Za-z0-9+/]{{43}}=) {}\"$",
        regex::escape(OLD)
    ))
    .unwrap();
    let new = line.captures(&text).unwrap_or_else(|| panic!("{text}"))[1].to_owned();
    // swagent reads the quoted pair back, and both secrets sign.
    Swagent::new(["call", "agent.yaml", "look"])
        .dir(dir.path())
        .run()
        .code(0);
    let signature = up.seen()[0].header("webhook-signature").unwrap().to_owned();
    assert_eq!(signature.split(' ').count(), 2, "{signature}");
    // Rotated again before the old one was removed: nothing that verified stops.
    Swagent::new(["gen-creds", "--write", ".env", "--rotate"])
        .dir(dir.path())
        .run()
        .code(0);
    let text = std::fs::read_to_string(&env).unwrap();
    let line = regex::Regex::new(&format!(
        "(?m)^SWAGENT_WEBHOOK_SECRET=\"whsec_[A-Za-z0-9+/]{{43}}= {} {}\"$",
        regex::escape(&new),
        regex::escape(OLD)
    ))
    .unwrap();
    assert!(line.is_match(&text), "{text}");
}

#[test]
fn gen_creds_as_root_leaves_another_users_file_to_that_user() {
    use std::os::unix::fs::MetadataExt as _;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        skipped("SKIPPED gen_creds_as_root_leaves_another_users_file_to_that_user: giving `.env` to another user needs root");
        return;
    }
    // The service's `.env`, 0640 for its group, in the service's folder.
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(dir.path(), Some(65534), Some(65534)).unwrap();
    let env = dir.path().join("svc.env");
    let old = "SWML_BASIC_AUTH_USER=ops\nSWML_BASIC_AUTH_PASSWORD=old-password-0123456789\nSIGNALWIRE_SWAIG_SECRET=oldsecret\n";
    std::fs::write(&env, old).unwrap();
    std::fs::set_permissions(&env, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::chown(&env, Some(65534), Some(65534)).unwrap();
    let shown = env.to_string_lossy().into_owned();
    // Root's copy would be root's 0600, which the service cannot read.
    Swagent::new(["gen-creds", "--write", &shown, "--rotate"])
        .run()
        .code(2)
        .stdout_is("")
        .stderr_is(&format!("error: `{shown}` belongs to uid 65534: rewritten by root it would become root's, and that user could no longer read it; run this as that user (`sudo -u '#65534' swagent gen-creds ...`)\n"));
    assert_eq!(std::fs::read_to_string(&env).unwrap(), old);
    // As that user it works, and the group keeps its read.
    let as_owner = |args: &[&str]| crate::util::as_nobody(Path::new("/"), args);
    let out = as_owner(&["gen-creds", "--write", &shown, "--rotate"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta = std::fs::metadata(&env).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (65534, 65534, 0o640)
    );
    assert!(!std::fs::read_to_string(&env)
        .unwrap()
        .contains("old-password"));
    // Root's own file in root's own folder, given to the service's group:
    // rotated, it stays the group's to read.
    let own = tempfile::tempdir().unwrap();
    let env_root = own.path().join(".env");
    std::fs::write(&env_root, old).unwrap();
    std::fs::set_permissions(&env_root, std::fs::Permissions::from_mode(0o640)).unwrap();
    std::os::unix::fs::chown(&env_root, None, Some(1234)).unwrap();
    Swagent::new(["gen-creds", "--write", ".env", "--rotate"])
        .dir(own.path())
        .run()
        .code(0);
    let meta = std::fs::metadata(&env_root).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (0, 1234, 0o640)
    );
    // A folder the writer cannot create files in is named, not the file.
    let locked = tempfile::tempdir().unwrap();
    let env = locked.path().join(".env");
    std::fs::write(
        &env,
        "SWML_BASIC_AUTH_PASSWORD=old-password-0123456789\nSIGNALWIRE_SWAIG_SECRET=oldsecret\n",
    )
    .unwrap();
    std::os::unix::fs::chown(&env, Some(65534), Some(65534)).unwrap();
    std::fs::set_permissions(locked.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = as_owner(&["gen-creds", "--write", &env.to_string_lossy(), "--rotate"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "error: cannot write `{}`: cannot create a file in `{}`, where the new content is written before it is renamed over the old: Permission denied (os error 13)\n",
            env.display(),
            locked.path().display()
        )
    );
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("git runs")
        .status
        .success();
    assert!(ok, "git {args:?}");
}

#[test]
fn gen_creds_warns_when_git_could_commit_the_file() {
    let dir = tempfile::tempdir().unwrap();
    git(dir.path(), &["init", "-q"]);
    Swagent::new(["gen-creds", "--write", ".env"])
        .dir(dir.path())
        .run()
        .code(0)
        .stderr_is("warning: `.env` is not ignored by git: add it to .gitignore so credentials are never committed\n");
    // Ignored: silent.
    std::fs::write(dir.path().join(".gitignore"), ".env\n").unwrap();
    Swagent::new(["gen-creds", "--write", ".env", "--force"])
        .dir(dir.path())
        .run()
        .code(0)
        .stderr_is("");
    // Tracked (even though ignored): the strongest warning.
    git(dir.path(), &["add", "-f", ".env"]);
    Swagent::new(["gen-creds", "--write", ".env", "--rotate"])
        .dir(dir.path())
        .run()
        .code(0)
        .stderr_has("warning: `.env` is tracked by git: credentials must never be committed (git rm --cached)\n");
    // Outside a git work tree: no warning.
    let plain = tempfile::tempdir().unwrap();
    Swagent::new(["gen-creds", "--write", ".env"])
        .dir(plain.path())
        .run()
        .code(0)
        .stderr_is("");
}

fn verify(token: &str, extra: &[&str]) -> Swagent {
    let mut args = vec!["verify-token", token];
    args.extend_from_slice(extra);
    // In a fresh folder of its own (`Swagent::new`): a stray `.env` in the
    // shared temporary folder would change what it reads.
    Swagent::new(args).env("SIGNALWIRE_SWAIG_SECRET", SECRET)
}

fn days(from: u64, to: u64) -> u64 {
    to.abs_diff(from) / 86400
}

#[test]
fn verify_token_human_and_json_output_are_exact() {
    assert_eq!(
        mint_with_nonce(&Secret::new(SECRET), "call-123", "get_balance", FAR, NONCE),
        DETERMINISTIC
    );
    let before = days(swagent::clock::now(), FAR);
    let out = verify(DETERMINISTIC, &[]).run().code(0);
    let after = days(swagent::clock::now(), FAR);
    let want = |d: u64| {
        format!("call id:  call-123\nfunction: get_balance\nexpires:  2099-01-01T00:00:00Z (in {d} days)\nnonce:    0011223344556677\nverdict:  valid (signature, binding and expiry are valid)\n")
    };
    assert!(
        out.stdout == want(before) || out.stdout == want(after),
        "{}",
        out.stdout
    );
    verify(DETERMINISTIC, &["--json"]).run().code(0).stdout_is(
        "{\"verdict\":\"valid\",\"reason\":\"signature, binding and expiry are valid\",\"call_id\":\"call-123\",\"function\":\"get_balance\",\"expires_at\":\"2099-01-01T00:00:00Z\",\"nonce\":\"0011223344556677\"}\n",
    );
}

#[test]
fn verify_token_gives_each_verdict_its_exit_code() {
    let s = Secret::new(SECRET);
    let expired = mint_with_nonce(&s, "call-1", "f", 1_000_000_000, NONCE);
    let other = mint_with_nonce(&Secret::new("another-secret"), "call-1", "f", FAR, NONCE);
    let good = mint_with_nonce(&s, "call-1", "f", FAR, NONCE);
    let json_of = |token: &str, extra: &[&str], code: i32| -> Value {
        let mut args = vec!["--json"];
        args.extend_from_slice(extra);
        serde_json::from_str(&verify(token, &args).run().code(code).stdout).unwrap()
    };
    // (what, token, extra flags, exit code, verdict, reason)
    type Case<'a> = (&'a str, &'a str, Vec<&'a str>, i32, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (
            "valid",
            &good,
            vec![],
            0,
            "valid",
            "signature, binding and expiry are valid",
        ),
        (
            "bound",
            &good,
            vec!["--function", "f", "--call-id", "call-1"],
            0,
            "valid",
            "signature, binding and expiry are valid",
        ),
        (
            "expired",
            &expired,
            vec![],
            1,
            "expired",
            "the token has expired",
        ),
        (
            "bad signature",
            &other,
            vec![],
            1,
            "bad_signature",
            "the signature does not match this secret",
        ),
        (
            "wrong function",
            &good,
            vec!["--function", "g"],
            1,
            "wrong_function",
            "the token was minted for another function",
        ),
        (
            "wrong call",
            &good,
            vec!["--call-id", "call-2"],
            1,
            "wrong_call",
            "the token was minted for another call",
        ),
        (
            "not base64",
            "!!!",
            vec![],
            1,
            "malformed",
            "malformed token: not base64url: Invalid symbol 33, offset 0.",
        ),
        (
            "four fields",
            "YWJj",
            vec![],
            1,
            "malformed",
            "malformed token: expected 5 fields `call_id.function.expiry.nonce.signature`",
        ),
    ];
    for (what, token, extra, code, verdict, reason) in cases {
        let v = json_of(token, &extra, code);
        assert_eq!(v["verdict"], verdict, "{what}");
        assert_eq!(v["reason"], reason, "{what}");
        // Human output says the same and exits the same.
        verify(token, &extra)
            .run()
            .code(code)
            .stdout_has(&format!("verdict:  {verdict} ({reason})\n"));
    }
    // The expired one still shows what it claims, and when it expired.
    let out = verify(&expired, &[]).run().code(1);
    assert!(
        out.stdout.contains("expires:  2001-09-09T01:46:40Z ("),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(" days ago)\n"), "{}", out.stdout);
}

#[test]
fn verify_token_reads_stdin_and_secret_files_and_needs_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    Swagent::new(["verify-token", "-", "--json"])
        .env("SIGNALWIRE_SWAIG_SECRET", SECRET)
        .dir(dir.path())
        .stdin(format!("{DETERMINISTIC}\n"))
        .run()
        .code(0)
        .stdout_has("\"verdict\":\"valid\"");
    std::fs::write(dir.path().join("secret"), format!("{SECRET}\n")).unwrap();
    Swagent::new([
        "verify-token",
        DETERMINISTIC,
        "--secret-file",
        "secret",
        "--json",
    ])
    .dir(dir.path())
    .run()
    .code(0)
    .stdout_has("\"verdict\":\"valid\"");
    std::fs::write(dir.path().join("wrong"), "not-the-secret\n").unwrap();
    Swagent::new([
        "verify-token",
        DETERMINISTIC,
        "--secret-file",
        "wrong",
        "--json",
    ])
    .dir(dir.path())
    .run()
    .code(1)
    .stdout_has("\"verdict\":\"bad_signature\"");
    Swagent::new(["verify-token", DETERMINISTIC])
        .dir(dir.path())
        .run()
        .code(2)
        .stdout_is("")
        .stderr_is("error: no secret: set `SIGNALWIRE_SWAIG_SECRET` (environment or `.env`), or use `--secret-file PATH` or `--prompt`\n");
    Swagent::new(["verify-token", DETERMINISTIC, "--secret-file", "nope"])
        .dir(dir.path())
        .run()
        .code(2)
        .stderr_is(
            "error: cannot read secret file `nope`: No such file or directory (os error 2)\n",
        );
    // `.env` in the working folder counts, as the docs say.
    std::fs::write(
        dir.path().join(".env"),
        format!("SIGNALWIRE_SWAIG_SECRET={SECRET}\n"),
    )
    .unwrap();
    Swagent::new(["verify-token", DETERMINISTIC, "--json"])
        .dir(dir.path())
        .run()
        .code(0)
        .stdout_has("\"verdict\":\"valid\"");
    // There is no flag that takes the secret itself.
    Swagent::new(["verify-token", DETERMINISTIC, "--secret", SECRET])
        .dir(dir.path())
        .run()
        .code(2);
}

#[test]
fn sdk_fixture_tokens_verify_here() {
    for (call_id, function, token) in sdk_fixture_tokens() {
        let v: Value = serde_json::from_str(
            &verify(
                &token,
                &["--json", "--function", &function, "--call-id", &call_id],
            )
            .run()
            .code(0)
            .stdout,
        )
        .unwrap();
        assert_eq!(v["verdict"], "valid");
        assert_eq!(v["call_id"], call_id.as_str());
        assert_eq!(v["function"], function.as_str());
        assert_eq!(v["expires_at"], "2099-01-01T00:00:00Z");
        // And they are bound: another call is refused.
        verify(&token, &["--call-id", "someone-else"]).run().code(1);
    }
}

#[test]
fn tokens_minted_here_validate_in_the_python_sdk() {
    let Some(py) = sdk_python("tokens_minted_here_validate_in_the_python_sdk") else {
        return;
    };
    let checker = sdk_fixture("verify_token.py");
    let dir = tempfile::tempdir().unwrap();
    for (call_id, function) in [("call-123", "get_balance"), ("c-abc", "post_prompt")] {
        let out = Swagent::new([
            "token",
            "mint",
            "--function",
            function,
            "--call-id",
            call_id,
        ])
        .env("SIGNALWIRE_SWAIG_SECRET", SECRET)
        .dir(dir.path())
        .run()
        .code(0);
        let token = out.stdout.trim();
        let args = |secret: &str, call: &str, f: &str| {
            vec![
                checker.to_str().unwrap().to_owned(),
                secret.to_owned(),
                call.to_owned(),
                f.to_owned(),
                token.to_owned(),
            ]
        };
        let run = |a: Vec<String>| {
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            python(&py, &a, b"")
        };
        run(args(SECRET, call_id, function))
            .code(0)
            .stdout_is("true\n");
        run(args("another-secret", call_id, function))
            .code(1)
            .stdout_is("false\n");
        run(args(SECRET, "other-call", function))
            .code(1)
            .stdout_is("false\n");
        run(args(SECRET, call_id, "other_function"))
            .code(1)
            .stdout_is("false\n");
    }
}

#[test]
fn token_mint_round_trips_and_prints_urls() {
    let dir = tempfile::tempdir().unwrap();
    let mint = |extra: &[&str]| {
        let mut args = vec![
            "token",
            "mint",
            "--function",
            "get_balance",
            "--call-id",
            "c-1",
        ];
        args.extend_from_slice(extra);
        Swagent::new(args)
            .env("SIGNALWIRE_SWAIG_SECRET", SECRET)
            .dir(dir.path())
    };
    let token = mint(&[]).run().code(0).stdout.trim().to_owned();
    let claims = swagent::token::decode(&token).unwrap();
    assert_eq!(
        (claims.call_id.as_str(), claims.function.as_str()),
        ("c-1", "get_balance")
    );
    let now = swagent::clock::now();
    assert!(claims.expiry > now && claims.expiry <= now + 3600 + 5);
    verify(&token, &["--function", "get_balance", "--call-id", "c-1"])
        .run()
        .code(0);
    // Two mints differ (fresh nonce).
    assert_ne!(mint(&[]).run().code(0).stdout.trim(), token);
    let out = mint(&["--url", "http://127.0.0.1:3000/"]).run().code(0);
    let re = regex::Regex::new(r"\Ahttp://127\.0\.0\.1:3000/swaig/\?__token=([A-Za-z0-9_%-]+)\n\z")
        .unwrap();
    let caps = re
        .captures(&out.stdout)
        .unwrap_or_else(|| panic!("{}", out.stdout));
    let decoded: String = url::form_urlencoded::parse(format!("t={}", &caps[1]).as_bytes())
        .next()
        .unwrap()
        .1
        .into_owned();
    assert_eq!(swagent::token::decode(&decoded).unwrap().call_id, "c-1");
    let out = Swagent::new([
        "token",
        "mint",
        "--function",
        "post_prompt",
        "--call-id",
        "c-1",
        "--url",
        "https://agent.example.com/bank",
    ])
    .env("SIGNALWIRE_SWAIG_SECRET", SECRET)
    .dir(dir.path())
    .run()
    .code(0);
    assert!(
        out.stdout
            .starts_with("https://agent.example.com/bank/post_prompt/?__token="),
        "{}",
        out.stdout
    );
    // A dotted call id, as the SDK carries it; one the format cannot carry;
    // and no secret.
    let dotted = Swagent::new(["token", "mint", "--function", "f", "--call-id", "root.2"])
        .env("SIGNALWIRE_SWAIG_SECRET", SECRET)
        .dir(dir.path())
        .run()
        .code(0)
        .stdout;
    verify(dotted.trim(), &["--function", "f", "--call-id", "root.2"])
        .run()
        .code(0);
    Swagent::new(["token", "mint", "--function", "f", "--call-id", "a:b"])
        .env("SIGNALWIRE_SWAIG_SECRET", SECRET)
        .dir(dir.path())
        .run()
        .code(2)
        .stderr_is("error: cannot mint a token for call id `a:b`: call id contains `:`, which would make the token's signed text ambiguous\n");
    Swagent::new(["token", "mint", "--function", "f", "--call-id", "c"])
        .dir(dir.path())
        .run()
        .code(2)
        .stderr_has("error: no secret:");
    // A ttl that would wrap the expiry round to the past.
    Swagent::new([
        "token",
        "mint",
        "--function",
        "f",
        "--call-id",
        "c",
        "--ttl",
        "18446744073709551615",
    ])
    .env("SIGNALWIRE_SWAIG_SECRET", SECRET)
    .dir(dir.path())
    .run()
    .code(2)
    .stdout_is("")
    .stderr_is(
        "error: `--ttl` is too large: the expiry would pass the largest time a token can hold\n",
    );
}

/// `--secret-file` means what the variable means: its first line, spaces
/// and all, so a token minted from the file is one the server accepts.
#[test]
fn a_secret_file_holds_the_same_secret_as_the_variable() {
    let dir = sandbox();
    let padded = " padded secret with spaces ";
    std::fs::write(dir.path().join("secret"), format!("{padded}\r\nignored\n")).unwrap();
    let token = Swagent::new([
        "token",
        "mint",
        "--function",
        "get_balance",
        "--call-id",
        "c-1",
        "--secret-file",
        "secret",
    ])
    .dir(dir.path())
    .run()
    .code(0)
    .stdout
    .trim()
    .to_owned();
    let server = Swagent::new(["serve", "agents/bank.yaml"])
        .creds()
        .env("SIGNALWIRE_SWAIG_SECRET", padded)
        .dir(dir.path())
        .start();
    let warning = "`SIGNALWIRE_SWAIG_SECRET` starts or ends with whitespace, which is part of the secret; every replica and `token mint` must use it exactly";
    assert!(server.log_with(warning).contains(warning));
    let resp = server
        .post(&format!("/swaig?__token={token}"))
        .json(&json!({"function": "get_balance", "call_id": "c-1", "argument": {"parsed": [{"account": "12345678"}]}}))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.json::<Value>().unwrap(),
        json!({"response": "The balance of the account ending in 5678 is 1,234.56 dollars."})
    );
    // A blank file is no secret, as a blank variable is none.
    std::fs::write(dir.path().join("blank"), "   \n").unwrap();
    Swagent::new(["verify-token", &token, "--secret-file", "blank"])
        .dir(dir.path())
        .run()
        .code(2)
        .stderr_is("error: the secret is blank\n");
}

#[test]
fn swml_command_prints_what_serve_answers() {
    let dir = sandbox();
    let server = Swagent::new(["serve", "agents/bank.yaml"])
        .creds()
        .dir(dir.path())
        .start();
    let served: Value = server
        .post("/")
        .json(&json!({"call_id": "call-77"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let out = Swagent::new([
        "swml",
        "agents/bank.yaml",
        "--call-id",
        "call-77",
        "--base-url",
        &server.url,
    ])
    .creds()
    .dir(dir.path())
    .run()
    .code(0);
    let printed: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(normalize_tokens(&printed), normalize_tokens(&served));
    // The tokens differ only in their nonces (and possibly the second).
    let claims = |doc: &Value| -> Vec<(String, String)> {
        tokens_in(doc)
            .into_iter()
            .map(|(_, c, f, _)| (c, f))
            .collect()
    };
    assert_eq!(claims(&printed), claims(&served));
    assert_eq!(claims(&printed).len(), 3);
    // And a token it prints works against the server.
    let token = crate::util::token_in(&printed, "get_balance");
    let (status, _) = server.swaig(
        &format!("?__token={}", crate::serve::urlencode(&token)),
        json!({"function": "get_balance", "call_id": "call-77", "argument": {"parsed": [{"account": "12345678"}]}}),
    );
    assert_eq!(status, 200);
    // Invalid agent: exit 1 with the findings.
    Swagent::new(["swml", "bad.yaml"])
        .dir(dir.path())
        .run()
        .code(2);
    std::fs::write(dir.path().join("bad.yaml"), "name: x\n").unwrap();
    Swagent::new(["swml", "bad.yaml"])
        .dir(dir.path())
        .run()
        .code(1)
        .stderr_has("bad.yaml:");
}

const CALL_AGENT: &str = r#"name: calls
prompt:
  text: You call things.
functions:
  hours:
    description: Static.
    secure: false
    static:
      response: "Open for ${args.who}."
      action: [{ say: hi }]
    parameters:
      type: object
      properties:
        who: { type: string }
  balance:
    description: Shell.
    parameters:
      type: object
      properties:
        account: { type: string, pattern: "^[0-9]{6,12}$" }
        n: { type: integer }
      required: [account]
    shell:
      command: ["./balance.sh", "--account=${args.account}", "--n=${args.n}"]
  price:
    description: Http.
    parameters:
      type: object
      properties:
        item: { type: string, enum: [widget, gadget] }
      required: [item]
    http:
      url: UPSTREAM/price/${args.item}
      output: "A ${args.item} costs ${response.price}."
"#;

#[test]
fn call_runs_each_handler_kind_like_serve() {
    let up = Upstream::start(|req| {
        if req.target == "/price/widget" {
            Answer::json(r#"{"price": 12.5}"#)
        } else {
            Answer::new("404 Not Found", "text/plain", "")
        }
    });
    let dir = agent_dir(
        &CALL_AGENT.replace("UPSTREAM", &up.url()),
        &[(
            "balance.sh",
            "#!/bin/sh\necho \"balance $1 $2 call $SWAIG_CALL_ID\"\n",
        )],
    );
    let call = |args: &[&str]| {
        let mut a = vec!["call", "agent.yaml"];
        a.extend_from_slice(args);
        Swagent::new(a).dir(dir.path())
    };
    call(&["hours", "--arg", "who=Ann"]).run().code(0).stdout_is(
        "{\n  \"response\": \"Open for Ann.\",\n  \"action\": [\n    {\n      \"say\": \"hi\"\n    }\n  ]\n}\n",
    );
    // --arg values parse as JSON when they can; --args-json merges under them.
    call(&[
        "balance",
        "--args-json",
        r#"{"account": "123456", "n": 1}"#,
        "--arg",
        "n=7",
        "--call-id",
        "c-9",
    ])
    .run()
    .code(0)
    .stdout_is("{\n  \"response\": \"balance --account=123456 --n=7 call c-9\"\n}\n");
    call(&["price", "--arg", "item=widget"])
        .run()
        .code(0)
        .stdout_is("{\n  \"response\": \"A widget costs 12.5.\"\n}\n");
    assert_eq!(up.seen().len(), 1);
    // Invalid arguments: exit 1 with the reason, nothing run.
    call(&["price", "--arg", "item=../admin"])
        .run()
        .code(1)
        .stdout_is("")
        .stderr_is("error: invalid arguments for `price`: the argument `item` is invalid: \"../admin\" is not one of \"widget\" or \"gadget\"\nthe AI would be told: Some arguments are not acceptable: the argument `item` is invalid: \"../admin\" is not one of \"widget\" or \"gadget\". Please ask the caller again.\n");
    call(&["balance", "--arg", "account=12"])
        .run()
        .code(1)
        .stderr_has("the argument `account` is invalid");
    assert_eq!(up.seen().len(), 1);
    // A failing handler: exit 1, with what the caller would hear.
    call(&["price", "--arg", "item=gadget"])
        .run()
        .code(1)
        .stderr_has("the caller would hear: Sorry, that service is not working right now; please try again later.\n");
    // Usage errors: exit 2.
    call(&["nope"])
        .run()
        .code(2)
        .stderr_is("error: agent `calls` has no function `nope`\n");
    call(&["hours", "--arg", "novalue"])
        .run()
        .code(2)
        .stderr_is("error: `--arg novalue` must be NAME=VALUE\n");
    call(&["hours", "--args-json", "[1]"])
        .run()
        .code(2)
        .stderr_is("error: `--args-json` must be a JSON object\n");
}

/// `call` honours the kill switch, and says which guards it does not apply.
#[test]
fn call_refuses_a_disabled_function_and_names_the_guards_it_skips() {
    let dir = sandbox();
    let call = |extra: &[&str]| {
        let mut a = vec![
            "call",
            "agents/production-bank.yaml",
            "get_balance",
            "--arg",
            // Declared `type: string`: digits stay text.
            "account=123456",
        ];
        a.extend_from_slice(extra);
        Swagent::new(a)
            .env("CORE_API_TOKEN", "core-token")
            .dir(dir.path())
    };
    let balance = "{\n  \"response\": \"The balance of the account ending in 3456 is 1,234.56 dollars.\"\n}\n";
    let note = "note: `call` runs the handler directly; not applied here: caller verification, rate limits\n";
    call(&[]).run().code(0).stdout_is(balance).stderr_is(note);
    call(&["--state-file", "typo.json"])
        .run()
        .code(0)
        .stdout_is(balance)
        .stderr_is(&format!("note: the kill-switch state file `typo.json` does not exist: nothing is disabled\n{note}"));
    Swagent::new(["disable", "get_balance", "--state-file", "state.json"])
        .dir(dir.path())
        .run()
        .code(0);
    let refused = "error: `get_balance` is disabled by the kill switch (`state.json`): `swagent enable` it, or pass `--ignore-kill-switch`\n";
    call(&["--state-file", "state.json"])
        .run()
        .code(1)
        .stdout_is("")
        .stderr_is(refused);
    // From the environment, as `serve` and `disable` take it.
    call(&[])
        .env("SWAGENT_STATE_FILE", "state.json")
        .run()
        .code(1)
        .stderr_is(refused);
    call(&["--state-file", "state.json", "--ignore-kill-switch"])
        .run()
        .code(0)
        .stdout_is(balance);
    // A refused `sensitive` value is not repeated back, unlike another.
    Swagent::new([
        "call",
        "agents/production-bank.yaml",
        "verify_pin",
        "--arg",
        "account=12x456",
        "--arg",
        "pin=98x7",
    ])
    .env("CORE_API_TOKEN", "core-token")
    .dir(dir.path())
    .run()
    .code(1)
    .stdout_is("")
    .stderr_has("error: invalid arguments for `verify_pin`: the argument `account` is invalid: \"12x456\" does not match \"^[0-9]{6,12}$\"; the argument `pin` is invalid (a sensitive value, not repeated)\nthe AI would be told: Some arguments are not acceptable: the argument `account` is invalid: \"12x456\" does not match \"^[0-9]{6,12}$\"; the argument `pin` is invalid (a sensitive value, not repeated). Please ask the caller again.\n")
    .never_shows("98x7");
}

#[test]
fn completions_and_help_document_the_tool() {
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "powershell"] {
        Swagent::new(["completions", shell])
            .dir(dir.path())
            .run()
            .code(0)
            .stdout_has("gen-creds")
            .stdout_has("verify-token");
    }
    Swagent::new(["completions", "tcsh"])
        .dir(dir.path())
        .run()
        .code(2);
    Swagent::new(["--help"])
        .dir(dir.path())
        .run()
        .code(0)
        .stdout_has("Exit codes (each command's --help has its own):\n  0  success\n  1  the thing checked is bad:\n       validate ")
        .stdout_has("  2  usage error");
    for sub in [
        vec!["serve"],
        vec!["validate"],
        vec!["schema"],
        vec!["gen-creds"],
        vec!["verify-token"],
        vec!["token", "mint"],
        vec!["swml"],
        vec!["call"],
        vec!["completions"],
    ] {
        let mut args = sub.clone();
        args.push("--help");
        Swagent::new(args)
            .dir(dir.path())
            .run()
            .code(0)
            .stdout_has("Exit codes:\n  0  ");
    }
    // The committed schema file sits where the agents' modeline says.
    assert!(root().join("schemas/agent.schema.json").exists());
}

#[test]
fn a_broken_dotenv_is_named_by_line_and_its_text_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "SWML_BASIC_AUTH_USER=ops\nSIGNALWIRE_SWAIG_SECRET=topsecretvalue123 garbage here\n",
    )
    .unwrap();
    Swagent::new(["swml", &root().join("agents/hello.yaml").to_string_lossy()])
        .dir(dir.path())
        .run()
        .code(2)
        .stdout_is("")
        .stderr_is("error: cannot read `.env`: line 2 is not `NAME=value` (its text is not shown: it may hold a secret)\n");
    // A command that needs nothing from it goes on, and says why.
    Swagent::new(["gen-creds"])
        .dir(dir.path())
        .run()
        .code(0)
        .stderr_is("warning: cannot read `.env`: line 2 is not `NAME=value` (its text is not shown: it may hold a secret); going on without `.env`, which this command does not need\n");
    // `--help` and `--version` still answer.
    Swagent::new(["--version"])
        .dir(dir.path())
        .run()
        .code(0)
        .stdout_is(&format!("swagent {}\n", env!("CARGO_PKG_VERSION")));
}

#[test]
fn a_dotenv_others_can_change_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join(".env");
    std::fs::write(&env, "SWML_PROXY_URL_BASE=https://attacker.example\n").unwrap();
    std::fs::set_permissions(&env, std::fs::Permissions::from_mode(0o666)).unwrap();
    Swagent::new(["swml", &root().join("agents/hello.yaml").to_string_lossy()])
        .dir(dir.path())
        .run()
        .code(2)
        .stdout_is("")
        .stderr_is("error: `.env` has mode 0666: anyone on this host could change swagent's settings (`chmod o-w .env`)\n");
    std::fs::set_permissions(&env, std::fs::Permissions::from_mode(0o644)).unwrap();
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        skipped("SKIPPED part of a_dotenv_others_can_change_is_refused: giving `.env` to another user needs root");
        return;
    }
    let c = std::ffi::CString::new(env.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a NUL-terminated path this test owns; 65534 is `nobody`.
    assert_eq!(unsafe { libc::chown(c.as_ptr(), 65534, 65534) }, 0);
    Swagent::new(["swml", &root().join("agents/hello.yaml").to_string_lossy()])
        .dir(dir.path())
        .run()
        .code(2)
        .stderr_is("error: `.env` belongs to another user (uid 65534); swagent reads settings only from its own user's or root's file\n");
    // The kill switch still works from the service's folder, without it.
    Swagent::new(["disable", "--all", "--state-file", "st.json"])
        .dir(dir.path())
        .run()
        .code(0)
        .stdout_is("st.json: all functions disabled\n")
        .stderr_is("warning: `.env` belongs to another user (uid 65534); swagent reads settings only from its own user's or root's file; going on without `.env`, which this command does not need\nnote: `st.json` did not exist and was created; only servers started with this `--state-file` follow it\n");
}

#[test]
fn a_dotenv_that_would_be_read_two_ways_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let env = dir.path().join(".env");
    let hello = root().join("agents/hello.yaml");
    let swml = || {
        Swagent::new(["swml", &hello.to_string_lossy()])
            .dir(dir.path())
            .run()
    };
    // An appended password: the shell and the SDK take the second.
    std::fs::write(
        &env,
        "SWML_BASIC_AUTH_PASSWORD=first-password-0123456789\nOTHER=1\nSWML_BASIC_AUTH_PASSWORD=second-password-0123456789\n",
    )
    .unwrap();
    swml()
        .code(2)
        .stdout_is("")
        .stderr_is("error: `.env` sets `SWML_BASIC_AUTH_PASSWORD` twice, to different values: keep one (a shell that sources it takes the last)\n");
    // `PORT` too, which `serve` reads as the SDK does.
    std::fs::write(&env, "PORT=39411\nPORT=39412\n").unwrap();
    swml()
        .code(2)
        .stderr_is("error: `.env` sets `PORT` twice, to different values: keep one (a shell that sources it takes the last)\n");
    // The same value twice is read as it says.
    std::fs::write(
        &env,
        "SWML_PROXY_URL_BASE=https://twice.example.com\nSWML_PROXY_URL_BASE=https://twice.example.com\n",
    )
    .unwrap();
    assert!(swml()
        .code(0)
        .stdout
        .contains("@twice.example.com/post_prompt/"));
    // A link to a secrets volume that did not mount is not "no `.env`".
    std::fs::remove_file(&env).unwrap();
    std::os::unix::fs::symlink("/run/secrets-not-mounted/swagent.env", &env).unwrap();
    swml()
        .code(2)
        .stdout_is("")
        .stderr_is("error: `.env` is a link to `/run/secrets-not-mounted/swagent.env`, which does not exist (a volume that is not mounted?)\n");
    // A byte-order mark is no part of the first name.
    std::fs::remove_file(&env).unwrap();
    std::fs::write(
        &env,
        "\u{feff}SWML_PROXY_URL_BASE=https://bom.example.com\n",
    )
    .unwrap();
    let out = swml().code(0);
    assert!(
        out.stdout.contains("@bom.example.com/post_prompt/"),
        "{}",
        out.stdout
    );
}

#[test]
fn an_empty_or_non_utf8_setting_never_turns_a_check_off() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join(".env"),
        "SIGNALWIRE_SIGNING_KEY=sk-from-dotenv\n",
    )
    .unwrap();
    let hello = root().join("agents/hello.yaml");
    let hello = hello.to_string_lossy();
    // Empty in the environment, it would hide `.env`'s key and switch
    // signature validation off.
    Swagent::new(["serve", &*hello, "--port", "0"])
        .creds()
        .env("SIGNALWIRE_SIGNING_KEY", "")
        .dir(dir.path())
        .run()
        .code(2)
        .stderr_is("error: `SIGNALWIRE_SIGNING_KEY` is set but empty, which hides its value in `.env` and would turn it off; unset it or give it a value\n");
    use std::os::unix::ffi::OsStrExt as _;
    Swagent::new(["serve", &*hello, "--port", "0"])
        .creds()
        .env_os(
            "SWML_ALLOWED_HOSTS",
            std::ffi::OsStr::from_bytes(b"good.example\xff"),
        )
        .run()
        .code(2)
        .stderr_is("error: `SWML_ALLOWED_HOSTS` is not UTF-8 text\n");
}

#[test]
fn verify_token_escapes_what_a_forged_token_carries_and_reads_pasted_urls() {
    // A token signed with another secret, its call id a terminal escape.
    let forged = mint_with_nonce(
        &Secret::new("another-secret"),
        "c1\u{1b}[2J\u{1b}]0;pwned\u{7}",
        "get_balance",
        FAR,
        NONCE,
    );
    let out = verify(&forged, &[]).run().code(1);
    assert!(
        out.stdout
            .starts_with("call id:  c1\\u{1b}[2J\\u{1b}]0;pwned\\u{7}\nfunction: get_balance\n"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains('\u{1b}'));
    // As the SWML writes it: in a URL, percent-encoded.
    let encoded: String = url::form_urlencoded::byte_serialize(DETERMINISTIC.as_bytes()).collect();
    assert!(encoded.ends_with("%3D"), "{encoded}");
    for pasted in [
        encoded.clone(),
        format!("https://u:p@agent.example.com/swaig/?__token={encoded}&x=1"),
    ] {
        verify(&pasted, &["--json"])
            .run()
            .code(0)
            .stdout_has("\"verdict\":\"valid\"");
    }
    // stdin is read only so far.
    Swagent::new(["verify-token", "-", "--json"])
        .env("SIGNALWIRE_SWAIG_SECRET", SECRET)
        .stdin(vec![b'A'; 1 << 20])
        .run()
        .code(1)
        .stdout_has("\"verdict\":\"malformed\"");
}

#[test]
fn token_mint_refuses_a_function_name_the_token_cannot_carry() {
    for name in ["a.b", "a:b", ""] {
        Swagent::new(["token", "mint", "--function", name, "--call-id", "c-1"])
            .env("SIGNALWIRE_SWAIG_SECRET", SECRET)
            .run()
            .code(2)
            .stdout_is("")
            .stderr_is(&format!("error: `{name}` is not a function name (letters, digits and `_`, not starting with a digit)\n"));
    }
}

#[test]
fn swml_says_when_its_password_or_tokens_are_throwaway() {
    let hello = root().join("agents/hello.yaml");
    let hello = hello.to_string_lossy();
    Swagent::new(["swml", &*hello])
        .run()
        .code(0)
        .stderr_is("warning: no `SWML_BASIC_AUTH_PASSWORD` or no `SIGNALWIRE_SWAIG_SECRET`: this document's password or tokens are throwaway values that no server shares\n");
    Swagent::new(["swml", &*hello])
        .creds()
        .run()
        .code(0)
        .stderr_is("");
}

#[test]
fn a_missing_agent_file_is_said_once() {
    for cmd in ["swml", "call"] {
        let mut args = vec![cmd, "nonexistent.yaml"];
        if cmd == "call" {
            args.push("f");
        }
        Swagent::new(args)
            .creds()
            .run()
            .code(2)
            .stdout_is("")
            .stderr_is(
                "error: cannot read `nonexistent.yaml`: No such file or directory (os error 2)\n",
            );
    }
}

#[test]
fn gen_creds_will_not_rewrite_a_dotenv_with_a_value_over_several_lines() {
    let dir = tempfile::tempdir().unwrap();
    let text = "CERT=\"-----BEGIN-----\nSIGNALWIRE_SWAIG_SECRET=inside\n-----END-----\"\n";
    std::fs::write(dir.path().join("app.env"), text).unwrap();
    Swagent::new(["gen-creds", "--write", "app.env", "--rotate"])
        .dir(dir.path())
        .run()
        .code(2)
        .stdout_is("")
        .stderr_is("error: `app.env` has a quoted value over several lines (from line 1); edit it by hand\n");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("app.env")).unwrap(),
        text
    );
}

#[test]
fn gen_creds_rotate_refuses_where_there_is_nothing_to_rotate() {
    // Run in the wrong folder at 3 a.m., it must not say it rotated anything.
    let dir = tempfile::tempdir().unwrap();
    Swagent::new(["gen-creds", "--write", ".env", "--rotate"])
        .dir(dir.path())
        .run()
        .code(2)
        .stdout_is("")
        .stderr_is("error: `.env` does not exist: there is nothing to rotate (run it where the service reads its `.env`, or leave out `--rotate` to make new credentials)\n");
    assert!(!dir.path().join(".env").exists());
    std::fs::write(dir.path().join(".env"), "PORT=8080\n").unwrap();
    Swagent::new(["gen-creds", "--write", ".env", "--rotate"])
        .dir(dir.path())
        .run()
        .code(2)
        .stderr_is("error: `.env` sets neither `SWML_BASIC_AUTH_PASSWORD` nor `SIGNALWIRE_SWAIG_SECRET`: there is nothing to rotate (run it where the service reads its `.env`, or leave out `--rotate` to make new credentials)\n");
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".env")).unwrap(),
        "PORT=8080\n"
    );
}

#[test]
fn a_full_or_closed_output_is_an_error_never_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdout: &str, stderr: &str| {
        let open = |p: &str| {
            std::fs::OpenOptions::new()
                .write(true)
                .open(p)
                .map_or_else(|_| std::process::Stdio::piped(), std::process::Stdio::from)
        };
        let out = Command::new(crate::util::BIN)
            .args(args)
            .current_dir(dir.path())
            .stdout(open(stdout))
            .stderr(open(stderr))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // stdout full: the command says so and exits 2.
    assert_eq!(
        run(&["completions", "zsh"], "/dev/full", "-"),
        (
            Some(2),
            "error: cannot write the output: No space left on device (os error 28)\n".into()
        )
    );
    // After a change, it is said, but the change stands and is not an error
    // (a retry would make it again).
    let (code, said) = run(&["gen-creds", "--write", "g.env"], "/dev/full", "-");
    assert_eq!(
        (code, said.as_str()),
        (
            Some(0),
            "warning: cannot write the output: No space left on device (os error 28) (the change was made)\n"
        )
    );
    assert!(dir.path().join("g.env").exists());
    // stderr full: its notes are lost, the change is made, the exit is 0.
    assert_eq!(
        run(
            &["disable", "pay", "--state-file", "st.json"],
            "-",
            "/dev/full"
        ),
        (Some(0), String::new())
    );
    assert!(std::fs::read_to_string(dir.path().join("st.json"))
        .unwrap()
        .contains("\"pay\""));
}

#[test]
fn mint_and_call_refuse_what_serve_would() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    crate::util::mkfifo(&fifo);
    let mint = |extra: &[&str]| {
        Swagent::new(["token", "mint", "--function", "f", "--call-id", "c"])
            .args(extra)
            .env("SIGNALWIRE_SWAIG_SECRET", SECRET)
    };
    for (extra, said) in [
        (&["--url", "not a url"][..], "error: `--url` is not a URL: relative URL without a base\n".to_owned()),
        (&["--url", "https://u:p@h/x"][..], "error: `--url` must not hold credentials; swagent adds the Basic Auth ones itself\n".to_owned()),
        // Bounded and never blocking: a device; a FIFO with no writer is empty.
        (&["--secret-file", "/dev/zero"][..], "error: cannot read secret file `/dev/zero`: is not a regular file or a pipe (a socket or device)\n".to_owned()),
        (&["--secret-file", &*fifo.to_string_lossy()][..], "error: the secret is blank\n".to_owned()),
    ] {
        mint(extra).run().code(2).stdout_is("").stderr_is(&said);
    }
    // A pipe carries a secret without touching the disk (`<(pass show ...)`).
    let piped = Swagent::new(["token", "mint", "--function", "f", "--call-id", "c"])
        .args(["--secret-file", "/dev/stdin"])
        .stdin(format!("{SECRET}\n"))
        .run()
        .code(0);
    let token = piped.stdout.trim().to_owned();
    Swagent::new(["verify-token", &token])
        .env("SIGNALWIRE_SWAIG_SECRET", SECRET)
        .run()
        .code(0);
    let bank = root().join("agents/bank.yaml");
    for (id, said) in [
        (
            "a:b",
            "call id contains `:`, which would make the token's signed text ambiguous",
        ),
        ("", "call id is empty"),
        (
            "a\u{1b}[31m",
            "call id contains whitespace or control characters",
        ),
    ] {
        Swagent::new([
            "call",
            &bank.to_string_lossy(),
            "get_hours",
            "--call-id",
            id,
        ])
        .run()
        .code(2)
        .stdout_is("")
        .stderr_is(&format!("error: `--call-id`: {said}\n"));
    }
}
