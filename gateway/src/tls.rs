//! TLS termination for the `mqtts` and `wss` listeners (rustls with the *ring* provider).
//!
//! * **Versions and suites.** TLS 1.3 and 1.2 only. The suites are listed here rather than
//!   taken from the provider's defaults, so that a provider update cannot widen them: TLS 1.3's
//!   three AEAD suites, and for TLS 1.2 only ECDHE key exchange (forward secrecy) with AES-GCM
//!   or ChaCha20-Poly1305 (no CBC, no static RSA). Key exchange groups are X25519, P-256 and
//!   P-384.
//! * **Certificate.** One chain and key from PEM files: ECDSA P-256 is the default we generate
//!   (a server-side handshake signs with it for a fraction of RSA-2048's cost); RSA and
//!   Ed25519 keys load too. A [`ReloadingCert`] resolver serves the current pair from an
//!   `ArcSwap`; [`TlsContext::spawn_reloader`] polls the files and swaps in a new pair when
//!   their contents change — a new connection gets the new certificate, established ones keep
//!   their session. A pair that does not load (bad PEM, key not matching the certificate,
//!   e.g. while the two files are being replaced one after the other) is logged and the
//!   current one kept.
//! * **ALPN.** `mqtt` on the mqtts listener, `http/1.1` on wss; never required. rustls refuses
//!   a handshake whose offered protocols do not overlap the configured ones (RFC 7301 section
//!   3.2), so the ClientHello is read first and a client offering only other names (e.g. AWS
//!   IoT's `x-amzn-mqtt-ca`) is served by a configuration without ALPN.
//! * **Client certificates** (mutual TLS) are optional and verified by
//!   [`crate::mtls::TenantCaVerifier`] when a [`ClientCaSource`] is configured.
//! * **Memory per connection.** No session resumption: no TLS 1.3 tickets are sent
//!   (`send_tls13_tickets = 0`) and no session cache is kept (a resumed session would also skip
//!   the client-certificate check against the *current* CA list). No early data. The
//!   connection runs on [`crate::tls_stream::TlsStream`] (rustls's unbuffered API), which
//!   holds no buffer while idle: at most a partial record in, and out only what the socket
//!   has not taken yet, a write being accepted only once that is sent.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use rustls::crypto::{CryptoProvider, ring as provider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, NoServerSessionStorage, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{ServerConfig, SupportedCipherSuite};
use tenantmq_common::shutdown::Shutdown;
use tokio::net::TcpStream;
use tokio::task::JoinHandle;

use crate::auth::ClientCertInfo;
use crate::mtls::{ClientCaSource, TenantCaVerifier};
use crate::tls_stream::TlsStream;

/// How often the certificate files are checked for a new pair.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(2);

/// ALPN protocol id of MQTT over TLS (IANA "TLS Application-Layer Protocol Negotiation (ALPN)
/// Protocol IDs" registry).
pub const ALPN_MQTT: &[u8] = b"mqtt";

/// ALPN protocol id of HTTP/1.1, under which WebSocket upgrades are made (RFC 6455).
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// The cipher suites offered, most preferred first. All AEAD; the TLS 1.2 ones all ECDHE.
static MODERN_SUITES: &[SupportedCipherSuite] = &[
    provider::cipher_suite::TLS13_AES_128_GCM_SHA256,
    provider::cipher_suite::TLS13_AES_256_GCM_SHA384,
    provider::cipher_suite::TLS13_CHACHA20_POLY1305_SHA256,
    provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    provider::cipher_suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
    provider::cipher_suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    provider::cipher_suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    provider::cipher_suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
];

/// The crypto provider of the TLS listeners: *ring* with [`MODERN_SUITES`].
pub fn crypto_provider() -> CryptoProvider {
    CryptoProvider {
        cipher_suites: MODERN_SUITES.to_vec(),
        ..provider::default_provider()
    }
}

/// Why TLS could not be set up, or a certificate pair not loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A file is not valid PEM, or holds no item of the expected kind.
    #[error("parsing {}: {source}", path.display())]
    Pem {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: rustls::pki_types::pem::Error,
    },
    /// The key is of an unsupported type, or does not belong to the certificate.
    #[error("certificate and key of {}: {source}", path.display())]
    Key {
        /// The certificate file.
        path: PathBuf,
        /// The cause.
        source: rustls::Error,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(rustls::Error),
}

/// Where the server certificate comes from, and whether devices may present client
/// certificates.
#[derive(Clone)]
pub struct TlsSettings {
    /// PEM file with the certificate chain, leaf first.
    pub cert_path: PathBuf,
    /// PEM file with the private key (PKCS#8, SEC1 or PKCS#1).
    pub key_path: PathBuf,
    /// How often the two files are checked for a new pair.
    pub reload_interval: Duration,
    /// The tenants' registered CAs for client certificates; `None` requests none.
    pub client_cas: Option<Arc<dyn ClientCaSource>>,
}

impl TlsSettings {
    /// Settings for a certificate and key file, polled every [`DEFAULT_RELOAD_INTERVAL`],
    /// without client certificates.
    pub fn new(cert_path: impl Into<PathBuf>, key_path: impl Into<PathBuf>) -> Self {
        Self {
            cert_path: cert_path.into(),
            key_path: key_path.into(),
            reload_interval: DEFAULT_RELOAD_INTERVAL,
            client_cas: None,
        }
    }
}

/// The server certificate: the pair loaded last from the files, swapped atomically.
pub struct ReloadingCert {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: ArcSwap<CertifiedKey>,
    /// The file contents tried last (loaded or refused), so that an unchanged pair is
    /// neither parsed nor logged again.
    seen: Mutex<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

impl ReloadingCert {
    /// Loads the pair from `cert_path` and `key_path`.
    ///
    /// # Errors
    /// [`TlsError`] when the files cannot be read or do not form a usable pair.
    pub fn load(
        cert_path: &Path,
        key_path: &Path,
        provider: Arc<CryptoProvider>,
    ) -> Result<Self, TlsError> {
        let cert_pem = read(cert_path)?;
        let key_pem = read(key_path)?;
        let key = certified_key(cert_path, &cert_pem, key_path, &key_pem, &provider)?;
        Ok(Self {
            cert_path: cert_path.to_owned(),
            key_path: key_path.to_owned(),
            provider,
            current: ArcSwap::from_pointee(key),
            seen: Mutex::new((cert_pem, key_pem)),
        })
    }

    /// The pair new handshakes use.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current.load_full()
    }

    /// Reads the files and, if their contents changed, loads and swaps in the new pair.
    /// `Ok(true)` when a new pair was installed.
    ///
    /// The contents are compared rather than the modification times: the files are small, and
    /// a copy that preserves times (`cp -p`, some secret mounts) must still be seen.
    ///
    /// # Errors
    /// The files changed but do not form a usable pair; the current pair stays. The same
    /// contents are not tried (nor reported) again.
    pub fn reload(&self) -> Result<bool, TlsError> {
        let cert_pem = read(&self.cert_path)?;
        let key_pem = read(&self.key_path)?;
        {
            let mut seen = self
                .seen
                .lock()
                .map_err(|_| TlsError::Config(rustls::Error::General("lock poisoned".into())))?;
            if seen.0 == cert_pem && seen.1 == key_pem {
                return Ok(false);
            }
            *seen = (cert_pem.clone(), key_pem.clone());
        }
        let key = certified_key(
            &self.cert_path,
            &cert_pem,
            &self.key_path,
            &key_pem,
            &self.provider,
        )?;
        self.current.store(Arc::new(key));
        Ok(true)
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        // One (wildcard) certificate serves every SNI name; tenants are told apart later.
        Some(self.current.load_full())
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Parses a PEM chain and key and checks that the key belongs to the leaf.
fn certified_key(
    cert_path: &Path,
    cert_pem: &[u8],
    key_path: &Path,
    key_pem: &[u8],
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let pem_error = |path: &Path| {
        let path = path.to_owned();
        move |source| TlsError::Pem { path, source }
    };
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(pem_error(cert_path))?;
    if chain.is_empty() {
        return Err(pem_error(cert_path)(
            rustls::pki_types::pem::Error::NoItemsFound,
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(pem_error(key_path))?;
    let key_error = |source| TlsError::Key {
        path: cert_path.to_owned(),
        source,
    };
    let pair = CertifiedKey::from_der(chain, key, provider).map_err(key_error)?;
    // `from_der` lets a key whose public half it cannot compute pass; require the check.
    pair.keys_match().map_err(key_error)?;
    Ok(pair)
}

/// Which application protocol a TLS listener carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppProtocol {
    /// MQTT directly over TLS (ALPN `mqtt`).
    Mqtt,
    /// MQTT over WebSocket over TLS (ALPN `http/1.1`).
    WebSocket,
}

/// What the TLS listeners share: the certificate, the client-certificate verifier and the
/// rustls configurations built on them.
pub struct TlsContext {
    cert: Arc<ReloadingCert>,
    client_auth: Option<Arc<TenantCaVerifier>>,
    mqtt: Arc<ServerConfig>,
    http: Arc<ServerConfig>,
    bare: Arc<ServerConfig>,
    reload_interval: Duration,
}

impl std::fmt::Debug for TlsContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsContext")
            .field("cert", &self.cert)
            .field("client_auth", &self.client_auth.is_some())
            .finish_non_exhaustive()
    }
}

/// Why a TLS handshake did not produce a connection.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The peer sent something that is not an acceptable handshake (junk, an old protocol
    /// version, no common suite, a client certificate from no registered CA) or hung up.
    #[error("TLS handshake: {0}")]
    Io(#[from] io::Error),
    /// The client certificate no longer verifies after the handshake.
    #[error("client certificate: {0}")]
    ClientCert(rustls::Error),
}

/// A finished server handshake.
pub struct Handshake {
    /// The TLS stream (boxed: rustls's connection state is over a kilobyte, and the stream
    /// is moved through the connection's futures).
    pub stream: Box<TlsStream>,
    /// The SNI name the client asked for.
    pub sni: Option<String>,
    /// The verified client certificate.
    pub client_cert: Option<ClientCertInfo>,
}

impl TlsContext {
    /// Loads the certificate pair and builds the configurations.
    ///
    /// # Errors
    /// [`TlsError`] when the certificate pair does not load.
    pub fn new(settings: TlsSettings) -> Result<Arc<Self>, TlsError> {
        let provider = Arc::new(crypto_provider());
        let cert = Arc::new(ReloadingCert::load(
            &settings.cert_path,
            &settings.key_path,
            provider.clone(),
        )?);
        let client_auth = settings.client_cas.map(|source| {
            Arc::new(TenantCaVerifier::new(
                source,
                provider.signature_verification_algorithms,
            ))
        });
        let build = |alpn: &[&[u8]]| -> Result<Arc<ServerConfig>, TlsError> {
            let builder = ServerConfig::builder_with_provider(provider.clone())
                .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
                .map_err(TlsError::Config)?;
            let builder = match &client_auth {
                Some(v) => builder.with_client_cert_verifier(v.clone()),
                None => builder.with_no_client_auth(),
            };
            let mut config = builder.with_cert_resolver(cert.clone());
            config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            config.session_storage = Arc::new(NoServerSessionStorage {});
            config.send_tls13_tickets = 0;
            config.max_early_data_size = 0;
            Ok(Arc::new(config))
        };
        Ok(Arc::new(Self {
            mqtt: build(&[ALPN_MQTT])?,
            http: build(&[ALPN_HTTP1])?,
            bare: build(&[])?,
            cert,
            client_auth,
            reload_interval: settings.reload_interval,
        }))
    }

    /// The certificate pair new handshakes use.
    pub fn certificate(&self) -> Arc<CertifiedKey> {
        self.cert.current()
    }

    /// Checks the certificate files now; see [`ReloadingCert::reload`].
    ///
    /// # Errors
    /// The files changed but do not form a usable pair.
    pub fn reload(&self) -> Result<bool, TlsError> {
        self.cert.reload()
    }

    /// Polls the certificate files every `reload_interval` until `shutdown`, swapping in a
    /// new pair when they change. A pair that does not load is logged once and ignored.
    pub fn spawn_reloader(self: &Arc<Self>, mut shutdown: Shutdown) -> JoinHandle<()> {
        let cert = self.cert.clone();
        let mut tick = tokio::time::interval(self.reload_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.recv() => return,
                    _ = tick.tick() => {}
                }
                let cert = cert.clone();
                // File reads and key parsing are blocking work, if short.
                let outcome = tokio::task::spawn_blocking(move || cert.reload()).await;
                match outcome {
                    Ok(Ok(true)) => tracing::info!("server certificate reloaded"),
                    Ok(Ok(false)) => {}
                    Ok(Err(e)) => tracing::warn!(
                        error = %e,
                        "new server certificate not loaded; keeping the current one"
                    ),
                    Err(e) => tracing::warn!(error = %e, "certificate reload task failed"),
                }
            }
        })
    }

    /// Runs the server side of a handshake on `io` (the caller bounds it in time).
    ///
    /// # Errors
    /// [`HandshakeError`]; rustls has sent the alert that describes it, if any.
    pub async fn accept(
        &self,
        io: TcpStream,
        protocol: AppProtocol,
    ) -> Result<Handshake, HandshakeError> {
        let (ours, config) = match protocol {
            AppProtocol::Mqtt => (ALPN_MQTT, &self.mqtt),
            AppProtocol::WebSocket => (ALPN_HTTP1, &self.http),
        };
        let choose = |hello: &ClientHello<'_>| {
            let overlap = hello.alpn().map(|mut offered| offered.any(|p| p == ours));
            match overlap {
                Some(false) => self.bare.clone(),
                Some(true) | None => config.clone(),
            }
        };
        let (stream, sni) = TlsStream::accept(io, choose).await?;
        let client_cert = match &self.client_auth {
            Some(verifier) => verifier
                .identify(stream.peer_certificates())
                .map_err(HandshakeError::ClientCert)?,
            None => None,
        };
        Ok(Handshake {
            stream,
            sni,
            client_cert,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_aead_suites_and_tls12_only_with_ecdhe() {
        for suite in crypto_provider().cipher_suites {
            let name = format!("{:?}", suite.suite());
            assert!(
                name.contains("GCM") || name.contains("CHACHA20_POLY1305"),
                "{name} is not AEAD"
            );
            if suite.version() == &rustls::version::TLS12 {
                assert!(name.starts_with("TLS_ECDHE_"), "{name} lacks ECDHE");
            }
        }
    }
}
