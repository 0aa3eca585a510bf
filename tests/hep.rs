//! HEP (v3, and v2) inside captures: every message of a recorded sample shipped as HEP to a
//! collector on UDP 9060, the way kamailio's siptrace or heplify would. sipscope must find the
//! same calls as in the bare capture, with the agent's addresses, times, capture id, node name
//! and correlation id. (tshark 4.0 has no HEP dissector, so the oracle is the bare capture; the
//! interop tests with kamailio and sngrep are in `tests/live_peers.rs`.) What `--hep-send`
//! reports of the media (RTCP, per-call quality) is checked against kamailio's sipcapture.

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

/// `--hep-send` with the media analysis: a real collector, kamailio's sipcapture module (what
/// Homer 5 ran on), stores each RTCP compound (HEP type 5, JSON) and each call's quality report
/// (type 100, JSON) under the call's Call-ID as correlation id.
#[test]
fn rtcp_and_call_reports_reach_kamailio_sipcapture() {
    if !common::have_path("kamailio") {
        if std::env::var_os("CI").is_some() {
            panic!("kamailio is required in CI (.ci/run installs it)");
        }
        eprintln!("skipped: kamailio is not installed");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    std::fs::create_dir(&db).unwrap();
    let columns = "id(int,auto) date(int) micro_ts(int) correlation_id(string) source_ip(string) \
        source_port(int) destination_ip(string) destination_port(int) proto(int) family(int) \
        type(int) node(string) msg(string) \n";
    for table in ["rtcp_capture", "logs_capture", "sip_capture"] {
        std::fs::write(db.join(table), columns).unwrap();
    }
    std::fs::write(
        db.join("version"),
        "id(int,auto) table_name(string) table_version(int) \n",
    )
    .unwrap();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let cfg = std::fs::read_to_string(common::root().join("scripts/hep-collector.cfg"))
        .unwrap()
        .replace("@LISTEN@", &listen)
        .replace("@DB@", db.to_str().unwrap());
    let cfg_path = dir.path().join("collector.cfg");
    std::fs::write(&cfg_path, cfg).unwrap();
    let mut kamailio = std::process::Command::new("kamailio")
        .args(["-DD", "-E", "-f"])
        .arg(&cfg_path)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("kamailio.log")).unwrap())
        .spawn()
        .unwrap();
    // Wait until its socket is bound.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !std::fs::read_to_string(dir.path().join("kamailio.log"))
        .unwrap_or_default()
        .contains("SO_RCVBUF is finally")
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    // A recorded sample (two streams, no RTCP) and, when the shared captures are there, a
    // real call with RTCP from public captures.
    let mut inputs = vec![common::samples().join("media-loss.pcap")];
    let rtcp_capture = common::shared_captures()
        .map(|d| d.join("gprshome-wireshark/sip.pcap"))
        .filter(|p| p.exists());
    if let Some(p) = &rtcp_capture {
        inputs.push(p.clone());
    } else {
        eprintln!("RTCP part skipped: ../shared/captures is absent");
    }
    let mut expected_rtcp = 0usize;
    let mut calls: Vec<String> = Vec::new();
    for input in &inputs {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_sipscope"))
            .args(["calls", "--format", "json"])
            .arg(input)
            .args(["--hep-send", &format!("udp:{listen}")])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        // Reports go for INVITE calls and calls with RTP.
        for c in doc["calls"].as_array().unwrap().iter().filter(|c| {
            c["first_method"] == "INVITE" || !c["media"].as_array().is_none_or(Vec::is_empty)
        }) {
            calls.push(c["call_id"].as_str().unwrap().to_string());
        }
        let sent: usize = stderr
            .split("failed; ")
            .nth(1)
            .and_then(|s| s.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{stderr}"));
        expected_rtcp += sent;
    }
    std::thread::sleep(std::time::Duration::from_millis(500));
    // db_text writes its tables out when kamailio stops.
    terminate(kamailio.id());
    kamailio.wait().unwrap();
    let rows = |table: &str| -> Vec<(String, i64, serde_json::Value)> {
        let text = std::fs::read_to_string(db.join(table)).unwrap();
        text.lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                // id:date:micro_ts:correlation_id:…:type:node:msg, ':' escaped as '\:'.
                let fields: Vec<String> = split_escaped(l);
                let msg = fields.last().unwrap().clone();
                (
                    fields[3].clone(),
                    fields[10].parse().unwrap(),
                    serde_json::from_str(&msg).unwrap_or_else(|e| panic!("{e}: {msg}")),
                )
            })
            .collect()
    };
    let logs = rows("logs_capture");
    // One quality report per call, under its Call-ID, with the verdict and the streams.
    assert_eq!(logs.len(), calls.len(), "{logs:?}");
    for call_id in &calls {
        let (_, kind, report) = logs
            .iter()
            .find(|(c, _, _)| c == call_id)
            .unwrap_or_else(|| panic!("no report for {call_id}: {logs:?}"));
        assert_eq!(*kind, 5, "sipcapture's type for HEP 100");
        assert_eq!(report["call_id"], *call_id);
        assert!(
            report["verdict"]
                .as_str()
                .unwrap()
                .starts_with("Call answered")
        );
        assert!(!report["streams"].as_array().unwrap().is_empty());
    }
    let loss = logs
        .iter()
        .find(|(_, _, r)| r["anomalies"].to_string().contains("packet_loss"))
        .expect("the lossy sample's report names its loss");
    assert!(loss.2["mos"].as_f64().unwrap() < 4.0);
    // Every RTCP compound sent with a correlation id is stored under the call it belongs to
    // (sipcapture refuses the ones without).
    let rtcp = rows("rtcp_capture");
    if rtcp_capture.is_some() {
        assert!(
            rtcp.len() >= expected_rtcp - 1 && !rtcp.is_empty(),
            "{} of {expected_rtcp}",
            rtcp.len()
        );
        for (call_id, kind, json) in &rtcp {
            assert_eq!(*kind, 3, "sipcapture's type for HEP 5");
            // The call's own report counts RTCP reports on its streams.
            let report = &logs.iter().find(|(c, _, _)| c == call_id).unwrap().2;
            let counted: u64 = report["streams"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["rtcp_reports"].as_u64().unwrap())
                .sum();
            assert!(counted > 0, "{call_id}");
            assert!(matches!(json["type"].as_u64(), Some(200 | 201)), "{json}");
        }
    }
}

/// Ends a child process with SIGTERM (so that it writes its files), through `kill(1)`.
fn terminate(pid: u32) {
    let status = std::process::Command::new("kill")
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

/// A db_text line's fields: split on ':' not escaped as '\:'.
fn split_escaped(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    fields.last_mut().unwrap().push(n);
                }
            }
            ':' => fields.push(String::new()),
            c => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}
