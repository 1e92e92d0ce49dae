//! Mutual TLS: client certificates issued by CAs that tenants registered.
//!
//! The set of trusted CAs changes while the gateway runs (tenants register and remove CAs
//! through the API), so the verifier reads it from a [`ClientCaSource`] on each handshake and
//! rebuilds its trust anchors only when the source hands out a different `Arc`.
//!
//! Client certificates are optional (`client_auth_mandatory() == false`): most devices log in
//! with a user name and password, and TLS cannot know the tenant's policy yet. A certificate
//! that *is* presented must chain to a registered CA (RFC 5280 path validation by webpki,
//! client-auth extended key usage if the certificate has the extension), or the handshake
//! fails with an alert. The server sends no CA hints (`certificate_authorities` in the
//! CertificateRequest, RFC 8446 section 4.2.4): a list of every tenant's CAs would be large
//! and would tell any client who our customers are; clients send their configured certificate
//! anyway.
//!
//! After the handshake the listener asks [`TenantCaVerifier::identify`] which registration
//! issued the certificate. The handshake's verification leaves its answer in a small table
//! keyed by the leaf's SHA-256, so the chain is normally verified once; when the answer is
//! gone (another handshake with the same certificate took it, the table was full, or the
//! session was resumed) the chain is verified again against the current CAs.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, TrustAnchor, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use sha2::{Digest, Sha256};
use tenantmq_common::TenantId;
use uuid::Uuid;

use crate::auth::ClientCertInfo;

/// A CA certificate a tenant registered for its devices' client certificates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantCa {
    /// The tenant that registered it.
    pub tenant: TenantId,
    /// The registration's id.
    pub ca_id: Uuid,
    /// The CA certificate (DER). A root or an intermediate: whichever the tenant registers is
    /// the trust anchor, and the device may send the certificates between it and its leaf.
    pub der: CertificateDer<'static>,
}

/// Where the verifier reads the current registered CAs.
///
/// Called on every handshake that carries a client certificate, so it must be cheap: return
/// the same `Arc` until the list changes (an `ArcSwap` load), and a new `Arc` when it does —
/// the verifier rebuilds its anchors exactly when the pointer changes.
pub trait ClientCaSource: Send + Sync + 'static {
    /// The current list.
    fn anchors(&self) -> Arc<Vec<TenantCa>>;
}

/// A [`ClientCaSource`] holding a list that is replaced whole: for tests, and for a caller
/// that refreshes the list itself.
#[derive(Debug, Default)]
pub struct CaList {
    current: ArcSwap<Vec<TenantCa>>,
}

impl CaList {
    /// A source serving `cas`.
    pub fn new(cas: Vec<TenantCa>) -> Self {
        Self {
            current: ArcSwap::from_pointee(cas),
        }
    }

    /// Replaces the list; new handshakes use it.
    pub fn replace(&self, cas: Vec<TenantCa>) {
        self.current.store(Arc::new(cas));
    }
}

impl ClientCaSource for CaList {
    fn anchors(&self) -> Arc<Vec<TenantCa>> {
        self.current.load_full()
    }
}

/// Verification answers kept for [`TenantCaVerifier::identify`] at most this long: longer
/// than any handshake can take (the connect timeout bounds it).
const PENDING_TTL: Duration = Duration::from_secs(60);

/// Most verification answers waiting for their handshake to finish. Past it, stale ones are
/// dropped, then all (the fallback re-verification covers what was dropped).
const MAX_PENDING: usize = 4096;

/// Trust anchors built from one list of the source.
struct Snapshot {
    /// The list this was built from, compared by pointer.
    source: Arc<Vec<TenantCa>>,
    /// Distinct anchors.
    anchors: Vec<TrustAnchor<'static>>,
    /// The registrations behind each anchor, in source order (parallel to `anchors`).
    owners: Vec<Vec<(TenantId, Uuid)>>,
}

impl Snapshot {
    fn build(source: Arc<Vec<TenantCa>>) -> Self {
        let mut anchors: Vec<TrustAnchor<'static>> = Vec::with_capacity(source.len());
        let mut owners: Vec<Vec<(TenantId, Uuid)>> = Vec::with_capacity(source.len());
        let mut index: HashMap<(Vec<u8>, Vec<u8>), usize> = HashMap::with_capacity(source.len());
        for ca in source.iter() {
            let anchor = match webpki::anchor_from_trusted_cert(&ca.der) {
                Ok(a) => a.to_owned(),
                Err(e) => {
                    tracing::warn!(tenant = %ca.tenant, ca_id = %ca.ca_id, error = %e,
                        "registered CA certificate is not usable as a trust anchor; skipped");
                    continue;
                }
            };
            // Two registrations of the same CA (subject and key) are one anchor for path
            // building; both owners are reported.
            let key = (
                anchor.subject.as_ref().to_vec(),
                anchor.subject_public_key_info.as_ref().to_vec(),
            );
            match index.get(&key) {
                Some(&i) => owners[i].push((ca.tenant, ca.ca_id)),
                None => {
                    index.insert(key, anchors.len());
                    anchors.push(anchor);
                    owners.push(vec![(ca.tenant, ca.ca_id)]);
                }
            }
        }
        Self {
            source,
            anchors,
            owners,
        }
    }
}

/// An answer of the handshake's verification, waiting for [`TenantCaVerifier::identify`].
struct Pending {
    info: ClientCertInfo,
    at: Instant,
}

/// The [`ClientCertVerifier`] of the TLS listeners: optional client certificates, checked
/// against the CAs of a [`ClientCaSource`].
pub struct TenantCaVerifier {
    source: Arc<dyn ClientCaSource>,
    snapshot: ArcSwap<Snapshot>,
    algorithms: WebPkiSupportedAlgorithms,
    pending: Mutex<HashMap<[u8; 32], Pending>>,
}

impl fmt::Debug for TenantCaVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TenantCaVerifier")
            .field("anchors", &self.snapshot.load().anchors.len())
            .finish_non_exhaustive()
    }
}

impl TenantCaVerifier {
    /// A verifier over `source`, verifying signatures with the algorithms of `algorithms`
    /// (the crypto provider's).
    pub fn new(source: Arc<dyn ClientCaSource>, algorithms: WebPkiSupportedAlgorithms) -> Self {
        let snapshot = Snapshot::build(source.anchors());
        Self {
            source,
            snapshot: ArcSwap::from_pointee(snapshot),
            algorithms,
            pending: Mutex::new(HashMap::new()),
        }
    }

    /// The anchors for the source's current list, rebuilt if the list changed.
    fn current(&self) -> Arc<Snapshot> {
        let list = self.source.anchors();
        let snapshot = self.snapshot.load_full();
        if Arc::ptr_eq(&snapshot.source, &list) {
            return snapshot;
        }
        // Two handshakes may rebuild at once; both results are equal and the last store wins.
        let rebuilt = Arc::new(Snapshot::build(list));
        tracing::info!(anchors = rebuilt.anchors.len(), "client CA list changed");
        self.snapshot.store(rebuilt.clone());
        rebuilt
    }

    /// Verifies `leaf` (with the device's `intermediates`) against `snapshot`.
    fn verify(
        &self,
        snapshot: &Snapshot,
        leaf: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertInfo, rustls::Error> {
        let cert = webpki::EndEntityCert::try_from(leaf).map_err(pki_error)?;
        let path = cert
            .verify_for_usage(
                self.algorithms.all,
                &snapshot.anchors,
                intermediates,
                now,
                webpki::KeyUsage::client_auth(),
                None,
                None,
            )
            .map_err(pki_error)?;
        // The path's anchor is an element of the slice passed in: find which by address.
        let anchor = path.anchor();
        let index = snapshot
            .anchors
            .iter()
            .position(|a| std::ptr::eq(a, anchor))
            .ok_or(rustls::Error::General("verified anchor not found".into()))?;
        let mut owners = snapshot.owners[index].iter().copied();
        let (tenant, ca_id) = owners
            .next()
            .ok_or(rustls::Error::General("anchor without owner".into()))?;
        Ok(ClientCertInfo {
            tenant,
            ca_id,
            common_name: common_name(leaf),
            other_registrations: owners.collect(),
        })
    }

    /// Which registered CA issued the certificate chain `presented` of a finished handshake
    /// (`ServerConnection::peer_certificates`); `Ok(None)` when the device sent none.
    ///
    /// # Errors
    /// The chain no longer verifies (its CA was removed since the handshake, or a resumed
    /// session carries it): the connection must be closed.
    pub fn identify(
        &self,
        presented: Option<&[CertificateDer<'_>]>,
    ) -> Result<Option<ClientCertInfo>, rustls::Error> {
        let Some((leaf, intermediates)) = presented.and_then(<[_]>::split_first) else {
            return Ok(None);
        };
        let key = leaf_key(leaf);
        let pending = self
            .pending
            .lock()
            .map_err(|_| rustls::Error::General("verifier lock poisoned".into()))?
            .remove(&key);
        if let Some(p) = pending.filter(|p| p.at.elapsed() < PENDING_TTL) {
            return Ok(Some(p.info));
        }
        let snapshot = self.current();
        self.verify(&snapshot, leaf, intermediates, UnixTime::now())
            .map(Some)
    }

    /// Keeps the handshake's answer for [`Self::identify`].
    fn remember(&self, leaf: &CertificateDer<'_>, info: ClientCertInfo) {
        let Ok(mut pending) = self.pending.lock() else {
            return;
        };
        if pending.len() >= MAX_PENDING {
            pending.retain(|_, p| p.at.elapsed() < PENDING_TTL);
            if pending.len() >= MAX_PENDING {
                pending.clear();
            }
        }
        pending.insert(
            leaf_key(leaf),
            Pending {
                info,
                at: Instant::now(),
            },
        );
    }
}

impl ClientCertVerifier for TenantCaVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        false
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let snapshot = self.current();
        let info = self.verify(&snapshot, end_entity, intermediates, now)?;
        self.remember(end_entity, info);
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

fn leaf_key(leaf: &CertificateDer<'_>) -> [u8; 32] {
    Sha256::digest(leaf.as_ref()).into()
}

/// The first Common Name of `leaf`'s subject, if it is a string.
fn common_name(leaf: &CertificateDer<'_>) -> Option<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let cn = cert.subject().iter_common_name().next()?;
    cn.as_str().ok().map(str::to_owned)
}

/// Maps a webpki error to the rustls error that selects the right TLS alert (e.g. an unknown
/// issuer is `unknown_ca`, RFC 8446 section 6.2).
fn pki_error(e: webpki::Error) -> rustls::Error {
    use webpki::Error as E;
    let cert = match e {
        E::BadDer | E::BadDerTime => CertificateError::BadEncoding,
        E::CertExpired { .. } | E::InvalidCertValidity => CertificateError::Expired,
        E::CertNotValidYet { .. } => CertificateError::NotValidYet,
        E::UnknownIssuer => CertificateError::UnknownIssuer,
        E::InvalidSignatureForPublicKey => CertificateError::BadSignature,
        E::RequiredEkuNotFoundContext(_) => CertificateError::InvalidPurpose,
        other => CertificateError::Other(rustls::OtherError(Arc::new(other))),
    };
    rustls::Error::InvalidCertificate(cert)
}
