//! Errors an HTTP caller can see, and the JSON body each one gets.
//!
//! Every body is `{"error": code, "message": safe text}`. Nothing here carries
//! internals: paths, stderr, upstream errors and secrets stay in the log.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::call::Refusal;
use crate::handlers::Reply;
use crate::state::AuditUnavailable;

/// An error answered to an HTTP caller.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No or wrong Basic Auth credentials (any malformed header too).
    #[error("authentication required")]
    Unauthorized,
    /// Path not served.
    #[error("not found")]
    NotFound,
    /// Path served, method not.
    #[error("method not allowed")]
    MethodNotAllowed { allow: &'static str },
    /// A body that is not `application/json`.
    #[error("`Content-Type` must be `application/json`")]
    UnsupportedMediaType,
    /// A body with a `Content-Encoding` (bodies are never decompressed).
    #[error("`Content-Encoding` is not supported; send the body uncompressed")]
    UnsupportedEncoding,
    /// A body over `SWML_MAX_REQUEST_SIZE`.
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The body did not arrive within the body timeout.
    #[error("the request body did not arrive within {} s", .0.as_secs_f64())]
    RequestTimeout(std::time::Duration),
    /// Malformed request; the message says what is wrong.
    #[error("{0}")]
    BadRequest(String),
    /// Bodies read before their sender is known fill their budget
    /// (`server::unverified`).
    #[error("too many request bodies are being read; try again shortly")]
    Overloaded,
    /// The `Host` header is not in `SWML_ALLOWED_HOSTS`.
    #[error("the `Host` is not allowed")]
    HostNotAllowed,
    /// `SIGNALWIRE_SIGNING_KEY` is set and the request is not signed with it.
    #[error("missing or invalid request signature")]
    InvalidSignature,
    /// Over `SWML_RATE_LIMIT` for the client address.
    #[error("too many requests; retry after {retry_after} s")]
    RateLimited { retry_after: u64 },
    /// Over `SWAGENT_AUTH_FAILURE_LIMIT` failed authentications for the address.
    #[error("too many failed authentications; retry after {retry_after} s")]
    TooManyFailures { retry_after: u64 },
    /// The call pipeline turned the request down; [`Refusal`] says how.
    #[error("{}", .0.message())]
    Refused(Refusal),
}

impl From<Refusal> for ApiError {
    fn from(refusal: Refusal) -> ApiError {
        ApiError::Refused(refusal)
    }
}

impl From<super::unverified::Overloaded> for ApiError {
    fn from(_: super::unverified::Overloaded) -> ApiError {
        ApiError::Overloaded
    }
}

impl From<AuditUnavailable> for ApiError {
    fn from(unavailable: AuditUnavailable) -> ApiError {
        ApiError::Refused(unavailable.into())
    }
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::UnsupportedEncoding => "unsupported_encoding",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::RequestTimeout(_) => "request_timeout",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Overloaded => "overloaded",
            ApiError::HostNotAllowed => "host_not_allowed",
            ApiError::InvalidSignature => "invalid_signature",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::TooManyFailures { .. } => "too_many_failures",
            ApiError::Refused(r) => r.code(),
        }
    }

    fn refusal(&self) -> Option<&Refusal> {
        match self {
            ApiError::Refused(r) => Some(r),
            _ => None,
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::Overloaded => Some(1),
            ApiError::RateLimited { retry_after } | ApiError::TooManyFailures { retry_after } => {
                Some(*retry_after)
            }
            ApiError::Refused(r) => r.retry_after(),
            _ => None,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::HostNotAllowed | ApiError::InvalidSignature => StatusCode::FORBIDDEN,
            ApiError::RateLimited { .. } | ApiError::TooManyFailures { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UnsupportedMediaType | ApiError::UnsupportedEncoding => {
                StatusCode::UNSUPPORTED_MEDIA_TYPE
            }
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Overloaded => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Refused(r) => {
                StatusCode::from_u16(r.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        // A refusal the AI hears is an answer, not an error.
        if let ApiError::Refused(r) = self {
            if let (200, Some(sentence)) = (r.status(), r.sentence()) {
                return HttpResponse::Ok().json(Reply::text(sentence));
            }
        }
        let mut resp = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unauthorized) {
            resp.insert_header((header::WWW_AUTHENTICATE, r#"Basic realm="swagent""#));
        }
        if let ApiError::MethodNotAllowed { allow } = self {
            resp.insert_header((header::ALLOW, *allow));
        }
        if matches!(self, ApiError::RequestTimeout(_) | ApiError::Overloaded) {
            // The rest of the body may still come: the connection cannot be
            // read as a next request.
            resp.force_close();
        }
        if let Some(secs) = self.retry_after() {
            resp.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        let mut body = json!({ "error": self.code(), "message": self.to_string() });
        if let Some(sentence) = self.refusal().and_then(Refusal::sentence) {
            // SWAIG reads `response`: the AI tells the caller, safely.
            body["response"] = json!(sentence);
        }
        resp.json(body)
    }
}
