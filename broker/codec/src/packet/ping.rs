//! PINGREQ and PINGRESP (spec v5 3.12, 3.13): a fixed header and nothing else.

use bytes::{BufMut, BytesMut};

use super::first_byte;
use crate::{DecodeError, FixedHeader, PacketType};

/// Checks a PINGREQ or PINGRESP: its Remaining Length is 0 (3.12.1, 3.13.1).
pub(crate) fn decode(header: &FixedHeader) -> Result<(), DecodeError> {
    if header.remaining_len != 0 {
        return Err(DecodeError::Malformed("PINGREQ or PINGRESP with a body"));
    }
    Ok(())
}

/// Appends a PINGREQ or PINGRESP.
pub(crate) fn encode(kind: PacketType, out: &mut BytesMut) {
    out.reserve(2);
    out.put_u8(first_byte(kind));
    out.put_u8(0);
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use crate::frame::check;
    use crate::{DecodeError, Packet, ProtocolVersion};

    #[test]
    fn vectors() {
        for (wire, packet) in [
            (b"\xC0\x00", Packet::PingReq),
            (b"\xD0\x00", Packet::PingResp),
        ] {
            for v in [ProtocolVersion::V311, ProtocolVersion::V5] {
                let h = check(wire, 16).unwrap().unwrap();
                assert_eq!(
                    Packet::decode(Bytes::from_static(wire), &h, v),
                    Ok(packet.clone())
                );
                let mut out = bytes::BytesMut::new();
                packet.encode(v, &mut out).unwrap();
                assert_eq!(&out[..], wire);
                assert_eq!(packet.encoded_len(v), 2);
            }
        }
        let h = check(b"\xC0\x01\x00", 16).unwrap().unwrap();
        assert!(matches!(
            Packet::decode(Bytes::from_static(b"\xC0\x01\x00"), &h, ProtocolVersion::V5),
            Err(DecodeError::Malformed(_))
        ));
    }
}
