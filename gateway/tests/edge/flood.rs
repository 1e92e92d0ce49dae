//! A flood of half-open connections does not keep a normal client out.

use std::time::Duration;

use crate::*;

/// Sockets that connect and send nothing.
const HALF_OPEN: usize = 200;

/// 200 sockets that never start their TLS handshake: a normal client still connects and
/// round-trips, and every one of the 200 is closed at the connect timeout and counted.
#[tokio::test]
async fn half_open_flood_is_shed_at_the_connect_timeout() {
    let mut options = Options::new(Kind::Mqtts);
    options.connect_timeout = Duration::from_secs(3);
    let s = Server::start(options).await;

    let mut idle = Vec::with_capacity(HALF_OPEN);
    for _ in 0..HALF_OPEN {
        idle.push(TcpStream::connect(s.addr).await.expect("connect"));
    }
    s.wait_stat("accepted", |s| &s.accepted, HALF_OPEN as u64)
        .await;

    let started = tokio::time::Instant::now();
    let tls = s
        .tls(s.default_client(), "localhost")
        .await
        .expect("handshake");
    Client::connect(StreamWire(tls), "normal")
        .await
        .round_trip("t/flood")
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the normal client waited for the flood's timeout"
    );

    let closing = idle
        .iter_mut()
        .map(|socket| expect_closed(socket, PATIENCE));
    futures::future::join_all(closing).await;
    s.wait_stat(
        "handshake timeouts",
        |s| &s.tls_handshake_timeouts,
        HALF_OPEN as u64,
    )
    .await;
    assert_eq!(s.stat(|s| &s.tls_handshake_failures), 0);
}
