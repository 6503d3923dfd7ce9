//! The Basic Auth layer, in front of every route but the probes (`/health`,
//! `/ready`) and a public `/metrics`: refuses while a required audit log
//! cannot be written (retrying it on each request), then checks the
//! credentials. A thin shell around [`crate::auth::Credentials::check`],
//! which decides; a failure counts toward the lock-out ([`super::lockout`]).
//!
//! A `Transform` of its own rather than `from_fn`: its decision needs no
//! `await`, and `from_fn` boxes a future per request (measured: about 600
//! instructions of a static SWAIG call, `bench/icount.sh`).

use std::future::{ready, Ready};

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::AUTHORIZATION;
use actix_web::{HttpResponse, ResponseError};
use futures_util::future::{Either, MapOk};
use futures_util::TryFutureExt as _;

use super::error::ApiError;
use super::lockout::auth_failure;
use super::paths::is_probe;
use super::request::client_ip;
use super::state_of;
use crate::audit::Event;

/// The layer, for `App::wrap`.
pub(super) struct BasicAuth;

impl<S, B> Transform<S, ServiceRequest> for BasicAuth
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = Gate<S>;
    type InitError = ();
    type Future = Ready<Result<Gate<S>, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(Gate { service }))
    }
}

/// The layer around the routes.
pub(super) struct Gate<S> {
    service: S,
}

type Passed<B> = fn(ServiceResponse<B>) -> ServiceResponse<EitherBody<B>>;

impl<S, B> Service<ServiceRequest> for Gate<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = Either<
        MapOk<S::Future, Passed<B>>,
        Ready<Result<ServiceResponse<EitherBody<B>>, actix_web::Error>>,
    >;

    actix_web::dev::forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        match refusal(&req) {
            None => Either::Left(
                self.service
                    .call(req)
                    .map_ok(ServiceResponse::map_into_left_body as Passed<B>),
            ),
            Some(resp) => Either::Right(ready(Ok(req.into_response(resp).map_into_right_body()))),
        }
    }
}

/// The answer to a request this layer turns away; `None` lets it through.
fn refusal(req: &ServiceRequest) -> Option<HttpResponse> {
    let state = state_of(req.request());
    if is_probe(req.path()) || (req.path() == "/metrics" && state.metrics_public) {
        return None;
    }
    if !state.audit_writable() {
        return Some(ApiError::from(crate::state::AuditUnavailable).error_response());
    }
    let header = req.headers().get(AUTHORIZATION).map(|h| h.as_bytes());
    let failure = state.settings.creds.check(header).err()?;
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
    Some(auth_failure(req.request(), state, ApiError::Unauthorized).error_response())
}
