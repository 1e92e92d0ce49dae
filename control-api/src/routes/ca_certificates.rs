//! `/v1/ca-certificates`: CAs whose certificates devices may present (mutual TLS).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tenantmq_control_store::models::{CaCertificate, NewCaCertificate};
use tenantmq_control_store::{ChangeKind, Invalidation};
use utoipa::ToSchema;
use uuid::Uuid;
use x509_parser::pem::Pem;

use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiPath, TenantAuth};
use crate::{AppState, keys, validate};

/// A CA certificate to register.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCaCertificate {
    /// Exactly one PEM `CERTIFICATE` block of a CA (basicConstraints CA:TRUE).
    pem: String,
    /// Label, 1–200 characters.
    name: Option<String>,
}

/// A registered CA certificate.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaCertificateView {
    /// Certificate id.
    id: Uuid,
    /// Label.
    name: Option<String>,
    /// Subject distinguished name.
    subject: String,
    /// Lower-case hex SHA-256 of the DER encoding.
    fingerprint_sha256: String,
    /// End of validity.
    not_after: DateTime<Utc>,
    /// Registration time.
    created_at: DateTime<Utc>,
    /// The certificate as registered.
    pem: String,
}

impl From<CaCertificate> for CaCertificateView {
    fn from(c: CaCertificate) -> Self {
        Self {
            id: c.id,
            name: c.name,
            subject: c.subject,
            fingerprint_sha256: c.fingerprint_sha256,
            not_after: c.not_after,
            created_at: c.created_at,
            pem: c.pem,
        }
    }
}

/// The tenant's CA certificates.
#[derive(Debug, Serialize, ToSchema)]
pub struct CaCertificateList {
    /// Oldest first.
    items: Vec<CaCertificateView>,
}

fn bad(message: &str) -> ApiError {
    ApiError::Validation(format!("pem: {message}"))
}

/// Parses and checks an uploaded CA certificate.
fn parse_ca(pem_text: &str, name: Option<String>) -> Result<NewCaCertificate, ApiError> {
    let blocks = Pem::iter_from_buffer(pem_text.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| bad("not valid PEM"))?;
    let [block] = blocks.as_slice() else {
        return Err(bad("expected exactly one PEM block"));
    };
    if block.label != "CERTIFICATE" {
        return Err(bad("expected a CERTIFICATE block"));
    }
    let (rest, cert) = x509_parser::parse_x509_certificate(&block.contents)
        .map_err(|_| bad("not a valid X.509 certificate"))?;
    if !rest.is_empty() {
        return Err(bad("trailing data after the certificate"));
    }
    let is_ca = cert
        .basic_constraints()
        .ok()
        .flatten()
        .is_some_and(|bc| bc.value.ca);
    if !is_ca {
        return Err(bad(
            "not a CA certificate (basicConstraints CA:TRUE is required)",
        ));
    }
    let not_after = DateTime::from_timestamp(cert.validity().not_after.timestamp(), 0)
        .ok_or_else(|| bad("validity out of range"))?;
    if not_after <= Utc::now() {
        return Err(bad("the certificate has expired"));
    }
    Ok(NewCaCertificate {
        name,
        pem: pem_text.trim().to_owned() + "\n",
        fingerprint_sha256: keys::hex(&Sha256::digest(&block.contents)),
        subject: cert.subject().to_string(),
        not_after,
        der: block.contents.clone(),
    })
}

/// Register a CA certificate.
#[utoipa::path(
    post, path = "/v1/ca-certificates", tag = "devices", security(("api_key" = [])),
    request_body = CreateCaCertificate,
    responses(
        (status = 201, body = CaCertificateView),
        (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 409, description = "Already registered (`ca_certificate_exists`)", body = ErrorBody),
    )
)]
pub(crate) async fn create_ca(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiJson(req): ApiJson<CreateCaCertificate>,
) -> Result<(StatusCode, Json<CaCertificateView>), ApiError> {
    let name = req
        .name
        .as_deref()
        .map(|n| validate::name("name", n))
        .transpose()?;
    let new = parse_ca(&req.pem, name)?;
    let ca = state
        .store()
        .create_ca_certificate(auth.tenant.id, new)
        .await?;
    state.publish([Invalidation::tenant(
        auth.tenant.id,
        ChangeKind::CaCertificate,
    )]);
    Ok((StatusCode::CREATED, Json(ca.into())))
}

/// List the tenant's CA certificates.
#[utoipa::path(
    get, path = "/v1/ca-certificates", tag = "devices", security(("api_key" = [])),
    responses((status = 200, body = CaCertificateList), (status = 401, body = ErrorBody))
)]
pub(crate) async fn list_cas(
    State(state): State<AppState>,
    auth: TenantAuth,
) -> Result<Json<CaCertificateList>, ApiError> {
    let items = state.store().list_ca_certificates(auth.tenant.id).await?;
    Ok(Json(CaCertificateList {
        items: items.into_iter().map(Into::into).collect(),
    }))
}

/// One CA certificate.
#[utoipa::path(
    get, path = "/v1/ca-certificates/{id}", tag = "devices", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "Certificate id")),
    responses(
        (status = 200, body = CaCertificateView),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn get_ca(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<Json<CaCertificateView>, ApiError> {
    let ca = state
        .store()
        .ca_certificate(auth.tenant.id, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(Json(ca.into()))
}

/// Delete a CA certificate.
#[utoipa::path(
    delete, path = "/v1/ca-certificates/{id}", tag = "devices", security(("api_key" = [])),
    params(("id" = Uuid, Path, description = "Certificate id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
pub(crate) async fn delete_ca(
    State(state): State<AppState>,
    auth: TenantAuth,
    ApiPath(id): ApiPath<Uuid>,
) -> Result<StatusCode, ApiError> {
    state
        .store()
        .delete_ca_certificate(auth.tenant.id, id)
        .await?;
    state.publish([Invalidation::tenant(
        auth.tenant.id,
        ChangeKind::CaCertificate,
    )]);
    Ok(StatusCode::NO_CONTENT)
}
