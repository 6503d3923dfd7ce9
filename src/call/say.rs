//! Every sentence the AI hears from swagent itself, in one place. Each is an
//! instruction it can act on (ask again, wait, offer another way); none
//! carries a detail from a log, a path, an upstream or a secret.

/// A function the kill switch disables.
pub const DISABLED: &str =
    "That service is unavailable right now. Offer the caller another way to get help.";

/// A call an alert rule blocks (business hours, a large amount).
pub const BLOCKED: &str =
    "I can't do that over the phone right now. Offer the caller another way to get help.";

/// A function over its `rate_limit` (also the `response` of the 429 body).
pub const RATE_LIMITED: &str =
    "Sorry, there have been too many requests for that just now. Please try again in a moment.";

/// `argument.raw` that is not JSON.
pub const ARGUMENTS_NOT_JSON: &str = "The arguments were not valid JSON. Please try again.";

/// Arguments that are not a JSON object.
pub const ARGUMENTS_NOT_OBJECT: &str = "The arguments must be an object. Please try again.";

/// Arguments the schema refuses; `problems` says which and why.
pub fn arguments_refused(problems: &[String]) -> String {
    format!(
        "Some arguments are not acceptable: {}. Please ask the caller again.",
        problems.join("; ")
    )
}

/// What the AI hears while a verifier's `max_failures` holds an account.
pub const VERIFICATION_LOCKED: &str = "Too many failed attempts to verify the caller for these details: no more attempts are allowed for now. Do not try again in this call, and do not reveal anything protected. Offer the caller another way to get help.";

/// What the AI hears when a check of the same details is still running.
pub const VERIFICATION_RUNNING: &str =
    "A check of these details is still running. Wait for its result; do not repeat the check.";

/// A failed check that locked the account, instead of the handler's words,
/// which may say "try again".
pub fn check_failed_and_locked() -> String {
    format!("That check failed. {VERIFICATION_LOCKED}")
}

/// A function that needs a verified caller, before any verifier succeeded;
/// `verifiers` are the functions that verify, each in backticks.
pub fn not_verified(verifiers: &[String]) -> String {
    format!(
        "The caller has not been verified in this call. Verify the caller first with {}, then try again. Do not reveal anything protected before that.",
        verifiers.join(" or ")
    )
}

/// Why a presented confirmation code was not taken.
pub const CODE_USED: &str = "That confirmation code was already used.";
pub const CODE_EXPIRED: &str = "That confirmation has expired.";
pub const CODE_MISMATCH: &str = "That confirmation code does not match these details.";

/// The request to confirm: `lead` says why a code was not taken (empty on
/// the first call), `details` are the `name: value` pairs to read back.
pub fn confirm(lead: &str, details: &str, function: &str, code: &str) -> String {
    format!(
        "{lead}{}Nothing was done yet. Read these details back to the caller: {details}. Ask for an explicit yes. Only if the caller clearly says yes, call `{function}` again with exactly the same details and confirmation \"{code}\". If the caller says no or changes anything, do not call it with this code.",
        if lead.is_empty() { "" } else { " " },
    )
}

/// The description of the `confirmation` argument added to a `confirm: true`
/// function in the SWML.
pub const CONFIRMATION_ARGUMENT: &str = "Leave empty at first. After the caller explicitly said yes to the details you read back, pass the confirmation code you were given, exactly as given.";

/// A handler at its `concurrency` limit.
pub const BUSY: &str = "That service is busy right now; please try again in a moment.";
/// A handler past its `timeout`.
pub const TIMED_OUT: &str = "That took too long; please try again later.";
/// Added to a reply whose handler acted but whose `kind` action this call
/// cannot take.
pub fn not_done(kind: &str) -> &'static str {
    match kind {
        "send_sms" => "(No text message could be sent on this call: tell the caller.)",
        "transfer" => {
            "(The transfer can't be made on this line: offer the caller another way to get help.)"
        }
        _ => "(One step could not be taken on this line: tell the caller.)",
    }
}

/// A file action this call cannot take: a transfer with no number
/// configured, a text to a caller without a number.
pub const ACTION_UNAVAILABLE: &str =
    "That can't be done on this line right now. Offer the caller another way to get help.";

/// A handler that failed (or a confirmation store that could not be written).
pub const FAILED: &str = "Sorry, that service is not working right now; please try again later.";

/// A verifier's reply when its program says only `{"verified": ...}`.
pub const VERIFIED: &str = "The caller is verified.";
pub const NOT_VERIFIED: &str = "The caller could not be verified.";
/// A program that succeeded without a word.
pub const DONE: &str = "Done.";
