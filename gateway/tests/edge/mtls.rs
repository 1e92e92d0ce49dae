//! Mutual TLS: client certificates from tenants' registered CAs.

use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tenantmq_common::TenantId;
use tenantmq_gateway::certs::test_util::{Pem, issue_client_cert, new_ca};
use tenantmq_gateway::{CaList, TenantCa};
use uuid::Uuid;

use crate::*;

fn registration(tenant: TenantId, ca: &Pem) -> TenantCa {
    TenantCa {
        tenant,
        ca_id: Uuid::new_v4(),
        der: CertificateDer::from_pem_slice(ca.cert.as_bytes()).expect("CA PEM"),
    }
}

/// Connects with `cert` (TLS `version`) and sends CONNECT as `client_id`: whether the server
/// accepted. In TLS 1.3 the client finishes its side before the server has checked the
/// certificate, so a refusal shows as the connection closing instead of a CONNACK.
async fn connects(
    s: &Server,
    version: &'static rustls::SupportedProtocolVersion,
    cert: Option<&Pem>,
    client_id: &str,
) -> bool {
    let config = s.client_config(&[version], &[b"mqtt"], cert);
    let Ok(tls) = s.tls(config, "localhost").await else {
        return false;
    };
    let mut c = Client::new(StreamWire(tls));
    if c.wire
        .send_bytes(&encode(&connect_packet(client_id)))
        .await
        .is_err()
    {
        return false;
    }
    matches!(c.recv().await, Some(tenantmq_codec::Packet::ConnAck(_)))
}

/// A certificate from a registered CA is accepted and its registration and Common Name reach
/// the authenticator; with two registrations of the same CA, both are reported. A device
/// without a certificate still connects, without [`ClientCertInfo`].
#[tokio::test]
async fn registered_ca_reaches_the_authenticator() {
    let (acme, other) = (TenantId::new_v7(), TenantId::new_v7());
    let ca = new_ca("acme devices CA").expect("CA");
    let shared = new_ca("shared CA").expect("CA");
    let reg = registration(acme, &ca);
    let shared_acme = registration(acme, &shared);
    let shared_other = registration(other, &shared);
    let list = Arc::new(CaList::new(vec![
        reg.clone(),
        shared_acme.clone(),
        shared_other.clone(),
    ]));
    let mut options = Options::new(Kind::Mqtts);
    options.client_cas = Some(list);
    let s = Server::start(options).await;

    for (version, id) in [
        (&rustls::version::TLS13, "sensor-13"),
        (&rustls::version::TLS12, "sensor-12"),
    ] {
        let cert = issue_client_cert(&ca, id).expect("client cert");
        assert!(connects(&s, version, Some(&cert), id).await, "{id} refused");
        let info = s
            .auth
            .seen(id)
            .expect("seen")
            .client_cert
            .expect("cert info");
        assert_eq!(info.tenant, acme);
        assert_eq!(info.ca_id, reg.ca_id);
        assert_eq!(info.common_name.as_deref(), Some(id));
        assert!(info.other_registrations.is_empty());
    }

    let cert = issue_client_cert(&shared, "twice").expect("client cert");
    assert!(connects(&s, &rustls::version::TLS13, Some(&cert), "twice").await);
    let info = s
        .auth
        .seen("twice")
        .expect("seen")
        .client_cert
        .expect("info");
    assert_eq!((info.tenant, info.ca_id), (acme, shared_acme.ca_id));
    assert_eq!(info.other_registrations, vec![(other, shared_other.ca_id)]);

    assert!(connects(&s, &rustls::version::TLS13, None, "no-cert").await);
    assert!(s.auth.seen("no-cert").expect("seen").client_cert.is_none());
    assert_eq!(s.stat(|s| &s.tls_handshake_failures), 0);
}

/// A certificate from a CA nobody registered fails the handshake (TLS 1.3 and 1.2) and never
/// reaches the authenticator.
#[tokio::test]
async fn unregistered_ca_is_refused() {
    let registered = new_ca("registered").expect("CA");
    let stranger = new_ca("stranger").expect("CA");
    let mut options = Options::new(Kind::Mqtts);
    options.client_cas = Some(Arc::new(CaList::new(vec![registration(
        TenantId::new_v7(),
        &registered,
    )])));
    let s = Server::start(options).await;
    let cert = issue_client_cert(&stranger, "intruder").expect("cert");
    for (i, version) in [&rustls::version::TLS13, &rustls::version::TLS12]
        .into_iter()
        .enumerate()
    {
        assert!(!connects(&s, version, Some(&cert), "intruder").await);
        s.wait_stat(
            "handshake failures",
            |s| &s.tls_handshake_failures,
            i as u64 + 1,
        )
        .await;
    }
    // A self-signed "CA" presented as the leaf is no better.
    assert!(!connects(&s, &rustls::version::TLS13, Some(&stranger), "self").await);
    assert!(s.auth.seen("intruder").is_none() && s.auth.seen("self").is_none());
}

/// Registering and removing CAs takes effect for the next handshake.
#[tokio::test]
async fn ca_list_changes_are_picked_up() {
    let (a, b) = (TenantId::new_v7(), TenantId::new_v7());
    let ca_a = new_ca("A").expect("CA");
    let ca_b = new_ca("B").expect("CA");
    let reg_a = registration(a, &ca_a);
    let list = Arc::new(CaList::new(vec![reg_a.clone()]));
    let mut options = Options::new(Kind::Mqtts);
    options.client_cas = Some(list.clone());
    let s = Server::start(options).await;
    let cert_a = issue_client_cert(&ca_a, "dev-a").expect("cert");
    let cert_b = issue_client_cert(&ca_b, "dev-b").expect("cert");
    let v13 = &rustls::version::TLS13;

    assert!(connects(&s, v13, Some(&cert_a), "dev-a").await);
    assert!(!connects(&s, v13, Some(&cert_b), "dev-b").await);

    let reg_b = registration(b, &ca_b);
    list.replace(vec![reg_a, reg_b.clone()]);
    assert!(
        connects(&s, v13, Some(&cert_b), "dev-b").await,
        "new CA ignored"
    );
    let info = s
        .auth
        .seen("dev-b")
        .expect("seen")
        .client_cert
        .expect("info");
    assert_eq!((info.tenant, info.ca_id), (b, reg_b.ca_id));

    list.replace(vec![reg_b]);
    assert!(
        !connects(&s, v13, Some(&cert_a), "dev-a-again").await,
        "removed CA kept"
    );
    assert!(s.auth.seen("dev-a-again").is_none());
}
