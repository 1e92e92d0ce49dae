//! Outside the data path, in front of hop 1: simulated devices. `tenantmq-bench` is the
//! project's MQTT load tool, the kind of thing emqtt-bench is for EMQX: it opens many
//! connections to any MQTT broker, publishes and subscribes through them, and reports
//! throughput, losses, latency percentiles and — given the broker's process ids — what the
//! broker spent in CPU and memory.
//!
//! It speaks MQTT through the project's one codec (`tenantmq-codec`), so it sends exactly the
//! bytes it means to, in batches: a handful of threads each drive many connections with a
//! hand-written poll loop (see `conn.rs`), encode many PUBLISH packets per `write`, decode
//! whole read buffers without allocating, and read the clock once per batch.
//!
//! # Scenarios
//! * `pairs` — P publishers, each with its own subscriber on its own topic.
//! * `fanin` — P publishers on P topics, one subscriber of a wildcard filter.
//! * `fanout` — one publisher, S subscribers of its topic.
//! * `conns` — C connections opened at `--connect-rate`, held idle for `--duration`.
//!
//! # Command line
//! `tenantmq-bench <pairs|fanin|fanout|conns> [flags]`
//!
//! | flag | default | meaning |
//! | --- | --- | --- |
//! | `--host`, `--port`/`-p` | `127.0.0.1`, `1883` | broker |
//! | `--protocol` | `3.1.1` | `3.1.1` or `5` |
//! | `--publishers` (`--pairs`) | 10 | pairs; fanin publishers |
//! | `--subscribers` | 10 | fanout subscribers |
//! | `--connections` | 1000 | conns connections |
//! | `--qos` | 0 | 0, 1 or 2, for publications and subscriptions |
//! | `--payload` | 64 | payload bytes, at least 16 |
//! | `--rate` | max | messages per second per publisher |
//! | `--inflight` | 100 | QoS 1/2 window per publisher, capped by the broker's Receive Maximum |
//! | `--duration` | `10s` | measured window (`conns`: idle hold); `500ms`, `2m`, `10` also work |
//! | `--warmup` | `2s` | traffic before the window, not measured |
//! | `--drain` | `5s` | wait for in-flight messages after the window (ends after 1 s without deliveries) |
//! | `--connect-rate` | 0 | connections per second; 0: as fast as possible, ≤ 256 handshakes in flight per thread |
//! | `--connect-timeout` | `10s` | TCP + TLS + CONNACK, and SUBACK |
//! | `--source-ips` | — | local addresses, round-robin: `127.0.0.1-127.0.0.50`, `a,b,c` |
//! | `--tls`, `--cafile`, `--sni`, `--insecure`, `--alpn` | off | TLS; `--cafile` or `--insecure` is required; no session resumption (every handshake is full) |
//! | `--client-id` | `bench-{run}-{i}` | template |
//! | `--username`, `--password` | — | templates, e.g. `acme/dev-{i}` |
//! | `--topic` | `bench/{run}/{i}` | template; the fanin filter replaces levels holding `{i}` by `+` |
//! | `--start-index` | 0 | first `{i}`, for several tool processes |
//! | `--clean` | `true` | Clean Start / Clean Session (`--clean false`; MQTT 5 then asks 300 s of session expiry) |
//! | `--keepalive` | 60 | seconds; the tool pings after half of it without sending |
//! | `--threads` | CPUs | threads driving connections |
//! | `--broker-pid` | — | broker process to measure, repeatable (summed) |
//! | `--json` | off | print the report as JSON on standard output |
//! | `--quiet`/`-q` | off | no progress lines on standard error |
//!
//! More than ~28,000 connections to one broker port need `--source-ips` (each local address
//! has its own ephemeral ports), and more open files than `ulimit -n` allows need a higher
//! limit or several tool processes with distinct `--start-index` (the tool warns).
//!
//! Templates: `{i}` is the client index (publishers first, then subscribers; see `plan.rs`)
//! or, in `--topic`, the publisher index; `{run}` is a six-hex-digit id of the run; `{{` and
//! `}}` are literal braces.
//!
//! The binary exits 0 when the run passed, 2 when it ran but [`Report::failures`] is not empty,
//! 1 when it could not run.
//!
//! # Measurement
//! Every payload starts with a 16-byte stamp (publisher, sequence number, send time; see
//! [`payload`]). Subscribers track sequence numbers per publisher ([`tracker`]): after the
//! run drains, *lost* is what was published minus what arrived, *duplicates* what arrived
//! twice. Rates and latencies cover only the window after the warm-up; latency is receive
//! time minus send time. At max rate the send time is the one clock reading of the message's
//! batch, and latency includes the time messages queue in socket buffers (a broker that reads
//! faster than it delivers builds seconds of backlog): use `--rate` for latency figures. At a
//! fixed rate the send time is the time the message was due whenever the broker held the
//! publisher back (full in-flight window, or not reading), so stalls are charged in full (no
//! coordinated omission), and otherwise the time it was encoded, which keeps the tool's 1 ms
//! timer resolution out of the figures (see `publisher.rs`). At QoS 0 losses are reported,
//! not failures. With `--broker-pid`, CPU time and RSS are read from
//! `/proc` before connecting, once all connections are open, and at both edges of the
//! window ([`broker_stats`]).
//!
//! # JSON report (`--json`)
//! One object; times in seconds, latencies in microseconds (floating point), sizes in bytes.
//!
//! * `tool` (`"tenantmq-bench"`), `version`, `run_id`, `scenario`
//!   (`pairs`/`fanin`/`fanout`/`conns`), `elapsed_secs`, `window_secs`
//! * `settings`: `host`, `port`, `tls`, `protocol` (`"3.1.1"`/`"5"`), `qos`,
//!   `payload_bytes`, `rate` (null: max), `publishers`, `subscribers`, `connections`,
//!   `inflight`, `duration_secs`, `warmup_secs`, `connect_rate` (null: unlimited),
//!   `source_ips`, `clean`, `keepalive`, `threads`
//! * `connections`: `planned`, `opened`, `failed`, `dropped`, `open_secs`,
//!   `opened_per_sec`, `connect_us` and `connack_us` (percentile objects)
//! * `messages` (null for `conns`): `published`, `published_in_window`, `expected`,
//!   `delivered`, `delivered_in_window`, `lost`, `duplicates`, `foreign`,
//!   `published_per_sec`, `delivered_per_sec`, `drain_end` (`"complete"`: all arrived;
//!   `"quiet"`: nothing more arrived for 1 s; `"timeout"`: `--drain` ran out while messages
//!   were still arriving, so `lost` may count late ones)
//! * `latency_us` (null for `conns`): a percentile object
//! * `broker` (null without `--broker-pid`): `pids`, `cpu_secs`, `cpu_cores`,
//!   `connect_cpu_secs`, `connects_per_cpu_sec`, `msgs_per_cpu_sec` (null for `conns`),
//!   `rss_baseline_bytes`, `rss_start_bytes`, `rss_end_bytes`, `rss_delta_bytes`,
//!   `rss_bytes_per_connection` (`conns` only)
//! * `load_tool` (null if `/proc/self` is unreadable): `cpu_secs`, `cpu_cores`, `rss_bytes` of
//!   the tool's process over the window — check that the tool was not the bottleneck
//! * `failures`: strings, empty when the run passed; `errors`: the first connection errors
//!
//! A percentile object is `{count, min, mean, p50, p90, p99, p999, max}`.
#![forbid(unsafe_code)]

pub mod args;
pub mod broker_stats;
mod conn;
pub mod error;
pub mod payload;
mod plan;
mod publisher;
pub mod report;
mod runner;
mod shard;
pub mod source_ips;
mod stream;
mod subscriber;
pub mod template;
pub mod tls;
pub mod tracker;

pub use args::{Args, Cli, Scenario};
pub use error::BenchError;
pub use report::Report;
pub use runner::run;

/// Runs the scenario and prints its report to stdout (the table, or JSON with `--json`);
/// progress and warnings go to stderr. Returns the process exit status: 0 passed, 2 ran with
/// failures, 1 could not run. Shared by `tenantmq-bench` and `tenantmq bench`.
pub async fn run_and_print(args: Args) -> u8 {
    let json = args.json;
    match run(args).await {
        Ok(report) => {
            if json {
                match serde_json::to_string_pretty(&report) {
                    Ok(s) => println!("{s}"),
                    Err(e) => {
                        eprintln!("tenantmq-bench: serialising the report: {e}");
                        return 1;
                    }
                }
            } else {
                print!("{}", report.render());
            }
            if report.passed() { 0 } else { 2 }
        }
        Err(e) => {
            eprintln!("tenantmq-bench: {e}");
            1
        }
    }
}
