//! The result of a run: [`Report`], serialised as the `--json` output (field names are a
//! contract, listed in the crate documentation) and rendered as a table for people.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::args::Scenario;

/// Everything a run measured.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Always `"tenantmq-bench"`.
    pub tool: &'static str,
    /// The tool's version.
    pub version: &'static str,
    /// The run id (`{run}` in templates).
    pub run_id: String,
    /// The scenario.
    pub scenario: Scenario,
    /// The settings in force.
    pub settings: Settings,
    /// Wall time of the whole run, connecting and draining included, in seconds.
    pub elapsed_secs: f64,
    /// Length of the measured window in seconds (`conns`: the idle hold).
    pub window_secs: f64,
    /// Connection figures.
    pub connections: Connections,
    /// Message figures; `None` for `conns`.
    pub messages: Option<Messages>,
    /// End-to-end latency of messages received in the window; `None` for `conns`.
    pub latency_us: Option<Percentiles>,
    /// Broker cost; `None` without `--broker-pid`.
    pub broker: Option<Broker>,
    /// What the process running the tool spent in the window, to check that the tool was
    /// not the bottleneck.
    pub load_tool: Option<LoadTool>,
    /// Why the run counts as failed (empty when it does not): connections that could not be
    /// opened or were lost, QoS 1/2 messages lost, QoS 2 messages duplicated, nothing
    /// delivered.
    pub failures: Vec<String>,
    /// The first connection errors seen, for diagnosis.
    pub errors: Vec<String>,
}

/// The settings of a run, as the report shows them.
#[derive(Debug, Clone, Serialize)]
#[allow(missing_docs)] // Each field is the flag of the same name.
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub tls: bool,
    pub protocol: &'static str,
    pub qos: u8,
    pub payload_bytes: usize,
    /// Messages per second per publisher; `None`: max rate.
    pub rate: Option<f64>,
    pub publishers: u32,
    pub subscribers: u32,
    /// Idle connections (`conns`).
    pub connections: u32,
    pub inflight: u16,
    pub duration_secs: f64,
    pub warmup_secs: f64,
    /// Connections per second; `None`: unlimited.
    pub connect_rate: Option<f64>,
    /// Number of local source addresses in use (0: the kernel picks).
    pub source_ips: usize,
    pub clean: bool,
    pub keepalive: u16,
    pub threads: usize,
}

/// Connection figures.
#[derive(Debug, Clone, Serialize)]
pub struct Connections {
    /// Connections the scenario asked for.
    pub planned: u64,
    /// Connections that received a successful CONNACK.
    pub opened: u64,
    /// Connections that could not be opened or subscribed.
    pub failed: u64,
    /// Connections lost before the end of the run.
    pub dropped: u64,
    /// Seconds from the first connection attempt to the last CONNACK.
    pub open_secs: f64,
    /// `opened / open_secs`.
    pub opened_per_sec: f64,
    /// TCP connect plus TLS handshake, microseconds.
    pub connect_us: Percentiles,
    /// CONNECT sent to CONNACK received, microseconds.
    pub connack_us: Percentiles,
}

/// Message figures.
#[derive(Debug, Clone, Serialize)]
pub struct Messages {
    /// PUBLISH packets sent by all publishers.
    pub published: u64,
    /// Of those, sent (or, at a fixed rate, scheduled) inside the window.
    pub published_in_window: u64,
    /// Deliveries expected: each message times the subscribers it should reach.
    pub expected: u64,
    /// PUBLISH packets received by all subscribers, duplicates included.
    pub delivered: u64,
    /// Of those, received inside the window.
    pub delivered_in_window: u64,
    /// `expected` minus distinct messages received, after draining.
    pub lost: u64,
    /// Messages received more than once.
    pub duplicates: u64,
    /// Messages whose payload does not come from this run's publishers.
    pub foreign: u64,
    /// `published_in_window / window_secs`.
    pub published_per_sec: f64,
    /// `delivered_in_window / window_secs`: the throughput figure.
    pub delivered_per_sec: f64,
    /// How draining ended.
    pub drain_end: DrainEnd,
}

/// How the wait for in-flight messages after the window ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DrainEnd {
    /// Every expected message arrived and every publisher had its acknowledgements.
    Complete,
    /// Nothing arrived for a second: what is missing is lost.
    Quiet,
    /// `--drain` passed while messages were still arriving: `lost` may include late ones.
    Timeout,
}

/// The load tool's own cost over the window.
#[derive(Debug, Clone, Serialize)]
pub struct LoadTool {
    /// CPU seconds of the tool's process.
    pub cpu_secs: f64,
    /// `cpu_secs / window_secs`.
    pub cpu_cores: f64,
    /// Resident memory at the end of the window, bytes.
    pub rss_bytes: u64,
}

/// Broker cost, from `/proc` of the `--broker-pid` processes (summed).
#[derive(Debug, Clone, Serialize)]
pub struct Broker {
    /// The processes.
    pub pids: Vec<u32>,
    /// CPU seconds (user + system) used in the window.
    pub cpu_secs: f64,
    /// `cpu_secs / window_secs`: cores kept busy.
    pub cpu_cores: f64,
    /// CPU seconds used while the connections were being opened.
    pub connect_cpu_secs: f64,
    /// `opened / connect_cpu_secs`: connections (TLS handshakes) per broker CPU-second.
    pub connects_per_cpu_sec: Option<f64>,
    /// `delivered_in_window / cpu_secs`; `None` for `conns`.
    pub msgs_per_cpu_sec: Option<f64>,
    /// Resident memory before the first connection, bytes.
    pub rss_baseline_bytes: u64,
    /// At the start of the window.
    pub rss_start_bytes: u64,
    /// At the end of the window.
    pub rss_end_bytes: u64,
    /// `rss_end_bytes - rss_baseline_bytes` (may be negative).
    pub rss_delta_bytes: i64,
    /// `rss_delta_bytes / opened`; `conns` only.
    pub rss_bytes_per_connection: Option<f64>,
}

/// Percentiles of a histogram of nanoseconds, in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
#[allow(missing_docs)] // The names say it.
pub struct Percentiles {
    pub count: u64,
    pub min: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Percentiles {
    /// From a histogram of nanoseconds.
    pub fn of(h: &Histogram<u64>) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Self {
            count: h.len(),
            min: us(h.min()),
            mean: h.mean() / 1000.0,
            p50: us(h.value_at_quantile(0.5)),
            p90: us(h.value_at_quantile(0.9)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
        }
    }

    fn line(&self) -> String {
        if self.count == 0 {
            return "no samples".into();
        }
        format!(
            "p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  (n={})",
            ms(self.p50),
            ms(self.p90),
            ms(self.p99),
            ms(self.p999),
            ms(self.max),
            thousands(self.count)
        )
    }
}

impl Report {
    /// True when [`Report::failures`] is empty.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }

    /// The report as a table for people.
    pub fn render(&self) -> String {
        let s = &self.settings;
        let mut out = String::new();
        let shape = match self.scenario {
            Scenario::Pairs => format!("{} publisher → subscriber pairs", s.publishers),
            Scenario::Fanin => format!("{} publishers → 1 subscriber", s.publishers),
            Scenario::Fanout => format!("1 publisher → {} subscribers", s.subscribers),
            Scenario::Conns => format!("{} idle connections", s.connections),
        };
        let _ = writeln!(
            out,
            "tenantmq-bench {} · {shape} · MQTT {} over {} to {}:{}",
            self.scenario.name(),
            s.protocol,
            if s.tls { "TLS" } else { "TCP" },
            s.host,
            s.port
        );
        if self.scenario != Scenario::Conns {
            let rate = s.rate.map_or_else(
                || "max rate".to_owned(),
                |r| format!("{} msg/s per publisher", thousands(r.round() as u64)),
            );
            let _ = writeln!(
                out,
                "QoS {} · {} B payload · {rate} · window {:.2} s after {:.2} s warm-up · {} threads",
                s.qos, s.payload_bytes, self.window_secs, s.warmup_secs, s.threads
            );
        } else {
            let _ = writeln!(
                out,
                "held {:.2} s · {} threads",
                self.window_secs, s.threads
            );
        }
        let c = &self.connections;
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "connections  {} of {} opened in {:.2} s ({}/s), {} failed, {} lost",
            thousands(c.opened),
            thousands(c.planned),
            c.open_secs,
            thousands(c.opened_per_sec.round() as u64),
            c.failed,
            c.dropped
        );
        let _ = writeln!(out, "  connect    {}", c.connect_us.line());
        let _ = writeln!(out, "  CONNACK    {}", c.connack_us.line());
        if let Some(m) = &self.messages {
            let _ = writeln!(
                out,
                "published    {} ({}/s in the window)",
                thousands(m.published),
                thousands(m.published_per_sec.round() as u64)
            );
            let _ = writeln!(
                out,
                "delivered    {} ({}/s in the window) of {} expected: {} lost, {} duplicates{}",
                thousands(m.delivered),
                thousands(m.delivered_per_sec.round() as u64),
                thousands(m.expected),
                thousands(m.lost),
                thousands(m.duplicates),
                if m.foreign > 0 {
                    format!(", {} foreign", thousands(m.foreign))
                } else {
                    String::new()
                }
            );
        }
        if let Some(m) = &self.messages
            && m.drain_end == DrainEnd::Timeout
        {
            let _ = writeln!(
                out,
                "             (messages were still arriving when --drain ran out: some of the lost may be late)"
            );
        }
        if let Some(l) = &self.latency_us {
            let _ = writeln!(out, "latency      {}", l.line());
        }
        if let Some(b) = &self.broker {
            let _ = writeln!(
                out,
                "broker       {:.2} CPU-s in the window ({:.2} cores){}",
                b.cpu_secs,
                b.cpu_cores,
                b.msgs_per_cpu_sec.map_or_else(String::new, |m| format!(
                    ", {} msgs per CPU-second",
                    thousands(m.round() as u64)
                ))
            );
            let _ = writeln!(
                out,
                "  connect    {:.2} CPU-s{}",
                b.connect_cpu_secs,
                b.connects_per_cpu_sec.map_or_else(String::new, |r| format!(
                    ", {} connections per CPU-second",
                    thousands(r.round() as u64)
                ))
            );
            let _ = writeln!(
                out,
                "  RSS        {} before, {} at window start, {} at end ({:+.1} MiB){}",
                mib(b.rss_baseline_bytes),
                mib(b.rss_start_bytes),
                mib(b.rss_end_bytes),
                b.rss_delta_bytes as f64 / 1_048_576.0,
                b.rss_bytes_per_connection
                    .map_or_else(String::new, |p| format!(
                        ", {} bytes per connection",
                        thousands(p.round().max(0.0) as u64)
                    ))
            );
        }
        if let Some(t) = &self.load_tool {
            let _ = writeln!(
                out,
                "load tool    {:.2} CPU-s in the window ({:.2} cores), {} RSS; run took {:.1} s",
                t.cpu_secs,
                t.cpu_cores,
                mib(t.rss_bytes),
                self.elapsed_secs
            );
        }
        for e in &self.errors {
            let _ = writeln!(out, "error        {e}");
        }
        if self.failures.is_empty() {
            let _ = writeln!(out, "result       ok");
        } else {
            for f in &self.failures {
                let _ = writeln!(out, "FAILED       {f}");
            }
        }
        out
    }
}

/// Microseconds shown as milliseconds with three decimals.
fn ms(us: f64) -> String {
    format!("{:.3} ms", us / 1000.0)
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1_048_576.0)
}

/// `1234567` → `1,234,567`.
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (k, c) in digits.chars().enumerate() {
        if k > 0 && (digits.len() - k).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn percentiles_in_microseconds() {
        let mut h = crate::shard::histogram().unwrap();
        for v in 1..=1000u64 {
            h.record(v * 1000).unwrap();
        }
        let p = Percentiles::of(&h);
        assert_eq!(p.count, 1000);
        assert!((p.p50 - 500.0).abs() < 1.0, "{p:?}");
        assert!((p.max - 1000.0).abs() < 1.0, "{p:?}");
        assert_eq!(
            Percentiles::of(&crate::shard::histogram().unwrap()).count,
            0
        );
    }
}
