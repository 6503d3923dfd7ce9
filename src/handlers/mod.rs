//! Running a function's handler: shell, http or static, behind one entry point.
//!
//! Arguments reach [`Runtime::run`] only after they passed the function's
//! schema. What a handler may do is fixed by the agent file; the arguments are
//! data inserted through [`crate::template`]. Failures carry their detail for
//! the server log; callers only ever hear [`HandlerError::spoken`].

mod foreach;
mod http;
mod shell;
mod static_reply;

pub use shell::seal_inherited_descriptors;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::agent::{Agent, Function, Handler};
use crate::template::{Context, RenderError};
use crate::webhook::Signer;

/// What a function call gets besides its spec.
#[derive(Debug, Clone, Copy)]
pub struct CallInput<'a> {
    pub args: &'a Value,
    pub call_id: &'a str,
    pub global_data: &'a Value,
    pub meta_data: &'a Value,
    /// The call as the SWML request reported it (`on_call_start`), or as
    /// the hangup payload did (`on_call_end`).
    pub call: Option<&'a Value>,
    /// A hook's own payload: the hangup's, or the summary.
    pub payload: Option<&'a Value>,
}

impl<'a> CallInput<'a> {
    /// The templates' view of this input, before any handler answered.
    fn context(&self, env: &'a dyn Fn(&str) -> Option<String>) -> Context<'a> {
        Context {
            args: self.args,
            call_id: self.call_id,
            global_data: self.global_data,
            meta_data: self.meta_data,
            response: None,
            call: self.call,
            payload: self.payload,
            item: None,
            list: None,
            env,
        }
    }
}

/// A SWAIG reply: `{"response": ..., "action": [...]}`, `action` omitted
/// when empty. Serialized as it is, with no intermediate `Value`.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Reply {
    pub response: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub action: Vec<Value>,
    /// The AI says the response before the actions run (only with actions,
    /// as the SDK sends it).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub post_process: bool,
    /// The JSON the handler answered with, for its function's action
    /// templates (`${response...}`, `${output...}`).
    #[serde(skip)]
    pub data: Option<Value>,
    /// Actions a program or an upstream returned: never sent until the
    /// call pipeline admitted them (`call::actions`).
    #[serde(skip)]
    pub output_action: Vec<Value>,
    /// The backend refused, with words the caller should hear (a 4xx, an
    /// error key, or exit status 1, with a `response`): no action runs.
    #[serde(skip)]
    pub refused: bool,
    /// A `verifies_caller` handler matched (never sent; the server turns it into a grant).
    #[serde(skip)]
    pub verified: bool,
}

impl Reply {
    /// A reply with no actions.
    pub fn text(response: impl Into<String>) -> Reply {
        Reply {
            response: response.into(),
            action: Vec::new(),
            post_process: false,
            data: None,
            output_action: Vec::new(),
            refused: false,
            verified: false,
        }
    }
}

/// How one delivery attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Delivered,
    /// Worth another try: a 5xx, a 429, a timeout, no connection. `after`:
    /// what the receiver asked for (`Retry-After`).
    Retry {
        reason: String,
        after: Option<Duration>,
    },
    /// The receiver said no for good (another 4xx): tried again, it would
    /// say no again.
    Rejected {
        reason: String,
    },
}

impl Delivery {
    fn retry(reason: String) -> Delivery {
        Delivery::Retry {
            reason,
            after: None,
        }
    }
}

/// Why a handler did not produce a reply.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The function's `concurrency` is saturated.
    #[error("function `{function}` is at its concurrency limit")]
    Busy { function: String },
    /// The handler ran past its `timeout`.
    #[error("function `{function}` timed out after {after:?}")]
    Timeout { function: String, after: Duration },
    /// The handler failed; `detail` is for the server log only.
    #[error("function `{function}` failed: {detail}")]
    Failed { function: String, detail: String },
}

impl HandlerError {
    /// What the caller hears. Never carries detail.
    pub fn spoken(&self) -> &'static str {
        match self {
            HandlerError::Busy { .. } => {
                "That service is busy right now; please try again in a moment."
            }
            HandlerError::Timeout { .. } => "That took too long; please try again later.",
            HandlerError::Failed { .. } => {
                "Sorry, that service is not working right now; please try again later."
            }
        }
    }

    fn timed_out(function: &str, after: Duration) -> HandlerError {
        HandlerError::Timeout {
            function: function.to_owned(),
            after,
        }
    }

    /// `detail` goes to the server log: a program's stderr or an upstream's
    /// words may echo a caller's argument, so a line break or a bidi control
    /// in it is escaped, and cannot forge or reorder a line.
    fn failed(function: &str, detail: impl AsRef<str>) -> HandlerError {
        HandlerError::Failed {
            function: function.to_owned(),
            detail: crate::text::printable(detail.as_ref()),
        }
    }

    fn render(function: &str, e: RenderError) -> HandlerError {
        HandlerError::failed(function, e.to_string())
    }
}

/// Shared state for running handlers: one HTTP client, the signer of its
/// requests and the per-function concurrency limits. Built once per loaded
/// agent.
pub struct Runtime {
    client: reqwest::Client,
    /// For summary deliveries: follows no redirect, since a 301 turns a
    /// POST into a GET without its body, and a 2xx to that is no delivery.
    delivery_client: reqwest::Client,
    /// Signs http handlers' requests (`SWAGENT_WEBHOOK_SECRET`).
    signer: Option<Arc<Signer>>,
    /// Per shell or http function: its `concurrency` and the slots that
    /// enforce it.
    limits: HashMap<String, (u32, Arc<Semaphore>)>,
}

impl Runtime {
    /// Builds the runtime for `agent`, whose requests are not signed.
    pub fn new(agent: &Agent) -> Runtime {
        Runtime::carried(agent, None, None)
    }

    /// The runtime of a reloaded `agent`. A function whose `concurrency` did
    /// not change keeps its slots from `previous`: runs still in flight from
    /// before the reload hold them, and new slots would let a
    /// `concurrency: 1` function run twice at once.
    pub fn carried(
        agent: &Agent,
        previous: Option<&Runtime>,
        signer: Option<Arc<Signer>>,
    ) -> Runtime {
        let limits = agent
            .handlers()
            .filter_map(|f| {
                let concurrency = f.handler.concurrency()?;
                let kept = previous
                    .and_then(|p| p.limits.get(&f.name))
                    .filter(|(n, _)| *n == concurrency);
                let slots = kept.map_or_else(
                    || Arc::new(Semaphore::new(concurrency as usize)),
                    |(_, slots)| Arc::clone(slots),
                );
                Some((f.name.clone(), (concurrency, slots)))
            })
            .collect();
        let requests = agent
            .handlers()
            .filter(|f| matches!(f.handler, Handler::Http(_)))
            .filter_map(|f| f.handler.concurrency())
            .map(|n| n as usize)
            .sum();
        Runtime {
            client: http::client(true, requests),
            delivery_client: http::client(false, 1),
            signer,
            limits,
        }
    }

    /// Runs `function` with validated arguments.
    pub async fn run(
        &self,
        agent: &Agent,
        function: &Function,
        input: CallInput<'_>,
    ) -> Result<Reply, HandlerError> {
        let env = |name: &str| agent.env_value(name);
        let ctx = input.context(&env);
        match &function.handler {
            Handler::Static(spec) => static_reply::run(&function.name, spec, &ctx),
            Handler::Http(spec) => {
                let _slot = self.slot(function)?;
                http::run(self.sender(), &function.name, spec, &ctx).await
            }
            Handler::Shell(spec) => {
                let _slot = self.slot(function)?;
                shell::run(&agent.dir, &function.name, spec, &ctx).await
            }
        }
    }

    /// One attempt to deliver a summary with `function`'s handler (`id`
    /// goes with it, so a receiver can drop a duplicate).
    pub async fn deliver(
        &self,
        agent: &Agent,
        function: &Function,
        input: CallInput<'_>,
        id: &str,
    ) -> Delivery {
        let env = |name: &str| agent.env_value(name);
        let ctx = input.context(&env);
        let _slot = match self.slot(function) {
            Ok(slot) => slot,
            Err(e) => return Delivery::retry(e.to_string()),
        };
        match &function.handler {
            Handler::Http(spec) => {
                let sender = http::Sender {
                    client: &self.delivery_client,
                    ..self.sender()
                };
                http::deliver(sender, &function.name, spec, &ctx, id).await
            }
            // A program that exits 1 with words refused it; any other
            // failure may pass.
            Handler::Shell(spec) => {
                match shell::run(&agent.dir, &function.name, spec, &ctx).await {
                    Ok(reply) if reply.refused => Delivery::Rejected {
                        reason: "the program refused it (exit status 1)".into(),
                    },
                    Ok(_) => Delivery::Delivered,
                    Err(e) => Delivery::retry(e.to_string()),
                }
            }
            Handler::Static(_) => Delivery::Delivered,
        }
    }

    fn sender(&self) -> http::Sender<'_> {
        http::Sender {
            client: &self.client,
            signer: self.signer.as_deref(),
        }
    }

    /// One of `function`'s `concurrency` slots, held while it runs. Refused
    /// at once rather than queued: a queue that grows without bound is how a
    /// looping AI takes the systems behind it down, and each run holds
    /// descriptors that would otherwise be left for connections.
    fn slot(&self, function: &Function) -> Result<OwnedSemaphorePermit, HandlerError> {
        self.limits
            .get(&function.name)
            .and_then(|(_, slots)| slots.clone().try_acquire_owned().ok())
            .ok_or_else(|| HandlerError::Busy {
                function: function.name.clone(),
            })
    }
}

/// Turns handler stdout or an HTTP body into a reply: a JSON object with
/// `response` (and optionally `action`) is used as is, one that picks an
/// `outcome` needs no words; anything else is text.
fn reply_from_output(text: &str) -> Reply {
    let trimmed = text.trim();
    if let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(trimmed) {
        if let Some(reply) = reply_from_object(&obj) {
            return reply;
        }
    }
    if trimmed.is_empty() {
        Reply::text("Done.")
    } else {
        Reply::text(trimmed)
    }
}

/// The reply a JSON object says, if it says one: its `response` (and
/// `action`), an `outcome`, or a `verified`.
fn reply_from_object(obj: &serde_json::Map<String, Value>) -> Option<Reply> {
    let verified = obj.get("verified") == Some(&Value::Bool(true));
    let response = match obj.get("response") {
        Some(resp) => Some(crate::template::value_to_text(resp)),
        // Its outcome's actions say what happened, not the JSON.
        None if obj.contains_key("outcome") => Some("Done.".to_owned()),
        None => None,
    };
    if let Some(response) = response {
        let action = match obj.get("action") {
            Some(Value::Array(a)) => a.clone(),
            Some(other) if !other.is_null() => vec![other.clone()],
            _ => Vec::new(),
        };
        return Some(Reply {
            output_action: action,
            verified,
            ..Reply::text(response)
        });
    }
    obj.contains_key("verified").then(|| {
        let mut reply = Reply::text(if verified {
            "The caller is verified."
        } else {
            "The caller could not be verified."
        });
        reply.verified = verified;
        reply
    })
}

/// The most of a backend's refusal the AI is given.
const REFUSAL_WORDS: usize = 1024;

/// A backend's refusal the caller should hear: the `response` string of a
/// JSON object, cut to 1 KiB; `None` when there is none.
fn refusal(body: &[u8]) -> Option<Reply> {
    let json: Value = serde_json::from_slice(body).ok()?;
    let words = json.get("response")?.as_str()?.trim();
    let mut end = words.len().min(REFUSAL_WORDS);
    while !words.is_char_boundary(end) {
        end -= 1;
    }
    (!words.is_empty()).then(|| Reply {
        refused: true,
        ..Reply::text(&words[..end])
    })
}

/// The JSON object a handler printed or an upstream answered, if any: what
/// its function's action templates read.
fn json_object(text: &str) -> Option<Value> {
    serde_json::from_str::<Value>(text.trim())
        .ok()
        .filter(Value::is_object)
}
