//! Confirmation codes: an HMAC under the token secret over the agent, the
//! call id, the function and the canonical JSON of the confirmed details,
//! with an expiry. One spelling each, so a code cannot be reworded into a
//! fresh one.

use serde_json::Value;

use super::canonical_json;
use crate::token::Secret;

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

#[cfg(test)]
mod tests {
    use super::{check_code, confirmation_code, Code, CodeVerdict};
    use crate::token::Secret;
    use serde_json::json;

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
}
