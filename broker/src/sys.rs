//! The tenant's own `$SYS` topics: statistics published by its engine, and its clients'
//! connect/disconnect events.
//!
//! Every engine serves exactly one tenant and publishes into its own topic tree, so a tenant's
//! `$SYS/#` subscribers only ever see that tenant's numbers — isolation by construction, not by
//! filtering. Clients cannot publish to `$SYS` (0x87), and a `#` or `+/…` subscription does
//! not match it (`MQTT-4.7.2-1`): only a subscription starting with `$SYS` receives them.
//!
//! Statistics are retained QoS 0 messages republished every [`SYS_INTERVAL`] (configurable
//! for tests); a new subscriber gets the latest values at once. They are kept beside the
//! tenant's retained messages but counted in neither its retained quota nor its usage: the
//! traffic is the broker's, not the tenant's. Events are QoS 0, not retained, with a small JSON
//! payload (`{"client_id","username","protocol","reason"}`).
//!
//! | Topic | Payload |
//! | --- | --- |
//! | `$SYS/broker/clients/connected` | devices connected now |
//! | `$SYS/broker/clients/sessions` | sessions held (connected and offline persistent) |
//! | `$SYS/broker/messages/received` | PUBLISH received since the engine started |
//! | `$SYS/broker/messages/sent` | PUBLISH delivered since the engine started |
//! | `$SYS/broker/messages/dropped` | deliveries dropped since the engine started |
//! | `$SYS/broker/bytes/received`, `…/sent` | payload bytes since the engine started |
//! | `$SYS/broker/subscriptions/count` | subscriptions held |
//! | `$SYS/broker/retained/count` | retained messages (without `$SYS`) |
//! | `$SYS/broker/rejections` | refusals by a limit since the engine started |
//! | `$SYS/broker/quota/connections` | `used/max` |
//! | `$SYS/broker/quota/retained` | `used/max` |
//! | `$SYS/broker/quota/message_rate` | `{"rate": …, "limit": …}` messages per second over the last interval |
//! | `$SYS/events/clients/connected` | `{"client_id","username","protocol"}` |
//! | `$SYS/events/clients/disconnected` | `{"client_id","username","protocol","reason"}` |

use std::fmt::Write as _;
use std::time::Duration;

use bytes::Bytes;
use bytestring::ByteString;
use tenantmq_codec::{QoS, TopicName};
use tenantmq_common::link::CloseReason;
use tokio::time::Instant;

use crate::engine::{Close, Engine};
use crate::message::Message;

/// How often an engine republishes its `$SYS` statistics.
pub const SYS_INTERVAL: Duration = Duration::from_secs(10);

/// `$SYS` state of one engine.
#[derive(Debug)]
pub(crate) struct SysState {
    /// Republishing period.
    pub interval: Duration,
    /// When the statistics were last published, and `messages_in` then (for the rate).
    last: Option<(Instant, u64)>,
    /// Retained `$SYS` topics, so that the tenant's retained count can leave them out.
    pub retained_topics: usize,
}

impl SysState {
    /// `$SYS` publishing every `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            last: None,
            retained_topics: 0,
        }
    }
}

impl Engine {
    /// Retained messages of the tenant, without the engine's own `$SYS` topics.
    pub(crate) fn tenant_retained_count(&self) -> usize {
        let sys = self.sys.as_ref().map_or(0, |s| s.retained_topics);
        self.retained.len().saturating_sub(sys)
    }

    /// Publishes the statistics (retained, QoS 0) to the tenant's `$SYS` subscribers.
    pub(crate) fn publish_sys_stats(&mut self, now: Instant) {
        let Some(sys) = self.sys.as_mut() else {
            return;
        };
        let rate = match sys.last {
            Some((at, before)) => {
                let secs = now.saturating_duration_since(at).as_secs_f64();
                if secs > 0.0 {
                    self.stats.messages_in.saturating_sub(before) as f64 / secs
                } else {
                    0.0
                }
            }
            None => 0.0,
        };
        sys.last = Some((now, self.stats.messages_in));
        let sessions = self.slots.iter().filter(|s| s.session.is_some()).count();
        let subscriptions = self.subscription_count;
        let s = &self.stats;
        let q = &self.quotas;
        let retained = self.tenant_retained_count();
        let values: [(&'static str, String); 13] = [
            (
                "$SYS/broker/clients/connected",
                self.connected().to_string(),
            ),
            ("$SYS/broker/clients/sessions", sessions.to_string()),
            ("$SYS/broker/messages/received", s.messages_in.to_string()),
            ("$SYS/broker/messages/sent", s.messages_out.to_string()),
            (
                "$SYS/broker/messages/dropped",
                s.messages_dropped.to_string(),
            ),
            ("$SYS/broker/bytes/received", s.bytes_in.to_string()),
            ("$SYS/broker/bytes/sent", s.bytes_out.to_string()),
            ("$SYS/broker/subscriptions/count", subscriptions.to_string()),
            ("$SYS/broker/retained/count", retained.to_string()),
            ("$SYS/broker/rejections", s.rejections.total().to_string()),
            (
                "$SYS/broker/quota/connections",
                format!("{}/{}", self.connected(), q.max_connections),
            ),
            (
                "$SYS/broker/quota/retained",
                format!("{retained}/{}", q.max_retained_messages),
            ),
            (
                "$SYS/broker/quota/message_rate",
                format!(
                    "{{\"rate\":{rate:.1},\"limit\":{}}}",
                    q.publish_rate_per_sec
                ),
            ),
        ];
        for (topic, payload) in values {
            self.publish_sys(topic, payload.into_bytes().into(), true, now);
        }
    }

    /// The connect event of the session in `slot` (just accepted).
    pub(crate) fn sys_connected(&mut self, slot: u32, now: Instant) {
        if self.sys.is_none() {
            return;
        }
        if let Some(payload) = self.client_event(slot, None) {
            self.publish_sys("$SYS/events/clients/connected", payload, false, now);
        }
    }

    /// The disconnect event of the session in `slot`, about to be closed `how`.
    pub(crate) fn sys_disconnected(&mut self, slot: u32, how: Close, now: Instant) {
        if self.sys.is_none() {
            return;
        }
        let reason = match how {
            Close::Link(CloseReason::ConnectionLost) => "connection_lost",
            Close::Link(CloseReason::KeepAliveTimeout) => "keepalive_timeout",
            Close::Link(CloseReason::Protocol(_)) | Close::Violation(_) => "protocol_error",
            Close::Link(CloseReason::ServerShutdown) | Close::Shutdown => "server_shutdown",
            Close::ClientDisconnect { .. } => "client_disconnect",
            Close::TakenOver => "session_taken_over",
        };
        let reason = match how {
            Close::Violation(rc) if rc == tenantmq_codec::ReasonCode::ADMINISTRATIVE_ACTION => {
                "administrative_action"
            }
            _ => reason,
        };
        if let Some(payload) = self.client_event(slot, Some(reason)) {
            self.publish_sys("$SYS/events/clients/disconnected", payload, false, now);
        }
    }

    /// `{"client_id","username","protocol"[,"reason"]}` of the connection in `slot`.
    fn client_event(&self, slot: u32, reason: Option<&str>) -> Option<Bytes> {
        let session = self.session(slot)?;
        let conn = session.conn.as_ref()?;
        let mut out = String::with_capacity(96);
        out.push_str("{\"client_id\":");
        json_string(&mut out, &session.client_id);
        out.push_str(",\"username\":");
        match &conn.username {
            Some(u) => json_string(&mut out, u),
            None => out.push_str("null"),
        }
        let protocol = match conn.version.level() {
            5 => "5.0",
            _ => "3.1.1",
        };
        let _ = write!(out, ",\"protocol\":\"{protocol}\"");
        if let Some(r) = reason {
            let _ = write!(out, ",\"reason\":\"{r}\"");
        }
        out.push('}');
        Some(out.into_bytes().into())
    }

    /// Publishes a broker message under `$SYS` without counting it as the tenant's traffic.
    fn publish_sys(&mut self, topic: &'static str, payload: Bytes, retain: bool, now: Instant) {
        let Ok(topic) = TopicName::new(ByteString::from_static(topic)) else {
            return;
        };
        let msg = Message {
            topic,
            payload,
            qos: QoS::AtMostOnce,
            retain,
            props: None,
            expires_at: None,
        };
        if retain {
            // Straight into the tree, not through `store_retained`: `$SYS` is not the
            // tenant's retained data and must not use its retained-bytes quota.
            if self.retained.insert(&msg.topic, msg.clone()).is_none()
                && let Some(sys) = self.sys.as_mut()
            {
                sys.retained_topics += 1;
            }
        }
        // Deliveries of `$SYS` are not counted as sent (see `deliver`); drops neither.
        let dropped = self.stats.messages_dropped;
        self.route(&msg, None, now);
        self.stats.messages_dropped = dropped;
    }
}

/// Whether `topic` is in the broker's own `$SYS` tree. Checks the first byte first: almost
/// every topic is decided there, so the delivery path pays one comparison.
pub(crate) fn is_sys(topic: &TopicName) -> bool {
    let t = topic.as_str();
    t.as_bytes().first() == Some(&b'$') && (t == "$SYS" || t.starts_with("$SYS/"))
}

/// Appends `s` as a JSON string.
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        let mut out = String::new();
        json_string(&mut out, "a\"b\\c\nd");
        assert_eq!(out, r#""a\"b\\c\u000ad""#);
    }
}
