//! The SWML route (`GET`/`POST` at the agent's route): a call's start,
//! adapted to the call pipeline ([`crate::call::start`]). The call id comes
//! from the query, else from a JSON body the platform posts.

use actix_web::http::header::ContentType;
use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};

use super::error::ApiError;
use super::request::{base_url, client_ip, is_json, query_param, read_body};
use super::state_of;
use crate::call::{self, body::BodyError, CallBody};

pub(super) async fn swml(
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let state = state_of(&req);
    let mut sent = query_param(&req, "call_id");
    let mut call = None;
    if req.method() == Method::POST {
        let body = read_body(req.headers(), payload, &state.settings, None).await?;
        // The platform posts JSON; other bodies carry nothing we use.
        if is_json(req.headers()) && !body.is_empty() {
            match CallBody::parse(&body) {
                Ok(b) => {
                    sent = b.call_id().map(str::to_owned).or(sent);
                    call = b.call().cloned();
                }
                // Any JSON will do; only an object can name the call.
                Err(BodyError::NotObject) => {}
                Err(BodyError::NotJson) => {
                    return Err(ApiError::BadRequest(
                        "the request body is not valid JSON".into(),
                    ))
                }
            }
        }
    }
    let call_id = call::start_id(sent)?;
    let base = base_url(&req, state)?;
    let client = client_ip(&req, state);
    let doc = if state.live_now().agent.on_call_start.is_some() {
        // The lookup awaits: hold the agent it started with.
        let live = state.live();
        call::start_looked_up(state, &live, &call_id, &base, client, call.as_ref()).await?
    } else {
        // A guard, not a clone: nothing below awaits.
        let live = state.live_now();
        call::start(state, &live, &call_id, &base, client)?
    };
    Ok(HttpResponse::Ok()
        .content_type(ContentType::json())
        .body(doc))
}
