//! PROXY protocol version 2 (HAProxy's `proxy-protocol.txt`, section 2.2): a load balancer in
//! front of the gateway (AWS NLB, HAProxy, Envoy) prepends one binary header to the TCP stream
//! that names the device's real address. With it enabled on a listener, that address is the
//! connection's peer for rate limits and logs.
//!
//! Only version 2 is accepted: version 1 is a text line (`PROXY TCP4 …\r\n`) that must be
//! read byte by byte to find its end, and every load balancer we target speaks version 2. A
//! listener that expects the header closes a connection that does not start with one: the
//! header must come from a trusted proxy, and a device that could skip it could also forge it,
//! so there is no "optional" mode.
//!
//! Parsing is two steps like the MQTT codec: [`header_len`] validates the fixed 16 bytes and
//! says how long the whole header is, [`decode`] parses a buffer that may hold it. TLVs after
//! the addresses are skipped (the spec lets receivers ignore the ones they do not know). No
//! input makes either function panic (a property test below feeds them arbitrary bytes).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::io::{AsyncRead, AsyncReadExt};

/// The 12 bytes every version 2 header starts with (section 2.2): chosen so that it can never
/// be the start of a valid HTTP, TLS or MQTT stream.
pub const SIGNATURE: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";

/// Length of the fixed part: signature, version/command, family/protocol, length.
pub const FIXED_LEN: usize = 16;

/// Largest header accepted, TLVs included. The spec allows 16 + 65 535 bytes; real proxies
/// send the addresses plus a few short TLVs (an AWS VPC endpoint id, an Azure link id), far
/// below this. The bound keeps an untrusted peer from making us buffer 64 KiB.
pub const MAX_HEADER_LEN: usize = FIXED_LEN + 2048;

/// Bytes of the address block for TCP over IPv4: two addresses and two ports.
const INET_ADDRS_LEN: usize = 12;

/// Bytes of the address block for TCP over IPv6.
const INET6_ADDRS_LEN: usize = 36;

/// What a PROXY protocol header says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProxyHeader {
    /// `LOCAL`: the proxy opened the connection itself (e.g. a health check); the socket's own
    /// addresses are the real ones.
    Local,
    /// `PROXY` with an unspecified address family: the proxy does not know the source; the
    /// socket's own addresses are used.
    Unknown,
    /// `PROXY` for a TCP connection over IPv4 or IPv6.
    Tcp {
        /// The device's address.
        source: SocketAddr,
        /// The address the device connected to (the load balancer's listener).
        destination: SocketAddr,
    },
}

impl ProxyHeader {
    /// The device's address, when the header names one.
    pub fn source(&self) -> Option<SocketAddr> {
        match self {
            ProxyHeader::Tcp { source, .. } => Some(*source),
            ProxyHeader::Local | ProxyHeader::Unknown => None,
        }
    }
}

/// Why a connection's PROXY header was refused.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The stream does not start with the version 2 signature (junk, a PROXY version 1 text
    /// header, or a client talking to the listener directly).
    #[error("no PROXY protocol v2 signature")]
    BadSignature,
    /// The version nibble is not 2.
    #[error("unsupported PROXY protocol version {0}")]
    BadVersion(u8),
    /// The command nibble is neither LOCAL (0) nor PROXY (1).
    #[error("unknown PROXY protocol command {0}")]
    BadCommand(u8),
    /// A family/protocol other than TCP over IPv4/IPv6 or UNSPEC (UDP, UNIX sockets).
    #[error("unsupported address family/protocol 0x{0:02x}")]
    UnsupportedFamily(u8),
    /// The address block is shorter than its family requires.
    #[error("address block of {len} bytes is too short for its family")]
    Truncated {
        /// The announced length of the address block.
        len: usize,
    },
    /// The announced header is longer than [`MAX_HEADER_LEN`].
    #[error("header of {0} bytes exceeds the limit")]
    TooLong(usize),
    /// Reading the header failed, or the peer closed before sending all of it.
    #[error("reading the PROXY header: {0}")]
    Io(#[from] io::Error),
}

/// Validates the fixed 16 bytes of a header and returns the length of the whole header.
///
/// # Errors
/// Any [`ProxyError`] but `Io` and `Truncated`.
pub fn header_len(fixed: &[u8; FIXED_LEN]) -> Result<usize, ProxyError> {
    if fixed[..12] != SIGNATURE {
        return Err(ProxyError::BadSignature);
    }
    let version = fixed[12] >> 4;
    if version != 2 {
        return Err(ProxyError::BadVersion(version));
    }
    let command = fixed[12] & 0x0F;
    if command > 1 {
        return Err(ProxyError::BadCommand(command));
    }
    let total = FIXED_LEN + usize::from(u16::from_be_bytes([fixed[14], fixed[15]]));
    if total > MAX_HEADER_LEN {
        return Err(ProxyError::TooLong(total));
    }
    Ok(total)
}

/// Parses the header at the start of `buf`: `Ok(None)` when more bytes are needed, else the
/// header and its length (the bytes after it belong to the proxied stream).
///
/// # Errors
/// A [`ProxyError`] for a malformed header; never `Io`.
pub fn decode(buf: &[u8]) -> Result<Option<(ProxyHeader, usize)>, ProxyError> {
    let Some(fixed) = buf.first_chunk::<FIXED_LEN>() else {
        // Reject a wrong signature as soon as it shows, without waiting for 16 bytes.
        let n = buf.len().min(SIGNATURE.len());
        if buf[..n] != SIGNATURE[..n] {
            return Err(ProxyError::BadSignature);
        }
        return Ok(None);
    };
    let total = header_len(fixed)?;
    let Some(block) = buf.get(FIXED_LEN..total) else {
        return Ok(None);
    };
    let command = fixed[12] & 0x0F;
    if command == 0 {
        // LOCAL: "the receiver must accept this connection as valid and must use the real
        // connection endpoints and discard the protocol block including the family".
        return Ok(Some((ProxyHeader::Local, total)));
    }
    let header = match fixed[13] {
        0x00 => ProxyHeader::Unknown,
        // TCP over IPv4 (AF_INET, STREAM).
        0x11 => {
            let a = block
                .first_chunk::<INET_ADDRS_LEN>()
                .ok_or(ProxyError::Truncated { len: block.len() })?;
            let ip = |o: usize| Ipv4Addr::new(a[o], a[o + 1], a[o + 2], a[o + 3]);
            ProxyHeader::Tcp {
                source: SocketAddr::new(ip(0).into(), u16::from_be_bytes([a[8], a[9]])),
                destination: SocketAddr::new(ip(4).into(), u16::from_be_bytes([a[10], a[11]])),
            }
        }
        // TCP over IPv6 (AF_INET6, STREAM).
        0x21 => {
            let a = block
                .first_chunk::<INET6_ADDRS_LEN>()
                .ok_or(ProxyError::Truncated { len: block.len() })?;
            let ip = |o: usize| {
                let mut octets = [0u8; 16];
                octets.copy_from_slice(&a[o..o + 16]);
                Ipv6Addr::from(octets)
            };
            ProxyHeader::Tcp {
                source: SocketAddr::new(ip(0).into(), u16::from_be_bytes([a[32], a[33]])),
                destination: SocketAddr::new(ip(16).into(), u16::from_be_bytes([a[34], a[35]])),
            }
        }
        other => return Err(ProxyError::UnsupportedFamily(other)),
    };
    Ok(Some((header, total)))
}

/// Reads exactly one header from `stream`, and not a byte more: what follows is the device's
/// stream (a TLS ClientHello, an HTTP upgrade, a CONNECT). The caller bounds it in time.
///
/// # Errors
/// [`ProxyError`] for a malformed header or a read failure.
pub async fn read_header<S>(stream: &mut S) -> Result<ProxyHeader, ProxyError>
where
    S: AsyncRead + Unpin,
{
    let mut fixed = [0u8; FIXED_LEN];
    // Read the signature part first so that junk is refused without waiting for 16 bytes.
    let mut filled = 0;
    while filled < FIXED_LEN {
        let n = stream.read(&mut fixed[filled..]).await?;
        if n == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof).into());
        }
        filled += n;
        decode(&fixed[..filled])?;
    }
    let total = header_len(&fixed)?;
    let mut buf = vec![0u8; total];
    buf[..FIXED_LEN].copy_from_slice(&fixed);
    stream.read_exact(&mut buf[FIXED_LEN..]).await?;
    match decode(&buf)? {
        Some((header, _)) => Ok(header),
        // Unreachable: `buf` holds exactly the announced length.
        None => Err(io::Error::from(io::ErrorKind::UnexpectedEof).into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v2(command: u8, family: u8, block: &[u8]) -> Vec<u8> {
        let mut h = SIGNATURE.to_vec();
        h.push(0x20 | command);
        h.push(family);
        h.extend_from_slice(&u16::try_from(block.len()).expect("short").to_be_bytes());
        h.extend_from_slice(block);
        h
    }

    #[test]
    fn tcp4_with_tlvs_and_trailing_stream() {
        let mut block = vec![192, 0, 2, 7, 10, 0, 0, 1, 0x30, 0x39, 0x22, 0xB3];
        block.extend_from_slice(&[0xEA, 0x00, 0x03, b'v', b'p', b'c']); // an AWS TLV
        let mut bytes = v2(1, 0x11, &block);
        let len = bytes.len();
        bytes.extend_from_slice(&[0x16, 0x03, 0x01]); // the ClientHello that follows
        let (h, n) = decode(&bytes).expect("valid").expect("whole");
        assert_eq!(n, len);
        assert_eq!(h.source(), Some("192.0.2.7:12345".parse().expect("addr")));
        assert_eq!(
            h,
            ProxyHeader::Tcp {
                source: "192.0.2.7:12345".parse().expect("addr"),
                destination: "10.0.0.1:8883".parse().expect("addr"),
            }
        );
    }

    #[test]
    fn tcp6() {
        let mut block = Vec::new();
        block.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().expect("ip").octets());
        block.extend_from_slice(&"2001:db8::2".parse::<Ipv6Addr>().expect("ip").octets());
        block.extend_from_slice(&[0x04, 0xD2, 0x22, 0xB3]);
        let (h, _) = decode(&v2(1, 0x21, &block)).expect("valid").expect("whole");
        assert_eq!(
            h.source(),
            Some("[2001:db8::1]:1234".parse().expect("addr"))
        );
    }

    #[test]
    fn local_and_unspec_keep_the_socket_address() {
        let (h, _) = decode(&v2(0, 0x11, &[0; 12]))
            .expect("valid")
            .expect("whole");
        assert_eq!(h, ProxyHeader::Local);
        let (h, _) = decode(&v2(1, 0x00, &[])).expect("valid").expect("whole");
        assert_eq!(h, ProxyHeader::Unknown);
        assert_eq!(h.source(), None);
    }

    #[test]
    fn incomplete_is_not_an_error() {
        let bytes = v2(1, 0x11, &[1; 12]);
        for cut in 0..bytes.len() {
            assert!(matches!(decode(&bytes[..cut]), Ok(None)), "cut at {cut}");
        }
    }

    #[test]
    fn malformed_headers_are_refused() {
        let cases: [(&str, Vec<u8>); 7] = [
            ("v1 text", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n".to_vec()),
            ("TLS record", vec![0x16, 0x03, 0x01, 0x00, 0x10]),
            ("version 1 nibble", {
                let mut h = v2(1, 0x11, &[0; 12]);
                h[12] = 0x11;
                h
            }),
            ("command 2", v2(2, 0x11, &[0; 12])),
            ("UDP", v2(1, 0x12, &[0; 12])),
            ("UNIX", v2(1, 0x31, &[0; 216])),
            ("short IPv4 block", v2(1, 0x11, &[0; 11])),
        ];
        for (what, bytes) in cases {
            assert!(decode(&bytes).is_err(), "{what} accepted");
        }
        let mut huge = v2(1, 0x11, &[0; 12]);
        huge[14..16].copy_from_slice(&u16::MAX.to_be_bytes());
        assert!(matches!(decode(&huge), Err(ProxyError::TooLong(_))));
    }

    #[tokio::test]
    async fn read_header_leaves_the_stream_after_it() {
        let mut bytes = v2(1, 0x11, &[127, 0, 0, 9, 127, 0, 0, 1, 0, 80, 0, 81]);
        bytes.extend_from_slice(b"rest");
        let mut r = &bytes[..];
        let h = read_header(&mut r).await.expect("valid");
        assert_eq!(h.source(), Some("127.0.0.9:80".parse().expect("addr")));
        assert_eq!(r, b"rest");
        let mut junk = &b"GET / HTTP/1.1\r\n\r\n"[..];
        assert!(matches!(
            read_header(&mut junk).await,
            Err(ProxyError::BadSignature)
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn arbitrary_bodies_after_a_valid_prefix_never_panic(
            cmd_ver in any::<u8>(),
            family in any::<u8>(),
            body in proptest::collection::vec(any::<u8>(), 0..80),
            announced in 0u16..100,
        ) {
            let mut h = SIGNATURE.to_vec();
            h.push(cmd_ver);
            h.push(family);
            h.extend_from_slice(&announced.to_be_bytes());
            h.extend_from_slice(&body);
            if let Ok(Some((_, n))) = decode(&h) {
                prop_assert!(n <= h.len());
            }
        }
    }
}
