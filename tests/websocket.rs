//! SIP over WebSocket (RFC 7118) built in code: a SIP.js-like client and a server on TCP, the
//! HTTP upgrade, masked client frames split across TCP segments, unmasked server frames, a
//! message fragmented into two WebSocket frames with a ping between them. sipscope must find
//! the call with every message as WS, and the same messages per frame as tshark. (A real
//! capture, `heplify/sip_tcp_websocket.pcap`, is checked against tshark by
//! `tests/tshark_oracle.rs` when `../shared` is present.)

use crate::common;

use etherparse::PacketBuilder;
use sipscope::capture::{CaptureWriter, LinkType, OwnedFrame, Timestamp, WriterOptions};
use sipscope::synth::script::sip;
use std::collections::BTreeMap;
use std::path::Path;

const CLIENT: ([u8; 4], u16) = ([10, 0, 0, 1], 50123);
const SERVER: ([u8; 4], u16) = ([10, 0, 0, 2], 8080);
const CALL_ID: &str = "ws-call-1@client.invalid";

fn ws_frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut v = vec![(u8::from(fin) << 7) | opcode];
    let m = if mask.is_some() { 0x80 } else { 0 };
    if payload.len() < 126 {
        v.push(m | payload.len() as u8);
    } else {
        v.push(m | 126);
        v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    }
    match mask {
        Some(k) => {
            v.extend_from_slice(&k);
            v.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => v.extend_from_slice(payload),
    }
    v
}

struct Conversation {
    frames: Vec<OwnedFrame>,
    seq: [u32; 2],
    ms: i64,
}

impl Conversation {
    fn tcp(&mut self, from_client: bool, flags: &str, payload: &[u8]) {
        let (src, dst) = if from_client {
            (CLIENT, SERVER)
        } else {
            (SERVER, CLIENT)
        };
        let (me, peer) = if from_client { (0, 1) } else { (1, 0) };
        let mut b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4(src.0, dst.0, 64)
            .tcp(src.1, dst.1, self.seq[me], 65535);
        if flags.contains('S') {
            b = b.syn();
        }
        if !(flags.contains('S') && from_client) {
            b = b.ack(self.seq[peer]);
        }
        if !payload.is_empty() {
            b = b.psh();
        }
        let mut data = Vec::new();
        b.write(&mut data, payload).unwrap();
        self.seq[me] = self.seq[me]
            .wrapping_add(payload.len() as u32)
            .wrapping_add(u32::from(flags.contains('S')));
        self.ms += 3;
        self.frames.push(OwnedFrame {
            source: 0,
            number: self.frames.len() as u64 + 1,
            time: Timestamp::from_millis(1_700_000_000_000 + self.ms),
            link: LinkType::ETHERNET,
            orig_len: data.len() as u32,
            data,
        });
    }

    /// Sends `bytes` in segments cut at `cuts`.
    fn send(&mut self, from_client: bool, bytes: &[u8], cuts: &[usize]) {
        let mut prev = 0;
        for &c in cuts.iter().chain(std::iter::once(&bytes.len())) {
            self.tcp(from_client, "", &bytes[prev..c]);
            prev = c;
        }
    }
}

fn message(start: &str, cseq: &str, from_tag: &str, to_tag: Option<&str>, body: &str) -> Vec<u8> {
    let to = match to_tag {
        Some(t) => format!("<sip:bob@example.invalid>;tag={t}"),
        None => "<sip:bob@example.invalid>".to_string(),
    };
    let from = format!("<sip:alice@example.invalid>;tag={from_tag}");
    let mut headers = vec![
        ("Via", "SIP/2.0/WSS df7jal23ls0d.invalid;branch=z9hG4bK5566"),
        ("From", from.as_str()),
        ("To", to.as_str()),
        ("Call-ID", CALL_ID),
        ("CSeq", cseq),
        ("Max-Forwards", "70"),
    ];
    if !body.is_empty() {
        headers.push(("Content-Type", "application/sdp"));
    }
    sip(start, &headers, body).into_bytes()
}

/// Writes the conversation; `joined`: as a capture that begins after the HTTP upgrade (and
/// with the INVITE's first segment holding its whole frame header).
fn build(path: &Path, joined: bool) {
    let mut c = Conversation {
        frames: Vec::new(),
        seq: [1000, 900_000],
        ms: 0,
    };
    c.tcp(true, "S", &[]);
    c.tcp(false, "S", &[]);
    let get = b"GET /ws HTTP/1.1\r\nHost: server\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: sip\r\nSec-WebSocket-Version: 13\r\n\r\n";
    c.send(true, get, &[]);
    let ok = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: sip\r\n\r\n";
    c.send(false, ok, &[]);
    let sdp = sipscope::synth::script::sdp("10.0.0.1", 40000, &[0, 8]);
    let invite = message(
        "INVITE sip:bob@example.invalid SIP/2.0",
        "1 INVITE",
        "a1",
        None,
        &sdp,
    );
    // Masked text frame, cut into three TCP segments (one cut inside the frame header).
    let f = ws_frame(true, 1, &invite, Some([0x11, 0x22, 0x33, 0x44]));
    c.send(true, &f, if joined { &[300] } else { &[1, 300] });
    let trying = message("SIP/2.0 100 Trying", "1 INVITE", "a1", None, "");
    c.send(false, &ws_frame(true, 2, &trying, None), &[]);
    let ringing = message("SIP/2.0 180 Ringing", "1 INVITE", "a1", Some("b2"), "");
    let answer = message("SIP/2.0 200 OK", "1 INVITE", "a1", Some("b2"), &sdp);
    // The 180 and the first fragment of the 200 in one segment; a ping; the last fragment.
    let (x, y) = answer.split_at(100);
    let mut seg = ws_frame(true, 1, &ringing, None);
    seg.extend(ws_frame(false, 1, x, None));
    c.send(false, &seg, &[]);
    c.send(false, &ws_frame(true, 9, b"keepalive", None), &[]);
    c.send(false, &ws_frame(true, 0, y, None), &[]);
    let ack = message(
        "ACK sip:bob@example.invalid SIP/2.0",
        "1 ACK",
        "a1",
        Some("b2"),
        "",
    );
    c.send(true, &ws_frame(true, 1, &ack, Some([1, 2, 3, 4])), &[]);
    let bye = message(
        "BYE sip:bob@example.invalid SIP/2.0",
        "2 BYE",
        "a1",
        Some("b2"),
        "",
    );
    c.send(true, &ws_frame(true, 1, &bye, Some([5, 6, 7, 8])), &[10]);
    let done = message("SIP/2.0 200 OK", "2 BYE", "a1", Some("b2"), "");
    c.send(false, &ws_frame(true, 1, &done, None), &[]);
    let mut w = CaptureWriter::new(
        std::fs::File::create(path).unwrap(),
        WriterOptions::default(),
    );
    // SYN, SYN, the upgrade and its answer.
    let skip = if joined { 4 } else { 0 };
    for f in c.frames.iter().skip(skip) {
        w.write(&f.as_frame()).unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn a_call_over_websocket() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ws.pcap");
    build(&path, false);
    let (engine, _) = common::analyse(&path);
    let calls = engine.calls();
    assert_eq!(calls.len(), 1);
    let call = calls[0];
    assert_eq!(&*call.call_id, CALL_ID);
    let labels: Vec<String> = call
        .messages()
        .iter()
        .map(|m| {
            m.method()
                .map(str::to_string)
                .unwrap_or_else(|| m.status().unwrap_or(0).to_string())
        })
        .collect();
    assert_eq!(labels, ["INVITE", "100", "180", "200", "ACK", "BYE", "200"]);
    assert!(call.messages().iter().all(|m| m.transport.as_str() == "WS"));
    let summary = call.summary(engine.now());
    assert_eq!(summary.final_status, Some(200));
    // The INVITE came in three segments (frames 5, 6, 7); the fragmented 200 from frame 9
    // (after the 180) to frame 11, with the ping (frame 10) between its fragments.
    assert_eq!(call.messages()[0].frames(), &[5, 6, 7]);
    assert_eq!(call.messages()[2].frames(), &[9]);
    assert_eq!(call.messages()[3].frames(), &[9, 10, 11]);
    let stats = engine.source_stats(0, "", Default::default());
    assert_eq!(stats.skipped.named("keepalive"), Some(&1));

    if !common::require("tshark") {
        return;
    }
    let theirs: BTreeMap<u64, String> = common::tshark_fields(
        &path,
        &["-d", "tcp.port==8080,http", "-Y", "sip"],
        &["frame.number", "sip.CSeq"],
    )
    .into_iter()
    .filter_map(|f| {
        let n = f.first()?.first()?.parse().ok()?;
        Some((n, f.get(1)?.first()?.clone()))
    })
    .collect();
    let ours: BTreeMap<u64, String> = call
        .messages()
        .iter()
        .map(|m| {
            let (n, method) = m.cseq.clone().unwrap();
            (m.packet, format!("{n} {method}"))
        })
        .collect();
    assert_eq!(ours, theirs);
}

/// A capture that begins after the HTTP upgrade: the connection is known to carry SIP over
/// WebSocket from its first frames (a masked client frame and an unmasked server frame that
/// carry SIP start lines), and every message is read as WS, the fragmented 200 included.
#[test]
fn a_websocket_connection_joined_after_its_handshake() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ws-joined.pcap");
    build(&path, true);
    let (engine, _) = common::analyse(&path);
    let calls = engine.calls();
    assert_eq!(calls.len(), 1);
    let call = calls[0];
    let labels: Vec<String> = call.messages().iter().map(|m| m.label()).collect();
    assert_eq!(
        labels,
        [
            "INVITE",
            "100 Trying",
            "180 Ringing",
            "200 OK",
            "ACK",
            "BYE",
            "200 OK"
        ]
    );
    assert!(call.messages().iter().all(|m| m.transport.as_str() == "WS"));
    let stats = engine.source_stats(0, "", Default::default());
    assert_eq!(stats.skipped.named("keepalive"), Some(&1));
    assert_eq!(stats.skipped.named("tcp_skipped_bytes"), None, "{stats:?}");
}
