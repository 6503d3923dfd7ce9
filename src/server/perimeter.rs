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
use super::routes::{client_ip, read_body, request_base};
use super::watchdog::Watched;
use super::{state_of, AppState};
use crate::agent::Agent;
use crate::audit::Event;
use crate::limits::{client_unit, Admission};
use crate::signature::{self, Verdict};

/// The address limits apply to: the socket peer, or with `trust_proxy` the
/// first `X-Forwarded-For` hop when it is an IP address.
pub fn client_addr(
    peer: Option<IpAddr>,
    forwarded_for: Option<&str>,
    trust_proxy: bool,
) -> Option<IpAddr> {
    if trust_proxy {
        let first = forwarded_for
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .and_then(|v| v.parse::<IpAddr>().ok());
        if first.is_some() {
            return first;
        }
    }
    peer
}

/// `SWML_ALLOWED_HOSTS`: `*`, or host names (`*.example.com` matches
/// subdomains), compared without the port and case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedHosts {
    Any,
    List(Vec<String>),
}

impl AllowedHosts {
    /// Why an entry of the variable can never match a `Host`, for the first
    /// such entry: one with a scheme, a port or a path
    /// (`https://agent.example.com`, `agent.example.com:443`), an empty
    /// label, or a `*` anywhere but a leading `*.` would refuse every request
    /// while `/ready` says all is well.
    pub fn misfit(value: &str) -> Option<String> {
        value
            .split(',')
            .map(str::trim)
            .filter(|h| !h.is_empty() && *h != "*")
            .find_map(|h| {
                let why = if let Some(v6) = h.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
                    // An IPv6 literal, as `Host` carries it.
                    v6.parse::<std::net::Ipv6Addr>()
                        .err()
                        .map(|_| "is not an IPv6 address")
                } else if !h.is_ascii() {
                    Some("is not ASCII: give an international name in its `xn--` form")
                } else {
                    let name = h.strip_prefix("*.").unwrap_or(h);
                    let name = name.strip_suffix('.').unwrap_or(name);
                    if name.split('.').any(|label| {
                        label.is_empty()
                            || !label
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    }) {
                        Some("is not a host name, and no request's `Host` would match it")
                    } else {
                        None
                    }
                };
                why.map(|why| format!("`{h}` {why}"))
            })
    }

    /// Parses the comma-separated variable; empty entries are ignored.
    pub fn parse(value: &str) -> AllowedHosts {
        let list: Vec<String> = value
            .split(',')
            .map(|h| h.trim().trim_end_matches('.').to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        if list.is_empty() || list.iter().any(|h| h == "*") {
            AllowedHosts::Any
        } else {
            AllowedHosts::List(list)
        }
    }

    /// Whether a request with this `Host` header may go on.
    pub fn allows(&self, host: Option<&str>) -> bool {
        let AllowedHosts::List(list) = self else {
            return true;
        };
        let Some(host) = host else {
            return false;
        };
        let host = host.trim().to_ascii_lowercase();
        // `[::1]:3000` → `[::1]`; `example.com:443` → `example.com`; and the
        // fully qualified `example.com.` is `example.com`.
        let name = match host.rfind(':') {
            Some(i) if !host[i..].contains(']') => &host[..i],
            _ => host.as_str(),
        };
        let name = name.strip_suffix('.').unwrap_or(name);
        list.iter().any(|allowed| match allowed.strip_prefix("*.") {
            Some(domain) => name
                .strip_suffix(domain)
                .is_some_and(|sub| sub.ends_with('.') && sub.len() > 1),
            None => name == allowed,
        })
    }
}

/// Whether `path` is one of the webhooks SignalWire signs: the SWML route,
/// `/swaig` and `/post_prompt`, with or without a trailing slash.
pub fn is_signed_path(agent: &Agent, path: &str) -> bool {
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    path == agent.route || path == agent.sub_path("swaig") || path == agent.sub_path("post_prompt")
}

/// What a signed webhook's valid signature vouches for
/// ([`signature::replay_key`]); kept in the request so a failure after it
/// counts against it.
#[derive(Clone)]
struct SignedBy(Vec<u8>);

/// Counts an authentication failure from the request's address, and for a
/// signed webhook against its signature: the refusal itself, or 429 when it
/// is one too many.
pub(super) fn auth_failure(req: &HttpRequest, state: &AppState, refusal: ApiError) -> ApiError {
    let too_many = |retry_after| ApiError::TooManyFailures {
        retry_after: Admission::retry_after_secs(retry_after),
    };
    let ip = client_ip(req, state);
    alert_auth_failure(state, ip);
    // Always per address: that keeps the address's unsigned requests
    // locked out once it has failed too often.
    let by_address = match (state.limits.auth_failures.as_ref(), ip) {
        (Some(failures), Some(ip)) => failures.record(client_unit(ip)),
        _ => Admission::Allowed,
    };
    // A signed webhook is judged by its signature's count alone: the
    // address may be SignalWire's, shared by all its customers.
    if let Some(SignedBy(tag)) = req.extensions().get::<SignedBy>().cloned() {
        return match state.limits.signed_failures.as_ref().map(|f| f.record(tag)) {
            Some(Admission::Limited { retry_after }) => {
                log::warn!("too many failed authentications with one signed request: locked out");
                too_many(retry_after)
            }
            _ => refusal,
        };
    }
    match by_address {
        Admission::Allowed => refusal,
        Admission::Limited { retry_after } => {
            if let Some(ip) = ip {
                log::warn!("too many failed authentications from {ip}: locked out");
            }
            too_many(retry_after)
        }
    }
}

/// Counts a failure toward `auth_failures_per_minute`: every kind does,
/// forged tokens included. The refusal stands whether or not the alert is
/// written.
pub(super) fn alert_auth_failure(state: &AppState, ip: Option<IpAddr>) {
    let fired = state.live().alerts.auth_failed(chrono::Utc::now());
    let _ = state.raise(&fired, None, None, ip);
}

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
            super::unverified::UNVERIFIED_BODIES_VAR
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
        && is_signed_path(&state.live_now().agent, req.match_info().as_str());
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
    // The gate is the last step of this layer, not a layer of its own: each
    // layer costs a boxed future per request.
    super::gate::basic_auth(req, next)
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
    let probe = super::routes::is_probe(req.path());
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

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::{client_addr, AllowedHosts};

    #[test]
    fn client_address() {
        let peer: Option<IpAddr> = Some("10.0.0.1".parse().unwrap());
        let xff = Some("203.0.113.7, 10.0.0.2");
        assert_eq!(client_addr(peer, xff, false), peer);
        assert_eq!(
            client_addr(peer, xff, true),
            Some("203.0.113.7".parse().unwrap())
        );
        assert_eq!(client_addr(peer, Some("junk, 1.2.3.4"), true), peer);
        assert_eq!(client_addr(peer, None, true), peer);
        assert_eq!(client_addr(None, None, false), None);
        assert_eq!(
            client_addr(None, Some("::1"), true),
            Some("::1".parse().unwrap())
        );
    }

    #[test]
    fn allowed_hosts() {
        assert_eq!(AllowedHosts::parse("*"), AllowedHosts::Any);
        assert_eq!(AllowedHosts::parse(" , "), AllowedHosts::Any);
        assert!(AllowedHosts::Any.allows(None));
        let list = AllowedHosts::parse("agent.example.com, *.Example.org,[::1]");
        let cases = [
            (Some("agent.example.com"), true),
            (Some("AGENT.example.com:8443"), true),
            (Some("example.com"), false),
            (Some("evil-agent.example.com"), false),
            (Some("a.example.org"), true),
            (Some("a.b.example.org:443"), true),
            (Some("example.org"), false),
            (Some("badexample.org"), false),
            (Some("[::1]:3000"), true),
            (Some("[::2]"), false),
            (None, false),
            // A fully qualified name is the same name.
            (Some("agent.example.com."), true),
        ];
        for (host, want) in cases {
            assert_eq!(list.allows(host), want, "{host:?}");
        }
        assert!(AllowedHosts::parse("agent.example.com.").allows(Some("agent.example.com")));
    }

    #[test]
    fn allowed_host_entries_that_never_match_are_named() {
        for fine in [
            "agent.example.com, *.example.org, [::1], 127.0.0.1, localhost",
            "xn--bcher-kva.example, agent.example.com., *, ",
        ] {
            assert_eq!(AllowedHosts::misfit(fine), None, "{fine}");
        }
        let never = "is not a host name, and no request's `Host` would match it";
        for (value, why) in [
            ("https://agent.example.com", never),
            ("agent.example.com:443", never),
            ("agent.example.com/x", never),
            (".example.com", never),
            ("*example.com", never),
            ("a*.example.com", never),
            ("*.*.example.com", never),
            ("agent..example.com", never),
            ("[::g]", "is not an IPv6 address"),
            (
                "bücher.example",
                "is not ASCII: give an international name in its `xn--` form",
            ),
        ] {
            assert_eq!(
                AllowedHosts::misfit(&format!("ok.example.com, {value}")),
                Some(format!("`{value}` {why}")),
                "{value}"
            );
        }
    }
}
