//! The server certificate is reloaded from its files without a restart.

use tenantmq_gateway::certs::server_names;
use tenantmq_gateway::certs::test_util::issue_server_cert;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::*;

/// Subject Common Name and serial of the certificate the server presented on `tls`.
fn presented(tls: &TlsStream<TcpStream>) -> (String, Vec<u8>) {
    let chain = tls.get_ref().1.peer_certificates().expect("server chain");
    let (_, cert) = X509Certificate::from_der(chain[0].as_ref()).expect("parse");
    let cn = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .expect("CN")
        .to_owned();
    (cn, cert.raw_serial().to_vec())
}

/// Replacing the files: new connections get the new certificate after the next poll, an
/// established connection keeps working, and a broken pair written later is ignored.
#[tokio::test]
async fn new_certificate_is_served_to_new_connections() {
    let s = Server::start(Options::new(Kind::Mqtts)).await;
    let tls = s
        .tls(s.default_client(), "localhost")
        .await
        .expect("handshake");
    let (old_cn, old_serial) = presented(&tls);
    let mut established = Client::connect(StreamWire(tls), "established").await;

    let new = issue_server_cert(&s.ca, "reloaded", &server_names(BASE_DOMAIN)).expect("cert");
    // Key first, then the certificate, as an operator's `cp` would: in between, the pair does
    // not match and must not be installed.
    std::fs::write(&s.certs.server_key, &new.key).expect("write key");
    std::fs::write(&s.certs.server_cert, &new.cert).expect("write cert");

    let deadline = tokio::time::Instant::now() + PATIENCE;
    let new_serial = loop {
        let tls = s
            .tls(s.default_client(), "localhost")
            .await
            .expect("handshake");
        let (cn, serial) = presented(&tls);
        if cn == "reloaded" {
            Client::connect(StreamWire(tls), "after-reload")
                .await
                .round_trip("t/new")
                .await;
            break serial;
        }
        assert_eq!(cn, old_cn, "only the old or the new certificate is served");
        assert!(tokio::time::Instant::now() < deadline, "never reloaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_ne!(new_serial, old_serial);
    established.round_trip("t/old").await;

    // A broken pair: the good one stays.
    std::fs::write(&s.certs.server_key, b"-----BEGIN PRIVATE KEY-----\nAAAA\n").expect("write");
    tokio::time::sleep(Duration::from_millis(400)).await;
    let tls = s
        .tls(s.default_client(), "localhost")
        .await
        .expect("handshake");
    assert_eq!(presented(&tls).0, "reloaded");
    Client::connect(StreamWire(tls), "after-broken").await;
}
