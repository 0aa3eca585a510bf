//! The hostile corpus: inputs an attacker writes (oversized and lying fields, escape sequences,
//! invalid UTF-8, floods of fragments and flows, damaged capture files). Each case is fed
//! between two good calls and asserts three things: no panic, memory bounded by the limits
//! (measured by a counting allocator, per thread), and the good calls around it intact.

use crate::common;

use sipscope::capture::{FileSource, FrameSource, LinkType, OwnedFrame, Timestamp};
use sipscope::engine::{Engine, EngineConfig};
use sipscope::flow::Outcome;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;

// ---------------------------------------------------------------------------------------------
// Memory: a counting allocator. Counts are per thread (each test runs on its own thread and
// the engine is fed on it), so tests running in parallel do not see each other's memory.

struct Counting;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn note(delta: isize) {
    // `try_with`: a thread being torn down has no counters left, and must not panic here.
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| {
            if now > peak.get() {
                peak.set(now);
            }
        });
    });
}

// SAFETY (all four methods): every call is passed through to the system allocator unchanged;
// the wrapper only counts the sizes it was asked for.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            note(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        note(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            note(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the most memory this thread held above what it held
/// before (bytes).
fn peak_of<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let start = LIVE.with(Cell::get);
    PEAK.with(|p| p.set(start));
    let r = f();
    let peak = PEAK.with(Cell::get);
    (r, (peak - start).max(0) as usize)
}

const MB: usize = 1 << 20;

// ---------------------------------------------------------------------------------------------
// Building captures.

const A: &str = "203.0.113.1:5060";
const B: &str = "203.0.113.2:5060";
/// 2026-01-01T00:00:00Z.
const BASE_MS: i64 = 1_767_225_600_000;

#[derive(Default)]
struct Cap {
    frames: Vec<OwnedFrame>,
}

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

fn v4(a: SocketAddr) -> [u8; 4] {
    match a.ip() {
        std::net::IpAddr::V4(ip) => ip.octets(),
        std::net::IpAddr::V6(_) => panic!("IPv4 only"),
    }
}

impl Cap {
    fn push(&mut self, ms: i64, data: Vec<u8>) {
        self.frames.push(OwnedFrame {
            source: 0,
            number: self.frames.len() as u64 + 1,
            time: Timestamp::from_millis(BASE_MS + ms),
            link: LinkType::ETHERNET,
            orig_len: data.len() as u32,
            data,
        });
    }

    fn udp(&mut self, ms: i64, src: &str, dst: &str, payload: &[u8]) {
        let (s, d) = (addr(src), addr(dst));
        let b = etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4(v4(s), v4(d), 64)
            .udp(s.port(), d.port());
        let mut data = Vec::with_capacity(b.size(payload.len()));
        b.write(&mut data, payload).unwrap();
        self.push(ms, data);
    }

    /// One TCP segment; `flags` holds S (SYN), F (FIN), R (RST), A (ACK).
    fn tcp(&mut self, ms: i64, src: &str, dst: &str, seq: u32, flags: &str, payload: &[u8]) {
        let (s, d) = (addr(src), addr(dst));
        let mut b = etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4(v4(s), v4(d), 64)
            .tcp(s.port(), d.port(), seq, 65_535);
        if flags.contains('S') {
            b = b.syn();
        }
        if flags.contains('F') {
            b = b.fin();
        }
        if flags.contains('R') {
            b = b.rst();
        }
        if flags.contains('A') {
            b = b.ack(1);
        }
        let mut data = Vec::with_capacity(b.size(payload.len()));
        b.write(&mut data, payload).unwrap();
        self.push(ms, data);
    }

    /// A whole byte stream over one TCP connection (SYN, then segments of `mss` bytes).
    fn tcp_stream(&mut self, ms: i64, src: &str, dst: &str, isn: u32, bytes: &[u8], mss: usize) {
        self.tcp(ms, src, dst, isn, "S", b"");
        let mut seq = isn.wrapping_add(1);
        for chunk in bytes.chunks(mss) {
            self.tcp(ms, src, dst, seq, "A", chunk);
            seq = seq.wrapping_add(chunk.len() as u32);
        }
    }

    /// An IPv4 fragment of a UDP datagram: `offset_units` in 8-byte units.
    fn fragment(&mut self, ms: i64, id: u16, offset_units: u16, more: bool, piece: &[u8]) {
        let mut ip = etherparse::Ipv4Header::new(
            piece.len() as u16,
            64,
            etherparse::IpNumber::UDP,
            v4(addr(A)),
            v4(addr(B)),
        )
        .unwrap();
        ip.identification = id;
        ip.more_fragments = more;
        ip.fragment_offset = etherparse::IpFragOffset::try_new(offset_units).unwrap();
        ip.header_checksum = ip.calc_header_checksum();
        let mut data = Vec::new();
        etherparse::Ethernet2Header {
            source: [2; 6],
            destination: [4; 6],
            ether_type: etherparse::EtherType::IPV4,
        }
        .write(&mut data)
        .unwrap();
        ip.write(&mut data).unwrap();
        data.extend_from_slice(piece);
        self.push(ms, data);
    }

    /// A good answered call: INVITE, 100, 180, 200, ACK, BYE, 200.
    fn good_call(&mut self, ms: i64, call_id: &str) {
        for (i, m) in good_messages(call_id).iter().enumerate() {
            // Requests (INVITE, ACK, BYE) from the caller, responses from the callee.
            let (src, dst) = if matches!(i, 0 | 4 | 5) {
                (A, B)
            } else {
                (B, A)
            };
            self.udp(ms + i as i64 * 10, src, dst, m.as_bytes());
        }
    }

    fn engine(&self, config: EngineConfig) -> Engine {
        let mut engine = Engine::new(config);
        for f in &self.frames {
            engine.feed(&f.as_frame());
        }
        engine.finish();
        engine
    }

    fn pcap(&self, snaplen: u32) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
        out.extend_from_slice(&2u16.to_le_bytes());
        out.extend_from_slice(&4u16.to_le_bytes());
        out.extend_from_slice(&[0; 8]);
        out.extend_from_slice(&snaplen.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        for f in &self.frames {
            out.extend(pcap_record(f.time, &f.data, f.data.len() as u32));
        }
        out
    }
}

fn pcap_record(time: Timestamp, data: &[u8], incl_len: u32) -> Vec<u8> {
    let us = time.0 / 1000;
    let mut out = Vec::new();
    out.extend_from_slice(&((us / 1_000_000) as u32).to_le_bytes());
    out.extend_from_slice(&((us % 1_000_000) as u32).to_le_bytes());
    out.extend_from_slice(&incl_len.to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(data);
    out
}

fn msg(start: &str, call_id: &str, cseq: &str, to_tag: bool, extra: &str) -> String {
    let tag = if to_tag { ";tag=callee" } else { "" };
    format!(
        "{start}\r\nVia: SIP/2.0/UDP 203.0.113.1:5060;branch=z9hG4bK-{call_id}-{cseq_n}\r\n\
From: \"Alice\" <sip:alice@example.com>;tag=caller\r\nTo: <sip:bob@example.com>{tag}\r\n\
Call-ID: {call_id}\r\nCSeq: {cseq}\r\nMax-Forwards: 70\r\n{extra}Content-Length: 0\r\n\r\n",
        cseq_n = cseq.split(' ').next().unwrap_or("1"),
    )
}

fn good_messages(call_id: &str) -> Vec<String> {
    vec![
        msg(
            "INVITE sip:bob@example.com SIP/2.0",
            call_id,
            "1 INVITE",
            false,
            "",
        ),
        msg("SIP/2.0 100 Trying", call_id, "1 INVITE", false, ""),
        msg("SIP/2.0 180 Ringing", call_id, "1 INVITE", true, ""),
        msg("SIP/2.0 200 OK", call_id, "1 INVITE", true, ""),
        msg(
            "ACK sip:bob@example.com SIP/2.0",
            call_id,
            "1 ACK",
            true,
            "",
        ),
        msg(
            "BYE sip:bob@example.com SIP/2.0",
            call_id,
            "2 BYE",
            true,
            "",
        ),
        msg("SIP/2.0 200 OK", call_id, "2 BYE", true, ""),
    ]
}

/// The two good calls are there, whole and answered.
fn assert_good_calls_survive(engine: &Engine, case: &str) {
    for id in ["good-before", "good-after"] {
        let calls = engine.calls();
        let call = calls
            .iter()
            .find(|c| &*c.call_id == id)
            .unwrap_or_else(|| panic!("{case}: {id} lost"));
        assert_eq!(call.messages().len(), 7, "{case}: {id} lost messages");
        assert_eq!(
            call.summary(engine.now()).outcome,
            Outcome::Answered,
            "{case}: {id}"
        );
    }
}

/// Runs a case: the good call, the hostile frames, the good call again; analysed, diagnosed
/// and exported as JSON, within `budget` bytes of memory. Returns the engine.
fn run_case(case: &str, budget: usize, hostile: impl FnOnce(&mut Cap)) -> Engine {
    run_case_with(case, budget, EngineConfig::default(), hostile)
}

fn run_case_with(
    case: &str,
    budget: usize,
    config: EngineConfig,
    hostile: impl FnOnce(&mut Cap),
) -> Engine {
    let mut cap = Cap::default();
    cap.good_call(0, "good-before");
    hostile(&mut cap);
    let end = cap
        .frames
        .last()
        .map_or(0, |f| (f.time.0 / 1_000_000) - BASE_MS);
    cap.good_call(end + 100, "good-after");
    let config = {
        let mut built = config;
        built.keep_raw = true;
        built
    };
    // The engine's memory is what the limits bound; what an export holds is the size of its
    // output (checked for validity below, not measured).
    let (engine, peak) = peak_of(|| cap.engine(config));
    eprintln!(
        "{case}: {:.1} MB held (budget {} MB)",
        peak as f64 / MB as f64,
        budget / MB
    );
    common::exercise(&engine, Default::default());
    assert!(
        peak <= budget,
        "{case}: {} MB held, budget {} MB",
        peak / MB,
        budget / MB
    );
    assert_good_calls_survive(&engine, case);
    engine
}

// ---------------------------------------------------------------------------------------------
// The cases.

#[test]
fn a_one_megabyte_call_id() {
    let id = "x".repeat(1_000_000);
    let with_id = |id: &str| {
        msg(
            "OPTIONS sip:bob@example.com SIP/2.0",
            "CID",
            "1 OPTIONS",
            false,
            "",
        )
        .replace("Call-ID: CID", &format!("Call-ID: {id}"))
    };
    let engine = run_case("1 MB Call-ID over TCP", 8 * MB, |cap| {
        cap.tcp_stream(50, "203.0.113.1:40000", B, 7, with_id(&id).as_bytes(), 1400);
        // And as much as a UDP datagram holds.
        cap.udp(60, A, B, with_id(&id[..60_000]).as_bytes());
    });
    // Both kept, their Call-IDs cut for the model (the raw bytes keep them whole).
    let long: Vec<_> = engine
        .calls()
        .into_iter()
        .filter(|c| c.call_id.starts_with("xxx"))
        .map(|c| c.call_id.len())
        .collect();
    assert_eq!(long.len(), 1, "both cut to the same key: one call");
    assert!(long[0] <= 1024);
    assert_eq!(
        engine
            .calls()
            .iter()
            .map(|c| c.messages().len())
            .sum::<usize>(),
        16
    );
}

#[test]
fn ten_thousand_via_headers() {
    let vias: String = (0..10_000)
        .map(|i| {
            format!(
                "Via: SIP/2.0/UDP 198.51.100.{}:5060;branch=z9hG4bK{i}\r\n",
                i % 250
            )
        })
        .collect();
    let engine = run_case("10,000 Via headers", 8 * MB, |cap| {
        let m = msg(
            "INVITE sip:bob@example.com SIP/2.0",
            "vias",
            "1 INVITE",
            false,
            &vias,
        );
        cap.tcp_stream(50, "203.0.113.1:40001", B, 1, m.as_bytes(), 1400);
    });
    let calls = engine.calls();
    let call = calls.iter().find(|c| &*c.call_id == "vias").unwrap();
    assert_eq!(call.messages()[0].via_count, 10_001);
}

#[test]
fn content_length_huge_negative_and_not_a_number() {
    let lengths = [
        "99999999999",
        "-5",
        "abc",
        "18446744073709551616",
        "4294967296",
        "",
    ];
    run_case("lying Content-Length", 4 * MB, |cap| {
        for (i, cl) in lengths.iter().enumerate() {
            let m = msg(
                "MESSAGE sip:bob@example.com SIP/2.0",
                &format!("cl-{i}"),
                "1 MESSAGE",
                false,
                "",
            )
            .replace("Content-Length: 0", &format!("Content-Length: {cl}"))
                + "hello";
            cap.udp(50 + i as i64, A, B, m.as_bytes());
            // Over TCP the length frames the stream: the messages after a lie must survive.
            let mut stream = m.into_bytes();
            stream.extend_from_slice(
                msg(
                    "OPTIONS sip:bob@example.com SIP/2.0",
                    &format!("after-{i}"),
                    "1 OPTIONS",
                    false,
                    "",
                )
                .as_bytes(),
            );
            cap.tcp_stream(
                60 + i as i64,
                &format!("203.0.113.1:{}", 41_000 + i),
                B,
                1,
                &stream,
                500,
            );
        }
    });
}

#[test]
fn lying_content_length_keeps_the_next_message_on_the_connection() {
    let engine = run_case("huge Content-Length over TCP", 4 * MB, |cap| {
        let lie = msg(
            "MESSAGE sip:bob@example.com SIP/2.0",
            "lie",
            "1 MESSAGE",
            false,
            "",
        )
        .replace("Content-Length: 0", "Content-Length: 99999999999");
        let next = msg(
            "OPTIONS sip:bob@example.com SIP/2.0",
            "next",
            "1 OPTIONS",
            false,
            "",
        );
        let stream = [lie.as_bytes(), b"some body", next.as_bytes()].concat();
        cap.tcp_stream(50, "203.0.113.1:40002", B, 1, &stream, 1400);
    });
    assert!(engine.calls().iter().any(|c| &*c.call_id == "next"));
    let s = engine.source_stats(0, "t", Default::default());
    assert_eq!(s.skipped.named("oversized_message"), Some(&1));
}

/// Escape sequences, control characters and bidi overrides in every header, through every
/// text output of the binary: none reaches the output raw; CSV cells cannot start a formula;
/// the SVG is well-formed with no injected element; JSON parses.
#[test]
fn escapes_controls_and_bidi_in_every_header_never_reach_the_output() {
    let evil = "\u{1b}[2J\u{1b}]0;owned\u{7}\u{202e}\u{200f}\u{8}\u{0}<script>=cmd|' /C calc'!A0";
    let mut cap = Cap::default();
    cap.good_call(0, "good-before");
    let extra = format!(
        "User-Agent: {evil}\r\nReason: Q.850;cause=16;text=\"{evil}\"\r\nWarning: 399 h \"{evil}\"\r\n\
Contact: <sip:{evil}@203.0.113.1>\r\nSubject: {evil}\r\n"
    );
    let invite = msg(
        &format!("INVITE sip:{evil}@example.com SIP/2.0"),
        &format!("evil{evil}"),
        "1 INVITE",
        false,
        &extra,
    )
    .replace("\"Alice\"", &format!("\"{evil}\""))
    .replace(
        "<sip:bob@example.com>",
        &format!("\"=HYPERLINK({evil})\" <sip:bob{evil}@example.com>"),
    );
    let busy = msg(
        &format!("SIP/2.0 486 {evil}"),
        &format!("evil{evil}"),
        "1 INVITE",
        true,
        &extra,
    )
    .replace("\"Alice\"", &format!("\"{evil}\""))
    .replace(
        "<sip:bob@example.com>",
        &format!("\"=HYPERLINK({evil})\" <sip:bob{evil}@example.com>"),
    );
    cap.udp(100, A, B, invite.as_bytes());
    cap.udp(110, B, A, busy.as_bytes());
    cap.good_call(200, "good-after");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("evil.pcap");
    std::fs::write(&path, cap.pcap(65_535)).unwrap();
    let path = path.to_str().unwrap();
    let run = |args: &[&str]| -> Vec<u8> {
        let out = assert_cmd::Command::cargo_bin("sipscope")
            .unwrap()
            .args(args)
            .arg(path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let raw_controls = |b: &[u8]| {
        let s = String::from_utf8_lossy(b);
        s.chars().any(|c| {
            (c.is_control() && c != '\n' && c != '\t' && c != '\r')
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
        })
    };
    for args in [
        &["calls"][..],
        &["calls", "--format", "csv"],
        &["flow"],
        &["flow", "--format", "mermaid"],
        &["diagnose", "--all"],
        &["stats"],
    ] {
        let out = run(args);
        assert!(
            !raw_controls(&out),
            "{args:?}: {}",
            String::from_utf8_lossy(&out)
        );
        assert!(!out.is_empty());
    }
    // CSV: no cell starts a formula.
    let csv = String::from_utf8(run(&["calls", "--format", "csv"])).unwrap();
    for line in csv.lines() {
        for cell in line.split(',') {
            let cell = cell.trim_start_matches('"');
            assert!(
                !cell.starts_with(['=', '+', '-', '@']) || cell.parse::<f64>().is_ok(),
                "formula cell {cell:?} in {line}"
            );
        }
    }
    // SVG: well-formed, and the only elements are the ladder's own.
    let svg = String::from_utf8(run(&["flow", "--format", "svg"])).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    assert!(doc.descendants().all(|n| n.tag_name().name() != "script"));
    // JSON: valid, with the strings as they were (JSON escapes them itself).
    let json: serde_json::Value =
        serde_json::from_slice(&run(&["export", "--format", "json"])).unwrap();
    assert_eq!(json["calls"].as_array().unwrap().len(), 3);
}

#[test]
fn invalid_utf8_and_nul_bytes() {
    run_case("invalid UTF-8 and NUL", 4 * MB, |cap| {
        let m = msg(
            "INVITE sip:bob@example.com SIP/2.0",
            "utf8",
            "1 INVITE",
            false,
            "Subject: SUBJ\r\n",
        );
        let mut bytes = m.into_bytes();
        for (needle, junk) in [
            (&b"Alice"[..], &b"\xff\xfe\x00\xc3\x28"[..]),
            (b"SUBJ", b"\x00\x00\xed\xa0\x80\xf4\x90\x80\x80"),
            (b"bob@", b"b\x00b@"),
        ] {
            let at = bytes
                .windows(needle.len())
                .position(|w| w == needle)
                .unwrap();
            bytes.splice(at..at + needle.len(), junk.iter().copied());
        }
        cap.udp(50, A, B, &bytes);
        // A Call-ID that is not UTF-8 at all, and one that is only NULs.
        let m = msg(
            "OPTIONS sip:bob@example.com SIP/2.0",
            "CID",
            "1 OPTIONS",
            false,
            "",
        );
        cap.udp(51, A, B, &m.replace("CID", "\u{0}\u{0}").into_bytes());
        let mut b = m.into_bytes();
        let at = b.windows(3).position(|w| w == b"CID").unwrap();
        b.splice(at..at + 3, [0xc0, 0xaf, 0xff]);
        cap.udp(52, A, B, &b);
    });
}

/// 65,535 fragments of one datagram that never completes (8 bytes each, their offsets
/// wrapping round the 13-bit field, so most overlap): memory stays within the fragment
/// budget, and the good calls around the flood survive.
#[test]
fn sixty_five_thousand_fragments_of_one_datagram() {
    let engine = run_case("65,535 fragments", 8 * MB, |cap| {
        for i in 0..65_535u32 {
            let offset = (i % 8191) as u16;
            cap.fragment(50, 0xBEEF, offset, true, &[b'f'; 8]);
        }
    });
    let s = engine.source_stats(0, "t", Default::default());
    let dropped: u64 = [
        "fragments_incomplete",
        "fragments_invalid",
        "fragments_evicted",
    ]
    .iter()
    .filter_map(|k| s.skipped.named(k))
    .sum();
    assert!(dropped >= 1, "{:?}", s.skipped);
}

/// A fragment flood over many datagram ids: the 64 MiB fragment budget (made small here)
/// holds, evictions are counted.
#[test]
fn fragment_floods_respect_the_fragment_budget() {
    let mut config = EngineConfig::default();
    config.net.defrag.max_bytes = 4 * MB;
    let engine = run_case_with("fragment flood", 12 * MB, config, |cap| {
        for id in 0..20_000u16 {
            cap.fragment(50, id, 0, true, &[b'f'; 1400]);
        }
    });
    let s = engine.source_stats(0, "t", Default::default());
    assert!(
        s.skipped.named("fragments_evicted").is_some_and(|n| *n > 0),
        "{:?}",
        s.skipped
    );
}

/// A SIP message in overlapping fragments, out of order (the overlaps carry the same bytes, as
/// a retransmitting router's would): reassembled and read. Then fragments whose overlaps
/// disagree: whatever comes of them, the good calls survive.
#[test]
fn overlapping_fragments() {
    let engine = run_case("overlapping fragments", 4 * MB, |cap| {
        let m = msg(
            "MESSAGE sip:bob@example.com SIP/2.0",
            "frag",
            "1 MESSAGE",
            false,
            "",
        );
        let m = m.replace(
            "Content-Length: 0\r\n\r\n",
            &format!("Content-Length: 600\r\n\r\n{}", "b".repeat(600)),
        );
        let udp = etherparse::UdpHeader::with_ipv4_checksum(
            5060,
            5060,
            &etherparse::Ipv4Header::new(
                m.len() as u16 + 8,
                64,
                etherparse::IpNumber::UDP,
                v4(addr(A)),
                v4(addr(B)),
            )
            .unwrap(),
            m.as_bytes(),
        )
        .unwrap();
        let mut dgram = udp.to_bytes().to_vec();
        dgram.extend_from_slice(m.as_bytes());
        // Pieces of 96 bytes starting every 64: each overlaps the next by 32.
        let mut starts: Vec<usize> = (0..dgram.len()).step_by(64).collect();
        starts.reverse();
        for s in starts {
            let end = (s + 96).min(dgram.len());
            let end = if end < dgram.len() {
                end - end % 8
            } else {
                end
            };
            cap.fragment(
                50,
                0x0101,
                (s / 8) as u16,
                end < dgram.len(),
                &dgram[s..end],
            );
        }
        // Disagreeing overlaps, with a different id.
        cap.fragment(60, 0x0202, 0, true, &dgram[..64]);
        cap.fragment(60, 0x0202, 4, true, &[b'Z'; 64]);
        cap.fragment(60, 0x0202, 2, false, &dgram[16..80]);
    });
    assert!(
        engine.calls().iter().any(|c| &*c.call_id == "frag"),
        "the overlapped message"
    );
}

#[test]
fn tcp_sequence_wrap_around() {
    let engine = run_case("TCP wrap-around", 4 * MB, |cap| {
        let mut stream = Vec::new();
        for i in 0..20 {
            stream.extend_from_slice(
                msg(
                    "OPTIONS sip:bob@example.com SIP/2.0",
                    &format!("wrap-{i}"),
                    "1 OPTIONS",
                    false,
                    "",
                )
                .as_bytes(),
            );
        }
        // The sequence numbers pass 2^32 in the middle of the stream.
        let isn = u32::MAX - (stream.len() as u32 / 2);
        cap.tcp_stream(50, "203.0.113.1:40003", B, isn, &stream, 333);
    });
    let wrapped = engine
        .calls()
        .iter()
        .filter(|c| c.call_id.starts_with("wrap-"))
        .count();
    assert_eq!(wrapped, 20);
}

/// 100,000 TCP connections at once, each left in the middle of a message: the stream table
/// stays at its limit (65,536 streams; evictions counted) and memory with it, and the good
/// calls survive. The evicted streams' unfinished messages all say Call-ID "half": one call of
/// 100,000 messages (at the per-call limit), which the budget includes.
#[test]
fn a_hundred_thousand_simultaneous_tcp_flows() {
    let engine = run_case("100,000 TCP flows", 256 * MB, |cap| {
        let partial = b"INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/TCP 203.0.113.9;branch=z9hG4bKx\r\nCall-ID: half";
        for i in 0..100_000u32 {
            let src = format!(
                "198.51.{}.{}:{}",
                (i >> 16) & 0xff,
                (i >> 8) & 0xff,
                1024 + (i & 0xff)
            );
            cap.tcp(50, &src, B, 1, "A", partial);
        }
    });
    let s = engine.source_stats(0, "t", Default::default());
    assert!(
        s.skipped
            .named("tcp_stream_evicted")
            .is_some_and(|n| *n > 30_000),
        "{:?}",
        s.skipped
    );
}

/// Many connections each holding an unfinished large message: the total TCP budget (made
/// small here) holds.
#[test]
fn unfinished_messages_on_many_connections_respect_the_tcp_budget() {
    let mut config = EngineConfig::default();
    config.net.tcp.max_buffered_total = 8 * MB;
    let engine = run_case_with("TCP buffer flood", 16 * MB, config, |cap| {
        let head = msg(
            "MESSAGE sip:bob@example.com SIP/2.0",
            "big",
            "1 MESSAGE",
            false,
            "",
        )
        .replace("Content-Length: 0", "Content-Length: 900000");
        let body = vec![b'b'; 60_000];
        for i in 0..400u32 {
            let src = format!("198.51.100.{}:{}", i % 200, 2000 + i);
            cap.tcp(50, &src, B, 1, "A", head.as_bytes());
            cap.tcp(50, &src, B, 1 + head.len() as u32, "A", &body);
        }
    });
    let s = engine.source_stats(0, "t", Default::default());
    assert!(
        s.skipped
            .named("tcp_buffer_evicted")
            .is_some_and(|n| *n > 0),
        "{:?}",
        s.skipped
    );
}

// ---------------------------------------------------------------------------------------------
// Damaged capture files: read through `FileSource`, as the commands do.

/// Analyses capture bytes from a file: the calls found and the damage reported.
fn analyse_file(bytes: &[u8]) -> Result<(Engine, sipscope::capture::CaptureDamage), String> {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut file, bytes).unwrap();
    let mut src = FileSource::open(file.path().to_str().unwrap(), 0).map_err(|e| e.to_string())?;
    let mut engine = Engine::new(EngineConfig::default());
    engine.run(&mut src);
    let damage = src.damage(0);
    Ok((engine, damage))
}

fn good_pcap_frames() -> Cap {
    let mut cap = Cap::default();
    cap.good_call(0, "good-before");
    cap
}

#[test]
fn pcap_records_longer_than_the_file_or_the_snaplen() {
    let before = good_pcap_frames();
    let mut after = Cap::default();
    after.good_call(1000, "good-after");
    // Longer than the snaplen (100) but whole in the file: read, as Wireshark does.
    let mut bytes = before.pcap(100);
    let big = &after.frames[0];
    bytes.extend(pcap_record(big.time, &big.data, big.data.len() as u32));
    for f in &after.frames[1..] {
        bytes.extend(pcap_record(f.time, &f.data, f.data.len() as u32));
    }
    let ((engine, _), peak) = peak_of(|| analyse_file(&bytes).unwrap());
    assert_good_calls_survive(&engine, "records over the snaplen");
    assert!(peak < 16 * MB);
    // A last record that claims more than the file holds (and more than any buffer): the
    // calls before it are kept, the damage is reported, memory stays bounded.
    for claim in [5_000u32, 60 << 20, u32::MAX] {
        let mut bytes = before.pcap(65_535);
        let mut rec = pcap_record(Timestamp::from_millis(BASE_MS + 900), &[0xAB; 64], claim);
        rec.truncate(16 + 64);
        bytes.extend(rec);
        let ((engine, damage), peak) = peak_of(|| analyse_file(&bytes).unwrap());
        let calls = engine.calls();
        assert!(
            calls.iter().any(|c| &*c.call_id == "good-before"),
            "claim {claim}"
        );
        assert!(
            damage.truncated_file || damage.damaged_records > 0,
            "claim {claim}: {damage:?}"
        );
        assert!(peak < 100 * MB, "claim {claim}: {} MB", peak / MB);
    }
}

#[test]
fn zero_and_gigantic_snaplen() {
    for snaplen in [0u32, 1, u32::MAX] {
        let mut cap = good_pcap_frames();
        cap.good_call(1000, "good-after");
        let ((engine, _), peak) = peak_of(|| analyse_file(&cap.pcap(snaplen)).unwrap());
        assert_good_calls_survive(&engine, &format!("snaplen {snaplen}"));
        assert!(peak < 16 * MB, "snaplen {snaplen}: {} MB", peak / MB);
    }
}

/// pcapng: a section header and an interface, then blocks with lengths that lie (too small,
/// not a multiple of four, past the end, a trailing length that disagrees) between good
/// packets.
#[test]
fn pcapng_blocks_with_bad_lengths() {
    fn block(kind: u32, body: &[u8]) -> Vec<u8> {
        let len = (12 + body.len()) as u32;
        let mut b = kind.to_le_bytes().to_vec();
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(body);
        b.extend_from_slice(&len.to_le_bytes());
        b
    }
    fn epb(f: &OwnedFrame) -> Vec<u8> {
        let us = (f.time.0 / 1000) as u64;
        let mut body = Vec::new();
        body.extend_from_slice(&0u32.to_le_bytes());
        body.extend_from_slice(&((us >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(us as u32).to_le_bytes());
        body.extend_from_slice(&(f.data.len() as u32).to_le_bytes());
        body.extend_from_slice(&(f.data.len() as u32).to_le_bytes());
        body.extend_from_slice(&f.data);
        while body.len() % 4 != 0 {
            body.push(0);
        }
        block(6, &body)
    }
    let shb = {
        let mut body = 0x1a2b_3c4du32.to_le_bytes().to_vec();
        body.extend_from_slice(&1u16.to_le_bytes());
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&(-1i64).to_le_bytes());
        block(0x0a0d_0d0a, &body)
    };
    let idb = {
        let mut body = 1u16.to_le_bytes().to_vec();
        body.extend_from_slice(&0u16.to_le_bytes());
        body.extend_from_slice(&65_535u32.to_le_bytes());
        block(1, &body)
    };
    let mut cap = good_pcap_frames();
    cap.good_call(1000, "good-after");
    let (first, second) = cap.frames.split_at(7);
    let bad_blocks: Vec<(&str, Vec<u8>)> = vec![
        ("length 8", {
            let mut b = 6u32.to_le_bytes().to_vec();
            b.extend_from_slice(&8u32.to_le_bytes());
            b
        }),
        ("length not a multiple of 4", {
            let mut b = block(6, &[0; 30]);
            b[4..8].copy_from_slice(&41u32.to_le_bytes());
            b
        }),
        ("trailing length disagrees", {
            let mut b = block(0x0BAD, &[0; 32]);
            let n = b.len();
            b[n - 4..].copy_from_slice(&999u32.to_le_bytes());
            b
        }),
        ("unknown block type", block(0x0BAD, &[0; 32])),
        ("packet block with a capture length past the block", {
            let mut b = epb(&second[0]);
            b[20..24].copy_from_slice(&60_000u32.to_le_bytes());
            b
        }),
    ];
    for (what, bad) in &bad_blocks {
        let mut bytes = [shb.clone(), idb.clone()].concat();
        for f in first {
            bytes.extend(epb(f));
        }
        bytes.extend_from_slice(bad);
        for f in second {
            bytes.extend(epb(f));
        }
        let (result, peak) = peak_of(|| analyse_file(&bytes));
        let (engine, damage) = result.unwrap();
        let calls = engine.calls();
        assert!(calls.iter().any(|c| &*c.call_id == "good-before"), "{what}");
        // After a block whose length can be trusted, the file goes on; after one whose
        // length lies, the rest may be lost, and that is reported.
        let after = calls.iter().any(|c| &*c.call_id == "good-after");
        assert!(
            after || damage.stopped_early.is_some() || damage.damaged_records > 0,
            "{what}: {damage:?}"
        );
        // Regression: a packet block whose capture length ran past its own block made the
        // reader wait for more and read the good blocks after it as its rest (all lost, the
        // file called truncated). Its block length is sound, so only it is skipped.
        if !what.starts_with("length") {
            assert!(after, "{what}: the blocks after it are lost: {damage:?}");
        }
        assert!(peak < 16 * MB, "{what}: {} MB", peak / MB);
    }
    // A block claiming 4 GiB at the end of the file.
    let mut bytes = [shb.clone(), idb.clone()].concat();
    for f in first {
        bytes.extend(epb(f));
    }
    let mut huge = 6u32.to_le_bytes().to_vec();
    huge.extend_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    huge.extend_from_slice(&[0; 64]);
    bytes.extend(huge);
    let (result, peak) = peak_of(|| analyse_file(&bytes));
    let (engine, damage) = result.unwrap();
    assert!(engine.calls().iter().any(|c| &*c.call_id == "good-before"));
    assert!(
        damage.truncated_file || damage.stopped_early.is_some(),
        "{damage:?}"
    );
    assert!(peak < 100 * MB, "{} MB", peak / MB);
}

/// Not a capture at all, or a capture header and nothing else: a clean error or no calls.
#[test]
fn headers_alone_and_garbage() {
    let header_only = Cap::default().pcap(65_535);
    let (engine, _) = analyse_file(&header_only).unwrap();
    assert!(engine.calls().is_empty());
    let err = analyse_file(&[0u8; 10_000]).err().unwrap();
    assert!(!err.contains('\n'));
    let err = analyse_file(b"\x0a\x0d\x0d\x0a\xff\xff\xff\xff").err();
    assert!(err.is_none_or(|e| !e.contains('\n')));
}

#[test]
fn the_counting_allocator_counts() {
    let (v, peak) = peak_of(|| vec![0u8; 3 * MB]);
    assert!(peak >= 3 * MB);
    drop(v);
    let (_, peak) = peak_of(|| ());
    assert!(peak < MB);
    // Engine memory is freed with the engine: what a case measured is what it held.
    let live = LIVE.with(Cell::get);
    drop(good_pcap_frames().engine(EngineConfig::default()));
    assert!(LIVE.with(Cell::get) <= live + 4096);
}

#[test]
fn every_case_is_run_on_shared_captures_too() {
    // The same inputs the corpus builds by hand appear in the real captures of ../shared
    // (fragmented INVITEs, TCP retransmissions, metasploit's spoofed INVITE): each is read
    // within the same bounds. Skips in a user's clone.
    let Some(shared) = common::shared_captures() else {
        eprintln!("skipped: ../shared/captures is absent");
        return;
    };
    for f in common::captures_in(&shared) {
        let bytes = std::fs::read(&f).unwrap();
        let (result, peak) = peak_of(|| analyse_file(&bytes));
        if let Ok((engine, _)) = result {
            common::exercise(&engine, Default::default());
        }
        assert!(
            peak < 64 * MB + 4 * bytes.len(),
            "{}: {} MB",
            f.display(),
            peak / MB
        );
    }
}

/// One call of 50,000 distinct responses (reliable 183s never PRACKed, 481s, 491s, 488s, each
/// with its own CSeq, from a private Contact): every rule stays linear (regression: the
/// candidates were searched against the whole call, quadratic, minutes at this size), and the
/// report lists a bounded number of findings, saying how many more were not examined.
#[test]
fn a_call_of_fifty_thousand_distinct_responses_is_diagnosed() {
    let mut cap = Cap::default();
    for i in 0..50_000u32 {
        let (start, extra) = match i % 4 {
            0 => (
                "SIP/2.0 183 Session Progress",
                format!("Require: 100rel\r\nRSeq: {i}\r\nContact: <sip:b@192.168.1.1>\r\n"),
            ),
            1 => ("SIP/2.0 481 Call/Transaction Does Not Exist", String::new()),
            2 => ("SIP/2.0 491 Request Pending", String::new()),
            _ => ("SIP/2.0 488 Not Acceptable Here", String::new()),
        };
        let m = msg(start, "flood", &format!("{i} INVITE"), true, &extra);
        cap.udp(i64::from(i), B, A, m.as_bytes());
    }
    let engine = cap.engine(EngineConfig::default());
    let calls = engine.calls();
    assert_eq!(calls[0].messages().len(), 50_000);
    let d = sipscope::diagnose::diagnose(calls[0], engine.now(), &Default::default());
    assert!(d.anomalies.len() < 1_000, "{} findings", d.anomalies.len());
    for kind in ["prack_missing", "transaction_does_not_exist", "glare"] {
        assert!(
            d.anomalies
                .iter()
                .any(|a| a.kind.as_str() == kind && a.summary.contains("not examined")),
            "{kind}"
        );
    }
    common::exercise(&engine, Default::default());
}

/// What a call of one unanswered request costs the engine in the streaming modes with lean
/// records (`calls`): a scanner's OPTIONS, each with a fresh Call-ID, all in flight at once
/// (they are kept 32 s). Memory follows what a call holds, not a price fixed up front.
#[test]
fn a_call_of_one_request_costs_what_it_holds() {
    let mut cap = Cap::default();
    let n = 4_000;
    for i in 0..n {
        let msg = format!(
            "OPTIONS sip:100@{B} SIP/2.0\r\nVia: SIP/2.0/UDP {A};branch=z9hG4bK{i:08x};rport\r\n\
             From: \"sipvicious\" <sip:100@{A}>;tag={i:08x}\r\nTo: <sip:100@{B}>\r\n\
             Call-ID: {i:016x}@scanner\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n\
             User-Agent: friendly-scanner\r\nContent-Length: 0\r\n\r\n"
        );
        cap.udp(i as i64, A, B, msg.as_bytes());
    }
    let config = {
        let mut built = EngineConfig::default();
        built.streaming = true;
        built.keep_detail = false;
        built
    };
    let (engine, peak) = peak_of(|| {
        let mut engine = Engine::new(config);
        for f in &cap.frames {
            engine.feed(&f.as_frame());
        }
        engine
    });
    assert_eq!(engine.calls().len(), n);
    let per_call = peak / n;
    eprintln!("one-request call: {per_call} bytes");
    assert!(per_call <= 1_536, "{per_call} bytes per one-request call");
}

/// What the synthetic generator's scanner flood costs per call in the streaming modes with
/// lean records: OPTIONS, REGISTER and INVITE sweeps from four sources, a fifth answered 401
/// or 404 (the 401s carry a digest challenge), all in flight at once.
#[test]
fn a_scanner_flood_costs_what_its_calls_hold() {
    let frames = flood_frames(0, 20_000);
    let config = {
        let mut built = EngineConfig::default();
        built.streaming = true;
        built.keep_detail = false;
        built
    };
    let (engine, peak) = fed(config, &frames);
    assert_eq!(engine.calls().len(), 20_000);
    let per_call = peak / 20_000;
    eprintln!("scanner flood: {per_call} bytes a call");
    assert!(per_call <= 1_536, "{per_call} bytes per scanner call");
}

/// A new engine fed `frames`, and the most memory it held meanwhile.
fn fed(config: EngineConfig, frames: &[OwnedFrame]) -> (Engine, usize) {
    peak_of(|| {
        let mut engine = Engine::new(config);
        for f in frames {
            engine.feed(&f.as_frame());
        }
        engine
    })
}

/// The synthetic flood: scanner requests with `calls` real calls among them, as frames.
fn flood_frames(calls: usize, scanners: usize) -> Vec<OwnedFrame> {
    let cfg = {
        let mut built = sipscope::synth::SynthConfig::default();
        built.calls = calls;
        built.scanner_requests = scanners;
        built.scanner_rate = 10_000.0;
        built.calls_per_second = 20.0;
        built.max_hold_secs = 5.0;
        built
    };
    let mut pcap = Vec::new();
    sipscope::synth::write_pcap(&cfg, &mut pcap).unwrap();
    let mut source =
        FileSource::from_reader(Box::new(std::io::Cursor::new(pcap)), "flood", 0, None).unwrap();
    let mut frames = Vec::new();
    while let Some(f) = source.next_frame() {
        frames.push(f.to_owned());
    }
    frames
}

/// `--max-memory`: the call table keeps within its budget under a scanner flood, by shedding
/// the scanners' probes first, so that every real call is still there, whole; what was shed is
/// counted. The budget is kept by accounting, which the counting allocator checks.
#[test]
fn a_memory_budget_sheds_scanner_probes_first_and_keeps_the_real_calls() {
    let frames = flood_frames(40, 30_000);
    let budget = 6 << 20;
    let config = {
        let mut built = EngineConfig::default();
        built.keep_raw = true;
        built.max_memory = Some(budget);
        built
    };
    let (engine, peak) = peak_of(|| {
        let mut engine = Engine::new(config);
        for f in &frames {
            engine.feed(&f.as_frame());
        }
        engine.finish();
        engine
    });
    let counters = engine.counters();
    assert!(counters.calls_shed > 10_000, "{counters:?}");
    assert!(engine.memory_held() <= budget);
    // Accounting against what was really allocated: the budget plus the network's and the
    // scanner tally's own tables, which are bounded apart.
    eprintln!(
        "budget {budget}, peak {peak}, held {}",
        engine.memory_held()
    );
    assert!(
        peak <= budget + 4 * MB,
        "peak {peak} for a budget of {budget}"
    );
    let real: Vec<_> = engine
        .calls()
        .into_iter()
        .filter(|c| c.from.uri.contains("@10.1."))
        .collect();
    assert_eq!(real.len(), 40, "every real call kept");
    assert!(real.iter().all(|c| c.messages().len() >= 6));
    let scanners = engine.scanners().scanners();
    assert_eq!(scanners.len(), 4, "{scanners:?}");
}

/// The budget's accounting follows what calls really cost, within a quarter, for a flood and
/// for whole calls with their raw bytes.
#[test]
fn the_memory_accounting_follows_the_allocator() {
    for (calls, scanners, raw) in [(0, 20_000, false), (2_000, 0, true), (2_000, 0, false)] {
        let frames = flood_frames(calls, scanners);
        let config = {
            let mut built = EngineConfig::default();
            built.keep_raw = raw;
            built
        };
        let (engine, peak) = fed(config, &frames);
        let held = engine.memory_held();
        eprintln!("{calls} calls, {scanners} scanners, raw {raw}: held {held}, allocated {peak}");
        assert!(
            held * 4 >= peak * 3 && held <= peak * 5 / 4,
            "accounted {held} bytes, allocated {peak}"
        );
    }
}
