//! Request extractors: JSON/path/query wrappers whose rejections use the API's error shape,
//! and the two kinds of caller — a tenant (API key) and the operator (operator token).

use axum::extract::{FromRequest, FromRequestParts, Path, Query};
use axum::http::request::Parts;
use axum::http::{Method, header};
use subtle::ConstantTimeEq;
use tenantmq_control_store::models::{Tenant, TenantStatus};
use uuid::Uuid;

use crate::AppState;
use crate::error::ApiError;
use crate::keys;

/// `axum::Json` with rejections mapped to [`ApiError`].
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `axum::extract::Path` with rejections mapped to [`ApiError`].
#[derive(FromRequestParts)]
#[from_request(via(Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// `axum::extract::Query` with rejections mapped to [`ApiError`].
#[derive(FromRequestParts)]
#[from_request(via(Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// The bearer token of the request, if it has a well-formed `Authorization: Bearer …`.
fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// A request made with a tenant's API key. Tenant-scoped routes take this and only ever touch
/// objects of `tenant.id`.
///
/// The operator token is not an API key: on tenant routes it is refused with 401 like any
/// unknown key. A suspended tenant may read, and gets 403 `tenant_suspended` on writes.
#[derive(Debug)]
pub struct TenantAuth {
    /// The caller's tenant, as stored when the request arrived.
    pub tenant: Tenant,
    /// The key used (so a tenant cannot be surprised by which key a request used).
    pub key_id: Uuid,
}

impl FromRequestParts<AppState> for TenantAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or(ApiError::Unauthorized("missing bearer API key"))?;
        if !keys::looks_like_api_key(token) {
            return Err(ApiError::Unauthorized("invalid API key"));
        }
        let (key_id, tenant) = state
            .store()
            .tenant_for_api_key(&keys::hash(token))
            .await?
            .ok_or(ApiError::Unauthorized("invalid API key"))?;
        let read_only = matches!(parts.method, Method::GET | Method::HEAD);
        if tenant.status == TenantStatus::Suspended && !read_only {
            return Err(ApiError::Suspended);
        }
        Ok(Self { tenant, key_id })
    }
}

/// A request made with the operator token.
#[derive(Debug)]
pub struct OperatorAuth;

impl FromRequestParts<AppState> for OperatorAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts).ok_or(ApiError::Unauthorized("missing bearer operator token"))?;
        if let Some(expected) = &state.config().operator_token {
            // Constant time: the operator token is a low-entropy-tolerant shared secret, unlike
            // API keys, which are looked up by hash.
            if bool::from(token.as_bytes().ct_eq(expected.expose().as_bytes())) {
                return Ok(Self);
            }
        }
        // A valid tenant key is authenticated but not allowed here: 403. Anything else: 401.
        if keys::looks_like_api_key(token)
            && state
                .store()
                .tenant_for_api_key(&keys::hash(token))
                .await?
                .is_some()
        {
            return Err(ApiError::Forbidden(
                "tenant API keys cannot use operator routes",
            ));
        }
        Err(ApiError::Unauthorized("invalid operator token"))
    }
}
