//! ACL rules: tenant-wide (no credential) or for one credential. Evaluation semantics are in
//! `tenantmq_common::auth::AclRules`.

use tenantmq_common::TenantId;
use tenantmq_common::auth::{AclAction, AclRule, Permission};
use uuid::Uuid;

use crate::db::{DbId, DbTime, now};
use crate::models::{AclRuleRecord, NewAclRule};
use crate::{Store, StoreError};

#[derive(sqlx::FromRow)]
struct AclRow {
    id: DbId,
    tenant_id: DbId,
    credential_id: Option<DbId>,
    action: String,
    topic_filter: String,
    permission: String,
    created_at: DbTime,
}

fn action_str(a: AclAction) -> &'static str {
    match a {
        AclAction::Publish => "publish",
        AclAction::Subscribe => "subscribe",
        AclAction::All => "all",
    }
}

fn parse_action(s: &str) -> Result<AclAction, StoreError> {
    match s {
        "publish" => Ok(AclAction::Publish),
        "subscribe" => Ok(AclAction::Subscribe),
        "all" => Ok(AclAction::All),
        other => Err(StoreError::Corrupt(format!("acl action {other:?}"))),
    }
}

fn permission_str(p: Permission) -> &'static str {
    match p {
        Permission::Allow => "allow",
        Permission::Deny => "deny",
    }
}

fn parse_permission(s: &str) -> Result<Permission, StoreError> {
    match s {
        "allow" => Ok(Permission::Allow),
        "deny" => Ok(Permission::Deny),
        other => Err(StoreError::Corrupt(format!("acl permission {other:?}"))),
    }
}

impl TryFrom<AclRow> for AclRuleRecord {
    type Error = StoreError;

    fn try_from(r: AclRow) -> Result<Self, StoreError> {
        Ok(AclRuleRecord {
            id: r.id.0,
            tenant_id: TenantId::from_uuid(r.tenant_id.0),
            credential_id: r.credential_id.map(|c| c.0),
            action: parse_action(&r.action)?,
            topic_filter: r.topic_filter,
            permission: parse_permission(&r.permission)?,
            created_at: r.created_at.0,
        })
    }
}

impl Store {
    /// Creates a rule. A rule naming a credential is created only if that credential belongs
    /// to the same tenant; the check and the insert share one transaction.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the credential is not the tenant's;
    /// [`StoreError::Database`].
    pub async fn create_acl_rule(
        &self,
        tenant: TenantId,
        new: NewAclRule,
    ) -> Result<AclRuleRecord, StoreError> {
        let tenant = DbId(*tenant.as_uuid());
        let row: AclRow = with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            if let Some(credential) = new.credential_id {
                let found: Option<DbId> = sqlx::query_scalar(
                    "SELECT id FROM credentials WHERE tenant_id = $1 AND id = $2",
                )
                .bind(tenant)
                .bind(DbId(credential))
                .fetch_optional(&mut *tx)
                .await?;
                if found.is_none() {
                    return Err(StoreError::NotFound);
                }
            }
            let row = sqlx::query_as(
                "INSERT INTO acl_rules (id, tenant_id, credential_id, action, topic_filter, \
                 permission, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id, \
                 tenant_id, credential_id, action, topic_filter, permission, created_at",
            )
            .bind(DbId(Uuid::now_v7()))
            .bind(tenant)
            .bind(new.credential_id.map(DbId))
            .bind(action_str(new.action))
            .bind(new.topic_filter)
            .bind(permission_str(new.permission))
            .bind(DbTime(now()))
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| match &e {
                // The credential was deleted after the check above.
                sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
                _ => StoreError::Database(e),
            })?;
            tx.commit().await?;
            row
        });
        row.try_into()
    }

    /// All of the tenant's rules (tenant-wide and per credential), in creation order.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn list_acl_rules(&self, tenant: TenantId) -> Result<Vec<AclRuleRecord>, StoreError> {
        let rows: Vec<AclRow> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, tenant_id, credential_id, action, topic_filter, permission, created_at \
                 FROM acl_rules WHERE tenant_id = $1 ORDER BY created_at, id",
            )
            .bind(DbId(*tenant.as_uuid()))
            .fetch_all(pool)
            .await?
        });
        rows.into_iter().map(AclRuleRecord::try_from).collect()
    }

    /// The rules that apply to a device: the tenant-wide ones plus those of `credential`
    /// (if any), in creation order.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn acl_rules_for(
        &self,
        tenant: TenantId,
        credential: Option<Uuid>,
    ) -> Result<Vec<AclRule>, StoreError> {
        let records = self.list_acl_rules(tenant).await?;
        Ok(records
            .into_iter()
            .filter(|r| r.credential_id.is_none() || r.credential_id == credential)
            .map(|r| AclRule {
                action: r.action,
                topic_filter: r.topic_filter,
                permission: r.permission,
            })
            .collect())
    }

    /// Deletes a rule of the tenant.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Database`].
    pub async fn delete_acl_rule(&self, tenant: TenantId, id: Uuid) -> Result<(), StoreError> {
        let affected = with_pool!(self, pool => {
            sqlx::query("DELETE FROM acl_rules WHERE tenant_id = $1 AND id = $2")
                .bind(DbId(*tenant.as_uuid()))
                .bind(DbId(id))
                .execute(pool)
                .await?
                .rows_affected()
        });
        if affected == 0 {
            Err(StoreError::NotFound)
        } else {
            Ok(())
        }
    }
}
