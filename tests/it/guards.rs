//! Issue 7: audit log, enforced confirmation, caller-verification gate,
//! against a real server running tests/fixtures/guarded/guarded.yaml.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::util::{root, token_in, Server, Swagent, PASSWORD, SECRET, USER};

/// A copy of the guarded agent in a temp folder (the transfer script writes
/// `ran.log` next to it).
fn agent_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = root().join("tests/fixtures/guarded");
    std::fs::copy(src.join("guarded.yaml"), dir.path().join("guarded.yaml")).unwrap();
    std::fs::create_dir(dir.path().join("scripts")).unwrap();
    for entry in std::fs::read_dir(src.join("scripts")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(
            entry.path(),
            dir.path().join("scripts").join(entry.file_name()),
        )
        .unwrap();
    }
    dir
}

fn start(dir: &Path, audit: Option<&Path>) -> Server {
    let mut args: Vec<String> = vec!["serve".into(), "guarded.yaml".into()];
    if let Some(a) = audit {
        args.push("--audit-log".into());
        args.push(a.display().to_string());
    }
    Swagent::new(args).creds().dir(dir).start()
}

/// Fetches SWML for `call_id` and calls `function` with its token.
fn call(server: &Server, call_id: &str, function: &str, args: Value, global: Value) -> Value {
    let swml: Value = server
        .post("/")
        .json(&json!({ "call_id": call_id }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let token = token_in(&swml, function);
    let q = format!(
        "?__token={}",
        url::form_urlencoded::byte_serialize(token.as_bytes()).collect::<String>()
    );
    let (status, body) = server.swaig(
        &q,
        json!({"function": function, "call_id": call_id, "argument": {"parsed": [args]}, "global_data": global}),
    );
    assert_eq!(status, 200, "{body}");
    body
}

fn runs(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join("ran.log"))
        .map(|t| t.lines().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Asserts the AI is told something starting with `prefix`.
fn assert_says(reply: &Value, prefix: &str) {
    let text = reply["response"].as_str().unwrap_or_default();
    assert!(text.starts_with(prefix), "{reply}");
}

fn code_in(reply: &Value) -> String {
    let text = reply["response"].as_str().unwrap();
    let start =
        text.find("confirmation \"").expect("a confirmation code") + "confirmation \"".len();
    text[start..].split('"').next().unwrap().to_owned()
}

#[test]
fn confirmed_transfer_runs_once_and_unconfirmed_never() {
    let dir = agent_dir();
    let server = start(dir.path(), None);
    let args = json!({"to": "123456", "amount": 25});

    let first = call(&server, "call-1", "transfer", args.clone(), json!({}));
    let code = code_in(&first);
    assert_says(&first, "Nothing was done yet. Read these details back to the caller: amount: 25, to: 123456. Ask for an explicit yes.");
    assert_eq!(
        runs(dir.path()),
        Vec::<String>::new(),
        "the first call must not run the handler"
    );

    // A changed argument with the code is refused and gets a new code.
    let changed = call(
        &server,
        "call-1",
        "transfer",
        json!({"to": "123456", "amount": 999, "confirmation": code}),
        json!({}),
    );
    assert_says(
        &changed,
        "That confirmation code does not match these details. Nothing was done yet.",
    );
    assert_ne!(code_in(&changed), code);
    assert!(runs(dir.path()).is_empty());

    // The code is bound to the call too.
    let other_call = call(
        &server,
        "call-2",
        "transfer",
        json!({"to": "123456", "amount": 25, "confirmation": code}),
        json!({}),
    );
    assert_says(&other_call, "That confirmation code does not match");
    assert!(runs(dir.path()).is_empty());

    // The same arguments in another order, with the code: runs once.
    let ok = call(
        &server,
        "call-1",
        "transfer",
        json!({"amount": 25, "confirmation": code, "to": "123456"}),
        json!({}),
    );
    assert_eq!(ok, json!({"response": "Transfer done."}));
    assert_eq!(runs(dir.path()), vec!["--to=123456 --amount=25"]);

    // Replay: refused, nothing more runs.
    let replay = call(
        &server,
        "call-1",
        "transfer",
        json!({"to": "123456", "amount": 25, "confirmation": code}),
        json!({}),
    );
    assert_says(&replay, "That confirmation code was already used.");
    // A new code, even within the second the used one was minted.
    assert_ne!(code_in(&replay), code);
    assert_eq!(runs(dir.path()).len(), 1);

    // Other spellings of the same code are the same code: each of these ran
    // the transfer again when the store keyed on the text as sent.
    for (spelling, says) in [
        (
            format!(" {code}"),
            "That confirmation code was already used.",
        ),
        (
            format!("{code} "),
            "That confirmation code was already used.",
        ),
        (
            format!("0{code}"),
            "That confirmation code does not match these details.",
        ),
        (
            format!("00{code}"),
            "That confirmation code does not match these details.",
        ),
        (
            format!("+{code}"),
            "That confirmation code does not match these details.",
        ),
    ] {
        let again = call(
            &server,
            "call-1",
            "transfer",
            json!({"to": "123456", "amount": 25, "confirmation": spelling}),
            json!({}),
        );
        assert_says(&again, says);
    }
    assert_eq!(runs(dir.path()).len(), 1);
}

#[test]
fn a_forged_or_malformed_code_runs_nothing() {
    let dir = agent_dir();
    let server = start(dir.path(), None);
    for forged in [
        "4070908800-00000000000000000000",
        "garbage",
        "4070908800-zz",
    ] {
        let r = call(
            &server,
            "call-1",
            "transfer",
            json!({"to": "123456", "amount": 25, "confirmation": forged}),
            json!({}),
        );
        assert_says(&r, "That confirmation code does not match");
    }
    assert!(runs(dir.path()).is_empty());
}

#[test]
fn confirmation_store_shared_by_two_servers_refuses_a_replay_on_the_other() {
    let dir = agent_dir();
    let store = tempfile::tempdir().unwrap();
    let store_arg = store.path().display().to_string();
    let a = Swagent::new(["serve", "guarded.yaml", "--confirm-store", &store_arg])
        .creds()
        .dir(dir.path())
        .start();
    // The other reaches the folder through a link, which is then pointed at
    // an empty folder: it keeps the folder it resolved at start.
    let links = tempfile::tempdir().unwrap();
    let link = links.path().join("store");
    std::os::unix::fs::symlink(store.path(), &link).unwrap();
    let b = Swagent::new([
        "serve",
        "guarded.yaml",
        "--confirm-store",
        link.to_str().unwrap(),
    ])
    .creds()
    .dir(dir.path())
    .start();
    let args = json!({"to": "123456", "amount": 25});
    let code = code_in(&call(&a, "call-1", "transfer", args, json!({})));
    let confirmed = json!({"to": "123456", "amount": 25, "confirmation": code});
    assert_eq!(
        call(&a, "call-1", "transfer", confirmed.clone(), json!({})),
        json!({"response": "Transfer done."})
    );
    std::fs::create_dir(links.path().join("empty")).unwrap();
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(links.path().join("empty"), &link).unwrap();
    let replay = call(&b, "call-1", "transfer", confirmed, json!({}));
    assert_says(&replay, "That confirmation code was already used.");
    assert_eq!(runs(dir.path()).len(), 1);
    assert!(!a.log().contains("--confirm-store"), "{}", a.log());

    // A store anyone may clear is named at start.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(store.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let open = Swagent::new(["serve", "guarded.yaml", "--confirm-store", &store_arg])
        .creds()
        .dir(dir.path())
        .start();
    // In the words of `check --production`'s item (issue 25: one list).
    let said = format!("swagent: WARNING: `{store_arg}` has mode 0777: others on this host can delete or add records of used codes (`chmod go-w` it)");
    assert!(open.log_with(&said).contains(&said), "{}", open.log());
}

#[test]
fn gated_function_needs_a_grant_from_the_same_call() {
    let dir = agent_dir();
    let server = start(dir.path(), None);
    let refused = call(&server, "call-1", "get_balance", json!({}), json!({}));
    assert_eq!(
        refused,
        json!({"response": "The caller has not been verified in this call. Verify the caller first with `verify_pin`, then try again. Do not reveal anything protected before that."})
    );

    // A failed verification grants nothing.
    let wrong = call(
        &server,
        "call-1",
        "verify_pin",
        json!({"pin": "0000"}),
        json!({}),
    );
    assert_eq!(wrong, json!({"response": "That PIN is not right."}));

    let right = call(
        &server,
        "call-1",
        "verify_pin",
        json!({"pin": "4321"}),
        json!({}),
    );
    assert_eq!(right["response"], "PIN accepted.");
    let grant = right["action"][0]["set_global_data"]["swagent_verified"]
        .as_str()
        .unwrap()
        .to_owned();
    let global = json!({ "swagent_verified": grant });

    let ok = call(&server, "call-1", "get_balance", json!({}), global.clone());
    assert_eq!(ok, json!({"response": "Your balance is 100 dollars."}));

    // The same grant in another call, or a forged one, is refused.
    let other = call(&server, "call-2", "get_balance", json!({}), global);
    assert_eq!(other, refused);
    let expiry = grant.split('.').next().unwrap();
    let forged = json!({ "swagent_verified": format!("{expiry}.{}", "ab".repeat(32)) });
    assert_eq!(
        call(&server, "call-1", "get_balance", json!({}), forged),
        refused
    );
    let later =
        json!({ "swagent_verified": format!("9999999999.{}", grant.split('.').nth(1).unwrap()) });
    assert_eq!(
        call(&server, "call-1", "get_balance", json!({}), later),
        refused
    );
}

/// The grant key and value a verifier's reply sets (the one action it adds).
fn grant_in(reply: &Value) -> (String, Value) {
    let set = reply["action"]
        .as_array()
        .and_then(|a| a.iter().find_map(|x| x["set_global_data"].as_object()))
        .unwrap_or_else(|| panic!("no set_global_data in {reply}"));
    let (k, v) = set.iter().next().unwrap();
    (k.clone(), v.clone())
}

/// The shipped production agent binds `verify_pin` to `account`: a PIN
/// checked for one account opens that account only, whichever argument
/// names it later (`get_balance.account`, `transfer.from`).
#[test]
fn a_grant_opens_only_the_account_it_was_verified_for() {
    let dir = crate::util::sandbox();
    // The agent blocks `transfer` outside New York's business hours, which
    // would answer before the grant is looked at: the test must not depend
    // on when it runs.
    let file = dir.path().join("agents/production-bank.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let hours = "  - { business_hours: \"Mon-Fri 08:00-18:00 America/New_York\", functions: [transfer], block: true }\n";
    assert!(
        text.contains(hours),
        "the agent's business-hours rule changed"
    );
    std::fs::write(&file, text.replace(hours, "")).unwrap();
    let server = Swagent::new(["serve", "agents/production-bank.yaml"])
        .creds()
        .env("CORE_API_TOKEN", "core-token")
        .dir(dir.path())
        .start();
    let refused = json!({"response": "The caller has not been verified in this call. Verify the caller first with `verify_pin`, then try again. Do not reveal anything protected before that."});
    let verified = call(
        &server,
        "call-1",
        "verify_pin",
        json!({"account": "111111", "pin": "4321"}),
        json!({}),
    );
    assert_eq!(verified["response"], "Thank you, you are verified.");
    let (key, value) = grant_in(&verified);
    assert!(key.starts_with("swagent_verified_"), "{key}");
    assert!(!key.contains("111111") && !value.to_string().contains("111111"));
    let global = json!({ key.clone(): value.clone() });
    let balance = |account: &str, global: &Value| {
        call(
            &server,
            "call-1",
            "get_balance",
            json!({ "account": account }),
            global.clone(),
        )
    };
    assert_eq!(
        balance("111111", &global),
        json!({"response": "The balance of the account ending in 1111 is 1,234.56 dollars."})
    );
    // Another account, by either argument that names it: refused.
    assert_eq!(balance("999999999", &global), refused);
    let out_of_b = json!({"from": "999999999", "to": "111111", "amount": 50});
    assert_eq!(
        call(&server, "call-1", "transfer", out_of_b, global.clone()),
        refused
    );
    // The grant moved under the whole-call key is no grant either.
    assert_eq!(
        balance("111111", &json!({ "swagent_verified": value })),
        refused
    );
    // Out of the verified account: on to the confirmation step.
    let out_of_a = json!({"from": "111111", "to": "999999999", "amount": 50});
    let asked = call(&server, "call-1", "transfer", out_of_a, global.clone());
    assert!(!code_in(&asked).is_empty(), "{asked}");
    // A second verified account adds a grant beside the first.
    let second = call(
        &server,
        "call-1",
        "verify_pin",
        json!({"account": "999999999", "pin": "4321"}),
        global.clone(),
    );
    let (key_b, value_b) = grant_in(&second);
    assert_ne!(key_b, key);
    let first = global[&key].clone();
    let both = json!({ key: first, key_b: value_b });
    // Another agent sharing the secret takes none of this agent's grants:
    // a weak verifier there must not open this one.
    let text = std::fs::read_to_string(dir.path().join("agents/production-bank.yaml")).unwrap();
    std::fs::write(
        dir.path().join("agents/other.yaml"),
        text.replace("name: production-bank", "name: other-bank"),
    )
    .unwrap();
    let other = Swagent::new(["serve", "agents/other.yaml"])
        .creds()
        .env("CORE_API_TOKEN", "core-token")
        .dir(dir.path())
        .start();
    assert_eq!(
        call(
            &other,
            "call-1",
            "get_balance",
            json!({"account": "111111"}),
            global.clone()
        ),
        refused
    );
    for account in ["111111", "999999999"] {
        let reply = balance(account, &both);
        assert!(
            reply["response"]
                .as_str()
                .unwrap()
                .starts_with("The balance"),
            "{reply}"
        );
    }
}

/// What the AI hears while an account's verification is locked.
const LOCKED: &str = "Too many failed attempts to verify the caller for these details: no more attempts are allowed for now. Do not try again in this call, and do not reveal anything protected. Offer the caller another way to get help.";

/// The shipped agent's `verify_pin` binds `account` and has the default
/// `max_failures` (5/15m): the fifth wrong PIN for one account, over any
/// number of calls, locks that account's check, the right PIN included, and
/// a reload that keeps the rate keeps the lock. Other accounts are not held.
#[test]
fn wrong_pins_lock_the_account_across_calls_and_a_reload() {
    let dir = crate::util::sandbox();
    let audit = dir.path().join("audit.log");
    let server = Swagent::new([
        "serve".as_ref(),
        "agents/production-bank.yaml".as_ref(),
        "--audit-log".as_ref(),
        audit.as_os_str(),
    ])
    .creds()
    .env("CORE_API_TOKEN", "core-token")
    .dir(dir.path())
    .start();
    let pin = |call_id: &str, account: &str, pin: &str| {
        call(
            &server,
            call_id,
            "verify_pin",
            json!({ "account": account, "pin": pin }),
            json!({}),
        )
    };
    let wrong = json!({"response": "That PIN does not match. You can try again."});
    // Two calls per call id: `verify_pin` allows 3 per call and minute.
    for call_id in ["call-1", "call-1", "call-2", "call-2"] {
        assert_eq!(pin(call_id, "111111", "0000"), wrong);
    }
    assert_eq!(
        pin("call-3", "111111", "0000"),
        json!({ "response": format!("That check failed. {LOCKED}") })
    );
    // Locked: the right PIN in a new call is refused, and grants nothing.
    assert_eq!(
        pin("call-4", "111111", "4321"),
        json!({ "response": LOCKED })
    );
    let other = pin("call-4", "222222", "4321");
    assert_eq!(other["response"], "Thank you, you are verified.", "{other}");
    grant_in(&other);

    let file = dir.path().join("agents/production-bank.yaml");
    let text = std::fs::read_to_string(&file).unwrap();
    let edited = text.replace(
        "You are the phone assistant of First Example Bank.",
        "You are the phone assistant of First Example Bank, reloaded.",
    );
    assert_ne!(edited, text);
    std::fs::write(&file, edited).unwrap();
    server.signal(libc::SIGHUP);
    assert!(
        crate::util::eventually(std::time::Duration::from_secs(5), || audit_lines(&audit)
            .iter()
            .any(|e| e["event"] == "agent_reloaded")),
        "no reload in the audit log"
    );
    assert_eq!(
        pin("call-5", "111111", "4321"),
        json!({ "response": LOCKED })
    );

    server.log_with(
        "function `verify_pin`: too many failed checks for these `account`; they are locked out",
    );
    assert!(server
        .log()
        .contains("function `verify_pin` refused: too many failed checks for these `account`"));
    let events = audit_lines(&audit);
    let count = |event: &str, outcome: &str| {
        events
            .iter()
            .filter(|e| e["event"] == event && e["outcome"] == outcome)
            .count()
    };
    assert_eq!(count("caller_verification", "not_verified"), 5);
    assert_eq!(count("verification_locked", "locked"), 1);
    assert_eq!(count("caller_verification", "locked_out"), 2);
    assert_eq!(count("caller_verification", "verified"), 1);
    // The locked checks never ran: six runs in all (five wrong, one other account).
    assert_eq!(count("function_called", "ok"), 6);
    let text = std::fs::read_to_string(&audit).unwrap();
    assert!(!text.contains("4321") && !text.contains("0000"), "{text}");
}

/// A confirmed function that takes a value from `global_data` runs only if
/// that value is still the one it had when the code was given: another
/// function's reply may change it between the read-back and the run.
#[test]
fn a_code_binds_the_global_data_the_handler_uses() {
    let agent = r#"name: context
prompt: { text: Hi. }
functions:
  transfer:
    description: Moves money out of the account the call is about.
    confirm: true
    parameters:
      type: object
      properties:
        amount: { type: integer, minimum: 1, maximum: 100 }
      required: [amount]
    shell: { command: ["./transfer.sh", "${global_data.account}", "${args.amount}"] }
"#;
    let script = "#!/bin/sh\necho \"$1 $2\" >> ran.log\necho '{\"response\": \"Done.\"}'\n";
    let dir = crate::util::agent_dir(agent, &[("transfer.sh", script)]);
    let server = Swagent::new(["serve", "agent.yaml"])
        .creds()
        .dir(dir.path())
        .start();
    let transfer = |args: Value, account: &str| {
        call(
            &server,
            "call-1",
            "transfer",
            args,
            json!({ "account": account, "unused": "anything" }),
        )
    };
    let code = code_in(&transfer(json!({"amount": 50}), "111111"));
    let confirmed = json!({"amount": 50, "confirmation": code});
    // Another account by now: refused, and a new code for what is there.
    let moved = transfer(confirmed.clone(), "999999");
    assert_says(
        &moved,
        "That confirmation code does not match these details. Nothing was done yet.",
    );
    assert!(runs(dir.path()).is_empty());
    // A value the handler does not use may change.
    let ok = call(
        &server,
        "call-1",
        "transfer",
        confirmed,
        json!({ "account": "111111", "unused": "changed" }),
    );
    assert_eq!(ok, json!({"response": "Done."}));
    assert_eq!(runs(dir.path()), vec!["111111 50"]);
}

/// A verifier that says "wrong PIN" with an exit status (or a 401, or an
/// error key) fails the check as surely as one that answers
/// `verified: false`: it counts towards the lock. A reload that changes only
/// the function's `rate_limit` keeps the lock.
#[test]
fn a_check_that_fails_with_an_error_counts_towards_the_lock() {
    let agent = r#"name: erring
prompt: { text: Hi. }
functions:
  verify_pin:
    description: Checks a PIN.
    verifies_caller: { binds: [account], max_failures: 2/15m }
    rate_limit: { per_call: 10/min, global: 60/min }
    parameters:
      type: object
      properties:
        account: { type: string, pattern: "^[0-9]{6}$" }
        pin: { type: string, pattern: "^[0-9]{4}$", sensitive: true }
      required: [account, pin]
    shell: { command: ["./verify.sh", "${args.pin}"] }
"#;
    let script = "#!/bin/sh\n[ \"$1\" = 4321 ] || exit 1\necho '{\"verified\": true, \"response\": \"Verified.\"}'\n";
    let dir = crate::util::agent_dir(agent, &[("verify.sh", script)]);
    let audit = dir.path().join("audit.log");
    let server = Swagent::new([
        "serve".as_ref(),
        "agent.yaml".as_ref(),
        "--audit-log".as_ref(),
        audit.as_os_str(),
    ])
    .creds()
    .dir(dir.path())
    .start();
    let pin = |call_id: &str, pin: &str| {
        call(
            &server,
            call_id,
            "verify_pin",
            json!({"account": "111111", "pin": pin}),
            json!({}),
        )
    };
    assert_eq!(
        pin("call-1", "0000"),
        json!({"response": "Sorry, that service is not working right now; please try again later."})
    );
    assert_eq!(
        pin("call-2", "0000"),
        json!({ "response": format!("That check failed. {LOCKED}") })
    );
    assert_eq!(pin("call-3", "4321"), json!({ "response": LOCKED }));

    let text = std::fs::read_to_string(dir.path().join("agent.yaml")).unwrap();
    std::fs::write(
        dir.path().join("agent.yaml"),
        text.replace("per_call: 10/min", "per_call: 11/min"),
    )
    .unwrap();
    server.signal(libc::SIGHUP);
    assert!(
        crate::util::eventually(std::time::Duration::from_secs(5), || audit_lines(&audit)
            .iter()
            .any(|e| e["event"] == "agent_reloaded")),
        "no reload in the audit log"
    );
    assert_eq!(pin("call-4", "4321"), json!({ "response": LOCKED }));
    // The refusal says which account was asked for; never the PIN.
    let refused: Vec<Value> = audit_lines(&audit)
        .into_iter()
        .filter(|e| e["event"] == "caller_verification" && e["outcome"] == "locked_out")
        .collect();
    assert_eq!(refused.len(), 2);
    assert_eq!(
        refused[0]["arguments"],
        json!({"account": "111111", "pin": "***"})
    );
}

/// Checks of one account running together would all pass the lock before
/// any failure was counted: while one runs, another for the same account
/// is turned away without running.
#[test]
fn a_second_check_of_the_same_account_waits_for_the_first() {
    let agent = r#"name: held
prompt: { text: Hi. }
functions:
  verify_pin:
    description: Checks a PIN, after the test creates `release`.
    verifies_caller: { binds: [account], max_failures: 2/15m }
    parameters:
      type: object
      properties:
        account: { type: string, pattern: "^[0-9]{6}$" }
        pin: { type: string, pattern: "^[0-9]{4}$", sensitive: true }
      required: [account, pin]
    shell: { command: ["./verify.sh", "${args.pin}"], timeout: 20s }
"#;
    // Holds until `release` exists (15 s at most), then refuses every PIN.
    let script = "#!/bin/sh\necho $$ >> started\ni=0\nwhile [ ! -e release ] && [ $i -lt 750 ]; do sleep 0.02; i=$((i+1)); done\necho '{\"verified\": false, \"response\": \"Wrong PIN.\"}'\n";
    let dir = crate::util::agent_dir(agent, &[("verify.sh", script)]);
    let server = Swagent::new(["serve", "agent.yaml"])
        .creds()
        .dir(dir.path())
        .start();
    let started = || {
        std::fs::read_to_string(dir.path().join("started"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    };
    let pin = |call_id: &str| {
        call(
            &server,
            call_id,
            "verify_pin",
            json!({"account": "111111", "pin": "0000"}),
            json!({}),
        )
    };
    // The first check, from another thread (a `Server` stays on this one).
    let swml: Value = server
        .post("/")
        .json(&json!({ "call_id": "call-1" }))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let hook = swml["sections"]["main"][1]["ai"]["SWAIG"]["functions"][0]["web_hook_url"]
        .as_str()
        .unwrap()
        .to_owned();
    std::thread::scope(|s| {
        let first = s.spawn(|| {
            crate::util::client()
                .post(&hook)
                .json(&json!({"function": "verify_pin", "call_id": "call-1", "argument": {"parsed": [{"account": "111111", "pin": "0000"}]}}))
                .send()
                .unwrap()
                .json::<Value>()
                .unwrap()
        });
        assert!(crate::util::eventually(
            std::time::Duration::from_secs(10),
            || started() == 1
        ));
        for call_id in ["call-2", "call-3", "call-4"] {
            assert_eq!(
                pin(call_id),
                json!({"response": "A check of these details is still running. Wait for its result; do not repeat the check."})
            );
        }
        std::fs::write(dir.path().join("release"), "").unwrap();
        assert_eq!(first.join().unwrap(), json!({"response": "Wrong PIN."}));
    });
    // The turned-away checks counted no failure: the second run is the
    // second failure, which locks.
    assert_eq!(
        pin("call-5"),
        json!({ "response": format!("That check failed. {LOCKED}") })
    );
    assert_eq!(pin("call-6"), json!({ "response": LOCKED }));
    assert_eq!(started(), 2);
    let said = "function `verify_pin` refused: a check is already running for these `account`";
    assert_eq!(server.log_with(said).matches(said).count(), 3);
}

fn audit_lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

#[test]
fn audit_log_records_each_event_and_nothing_secret() {
    let dir = agent_dir();
    let audit: PathBuf = dir.path().join("audit.log");
    let mut server = start(dir.path(), Some(&audit));
    // auth_failed
    let resp = crate::util::client()
        .post(format!("{}/swaig", server.url))
        .basic_auth(USER, Some("wrong-password-123"))
        .send()
        .unwrap();
    assert_eq!(resp.status(), 401);
    // token_rejected (a real token for another function)
    let swml: Value = server.swml("call-1");
    let pin_token = token_in(&swml, "verify_pin");
    let q = format!(
        "?__token={}",
        url::form_urlencoded::byte_serialize(pin_token.as_bytes()).collect::<String>()
    );
    let (status, _) = server.swaig(&q, json!({"function": "transfer", "call_id": "call-1", "argument": {"parsed": [{"to": "123456", "amount": 5}]}}));
    assert_eq!(status, 403);
    // function_called with a sensitive argument, caller_verification
    call(
        &server,
        "call-1",
        "verify_pin",
        json!({"pin": "4321"}),
        json!({}),
    );
    // confirmation_requested / accepted
    let code = code_in(&call(
        &server,
        "call-1",
        "transfer",
        json!({"to": "123456", "amount": 5}),
        json!({}),
    ));
    call(
        &server,
        "call-1",
        "transfer",
        json!({"to": "123456", "amount": 5, "confirmation": code}),
        json!({}),
    );
    // verification_required
    call(&server, "call-1", "get_balance", json!({}), json!({}));
    // function_timeout
    let slow = call(&server, "call-1", "slow", json!({}), json!({}));
    assert_eq!(
        slow,
        json!({"response": "That took too long; please try again later."})
    );
    // summary_received
    let pp_url = swml["sections"]["main"][1]["ai"]["post_prompt_url"]
        .as_str()
        .unwrap();
    let pp_query = &pp_url[pp_url.find('?').unwrap()..];
    let resp = server.post(&format!("/post_prompt/{pp_query}")).json(&json!({"call_id": "call-1", "post_prompt_data": {"raw": "The caller moved 5 dollars."}})).send().unwrap();
    assert_eq!(resp.status(), 200);
    server.signal(libc::SIGTERM);
    assert_eq!(
        server.wait_exit(std::time::Duration::from_secs(20)),
        Some(0)
    );

    let lines = audit_lines(&audit);
    let events: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    for want in [
        "server_started",
        "auth_failed",
        "token_rejected",
        "function_called",
        "caller_verification",
        "confirmation_requested",
        "confirmation_accepted",
        "verification_required",
        "function_timeout",
        "summary_received",
        "server_stopped",
    ] {
        assert!(events.contains(&want), "no `{want}` in {events:?}");
    }
    for line in &lines {
        for key in [
            "ts",
            "event",
            "agent",
            "call_id",
            "function",
            "client_ip",
            "outcome",
            "duration_ms",
        ] {
            assert!(line.get(key).is_some(), "`{key}` missing in {line}");
        }
        assert_eq!(line["agent"], "guarded");
    }
    let rejected = lines
        .iter()
        .find(|l| l["event"] == "token_rejected")
        .unwrap();
    assert_eq!(rejected["verdict"], "wrong_function");
    assert_eq!(rejected["function"], "transfer");
    assert_eq!(rejected["client_ip"], "127.0.0.1");
    let pin_call = lines
        .iter()
        .find(|l| l["event"] == "function_called" && l["function"] == "verify_pin")
        .unwrap();
    assert_eq!(pin_call["arguments"], json!({"pin": "***"}));
    assert_eq!(pin_call["outcome"], "ok");

    let text = std::fs::read_to_string(&audit).unwrap();
    for secret in [PASSWORD, SECRET, pin_token.as_str(), "4321", "Basic "] {
        assert!(!text.contains(secret), "the audit log contains {secret:?}");
    }
    // Only the server's own log may carry the summary; the audit log counts it.
    let summary = lines
        .iter()
        .find(|l| l["event"] == "summary_received")
        .unwrap();
    assert_eq!(summary["summary_chars"], 27);
}

#[test]
fn swml_hides_the_sensitive_marker_and_adds_the_confirmation_argument() {
    let dir = agent_dir();
    let out = Swagent::new(["swml", "guarded.yaml", "--call-id", "c1"])
        .creds()
        .dir(dir.path())
        .run()
        .code(0);
    let swml: Value = serde_json::from_str(&out.stdout).unwrap();
    let functions = &swml["sections"]["main"][1]["ai"]["SWAIG"]["functions"];
    assert_eq!(
        functions[0]["parameters"],
        json!({"type": "object", "properties": {"pin": {"type": "string", "pattern": "^[0-9]{4}$"}}, "required": ["pin"]})
    );
    assert_eq!(
        functions[2]["parameters"]["properties"]["confirmation"]["type"],
        "string"
    );
    assert!(!out.stdout.contains("sensitive"));
}

#[test]
fn validate_reports_a_gate_without_a_verifier() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.yaml"),
        "name: a\nprompt: {text: hi}\nfunctions:\n  f:\n    description: d\n    requires_verification: true\n    static: {response: x}\n",
    )
    .unwrap();
    Swagent::new(["validate", "a.yaml"])
        .dir(dir.path())
        .run()
        .code(1)
        .stderr_is("a.yaml:6:28: error: function `f`: `requires_verification` but no function in this agent has `verifies_caller: true`\n  |\n6 |     requires_verification: true\n  |                            ^\n1 of 1 agent file(s) invalid\n");
}

#[test]
fn an_http_verifier_grants_only_when_its_verified_field_is_true() {
    let upstream = crate::util::Upstream::start(|seen| {
        let body = String::from_utf8_lossy(&seen.body);
        if body.contains("\"pin\":\"4321\"") {
            crate::util::Answer::json(r#"{"result": {"ok": true}}"#)
        } else {
            crate::util::Answer::json(r#"{"result": {"ok": false}}"#)
        }
    });
    let yaml = format!(
        r#"name: httpverify
prompt: {{ text: hi }}
functions:
  check_pin:
    description: Check the PIN.
    verifies_caller: true
    parameters:
      type: object
      properties:
        pin: {{ type: string, pattern: "^[0-9]{{4}}$", sensitive: true }}
      required: [pin]
    http:
      url: {}/pins/check
      method: POST
      body: {{ pin: "${{args.pin}}" }}
      verified_field: result.ok
      output: PIN checked.
  secret_thing:
    description: Protected.
    requires_verification: true
    static: {{ response: The secret is 42. }}
"#,
        upstream.url()
    );
    let dir = crate::util::agent_dir(&yaml, &[]);
    let server = Swagent::new(["serve", "agent.yaml"])
        .creds()
        .dir(dir.path())
        .start();
    let wrong = call(
        &server,
        "c1",
        "check_pin",
        json!({"pin": "0000"}),
        json!({}),
    );
    assert_eq!(
        wrong,
        json!({"response": "PIN checked."}),
        "no grant without a match"
    );
    let right = call(
        &server,
        "c1",
        "check_pin",
        json!({"pin": "4321"}),
        json!({}),
    );
    assert_eq!(right["response"], "PIN checked.");
    let grant = right["action"][0]["set_global_data"]["swagent_verified"].clone();
    assert!(grant.is_string(), "{right}");
    let ok = call(
        &server,
        "c1",
        "secret_thing",
        json!({}),
        json!({ "swagent_verified": grant }),
    );
    assert_eq!(ok, json!({"response": "The secret is 42."}));
    assert_eq!(upstream.seen().len(), 2);
}
