//! `POST /swaig`: one function call, adapted to the call pipeline
//! ([`crate::call::function`]): the body and token in, the reply or the
//! refusal out.

use actix_web::{web, HttpRequest, HttpResponse};

use super::error::ApiError;
use super::request::{client_ip, json_body, presented_token};
use super::state_of;
use crate::call::{self, FunctionCall, Guards};

pub(super) async fn swaig(
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let state = state_of(&req);
    let (body, sent) = json_body(&req, payload, state).await?;
    // The agent of this request, even if a reload swaps it meanwhile.
    let live = state.live();
    let request = FunctionCall {
        body: &body,
        sent: &sent,
        token: presented_token(req.query_string()),
        client: client_ip(&req, state),
    };
    let reply = call::function(state, &live, request, Guards::ALL).await?;
    Ok(HttpResponse::Ok().json(reply))
}
