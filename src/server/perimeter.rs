//! The perimeter in front of Basic Auth: security headers and request
//! counts, the per-address rate limit, allowed hosts, the
//! failed-authentication lock-out and SignalWire request signatures.
//!
//! Order, outermost first: [`outer`] (so every answer, refusals included,
//! carries the headers and is counted), then [`perimeter`]: rate limit,
//! `Host` (and `X-Forwarded-Host` behind a trusted proxy), lock-out,
//! signature, and last `gate::basic_auth`. Signatures are checked before
//! Basic Auth, as the SignalWire SDK does: an unsigned request is refused
//! without looking at credentials, so a stranger learns nothing about them,
//! and a failed signature counts toward the lock-out like a failed password.
//! A signed webhook skips the per-address lock-out (SignalWire's addresses
//! are shared) and is locked out per signature instead.
//!
//! The signature covers the raw body, so [`perimeter`] reads the body once
//! (with the same size limit and 413 as the routes), checks it, and puts the
//! bytes back for the route to read. Each decision is a function returning
//! a typed value ([`client_addr`], [`AllowedHosts::allows`],
//! [`crate::signature::verify`], [`crate::limits::Admission`]).

use std::net::IpAddr;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage as _, HttpRequest, ResponseError};

use super::error::ApiError;
use super::lockout::{auth_failure, SignedBy};
use super::paths;
use super::request::{client_ip, read_body, request_base};
use super::watchdog::Watched;
use super::{state_of, AppState};
use crate::audit::Event;
use crate::config::hosts::AllowedHosts;
use crate::config::vars;
use crate::limits::{client_unit, Admission};
use crate::signature::{self, Verdict};

/// Counts a rate-limited request, and audits it at most once a second: a
/// flood must not turn into a flood of audit lines.
fn limited(state: &AppState, limit: &'static str, ip: Option<IpAddr>) {
    state.metrics.rate_limited.with_label_values(&[limit]).inc();
    if let Some(suppressed) = state.audit_sampler.admit() {
        let _ = state.audit_event(|| {
            Event::new("rate_limited", "refused")
                .client(ip)
                .field("limit", limit)
                .field("suppressed_since_last", suppressed)
        });
    }
}

/// Counts, audits (sampled) and logs (sampled) a body refused because
/// unverified bodies fill their budget: at 3 a.m. this line says why signed
/// webhooks are answered 503.
fn overloaded(state: &AppState, client: Option<IpAddr>) {
    limited(state, "unverified_bodies", client);
    if let Some(suppressed) = state.log_sampler.overloaded.admit() {
        let (capacity, per_address) = state.unverified.limits();
        log::warn!(
            "request refused: bodies not yet verified fill `{}` ({capacity} bytes, at most {per_address} from one address): a flood of slow bodies, or a budget too small for the traffic ({suppressed} more since the last such line)",
            vars::UNVERIFIED_BODIES
        );
    }
}

fn refuse<B>(req: ServiceRequest, err: ApiError) -> ServiceResponse<EitherBody<B>> {
    let resp = err.error_response();
    req.into_response(resp).map_into_right_body()
}

pub(super) async fn perimeter(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let state = state_of(req.request());
    // The path as the router matches it: it decodes percent-escapes of
    // unreserved characters, so `/%73waig` is served by `/swaig` and must be
    // signed like it (`req.path()` is the raw, undecoded path).
    let signed = state.settings.signing_key.is_some()
        && req.method() == Method::POST
        && paths::is_signed_path(&state.live_now().agent, req.match_info().as_str());
    // A signed webhook is not held to the per-address lock-out: its
    // signature, checked next, proves it comes from our SignalWire project,
    // and SignalWire's addresses are shared by all its customers, so anyone
    // could point a webhook here with wrong credentials and lock our calls
    // out. It has a lock-out of its own, per signature (`check_signature`,
    // `auth_failure`); bad signatures still count against the address.
    if let Some(refusal) = admission(req.request(), state, !signed) {
        return Ok(refuse(req, refusal));
    }
    if signed {
        let state = state.clone();
        if let Err(refusal) = check_signature(&mut req, &state).await {
            return Ok(refuse(req, refusal));
        }
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
}

/// The checks before any body is read: the flood guard, `Host`, and with
/// `lockout` the failed-authentication lock-out.
fn admission(req: &HttpRequest, state: &AppState, lockout: bool) -> Option<ApiError> {
    let ip = client_ip(req, state);
    if let Some(ip) = ip {
        if let Some(limiter) = &state.limits.per_address {
            if let Admission::Limited { retry_after } = limiter.check(&client_unit(ip)) {
                let retry_after = Admission::retry_after_secs(retry_after);
                limited(state, "address", Some(ip));
                return Some(ApiError::RateLimited { retry_after });
            }
        }
    }
    let probe = paths::is_probe(req.path());
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    // `/health` and `/ready` answer any host: a load balancer or an
    // operator's `curl 127.0.0.1` asks by address, and they tell nothing
    // that a host check would protect.
    if !probe && !state.settings.allowed_hosts.allows(host) {
        log::warn!("request refused: `Host` not in `SWML_ALLOWED_HOSTS`");
        return Some(ApiError::HostNotAllowed);
    }
    // Behind a trusted proxy the webhook URLs are built from
    // `X-Forwarded-Host` (`routes::request_base`): it must pass too, or a
    // proxy that passes the header on would let a client send the
    // credential-carrying URLs to a host of its choosing.
    if !probe && state.settings.trust_proxy && state.settings.allowed_hosts != AllowedHosts::Any {
        if let Some(v) = req.headers().get("x-forwarded-host") {
            let forwarded = v
                .to_str()
                .ok()
                .map(|v| v.split(',').next().unwrap_or("").trim());
            if !state.settings.allowed_hosts.allows(forwarded) {
                log::warn!("request refused: `X-Forwarded-Host` not in `SWML_ALLOWED_HOSTS`");
                return Some(ApiError::HostNotAllowed);
            }
        }
    }
    if lockout && !probe {
        if let (Some(failures), Some(ip)) = (&state.limits.auth_failures, ip) {
            if let Admission::Limited { retry_after } = failures.locked(client_unit(ip)) {
                let retry_after = Admission::retry_after_secs(retry_after);
                limited(state, "auth_failures", Some(ip));
                return Some(ApiError::TooManyFailures { retry_after });
            }
        }
    }
    None
}

/// Reads the body, checks its SignalWire signature, and puts the body back
/// for the route. A refusal is counted, audited and logged (sampled) here.
async fn check_signature(req: &mut ServiceRequest, state: &AppState) -> Result<(), ApiError> {
    let Some(key) = &state.settings.signing_key else {
        return Ok(());
    };
    // Held until the signature is judged: a valid one vouches for the
    // sender, and an invalid one's body is dropped with the request.
    let client = client_ip(req.request(), state);
    let mut held = state.unverified.claim(client);
    let (http_req, payload) = req.parts_mut();
    let read = read_body(
        http_req.headers(),
        payload.take(),
        &state.settings,
        Some(&mut held),
    )
    .await;
    let body = match read {
        Err(ApiError::Overloaded) => {
            overloaded(state, client);
            return Err(ApiError::Overloaded);
        }
        other => other?,
    };
    let (verdict, tag) = match request_base(req.request(), state) {
        Ok(base) => {
            let url = format!(
                "{base}{}",
                req.uri().path_and_query().map_or("/", |pq| pq.as_str())
            );
            let headers = headers_of(req.request());
            match signature::verify(key, &url, headers, &body) {
                Verdict::Valid(scheme) => (
                    Verdict::Valid(scheme),
                    signature::replay_key(&url, headers, &body, scheme),
                ),
                Verdict::Rejected => (Verdict::Rejected, None),
            }
        }
        Err(_) => (Verdict::Rejected, None),
    };
    if verdict == Verdict::Rejected {
        // Neither the expected signature nor the failed branch is logged.
        if let Some(suppressed) = state.log_sampler.signature.admit() {
            log::warn!(
                "request signature rejected for {} {} ({suppressed} more since the last such line; all are in the audit log)",
                req.method(),
                req.path()
            );
        }
        state.metrics.signature_rejections.inc();
        let _ = state.audit_event(|| {
            Event::new("signature_rejected", "denied")
                .client(client_ip(req.request(), state))
                .field("path", req.path().to_owned())
        });
        return Err(auth_failure(
            req.request(),
            state,
            ApiError::InvalidSignature,
        ));
    }
    if let Some(tag) = tag {
        if let Some(failures) = &state.limits.signed_failures {
            if let Admission::Limited { retry_after } = failures.locked(tag.clone()) {
                return Err(ApiError::TooManyFailures {
                    retry_after: Admission::retry_after_secs(retry_after),
                });
            }
        }
        req.extensions_mut().insert(SignedBy(tag));
    }
    req.set_payload(Payload::from(body));
    Ok(())
}

/// The signature headers of a request, as sent.
fn headers_of(req: &HttpRequest) -> signature::Headers<'_> {
    let h = req.headers();
    let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok());
    signature::Headers {
        sha256: get(signature::SHA256_HEADER),
        sha1: get(signature::SHA1_HEADER),
        twilio: get(signature::TWILIO_HEADER),
    }
}

/// The outermost layer: every answer, refusals included, gets the security
/// headers (and HSTS when serving HTTPS), and is counted by route and status
/// for `/metrics`. One layer for both, as each layer costs a boxed future per
/// request.
pub(super) async fn outer(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let _busy = req.conn_data::<Watched>().map(Watched::busy);
    let mut resp = next.call(req).await?;
    // Borrowed from the answered request: no clone held across the call.
    let state = state_of(resp.request());
    let hsts = state.settings.hsts_header();
    // The route from a fixed table, not `match_pattern()`: that re-runs the
    // router's regexes (about 4% of a static SWAIG call under perf).
    let route = state.route(resp.request().path());
    match route {
        Some(r) if resp.status() == StatusCode::OK => r.ok.inc(),
        _ => state
            .metrics
            .requests
            .with_label_values(&[route.map_or("other", |r| r.label), resp.status().as_str()])
            .inc(),
    }
    let h = resp.headers_mut();
    let fixed: [(HeaderName, &str); 4] = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        // SWML carries credentials and tokens in its URLs: never cache it.
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in fixed {
        h.insert(name, HeaderValue::from_static(value));
    }
    if let Some(value) = hsts {
        h.insert(header::STRICT_TRANSPORT_SECURITY, value);
    }
    Ok(resp)
}
