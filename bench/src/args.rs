//! The command line: one [`Args`] struct, shared by the `tenantmq-bench` binary and (flattened)
//! by any other binary that wants a `bench` subcommand.
//!
//! Flag names and defaults are part of the tool's contract with scripts: change them only with
//! the crate documentation's CLI reference.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use tenantmq_codec::ProtocolVersion;

use crate::source_ips::SourceIps;
use crate::template::Template;

/// What traffic a run generates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// P publisher → subscriber pairs, one topic per pair.
    Pairs,
    /// P publishers, each on its own topic, → 1 subscriber of a wildcard filter.
    Fanin,
    /// 1 publisher → S subscribers of the same topic.
    Fanout,
    /// C connections opened at `--connect-rate` and held idle for `--duration`.
    Conns,
}

impl Scenario {
    /// The scenario's command-line name.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Pairs => "pairs",
            Self::Fanin => "fanin",
            Self::Fanout => "fanout",
            Self::Conns => "conns",
        }
    }
}

/// The MQTT protocol version to speak, as given on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Protocol(pub ProtocolVersion);

impl Protocol {
    /// `"3.1.1"` or `"5"`, as in the report.
    pub const fn name(self) -> &'static str {
        match self.0 {
            ProtocolVersion::V311 => "3.1.1",
            ProtocolVersion::V5 => "5",
        }
    }

    fn parse(s: &str) -> Result<Self, String> {
        match s {
            "3.1.1" | "311" | "4" => Ok(Self(ProtocolVersion::V311)),
            "5" | "5.0" => Ok(Self(ProtocolVersion::V5)),
            _ => Err(format!("unknown MQTT version {s:?} (use 3.1.1 or 5)")),
        }
    }
}

/// Flags of a load run. See the crate documentation for the reference.
#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Scenario: pairs, fanin, fanout or conns.
    #[arg(value_enum)]
    pub scenario: Scenario,

    /// Broker host name or address.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Broker port.
    #[arg(long, short = 'p', default_value_t = 1883)]
    pub port: u16,
    /// MQTT version: 3.1.1 or 5.
    #[arg(long, value_parser = Protocol::parse, default_value = "3.1.1")]
    pub protocol: Protocol,

    /// Publishers (pairs: number of pairs; fanin: publishers into the one subscriber).
    #[arg(long, visible_alias = "pairs", default_value_t = 10)]
    pub publishers: u32,
    /// Subscribers of the fanout scenario.
    #[arg(long, default_value_t = 10)]
    pub subscribers: u32,
    /// Connections of the conns scenario.
    #[arg(long, default_value_t = 1000)]
    pub connections: u32,

    /// QoS of publications and subscriptions: 0, 1 or 2.
    #[arg(long, value_parser = clap::value_parser!(u8).range(0..=2), default_value_t = 0)]
    pub qos: u8,
    /// Payload size in bytes (at least 16: publisher, sequence number, send time).
    #[arg(long, default_value_t = 64)]
    pub payload: usize,
    /// Messages per second per publisher; without it every publisher sends as fast as it can.
    #[arg(long)]
    pub rate: Option<f64>,
    /// QoS 1/2 messages a publisher keeps unacknowledged (capped by the server's Receive
    /// Maximum under MQTT 5).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u16).range(1..))]
    pub inflight: u16,

    /// Length of the measured window (e.g. 10s, 500ms, 2m).
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub duration: Duration,
    /// Traffic before the measured window, not counted in rates and latencies.
    #[arg(long, value_parser = parse_duration, default_value = "2s")]
    pub warmup: Duration,
    /// After the window: how long to wait for messages still in flight before counting the
    /// missing ones as lost.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub drain: Duration,

    /// Connections opened per second (all scenarios); 0 opens them as fast as the broker
    /// accepts, at most 256 handshakes in progress per thread.
    #[arg(long, default_value_t = 0.0)]
    pub connect_rate: f64,
    /// Deadline for TCP connect, TLS handshake and CONNACK, and for SUBACK.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub connect_timeout: Duration,
    /// Local addresses to bind connections to, round-robin, e.g. 127.0.0.1-127.0.0.50 or
    /// 127.0.0.2,127.0.0.3 — each address has its own ~28k ephemeral ports.
    #[arg(long, value_parser = SourceIps::parse)]
    pub source_ips: Option<SourceIps>,

    /// Connect with TLS.
    #[arg(long)]
    pub tls: bool,
    /// CA certificates (PEM) that verify the broker's certificate.
    #[arg(long, requires = "tls")]
    pub cafile: Option<PathBuf>,
    /// Server name sent in SNI and verified in the certificate (default: --host).
    #[arg(long, requires = "tls")]
    pub sni: Option<String>,
    /// Do not verify the broker's certificate (self-signed references).
    #[arg(long, requires = "tls")]
    pub insecure: bool,
    /// ALPN protocol to offer (e.g. mqtt); none by default.
    #[arg(long, requires = "tls")]
    pub alpn: Option<String>,

    /// Client identifier template: {i} is the client index, {run} the run id.
    #[arg(long, value_parser = Template::parse, default_value = "bench-{run}-{i}")]
    pub client_id: Template,
    /// User name template ({i}, {run}), e.g. acme/dev-{i}.
    #[arg(long, value_parser = Template::parse)]
    pub username: Option<Template>,
    /// Password template ({i}, {run}).
    #[arg(long, value_parser = Template::parse)]
    pub password: Option<Template>,
    /// Topic template: {i} is the publisher index, {run} the run id. The fanin subscriber
    /// subscribes to it with every level holding {i} replaced by +.
    #[arg(long, value_parser = Template::parse, default_value = "bench/{run}/{i}")]
    pub topic: Template,
    /// First client index ({i}), to give several tool processes distinct identities.
    #[arg(long, default_value_t = 0)]
    pub start_index: u64,
    /// Clean Start / Clean Session flag.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub clean: bool,
    /// Keep alive in seconds (0 disables it).
    #[arg(long, default_value_t = 60)]
    pub keepalive: u16,

    /// Threads driving connections (0: one per CPU).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// A broker process to measure (CPU time and RSS from /proc); repeat for several.
    #[arg(long = "broker-pid")]
    pub broker_pids: Vec<u32>,
    /// Print the report as JSON on standard output.
    #[arg(long)]
    pub json: bool,
    /// No progress lines on standard error.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

/// The `tenantmq-bench` command line: [`Args`] at the top level. A flag given twice takes
/// its last value, so scripts can append overrides to a common set of flags.
#[derive(Parser, Debug)]
#[command(
    name = "tenantmq-bench",
    version,
    about = "MQTT load tool of tenantmq",
    args_override_self = true
)]
pub struct Cli {
    /// The run's flags.
    #[command(flatten)]
    pub args: Args,
}

impl Args {
    /// Parses flags as the binary does; the first item is the program name.
    ///
    /// # Errors
    /// clap's error for unknown or invalid flags.
    pub fn try_parse_from<I, T>(iter: I) -> Result<Self, clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        Cli::try_parse_from(iter).map(|cli| cli.args)
    }

    /// The source address of client `index`, if `--source-ips` was given.
    pub fn source_ip(&self, index: u64) -> Option<IpAddr> {
        self.source_ips.as_ref().map(|ips| ips.get(index))
    }
}

/// Parses `10`, `10s`, `1.5s`, `500ms` or `2m` into a [`Duration`] (a bare number is seconds).
///
/// # Errors
/// A message naming the bad value.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (number, scale) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("bad duration {s:?} (e.g. 10s, 500ms, 2m)"))?;
    Duration::try_from_secs_f64(value * scale).map_err(|_| format!("bad duration {s:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn defaults_and_flags() {
        let a = Args::try_parse_from(["b", "pairs"]).unwrap();
        assert_eq!(a.scenario, Scenario::Pairs);
        assert_eq!((a.port, a.qos, a.payload, a.publishers), (1883, 0, 64, 10));
        assert_eq!(a.protocol, Protocol(ProtocolVersion::V311));
        assert!(a.clean && !a.tls && a.rate.is_none());

        let a = Args::try_parse_from([
            "b",
            "fanout",
            "--protocol",
            "5",
            "--qos",
            "2",
            "--clean",
            "false",
            "--broker-pid",
            "1",
            "--broker-pid",
            "2",
            "--tls",
            "--insecure",
            "--username",
            "acme/dev-{i}",
            "--source-ips",
            "127.0.0.1-127.0.0.3",
        ])
        .unwrap();
        assert_eq!(a.protocol.name(), "5");
        assert_eq!(a.qos, 2);
        assert!(!a.clean);
        assert_eq!(a.broker_pids, [1, 2]);
        assert_eq!(a.source_ip(4), Some("127.0.0.2".parse().unwrap()));
        assert!(Args::try_parse_from(["b", "pairs", "--qos", "3"]).is_err());
        assert!(Args::try_parse_from(["b", "pairs", "--insecure"]).is_err());
        assert!(Args::try_parse_from(["b", "pairs", "--topic", "a/{x}"]).is_err());
    }
}
