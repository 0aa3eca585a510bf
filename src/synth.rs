//! Synthetic captures for benchmarks and tests: many overlapping calls through a proxy, with a
//! mix of outcomes, SIP retransmissions, callers on TCP (messages split across segments at
//! random points, coalesced, retransmitted and reordered), and large INVITEs fragmented at the
//! IP layer. Deterministic for a given seed. Calls are generated lazily in time order, so a
//! capture of any size is written in bounded memory.
//!
//! Used by `examples/gen-capture.rs`, the benchmarks and the large-scale tests. Not used by the
//! analyzer itself.

pub mod script;

use etherparse::PacketBuilder;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::io::{self, Write};
use std::net::Ipv4Addr;

/// What to generate.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct SynthConfig {
    pub calls: usize,
    pub seed: u64,
    /// New calls per second of capture time.
    pub calls_per_second: f64,
    /// Share of calls whose caller talks to the proxy over TCP.
    pub tcp_share: f64,
    /// Share of UDP INVITEs large enough to be IP-fragmented.
    pub fragment_share: f64,
    /// Share of answered calls whose 200 OK is retransmitted.
    pub retransmit_share: f64,
    /// Seconds an answered call lasts (before BYE), at most; each call draws up to this.
    pub max_hold_secs: f64,
    /// Scanner requests mixed in with the calls: OPTIONS, REGISTER and INVITE sweeps from a
    /// few public sources, a fresh Call-ID each, a fifth answered 401 or 404, the rest never.
    pub scanner_requests: usize,
    /// Scanner requests per second of capture time (all sources together).
    pub scanner_rate: f64,
    /// RTP for answered calls (PCMU, 20 ms packets, both ways from the ACK to the BYE): the
    /// callee side is a pool of four media gateways. Off by default.
    pub rtp: bool,
    /// With `rtp`: the share of answered calls given one media fault (one-way, no media, NAT,
    /// loss, jitter, RTP after BYE, media timeout; [`MediaTruth`] counts them).
    pub media_fault_share: f64,
    /// Dialled numbers and callers drawn from this many each (0: a spread of thousands), so
    /// that unrelated calls dial the same numbers from the same callers at the same moments.
    pub numbers: usize,
}

impl Default for SynthConfig {
    fn default() -> Self {
        SynthConfig {
            calls: 1000,
            seed: 1,
            calls_per_second: 50.0,
            tcp_share: 0.2,
            fragment_share: 0.1,
            retransmit_share: 0.05,
            max_hold_secs: 60.0,
            scanner_requests: 0,
            scanner_rate: 2000.0,
            rtp: false,
            media_fault_share: 0.0,
            numbers: 0,
        }
    }
}

/// The media faults written (with `rtp`), by kind, to check a diagnosis against: each is the
/// anomaly kind it should produce, and `clean` calls should produce none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaTruth {
    pub clean: usize,
    pub one_way_media: usize,
    pub no_media: usize,
    pub media_address_mismatch: usize,
    pub packet_loss: usize,
    pub high_jitter: usize,
    pub rtp_after_bye: usize,
    pub media_timeout: usize,
    /// DTMF digits sent (one per call that sends one).
    pub dtmf: usize,
    pub rtp_packets: u64,
}

/// What was written, to check an analysis against.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SynthStats {
    pub calls: usize,
    /// SIP messages as they crossed the wire (each hop and each SIP retransmission).
    pub sip_messages: u64,
    pub frames: u64,
    pub bytes: u64,
    pub answered: usize,
    pub busy: usize,
    pub cancelled: usize,
    pub rejected: usize,
    pub server_error: usize,
    pub timeout: usize,
    pub scanner_requests: usize,
    /// Scanner requests the proxy answered (401 or 404).
    pub scanner_answered: usize,
    pub media: MediaTruth,
}

/// SplitMix64: a tiny deterministic generator; quality is ample for test traffic (and for the
/// mutation test's damage).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Answered,
    Busy,
    Cancelled,
    Rejected,
    ServerError,
    Timeout,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Leg {
    /// Caller ↔ proxy.
    A,
    /// Proxy ↔ callee.
    B,
}

/// One SIP message of a call, before it becomes frames.
struct Msg {
    at_ms: f64,
    leg: Leg,
    /// Sent by the caller side of the leg (caller on A, proxy on B).
    upstream_sender: bool,
    text: String,
}

const PROXY: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

struct CallPlan {
    id: usize,
    caller: Ipv4Addr,
    caller_port: u16,
    callee: Ipv4Addr,
    tcp: bool,
    outcome: Outcome,
    msgs: Vec<Msg>,
    media: Option<MediaPlan>,
}

/// A media fault of a synthetic call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    Clean,
    OneWay,
    NoMedia,
    Nat,
    Loss,
    Jitter,
    AfterBye,
    Timeout,
}

/// The RTP of an answered call: both parties' SDP endpoints, where the caller really sends
/// from (another address behind a NAT), and when the media runs.
struct MediaPlan {
    fault: Fault,
    caller: (Ipv4Addr, u16),
    callee: (Ipv4Addr, u16),
    caller_source: Ipv4Addr,
    /// Milliseconds from the call's start: the ACK, and the BYE.
    from_ms: f64,
    bye_ms: f64,
    dtmf: bool,
}

/// The media gateways that answer every synthetic call's media (the callee side).
const GATEWAYS: [Ipv4Addr; 4] = [
    Ipv4Addr::new(10, 3, 0, 1),
    Ipv4Addr::new(10, 3, 0, 2),
    Ipv4Addr::new(10, 3, 0, 3),
    Ipv4Addr::new(10, 3, 0, 4),
];

fn sdp(ip: Ipv4Addr, port: u16, padding: usize) -> String {
    let mut s = format!(
        "v=0\r\no=- 4711 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 0 8 101\r\n\
a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n"
    );
    for i in 0..padding {
        s.push_str(&format!("a=x-padding-{i}:{}\r\n", "p".repeat(60)));
    }
    s
}

struct Names {
    call_id: String,
    from_tag: String,
    to_tag: String,
    ruri: String,
    caller_uri: String,
    callee_uri: String,
    via_a: String,
    via_p: String,
    rr: String,
}

fn message(
    start: &str,
    vias: &[&str],
    n: &Names,
    to_tag: bool,
    cseq: &str,
    extra: &str,
    body: &str,
) -> String {
    let mut m = String::with_capacity(600 + body.len());
    m.push_str(start);
    m.push_str("\r\n");
    for v in vias {
        m.push_str("Via: ");
        m.push_str(v);
        m.push_str("\r\n");
    }
    m.push_str(&format!(
        "From: \"Caller\" <{}>;tag={}\r\n",
        n.caller_uri, n.from_tag
    ));
    if to_tag {
        m.push_str(&format!("To: <{}>;tag={}\r\n", n.callee_uri, n.to_tag));
    } else {
        m.push_str(&format!("To: <{}>\r\n", n.callee_uri));
    }
    m.push_str(&format!("Call-ID: {}\r\nCSeq: {cseq}\r\n", n.call_id));
    m.push_str(extra);
    m.push_str("User-Agent: sipscope-synth\r\n");
    if !body.is_empty() {
        m.push_str("Content-Type: application/sdp\r\n");
    }
    m.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    m
}

fn plan(id: usize, rng: &mut Rng, cfg: &SynthConfig) -> CallPlan {
    let caller = Ipv4Addr::new(10, 1, (id / 250 % 250) as u8, (id % 250 + 1) as u8);
    let callee = Ipv4Addr::new(10, 2, (id / 250 % 40) as u8, (id % 250 + 1) as u8);
    let tcp = rng.chance(cfg.tcp_share);
    let caller_port = if tcp {
        20000 + (id % 40000) as u16
    } else {
        5060
    };
    let fragment_invite = !tcp && rng.chance(cfg.fragment_share);
    let outcome = match rng.below(100) {
        0..=69 => Outcome::Answered,
        70..=79 => Outcome::Busy,
        80..=87 => Outcome::Cancelled,
        88..=92 => Outcome::Rejected,
        93..=96 => Outcome::ServerError,
        _ => Outcome::Timeout,
    };
    let a_proto = if tcp { "TCP" } else { "UDP" };
    let (dialled, callers) = match cfg.numbers {
        0 => (8000, 9000),
        n => (n, n),
    };
    let n = Names {
        call_id: format!("{:016x}-{id}@{caller}", rng.next_u64()),
        from_tag: format!("{:08x}", rng.next_u64() as u32),
        to_tag: format!("{:08x}", rng.next_u64() as u32),
        ruri: format!("sip:{}@{PROXY}", 2000 + id % dialled),
        caller_uri: format!("sip:{}@{caller}", 1000 + id % callers),
        callee_uri: format!("sip:{}@{PROXY}", 2000 + id % dialled),
        via_a: format!(
            "SIP/2.0/{a_proto} {caller}:{caller_port};branch=z9hG4bKa{id}x{:x};rport",
            rng.next_u64() as u32
        ),
        via_p: format!(
            "SIP/2.0/UDP {PROXY}:5060;branch=z9hG4bKp{id}x{:x}",
            rng.next_u64() as u32
        ),
        rr: format!("<sip:{PROXY};lr;ftag=x{id}>"),
    };
    let caller_media = (caller, 10000 + (id % 20000) as u16 * 2);
    let callee_media = if cfg.rtp {
        (
            GATEWAYS.get(id % GATEWAYS.len()).copied().unwrap_or(PROXY),
            30000 + (id % 15000) as u16 * 2,
        )
    } else {
        (callee, 30000 + (id % 20000) as u16)
    };
    let invite_body = sdp(
        caller_media.0,
        caller_media.1,
        if fragment_invite { 25 } else { 0 },
    );
    let answer_body = sdp(callee_media.0, callee_media.1, 0);
    let mut media = None;
    let callee_contact = format!("Contact: <sip:bob@{callee}:5060>\r\n");
    let caller_contact = format!(
        "Contact: <sip:alice@{caller}:{caller_port};transport={}>\r\n",
        a_proto.to_lowercase()
    );
    let rr_hdr = format!("Record-Route: {}\r\n", n.rr);
    let route_hdr = format!("Route: {}\r\n", n.rr);
    let start = |m: &str, uri: &str| format!("{m} {uri} SIP/2.0");
    let status = |code: u16, reason: &str| format!("SIP/2.0 {code} {reason}");
    let (va, vp) = (n.via_a.as_str(), n.via_p.as_str());
    let inv_extra = format!(
        "{caller_contact}Max-Forwards: 70\r\nAllow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\nSupported: replaces, timer\r\n"
    );
    let fwd_extra = format!(
        "{rr_hdr}{caller_contact}Max-Forwards: 69\r\nAllow: INVITE, ACK, CANCEL, BYE, OPTIONS\r\nSupported: replaces, timer\r\n"
    );
    let bob = format!("sip:bob@{callee}:5060");
    let done = move |msgs, media| CallPlan {
        id,
        caller,
        caller_port,
        callee,
        tcp,
        outcome,
        msgs,
        media,
    };
    let mut l = Ladder {
        n: &n,
        msgs: Vec::new(),
        t: 0.0,
    };
    // A final response relayed to the caller, then the caller's ACK on the INVITE's branch
    // (RFC 3261 §17.1.1.3).
    let final_to_caller = |l: &mut Ladder<'_>, delay: f64, code: u16, reason: &str, extra: &str| {
        l.push(
            delay,
            Leg::A,
            false,
            l.response(code, reason, &[va], true, "1 INVITE", extra),
        );
        l.push(
            0.5,
            Leg::A,
            true,
            l.request("ACK", &n.ruri, &[va], true, "1 ACK", MF70),
        );
    };
    let invite_a = message(
        &start("INVITE", &n.ruri),
        &[va],
        &n,
        false,
        "1 INVITE",
        &inv_extra,
        &invite_body,
    );
    let invite_b = message(
        &start("INVITE", &bob),
        &[vp, va],
        &n,
        false,
        "1 INVITE",
        &fwd_extra,
        &invite_body,
    );
    l.push(0.0, Leg::A, true, invite_a);
    l.push(
        0.4,
        Leg::A,
        false,
        l.response(100, "Trying", &[va], false, "1 INVITE", ""),
    );
    l.push(0.3, Leg::B, true, invite_b.clone());
    if outcome == Outcome::Timeout {
        // Timer A doubles with no cap; Timer B fires at 64·T1, then the proxy answers 408.
        for gap in [500.0, 1000.0, 2000.0, 4000.0, 8000.0, 16000.0] {
            l.push(gap, Leg::B, true, invite_b.clone());
        }
        final_to_caller(&mut l, 500.0, 408, "Request Timeout", "");
        return done(l.msgs, None);
    }
    l.push(
        1.0,
        Leg::B,
        false,
        l.response(100, "Trying", &[vp, va], false, "1 INVITE", ""),
    );
    let from_callee = format!("{rr_hdr}{callee_contact}");
    let ring_b = l.response(180, "Ringing", &[vp, va], true, "1 INVITE", &from_callee);
    let ring_a = l.response(180, "Ringing", &[va], true, "1 INVITE", &from_callee);
    l.push(20.0 + rng.unit() * 200.0, Leg::B, false, ring_b);
    l.push(0.3, Leg::A, false, ring_a);
    // The callee's final response, the proxy's ACK to it, and the relay to the caller.
    let fail = |l: &mut Ladder<'_>,
                rng: &mut Rng,
                (code, reason): (u16, &str),
                (a_code, a_reason): (u16, &str)| {
        let cause = "Reason: Q.850;cause=17\r\n";
        let delay = 500.0 + rng.unit() * 3000.0;
        l.push(
            delay,
            Leg::B,
            false,
            l.response(code, reason, &[vp, va], true, "1 INVITE", cause),
        );
        l.push(
            0.2,
            Leg::B,
            true,
            l.request("ACK", &bob, &[vp], true, "1 ACK", MF70),
        );
        final_to_caller(l, 0.2, a_code, a_reason, cause);
    };
    match outcome {
        Outcome::Busy => fail(&mut l, rng, (486, "Busy Here"), (486, "Busy Here")),
        Outcome::Rejected => fail(&mut l, rng, (404, "Not Found"), (404, "Not Found")),
        // RFC 3261 §16.7: a proxy turns a 503 into 500 upstream.
        Outcome::ServerError => fail(
            &mut l,
            rng,
            (503, "Service Unavailable"),
            (500, "Server Internal Error"),
        ),
        Outcome::Cancelled => {
            let d = 1000.0 + rng.unit() * 5000.0;
            let cancel_a = l.request("CANCEL", &n.ruri, &[va], false, "1 CANCEL", MF70);
            l.push(d, Leg::A, true, cancel_a);
            l.push(
                0.3,
                Leg::A,
                false,
                l.response(200, "canceling", &[va], false, "1 CANCEL", ""),
            );
            l.push(
                0.3,
                Leg::B,
                true,
                l.request("CANCEL", &bob, &[vp], false, "1 CANCEL", MF70),
            );
            l.push(
                1.0,
                Leg::B,
                false,
                l.response(200, "OK", &[vp], true, "1 CANCEL", ""),
            );
            let terminated = l.response(487, "Request Terminated", &[vp, va], true, "1 INVITE", "");
            l.push(0.5, Leg::B, false, terminated);
            l.push(
                0.2,
                Leg::B,
                true,
                l.request("ACK", &bob, &[vp], true, "1 ACK", MF70),
            );
            final_to_caller(&mut l, 0.2, 487, "Request Terminated", "");
        }
        Outcome::Answered => {
            let ok = |vias: &[&str]| {
                message(
                    &status(200, "OK"),
                    vias,
                    &n,
                    true,
                    "1 INVITE",
                    &from_callee,
                    &answer_body,
                )
            };
            let (ok_b, ok_a) = (ok(&[vp, va]), ok(&[va]));
            l.push(1000.0 + rng.unit() * 4000.0, Leg::B, false, ok_b.clone());
            l.push(0.3, Leg::A, false, ok_a.clone());
            if rng.chance(cfg.retransmit_share) {
                // Timer G: the callee resends its 200 until the ACK arrives; the proxy relays it.
                l.push(500.0, Leg::B, false, ok_b);
                l.push(0.3, Leg::A, false, ok_a);
            }
            // In-dialog requests: the caller routes them through the proxy (Record-Route).
            let routed = format!("{route_hdr}{MF70}");
            let via_a = |kind: &str| {
                format!("SIP/2.0/{a_proto} {caller}:{caller_port};branch=z9hG4bK{kind}{id};rport")
            };
            let via_p = |kind: &str| format!("SIP/2.0/UDP {PROXY}:5060;branch=z9hG4bKp{kind}{id}");
            let (ack_a, ack_p) = (via_a("ack"), via_p("ack"));
            l.push(
                2.0,
                Leg::A,
                true,
                l.request("ACK", &bob, &[&ack_a], true, "1 ACK", &routed),
            );
            let ack_b = l.request("ACK", &bob, &[&ack_p, &ack_a], true, "1 ACK", MF69);
            l.push(0.3, Leg::B, true, ack_b);
            let from_ms = l.t;
            let hold = 1000.0 + rng.unit() * cfg.max_hold_secs * 1000.0;
            if cfg.rtp {
                // A generator of its own, so that the signalling is the same with media or
                // without.
                let mut m = Rng(cfg.seed ^ (id as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                let mut fault = if m.chance(cfg.media_fault_share) {
                    match m.below(7) {
                        0 => Fault::OneWay,
                        1 => Fault::NoMedia,
                        2 => Fault::Nat,
                        3 => Fault::Loss,
                        4 => Fault::Jitter,
                        5 => Fault::AfterBye,
                        _ => Fault::Timeout,
                    }
                } else {
                    Fault::Clean
                };
                // What needs time to show: absences (2 s after the answer) and a timeout
                // (10 s of silence before the BYE).
                let needs = match fault {
                    Fault::OneWay | Fault::NoMedia => 3_000.0,
                    Fault::Timeout => 15_000.0,
                    Fault::Loss | Fault::Jitter => 2_000.0,
                    _ => 0.0,
                };
                if hold < needs {
                    fault = Fault::Clean;
                }
                media = Some(MediaPlan {
                    fault,
                    caller: caller_media,
                    callee: callee_media,
                    caller_source: if fault == Fault::Nat {
                        Ipv4Addr::new(198, 51, 100, (id % 250 + 1) as u8)
                    } else {
                        caller_media.0
                    },
                    from_ms,
                    bye_ms: from_ms + hold,
                    dtmf: fault == Fault::Clean && hold > 3_000.0 && m.chance(0.2),
                });
            }
            let (bye_a, bye_p) = (via_a("bye"), via_p("bye"));
            l.push(
                hold,
                Leg::A,
                true,
                l.request("BYE", &bob, &[&bye_a], true, "2 BYE", &routed),
            );
            let bye_b = l.request("BYE", &bob, &[&bye_p, &bye_a], true, "2 BYE", MF69);
            l.push(0.3, Leg::B, true, bye_b);
            let ok_bye_b = l.response(200, "OK", &[&bye_p, &bye_a], true, "2 BYE", "");
            l.push(1.0, Leg::B, false, ok_bye_b);
            l.push(
                0.3,
                Leg::A,
                false,
                l.response(200, "OK", &[&bye_a], true, "2 BYE", ""),
            );
        }
        Outcome::Timeout => {}
    }
    done(l.msgs, media)
}

const MF70: &str = "Max-Forwards: 70\r\n";
const MF69: &str = "Max-Forwards: 69\r\n";

/// A call's messages as they are planned, each some milliseconds after the one before.
struct Ladder<'n> {
    n: &'n Names,
    msgs: Vec<Msg>,
    t: f64,
}

impl Ladder<'_> {
    fn push(&mut self, delay_ms: f64, leg: Leg, upstream_sender: bool, text: String) {
        self.t += delay_ms;
        self.msgs.push(Msg {
            at_ms: self.t,
            leg,
            upstream_sender,
            text,
        });
    }

    /// A request of this call without a body.
    fn request(
        &self,
        method: &str,
        uri: &str,
        vias: &[&str],
        to_tag: bool,
        cseq: &str,
        extra: &str,
    ) -> String {
        let start = format!("{method} {uri} SIP/2.0");
        message(&start, vias, self.n, to_tag, cseq, extra, "")
    }

    /// A response of this call without a body.
    fn response(
        &self,
        code: u16,
        reason: &str,
        vias: &[&str],
        to_tag: bool,
        cseq: &str,
        extra: &str,
    ) -> String {
        let start = format!("SIP/2.0 {code} {reason}");
        message(&start, vias, self.n, to_tag, cseq, extra, "")
    }
}

/// Frames in flight: (time in µs, tie-breaker, what to write then).
type Pending = BinaryHeap<Reverse<(u64, u64, Item)>>;

/// A frame, or an RTP flow that writes its next packet when its time comes (a call's tens of
/// thousands of packets are never all in memory).
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Item {
    Frame(Vec<u8>),
    Rtp(Box<RtpFlow>),
}

/// One direction of a call's RTP: PCMU every `period_us` from `start` to `end`, some packets
/// dropped before the wire (`loss_every`), each delayed by up to `jitter_us` (so packets pass
/// each other), and one DTMF digit as RFC 4733 events at `dtmf_at` (a packet index). The next
/// [`LOOKAHEAD`] packets wait in `ahead` by due time; the flow is due when the first is.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct RtpFlow {
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    ssrc: u32,
    /// The next packet index to plan.
    index: u64,
    /// Planned packets: (due, index), in order.
    ahead: std::collections::VecDeque<(u64, u64)>,
    start: u64,
    end: u64,
    period_us: u64,
    loss_every: u64,
    jitter_us: u64,
    dtmf_at: u64,
}

/// Packets an [`RtpFlow`] plans ahead: more than its largest delay spans (16 × 20 ms), so that
/// a packet is never due before one already written.
const LOOKAHEAD: usize = 16;

impl RtpFlow {
    /// Plans packets up to [`LOOKAHEAD`] ahead; `false` when nothing is left to send.
    fn plan(&mut self) -> bool {
        while self.ahead.len() < LOOKAHEAD && self.start + self.index * self.period_us < self.end {
            let due = self.due(self.index);
            let at = self.ahead.partition_point(|(d, _)| *d <= due);
            self.ahead.insert(at, (due, self.index));
            self.index += 1;
        }
        !self.ahead.is_empty()
    }

    /// The packet of index `i`, or `None` when it is lost before the wire.
    fn packet(&self, i: u64) -> Option<Vec<u8>> {
        if self.loss_every > 0 && i % self.loss_every == self.loss_every - 1 {
            return None;
        }
        let seq = (i as u16).wrapping_add(self.ssrc as u16);
        let mut ts = (i as u32).wrapping_mul(160).wrapping_add(self.ssrc >> 8);
        let mut pt = 0u8;
        let mut payload = [0xffu8; 160];
        let mut len = 160;
        // Six event packets: the digit 5, its duration growing, the end sent three times,
        // all with the event's timestamp (RFC 4733 §2.5).
        if (self.dtmf_at..self.dtmf_at.saturating_add(6)).contains(&i) {
            let k = i - self.dtmf_at;
            ts = (self.dtmf_at as u32)
                .wrapping_mul(160)
                .wrapping_add(self.ssrc >> 8);
            pt = 101;
            let duration = (160 * (k.min(3) + 1)) as u16;
            let end = if k >= 3 { 0x80 } else { 0 };
            for (d, b) in
                payload
                    .iter_mut()
                    .zip([5, end | 10, (duration >> 8) as u8, duration as u8])
            {
                *d = b;
            }
            len = 4;
        }
        let mut rtp = Vec::with_capacity(12 + len);
        rtp.extend_from_slice(&[0x80, pt | if i == 0 { 0x80 } else { 0 }]);
        rtp.extend_from_slice(&seq.to_be_bytes());
        rtp.extend_from_slice(&ts.to_be_bytes());
        rtp.extend_from_slice(&self.ssrc.to_be_bytes());
        rtp.extend_from_slice(payload.get(..len).unwrap_or(&[]));
        Some(udp_frame(
            self.src.0, self.src.1, self.dst.0, self.dst.1, &rtp,
        ))
    }

    /// When the packet of index `i` is on the wire.
    fn due(&self, i: u64) -> u64 {
        let nominal = self.start + i * self.period_us;
        if self.jitter_us == 0 {
            return nominal;
        }
        let mut h = Rng(u64::from(self.ssrc) << 32 | i);
        nominal + h.below(self.jitter_us)
    }
}

const MAC_A: [u8; 6] = [2, 0, 0, 0, 0, 1];
const MAC_B: [u8; 6] = [2, 0, 0, 0, 0, 2];

fn udp_frame(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16, payload: &[u8]) -> Vec<u8> {
    let b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(src.octets(), dst.octets(), 64)
        .udp(sport, dport);
    let mut v = Vec::with_capacity(b.size(payload.len()));
    // Writing to a Vec cannot fail; a payload over 64 KiB is not generated.
    let _ = b.write(&mut v, payload);
    v
}

/// Splits an IPv4/UDP frame into IP fragments (payload chunks of 1480 bytes).
fn fragments(frame: &[u8], id: u16) -> Vec<Vec<u8>> {
    let Ok((ip, rest)) = etherparse::Ipv4Header::from_slice(frame.get(14..).unwrap_or(&[])) else {
        return vec![frame.to_vec()];
    };
    let payload = rest;
    let mut out = Vec::new();
    let chunk = 1480;
    let mut off = 0;
    while off < payload.len() {
        let end = (off + chunk).min(payload.len());
        let mut h = ip.clone();
        h.identification = id;
        h.more_fragments = end < payload.len();
        h.fragment_offset = etherparse::IpFragOffset::try_new((off / 8) as u16)
            .unwrap_or(etherparse::IpFragOffset::ZERO);
        let _ = h.set_payload_len(end - off);
        h.header_checksum = h.calc_header_checksum();
        let mut f = frame.get(..14).unwrap_or(&[]).to_vec();
        let _ = h.write(&mut f);
        f.extend_from_slice(payload.get(off..end).unwrap_or(&[]));
        out.push(f);
        off = end;
    }
    out
}

struct TcpSide {
    seq: u32,
}

fn tcp_frame(
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    (seq, ack): (u32, Option<u32>),
    flags: &str,
    payload: &[u8],
) -> Vec<u8> {
    let mut b = PacketBuilder::ethernet2(MAC_A, MAC_B)
        .ipv4(src.octets(), dst.octets(), 64)
        .tcp(sport, dport, seq, 65535);
    if flags.contains('S') {
        b = b.syn();
    }
    if flags.contains('F') {
        b = b.fin();
    }
    if flags.contains('P') {
        b = b.psh();
    }
    // A real handshake (SYN, then SYN-ACK acknowledging it) and acknowledgement numbers that
    // follow the peer, so that tshark reassembles these streams as it would a real capture.
    if let Some(ack) = ack {
        b = b.ack(ack);
    }
    let mut v = Vec::with_capacity(b.size(payload.len()));
    let _ = b.write(&mut v, payload);
    v
}

/// Turns a call plan into timed frames.
fn frames(call: &CallPlan, start_us: u64, rng: &mut Rng, heap: &mut Pending, tie: &mut u64) -> u64 {
    if let Some(m) = &call.media {
        let at = |ms: f64| start_us + (ms * 1000.0) as u64;
        let (from, bye) = (at(m.from_ms), at(m.bye_ms));
        let end = match m.fault {
            Fault::AfterBye => bye + 3_000_000,
            Fault::Timeout => from + 2_000_000,
            _ => bye,
        };
        let flow = |src, dst, ssrc: u32| RtpFlow {
            src,
            dst,
            ssrc,
            index: 0,
            ahead: std::collections::VecDeque::new(),
            start: from + 20_000,
            end,
            period_us: 20_000,
            loss_every: if m.fault == Fault::Loss { 20 } else { 0 },
            jitter_us: if m.fault == Fault::Jitter { 200_000 } else { 0 },
            dtmf_at: u64::MAX,
        };
        let ssrc = (call.id as u32).wrapping_mul(0x9E37_79B9) | 1;
        let mut flows = Vec::new();
        if m.fault != Fault::NoMedia {
            let mut up = flow((m.caller_source, m.caller.1), m.callee, ssrc);
            if m.dtmf {
                up.dtmf_at = 100;
            }
            flows.push(up);
            if m.fault != Fault::OneWay {
                let mut down = flow(m.callee, m.caller, ssrc ^ 0xFFFF_0000);
                // Loss and jitter on the callee's side only, so that each fault is one finding.
                down.loss_every = 0;
                down.jitter_us = 0;
                flows.push(down);
            }
        }
        for mut f in flows {
            if f.plan()
                && let Some(&(due, _)) = f.ahead.front()
            {
                *tie += 1;
                heap.push(Reverse((due, *tie, Item::Rtp(Box::new(f)))));
            }
        }
    }
    let mut count = 0;
    let mut emit = |heap: &mut Pending, at: u64, f: Vec<u8>| {
        *tie += 1;
        heap.push(Reverse((at, *tie, Item::Frame(f))));
        count += 1;
    };
    let mut up = TcpSide {
        seq: (rng.next_u64() as u32) | 0xFFFF_0000,
    }; // near wrap-around on purpose
    let mut down = TcpSide {
        seq: rng.next_u64() as u32,
    };
    if call.tcp {
        emit(
            heap,
            start_us,
            tcp_frame(
                call.caller,
                call.caller_port,
                PROXY,
                5060,
                (up.seq, None),
                "S",
                &[],
            ),
        );
        emit(
            heap,
            start_us + 50,
            tcp_frame(
                PROXY,
                5060,
                call.caller,
                call.caller_port,
                (down.seq, Some(up.seq.wrapping_add(1))),
                "S",
                &[],
            ),
        );
        up.seq = up.seq.wrapping_add(1);
        down.seq = down.seq.wrapping_add(1);
    }
    let mut last_at = start_us;
    let mut ip_id: u16 = (call.id as u16).wrapping_mul(7);
    for (k, m) in call.msgs.iter().enumerate() {
        let at = start_us + 200 + (m.at_ms * 1000.0) as u64;
        last_at = at;
        let bytes = m.text.as_bytes();
        let (src, sport, dst, dport) = match (m.leg, m.upstream_sender) {
            (Leg::A, true) => (call.caller, call.caller_port, PROXY, 5060),
            (Leg::A, false) => (PROXY, 5060, call.caller, call.caller_port),
            (Leg::B, true) => (PROXY, 5060, call.callee, 5060),
            (Leg::B, false) => (call.callee, 5060, PROXY, 5060),
        };
        if call.tcp && m.leg == Leg::A {
            let (side, peer) = if m.upstream_sender {
                (&mut up, down.seq)
            } else {
                (&mut down, up.seq)
            };
            // Split into 1-3 segments at random points; sometimes retransmit or reorder.
            let pieces = if rng.chance(0.3) {
                2 + rng.below(2) as usize
            } else {
                1
            };
            let mut cuts: Vec<usize> = (1..pieces)
                .map(|_| 1 + rng.below(bytes.len().max(2) as u64 - 1) as usize)
                .collect();
            cuts.sort_unstable();
            cuts.dedup();
            let mut segs = Vec::new();
            let mut prev = 0;
            for c in cuts.into_iter().chain(std::iter::once(bytes.len())) {
                let seg = bytes.get(prev..c).unwrap_or(&[]);
                if !seg.is_empty() {
                    segs.push((side.seq.wrapping_add(prev as u32), seg.to_vec()));
                }
                prev = c;
            }
            side.seq = side.seq.wrapping_add(bytes.len() as u32);
            let reorder = segs.len() > 1 && rng.chance(0.2);
            for (i, (seq, data)) in segs.iter().enumerate() {
                let offset = if reorder {
                    (segs.len() - i) as u64 * 10
                } else {
                    i as u64 * 10
                };
                emit(
                    heap,
                    at + offset,
                    tcp_frame(src, sport, dst, dport, (*seq, Some(peer)), "P", data),
                );
                if rng.chance(0.03) {
                    emit(
                        heap,
                        at + offset + 200_000,
                        tcp_frame(src, sport, dst, dport, (*seq, Some(peer)), "P", data),
                    );
                }
            }
        } else {
            let frame = udp_frame(src, sport, dst, dport, bytes);
            if frame.len() > 1514 {
                ip_id = ip_id.wrapping_add(1);
                let mut frags = fragments(&frame, ip_id);
                if k % 2 == 0 {
                    frags.reverse();
                }
                for (i, f) in frags.into_iter().enumerate() {
                    emit(heap, at + i as u64 * 5, f);
                }
            } else {
                emit(heap, at, frame);
            }
        }
    }
    if call.tcp {
        emit(
            heap,
            last_at + 1000,
            tcp_frame(
                call.caller,
                call.caller_port,
                PROXY,
                5060,
                (up.seq, Some(down.seq)),
                "F",
                &[],
            ),
        );
        emit(
            heap,
            last_at + 1100,
            tcp_frame(
                PROXY,
                5060,
                call.caller,
                call.caller_port,
                (down.seq, Some(up.seq.wrapping_add(1))),
                "F",
                &[],
            ),
        );
    }
    count
}

/// Sources of the scanner sweeps (documentation addresses, RFC 5737) and the User-Agent each
/// sends: two name their tool, two pretend to be phones, as real scanners do.
const SCANNERS: [(Ipv4Addr, &str); 4] = [
    (Ipv4Addr::new(203, 0, 113, 7), "friendly-scanner"),
    (Ipv4Addr::new(198, 51, 100, 23), "sipcli/v1.8"),
    (
        Ipv4Addr::new(203, 0, 113, 66),
        "PolycomSoundPointIP-SPIP_550-UA/3.3.2.0242",
    ),
    (Ipv4Addr::new(192, 0, 2, 200), "Z 5.4.12 v2.10.13.2-mod"),
];

/// One scanner request (and, for a fifth of them, the proxy's 401 or 404 a millisecond later):
/// a fresh Call-ID, From and To the probed extension, as sipvicious and its successors send.
/// Returns whether it was answered.
fn scanner_frames(k: usize, at: u64, rng: &mut Rng, heap: &mut Pending, tie: &mut u64) -> bool {
    let (src, agent) = SCANNERS
        .get(k % SCANNERS.len())
        .copied()
        .unwrap_or((PROXY, "-"));
    let sport = 5060 + (k % SCANNERS.len()) as u16 * 7;
    let method = match rng.below(10) {
        0..=3 => "OPTIONS",
        4..=6 => "REGISTER",
        _ => "INVITE",
    };
    let ext = 100 + rng.below(9900);
    let (branch, tag, call_id) = (rng.next_u64(), rng.next_u64() as u32, rng.next_u64());
    let uri = if method == "REGISTER" {
        format!("sip:{PROXY}")
    } else {
        format!("sip:{ext}@{PROXY}")
    };
    let head = |start: &str, to_tag: &str| {
        format!(
            "{start}\r\nVia: SIP/2.0/UDP {src}:{sport};branch=z9hG4bK-{branch:x};rport\r\n\
From: \"{ext}\"<sip:{ext}@{PROXY}>;tag={tag:08x}\r\nTo: \"{ext}\"<sip:{ext}@{PROXY}>{to_tag}\r\n\
Call-ID: {call_id:x}\r\nCSeq: 1 {method}\r\n"
        )
    };
    let request = format!(
        "{}Max-Forwards: 70\r\nContact: <sip:{ext}@{src}:{sport}>\r\nUser-Agent: {agent}\r\n\
Accept: application/sdp\r\nContent-Length: 0\r\n\r\n",
        head(&format!("{method} {uri} SIP/2.0"), "")
    );
    let mut push = |at: u64, frame: Vec<u8>| {
        *tie += 1;
        heap.push(Reverse((at, *tie, Item::Frame(frame))));
    };
    push(at, udp_frame(src, sport, PROXY, 5060, request.as_bytes()));
    if !rng.chance(0.2) {
        return false;
    }
    let status = if method == "OPTIONS" || rng.chance(0.3) {
        "404 Not Found"
    } else {
        "401 Unauthorized"
    };
    let mut response = head(
        &format!("SIP/2.0 {status}"),
        &format!(";tag={:08x}", rng.next_u64() as u32),
    );
    if status.starts_with("401") {
        response.push_str(&format!(
            "WWW-Authenticate: Digest realm=\"{PROXY}\", nonce=\"{:016x}\"\r\n",
            rng.next_u64()
        ));
    }
    response.push_str("Server: sipscope-synth\r\nContent-Length: 0\r\n\r\n");
    push(
        at + 1000,
        udp_frame(PROXY, 5060, src, sport, response.as_bytes()),
    );
    true
}

/// Writes a classic pcap (little-endian, microseconds, Ethernet) with the configured calls.
pub fn write_pcap(cfg: &SynthConfig, out: &mut dyn Write) -> io::Result<SynthStats> {
    let mut rng = Rng(cfg.seed);
    let mut stats = SynthStats {
        calls: cfg.calls,
        ..SynthStats::default()
    };
    let mut header = Vec::with_capacity(24);
    header.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    header.extend_from_slice(&2u16.to_le_bytes());
    header.extend_from_slice(&4u16.to_le_bytes());
    header.extend_from_slice(&0i32.to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    header.extend_from_slice(&262_144u32.to_le_bytes());
    header.extend_from_slice(&1u32.to_le_bytes());
    out.write_all(&header)?;
    stats.bytes += 24;
    let base_us: u64 = 1_790_000_000 * 1_000_000;
    let gap_us = (1e6 / cfg.calls_per_second.max(0.001)) as u64;
    let mut heap = Pending::new();
    let mut tie = 0u64;
    let mut next_call = 0usize;
    let scan_gap_us = 1e6 / cfg.scanner_rate.max(0.001);
    let mut next_scan = 0usize;
    let write_frame =
        |at: u64, f: &[u8], out: &mut dyn Write, stats: &mut SynthStats| -> io::Result<()> {
            let mut rec = Vec::with_capacity(16);
            rec.extend_from_slice(&((at / 1_000_000) as u32).to_le_bytes());
            rec.extend_from_slice(&((at % 1_000_000) as u32).to_le_bytes());
            rec.extend_from_slice(&(f.len() as u32).to_le_bytes());
            rec.extend_from_slice(&(f.len() as u32).to_le_bytes());
            out.write_all(&rec)?;
            out.write_all(f)?;
            stats.frames += 1;
            stats.bytes += 16 + f.len() as u64;
            Ok(())
        };
    // The scanners' requests run on their own clock, interleaved with the calls by time; a
    // separate generator so that the calls of a seed are the same with or without scanners.
    let mut scan_rng = Rng(cfg.seed ^ 0x5CA9_5CA9);
    loop {
        let call_start = (next_call < cfg.calls).then(|| base_us + next_call as u64 * gap_us);
        let scan_start = (next_scan < cfg.scanner_requests)
            .then(|| base_us + (next_scan as f64 * scan_gap_us) as u64);
        let next_start = match (call_start, scan_start) {
            (Some(c), Some(s)) => Some(c.min(s)),
            (c, s) => c.or(s),
        };
        // Emit every frame due before the next call or scan starts; then start it.
        while let Some(Reverse((at, _, _))) = heap.peek() {
            if next_start.is_some_and(|n| *at >= n) {
                break;
            }
            let Some(Reverse((at, _, item))) = heap.pop() else {
                break;
            };
            match item {
                Item::Frame(f) => write_frame(at, &f, out, &mut stats)?,
                Item::Rtp(mut flow) => {
                    if let Some((_, i)) = flow.ahead.pop_front()
                        && let Some(f) = flow.packet(i)
                    {
                        write_frame(at, &f, out, &mut stats)?;
                        stats.media.rtp_packets += 1;
                    }
                    if flow.plan()
                        && let Some(&(due, _)) = flow.ahead.front()
                    {
                        tie += 1;
                        heap.push(Reverse((due.max(at), tie, Item::Rtp(flow))));
                    }
                }
            }
        }
        let Some(next_start) = next_start else {
            break;
        };
        if scan_start == Some(next_start) && call_start != Some(next_start) {
            stats.scanner_requests += 1;
            if scanner_frames(next_scan, next_start, &mut scan_rng, &mut heap, &mut tie) {
                stats.scanner_answered += 1;
            }
            next_scan += 1;
            continue;
        }
        let call = plan(next_call, &mut rng, cfg);
        stats.sip_messages += call.msgs.len() as u64;
        match call.outcome {
            Outcome::Answered => stats.answered += 1,
            Outcome::Busy => stats.busy += 1,
            Outcome::Cancelled => stats.cancelled += 1,
            Outcome::Rejected => stats.rejected += 1,
            Outcome::ServerError => stats.server_error += 1,
            Outcome::Timeout => stats.timeout += 1,
        }
        if let Some(m) = &call.media {
            let t = &mut stats.media;
            match m.fault {
                Fault::Clean => t.clean += 1,
                Fault::OneWay => t.one_way_media += 1,
                Fault::NoMedia => t.no_media += 1,
                Fault::Nat => t.media_address_mismatch += 1,
                Fault::Loss => t.packet_loss += 1,
                Fault::Jitter => t.high_jitter += 1,
                Fault::AfterBye => t.rtp_after_bye += 1,
                Fault::Timeout => t.media_timeout += 1,
            }
            t.dtmf += usize::from(m.dtmf);
        }
        frames(&call, next_start, &mut rng, &mut heap, &mut tie);
        next_call += 1;
    }
    out.flush()?;
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The benchmark figures in docs/performance.md are for the generator's exact output: a
    /// change to what it writes must be deliberate (update the digest and say so there), not a
    /// side effect of tidying the code.
    #[test]
    fn the_output_for_a_seed_does_not_change() {
        let cfg = SynthConfig {
            calls: 300,
            retransmit_share: 0.5,
            ..SynthConfig::default()
        };
        let mut pcap = Vec::new();
        let stats = write_pcap(&cfg, &mut pcap).unwrap();
        // FNV-1a over the whole file.
        let digest = pcap.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
        assert_eq!((stats.calls, pcap.len()), (300, 2_281_581));
        assert_eq!(digest, 15_518_250_968_690_233_675);
    }
}
