//! Tunnel and encapsulation headers: what is inside GRE (plain, ERSPAN type I, II and III,
//! PPTP's enhanced GRE with PPP), VXLAN, GTP-U and PPPoE sessions. IP-in-IP needs no header of
//! its own: the inner packet follows the outer IP header.
//!
//! Owns these headers only: each function takes the bytes after the outer header and says
//! what follows (an Ethernet frame, an IP packet, or a payload of a given EtherType), or why
//! not. Feeding the inner packet back through the IP layer, and the depth limit, belong to
//! [`crate::net::Decoder`]. Hand-written because etherparse stops at the outer transport
//! header, and the few bytes of each header are simpler to check than a dependency per format.

/// What an encapsulation carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inner<'a> {
    /// An Ethernet frame (VXLAN, GRE transparent bridging, ERSPAN).
    Ethernet(&'a [u8]),
    /// A payload of this EtherType (GRE, PPP): IPv4, IPv6, or something that is not IP.
    EtherType(u16, &'a [u8]),
    /// An IP packet of either version (GTP-U).
    Ip(&'a [u8]),
}

/// Why an encapsulation could not be opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelSkip {
    Truncated,
    /// A header version or option this decoder does not know.
    Unsupported,
    /// A valid header whose payload is not IP (a GTP-U echo, a PPP control frame).
    NotIp,
}

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_IPV6: u16 = 0x86DD;
/// PPPoE session stage.
pub const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
const ETHERTYPE_TEB: u16 = 0x6558;
const ETHERTYPE_ERSPAN_2: u16 = 0x88BE;
const ETHERTYPE_ERSPAN_3: u16 = 0x22EB;
const ETHERTYPE_PPP: u16 = 0x880B;

/// The registered VXLAN port (RFC 7348) and the one Linux used before it.
pub const VXLAN_PORTS: [u16; 2] = [4789, 8472];
/// GTP-U (3GPP TS 29.281).
pub const GTP_U_PORT: u16 = 2152;

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn rest(b: &[u8], at: usize) -> Result<&[u8], TunnelSkip> {
    b.get(at..).ok_or(TunnelSkip::Truncated)
}

/// GRE (RFC 2784, RFC 2890 keys and sequence numbers; RFC 2637 enhanced GRE for PPTP).
pub fn gre(b: &[u8]) -> Result<Inner<'_>, TunnelSkip> {
    let (flags, version) = match b {
        [f, v, _, _, ..] => (*f, *v & 0x07),
        _ => return Err(TunnelSkip::Truncated),
    };
    let proto = be16(b, 2).ok_or(TunnelSkip::Truncated)?;
    let (checksum, routing, key, seq) = (
        flags & 0x80 != 0,
        flags & 0x40 != 0,
        flags & 0x20 != 0,
        flags & 0x10 != 0,
    );
    if routing {
        // RFC 1701 source routing: deprecated and variable-length; not seen in practice.
        return Err(TunnelSkip::Unsupported);
    }
    let mut len = 4;
    match version {
        0 => {
            len += 4 * (usize::from(checksum) + usize::from(key) + usize::from(seq));
        }
        1 => {
            // Enhanced GRE: key (payload length + call id) always, sequence and
            // acknowledgement numbers when flagged.
            let ack = b.get(1).is_some_and(|v| v & 0x80 != 0);
            len += 4 + 4 * (usize::from(seq) + usize::from(ack));
        }
        _ => return Err(TunnelSkip::Unsupported),
    }
    let payload = rest(b, len)?;
    match proto {
        ETHERTYPE_TEB => Ok(Inner::Ethernet(payload)),
        // ERSPAN type I has no header of its own and no sequence number; type II has both.
        ETHERTYPE_ERSPAN_2 if !seq => Ok(Inner::Ethernet(payload)),
        ETHERTYPE_ERSPAN_2 => Ok(Inner::Ethernet(rest(payload, 8)?)),
        ETHERTYPE_ERSPAN_3 => {
            // 12 bytes; the O bit (last bit of the header) adds an 8-byte platform
            // subheader.
            let o = payload.get(11).ok_or(TunnelSkip::Truncated)? & 0x01 != 0;
            Ok(Inner::Ethernet(rest(payload, if o { 20 } else { 12 })?))
        }
        ETHERTYPE_PPP => ppp(payload),
        other => Ok(Inner::EtherType(other, payload)),
    }
}

/// A PPP frame (inside PPTP's GRE or PPPoE): optional address and control bytes (FF 03), then
/// a one- or two-byte protocol number.
pub fn ppp(b: &[u8]) -> Result<Inner<'_>, TunnelSkip> {
    let b = match b {
        [0xFF, 0x03, rest @ ..] => rest,
        _ => b,
    };
    // Protocol-field compression (RFC 1661 §6.5): an odd first byte is the whole field.
    let (proto, at) = match b.first() {
        Some(p) if p & 1 == 1 => (u16::from(*p), 1),
        Some(_) => (be16(b, 0).ok_or(TunnelSkip::Truncated)?, 2),
        None => return Err(TunnelSkip::Truncated),
    };
    let payload = rest(b, at)?;
    match proto {
        0x0021 => Ok(Inner::EtherType(ETHERTYPE_IPV4, payload)),
        0x0057 => Ok(Inner::EtherType(ETHERTYPE_IPV6, payload)),
        _ => Err(TunnelSkip::NotIp),
    }
}

/// A PPPoE session frame (RFC 2516): version and type 1, code 0, session id, length, then PPP.
pub fn pppoe_session(b: &[u8]) -> Result<Inner<'_>, TunnelSkip> {
    match b {
        [0x11, 0x00, _, _, _, _, ..] => {}
        [_, _, _, _, _, _, ..] => return Err(TunnelSkip::Unsupported),
        _ => return Err(TunnelSkip::Truncated),
    }
    let len = usize::from(be16(b, 4).ok_or(TunnelSkip::Truncated)?);
    let body = rest(b, 6)?;
    // The length field excludes Ethernet padding; trust it when it fits.
    ppp(body.get(..len).unwrap_or(body))
}

/// VXLAN (RFC 7348): 8 bytes with the I flag (a valid VNI), then an Ethernet frame. `None`
/// when the datagram does not look like VXLAN (the port may carry something else).
pub fn vxlan(b: &[u8]) -> Option<&[u8]> {
    match b {
        [flags, _, _, _, _, _, _, _, ..] if flags & 0x08 != 0 => b.get(8..),
        _ => None,
    }
}

/// GTP-U (3GPP TS 29.281) G-PDU: version 1, protocol type GTP, message type 255; optional
/// sequence number, N-PDU number and extension headers; then the user's IP packet. `None` when
/// the datagram is not GTP-U at all, `Err(NotIp)` for GTP-U signalling (echo, error
/// indication).
pub fn gtp_u(b: &[u8]) -> Option<Result<&[u8], TunnelSkip>> {
    let [flags, kind, _, _, _, _, _, _, ..] = b else {
        return None;
    };
    if flags >> 5 != 1 || flags & 0x10 == 0 {
        return None; // not GTPv1, or GTP' (charging)
    }
    if *kind != 0xFF {
        return Some(Err(TunnelSkip::NotIp));
    }
    // The length field counts the bytes after the 8-byte mandatory header.
    let len = usize::from(be16(b, 2)?);
    let end = (8 + len).min(b.len());
    let b = b.get(..end)?;
    let mut at = 8;
    if flags & 0x07 != 0 {
        // Sequence number (2), N-PDU number (1), next extension header type (1).
        let mut next = *b.get(11)?;
        at = 12;
        while next != 0 {
            // Each extension: a length in 4-byte units, content, and the next type last.
            let units = usize::from(*b.get(at)?);
            if units == 0 {
                return Some(Err(TunnelSkip::Truncated));
            }
            at += 4 * units;
            next = *b.get(at - 1)?;
        }
    }
    Some(match b.get(at..) {
        Some(ip @ [v, ..]) if matches!(v >> 4, 4 | 6) => Ok(ip),
        Some(_) => Err(TunnelSkip::NotIp),
        None => Err(TunnelSkip::Truncated),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: &[u8] = &[0x45, 0, 0, 20];

    #[test]
    fn gre_plain_with_key_and_sequence() {
        let mut b = vec![0x30, 0x00, 0x08, 0x00, 0, 0, 0, 7, 0, 0, 0, 1];
        b.extend_from_slice(IP);
        assert_eq!(gre(&b), Ok(Inner::EtherType(ETHERTYPE_IPV4, IP)));
        let mut c = vec![0x80, 0x00, 0x86, 0xDD, 0xAB, 0xCD, 0, 0];
        c.extend_from_slice(IP);
        assert_eq!(gre(&c), Ok(Inner::EtherType(ETHERTYPE_IPV6, IP)));
    }

    #[test]
    fn gre_erspan_types() {
        let eth = [0xAAu8; 14];
        // Type II: sequence number flag, 8-byte ERSPAN header.
        let mut b = vec![0x10, 0x00, 0x88, 0xBE, 0, 0, 0, 1];
        b.extend_from_slice(&[0x10, 0, 0, 1, 0, 0, 0, 0]);
        b.extend_from_slice(&eth);
        assert_eq!(gre(&b), Ok(Inner::Ethernet(&eth)));
        // Type I: no sequence number, no ERSPAN header.
        let mut b = vec![0x00, 0x00, 0x88, 0xBE];
        b.extend_from_slice(&eth);
        assert_eq!(gre(&b), Ok(Inner::Ethernet(&eth)));
        // Type III with and without the platform subheader.
        for (o, extra) in [(0u8, 0usize), (1, 8)] {
            let mut b = vec![0x10, 0x00, 0x22, 0xEB, 0, 0, 0, 1];
            b.extend_from_slice(&[0x20, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, o]);
            b.extend(std::iter::repeat_n(0u8, extra));
            b.extend_from_slice(&eth);
            assert_eq!(gre(&b), Ok(Inner::Ethernet(&eth)));
        }
    }

    #[test]
    fn gre_pptp_ppp() {
        // Enhanced GRE: K and S set, version 1, PPP; PPP with FF 03 and IPv4.
        let mut b = vec![
            0x30, 0x01, 0x88, 0x0B, 0, 24, 0, 1, 0, 0, 0, 9, 0xFF, 0x03, 0x00, 0x21,
        ];
        b.extend_from_slice(IP);
        assert_eq!(gre(&b), Ok(Inner::EtherType(ETHERTYPE_IPV4, IP)));
        // Compressed protocol field, no address and control.
        let mut p = vec![0x21];
        p.extend_from_slice(IP);
        assert_eq!(ppp(&p), Ok(Inner::EtherType(ETHERTYPE_IPV4, IP)));
        assert_eq!(ppp(&[0xC0, 0x21, 1, 2]), Err(TunnelSkip::NotIp), "LCP");
    }

    #[test]
    fn gre_rejects_what_it_cannot_read() {
        assert_eq!(gre(&[0x00, 0x00]), Err(TunnelSkip::Truncated));
        assert_eq!(
            gre(&[0x40, 0x00, 0x08, 0x00, 0, 0, 0, 0]),
            Err(TunnelSkip::Unsupported)
        );
        assert_eq!(gre(&[0x00, 0x02, 0x08, 0x00]), Err(TunnelSkip::Unsupported));
        assert_eq!(
            gre(&[0xB0, 0x00, 0x08, 0x00, 0, 0]),
            Err(TunnelSkip::Truncated)
        );
    }

    #[test]
    fn pppoe_session_frames() {
        let mut b = vec![0x11, 0x00, 0x12, 0x34, 0x00, 0x06, 0x00, 0x21];
        b.extend_from_slice(IP);
        b.extend_from_slice(&[0, 0, 0]); // Ethernet padding beyond the PPPoE length
        assert_eq!(pppoe_session(&b), Ok(Inner::EtherType(ETHERTYPE_IPV4, IP)));
        assert_eq!(pppoe_session(&[0x11, 0x00]), Err(TunnelSkip::Truncated));
        assert_eq!(
            pppoe_session(&[0x11, 0x09, 0, 1, 0, 0]),
            Err(TunnelSkip::Unsupported)
        );
    }

    #[test]
    fn vxlan_needs_the_i_flag() {
        let mut b = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
        b.extend_from_slice(&[1, 2, 3]);
        assert_eq!(vxlan(&b), Some(&[1u8, 2, 3][..]));
        assert_eq!(vxlan(&[0, 0, 0, 0, 0, 0, 0, 0, 1]), None);
        assert_eq!(vxlan(&[0x08, 0, 0]), None);
    }

    #[test]
    fn gtp_u_with_and_without_extension_headers() {
        let mut b = vec![0x30, 0xFF, 0, 4, 0, 0, 0, 1];
        b.extend_from_slice(IP);
        assert_eq!(gtp_u(&b), Some(Ok(IP)));
        // E flag: sequence, N-PDU, next type 0x85 (PDU session container, 1 unit), then 0.
        let mut b = vec![
            0x34, 0xFF, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0x85, 1, 0x10, 0x05, 0x00,
        ];
        b.extend_from_slice(IP);
        assert_eq!(gtp_u(&b), Some(Ok(IP)));
        // Echo request: GTP-U, but no user packet.
        assert_eq!(
            gtp_u(&[0x32, 0x01, 0, 4, 0, 0, 0, 0, 0, 1, 0, 0]),
            Some(Err(TunnelSkip::NotIp))
        );
        // Not GTP at all.
        assert_eq!(gtp_u(b"INVITE sip:x SIP/2.0"), None);
        // An extension header of length zero would loop for ever.
        assert_eq!(
            gtp_u(&[0x34, 0xFF, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0x85, 0, 0, 0, 0]),
            Some(Err(TunnelSkip::Truncated))
        );
    }
}
