//! HEP, the Homer Encapsulation Protocol: how Kamailio (`siptrace`), OpenSIPS, FreeSWITCH,
//! Asterisk, heplify and sngrep ship captured SIP to collectors. Version 3 (chunks after a
//! `HEP3` header) is decoded and encoded; versions 1 and 2 (a fixed header) are decoded.
//!
//! Owns the wire format only: bytes in, a [`HepPacket`] (addresses, ports, time, transport,
//! payload, agent id, node name, correlation id) out, and back. Where HEP packets come from
//! (a capture's UDP 9060, a listening socket) and where they go belongs to [`crate::net`],
//! [`crate::capture::hep`] and the command line's sender (`--hep-send`). Hand-written: the HEP crates on crates.io are
//! unmaintained or encode only, and the format is a dozen chunk types.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The port HEP is sent to by default.
pub const DEFAULT_PORT: u16 = 9060;

/// One decoded HEP packet: a captured message with where and when it was captured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HepPacket<'a> {
    pub version: u8,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// IP protocol of the captured message (17 UDP, 6 TCP, 132 SCTP).
    pub ip_protocol: u8,
    /// HEP payload type: 1 = SIP.
    pub payload_type: u8,
    /// Capture time in nanoseconds since the epoch, when the packet says.
    pub time_ns: Option<i64>,
    pub capture_id: Option<u32>,
    pub auth_key: Option<&'a [u8]>,
    pub node: Option<&'a [u8]>,
    pub correlation_id: Option<&'a [u8]>,
    /// The captured message (decompressed when it came gzip-compressed).
    pub payload: Cow<'a, [u8]>,
}

pub const PAYLOAD_SIP: u8 = 1;
/// RTCP, carried as JSON (captagent's, heplify's and Homer's convention).
pub const PAYLOAD_RTCP_JSON: u8 = 5;
/// A JSON report or log line tied to a call by the correlation id (Homer's "logs").
pub const PAYLOAD_LOG_JSON: u8 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HepError {
    #[error("not a HEP packet")]
    NotHep,
    #[error("HEP packet cut short")]
    Truncated,
    #[error("HEP packet without addresses, ports or payload")]
    Incomplete,
    #[error("HEP compressed payload that does not inflate")]
    BadCompression,
    /// A gzip bomb, or a payload no SIP message needs: dropped whole and counted, rather than
    /// cut and handed on as a message it is not.
    #[error("HEP compressed payload inflates past 1 MiB")]
    Oversized,
}

/// Largest payload inflated from a compressed chunk (a SIP message is far smaller).
const MAX_INFLATED: u64 = 1 << 20;

fn be16(b: &[u8]) -> Option<u16> {
    Some(u16::from_be_bytes(b.get(..2)?.try_into().ok()?))
}

fn be32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}

/// True when `b` starts like a HEP packet of any version.
pub fn looks_like_hep(b: &[u8]) -> bool {
    b.starts_with(b"HEP3") || matches!(b, [1 | 2, len, 2 | 10, ..] if *len >= 16)
}

/// Length of the HEP v3 packet at the start of `b` (from its header), for framing HEP over TCP.
pub fn v3_length(b: &[u8]) -> Option<usize> {
    if !b.starts_with(b"HEP3") {
        return None;
    }
    be16(b.get(4..)?).map(usize::from)
}

/// Decodes one HEP packet (v1, v2 or v3).
pub fn decode(b: &[u8]) -> Result<HepPacket<'_>, HepError> {
    if b.starts_with(b"HEP3") {
        decode_v3(b)
    } else if matches!(b.first(), Some(1 | 2)) {
        decode_v2(b)
    } else {
        Err(HepError::NotHep)
    }
}

fn decode_v3(b: &[u8]) -> Result<HepPacket<'_>, HepError> {
    let total =
        usize::from(be16(b.get(4..).ok_or(HepError::Truncated)?).ok_or(HepError::Truncated)?);
    let b = b.get(..total).ok_or(HepError::Truncated)?;
    let mut at = 6;
    let (mut family, mut proto, mut ptype) = (None, 0u8, PAYLOAD_SIP);
    let (mut src4, mut dst4, mut src6, mut dst6) = (None, None, None, None);
    let (mut sport, mut dport) = (None, None);
    let (mut secs, mut usecs) = (None, None);
    let mut capture_id = None;
    let (mut auth_key, mut node, mut correlation_id) = (None, None, None);
    let mut payload: Option<Cow<'_, [u8]>> = None;
    while at < b.len() {
        let head = b.get(at..at + 6).ok_or(HepError::Truncated)?;
        let vendor = be16(head).ok_or(HepError::Truncated)?;
        let kind = be16(head.get(2..).ok_or(HepError::Truncated)?).ok_or(HepError::Truncated)?;
        let len = usize::from(
            be16(head.get(4..).ok_or(HepError::Truncated)?).ok_or(HepError::Truncated)?,
        );
        if len < 6 {
            return Err(HepError::Truncated);
        }
        let data = b.get(at + 6..at + len).ok_or(HepError::Truncated)?;
        at += len;
        if vendor != 0 {
            continue; // vendor chunks are not ours to read
        }
        let byte = || data.first().copied();
        match kind {
            1 => family = byte(),
            2 => proto = byte().unwrap_or(0),
            3 => src4 = data.try_into().ok().map(|a: [u8; 4]| Ipv4Addr::from(a)),
            4 => dst4 = data.try_into().ok().map(|a: [u8; 4]| Ipv4Addr::from(a)),
            5 => src6 = data.try_into().ok().map(|a: [u8; 16]| Ipv6Addr::from(a)),
            6 => dst6 = data.try_into().ok().map(|a: [u8; 16]| Ipv6Addr::from(a)),
            7 => sport = be16(data),
            8 => dport = be16(data),
            9 => secs = be32(data),
            10 => usecs = be32(data),
            11 => ptype = byte().unwrap_or(PAYLOAD_SIP),
            12 => capture_id = be32(data),
            14 => auth_key = Some(data),
            15 => payload = Some(Cow::Borrowed(data)),
            16 => payload = Some(Cow::Owned(inflate(data)?)),
            17 => correlation_id = Some(data),
            19 => node = Some(data),
            _ => {}
        }
    }
    let (src_ip, dst_ip) = match family {
        Some(10) => (
            src6.map(IpAddr::V6).ok_or(HepError::Incomplete)?,
            dst6.map(IpAddr::V6).ok_or(HepError::Incomplete)?,
        ),
        _ => (
            src4.map(IpAddr::V4)
                .or(src6.map(IpAddr::V6))
                .ok_or(HepError::Incomplete)?,
            dst4.map(IpAddr::V4)
                .or(dst6.map(IpAddr::V6))
                .ok_or(HepError::Incomplete)?,
        ),
    };
    let time_ns = secs
        .map(|s| i64::from(s) * 1_000_000_000 + i64::from(usecs.unwrap_or(0).min(999_999)) * 1000);
    Ok(HepPacket {
        version: 3,
        src: SocketAddr::new(src_ip, sport.ok_or(HepError::Incomplete)?),
        dst: SocketAddr::new(dst_ip, dport.ok_or(HepError::Incomplete)?),
        ip_protocol: proto,
        payload_type: ptype,
        time_ns,
        capture_id,
        auth_key,
        node,
        correlation_id,
        payload: payload.ok_or(HepError::Incomplete)?,
    })
}

fn inflate(data: &[u8]) -> Result<Vec<u8>, HepError> {
    use std::io::Read;
    let mut out = Vec::new();
    // One byte more than the limit tells a payload at the limit from one past it.
    flate2::read::GzDecoder::new(data)
        .take(MAX_INFLATED + 1)
        .read_to_end(&mut out)
        .map_err(|_| HepError::BadCompression)?;
    if out.len() as u64 > MAX_INFLATED {
        return Err(HepError::Oversized);
    }
    Ok(out)
}

/// HEP v1 and v2 (captagent's fixed header): version, header length, family, protocol,
/// ports, addresses; v2 then adds seconds, microseconds (host byte order, little-endian in
/// practice) and a 16-bit capture id, padded to 12 bytes.
fn decode_v2(b: &[u8]) -> Result<HepPacket<'_>, HepError> {
    let [version, hlen, family, proto, ..] = *b else {
        return Err(HepError::Truncated);
    };
    let sport = be16(b.get(4..).ok_or(HepError::Truncated)?).ok_or(HepError::Truncated)?;
    let dport = be16(b.get(6..).ok_or(HepError::Truncated)?).ok_or(HepError::Truncated)?;
    let (src, dst, addr_end) = match family {
        2 => {
            let a: [u8; 4] = b
                .get(8..12)
                .and_then(|s| s.try_into().ok())
                .ok_or(HepError::Truncated)?;
            let d: [u8; 4] = b
                .get(12..16)
                .and_then(|s| s.try_into().ok())
                .ok_or(HepError::Truncated)?;
            (IpAddr::from(a), IpAddr::from(d), 16)
        }
        10 => {
            let a: [u8; 16] = b
                .get(8..24)
                .and_then(|s| s.try_into().ok())
                .ok_or(HepError::Truncated)?;
            let d: [u8; 16] = b
                .get(24..40)
                .and_then(|s| s.try_into().ok())
                .ok_or(HepError::Truncated)?;
            (IpAddr::from(a), IpAddr::from(d), 40)
        }
        _ => return Err(HepError::NotHep),
    };
    if usize::from(hlen) != addr_end {
        return Err(HepError::NotHep);
    }
    let (time_ns, capture_id, body) = if version == 2 {
        let t = b.get(addr_end..addr_end + 12).ok_or(HepError::Truncated)?;
        let le32 = |s: &[u8]| s.try_into().ok().map(u32::from_le_bytes);
        let secs = t.get(..4).and_then(le32).ok_or(HepError::Truncated)?;
        let usecs = t.get(4..8).and_then(le32).ok_or(HepError::Truncated)?;
        let id = t
            .get(8..10)
            .and_then(|s| s.try_into().ok())
            .map(u16::from_le_bytes)
            .ok_or(HepError::Truncated)?;
        let ns = i64::from(secs) * 1_000_000_000 + i64::from(usecs.min(999_999)) * 1000;
        (Some(ns), Some(u32::from(id)), addr_end + 12)
    } else {
        (None, None, addr_end)
    };
    Ok(HepPacket {
        version,
        src: SocketAddr::new(src, sport),
        dst: SocketAddr::new(dst, dport),
        ip_protocol: proto,
        payload_type: PAYLOAD_SIP,
        time_ns,
        capture_id,
        auth_key: None,
        node: None,
        correlation_id: None,
        payload: Cow::Borrowed(b.get(body..).ok_or(HepError::Truncated)?),
    })
}

/// What the sender puts in every packet besides the message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SenderIdentity {
    pub capture_id: u32,
    pub auth_key: Option<String>,
    pub node: Option<String>,
}

/// Encodes a HEP v3 packet of a SIP message. `None` when it would exceed HEP's 64 KiB length
/// field.
#[allow(clippy::too_many_arguments)] // the fields of one packet, each its own chunk
pub fn encode(
    src: SocketAddr,
    dst: SocketAddr,
    ip_protocol: u8,
    time_ns: i64,
    payload: &[u8],
    correlation_id: Option<&[u8]>,
    me: &SenderIdentity,
) -> Option<Vec<u8>> {
    encode_typed(
        src,
        dst,
        ip_protocol,
        time_ns,
        PAYLOAD_SIP,
        payload,
        correlation_id,
        me,
    )
}

/// [`encode`] with the payload's type ([`PAYLOAD_SIP`], [`PAYLOAD_RTCP_JSON`],
/// [`PAYLOAD_LOG_JSON`]).
#[allow(clippy::too_many_arguments)] // the fields of one packet, each its own chunk
pub fn encode_typed(
    src: SocketAddr,
    dst: SocketAddr,
    ip_protocol: u8,
    time_ns: i64,
    payload_type: u8,
    payload: &[u8],
    correlation_id: Option<&[u8]>,
    me: &SenderIdentity,
) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(payload.len() + 128);
    out.extend_from_slice(b"HEP3\0\0");
    fn chunk(out: &mut Vec<u8>, kind: u16, data: &[u8]) -> Option<()> {
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(&kind.to_be_bytes());
        out.extend_from_slice(&u16::try_from(data.len() + 6).ok()?.to_be_bytes());
        out.extend_from_slice(data);
        Some(())
    }
    let (family, s, d): (u8, Vec<u8>, Vec<u8>) = match (src.ip(), dst.ip()) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (2, a.octets().to_vec(), b.octets().to_vec()),
        (a, b) => {
            let six = |ip: IpAddr| match ip {
                IpAddr::V4(v4) => v4.to_ipv6_mapped(),
                IpAddr::V6(v6) => v6,
            };
            (10, six(a).octets().to_vec(), six(b).octets().to_vec())
        }
    };
    chunk(&mut out, 1, &[family])?;
    chunk(&mut out, 2, &[ip_protocol])?;
    chunk(&mut out, if family == 2 { 3 } else { 5 }, &s)?;
    chunk(&mut out, if family == 2 { 4 } else { 6 }, &d)?;
    chunk(&mut out, 7, &src.port().to_be_bytes())?;
    chunk(&mut out, 8, &dst.port().to_be_bytes())?;
    let secs = u32::try_from(time_ns.div_euclid(1_000_000_000)).unwrap_or(0);
    let usecs = (time_ns.rem_euclid(1_000_000_000) / 1000) as u32;
    chunk(&mut out, 9, &secs.to_be_bytes())?;
    chunk(&mut out, 10, &usecs.to_be_bytes())?;
    chunk(&mut out, 11, &[payload_type])?;
    chunk(&mut out, 12, &me.capture_id.to_be_bytes())?;
    if let Some(k) = &me.auth_key {
        chunk(&mut out, 14, k.as_bytes())?;
    }
    if let Some(c) = correlation_id {
        chunk(&mut out, 17, c)?;
    }
    if let Some(n) = &me.node {
        chunk(&mut out, 19, n.as_bytes())?;
    }
    chunk(&mut out, 15, payload)?;
    let total = u16::try_from(out.len()).ok()?;
    out.get_mut(4..6)?.copy_from_slice(&total.to_be_bytes());
    Some(out)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const SIP: &[u8] =
        b"OPTIONS sip:a@b SIP/2.0\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n";

    pub(crate) fn me() -> SenderIdentity {
        SenderIdentity {
            capture_id: 2001,
            auth_key: Some("secret".into()),
            node: Some("edge-1".into()),
        }
    }

    #[test]
    fn v3_round_trips_ipv4_and_ipv6() {
        for (src, dst) in [
            ("10.0.0.1:5060", "10.0.0.2:5070"),
            ("[2001:db8::1]:5060", "[2001:db8::2]:5060"),
        ] {
            let (src, dst) = (src.parse().unwrap(), dst.parse().unwrap());
            let t = 1_700_000_000_123_456_000;
            let b = encode(src, dst, 17, t, SIP, Some(b"corr-1"), &me()).unwrap();
            assert_eq!(v3_length(&b), Some(b.len()));
            assert!(looks_like_hep(&b));
            let p = decode(&b).unwrap();
            assert_eq!((p.src, p.dst, p.ip_protocol, p.version), (src, dst, 17, 3));
            assert_eq!(p.time_ns, Some(t));
            assert_eq!(p.capture_id, Some(2001));
            assert_eq!(p.auth_key, Some(&b"secret"[..]));
            assert_eq!(p.node, Some(&b"edge-1"[..]));
            assert_eq!(p.correlation_id, Some(&b"corr-1"[..]));
            assert_eq!(&*p.payload, SIP);
        }
    }

    #[test]
    fn v3_compressed_payload_and_vendor_chunks() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(SIP).unwrap();
        let zipped = gz.finish().unwrap();
        let src = "10.0.0.1:5060".parse().unwrap();
        let mut b = encode(src, src, 17, 0, b"", None, &SenderIdentity::default()).unwrap();
        // Replace the empty payload chunk (last 6 bytes) by a vendor chunk and chunk 16.
        b.truncate(b.len() - 6);
        b.extend_from_slice(&[0x00, 0x99, 0x00, 0x01, 0x00, 0x08, 0xAA, 0xBB]);
        b.extend_from_slice(&[0, 0, 0, 16]);
        b.extend_from_slice(&((zipped.len() + 6) as u16).to_be_bytes());
        b.extend_from_slice(&zipped);
        let total = (b.len() as u16).to_be_bytes();
        b[4..6].copy_from_slice(&total);
        assert_eq!(&*decode(&b).unwrap().payload, SIP);
    }

    /// A compressed payload that inflates past the limit (a gzip bomb: 8 MiB of zeros in a
    /// few KiB) is refused whole, never cut and handed on.
    #[test]
    fn a_gzip_bomb_is_refused() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![0u8; 8 << 20]).unwrap();
        let zipped = gz.finish().unwrap();
        assert!(zipped.len() < 60_000);
        let src = "10.0.0.1:5060".parse().unwrap();
        let mut b = encode(src, src, 17, 0, b"", None, &SenderIdentity::default()).unwrap();
        b.truncate(b.len() - 6);
        b.extend_from_slice(&[0, 0, 0, 16]);
        b.extend_from_slice(&((zipped.len() + 6) as u16).to_be_bytes());
        b.extend_from_slice(&zipped);
        let total = (b.len() as u16).to_be_bytes();
        b[4..6].copy_from_slice(&total);
        assert_eq!(decode(&b).err(), Some(HepError::Oversized));
    }

    #[test]
    fn v2_fixed_header() {
        let mut b = vec![
            2, 16, 2, 17, 0x13, 0xC4, 0x13, 0xC5, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        b.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        b.extend_from_slice(&250_000u32.to_le_bytes());
        b.extend_from_slice(&7u16.to_le_bytes());
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(SIP);
        assert!(looks_like_hep(&b));
        let p = decode(&b).unwrap();
        assert_eq!(p.src, "10.0.0.1:5060".parse().unwrap());
        assert_eq!(p.dst, "10.0.0.2:5061".parse().unwrap());
        assert_eq!(p.time_ns, Some(1_700_000_000_250_000_000));
        assert_eq!(p.capture_id, Some(7));
        assert_eq!(&*p.payload, SIP);
    }

    #[test]
    fn damaged_packets_are_errors_not_panics() {
        let src = "10.0.0.1:5060".parse().unwrap();
        let b = encode(src, src, 17, 0, SIP, None, &me()).unwrap();
        for n in 0..b.len() {
            let _ = decode(&b[..n]);
        }
        assert_eq!(decode(&b[..b.len() - 1]), Err(HepError::Truncated));
        let mut zero = b.clone();
        zero[8..10].copy_from_slice(&[0, 0]); // first chunk's type 0, length stays
        zero[10..12].copy_from_slice(&[0, 0]); // and a length below the chunk header
        assert_eq!(decode(&zero), Err(HepError::Truncated));
        assert_eq!(decode(b"INVITE sip:x SIP/2.0"), Err(HepError::NotHep));
        // No payload chunk.
        let mut none = encode(src, src, 17, 0, b"", None, &SenderIdentity::default()).unwrap();
        none.truncate(none.len() - 6);
        let total = (none.len() as u16).to_be_bytes();
        none[4..6].copy_from_slice(&total);
        assert_eq!(decode(&none), Err(HepError::Incomplete));
    }

    #[test]
    fn oversized_packets_are_not_encoded() {
        let src = "10.0.0.1:5060".parse().unwrap();
        assert!(encode(src, src, 17, 0, &vec![b'x'; 70_000], None, &me()).is_none());
    }
}
