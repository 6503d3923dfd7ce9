//! [`Refusal`]: every way the call pipeline turns a request down, and, in
//! one place, what each one is: its HTTP status and error code, its audit
//! event, its metric and its log line, and the sentence the AI hears.
//!
//! Refusals with status 200 are answers the AI can act on ("ask again",
//! "offer another way"); the others are errors for the platform, with a
//! JSON body that carries no internals.

use std::time::Duration;

use serde_json::Value;

use super::arguments::InvalidArguments;
use super::say;
use crate::audit::Event;
use crate::handlers::HandlerError;
use crate::state::AuditUnavailable;

/// Why a call was not run, or ran and failed.
#[derive(Debug)]
pub enum Refusal {
    /// A call id that cannot be bound into a token.
    InvalidCallId(crate::token::CallIdError),
    /// The body names no function.
    NoFunction,
    /// The body's `function` is not a non-empty string.
    BadFunction,
    /// The function is not in this agent.
    UnknownFunction,
    /// A secure function, or the summary, without a valid token for it and
    /// this call; `prefix` is the token's first characters, for the audit log.
    Token {
        verdict: &'static str,
        prefix: String,
    },
    /// The kill switch disables the function.
    Disabled,
    /// The function is over its `rate_limit`.
    RateLimited { retry_after: u64 },
    /// A guarded function (confirm, verification) without a call id.
    CallIdRequired,
    /// `argument.raw` is not JSON.
    ArgumentsNotJson,
    /// The schema refuses the arguments; `logged` are they, as the audit
    /// log may hold them, and `took` how long the call had taken.
    InvalidArguments {
        invalid: InvalidArguments,
        logged: Value,
        took: Duration,
    },
    /// An alert rule blocks the call.
    Blocked,
    /// The verifier's lock-out holds these details.
    VerificationLocked { logged: Value, retry_after: u64 },
    /// A check of the same details is running.
    VerificationRunning { logged: Value },
    /// No verification grant for this call (and details).
    NotVerified { verifiers: Vec<String> },
    /// A confirmation is needed first: `text` asks for it.
    Confirm { text: String, logged: Value },
    /// The confirmation store could not be written.
    StoreFailed,
    /// A required audit log cannot be written.
    AuditUnavailable,
    /// The handler's `concurrency` is saturated.
    Busy,
    /// The handler failed or timed out; `locked` when that failure locked
    /// a verifier's account.
    Failed { error: HandlerError, locked: bool },
    /// The handler's output carried an action its function does not allow
    /// (`kind`, for the audit log; never the content).
    ActionRefused { kind: &'static str },
    /// A file action that cannot run on this call (`why`, for the log): a
    /// transfer whose `${env:...}` destination was unset, a text to a
    /// caller without a number.
    ActionUnavailable { kind: &'static str, why: String },
    /// The handler's output picked an outcome the function does not declare.
    OutcomeRefused,
    /// The summary outbox is at its bound: the platform should try later.
    OutboxFull,
    /// The summary outbox cannot be written: the platform should try later.
    OutboxUnavailable,
}

/// A counter a refusal adds one to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// `function_calls_total{function, outcome}`.
    FunctionCalls(&'static str),
    /// `rate_limited_total{limit}`.
    RateLimited(&'static str),
    /// `token_rejections_total{verdict}`.
    TokenRejections(&'static str),
}

impl From<AuditUnavailable> for Refusal {
    fn from(_: AuditUnavailable) -> Refusal {
        Refusal::AuditUnavailable
    }
}

impl Refusal {
    /// The HTTP status: 200 for the answers the AI hears.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::InvalidCallId(_)
            | Refusal::NoFunction
            | Refusal::BadFunction
            | Refusal::CallIdRequired => 400,
            Refusal::Token { .. } => 403,
            Refusal::UnknownFunction => 404,
            Refusal::RateLimited { .. } => 429,
            Refusal::AuditUnavailable
            | Refusal::Busy
            | Refusal::OutboxFull
            | Refusal::OutboxUnavailable => 503,
            _ => 200,
        }
    }

    /// The `error` code of a refusal that is not a 200.
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::InvalidCallId(_) => "invalid_call_id",
            Refusal::NoFunction | Refusal::BadFunction | Refusal::CallIdRequired => "bad_request",
            Refusal::Token { .. } => "invalid_token",
            Refusal::UnknownFunction => "unknown_function",
            Refusal::RateLimited { .. } => "function_rate_limited",
            Refusal::AuditUnavailable => "audit_unavailable",
            Refusal::Busy => "busy",
            Refusal::OutboxFull => "outbox_full",
            Refusal::OutboxUnavailable => "outbox_unavailable",
            _ => "refused",
        }
    }

    /// The `message` of a refusal that is not a 200: safe text, no internals.
    pub fn message(&self) -> String {
        match self {
            Refusal::InvalidCallId(e) => e.to_string(),
            Refusal::NoFunction => "`function` is missing".into(),
            Refusal::BadFunction => "`function` must be a non-empty string".into(),
            Refusal::CallIdRequired => "`call_id` is required for this function".into(),
            Refusal::Token { .. } => "missing or invalid function token".into(),
            Refusal::UnknownFunction => "no such function".into(),
            Refusal::RateLimited { retry_after } => {
                format!("the function was called too often; retry after {retry_after} s")
            }
            Refusal::AuditUnavailable => "the service is unavailable".into(),
            Refusal::Busy => "the function is busy; try again shortly".into(),
            Refusal::OutboxFull | Refusal::OutboxUnavailable => {
                "the summary cannot be kept now; try again later".into()
            }
            _ => self.sentence().unwrap_or_default(),
        }
    }

    /// `Retry-After`, in seconds.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Refusal::RateLimited { retry_after } => Some(*retry_after),
            Refusal::Busy => Some(1),
            Refusal::OutboxFull | Refusal::OutboxUnavailable => Some(60),
            _ => None,
        }
    }

    /// What the AI hears: the reply of a 200, and the `response` of a 429.
    pub fn sentence(&self) -> Option<String> {
        Some(match self {
            Refusal::Disabled => say::DISABLED.into(),
            Refusal::RateLimited { .. } => say::RATE_LIMITED.into(),
            Refusal::ArgumentsNotJson => say::ARGUMENTS_NOT_JSON.into(),
            Refusal::InvalidArguments { invalid, .. } => invalid.for_ai(),
            Refusal::Blocked => say::BLOCKED.into(),
            Refusal::VerificationLocked { .. } => say::VERIFICATION_LOCKED.into(),
            Refusal::VerificationRunning { .. } => say::VERIFICATION_RUNNING.into(),
            Refusal::NotVerified { verifiers } => say::not_verified(verifiers),
            Refusal::Confirm { text, .. } => text.clone(),
            Refusal::StoreFailed => say::FAILED.into(),
            Refusal::Failed { locked: true, .. } => say::check_failed_and_locked(),
            Refusal::Failed { error, .. } => error.spoken().into(),
            Refusal::ActionRefused { .. } => say::FAILED.into(),
            Refusal::ActionUnavailable { .. } => say::ACTION_UNAVAILABLE.into(),
            Refusal::OutcomeRefused => say::FAILED.into(),
            _ => return None,
        })
    }

    /// The audit event a gate's refusal writes, with its own fields; the
    /// pipeline adds the call, function and client. Refusals after the
    /// handler ran are recorded by the handler step.
    pub fn audit(&self) -> Option<Event> {
        Some(match self {
            Refusal::Token { verdict, prefix } => Event::new("token_rejected", "denied")
                .field("verdict", *verdict)
                .field("token_prefix", prefix.as_str()),
            Refusal::Disabled => Event::new("function_disabled", "refused"),
            Refusal::RateLimited { .. } => {
                Event::new("rate_limited", "refused").field("limit", "function")
            }
            Refusal::InvalidArguments { logged, took, .. } => {
                Event::new("function_called", "invalid_arguments")
                    .field("arguments", logged.clone())
                    .duration(*took)
            }
            Refusal::VerificationLocked {
                logged,
                retry_after,
            } => Event::new("caller_verification", "locked_out")
                .field("arguments", logged.clone())
                .field("retry_after", *retry_after),
            Refusal::VerificationRunning { logged } => {
                Event::new("caller_verification", "concurrent").field("arguments", logged.clone())
            }
            Refusal::NotVerified { .. } => Event::new("verification_required", "refused"),
            Refusal::ActionRefused { kind } => {
                Event::new("action_refused", "refused").field("kind", *kind)
            }
            Refusal::ActionUnavailable { kind, .. } => {
                Event::new("action_unavailable", "refused").field("kind", *kind)
            }
            Refusal::OutcomeRefused => Event::new("outcome_refused", "refused"),
            Refusal::Confirm { logged, .. } => {
                Event::new("confirmation_requested", "pending").field("arguments", logged.clone())
            }
            _ => return None,
        })
    }

    /// The counter a gate's refusal adds one to.
    pub fn metric(&self) -> Option<Metric> {
        Some(match self {
            Refusal::Token { verdict, .. } => Metric::TokenRejections(verdict),
            Refusal::Disabled => Metric::FunctionCalls("disabled"),
            Refusal::Blocked => Metric::FunctionCalls("blocked"),
            Refusal::ActionRefused { .. } => Metric::FunctionCalls("action_refused"),
            Refusal::ActionUnavailable { .. } => Metric::FunctionCalls("action_unavailable"),
            Refusal::OutcomeRefused => Metric::FunctionCalls("outcome_refused"),
            Refusal::RateLimited { .. } => Metric::RateLimited("function"),
            Refusal::VerificationLocked { .. } | Refusal::VerificationRunning { .. } => {
                Metric::RateLimited("verification")
            }
            _ => return None,
        })
    }

    /// The WARN line a gate's refusal writes about `function`, if any;
    /// `bound` names the arguments a verifier binds (never their values).
    pub fn log_line(&self, function: &str, bound: &str) -> Option<String> {
        Some(match self {
            Refusal::Disabled => {
                format!("function `{function}` refused: disabled by the kill switch")
            }
            Refusal::RateLimited { .. } => {
                format!("function `{function}` refused: over its `rate_limit`")
            }
            Refusal::VerificationLocked { .. } => {
                format!("function `{function}` refused: too many failed checks for these {bound}")
            }
            Refusal::VerificationRunning { .. } => format!(
                "function `{function}` refused: a check is already running for these {bound}"
            ),
            Refusal::OutcomeRefused => format!(
                "function `{function}`: its handler picked an outcome the file does not declare; the call failed"
            ),
            Refusal::ActionUnavailable { kind, why } => {
                format!("function `{function}`: its `{kind}` action is unavailable: {why}")
            }
            Refusal::ActionRefused { kind } => format!(
                "function `{function}`: its handler's output carried a `{kind}` action that its `actions_from_output` does not allow; the call failed"
            ),
            _ => return None,
        })
    }
}
