//! Differential tests against tshark: for every capture in `samples/` and in
//! `../shared/captures/` (when present), sipscope and tshark must see the same SIP messages in
//! the same frames, with the same Call-IDs and the same methods and status codes.
//!
//! Compared frame by frame: in each frame, the multiset of Call-IDs and the multiset of
//! method/status labels. TCP messages are reported in the frame that completes them, as tshark
//! does. Where tshark is wrong and sipscope right, the exception is written down below.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;

type PerFrame = BTreeMap<u64, (Vec<String>, Vec<String>)>;

/// Captures whose encapsulation belongs to later work (tunnels, SCTP, WebSocket): for these
/// sipscope must report a subset of what tshark reports, never something tshark does not see.
const LATER: &[(&str, &str)] = &[
    ("arkime/gtp-iphone.pcap", "GTP-U tunnel"),
    ("heplify/erspan_sip_ipv4_udp.pcapng", "ERSPAN over GRE"),
    ("heplify/sip_sctp.pcap", "SIP over SCTP"),
    ("heplify/sip_tcp_websocket.pcap", "SIP over WebSocket"),
    ("ndpi/gre.pcapng", "GRE/PPP tunnel"),
    ("pcapplusplus/sip_reqs.pcap", "PPPoE"),
    ("sipnab/DTMFsipinfo.pcap", "PPPoE"),
    ("sngrep/ipip.pcap", "IP-in-IP"),
];

/// Frames tshark gets wrong, with the reason. sipscope's answer for these is asserted by the
/// regression tests in `tests/known_cases.rs`.
const TSHARK_WRONG: &[(&str, u64, &str)] = &[
    // A NUL byte in the status line ("401 Unauthori%s\0"): tshark drops the frame from SIP;
    // sipscope keeps the message (lenient parsing) and counts it.
    ("ndpi/fuzz-2006-06-26-2594.pcap", 108, "NUL in status line"),
    ("ndpi/fuzz-2006-06-26-2594.pcap", 454, "NUL in status line"),
    ("ndpi/fuzz-2006-06-26-2594.pcap", 348, "NUL in status line"),
    // A NUL inside the Request-URI: tshark shows plain UDP; sipscope keeps the request as a
    // malformed message (its Call-ID header is mangled too, so it belongs to no call).
    ("ndpi/fuzz-2006-06-26-2594.pcap", 346, "NUL in request line"),
    // The UDP length field (9587) exceeds the IP payload: tshark stops dissecting; sipscope
    // trusts the IP length, which is authoritative, and keeps the REGISTER.
    (
        "ndpi/fuzz-2006-06-26-2594.pcap",
        154,
        "UDP length larger than IP payload",
    ),
];

fn tshark(path: &Path) -> PerFrame {
    let out = Command::new("tshark")
        .args(["-r"])
        .arg(path)
        .args([
            "-o",
            "tcp.try_heuristic_first:TRUE",
            "-o",
            "udp.try_heuristic_first:TRUE",
            "-Y",
            "sip",
            "-T",
            "fields",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=\u{1}",
            "-E",
            "separator=\u{2}",
            "-e",
            "frame.number",
            "-e",
            "frame.protocols",
            "-e",
            "sip.Call-ID",
            "-e",
            "sip.Method",
            "-e",
            "sip.Status-Code",
            "-e",
            "sip.Request-Line",
            "-e",
            "sip.Status-Line",
        ])
        .output()
        .expect("run tshark");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut frames = PerFrame::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split('\u{2}').collect();
        let list = |i: usize| -> Vec<String> {
            f.get(i)
                .map(|v| {
                    v.split('\u{1}')
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let Ok(frame) = f[0].parse::<u64>() else {
            continue;
        };
        // SIP quoted inside an ICMP error is not a message (the packet never reached a SIP
        // stack); tshark decodes it anyway.
        if f.get(1).is_some_and(|p| p.contains(":icmp:")) {
            continue;
        }
        let starts = list(5).len() + list(6).len();
        if starts == 0 {
            continue;
        }
        let mut cids: Vec<String> = list(2).into_iter().map(|c| normalise(&c)).collect();
        let mut labels = list(3);
        labels.extend(list(4));
        cids.sort();
        labels.sort();
        frames.insert(frame, (cids, labels));
    }
    frames
}

/// tshark stops a string at a NUL byte and replaces invalid UTF-8; do the same to ours.
fn normalise(call_id: &str) -> String {
    let cut = call_id.split('\0').next().unwrap_or("");
    cut.trim().to_string()
}

fn ours(path: &Path) -> PerFrame {
    let (engine, _) = common::analyse(path);
    let mut frames = PerFrame::new();
    let mut add = |packet: u64, cid: Option<&str>, label: String| {
        let e = frames.entry(packet).or_default();
        if let Some(c) = cid {
            e.0.push(normalise(c));
        }
        e.1.push(label);
    };
    for call in engine.calls() {
        for m in &call.messages {
            let label = m
                .method()
                .map(str::to_string)
                .unwrap_or_else(|| m.status().unwrap_or(0).to_string());
            add(m.packet, Some(&*call.call_id), label);
        }
    }
    for o in engine.orphans() {
        let m = &o.message;
        let label = m
            .method()
            .map(str::to_string)
            .unwrap_or_else(|| m.status().unwrap_or(0).to_string());
        add(m.packet, None, label);
    }
    for v in frames.values_mut() {
        v.0.sort();
        v.1.sort();
    }
    frames
}

fn compare(root: &Path, path: &Path) -> Vec<String> {
    let rel = path
        .strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/");
    let theirs = tshark(path);
    let mine = ours(path);
    let later = LATER.iter().any(|(f, _)| *f == rel);
    let wrong: BTreeSet<u64> = TSHARK_WRONG
        .iter()
        .filter(|(f, _, _)| *f == rel)
        .map(|(_, n, _)| *n)
        .collect();
    let mut problems = Vec::new();
    let frames: BTreeSet<u64> = theirs.keys().chain(mine.keys()).copied().collect();
    for f in frames {
        if wrong.contains(&f) {
            continue;
        }
        let (t, o) = (theirs.get(&f), mine.get(&f));
        let ok = match (t, o) {
            (Some(t), Some(o)) => t == o,
            (Some(_), None) => later,
            (None, Some(_)) => false,
            (None, None) => true,
        };
        if !ok {
            problems.push(format!("{rel} frame {f}: tshark {t:?} sipscope {o:?}"));
        }
    }
    problems
}

fn check_dir(root: &Path) {
    let files = common::captures_in(root);
    assert!(!files.is_empty(), "no captures in {}", root.display());
    let mut problems = Vec::new();
    for f in &files {
        problems.extend(compare(root, f));
    }
    assert!(
        problems.is_empty(),
        "{} frames differ from tshark:\n{}",
        problems.len(),
        problems
            .iter()
            .take(40)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn samples_match_tshark() {
    if !common::require("tshark") {
        return;
    }
    check_dir(&common::samples());
}

#[test]
fn shared_captures_match_tshark() {
    let Some(root) = common::shared_captures() else {
        eprintln!("skipped: ../shared/captures is absent");
        return;
    };
    if !common::require("tshark") {
        return;
    }
    check_dir(&root);
}
