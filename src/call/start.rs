//! A call's start: the platform fetches the agent's SWML document. The call
//! id is checked before anything is counted (a refused request starts no
//! call and raises no `calls_per_minute` alert), then the start is counted,
//! its alert rules judged, and the document prepared at load filled in.

use std::net::IpAddr;

use super::Refusal;
use crate::state::{AppState, Live};
use crate::swml::RenderContext;
use crate::token;

/// The call id a start names, checked; a fresh one when it names none.
pub fn start_id(sent: Option<String>) -> Result<String, Refusal> {
    let call_id = sent.unwrap_or_else(|| crate::random::hex(16));
    token::check_call_id(&call_id).map_err(Refusal::InvalidCallId)?;
    Ok(call_id)
}

/// The SWML document of call `call_id` (checked by [`start_id`]), with
/// webhook URLs under `base_url`.
pub fn start(
    state: &AppState,
    live: &Live,
    call_id: &str,
    base_url: &str,
    client: Option<IpAddr>,
) -> Result<String, Refusal> {
    state.metrics.calls_started.inc();
    let fired = live.alerts.call_started(chrono::Utc::now());
    state.raise(&fired, Some(call_id), None, client)?;
    live.swml
        .render(&RenderContext {
            base_url,
            userinfo: &state.userinfo,
            secret: &state.settings.secret,
            call_id,
            now: crate::clock::now(),
        })
        .map_err(Refusal::InvalidCallId)
}
