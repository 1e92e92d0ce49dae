//! Every scenario for a second against a real broker started in-process on a free loopback
//! port: the report's counts must add up.

use tenantmq_bench::{Args, BenchError, Report, Scenario, run};
use tenantmq_e2e::DevBroker;

/// Runs the tool against `broker` for one second after a short warm-up.
async fn bench(broker: &DevBroker, scenario: &str, extra: &[&str]) -> Report {
    try_bench(broker.addr.port(), scenario, extra)
        .await
        .expect("the run completes")
}

async fn try_bench(port: u16, scenario: &str, extra: &[&str]) -> Result<Report, BenchError> {
    let port = port.to_string();
    let mut argv = vec![
        "tenantmq-bench",
        scenario,
        "--port",
        &port,
        "--duration",
        "1s",
        "--warmup",
        "300ms",
        "--drain",
        "3s",
        "--threads",
        "1",
        "--quiet",
    ];
    argv.extend_from_slice(extra);
    run(Args::try_parse_from(argv).expect("flags parse")).await
}

/// The checks every message scenario passes on a healthy broker.
fn assert_consistent(r: &Report, qos: u8) {
    let c = &r.connections;
    assert_eq!((c.opened, c.failed, c.dropped), (c.planned, 0, 0), "{r:#?}");
    let m = r.messages.as_ref().expect("message figures");
    assert!(m.delivered > 0 && m.delivered_in_window > 0, "{m:#?}");
    assert!(m.delivered_per_sec > 0.0 && m.published_per_sec > 0.0);
    assert_eq!((m.duplicates, m.foreign), (0, 0), "{m:#?}");
    assert!(m.delivered <= m.expected, "{m:#?}");
    if qos > 0 {
        assert_eq!(m.lost, 0, "{m:#?}");
        assert_eq!(m.delivered, m.expected, "{m:#?}");
        assert!(r.passed(), "{:?}", r.failures);
    }
    let l = r.latency_us.expect("latency");
    assert_eq!(l.count, m.delivered_in_window);
    assert!(l.p50 > 0.0 && l.p50 <= l.p99 && l.p99 <= l.max, "{l:?}");
    assert_eq!(c.connack_us.count, c.opened);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairs_at_each_qos() {
    let broker = DevBroker::start().await;
    for qos in ["0", "1", "2"] {
        let r = bench(&broker, "pairs", &["--publishers", "3", "--qos", qos]).await;
        assert_eq!(r.scenario, Scenario::Pairs);
        assert_eq!(r.connections.planned, 6);
        assert_consistent(&r, qos.parse().unwrap());
        assert!(r.broker.is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairs_over_mqtt5_with_a_small_window() {
    let broker = DevBroker::start().await;
    let r = bench(
        &broker,
        "pairs",
        &[
            "--publishers",
            "2",
            "--qos",
            "2",
            "--protocol",
            "5",
            "--inflight",
            "4",
            "--payload",
            "16",
        ],
    )
    .await;
    assert_eq!(r.settings.protocol, "5");
    assert_consistent(&r, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanin_to_one_wildcard_subscriber() {
    let broker = DevBroker::start().await;
    let r = bench(
        &broker,
        "fanin",
        &[
            "--publishers",
            "5",
            "--qos",
            "1",
            "--topic",
            "in/{run}/dev-{i}/data",
        ],
    )
    .await;
    assert_eq!((r.settings.publishers, r.settings.subscribers), (5, 1));
    assert_consistent(&r, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_reaches_every_subscriber() {
    let broker = DevBroker::start().await;
    let r = bench(
        &broker,
        "fanout",
        &["--subscribers", "5", "--qos", "1", "--threads", "2"],
    )
    .await;
    assert_consistent(&r, 1);
    let m = r.messages.unwrap();
    assert_eq!(m.expected, 5 * m.published);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fixed_rate_keeps_its_schedule() {
    let broker = DevBroker::start().await;
    let r = bench(
        &broker,
        "pairs",
        &["--publishers", "2", "--qos", "1", "--rate", "500"],
    )
    .await;
    assert_consistent(&r, 1);
    let m = r.messages.unwrap();
    // 2 publishers × 500/s × 1 s, scheduled (not sent) in the window: exact up to the edges.
    assert!(
        (990..=1010).contains(&m.published_in_window),
        "{}",
        m.published_in_window
    );
    assert!((950.0..=1050.0).contains(&m.delivered_per_sec), "{m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conns_opens_exactly_c_and_measures_the_broker() {
    let broker = DevBroker::start().await;
    // The broker runs in this process, so this process is the broker to measure.
    let pid = std::process::id().to_string();
    let r = bench(
        &broker,
        "conns",
        &[
            "--connections",
            "300",
            "--connect-rate",
            "1500",
            "--source-ips",
            "127.0.0.1-127.0.0.3",
            "--username",
            "dev-{i}",
            "--broker-pid",
            &pid,
            "--threads",
            "2",
        ],
    )
    .await;
    let c = &r.connections;
    assert_eq!((c.planned, c.opened, c.failed, c.dropped), (300, 300, 0, 0));
    assert_eq!(c.connect_us.count, 300);
    // 300 at 1,500/s take about 0.2 s.
    assert!((0.15..1.5).contains(&c.open_secs), "{}", c.open_secs);
    assert!(r.messages.is_none() && r.latency_us.is_none());
    assert!(r.passed(), "{:?}", r.failures);
    let b = r.broker.expect("broker figures");
    assert_eq!(b.pids, [std::process::id()]);
    assert!(b.rss_baseline_bytes > 0 && b.cpu_secs >= 0.0);
    assert!(b.rss_bytes_per_connection.is_some() && b.msgs_per_cpu_sec.is_none());
    assert_eq!(r.settings.source_ips, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_report_has_the_documented_fields() {
    let broker = DevBroker::start().await;
    let r = bench(&broker, "pairs", &["--publishers", "1", "--qos", "1"]).await;
    let v = serde_json::to_value(&r).unwrap();
    for key in [
        "tool",
        "version",
        "run_id",
        "scenario",
        "settings",
        "elapsed_secs",
        "window_secs",
        "connections",
        "messages",
        "latency_us",
        "broker",
        "failures",
        "errors",
    ] {
        assert!(v.get(key).is_some(), "missing {key}");
    }
    assert_eq!(v["tool"], "tenantmq-bench");
    assert_eq!(v["scenario"], "pairs");
    for key in ["p50", "p90", "p99", "p999", "max", "count", "mean", "min"] {
        assert!(
            v["latency_us"].get(key).is_some(),
            "missing latency_us.{key}"
        );
    }
    for key in ["delivered_per_sec", "lost", "duplicates", "expected"] {
        assert!(v["messages"].get(key).is_some(), "missing messages.{key}");
    }
    assert!(r.render().contains("result       ok"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_is_not_there_is_a_setup_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    match try_bench(port, "pairs", &["--publishers", "1"]).await {
        Err(BenchError::Setup {
            failed,
            total,
            first,
        }) => {
            assert_eq!((failed, total), (1, 2));
            assert!(first.contains("connect"), "{first}");
        }
        other => panic!("expected a setup error, got {other:?}"),
    }
}
