//! Device authentication: which tenant a connection belongs to, and who it is.
//!
//! The gateway asks an [`Authenticator`] with everything it knows about the connection —
//! the decoded CONNECT, the TLS SNI name, the peer address (from the PROXY protocol header when
//! the listener has it enabled) and, for mutual TLS, which registered CA issued the client
//! certificate ([`ClientCertInfo`]). The answer is either the
//! [`AuthContext`] the engine will enforce, or an [`AuthFailure`] that maps to one CONNACK
//! reason code.

use std::net::SocketAddr;
use std::sync::Arc;

use tenantmq_codec::{Connect, ReasonCode};
use tenantmq_common::TenantId;
use tenantmq_common::auth::AuthContext;
use tenantmq_common::quota::Quotas;
use tenantmq_router::BoxFuture;
use uuid::Uuid;

/// What the gateway knows about a connection when it authenticates it.
#[derive(Debug)]
pub struct AuthRequest<'a> {
    /// The CONNECT packet.
    pub connect: &'a Connect,
    /// TLS server name the client asked for, if any.
    pub sni: Option<&'a str>,
    /// The device's address.
    pub peer: Option<SocketAddr>,
    /// The client certificate, when the device presented one that verified against a CA some
    /// tenant registered (the TLS handshake already refused every other certificate).
    pub client_cert: Option<&'a ClientCertInfo>,
}

/// Which registered CA issued a verified client certificate, and whom the certificate names.
///
/// The TLS layer only proves that the device holds the key of a certificate that chains to
/// this CA; whether that is enough to let it in (and as which user) is the
/// [`Authenticator`]'s decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertInfo {
    /// The tenant that registered the issuing CA.
    pub tenant: TenantId,
    /// The id of that CA registration.
    pub ca_id: Uuid,
    /// The first Common Name of the leaf certificate's subject, if it has one that is a
    /// string.
    pub common_name: Option<String>,
    /// Further registrations of the very same CA (same subject and key), when more than one
    /// tenant (or one tenant twice) registered it; usually empty. A CA certificate is public,
    /// so anyone may register one: an authenticator that selects the tenant by certificate
    /// must not pick one of several candidates on its own — match the SNI or username
    /// tenant against all of them, or refuse.
    pub other_registrations: Vec<(TenantId, Uuid)>,
}

/// Why a connection is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthFailure {
    /// Unknown tenant, unknown user or wrong password (0x86 / 3.1.1 return code 4).
    #[error("bad user name or password")]
    BadCredentials,
    /// Authenticated but not allowed to connect, e.g. a suspended tenant (0x87 / 5).
    #[error("not authorized")]
    NotAuthorized,
    /// Too many attempts from this source or for this tenant (0x9F / 3).
    #[error("connection rate exceeded")]
    RateLimited,
    /// The control data could not be read (0x88 / 3).
    #[error("server unavailable")]
    Unavailable,
}

impl AuthFailure {
    /// The CONNACK reason code for this failure.
    pub const fn reason_code(self) -> ReasonCode {
        match self {
            AuthFailure::BadCredentials => ReasonCode::BAD_USER_NAME_OR_PASSWORD,
            AuthFailure::NotAuthorized => ReasonCode::NOT_AUTHORIZED,
            AuthFailure::RateLimited => ReasonCode::CONNECTION_RATE_EXCEEDED,
            AuthFailure::Unavailable => ReasonCode::SERVER_UNAVAILABLE,
        }
    }
}

/// Decides who a connection is.
pub trait Authenticator: Send + Sync + 'static {
    /// Authenticates one connection.
    fn authenticate<'a>(
        &'a self,
        req: AuthRequest<'a>,
    ) -> BoxFuture<'a, Result<AuthContext, AuthFailure>>;
}

/// The anonymous `dev` tenant of `tenantmq standalone --dev-plain`: every connection is let in
/// as that one tenant, with only protocol limits. Never used outside the dev flags.
pub struct DevAnonymous {
    tenant: TenantId,
    quotas: Arc<Quotas>,
}

impl DevAnonymous {
    /// The dev tenant with the given id and limits.
    pub fn new(tenant: TenantId, quotas: Quotas) -> Self {
        Self {
            tenant,
            quotas: Arc::new(quotas),
        }
    }
}

impl Authenticator for DevAnonymous {
    fn authenticate<'a>(
        &'a self,
        _req: AuthRequest<'a>,
    ) -> BoxFuture<'a, Result<AuthContext, AuthFailure>> {
        let ctx = AuthContext::anonymous(self.tenant, self.quotas.clone());
        Box::pin(async move { Ok(ctx) })
    }
}
