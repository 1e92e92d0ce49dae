//! Local source addresses for outgoing connections.
//!
//! A TCP connection is identified by (source address, source port, destination address,
//! destination port). Against one broker port, one source address gives at most the ephemeral
//! port range (about 28,000 ports by default), so a run that needs more connections binds each
//! socket to an address of a range such as `127.0.0.1-127.0.0.50` before connecting: the
//! whole 127.0.0.0/8 block is loopback on Linux, no configuration needed.

use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

/// Most addresses one option may name.
pub const MAX_SOURCE_IPS: usize = 65_536;

/// A non-empty list of local addresses, handed out round-robin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SourceIps {
    addrs: Vec<IpAddr>,
}

/// Why a source address list does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceIpsError {
    /// Not an IP address.
    #[error("{0:?} is not an IP address")]
    BadAddress(String),
    /// A range whose ends are not both IPv4, or whose end comes before its start.
    #[error("bad range {0:?}: give two IPv4 addresses, lowest first")]
    BadRange(String),
    /// Nothing given.
    #[error("no source address given")]
    Empty,
    /// More than [`MAX_SOURCE_IPS`] addresses.
    #[error("more than {MAX_SOURCE_IPS} source addresses")]
    TooMany,
}

impl SourceIps {
    /// Parses a comma-separated list of addresses and inclusive IPv4 ranges, e.g.
    /// `127.0.0.1-127.0.0.50,127.0.1.1`.
    ///
    /// # Errors
    /// [`SourceIpsError`].
    pub fn parse(s: &str) -> Result<Self, SourceIpsError> {
        let mut addrs = Vec::new();
        for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            match item.split_once('-') {
                Some((from, to)) => {
                    let parse = |a: &str| {
                        Ipv4Addr::from_str(a.trim())
                            .map(u32::from)
                            .map_err(|_| SourceIpsError::BadRange(item.to_owned()))
                    };
                    let (from, to) = (parse(from)?, parse(to)?);
                    if to < from {
                        return Err(SourceIpsError::BadRange(item.to_owned()));
                    }
                    if (to - from) as usize >= MAX_SOURCE_IPS - addrs.len() {
                        return Err(SourceIpsError::TooMany);
                    }
                    addrs.extend((from..=to).map(|a| IpAddr::V4(Ipv4Addr::from(a))));
                }
                None => {
                    let a = IpAddr::from_str(item)
                        .map_err(|_| SourceIpsError::BadAddress(item.to_owned()))?;
                    if addrs.len() >= MAX_SOURCE_IPS {
                        return Err(SourceIpsError::TooMany);
                    }
                    addrs.push(a);
                }
            }
        }
        if addrs.is_empty() {
            return Err(SourceIpsError::Empty);
        }
        Ok(Self { addrs })
    }

    /// The address for connection `index` (round-robin).
    pub fn get(&self, index: u64) -> IpAddr {
        // The list is never empty; `len` fits in u64.
        let i = (index % self.addrs.len() as u64) as usize;
        self.addrs[i]
    }

    /// How many addresses there are.
    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    /// Always false: a list has at least one address.
    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn ranges_and_singles() {
        let s = SourceIps::parse("127.0.0.1-127.0.0.50").unwrap();
        assert_eq!(s.len(), 50);
        assert_eq!(s.get(0), ip("127.0.0.1"));
        assert_eq!(s.get(49), ip("127.0.0.50"));
        assert_eq!(s.get(50), ip("127.0.0.1"));

        let s = SourceIps::parse("127.0.0.255-127.0.1.1, 10.0.0.1,::1").unwrap();
        let all: Vec<_> = (0..5).map(|i| s.get(i)).collect();
        assert_eq!(
            all,
            [
                ip("127.0.0.255"),
                ip("127.0.1.0"),
                ip("127.0.1.1"),
                ip("10.0.0.1"),
                ip("::1")
            ]
        );
        assert_eq!(SourceIps::parse("127.0.0.7").unwrap().len(), 1);
    }

    #[test]
    fn errors() {
        assert_eq!(SourceIps::parse(""), Err(SourceIpsError::Empty));
        assert!(matches!(
            SourceIps::parse("127.0.0.9-127.0.0.1"),
            Err(SourceIpsError::BadRange(_))
        ));
        assert!(matches!(
            SourceIps::parse("::1-::2"),
            Err(SourceIpsError::BadRange(_))
        ));
        assert!(matches!(
            SourceIps::parse("localhost"),
            Err(SourceIpsError::BadAddress(_))
        ));
        assert_eq!(
            SourceIps::parse("10.0.0.0-10.1.0.0"),
            Err(SourceIpsError::TooMany)
        );
        assert_eq!(
            SourceIps::parse("10.0.0.0-10.0.255.255").unwrap().len(),
            65_536
        );
    }
}
