//! `POST /post_prompt`: the call's summary, adapted to the call pipeline
//! ([`crate::call::summary`]).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::error::ApiError;
use super::request::{client_ip, json_body, presented_token};
use super::state_of;

pub(super) async fn post_prompt(
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let state = state_of(&req);
    let (body, sent) = json_body(&req, payload, state).await?;
    let post = crate::call::SummaryPost {
        body: &body,
        sent: &sent,
        token: presented_token(req.query_string()),
        client: client_ip(&req, state),
    };
    crate::call::summary(state, &state.live(), post).await?;
    Ok(HttpResponse::Ok().json(json!({ "response": "ok" })))
}
