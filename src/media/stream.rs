//! One RTP stream (one SSRC from one address to another) and what is measured on it as its
//! packets arrive.

use super::codec::{self, Codec};
use crate::rtp::{RtpHeader, TelephoneEvent};
use crate::time::Timestamp;
use compact_str::CompactString;
use smallvec::SmallVec;
use std::net::SocketAddr;
use std::sync::Arc;

/// Which way a stream flows between the call's parties.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Direction {
    CallerToCallee,
    CalleeToCaller,
    Unknown,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::CallerToCallee => "caller_to_callee",
            Direction::CalleeToCaller => "callee_to_caller",
            Direction::Unknown => "unknown",
        }
    }
}

/// How a stream was tied to its call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tie {
    /// Sent to an address and port an SDP advertised.
    Destination,
    /// Sent from an address and port an SDP advertised (the receiver's was not seen, or
    /// not used).
    Source,
    /// Sent to the port an SDP advertised, at another address: a NAT rewrote it, or the SDP
    /// named an address the sender could not use. [`Stream::advertised`] says which.
    DestinationPort,
    /// Sent from the port an SDP advertised, at another address (a NAT on the sender's side).
    SourcePort,
    /// No SDP names it: RTP by evidence alone (several packets in sequence), tied to no call.
    Untied,
}

impl Tie {
    pub fn as_str(self) -> &'static str {
        match self {
            Tie::Destination => "sdp_destination",
            Tie::Source => "sdp_source",
            Tie::DestinationPort => "sdp_destination_port",
            Tie::SourcePort => "sdp_source_port",
            Tie::Untied => "none",
        }
    }

    /// Tied by port with another address: what `media_address_mismatch` reports.
    pub fn by_port(self) -> bool {
        matches!(self, Tie::DestinationPort | Tie::SourcePort)
    }
}

/// An RFC 4733 telephone-event: a DTMF digit (or another event) with its start and length.
#[derive(Debug, Clone, PartialEq)]
pub struct Dtmf {
    /// The key (`0`–`9`, `*`, `#`, `A`–`D`), or the event number for other events.
    pub digit: CompactString,
    pub time: Timestamp,
    pub duration_ms: f64,
    /// The end packet was seen.
    pub ended: bool,
    pub volume: u8,
    /// The event's RTP timestamp (each event has its own).
    pub(crate) timestamp: u32,
}

/// What one RTCP packet said about a stream: an SR's sender information (about the stream
/// its sender sends) or an RR/SR report block or an XR VoIP-metrics block (about the stream
/// the reporter receives).
#[derive(Debug, Clone, PartialEq)]
pub struct RtcpReport {
    pub time: Timestamp,
    /// `sr` (sender information), `rr` (a report block, in an SR or RR) or `xr`.
    pub kind: &'static str,
    /// SSRC of the reporter.
    pub reporter: u32,
    pub from: SocketAddr,
    pub to: SocketAddr,
    /// Since the reporter's previous report, 0–1.
    pub fraction_lost: Option<f64>,
    pub cumulative_lost: Option<i32>,
    pub jitter_ms: Option<f64>,
    /// From LSR/DLSR and the SR this capture saw (RFC 3550 §6.4.1), or an XR's.
    pub round_trip_ms: Option<f64>,
    /// The sender's packet count (SR).
    pub packets: Option<u32>,
    /// An XR's own MOS-LQ estimate.
    pub mos: Option<f64>,
}

/// Events and reports kept per stream at most; past these they are counted.
pub(crate) const MAX_DTMF: usize = 256;
pub(crate) const MAX_RTCP: usize = 256;
/// Payload types listed per stream at most.
const MAX_PAYLOAD_TYPES: usize = 8;
/// Sender reports remembered per stream to match the LSR of later receiver reports.
const SR_MEMORY: usize = 4;
/// Buckets a stream's timeline keeps at most: past these, neighbours merge and each bucket
/// covers twice the time (a one-hour stream is drawn from 240 buckets of 16 s).
pub const MAX_BUCKETS: usize = 300;

/// One slice of a stream's life, for the graphs of the media screen.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Bucket {
    pub packets: u32,
    /// Packets the sequence numbers say were sent in this slice (lost = expected − packets).
    pub expected: u32,
    /// The highest RFC 3550 jitter reached in the slice, in ms.
    pub jitter_max_ms: f32,
    /// The longest gap between two arrivals ending in the slice, in ms.
    pub gap_max_ms: f32,
}

impl Bucket {
    pub fn lost(&self) -> u32 {
        self.expected.saturating_sub(self.packets)
    }

    fn merge(&mut self, o: &Bucket) {
        self.packets = self.packets.saturating_add(o.packets);
        self.expected = self.expected.saturating_add(o.expected);
        self.jitter_max_ms = self.jitter_max_ms.max(o.jitter_max_ms);
        self.gap_max_ms = self.gap_max_ms.max(o.gap_max_ms);
    }
}

/// A stream's figures over time: buckets of `width_s` seconds from the stream's start, at most
/// [`MAX_BUCKETS`] of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    pub width_s: u32,
    pub buckets: Vec<Bucket>,
    last_arrival_ms: Option<f64>,
}

impl Default for Timeline {
    fn default() -> Timeline {
        Timeline {
            width_s: 1,
            buckets: Vec::new(),
            last_arrival_ms: None,
        }
    }
}

impl Timeline {
    /// Records one packet `since_ms` after the stream's start.
    fn record(&mut self, since_ms: f64, now_ms: f64, expected: u64, jitter_ms: f64) {
        let gap = self.last_arrival_ms.map_or(0.0, |l| (now_ms - l).max(0.0));
        self.last_arrival_ms = Some(now_ms);
        let mut at = (since_ms.max(0.0) / 1000.0) as u64 / u64::from(self.width_s);
        while at >= MAX_BUCKETS as u64 {
            // Halve the resolution: neighbours merge, the width doubles.
            let merged: Vec<Bucket> = self
                .buckets
                .chunks(2)
                .map(|pair| {
                    let mut b = Bucket::default();
                    for x in pair {
                        b.merge(x);
                    }
                    b
                })
                .collect();
            self.buckets = merged;
            self.width_s = self.width_s.saturating_mul(2);
            at = (since_ms.max(0.0) / 1000.0) as u64 / u64::from(self.width_s);
        }
        let at = at as usize;
        if self.buckets.len() <= at {
            self.buckets.resize(at + 1, Bucket::default());
        }
        if let Some(b) = self.buckets.get_mut(at) {
            b.packets = b.packets.saturating_add(1);
            b.expected = b
                .expected
                .saturating_add(u32::try_from(expected).unwrap_or(u32::MAX));
            b.jitter_max_ms = b.jitter_max_ms.max(jitter_ms as f32);
            b.gap_max_ms = b.gap_max_ms.max(gap as f32);
        }
    }
}

/// One RTP stream and its figures. The figures follow Wireshark's RTP stream analysis
/// (`tshark -z rtp,streams`) so that the two can be compared: jitter as RFC 3550 A.8 in
/// milliseconds, with the timestamp of the last in-sequence packet; mean and maximum over
/// the regular packets (not the first, not marked, not comfort noise or just after it).
#[derive(Debug, Clone)]
pub struct Stream {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub ssrc: u32,
    pub direction: Direction,
    pub tie: Tie,
    /// The SDP address it was tied by, when it is not the stream's own (tied by port).
    pub advertised: Option<SocketAddr>,
    /// The input it came from, and its first frame there.
    pub source: usize,
    pub first_frame: u64,
    /// The first payload type that is neither comfort noise nor a telephone-event (else the
    /// first seen), with its codec when SDP or the static table names it.
    pub payload_type: u8,
    pub codec: Option<CompactString>,
    /// SRTP, as its SDP's profile said (`None`: plain RTP, or no SDP).
    pub srtp: Option<super::Srtp>,
    pub clock_rate: u32,
    /// Every payload type seen (up to eight).
    pub payload_types: SmallVec<[u8; 4]>,
    pub packets: u64,
    /// Payload bytes.
    pub bytes: u64,
    /// Highest extended sequence number − first + 1.
    pub expected: u64,
    /// `expected − packets`: negative when duplicates outnumber losses, as Wireshark prints.
    pub lost: i64,
    pub duplicates: u64,
    /// Packets that arrived after a later one (not duplicates).
    pub out_of_order: u64,
    /// Times the 16-bit sequence number wrapped.
    pub wraps: u32,
    pub markers: u64,
    /// Comfort-noise packets (payload type 13 or `CN`): silence, not loss.
    pub comfort_noise: u64,
    pub jitter_mean_ms: f64,
    pub jitter_max_ms: f64,
    pub max_delta_ms: f64,
    pub mean_delta_ms: f64,
    pub start: Timestamp,
    pub end: Timestamp,
    pub dtmf: Vec<Dtmf>,
    pub rtcp: Vec<RtcpReport>,
    /// DTMF events and RTCP reports past the per-stream limits.
    pub dropped_events: u64,
    /// Packets more than the grace after the call's BYE, and the first of them.
    pub after_bye: u64,
    pub first_after_bye: Option<Timestamp>,
    /// E-model estimate (see [`super::emodel`]), set when the stream is complete.
    pub r_factor: Option<f64>,
    pub mos: Option<f64>,
    /// The figures over time, for graphs.
    pub timeline: Timeline,
    pub(crate) meter: Meter,
}

/// The running state behind the figures.
#[derive(Debug, Clone, Default)]
pub(crate) struct Meter {
    pub(crate) codecs: Arc<[Codec]>,
    base_seq: u64,
    max_seq: u16,
    cycles: u64,
    /// Bit i: extended sequence `max − i` was received (duplicates).
    window: u64,
    last_ts: u32,
    ext_ts: i64,
    seq_ts: i64,
    last_time_ms: f64,
    jitter: f64,
    jitter_sum_n: u64,
    delta_sum_n: u64,
    last_was_cn: bool,
    /// Where the event in progress is in `dtmf`.
    event_at: Option<usize>,
    /// The call's BYE, once seen (`Tracker::bye`).
    pub(crate) bye: Option<Timestamp>,
    /// The last payload type seen and what its codec says (clock rate, comfort noise,
    /// telephone-event): the codec table is searched only when the type changes, not per
    /// packet.
    last_pt: Option<(u8, PtFacts)>,
    /// Sender reports seen from this stream's source: NTP middle 32 bits and capture time.
    pub(crate) sender_reports: [(u32, Timestamp); SR_MEMORY],
    sr_next: usize,
}

/// What a payload type means for the figures.
#[derive(Debug, Clone, Copy, Default)]
struct PtFacts {
    clock: u32,
    comfort_noise: bool,
    event: bool,
}

/// The grace after a BYE during which media still in flight is not "after BYE".
pub(crate) const BYE_GRACE_MS: f64 = 1_000.0;

fn ms(t: Timestamp) -> f64 {
    t.0 as f64 / 1e6
}

impl Stream {
    pub(crate) fn new(
        first: &super::tracker::Packet,
        direction: Direction,
        tie: Tie,
        advertised: Option<SocketAddr>,
        codecs: Arc<[Codec]>,
    ) -> Stream {
        Stream {
            src: first.src,
            dst: first.dst,
            ssrc: first.rtp.ssrc,
            direction,
            tie,
            advertised,
            source: first.source,
            first_frame: first.frame,
            payload_type: first.rtp.payload_type,
            codec: None,
            srtp: None,
            clock_rate: 0,
            payload_types: SmallVec::new(),
            packets: 0,
            bytes: 0,
            expected: 0,
            lost: 0,
            duplicates: 0,
            out_of_order: 0,
            wraps: 0,
            markers: 0,
            comfort_noise: 0,
            jitter_mean_ms: 0.0,
            jitter_max_ms: 0.0,
            max_delta_ms: 0.0,
            mean_delta_ms: 0.0,
            start: first.time,
            end: first.time,
            dtmf: Vec::new(),
            rtcp: Vec::new(),
            dropped_events: 0,
            after_bye: 0,
            first_after_bye: None,
            r_factor: None,
            mos: None,
            timeline: Timeline::default(),
            meter: Meter {
                codecs,
                ..Meter::default()
            },
        }
    }

    /// Loss in percent of the expected packets (0 when none were lost).
    pub fn loss_percent(&self) -> f64 {
        if self.expected == 0 || self.lost <= 0 {
            0.0
        } else {
            self.lost as f64 * 100.0 / self.expected as f64
        }
    }

    /// The codec the stream's payload type names, with the stream's codec table.
    fn codec_of(&self, pt: u8) -> Option<Codec> {
        codec::lookup(&self.meter.codecs, pt)
    }

    /// Measures one packet (arrival order) and records it on the timeline.
    pub(crate) fn add(&mut self, h: &RtpHeader, time: Timestamp) {
        let expected = self.expected;
        self.measure(h, time);
        let now = ms(time);
        self.timeline.record(
            now - ms(self.start),
            now,
            self.expected.saturating_sub(expected),
            self.meter.jitter,
        );
    }

    fn measure(&mut self, h: &RtpHeader, time: Timestamp) {
        let now = ms(time);
        let facts = match self.meter.last_pt {
            Some((pt, facts)) if pt == h.payload_type => facts,
            _ => self.new_payload_type(h.payload_type),
        };
        let (is_cn, is_event) = (facts.comfort_noise, facts.event);
        if let Some(bye) = self.meter.bye
            && now > ms(bye) + BYE_GRACE_MS
        {
            self.after_bye += 1;
            self.first_after_bye.get_or_insert(time);
        }
        self.bytes += u64::from(h.payload_len);
        self.markers += u64::from(h.marker);
        self.comfort_noise += u64::from(is_cn);
        self.end = self.end.max(time);
        if is_event && let Some(e) = TelephoneEvent::parse(h) {
            self.event(
                h.timestamp,
                &e,
                time,
                if facts.clock == 0 { 8_000 } else { facts.clock },
            );
        }
        let m = &mut self.meter;
        let total = self.packets; // before this one, as Wireshark's total_nr
        self.packets += 1;
        if total == 0 {
            m.base_seq = u64::from(h.sequence);
            m.max_seq = h.sequence;
            m.cycles = 0;
            m.window = 1;
            m.last_ts = h.timestamp;
            m.ext_ts = i64::from(h.timestamp);
            m.seq_ts = m.ext_ts;
            m.last_time_ms = now;
            m.last_was_cn = is_cn;
            self.expected = 1;
            return;
        }
        // Sequence (RFC 3550 A.1, without the restart heuristics: a jump is loss).
        let ahead = h.sequence.wrapping_sub(m.max_seq);
        if ahead != 0 && ahead < 0x8000 {
            if h.sequence < m.max_seq {
                m.cycles += 1 << 16;
                self.wraps += 1;
            }
            m.window = if ahead >= 64 { 0 } else { m.window << ahead };
            m.window |= 1;
            m.max_seq = h.sequence;
        } else {
            let behind = m.max_seq.wrapping_sub(h.sequence);
            let bit = if behind < 64 { 1u64 << behind } else { 0 };
            if bit != 0 && m.window & bit != 0 {
                self.duplicates += 1;
            } else {
                m.window |= bit;
                if behind != 0 {
                    self.out_of_order += 1;
                }
            }
        }
        let max_ext = m.cycles + u64::from(m.max_seq);
        self.expected = (max_ext + 1).saturating_sub(m.base_seq);
        self.lost = self.expected as i64 - self.packets as i64;
        // Timestamps, extended across wraps.
        let step = i64::from(h.timestamp.wrapping_sub(m.last_ts) as i32);
        m.last_ts = h.timestamp;
        m.ext_ts += step;
        let in_time_sequence = m.ext_ts >= m.seq_ts;
        let clock = if is_event { 0 } else { facts.clock };
        let delta = now - m.last_time_ms;
        let mut jitter_now = None;
        if clock != 0 {
            let nominal = (m.ext_ts - m.seq_ts) as f64 / (f64::from(clock) / 1000.0);
            let diff = (now - (m.last_time_ms + nominal)).abs();
            m.jitter = (15.0 * m.jitter + diff) / 16.0;
            jitter_now = Some(m.jitter);
        }
        let regular = !h.marker && !is_cn && !m.last_was_cn && in_time_sequence;
        if regular {
            self.max_delta_ms = self.max_delta_ms.max(delta);
            let n = total as f64;
            self.mean_delta_ms = (self.mean_delta_ms * (n - 1.0) + delta) / n;
            m.delta_sum_n += 1;
            if let Some(j) = jitter_now {
                self.jitter_max_ms = self.jitter_max_ms.max(j);
                self.jitter_mean_ms = (self.jitter_mean_ms * (n - 1.0) + j) / n;
                m.jitter_sum_n += 1;
            }
        }
        m.last_was_cn = is_cn;
        if in_time_sequence {
            m.last_time_ms = now;
            m.seq_ts = m.ext_ts;
        }
    }

    /// A payload type other than the last packet's: its codec looked up, listed if new, and
    /// taken as the stream's codec if it is the first real audio (or video) type.
    fn new_payload_type(&mut self, pt: u8) -> PtFacts {
        let codec = self.codec_of(pt);
        let facts = PtFacts {
            clock: codec.as_ref().map_or(0, |c| c.clock_rate),
            comfort_noise: pt == 13 || codec.as_ref().is_some_and(Codec::is_comfort_noise),
            event: codec.as_ref().is_some_and(Codec::is_telephone_event),
        };
        if !self.payload_types.contains(&pt) {
            if self.payload_types.len() < MAX_PAYLOAD_TYPES {
                self.payload_types.push(pt);
            }
            if (self.codec.is_none() || self.packets == 0) && !facts.comfort_noise && !facts.event {
                self.payload_type = pt;
                self.codec = codec.map(|c| c.name);
                self.clock_rate = facts.clock;
            }
        }
        self.meter.last_pt = Some((pt, facts));
        facts
    }

    fn event(&mut self, timestamp: u32, e: &TelephoneEvent, time: Timestamp, clock: u32) {
        let duration_ms = f64::from(e.duration) * 1000.0 / f64::from(clock.max(1));
        let current = self
            .meter
            .event_at
            .and_then(|i| self.dtmf.get_mut(i))
            .filter(|d| d.timestamp == timestamp);
        if let Some(d) = current {
            d.duration_ms = d.duration_ms.max(duration_ms);
            d.ended |= e.end;
            return;
        }
        if self.dtmf.len() >= MAX_DTMF {
            self.dropped_events += 1;
            return;
        }
        let digit = match e.digit() {
            Some(c) => CompactString::from(&*c.encode_utf8(&mut [0; 4])),
            None => compact_str::format_compact!("event {}", e.event),
        };
        self.meter.event_at = Some(self.dtmf.len());
        self.dtmf.push(Dtmf {
            digit,
            time,
            duration_ms,
            ended: e.end,
            volume: e.volume,
            timestamp,
        });
    }

    pub(crate) fn add_report(&mut self, report: RtcpReport) {
        if self.rtcp.len() < MAX_RTCP {
            self.rtcp.push(report);
        } else {
            self.dropped_events += 1;
        }
    }

    /// Remembers a sender report from this stream's source, for the round trip of later
    /// receiver reports.
    pub(crate) fn sender_report(&mut self, ntp_middle: u32, time: Timestamp) {
        let m = &mut self.meter;
        if let Some(slot) = m.sender_reports.get_mut(m.sr_next % SR_MEMORY) {
            *slot = (ntp_middle, time);
        }
        m.sr_next += 1;
    }

    /// The capture time of the sender report with this NTP middle, if this capture saw it.
    pub(crate) fn sender_report_time(&self, ntp_middle: u32) -> Option<Timestamp> {
        (ntp_middle != 0)
            .then(|| {
                self.meter
                    .sender_reports
                    .iter()
                    .find(|(n, _)| *n == ntp_middle)
                    .map(|(_, t)| *t)
            })
            .flatten()
    }

    /// Whether every payload type seen is a telephone-event or comfort noise: a stream of
    /// DTMF events alone (some stacks send them with an SSRC of their own), which carries no
    /// audio to rate.
    pub fn events_only(&self) -> bool {
        self.payload_types.iter().all(|&pt| {
            pt == 13
                || self
                    .codec_of(pt)
                    .is_some_and(|c| c.is_telephone_event() || c.is_comfort_noise())
        })
    }

    /// The stream is complete: its codec named, and the E-model estimate for audio.
    pub(crate) fn finish(&mut self) {
        if self.codec.is_none() {
            let first = self
                .payload_types
                .first()
                .copied()
                .unwrap_or(self.payload_type);
            if let Some(c) = self.codec_of(first) {
                self.payload_type = first;
                self.codec = Some(c.name);
                self.clock_rate = c.clock_rate;
            }
        }
        if self.packets == 0 || self.events_only() {
            return;
        }
        let rtt = self
            .rtcp
            .iter()
            .filter_map(|r| r.round_trip_ms)
            .fold(None, |a: Option<f64>, b| Some(a.map_or(b, |a| a.max(b))));
        let delay = super::emodel::delay_ms(self.jitter_max_ms, rtt);
        let r = super::emodel::r_factor(
            self.codec.as_deref().unwrap_or(""),
            self.loss_percent(),
            delay,
        );
        // R is reported on its scale, 0 to 100 (damaged timestamps can make the delay term
        // absurd).
        self.r_factor = Some((r.clamp(0.0, 100.0) * 10.0).round() / 10.0);
        self.mos = Some((super::emodel::mos(r) * 100.0).round() / 100.0);
    }

    /// Bytes the record holds, for the call's memory accounting.
    pub fn footprint(&self) -> usize {
        std::mem::size_of::<Stream>()
            + self.timeline.buckets.capacity() * std::mem::size_of::<Bucket>()
            + self.dtmf.capacity() * std::mem::size_of::<Dtmf>()
            + self.rtcp.capacity() * std::mem::size_of::<RtcpReport>()
    }
}

#[cfg(test)]
mod tests {
    use super::super::tracker::Packet;
    use super::*;

    fn header(seq: u16, ts: u32, pt: u8) -> RtpHeader {
        RtpHeader {
            marker: false,
            payload_type: pt,
            sequence: seq,
            timestamp: ts,
            ssrc: 7,
            payload_len: 160,
            payload_offset: 12,
            payload_head: [0; 4],
        }
    }

    fn stream(first: RtpHeader) -> Stream {
        let p = Packet {
            source: 0,
            frame: 1,
            time: Timestamp::from_millis(0),
            src: "10.0.0.1:4000".parse().unwrap(),
            dst: "10.0.0.2:4000".parse().unwrap(),
            rtp: first,
        };
        Stream::new(&p, Direction::Unknown, Tie::Untied, None, Arc::from([]))
    }

    /// The timeline counts packets and losses per second, and a long stream halves its
    /// resolution instead of growing past the bucket limit.
    #[test]
    fn the_timeline_is_bounded_and_sums_to_the_totals() {
        let mut s = stream(header(0, 0, 0));
        // 20 minutes at 50 packets/s; every 10th packet lost in the first 10 s.
        for i in 0..60_000u32 {
            if i < 500 && i % 10 == 5 {
                continue;
            }
            let h = header(i as u16, i.wrapping_mul(160), 0);
            s.add(&h, Timestamp::from_millis(i64::from(i) * 20));
        }
        let t = &s.timeline;
        assert!(t.buckets.len() <= MAX_BUCKETS, "{}", t.buckets.len());
        assert_eq!(t.width_s, 4);
        let packets: u64 = t.buckets.iter().map(|b| u64::from(b.packets)).sum();
        let lost: u64 = t.buckets.iter().map(|b| u64::from(b.lost())).sum();
        assert_eq!((packets, lost as i64), (s.packets, s.lost));
        assert_eq!(t.buckets[0].lost(), 20);
        assert!(t.buckets[0].gap_max_ms > 39.0 && t.buckets[0].gap_max_ms < 41.0);
        assert_eq!(t.buckets[3].lost(), 0);
    }

    /// Packets every 20 ms with timestamps 160 apart: no jitter, no loss.
    #[test]
    fn a_steady_stream_has_no_jitter_or_loss() {
        let mut s = stream(header(100, 0, 0));
        for i in 0..500u16 {
            let h = header(100 + i, u32::from(i) * 160, 0);
            s.add(&h, Timestamp::from_millis(i64::from(i) * 20));
        }
        assert_eq!((s.packets, s.expected, s.lost), (500, 500, 0));
        assert_eq!(s.codec.as_deref(), Some("PCMU"));
        assert!(s.jitter_max_ms < 1e-9);
        assert!((s.max_delta_ms - 20.0).abs() < 1e-9);
        s.finish();
        assert_eq!(s.mos, Some(4.39));
    }

    /// Loss, a duplicate, a reordered packet and a sequence wrap, counted as RFC 3550 A.1 and
    /// A.3 count them.
    #[test]
    fn counts_loss_duplicates_reordering_and_wraps() {
        let mut s = stream(header(65_530, 0, 8));
        let order: [u16; 9] = [65_530, 65_531, 65_533, 65_532, 65_532, 65_535, 0, 1, 3];
        for (i, seq) in order.into_iter().enumerate() {
            let ts = u32::from(seq.wrapping_sub(65_530)) * 160;
            s.add(&header(seq, ts, 8), Timestamp::from_millis(i as i64 * 20));
        }
        // 65530..=3 is 10 expected; 65534 and 2 lost; one duplicate.
        assert_eq!(s.expected, 10);
        assert_eq!(s.packets, 9);
        assert_eq!(s.lost, 1); // 2 lost − 1 duplicate, as Wireshark prints it
        assert_eq!(s.duplicates, 1);
        assert_eq!(s.out_of_order, 1);
        assert_eq!(s.wraps, 1);
    }

    /// RFC 3550 A.8: a packet 10 ms late moves the jitter by 10/16 ms.
    #[test]
    fn jitter_follows_a_8() {
        let mut s = stream(header(1, 0, 0));
        s.add(&header(1, 0, 0), Timestamp::from_millis(0));
        s.add(&header(2, 160, 0), Timestamp::from_millis(30));
        assert!((s.jitter_max_ms - 10.0 / 16.0).abs() < 1e-9);
    }

    #[test]
    fn telephone_events_become_digits() {
        let mut s = stream(header(1, 0, 0));
        s.meter.codecs = Arc::from([codec::parse_rtpmap("101 telephone-event/8000").unwrap()]);
        for (i, (dur, end)) in [(160u16, false), (320, false), (400, true), (400, true)]
            .into_iter()
            .enumerate()
        {
            let mut h = header(1 + i as u16, 8_000, 101);
            h.payload_head = [
                5,
                if end { 0x8a } else { 0x0a },
                (dur >> 8) as u8,
                dur as u8,
            ];
            s.add(&h, Timestamp::from_millis(1_000 + i as i64 * 20));
        }
        assert_eq!(s.dtmf.len(), 1);
        assert_eq!(s.dtmf[0].digit, "5");
        assert!(s.dtmf[0].ended);
        assert!((s.dtmf[0].duration_ms - 50.0).abs() < 1e-9);
    }
}
