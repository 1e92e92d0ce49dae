//! `/v1/credentials`: device usernames and passwords (argon2id hashes; passwords never leave).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenantmq_control_store::models::{Credential, NewCredential};
use tenantmq_control_store::{ChangeKind, Invalidation};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, TenantAuth};
use crate::{AppState, password, validate};

/// A new device credential.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCredential {
    /// 1–128 characters, no `/`, no NUL; unique within the tenant. Devices connect as
    /// `<username>` with SNI `<slug>.<base domain>`, or as `<slug>/<username>`.
    username: String,
    /// At least 8 characters (at most 1024 bytes).
    password: String,
}

/// A device credential (never the password or its hash).
#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialView {
    /// Credential id.
    id: Uuid,
    /// Device username.
    username: String,
    /// Creation time.
    created_at: DateTime<Utc>,
}

impl From<Credential> for CredentialView {
    fn from(c: Credential) -> Self {
        Self {
            id: c.id,
            username: c.username,
            created_at: c.created_at,
        }
    }
}

/// The tenant's credentials.
#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialList {
    /// Oldest first.
    items: Vec<CredentialView>,
}

/// Create a device credential.
#[utoipa::path(
    post, path = "/v1/credentials", tag = "devices", security(("api_key" = [])),
    request_body = CreateCredential,
    responses(
        (status = 201, body = CredentialView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "Username taken (`username_taken`)", body = ErrorBody),
    )
)]
pub(crate) async fn create_credential(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiJson(req): ApiJson<CreateCredential>,
) -> Result<(StatusCode, Json<CredentialView>), ApiError> {
    validate::username(&req.username)?;
    validate::password(&req.password)?;
    let password_hash = password::hash(req.password, state.argon2()).await?;
    let new = NewCredential {
        username: req.username,
        password_hash,
    };
    let credential = state.store().create_credential(auth.tenant.id, new).await?;
    state.publish([Invalidation::tenant(auth.tenant.id, ChangeKind::Credential)]);
    Ok((StatusCode::CREATED, Json(credential.into())))
}

/// List the tenant's device credentials.
#[utoipa::path(
    get, path = "/v1/credentials", tag = "devices", security(("api_key" = [])),
    responses((status = 200, body = CredentialList), (status = 401, body = ErrorBody))
)]
pub(crate) async fn list_credentials(
    State(state): State<AppState>,
    auth: TenantAuth,
) -> Result<Json<CredentialList>, ApiError> {
    let items = state.store().list_credentials(auth.tenant.id).await?;
    Ok(Json(CredentialList {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

/// One device credential.
#[utoipa::path(
    get, path = "/v1/credentials/{id}", tag = "devices", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "Credential id")),
    responses(
        (status = 200, body = CredentialView),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn get_credential(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<CredentialView>, ApiError> {
    let credential = state
        .store()
        .credential(auth.tenant.id, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(credential.into()))
}

/// Delete a device credential and its ACL rules. Connected devices using it are not
/// disconnected by this call; new connections are refused once caches see the change.
#[utoipa::path(
    delete, path = "/v1/credentials/{id}", tag = "devices", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "Credential id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn delete_credential(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    state.store().delete_credential(auth.tenant.id, id).await?;
    state.publish([
        Invalidation::tenant(auth.tenant.id, ChangeKind::Credential),
        Invalidation::tenant(auth.tenant.id, ChangeKind::Acl),
    ]);
    Ok(StatusCode::NO_CONTENT)
}
