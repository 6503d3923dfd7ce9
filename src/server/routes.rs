//! The routes: SWML at the agent's route, `/swaig`, `/post_prompt`, and the
//! probes `/health` and `/ready`.
//!
//! Each handler parses its request into typed values first (call id, function,
//! arguments), decides with the pure functions of `token` and `agent`, and only
//! then runs anything.

use actix_web::http::header::{self, HeaderMap};
use actix_web::{web, HttpRequest, HttpResponse, Resource};
use futures_util::StreamExt as _;
use serde_json::{json, Value};

use super::body::{BodyError, CallBody};
use super::error::ApiError;
use super::unverified::Held;
use super::{state_of, AppState, Live, Settings};
use crate::agent::{Agent, Function};
use crate::audit::Event;
use crate::handlers::{CallInput, HandlerError, Reply};
use crate::swml::RenderContext;
use crate::text::{printable, printable_cut, short};
use crate::token::{self, Expect, Verdict};

/// Adds a route's methods to its resource.
pub(super) type Methods = fn(Resource) -> Resource;

/// The agent's own routes: path, `route` label for `/metrics`, the methods
/// served there, and those methods for a 405's `Allow`. Each is served with
/// and without a trailing slash ([`both_forms`]); the one table for
/// [`configure`] and the metrics labels.
pub(super) fn agent_routes(agent: &Agent) -> [(String, &'static str, Methods, &'static str); 3] {
    [
        (
            agent.route.clone(),
            "swml",
            |r| {
                r.route(web::get().to(swml_doc))
                    .route(web::post().to(swml_doc))
            },
            "GET, POST",
        ),
        (
            agent.sub_path("swaig"),
            "swaig",
            |r| r.route(web::post().to(super::swaig::swaig)),
            "POST",
        ),
        (
            agent.sub_path("post_prompt"),
            "post_prompt",
            |r| r.route(web::post().to(post_prompt)),
            "POST",
        ),
    ]
}

/// swagent's own routes, as [`agent_routes`] lists the agent's: the probes
/// (which also answer `HEAD`, as load balancers probe with it) and `/metrics`.
pub(super) fn server_routes() -> [(&'static str, &'static str, Methods, &'static str); 3] {
    [
        (
            "/health",
            "health",
            |r| r.route(web::get().to(health)).route(web::head().to(health)),
            "GET, HEAD",
        ),
        (
            "/ready",
            "ready",
            |r| r.route(web::get().to(ready)).route(web::head().to(ready)),
            "GET, HEAD",
        ),
        (
            "/metrics",
            "metrics",
            |r| r.route(web::get().to(metrics)),
            "GET",
        ),
    ]
}

/// Registers every route for `agent`.
///
/// One resource per path, not one resource with a list of paths: actix
/// matches a list with a regex set on every request (about 5% of a static
/// SWAIG call under perf), a single static path with a string compare.
/// A served path answers any other method 405 with `Allow`; the probes also
/// answer `HEAD`, which load balancers probe with.
pub fn configure(cfg: &mut web::ServiceConfig, agent: &Agent) {
    let agent_paths = agent_routes(agent)
        .into_iter()
        .flat_map(|(path, _, methods, allow)| {
            both_forms(path)
                .into_iter()
                .map(move |p| (p, methods, allow))
        });
    let all = server_routes()
        .into_iter()
        .map(|(p, _, methods, allow)| (p.to_owned(), methods, allow))
        .chain(agent_paths);
    for (path, methods, allow) in all {
        cfg.service(
            methods(web::resource(path))
                .default_service(web::to(move || method_not_allowed(allow))),
        );
    }
    cfg.default_service(web::to(not_found));
}

/// A path and, except for `/`, the same with a trailing slash: both are served.
pub(super) fn both_forms(path: String) -> Vec<String> {
    if path == "/" {
        return vec![path];
    }
    let slashed = format!("{path}/");
    vec![path, slashed]
}

/// The probes: `/health` (liveness) and `/ready` (readiness), the Python
/// SDK's paths. They need no credentials and are never locked out, so they
/// say nothing about the agent.
pub(super) fn is_probe(path: &str) -> bool {
    path == "/health" || path == "/ready"
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// 503 while every call would be refused (a required audit log that cannot
/// be written), so a load balancer takes this instance out instead of
/// sending it calls; each probe retries the log, so it comes back by itself.
/// The kill switch does not make it unready: a disabled function is refused
/// with a reply the AI can speak, which is the point of the switch.
async fn ready(req: HttpRequest) -> HttpResponse {
    if state_of(&req).audit_writable() {
        HttpResponse::Ok().json(json!({ "status": "ready" }))
    } else {
        HttpResponse::ServiceUnavailable().json(json!({ "status": "not_ready" }))
    }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    state.refresh_disabled_gauge();
    state
        .metrics
        .unverified_body_bytes
        .set(i64::try_from(state.unverified.in_use()).unwrap_or(i64::MAX));
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render())
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}

async fn method_not_allowed(allow: &'static str) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed { allow })
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

/// Reads the body up to `SWML_MAX_REQUEST_SIZE` bytes; a declared or actual
/// excess is 413. The whole body must arrive within the body timeout (408):
/// actix times out a request's head but never its body, so a client that
/// sends a head and then trickles a byte now and then would otherwise hold
/// its connection, and a descriptor, for as long as it likes.
/// Shared with the signature check, which reads the body before the route
/// and counts it in `unverified` as it comes.
pub(super) async fn read_body<S>(
    headers: &HeaderMap,
    payload: S,
    settings: &Settings,
    mut unverified: Option<&mut Held<'_>>,
) -> Result<web::Bytes, ApiError>
where
    S: futures_util::Stream<Item = Result<web::Bytes, actix_web::error::PayloadError>>,
{
    let limit = settings.max_request_size;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    let read = async {
        let mut payload = std::pin::pin!(payload);
        let mut body: Vec<u8> = Vec::new();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk
                .map_err(|_| ApiError::BadRequest("the request body could not be read".into()))?;
            let need = body.len() + chunk.len();
            if need > limit {
                return Err(ApiError::PayloadTooLarge(limit));
            }
            if need > body.capacity() {
                // Grown by hand, doubling up to the limit, so that what an
                // unverified body counts is what it allocated; a body sent
                // at once is allocated once, to its size.
                let grown = need.max(body.capacity() * 2).min(limit);
                if let Some(held) = unverified.as_deref_mut() {
                    held.take(grown - body.capacity())?;
                }
                body.reserve_exact(grown - body.len());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(web::Bytes::from(body))
    };
    tokio::time::timeout(settings.body_timeout, read)
        .await
        .unwrap_or(Err(ApiError::RequestTimeout(settings.body_timeout)))
}

/// Reads a JSON object body into what swagent uses of it (415, 413, 400 as due).
pub(super) async fn json_body(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<CallBody, ApiError> {
    if !is_json(req.headers()) {
        return Err(ApiError::UnsupportedMediaType);
    }
    // Bodies are never decompressed (no gzip bomb can go off), so a coded
    // body is refused rather than misread as bad JSON.
    let coded = req
        .headers()
        .get(header::CONTENT_ENCODING)
        .is_some_and(|v| !v.as_bytes().eq_ignore_ascii_case(b"identity"));
    if coded {
        return Err(ApiError::UnsupportedEncoding);
    }
    let body = read_body(req.headers(), payload, &state.settings, None).await?;
    CallBody::parse(&body).map_err(|e| {
        ApiError::BadRequest(
            match e {
                BodyError::NotObject => "the request body must be a JSON object",
                BodyError::NotJson => "the request body is not valid JSON",
            }
            .into(),
        )
    })
}

fn query_param(req: &HttpRequest, name: &str) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The client's address, as the perimeter decides it for its limits: the
/// socket peer, or the first `X-Forwarded-For` hop with `--trust-proxy`
/// ([`super::perimeter::client_addr`]). Recomputed where needed rather than
/// stored in the request's extensions, which cost an allocation per request.
pub fn client_ip(req: &HttpRequest, state: &AppState) -> Option<std::net::IpAddr> {
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    super::perimeter::client_addr(
        req.peer_addr().map(|a| a.ip()),
        forwarded,
        state.settings.trust_proxy,
    )
}

/// The base URL webhooks are built on: `SWML_PROXY_URL_BASE`; else, when
/// serving HTTPS with `SWML_DOMAIN`, `https://domain[:port]`; else what the
/// request was sent to ([`request_base`]).
fn base_url(req: &HttpRequest, state: &AppState) -> Result<String, ApiError> {
    let settings = &state.settings;
    if let (None, Some(_), Some(domain)) = (&settings.proxy_base, &settings.tls, &settings.domain) {
        let port = req.app_config().local_addr().port();
        return Ok(if port == 443 {
            format!("https://{domain}")
        } else {
            format!("https://{domain}:{port}")
        });
    }
    request_base(req, state)
}

/// `scheme://host` the client called, which is also the URL SignalWire signed:
/// `SWML_PROXY_URL_BASE`, else forwarded headers when trusted, else this
/// connection's scheme and the `Host` header.
pub(super) fn request_base(req: &HttpRequest, state: &AppState) -> Result<String, ApiError> {
    if let Some(base) = &state.settings.proxy_base {
        return Ok(base.clone());
    }
    // Not `connection_info()`: actix fills its scheme and host from
    // `X-Forwarded-Proto`/`X-Forwarded-Host` (and `Forwarded`) whatever the
    // settings, so any client could choose them, e.g. downgrade the
    // credential-carrying webhook URLs to plain http.
    let config = req.app_config();
    let own_scheme = if config.secure() { "https" } else { "http" };
    let own_host = || match req.headers().get(header::HOST) {
        // A `Host` that is not text is refused below, not replaced by ours.
        Some(v) => v.to_str().unwrap_or(""),
        None => config.host(),
    };
    let (scheme, host) = if state.settings.trust_proxy {
        let h = req.headers();
        let get = |n: &str| {
            h.get(n)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.split(',').next().unwrap_or("").trim())
        };
        (
            get("x-forwarded-proto").unwrap_or(own_scheme),
            get("x-forwarded-host").unwrap_or_else(own_host),
        )
    } else {
        // An SDK agent takes these headers untrusted; here a proxy that
        // rewrites `Host` would leave webhook URLs pointing at swagent's own
        // address, and calls failing, with nothing in the log to say why.
        static SAID: std::sync::Once = std::sync::Once::new();
        if !SAID.is_completed()
            && (req.headers().contains_key("x-forwarded-host")
                || req.headers().contains_key(header::FORWARDED))
        {
            SAID.call_once(|| {
                log::warn!(
                    "a request came with `X-Forwarded-Host` or `Forwarded`, which are not trusted: webhook URLs and signature checks use its `Host`; behind a proxy, set `SWML_PROXY_URL_BASE` or `--trust-proxy` (said once)"
                )
            });
        }
        (own_scheme, own_host())
    };
    // The host goes into URLs that carry credentials: only host[:port] characters.
    let host_ok = !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"-.:[]_".contains(&c));
    if !host_ok || !matches!(scheme, "http" | "https") {
        return Err(ApiError::BadRequest(
            "the `Host` header is not a valid host".into(),
        ));
    }
    let mut base = String::with_capacity(scheme.len() + 3 + host.len());
    base.push_str(scheme);
    base.push_str("://");
    base.push_str(host);
    Ok(base)
}

async fn swml_doc(req: HttpRequest, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let state = state_of(&req);
    let mut call_id = query_param(&req, "call_id");
    if req.method() == actix_web::http::Method::POST {
        let body = read_body(req.headers(), payload, &state.settings, None).await?;
        // The platform posts JSON; other bodies carry nothing we use.
        if is_json(req.headers()) && !body.is_empty() {
            let parsed = match CallBody::parse(&body) {
                Ok(b) => Some(b),
                // Any JSON will do; only an object can name the call.
                Err(BodyError::NotObject) => None,
                Err(BodyError::NotJson) => {
                    return Err(ApiError::BadRequest(
                        "the request body is not valid JSON".into(),
                    ))
                }
            };
            if let Some(id) = parsed.as_ref().and_then(CallBody::call_id) {
                call_id = Some(id.to_owned());
            }
        }
    }
    let call_id = call_id.unwrap_or_else(|| crate::random::hex(16));
    // Before counting: a refused request starts no call, and must not
    // raise a `calls_per_minute` alert.
    token::check_call_id(&call_id).map_err(ApiError::InvalidCallId)?;
    let base = base_url(&req, state)?;
    state.metrics.calls_started.inc();
    // A guard, not a clone: nothing below awaits.
    let live = state.live_now();
    let fired = live.alerts.call_started(chrono::Utc::now());
    state.raise(&fired, Some(&call_id), None, client_ip(&req, state))?;
    let settings = &state.settings;
    let doc = live
        .swml
        .render(&RenderContext {
            base_url: &base,
            userinfo: &state.userinfo,
            secret: &settings.secret,
            call_id: &call_id,
            now: crate::clock::now(),
        })
        .map_err(ApiError::InvalidCallId)?;
    Ok(HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(doc))
}

/// Checks the token of a request for `function` in `call_id`. A missing
/// token is refused exactly like a wrong one.
///
/// The token is `__token`, or `token` when `__token` is absent or empty: the
/// Python SDK looks in the same order, so a webhook URL written for an SDK
/// agent works here. A present `__token` is never overridden by `token`.
pub(super) fn check_token(
    req: &HttpRequest,
    state: &AppState,
    function: &str,
    call_id: Option<&str>,
) -> Result<(), ApiError> {
    let (verdict, presented) = match presented_token(req.query_string()) {
        Ok(presented) => {
            let expect = Expect {
                function: Some(function),
                call_id: Some(call_id.unwrap_or("")),
                now: crate::clock::now(),
            };
            (
                token::check(&state.settings.secret, &presented, expect).0,
                presented,
            )
        }
        Err(verdict) => (verdict, String::new()),
    };
    if verdict == Verdict::Valid {
        return Ok(());
    }
    if let Some(suppressed) = state.log_sampler.token.admit() {
        log::warn!(
            "token rejected for function `{function}` in call `{}`: {} ({suppressed} more since the last such line; all are in the audit log)",
            printable(call_id.unwrap_or("-")),
            verdict.code()
        );
    }
    state
        .metrics
        .token_rejections
        .with_label_values(&[verdict.code()])
        .inc();
    // A prefix correlates lines without handing out a usable token.
    let prefix: String = presented.chars().take(8).collect();
    let client = client_ip(req, state);
    state.audit_event(|| {
        Event::new("token_rejected", "denied")
            .call(call_id)
            .function(function)
            .client(client)
            .field("verdict", verdict.code())
            .field("token_prefix", prefix)
    })?;
    // A token this secret did not sign is raised as an alert but does not
    // count toward the lock-out: the sender passed Basic Auth, and a 256-bit
    // HMAC cannot be guessed, while the platform itself sends such tokens
    // after a rotation (calls in progress) or from a replica with another
    // secret, and locking its address out would fail every new call too.
    if matches!(verdict, Verdict::BadSignature | Verdict::Malformed(_)) {
        super::perimeter::alert_auth_failure(state, client);
    }
    Err(ApiError::InvalidToken)
}

/// The token in a query string: `__token`, else `token`, else empty.
///
/// Either name given twice is refused: swagent would read the first and the
/// Python SDK reads the last, so a proxy, a log or the other half of a mixed
/// fleet could judge one token while this server ran on another.
fn presented_token(query: &str) -> Result<String, Verdict> {
    let (mut primary, mut fallback) = (Vec::new(), Vec::new());
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        match &*name {
            "__token" => primary.push(value),
            "token" => fallback.push(value),
            _ => {}
        }
    }
    for (name, values) in [("__token", &primary), ("token", &fallback)] {
        if values.len() > 1 {
            return Err(Verdict::Malformed(format!(
                "`{name}` is given {} times",
                values.len()
            )));
        }
    }
    Ok(primary
        .pop()
        .filter(|t| !t.is_empty())
        .or_else(|| fallback.pop())
        .unwrap_or_default()
        .into_owned())
}

/// The most characters of a call summary written to the log.
const SUMMARY_LOGGED: usize = 4000;

/// Why arguments were refused. `Display` is for a person (`swagent call`);
/// [`InvalidArguments::for_ai`] is the reply that asks the AI to try again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidArguments {
    NotAnObject,
    /// At most three problems, values shortened and sensitive ones hidden.
    Problems(Vec<String>),
}

impl InvalidArguments {
    pub fn for_ai(&self) -> String {
        match self {
            InvalidArguments::NotAnObject => {
                "The arguments must be an object. Please try again.".to_owned()
            }
            InvalidArguments::Problems(problems) => format!(
                "Some arguments are not acceptable: {}. Please ask the caller again.",
                problems.join("; ")
            ),
        }
    }
}

impl std::fmt::Display for InvalidArguments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InvalidArguments::NotAnObject => f.write_str("the arguments are not a JSON object"),
            InvalidArguments::Problems(problems) => f.write_str(&problems.join("; ")),
        }
    }
}

/// Validates arguments against the function's schema. `Err` says which
/// argument is wrong and why, for the AI to ask the caller again.
pub fn validate_arguments(function: &Function, args: &Value) -> Result<(), InvalidArguments> {
    if !args.is_object() {
        return Err(InvalidArguments::NotAnObject);
    }
    // Nearly every call is valid; `is_valid` answers that without building
    // the error iterator.
    if function.validator.is_valid(args) {
        return Ok(());
    }
    // The validator quotes the value an error is about, which must not come
    // back when it holds a `sensitive` one (a mistyped PIN is still most of a
    // PIN): the value itself, one inside it, or the whole object for errors
    // at the top (`anyOf`, `maxProperties`, ... quote it all). `required`
    // and `additionalProperties` name properties only.
    let redacted = crate::audit::redact(&function.parameters, args);
    let hides = |e: &jsonschema::ValidationError<'_>, path: &str| {
        use jsonschema::error::ValidationErrorKind as Kind;
        !matches!(
            e.kind(),
            Kind::Required { .. } | Kind::AdditionalProperties { .. }
        ) && redacted.pointer(path) != args.pointer(path)
    };
    let problems: Vec<String> = function
        .validator
        .iter_errors(args)
        .take(3)
        .map(|e| {
            let path = e.instance_path().to_string();
            let name = short(&path.trim_start_matches('/').replace('/', "."), 64);
            if hides(&e, &path) {
                return if name.is_empty() {
                    "the arguments do not fit the function (not repeated: they hold a sensitive value)".to_owned()
                } else {
                    format!("the argument `{name}` is invalid (a sensitive value, not repeated)")
                };
            }
            // A caller's 100 KB value must not come back whole to the AI
            // (or into logs).
            let why = short(&e.to_string(), 200);
            if name.is_empty() {
                why
            } else {
                format!("the argument `{name}` is invalid: {why}")
            }
        })
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(InvalidArguments::Problems(problems))
    }
}

/// Runs a function as `serve` would after its security checks: argument
/// validation, then the handler (for `swagent call`). `Ok(Err(_))` is
/// arguments refused before the handler ran.
pub async fn run_function(
    live: &Live,
    function: &Function,
    args: &Value,
    call_id: &str,
    body: &CallBody,
) -> Result<Result<Reply, InvalidArguments>, HandlerError> {
    if let Err(invalid) = validate_arguments(function, args) {
        return Ok(Err(invalid));
    }
    let null = Value::Null;
    let input = CallInput {
        args,
        call_id,
        global_data: body.global_data.as_ref().unwrap_or(&null),
        meta_data: body.meta_data.as_ref().unwrap_or(&null),
    };
    live.runtime.run(&live.agent, function, input).await.map(Ok)
}

async fn post_prompt(req: HttpRequest, payload: web::Payload) -> Result<HttpResponse, ApiError> {
    let state = state_of(&req);
    let body = json_body(&req, payload, state).await?;
    let call_id = body.call_id();
    check_token(&req, state, "post_prompt", call_id)?;
    let data = body.post_prompt_data.as_ref();
    let summary = data
        .and_then(|d| d.get("raw"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| {
            data.and_then(|d| d.pointer("/parsed/0"))
                .map(Value::to_string)
        })
        .unwrap_or_default();
    // The summary is the model's text and may quote the caller: a newline
    // in it must not start what looks like another log line.
    // Capped after escaping: a caller can make the model's summary long, and
    // each escaped character is ten in the log (review 12 wrote 32 KB lines).
    log::info!(
        "summary for call `{}` of agent `{}`: {}",
        printable(call_id.unwrap_or("-")),
        state.live().agent.name,
        printable_cut(&summary, SUMMARY_LOGGED)
    );
    state.audit_event(|| {
        Event::new("summary_received", "ok")
            .call(call_id)
            .client(client_ip(&req, state))
            .field("summary_chars", summary.chars().count())
    })?;
    Ok(HttpResponse::Ok().json(json!({ "response": "ok" })))
}

#[cfg(test)]
mod tests {
    /// The loader refuses an agent route on these paths; they must be the
    /// ones served here, or a route could shadow one or leave one unguarded.
    #[test]
    fn the_loader_reserves_the_paths_served_here() {
        let served: Vec<&str> = super::server_routes().iter().map(|r| r.0).collect();
        assert_eq!(served, crate::agent::SERVER_PATHS);
    }
}
