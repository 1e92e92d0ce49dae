//! `/v1/acls`: topic rules for devices. Semantics (see `tenantmq_common::auth::AclRules`): with
//! no applicable rule everything is allowed; once a rule applies, access needs a matching
//! allow and no matching deny.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenantmq_common::auth::{AclAction, Permission};
use tenantmq_control_store::models::{AclRuleRecord, NewAclRule};
use tenantmq_control_store::{ChangeKind, Invalidation};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, TenantAuth};
use crate::{AppState, validate};

/// Which packets a rule governs.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// PUBLISH (and will messages).
    Publish,
    /// SUBSCRIBE.
    Subscribe,
    /// Both.
    All,
}

/// Allow or deny.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    /// Grants access.
    Allow,
    /// Refuses access; a matching deny beats any allow.
    Deny,
}

impl From<Action> for AclAction {
    fn from(a: Action) -> Self {
        match a {
            Action::Publish => Self::Publish,
            Action::Subscribe => Self::Subscribe,
            Action::All => Self::All,
        }
    }
}

impl From<AclAction> for Action {
    fn from(a: AclAction) -> Self {
        match a {
            AclAction::Publish => Self::Publish,
            AclAction::Subscribe => Self::Subscribe,
            AclAction::All => Self::All,
        }
    }
}

impl From<Access> for Permission {
    fn from(a: Access) -> Self {
        match a {
            Access::Allow => Self::Allow,
            Access::Deny => Self::Deny,
        }
    }
}

impl From<Permission> for Access {
    fn from(p: Permission) -> Self {
        match p {
            Permission::Allow => Self::Allow,
            Permission::Deny => Self::Deny,
        }
    }
}

/// A new ACL rule.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAclRule {
    /// The credential the rule applies to; absent for a tenant-wide rule.
    credential_id: Option<Uuid>,
    /// Which packets.
    action: Action,
    /// An MQTT topic filter; `${username}` and `${clientid}` are substituted per connection.
    topic_filter: String,
    /// Allow or deny.
    permission: Access,
}

/// An ACL rule.
#[derive(Debug, Serialize, ToSchema)]
pub struct AclRuleView {
    /// Rule id.
    id: Uuid,
    /// The credential, or null for a tenant-wide rule.
    credential_id: Option<Uuid>,
    /// Which packets.
    action: Action,
    /// Topic filter as given.
    topic_filter: String,
    /// Allow or deny.
    permission: Access,
    /// Creation time (rules are listed in creation order).
    created_at: DateTime<Utc>,
}

impl From<AclRuleRecord> for AclRuleView {
    fn from(r: AclRuleRecord) -> Self {
        Self {
            id: r.id,
            credential_id: r.credential_id,
            action: r.action.into(),
            topic_filter: r.topic_filter,
            permission: r.permission.into(),
            created_at: r.created_at,
        }
    }
}

/// The tenant's ACL rules.
#[derive(Debug, Serialize, ToSchema)]
pub struct AclRuleList {
    /// In creation order.
    items: Vec<AclRuleView>,
}

/// Create an ACL rule.
#[utoipa::path(
    post, path = "/v1/acls", tag = "devices", security(("api_key" = [])),
    request_body = CreateAclRule,
    responses(
        (status = 201, body = AclRuleView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "No such credential", body = ErrorBody),
    )
)]
pub(crate) async fn create_acl(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiJson(req): ApiJson<CreateAclRule>,
) -> Result<(StatusCode, Json<AclRuleView>), ApiError> {
    validate::acl_topic_filter(&req.topic_filter)?;
    let new = NewAclRule {
        credential_id: req.credential_id,
        action: req.action.into(),
        topic_filter: req.topic_filter,
        permission: req.permission.into(),
    };
    let rule = state.store().create_acl_rule(auth.tenant.id, new).await?;
    state.publish([Invalidation::tenant(auth.tenant.id, ChangeKind::Acl)]);
    Ok((StatusCode::CREATED, Json(rule.into())))
}

/// List the tenant's ACL rules.
#[utoipa::path(
    get, path = "/v1/acls", tag = "devices", security(("api_key" = [])),
    responses((status = 200, body = AclRuleList), (status = 401, body = ErrorBody))
)]
pub(crate) async fn list_acls(
    State(state): State<AppState>,
    auth: TenantAuth,
) -> Result<Json<AclRuleList>, ApiError> {
    let items = state.store().list_acl_rules(auth.tenant.id).await?;
    Ok(Json(AclRuleList {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

/// Delete an ACL rule.
#[utoipa::path(
    delete, path = "/v1/acls/{id}", tag = "devices", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "Rule id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn delete_acl(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    state.store().delete_acl_rule(auth.tenant.id, id).await?;
    state.publish([Invalidation::tenant(auth.tenant.id, ChangeKind::Acl)]);
    Ok(StatusCode::NO_CONTENT)
}
