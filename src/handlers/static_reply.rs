//! The static handler: a fixed reply, templated, with actions passed through.

use super::{HandlerError, Reply};
use crate::agent::StaticSpec;
use crate::template::{Context, Encoding};

pub(super) fn run(
    function: &str,
    spec: &StaticSpec,
    ctx: &Context<'_>,
) -> Result<Reply, HandlerError> {
    let response = spec
        .response
        .render(ctx, Encoding::Text)
        .map_err(|e| HandlerError::render(function, e))?;
    Ok(Reply {
        response,
        action: spec.action.clone(),
        verified: false,
    })
}
