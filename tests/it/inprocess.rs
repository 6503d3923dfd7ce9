//! The same `app()` factory `serve` uses, driven in-process with
//! `actix_web::test`: no socket, so routing, the gate and the SWAIG flow are
//! exercised without a port, and the state can be inspected directly.

use actix_web::http::StatusCode;
use actix_web::{test, web};
use base64::Engine as _;
use serde_json::{json, Value};

use swagent::agent::{self, LoadOptions};
use swagent::auth::{Credentials, Origin};
use swagent::config::{ServeConfig, Settings};
use swagent::server::{app, AppState};
use swagent::token::{self, Secret};

use crate::util::{root, PASSWORD, SECRET, USER};

fn state() -> web::Data<AppState> {
    let (agent, _) = agent::load(&root().join("agents/bank.yaml"), LoadOptions::default()).unwrap();
    let settings = Settings::new(
        Credentials::new(USER.into(), PASSWORD.into(), Origin::Configured),
        Secret::new(SECRET),
    );
    web::Data::new(AppState::new(agent, ServeConfig::new(settings)).unwrap())
}

fn basic() -> (&'static str, String) {
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    ("authorization", format!("Basic {b64}"))
}

#[actix_web::test]
async fn swml_and_a_secure_function_through_the_app_factory() {
    let state = state();
    let app = test::init_service(app(state.clone())).await;

    let req = test::TestRequest::post()
        .uri("/")
        .insert_header(basic())
        .insert_header(("host", "agent.test"))
        .set_json(json!({"call_id": "in-process-1"}))
        .to_request();
    let swml: Value = test::call_and_read_body_json(&app, req).await;
    let hook = swml["sections"]["main"][1]["ai"]["SWAIG"]["defaults"]["web_hook_url"]
        .as_str()
        .unwrap();
    assert_eq!(hook, format!("http://{USER}:{PASSWORD}@agent.test/swaig/"));

    let t = token::mint(
        &Secret::new(SECRET),
        "in-process-1",
        "get_balance",
        swagent::clock::now() + 60,
    )
    .unwrap();
    let q: String = url::form_urlencoded::byte_serialize(t.as_bytes()).collect();
    let req = test::TestRequest::post()
        .uri(&format!("/swaig?__token={q}"))
        .insert_header(basic())
        .set_json(json!({"function": "get_balance", "call_id": "in-process-1", "argument": {"parsed": [{"account": "12345678"}]}}))
        .to_request();
    let reply: Value = test::call_and_read_body_json(&app, req).await;
    assert_eq!(
        reply,
        json!({"response": "The balance of the account ending in 5678 is 1,234.56 dollars."})
    );

    // The state is the server's own: its metrics saw both requests.
    let text = state.metrics.render();
    assert!(
        text.contains("swagent_function_calls_total{function=\"get_balance\",outcome=\"ok\"} 1"),
        "{text}"
    );
}

#[actix_web::test]
async fn the_gate_and_the_token_check_refuse_in_process_too() {
    let app = test::init_service(app(state())).await;
    let resp = test::call_service(&app, test::TestRequest::post().uri("/swaig").to_request()).await;
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        resp.headers().get("www-authenticate").unwrap(),
        "Basic realm=\"swagent\""
    );

    let req = test::TestRequest::post()
        .uri("/swaig")
        .insert_header(basic())
        .set_json(json!({"function": "get_balance", "call_id": "c", "argument": {"parsed": [{"account": "12345678"}]}}))
        .to_request();
    let resp = test::call_service(&app, req).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body: Value = test::read_body_json(resp).await;
    assert_eq!(
        body,
        json!({"error": "invalid_token", "message": "missing or invalid function token"})
    );

    let resp = test::call_service(&app, test::TestRequest::get().uri("/health").to_request()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(
        resp.headers().get("x-content-type-options").unwrap(),
        "nosniff"
    );
}
