//! SUBSCRIBE (spec v5 3.8, v3.1.1 3.8).

use bytestring::ByteString;

use crate::{QoS, UserProperty};

/// SUBSCRIBE.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subscribe {
    /// Packet Identifier (never 0).
    pub packet_id: u16,
    /// At least one topic filter with its options (`MQTT-3.8.3-2`).
    pub filters: Vec<SubscribeFilter>,
    /// MQTT 5 properties.
    pub properties: SubscribeProperties,
}

/// One topic filter of a SUBSCRIBE, as sent (validation is the engine's job, so that an invalid
/// filter can be answered per filter in SUBACK).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscribeFilter {
    /// The topic filter text (may start with `$share/`).
    pub filter: ByteString,
    /// Subscription options.
    pub options: SubscriptionOptions,
}

/// Subscription options byte (spec 3.8.3.1). MQTT 3.1.1 only has the QoS.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SubscriptionOptions {
    /// Maximum QoS.
    pub qos: QoS,
    /// No Local.
    pub no_local: bool,
    /// Retain As Published.
    pub retain_as_published: bool,
    /// Retain Handling.
    pub retain_handling: RetainHandling,
}

/// When retained messages are sent for a new subscription.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RetainHandling {
    /// 0: at subscribe time.
    #[default]
    SendOnSubscribe,
    /// 1: at subscribe time, only if the subscription did not exist.
    SendIfNew,
    /// 2: never.
    DoNotSend,
}

/// MQTT 5 SUBSCRIBE properties (spec 3.8.2.1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // Property names are the specification's.
pub struct SubscribeProperties {
    /// 1 to 268,435,455; 0 is a protocol error.
    pub subscription_identifier: Option<u32>,
    pub user_properties: Vec<UserProperty>,
}
