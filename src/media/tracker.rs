//! The table that finds each packet's stream: the media endpoints the calls' SDP advertised,
//! the streams in flight, and the flows on probation. Bounded in every part; what a limit
//! refuses is counted.

use super::codec::{self, Codec};
use super::stream::{Direction, RtcpReport, Stream, Tie};
use crate::WireMap;
use crate::rtp::{Compound, RtcpPacket, RtpHeader};
use crate::sip::sdp::SdpSummary;
use crate::time::{Interval, Timestamp};
use serde::Serialize;
use smallvec::SmallVec;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Which party of a call an SDP came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Party {
    Caller,
    Callee,
}

/// An RTP packet as the tracker reads it: where and when, and its header.
#[derive(Debug, Clone, Copy)]
pub struct Packet {
    pub source: usize,
    pub frame: u64,
    pub time: Timestamp,
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub rtp: RtpHeader,
}

/// Limits of the media tables (docs/security.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MediaConfig {
    /// Streams in flight at once (tied and untied).
    pub max_streams: usize,
    /// Streams one call may have (an SSRC flood at an advertised port stops here).
    pub max_streams_per_call: usize,
    /// Flows on probation at once.
    pub max_probes: usize,
    /// Advertised endpoints remembered at once.
    pub max_endpoints: usize,
    /// Untied streams kept once they ended.
    pub max_untied: usize,
    /// An untied stream that has been silent this long has ended.
    pub untied_idle: Interval,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            max_streams: 100_000,
            max_streams_per_call: 64,
            max_probes: 16_384,
            max_endpoints: 400_000,
            max_untied: 10_000,
            untied_idle: Interval::from_secs(30),
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// What the media tables did: the JSON `media_stats` and the limits reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MediaCounters {
    pub rtp_packets: u64,
    pub rtcp_packets: u64,
    /// RTP-shaped packets that never became part of a stream (a flow that failed its
    /// probation: random UDP, or RTP seen too briefly).
    pub unmatched_packets: u64,
    /// RTCP packets whose length lied (the compound was read up to them).
    pub rtcp_damaged: u64,
    /// RTCP reports about no stream this capture holds.
    pub rtcp_unmatched: u64,
    /// RTCP compounds of SRTP streams (SRTCP): their reports are encrypted, so they are
    /// counted and not read (left out of the JSON when none).
    #[serde(skip_serializing_if = "is_zero")]
    pub srtcp_packets: u64,
    pub streams: u64,
    pub untied_streams: u64,
    /// Limits (docs/security.md).
    pub streams_refused: u64,
    pub probes_evicted: u64,
    pub endpoints_evicted: u64,
    pub untied_dropped: u64,
}

impl MediaCounters {
    /// The counters that mean a limit was reached, by name.
    pub fn limits(&self) -> [(&'static str, u64); 4] {
        [
            ("media_streams_refused", self.streams_refused),
            ("media_probes_evicted", self.probes_evicted),
            ("media_endpoints_evicted", self.endpoints_evicted),
            ("media_untied_dropped", self.untied_dropped),
        ]
    }
}

/// What an SDP advertises for RTP: each RTP media line's address and port, its RTCP address
/// (`a=rtcp`, else port + 1; none with `a=rtcp-mux`), and its codecs. Port 0 (a refused
/// stream) and hold by `c=0.0.0.0` name nothing. Made where the message is parsed, so that the
/// SDP body need not be kept for the media analysis.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Offer {
    pub lines: SmallVec<[OfferLine; 1]>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OfferLine {
    pub rtp: SocketAddr,
    pub rtcp: Option<SocketAddr>,
    pub codecs: Arc<[Codec]>,
    /// The media line's profile is SRTP: how its keys are exchanged.
    pub srtp: Option<Srtp>,
}

/// A stream is SRTP (RFC 3711): its headers are RTP's in the clear, so every figure is
/// measured alike; its payloads are encrypted.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Srtp {
    pub keying: Keying,
    /// The first `a=crypto` suite of the SDP (SDES).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suite: Option<compact_str::CompactString>,
}

/// How an SRTP stream's keys were exchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Keying {
    /// In the SDP (`a=crypto`, RFC 4568): readable from the capture when the SIP is.
    Sdes,
    /// By a DTLS handshake on the media path (`a=fingerprint`, RFC 5764): never in a capture.
    Dtls,
    /// Neither named.
    Unknown,
}

impl Srtp {
    /// The SRTP facts of an SDP media line (`None` for plain RTP).
    pub fn of(m: &crate::sip::sdp::SdpMedia) -> Option<Srtp> {
        m.is_srtp().then(|| Srtp {
            keying: if !m.crypto.is_empty() {
                Keying::Sdes
            } else if m.fingerprint || m.protocol.starts_with("UDP/TLS") {
                Keying::Dtls
            } else {
                Keying::Unknown
            },
            suite: m.crypto.first().cloned(),
        })
    }
}

impl Offer {
    /// The offer of an SDP summary; `None` when it advertises no RTP address.
    pub fn of(sdp: &SdpSummary) -> Option<Offer> {
        let mut lines = SmallVec::new();
        for m in &sdp.media {
            if m.port == 0 || !m.protocol.contains("RTP") {
                continue;
            }
            let Some(ip) = m
                .connection
                .as_ref()
                .or(sdp.connection.as_ref())
                .and_then(|c| c.parse::<IpAddr>().ok())
                .filter(|ip| !ip.is_unspecified())
            else {
                continue;
            };
            let rtcp_port = m.rtcp_port.unwrap_or(m.port.wrapping_add(1));
            lines.push(OfferLine {
                rtp: SocketAddr::new(ip, m.port),
                rtcp: (!m.rtcp_mux && rtcp_port != m.port).then(|| SocketAddr::new(ip, rtcp_port)),
                codecs: codec::of_media(&m.formats, &m.rtpmap).into(),
                srtp: Srtp::of(m),
            });
        }
        (!lines.is_empty()).then_some(Offer { lines })
    }

    /// The offer of an SDP body.
    pub fn parse(body: &[u8]) -> Option<Offer> {
        Offer::of(&SdpSummary::parse(body)?)
    }
}

/// An address and port an SDP advertised.
#[derive(Debug, Clone)]
struct Endpoint {
    call: u64,
    party: Party,
    /// RTP (`false`) or the RTCP port (`true`).
    rtcp: bool,
    media: EndpointMedia,
}

/// What an SDP media line says of the streams to an endpoint.
#[derive(Debug, Clone)]
struct EndpointMedia {
    codecs: Arc<[Codec]>,
    srtp: Option<Srtp>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct StreamKey {
    src: SocketAddr,
    dst: SocketAddr,
    ssrc: u32,
}

/// Packets a flow needs in sequence before it counts as RTP without SDP (RFC 3550 A.1 uses
/// two; four keeps random UDP out with a margin).
const PROBATION: usize = 4;

/// A flow on probation: its packets so far, replayed into the stream if it proves itself.
#[derive(Debug, Clone)]
struct Probe {
    packets: SmallVec<[Packet; PROBATION]>,
}

impl Probe {
    /// Whether `p` continues the probe: same SSRC and payload type, sequence + 1, timestamp
    /// advancing by less than a second at any clock rate.
    fn continues(&self, p: &Packet) -> bool {
        self.packets.last().is_some_and(|last| {
            let step = p.rtp.timestamp.wrapping_sub(last.rtp.timestamp);
            last.rtp.ssrc == p.rtp.ssrc
                && last.rtp.payload_type == p.rtp.payload_type
                && p.rtp.sequence == last.rtp.sequence.wrapping_add(1)
                && step <= 96_000
                && p.time >= last.time
        })
    }
}

/// What the tracker holds for one call.
#[derive(Debug, Default)]
struct CallMedia {
    streams: Vec<u32>,
    endpoints: Vec<SocketAddr>,
    bye: Option<Timestamp>,
    refused: u64,
    /// Another call advertised one of this call's endpoints while both were open (two legs
    /// of a B2BUA that relays SDP, or a port reused): a stream at such an endpoint may belong
    /// to either.
    shared: bool,
}

/// A call's media as it leaves the tracker.
#[derive(Debug, Default)]
pub struct Detached {
    pub streams: Vec<Stream>,
    pub shared: bool,
    /// The capture carried RTP to or from a host one of the call's SDPs names: its point
    /// sees this call's media path.
    pub path_seen: bool,
}

/// Finds each packet's stream and measures it; see the module documentation.
#[derive(Debug)]
pub struct Tracker {
    config: MediaConfig,
    endpoints: WireMap<SocketAddr, Endpoint>,
    /// Port → the last endpoint advertised with it, for streams a NAT rewrote.
    ports: WireMap<u16, SocketAddr>,
    keys: WireMap<StreamKey, u32>,
    by_ssrc: WireMap<u32, u32>,
    slab: Vec<Option<Stream>>,
    /// Which call each stream in `slab` belongs to (`None`: untied).
    owner: Vec<Option<u64>>,
    free: Vec<u32>,
    calls: WireMap<u64, CallMedia>,
    probes: WireMap<StreamKey, Probe>,
    untied: Vec<Stream>,
    last_sweep: Timestamp,
    /// Hosts seen sending or receiving RTP (at most [`MAX_HOSTS`]; past it every host counts
    /// as seen): whether the capture point sees a call's media path at all.
    hosts: crate::WireSet<IpAddr>,
    pub counters: MediaCounters,
}

/// Hosts remembered in [`Tracker::hosts`].
const MAX_HOSTS: usize = 100_000;

impl Tracker {
    pub fn new(config: MediaConfig) -> Tracker {
        Tracker {
            config,
            endpoints: WireMap::default(),
            ports: WireMap::default(),
            keys: WireMap::default(),
            by_ssrc: WireMap::default(),
            slab: Vec::new(),
            owner: Vec::new(),
            free: Vec::new(),
            calls: WireMap::default(),
            probes: WireMap::default(),
            untied: Vec::new(),
            last_sweep: Timestamp::default(),
            hosts: crate::WireSet::default(),
            counters: MediaCounters::default(),
        }
    }

    /// Remembers the media endpoints of an SDP that `party` of call `call` sent ([`Offer`]).
    pub fn advertise(&mut self, call: u64, party: Party, offer: &Offer) {
        for line in &offer.lines {
            let media = EndpointMedia {
                codecs: line.codecs.clone(),
                srtp: line.srtp.clone(),
            };
            self.endpoint(line.rtp, call, party, false, media.clone());
            if let Some(rtcp) = line.rtcp {
                self.endpoint(rtcp, call, party, true, media);
            }
        }
    }

    fn endpoint(
        &mut self,
        at: SocketAddr,
        call: u64,
        party: Party,
        rtcp: bool,
        media: EndpointMedia,
    ) {
        if self.endpoints.len() >= self.config.max_endpoints && !self.endpoints.contains_key(&at) {
            // Rare (400,000 endpoints at once): start over rather than search for the oldest.
            self.counters.endpoints_evicted += self.endpoints.len() as u64;
            self.endpoints.clear();
            self.ports.clear();
        }
        // Within one call the party that advertised an endpoint first keeps it (the same SDP
        // seen again, on another hop or damaged, changes nothing: which copies are seen
        // must not change the result); its own later SDP updates the codecs.
        if let Some(old) = self.endpoints.get(&at)
            && old.call == call
            && old.party != party
        {
            return;
        }
        let entry = Endpoint {
            call,
            party,
            rtcp,
            media,
        };
        if let Some(old) = self.endpoints.insert(at, entry) {
            if old.call == call {
                return;
            }
            // Shared while the other call is still up; once it said BYE the port is simply
            // reused by this one, and the old call's streams there are over: a packet to or
            // from it now begins a stream of this call, even with the same SSRC (a phone that
            // plays the same recording, or keeps its SSRC across calls).
            if let Some(other) = self.calls.get_mut(&old.call) {
                if other.bye.is_none() {
                    other.shared = true;
                    self.calls.entry(call).or_default().shared = true;
                } else {
                    let streams = other.streams.clone();
                    for i in streams {
                        self.retire(i, at);
                    }
                }
            }
        }
        if !rtcp {
            self.ports.insert(at.port(), at);
        }
        self.calls.entry(call).or_default().endpoints.push(at);
    }

    /// The call's BYE was seen at `time`: packets well after it are counted as after BYE.
    pub fn bye(&mut self, call: u64, time: Timestamp) {
        let media = self.calls.entry(call).or_default();
        if media.bye.is_some() {
            return;
        }
        media.bye = Some(time);
        for &at in &media.streams {
            if let Some(Some(s)) = self.slab.get_mut(at as usize) {
                s.meter.bye = Some(time);
            }
        }
    }

    /// Whether the tracker sees any RTP at all so far.
    pub fn any_rtp(&self) -> bool {
        self.counters.rtp_packets > 0
    }

    /// One RTP packet.
    pub fn rtp(&mut self, p: &Packet) {
        self.counters.rtp_packets += 1;
        let key = StreamKey {
            src: p.src,
            dst: p.dst,
            ssrc: p.rtp.ssrc,
        };
        if let Some(&at) = self.keys.get(&key) {
            if let Some(Some(s)) = self.slab.get_mut(at as usize) {
                s.add(&p.rtp, p.time);
            }
            return;
        }
        self.new_stream(key, p);
    }

    /// A packet of no known stream: tie it by SDP, or put its flow on probation.
    fn new_stream(&mut self, key: StreamKey, p: &Packet) {
        let rtp_endpoint = |at: &SocketAddr| self.endpoints.get(at).filter(|e| !e.rtcp);
        let tie = if let Some(e) = rtp_endpoint(&p.dst) {
            Some((e.clone(), Tie::Destination, None, true))
        } else if let Some(e) = rtp_endpoint(&p.src) {
            Some((e.clone(), Tie::Source, None, false))
        } else if let Some(at) = self.ports.get(&p.dst.port())
            && let Some(e) = rtp_endpoint(at)
        {
            Some((e.clone(), Tie::DestinationPort, Some(*at), true))
        } else if let Some(at) = self.ports.get(&p.src.port())
            && let Some(e) = rtp_endpoint(at)
        {
            Some((e.clone(), Tie::SourcePort, Some(*at), false))
        } else {
            None
        };
        let Some((endpoint, tie, advertised, to_party)) = tie else {
            return self.probation(p);
        };
        // The endpoint's party receives (tied by destination) or sends (by source).
        let receiver_is_callee = (endpoint.party == Party::Callee) == to_party;
        let direction = if receiver_is_callee {
            Direction::CallerToCallee
        } else {
            Direction::CalleeToCaller
        };
        let call = endpoint.call;
        let media = self.calls.entry(call).or_default();
        if media.streams.len() >= self.config.max_streams_per_call {
            media.refused += 1;
            self.counters.streams_refused += 1;
            return;
        }
        let mut stream = Stream::new(p, direction, tie, advertised, endpoint.media.codecs);
        stream.srtp = endpoint.media.srtp;
        stream.meter.bye = media.bye;
        if let Some(at) = self.insert(key, stream, Some(call)) {
            if let Some(m) = self.calls.get_mut(&call) {
                m.streams.push(at);
            }
            if let Some(Some(s)) = self.slab.get_mut(at as usize) {
                s.add(&p.rtp, p.time);
            }
        }
    }

    fn insert(&mut self, key: StreamKey, stream: Stream, call: Option<u64>) -> Option<u32> {
        if self.keys.len() >= self.config.max_streams {
            self.counters.streams_refused += 1;
            return None;
        }
        let at = match self.free.pop() {
            Some(at) => at,
            None => {
                let at = u32::try_from(self.slab.len()).ok()?;
                self.slab.push(None);
                self.owner.push(None);
                at
            }
        };
        self.by_ssrc.insert(key.ssrc, at);
        for ip in [key.src.ip(), key.dst.ip()] {
            if self.hosts.len() < MAX_HOSTS {
                self.hosts.insert(ip);
            }
        }
        if let Some(slot) = self.slab.get_mut(at as usize) {
            *slot = Some(stream);
        }
        if let Some(o) = self.owner.get_mut(at as usize) {
            *o = call;
        }
        self.keys.insert(key, at);
        self.counters.streams += 1;
        if call.is_none() {
            self.counters.untied_streams += 1;
        }
        Some(at)
    }

    /// A packet no SDP names: a flow becomes an untied stream after [`PROBATION`] packets
    /// in sequence, and its probation packets are measured then.
    fn probation(&mut self, p: &Packet) {
        // By SSRC too: a flow may carry several sources (RFC 8860), each on probation alone.
        let flow = StreamKey {
            src: p.src,
            dst: p.dst,
            ssrc: p.rtp.ssrc,
        };
        if let Some(probe) = self.probes.get_mut(&flow) {
            if probe.continues(p) {
                probe.packets.push(*p);
                if probe.packets.len() >= PROBATION {
                    let Some(probe) = self.probes.remove(&flow) else {
                        return;
                    };
                    self.promote(probe);
                }
            } else {
                self.counters.unmatched_packets += probe.packets.len() as u64;
                probe.packets.clear();
                probe.packets.push(*p);
            }
            return;
        }
        if self.probes.len() >= self.config.max_probes {
            self.counters.probes_evicted += self.probes.len() as u64;
            self.counters.unmatched_packets += self
                .probes
                .values()
                .map(|p| p.packets.len() as u64)
                .sum::<u64>();
            self.probes.clear();
        }
        let mut packets = SmallVec::new();
        packets.push(*p);
        self.probes.insert(flow, Probe { packets });
    }

    fn promote(&mut self, probe: Probe) {
        let Some(first) = probe.packets.first() else {
            return;
        };
        let key = StreamKey {
            src: first.src,
            dst: first.dst,
            ssrc: first.rtp.ssrc,
        };
        let stream = Stream::new(first, Direction::Unknown, Tie::Untied, None, Arc::from([]));
        match self.insert(key, stream, None) {
            Some(at) => {
                if let Some(Some(s)) = self.slab.get_mut(at as usize) {
                    for p in &probe.packets {
                        s.add(&p.rtp, p.time);
                    }
                }
            }
            None => self.counters.unmatched_packets += probe.packets.len() as u64,
        }
    }

    /// One RTCP compound. Each report goes to the stream it is about: an SR's sender
    /// information to the stream its sender sends, a report block to the stream whose SSRC
    /// it names.
    pub fn rtcp(&mut self, time: Timestamp, src: SocketAddr, dst: SocketAddr, bytes: &[u8]) {
        self.counters.rtcp_packets += 1;
        // SRTCP: past its first header and SSRC the compound is encrypted (RFC 3711 §3.4);
        // read as RTCP it would give made-up loss, jitter and round trips.
        let srtp_endpoint = |at: &SocketAddr| {
            self.endpoints
                .get(at)
                .is_some_and(|e| e.media.srtp.is_some())
        };
        let sender = bytes
            .get(4..8)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_be_bytes);
        let srtp_sender = sender.is_some_and(|ssrc| {
            self.by_ssrc
                .get(&ssrc)
                .and_then(|&i| self.slab.get(i as usize))
                .is_some_and(|s| s.as_ref().is_some_and(|s| s.srtp.is_some()))
        });
        if srtp_endpoint(&dst) || srtp_endpoint(&src) || srtp_sender {
            self.counters.srtcp_packets += 1;
            return;
        }
        for packet in Compound::new(bytes) {
            let packet = match packet {
                Ok(p) => p,
                Err(_) => {
                    self.counters.rtcp_damaged += 1;
                    break;
                }
            };
            let base = RtcpReport {
                time,
                kind: "rr",
                reporter: 0,
                from: src,
                to: dst,
                fraction_lost: None,
                cumulative_lost: None,
                jitter_ms: None,
                round_trip_ms: None,
                packets: None,
                mos: None,
            };
            match packet {
                RtcpPacket::SenderReport {
                    ssrc,
                    ntp_middle,
                    packets,
                    blocks,
                } => {
                    match self.stream_of(ssrc) {
                        Some(s) => {
                            s.sender_report(ntp_middle, time);
                            s.add_report(RtcpReport {
                                kind: "sr",
                                reporter: ssrc,
                                packets: Some(packets),
                                ..base.clone()
                            });
                        }
                        None => self.counters.rtcp_unmatched += 1,
                    }
                    self.blocks(ssrc, blocks, &base);
                }
                RtcpPacket::ReceiverReport { ssrc, blocks } => self.blocks(ssrc, blocks, &base),
                RtcpPacket::ExtendedReport {
                    ssrc,
                    voip_metrics: Some(v),
                } => match self.stream_of(v.ssrc) {
                    Some(s) => s.add_report(RtcpReport {
                        kind: "xr",
                        reporter: ssrc,
                        fraction_lost: Some(f64::from(v.loss_rate) / 256.0),
                        round_trip_ms: (v.round_trip_ms != 0).then_some(f64::from(v.round_trip_ms)),
                        mos: (v.mos_lq != 127 && v.mos_lq != 0)
                            .then_some(f64::from(v.mos_lq) / 10.0),
                        ..base.clone()
                    }),
                    None => self.counters.rtcp_unmatched += 1,
                },
                RtcpPacket::ExtendedReport { .. } | RtcpPacket::Other { .. } => {}
            }
        }
    }

    fn blocks(&mut self, reporter: u32, blocks: crate::rtp::Blocks<'_>, base: &RtcpReport) {
        for b in blocks {
            let Some(s) = self.stream_of(b.ssrc) else {
                self.counters.rtcp_unmatched += 1;
                continue;
            };
            let clock = if s.clock_rate == 0 {
                8_000
            } else {
                s.clock_rate
            };
            // RFC 3550 §6.4.1: the round trip is the RR's arrival − LSR − DLSR; passively,
            // the SR's and the RR's capture times stand for LSR and the arrival.
            let round_trip_ms = s
                .sender_report_time(b.last_sr)
                .map(|sr| {
                    base.time.seconds_since(sr) * 1000.0
                        - f64::from(b.delay_since_last_sr) * 1000.0 / 65_536.0
                })
                .filter(|rtt| (0.0..60_000.0).contains(rtt));
            s.add_report(RtcpReport {
                kind: "rr",
                reporter,
                fraction_lost: Some(f64::from(b.fraction_lost) / 256.0),
                cumulative_lost: Some(b.cumulative_lost),
                jitter_ms: Some(f64::from(b.jitter) * 1000.0 / f64::from(clock)),
                round_trip_ms,
                ..base.clone()
            });
        }
    }

    /// Stops finding stream `i` by its addresses and SSRC when it used endpoint `at`; it stays
    /// with its call.
    fn retire(&mut self, i: u32, at: SocketAddr) {
        let Some(Some(s)) = self.slab.get(i as usize) else {
            return;
        };
        if s.src != at && s.dst != at {
            return;
        }
        let key = StreamKey {
            src: s.src,
            dst: s.dst,
            ssrc: s.ssrc,
        };
        if self.keys.get(&key) == Some(&i) {
            self.keys.remove(&key);
        }
        if self.by_ssrc.get(&key.ssrc) == Some(&i) {
            self.by_ssrc.remove(&key.ssrc);
        }
    }

    /// The call (creation number) an RTCP compound is about: the owner of the first stream
    /// its sender or report blocks name.
    pub fn call_of_rtcp(&self, bytes: &[u8]) -> Option<u64> {
        let owner = |ssrc: u32| {
            let at = *self.by_ssrc.get(&ssrc)? as usize;
            *self.owner.get(at)?
        };
        for packet in Compound::new(bytes) {
            let Ok(packet) = packet else { break };
            let found = match packet {
                RtcpPacket::SenderReport {
                    ssrc, mut blocks, ..
                } => owner(ssrc).or_else(|| blocks.find_map(|b| owner(b.ssrc))),
                RtcpPacket::ReceiverReport { ssrc, mut blocks } => {
                    blocks.find_map(|b| owner(b.ssrc)).or_else(|| owner(ssrc))
                }
                _ => None,
            };
            if found.is_some() {
                return found;
            }
        }
        None
    }

    fn stream_of(&mut self, ssrc: u32) -> Option<&mut Stream> {
        let at = *self.by_ssrc.get(&ssrc)?;
        self.slab.get_mut(at as usize)?.as_mut()
    }

    fn remove(&mut self, at: u32) -> Option<Stream> {
        let stream = self.slab.get_mut(at as usize)?.take()?;
        if let Some(o) = self.owner.get_mut(at as usize) {
            *o = None;
        }
        let key = StreamKey {
            src: stream.src,
            dst: stream.dst,
            ssrc: stream.ssrc,
        };
        if self.keys.get(&key) == Some(&at) {
            self.keys.remove(&key);
        }
        if self.by_ssrc.get(&stream.ssrc) == Some(&at) {
            self.by_ssrc.remove(&stream.ssrc);
        }
        self.free.push(at);
        Some(stream)
    }

    /// The call is leaving the engine: its streams, complete, in the order they began, and
    /// its endpoints forgotten. Later packets of those flows are on their own.
    pub fn detach(&mut self, call: u64) -> Detached {
        let Some(media) = self.calls.remove(&call) else {
            return Detached::default();
        };
        for at in &media.endpoints {
            if self.endpoints.get(at).is_some_and(|e| e.call == call) {
                self.endpoints.remove(at);
                if self.ports.get(&at.port()) == Some(at) {
                    self.ports.remove(&at.port());
                }
            }
        }
        let mut streams: Vec<Stream> = media
            .streams
            .iter()
            .filter_map(|&at| self.remove(at))
            .collect();
        for s in &mut streams {
            s.finish();
        }
        streams.sort_by_key(|s| (s.start, s.first_frame));
        let path_seen = self.hosts.len() >= MAX_HOSTS
            || media.endpoints.iter().any(|a| self.hosts.contains(&a.ip()));
        Detached {
            streams,
            shared: media.shared,
            path_seen,
        }
    }

    /// Ends untied streams silent for [`MediaConfig::untied_idle`] and probes silent for a
    /// second or more; cheap to call often (it runs at most once a second of capture time).
    pub fn sweep(&mut self, now: Timestamp) {
        if now.since(self.last_sweep) < Interval::from_secs(1) {
            return;
        }
        self.last_sweep = now;
        let idle = self.config.untied_idle;
        let ended: Vec<u32> = self
            .slab
            .iter()
            .zip(&self.owner)
            .enumerate()
            .filter(|(_, (s, owner))| {
                owner.is_none() && s.as_ref().is_some_and(|s| now.since(s.end) >= idle)
            })
            .map(|(i, _)| i as u32)
            .collect();
        for at in ended {
            if let Some(s) = self.remove(at) {
                self.keep_untied(s);
            }
        }
        let before = self.probes.len();
        let mut dropped = 0;
        self.probes.retain(|_, p| {
            let keep = p
                .packets
                .last()
                .is_some_and(|l| now.since(l.time) < Interval::from_secs(2));
            if !keep {
                dropped += p.packets.len() as u64;
            }
            keep
        });
        let _ = before;
        self.counters.unmatched_packets += dropped;
    }

    fn keep_untied(&mut self, mut s: Stream) {
        if self.untied.len() < self.config.max_untied {
            s.finish();
            self.untied.push(s);
        } else {
            self.counters.untied_dropped += 1;
        }
    }

    /// End of input: every untied stream, ended or not, in the order they began; probes
    /// left over are counted as unmatched.
    pub fn finish_untied(&mut self) -> Vec<Stream> {
        let live: Vec<u32> = (0..self.slab.len() as u32)
            .filter(|&at| self.owner.get(at as usize) == Some(&None))
            .collect();
        for at in live {
            if let Some(s) = self.remove(at) {
                self.keep_untied(s);
            }
        }
        self.counters.unmatched_packets += self
            .probes
            .drain()
            .map(|(_, p)| p.packets.len() as u64)
            .sum::<u64>();
        let mut out = std::mem::take(&mut self.untied);
        out.sort_by_key(|s| (s.start, s.first_frame));
        out
    }

    /// Streams in flight.
    pub fn live_streams(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The offer tells SRTP from RTP and how its keys are exchanged: SDES, DTLS, or unnamed.
    #[test]
    fn offers_tell_srtp_and_its_keying() {
        let offer = Offer::parse(
            b"v=0\r\nc=IN IP4 10.0.0.1\r\n\
              m=audio 4000 RTP/AVP 0\r\n\
              m=audio 4002 RTP/SAVP 0\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\n\
              m=audio 4004 UDP/TLS/RTP/SAVPF 0\r\na=fingerprint:sha-256 AB\r\n\
              m=audio 4006 RTP/SAVP 0\r\n",
        )
        .unwrap();
        let srtp: Vec<Option<Srtp>> = offer.lines.iter().map(|l| l.srtp.clone()).collect();
        assert_eq!(srtp[0], None);
        assert_eq!(
            srtp[1],
            Some(Srtp {
                keying: Keying::Sdes,
                suite: Some("AES_CM_128_HMAC_SHA1_80".into())
            })
        );
        assert_eq!(srtp[2].as_ref().map(|s| s.keying), Some(Keying::Dtls));
        assert_eq!(srtp[3].as_ref().map(|s| s.keying), Some(Keying::Unknown));
    }

    fn packet(src: &str, dst: &str, seq: u16, ms: i64) -> Packet {
        Packet {
            source: 0,
            frame: u64::from(seq),
            time: Timestamp::from_millis(ms),
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            rtp: RtpHeader {
                marker: false,
                payload_type: 8,
                sequence: seq,
                timestamp: u32::from(seq) * 160,
                ssrc: 42,
                payload_len: 160,
                payload_offset: 12,
                payload_head: [0; 4],
            },
        }
    }

    fn sdp(addr: &str, port: u16) -> Offer {
        Offer::parse(
            format!("v=0\r\nc=IN IP4 {addr}\r\nm=audio {port} RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n")
                .as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn a_packet_to_an_advertised_endpoint_is_tied_at_once() {
        let mut t = Tracker::new(MediaConfig::default());
        t.advertise(1, Party::Callee, &sdp("10.0.0.2", 4000));
        t.rtp(&packet("10.0.0.1:6000", "10.0.0.2:4000", 1, 0));
        let streams = t.detach(1).streams;
        assert_eq!(streams.len(), 1);
        assert_eq!(streams[0].direction, Direction::CallerToCallee);
        assert_eq!(streams[0].tie, Tie::Destination);
        assert_eq!(streams[0].codec.as_deref(), Some("PCMA"));
    }

    /// SRTCP (RTCP of an SRTP stream) is encrypted past its first SSRC: counted, never read
    /// as reports (its bytes would make up loss and jitter); plain RTCP is read.
    #[test]
    fn srtcp_is_counted_not_read() {
        let srtp = |port: u16| {
            Offer::parse(
                format!("v=0\r\nc=IN IP4 10.0.0.2\r\nm=audio {port} RTP/SAVP 8\r\na=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x\r\n")
                    .as_bytes(),
            )
            .unwrap()
        };
        // An RR from SSRC 7 with one block about SSRC 42: fraction 0x80 (50%), as encrypted
        // bytes might read.
        let rr: Vec<u8> = [
            &[0x81, 201, 0, 7][..],
            &7u32.to_be_bytes(),
            &42u32.to_be_bytes(),
            &[0x80, 0, 0, 9],
            &[0; 16],
        ]
        .concat();
        for (offer, read) in [(srtp(4000), false), (sdp("10.0.0.2", 4000), true)] {
            let mut t = Tracker::new(MediaConfig::default());
            t.advertise(1, Party::Callee, &offer);
            t.rtp(&packet("10.0.0.1:6000", "10.0.0.2:4000", 1, 0));
            t.rtcp(
                Timestamp::from_millis(10),
                "10.0.0.2:4001".parse().unwrap(),
                "10.0.0.1:6001".parse().unwrap(),
                &rr,
            );
            let streams = t.detach(1).streams;
            assert_eq!(streams[0].srtp.is_some(), !read);
            assert_eq!(streams[0].rtcp.len(), usize::from(read));
            assert_eq!(t.counters.srtcp_packets, u64::from(!read));
        }
    }

    /// The classic NAT: the SDP names a private address, the media goes to the public one
    /// with the same port; tied by the port, the advertised address kept.
    #[test]
    fn media_to_a_rewritten_address_is_tied_by_port() {
        let mut t = Tracker::new(MediaConfig::default());
        t.advertise(1, Party::Caller, &sdp("192.168.1.20", 4002));
        t.rtp(&packet("10.0.0.2:4000", "203.0.113.5:4002", 1, 0));
        let s = &t.detach(1).streams[0];
        assert_eq!(s.tie, Tie::DestinationPort);
        assert_eq!(s.direction, Direction::CalleeToCaller);
        assert_eq!(s.advertised, Some("192.168.1.20:4002".parse().unwrap()));
    }

    /// Without SDP a flow needs four packets in sequence; random-looking RTP headers (a new
    /// SSRC or sequence each packet) never become a stream.
    #[test]
    fn untied_streams_need_evidence() {
        let mut t = Tracker::new(MediaConfig::default());
        for i in 0..3 {
            t.rtp(&packet(
                "10.0.0.1:7000",
                "10.0.0.2:7002",
                10 + i,
                i64::from(i) * 20,
            ));
        }
        assert_eq!(t.counters.streams, 0);
        t.rtp(&packet("10.0.0.1:7000", "10.0.0.2:7002", 13, 60));
        assert_eq!(t.counters.streams, 1);
        let mut rng = crate::synth::Rng::new(9);
        for i in 0..10_000 {
            let mut p = packet(
                "10.0.0.3:9000",
                "10.0.0.4:9000",
                rng.below(65_536) as u16,
                i,
            );
            p.rtp.ssrc = rng.below(1 << 32) as u32;
            t.rtp(&p);
        }
        let untied = t.finish_untied();
        assert_eq!(untied.len(), 1);
        assert_eq!(untied[0].packets, 4);
        assert_eq!(untied[0].lost, 0);
        assert!(t.counters.unmatched_packets >= 9_990);
    }

    /// Two calls that advertise the same endpoint (a B2BUA's legs) are both marked shared.
    #[test]
    fn an_endpoint_of_two_calls_marks_both() {
        let mut t = Tracker::new(MediaConfig::default());
        t.advertise(1, Party::Caller, &sdp("10.0.0.1", 4000));
        t.advertise(2, Party::Caller, &sdp("10.0.0.1", 4000));
        t.advertise(3, Party::Caller, &sdp("10.0.0.9", 4000));
        // A port reused after the call that had it ended is not shared.
        t.bye(3, Timestamp::from_millis(1));
        t.advertise(4, Party::Caller, &sdp("10.0.0.9", 4000));
        assert!(t.detach(1).shared);
        assert!(t.detach(2).shared);
        assert!(!t.detach(3).shared);
        assert!(!t.detach(4).shared);
    }

    /// Two calls one after the other on the same ports, with the same SSRC: each has its
    /// own stream.
    #[test]
    fn a_port_reused_by_the_next_call_begins_a_new_stream() {
        let mut t = Tracker::new(MediaConfig::default());
        t.advertise(1, Party::Callee, &sdp("10.0.0.2", 4000));
        t.rtp(&packet("10.0.0.1:6000", "10.0.0.2:4000", 1, 0));
        t.bye(1, Timestamp::from_millis(10));
        t.advertise(2, Party::Callee, &sdp("10.0.0.2", 4000));
        t.rtp(&packet("10.0.0.1:6000", "10.0.0.2:4000", 1, 20_000));
        t.rtp(&packet("10.0.0.1:6000", "10.0.0.2:4000", 2, 20_020));
        assert_eq!(t.detach(1).streams[0].packets, 1);
        assert_eq!(t.detach(2).streams[0].packets, 2);
    }

    #[test]
    fn an_ssrc_flood_is_bounded() {
        let mut t = Tracker::new(MediaConfig::default());
        t.advertise(1, Party::Callee, &sdp("10.0.0.2", 4000));
        for i in 0..1_000u32 {
            let mut p = packet("10.0.0.1:6000", "10.0.0.2:4000", 1, 0);
            p.rtp.ssrc = i;
            t.rtp(&p);
        }
        assert_eq!(t.detach(1).streams.len(), 64);
        assert_eq!(t.counters.streams_refused, 936);
    }
}
