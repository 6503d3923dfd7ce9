//! The http handler: one templated request to a host fixed in the agent file.
//!
//! Scheme, host and port are literal (checked at load), templated URL parts are
//! percent-encoded, and redirects are followed only to the same origin, so no
//! argument can point a request somewhere else. Errors are logged without the
//! URL: it may carry `${env:...}` values. With a webhook secret, each request
//! is signed over its body as sent ([`crate::webhook`]), unless `sign: false`.

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use serde_json::Value;

use super::{reply_from_object, HandlerError, Reply};
use crate::agent::{HttpOutput, HttpSpec, Method};
use crate::template::{Context, Encoding, Part, RenderError, Template};
use crate::webhook::Signer;

/// How long an idle connection is kept: this bounds how long a past burst
/// leaves its sockets open.
const IDLE_FOR: Duration = Duration::from_secs(30);

/// What sends a handler's requests: the shared client, and the signer when
/// `SWAGENT_WEBHOOK_SECRET` is set.
#[derive(Clone, Copy)]
pub(super) struct Sender<'a> {
    pub client: &'a reqwest::Client,
    pub signer: Option<&'a Signer>,
}

/// A shared client: pooled connections, rustls. It follows same-origin
/// redirects only, or none when `follow` is false (a summary delivery).
/// `idle_per_host` is how many idle connections an upstream keeps: the
/// agent's http `concurrency`, all functions together. A socket is reused
/// before another is opened, so an upstream never holds more sockets than
/// its functions may run at once, which is what the descriptor budget
/// counts. A smaller cap closed and reopened a connection for about one
/// request in twenty at 32 at once (64 is the default `concurrency`), and
/// cost a forwarder a quarter of its throughput (bench/RESULTS.md, issue 28).
pub(super) fn client(follow: bool, idle_per_host: usize) -> reqwest::Client {
    let same_origin = reqwest::redirect::Policy::custom(|attempt| {
        let same_origin = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if attempt.previous().len() > 5 || !same_origin {
            attempt.stop()
        } else {
            attempt.follow()
        }
    });
    let policy = match follow {
        true => same_origin,
        false => reqwest::redirect::Policy::none(),
    };
    reqwest::Client::builder()
        .redirect(policy)
        .pool_max_idle_per_host(idle_per_host.max(1))
        .pool_idle_timeout(IDLE_FOR)
        .user_agent(concat!("swagent/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("the HTTP client builds")
}

/// True for a path segment the URL parser resolves away: `.` or `..`,
/// percent-encoded or not (WHATWG treats `%2e` as a dot).
fn is_dot_segment(segment: &str) -> bool {
    let s = segment.to_ascii_lowercase().replace("%2e", ".");
    s == "." || s == ".."
}

/// True when rendering made a path segment `.`, `..` or empty that the
/// template alone does not have. Percent-encoding keeps a value inside its segment
/// (`/` is encoded), but a value that *is* `..` would still climb out of it
/// once the URL is parsed. Values cannot add `/`, so the rendered path and
/// the template (each variable as `x`) have the same segments, one to one.
fn adds_dot_segment(template: &Template, rendered: &str) -> bool {
    let probe: String = template
        .parts()
        .iter()
        .map(|p| match p {
            Part::Lit(s) => s.as_str(),
            Part::Var(..) => "x",
        })
        .collect();
    let segments = |u: &str| -> Vec<String> {
        let rest = u.split_once("://").map_or(u, |(_, r)| r);
        let end = rest.find(['?', '#']).unwrap_or(rest.len());
        // The URL parser reads `\` as `/` in http(s) URLs.
        rest[..end].split(['/', '\\']).map(str::to_owned).collect()
    };
    // An empty segment (`/items//detail`) is refused too: many servers
    // collapse `//`, which climbs to a different resource just the same.
    segments(rendered)
        .iter()
        .zip(segments(&probe).iter())
        .any(|(r, p)| (is_dot_segment(r) && !is_dot_segment(p)) || (r.is_empty() && !p.is_empty()))
}

/// The request for one attempt, which may take at most `timeout` (the
/// reqwest timeout covers connecting, sending and reading the whole body).
/// Signed last, over the body bytes the built request holds, so what is
/// signed is exactly what is sent.
fn build(
    sender: Sender<'_>,
    function: &str,
    spec: &HttpSpec,
    ctx: &Context<'_>,
    attempt: Attempt<'_>,
) -> Result<reqwest::Request, HandlerError> {
    let mut request = request(sender.client, function, spec, ctx, attempt.timeout)?
        .build()
        .map_err(|e| HandlerError::failed(function, describe(e)))?;
    if let (Some(signer), Some(id)) = (sender.signer, attempt.message_id) {
        signer
            .sign_request(id, &mut request)
            .map_err(|e| HandlerError::failed(function, e.to_string()))?;
    }
    Ok(request)
}

/// One attempt of a run: its time, and the message id it is signed with.
#[derive(Clone, Copy)]
struct Attempt<'a> {
    timeout: Duration,
    /// Set when the request is signed; the same on every retry, as the
    /// spec has it, so a receiver can drop a duplicate.
    message_id: Option<&'a str>,
}

/// The URL of one request: rendered with `ctx` and parsed, or the one
/// parsed at load when it has no `${...}` (rendering, checking and parsing
/// it took about 8% of an http function's instructions, issue 28).
fn url(function: &str, spec: &HttpSpec, ctx: &Context<'_>) -> Result<url::Url, HandlerError> {
    if let Some(url) = &spec.fixed_url {
        return Ok(url::Url::clone(url));
    }
    let url = spec
        .url
        .render(ctx, Encoding::Url)
        .map_err(|e| HandlerError::render(function, e))?;
    if adds_dot_segment(&spec.url, &url) {
        return Err(HandlerError::failed(
            function,
            "an argument made a whole path segment `.`, `..` or empty; refused",
        ));
    }
    url::Url::parse(&url)
        .map_err(|e| HandlerError::failed(function, format!("rendered url does not parse: {e}")))
}

/// The request as the agent file describes it, rendered with `ctx`.
fn request(
    client: &reqwest::Client,
    function: &str,
    spec: &HttpSpec,
    ctx: &Context<'_>,
    timeout: Duration,
) -> Result<reqwest::RequestBuilder, HandlerError> {
    let render = |e| HandlerError::render(function, e);
    let mut url = url(function, spec, ctx)?;
    if !spec.query.is_empty() {
        let mut pairs = url.query_pairs_mut();
        for (k, t) in &spec.query {
            pairs.append_pair(k, &t.render(ctx, Encoding::Text).map_err(render)?);
        }
    }
    let method = match spec.method {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
    };
    let mut req = client.request(method, url).timeout(timeout);
    for (k, t) in &spec.headers {
        let value = t.render(ctx, Encoding::Text).map_err(render)?;
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| HandlerError::failed(function, format!("`{k}` is not a header name")))?;
        // Rejects CR/LF, so a value cannot add a header.
        let value = HeaderValue::from_str(&value).map_err(|_| {
            HandlerError::failed(
                function,
                format!("header `{k}` has a value that is not allowed in a header"),
            )
        })?;
        req = req.header(name, value);
    }
    if let Some(body) = &spec.body {
        req = req.json(&body.render(ctx).map_err(render)?);
    } else if !spec.form.is_empty() {
        let form = spec
            .form
            .iter()
            .map(|(k, t)| Ok((k.clone(), t.render(ctx, Encoding::Text)?)))
            .collect::<Result<Vec<_>, RenderError>>()
            .map_err(render)?;
        req = req.form(&form);
    }
    Ok(req)
}

/// Why reading a response body stopped short.
enum BodyError {
    /// The attempt's time ran out while the body was still arriving.
    Timeout,
    /// Too large, or the connection failed; for the log.
    Failed(String),
}

/// Reads the body up to `max` bytes.
async fn read_body(resp: reqwest::Response, max: u64) -> Result<Vec<u8>, BodyError> {
    let too_large = || {
        BodyError::Failed(format!(
            "response is larger than `max_response` ({max} bytes)"
        ))
    };
    if resp.content_length().is_some_and(|n| n > max) {
        return Err(too_large());
    }
    let mut out = Vec::new();
    let mut resp = resp;
    loop {
        let chunk = match resp.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return Ok(out),
            // reqwest reports a body cut off by the timeout as a decode
            // error whose cause is the timeout: said as what it is.
            Err(e) if e.is_timeout() => return Err(BodyError::Timeout),
            Err(e) => return Err(BodyError::Failed(describe(e))),
        };
        if (out.len() + chunk.len()) as u64 > max {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
}

/// Runs the request. `timeout` bounds the whole call, retries and their
/// back-off included: the AI is waiting, and a retry that cannot finish in
/// time only delays the answer. A GET is retried (on a connection error, a
/// timeout-free failure or a 5xx) only while time is left.
pub(super) async fn run(
    sender: Sender<'_>,
    function: &str,
    spec: &HttpSpec,
    ctx: &Context<'_>,
) -> Result<Reply, HandlerError> {
    let sender = Sender {
        signer: sender.signer.filter(|_| spec.sign),
        ..sender
    };
    let message_id = sender.signer.map(|_| crate::webhook::message_id());
    let deadline = tokio::time::Instant::now() + spec.timeout;
    let attempts = if spec.method == Method::Get {
        spec.retries + 1
    } else {
        1
    };
    let mut last = String::new();
    for attempt in 0..attempts {
        if attempt > 0 {
            let backoff = Duration::from_millis(100 << attempt.min(6));
            if tokio::time::Instant::now() + backoff >= deadline {
                break;
            }
            tokio::time::sleep(backoff).await;
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let this = Attempt {
            timeout: left,
            message_id: message_id.as_deref(),
        };
        let req = build(sender, function, spec, ctx, this)?;
        match sender.client.execute(req).await {
            Ok(resp) if resp.status().is_server_error() && attempt + 1 < attempts => {
                last = format!("upstream answered {}", resp.status());
            }
            Ok(resp) => return finish(function, spec, ctx, resp).await,
            Err(e) if e.is_timeout() => {
                return Err(HandlerError::timed_out(function, spec.timeout))
            }
            Err(e) => last = describe(e),
        }
    }
    Err(HandlerError::failed(function, last))
}

/// One attempt to deliver a summary: sent once, with its id as the
/// `webhook-id` (signed with it when signing is on), and judged by the
/// status alone.
pub(super) async fn deliver(
    sender: Sender<'_>,
    function: &str,
    spec: &HttpSpec,
    ctx: &Context<'_>,
    id: &str,
) -> super::Delivery {
    use super::Delivery;
    let sender = Sender {
        signer: sender.signer.filter(|_| spec.sign),
        ..sender
    };
    let attempt = Attempt {
        timeout: spec.timeout,
        message_id: Some(id),
    };
    let mut req = match build(sender, function, spec, ctx, attempt) {
        Ok(req) => req,
        // A template that cannot render now may after a reload: kept.
        Err(e) => return Delivery::retry(e.to_string()),
    };
    if sender.signer.is_none() {
        let id = reqwest::header::HeaderValue::from_str(id).expect("an id is header-safe");
        req.headers_mut().insert("webhook-id", id);
    }
    match sender.client.execute(req).await {
        Ok(resp) => {
            let status = resp.status();
            let after = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            if status.is_success() {
                Delivery::Delivered
            } else if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                Delivery::Retry {
                    reason: format!("the receiver answered {status}"),
                    after,
                }
            } else {
                Delivery::Rejected {
                    reason: format!("the receiver answered {status}"),
                }
            }
        }
        Err(e) if e.is_timeout() => Delivery::retry(format!("no answer within {:?}", spec.timeout)),
        Err(e) => Delivery::retry(describe(e)),
    }
}

/// The error with its causes ("error sending request" alone does not say
/// refused, DNS or TLS), without the URL, which may hold a `${env:}` secret.
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn finish(
    function: &str,
    spec: &HttpSpec,
    ctx: &Context<'_>,
    resp: reqwest::Response,
) -> Result<Reply, HandlerError> {
    let status = resp.status();
    if !status.is_success() && !status.is_client_error() {
        return Err(HandlerError::failed(
            function,
            format!("upstream answered {status}"),
        ));
    }
    let body = read_body(resp, spec.max_response)
        .await
        .map_err(|e| match e {
            BodyError::Timeout => HandlerError::timed_out(function, spec.timeout),
            BodyError::Failed(detail) => HandlerError::failed(function, detail),
        })?;
    // A 4xx with a `response` is the backend's refusal, in words the
    // caller should hear; without one, a failure like any other.
    if status.is_client_error() {
        return super::refusal(&body)
            .ok_or_else(|| HandlerError::failed(function, format!("upstream answered {status}")));
    }
    let json: Option<Value> = serde_json::from_slice(&body).ok();
    if let Some(Value::Object(obj)) = &json {
        if let Some(k) = spec.error_keys.iter().find(|k| obj.contains_key(*k)) {
            return super::refusal(&body).ok_or_else(|| {
                HandlerError::failed(function, format!("upstream response has error key `{k}`"))
            });
        }
    }
    let verified = match (&spec.verified_field, &json) {
        (Some(path), Some(json)) => crate::template::walk(json, path) == Some(&Value::Bool(true)),
        _ => false,
    };
    let mut reply = reply_for(function, spec, ctx, json.as_ref())?;
    // Moved, not copied: the response may be as large as `max_response`.
    reply.data = json.filter(Value::is_object);
    reply.verified = verified;
    Ok(reply)
}

fn reply_for(
    function: &str,
    spec: &HttpSpec,
    ctx: &Context<'_>,
    json: Option<&Value>,
) -> Result<Reply, HandlerError> {
    match &spec.output {
        Some(output) => {
            let Some(json) = json else {
                return Err(HandlerError::failed(
                    function,
                    "upstream response is not JSON, and `output` needs JSON",
                ));
            };
            let text = match output {
                HttpOutput::Text(template) => {
                    let ctx = Context {
                        response: Some(json),
                        ..*ctx
                    };
                    template
                        .render(&ctx, Encoding::Text)
                        .map_err(|e| HandlerError::render(function, e))?
                }
                HttpOutput::Foreach(f) => {
                    super::foreach::render(function, f, ctx, json, spec.max_response)?
                }
            };
            Ok(Reply::text(text))
        }
        // The object is the body parsed: not parsed again as text.
        None => Ok(json
            .and_then(Value::as_object)
            .filter(|obj| obj.contains_key("response"))
            .and_then(reply_from_object)
            .unwrap_or_else(|| Reply::text("The request was completed."))),
    }
}

#[cfg(test)]
mod tests {
    use super::adds_dot_segment;
    use crate::template::Template;

    #[test]
    fn a_value_may_not_make_a_dot_segment() {
        let t = Template::parse("https://h/items/${args.p}/x").unwrap();
        assert!(adds_dot_segment(&t, "https://h/items/../x"));
        assert!(adds_dot_segment(&t, "https://h/items/%2E%2e/x"));
        assert!(!adds_dot_segment(&t, "https://h/items/..%2Fa/x"));
        assert!(adds_dot_segment(&t, "https://h/items//x"));
        // A literal backslash in the template is a separator to the URL
        // parser, so `public\..` climbs too.
        let t = Template::parse("https://h/secret/public\\${args.p}/x").unwrap();
        assert!(adds_dot_segment(&t, "https://h/secret/public\\../x"));
        assert!(!adds_dot_segment(&t, "https://h/secret/public\\ok/x"));
    }
}
