//! `POST /v1/signup`: the public front door.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tenantmq_common::ids::Slug;
use tenantmq_control_store::models::{NewApiKey, NewTenant};
use tenantmq_control_store::{ChangeKind, Invalidation};
use utoipa::ToSchema;

use super::tenant::TenantView;
use crate::error::{ApiError, ErrorBody};
use crate::extract::ApiJson;
use crate::ratelimit::ClientIp;
use crate::{AppState, keys, validate};

/// Signup request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignupRequest {
    /// Display name, 1–200 characters.
    name: String,
    /// `[a-z0-9-]{3,40}`, unique; used in `<slug>.<base domain>` and `<slug>/<username>`.
    slug: String,
    /// Contact address.
    email: String,
}

/// The new tenant and its first API key. The key is shown only here.
#[derive(Debug, Serialize, ToSchema)]
pub struct SignupResponse {
    /// The tenant (plan `free`, status `active`).
    tenant: TenantView,
    /// `tmq_` + 40 base62 characters; store it now, it cannot be shown again.
    api_key: String,
}

/// Create a tenant and its first API key. Rate-limited per client IP.
#[utoipa::path(
    post, path = "/v1/signup", tag = "signup",
    request_body = SignupRequest,
    responses(
        (status = 201, description = "Tenant created", body = SignupResponse),
        (status = 400, description = "Invalid field", body = ErrorBody),
        (status = 409, description = "Slug taken (`slug_taken`)", body = ErrorBody),
        (status = 429, description = "Too many signups from this IP", body = ErrorBody),
    )
)]
pub(crate) async fn signup(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    ApiJson(req): ApiJson<SignupRequest>,
) -> Result<(StatusCode, Json<SignupResponse>), ApiError> {
    // Every attempt counts, valid or not, so the limit also slows down slug probing.
    state.signup_limiter().check(ip)?;
    let slug = Slug::parse(&req.slug).map_err(|e| ApiError::Validation(format!("slug: {e}")))?;
    let name = validate::name("name", &req.name)?;
    let email = validate::email(&req.email)?;
    let (api_key, prefix, key_hash) = keys::generate();
    let key = NewApiKey {
        name: Some("signup".to_owned()),
        prefix,
        key_hash,
    };
    let (tenant, _) = state
        .store()
        .create_tenant(NewTenant { slug, name, email }, key)
        .await?;
    state.publish([Invalidation::tenant(tenant.id, ChangeKind::Created)]);
    tracing::info!(tenant = %tenant.id, slug = %tenant.slug, "tenant signed up");
    Ok((
        StatusCode::CREATED,
        Json(SignupResponse {
            tenant: tenant.into(),
            api_key,
        }),
    ))
}
