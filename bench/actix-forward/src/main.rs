//! A bare forwarder for the http handler baseline: every POST's body is sent
//! on, as a POST with the same body, to one upstream URL through one pooled
//! reqwest client, and the upstream's status and body come back. Workers as
//! swagent's: one per available core. No templates, no checks, no JSON: the
//! most a forwarding server built of the same parts can do on this machine.
//!
//! Usage: `actix-forward PORT UPSTREAM_URL` (binds 127.0.0.1 only).

use actix_web::http::StatusCode;
use actix_web::{web, App, HttpResponse, HttpServer};

/// Where every request goes, and the client that takes it there.
struct Upstream {
    url: reqwest::Url,
    client: reqwest::Client,
}

async fn forward(upstream: web::Data<Upstream>, body: web::Bytes) -> HttpResponse {
    let sent = upstream
        .client
        .post(upstream.url.clone())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    let resp = match sent {
        Ok(resp) => resp,
        Err(e) => return HttpResponse::BadGateway().body(e.to_string()),
    };
    let status = StatusCode::from_u16(resp.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    match resp.bytes().await {
        Ok(bytes) => HttpResponse::build(status)
            .content_type("application/json")
            .body(bytes),
        Err(e) => HttpResponse::BadGateway().body(e.to_string()),
    }
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = || std::io::Error::other("usage: actix-forward PORT UPSTREAM_URL");
    let port: u16 = args.next().and_then(|a| a.parse().ok()).ok_or_else(usage)?;
    let url = args.next().and_then(|a| a.parse().ok()).ok_or_else(usage)?;
    // One client for every worker, as swagent has: its pool is shared.
    // reqwest's defaults otherwise (no cap on idle connections): the best
    // a forwarder can do, not a copy of swagent's choices.
    let upstream = web::Data::new(Upstream {
        url,
        client: reqwest::Client::new(),
    });
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            App::new()
                .app_data(upstream.clone())
                .default_service(web::to(forward))
        })
        .workers(workers)
        .bind(("127.0.0.1", port))?
        .run()
        .await
    })
}
