//! Errors: [`BenchError`] for a run that cannot start or finish, [`ConnError`] for one
//! connection (counted and reported, not fatal, except while setting up a message scenario).

use std::io;

use tenantmq_codec::{DecodeError, EncodeError, ReasonCode};

/// Why a run could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A flag has a value the run cannot use.
    #[error("invalid arguments: {0}")]
    Args(String),
    /// The broker's host name does not resolve.
    #[error("resolving {host}: {source}")]
    Resolve {
        /// The name.
        host: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// TLS could not be configured.
    #[error("TLS: {0}")]
    Tls(String),
    /// Clients of a message scenario could not connect or subscribe, so the run would
    /// measure something other than what was asked.
    #[error("{failed} of {total} connections could not be set up; first error: {first}")]
    Setup {
        /// Connections that failed.
        failed: u64,
        /// Connections attempted.
        total: u64,
        /// The first failure.
        first: String,
    },
    /// A broker process of `--broker-pid` cannot be read.
    #[error("reading broker process {pid}: {source}")]
    BrokerProcess {
        /// The process id.
        pid: u32,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A thread or runtime of the tool could not be started, or one stopped unexpectedly.
    #[error("load tool runtime: {0}")]
    Runtime(String),
}

/// Why one connection failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// A socket error.
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
    /// A step did not finish in time.
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The broker closed the connection.
    #[error("connection closed by the broker")]
    Closed,
    /// The broker refused CONNECT.
    #[error("CONNACK refused with reason code 0x{:02x}", .0.0)]
    Refused(ReasonCode),
    /// The broker refused the subscription.
    #[error("SUBACK refused with reason code 0x{:02x}", .0.0)]
    SubscribeRefused(ReasonCode),
    /// The broker sent DISCONNECT.
    #[error("DISCONNECT from the broker with reason code 0x{:02x}", .0.0)]
    Disconnected(ReasonCode),
    /// The broker sent something that does not decode.
    #[error("undecodable packet from the broker: {0}")]
    Decode(#[from] DecodeError),
    /// A packet could not be encoded (a template expanded to an over-long string, …).
    #[error("cannot encode: {0}")]
    Encode(#[from] EncodeError),
    /// The broker sent a packet that makes no sense at this point.
    #[error("unexpected packet from the broker: {0}")]
    Unexpected(&'static str),
}
