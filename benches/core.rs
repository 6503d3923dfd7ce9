//! Micro-benchmarks of the per-request work: token mint and verify, SWML
//! rendering, template rendering, and agent loading (what `validate` and
//! reload pay per file).
//!
//! Quick by default (1 s of measurement per benchmark) so `just bench` stays
//! short on a shared 2-core machine; pass `--measurement-time 5` after `--`
//! for tighter intervals. The HTTP-level numbers are in `bench/http.sh`.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::{json, Value};

use swagent::agent::{load, Agent, LoadOptions};
use swagent::swml::{self, RenderContext};
use swagent::template::{Context, Encoding, Template};
use swagent::token::{self, Expect, Secret, Verdict};

const SECRET: &str = "test-secret-0123456789abcdef";
/// 2099-01-01: tokens minted here never expire during a run.
const FAR: u64 = 4_070_908_800;

fn bank_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("agents/bank.yaml")
}

fn bank() -> Agent {
    load(&bank_path(), LoadOptions::default())
        .expect("agents/bank.yaml loads")
        .0
}

/// `bench/large.yaml`: 10 contexts, 40 steps, 50 functions (issue 26).
fn large() -> Agent {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/large.yaml");
    load(&path, LoadOptions::default())
        .expect("bench/large.yaml loads")
        .0
}

fn tokens(c: &mut Criterion) {
    let secret = Secret::new(SECRET);
    let mut g = c.benchmark_group("token");
    // `mint` draws its nonce from the system random source, as in serve.
    g.bench_function("mint", |b| {
        b.iter(|| token::mint(&secret, black_box("call-123"), "get_balance", FAR).unwrap())
    });
    let t = token::mint(&secret, "call-123", "get_balance", FAR).unwrap();
    let expect = Expect {
        function: Some("get_balance"),
        call_id: Some("call-123"),
        now: 1_700_000_000,
    };
    g.bench_function("verify_valid", |b| {
        b.iter(|| {
            let (v, _) = token::check(&secret, black_box(&t), expect);
            assert_eq!(v, Verdict::Valid);
        })
    });
    // A forged token costs the same HMAC; this shows nothing is skipped early.
    let forged = token::mint(&Secret::new("other"), "call-123", "get_balance", FAR).unwrap();
    g.bench_function("verify_bad_signature", |b| {
        b.iter(|| {
            let (v, _) = token::check(&secret, black_box(&forged), expect);
            assert_eq!(v, Verdict::BadSignature);
        })
    });
    g.finish();
}

fn swml_render(c: &mut Criterion) {
    let agent = bank();
    let secret = Secret::new(SECRET);
    let ctx = RenderContext {
        base_url: "http://127.0.0.1:3000",
        userinfo: &swml::Userinfo::new("signalwire", "p-0123456789abcdef0123"),
        secret: &secret,
        call_id: "call-123",
        now: 1_700_000_000,
    };
    let mut g = c.benchmark_group("swml");
    // What `serve` does per request: the prepared document, URLs and tokens
    // spliced in, as the bytes it sends.
    let prepared = swml::Prepared::new(&agent);
    g.bench_function("render_bank_prepared", |b| {
        b.iter(|| black_box(&prepared).render(&ctx).unwrap())
    });
    // Preparing the document, done once per (re)load.
    g.bench_function("prepare_bank", |b| {
        b.iter(|| swml::Prepared::new(black_box(&agent)))
    });
    // The document as a JSON value (`swagent swml`, tests): prepare + parse.
    g.bench_function("render_bank_value", |b| {
        b.iter(|| swml::render(black_box(&agent), &ctx).unwrap())
    });
    // A large agent: 50 tokens per document instead of 3.
    let large = swml::Prepared::new(&large());
    g.bench_function("render_large_prepared", |b| {
        b.iter(|| black_box(&large).render(&ctx).unwrap())
    });
    g.finish();
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn templates(c: &mut Criterion) {
    let args = json!({"account": "12345678", "q": "a b/c?d=e&f#g ${env:X}"});
    let response = json!({"id": "tr-42", "status": "done", "items": [{"n": 1}]});
    let ctx = Context {
        args: &args,
        call_id: "call-123",
        global_data: &Value::Null,
        meta_data: &Value::Null,
        response: Some(&response),
        call: None,
        payload: None,
        item: None,
        list: None,
        env: &no_env,
    };
    let argv = Template::parse("--account=${args.account}").unwrap();
    let url = Template::parse("https://core.example.com/accounts/${args.account}/search/${args.q}")
        .unwrap();
    let output =
        Template::parse("Transfer ${response.id} is ${response.status} (${response.items[0].n}).")
            .unwrap();
    let mut g = c.benchmark_group("template");
    g.bench_function("parse_output", |b| {
        b.iter(|| {
            Template::parse(black_box("Transfer ${response.id} is ${response.status}.")).unwrap()
        })
    });
    g.bench_function("render_argv", |b| {
        b.iter(|| black_box(&argv).render(&ctx, Encoding::Text).unwrap())
    });
    g.bench_function("render_url", |b| {
        b.iter(|| black_box(&url).render(&ctx, Encoding::Url).unwrap())
    });
    g.bench_function("render_output", |b| {
        b.iter(|| black_box(&output).render(&ctx, Encoding::Text).unwrap())
    });
    g.finish();
}

fn loading(c: &mut Criterion) {
    let path = bank_path();
    let mut g = c.benchmark_group("agent");
    // Read, YAML, schema, meaning checks, template parsing and JSON Schema
    // compilation: one file's share of `validate`.
    g.bench_function("load_bank", |b| {
        b.iter(|| load(black_box(&path), LoadOptions::default()).unwrap())
    });
    g.finish();
}

/// One request through the same `app()` as `serve`, in-process (no socket,
/// no HTTP codec): the server's own user-space work per request. `/health`
/// is the floor every request pays (middleware, routing, headers).
fn app_requests(c: &mut Criterion) {
    use actix_web::{test, web};
    use base64::Engine as _;
    use swagent::auth::{Credentials, Origin};
    use swagent::config::{ServeConfig, Settings};
    use swagent::server::{app, AppState};

    let rt = actix_web::rt::System::new();
    let settings = Settings::new(
        Credentials::new(
            "bench".into(),
            "bench-password-0123456789".into(),
            Origin::Configured,
        ),
        Secret::new(SECRET),
    );
    let state = web::Data::new(AppState::new(bank(), ServeConfig::new(settings)).unwrap());
    let service = rt.block_on(test::init_service(app(state)));
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("bench:bench-password-0123456789")
    );
    let post = |path: &str, body: &'static str| {
        test::TestRequest::post()
            .uri(path)
            .insert_header(("authorization", auth.as_str()))
            .insert_header(("content-type", "application/json"))
            .insert_header(("host", "127.0.0.1:8080"))
            .set_payload(body)
            .to_request()
    };
    // The answer must be a 200 and is read whole, as a client would.
    let call = |req| {
        let resp = rt.block_on(test::call_service(&service, req));
        assert!(resp.status().is_success());
        rt.block_on(test::read_body(resp))
    };
    let mut g = c.benchmark_group("app");
    g.bench_function("health", |b| {
        b.iter(|| call(test::TestRequest::get().uri("/health").to_request()))
    });
    g.bench_function("swml", |b| {
        b.iter(|| call(post("/", r#"{"call_id":"bench-call"}"#)))
    });
    g.bench_function("swaig_static", |b| {
        b.iter(|| {
            call(post(
                "/swaig",
                r#"{"function":"get_hours","argument":{"parsed":[{}],"raw":"{}"},"call_id":"bench-call"}"#,
            ))
        })
    });
    g.finish();
}

fn quick() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .sample_size(30)
        .configure_from_args()
}

criterion_group! {
    name = benches;
    config = quick();
    targets = tokens, swml_render, templates, loading, app_requests
}
criterion_main!(benches);
