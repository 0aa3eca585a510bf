//! Link layers: turns a frame of a given link type into etherparse's lax slices (Ethernet with
//! 802.1Q/QinQ, Linux SLL and SLL2, raw IPv4/IPv6, BSD loopback/NULL). The few header bytes of
//! SLL, SLL2 and NULL are read here; etherparse does the rest.

use crate::capture::LinkType;
use etherparse::{EtherType, LaxSlicedPacket};

/// Why a frame could not be opened at the link layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkSkip {
    Unsupported,
    Truncated,
    NotIp,
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

pub fn slice(link: LinkType, data: &[u8]) -> Result<LaxSlicedPacket<'_>, LinkSkip> {
    match link {
        LinkType::ETHERNET => LaxSlicedPacket::from_ethernet(data).map_err(|_| LinkSkip::Truncated),
        LinkType::RAW
        | LinkType::RAW_BSD_12
        | LinkType::RAW_BSD_14
        | LinkType::IPV4
        | LinkType::IPV6 => LaxSlicedPacket::from_ip(data).map_err(|_| LinkSkip::Truncated),
        LinkType::NULL | LinkType::LOOP => {
            // A 4-byte address family: host byte order for NULL, network order for LOOP.
            // Writers disagree, so accept either order.
            let fam: [u8; 4] = data
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .ok_or(LinkSkip::Truncated)?;
            let (le, be) = (u32::from_le_bytes(fam), u32::from_be_bytes(fam));
            let ether_type = match (le, be) {
                (2, _) | (_, 2) => EtherType::IPV4,
                // AF_INET6 is 10 (Linux), 24 (NetBSD/OpenBSD), 28 (FreeBSD), 30 (macOS).
                (10 | 24 | 28 | 30, _) | (_, 10 | 24 | 28 | 30) => EtherType::IPV6,
                _ => return Err(LinkSkip::NotIp),
            };
            Ok(LaxSlicedPacket::from_ether_type(
                ether_type,
                data.get(4..).unwrap_or(&[]),
            ))
        }
        LinkType::LINUX_SLL => {
            // 16-byte header; protocol (an EtherType for IP) in the last two bytes.
            let proto = be16(data, 14).ok_or(LinkSkip::Truncated)?;
            Ok(LaxSlicedPacket::from_ether_type(
                EtherType(proto),
                data.get(16..).unwrap_or(&[]),
            ))
        }
        LinkType::LINUX_SLL2 => {
            // 20-byte header; protocol in the first two bytes.
            let proto = be16(data, 0).ok_or(LinkSkip::Truncated)?;
            if data.len() < 20 {
                return Err(LinkSkip::Truncated);
            }
            Ok(LaxSlicedPacket::from_ether_type(
                EtherType(proto),
                data.get(20..).unwrap_or(&[]),
            ))
        }
        _ => Err(LinkSkip::Unsupported),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::LaxNetSlice;

    fn ipv4_udp() -> Vec<u8> {
        let b = etherparse::PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64).udp(5060, 5060);
        let mut v = Vec::new();
        b.write(&mut v, b"x").unwrap();
        v
    }

    fn is_ipv4(link: LinkType, frame: &[u8]) -> bool {
        matches!(
            slice(link, frame).map(|p| p.net),
            Ok(Some(LaxNetSlice::Ipv4(_)))
        )
    }

    #[test]
    fn cooked_and_loopback_headers() {
        let ip = ipv4_udp();
        // Linux SLL: 16 bytes, protocol at 14..16.
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x08, 0x00]);
        sll.extend_from_slice(&ip);
        assert!(is_ipv4(LinkType::LINUX_SLL, &sll));
        // Linux SLL2: 20 bytes, protocol at 0..2.
        let mut sll2 = vec![0x08, 0x00];
        sll2.extend_from_slice(&[0u8; 18]);
        sll2.extend_from_slice(&ip);
        assert!(is_ipv4(LinkType::LINUX_SLL2, &sll2));
        // BSD NULL in either byte order, and LOOP.
        for fam in [[2, 0, 0, 0], [0, 0, 0, 2]] {
            let mut null = fam.to_vec();
            null.extend_from_slice(&ip);
            assert!(is_ipv4(LinkType::NULL, &null));
            assert!(is_ipv4(LinkType::LOOP, &null));
        }
        assert!(is_ipv4(LinkType::RAW, &ip));
        assert_eq!(
            slice(LinkType::NULL, &[7, 0, 0, 0, 1]).err(),
            Some(LinkSkip::NotIp)
        );
        assert_eq!(
            slice(LinkType::LINUX_SLL2, &[8, 0, 1]).err(),
            Some(LinkSkip::Truncated)
        );
        assert_eq!(slice(LinkType(147), &ip).err(), Some(LinkSkip::Unsupported));
    }

    #[test]
    fn vlan_and_qinq() {
        let ip = ipv4_udp();
        let mut eth = vec![0u8; 12];
        eth.extend_from_slice(&[0x88, 0xa8, 0, 10, 0x81, 0x00, 0, 20, 0x08, 0x00]);
        eth.extend_from_slice(&ip);
        assert!(is_ipv4(LinkType::ETHERNET, &eth));
    }
}
