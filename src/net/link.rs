//! Link layers: turns a frame of a given link type into etherparse's lax slices (Ethernet with
//! 802.1Q/QinQ, Linux SLL and SLL2, raw IPv4/IPv6, BSD loopback/NULL). The few header bytes of
//! SLL, SLL2 and NULL are read here; etherparse does the rest.

use crate::capture::LinkType;
use crate::capture::filter::Facts;
use etherparse::{EtherType, LaxSlicedPacket};
use std::net::IpAddr;

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

/// The common case, read directly: an Ethernet II frame with no VLAN tag carrying a whole,
/// unfragmented IPv4 packet whose length fits the frame. Returns the source and destination
/// addresses, the protocol and the IP payload (trailing Ethernet padding cut off), exactly
/// as [`slice()`] and the decoder would find them; anything else (VLANs, IPv6, fragments, a
/// length that disagrees with the frame) is `None` and takes the general path. Most SIP
/// traffic is this, and etherparse's general slicing cost several times as much per frame.
pub fn plain_ethernet_ipv4(
    data: &[u8],
) -> Option<(std::net::Ipv4Addr, std::net::Ipv4Addr, u8, &[u8])> {
    if be16(data, 12)? != 0x0800 {
        return None;
    }
    let ip = data.get(14..)?;
    let first = *ip.first()?;
    let header_len = usize::from(first & 0x0f) * 4;
    let total_len = usize::from(be16(ip, 2)?);
    let not_fragmented = be16(ip, 6)? & 0x3fff == 0;
    if first >> 4 != 4 || header_len < 20 || total_len < header_len || !not_fragmented {
        return None;
    }
    let addr = |at: usize| -> Option<std::net::Ipv4Addr> {
        let b: [u8; 4] = ip.get(at..at + 4)?.try_into().ok()?;
        Some(std::net::Ipv4Addr::from(b))
    };
    let payload = ip.get(header_len..total_len)?;
    Some((addr(12)?, addr(16)?, *ip.get(9)?, payload))
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

/// What a capture filter tests in a frame ([`crate::capture::filter`]): the outer IP header
/// and the transport's ports.
pub fn filter_facts(link: LinkType, data: &[u8]) -> Option<Facts> {
    use etherparse::{LaxNetSlice, TransportSlice};
    let p = slice(link, data).ok()?;
    let (src, dst, proto, first) = match &p.net {
        Some(LaxNetSlice::Ipv4(v4)) => {
            let h = v4.header();
            (
                IpAddr::V4(h.source_addr()),
                IpAddr::V4(h.destination_addr()),
                v4.payload().ip_number.0,
                h.fragments_offset().value() == 0,
            )
        }
        Some(LaxNetSlice::Ipv6(v6)) => {
            let h = v6.header();
            let first = !v6.payload().fragmented || p.transport.is_some();
            (
                IpAddr::V6(h.source_addr()),
                IpAddr::V6(h.destination_addr()),
                v6.payload().ip_number.0,
                first,
            )
        }
        _ => return None,
    };
    let ports = match &p.transport {
        Some(TransportSlice::Udp(u)) => Some((u.source_port(), u.destination_port())),
        Some(TransportSlice::Tcp(t)) => Some((t.source_port(), t.destination_port())),
        _ if proto == 132 => {
            let b = match &p.net {
                Some(LaxNetSlice::Ipv4(v4)) => v4.payload().payload,
                Some(LaxNetSlice::Ipv6(v6)) => v6.payload().payload,
                _ => &[],
            };
            match b {
                [a, b, c, d, ..] => {
                    Some((u16::from_be_bytes([*a, *b]), u16::from_be_bytes([*c, *d])))
                }
                _ => None,
            }
        }
        _ if !first => None,
        _ => Some((0, 0)),
    };
    Some(Facts {
        src,
        dst,
        proto,
        ports,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::LaxNetSlice;

    /// What the general path finds in an Ethernet frame, in the fast path's terms: `Some` only
    /// for an unfragmented IPv4 packet.
    fn general(frame: &[u8]) -> Option<(std::net::Ipv4Addr, std::net::Ipv4Addr, u8, Vec<u8>)> {
        let pkt = slice(LinkType::ETHERNET, frame).ok()?;
        match pkt.net {
            Some(LaxNetSlice::Ipv4(v4)) if !v4.payload().fragmented => Some((
                v4.header().source_addr(),
                v4.header().destination_addr(),
                v4.payload().ip_number.0,
                v4.payload().payload.to_vec(),
            )),
            _ => None,
        }
    }

    /// Wherever the fast path answers, it answers as the general path does: on every frame of
    /// a generated capture (UDP, TCP, fragments) and on thousands of copies with their
    /// Ethernet and IP header bytes overwritten (lengths, version, flags, EtherType, VLAN).
    #[test]
    fn the_ipv4_fast_path_agrees_with_the_general_path() {
        let cfg = crate::synth::SynthConfig {
            calls: 40,
            ..Default::default()
        };
        let mut pcap = Vec::new();
        crate::synth::write_pcap(&cfg, &mut pcap).unwrap();
        let mut frames = Vec::new();
        let mut at = 24;
        while let Some(len) = pcap.get(at + 8..at + 12) {
            let len = u32::from_le_bytes(len.try_into().unwrap()) as usize;
            frames.push(pcap[at + 16..at + 16 + len].to_vec());
            at += 16 + len;
        }
        assert!(frames.len() > 400);
        let mut rng = crate::synth::Rng::new(3);
        let mut fast = 0;
        for (i, frame) in frames.iter().enumerate() {
            let mut variants = vec![frame.clone()];
            for _ in 0..8 {
                let mut f = frame.clone();
                let at = [12, 13, 14, 16, 17, 20, 21][rng.below(7) as usize];
                f[at] = rng.next_u64() as u8;
                if rng.below(4) == 0 {
                    f.truncate(rng.below(f.len() as u64) as usize);
                }
                variants.push(f);
            }
            for f in variants {
                let got = plain_ethernet_ipv4(&f);
                if let Some((src, dst, proto, payload)) = got {
                    fast += 1;
                    assert_eq!(
                        general(&f),
                        Some((src, dst, proto, payload.to_vec())),
                        "frame {i}: {f:02x?}"
                    );
                }
            }
        }
        assert!(fast > frames.len(), "the fast path took {fast} frames");
    }

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
