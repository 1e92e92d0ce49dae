//! Tenants: signup (tenant and first API key in one transaction), reads, updates, deletion.

use sqlx::types::Json;
use tenantmq_common::TenantId;
use tenantmq_common::ids::Slug;
use tenantmq_common::quota::{DEFAULT_PLAN, QuotaOverrides};
use uuid::Uuid;

use crate::api_keys::insert_api_key;
use crate::db::{DbId, DbTime, now};
use crate::error::conflict_on_unique;
use crate::models::{
    AdminTenantUpdate, ApiKey, NewApiKey, NewTenant, Tenant, TenantStatus, TenantUpdate,
};
use crate::{Store, StoreError};

macro_rules! tenant_columns {
    () => {
        "id, slug, name, email, plan, status, quota_overrides, created_at, updated_at"
    };
}

#[derive(sqlx::FromRow)]
pub(crate) struct TenantRow {
    id: DbId,
    slug: String,
    name: String,
    email: String,
    plan: String,
    status: String,
    quota_overrides: Json<QuotaOverrides>,
    created_at: DbTime,
    updated_at: DbTime,
}

impl TryFrom<TenantRow> for Tenant {
    type Error = StoreError;

    fn try_from(r: TenantRow) -> Result<Self, StoreError> {
        Ok(Tenant {
            id: TenantId::from_uuid(r.id.0),
            slug: Slug::parse(&r.slug)
                .map_err(|_| StoreError::Corrupt(format!("slug {:?}", r.slug)))?,
            name: r.name,
            email: r.email,
            plan: r.plan,
            status: TenantStatus::parse(&r.status)
                .ok_or_else(|| StoreError::Corrupt(format!("status {:?}", r.status)))?,
            quota_overrides: r.quota_overrides.0,
            created_at: r.created_at.0,
            updated_at: r.updated_at.0,
        })
    }
}

fn tenant_id(id: TenantId) -> DbId {
    DbId(*id.as_uuid())
}

impl Store {
    /// Signup: creates the tenant (plan `free`, status `active`) and its first API key in one
    /// transaction, so a failure leaves neither behind.
    ///
    /// # Errors
    /// [`StoreError::Conflict`]`("slug")` when the slug is taken; [`StoreError::Database`].
    pub async fn create_tenant(
        &self,
        new: NewTenant,
        key: NewApiKey,
    ) -> Result<(Tenant, ApiKey), StoreError> {
        let t = now();
        let id = TenantId::new_v7();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let row: TenantRow = sqlx::query_as(concat!(
                "INSERT INTO tenants (id, slug, name, email, plan, status, quota_overrides, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING ",
                tenant_columns!()
            ))
            .bind(tenant_id(id))
            .bind(new.slug.as_str())
            .bind(&new.name)
            .bind(&new.email)
            .bind(DEFAULT_PLAN)
            .bind(TenantStatus::Active.as_str())
            .bind(Json(QuotaOverrides::default()))
            .bind(DbTime(t))
            .fetch_one(&mut *tx)
            .await
            .map_err(conflict_on_unique("slug"))?;
            let key = insert_api_key!(&mut *tx, id, key, t)?;
            tx.commit().await?;
            Ok((Tenant::try_from(row)?, key))
        })
    }

    /// The tenant with this id.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn tenant(&self, id: TenantId) -> Result<Option<Tenant>, StoreError> {
        let row: Option<TenantRow> = with_pool!(self, pool => {
            sqlx::query_as(concat!("SELECT ", tenant_columns!(), " FROM tenants WHERE id = $1"))
                .bind(tenant_id(id))
                .fetch_optional(pool)
                .await?
        });
        row.map(Tenant::try_from).transpose()
    }

    /// The tenant with this slug.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn tenant_by_slug(&self, slug: &Slug) -> Result<Option<Tenant>, StoreError> {
        let row: Option<TenantRow> = with_pool!(self, pool => {
            sqlx::query_as(concat!("SELECT ", tenant_columns!(), " FROM tenants WHERE slug = $1"))
                .bind(slug.as_str())
                .fetch_optional(pool)
                .await?
        });
        row.map(Tenant::try_from).transpose()
    }

    /// Up to `limit` tenants in id order (which is signup order: ids are UUID v7), starting
    /// after `after` — keyset pagination, stable under concurrent signups.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn list_tenants(
        &self,
        limit: u32,
        after: Option<TenantId>,
    ) -> Result<Vec<Tenant>, StoreError> {
        let limit = i64::from(limit);
        let rows: Vec<TenantRow> = with_pool!(self, pool => match after {
            Some(after) => sqlx::query_as(concat!(
                "SELECT ", tenant_columns!(), " FROM tenants WHERE id > $1 ORDER BY id LIMIT $2"
            ))
            .bind(tenant_id(after))
            .bind(limit)
            .fetch_all(pool)
            .await?,
            None => sqlx::query_as(concat!(
                "SELECT ", tenant_columns!(), " FROM tenants ORDER BY id LIMIT $1"
            ))
            .bind(limit)
            .fetch_all(pool)
            .await?,
        });
        rows.into_iter().map(Tenant::try_from).collect()
    }

    /// Applies a tenant's change to itself.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Database`].
    pub async fn update_tenant(&self, id: TenantId, u: TenantUpdate) -> Result<Tenant, StoreError> {
        let row: Option<TenantRow> = with_pool!(self, pool => {
            sqlx::query_as(concat!(
                "UPDATE tenants SET name = COALESCE($2, name), email = COALESCE($3, email), \
                 updated_at = $4 WHERE id = $1 RETURNING ",
                tenant_columns!()
            ))
            .bind(tenant_id(id))
            .bind(u.name)
            .bind(u.email)
            .bind(DbTime(now()))
            .fetch_optional(pool)
            .await?
        });
        row.map(Tenant::try_from)
            .transpose()?
            .ok_or(StoreError::NotFound)
    }

    /// Applies an operator's change (status, plan, overrides) to a tenant.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Database`] (also for a plan the `plans` table
    /// does not know: callers validate plans first).
    pub async fn admin_update_tenant(
        &self,
        id: TenantId,
        u: AdminTenantUpdate,
    ) -> Result<Tenant, StoreError> {
        let row: Option<TenantRow> = with_pool!(self, pool => {
            sqlx::query_as(concat!(
                "UPDATE tenants SET status = COALESCE($2, status), plan = COALESCE($3, plan), \
                 quota_overrides = COALESCE($4, quota_overrides), updated_at = $5 \
                 WHERE id = $1 RETURNING ",
                tenant_columns!()
            ))
            .bind(tenant_id(id))
            .bind(u.status.map(TenantStatus::as_str))
            .bind(u.plan)
            .bind(u.quota_overrides.map(Json))
            .bind(DbTime(now()))
            .fetch_optional(pool)
            .await?
        });
        row.map(Tenant::try_from)
            .transpose()?
            .ok_or(StoreError::NotFound)
    }

    /// Deletes a tenant and, through `ON DELETE CASCADE`, everything it owns.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Database`].
    pub async fn delete_tenant(&self, id: TenantId) -> Result<(), StoreError> {
        let affected = with_pool!(self, pool => {
            sqlx::query("DELETE FROM tenants WHERE id = $1")
                .bind(tenant_id(id))
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

    /// The tenant owning the API key whose SHA-256 is `key_hash`, with the key's id.
    ///
    /// The lookup goes through the unique index on the hash: comparing hashes of a 238-bit
    /// random secret leaks nothing useful through timing.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn tenant_for_api_key(
        &self,
        key_hash: &str,
    ) -> Result<Option<(Uuid, Tenant)>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            key_id: DbId,
            #[sqlx(flatten)]
            tenant: TenantRow,
        }
        let row: Option<Row> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT k.id AS key_id, t.id, t.slug, t.name, t.email, t.plan, t.status, \
                 t.quota_overrides, t.created_at, t.updated_at \
                 FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.key_hash = $1",
            )
            .bind(key_hash)
            .fetch_optional(pool)
            .await?
        });
        row.map(|r| Ok((r.key_id.0, Tenant::try_from(r.tenant)?)))
            .transpose()
    }
}
