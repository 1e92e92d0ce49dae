//! `/v1/api-keys`: a tenant's API keys. Secrets are shown once, at creation.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenantmq_control_store::models::{ApiKey, NewApiKey};
use tenantmq_control_store::{ChangeKind, Invalidation};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, TenantAuth};
use crate::{AppState, keys, validate};

/// A new API key's optional label.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// Label, 1–200 characters.
    name: Option<String>,
}

/// An API key as listed (never the secret).
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyView {
    /// Key id, for revocation.
    id: Uuid,
    /// Label.
    name: Option<String>,
    /// The key's first 12 characters.
    prefix: String,
    /// Creation time.
    created_at: DateTime<Utc>,
}

impl From<ApiKey> for ApiKeyView {
    fn from(k: ApiKey) -> Self {
        Self {
            id: k.id,
            name: k.name,
            prefix: k.prefix,
            created_at: k.created_at,
        }
    }
}

/// A freshly created key, with its secret (shown only here).
#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedApiKey {
    /// The key's metadata.
    #[serde(flatten)]
    key: ApiKeyView,
    /// The secret: `tmq_` + 40 base62 characters.
    api_key: String,
}

/// The tenant's API keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct ApiKeyList {
    /// Oldest first.
    items: Vec<ApiKeyView>,
}

/// Create an API key. The body is optional (no body, `{}` or `{"name": …}`).
#[utoipa::path(
    post, path = "/v1/api-keys", tag = "tenant", security(("api_key" = [])),
    request_body(content = Option<CreateApiKey>, description = "Optional label"),
    responses(
        (status = 201, body = CreatedApiKey),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
pub(crate) async fn create_api_key(
    State(state): State<AppState>,
    auth: TenantAuth,
    body: Result<Option<Json<CreateApiKey>>, JsonRejection>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    let req = body?.map_or(CreateApiKey { name: None }, |Json(req)| req);
    let name = req
        .name
        .as_deref()
        .map(|n| validate::name("name", n))
        .transpose()?;
    let (api_key, prefix, key_hash) = keys::generate();
    let key = state
        .store()
        .create_api_key(
            auth.tenant.id,
            NewApiKey {
                name,
                prefix,
                key_hash,
            },
        )
        .await?;
    state.publish([Invalidation::tenant(auth.tenant.id, ChangeKind::ApiKey)]);
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            key: key.into(),
            api_key,
        }),
    ))
}

/// List the tenant's API keys.
#[utoipa::path(
    get, path = "/v1/api-keys", tag = "tenant", security(("api_key" = [])),
    responses((status = 200, body = ApiKeyList), (status = 401, body = ErrorBody))
)]
pub(crate) async fn list_api_keys(
    State(state): State<AppState>,
    auth: TenantAuth,
) -> Result<Json<ApiKeyList>, ApiError> {
    let keys = state.store().list_api_keys(auth.tenant.id).await?;
    Ok(Json(ApiKeyList {
        items: keys.into_iter().map(Into::into).collect(),
    }))
}

/// Revoke an API key; requests with it fail with 401 from now on. The last key cannot be
/// revoked (409 `last_api_key`).
#[utoipa::path(
    delete, path = "/v1/api-keys/{id}", tag = "tenant", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "Key id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Last key (`last_api_key`)", body = ErrorBody),
    )
)]
pub(crate) async fn delete_api_key(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    state.store().delete_api_key(auth.tenant.id, id).await?;
    state.publish([Invalidation::tenant(auth.tenant.id, ChangeKind::ApiKey)]);
    tracing::info!(tenant = %auth.tenant.id, revoked = %id, by_key = %auth.key_id, "API key revoked");
    Ok(StatusCode::NO_CONTENT)
}
