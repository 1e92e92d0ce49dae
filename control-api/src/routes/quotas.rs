//! `GET /v1/quotas` (effective limits) and `GET /v1/usage` (hourly usage).

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use tenantmq_common::quota::Quotas;
use tenantmq_control_store::models::UsageRecord;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiQuery, TenantAuth};

/// Longest range one usage query may cover.
pub const MAX_USAGE_RANGE_DAYS: i64 = 31;
/// Range of a usage query without `from`.
pub const DEFAULT_USAGE_RANGE_HOURS: i64 = 24;

/// The tenant's effective quotas: its plan's numbers with the operator's overrides applied.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuotasView {
    /// `free`, `pro` or `enterprise`.
    plan: String,
    /// Every limit (field names and meaning in docs/control-api.md).
    #[schema(value_type = Object)]
    quotas: Quotas,
}

/// The caller's effective quotas.
#[utoipa::path(
    get, path = "/v1/quotas", tag = "quotas", security(("api_key" = [])),
    responses((status = 200, body = QuotasView), (status = 401, body = ErrorBody))
)]
pub(crate) async fn get_quotas(auth: TenantAuth) -> Result<Json<QuotasView>, ApiError> {
    let quotas = auth
        .tenant
        .effective_quotas()
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(QuotasView {
        plan: auth.tenant.plan,
        quotas,
    }))
}

/// Range of a usage query.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// Start (RFC 3339, inclusive, e.g. `2026-01-01T00:00:00Z`); default `to` − 24 h.
    from: Option<DateTime<Utc>>,
    /// End (RFC 3339, exclusive); default now.
    to: Option<DateTime<Utc>>,
}

/// One hour of usage.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageItem {
    /// Start of the hour (UTC).
    hour: DateTime<Utc>,
    /// Sum of connection durations within the hour.
    connection_seconds: i64,
    /// Most concurrent connections.
    peak_connections: i64,
    /// PUBLISH packets received from devices.
    messages_in: i64,
    /// PUBLISH packets delivered to devices.
    messages_out: i64,
    /// Bytes received from devices.
    bytes_in: i64,
    /// Bytes sent to devices.
    bytes_out: i64,
    /// Packets or connections refused by a limit.
    rejections: i64,
}

impl From<UsageRecord> for UsageItem {
    fn from(r: UsageRecord) -> Self {
        Self {
            hour: r.hour,
            connection_seconds: r.connection_seconds,
            peak_connections: r.peak_connections,
            messages_in: r.messages_in,
            messages_out: r.messages_out,
            bytes_in: r.bytes_in,
            bytes_out: r.bytes_out,
            rejections: r.rejections,
        }
    }
}

/// Usage over a range.
#[derive(Debug, Serialize, ToSchema)]
pub struct UsageView {
    /// Start of the range used.
    from: DateTime<Utc>,
    /// End of the range used.
    to: DateTime<Utc>,
    /// Hours with any usage, oldest first; hours without usage are absent.
    items: Vec<UsageItem>,
}

/// The caller's hourly usage in `[from, to)`, at most 31 days.
#[utoipa::path(
    get, path = "/v1/usage", tag = "quotas", security(("api_key" = [])),
    params(UsageQuery),
    responses(
        (status = 200, body = UsageView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
    )
)]
pub(crate) async fn get_usage(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> Result<Json<UsageView>, ApiError> {
    let to = q.to.unwrap_or_else(Utc::now);
    let from = q
        .from
        .unwrap_or(to - TimeDelta::hours(DEFAULT_USAGE_RANGE_HOURS));
    if from >= to {
        return Err(ApiError::Validation("from must be before to".into()));
    }
    if to - from > TimeDelta::days(MAX_USAGE_RANGE_DAYS) {
        return Err(ApiError::Validation(format!(
            "the range may span at most {MAX_USAGE_RANGE_DAYS} days"
        )));
    }
    let records = state.store().usage(auth.tenant.id, from, to).await?;
    Ok(Json(UsageView {
        from,
        to,
        items: records.into_iter().map(Into::into).collect(),
    }))
}
