//! API keys: create, list, revoke. Only the SHA-256 of a key is stored.

use tenantmq_common::TenantId;
use uuid::Uuid;

use crate::db::{DbId, DbTime, now};
use crate::models::{ApiKey, NewApiKey};
use crate::{Store, StoreError};

#[derive(sqlx::FromRow)]
pub(crate) struct ApiKeyRow {
    id: DbId,
    tenant_id: DbId,
    name: Option<String>,
    prefix: String,
    created_at: DbTime,
}

impl From<ApiKeyRow> for ApiKey {
    fn from(r: ApiKeyRow) -> Self {
        ApiKey {
            id: r.id.0,
            tenant_id: TenantId::from_uuid(r.tenant_id.0),
            name: r.name,
            prefix: r.prefix,
            created_at: r.created_at.0,
        }
    }
}

/// Inserts a key with executor `$ex` (a pool or a transaction of either back-end); evaluates
/// to `Result<ApiKey, StoreError>`. A macro rather than a function because the executor's
/// type differs per back-end.
macro_rules! insert_api_key {
    ($ex:expr, $tenant:expr, $key:expr, $at:expr) => {{
        let key: $crate::models::NewApiKey = $key;
        sqlx::query_as::<_, $crate::api_keys::ApiKeyRow>(
            "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id, tenant_id, name, prefix, created_at",
        )
        .bind($crate::db::DbId(uuid::Uuid::now_v7()))
        .bind($crate::db::DbId(*$tenant.as_uuid()))
        .bind(key.name)
        .bind(key.prefix)
        .bind(key.key_hash)
        .bind($crate::db::DbTime($at))
        .fetch_one($ex)
        .await
        .map(ApiKey::from)
        .map_err($crate::error::conflict_on_unique("api key"))
    }};
}
pub(crate) use insert_api_key;

impl Store {
    /// Adds an API key to a tenant.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] if the tenant does not exist; [`StoreError::Database`].
    pub async fn create_api_key(
        &self,
        tenant: TenantId,
        key: NewApiKey,
    ) -> Result<ApiKey, StoreError> {
        with_pool!(self, pool => {
            match insert_api_key!(pool, tenant, key, now()) {
                // The only foreign key is the tenant's.
                Err(StoreError::Database(sqlx::Error::Database(e))) if e.is_foreign_key_violation() => {
                    Err(StoreError::NotFound)
                }
                other => other,
            }
        })
    }

    /// The tenant's keys, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn list_api_keys(&self, tenant: TenantId) -> Result<Vec<ApiKey>, StoreError> {
        let rows: Vec<ApiKeyRow> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, tenant_id, name, prefix, created_at FROM api_keys \
                 WHERE tenant_id = $1 ORDER BY created_at, id",
            )
            .bind(DbId(*tenant.as_uuid()))
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(ApiKey::from).collect())
    }

    /// Revokes a key of the tenant. The tenant's last key cannot be revoked: without one the
    /// tenant could not use the API at all, and only the operator could help.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when the tenant has no such key; [`StoreError::LastApiKey`];
    /// [`StoreError::Database`].
    pub async fn delete_api_key(&self, tenant: TenantId, id: Uuid) -> Result<(), StoreError> {
        let tenant = DbId(*tenant.as_uuid());
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            // A no-op write on the tenant row locks it (Postgres row lock, SQLite write lock),
            // so two concurrent revocations cannot both see "another key is left".
            sqlx::query("UPDATE tenants SET updated_at = updated_at WHERE id = $1")
                .bind(tenant)
                .execute(&mut *tx)
                .await?;
            let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_keys WHERE tenant_id = $1")
                .bind(tenant)
                .fetch_one(&mut *tx)
                .await?;
            let affected = sqlx::query("DELETE FROM api_keys WHERE tenant_id = $1 AND id = $2")
                .bind(tenant)
                .bind(DbId(id))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if affected == 0 {
                return Err(StoreError::NotFound);
            }
            if count <= 1 {
                // Dropping the transaction rolls the delete back.
                return Err(StoreError::LastApiKey);
            }
            tx.commit().await?;
            Ok(())
        })
    }
}
