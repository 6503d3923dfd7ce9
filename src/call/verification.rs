//! The caller-verification gates: a verifier's lock-out (per account, over
//! all calls), and the grant a function that requires verification needs.
//! The grant a verifier gives is the handler step's ([`super::handler`]).

use serde_json::Value;

use super::{Call, Refusal};
use crate::audit::logged_arguments;
use crate::limits::{Admission, Attempt, Checking};

/// A verifier that binds details (an account) is held by their lock-out,
/// and one check of them runs at a time. `Some` is the check in flight,
/// which counts its failure against them.
pub(super) fn attempt(
    call: &Call<'_>,
    identity: Option<&str>,
    args: &Value,
) -> Result<Option<Checking>, Refusal> {
    let function = call.function;
    let Some(identity) = identity.filter(|_| function.verifies_caller) else {
        return Ok(None);
    };
    // What a verifier checks for (an account) and the verifier are locked
    // together: another account, or another verifier, is its own count.
    let logged = || logged_arguments(&function.parameters, args);
    match call
        .live
        .function_limits
        .verification_attempt(&function.name, identity)
    {
        Attempt::Open(checking) => Ok(checking),
        Attempt::Running => Err(Refusal::VerificationRunning { logged: logged() }),
        Attempt::Locked { retry_after } => Err(Refusal::VerificationLocked {
            logged: logged(),
            retry_after: Admission::retry_after_secs(retry_after),
        }),
    }
}

/// A grant from a verifier of this agent, for this call and (when the
/// verifier binds details) these details.
pub(super) fn required(call: &Call<'_>, identity: Option<&str>) -> Result<(), Refusal> {
    let agent = &call.live.agent;
    let granted = crate::guard::has_grant(
        &call.state.settings.secret,
        call.global_data,
        &agent.name,
        call.call_id,
        identity,
        call.now,
    );
    if granted {
        return Ok(());
    }
    let verifiers = agent
        .functions
        .values()
        .filter(|f| f.verifies_caller)
        .map(|f| format!("`{}`", f.name))
        .collect();
    Err(Refusal::NotVerified { verifiers })
}
