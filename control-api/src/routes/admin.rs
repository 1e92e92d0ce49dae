//! `/v1/admin/tenants`: the operator's view of tenants (operator token only).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tenantmq_common::TenantId;
use tenantmq_common::quota::{QuotaOverrides, Quotas};
use tenantmq_control_store::models::{AdminTenantUpdate, TenantStatus};
use tenantmq_control_store::{ChangeKind, Invalidation};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::tenant::TenantView;
use super::{DEFAULT_PAGE_LIMIT, MAX_PAGE_LIMIT};
use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, ApiQuery, OperatorAuth};

/// Page of the tenant list.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Tenants per page, 1–1000 (default 100).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<Uuid>,
}

/// A page of tenants.
#[derive(Debug, Serialize, ToSchema)]
pub struct TenantPage {
    /// In signup order.
    items: Vec<TenantView>,
    /// Pass as `cursor` for the next page; null on the last page.
    next_cursor: Option<Uuid>,
}

/// The operator's change to a tenant; absent fields stay.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdminTenantPatch {
    /// `active` or `suspended`. A suspended tenant's devices are refused and its API keys may
    /// only read.
    #[schema(value_type = Option<String>, example = "suspended")]
    status: Option<TenantStatus>,
    /// `free`, `pro` or `enterprise`.
    plan: Option<String>,
    /// Replaces the overrides wholesale; `{}` clears them. Keys as in `GET /v1/quotas`.
    #[schema(value_type = Option<Object>)]
    quota_overrides: Option<QuotaOverrides>,
}

/// List tenants, paginated.
#[utoipa::path(
    get, path = "/v1/admin/tenants", tag = "admin", security(("operator_token" = [])),
    params(Page),
    responses(
        (status = 200, body = TenantPage),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "A tenant API key", body = ErrorBody),
    )
)]
pub(crate) async fn list_tenants(
    State(state): State<AppState>,
    _: OperatorAuth,
    ApiQuery(page): ApiQuery<Page>,
) -> Result<Json<TenantPage>, ApiError> {
    let limit = page.limit.unwrap_or(DEFAULT_PAGE_LIMIT);
    if !(1..=MAX_PAGE_LIMIT).contains(&limit) {
        return Err(ApiError::Validation(format!(
            "limit must be 1 to {MAX_PAGE_LIMIT}"
        )));
    }
    let tenants = state
        .store()
        .list_tenants(limit, page.cursor.map(TenantId::from_uuid))
        .await?;
    let full_page = tenants.len() == limit as usize;
    let next_cursor = tenants
        .last()
        .filter(|_| full_page)
        .map(|t| *t.id.as_uuid());
    Ok(Json(TenantPage {
        items: tenants.into_iter().map(Into::into).collect(),
        next_cursor,
    }))
}

/// One tenant.
#[utoipa::path(
    get, path = "/v1/admin/tenants/{id}", tag = "admin", security(("operator_token" = [])),
    params(("id" = Uuid, Path, description = "Tenant id")),
    responses(
        (status = 200, body = TenantView),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn get_tenant(
    State(state): State<AppState>,
    _: OperatorAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<TenantView>, ApiError> {
    let tenant = state
        .store()
        .tenant(TenantId::from_uuid(id))
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(tenant.into()))
}

/// Suspend or reactivate a tenant, change its plan or its quota overrides.
#[utoipa::path(
    patch, path = "/v1/admin/tenants/{id}", tag = "admin", security(("operator_token" = [])),
    params(("id" = Uuid, Path, description = "Tenant id")),
    request_body = AdminTenantPatch,
    responses(
        (status = 200, body = TenantView),
        (status = 400, description = "Unknown plan or invalid override", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn patch_tenant(
    State(state): State<AppState>,
    _: OperatorAuth,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(patch): ApiJson<AdminTenantPatch>,
) -> Result<Json<TenantView>, ApiError> {
    if let Some(plan) = &patch.plan {
        Quotas::for_plan(plan).map_err(|e| ApiError::Validation(e.to_string()))?;
    }
    if let Some(overrides) = &patch.quota_overrides {
        overrides
            .validate()
            .map_err(|e| ApiError::Validation(format!("quota_overrides: {e}")))?;
    }
    let id = TenantId::from_uuid(id);
    let mut changes = Vec::new();
    if patch.status.is_some() {
        changes.push(Invalidation::tenant(id, ChangeKind::Status));
    }
    if patch.plan.is_some() || patch.quota_overrides.is_some() {
        changes.push(Invalidation::tenant(id, ChangeKind::Quota));
    }
    let update = AdminTenantUpdate {
        status: patch.status,
        plan: patch.plan,
        quota_overrides: patch.quota_overrides,
    };
    let tenant = state.store().admin_update_tenant(id, update).await?;
    state.publish(changes);
    tracing::info!(tenant = %id, status = tenant.status.as_str(), plan = %tenant.plan, "operator updated tenant");
    Ok(Json(tenant.into()))
}

/// Delete a tenant and everything it owns (keys, credentials, CAs, ACLs, usage).
#[utoipa::path(
    delete, path = "/v1/admin/tenants/{id}", tag = "admin", security(("operator_token" = [])),
    params(("id" = Uuid, Path, description = "Tenant id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn delete_tenant(
    State(state): State<AppState>,
    _: OperatorAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    let id = TenantId::from_uuid(id);
    state.store().delete_tenant(id).await?;
    state.publish([Invalidation::tenant(id, ChangeKind::Deleted)]);
    tracing::info!(tenant = %id, "operator deleted tenant");
    Ok(StatusCode::NO_CONTENT)
}
