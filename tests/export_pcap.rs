//! `sipscope export --format pcap`: the frames of the selected calls written back as a capture.
//! Checked by reading the output again, with sipscope and with tshark: the same calls, exactly
//! the frames that carried their messages (every fragment and segment), nothing else.

use crate::common;

use assert_cmd::Command;
use sipscope::capture::{
    CaptureWriter, FileSource, FrameSource, LinkType, OwnedFrame, WriterOptions,
};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn sipscope() -> Command {
    Command::cargo_bin("sipscope").unwrap()
}

fn run(args: &[&str]) -> Vec<u8> {
    let out = sipscope().args(args).output().unwrap();
    assert!(
        out.status.success(),
        "sipscope {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// The `calls` table without its index column, which depends on nothing but row order.
fn calls_csv(path: &Path) -> String {
    let text =
        String::from_utf8(run(&["calls", path.to_str().unwrap(), "--format", "csv"])).unwrap();
    text.lines()
        .map(|l| l.split_once(',').map_or(l, |(_, rest)| rest).to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every frame the messages of the selected calls came in (per source 0), from the JSON.
fn frames_of(path: &Path, extra: &[&str]) -> BTreeSet<u64> {
    let mut args = vec!["export", path.to_str().unwrap(), "--format", "json"];
    args.extend_from_slice(extra);
    let doc: serde_json::Value = serde_json::from_slice(&run(&args)).unwrap();
    doc["calls"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["messages"].as_array().unwrap().iter())
        .flat_map(|m| m["frames"].as_array().unwrap().iter())
        .map(|f| f.as_u64().unwrap())
        .collect()
}

fn read_frames(path: &Path) -> Vec<OwnedFrame> {
    let mut src = FileSource::open(path.to_str().unwrap(), 0).unwrap();
    let mut out = Vec::new();
    while let Some(f) = src.next_frame() {
        out.push(f.to_owned());
    }
    out
}

fn export(input: &[&Path], out: &Path, extra: &[&str]) {
    let mut args: Vec<&str> = vec!["export"];
    args.extend(input.iter().map(|p| p.to_str().unwrap()));
    args.extend(["--format", "pcap", "-o", out.to_str().unwrap()]);
    args.extend_from_slice(extra);
    run(&args);
}

fn synthetic(dir: &Path) -> PathBuf {
    let path = dir.join("reassembly.pcap");
    let cfg = {
        let mut built = sipscope::synth::SynthConfig::default();
        built.calls = 200;
        built.tcp_share = 0.5;
        built.fragment_share = 0.5;
        built
    };
    let mut f = std::fs::File::create(&path).unwrap();
    sipscope::synth::write_pcap(&cfg, &mut f).unwrap();
    path
}

/// Exporting every call and reading the export gives the same calls; the export holds
/// exactly the frames that carried SIP and the calls' RTP, byte for byte.
#[test]
fn exporting_all_calls_round_trips_samples_and_reassembly() {
    let dir = tempfile::tempdir().unwrap();
    let mut inputs = common::captures_in(&common::samples());
    inputs.push(synthetic(dir.path()));
    for input in &inputs {
        let out = dir.path().join("out.pcap");
        export(&[input], &out, &[]);
        let name = input.file_name().unwrap().to_string_lossy();
        assert_eq!(calls_csv(input), calls_csv(&out), "{name}: calls differ");
        let wanted = frames_of(input, &[]);
        // The media samples hold nothing but their calls' SIP and RTP: every frame goes.
        let media = name.starts_with("media-") || name == "sbc-topoh.pcap";
        let original: Vec<OwnedFrame> = read_frames(input)
            .into_iter()
            .filter(|f| media || wanted.contains(&f.number))
            .collect();
        let written = read_frames(&out);
        assert_eq!(written.len(), original.len(), "{name}: frame count");
        for (w, o) in written.iter().zip(&original) {
            assert_eq!(
                (w.time, w.link, &w.data, w.orig_len),
                (o.time, o.link, &o.data, o.orig_len),
                "{name}: frame {} was not copied as captured",
                o.number
            );
        }
    }
}

/// One call out of many: only its frames, and tshark reads them as that call's messages
/// (reassembling the fragments and segments it was given).
#[test]
fn exporting_one_call_writes_its_frames_only_and_tshark_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let input = synthetic(dir.path());
    // A call over TCP with a fragmented or multi-segment message.
    let doc: serde_json::Value = serde_json::from_slice(&run(&[
        "export",
        input.to_str().unwrap(),
        "--format",
        "json",
    ]))
    .unwrap();
    let call =
        doc["calls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| {
                c["messages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|m| m["transport"] == "TCP" && m["frames"].as_array().unwrap().len() > 1)
                    && c["messages"].as_array().unwrap().iter().any(|m| {
                        m["transport"] == "UDP" && m["frames"].as_array().unwrap().len() > 1
                    })
            })
            .or_else(|| {
                doc["calls"].as_array().unwrap().iter().find(|c| {
                    c["messages"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|m| m["frames"].as_array().unwrap().len() > 1)
                })
            })
            .expect("a call with a message over several frames");
    let call_id = call["call_id"].as_str().unwrap();
    let messages = call["messages"].as_array().unwrap().len();
    let out = dir.path().join("one.pcap");
    export(&[&input], &out, &["--call", call_id]);
    let wanted = frames_of(&input, &["--call", call_id]);
    assert_eq!(read_frames(&out).len(), wanted.len());
    let text = calls_csv(&out);
    assert_eq!(text.lines().count(), 2, "one call:\n{text}");
    assert!(text.contains(call_id));
    if !common::require("tshark") {
        return;
    }
    let ids: Vec<String> = common::tshark_fields(
        &out,
        &["-o", "tcp.reassemble_out_of_order:TRUE", "-Y", "sip"],
        &["sip.Call-ID"],
    )
    .into_iter()
    .flatten()
    .flatten()
    .collect();
    assert_eq!(ids.len(), messages, "tshark sees every message of the call");
    assert!(ids.iter().all(|i| i == call_id));
}

/// Frames of several link types cannot share a pcap file: the export is pcapng, one
/// interface per link type; `-o *.pcapng` asks for pcapng anyway.
#[test]
fn several_link_types_make_a_pcapng() {
    let dir = tempfile::tempdir().unwrap();
    let eth = common::samples().join("answered-udp.pcap");
    // The same capture with its Ethernet headers stripped (raw IP), as a second input.
    let raw = dir.path().join("raw.pcap");
    let mut w = CaptureWriter::new(
        std::fs::File::create(&raw).unwrap(),
        WriterOptions::default(),
    );
    for f in read_frames(&eth) {
        assert_eq!(f.link, LinkType::ETHERNET);
        let stripped = OwnedFrame {
            link: LinkType::RAW,
            data: f.data[14..].to_vec(),
            orig_len: f.orig_len - 14,
            ..f
        };
        w.write(&stripped.as_frame()).unwrap();
    }
    w.finish().unwrap();
    let out = dir.path().join("both.pcap");
    export(&[&eth, &raw], &out, &[]);
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(
        &bytes[..4],
        &[0x0a, 0x0d, 0x0d, 0x0a],
        "a pcapng section header"
    );
    let links: BTreeSet<u32> = read_frames(&out).iter().map(|f| f.link.0).collect();
    assert_eq!(links, BTreeSet::from([1, 101]));
    assert_eq!(
        read_frames(&out).len(),
        read_frames(&eth).len() + read_frames(&raw).len()
    );

    let ng = dir.path().join("one.pcapng");
    export(&[&eth], &ng, &[]);
    let bytes = std::fs::read(&ng).unwrap();
    assert_eq!(&bytes[..4], &[0x0a, 0x0d, 0x0d, 0x0a]);
    assert_eq!(calls_csv(&ng), calls_csv(&eth));
}

#[test]
fn no_matching_call_gives_an_empty_capture() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("none.pcap");
    let input = common::samples().join("answered-udp.pcap");
    export(&[&input], &out, &["--call", "no-such-call"]);
    assert!(read_frames(&out).is_empty());
    assert_eq!(
        std::fs::read(&out).unwrap().len(),
        24,
        "a pcap header alone"
    );
}

#[test]
fn standard_input_is_refused_with_a_clear_error() {
    let input = std::fs::read(common::samples().join("answered-udp.pcap")).unwrap();
    let out = sipscope()
        .args(["export", "-", "--format", "pcap", "-o", "/dev/null"])
        .write_stdin(input)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("standard input"), "{err}");
}

/// Without `-o` the capture goes to standard output (a pipe here), ready for tshark -r -.
#[test]
fn writes_to_standard_output_when_piped() {
    let input = common::samples().join("busy-486.pcap");
    let bytes = run(&["export", input.to_str().unwrap(), "--format", "pcap"]);
    assert_eq!(&bytes[..4], &0xa1b2_c3d4u32.to_le_bytes());
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("piped.pcap");
    std::fs::write(&out, &bytes).unwrap();
    assert_eq!(calls_csv(&out), calls_csv(&input));
}

/// One call of two with RTP between the same ports: its SIP and its own RTP, not the other
/// call's, and the streams read back as they were (sngrep's "save with RTP").
#[test]
fn exporting_one_call_takes_its_rtp_along() {
    let dir = tempfile::tempdir().unwrap();
    let input = common::samples().join("media-none.pcap");
    let (engine, _) = common::analyse(&input);
    let calls = engine.calls();
    let (talking, silent) = (calls[0], calls[1]);
    assert_eq!(talking.media.len(), 2);
    for (call, rtp) in [(talking, 472), (silent, 0)] {
        let out = dir.path().join("one.pcap");
        export(&[&input], &out, &["--call", &call.call_id]);
        let written = read_frames(&out);
        assert_eq!(
            written.len(),
            call.messages().len() + rtp,
            "{}",
            call.call_id
        );
        let (back, _) = common::analyse(&out);
        let streams: Vec<(u64, i64)> = back.calls()[0]
            .media
            .iter()
            .map(|s| (s.packets, s.lost))
            .collect();
        let before: Vec<(u64, i64)> = call.media.iter().map(|s| (s.packets, s.lost)).collect();
        assert_eq!(streams, before);
    }
}
