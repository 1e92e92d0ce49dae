//! Feeds arbitrary bytes through `frame::check` and `Packet::decode` for both protocol
//! versions, packet after packet. Nothing may panic, and whatever decodes must encode to
//! `encoded_len` bytes and decode back to itself.
#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use tenantmq_codec::frame::check;
use tenantmq_codec::{Packet, ProtocolVersion};

fuzz_target!(|data: &[u8]| {
    for version in [ProtocolVersion::V311, ProtocolVersion::V5] {
        let mut buf = Bytes::copy_from_slice(data);
        while let Ok(Some(header)) = check(&buf, u32::MAX) {
            let frame = buf.split_to(header.total_len());
            if let Ok(packet) = Packet::decode(frame, &header, version) {
                round_trip(&packet, version);
            }
        }
    }
});

fn round_trip(packet: &Packet, version: ProtocolVersion) {
    let mut out = BytesMut::new();
    if let Err(e) = packet.encode(version, &mut out) {
        panic!("decoded packet does not encode: {e}: {packet:?}");
    }
    assert_eq!(out.len(), packet.encoded_len(version), "{packet:?}");
    let header = check(&out, u32::MAX)
        .expect("re-encoded packet frames")
        .expect("re-encoded packet is complete");
    let again = Packet::decode(out.freeze(), &header, version);
    assert_eq!(again.as_ref(), Ok(packet));
}
