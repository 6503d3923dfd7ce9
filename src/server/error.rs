//! Errors an HTTP caller can see, and the JSON body each one gets.
//!
//! Every body is `{"error": code, "message": safe text}`. Nothing here carries
//! internals: paths, stderr, upstream errors and secrets stay in the log.

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

/// An error answered to an HTTP caller.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No or wrong Basic Auth credentials (any malformed header too).
    #[error("authentication required")]
    Unauthorized,
    /// A secure function without a valid token for it and this call.
    #[error("missing or invalid function token")]
    InvalidToken,
    /// Path not served.
    #[error("not found")]
    NotFound,
    /// Path served, method not.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A body that is not `application/json`.
    #[error("`Content-Type` must be `application/json`")]
    UnsupportedMediaType,
    /// A body over `SWML_MAX_REQUEST_SIZE`.
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// Malformed request; the message says what is wrong.
    #[error("{0}")]
    BadRequest(String),
    /// A call id that cannot be bound into a token.
    #[error("{0}")]
    InvalidCallId(crate::token::CallIdError),
    /// The function is not in this agent.
    #[error("no such function")]
    UnknownFunction,
    /// The function's concurrency limit is reached.
    #[error("the function is busy; try again shortly")]
    Busy,
    /// `--audit-required` and the audit log cannot be written.
    #[error("the service is unavailable")]
    AuditUnavailable,
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::InvalidToken => "invalid_token",
            ApiError::NotFound => "not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::UnsupportedMediaType => "unsupported_media_type",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::InvalidCallId(_) => "invalid_call_id",
            ApiError::UnknownFunction => "unknown_function",
            ApiError::Busy => "busy",
            ApiError::AuditUnavailable => "audit_unavailable",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::InvalidToken => StatusCode::FORBIDDEN,
            ApiError::NotFound | ApiError::UnknownFunction => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BadRequest(_) | ApiError::InvalidCallId(_) => StatusCode::BAD_REQUEST,
            ApiError::Busy | ApiError::AuditUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut resp = HttpResponse::build(self.status_code());
        if matches!(self, ApiError::Unauthorized) {
            resp.insert_header((header::WWW_AUTHENTICATE, r#"Basic realm="swagent""#));
        }
        if matches!(self, ApiError::Busy) {
            resp.insert_header((header::RETRY_AFTER, "1"));
        }
        resp.json(json!({ "error": self.code(), "message": self.to_string() }))
    }
}
