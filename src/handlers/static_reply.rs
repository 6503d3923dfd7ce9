//! The static handler: a fixed reply, templated, with the file's actions.

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
        action: spec.action.clone(),
        ..Reply::text(response)
    })
}
