//! The Basic Auth gate in front of every route but `/health`.
//!
//! A thin shell around [`crate::auth::Credentials::check`], which decides.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::AUTHORIZATION;
use actix_web::middleware::Next;
use actix_web::{web, ResponseError};

use super::error::ApiError;
use super::AppState;

pub(super) async fn basic_auth(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if req.path() == "/health" {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let state = req
        .app_data::<web::Data<AppState>>()
        .expect("the app factory sets the state");
    let header = req.headers().get(AUTHORIZATION).map(|h| h.as_bytes());
    match state.settings.creds.check(header) {
        Ok(()) => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body),
        Err(failure) => {
            log::warn!(
                "auth failed ({}) from {} for {} {}",
                failure.code(),
                req.peer_addr()
                    .map_or_else(|| "-".into(), |a| a.ip().to_string()),
                req.method(),
                req.path()
            );
            let err = super::guard::auth_failure(req.request(), state, ApiError::Unauthorized);
            let resp = err.error_response();
            Ok(req.into_response(resp).map_into_right_body())
        }
    }
}
