//! The route table: which handler answers each path and method. swagent's
//! own routes are the probes `/health` and `/ready` (which also answer
//! `HEAD`, as load balancers probe with it) and `/metrics`; the agent's are
//! its SWML route, `/swaig` and `/post_prompt`, each a thin adapter of the
//! call pipeline. Paths and their metric labels are [`super::paths`]'.

use actix_web::{web, HttpRequest, HttpResponse, Resource};
use serde_json::json;

use super::error::ApiError;
use super::paths;
use super::{state_of, AppState};
use crate::agent::Agent;

/// Adds a route's methods to its resource.
type Methods = fn(Resource) -> Resource;

/// The methods of each path, in [`paths::SERVER`]'s order then
/// [`paths::of_agent`]'s, and those methods for a 405's `Allow`.
const SERVER: [(Methods, &str); 3] = [
    (
        |r| r.route(web::get().to(health)).route(web::head().to(health)),
        "GET, HEAD",
    ),
    (
        |r| r.route(web::get().to(ready)).route(web::head().to(ready)),
        "GET, HEAD",
    ),
    (|r| r.route(web::get().to(metrics)), "GET"),
];
const AGENT: [(Methods, &str); 3] = [
    (
        |r| {
            r.route(web::get().to(super::swml::swml))
                .route(web::post().to(super::swml::swml))
        },
        "GET, POST",
    ),
    (|r| r.route(web::post().to(super::swaig::swaig)), "POST"),
    (
        |r| r.route(web::post().to(super::summary::post_prompt)),
        "POST",
    ),
];

/// Registers every route for `agent`, each of the agent's with and without
/// a trailing slash.
///
/// One resource per path, not one resource with a list of paths: actix
/// matches a list with a regex set on every request (about 5% of a static
/// SWAIG call under perf), a single static path with a string compare.
/// A served path answers any other method 405 with `Allow`.
pub fn configure(cfg: &mut web::ServiceConfig, agent: &Agent) {
    let own = paths::SERVER
        .into_iter()
        .zip(SERVER)
        .map(|((path, _), (methods, allow))| (path.to_owned(), methods, allow));
    let agents =
        paths::of_agent(agent)
            .into_iter()
            .zip(AGENT)
            .flat_map(|((path, _), (methods, allow))| {
                paths::both_forms(path)
                    .into_iter()
                    .map(move |p| (p, methods, allow))
            });
    for (path, methods, allow) in own.chain(agents) {
        cfg.service(
            methods(web::resource(path))
                .default_service(web::to(move || method_not_allowed(allow))),
        );
    }
    cfg.default_service(web::to(not_found));
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
