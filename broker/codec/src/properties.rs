//! MQTT 5 properties (spec 2.2.2): identifiers, and reading and writing the property block.
//!
//! Reading is generic: [`read_properties`] walks a block and hands each property, already
//! typed and checked, to the packet's decoder, which stores it in its `*Properties` struct.
//! The generic walk enforces the rules every packet shares:
//! * an unknown identifier, or one not valid for the packet, is malformed (spec 2.2.2.2);
//! * a property other than User Property (and Subscription Identifier in PUBLISH) appearing
//!   twice is a protocol error (each property's "It is a Protocol Error to include … more than
//!   once");
//! * values the specification forbids are protocol errors: Receive Maximum, Maximum Packet
//!   Size, Topic Alias or Subscription Identifier of 0 (3.1.2.11.3, 3.1.2.11.4, 3.3.2.3.4,
//!   3.3.2.3.8), and a byte flag other than 0 or 1 (Payload Format Indicator, Request Problem
//!   / Response Information, Maximum QoS, the CONNACK availability flags);
//! * a block running past its packet is malformed.
//!
//! Writing is generic too: each `*Properties` struct lists its fields once to a
//! [`PropertySink`]; one sink measures (and validates, so encoding fails before writing
//! anything), the other writes. The measured and the written length therefore cannot differ.
//!
//! The tests are in `tests/properties.rs` (public API only), keeping this file to its tables.

use bytes::{BufMut, Bytes, BytesMut};
use bytestring::ByteString;

use crate::frame::{MAX_REMAINING_LENGTH, varint_len};
use crate::primitives::{MAX_FIELD_LEN, Reader, put_field, put_varint};
use crate::{DecodeError, EncodeError, QoS};

/// A property identifier (spec 2.2.2.2, table 2-4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[allow(missing_docs)] // The names are the specification's.
pub enum PropertyId {
    PayloadFormatIndicator = 0x01,
    MessageExpiryInterval = 0x02,
    ContentType = 0x03,
    ResponseTopic = 0x08,
    CorrelationData = 0x09,
    SubscriptionIdentifier = 0x0B,
    SessionExpiryInterval = 0x11,
    AssignedClientIdentifier = 0x12,
    ServerKeepAlive = 0x13,
    AuthenticationMethod = 0x15,
    AuthenticationData = 0x16,
    RequestProblemInformation = 0x17,
    WillDelayInterval = 0x18,
    RequestResponseInformation = 0x19,
    ResponseInformation = 0x1A,
    ServerReference = 0x1C,
    ReasonString = 0x1F,
    ReceiveMaximum = 0x21,
    TopicAliasMaximum = 0x22,
    TopicAlias = 0x23,
    MaximumQos = 0x24,
    RetainAvailable = 0x25,
    UserProperty = 0x26,
    MaximumPacketSize = 0x27,
    WildcardSubscriptionAvailable = 0x28,
    SubscriptionIdentifierAvailable = 0x29,
    SharedSubscriptionAvailable = 0x2A,
}

/// The wire type of a property's value (spec 2.2.2.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PropertyType {
    /// Byte.
    Byte,
    /// Two Byte Integer.
    TwoByte,
    /// Four Byte Integer.
    FourByte,
    /// Variable Byte Integer.
    VarInt,
    /// UTF-8 Encoded String.
    String,
    /// Binary Data.
    Binary,
    /// UTF-8 String Pair.
    StringPair,
}

/// The packet (or the will) a property block belongs to, which decides the identifiers it may
/// hold. The four publish acknowledgements share one set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // The names are the specification's packet names.
pub enum PropertyContext {
    Connect,
    ConnAck,
    Publish,
    Will,
    Ack,
    Subscribe,
    SubAck,
    Unsubscribe,
    UnsubAck,
    Disconnect,
    Auth,
}

impl PropertyContext {
    const fn bit(self) -> u16 {
        1 << self as u16
    }
}

mod ctx {
    use super::PropertyContext as C;
    pub const CONNECT: u16 = C::Connect.bit();
    pub const CONNACK: u16 = C::ConnAck.bit();
    pub const PUBLISH: u16 = C::Publish.bit();
    pub const WILL: u16 = C::Will.bit();
    pub const ACK: u16 = C::Ack.bit();
    pub const SUBSCRIBE: u16 = C::Subscribe.bit();
    pub const SUBACK: u16 = C::SubAck.bit();
    pub const UNSUBACK: u16 = C::UnsubAck.bit();
    pub const DISCONNECT: u16 = C::Disconnect.bit();
    pub const AUTH: u16 = C::Auth.bit();
    pub const ALL: u16 = (1 << 11) - 1;
}

impl PropertyId {
    /// The identifier for a decoded value; `None` for an unknown one.
    pub const fn from_u32(v: u32) -> Option<Self> {
        use PropertyId::*;
        Some(match v {
            0x01 => PayloadFormatIndicator,
            0x02 => MessageExpiryInterval,
            0x03 => ContentType,
            0x08 => ResponseTopic,
            0x09 => CorrelationData,
            0x0B => SubscriptionIdentifier,
            0x11 => SessionExpiryInterval,
            0x12 => AssignedClientIdentifier,
            0x13 => ServerKeepAlive,
            0x15 => AuthenticationMethod,
            0x16 => AuthenticationData,
            0x17 => RequestProblemInformation,
            0x18 => WillDelayInterval,
            0x19 => RequestResponseInformation,
            0x1A => ResponseInformation,
            0x1C => ServerReference,
            0x1F => ReasonString,
            0x21 => ReceiveMaximum,
            0x22 => TopicAliasMaximum,
            0x23 => TopicAlias,
            0x24 => MaximumQos,
            0x25 => RetainAvailable,
            0x26 => UserProperty,
            0x27 => MaximumPacketSize,
            0x28 => WildcardSubscriptionAvailable,
            0x29 => SubscriptionIdentifierAvailable,
            0x2A => SharedSubscriptionAvailable,
            _ => return None,
        })
    }

    /// The property's value type.
    pub const fn value_type(self) -> PropertyType {
        use PropertyId::*;
        match self {
            PayloadFormatIndicator
            | RequestProblemInformation
            | RequestResponseInformation
            | MaximumQos
            | RetainAvailable
            | WildcardSubscriptionAvailable
            | SubscriptionIdentifierAvailable
            | SharedSubscriptionAvailable => PropertyType::Byte,
            ServerKeepAlive | ReceiveMaximum | TopicAliasMaximum | TopicAlias => {
                PropertyType::TwoByte
            }
            MessageExpiryInterval
            | SessionExpiryInterval
            | WillDelayInterval
            | MaximumPacketSize => PropertyType::FourByte,
            SubscriptionIdentifier => PropertyType::VarInt,
            ContentType
            | ResponseTopic
            | AssignedClientIdentifier
            | AuthenticationMethod
            | ResponseInformation
            | ServerReference
            | ReasonString => PropertyType::String,
            CorrelationData | AuthenticationData => PropertyType::Binary,
            UserProperty => PropertyType::StringPair,
        }
    }

    /// The packets the property may appear in (spec 2.2.2.2, table 2-4), as context bits.
    const fn allowed(self) -> u16 {
        use PropertyId::*;
        match self {
            PayloadFormatIndicator
            | MessageExpiryInterval
            | ContentType
            | ResponseTopic
            | CorrelationData => ctx::PUBLISH | ctx::WILL,
            SubscriptionIdentifier => ctx::PUBLISH | ctx::SUBSCRIBE,
            SessionExpiryInterval => ctx::CONNECT | ctx::CONNACK | ctx::DISCONNECT,
            AssignedClientIdentifier
            | ServerKeepAlive
            | ResponseInformation
            | MaximumQos
            | RetainAvailable
            | WildcardSubscriptionAvailable
            | SubscriptionIdentifierAvailable
            | SharedSubscriptionAvailable => ctx::CONNACK,
            AuthenticationMethod | AuthenticationData => ctx::CONNECT | ctx::CONNACK | ctx::AUTH,
            RequestProblemInformation | RequestResponseInformation => ctx::CONNECT,
            WillDelayInterval => ctx::WILL,
            ServerReference => ctx::CONNACK | ctx::DISCONNECT,
            ReasonString => {
                ctx::CONNACK | ctx::ACK | ctx::SUBACK | ctx::UNSUBACK | ctx::DISCONNECT | ctx::AUTH
            }
            ReceiveMaximum | TopicAliasMaximum | MaximumPacketSize => ctx::CONNECT | ctx::CONNACK,
            TopicAlias => ctx::PUBLISH,
            UserProperty => ctx::ALL,
        }
    }

    /// True when the property may appear in a block of `context`.
    pub const fn allowed_in(self, context: PropertyContext) -> bool {
        self.allowed() & context.bit() != 0
    }

    /// True when the property may appear more than once in `context`: User Property always
    /// (spec 3.1.2.11.8 and its siblings), Subscription Identifier in PUBLISH only (3.3.2.3.8;
    /// in SUBSCRIBE it is a protocol error to repeat it, 3.8.2.1.2).
    pub const fn repeatable_in(self, context: PropertyContext) -> bool {
        matches!(self, PropertyId::UserProperty)
            || (matches!(self, PropertyId::SubscriptionIdentifier)
                && matches!(context, PropertyContext::Publish))
    }

    /// The specification's name, for error messages.
    pub const fn name(self) -> &'static str {
        use PropertyId::*;
        match self {
            PayloadFormatIndicator => "Payload Format Indicator",
            MessageExpiryInterval => "Message Expiry Interval",
            ContentType => "Content Type",
            ResponseTopic => "Response Topic",
            CorrelationData => "Correlation Data",
            SubscriptionIdentifier => "Subscription Identifier",
            SessionExpiryInterval => "Session Expiry Interval",
            AssignedClientIdentifier => "Assigned Client Identifier",
            ServerKeepAlive => "Server Keep Alive",
            AuthenticationMethod => "Authentication Method",
            AuthenticationData => "Authentication Data",
            RequestProblemInformation => "Request Problem Information",
            WillDelayInterval => "Will Delay Interval",
            RequestResponseInformation => "Request Response Information",
            ResponseInformation => "Response Information",
            ServerReference => "Server Reference",
            ReasonString => "Reason String",
            ReceiveMaximum => "Receive Maximum",
            TopicAliasMaximum => "Topic Alias Maximum",
            TopicAlias => "Topic Alias",
            MaximumQos => "Maximum QoS",
            RetainAvailable => "Retain Available",
            UserProperty => "User Property",
            MaximumPacketSize => "Maximum Packet Size",
            WildcardSubscriptionAvailable => "Wildcard Subscription Available",
            SubscriptionIdentifierAvailable => "Subscription Identifier Available",
            SharedSubscriptionAvailable => "Shared Subscription Available",
        }
    }

    /// Why a numeric value is forbidden for this property, or `None` when it is allowed.
    /// Shared by the decoder (a protocol error) and the encoder (an invalid value).
    pub const fn check_value(self, v: u32) -> Option<&'static str> {
        use PropertyId::*;
        match self {
            // 3.1.2.11.3 / 3.2.2.3.3: "It is a Protocol Error … to have the value 0".
            ReceiveMaximum if v == 0 => Some("Receive Maximum of 0"),
            // 3.1.2.11.4 / 3.2.2.3.6.
            MaximumPacketSize if v == 0 => Some("Maximum Packet Size of 0"),
            // 3.3.2.3.4: a Topic Alias of 0 is not permitted (MQTT-3.3.2-8).
            TopicAlias if v == 0 => Some("Topic Alias of 0"),
            // 3.3.2.3.8 / 3.8.2.1.2.
            SubscriptionIdentifier if v == 0 || v > MAX_REMAINING_LENGTH => {
                Some("Subscription Identifier outside 1..=268435455")
            }
            PayloadFormatIndicator if v > 1 => Some("Payload Format Indicator other than 0 or 1"),
            // 3.2.2.3.4: Maximum QoS is 0 or 1; QoS 2 is said by leaving it out.
            MaximumQos if v > 1 => Some("Maximum QoS other than 0 or 1"),
            RequestProblemInformation
            | RequestResponseInformation
            | RetainAvailable
            | WildcardSubscriptionAvailable
            | SubscriptionIdentifierAvailable
            | SharedSubscriptionAvailable
                if v > 1 =>
            {
                Some("boolean property other than 0 or 1")
            }
            _ => None,
        }
    }
}

/// One decoded property, typed and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
#[allow(missing_docs)] // The names are the specification's.
pub enum Property {
    PayloadFormatIndicator(u8),
    MessageExpiryInterval(u32),
    ContentType(ByteString),
    ResponseTopic(ByteString),
    CorrelationData(Bytes),
    SubscriptionIdentifier(u32),
    SessionExpiryInterval(u32),
    AssignedClientIdentifier(ByteString),
    ServerKeepAlive(u16),
    AuthenticationMethod(ByteString),
    AuthenticationData(Bytes),
    RequestProblemInformation(bool),
    WillDelayInterval(u32),
    RequestResponseInformation(bool),
    ResponseInformation(ByteString),
    ServerReference(ByteString),
    ReasonString(ByteString),
    ReceiveMaximum(u16),
    TopicAliasMaximum(u16),
    TopicAlias(u16),
    MaximumQos(QoS),
    RetainAvailable(bool),
    UserProperty(ByteString, ByteString),
    MaximumPacketSize(u32),
    WildcardSubscriptionAvailable(bool),
    SubscriptionIdentifierAvailable(bool),
    SharedSubscriptionAvailable(bool),
}

/// The error a packet decoder returns for a property [`read_properties`] let through but the
/// packet's struct has no field for; unreachable when the tables agree.
pub const NOT_ALLOWED: DecodeError = DecodeError::Malformed("property not valid for this packet");

/// Reads a property block (its Variable Byte Integer length, then the properties) and calls
/// `f` with each property in order.
///
/// # Errors
/// [`DecodeError::Malformed`] for a truncated block, an unknown identifier or one not valid in
/// `context`; [`DecodeError::Protocol`] for a repeated single property or a forbidden value;
/// whatever `f` returns.
#[inline]
pub fn read_properties(
    r: &mut Reader,
    context: PropertyContext,
    f: impl FnMut(Property) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let len = r.varint()?;
    read_property_block(r, len, context, f)
}

/// [`read_properties`] for a block whose length `len` the caller has already read (so that
/// an empty block costs the caller nothing).
///
/// # Errors
/// As [`read_properties`].
#[inline]
pub fn read_property_block(
    r: &mut Reader,
    len: u32,
    context: PropertyContext,
    mut f: impl FnMut(Property) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    if len == 0 {
        return Ok(());
    }
    let outer = r.push_limit(len as usize)?;
    let mut seen = 0u64;
    while !r.is_empty() {
        let raw = r.varint()?;
        let id = PropertyId::from_u32(raw)
            .ok_or(DecodeError::Malformed("unknown property identifier"))?;
        if !id.allowed_in(context) {
            return Err(NOT_ALLOWED);
        }
        let bit = 1u64 << (id as u8);
        if seen & bit != 0 && !id.repeatable_in(context) {
            return Err(DecodeError::Protocol("property included more than once"));
        }
        seen |= bit;
        f(read_value(r, id)?)?;
    }
    r.pop_limit(outer);
    Ok(())
}

fn read_value(r: &mut Reader, id: PropertyId) -> Result<Property, DecodeError> {
    use PropertyId as I;
    let numeric = match id.value_type() {
        PropertyType::Byte => u32::from(r.u8()?),
        PropertyType::TwoByte => u32::from(r.u16()?),
        PropertyType::FourByte => r.u32()?,
        PropertyType::VarInt => r.varint()?,
        PropertyType::String => {
            let s = r.string()?;
            return Ok(match id {
                I::ContentType => Property::ContentType(s),
                I::ResponseTopic => Property::ResponseTopic(s),
                I::AssignedClientIdentifier => Property::AssignedClientIdentifier(s),
                I::AuthenticationMethod => Property::AuthenticationMethod(s),
                I::ResponseInformation => Property::ResponseInformation(s),
                I::ServerReference => Property::ServerReference(s),
                _ => Property::ReasonString(s),
            });
        }
        PropertyType::Binary => {
            let b = r.binary()?;
            return Ok(match id {
                I::CorrelationData => Property::CorrelationData(b),
                _ => Property::AuthenticationData(b),
            });
        }
        PropertyType::StringPair => {
            let k = r.string()?;
            return Ok(Property::UserProperty(k, r.string()?));
        }
    };
    if let Some(why) = id.check_value(numeric) {
        return Err(DecodeError::Protocol(why));
    }
    // The value fits the narrower types: it was read at that width.
    let byte = numeric as u8;
    let two = numeric as u16;
    Ok(match id {
        I::PayloadFormatIndicator => Property::PayloadFormatIndicator(byte),
        I::MessageExpiryInterval => Property::MessageExpiryInterval(numeric),
        I::SubscriptionIdentifier => Property::SubscriptionIdentifier(numeric),
        I::SessionExpiryInterval => Property::SessionExpiryInterval(numeric),
        I::ServerKeepAlive => Property::ServerKeepAlive(two),
        I::RequestProblemInformation => Property::RequestProblemInformation(byte == 1),
        I::WillDelayInterval => Property::WillDelayInterval(numeric),
        I::RequestResponseInformation => Property::RequestResponseInformation(byte == 1),
        I::ReceiveMaximum => Property::ReceiveMaximum(two),
        I::TopicAliasMaximum => Property::TopicAliasMaximum(two),
        I::TopicAlias => Property::TopicAlias(two),
        I::MaximumQos => Property::MaximumQos(if byte == 1 {
            QoS::AtLeastOnce
        } else {
            QoS::AtMostOnce
        }),
        I::RetainAvailable => Property::RetainAvailable(byte == 1),
        I::MaximumPacketSize => Property::MaximumPacketSize(numeric),
        I::WildcardSubscriptionAvailable => Property::WildcardSubscriptionAvailable(byte == 1),
        I::SubscriptionIdentifierAvailable => Property::SubscriptionIdentifierAvailable(byte == 1),
        _ => Property::SharedSubscriptionAvailable(byte == 1),
    })
}

/// Receives the properties of a block, once to measure and once to write.
pub trait PropertySink {
    /// A numeric property (Byte, Two Byte, Four Byte or Variable Byte Integer per its id).
    ///
    /// # Errors
    /// [`EncodeError::Invalid`] for a value the specification forbids.
    fn numeric(&mut self, id: PropertyId, v: u32) -> Result<(), EncodeError>;
    /// A String or Binary property.
    ///
    /// # Errors
    /// [`EncodeError::FieldTooLong`] over 65,535 bytes.
    fn field(&mut self, id: PropertyId, v: &[u8]) -> Result<(), EncodeError>;
    /// A User Property.
    ///
    /// # Errors
    /// [`EncodeError::FieldTooLong`] when either string is over 65,535 bytes.
    fn pair(&mut self, k: &str, v: &str) -> Result<(), EncodeError>;

    /// A numeric property when present.
    ///
    /// # Errors
    /// As [`PropertySink::numeric`].
    #[inline]
    fn opt(&mut self, id: PropertyId, v: Option<impl Into<u32>>) -> Result<(), EncodeError> {
        match v {
            Some(v) => self.numeric(id, v.into()),
            None => Ok(()),
        }
    }
    /// A String or Binary property when present.
    ///
    /// # Errors
    /// As [`PropertySink::field`].
    #[inline]
    fn opt_field(&mut self, id: PropertyId, v: Option<&[u8]>) -> Result<(), EncodeError> {
        match v {
            Some(v) => self.field(id, v),
            None => Ok(()),
        }
    }
    /// Every User Property of a list.
    ///
    /// # Errors
    /// As [`PropertySink::pair`].
    #[inline]
    fn pairs(&mut self, list: &[crate::UserProperty]) -> Result<(), EncodeError> {
        for (k, v) in list {
            self.pair(k, v)?;
        }
        Ok(())
    }
}

/// A set of properties that can list itself to a [`PropertySink`].
pub trait EncodeProperties {
    /// Lists every present property, in a fixed order.
    ///
    /// # Errors
    /// Whatever the sink returns.
    fn visit<S: PropertySink>(&self, sink: &mut S) -> Result<(), EncodeError>;
}

/// The measuring sink: the property block's content length, validating every value.
#[derive(Debug, Default)]
pub struct PropertyLen(pub usize);

impl PropertySink for PropertyLen {
    #[inline]
    fn numeric(&mut self, id: PropertyId, v: u32) -> Result<(), EncodeError> {
        if let Some(why) = id.check_value(v) {
            return Err(EncodeError::Invalid(why));
        }
        let n = match id.value_type() {
            PropertyType::Byte => 1,
            PropertyType::TwoByte => 2,
            PropertyType::VarInt => varint_len(v),
            _ => 4,
        };
        self.0 = self.0.saturating_add(1 + n);
        Ok(())
    }

    #[inline]
    fn field(&mut self, id: PropertyId, v: &[u8]) -> Result<(), EncodeError> {
        if v.len() > MAX_FIELD_LEN {
            return Err(EncodeError::FieldTooLong(id.name()));
        }
        self.0 = self.0.saturating_add(3 + v.len());
        Ok(())
    }

    #[inline]
    fn pair(&mut self, k: &str, v: &str) -> Result<(), EncodeError> {
        if k.len() > MAX_FIELD_LEN || v.len() > MAX_FIELD_LEN {
            return Err(EncodeError::FieldTooLong("User Property"));
        }
        self.0 = self.0.saturating_add(5 + k.len() + v.len());
        Ok(())
    }
}

/// The writing sink. It trusts that [`PropertyLen`] accepted the same properties.
#[derive(Debug)]
pub struct PropertyWriter<'a>(pub &'a mut BytesMut);

impl PropertySink for PropertyWriter<'_> {
    #[inline]
    fn numeric(&mut self, id: PropertyId, v: u32) -> Result<(), EncodeError> {
        self.0.put_u8(id as u8);
        match id.value_type() {
            PropertyType::Byte => self.0.put_u8(v as u8),
            PropertyType::TwoByte => self.0.put_u16(v as u16),
            PropertyType::VarInt => put_varint(self.0, v),
            _ => self.0.put_u32(v),
        }
        Ok(())
    }

    #[inline]
    fn field(&mut self, id: PropertyId, v: &[u8]) -> Result<(), EncodeError> {
        self.0.put_u8(id as u8);
        put_field(self.0, v);
        Ok(())
    }

    #[inline]
    fn pair(&mut self, k: &str, v: &str) -> Result<(), EncodeError> {
        self.0.put_u8(PropertyId::UserProperty as u8);
        put_field(self.0, k.as_bytes());
        put_field(self.0, v.as_bytes());
        Ok(())
    }
}

/// The content length of `props`' block (without its own length prefix), at most
/// [`MAX_REMAINING_LENGTH`].
///
/// # Errors
/// The first invalid or over-long property; [`EncodeError::PacketTooLarge`] for a block
/// longer than any packet can be.
#[inline]
pub fn properties_len(props: &impl EncodeProperties) -> Result<usize, EncodeError> {
    let mut len = PropertyLen(0);
    props.visit(&mut len)?;
    // A block that cannot fit any packet is refused here, which also keeps every caller's
    // arithmetic on the result far from overflow.
    if len.0 > MAX_REMAINING_LENGTH as usize {
        return Err(EncodeError::PacketTooLarge);
    }
    Ok(len.0)
}

/// Bytes of a whole property block of content length `len`: the length prefix and content.
#[inline]
pub fn block_len(len: usize) -> usize {
    varint_len(u32::try_from(len).unwrap_or(u32::MAX)).saturating_add(len)
}

/// Writes a property block whose content length `properties_len` measured as `len`.
#[inline]
pub fn put_properties(out: &mut BytesMut, props: &impl EncodeProperties, len: usize) {
    put_varint(out, u32::try_from(len).unwrap_or(MAX_REMAINING_LENGTH));
    // The sink never fails after a successful measurement.
    let _ = props.visit(&mut PropertyWriter(out));
}

/// Returns the string's bytes for [`PropertySink::opt_field`].
#[inline]
pub fn str_bytes(s: &Option<ByteString>) -> Option<&[u8]> {
    s.as_ref().map(|s| s.as_bytes().as_ref())
}

/// Returns the binary's bytes for [`PropertySink::opt_field`].
#[inline]
pub fn bin_bytes(b: &Option<Bytes>) -> Option<&[u8]> {
    b.as_deref()
}

/// The Authentication Data rule shared by CONNECT, CONNACK and AUTH: "It is a Protocol Error
/// to include Authentication Data if there is no Authentication Method" (3.1.2.11.10).
///
/// # Errors
/// [`DecodeError::Protocol`] when `data` is present without `method`.
pub fn check_auth_data(
    method: &Option<ByteString>,
    data: &Option<Bytes>,
) -> Result<(), DecodeError> {
    if data.is_some() && method.is_none() {
        return Err(DecodeError::Protocol(
            "Authentication Data without Authentication Method",
        ));
    }
    Ok(())
}
