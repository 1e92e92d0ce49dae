//! The control plane's records as the rest of the system sees them, independent of the back-end.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tenantmq_common::TenantId;
use tenantmq_common::auth::{AclAction, Permission};
use tenantmq_common::ids::Slug;
use tenantmq_common::quota::{QuotaError, QuotaOverrides, Quotas};
use uuid::Uuid;

/// Whether a tenant's devices and API writes are allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    /// Normal operation.
    Active,
    /// Set by the operator: devices are refused and API writes are forbidden.
    Suspended,
}

impl TenantStatus {
    /// The text stored in the database and used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }

    /// Parses the stored text.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "active" => Some(Self::Active),
            "suspended" => Some(Self::Suspended),
            _ => None,
        }
    }
}

/// A customer of the service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tenant {
    /// Immutable identity.
    pub id: TenantId,
    /// Unique, human-friendly alias used in SNI and device usernames.
    pub slug: Slug,
    /// Display name.
    pub name: String,
    /// Contact address.
    pub email: String,
    /// One of [`tenantmq_common::quota::PLAN_NAMES`].
    pub plan: String,
    /// Active or suspended.
    pub status: TenantStatus,
    /// Operator overrides on top of the plan.
    pub quota_overrides: QuotaOverrides,
    /// When the tenant signed up.
    pub created_at: DateTime<Utc>,
    /// Last change of any field above.
    pub updated_at: DateTime<Utc>,
}

impl Tenant {
    /// The plan's quotas with the overrides applied.
    ///
    /// # Errors
    /// [`QuotaError::UnknownPlan`] if the stored plan is not a known one (the schema's foreign
    /// key to `plans` makes that a bug, not a user error).
    pub fn effective_quotas(&self) -> Result<Quotas, QuotaError> {
        Ok(Quotas::for_plan(&self.plan)?.with_overrides(&self.quota_overrides))
    }
}

/// What signup needs to create a tenant; the store assigns id, plan, status and timestamps.
#[derive(Clone, Debug)]
pub struct NewTenant {
    /// Unique slug.
    pub slug: Slug,
    /// Display name.
    pub name: String,
    /// Contact address.
    pub email: String,
}

/// A change a tenant makes to itself (`PATCH /v1/tenant`); absent fields stay.
#[derive(Clone, Debug, Default)]
pub struct TenantUpdate {
    /// New display name.
    pub name: Option<String>,
    /// New contact address.
    pub email: Option<String>,
}

/// A change the operator makes to a tenant; absent fields stay.
#[derive(Clone, Debug, Default)]
pub struct AdminTenantUpdate {
    /// Suspend or reactivate.
    pub status: Option<TenantStatus>,
    /// Move to another plan (must be one of the seeded plans).
    pub plan: Option<String>,
    /// Replace the overrides wholesale.
    pub quota_overrides: Option<QuotaOverrides>,
}

/// An API key as listed: never the secret nor its hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKey {
    /// Key id (used to revoke it).
    pub id: Uuid,
    /// Owner.
    pub tenant_id: TenantId,
    /// Optional label.
    pub name: Option<String>,
    /// The first characters of the key, enough to recognise it in a list.
    pub prefix: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// An API key to store: only the SHA-256 of the secret is kept.
#[derive(Clone, Debug)]
pub struct NewApiKey {
    /// Optional label.
    pub name: Option<String>,
    /// Visible prefix.
    pub prefix: String,
    /// Lower-case hex SHA-256 of the whole key.
    pub key_hash: String,
}

/// A device credential as listed (no password hash).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    /// Credential id.
    pub id: Uuid,
    /// Owner.
    pub tenant_id: TenantId,
    /// Device username, unique within the tenant.
    pub username: String,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A credential with its password hash, for verification on the read side only.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialSecret {
    /// Credential id.
    pub id: Uuid,
    /// Owner.
    pub tenant_id: TenantId,
    /// Device username.
    pub username: String,
    /// Argon2id hash in PHC string form.
    pub password_hash: String,
}

/// A credential to store.
#[derive(Clone, Debug)]
pub struct NewCredential {
    /// Device username.
    pub username: String,
    /// Argon2id hash in PHC string form.
    pub password_hash: String,
}

/// A CA certificate a tenant registered for devices' client certificates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaCertificate {
    /// Certificate id.
    pub id: Uuid,
    /// Owner.
    pub tenant_id: TenantId,
    /// Optional label.
    pub name: Option<String>,
    /// The certificate as uploaded (one PEM block).
    pub pem: String,
    /// Lower-case hex SHA-256 of the DER encoding.
    pub fingerprint_sha256: String,
    /// Subject distinguished name.
    pub subject: String,
    /// End of validity.
    pub not_after: DateTime<Utc>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
}

/// A parsed CA certificate to store.
#[derive(Clone, Debug)]
pub struct NewCaCertificate {
    /// Optional label.
    pub name: Option<String>,
    /// One PEM block.
    pub pem: String,
    /// The DER encoding of the same certificate.
    pub der: Vec<u8>,
    /// Lower-case hex SHA-256 of the DER.
    pub fingerprint_sha256: String,
    /// Subject distinguished name.
    pub subject: String,
    /// End of validity.
    pub not_after: DateTime<Utc>,
}

/// A stored ACL rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AclRuleRecord {
    /// Rule id.
    pub id: Uuid,
    /// Owner.
    pub tenant_id: TenantId,
    /// The credential the rule applies to; `None` for tenant-wide rules.
    pub credential_id: Option<Uuid>,
    /// Which packets it governs.
    pub action: AclAction,
    /// Topic filter, possibly with `${username}` / `${clientid}`.
    pub topic_filter: String,
    /// Allow or deny.
    pub permission: Permission,
    /// Creation time (rules are evaluated in creation order).
    pub created_at: DateTime<Utc>,
}

/// An ACL rule to store.
#[derive(Clone, Debug)]
pub struct NewAclRule {
    /// Credential it applies to, `None` for tenant-wide.
    pub credential_id: Option<Uuid>,
    /// Which packets it governs.
    pub action: AclAction,
    /// Validated topic filter.
    pub topic_filter: String,
    /// Allow or deny.
    pub permission: Permission,
}

/// One hour of one tenant's usage. [`crate::Store::record_usage`] adds the counters to an
/// existing row for the same hour and keeps the larger `peak_connections`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// Whose usage.
    pub tenant_id: TenantId,
    /// Start of the hour (truncated by the store if it is not on the hour).
    pub hour: DateTime<Utc>,
    /// Sum of connection durations within the hour.
    pub connection_seconds: i64,
    /// Most concurrent connections seen within the hour.
    pub peak_connections: i64,
    /// PUBLISH packets received from devices.
    pub messages_in: i64,
    /// PUBLISH packets delivered to devices.
    pub messages_out: i64,
    /// Bytes received from devices.
    pub bytes_in: i64,
    /// Bytes sent to devices.
    pub bytes_out: i64,
    /// Packets or connections refused by a quota or rate limit.
    pub rejections: i64,
}

/// A CA certificate in the form the gateway's mTLS verifier needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredCa {
    /// Owner.
    pub tenant_id: TenantId,
    /// Certificate id.
    pub id: Uuid,
    /// The DER encoding.
    pub der: Vec<u8>,
    /// Lower-case hex SHA-256 of the DER.
    pub fingerprint_sha256: String,
}
