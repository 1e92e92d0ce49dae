//! Step one of parsing: the fixed header, and whether a whole packet is buffered.
//!
//! [`check`] looks only at the fixed header. It reports `Ok(None)` while more bytes are
//! needed, rejects a packet as too large as soon as its length is known (before its body
//! arrives), and validates the packet type and the reserved flag bits (`MQTT-2.1.3-1`), so the
//! gateway can frame a stream without decoding bodies.

use crate::DecodeError;

/// The largest remaining length a Variable Byte Integer can carry (spec 1.5.5).
pub const MAX_REMAINING_LENGTH: u32 = 268_435_455;

/// The control packet type, the high nibble of the first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
#[allow(missing_docs)] // The names are the specification's.
pub enum PacketType {
    Connect = 1,
    ConnAck = 2,
    Publish = 3,
    PubAck = 4,
    PubRec = 5,
    PubRel = 6,
    PubComp = 7,
    Subscribe = 8,
    SubAck = 9,
    Unsubscribe = 10,
    UnsubAck = 11,
    PingReq = 12,
    PingResp = 13,
    Disconnect = 14,
    Auth = 15,
}

impl PacketType {
    /// The type for a nibble; `None` for the reserved value 0.
    pub const fn from_nibble(n: u8) -> Option<Self> {
        Some(match n {
            1 => Self::Connect,
            2 => Self::ConnAck,
            3 => Self::Publish,
            4 => Self::PubAck,
            5 => Self::PubRec,
            6 => Self::PubRel,
            7 => Self::PubComp,
            8 => Self::Subscribe,
            9 => Self::SubAck,
            10 => Self::Unsubscribe,
            11 => Self::UnsubAck,
            12 => Self::PingReq,
            13 => Self::PingResp,
            14 => Self::Disconnect,
            15 => Self::Auth,
            _ => return None,
        })
    }

    /// The flag nibble the specification fixes for this type, or `None` for PUBLISH whose
    /// flags carry DUP, QoS and RETAIN (spec 2.1.3, table 2-2).
    pub const fn required_flags(self) -> Option<u8> {
        match self {
            Self::Publish => None,
            Self::PubRel | Self::Subscribe | Self::Unsubscribe => Some(0b0010),
            _ => Some(0),
        }
    }
}

/// A parsed fixed header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FixedHeader {
    /// The packet type.
    pub packet_type: PacketType,
    /// The low nibble of the first byte.
    pub flags: u8,
    /// Bytes taken by the fixed header (2 to 5).
    pub header_len: u8,
    /// The Remaining Length: bytes of the packet after the fixed header.
    pub remaining_len: u32,
}

impl FixedHeader {
    /// Size of the whole packet in bytes.
    pub const fn total_len(&self) -> usize {
        self.header_len as usize + self.remaining_len as usize
    }
}

/// Is a whole packet at the start of `buf`?
///
/// Returns `Ok(Some(header))` when `buf` starts with a complete packet of
/// `header.total_len()` bytes, `Ok(None)` when more bytes are needed.
///
/// # Errors
/// * [`DecodeError::Malformed`] for the reserved packet type 0, wrong reserved flags, a PUBLISH
///   with QoS 3 or a Remaining Length that is not a minimal Variable Byte Integer of at most
///   four bytes;
/// * [`DecodeError::PacketTooLarge`] as soon as the announced size exceeds `max_packet_size`.
pub fn check(buf: &[u8], max_packet_size: u32) -> Result<Option<FixedHeader>, DecodeError> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    let packet_type = PacketType::from_nibble(first >> 4)
        .ok_or(DecodeError::Malformed("reserved packet type 0"))?;
    let flags = first & 0x0F;
    match packet_type.required_flags() {
        Some(required) if required != flags => {
            return Err(DecodeError::Malformed(
                "reserved flags of the fixed header are wrong",
            ));
        }
        None if (flags >> 1) & 0b11 == 0b11 => {
            return Err(DecodeError::Malformed("PUBLISH with QoS 3"));
        }
        _ => {}
    }

    let mut remaining_len: u32 = 0;
    let mut shift = 0;
    let mut header_len = 1u8;
    loop {
        let Some(&byte) = buf.get(usize::from(header_len)) else {
            return Ok(None);
        };
        header_len += 1;
        if header_len > 2 && byte == 0 {
            // A final byte of 0 after a continuation is a non-minimal encoding (MQTT-1.5.5-1).
            return Err(DecodeError::Malformed(
                "remaining length is not minimally encoded",
            ));
        }
        remaining_len |= u32::from(byte & 0x7F) << shift;
        if byte & 0x80 == 0 {
            break;
        }
        shift += 7;
        if header_len == 5 {
            return Err(DecodeError::Malformed(
                "remaining length longer than four bytes",
            ));
        }
    }

    let header = FixedHeader {
        packet_type,
        flags,
        header_len,
        remaining_len,
    };
    let total = header.total_len();
    if total > max_packet_size as usize {
        return Err(DecodeError::PacketTooLarge {
            size: total,
            max: max_packet_size,
        });
    }
    if buf.len() < total {
        return Ok(None);
    }
    Ok(Some(header))
}

/// Bytes needed to encode `value` as a Variable Byte Integer (1 to 4).
pub const fn varint_len(value: u32) -> usize {
    match value {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: u32 = 1 << 20;

    #[test]
    fn needs_more_bytes_until_the_packet_is_whole() {
        let pkt = [0x30, 0x03, 0x00, 0x01, b'a'];
        for n in 0..pkt.len() {
            assert_eq!(check(&pkt[..n], MAX), Ok(None), "prefix of {n}");
        }
        let h = check(&pkt, MAX).unwrap().unwrap();
        assert_eq!(h.packet_type, PacketType::Publish);
        assert_eq!((h.header_len, h.remaining_len, h.total_len()), (2, 3, 5));
    }

    #[test]
    fn multi_byte_remaining_length() {
        // 321 = 0b10_1000001 → 0xC1 0x02
        let mut pkt = vec![0x30, 0xC1, 0x02];
        pkt.resize(3 + 321, 0);
        let h = check(&pkt, MAX).unwrap().unwrap();
        assert_eq!((h.header_len, h.remaining_len), (3, 321));
        assert_eq!(check(&pkt[..100], MAX), Ok(None));
    }

    #[test]
    fn rejects_bad_headers() {
        assert!(matches!(
            check(&[0x00, 0x00], MAX),
            Err(DecodeError::Malformed(_))
        ));
        // SUBSCRIBE must have flags 0b0010.
        assert!(matches!(
            check(&[0x80, 0x00], MAX),
            Err(DecodeError::Malformed(_))
        ));
        // PINGREQ with a flag set.
        assert!(matches!(
            check(&[0xC1, 0x00], MAX),
            Err(DecodeError::Malformed(_))
        ));
        // PUBLISH QoS 3.
        assert!(matches!(
            check(&[0x36, 0x00], MAX),
            Err(DecodeError::Malformed(_))
        ));
        // Five-byte remaining length.
        assert!(matches!(
            check(&[0x30, 0xFF, 0xFF, 0xFF, 0xFF, 0x01], MAX),
            Err(DecodeError::Malformed(_))
        ));
        // Non-minimal: 0x80 0x00 encodes 0 in two bytes.
        assert!(matches!(
            check(&[0x30, 0x80, 0x00], MAX),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn too_large_is_reported_before_the_body_arrives() {
        let head = [0x30, 0xFF, 0xFF, 0x7F];
        assert_eq!(
            check(&head, 1024),
            Err(DecodeError::PacketTooLarge {
                size: 4 + 2_097_151,
                max: 1024
            })
        );
    }

    #[test]
    fn varint_lengths() {
        assert_eq!(varint_len(0), 1);
        assert_eq!(varint_len(127), 1);
        assert_eq!(varint_len(128), 2);
        assert_eq!(varint_len(16_384), 3);
        assert_eq!(varint_len(MAX_REMAINING_LENGTH), 4);
    }
}
