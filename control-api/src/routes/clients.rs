//! Connected clients: list and disconnect ("kick") — the tenant's own (`/v1/clients`) and, for
//! the operator, any tenant's (`/v1/admin/tenants/{id}/clients`).
//!
//! The API reaches the data plane only through the [`SessionAdmin`] in [`AppState`]; every
//! call names the caller's tenant (or the operator's path tenant), and the worker asks that
//! tenant's engine only, so a tenant can never list or kick another tenant's clients — even one
//! with the same client id. Without a data plane in the process (a standalone control API) the
//! routes answer 503 `data_plane_unavailable`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tenantmq_common::TenantId;
use tenantmq_common::link::ClientInfo;
use tenantmq_common::session_admin::{SessionAdmin, SessionAdminError};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiPath, OperatorAuth, TenantAuth};

/// A connected client.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientView {
    /// Client identifier.
    client_id: String,
    /// Username (without the `<slug>/` prefix), if any.
    username: Option<String>,
    /// `3.1.1` or `5.0`.
    protocol: &'static str,
    /// The device's address (`ip:port`), if known.
    peer: Option<String>,
    /// When the connection was accepted.
    connected_at: DateTime<Utc>,
    /// Subscriptions held by the session.
    subscriptions: u32,
    /// QoS 1/2 messages in flight towards the client.
    inflight: u32,
    /// Messages queued for the client.
    queued: u32,
}

impl From<ClientInfo> for ClientView {
    fn from(c: ClientInfo) -> Self {
        let secs = i64::try_from(c.connected_at_unix).unwrap_or(i64::MAX);
        Self {
            client_id: c.client_id,
            username: c.username,
            protocol: if c.protocol_level == 5 {
                "5.0"
            } else {
                "3.1.1"
            },
            peer: c.peer.map(|p| p.to_string()),
            connected_at: DateTime::from_timestamp(secs, 0).unwrap_or_default(),
            subscriptions: c.subscriptions,
            inflight: c.inflight,
            queued: c.queued,
        }
    }
}

/// The connected clients of a tenant.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientList {
    /// Sorted by client id.
    items: Vec<ClientView>,
}

fn admin(state: &AppState) -> Result<&Arc<dyn SessionAdmin>, ApiError> {
    state.session_admin().ok_or(ApiError::DataPlaneUnavailable)
}

async fn list(state: &AppState, tenant: TenantId) -> Result<Json<ClientList>, ApiError> {
    let mut clients = admin(state)?
        .list_clients(tenant)
        .await
        .map_err(|SessionAdminError::Unavailable| ApiError::DataPlaneUnavailable)?;
    clients.sort_by(|a, b| a.client_id.cmp(&b.client_id));
    Ok(Json(ClientList {
        items: clients.into_iter().map(Into::into).collect(),
    }))
}

async fn kick(
    state: &AppState,
    tenant: TenantId,
    client_id: String,
) -> Result<StatusCode, ApiError> {
    let kicked = admin(state)?
        .kick(tenant, client_id.clone())
        .await
        .map_err(|SessionAdminError::Unavailable| ApiError::DataPlaneUnavailable)?;
    if !kicked {
        return Err(ApiError::NotFound);
    }
    tracing::info!(%tenant, %client_id, "client disconnected through the API");
    Ok(StatusCode::NO_CONTENT)
}

/// The caller's connected clients.
#[utoipa::path(
    get, path = "/v1/clients", tag = "clients", security(("api_key" = [])),
    responses(
        (status = 200, body = ClientList),
        (status = 401, body = ErrorBody),
        (status = 503, description = "No data plane in this process, or it did not answer", body = ErrorBody),
    )
)]
pub(crate) async fn list_clients(
    State(state): State<AppState>,
    auth: TenantAuth,
) -> Result<Json<ClientList>, ApiError> {
    list(&state, auth.tenant.id).await
}

/// Disconnect one of the caller's clients (MQTT 5: DISCONNECT 0x98 Administrative action;
/// MQTT 3.1.1: the connection is closed). Its session stays, as after any disconnect.
#[utoipa::path(
    delete, path = "/v1/clients/{client_id}", tag = "clients", security(("api_key" = [])),
    params(("client_id" = String, Path, description = "Client identifier (percent-encoded)")),
    responses(
        (status = 204, description = "Disconnected"),
        (status = 401, body = ErrorBody),
        (status = 403, description = "The tenant is suspended", body = ErrorBody),
        (status = 404, description = "No such client connected", body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn kick_client(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiPath(client_id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    kick(&state, auth.tenant.id, client_id).await
}

/// The operator's view of a tenant's connected clients.
#[utoipa::path(
    get, path = "/v1/admin/tenants/{id}/clients", tag = "admin", security(("operator_token" = [])),
    params(("id" = Uuid, Path, description = "Tenant id")),
    responses(
        (status = 200, body = ClientList),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such tenant", body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn admin_list_clients(
    State(state): State<AppState>,
    _: OperatorAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<ClientList>, ApiError> {
    let tenant = existing_tenant(&state, id).await?;
    list(&state, tenant).await
}

/// Disconnect a client of any tenant.
#[utoipa::path(
    delete, path = "/v1/admin/tenants/{id}/clients/{client_id}", tag = "admin",
    security(("operator_token" = [])),
    params(
        ("id" = Uuid, Path, description = "Tenant id"),
        ("client_id" = String, Path, description = "Client identifier (percent-encoded)"),
    ),
    responses(
        (status = 204, description = "Disconnected"),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such tenant or client", body = ErrorBody),
        (status = 503, body = ErrorBody),
    )
)]
pub(crate) async fn admin_kick_client(
    State(state): State<AppState>,
    _: OperatorAuth,
    ApiPath((id, client_id)): ApiPath<(Uuid, String)>,
) -> Result<StatusCode, ApiError> {
    let tenant = existing_tenant(&state, id).await?;
    kick(&state, tenant, client_id).await
}

async fn existing_tenant(state: &AppState, id: Uuid) -> Result<TenantId, ApiError> {
    let tenant = TenantId::from_uuid(id);
    state
        .store()
        .tenant(tenant)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(tenant)
}
