//! The Basic Auth layer, in front of every route but the probes (`/health`,
//! `/ready`) and a public `/metrics`: refuses while a required audit log
//! cannot be written (retrying it on each request), then checks the
//! credentials. A thin shell around [`crate::auth::Credentials::check`],
//! which decides; a failure counts toward the lock-out ([`super::lockout`]).

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::AUTHORIZATION;
use actix_web::middleware::Next;
use actix_web::ResponseError;

use super::error::ApiError;
use super::lockout::auth_failure;
use super::paths::is_probe;
use super::request::client_ip;
use super::state_of;
use crate::audit::Event;

pub(super) async fn basic_auth(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let state = state_of(req.request());
    let public = is_probe(req.path()) || (req.path() == "/metrics" && state.metrics_public);
    if public {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    if !state.audit_writable() {
        let resp = ApiError::from(crate::state::AuditUnavailable).error_response();
        return Ok(req.into_response(resp).map_into_right_body());
    }
    let header = req.headers().get(AUTHORIZATION).map(|h| h.as_bytes());
    match state.settings.creds.check(header) {
        Ok(()) => next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body),
        Err(failure) => {
            let ip = client_ip(req.request(), state);
            if let Some(suppressed) = state.log_sampler.auth.admit() {
                log::warn!(
                    "auth failed ({}) from {} for {} {} ({suppressed} more since the last such line; all are in the audit log)",
                    failure.code(),
                    ip.map_or_else(|| "-".into(), |a| a.to_string()),
                    req.method(),
                    req.path()
                );
            }
            state.metrics.auth_failures.inc();
            // The refusal stands whether or not the line could be written.
            let _ = state.audit_event(|| {
                Event::new("auth_failed", "denied")
                    .client(ip)
                    .field("reason", failure.code())
                    .field("path", req.path().to_owned())
            });
            let err = auth_failure(req.request(), state, ApiError::Unauthorized);
            let resp = err.error_response();
            Ok(req.into_response(resp).map_into_right_body())
        }
    }
}
