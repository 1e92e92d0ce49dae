//! AUTH (spec v5 3.15), MQTT 5 only.

use bytes::Bytes;
use bytestring::ByteString;

use crate::{ReasonCode, UserProperty};

/// AUTH: enhanced authentication exchange.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Auth {
    /// Authenticate Reason Code (0x00, 0x18 or 0x19).
    pub reason: ReasonCode,
    /// Properties.
    pub properties: AuthProperties,
}

/// AUTH properties (spec 3.15.2.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[allow(missing_docs)] // Property names are the specification's.
pub struct AuthProperties {
    pub authentication_method: Option<ByteString>,
    pub authentication_data: Option<Bytes>,
    pub reason_string: Option<ByteString>,
    pub user_properties: Vec<UserProperty>,
}
