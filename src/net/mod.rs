//! From frames to SIP message bytes: link layers, IPv4/IPv6 (with extension headers and
//! fragment reassembly), UDP, TCP reassembly and SIP framing.
//!
//! Owns everything below SIP: addresses, ports, transports, and the tunnels around them
//! (IP-in-IP, GRE and ERSPAN, VXLAN, GTP-U, PPPoE; see [`tunnel`]), whose inner packets go
//! through the same layers again. It recognises SIP by content on
//! any port (a start line), never by port number, and hands over each message's bytes as a
//! [`SipPdu`]. It does not parse headers beyond what framing needs (Content-Length), and does
//! not know about transactions or calls. What it skips is counted by reason in [`NetStats`].

pub mod defrag;
pub mod framing;
pub mod hep_stream;
pub mod link;
pub mod sctp;
mod skip;
pub mod tcp;
pub mod tunnel;
pub mod websocket;

pub use skip::{SkipCounts, SkipReason};

use crate::capture::Frame;
use crate::time::Timestamp;
use defrag::{DefragLimits, Defragmenter, FragKey, Fragment};
use etherparse::{EtherType, Ipv6ExtensionSlice, LaxNetSlice, LaxSlicedPacket, LinkSlice};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use tcp::{Reassembler, Segment, SegmentMeta, StreamPayload, TcpLimits, TcpStats};

/// The transport a SIP message crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
    Sctp,
    Ws,
    /// SIP over TLS, decrypted with a key log.
    Tls,
    /// WebSocket over TLS, decrypted with a key log.
    Wss,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Sctp => "SCTP",
            Transport::Ws => "WS",
            Transport::Tls => "TLS",
            Transport::Wss => "WSS",
        }
    }

    /// Reliable transports: SIP timers A/E/G do not retransmit over them (RFC 3261 §17.1.1.2).
    pub fn is_reliable(self) -> bool {
        !matches!(self, Transport::Udp)
    }
}

/// The bytes of SIP as they crossed the wire, with where and when: one message from a stream,
/// or a datagram's payload, which may hold several messages (the parser splits them, RFC 3261
/// §18.3, on Content-Length). Borrowed from the frame or the reassembly buffer: the decoder
/// copies nothing on the way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SipPdu<'a> {
    pub source: usize,
    /// Frame that carried (or completed) the message.
    pub frame: u64,
    /// Every frame that carried a byte of the message (IP fragments, TCP segments), in
    /// stream order; `[frame]` for a message in one datagram.
    pub frames: &'a [u64],
    pub time: Timestamp,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub transport: Transport,
    pub bytes: &'a [u8],
    /// Set when the message came encapsulated in HEP: the addresses, ports and time above are
    /// those the HEP agent captured, and this is what it said about itself.
    pub hep: Option<HepMeta<'a>>,
}

/// What a HEP agent says about a message it shipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HepMeta<'a> {
    pub version: u8,
    pub capture_id: Option<u32>,
    pub node: Option<&'a [u8]>,
    pub correlation_id: Option<&'a [u8]>,
}

/// Frame numbers (within one source): the frames that carried a message.
pub type Frames = smallvec::SmallVec<[u64; 2]>;

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Where decoded SIP messages go.
pub type Sink<'s> = dyn FnMut(SipPdu<'_>) + 's;

/// Counters of one source, reported in the JSON `sources` list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NetStats {
    pub packets: u64,
    /// Packets found inside a tunnel (IP-in-IP, GRE, ERSPAN, VXLAN, GTP-U, PPPoE) and decoded;
    /// one per tunnel level opened.
    pub tunneled: u64,
    /// SIP messages that came encapsulated in HEP.
    pub hep: u64,
    /// UDP datagrams handed to the media analysis as RTP or RTCP (with media analysis on).
    #[serde(skip_serializing_if = "is_zero")]
    pub media: u64,
    /// Frames or byte runs not turned into SIP messages, by reason.
    pub skipped: SkipCounts,
}

impl NetStats {
    pub fn skip(&mut self, reason: SkipReason) {
        self.skipped.add(reason, 1);
    }
    fn add(&mut self, reason: SkipReason, n: u64) {
        self.skipped.add(reason, n);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct NetLimits {
    pub defrag: DefragLimits,
    pub tcp: TcpLimits,
}

/// Tunnels inside tunnels opened at most (a GRE in a VXLAN in GTP-U is already unusual); deeper
/// packets are counted as `tunnel_depth`.
const MAX_TUNNEL_DEPTH: u8 = 4;

/// The EtherType and payload where etherparse stopped at the link layer (after any VLAN tags).
fn ether_payload<'a>(pkt: &LaxSlicedPacket<'a>) -> Option<(u16, &'a [u8])> {
    if let Some(ext) = pkt.link_exts.last() {
        return ext.payload().map(|p| (p.ether_type.0, p.payload));
    }
    match &pkt.link {
        Some(l @ LinkSlice::Ethernet2(_)) => l.ether_payload().map(|p| (p.ether_type.0, p.payload)),
        _ => None,
    }
}

/// Decodes frames into SIP PDUs. One per analysis: fragments and TCP streams may span sources.
/// A HEP packet cut from a TCP stream, waiting to be decoded (see `Decoder::tcp_emitter`).
struct StreamedHep {
    meta: SegmentMeta,
    frames: Frames,
    packet: Vec<u8>,
}

pub struct Decoder {
    defrag: Defragmenter,
    tcp: Reassembler,
    sctp: sctp::SctpAssembler,
    stats: BTreeMap<usize, NetStats>,
    /// TCP counters, folded into `stats` of the source being read when they change.
    tcp_stats: TcpStats,
    last_sweep: Option<Timestamp>,
    last_time: Timestamp,
    /// HEP packets cut from TCP streams during one call into the reassembler (kept for its
    /// allocation; empty between frames).
    tcp_hep: Vec<StreamedHep>,
    /// Hand RTP and RTCP datagrams over for the media analysis ([`Decoder::set_media`]).
    media: bool,
    /// Media datagrams decoded from the current frame, with the RTCP bytes they refer to;
    /// emptied by [`Decoder::drain_media`] after each frame.
    media_out: Vec<MediaDatagram>,
    media_bytes: Vec<u8>,
    /// Keep RTP datagrams' bytes too ([`Decoder::set_media_payloads`]).
    media_payloads: bool,
}

/// A UDP datagram that is not SIP and whose header reads as RTP or RTCP ([`crate::rtp`]),
/// for the media analysis. Only the RTP header travels on, never the payload.
#[derive(Debug, Clone)]
pub struct MediaDatagram {
    pub source: usize,
    pub frame: u64,
    pub time: Timestamp,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub payload: MediaPayload,
    /// With [`Decoder::set_media_payloads`], an RTP datagram's bytes (header included) in the
    /// buffer [`Decoder::drain_media`] hands over; never in the engine.
    pub rtp_bytes: Option<std::ops::Range<usize>>,
}

#[derive(Debug, Clone)]
pub enum MediaPayload {
    Rtp(crate::rtp::RtpHeader),
    /// The compound's bytes, in the buffer [`Decoder::drain_media`] hands over with it.
    Rtcp(std::ops::Range<usize>),
}

/// An IP packet's addresses and the protocol it carries.
struct Addrs {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
}

fn is_tls_record(payload: &[u8]) -> bool {
    // ContentType handshake/alert/application data/CCS, then version 3.x.
    matches!(payload, [0x14..=0x17, 0x03, 0x00..=0x04, ..])
}

impl Decoder {
    pub fn new(limits: NetLimits) -> Decoder {
        Decoder {
            defrag: Defragmenter::new(limits.defrag),
            tcp: Reassembler::new(limits.tcp),
            sctp: sctp::SctpAssembler::new(limits.tcp.max_message),
            stats: BTreeMap::new(),
            tcp_stats: TcpStats::default(),
            last_sweep: None,
            last_time: Timestamp::default(),
            tcp_hep: Vec::new(),
            media: false,
            media_out: Vec::new(),
            media_bytes: Vec::new(),
            media_payloads: false,
        }
    }

    /// Hands RTP datagrams over with their bytes (the audio export); the engine never asks.
    pub fn set_media_payloads(&mut self, on: bool) {
        self.media_payloads = on;
    }

    /// Hands UDP datagrams that read as RTP or RTCP over as [`MediaDatagram`]s (counted in
    /// [`NetStats::media`]) instead of skipping them as not SIP.
    pub fn set_media(&mut self, on: bool) {
        self.media = on;
    }

    /// What became of the TLS connections followed: all, or those first seen in one capture
    /// source.
    pub fn tls_summary(&self, source: Option<usize>) -> tcp::tls::TlsSummary {
        self.tcp.tls_summary(source)
    }

    /// Follows TLS connections over TCP and decrypts them with these keys: SIP inside is
    /// delivered as over TCP, with the transport TLS (or WSS).
    pub fn set_tls_keys(&mut self, keys: std::sync::Arc<crate::tls::KeyLog>) {
        self.tcp.set_tls_keys(keys);
    }

    /// The media datagrams of the frames fed since the last call, in order, each with the
    /// buffer its RTCP range refers to.
    pub fn drain_media(&mut self, mut f: impl FnMut(MediaDatagram, &[u8])) {
        for d in self.media_out.drain(..) {
            f(d, &self.media_bytes);
        }
        self.media_bytes.clear();
    }

    pub fn stats(&self, source: usize) -> NetStats {
        self.stats.get(&source).cloned().unwrap_or_default()
    }

    fn stats_mut(&mut self, source: usize) -> &mut NetStats {
        self.stats.entry(source).or_default()
    }

    /// Decodes one frame, appending any SIP messages it completes to `out`.
    pub fn feed(&mut self, frame: &Frame<'_>, out: &mut Sink<'_>) {
        if frame.link == crate::capture::LinkType::TICK {
            // No packet: only time passing on a live input (timeouts still fall due).
            self.last_time = self.last_time.max(frame.time);
            return self.maybe_sweep(frame.source, frame.time, out);
        }
        self.stats_mut(frame.source).packets += 1;
        self.last_time = self.last_time.max(frame.time);
        self.maybe_sweep(frame.source, frame.time, out);
        if frame.link == crate::capture::LinkType::ETHERNET
            && let Some((src, dst, proto, payload)) = link::plain_ethernet_ipv4(frame.data)
        {
            let addrs = Addrs {
                src: IpAddr::V4(src),
                dst: IpAddr::V4(dst),
                proto,
            };
            return self.transport(frame, &addrs, payload, &[frame.number], 0, out);
        }
        let pkt = match link::slice(frame.link, frame.data) {
            Ok(p) => p,
            Err(link::LinkSkip::Unsupported) => {
                return self
                    .stats_mut(frame.source)
                    .skip(SkipReason::UnsupportedLinkType);
            }
            Err(link::LinkSkip::Truncated) => {
                return self.stats_mut(frame.source).skip(SkipReason::Truncated);
            }
            Err(link::LinkSkip::NotIp) => {
                return self.stats_mut(frame.source).skip(SkipReason::NotIp);
            }
        };
        self.packet(frame, &pkt, &[frame.number], 0, out);
    }

    /// Opens what a tunnel carries and decodes it as a packet of its own, one level deeper.
    fn inner(
        &mut self,
        frame: &Frame<'_>,
        inner: Result<tunnel::Inner<'_>, tunnel::TunnelSkip>,
        carried: &[u64],
        depth: u8,
        out: &mut Sink<'_>,
    ) {
        use tunnel::{Inner, TunnelSkip};
        if depth >= MAX_TUNNEL_DEPTH {
            return self.stats_mut(frame.source).skip(SkipReason::TunnelDepth);
        }
        let pkt = match inner {
            Ok(Inner::Ethernet(b)) => match LaxSlicedPacket::from_ethernet(b) {
                Ok(p) => p,
                Err(_) => return self.stats_mut(frame.source).skip(SkipReason::Truncated),
            },
            Ok(Inner::EtherType(t, b)) => LaxSlicedPacket::from_ether_type(EtherType(t), b),
            Ok(Inner::Ip(b)) => match LaxSlicedPacket::from_ip(b) {
                Ok(p) => p,
                Err(_) => return self.stats_mut(frame.source).skip(SkipReason::Truncated),
            },
            Err(TunnelSkip::Truncated) => {
                return self.stats_mut(frame.source).skip(SkipReason::Truncated);
            }
            Err(TunnelSkip::Unsupported) => {
                return self
                    .stats_mut(frame.source)
                    .skip(SkipReason::TunnelUnsupported);
            }
            Err(TunnelSkip::NotIp) => return self.stats_mut(frame.source).skip(SkipReason::NotIp),
        };
        self.stats_mut(frame.source).tunneled += 1;
        self.packet(frame, &pkt, carried, depth + 1, out);
    }

    /// Decodes a sliced packet from its IP layer up. `carried` lists the frames the packet
    /// came in (one, or an outer packet's fragments); `depth` counts the tunnels around it.
    fn packet(
        &mut self,
        frame: &Frame<'_>,
        pkt: &LaxSlicedPacket<'_>,
        carried: &[u64],
        depth: u8,
        out: &mut Sink<'_>,
    ) {
        let (addrs, payload, frag) = match &pkt.net {
            Some(LaxNetSlice::Ipv4(v4)) => {
                let h = v4.header();
                let p = v4.payload();
                let frag = p.fragmented.then(|| {
                    (
                        u32::from(h.identification()),
                        h.fragments_offset().value(),
                        h.more_fragments(),
                    )
                });
                (
                    Addrs {
                        src: IpAddr::V4(h.source_addr()),
                        dst: IpAddr::V4(h.destination_addr()),
                        proto: 0,
                    },
                    p.clone(),
                    frag,
                )
            }
            Some(LaxNetSlice::Ipv6(v6)) => {
                let h = v6.header();
                let p = v6.payload();
                let frag = if p.fragmented {
                    v6.extensions().clone().into_iter().find_map(|e| match e {
                        Ipv6ExtensionSlice::Fragment(f) => Some((
                            f.identification(),
                            f.fragment_offset().value(),
                            f.more_fragments(),
                        )),
                        _ => None,
                    })
                } else {
                    None
                };
                (
                    Addrs {
                        src: IpAddr::V6(h.source_addr()),
                        dst: IpAddr::V6(h.destination_addr()),
                        proto: 0,
                    },
                    p.clone(),
                    frag,
                )
            }
            Some(LaxNetSlice::Arp(_)) => {
                return self.stats_mut(frame.source).skip(SkipReason::NotIp);
            }
            // PPPoE sessions: etherparse stops at their EtherType.
            None if let Some((tunnel::ETHERTYPE_PPPOE_SESSION, body)) = ether_payload(pkt) => {
                return self.inner(frame, tunnel::pppoe_session(body), carried, depth, out);
            }
            None => {
                let reason = if pkt.stop_err.is_some() {
                    SkipReason::Truncated
                } else {
                    SkipReason::NotIp
                };
                return self.stats_mut(frame.source).skip(reason);
            }
        };
        let proto = payload.ip_number.0;
        let addrs = Addrs { proto, ..addrs };
        match frag {
            Some((id, offset, more)) => {
                let key = FragKey {
                    src: addrs.src,
                    dst: addrs.dst,
                    id,
                    protocol: proto,
                };
                let fragment = Fragment {
                    key,
                    offset_units: offset,
                    more,
                    payload: payload.payload,
                    frame: frame.number,
                };
                let before = self.defrag.drops;
                let whole = self.defrag.add(fragment, frame.time);
                // Counted as they happen, in the source being read (the live UI shows them).
                let d = self.defrag.drops;
                if d != before {
                    let s = self.stats_mut(frame.source);
                    s.add(SkipReason::FragmentsEvicted, d.evicted - before.evicted);
                    s.add(SkipReason::FragmentsInvalid, d.invalid - before.invalid);
                }
                if let Some((whole, frames)) = whole {
                    self.transport(frame, &addrs, &whole, &frames, depth, out);
                }
            }
            None => self.transport(frame, &addrs, payload.payload, carried, depth, out),
        }
    }

    fn transport(
        &mut self,
        frame: &Frame<'_>,
        addrs: &Addrs,
        bytes: &[u8],
        frames: &[u64],
        depth: u8,
        out: &mut Sink<'_>,
    ) {
        match addrs.proto {
            17 => {
                let Ok(udp) = etherparse::UdpSlice::from_slice_lax(bytes) else {
                    return self.stats_mut(frame.source).skip(SkipReason::Truncated);
                };
                let src = SocketAddr::new(addrs.src, udp.source_port());
                let dst = SocketAddr::new(addrs.dst, udp.destination_port());
                let payload = udp.payload();
                // Only the first line is checked here: the parser, which reads the headers
                // anyway, splits a datagram that holds several messages.
                let start = framing::leading_crlf(payload);
                let rest = payload.get(start..).unwrap_or(&[]);
                if !framing::starts_with_start_line(rest) {
                    // Not SIP: perhaps a tunnel, known by its port and checked by its header.
                    let ports = [udp.source_port(), udp.destination_port()];
                    if ports.iter().any(|p| tunnel::VXLAN_PORTS.contains(p))
                        && let Some(eth) = tunnel::vxlan(payload)
                    {
                        let inner = Ok(tunnel::Inner::Ethernet(eth));
                        return self.inner(frame, inner, frames, depth, out);
                    }
                    if ports.contains(&tunnel::GTP_U_PORT)
                        && let Some(ip) = tunnel::gtp_u(payload)
                    {
                        let inner = ip.map(tunnel::Inner::Ip);
                        return self.inner(frame, inner, frames, depth, out);
                    }
                    // HEP: v3 by its magic on any port; v1 and v2, whose header is too
                    // plain to recognise alone, on the HEP port.
                    if payload.starts_with(b"HEP3")
                        || (ports.contains(&crate::hep::DEFAULT_PORT)
                            && crate::hep::looks_like_hep(payload))
                    {
                        return self.hep(frame, payload, frames, out);
                    }
                    if self.media
                        && let Some(kind) = crate::rtp::classify(payload)
                    {
                        self.stats_mut(frame.source).media += 1;
                        let rtp_bytes = (self.media_payloads
                            && matches!(kind, crate::rtp::Kind::Rtp(_)))
                        .then(|| {
                            let at = self.media_bytes.len();
                            self.media_bytes.extend_from_slice(payload);
                            at..self.media_bytes.len()
                        });
                        let payload = match kind {
                            crate::rtp::Kind::Rtp(h) => MediaPayload::Rtp(h),
                            crate::rtp::Kind::Rtcp => {
                                let at = self.media_bytes.len();
                                self.media_bytes.extend_from_slice(payload);
                                MediaPayload::Rtcp(at..self.media_bytes.len())
                            }
                        };
                        self.media_out.push(MediaDatagram {
                            source: frame.source,
                            frame: frame.number,
                            time: frame.time,
                            src,
                            dst,
                            payload,
                            rtp_bytes,
                        });
                        return;
                    }
                    let reason = if rest.iter().all(|b| *b == 0) {
                        SkipReason::Keepalive
                    } else {
                        SkipReason::NotSip
                    };
                    return self.stats_mut(frame.source).skip(reason);
                }
                out(SipPdu {
                    source: frame.source,
                    frame: frame.number,
                    frames,
                    time: frame.time,
                    src,
                    dst,
                    transport: Transport::Udp,
                    bytes: rest,
                    hep: None,
                });
            }
            6 => {
                let Ok(tcp) = etherparse::TcpSlice::from_slice(bytes) else {
                    return self.stats_mut(frame.source).skip(SkipReason::Truncated);
                };
                let payload = tcp.payload();
                let seg = Segment {
                    src: SocketAddr::new(addrs.src, tcp.source_port()),
                    dst: SocketAddr::new(addrs.dst, tcp.destination_port()),
                    seq: tcp.sequence_number(),
                    syn: tcp.syn(),
                    fin: tcp.fin(),
                    rst: tcp.rst(),
                    payload,
                    meta: SegmentMeta {
                        source: frame.source,
                        frame: frame.number,
                        time: frame.time,
                    },
                    frames,
                };
                let before = self.tcp_stats;
                let mut hep = std::mem::take(&mut self.tcp_hep);
                let tracked = {
                    let mut emit = Self::tcp_emitter(out, &mut hep);
                    self.tcp.segment(seg, &mut self.tcp_stats, &mut emit)
                };
                self.fold_tcp_stats(frame.source, before);
                self.tcp_hep(&mut hep, out);
                self.tcp_hep = hep;
                if !tracked && !payload.is_empty() {
                    let reason = if is_tls_record(payload) {
                        SkipReason::Tls
                    } else {
                        SkipReason::NotSip
                    };
                    self.stats_mut(frame.source).skip(reason);
                }
            }
            1 | 58 => self.stats_mut(frame.source).skip(SkipReason::Icmp),
            132 => self.sctp(frame, addrs, bytes, out),
            // IP-in-IP (RFC 2003) and IPv6 in IP (RFC 4213): the inner packet follows.
            4 | 41 => self.inner(frame, Ok(tunnel::Inner::Ip(bytes)), frames, depth, out),
            47 => self.inner(frame, tunnel::gre(bytes), frames, depth, out),
            _ => self.stats_mut(frame.source).skip(SkipReason::OtherProtocol),
        }
    }

    /// A HEP packet: the SIP message inside, with the addresses, ports, transport and time the
    /// agent captured it with.
    fn hep(&mut self, frame: &Frame<'_>, payload: &[u8], frames: &[u64], out: &mut Sink<'_>) {
        let at = SegmentMeta {
            source: frame.source,
            frame: frame.number,
            time: frame.time,
        };
        self.hep_packet(at, payload, frames, out)
    }

    /// A HEP packet that came at `at` (in a datagram, or cut from a TCP stream).
    fn hep_packet(&mut self, at: SegmentMeta, payload: &[u8], frames: &[u64], out: &mut Sink<'_>) {
        let p = match crate::hep::decode(payload) {
            Ok(p) => p,
            Err(crate::hep::HepError::NotHep) => {
                return self.stats_mut(at.source).skip(SkipReason::NotSip);
            }
            Err(crate::hep::HepError::Oversized) => {
                return self.stats_mut(at.source).skip(SkipReason::HepOversized);
            }
            Err(_) => return self.stats_mut(at.source).skip(SkipReason::HepDamaged),
        };
        if p.payload_type != crate::hep::PAYLOAD_SIP {
            return self.stats_mut(at.source).skip(SkipReason::HepNotSip);
        }
        let start = framing::leading_crlf(&p.payload);
        let rest = p.payload.get(start..).unwrap_or(&[]);
        if !framing::starts_with_start_line(rest) {
            return self.stats_mut(at.source).skip(SkipReason::HepNotSip);
        }
        let transport = match p.ip_protocol {
            6 => Transport::Tcp,
            132 => Transport::Sctp,
            _ => Transport::Udp,
        };
        self.stats_mut(at.source).hep += 1;
        out(SipPdu {
            source: at.source,
            frame: at.frame,
            frames,
            time: p.time_ns.map_or(at.time, Timestamp),
            src: p.src,
            dst: p.dst,
            transport,
            bytes: rest,
            hep: Some(HepMeta {
                version: p.version,
                capture_id: p.capture_id,
                node: p.node,
                correlation_id: p.correlation_id,
            }),
        });
    }

    /// SIP over SCTP: each DATA chunk's user message (reassembled when fragmented) that begins
    /// with a SIP start line is a PDU; the parser splits it if it holds several messages.
    fn sctp(&mut self, frame: &Frame<'_>, addrs: &Addrs, bytes: &[u8], out: &mut Sink<'_>) {
        let Some((sport, dport, chunks, damaged)) = sctp::parse(bytes) else {
            return self.stats_mut(frame.source).skip(SkipReason::Truncated);
        };
        if damaged {
            self.stats_mut(frame.source)
                .skip(SkipReason::SctpDamagedChunk);
        }
        let src = SocketAddr::new(addrs.src, sport);
        let dst = SocketAddr::new(addrs.dst, dport);
        let mut stats = sctp::SctpStats::default();
        let mut not_sip = 0;
        for chunk in chunks {
            self.sctp.chunk(
                (src, dst),
                chunk,
                frame.number,
                &mut stats,
                &mut |m, frames| {
                    let start = framing::leading_crlf(m);
                    let rest = m.get(start..).unwrap_or(&[]);
                    if !framing::starts_with_start_line(rest) {
                        not_sip += 1;
                        return;
                    }
                    out(SipPdu {
                        source: frame.source,
                        frame: frame.number,
                        frames,
                        time: frame.time,
                        src,
                        dst,
                        transport: Transport::Sctp,
                        bytes: rest,
                        hep: None,
                    });
                },
            );
        }
        let s = self.stats_mut(frame.source);
        s.add(SkipReason::NotSip, not_sip);
        s.add(SkipReason::SctpRetransmission, stats.retransmitted_chunks);
        s.add(SkipReason::SctpDroppedFragments, stats.dropped_fragments);
        s.add(SkipReason::SctpEvicted, stats.evicted);
    }

    /// Moves changes in the reassembler's counters into the current source's skip reasons.
    fn fold_tcp_stats(&mut self, source: usize, before: TcpStats) {
        let now = self.tcp_stats;
        let s = self.stats_mut(source);
        s.add(
            SkipReason::TcpRetransmission,
            now.retransmitted_segments - before.retransmitted_segments,
        );
        s.add(SkipReason::TcpGapBytes, now.gap_bytes - before.gap_bytes);
        s.add(
            SkipReason::TcpStreamEvicted,
            now.streams_evicted - before.streams_evicted,
        );
        s.add(
            SkipReason::TcpBufferEvicted,
            now.buffer_evicted - before.buffer_evicted,
        );
        s.add(
            SkipReason::TcpStreamBufferFull,
            now.stream_buffer_full - before.stream_buffer_full,
        );
        // Text of flows not yet known to be SIP, forgotten because its cache was full.
        s.add(
            SkipReason::TcpUntrackedEvicted,
            (now.tails_evicted + now.early_evicted) - (before.tails_evicted + before.early_evicted),
        );
        s.add(
            SkipReason::TcpLossNotesDropped,
            now.losses_dropped - before.losses_dropped,
        );
        s.add(
            SkipReason::TcpSkippedBytes,
            now.framer.skipped_bytes - before.framer.skipped_bytes,
        );
        s.add(
            SkipReason::OversizedMessage,
            now.framer.oversized - before.framer.oversized,
        );
        s.add(
            SkipReason::Keepalive,
            now.framer.keepalives - before.framer.keepalives,
        );
    }

    fn maybe_sweep(&mut self, source: usize, now: Timestamp, out: &mut Sink<'_>) {
        let due = match self.last_sweep {
            Some(t) => now.0.saturating_sub(t.0) >= Timestamp::NANOS_PER_SEC,
            None => true,
        };
        if !due {
            return;
        }
        self.last_sweep = Some(now);
        let before_drops = self.defrag.drops;
        self.defrag.expire(now);
        let expired = self.defrag.drops.expired - before_drops.expired;
        self.stats_mut(source)
            .add(SkipReason::FragmentsExpired, expired);
        let before = self.tcp_stats;
        let mut hep = std::mem::take(&mut self.tcp_hep);
        {
            let mut emit = Self::tcp_emitter(out, &mut hep);
            self.tcp.sweep(now, source, &mut self.tcp_stats, &mut emit);
        }
        self.fold_tcp_stats(source, before);
        self.tcp_hep(&mut hep, out);
        self.tcp_hep = hep;
    }

    /// Hands SIP messages cut from TCP streams on as PDUs, and keeps HEP packets cut from HEP
    /// streams in `hep` for [`Decoder::tcp_hep`] (decoding one counts on the decoder).
    fn tcp_emitter<'o>(
        out: &'o mut Sink<'_>,
        hep: &'o mut Vec<StreamedHep>,
    ) -> impl FnMut(tcp::Reassembled<'_>) + 'o {
        move |r: tcp::Reassembled<'_>| match r.payload {
            StreamPayload::Sip(transport) => out(SipPdu {
                source: r.meta.source,
                frame: r.meta.frame,
                frames: r.frames,
                time: r.meta.time,
                src: r.src,
                dst: r.dst,
                transport,
                bytes: r.bytes,
                hep: None,
            }),
            StreamPayload::Hep => hep.push(StreamedHep {
                meta: r.meta,
                frames: r.frames.iter().copied().collect(),
                packet: r.bytes.to_vec(),
            }),
        }
    }

    /// The HEP packets that TCP streams delivered: each is decoded as a HEP packet in a
    /// datagram is.
    fn tcp_hep(&mut self, packets: &mut Vec<StreamedHep>, out: &mut Sink<'_>) {
        if packets.is_empty() {
            return;
        }
        for p in packets.drain(..) {
            self.hep_packet(p.meta, &p.packet, &p.frames, out);
        }
    }

    /// End of input: flush TCP streams, count unfinished fragments.
    pub fn finish(&mut self, out: &mut Sink<'_>) {
        let source = self.stats.keys().next_back().copied().unwrap_or(0);
        let before = self.tcp_stats;
        let now = self.last_time;
        let mut hep = std::mem::take(&mut self.tcp_hep);
        {
            let mut emit = Self::tcp_emitter(out, &mut hep);
            self.tcp
                .finish_all(source, now, &mut self.tcp_stats, &mut emit);
        }
        self.fold_tcp_stats(source, before);
        self.tcp_hep(&mut hep, out);
        self.tcp_hep = hep;
        let pending = self.defrag.pending() as u64;
        self.stats_mut(source)
            .add(SkipReason::FragmentsIncomplete, pending);
    }

    /// The TCP bytes lost since the last call, per connection direction
    /// ([`tcp::StreamLoss`]): holes the capture did not fill and bytes that could not be read
    /// as SIP.
    pub fn take_losses(&mut self) -> std::vec::Drain<'_, tcp::StreamLoss> {
        self.tcp.take_losses()
    }

    /// Whether [`Decoder::take_losses`] has anything to give.
    pub fn has_losses(&self) -> bool {
        self.tcp.has_losses()
    }

    /// Every limit reached so far over all sources, by skip reason, with how often.
    pub fn limits_reached(&self) -> BTreeMap<&'static str, u64> {
        let mut out = BTreeMap::new();
        for s in self.stats.values() {
            for (reason, n) in s.skipped.iter() {
                if reason.is_limit() {
                    *out.entry(reason.as_str()).or_insert(0) += n;
                }
            }
        }
        out
    }
}
