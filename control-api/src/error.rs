//! The API's one error type and its one mapping to HTTP: every failure a client can see is a
//! variant here, rendered as `{"error": {"code", "message"}}`.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tenantmq_control_store::StoreError;
use utoipa::ToSchema;

/// Everything that can go wrong in a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A field broke a rule (400 `validation_failed`).
    #[error("{0}")]
    Validation(String),
    /// The body is not the expected JSON (400 `invalid_body`).
    #[error("{0}")]
    InvalidBody(String),
    /// A path parameter is malformed, e.g. not a UUID (400 `invalid_path`).
    #[error("{0}")]
    InvalidPath(String),
    /// A query parameter is malformed (400 `invalid_query`).
    #[error("{0}")]
    InvalidQuery(String),
    /// Missing or bad credentials (401 `unauthorized`).
    #[error("{0}")]
    Unauthorized(&'static str),
    /// Authenticated, but this credential may not use this route (403 `forbidden`).
    #[error("{0}")]
    Forbidden(&'static str),
    /// The tenant is suspended and the request would change something (403 `tenant_suspended`).
    #[error("the tenant is suspended; only reads are allowed")]
    Suspended,
    /// No such object for this caller — also when it exists but belongs to another tenant, so
    /// that existence does not leak (404 `not_found`).
    #[error("not found")]
    NotFound,
    /// No such route (404 `route_not_found`).
    #[error("no such route")]
    RouteNotFound,
    /// The route exists, not with this method (405 `method_not_allowed`).
    #[error("method not allowed")]
    MethodNotAllowed,
    /// A uniqueness rule (409, code names the rule).
    #[error("{message}")]
    Conflict {
        /// `slug_taken`, `username_taken`, `ca_certificate_exists`, `last_api_key`, ….
        code: &'static str,
        /// Human-readable explanation.
        message: &'static str,
    },
    /// The body is larger than `max_body_bytes` (413 `payload_too_large`).
    #[error("request body too large")]
    PayloadTooLarge,
    /// The body is not `application/json` (415 `unsupported_media_type`).
    #[error("expected a body with content-type application/json")]
    UnsupportedMediaType,
    /// Too many requests; retry after the given seconds (429 `rate_limited`).
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited {
        /// Value of the `Retry-After` header.
        retry_after_secs: u64,
    },
    /// The database is unreachable (503 `unavailable`).
    #[error("the service is temporarily unavailable")]
    Unavailable,
    /// No data plane in this process, or it did not answer (503 `data_plane_unavailable`).
    #[error("the data plane is not reachable from this API process")]
    DataPlaneUnavailable,
    /// A bug or an unexpected failure (500 `internal`); the detail is logged, not returned.
    #[error("internal error")]
    Internal(String),
}

/// The error body of every non-2xx response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// Code and message of an error.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable snake_case code.
    pub code: String,
    /// Human-readable explanation; may change between versions.
    pub message: String,
}

impl ApiError {
    /// An internal error with a detail for the log.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::Internal(detail.into())
    }

    /// Status and code: the one place both are decided.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::Validation(_) => (StatusCode::BAD_REQUEST, "validation_failed"),
            Self::InvalidBody(_) => (StatusCode::BAD_REQUEST, "invalid_body"),
            Self::InvalidPath(_) => (StatusCode::BAD_REQUEST, "invalid_path"),
            Self::InvalidQuery(_) => (StatusCode::BAD_REQUEST, "invalid_query"),
            Self::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            Self::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            Self::Suspended => (StatusCode::FORBIDDEN, "tenant_suspended"),
            Self::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Self::RouteNotFound => (StatusCode::NOT_FOUND, "route_not_found"),
            Self::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            Self::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            Self::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::DataPlaneUnavailable => {
                (StatusCode::SERVICE_UNAVAILABLE, "data_plane_unavailable")
            }
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let Self::Internal(detail) = &self {
            tracing::error!(%detail, "internal error");
        }
        let body = ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message: self.to_string(),
            },
        };
        let mut response = (status, Json(body)).into_response();
        let headers = response.headers_mut();
        match &self {
            Self::RateLimited { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            Self::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::NotFound,
            StoreError::Conflict("slug") => Self::Conflict {
                code: "slug_taken",
                message: "the slug is taken",
            },
            StoreError::Conflict("username") => Self::Conflict {
                code: "username_taken",
                message: "the tenant already has a credential with this username",
            },
            StoreError::Conflict("ca certificate") => Self::Conflict {
                code: "ca_certificate_exists",
                message: "this CA certificate is already registered",
            },
            StoreError::LastApiKey => Self::Conflict {
                code: "last_api_key",
                message: "the last API key cannot be revoked; create another one first",
            },
            e if e.is_unavailable() => {
                tracing::warn!(error = %e, "database unavailable");
                Self::Unavailable
            }
            other => Self::internal(other.to_string()),
        }
    }
}

/// Maps a body rejection: the status axum chose for size and content type, 400 otherwise.
impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => Self::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::UnsupportedMediaType,
            _ => Self::InvalidBody(r.body_text()),
        }
    }
}

impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        Self::InvalidPath(r.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        Self::InvalidQuery(r.body_text())
    }
}
