//! The failed-authentication lock-out: every failure (a wrong password, a
//! bad signature) counts against the client's address, and for a signed
//! webhook against its signature instead, since SignalWire's addresses are
//! shared by all its customers.

use actix_web::{HttpMessage as _, HttpRequest};

use super::error::ApiError;
use super::request::client_ip;
use crate::limits::{client_unit, Admission};
use crate::state::AppState;

/// What a signed webhook's valid signature vouches for
/// ([`crate::signature::replay_key`]); kept in the request so a failure after it
/// counts against it.
#[derive(Clone)]
pub(super) struct SignedBy(pub(super) Vec<u8>);

/// Counts an authentication failure from the request's address, and for a
/// signed webhook against its signature: the refusal itself, or 429 when it
/// is one too many.
pub(super) fn auth_failure(req: &HttpRequest, state: &AppState, refusal: ApiError) -> ApiError {
    let too_many = |retry_after| ApiError::TooManyFailures {
        retry_after: Admission::retry_after_secs(retry_after),
    };
    let ip = client_ip(req, state);
    state.auth_failed_alert(ip);
    // Always per address: that keeps the address's unsigned requests
    // locked out once it has failed too often.
    let by_address = match (state.limits.auth_failures.as_ref(), ip) {
        (Some(failures), Some(ip)) => failures.record(client_unit(ip)),
        _ => Admission::Allowed,
    };
    // A signed webhook is judged by its signature's count alone: the
    // address may be SignalWire's, shared by all its customers.
    if let Some(SignedBy(tag)) = req.extensions().get::<SignedBy>().cloned() {
        return match state.limits.signed_failures.as_ref().map(|f| f.record(tag)) {
            Some(Admission::Limited { retry_after }) => {
                log::warn!("too many failed authentications with one signed request: locked out");
                too_many(retry_after)
            }
            _ => refusal,
        };
    }
    match by_address {
        Admission::Allowed => refusal,
        Admission::Limited { retry_after } => {
            if let Some(ip) = ip {
                log::warn!("too many failed authentications from {ip}: locked out");
            }
            too_many(retry_after)
        }
    }
}
