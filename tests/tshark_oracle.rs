//! Differential tests against tshark: for every capture in `samples/` and in
//! `../shared/captures/` (when present), sipscope and tshark must see the same SIP messages in
//! the same frames, with the same Call-IDs and the same methods and status codes.
//!
//! Compared frame by frame: in each frame, the multiset of Call-IDs and the multiset of
//! method/status labels. TCP messages are reported in the frame that completes them, as tshark
//! does. Where tshark is wrong and sipscope right, the exception is written down below.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

type PerFrame = BTreeMap<u64, (Vec<String>, Vec<String>)>;

/// Captures whose encapsulation belongs to later work (tunnels, SCTP, WebSocket): for these
/// sipscope must report a subset of what tshark reports, never something tshark does not see.
const LATER: &[(&str, &str)] = &[];

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
    // The BYE after a TCP segment the capture lost (the ACK, left out by the recording's
    // capture filter): tshark waits for the missing bytes and never shows the BYE; sipscope
    // gives up on the hole after the gap timeout (counted in tcp_gap_bytes and the call's
    // lost_bytes) and reads the BYE.
    ("tcp-ack-not-captured.pcap", 5, "segment after a hole"),
];

fn tshark(path: &Path) -> PerFrame {
    let mut options = common::TSHARK_AS_SIPSCOPE.to_vec();
    options.extend(["-Y", "sip"]);
    let rows = common::tshark_fields(
        path,
        &options,
        &[
            "frame.number",
            "frame.protocols",
            "sip.Call-ID",
            "sip.Method",
            "sip.Status-Code",
            "sip.Request-Line",
            "sip.Status-Line",
        ],
    );
    let mut frames = PerFrame::new();
    for f in rows {
        let list = |i: usize| -> Vec<String> { f.get(i).cloned().unwrap_or_default() };
        let Some(frame) = f
            .first()
            .and_then(|v| v.first())
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        // SIP quoted inside an ICMP error is not a message (the packet never reached a SIP
        // stack); tshark decodes it anyway.
        if list(1).iter().any(|p| p.contains(":icmp:")) {
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
        for m in call.messages() {
            add(m.packet, Some(&*call.call_id), label(m));
        }
    }
    for o in engine.orphans() {
        add(o.message.packet, None, label(&o.message));
    }
    for v in frames.values_mut() {
        v.0.sort();
        v.1.sort();
    }
    frames
}

/// A method, or a status code, as tshark's `sip.Method` / `sip.Status-Code` show it.
fn label(m: &sipscope::flow::SipMessage) -> String {
    m.method()
        .map(str::to_string)
        .unwrap_or_else(|| m.status().unwrap_or(0).to_string())
}

/// A capture's path below `root`, with `/` between folders, as the tables above name it.
fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// The frames of `rel` where tshark is wrong ([`TSHARK_WRONG`]).
fn tshark_wrong(rel: &str) -> BTreeSet<u64> {
    TSHARK_WRONG
        .iter()
        .filter(|(f, _, _)| *f == rel)
        .map(|(_, n, _)| *n)
        .collect()
}

fn compare(root: &Path, path: &Path) -> Vec<String> {
    let rel = relative(root, path);
    let theirs = tshark(path);
    let mine = ours(path);
    let later = LATER.iter().any(|(f, _)| *f == rel);
    let wrong = tshark_wrong(&rel);
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
    assert_none(&problems, "frames differ from tshark");
}

/// Fails listing the first 40 problems, when there are any.
fn assert_none(problems: &[String], what: &str) {
    let first: Vec<&str> = problems.iter().take(40).map(String::as_str).collect();
    assert!(
        problems.is_empty(),
        "{} {what}:\n{}",
        problems.len(),
        first.join("\n")
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

/// Per SIP-carrying frame (the frame that completes the messages, as tshark reports them), the
/// set of frames that carried those messages: tshark's IP fragments and TCP segments (each
/// segment expanded into its own fragments), or the frame alone.
type Carriers = BTreeMap<u64, BTreeSet<u64>>;

fn tshark_carriers(path: &Path) -> Carriers {
    let rows = common::tshark_fields(
        path,
        common::TSHARK_AS_SIPSCOPE,
        &[
            "frame.number",
            "frame.protocols",
            "ip.fragment",
            "ipv6.fragment",
            "sctp.fragment",
            "tcp.segment",
            "sip.Request-Line",
            "sip.Status-Line",
        ],
    );
    let numbers = |v: Option<&Vec<String>>| -> Vec<u64> {
        v.into_iter()
            .flatten()
            .filter_map(|n| n.parse().ok())
            .collect()
    };
    let mut fragments: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    let mut sip: Vec<(u64, Vec<u64>)> = Vec::new();
    for f in rows {
        let Some(frame) = f
            .first()
            .and_then(|v| v.first())
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        let mut frags = numbers(f.get(2));
        frags.extend(numbers(f.get(3)));
        let sctp = numbers(f.get(4));
        if !frags.is_empty() {
            fragments.insert(frame, frags);
        }
        let protocols = f.get(1).and_then(|v| v.first());
        let is_sip = protocols.is_some_and(|p| p.ends_with(":sip") || p.contains(":sip:"))
            && !protocols.is_some_and(|p| p.contains(":icmp:"))
            && (f.get(6).is_some_and(|v| !v.is_empty()) || f.get(7).is_some_and(|v| !v.is_empty()));
        if is_sip {
            // An SCTP user message in several chunks: its frames, like a TCP message's.
            let mut segments = numbers(f.get(5));
            segments.extend(sctp);
            sip.push((frame, segments));
        }
    }
    let mut carriers = Carriers::new();
    for (frame, segments) in sip {
        let set = carriers.entry(frame).or_default();
        set.insert(frame);
        for s in segments.into_iter().chain([frame]) {
            set.insert(s);
            set.extend(fragments.get(&s).into_iter().flatten().copied());
        }
    }
    carriers
}

fn our_carriers(path: &Path) -> Carriers {
    let (engine, _) = common::analyse(path);
    let mut carriers = Carriers::new();
    let calls = engine.calls();
    let messages = calls
        .iter()
        .flat_map(|c| c.messages().iter())
        .chain(engine.orphans().iter().map(|o| &o.message));
    for m in messages {
        assert!(
            m.frames().contains(&m.packet),
            "{}: message in frame {} does not list its own frame: {:?}",
            path.display(),
            m.packet,
            m.frames()
        );
        carriers
            .entry(m.packet)
            .or_default()
            .extend(m.frames().iter().copied());
    }
    carriers
}

fn compare_carriers(root: &Path, path: &Path) -> Vec<String> {
    let rel = relative(root, path);
    if LATER.iter().any(|(f, _)| *f == rel) {
        return Vec::new();
    }
    let theirs = tshark_carriers(path);
    let mine = our_carriers(path);
    let wrong = tshark_wrong(&rel);
    let mut problems = Vec::new();
    for (frame, t) in &theirs {
        if wrong.contains(frame) {
            continue;
        }
        if let Some(o) = mine.get(frame)
            && o != t
        {
            problems.push(format!("{rel} frame {frame}: tshark {t:?} sipscope {o:?}"));
        }
    }
    problems
}

fn check_carriers(root: &Path, files: &[std::path::PathBuf]) {
    let mut problems = Vec::new();
    for f in files {
        problems.extend(compare_carriers(root, f));
    }
    assert_none(&problems, "frames carry different frame lists");
}

/// Every message lists the frames that carried it (each IP fragment, each TCP segment), the
/// same frames tshark lists for its reassembly: the pcap export writes exactly these.
#[test]
fn message_frames_match_tshark_on_samples_and_synthetic_reassembly() {
    if !common::require("tshark") {
        return;
    }
    let (dir, path) = common::synth_capture(|c| {
        c.calls = 300;
        c.tcp_share = 0.5;
        c.fragment_share = 0.5;
    });
    let synthetic = our_carriers(&path);
    assert!(
        synthetic.values().filter(|s| s.len() > 2).count() > 50,
        "the synthetic capture should hold many messages carried by several frames"
    );
    let theirs = tshark_carriers(&path);
    assert!(
        theirs.values().filter(|s| s.len() > 2).count() > 50,
        "tshark should see the same reassemblies"
    );
    assert_eq!(
        theirs.len(),
        synthetic.len(),
        "frames completing SIP messages"
    );
    check_carriers(dir.path(), std::slice::from_ref(&path));
    // The same synthetic capture (TCP out of order, retransmitted, fragments in reverse
    // order) also holds the same messages as tshark sees.
    let problems = compare(dir.path(), &path);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let samples = common::samples();
    check_carriers(&samples, &common::captures_in(&samples));
}

#[test]
fn message_frames_match_tshark_on_shared_captures() {
    let Some(root) = common::shared_captures() else {
        eprintln!("skipped: ../shared/captures is absent");
        return;
    };
    if !common::require("tshark") {
        return;
    }
    check_carriers(&root, &common::captures_in(&root));
}
