//! A bare actix-web server for the HTTP baseline: every POST gets the same
//! static JSON body of a given size, after its request body was read (as
//! swagent reads it). Workers as swagent's: one per available core.
//!
//! Usage: `actix-bare PORT SIZE [DELAY_MS]` (binds 127.0.0.1 only). With a
//! delay, each answer waits that long first (without blocking a worker), to
//! stand in for a real upstream API in the http handler benchmark.

use actix_web::{web, App, HttpResponse, HttpServer};

/// A JSON object of exactly `size` bytes (at least 10).
fn body_of(size: usize) -> web::Bytes {
    let pad = size.saturating_sub(10);
    let s = format!("{{\"pad\":\"{}\"}}", "x".repeat(pad));
    web::Bytes::from(s)
}

/// How long each answer waits.
struct Delay(std::time::Duration);

async fn answer(
    body: web::Data<web::Bytes>,
    delay: web::Data<Delay>,
    _req: web::Bytes,
) -> HttpResponse {
    if !delay.0.is_zero() {
        actix_web::rt::time::sleep(delay.0).await;
    }
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body.get_ref().clone())
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let usage = || std::io::Error::other("usage: actix-bare PORT SIZE [DELAY_MS]");
    let port: u16 = args.next().and_then(|a| a.parse().ok()).ok_or_else(usage)?;
    let size: usize = args.next().and_then(|a| a.parse().ok()).ok_or_else(usage)?;
    let delay_ms: u64 = match args.next() {
        Some(a) => a.parse().map_err(|_| usage())?,
        None => 0,
    };
    let body = web::Data::new(body_of(size));
    let delay = web::Data::new(Delay(std::time::Duration::from_millis(delay_ms)));
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            App::new()
                .app_data(body.clone())
                .app_data(delay.clone())
                .default_service(web::to(answer))
        })
        .workers(workers)
        .bind(("127.0.0.1", port))?
        .run()
        .await
    })
}
