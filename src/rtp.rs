//! The RTP and RTCP wire formats, read only: the RTP fixed header (RFC 3550 §5.1) with its
//! CSRC list, extension and padding checked against the packet, RFC 4733 telephone-events,
//! and RTCP compound packets (RFC 3550 §6: SR, RR, SDES, BYE, APP; RFC 3611 XR) with their
//! report blocks. Pure functions over bytes: no sockets, no streams, no allocation.
//!
//! Written here rather than taken from a crate: `rtp-rs` and `rtcp` parse one packet type at a
//! time and reject what real captures hold (lying lengths are an error for the whole compound
//! instead of the one packet), and this is a few hundred lines with every access checked.

/// Why bytes are not an RTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtpError {
    /// Shorter than the 12-byte fixed header.
    Short,
    /// Version other than 2.
    Version,
    /// A payload type in 72–76: an RTCP packet type with the marker bit (RFC 3550 A.1).
    RtcpType,
    /// The CSRC list, the extension or the padding runs past the packet.
    Length,
}

/// The fixed header of an RTP packet and where its payload lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RtpHeader {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    /// Bytes of payload (after CSRCs and extension, before padding), and where it begins.
    pub payload_len: u16,
    pub payload_offset: u16,
    /// The first four bytes of the payload (zeros past its end): enough for an RFC 4733
    /// telephone-event, read later without the packet.
    pub payload_head: [u8; 4],
}

impl RtpHeader {
    /// Reads an RTP packet's header, checking every length it declares (RFC 3550 A.1).
    pub fn parse(b: &[u8]) -> Result<RtpHeader, RtpError> {
        let fixed: &[u8; 12] = b.first_chunk::<12>().ok_or(RtpError::Short)?;
        if fixed[0] >> 6 != 2 {
            return Err(RtpError::Version);
        }
        let payload_type = fixed[1] & 0x7f;
        if (72..=76).contains(&payload_type) {
            return Err(RtpError::RtcpType);
        }
        let padding = fixed[0] & 0x20 != 0;
        let extension = fixed[0] & 0x10 != 0;
        let csrcs = usize::from(fixed[0] & 0x0f);
        let mut start = 12 + 4 * csrcs;
        if extension {
            let ext: &[u8; 4] = b
                .get(start..)
                .and_then(|e| e.first_chunk::<4>())
                .ok_or(RtpError::Length)?;
            let words = usize::from(u16::from_be_bytes([ext[2], ext[3]]));
            start += 4 + 4 * words;
        }
        let mut end = b.len();
        if start > end {
            return Err(RtpError::Length);
        }
        if padding {
            let pad = usize::from(*b.last().ok_or(RtpError::Length)?);
            if pad == 0 || start + pad > end {
                return Err(RtpError::Length);
            }
            end -= pad;
        }
        let payload = b.get(start..end).ok_or(RtpError::Length)?;
        let mut payload_head = [0; 4];
        for (d, s) in payload_head.iter_mut().zip(payload) {
            *d = *s;
        }
        Ok(RtpHeader {
            marker: fixed[1] & 0x80 != 0,
            payload_type,
            sequence: u16::from_be_bytes([fixed[2], fixed[3]]),
            timestamp: u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]),
            ssrc: u32::from_be_bytes([fixed[8], fixed[9], fixed[10], fixed[11]]),
            payload_len: u16::try_from(payload.len()).unwrap_or(u16::MAX),
            payload_offset: u16::try_from(start).unwrap_or(u16::MAX),
            payload_head,
        })
    }
}

/// An RFC 4733 telephone-event payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TelephoneEvent {
    pub event: u8,
    pub end: bool,
    pub volume: u8,
    /// In timestamp units since the event's timestamp.
    pub duration: u16,
}

impl TelephoneEvent {
    /// Reads the first four payload bytes of a telephone-event packet (`payload_len` ≥ 4).
    pub fn parse(header: &RtpHeader) -> Option<TelephoneEvent> {
        if header.payload_len < 4 {
            return None;
        }
        let [event, flags, d0, d1] = header.payload_head;
        Some(TelephoneEvent {
            event,
            end: flags & 0x80 != 0,
            volume: flags & 0x3f,
            duration: u16::from_be_bytes([d0, d1]),
        })
    }

    /// The DTMF key the event names (RFC 4733 §3.2: 0–9, `*`, `#`, A–D), or `None` for the
    /// other events (tones, line events).
    pub fn digit(&self) -> Option<char> {
        match self.event {
            0..=9 => Some(char::from(b'0' + self.event)),
            10 => Some('*'),
            11 => Some('#'),
            12..=15 => Some(char::from(b'A' + self.event - 12)),
            _ => None,
        }
    }
}

/// What a UDP payload that is not SIP looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Rtp(RtpHeader),
    Rtcp,
}

/// Tells RTP from RTCP by the second byte (RFC 5761 §4: RTCP packet types 192–223 never
/// collide with the RTP payload types a session uses) and checks the header; `None` when the
/// bytes are neither.
pub fn classify(b: &[u8]) -> Option<Kind> {
    let (first, second) = (*b.first()?, *b.get(1)?);
    if first >> 6 != 2 {
        return None;
    }
    if (200..=207).contains(&second) {
        // The first packet of a compound must be SR or RR (RFC 3550 §6.1); some stacks send
        // lone XR or APP, which are accepted too, as Wireshark does.
        let len = 4 * (usize::from(u16::from_be_bytes([*b.get(2)?, *b.get(3)?])) + 1);
        return (len <= b.len()).then_some(Kind::Rtcp);
    }
    RtpHeader::parse(b).ok().map(Kind::Rtp)
}

/// One report block of an SR or RR (RFC 3550 §6.4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlock {
    /// The source this block reports on.
    pub ssrc: u32,
    /// Fraction lost since the last report, out of 256.
    pub fraction_lost: u8,
    /// Packets lost since the beginning (24-bit signed).
    pub cumulative_lost: i32,
    pub highest_sequence: u32,
    /// Interarrival jitter, timestamp units.
    pub jitter: u32,
    /// Middle 32 bits of the NTP time of the last SR received from the source (0: none).
    pub last_sr: u32,
    /// Delay since that SR, 1/65536 s.
    pub delay_since_last_sr: u32,
}

impl ReportBlock {
    fn parse(b: &[u8]) -> Option<ReportBlock> {
        let w = |i: usize| -> Option<u32> {
            Some(u32::from_be_bytes(*b.get(i..i + 4)?.first_chunk::<4>()?))
        };
        let lost = w(4)?;
        // 24-bit two's complement.
        let cumulative = ((lost & 0x00ff_ffff) << 8) as i32 >> 8;
        Some(ReportBlock {
            ssrc: w(0)?,
            fraction_lost: (lost >> 24) as u8,
            cumulative_lost: cumulative,
            highest_sequence: w(8)?,
            jitter: w(12)?,
            last_sr: w(16)?,
            delay_since_last_sr: w(20)?,
        })
    }
}

/// One packet of an RTCP compound, as far as analysis reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcpPacket<'a> {
    /// Sender report: the sender, the middle 32 bits of its NTP time (what a later RR's LSR
    /// echoes), its packet count, and its report blocks.
    SenderReport {
        ssrc: u32,
        ntp_middle: u32,
        packets: u32,
        blocks: Blocks<'a>,
    },
    ReceiverReport {
        ssrc: u32,
        blocks: Blocks<'a>,
    },
    /// RFC 3611 extended report: the sender, and the VoIP metrics block (BT=7) when present:
    /// loss and discard rates (out of 256), round-trip delay (ms), R factor and MOS (×10).
    ExtendedReport {
        ssrc: u32,
        voip_metrics: Option<VoipMetrics>,
    },
    /// SDES, BYE, APP and the feedback types: counted, not read.
    Other {
        packet_type: u8,
    },
}

/// RFC 3611 §4.7 VoIP metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoipMetrics {
    pub ssrc: u32,
    pub loss_rate: u8,
    pub discard_rate: u8,
    pub round_trip_ms: u16,
    /// 127: unavailable.
    pub r_factor: u8,
    /// ×10; 127: unavailable.
    pub mos_lq: u8,
    pub mos_cq: u8,
}

/// The report blocks of an SR or RR, read as they are iterated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blocks<'a>(&'a [u8]);

impl<'a> Iterator for Blocks<'a> {
    type Item = ReportBlock;
    fn next(&mut self) -> Option<ReportBlock> {
        let block = ReportBlock::parse(self.0)?;
        self.0 = self.0.get(24..).unwrap_or(&[]);
        Some(block)
    }
}

/// Why an RTCP compound stopped being read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RtcpError {
    /// A packet's length runs past the datagram, or its header is not RTCP version 2.
    Length,
}

/// Iterates over the packets of an RTCP compound; stops at the first packet whose length
/// lies (yielding the error once).
pub struct Compound<'a> {
    rest: &'a [u8],
}

impl<'a> Compound<'a> {
    pub fn new(b: &'a [u8]) -> Compound<'a> {
        Compound { rest: b }
    }
}

impl<'a> Iterator for Compound<'a> {
    type Item = Result<RtcpPacket<'a>, RtcpError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let b = self.rest;
        let bad = || Some(Err(RtcpError::Length));
        let Some(head) = b.first_chunk::<4>() else {
            self.rest = &[];
            return bad();
        };
        let len = 4 * (usize::from(u16::from_be_bytes([head[2], head[3]])) + 1);
        let Some(packet) = b.get(..len).filter(|_| head[0] >> 6 == 2) else {
            self.rest = &[];
            return bad();
        };
        self.rest = b.get(len..).unwrap_or(&[]);
        let count = usize::from(head[0] & 0x1f);
        let ssrc = |at: usize| -> u32 {
            packet
                .get(at..at + 4)
                .and_then(|s| s.first_chunk::<4>())
                .map_or(0, |s| u32::from_be_bytes(*s))
        };
        let blocks = |at: usize| {
            let end = (at + 24 * count).min(packet.len());
            Blocks(packet.get(at..end).unwrap_or(&[]))
        };
        Some(Ok(match head[1] {
            200 => RtcpPacket::SenderReport {
                ssrc: ssrc(4),
                ntp_middle: ssrc(8) << 16 | ssrc(12) >> 16,
                packets: ssrc(20),
                blocks: blocks(28),
            },
            201 => RtcpPacket::ReceiverReport {
                ssrc: ssrc(4),
                blocks: blocks(8),
            },
            207 => {
                let mut voip_metrics = None;
                let mut at = 8;
                while let Some(bh) = packet.get(at..).and_then(|p| p.first_chunk::<4>()) {
                    let words = usize::from(u16::from_be_bytes([bh[2], bh[3]]));
                    if bh[0] == 7
                        && let Some(v) = packet.get(at + 4..).and_then(|p| p.first_chunk::<32>())
                    {
                        voip_metrics = Some(VoipMetrics {
                            ssrc: u32::from_be_bytes([v[0], v[1], v[2], v[3]]),
                            loss_rate: v[4],
                            discard_rate: v[5],
                            round_trip_ms: u16::from_be_bytes([v[12], v[13]]),
                            r_factor: v[20],
                            mos_lq: v[22],
                            mos_cq: v[23],
                        });
                    }
                    at += 4 + 4 * words;
                }
                RtcpPacket::ExtendedReport {
                    ssrc: ssrc(4),
                    voip_metrics,
                }
            }
            t => RtcpPacket::Other { packet_type: t },
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(pt: u8, seq: u16, ts: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0x80, pt];
        v.extend_from_slice(&seq.to_be_bytes());
        v.extend_from_slice(&ts.to_be_bytes());
        v.extend_from_slice(&ssrc.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn reads_a_plain_rtp_header() {
        let p = rtp(0x80 | 8, 7, 160, 0xdead_beef, &[1, 2, 3, 4, 5]);
        let h = RtpHeader::parse(&p).unwrap();
        assert!(h.marker);
        assert_eq!(
            (
                h.payload_type,
                h.sequence,
                h.timestamp,
                h.ssrc,
                h.payload_len
            ),
            (8, 7, 160, 0xdead_beef, 5)
        );
        assert_eq!(h.payload_head, [1, 2, 3, 4]);
        assert_eq!(classify(&p), Some(Kind::Rtp(h)));
    }

    #[test]
    fn lying_lengths_are_refused() {
        let mut p = rtp(0, 1, 1, 1, &[0; 8]);
        p[0] = 0x8f; // 15 CSRCs: 60 bytes that are not there
        assert_eq!(RtpHeader::parse(&p), Err(RtpError::Length));
        let mut p = rtp(0, 1, 1, 1, &[0, 0, 0xff, 0xff]);
        p[0] = 0x90; // an extension of 65,535 words
        assert_eq!(RtpHeader::parse(&p), Err(RtpError::Length));
        let mut p = rtp(0, 1, 1, 1, &[0, 0, 0, 200]);
        p[0] = 0xa0; // 200 bytes of padding in a 4-byte payload
        assert_eq!(RtpHeader::parse(&p), Err(RtpError::Length));
        let mut p = rtp(0, 1, 1, 1, &[0, 0, 0, 0]);
        p[0] = 0xa0; // a padding count of zero
        assert_eq!(RtpHeader::parse(&p), Err(RtpError::Length));
        assert_eq!(RtpHeader::parse(&[0x80; 11]), Err(RtpError::Short));
        assert_eq!(RtpHeader::parse(&[0x40; 12]), Err(RtpError::Version));
        // Padding that fits is taken off the payload.
        let mut p = rtp(0, 1, 1, 1, &[9, 9, 0, 2]);
        p[0] = 0xa0;
        assert_eq!(RtpHeader::parse(&p).unwrap().payload_len, 2);
    }

    #[test]
    fn reads_telephone_events() {
        let p = rtp(101, 1, 1, 1, &[11, 0x8a, 0x03, 0x20]);
        let h = RtpHeader::parse(&p).unwrap();
        let e = TelephoneEvent::parse(&h).unwrap();
        assert_eq!(
            (e.digit(), e.end, e.volume, e.duration),
            (Some('#'), true, 10, 800)
        );
        assert_eq!(TelephoneEvent { event: 14, ..e }.digit(), Some('C'));
        assert_eq!(TelephoneEvent { event: 40, ..e }.digit(), None);
    }

    #[test]
    fn reads_an_rtcp_compound() {
        // SR with one block, then SDES, then an RR whose length lies.
        let mut b = vec![0x81, 200, 0, 12];
        for w in [1u32, 0x0001_0002, 0x0003_0004, 5, 6, 7] {
            b.extend_from_slice(&w.to_be_bytes());
        }
        for w in [9u32, 0x10ff_fffe, 1000, 80, 0x0002_0003, 65_536] {
            b.extend_from_slice(&w.to_be_bytes());
        }
        b.extend_from_slice(&[0x81, 202, 0, 1, 0, 0, 0, 1]);
        b.extend_from_slice(&[0x81, 201, 0, 40, 0, 0, 0, 1]);
        assert_eq!(classify(&b), Some(Kind::Rtcp));
        let got: Vec<_> = Compound::new(&b).collect();
        assert_eq!(got.len(), 3);
        let Ok(RtcpPacket::SenderReport {
            ssrc,
            ntp_middle,
            packets,
            blocks,
        }) = got[0]
        else {
            panic!("{:?}", got[0])
        };
        assert_eq!((ssrc, ntp_middle, packets), (1, 0x0002_0003, 6));
        let blocks: Vec<_> = blocks.collect();
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].fraction_lost, 0x10);
        assert_eq!(blocks[0].cumulative_lost, -2);
        assert_eq!(blocks[0].jitter, 80);
        assert_eq!(got[1], Ok(RtcpPacket::Other { packet_type: 202 }));
        assert_eq!(got[2], Err(RtcpError::Length));
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = crate::synth::Rng::new(3);
        for _ in 0..20_000 {
            let len = rng.below(80) as usize;
            let mut b: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
            if let Some(f) = b.first_mut() {
                *f = 0x80 | (*f & 0x3f);
            }
            let _ = classify(&b);
            let _ = Compound::new(&b).count();
        }
    }
}
