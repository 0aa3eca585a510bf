//! Ladder exports (`sipscope flow --format text|svg|mermaid`) from the samples: the SVG is
//! well-formed XML with one arrow per message, the Mermaid diagram has one arrow statement per
//! message, anomalies are placed where they happen, and hostile strings cannot inject markup.

use crate::common;

use sipscope::diagnose::DiagnoseConfig;
use sipscope::engine::{Engine, EngineConfig};
use sipscope::export::diagram::{self, Format};
use sipscope::flow::Call;

fn render(engine: &Engine, calls: &[&Call], format: Format) -> String {
    let nows = vec![engine.now(); calls.len()];
    let mut out = Vec::new();
    diagram::write(calls, &nows, &DiagnoseConfig::default(), format, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

fn classes<'a>(n: &roxmltree::Node<'a, 'a>) -> Vec<&'a str> {
    n.attribute("class")
        .map(|c| c.split_whitespace().collect())
        .unwrap_or_default()
}

/// Per call in the SVG: (Call-ID, message arrows, missing markers by kind).
fn svg_calls(svg: &str) -> Vec<(String, usize, Vec<String>)> {
    let doc = roxmltree::Document::parse(svg).expect("the SVG is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    assert!(
        doc.descendants()
            .all(|n| !n.has_tag_name("script") && !n.has_tag_name("foreignObject")),
        "no active content"
    );
    doc.descendants()
        .filter(|n| n.has_tag_name("g") && classes(n).contains(&"call"))
        .map(|call| {
            let arrows = call
                .children()
                .filter(|n| n.has_tag_name("g") && classes(n).contains(&"message"))
                .filter(|g| {
                    // Each message group draws exactly one line (or a loop path).
                    g.children()
                        .filter(|c| c.has_tag_name("line") || c.has_tag_name("path"))
                        .count()
                        == 1
                })
                .count();
            let missing = call
                .children()
                .filter(|n| n.has_tag_name("g") && classes(n).contains(&"missing"))
                .map(|g| g.attribute("data-kind").unwrap_or("").to_string())
                .collect();
            let id = call.attribute("data-call-id").unwrap_or("").to_string();
            (id, arrows, missing)
        })
        .collect()
}

#[test]
fn svg_is_xml_with_one_arrow_per_message() {
    let mut checked = 0;
    for path in common::captures_in(&common::samples()) {
        let (engine, _) = common::analyse(&path);
        let calls = engine.calls();
        if calls.is_empty() {
            continue;
        }
        let svg = render(&engine, &calls, Format::Svg);
        let drawn = svg_calls(&svg);
        assert_eq!(drawn.len(), calls.len(), "{}", path.display());
        for (call, (id, arrows, _)) in calls.iter().zip(&drawn) {
            assert_eq!(id, &*call.call_id, "{}", path.display());
            assert_eq!(
                *arrows,
                call.messages().len(),
                "{}: {id}: one arrow per message",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} samples had calls");
}

#[test]
fn missing_messages_are_drawn_where_they_should_be() {
    for (sample, kind) in [
        ("missing-ack.pcap", "missing_ack"),
        ("proxy-408.pcap", "no_final_response"),
        ("prack-missing.pcap", "prack_missing"),
    ] {
        let (engine, _) = common::analyse(&common::samples().join(sample));
        let calls = engine.calls();
        let drawn = svg_calls(&render(&engine, &calls, Format::Svg));
        assert!(
            drawn.iter().any(|(_, _, m)| m.iter().any(|k| k == kind)),
            "{sample}: {drawn:?}"
        );
        let mermaid = render(&engine, &calls, Format::Mermaid);
        assert!(
            mermaid
                .lines()
                .any(|l| l.contains("--x") && l.contains(kind)),
            "{sample}:\n{mermaid}"
        );
        let text = render(&engine, &calls, Format::Text);
        assert!(
            text.lines().any(|l| l.contains('┄') && l.contains(kind)),
            "{sample}:\n{text}"
        );
    }
    // A clean call has no marker.
    let (engine, _) = common::analyse(&common::samples().join("answered-udp.pcap"));
    let calls = engine.calls();
    assert!(
        svg_calls(&render(&engine, &calls, Format::Svg))
            .iter()
            .all(|(_, _, m)| m.is_empty())
    );
}

#[test]
fn mermaid_has_one_arrow_statement_per_message() {
    for path in common::captures_in(&common::samples()) {
        let (engine, _) = common::analyse(&path);
        let calls = engine.calls();
        if calls.is_empty() {
            continue;
        }
        let text = render(&engine, &calls, Format::Mermaid);
        let diagrams: Vec<&str> = text.split("\n\n").collect();
        assert_eq!(diagrams.len(), calls.len(), "{}", path.display());
        for (call, d) in calls.iter().zip(diagrams) {
            let mut lines = d.lines();
            assert_eq!(lines.next(), Some("sequenceDiagram"));
            let (mut arrows, mut media) = (0, 0);
            for line in lines {
                let t = line.trim_start();
                // Every statement is one the diagram language knows.
                assert!(
                    t.starts_with("%% ")
                        || t.starts_with("participant P")
                        || t.starts_with("Note right of P")
                        || t.starts_with('P'),
                    "{}: {line}",
                    path.display()
                );
                if t.starts_with('P') && !t.starts_with("participant") && !t.contains("--x") {
                    if t.contains("-)") {
                        media += 1;
                    } else {
                        arrows += 1;
                    }
                }
            }
            assert_eq!(arrows, call.messages().len(), "{}", path.display());
            // Each stream once, with each of its RTCP reports and DTMF digits.
            let marks: usize = call
                .media
                .iter()
                .map(|s| 1 + s.rtcp.len() + s.dtmf.len())
                .sum();
            assert_eq!(media, marks, "{}", path.display());
        }
    }
}

#[test]
fn text_ladders_flag_anomalies_in_place() {
    for sample in ["missing-ack", "proxy-408", "loop-482"] {
        let (engine, _) = common::analyse(&common::samples().join(format!("{sample}.pcap")));
        let calls = engine.calls();
        insta::assert_snapshot!(
            format!("text_{sample}"),
            render(&engine, &calls, Format::Text)
        );
    }
}

#[test]
fn hostile_strings_cannot_inject_markup() {
    use sipscope::synth::script::Script;
    let evil = "</text><script>alert(1)</script>\u{1b}[2J\u{202e};#x%%";
    let mut s = Script::new();
    let (a, b) = ("203.0.113.1:5060", "203.0.113.2:5060");
    s.udp(
        0,
        a,
        b,
        &format!(
            "INVITE sip:bob@x SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.1;branch=z9hG4bKx\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:bob@x>\r\nCall-ID: {evil}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        ),
    );
    s.udp(
        1_000,
        b,
        a,
        &format!(
            "SIP/2.0 486 {evil}\r\nVia: SIP/2.0/UDP 203.0.113.1;branch=z9hG4bKx\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:bob@x>;tag=2\r\nCall-ID: {evil}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n"
        ),
    );
    let mut src = sipscope::capture::VecSource::new(s.frames().to_vec());
    let mut engine = Engine::new(EngineConfig::default());
    engine.run(&mut src);
    let calls = engine.calls();
    assert_eq!(calls.len(), 1);
    let svg = render(&engine, &calls, Format::Svg);
    let drawn = svg_calls(&svg);
    assert_eq!(drawn[0].1, 2);
    assert!(!svg.contains('\u{1b}') && !svg.contains('\u{202e}'));
    assert!(!svg.contains("<script"), "{svg}");
    let mermaid = render(&engine, &calls, Format::Mermaid);
    for line in mermaid.lines().skip(1) {
        // The wire text follows the statement's `: `. With Mermaid's entity codes taken out,
        // none of it is syntax: no `;` (a statement break), `#`, `<`, `>` or `%` is left.
        let Some((_, wire)) = line.split_once(": ") else {
            continue;
        };
        let mut rest = wire.to_string();
        for code in ["#59;", "#35;", "#lt;", "#gt;", "#37;"] {
            rest = rest.replace(code, "");
        }
        assert!(
            !rest.contains([';', '#', '<', '>', '%', '\u{1b}']),
            "{line}"
        );
    }
    let text = render(&engine, &calls, Format::Text);
    assert!(!text.contains('\u{1b}') && text.contains("\\x1b"));
}

/// `flow --legs`: a B2BUA's two legs, tied by X-Call-ID, drawn as one ladder (text, SVG and
/// Mermaid name the linked leg); without the flag each leg is its own ladder.
#[test]
fn flow_draws_linked_legs_with_their_call() {
    use sipscope::synth::script::{Script, sip};
    let mut s = Script::new();
    let msg = |s: &mut Script, at, from: &str, to: &str, id: &str, link: Option<&str>| {
        let mut headers = vec![
            ("Via", format!("SIP/2.0/UDP {from};branch=z9hG4bK{id}{at}")),
            ("From", "<sip:alice@x>;tag=1".to_string()),
            ("To", "<sip:bob@x>".to_string()),
            ("Call-ID", id.to_string()),
            ("CSeq", "1 OPTIONS".to_string()),
        ];
        if let Some(l) = link {
            headers.push(("X-Call-ID", l.to_string()));
        }
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        s.udp(at, from, to, &sip("OPTIONS sip:bob@x SIP/2.0", &h, ""));
    };
    msg(&mut s, 0, "192.0.2.1:5060", "192.0.2.2:5060", "leg-a", None);
    msg(
        &mut s,
        10,
        "192.0.2.2:5080",
        "192.0.2.3:5060",
        "leg-b",
        Some("leg-a"),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("b2bua.pcap");
    s.write_pcap(&mut std::fs::File::create(&path).unwrap())
        .unwrap();
    let run = |args: &[&str]| {
        let out = assert_cmd::Command::cargo_bin("sipscope")
            .unwrap()
            .args(args)
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let merged = run(&["flow", "--legs", "--call", "leg-a"]);
    assert!(
        merged.contains("Linked legs (drawn with them): leg-b"),
        "{merged}"
    );
    assert!(
        merged.contains("192.0.2.3:5060"),
        "the leg's endpoint has a column"
    );
    assert_eq!(merged.matches("OPTIONS").count(), 2, "{merged}");
    let alone = run(&["flow", "--call", "leg-a"]);
    assert!(
        !alone.contains("leg-b") && !alone.contains("192.0.2.3"),
        "{alone}"
    );
    assert!(
        run(&["flow", "--legs", "--call", "leg-a", "--format", "mermaid"])
            .contains("%% Linked leg: leg-b")
    );
    assert!(
        run(&["flow", "--legs", "--call", "leg-a", "--format", "svg"])
            .contains("with linked legs leg-b")
    );
}

/// Streams are drawn where they begin, between the media addresses, with their RTCP reports
/// and DTMF digits; the media columns frame the signalling path (caller's at the left,
/// callee's at the right) and fold into the host's column per host; a media anomaly flags its
/// evidence stream in place.
#[test]
fn streams_join_the_ladder_with_their_marks() {
    use sipscope::export::ladder::{self, ArrowKind};
    let (engine, _) = common::analyse(&common::samples().join("media-dtmf.pcap"));
    let calls = engine.calls();
    let call = calls[0];
    insta::assert_snapshot!("text_media-dtmf", render(&engine, &calls, Format::Text));
    let l = ladder::layout(call);
    let hops = sipscope::diagnose::HopGraph::build(call).endpoints;
    let caller_media = call
        .media
        .iter()
        .find(|s| s.direction == sipscope::media::Direction::CallerToCallee)
        .unwrap()
        .src;
    assert_eq!(l.columns.first(), Some(&caller_media));
    // The signalling columns keep their hop-graph order between the media columns.
    let sip: Vec<_> = l
        .columns
        .iter()
        .filter(|c| hops.contains(c))
        .copied()
        .collect();
    assert_eq!(sip, hops);
    assert_eq!(l.columns.len(), hops.len() + 2);
    let streams = l
        .arrows
        .iter()
        .filter(|a| matches!(a.kind, ArrowKind::Stream { .. }))
        .count();
    let dtmf = l
        .arrows
        .iter()
        .filter(|a| a.kind == ArrowKind::Dtmf)
        .count();
    assert_eq!((streams, dtmf), (call.media.len(), 3));
    assert!(l.arrows.windows(2).all(|w| w[0].time <= w[1].time));
    let mut hosts = l.clone();
    ladder::per_host(&mut hosts);
    assert_eq!(hosts.columns.len(), 1, "one host on loopback: one column");

    let doc_text = render(&engine, &calls, Format::Svg);
    let doc = roxmltree::Document::parse(&doc_text).unwrap();
    let count = |class: &str, tag: &str| {
        doc.descendants()
            .filter(|n| n.has_tag_name(tag) && classes(n).contains(&class))
            .count()
    };
    assert_eq!(count("stream", "g"), call.media.len());
    assert_eq!(count("band", "rect"), call.media.len());
    assert_eq!(count("dtmf", "g"), 3);

    // Loss: the stream that lost packets carries the anomaly's flag on its own line.
    let (engine, _) = common::analyse(&common::samples().join("media-loss.pcap"));
    let calls = engine.calls();
    let text = render(&engine, &calls, Format::Text);
    let flagged = text
        .lines()
        .find(|l| l.contains("RTP ") && l.contains("packet_loss"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(flagged.contains('━'), "{flagged}");
    insta::assert_snapshot!("text_media-loss", text);
}

/// A codec name off the wire (an SDP rtpmap) is drawn on the stream's arrow: made visible and
/// escaped like every other wire string, in text, SVG and Mermaid.
#[test]
fn hostile_codec_names_in_streams_cannot_inject_markup() {
    // No `/` or space: an rtpmap name ends at them.
    let evil = "<script>x<\\text>\u{1b}[2J;#%&'\"";
    let (a, b) = ("203.0.113.1:5060", "203.0.113.2:5060");
    let sdp = |ip: &str, port: u16| {
        format!(
            "v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\nm=audio {port} RTP/AVP 96\r\na=rtpmap:96 {evil}/8000\r\n"
        )
    };
    let msg = |start: &str, to_tag: &str, body: &str| {
        format!(
            "{start}\r\nVia: SIP/2.0/UDP 203.0.113.1;branch=z9hG4bKx\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:bob@x>{to_tag}\r\nCall-ID: evil-codec\r\nCSeq: 1 INVITE\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let mut frames = Vec::new();
    let invite = msg("INVITE sip:bob@x SIP/2.0", "", &sdp("203.0.113.1", 4000));
    frames.push(common::udp_frame(1, 0, a, b, invite.as_bytes()));
    let ok = msg("SIP/2.0 200 OK", ";tag=2", &sdp("203.0.113.2", 5000));
    frames.push(common::udp_frame(2, 100, b, a, ok.as_bytes()));
    for i in 0..50u16 {
        let mut rtp = vec![0x80, 96];
        rtp.extend_from_slice(&i.to_be_bytes());
        rtp.extend_from_slice(&(u32::from(i) * 160).to_be_bytes());
        rtp.extend_from_slice(&7u32.to_be_bytes());
        rtp.extend_from_slice(&[0xd5; 160]);
        frames.push(common::udp_frame(
            3 + u64::from(i),
            200 + i64::from(i) * 20,
            "203.0.113.2:5000",
            "203.0.113.1:4000",
            &rtp,
        ));
    }
    let mut src = sipscope::capture::VecSource::new(frames);
    let mut engine = Engine::new(EngineConfig::default());
    engine.run(&mut src);
    let calls = engine.calls();
    assert_eq!(calls[0].media.len(), 1, "the stream is tied to the call");
    let svg = render(&engine, &calls, Format::Svg);
    roxmltree::Document::parse(&svg).expect("well-formed");
    assert!(svg.contains("class=\"stream"), "{svg}");
    assert!(!svg.contains("<script") && !svg.contains('\u{1b}'), "{svg}");
    let text = render(&engine, &calls, Format::Text);
    assert!(text.contains("RTP ") && !text.contains('\u{1b}'), "{text}");
    let mermaid = render(&engine, &calls, Format::Mermaid);
    let stream = mermaid.lines().find(|l| l.contains("-)")).unwrap();
    let mut rest = stream.split_once(": ").unwrap().1.to_string();
    for code in ["#59;", "#35;", "#lt;", "#gt;", "#37;"] {
        rest = rest.replace(code, "");
    }
    assert!(
        !rest.contains([';', '#', '<', '>', '%', '\u{1b}']),
        "{stream}"
    );
    assert!(text.contains("RTP <script>"), "the codec is named: {text}");
}
