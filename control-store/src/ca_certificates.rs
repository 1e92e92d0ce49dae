//! CA certificates tenants register for their devices' client certificates (mutual TLS).

use tenantmq_common::TenantId;
use uuid::Uuid;

use crate::db::{DbId, DbTime, now};
use crate::error::conflict_on_unique;
use crate::models::{CaCertificate, NewCaCertificate, RegisteredCa};
use crate::{Store, StoreError};

macro_rules! ca_columns {
    () => {
        "id, tenant_id, name, pem, fingerprint_sha256, subject, not_after, created_at"
    };
}

#[derive(sqlx::FromRow)]
struct CaRow {
    id: DbId,
    tenant_id: DbId,
    name: Option<String>,
    pem: String,
    fingerprint_sha256: String,
    subject: String,
    not_after: DbTime,
    created_at: DbTime,
}

impl From<CaRow> for CaCertificate {
    fn from(r: CaRow) -> Self {
        CaCertificate {
            id: r.id.0,
            tenant_id: TenantId::from_uuid(r.tenant_id.0),
            name: r.name,
            pem: r.pem,
            fingerprint_sha256: r.fingerprint_sha256,
            subject: r.subject,
            not_after: r.not_after.0,
            created_at: r.created_at.0,
        }
    }
}

impl Store {
    /// Registers a CA certificate (already parsed and checked by the caller).
    ///
    /// # Errors
    /// [`StoreError::Conflict`]`("ca certificate")` when the tenant registered the same
    /// certificate before; [`StoreError::Database`].
    pub async fn create_ca_certificate(
        &self,
        tenant: TenantId,
        new: NewCaCertificate,
    ) -> Result<CaCertificate, StoreError> {
        let row: CaRow = with_pool!(self, pool => {
            sqlx::query_as(concat!(
                "INSERT INTO ca_certificates (id, tenant_id, name, pem, der, fingerprint_sha256, \
                 subject, not_after, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
                 RETURNING ",
                ca_columns!()
            ))
            .bind(DbId(Uuid::now_v7()))
            .bind(DbId(*tenant.as_uuid()))
            .bind(new.name)
            .bind(new.pem)
            .bind(new.der)
            .bind(new.fingerprint_sha256)
            .bind(new.subject)
            .bind(DbTime(new.not_after))
            .bind(DbTime(now()))
            .fetch_one(pool)
            .await
            .map_err(conflict_on_unique("ca certificate"))?
        });
        Ok(row.into())
    }

    /// The tenant's CA certificates, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn list_ca_certificates(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<CaCertificate>, StoreError> {
        let rows: Vec<CaRow> = with_pool!(self, pool => {
            sqlx::query_as(concat!(
                "SELECT ", ca_columns!(), " FROM ca_certificates WHERE tenant_id = $1 \
                 ORDER BY created_at, id"
            ))
            .bind(DbId(*tenant.as_uuid()))
            .fetch_all(pool)
            .await?
        });
        Ok(rows.into_iter().map(CaCertificate::from).collect())
    }

    /// One CA certificate of the tenant.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn ca_certificate(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<Option<CaCertificate>, StoreError> {
        let row: Option<CaRow> = with_pool!(self, pool => {
            sqlx::query_as(concat!(
                "SELECT ", ca_columns!(), " FROM ca_certificates WHERE tenant_id = $1 AND id = $2"
            ))
            .bind(DbId(*tenant.as_uuid()))
            .bind(DbId(id))
            .fetch_optional(pool)
            .await?
        });
        Ok(row.map(CaCertificate::from))
    }

    /// Deletes a CA certificate of the tenant.
    ///
    /// # Errors
    /// [`StoreError::NotFound`]; [`StoreError::Database`].
    pub async fn delete_ca_certificate(
        &self,
        tenant: TenantId,
        id: Uuid,
    ) -> Result<(), StoreError> {
        let affected = with_pool!(self, pool => {
            sqlx::query("DELETE FROM ca_certificates WHERE tenant_id = $1 AND id = $2")
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

    /// Every tenant's registered CAs, for the gateway's client-certificate verifier.
    ///
    /// # Errors
    /// [`StoreError::Database`].
    pub async fn all_ca_certificates(&self) -> Result<Vec<RegisteredCa>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            id: DbId,
            tenant_id: DbId,
            der: Vec<u8>,
            fingerprint_sha256: String,
        }
        let rows: Vec<Row> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT id, tenant_id, der, fingerprint_sha256 FROM ca_certificates ORDER BY id",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows
            .into_iter()
            .map(|r| RegisteredCa {
                tenant_id: TenantId::from_uuid(r.tenant_id.0),
                id: r.id.0,
                der: r.der,
                fingerprint_sha256: r.fingerprint_sha256,
            })
            .collect())
    }
}
