//! From frames to SIP message bytes: link layers, IPv4/IPv6 (with extension headers and
//! fragment reassembly), UDP, TCP reassembly and SIP framing.
//!
//! Owns everything below SIP: addresses, ports, transports. It recognises SIP by content on
//! any port (a start line), never by port number, and hands over each message's bytes as a
//! [`SipPdu`]. It does not parse headers beyond what framing needs (Content-Length), and does
//! not know about transactions or calls. What it skips is counted by reason in [`NetStats`].

pub mod defrag;
pub mod framing;
pub mod link;
pub mod tcp;

use crate::capture::{Frame, Timestamp};
use defrag::{DefragLimits, Defragmenter, FragKey, Fragment};
use etherparse::{Ipv6ExtensionSlice, LaxNetSlice};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use tcp::{Reassembler, Segment, SegmentMeta, TcpLimits, TcpStats};

/// The transport a SIP message crossed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Udp,
    Tcp,
    Sctp,
    Ws,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "UDP",
            Transport::Tcp => "TCP",
            Transport::Sctp => "SCTP",
            Transport::Ws => "WS",
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
}

/// Frame numbers (within one source): the frames that carried a message.
pub type Frames = smallvec::SmallVec<[u64; 2]>;

/// Where decoded SIP messages go.
pub type Sink<'s> = dyn FnMut(SipPdu<'_>) + 's;

/// Counters of one source, reported in the JSON `sources` list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NetStats {
    pub packets: u64,
    /// Frames or byte runs not turned into SIP messages, by reason.
    pub skipped: BTreeMap<&'static str, u64>,
}

impl NetStats {
    pub fn skip(&mut self, reason: &'static str) {
        *self.skipped.entry(reason).or_insert(0) += 1;
    }
    fn add(&mut self, reason: &'static str, n: u64) {
        if n > 0 {
            *self.skipped.entry(reason).or_insert(0) += n;
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NetLimits {
    pub defrag: DefragLimits,
    pub tcp: TcpLimits,
}

/// Decodes frames into SIP PDUs. One per analysis: fragments and TCP streams may span sources.
pub struct Decoder {
    defrag: Defragmenter,
    tcp: Reassembler,
    stats: BTreeMap<usize, NetStats>,
    /// TCP counters, folded into `stats` of the source being read when they change.
    tcp_stats: TcpStats,
    last_sweep: Option<Timestamp>,
    last_time: Timestamp,
}

struct Addrs {
    src: IpAddr,
    dst: IpAddr,
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
            stats: BTreeMap::new(),
            tcp_stats: TcpStats::default(),
            last_sweep: None,
            last_time: Timestamp::default(),
        }
    }

    pub fn stats(&self, source: usize) -> NetStats {
        self.stats.get(&source).cloned().unwrap_or_default()
    }

    fn stats_mut(&mut self, source: usize) -> &mut NetStats {
        self.stats.entry(source).or_default()
    }

    /// Decodes one frame, appending any SIP messages it completes to `out`.
    pub fn feed(&mut self, frame: &Frame<'_>, out: &mut Sink<'_>) {
        self.stats_mut(frame.source).packets += 1;
        self.last_time = self.last_time.max(frame.time);
        self.maybe_sweep(frame.source, frame.time, out);
        let pkt = match link::slice(frame.link, frame.data) {
            Ok(p) => p,
            Err(link::LinkSkip::Unsupported) => {
                return self.stats_mut(frame.source).skip("unsupported_link_type");
            }
            Err(link::LinkSkip::Truncated) => {
                return self.stats_mut(frame.source).skip("truncated");
            }
            Err(link::LinkSkip::NotIp) => return self.stats_mut(frame.source).skip("not_ip"),
        };
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
                    },
                    p.clone(),
                    frag,
                )
            }
            Some(LaxNetSlice::Arp(_)) => return self.stats_mut(frame.source).skip("not_ip"),
            None => {
                let reason = if pkt.stop_err.is_some() {
                    "truncated"
                } else {
                    "not_ip"
                };
                return self.stats_mut(frame.source).skip(reason);
            }
        };
        let proto = payload.ip_number.0;
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
                if let Some((whole, frames)) = self.defrag.add(fragment, frame.time) {
                    self.transport(frame, &addrs, proto, &whole, &frames, out);
                }
            }
            None => self.transport(frame, &addrs, proto, payload.payload, &[frame.number], out),
        }
    }

    fn transport(
        &mut self,
        frame: &Frame<'_>,
        addrs: &Addrs,
        proto: u8,
        bytes: &[u8],
        frames: &[u64],
        out: &mut Sink<'_>,
    ) {
        match proto {
            17 => {
                let Ok(udp) = etherparse::UdpSlice::from_slice_lax(bytes) else {
                    return self.stats_mut(frame.source).skip("truncated");
                };
                let src = SocketAddr::new(addrs.src, udp.source_port());
                let dst = SocketAddr::new(addrs.dst, udp.destination_port());
                let payload = udp.payload();
                // Only the first line is checked here: the parser, which reads the headers
                // anyway, splits a datagram that holds several messages.
                let start = framing::leading_crlf(payload);
                let rest = payload.get(start..).unwrap_or(&[]);
                if !framing::starts_with_start_line(rest) {
                    let reason = if rest.iter().all(|b| *b == 0) {
                        "keepalive"
                    } else {
                        "not_sip"
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
                });
            }
            6 => {
                let Ok(tcp) = etherparse::TcpSlice::from_slice(bytes) else {
                    return self.stats_mut(frame.source).skip("truncated");
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
                let mut emit = Self::tcp_emitter(out);
                let tracked = self.tcp.segment(seg, &mut self.tcp_stats, &mut emit);
                self.fold_tcp_stats(frame.source, before);
                if !tracked && !payload.is_empty() {
                    let reason = if is_tls_record(payload) {
                        "tls"
                    } else {
                        "not_sip"
                    };
                    self.stats_mut(frame.source).skip(reason);
                }
            }
            1 | 58 => self.stats_mut(frame.source).skip("icmp"),
            132 => self.stats_mut(frame.source).skip("sctp"),
            4 | 41 | 47 => self.stats_mut(frame.source).skip("tunnel"),
            _ => self.stats_mut(frame.source).skip("other_protocol"),
        }
    }

    /// Moves changes in the reassembler's counters into the current source's skip reasons.
    fn fold_tcp_stats(&mut self, source: usize, before: TcpStats) {
        let now = self.tcp_stats;
        let s = self.stats_mut(source);
        s.add(
            "tcp_retransmission",
            now.retransmitted_segments - before.retransmitted_segments,
        );
        s.add("tcp_gap_bytes", now.gap_bytes - before.gap_bytes);
        s.add(
            "tcp_stream_evicted",
            now.streams_evicted - before.streams_evicted,
        );
        // Text of flows not yet known to be SIP, forgotten because its cache was full.
        s.add(
            "tcp_untracked_evicted",
            (now.tails_evicted + now.early_evicted) - (before.tails_evicted + before.early_evicted),
        );
        s.add(
            "tcp_skipped_bytes",
            now.framer.skipped_bytes - before.framer.skipped_bytes,
        );
        s.add(
            "oversized_message",
            now.framer.oversized - before.framer.oversized,
        );
        s.add(
            "keepalive",
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
        self.stats_mut(source).add("fragments_expired", expired);
        let before = self.tcp_stats;
        let mut emit = Self::tcp_emitter(out);
        self.tcp.sweep(now, source, &mut self.tcp_stats, &mut emit);
        self.fold_tcp_stats(source, before);
    }

    fn tcp_emitter<'o>(
        out: &'o mut Sink<'_>,
    ) -> impl FnMut(SocketAddr, SocketAddr, SegmentMeta, &[u64], &[u8]) + 'o {
        move |src, dst, meta: SegmentMeta, frames: &[u64], m: &[u8]| {
            out(SipPdu {
                source: meta.source,
                frame: meta.frame,
                frames,
                time: meta.time,
                src,
                dst,
                transport: Transport::Tcp,
                bytes: m,
            })
        }
    }

    /// End of input: flush TCP streams, count unfinished fragments.
    pub fn finish(&mut self, out: &mut Sink<'_>) {
        let source = self.stats.keys().next_back().copied().unwrap_or(0);
        let before = self.tcp_stats;
        let now = self.last_time;
        let mut emit = Self::tcp_emitter(out);
        self.tcp
            .finish_all(source, now, &mut self.tcp_stats, &mut emit);
        self.fold_tcp_stats(source, before);
        let pending = self.defrag.pending() as u64;
        self.stats_mut(source).add("fragments_incomplete", pending);
        let d = self.defrag.drops;
        let s = self.stats_mut(source);
        s.add("fragments_evicted", d.evicted);
        s.add("fragments_invalid", d.invalid);
    }
}
