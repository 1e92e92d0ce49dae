//! `GET /v1/quotas` (effective limits), `GET /v1/usage` (the tenant's hourly usage) and
//! `GET /v1/admin/usage` (every tenant's, for billing exports).

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use tenantmq_common::quota::Quotas;
use tenantmq_control_store::models::UsageRecord;
use utoipa::{IntoParams, ToSchema};

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiQuery, OperatorAuth, TenantAuth};

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
    let (from, to) = range(q.from, q.to)?;
    let records = state.store().usage(auth.tenant.id, from, to).await?;
    Ok(Json(UsageView {
        from,
        to,
        items: records.into_iter().map(Into::into).collect(),
    }))
}

/// The range of a usage query: defaults, order and the maximum span checked in one place.
fn range(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let to = to.unwrap_or_else(Utc::now);
    let from = from.unwrap_or(to - TimeDelta::hours(DEFAULT_USAGE_RANGE_HOURS));
    if from >= to {
        return Err(ApiError::Validation("from must be before to".into()));
    }
    if to - from > TimeDelta::days(MAX_USAGE_RANGE_DAYS) {
        return Err(ApiError::Validation(format!(
            "the range may span at most {MAX_USAGE_RANGE_DAYS} days"
        )));
    }
    Ok((from, to))
}

/// Range and format of the operator's usage export.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AdminUsageQuery {
    /// Start (RFC 3339, inclusive); default `to` − 24 h.
    from: Option<DateTime<Utc>>,
    /// End (RFC 3339, exclusive); default now.
    to: Option<DateTime<Utc>>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// One tenant's hour of usage in the operator's export.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminUsageItem {
    /// The tenant.
    tenant_id: uuid::Uuid,
    /// The hour and its counters.
    #[serde(flatten)]
    usage: UsageItem,
}

/// Every tenant's usage over a range.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdminUsageView {
    /// Start of the range used.
    from: DateTime<Utc>,
    /// End of the range used.
    to: DateTime<Utc>,
    /// By hour, then tenant; hours without usage are absent.
    items: Vec<AdminUsageItem>,
}

/// Columns of the CSV export, in order.
pub const USAGE_CSV_HEADER: &str = "tenant_id,hour,connection_seconds,peak_connections,\
messages_in,messages_out,bytes_in,bytes_out,rejections";

/// Every tenant's hourly usage in `[from, to)` (at most 31 days): the basis of billing.
#[utoipa::path(
    get, path = "/v1/admin/usage", tag = "admin", security(("operator_token" = [])),
    params(AdminUsageQuery),
    responses(
        (status = 200, description = "JSON, or CSV with `format=csv`",
         content((AdminUsageView = "application/json"), (String = "text/csv"))),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
pub(crate) async fn admin_usage(
    State(state): State<AppState>,
    _: OperatorAuth,
    ApiQuery(q): ApiQuery<AdminUsageQuery>,
) -> Result<Response, ApiError> {
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(_) => return Err(ApiError::Validation("format must be json or csv".into())),
    };
    let (from, to) = range(q.from, q.to)?;
    let records = state.store().usage_all(from, to).await?;
    if csv {
        let mut out = String::with_capacity(64 * (records.len() + 1));
        out.push_str(USAGE_CSV_HEADER);
        out.push('\n');
        for r in &records {
            // Every field is a UUID, a timestamp or an integer: nothing needs quoting.
            out.push_str(&format!(
                "{},{},{},{},{},{},{},{},{}\n",
                r.tenant_id,
                r.hour.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                r.connection_seconds,
                r.peak_connections,
                r.messages_in,
                r.messages_out,
                r.bytes_in,
                r.bytes_out,
                r.rejections
            ));
        }
        return Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], out).into_response());
    }
    let items = records
        .into_iter()
        .map(|r| AdminUsageItem {
            tenant_id: *r.tenant_id.as_uuid(),
            usage: r.into(),
        })
        .collect();
    Ok(Json(AdminUsageView { from, to, items }).into_response())
}
