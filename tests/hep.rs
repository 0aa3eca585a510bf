//! HEP (v3, and v2) inside captures: every message of a recorded sample shipped as HEP to a
//! collector on UDP 9060, the way kamailio's siptrace or heplify would. sipscope must find the
//! same calls as in the bare capture, with the agent's addresses, times, capture id, node name
//! and correlation id. (tshark 4.0 has no HEP dissector, so the oracle is the bare capture; the
//! interop tests with kamailio and sngrep are in `tests/hep_peers.rs`.)

use crate::common;

use etherparse::PacketBuilder;
use sipscope::capture::{CaptureWriter, LinkType, OwnedFrame, Timestamp, WriterOptions};
use sipscope::engine::EngineConfig;
use sipscope::hep::{SenderIdentity, encode};
use std::path::Path;

/// (time, src, dst, transport protocol, raw message) for each message of a sample.
fn messages(
    sample: &str,
) -> Vec<(
    Timestamp,
    std::net::SocketAddr,
    std::net::SocketAddr,
    Vec<u8>,
)> {
    let config = {
        let mut built = EngineConfig::default();
        built.keep_raw = true;
        built
    };
    let (engine, _) = common::analyse_with(&common::samples().join(sample), config);
    let mut out: Vec<_> = engine
        .calls()
        .iter()
        .flat_map(|c| c.messages().iter())
        .map(|m| (m.time, m.src, m.dst, m.raw().unwrap().to_vec()))
        .collect();
    out.sort_by_key(|m| m.0);
    out
}

/// One frame per message: agent 10.9.9.9 → collector 10.9.9.1:9060, HEP v3 or v2.
fn hep_capture(sample: &str, v2: bool, path: &Path) -> usize {
    let me = SenderIdentity {
        capture_id: 2001,
        auth_key: Some("s3cret".into()),
        node: Some("edge-1".into()),
    };
    let msgs = messages(sample);
    let mut w = CaptureWriter::new(
        std::fs::File::create(path).unwrap(),
        WriterOptions::default(),
    );
    for (i, (time, src, dst, raw)) in msgs.iter().enumerate() {
        let hep = if v2 {
            let (std::net::IpAddr::V4(s), std::net::IpAddr::V4(d)) = (src.ip(), dst.ip()) else {
                panic!("IPv4 sample")
            };
            let mut b = vec![2, 16, 2, 17];
            b.extend_from_slice(&src.port().to_be_bytes());
            b.extend_from_slice(&dst.port().to_be_bytes());
            b.extend_from_slice(&s.octets());
            b.extend_from_slice(&d.octets());
            b.extend_from_slice(&(time.secs() as u32).to_le_bytes());
            b.extend_from_slice(&(time.subsec_nanos() / 1000).to_le_bytes());
            b.extend_from_slice(&7u16.to_le_bytes());
            b.extend_from_slice(&[0, 0]);
            b.extend_from_slice(raw);
            b
        } else {
            encode(*src, *dst, 17, time.0, raw, Some(b"corr-42"), &me).unwrap()
        };
        let mut data = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 1])
            .ipv4([10, 9, 9, 9], [10, 9, 9, 1], 64)
            .udp(40000, 9060)
            .write(&mut data, &hep)
            .unwrap();
        // The collector receives later than the agent captured: the HEP time must win.
        let frame = OwnedFrame {
            source: 0,
            number: i as u64 + 1,
            time: Timestamp(time.0 + 5_000_000),
            link: LinkType::ETHERNET,
            orig_len: data.len() as u32,
            data,
        };
        w.write(&frame.as_frame()).unwrap();
    }
    w.finish().unwrap();
    msgs.len()
}

fn summary(path: &Path) -> Vec<String> {
    let (engine, _) = common::analyse(path);
    engine
        .calls()
        .iter()
        .map(|c| {
            let s = c.summary(engine.now());
            let m: Vec<String> = c
                .messages()
                .iter()
                .map(|m| format!("{} {} {} {:?}", m.time.0, m.src, m.dst, m.transport))
                .collect();
            format!("{} {:?} {:?} {m:?}", c.call_id, s.outcome, s.final_status)
        })
        .collect()
}

#[test]
fn hep_v3_and_v2_in_a_capture_give_the_calls_the_agent_saw() {
    let dir = tempfile::tempdir().unwrap();
    for sample in ["answered-udp.pcap", "busy-486.pcap"] {
        let bare = summary(&common::samples().join(sample));
        for v2 in [false, true] {
            let path = dir.path().join(format!("hep-{v2}-{sample}"));
            let n = hep_capture(sample, v2, &path);
            assert_eq!(summary(&path), bare, "{sample} v2={v2}");
            let (engine, _) = common::analyse(&path);
            let stats = engine.source_stats(0, "", Default::default());
            assert_eq!(stats.hep, n as u64);
            let calls = engine.calls();
            let m = &calls[0].messages()[0];
            let hep = m.hep().expect("HEP metadata kept");
            if v2 {
                assert_eq!((hep.version, hep.capture_id), (2, Some(7)));
            } else {
                assert_eq!((hep.version, hep.capture_id), (3, Some(2001)));
                assert_eq!(hep.node.as_deref(), Some("edge-1"));
                assert_eq!(hep.correlation_id.as_deref(), Some("corr-42"));
            }
        }
    }
}

#[test]
fn hep_metadata_in_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hep.pcap");
    hep_capture("answered-udp.pcap", false, &path);
    let out = assert_cmd::Command::cargo_bin("sipscope")
        .unwrap()
        .args(["export", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let m = &doc["calls"][0]["messages"][0];
    assert_eq!(
        m["hep"],
        serde_json::json!({"version": 3, "capture_id": 2001, "node": "edge-1", "correlation_id": "corr-42"})
    );
    assert!(doc["sources"][0]["hep"].as_u64().unwrap() > 0);
}

/// HEP over TCP inside a capture: the agent connects to the collector on TCP 9060 and writes
/// HEP v3 packets back to back; segments cut packets anywhere (one packet over two segments,
/// two packets in one segment), one segment comes twice (a TCP retransmission). sipscope finds
/// the same calls as in the bare capture, every message from HEP.
#[test]
fn hep_over_tcp_in_a_capture_gives_the_calls_the_agent_saw() {
    let me = SenderIdentity {
        capture_id: 2002,
        auth_key: None,
        node: Some("edge-tcp".into()),
    };
    let dir = tempfile::tempdir().unwrap();
    for sample in ["answered-udp.pcap", "busy-486.pcap"] {
        let msgs = messages(sample);
        let stream: Vec<u8> = msgs
            .iter()
            .flat_map(|(time, src, dst, raw)| {
                encode(*src, *dst, 17, time.0, raw, None, &me).unwrap()
            })
            .collect();
        let path = dir.path().join(format!("hep-tcp-{sample}"));
        let mut w = CaptureWriter::new(
            std::fs::File::create(&path).unwrap(),
            WriterOptions::default(),
        );
        let start = msgs[0].0;
        let mut number = 0u64;
        let mut write =
            |seq: u32, flags: &str, payload: &[u8], w: &mut CaptureWriter<std::fs::File>| {
                let mut b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 9], [2, 0, 0, 0, 0, 1])
                    .ipv4([10, 9, 9, 9], [10, 9, 9, 1], 64)
                    .tcp(40001, 9060, seq, 65535);
                if flags.contains('S') {
                    b = b.syn();
                } else {
                    b = b.ack(1).psh();
                }
                let mut data = Vec::new();
                b.write(&mut data, payload).unwrap();
                number += 1;
                let frame = OwnedFrame {
                    source: 0,
                    number,
                    time: Timestamp(start.0 + number as i64 * 1_000_000),
                    link: LinkType::ETHERNET,
                    orig_len: data.len() as u32,
                    data,
                };
                w.write(&frame.as_frame()).unwrap();
            };
        write(999, "S", &[], &mut w);
        // Segments of 700 bytes: packets (300 to 900 bytes) split and joined anywhere.
        let mut seq = 1000u32;
        for (i, chunk) in stream.chunks(700).enumerate() {
            write(seq, "", chunk, &mut w);
            if i == 2 {
                write(seq, "", chunk, &mut w); // a TCP retransmission
            }
            seq = seq.wrapping_add(chunk.len() as u32);
        }
        w.finish().unwrap();
        assert_eq!(
            summary(&path),
            summary(&common::samples().join(sample)),
            "{sample}"
        );
        let (engine, _) = common::analyse(&path);
        let stats = engine.source_stats(0, "", Default::default());
        assert_eq!(stats.hep, msgs.len() as u64, "{sample}: {stats:?}");
        assert_eq!(stats.skipped.named("tcp_skipped_bytes"), None, "{stats:?}");
        let calls = engine.calls();
        let hep = calls[0].messages()[0].hep().expect("HEP metadata kept");
        assert_eq!((hep.version, hep.capture_id), (3, Some(2002)));
        assert_eq!(hep.node.as_deref(), Some("edge-tcp"));
    }
}
