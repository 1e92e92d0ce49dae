//! From flags to a plan: the resolved broker address, the TLS connector, and the list of
//! connections each thread opens with their identities and roles.
//!
//! Client indices (`{i}` in the client id, user name and password templates), counted from
//! `--start-index`: in `pairs` and `fanin` the publishers come first (0..P) and the
//! subscribers follow; in `fanout` the publisher is 0 and the subscribers 1..=S; in `conns`
//! the connections are 0..C. In topics, `{i}` is the publisher index: pair k publishes and
//! subscribes on topic k, fanin publisher k on topic k, fanout on topic 0.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tenantmq_codec::{ProtocolVersion, QoS};
use tokio_rustls::TlsConnector;

use crate::BenchError;
use crate::args::{Args, Scenario};
use crate::payload::STAMP_LEN;
use crate::tls::{self, Verify};

/// Largest payload: the protocol's packet limit leaves a little less, and more is no benchmark.
const MAX_PAYLOAD: usize = 256 * 1024 * 1024;

/// Settings every connection of a run shares.
pub(crate) struct Params {
    pub addr: SocketAddr,
    pub tls: Option<TlsTarget>,
    pub version: ProtocolVersion,
    pub keepalive: u16,
    pub clean: bool,
    pub connect_timeout: Duration,
    pub qos: QoS,
    pub payload: usize,
    /// Nanoseconds between two messages of one publisher at a fixed rate.
    pub rate_interval_ns: Option<u64>,
    pub inflight: u16,
    /// Publishers in the run (a fixed-rate publisher's schedule is offset by its share of
    /// the interval, so that they do not all fire together).
    pub publishers: u32,
    /// Zero of every timestamp of the run.
    pub epoch: Instant,
    /// Time between two connection attempts of one thread, from `--connect-rate`.
    pub connect_interval: Option<Duration>,
}

/// Where TLS connects to.
pub(crate) struct TlsTarget {
    pub connector: TlsConnector,
    pub name: rustls::pki_types::ServerName<'static>,
}

/// One connection to open.
pub(crate) struct ConnSpec {
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub source_ip: Option<IpAddr>,
    pub role: RoleSpec,
}

/// What a connection does.
pub(crate) enum RoleSpec {
    /// Publishes on `topic` as publisher number `publisher`.
    Publisher { publisher: u32, topic: String },
    /// Subscribes to `filter`, expecting publishers `first..first + count`.
    Subscriber {
        filter: String,
        first: u32,
        count: u32,
    },
    /// Stays connected.
    Idle,
}

/// A run, ready to start.
pub(crate) struct Plan {
    pub params: Arc<Params>,
    /// Connections per thread.
    pub shards: Vec<Vec<ConnSpec>>,
    pub publishers: u32,
    pub subscribers: u32,
    pub idle: u32,
    /// Deliveries each published message should cause.
    pub fan: u64,
    pub run_id: String,
    pub threads: usize,
}

impl Plan {
    /// Connections in the run.
    pub fn connections(&self) -> u64 {
        u64::from(self.publishers) + u64::from(self.subscribers) + u64::from(self.idle)
    }
}

/// Checks the flags, resolves the broker and lays out the connections.
///
/// # Errors
/// [`BenchError::Args`], [`BenchError::Resolve`] or [`BenchError::Tls`].
pub(crate) async fn build(args: &Args, epoch: Instant) -> Result<Plan, BenchError> {
    let bad = |m: String| Err(BenchError::Args(m));
    if args.payload < STAMP_LEN || args.payload > MAX_PAYLOAD {
        return bad(format!(
            "--payload must be between {STAMP_LEN} and {MAX_PAYLOAD} bytes"
        ));
    }
    let rate_interval_ns = match args.rate {
        None => None,
        Some(r) if r.is_finite() && r > 0.0 => Some(((1e9 / r) as u64).max(1)),
        Some(r) => return bad(format!("--rate must be a positive number, not {r}")),
    };
    if args.duration.is_zero() {
        return bad("--duration must be positive".into());
    }
    if !args.connect_rate.is_finite() || args.connect_rate < 0.0 {
        return bad("--connect-rate must be 0 (unlimited) or positive".into());
    }
    if args.tls && args.cafile.is_none() && !args.insecure {
        return bad("--tls needs --cafile or --insecure".into());
    }
    if args.topic.as_str().contains(['+', '#']) {
        return bad("--topic must not contain wildcards".into());
    }
    let (publishers, subscribers, idle) = match args.scenario {
        Scenario::Pairs => (args.publishers, args.publishers, 0),
        Scenario::Fanin => (args.publishers, 1, 0),
        Scenario::Fanout => (1, args.subscribers, 0),
        Scenario::Conns => (0, 0, args.connections),
    };
    if publishers + subscribers + idle == 0
        || (args.scenario != Scenario::Conns && (publishers == 0 || subscribers == 0))
    {
        return bad("the scenario needs at least one connection of each kind".into());
    }

    let addr = resolve(&args.host, args.port).await?;
    let tls = if args.tls {
        let verify = match &args.cafile {
            Some(path) if !args.insecure => Verify::CaFile(path),
            _ => Verify::Nothing,
        };
        Some(TlsTarget {
            connector: TlsConnector::from(tls::client_config(verify, args.alpn.as_deref())?),
            name: tls::server_name(&args.host, args.sni.as_deref())?,
        })
    } else {
        None
    };

    let total = u64::from(publishers) + u64::from(subscribers) + u64::from(idle);
    let threads = match args.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(usize::try_from(total).unwrap_or(usize::MAX))
    .max(1);
    let connect_interval = (args.connect_rate > 0.0)
        .then(|| Duration::from_secs_f64(threads as f64 / args.connect_rate));

    let run_id = run_id();
    let mut specs = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    let start = args.start_index;
    let conn = |index: u64, role: RoleSpec| ConnSpec {
        client_id: args.client_id.expand(index, &run_id),
        username: args.username.as_ref().map(|t| t.expand(index, &run_id)),
        password: args.password.as_ref().map(|t| t.expand(index, &run_id)),
        source_ip: args.source_ip(index),
        role,
    };
    let topic = |k: u32| args.topic.expand(u64::from(k), &run_id);
    match args.scenario {
        Scenario::Pairs => {
            let p = u64::from(publishers);
            for k in 0..publishers {
                let role = RoleSpec::Publisher {
                    publisher: k,
                    topic: topic(k),
                };
                specs.push(conn(start + u64::from(k), role));
            }
            for k in 0..publishers {
                let role = RoleSpec::Subscriber {
                    filter: topic(k),
                    first: k,
                    count: 1,
                };
                specs.push(conn(start + p + u64::from(k), role));
            }
        }
        Scenario::Fanin => {
            for k in 0..publishers {
                let role = RoleSpec::Publisher {
                    publisher: k,
                    topic: topic(k),
                };
                specs.push(conn(start + u64::from(k), role));
            }
            let filter = args
                .topic
                .wildcard_filter(&run_id)
                .map_err(|e| BenchError::Args(e.to_string()))?;
            let role = RoleSpec::Subscriber {
                filter,
                first: 0,
                count: publishers,
            };
            specs.push(conn(start + u64::from(publishers), role));
        }
        Scenario::Fanout => {
            let role = RoleSpec::Publisher {
                publisher: 0,
                topic: topic(0),
            };
            specs.push(conn(start, role));
            for k in 0..subscribers {
                let role = RoleSpec::Subscriber {
                    filter: topic(0),
                    first: 0,
                    count: 1,
                };
                specs.push(conn(start + 1 + u64::from(k), role));
            }
        }
        Scenario::Conns => {
            for k in 0..idle {
                specs.push(conn(start + u64::from(k), RoleSpec::Idle));
            }
        }
    }
    let mut shards: Vec<Vec<ConnSpec>> = (0..threads).map(|_| Vec::new()).collect();
    for (k, spec) in specs.into_iter().enumerate() {
        shards[k % threads].push(spec);
    }

    let qos = QoS::from_u8(args.qos).unwrap_or_default();
    Ok(Plan {
        params: Arc::new(Params {
            addr,
            tls,
            version: args.protocol.0,
            keepalive: args.keepalive,
            clean: args.clean,
            connect_timeout: args.connect_timeout,
            qos,
            payload: args.payload,
            rate_interval_ns,
            inflight: args.inflight,
            publishers,
            epoch,
            connect_interval,
        }),
        shards,
        publishers,
        subscribers,
        idle,
        fan: match args.scenario {
            Scenario::Fanout => u64::from(subscribers),
            _ => 1,
        },
        run_id,
        threads,
    })
}

async fn resolve(host: &str, port: u16) -> Result<SocketAddr, BenchError> {
    let err = |source| BenchError::Resolve {
        host: host.to_owned(),
        source,
    };
    tokio::net::lookup_host((host, port))
        .await
        .map_err(err)?
        .next()
        .ok_or_else(|| err(std::io::Error::other("no address")))
}

/// Six hex digits that differ between runs: std's per-process random hash keys, over the
/// clock for good measure.
fn run_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    format!("{:06x}", h.finish() & 0xFF_FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn plan(args: &[&str]) -> Result<Plan, BenchError> {
        let mut all = vec!["bench"];
        all.extend_from_slice(args);
        build(&Args::try_parse_from(all).unwrap(), Instant::now()).await
    }

    fn roles(p: &Plan) -> Vec<(String, String)> {
        let mut out: Vec<_> = p
            .shards
            .iter()
            .flatten()
            .map(|s| {
                let role = match &s.role {
                    RoleSpec::Publisher { publisher, topic } => format!("pub {publisher} {topic}"),
                    RoleSpec::Subscriber {
                        filter,
                        first,
                        count,
                    } => format!("sub {filter} {first}+{count}"),
                    RoleSpec::Idle => "idle".into(),
                };
                (s.client_id.clone(), role)
            })
            .collect();
        out.sort();
        out
    }

    #[tokio::test]
    async fn lays_out_scenarios() {
        let p = plan(&[
            "pairs",
            "--publishers",
            "2",
            "--client-id",
            "c{i}",
            "--topic",
            "t/{i}",
            "--threads",
            "2",
        ])
        .await
        .unwrap();
        assert_eq!(p.shards.len(), 2);
        assert_eq!(
            roles(&p),
            [
                ("c0".into(), "pub 0 t/0".into()),
                ("c1".into(), "pub 1 t/1".into()),
                ("c2".into(), "sub t/0 0+1".into()),
                ("c3".into(), "sub t/1 1+1".into()),
            ]
        );
        let p = plan(&[
            "fanin",
            "--publishers",
            "2",
            "--client-id",
            "c{i}",
            "--topic",
            "t/{i}/x",
        ])
        .await
        .unwrap();
        assert_eq!(roles(&p)[2], ("c2".into(), "sub t/+/x 0+2".into()));
        assert_eq!(p.fan, 1);
        let p = plan(&[
            "fanout",
            "--subscribers",
            "3",
            "--client-id",
            "c{i}",
            "--topic",
            "t/{i}",
            "--start-index",
            "10",
        ])
        .await
        .unwrap();
        assert_eq!(p.fan, 3);
        assert_eq!(roles(&p)[0], ("c10".into(), "pub 0 t/0".into()));
        assert_eq!(roles(&p)[3], ("c13".into(), "sub t/0 0+1".into()));
        let p = plan(&["conns", "--connections", "5", "--threads", "8"])
            .await
            .unwrap();
        assert_eq!((p.threads, p.connections()), (5, 5));
    }

    #[tokio::test]
    async fn rejects_bad_flags() {
        assert!(matches!(
            plan(&["pairs", "--payload", "15"]).await,
            Err(BenchError::Args(_))
        ));
        assert!(matches!(
            plan(&["pairs", "--rate", "0"]).await,
            Err(BenchError::Args(_))
        ));
        assert!(matches!(
            plan(&["pairs", "--tls"]).await,
            Err(BenchError::Args(_))
        ));
        assert!(matches!(
            plan(&["pairs", "--topic", "a/+"]).await,
            Err(BenchError::Args(_))
        ));
        assert!(matches!(
            plan(&["pairs", "--publishers", "0"]).await,
            Err(BenchError::Args(_))
        ));
        assert!(plan(&["pairs", "--tls", "--insecure"]).await.is_ok());
    }
}
