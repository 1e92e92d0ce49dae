//! The plan and quota model: what a tenant may consume.
//!
//! Plans give defaults ([`Quotas::for_plan`]); a tenant's [`QuotaOverrides`] win field by field
//! ([`Quotas::with_overrides`]). The control plane stores plan names and overrides; the data
//! plane enforces the resulting effective [`Quotas`]. This module is the one place the plan
//! numbers are defined.

use serde::{Deserialize, Serialize};

/// Effective limits for one tenant. Field names are part of the public HTTP contract
/// (`GET /v1/quotas`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quotas {
    /// Concurrent device connections for the tenant.
    pub max_connections: u32,
    /// New connections per second for the tenant.
    pub connect_rate_per_sec: u32,
    /// PUBLISH packets per second, tenant-wide.
    pub publish_rate_per_sec: u32,
    /// PUBLISH packets per second for one client.
    pub publish_rate_per_client: u32,
    /// Inbound bytes per second, tenant-wide.
    pub bandwidth_bytes_per_sec: u64,
    /// Inbound bytes per second for one client.
    pub bandwidth_bytes_per_client: u64,
    /// Largest MQTT packet a client may send (also the Maximum Packet Size in CONNACK).
    pub max_message_bytes: u32,
    /// Subscriptions one client may hold.
    pub max_subscriptions_per_client: u32,
    /// Subscriptions all the tenant's sessions may hold together.
    pub max_subscriptions_per_tenant: u32,
    /// Retained messages the tenant may hold.
    pub max_retained_messages: u32,
    /// Total payload bytes of the tenant's retained messages.
    pub max_retained_bytes: u64,
    /// Messages queued for one offline (or slow) persistent session.
    pub max_offline_queue_len: u32,
    /// Bytes (topic and payload) a session's queue may hold.
    pub max_offline_queue_bytes: u64,
    /// Unacknowledged QoS 1/2 messages in flight towards one client, and the Receive Maximum
    /// the server advertises.
    pub max_inflight: u16,
    /// Cap on the session expiry interval a client may request.
    pub max_session_expiry_secs: u32,
    /// Cap on the keep alive a client may request (MQTT 5 gets Server Keep Alive).
    pub max_keepalive_secs: u16,
    /// Levels (`/`-separated) a topic name or filter may have.
    pub max_topic_levels: u16,
    /// Topic Alias Maximum advertised to MQTT 5 clients.
    pub max_topic_alias: u16,
    /// Highest QoS the tenant may use (0, 1 or 2); advertised in CONNACK.
    pub maximum_qos: u8,
    /// Whether retained messages are available; advertised in CONNACK.
    pub retain_available: bool,
    /// Whether wildcard subscriptions are available; advertised in CONNACK.
    pub wildcard_subscriptions_available: bool,
    /// Whether shared subscriptions are available; advertised in CONNACK.
    pub shared_subscriptions_available: bool,
    /// Whether MQTT 5 subscription identifiers are available; advertised in CONNACK.
    pub subscription_identifiers_available: bool,
}

/// Per-tenant overrides set by the operator; each present field replaces the plan's value.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)] // Each field overrides the same-named field of `Quotas`.
pub struct QuotaOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_rate_per_sec: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_rate_per_sec: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_rate_per_client: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_bytes_per_sec: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth_bytes_per_client: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_message_bytes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_subscriptions_per_client: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_subscriptions_per_tenant: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retained_messages: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retained_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_offline_queue_len: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_offline_queue_bytes: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_inflight: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_session_expiry_secs: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_keepalive_secs: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_topic_levels: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_topic_alias: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_qos: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retain_available: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wildcard_subscriptions_available: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_subscriptions_available: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscription_identifiers_available: Option<bool>,
}

/// Error of [`Quotas::for_plan`] and [`QuotaOverrides::validate`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaError {
    /// No plan of that name.
    #[error("unknown plan {0:?}; plans are free, pro and enterprise")]
    UnknownPlan(String),
    /// An override outside what MQTT can express.
    #[error("{field}: {reason}")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// Why it is refused.
        reason: &'static str,
    },
}

/// The names of the seeded plans, cheapest first.
pub const PLAN_NAMES: [&str; 3] = ["free", "pro", "enterprise"];

/// The plan new tenants get at signup.
pub const DEFAULT_PLAN: &str = "free";

const KIB: u32 = 1024;
const MIB: u64 = 1024 * 1024;

impl Quotas {
    /// The defaults of a seeded plan.
    ///
    /// # Errors
    /// [`QuotaError::UnknownPlan`] for a name outside [`PLAN_NAMES`].
    pub fn for_plan(plan: &str) -> Result<Self, QuotaError> {
        match plan {
            "free" => Ok(Self::free()),
            "pro" => Ok(Self::pro()),
            "enterprise" => Ok(Self::enterprise()),
            other => Err(QuotaError::UnknownPlan(other.to_owned())),
        }
    }

    /// Free plan: enough for a prototype fleet.
    pub fn free() -> Self {
        Self {
            max_connections: 100,
            connect_rate_per_sec: 10,
            publish_rate_per_sec: 500,
            publish_rate_per_client: 20,
            bandwidth_bytes_per_sec: MIB,
            bandwidth_bytes_per_client: 64 * u64::from(KIB),
            max_message_bytes: 128 * KIB,
            max_subscriptions_per_client: 50,
            max_subscriptions_per_tenant: 1_000,
            max_retained_messages: 1_000,
            max_retained_bytes: 16 * MIB,
            max_offline_queue_len: 1_000,
            max_offline_queue_bytes: 4 * MIB,
            max_inflight: 20,
            max_session_expiry_secs: 24 * 3600,
            max_keepalive_secs: 1_200,
            max_topic_levels: 8,
            max_topic_alias: 10,
            maximum_qos: 2,
            retain_available: true,
            wildcard_subscriptions_available: true,
            shared_subscriptions_available: true,
            subscription_identifiers_available: true,
        }
    }

    /// Pro plan: production fleets of thousands of devices.
    pub fn pro() -> Self {
        Self {
            max_connections: 10_000,
            connect_rate_per_sec: 200,
            publish_rate_per_sec: 20_000,
            publish_rate_per_client: 100,
            bandwidth_bytes_per_sec: 32 * MIB,
            bandwidth_bytes_per_client: MIB,
            max_message_bytes: 256 * KIB,
            max_subscriptions_per_client: 200,
            max_subscriptions_per_tenant: 100_000,
            max_retained_messages: 100_000,
            max_retained_bytes: 1024 * MIB,
            max_offline_queue_len: 10_000,
            max_offline_queue_bytes: 64 * MIB,
            max_inflight: 100,
            max_session_expiry_secs: 7 * 24 * 3600,
            max_keepalive_secs: 3_600,
            max_topic_levels: 16,
            max_topic_alias: 100,
            maximum_qos: 2,
            retain_available: true,
            wildcard_subscriptions_available: true,
            shared_subscriptions_available: true,
            subscription_identifiers_available: true,
        }
    }

    /// Enterprise plan: very large fleets; most limits are there to protect the service.
    pub fn enterprise() -> Self {
        Self {
            max_connections: 1_000_000,
            connect_rate_per_sec: 2_000,
            publish_rate_per_sec: 1_000_000,
            publish_rate_per_client: 1_000,
            bandwidth_bytes_per_sec: 1024 * MIB,
            bandwidth_bytes_per_client: 16 * MIB,
            max_message_bytes: 1024 * KIB,
            max_subscriptions_per_client: 1_000,
            max_subscriptions_per_tenant: 10_000_000,
            max_retained_messages: 10_000_000,
            max_retained_bytes: 16 * 1024 * MIB,
            max_offline_queue_len: 100_000,
            max_offline_queue_bytes: 1024 * MIB,
            max_inflight: 1_000,
            max_session_expiry_secs: 30 * 24 * 3600,
            max_keepalive_secs: u16::MAX,
            max_topic_levels: 32,
            max_topic_alias: 1_000,
            maximum_qos: 2,
            retain_available: true,
            wildcard_subscriptions_available: true,
            shared_subscriptions_available: true,
            subscription_identifiers_available: true,
        }
    }

    /// The limits of the built-in `dev` tenant of `tenantmq standalone --dev-plain` and of
    /// benchmarks: only protocol maxima, so that the engine itself is what is exercised.
    pub fn unlimited() -> Self {
        Self {
            max_connections: u32::MAX,
            connect_rate_per_sec: u32::MAX,
            publish_rate_per_sec: u32::MAX,
            publish_rate_per_client: u32::MAX,
            bandwidth_bytes_per_sec: u64::MAX,
            bandwidth_bytes_per_client: u64::MAX,
            // 268,435,455 bytes of remaining length plus a five-byte fixed header.
            max_message_bytes: 268_435_460,
            max_subscriptions_per_client: u32::MAX,
            max_subscriptions_per_tenant: u32::MAX,
            max_retained_messages: u32::MAX,
            max_retained_bytes: u64::MAX,
            max_offline_queue_len: 100_000,
            max_offline_queue_bytes: u64::MAX,
            max_inflight: u16::MAX,
            max_session_expiry_secs: u32::MAX,
            max_keepalive_secs: u16::MAX,
            max_topic_levels: u16::MAX,
            max_topic_alias: u16::MAX,
            maximum_qos: 2,
            retain_available: true,
            wildcard_subscriptions_available: true,
            shared_subscriptions_available: true,
            subscription_identifiers_available: true,
        }
    }

    /// These quotas with `o`'s present fields replacing the plan's.
    pub fn with_overrides(mut self, o: &QuotaOverrides) -> Self {
        macro_rules! apply {
            ($($f:ident),*) => { $( if let Some(v) = o.$f { self.$f = v; } )* };
        }
        apply!(
            max_connections,
            connect_rate_per_sec,
            publish_rate_per_sec,
            publish_rate_per_client,
            bandwidth_bytes_per_sec,
            bandwidth_bytes_per_client,
            max_message_bytes,
            max_subscriptions_per_client,
            max_subscriptions_per_tenant,
            max_retained_messages,
            max_retained_bytes,
            max_offline_queue_len,
            max_offline_queue_bytes,
            max_inflight,
            max_session_expiry_secs,
            max_keepalive_secs,
            max_topic_levels,
            max_topic_alias,
            maximum_qos,
            retain_available,
            wildcard_subscriptions_available,
            shared_subscriptions_available,
            subscription_identifiers_available
        );
        self
    }
}

impl QuotaOverrides {
    /// Refuses overrides MQTT cannot honour.
    ///
    /// # Errors
    /// [`QuotaError::Invalid`] naming the first offending field.
    pub fn validate(&self) -> Result<(), QuotaError> {
        let bad = |field, reason| Err(QuotaError::Invalid { field, reason });
        if self.maximum_qos.is_some_and(|q| q > 2) {
            return bad("maximum_qos", "must be 0, 1 or 2");
        }
        if self.max_inflight == Some(0) {
            return bad("max_inflight", "must be at least 1 (MQTT Receive Maximum)");
        }
        if self.max_message_bytes.is_some_and(|m| m < 64) {
            return bad("max_message_bytes", "must be at least 64");
        }
        if self.max_topic_levels == Some(0) {
            return bad("max_topic_levels", "must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_plan_name_resolves_and_unknown_fails() {
        for p in PLAN_NAMES {
            assert!(Quotas::for_plan(p).is_ok(), "{p}");
        }
        assert_eq!(
            Quotas::for_plan("gold"),
            Err(QuotaError::UnknownPlan("gold".into()))
        );
    }

    #[test]
    fn plans_grow_monotonically() {
        let (f, p, e) = (Quotas::free(), Quotas::pro(), Quotas::enterprise());
        assert!(f.max_connections < p.max_connections && p.max_connections < e.max_connections);
        assert!(f.publish_rate_per_sec < p.publish_rate_per_sec);
        assert!(p.publish_rate_per_sec < e.publish_rate_per_sec);
        assert!(f.max_message_bytes < p.max_message_bytes);
    }

    #[test]
    fn overrides_replace_only_present_fields() {
        let o: QuotaOverrides =
            serde_json::from_str(r#"{"max_connections": 7, "retain_available": false}"#).unwrap();
        let q = Quotas::free().with_overrides(&o);
        assert_eq!(q.max_connections, 7);
        assert!(!q.retain_available);
        assert_eq!(q.max_inflight, Quotas::free().max_inflight);
    }

    #[test]
    fn overrides_reject_unknown_fields_and_bad_values() {
        assert!(serde_json::from_str::<QuotaOverrides>(r#"{"max_conections": 7}"#).is_err());
        let o = QuotaOverrides {
            maximum_qos: Some(3),
            ..Default::default()
        };
        assert!(o.validate().is_err());
        let o = QuotaOverrides {
            max_inflight: Some(0),
            ..Default::default()
        };
        assert!(o.validate().is_err());
        assert!(QuotaOverrides::default().validate().is_ok());
    }
}
