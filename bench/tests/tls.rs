//! The tool over TLS, against the real gateway's mqtts listener serving the anonymous dev
//! tenant with a generated certificate: verified against the CA file with SNI, and with
//! `--insecure`.

use std::path::PathBuf;
use std::sync::Arc;

use tenantmq_bench::{Args, Report, run};
use tenantmq_common::TenantId;
use tenantmq_common::quota::Quotas;
use tenantmq_common::shutdown::{self, ShutdownTrigger};
use tenantmq_gateway::auth::DevAnonymous;
use tenantmq_gateway::certs::ensure_dev_certificates;
use tenantmq_gateway::connection::ConnectionContext;
use tenantmq_gateway::limits::EdgeLimits;
use tenantmq_gateway::listener::{ListenerOptions, run_mqtts};
use tenantmq_gateway::stats::GatewayStats;
use tenantmq_gateway::{GatewayConfig, TlsContext, TlsSettings};
use tenantmq_worker::Worker;
use tokio::net::TcpListener;

/// An mqtts listener on a free port; dropping it stops the broker and removes its files.
struct TlsBroker {
    port: u16,
    ca: PathBuf,
    dir: PathBuf,
    _trigger: ShutdownTrigger,
}

impl Drop for TlsBroker {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn tls_broker(name: &str) -> TlsBroker {
    let dir = std::env::temp_dir().join(format!("tenantmq-bench-{name}-{}", std::process::id()));
    let certs = ensure_dev_certificates(&dir, "localhost").expect("certificates");
    let tls = TlsContext::new(TlsSettings::new(&certs.server_cert, &certs.server_key))
        .expect("TLS context");
    let (trigger, signal) = shutdown::channel();
    let gateway = Arc::new(ConnectionContext {
        config: GatewayConfig::default(),
        link: Worker::new(signal.clone()),
        authenticator: Arc::new(DevAnonymous::new(TenantId::new_v7(), Quotas::unlimited())),
        stats: Arc::new(GatewayStats::default()),
        limits: EdgeLimits::new(&GatewayConfig::default()),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(run_mqtts(
        listener,
        tls,
        gateway,
        ListenerOptions::default(),
        signal,
    ));
    TlsBroker {
        port,
        ca: certs.ca_cert,
        dir,
        _trigger: trigger,
    }
}

async fn bench(broker: &TlsBroker, extra: &[&str]) -> Report {
    let port = broker.port.to_string();
    let mut argv = vec![
        "tenantmq-bench",
        "--port",
        &port,
        "--tls",
        "--duration",
        "1s",
        "--warmup",
        "300ms",
        "--threads",
        "1",
        "--quiet",
    ];
    argv.extend_from_slice(extra);
    run(Args::try_parse_from(argv).expect("flags parse"))
        .await
        .expect("the run completes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairs_over_tls_verified_with_sni() {
    let broker = tls_broker("verified").await;
    let ca = broker.ca.to_string_lossy().into_owned();
    let r = bench(
        &broker,
        &[
            "pairs",
            "--publishers",
            "2",
            "--qos",
            "1",
            "--cafile",
            &ca,
            "--sni",
            "localhost",
            "--alpn",
            "mqtt",
        ],
    )
    .await;
    assert!(r.settings.tls);
    assert!(r.passed(), "{:?} {:?}", r.failures, r.errors);
    let m = r.messages.unwrap();
    assert!(m.delivered > 0);
    assert_eq!((m.lost, m.duplicates), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conns_over_tls_insecure_and_a_wrong_name_fails() {
    let broker = tls_broker("insecure").await;
    let r = bench(&broker, &["conns", "--connections", "50", "--insecure"]).await;
    assert_eq!((r.connections.opened, r.connections.failed), (50, 0));
    assert!(r.passed(), "{:?}", r.failures);

    // Verified against the CA, a name the certificate does not carry fails every handshake.
    let ca = broker.ca.to_string_lossy().into_owned();
    let r = bench(
        &broker,
        &[
            "conns",
            "--connections",
            "3",
            "--cafile",
            &ca,
            "--sni",
            "example.com",
        ],
    )
    .await;
    assert_eq!((r.connections.opened, r.connections.failed), (0, 3));
    assert!(!r.passed());
    assert!(r.errors[0].contains("connect"), "{:?}", r.errors);
}
