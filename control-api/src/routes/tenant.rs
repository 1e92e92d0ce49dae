//! `GET|PATCH /v1/tenant`: the caller's own tenant.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenantmq_common::quota::QuotaOverrides;
use tenantmq_control_store::models::{Tenant, TenantStatus, TenantUpdate};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, TenantAuth};
use crate::{AppState, validate};

/// A tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantView {
    /// Immutable id.
    id: Uuid,
    /// Unique slug.
    slug: String,
    /// Display name.
    name: String,
    /// Contact address.
    email: String,
    /// `free`, `pro` or `enterprise`.
    plan: String,
    /// `active` or `suspended`.
    #[schema(value_type = String, example = "active")]
    status: TenantStatus,
    /// Operator overrides of the plan's quotas (field names as in `GET /v1/quotas`).
    #[schema(value_type = Object)]
    quota_overrides: QuotaOverrides,
    /// Signup time.
    created_at: DateTime<Utc>,
    /// Last change.
    updated_at: DateTime<Utc>,
}

impl From<Tenant> for TenantView {
    fn from(t: Tenant) -> Self {
        Self {
            id: *t.id.as_uuid(),
            slug: t.slug.to_string(),
            name: t.name,
            email: t.email,
            plan: t.plan,
            status: t.status,
            quota_overrides: t.quota_overrides,
            created_at: t.created_at,
            updated_at: t.updated_at,
        }
    }
}

/// Changes to the caller's tenant; absent fields stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantPatch {
    /// New display name.
    name: Option<String>,
    /// New contact address.
    email: Option<String>,
}

/// The caller's tenant.
#[utoipa::path(
    get, path = "/v1/tenant", tag = "tenant", security(("api_key" = [])),
    responses((status = 200, body = TenantView), (status = 401, body = ErrorBody))
)]
pub(crate) async fn get_tenant(auth: TenantAuth) -> Json<TenantView> {
    Json(auth.tenant.into())
}

/// Change the caller's name or contact address (slug and plan are not the tenant's to change).
#[utoipa::path(
    patch, path = "/v1/tenant", tag = "tenant", security(("api_key" = [])),
    request_body = TenantPatch,
    responses(
        (status = 200, body = TenantView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "Tenant suspended", body = ErrorBody),
    )
)]
pub(crate) async fn patch_tenant(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiJson(patch): ApiJson<TenantPatch>,
) -> Result<Json<TenantView>, ApiError> {
    let update = TenantUpdate {
        name: patch
            .name
            .as_deref()
            .map(|n| validate::name("name", n))
            .transpose()?,
        email: patch.email.as_deref().map(validate::email).transpose()?,
    };
    let tenant = state.store().update_tenant(auth.tenant.id, update).await?;
    Ok(Json(tenant.into()))
}
