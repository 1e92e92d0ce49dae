//! The coordinator: starts the threads, moves the run through its phases, samples the broker
//! at the window's edges, prints progress, and merges what the threads measured into a
//! [`Report`].
//!
//! Phases (message scenarios): subscribers connect and subscribe → publishers connect → run
//! (warm-up, then the measured window) → stop publishing and drain → close. `conns`: connect
//! at the given rate → hold for `--duration` → close. A connection that cannot be set up in a
//! message scenario aborts the run, since the figures would describe another scenario.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};

use crate::args::{Args, Scenario};
use crate::broker_stats::{ProcSample, sample_all};
use crate::plan::{self, Plan};
use crate::report::{
    Broker, Connections, DrainEnd, LoadTool, Messages, Percentiles, Report, Settings, thousands,
};
use crate::shard::{self, Phase, Progress, ShardResults, Times, nanos};
use crate::{BenchError, shard::histogram};

/// How often the coordinator looks at the threads' counters.
const TICK: Duration = Duration::from_millis(10);
/// How often a progress line is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);
/// Delay between announcing the run and its start, so every thread has seen it.
const START_DELAY: Duration = Duration::from_millis(20);
/// Draining ends early once nothing has been delivered for this long.
const DRAIN_QUIET: Duration = Duration::from_secs(1);
/// File descriptors the tool needs besides its connections (runtime, /proc reads, stdio).
const FD_MARGIN: u64 = 32;
/// Scheduler ticks between two polls of the I/O driver in a thread. The thread's one task
/// drives every connection, so checking for I/O after each of its polls costs one
/// `epoll_wait` per batch of connections, and keeps subscribers responsive while busy
/// publishers keep the task runnable.
const EVENT_INTERVAL: u32 = 2;

/// Runs a load test as `args` describe and returns its report. Progress lines go to
/// standard error unless `args.quiet`.
///
/// # Errors
/// [`BenchError`] when the flags are unusable, the broker cannot be resolved, TLS cannot be
/// configured, a broker process cannot be read at the start, a message scenario's clients
/// cannot all connect and subscribe, or a thread of the tool fails.
pub async fn run(args: Args) -> Result<Report, BenchError> {
    let epoch = Instant::now();
    let mut plan = plan::build(&args, epoch).await?;
    let baseline = broker_sample(&args.broker_pids)?;
    if let Some(limit) = crate::broker_stats::open_files_limit()
        && plan.connections() + FD_MARGIN > limit
    {
        eprintln!(
            "tenantmq-bench: warning: {} connections but at most {limit} open files per process \
             (ulimit -n); raise it, or split the run over processes with --start-index",
            plan.connections()
        );
    }

    let (phase_tx, phase_rx) = watch::channel(Phase::Setup);
    let mut threads = Vec::new();
    for (k, specs) in plan.shards.drain(..).enumerate() {
        let progress = Arc::new(Progress::default());
        let (tx, rx) = oneshot::channel();
        let (params, phase, p, results) = (
            plan.params.clone(),
            phase_rx.clone(),
            progress.clone(),
            ShardResults::new()?,
        );
        std::thread::Builder::new()
            .name(format!("bench-{k}"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .event_interval(EVENT_INTERVAL)
                    .build();
                let _ =
                    tx.send(rt.map(|rt| rt.block_on(shard::run(specs, params, phase, p, results))));
            })
            .map_err(|e| BenchError::Runtime(format!("starting a thread: {e}")))?;
        threads.push((progress, rx));
    }
    drop(phase_rx);

    let mut monitor = Monitor {
        progress: threads.iter().map(|(p, _)| p.clone()).collect(),
        quiet: args.quiet,
        epoch,
        last_print: Instant::now(),
        last: Totals::default(),
    };
    let outcome = phases(&args, &plan, &phase_tx, &mut monitor, baseline).await;
    phase_tx.send_replace(Phase::Close);

    let mut merged = Vec::new();
    for (_, rx) in threads {
        match rx.await {
            Ok(Ok(r)) => merged.push(r),
            Ok(Err(e)) => return Err(BenchError::Runtime(format!("thread runtime: {e}"))),
            Err(_) => return Err(BenchError::Runtime("a thread of the tool panicked".into())),
        }
    }
    match outcome {
        Ok(samples) => build_report(&args, &plan, samples, merged, epoch),
        Err(Abort { failed, total }) => Err(BenchError::Setup {
            failed,
            total,
            first: merged
                .iter()
                .flat_map(|r| r.errors.first())
                .next()
                .cloned()
                .unwrap_or_default(),
        }),
    }
}

/// Connections of a message scenario could not all be set up.
struct Abort {
    failed: u64,
    total: u64,
}

/// Broker readings and instants taken during the run.
struct Samples {
    connect_started: Instant,
    baseline: Option<ProcSample>,
    connected: Option<ProcSample>,
    window_start: Option<ProcSample>,
    window_end: Option<ProcSample>,
    window_secs: f64,
    broker_error: Option<String>,
    /// This process at the edges of the window.
    tool_start: Option<ProcSample>,
    tool_end: Option<ProcSample>,
    drain_end: Option<DrainEnd>,
}

async fn phases(
    args: &Args,
    plan: &Plan,
    phase: &watch::Sender<Phase>,
    monitor: &mut Monitor,
    baseline: Option<ProcSample>,
) -> Result<Samples, Abort> {
    let pids = &args.broker_pids;
    let mut samples = Samples {
        connect_started: Instant::now(),
        baseline,
        connected: None,
        window_start: None,
        window_end: None,
        window_secs: args.duration.as_secs_f64(),
        broker_error: None,
        tool_start: None,
        tool_end: None,
        drain_end: None,
    };
    let me = std::process::id();
    let sample = |s: &mut Samples| match broker_sample(pids) {
        Ok(v) => v,
        Err(e) => {
            s.broker_error.get_or_insert(e.to_string());
            None
        }
    };

    let subs = u64::from(plan.subscribers);
    let total = plan.connections();
    phase.send_replace(Phase::ConnectSubscribers);
    monitor
        .wait("connecting", |t| t.ready + t.failed >= subs, None)
        .await;
    let failed = monitor.totals().failed;
    if failed > 0 {
        return Err(Abort { failed, total });
    }
    phase.send_replace(Phase::ConnectOthers);
    monitor
        .wait("connecting", |t| t.ready + t.failed >= total, None)
        .await;
    samples.connected = sample(&mut samples);
    let t = monitor.totals();
    if args.scenario == Scenario::Conns {
        let hold_start = Instant::now();
        samples.window_start = samples.connected;
        samples.tool_start = crate::broker_stats::sample(me).ok();
        monitor
            .wait("holding", |_| false, Some(hold_start + args.duration))
            .await;
        samples.window_end = sample(&mut samples);
        samples.tool_end = crate::broker_stats::sample(me).ok();
        samples.window_secs = hold_start.elapsed().as_secs_f64();
        return Ok(samples);
    }
    if t.failed > 0 {
        return Err(Abort {
            failed: t.failed,
            total,
        });
    }

    let epoch = plan.params.epoch;
    let start = Instant::now() + START_DELAY;
    let window_start = start + args.warmup;
    let window_end = window_start + args.duration;
    let ns = |i: Instant| nanos(i.saturating_duration_since(epoch));
    phase.send_replace(Phase::Run(Times {
        start_ns: ns(start),
        window_start_ns: ns(window_start),
        window_end_ns: ns(window_end),
    }));
    monitor.wait("warm-up", |_| false, Some(window_start)).await;
    samples.window_start = sample(&mut samples);
    samples.tool_start = crate::broker_stats::sample(me).ok();
    monitor.wait("measuring", |_| false, Some(window_end)).await;
    samples.window_end = sample(&mut samples);
    samples.tool_end = crate::broker_stats::sample(me).ok();

    phase.send_replace(Phase::Stop);
    let publishers = u64::from(plan.publishers);
    let fan = plan.fan;
    let mut last_delivered = monitor.totals().delivered;
    let mut quiet_since = Instant::now();
    let drain_end = Instant::now() + args.drain;
    let mut end = DrainEnd::Timeout;
    monitor
        .wait(
            "draining",
            |t| {
                if t.delivered != last_delivered {
                    last_delivered = t.delivered;
                    quiet_since = Instant::now();
                }
                if t.delivered_unique >= t.published * fan && t.drained >= publishers {
                    end = DrainEnd::Complete;
                } else if quiet_since.elapsed() >= DRAIN_QUIET {
                    end = DrainEnd::Quiet;
                }
                end != DrainEnd::Timeout
            },
            Some(drain_end),
        )
        .await;
    samples.drain_end = Some(end);
    Ok(samples)
}

fn broker_sample(pids: &[u32]) -> Result<Option<ProcSample>, BenchError> {
    if pids.is_empty() {
        return Ok(None);
    }
    sample_all(pids)
        .map(|(total, _)| Some(total))
        .map_err(|source| {
            // Name the first process that cannot be read.
            let pid = pids
                .iter()
                .copied()
                .find(|&p| crate::broker_stats::sample(p).is_err())
                .unwrap_or(pids[0]);
            BenchError::BrokerProcess { pid, source }
        })
}

/// The sum of the threads' [`Progress`] counters.
#[derive(Clone, Copy, Debug, Default)]
struct Totals {
    opened: u64,
    failed: u64,
    ready: u64,
    dropped: u64,
    published: u64,
    delivered: u64,
    delivered_unique: u64,
    drained: u64,
}

struct Monitor {
    progress: Vec<Arc<Progress>>,
    quiet: bool,
    epoch: Instant,
    last_print: Instant,
    last: Totals,
}

impl Monitor {
    fn totals(&self) -> Totals {
        use std::sync::atomic::Ordering::Relaxed;
        let mut t = Totals::default();
        for p in &self.progress {
            t.opened += p.opened.load(Relaxed);
            t.failed += p.failed.load(Relaxed);
            t.ready += p.ready.load(Relaxed);
            t.dropped += p.dropped.load(Relaxed);
            t.published += p.published.load(Relaxed);
            t.delivered += p.delivered.load(Relaxed);
            t.delivered_unique += p.delivered_unique.load(Relaxed);
            t.drained += p.drained.load(Relaxed);
        }
        t
    }

    /// Waits until `done` holds or `until` passes, printing a progress line every second.
    async fn wait(
        &mut self,
        label: &str,
        mut done: impl FnMut(&Totals) -> bool,
        until: Option<Instant>,
    ) {
        loop {
            let t = self.totals();
            if done(&t) || until.is_some_and(|u| Instant::now() >= u) {
                return;
            }
            let now = Instant::now();
            if now >= self.last_print + PROGRESS_EVERY {
                self.print(label, &t, now);
            }
            let mut next = now + TICK;
            if let Some(u) = until {
                next = next.min(u);
            }
            tokio::time::sleep_until(tokio::time::Instant::from_std(next)).await;
        }
    }

    fn print(&mut self, label: &str, t: &Totals, now: Instant) {
        let secs = (now - self.last_print).as_secs_f64();
        let rate = |a: u64, b: u64| thousands((a.saturating_sub(b) as f64 / secs).round() as u64);
        if !self.quiet {
            eprintln!(
                "[{:6.1}s] {label:<10} connections {} (+{}/s, {} failed, {} lost)  published {}/s  delivered {}/s",
                (now - self.epoch).as_secs_f64(),
                thousands(t.opened),
                rate(t.opened, self.last.opened),
                t.failed,
                t.dropped,
                rate(t.published, self.last.published),
                rate(t.delivered, self.last.delivered),
            );
        }
        self.last = *t;
        self.last_print = now;
    }
}

fn build_report(
    args: &Args,
    plan: &Plan,
    samples: Samples,
    shards: Vec<ShardResults>,
    epoch: Instant,
) -> Result<Report, BenchError> {
    let (mut latency, mut connect, mut connack) = (histogram()?, histogram()?, histogram()?);
    let mut published = vec![0u64; plan.publishers as usize];
    let mut last_connack: Option<Instant> = None;
    let (mut failed, mut dropped, mut errors) = (0, 0, Vec::new());
    let mut m = Messages {
        published: 0,
        published_in_window: 0,
        expected: 0,
        delivered: 0,
        delivered_in_window: 0,
        lost: 0,
        duplicates: 0,
        foreign: 0,
        published_per_sec: 0.0,
        delivered_per_sec: 0.0,
        drain_end: samples.drain_end.unwrap_or(DrainEnd::Timeout),
    };
    let add = |into: &mut hdrhistogram::Histogram<u64>, from| {
        into.add(from)
            .map_err(|e| BenchError::Runtime(format!("merging histograms: {e}")))
    };
    for r in &shards {
        add(&mut latency, &r.latency)?;
        add(&mut connect, &r.connect)?;
        add(&mut connack, &r.connack)?;
        for &(p, n) in &r.published {
            if let Some(slot) = published.get_mut(p as usize) {
                *slot += n;
            }
            m.published += n;
        }
        m.published_in_window += r.published_in_window;
        m.delivered += r.delivered;
        m.delivered_in_window += r.delivered_in_window;
        m.foreign += r.foreign;
        last_connack = last_connack.max(r.last_connack);
        failed += r.setup_failures;
        dropped += r.drops;
        errors.extend(r.errors.iter().cloned());
    }
    for r in &shards {
        for s in &r.streams {
            let expected = published.get(s.publisher as usize).copied().unwrap_or(0);
            m.expected += expected;
            m.lost += expected.saturating_sub(s.unique);
            m.duplicates += s.duplicates;
        }
    }
    errors.truncate(10);

    let window = samples.window_secs;
    m.published_per_sec = m.published_in_window as f64 / window;
    m.delivered_per_sec = m.delivered_in_window as f64 / window;
    let opened = connack.len();
    let open_secs = last_connack.map_or(0.0, |l| {
        l.saturating_duration_since(samples.connect_started)
            .as_secs_f64()
    });
    let connections = Connections {
        planned: plan.connections(),
        opened,
        failed,
        dropped,
        open_secs,
        opened_per_sec: if open_secs > 0.0 {
            opened as f64 / open_secs
        } else {
            0.0
        },
        connect_us: Percentiles::of(&connect),
        connack_us: Percentiles::of(&connack),
    };
    let conns = args.scenario == Scenario::Conns;

    let mut failures = Vec::new();
    if failed > 0 {
        failures.push(format!("{failed} connections could not be opened"));
    }
    if dropped > 0 {
        failures.push(format!("{dropped} connections were lost during the run"));
    }
    if !conns {
        if m.delivered == 0 {
            failures.push("no message was delivered".into());
        }
        if args.qos > 0 && m.lost > 0 {
            failures.push(format!("{} QoS {} messages lost", m.lost, args.qos));
        }
        if args.qos == 2 && m.duplicates > 0 {
            failures.push(format!("{} QoS 2 messages duplicated", m.duplicates));
        }
    }
    if let Some(e) = &samples.broker_error {
        failures.push(format!("broker process: {e}"));
    }

    let broker = match (
        samples.baseline,
        samples.connected,
        samples.window_start,
        samples.window_end,
    ) {
        (Some(base), Some(conn), Some(ws), Some(we)) => {
            let cpu = we.cpu_seconds() - ws.cpu_seconds();
            let connect_cpu = conn.cpu_seconds() - base.cpu_seconds();
            let delta = we.rss_bytes as i64 - base.rss_bytes as i64;
            Some(Broker {
                pids: args.broker_pids.clone(),
                cpu_secs: cpu,
                cpu_cores: cpu / window,
                connect_cpu_secs: connect_cpu,
                connects_per_cpu_sec: (connect_cpu > 0.0).then(|| opened as f64 / connect_cpu),
                msgs_per_cpu_sec: (!conns && cpu > 0.0).then(|| m.delivered_in_window as f64 / cpu),
                rss_baseline_bytes: base.rss_bytes,
                rss_start_bytes: ws.rss_bytes,
                rss_end_bytes: we.rss_bytes,
                rss_delta_bytes: delta,
                rss_bytes_per_connection: (conns && opened > 0)
                    .then(|| delta as f64 / opened as f64),
            })
        }
        _ => None,
    };

    let s = Settings {
        host: args.host.clone(),
        port: args.port,
        tls: args.tls,
        protocol: args.protocol.name(),
        qos: args.qos,
        payload_bytes: args.payload,
        rate: args.rate,
        publishers: plan.publishers,
        subscribers: plan.subscribers,
        connections: plan.idle,
        inflight: args.inflight,
        duration_secs: args.duration.as_secs_f64(),
        warmup_secs: args.warmup.as_secs_f64(),
        connect_rate: (args.connect_rate > 0.0).then_some(args.connect_rate),
        source_ips: args.source_ips.as_ref().map_or(0, |s| s.len()),
        clean: args.clean,
        keepalive: args.keepalive,
        threads: plan.threads,
    };
    Ok(Report {
        tool: "tenantmq-bench",
        version: env!("CARGO_PKG_VERSION"),
        run_id: plan.run_id.clone(),
        scenario: args.scenario,
        settings: s,
        elapsed_secs: epoch.elapsed().as_secs_f64(),
        window_secs: window,
        connections,
        latency_us: (!conns).then(|| Percentiles::of(&latency)),
        messages: (!conns).then_some(m),
        broker,
        load_tool: match (samples.tool_start, samples.tool_end) {
            (Some(a), Some(b)) => {
                let cpu = b.cpu_seconds() - a.cpu_seconds();
                Some(LoadTool {
                    cpu_secs: cpu,
                    cpu_cores: cpu / window,
                    rss_bytes: b.rss_bytes,
                })
            }
            _ => None,
        },
        failures,
        errors,
    })
}
