//! Reading a request: its JSON body (bounded in size and time), the
//! client's address, the base URL webhooks are built on, and the function
//! token in its query. What a request means is decided elsewhere; this only
//! reads it.

use std::net::IpAddr;

use actix_web::http::header::{self, HeaderMap};
use actix_web::{web, HttpRequest};
use futures_util::StreamExt as _;

use super::error::ApiError;
use super::unverified::Held;
use crate::call::body::{BodyError, CallBody};
use crate::config::Settings;
use crate::state::AppState;
use crate::token::Verdict;

pub(super) fn is_json(headers: &HeaderMap) -> bool {
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

/// Reads a JSON object body into what swagent uses of it (415, 413, 400 as
/// due), and the body as it was sent.
pub(super) async fn json_body(
    req: &HttpRequest,
    payload: web::Payload,
    state: &AppState,
) -> Result<(CallBody, web::Bytes), ApiError> {
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
    let bytes = read_body(req.headers(), payload, &state.settings, None).await?;
    let body = CallBody::parse(&bytes).map_err(|e| {
        ApiError::BadRequest(
            match e {
                BodyError::NotObject => "the request body must be a JSON object",
                BodyError::NotJson => "the request body is not valid JSON",
            }
            .into(),
        )
    })?;
    Ok((body, bytes))
}

pub(super) fn query_param(req: &HttpRequest, name: &str) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The client's address, as the perimeter decides it for its limits: the
/// socket peer, or the first `X-Forwarded-For` hop with `--trust-proxy`
/// ([`client_addr`]). Recomputed where needed rather than
/// stored in the request's extensions, which cost an allocation per request.
pub fn client_ip(req: &HttpRequest, state: &AppState) -> Option<IpAddr> {
    let forwarded = req
        .headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    client_addr(
        req.peer_addr().map(|a| a.ip()),
        forwarded,
        state.settings.trust_proxy,
    )
}

/// The base URL webhooks are built on: `SWML_PROXY_URL_BASE`; else, when
/// serving HTTPS with `SWML_DOMAIN`, `https://domain[:port]`; else what the
/// request was sent to ([`request_base`]).
pub(super) fn base_url(req: &HttpRequest, state: &AppState) -> Result<String, ApiError> {
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

/// The token in a query string: `__token`, else `token`, else empty.
///
/// Either name given twice is refused: swagent would read the first and the
/// Python SDK reads the last, so a proxy, a log or the other half of a mixed
/// fleet could judge one token while this server ran on another.
pub(super) fn presented_token(query: &str) -> Result<String, Verdict> {
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

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::client_addr;

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
}
