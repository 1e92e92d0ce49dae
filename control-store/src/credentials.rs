//! Device credentials: username + argon2id password hash, unique username per tenant.

use tenantmq_common::TenantId;
use uuid::Uuid;

use crate::db::{DbId, DbTime, now};
use crate::error::conflict_on_unique;
use crate::models::{Credential, CredentialSecret, NewCredential};
use crate::{Store, StoreError};

#[derive(sqlx::FromRow)]
struct CredentialRow {
    id: DbId,
    tenant_id: DbId,
    username: String,
    created_at: DbTime,
}

impl From<CredentialRow> for Credential {
    fn from(r: CredentialRow) -> Self {
        Credential {
            id: r.id.0,
            tenant_id: TenantId::from_uuid(r.tenant_id.0),
            username: r.username,
            created_at: r.created_at.0,
        }
    }
}

impl Store {
    /// Creates a credential.
    ///
    /// # Errors
    /// [`StoreError::Conflict`]`("username")` when the tenant already has the username;
    /// [`StoreError::Database`].
    pub async fn create_credential(
        &self,
        tenant: TenantId,
        new: NewCredential,
    ) -> Result<Credential, StoreError> {
        let row: CredentialRow = with_pool!(self, pool => {
            sqlx::query_as(
                "INSERT INTO credentials (id, tenant_id, username, password_hash, created_at) \
                 VALUES ($1, $2, $3, $4, $5) RETURNING id, tenant_id, username, created_at",
            )
            .bind(DbId(Uuid::now_v7()))
            .bind(DbId(*tenant.as_uuid()))
            .bind(new.username)
            .bind(new.password_hash)
            .bind(DbTime(now()))
            .fetch_one(pool)
            .await
            .map_err(conflict_on_unique("username"))?
        });
        Ok(row.into())
    }

    /// The tenant's credentials, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn list_credentials(&self, tenant: TenantId) -> Result<Vec<Credential>, StoreError> {
        let rows: Vec<CredentialRow> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, tenant_id, username, created_at FROM credentials \
                 WHERE tenant_id = $1 ORDER BY created_at, id",
            )
            .bind(DbId(*tenant.as_uuid()))
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(Credential::from).collect())
    }

    /// One credential of the tenant (`None` also when it belongs to another tenant).
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn credential(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Option<Credential>, StoreError> {
        let row: Option<CredentialRow> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, tenant_id, username, created_at FROM credentials \
                 WHERE tenant_id = $1 AND id = $2",
            )
            .bind(DbId(*tenant.as_uuid()))
            .bind(DbId(id))
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(Credential::from))
    }

    /// The credential with its password hash, for device authentication.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn credential_secret(
        &self,
        tenant: TenantId,
        username: &str,
    ) -> Result<Option<CredentialSecret>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: DbId,
            username: String,
            password_hash: String,
        }
        let row: Option<Row> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, username, password_hash FROM credentials \
                 WHERE tenant_id = $1 AND username = $2",
            )
            .bind(DbId(*tenant.as_uuid()))
            .bind(username)
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(|r| CredentialSecret {
            id: r.id.0,
            tenant_id: tenant,
            username: r.username,
            password_hash: r.password_hash,
        }))
    }

    /// Deletes a credential of the tenant and, by cascade, its ACL rules.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Database`].
    pub async fn delete_credential(&self, tenant: TenantId, id: Uuid) -> Result<(), StoreError> {
        let affected = with_pool!(self, pool => {
            sqlx::query("DELETE FROM credentials WHERE tenant_id = $1 AND id = $2")
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
