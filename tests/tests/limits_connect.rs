//! Connection limits enforced by the gateway (issue 6, items 1 and 2): connect rate per source
//! address, per client id and per tenant, and concurrent connections per tenant. MQTT 5 gets
//! the reason in CONNACK (0x9F Connection rate exceeded, 0x97 Quota exceeded); MQTT 3.1.1 has
//! no such codes and gets return code 3 (Server unavailable), the closest it has
//! (3.1.1 3.2.2.3). Each refusal is counted for the tenant and reason.

use std::time::Duration;

use tenantmq_codec::{ProtocolVersion, ReasonCode};
use tenantmq_common::quota::Quotas;
use tenantmq_common::usage::RejectReason;
use tenantmq_e2e::raw::RawClient;
use tenantmq_e2e::tenants::{TenantsBroker, tenant_connect};
use tenantmq_gateway::GatewayConfig;
use tokio::time::Instant;

const V311: ProtocolVersion = ProtocolVersion::V311;
const V50: ProtocolVersion = ProtocolVersion::V5;

/// The CONNACK reason a refused MQTT 5 client gets, as the client of `version` sees it: 3.1.1
/// return code 3 reads as 0x88 (Server unavailable).
fn as_seen(version: ProtocolVersion, v5: ReasonCode) -> ReasonCode {
    match version {
        ProtocolVersion::V5 => v5,
        ProtocolVersion::V311 => ReasonCode::SERVER_UNAVAILABLE,
    }
}

/// Connects `client_id` of `tenant` and returns the CONNACK reason and the client (closed by
/// the server when refused).
async fn connect(
    b: &TenantsBroker,
    version: ProtocolVersion,
    tenant: &str,
    client_id: &str,
) -> (ReasonCode, RawClient) {
    let (mut c, ack) =
        RawClient::connect_with(b.addr, tenant_connect(version, tenant, client_id)).await;
    if ack.reason != ReasonCode::SUCCESS {
        assert_eq!(
            c.expect_closed().await,
            None,
            "closed after the refusing CONNACK"
        );
    }
    (ack.reason, c)
}

/// No connect-rate limits but the one under test.
fn only(config: impl FnOnce(&mut GatewayConfig)) -> GatewayConfig {
    let mut c = GatewayConfig {
        source_connect_per_sec: 0,
        client_id_connect_per_sec: 0,
        ..GatewayConfig::default()
    };
    config(&mut c);
    c
}

/// A source past its connect rate is refused before authentication: even a CONNECT naming no
/// tenant gets 0x9F, not 0x86, and no credential is checked.
async fn source_connect_rate(version: ProtocolVersion) {
    let config = only(|c| {
        c.source_connect_per_sec = 1;
        c.source_connect_burst = 2;
    });
    let b = TenantsBroker::start(&[("t", Quotas::unlimited())], config).await;
    let _a = connect(&b, version, "t", "a").await;
    let _b = connect(&b, version, "t", "b").await;
    let (reason, _) = connect(&b, version, "nobody", "c").await;
    assert_eq!(
        reason,
        as_seen(version, ReasonCode::CONNECTION_RATE_EXCEEDED)
    );
    assert_eq!(
        b.stats
            .auth_failures
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    assert_eq!(b.stats.rejections_for(RejectReason::SourceConnectRate), 1);
    // The budget comes back at the configured rate.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(connect(&b, version, "t", "d").await.0, ReasonCode::SUCCESS);
}

#[tokio::test]
async fn source_connect_rate_0x9f_v5() {
    source_connect_rate(V50).await;
}

#[tokio::test]
async fn source_connect_rate_rc3_v311() {
    source_connect_rate(V311).await;
}

/// A client id reconnecting in a tight loop is slowed, not refused: past its burst each
/// CONNECT waits for the client id's rate, and every one is accepted. Other client ids and
/// other tenants are not slowed.
async fn client_id_loop_is_slowed(version: ProtocolVersion) {
    let config = only(|c| {
        c.client_id_connect_per_sec = 4;
        c.client_id_connect_burst = 2;
    });
    let b = TenantsBroker::start(
        &[("t", Quotas::unlimited()), ("u", Quotas::unlimited())],
        config,
    )
    .await;
    let start = Instant::now();
    for _ in 0..6 {
        let (reason, _c) = connect(&b, version, "t", "looping").await;
        assert_eq!(reason, ReasonCode::SUCCESS);
    }
    // Two at once, then four at 4 per second.
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(4),
        "six CONNECTs took {took:?}"
    );
    let start = Instant::now();
    for id in ["x", "y", "z"] {
        assert_eq!(connect(&b, version, "t", id).await.0, ReasonCode::SUCCESS);
    }
    for _ in 0..2 {
        assert_eq!(
            connect(&b, version, "u", "looping").await.0,
            ReasonCode::SUCCESS
        );
    }
    assert!(
        start.elapsed() < Duration::from_millis(500),
        "others were slowed"
    );
    assert_eq!(b.rejections("t").total(), 0, "slowing is not a rejection");
}

#[tokio::test]
async fn client_id_reconnect_loop_is_slowed_v5() {
    client_id_loop_is_slowed(V50).await;
}

#[tokio::test]
async fn client_id_reconnect_loop_is_slowed_v311() {
    client_id_loop_is_slowed(V311).await;
}

/// When the wait for a client id would exceed the maximum delay, the CONNECT is refused with
/// 0x9F (3.1.1: 3), and counted.
async fn client_id_beyond_delay_refused(version: ProtocolVersion) {
    let config = only(|c| {
        c.client_id_connect_per_sec = 1;
        c.client_id_connect_burst = 1;
        c.client_id_max_delay = Duration::from_millis(300);
    });
    let b = TenantsBroker::start(&[("t", Quotas::unlimited())], config).await;
    assert_eq!(
        connect(&b, version, "t", "looping").await.0,
        ReasonCode::SUCCESS
    );
    let start = Instant::now();
    let (reason, _) = connect(&b, version, "t", "looping").await;
    assert_eq!(
        reason,
        as_seen(version, ReasonCode::CONNECTION_RATE_EXCEEDED)
    );
    assert!(
        start.elapsed() < Duration::from_millis(900),
        "refused without waiting in vain"
    );
    b.wait_rejections("t", RejectReason::ClientConnectRate, 1)
        .await;
}

#[tokio::test]
async fn client_id_beyond_max_delay_0x9f_v5() {
    client_id_beyond_delay_refused(V50).await;
}

#[tokio::test]
async fn client_id_beyond_max_delay_rc3_v311() {
    client_id_beyond_delay_refused(V311).await;
}

/// A tenant's connect rate (`connect_rate_per_sec`, burst of one second's worth) is spent only
/// by its own authenticated devices: past it, 0x9F (3.1.1: 3); another tenant is unaffected.
async fn tenant_connect_rate(version: ProtocolVersion) {
    let quotas = Quotas {
        connect_rate_per_sec: 3,
        ..Quotas::unlimited()
    };
    let b = TenantsBroker::start(&[("t", quotas), ("u", Quotas::unlimited())], only(|_| {})).await;
    // Strangers do not spend the tenant's budget.
    for i in 0..5 {
        let (reason, _) = connect(&b, version, "nobody", &format!("s{i}")).await;
        assert!(reason.is_error() && reason != ReasonCode::CONNECTION_RATE_EXCEEDED);
    }
    let mut held = Vec::new();
    for i in 0..3 {
        let (reason, c) = connect(&b, version, "t", &format!("c{i}")).await;
        assert_eq!(reason, ReasonCode::SUCCESS, "connect {i}");
        held.push(c);
    }
    let (reason, _) = connect(&b, version, "t", "c3").await;
    assert_eq!(
        reason,
        as_seen(version, ReasonCode::CONNECTION_RATE_EXCEEDED)
    );
    assert_eq!(connect(&b, version, "u", "c3").await.0, ReasonCode::SUCCESS);
    b.wait_rejections("t", RejectReason::ConnectRate, 1).await;
    assert_eq!(b.rejections("u").total(), 0);
}

#[tokio::test]
async fn tenant_connect_rate_0x9f_v5() {
    tenant_connect_rate(V50).await;
}

#[tokio::test]
async fn tenant_connect_rate_rc3_v311() {
    tenant_connect_rate(V311).await;
}

/// A tenant at `max_connections` gets 0x97 Quota exceeded (3.1.1: 3) for the next one; a
/// slot comes back when a connection ends; another tenant is unaffected.
async fn max_connections(version: ProtocolVersion) {
    let quotas = Quotas {
        max_connections: 2,
        ..Quotas::unlimited()
    };
    let b = TenantsBroker::start(&[("t", quotas), ("u", Quotas::unlimited())], only(|_| {})).await;
    let (_, mut first) = connect(&b, version, "t", "a").await;
    let (_, _second) = connect(&b, version, "t", "b").await;
    let (reason, _) = connect(&b, version, "t", "c").await;
    assert_eq!(reason, as_seen(version, ReasonCode::QUOTA_EXCEEDED));
    assert_eq!(connect(&b, version, "u", "c").await.0, ReasonCode::SUCCESS);
    assert_eq!(b.limits.connections(b.tenant("t")), 2);

    first.disconnect().await;
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let (reason, _c) = connect(&b, version, "t", "c").await;
        if reason == ReasonCode::SUCCESS {
            break;
        }
        assert!(Instant::now() < deadline, "the slot did not come back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    b.wait_rejections("t", RejectReason::ConnectionQuota, 1)
        .await;
    assert_eq!(b.rejections("u").total(), 0);
}

#[tokio::test]
async fn max_connections_0x97_v5() {
    max_connections(V50).await;
}

#[tokio::test]
async fn max_connections_rc3_v311() {
    max_connections(V311).await;
}
