//! The TLS client side: rustls with the *ring* provider, a CA file or no verification at all,
//! SNI, optional ALPN — and no session resumption, so that every connection costs the broker
//! a full handshake, which is what a fleet of devices reconnecting after a broker restart
//! costs it and what the handshakes-per-CPU-second figure means.

use std::path::Path;
use std::sync::Arc;

use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, ring};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use crate::BenchError;

/// How to verify the broker.
#[derive(Debug, Clone, Copy)]
pub enum Verify<'a> {
    /// Against the CA certificates of this PEM file.
    CaFile(&'a Path),
    /// Not at all (`--insecure`).
    Nothing,
}

/// A client configuration.
///
/// # Errors
/// [`BenchError::Tls`] when the CA file cannot be read or holds no certificate.
pub fn client_config(
    verify: Verify<'_>,
    alpn: Option<&str>,
) -> Result<Arc<ClientConfig>, BenchError> {
    let provider = Arc::new(ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| BenchError::Tls(e.to_string()))?;
    let mut config = match verify {
        Verify::CaFile(path) => {
            let mut roots = RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| BenchError::Tls(format!("reading {}: {e}", path.display())))?;
            for cert in certs {
                let cert =
                    cert.map_err(|e| BenchError::Tls(format!("parsing {}: {e}", path.display())))?;
                roots
                    .add(cert)
                    .map_err(|e| BenchError::Tls(format!("{}: {e}", path.display())))?;
            }
            if roots.is_empty() {
                return Err(BenchError::Tls(format!(
                    "{} holds no certificate",
                    path.display()
                )));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Verify::Nothing => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
            .with_no_client_auth(),
    };
    config.resumption = Resumption::disabled();
    if let Some(p) = alpn {
        config.alpn_protocols = vec![p.as_bytes().to_vec()];
    }
    Ok(Arc::new(config))
}

/// The name to send in SNI and check the certificate against: `sni`, else `host` (an IP
/// address is checked against the certificate's IP SANs and sends no SNI, RFC 6066 §3).
///
/// # Errors
/// [`BenchError::Tls`] for a name that is neither a DNS name nor an IP address.
pub fn server_name(host: &str, sni: Option<&str>) -> Result<ServerName<'static>, BenchError> {
    let name = sni.unwrap_or(host);
    ServerName::try_from(name.to_owned())
        .map_err(|_| BenchError::Tls(format!("{name:?} is not a valid server name")))
}

/// `--insecure`: accepts any certificate. Handshake signatures are still checked, so the
/// broker does the same cryptographic work as with a verifying client.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_names() {
        assert!(matches!(
            server_name("127.0.0.1", None),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            server_name("127.0.0.1", Some("acme.localhost")),
            Ok(ServerName::DnsName(_))
        ));
        assert!(server_name("bad name!", None).is_err());
    }

    #[test]
    fn insecure_config_builds_and_missing_ca_file_fails() {
        assert!(client_config(Verify::Nothing, Some("mqtt")).is_ok());
        assert!(matches!(
            client_config(Verify::CaFile(Path::new("/nonexistent/ca.pem")), None),
            Err(BenchError::Tls(_))
        ));
    }
}
