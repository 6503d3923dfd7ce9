//! Server-enforced guards for sensitive functions: confirmation codes
//! (`confirm: true`) and caller-verification grants (`requires_verification`).
//!
//! Both are stateless HMACs under the token secret, so they hold across
//! replicas that share `SIGNALWIRE_SWAIG_SECRET` and across restarts:
//! - a confirmation code binds call id, function and the canonical JSON of the
//!   arguments, and expires; single use is enforced by [`UsedCodes`];
//! - a verification grant binds the call id and, when the verifier `binds`
//!   arguments, their values (the account whose PIN was checked), and
//!   expires; the platform carries it in `global_data` between function
//!   calls. A bound grant sits under a key derived from what it binds, so one
//!   call can hold grants for several accounts.
//!
//! Single use. The in-memory store refuses a replay within one process. A
//! replay to another replica, or to this one after a restart, inside the
//! code's lifetime is only refused when the replicas share a store folder
//! (`--confirm-store DIR`): each use creates a file named by the code's digest
//! with `O_CREAT|O_EXCL`, which exactly one process can win. Without it the
//! remaining window is the code lifetime (default 5 minutes), for the same
//! call, function and arguments, and only for a caller that already holds
//! Basic Auth credentials and a valid function token.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use ring::digest;
use serde_json::Value;

use crate::token::Secret;

/// The argument swagent adds to confirmed functions in SWML.
pub const CONFIRMATION_ARG: &str = "confirmation";
/// The `global_data` key that carries a verification grant.
pub const GRANT_KEY: &str = "swagent_verified";

/// JSON with object keys sorted at every level: the same arguments always
/// give the same text, whatever order the model wrote them in.
pub fn canonical_json(v: &Value) -> String {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let inner: Vec<String> = keys
                .iter()
                .map(|k| {
                    format!(
                        "{}:{}",
                        Value::String((*k).clone()),
                        canonical_json(&map[*k])
                    )
                })
                .collect();
            format!("{{{}}}", inner.join(","))
        }
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(canonical_json).collect();
            format!("[{}]", inner.join(","))
        }
        other => other.to_string(),
    }
}

/// The agent is in every signed text: agents that share a secret must not
/// accept each other's codes and grants (a weak verifier in one would open
/// another). Agent names hold no `\n` (`[A-Za-z0-9_-]`), nor do call ids.
fn code_message(
    agent: &str,
    call_id: &str,
    function: &str,
    details: &Value,
    expiry: u64,
) -> String {
    format!(
        "confirm\n{agent}\n{call_id}\n{function}\n{expiry}\n{}",
        canonical_json(details)
    )
}

/// What a confirmation code is bound to: the arguments, and the values the
/// handler takes from the request's `global_data` or `meta_data` (by their
/// template text, `${global_data.account}`), which another function's reply
/// could change between the read-back and the run. Without such values, the
/// arguments alone.
pub fn confirmed_details(
    function: &crate::agent::Function,
    args: &Value,
    global_data: &Value,
    meta_data: &Value,
) -> Value {
    use crate::template::{walk, Var};
    let mut context = serde_json::Map::new();
    for template in function.handler.action_templates() {
        for (var, text) in template.vars() {
            let value = match var {
                Var::GlobalData(path) => walk(global_data, path),
                Var::MetaData(path) => walk(meta_data, path),
                _ => continue,
            };
            context.insert(text.to_owned(), value.cloned().unwrap_or(Value::Null));
        }
    }
    if context.is_empty() {
        args.clone()
    } else {
        serde_json::json!({ "arguments": args, "context": context })
    }
}

/// 80 bits of HMAC are plenty for a code that lives minutes behind Basic Auth
/// and a function token, and short enough for a model to copy verbatim.
const CODE_HEX: usize = 20;

/// Mints a confirmation code, `{expiry}-{20 hex}`, for `details` (see
/// [`confirmed_details`]).
pub fn confirmation_code(
    secret: &Secret,
    agent: &str,
    call_id: &str,
    function: &str,
    details: &Value,
    expiry: u64,
) -> String {
    let tag = secret.sign(code_message(agent, call_id, function, details, expiry).as_bytes());
    format!("{expiry}-{}", &hex::encode(tag.as_ref())[..CODE_HEX])
}

/// Why a confirmation code was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeVerdict {
    Valid,
    Malformed,
    /// Not for this call, function and these exact arguments.
    Mismatch,
    Expired,
    Replayed,
}

impl CodeVerdict {
    pub fn code(self) -> &'static str {
        match self {
            CodeVerdict::Valid => "valid",
            CodeVerdict::Malformed => "malformed",
            CodeVerdict::Mismatch => "mismatch",
            CodeVerdict::Expired => "expired",
            CodeVerdict::Replayed => "replayed",
        }
    }
}

/// A confirmation code as a caller sent it, parsed once: `{expiry}-{20 hex}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code {
    pub expiry: u64,
    sig: String,
}

impl Code {
    /// Spaces around the code are forgiven (a model may copy them along);
    /// inside, only the spelling [`confirmation_code`] writes is accepted.
    /// Number parsing alone would also take `+1000` or `01000` for `1000`,
    /// and each such spelling would be a code the used-code store had not
    /// seen: one confirmation could run many times.
    pub fn parse(text: &str) -> Option<Code> {
        let (expiry, sig) = text.trim().split_once('-')?;
        let canonical_number = expiry.bytes().all(|b| b.is_ascii_digit())
            && !expiry.is_empty()
            && (expiry == "0" || !expiry.starts_with('0'));
        let lowercase_hex =
            sig.len() == CODE_HEX && sig.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !(canonical_number && lowercase_hex) {
            return None;
        }
        Some(Code {
            expiry: expiry.parse().ok()?,
            sig: sig.to_owned(),
        })
    }

    /// The one spelling of this code: what single use is enforced on.
    pub fn canonical(&self) -> String {
        format!("{}-{}", self.expiry, self.sig)
    }
}

/// Checks a code (constant-time) without consuming it.
pub fn check_code(
    secret: &Secret,
    code: &Code,
    agent: &str,
    call_id: &str,
    function: &str,
    details: &Value,
    now: u64,
) -> CodeVerdict {
    let expected =
        secret.sign(code_message(agent, call_id, function, details, code.expiry).as_bytes());
    let expected = &hex::encode(expected.as_ref())[..CODE_HEX];
    // Truncated tags cannot go through `hmac::verify` directly; comparing
    // their HMACs with it ("double HMAC") is constant-time and exact.
    let ok = secret.verify(
        code.sig.as_bytes(),
        secret.sign(expected.as_bytes()).as_ref(),
    );
    if !ok {
        CodeVerdict::Mismatch
    } else if code.expiry < now {
        CodeVerdict::Expired
    } else {
        CodeVerdict::Valid
    }
}

/// How long after its code expired a record in the shared folder is kept.
/// Each replica prunes by its own clock: a replica running ahead by more
/// than this could delete a record another replica still needs to refuse a
/// replay. An hour covers any clock that NTP keeps at all; the folder holds
/// at most an hour's used codes more.
pub const PRUNE_AFTER: u64 = 3600;

/// How often the shared folder is pruned, at most, in seconds.
const PRUNE_EVERY: u64 = 60;

/// Codes already used, so each works once.
pub struct UsedCodes {
    memory: Mutex<HashMap<String, u64>>,
    dir: Option<PathBuf>,
    /// When the folder was last pruned, and the thread pruning it.
    pruned_at: AtomicU64,
    pruner: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl UsedCodes {
    /// In memory only, or also in a folder shared by replicas.
    pub fn new(dir: Option<PathBuf>) -> UsedCodes {
        UsedCodes {
            memory: Mutex::new(HashMap::new()),
            dir,
            pruned_at: AtomicU64::new(0),
            pruner: Mutex::new(None),
        }
    }

    /// Marks `code` (valid until `expiry`) used. False when it already was.
    pub fn consume(&self, code: &str, expiry: u64, now: u64) -> Result<bool, std::io::Error> {
        let digest = hex::encode(digest::digest(&digest::SHA256, code.as_bytes()));
        {
            let mut mem = self.memory.lock().unwrap_or_else(|e| e.into_inner());
            // Expired codes are refused by their expiry; forgetting them keeps
            // the map bounded by the codes issued in one lifetime.
            mem.retain(|_, exp| *exp >= now);
            if mem.insert(digest.clone(), expiry).is_some() {
                return Ok(false);
            }
        }
        if let Some(dir) = &self.dir {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(dir.join(format!("{digest}.{expiry}")))
            {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
                Err(e) => return Err(e),
            }
            self.prune_soon(dir, now);
        }
        Ok(true)
    }

    /// Prunes the folder on a thread of its own, at most once a
    /// [`PRUNE_EVERY`] and never twice at once. Listing a folder that
    /// others can fill takes as long as they make it: in review 12, pruning
    /// 200,000 records at every use on a server thread held `/health` for
    /// 2.6 s.
    fn prune_soon(&self, dir: &Path, now: u64) {
        let last = self.pruned_at.load(Ordering::Relaxed);
        // A clock set back (after running ahead) makes it due at once,
        // rather than not until the clock has caught up again.
        if (last..last.saturating_add(PRUNE_EVERY)).contains(&now) {
            return;
        }
        let mut pruner = self.pruner.lock().unwrap_or_else(|e| e.into_inner());
        if pruner.as_ref().is_some_and(|p| !p.is_finished()) {
            return;
        }
        if self
            .pruned_at
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let dir = dir.to_path_buf();
        // A thread that cannot start leaves the records for the next turn.
        *pruner = std::thread::Builder::new()
            .name("swagent-prune".into())
            .spawn(move || prune(&dir, now))
            .ok();
    }

    /// Waits for a prune in progress.
    #[cfg(test)]
    fn pruned(&self) {
        let handle = self.pruner.lock().unwrap().take();
        if let Some(handle) = handle {
            handle.join().unwrap();
        }
    }
}

/// Removes the records in `dir` whose code expired over [`PRUNE_AFTER`] ago.
fn prune(dir: &Path, now: u64) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        // Only names this store writes, `{sha256 hex}.{expiry}`: the
        // folder may hold other files (a rotated `audit.log.1`).
        let expired = name
            .to_str()
            .and_then(|n| n.split_once('.'))
            .filter(|(digest, _)| {
                digest.len() == 64
                    && digest
                        .bytes()
                        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
            })
            .and_then(|(_, exp)| exp.parse::<u64>().ok())
            .is_some_and(|exp| exp.saturating_add(PRUNE_AFTER) < now);
        if expired {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// What lets others on the host undo the store at `dir`, said after its
/// name: whoever can delete the record of a used code, or swap the folder
/// (or a link on the way to it) for an empty one, makes that code work
/// again. So the folder must be this user's or root's and writable by no
/// one else (a sticky `/tmp` can still be filled by anyone, which slows
/// every pruning), and so must every folder on the way to it, both as
/// given and after links are followed, unless the sticky bit keeps others
/// from renaming what is not theirs.
pub fn store_exposure(dir: &Path) -> Option<String> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    // SAFETY: geteuid cannot fail and touches no memory.
    let me = unsafe { libc::geteuid() };
    let stranger = |m: &std::fs::Metadata| m.uid() != me && m.uid() != 0;
    let mode = |m: &std::fs::Metadata| m.permissions().mode() & 0o7777;
    let real = std::fs::canonicalize(dir).ok()?;
    let meta = std::fs::metadata(&real).ok()?;
    if stranger(&meta) {
        return Some(format!(
            "belongs to another user (uid {}), who can delete the record of a used code, which then works again",
            meta.uid()
        ));
    }
    let m = mode(&meta);
    if m & 0o022 != 0 {
        return Some(format!(
            "has mode {m:04o}: others on this host can delete or add records of used codes (`chmod go-w` it)"
        ));
    }
    let given = std::path::absolute(dir).ok()?;
    let mut folders: Vec<&Path> = given.ancestors().skip(1).collect();
    folders.extend(real.ancestors().skip(1));
    folders.into_iter().find_map(|folder| {
        let meta = std::fs::metadata(folder).ok()?;
        let m = mode(&meta);
        // The sticky bit does not hold back the folder's owner.
        if stranger(&meta) {
            Some(format!(
                "is in `{}`, which belongs to another user (uid {}), who can swap it for an empty folder, and a used code works again",
                folder.display(),
                meta.uid()
            ))
        } else if m & 0o022 != 0 && m & 0o1000 == 0 {
            Some(format!(
                "is in `{}`, mode {m:04o}: others on this host can swap it for an empty folder, and a used code works again (`chmod go-w` that folder)",
                folder.display()
            ))
        } else {
            None
        }
    })
}

/// What a grant binds besides the call: the canonical JSON of the
/// `identity` arguments' values (see `Function::identity`), or `None` when
/// the grant is for the whole call.
pub fn identity_of(identity: &[(String, String)], args: &Value) -> Option<String> {
    if identity.is_empty() {
        return None;
    }
    let bound: serde_json::Map<String, Value> = identity
        .iter()
        .map(|(name, arg)| {
            let value = args.get(arg).map_or(Value::Null, one_spelling);
            (name.clone(), value)
        })
        .collect();
    Some(canonical_json(&Value::Object(bound)))
}

/// `type: integer` accepts `123456.0` and `1.23456e5` as well as `123456`:
/// one account, which must not get three grants or three lock-out counts.
/// (Above 2^53 a float is the integer it rounded to, as for any reader.)
fn one_spelling(value: &Value) -> Value {
    match value.as_f64() {
        Some(f) if value.is_f64() && f.fract() == 0.0 && f.abs() < 9.2e18 => Value::from(f as i64),
        _ => value.clone(),
    }
}

fn grant_message(agent: &str, call_id: &str, identity: Option<&str>, expiry: u64) -> String {
    match identity {
        // A bound grant has one line more, so it never equals an unbound one.
        None => format!("verified\n{agent}\n{call_id}\n{expiry}"),
        Some(identity) => format!("verified\n{agent}\n{call_id}\n{expiry}\n{identity}"),
    }
}

/// The `global_data` key of a grant: [`GRANT_KEY`], or for a bound grant
/// that plus a keyed digest of what it binds (the values themselves, such as
/// account numbers, are not written into `global_data`).
fn grant_key(secret: &Secret, agent: &str, call_id: &str, identity: Option<&str>) -> String {
    match identity {
        None => GRANT_KEY.to_owned(),
        Some(identity) => {
            let tag = secret.sign(format!("grant-key\n{agent}\n{call_id}\n{identity}").as_bytes());
            format!("{GRANT_KEY}_{}", &hex::encode(tag.as_ref())[..16])
        }
    }
}

/// A verification grant for `call_id` (and `identity`): the `global_data`
/// key to set, and its value `{expiry}.{64 hex}`.
pub fn grant(
    secret: &Secret,
    agent: &str,
    call_id: &str,
    identity: Option<&str>,
    expiry: u64,
) -> (String, String) {
    let tag = secret.sign(grant_message(agent, call_id, identity, expiry).as_bytes());
    (
        grant_key(secret, agent, call_id, identity),
        format!("{expiry}.{}", hex::encode(tag.as_ref())),
    )
}

/// True when `global_data` carries a valid, unexpired grant for `call_id`
/// and exactly this `identity`.
pub fn has_grant(
    secret: &Secret,
    global_data: &Value,
    agent: &str,
    call_id: &str,
    identity: Option<&str>,
    now: u64,
) -> bool {
    let key = grant_key(secret, agent, call_id, identity);
    let Some(g) = global_data.get(&key).and_then(Value::as_str) else {
        return false;
    };
    let Some((expiry, sig)) = g.split_once('.') else {
        return false;
    };
    let (Ok(expiry), Ok(sig)) = (expiry.parse::<u64>(), hex::decode(sig)) else {
        return false;
    };
    expiry >= now
        && secret.verify(
            grant_message(agent, call_id, identity, expiry).as_bytes(),
            &sig,
        )
}

#[cfg(test)]
mod tests {
    use super::{
        canonical_json, check_code, confirmation_code, grant, has_grant, identity_of, Code,
        CodeVerdict, UsedCodes, GRANT_KEY, PRUNE_AFTER, PRUNE_EVERY,
    };
    use crate::token::Secret;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        assert_eq!(
            canonical_json(&json!({"b": 1, "a": {"d": [2, {"z": 1, "y": 2}], "c": "x"}})),
            r#"{"a":{"c":"x","d":[2,{"y":2,"z":1}]},"b":1}"#
        );
    }

    #[test]
    fn a_code_has_one_spelling() {
        let s = Secret::new("k");
        let text = confirmation_code(&s, "bank", "c1", "transfer", &json!({}), 1000);
        let code = Code::parse(&text).unwrap();
        assert_eq!(code.expiry, 1000);
        assert_eq!(code.canonical(), text);
        assert_eq!(Code::parse(&format!(" {text}\n")), Some(code));
        let sig = text.split_once('-').unwrap().1;
        for other in [
            format!("+{text}"),
            format!("0{text}"),
            format!("00{text}"),
            format!("1000-{}", sig.to_uppercase()),
            format!("1000-{sig}0"),
            format!("1000-{}", &sig[1..]),
            format!("1000 -{sig}"),
            format!("-{sig}"),
            "1000".to_owned(),
            "nope".to_owned(),
            String::new(),
        ] {
            assert_eq!(Code::parse(&other), None, "{other:?}");
        }
    }

    #[test]
    fn codes_bind_call_function_and_arguments() {
        let s = Secret::new("k");
        let args = json!({"from": "1", "to": "2", "amount": 5});
        let text = confirmation_code(&s, "bank", "c1", "transfer", &args, 1000);
        let code = Code::parse(&text).unwrap();
        let reordered = json!({"amount": 5, "to": "2", "from": "1"});
        assert_eq!(
            check_code(&s, &code, "bank", "c1", "transfer", &reordered, 900),
            CodeVerdict::Valid
        );
        assert_eq!(
            check_code(
                &s,
                &code,
                "bank",
                "c1",
                "transfer",
                &json!({"from": "1", "to": "2", "amount": 6}),
                900
            ),
            CodeVerdict::Mismatch
        );
        assert_eq!(
            check_code(&s, &code, "bank", "c2", "transfer", &args, 900),
            CodeVerdict::Mismatch
        );
        assert_eq!(
            check_code(&s, &code, "bank", "c1", "other", &args, 900),
            CodeVerdict::Mismatch
        );
        assert_eq!(
            check_code(&s, &code, "clinic", "c1", "transfer", &args, 900),
            CodeVerdict::Mismatch
        );
        assert_eq!(
            check_code(&s, &code, "bank", "c1", "transfer", &args, 1001),
            CodeVerdict::Expired
        );
        assert_eq!(
            check_code(
                &Secret::new("other"),
                &code,
                "bank",
                "c1",
                "transfer",
                &args,
                900
            ),
            CodeVerdict::Mismatch
        );
        // A later expiry cannot be patched in: the expiry is signed.
        let patched = Code::parse(&text.replacen("1000", "9999", 1)).unwrap();
        assert_eq!(
            check_code(&s, &patched, "bank", "c1", "transfer", &args, 900),
            CodeVerdict::Mismatch
        );
    }

    #[test]
    fn codes_work_once_even_across_stores_sharing_a_folder() {
        let dir = tempfile::tempdir().unwrap();
        let a = UsedCodes::new(Some(dir.path().to_path_buf()));
        let b = UsedCodes::new(Some(dir.path().to_path_buf()));
        assert!(a.consume("1000-abc", 1000, 900).unwrap());
        assert!(!a.consume("1000-abc", 1000, 900).unwrap());
        assert!(!b.consume("1000-abc", 1000, 900).unwrap());
        let mem = UsedCodes::new(None);
        assert!(mem.consume("x", 1000, 900).unwrap());
        assert!(!mem.consume("x", 1000, 900).unwrap());
    }

    /// Pruning removes only this store's expired files, never other files
    /// whose names happen to end in a number.
    #[test]
    fn pruning_leaves_other_files_alone() {
        let dir = tempfile::tempdir().unwrap();
        let others = ["audit.log.1", "db.20240101", "notes.5"];
        for name in others {
            std::fs::write(dir.path().join(name), "keep").unwrap();
        }
        // Not ours, though it looks it: an expiry past `u64::MAX` less
        // `PRUNE_AFTER` must neither wrap into the past nor panic.
        let far = format!("{}.{}", "a".repeat(64), u64::MAX);
        std::fs::write(dir.path().join(&far), "").unwrap();
        let store = UsedCodes::new(Some(dir.path().to_path_buf()));
        assert!(store.consume("1000-abc", 1000, 900).unwrap());
        store.pruned();
        // Within `PRUNE_AFTER` of its expiry a record stays (another
        // replica's clock may be behind); long after, a new use prunes it.
        assert!(store.consume("2000-xyz", 2000, 1000 + PRUNE_AFTER).unwrap());
        store.pruned();
        let first = hex::encode(ring::digest::digest(&ring::digest::SHA256, b"1000-abc"));
        assert!(dir.path().join(format!("{first}.1000")).exists());
        assert!(store.consume("9000-def", 9000, 8000).unwrap());
        store.pruned();
        std::fs::remove_file(dir.path().join(&far)).unwrap();
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        let ours: Vec<&String> = left
            .iter()
            .filter(|n| !others.contains(&n.as_str()))
            .collect();
        assert_eq!(left.len(), 4, "{left:?}");
        assert_eq!(ours.len(), 1, "{left:?}");
        assert!(ours[0].ends_with(".9000"), "{left:?}");
    }

    /// A folder is listed at most once a minute, off the caller's thread.
    #[test]
    fn pruning_runs_at_most_once_a_minute() {
        let dir = tempfile::tempdir().unwrap();
        let store = UsedCodes::new(Some(dir.path().to_path_buf()));
        let expired = |n: u64| format!("{}.{n}", "b".repeat(63) + &(n % 10).to_string());
        std::fs::write(dir.path().join(expired(1)), "").unwrap();
        assert!(store.consume("5000-a", 5000, 4000).unwrap());
        store.pruned();
        assert!(!dir.path().join(expired(1)).exists());
        // Within the minute, a use leaves the folder alone.
        std::fs::write(dir.path().join(expired(2)), "").unwrap();
        assert!(store
            .consume("5000-b", 5000, 4000 + PRUNE_EVERY - 1)
            .unwrap());
        store.pruned();
        assert!(dir.path().join(expired(2)).exists());
        assert!(store.consume("5000-c", 5000, 4000 + PRUNE_EVERY).unwrap());
        store.pruned();
        assert!(!dir.path().join(expired(2)).exists());
        // A clock that ran ahead and was set back does not stop pruning.
        assert!(store.consume("99999-d", 99999, 90000).unwrap());
        store.pruned();
        std::fs::write(dir.path().join(expired(3)), "").unwrap();
        assert!(store.consume("9000-e", 9000, 8000).unwrap());
        store.pruned();
        assert!(!dir.path().join(expired(3)).exists());
    }

    #[test]
    fn grants_bind_the_call_and_expire() {
        let s = Secret::new("k");
        let (key, g) = grant(&s, "bank", "c1", None, 1000);
        assert_eq!(key, GRANT_KEY);
        let global = json!({ GRANT_KEY: g });
        let holds = |secret: &Secret, global: &serde_json::Value, call: &str, now: u64| {
            has_grant(secret, global, "bank", call, None, now)
        };
        assert!(holds(&s, &global, "c1", 900));
        assert!(!holds(&s, &global, "c2", 900));
        assert!(!holds(&s, &global, "c1", 1001));
        assert!(!holds(&Secret::new("x"), &global, "c1", 900));
        assert!(!holds(&s, &json!({ GRANT_KEY: "1000.00" }), "c1", 900));
        assert!(!holds(&s, &json!({}), "c1", 900));
    }

    #[test]
    fn bound_grants_hold_only_for_what_was_verified() {
        let s = Secret::new("k");
        let pairs = [("account".to_owned(), "from".to_owned())];
        let a = identity_of(&pairs, &json!({"from": "111111", "to": "222222"}));
        let b = identity_of(&pairs, &json!({"from": "999999", "to": "111111"}));
        assert_eq!(a.as_deref(), Some(r#"{"account":"111111"}"#));
        // One integer account, however the number is spelt; a string stays
        // as written, and a fraction is another value.
        let n = [("account".to_owned(), "account".to_owned())];
        for spelling in [json!(123456), json!(123456.0), json!(1.23456e5)] {
            assert_eq!(
                identity_of(&n, &json!({ "account": spelling })).as_deref(),
                Some(r#"{"account":123456}"#)
            );
        }
        // Long card-like numbers too, past where floats are exact.
        for spelling in [json!(18014398509481984u64), json!(1.8014398509481984e16)] {
            assert_eq!(
                identity_of(&n, &json!({ "account": spelling })).as_deref(),
                Some(r#"{"account":18014398509481984}"#)
            );
        }
        assert_eq!(
            identity_of(&n, &json!({"account": "123456.0"})).as_deref(),
            Some(r#"{"account":"123456.0"}"#)
        );
        assert_eq!(
            identity_of(&n, &json!({"account": 1.5})).as_deref(),
            Some(r#"{"account":1.5}"#)
        );
        let (key, g) = grant(&s, "bank", "c1", a.as_deref(), 1000);
        assert!(
            key.starts_with("swagent_verified_") && !key.contains("111111"),
            "{key}"
        );
        let global = json!({ key.clone(): g.clone() });
        assert!(has_grant(&s, &global, "bank", "c1", a.as_deref(), 900));
        assert!(!has_grant(&s, &global, "bank", "c1", b.as_deref(), 900));
        assert!(!has_grant(&s, &global, "bank", "c2", a.as_deref(), 900));
        // Moved under the unbound key, or under B's key: still refused.
        assert!(!has_grant(
            &s,
            &json!({ GRANT_KEY: g.clone() }),
            "bank",
            "c1",
            None,
            900
        ));
        let (key_b, _) = grant(&s, "bank", "c1", b.as_deref(), 1000);
        assert!(!has_grant(
            &s,
            &json!({ key_b: g }),
            "bank",
            "c1",
            b.as_deref(),
            900
        ));
        // Another agent sharing the secret does not take it.
        assert!(!has_grant(&s, &global, "other", "c1", a.as_deref(), 900));
        let (_, code_b) = grant(&s, "other", "c1", a.as_deref(), 1000);
        assert_ne!(code_b, g);
        // An unbound grant does not stand in for a bound one.
        let (_, unbound) = grant(&s, "bank", "c1", None, 1000);
        assert!(!has_grant(
            &s,
            &json!({ key: unbound }),
            "bank",
            "c1",
            a.as_deref(),
            900
        ));
    }
}
