//! Media analysis against its oracle and its samples: every RTP stream `tshark -z rtp,streams`
//! reports on the samples and the shared captures is found with the same packets and loss, the
//! same largest gap, and the same jitter within a stated tolerance; every RTCP report block and
//! RFC 4733 event tshark decodes is found; each media sample shows its anomaly and the clean
//! ones none.

use crate::common;
use sipscope::media::Stream;
use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// Every stream the engine found: the calls' and the untied ones.
fn streams(path: &Path) -> Vec<Stream> {
    let (engine, _) = common::analyse(path);
    let mut v: Vec<Stream> = engine
        .calls()
        .iter()
        .flat_map(|c| c.media.iter().cloned())
        .collect();
    v.extend(engine.untied_media().iter().cloned());
    v
}

/// One row of `tshark -q -z rtp,streams`.
#[derive(Debug)]
struct TsharkStream {
    src: SocketAddr,
    dst: SocketAddr,
    ssrc: u32,
    payload: String,
    packets: u64,
    lost: i64,
    max_delta: f64,
    mean_jitter: f64,
    max_jitter: f64,
}

fn tshark_streams(path: &Path) -> Vec<TsharkStream> {
    let out = std::process::Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args(["-o", "rtp.heuristic_rtp:TRUE", "-q", "-z", "rtp,streams"])
        .output()
        .expect("run tshark");
    assert!(out.status.success(), "tshark on {}", path.display());
    let text = String::from_utf8_lossy(&out.stdout);
    let mut rows = Vec::new();
    for line in text.lines() {
        let mut t: Vec<&str> = line.split_whitespace().collect();
        // start end src port dst port ssrc payload… pkts lost (pct) min/mean/max delta,
        // min/mean/max jitter [X]
        if t.len() < 17 || !t[6].starts_with("0x") {
            continue;
        }
        if t.last() == Some(&"X") {
            t.pop();
        }
        let n = t.len();
        let f = |i: usize| -> f64 { t[i].parse().unwrap() };
        let addr = |ip: &str, port: &str| -> SocketAddr {
            SocketAddr::new(ip.parse::<IpAddr>().unwrap(), port.parse().unwrap())
        };
        rows.push(TsharkStream {
            src: addr(t[2], t[3]),
            dst: addr(t[4], t[5]),
            ssrc: u32::from_str_radix(&t[6][2..], 16).unwrap(),
            payload: t[7..n - 9].join(" "),
            packets: t[n - 9].parse().unwrap(),
            lost: t[n - 8].parse().unwrap(),
            max_delta: f(n - 4),
            mean_jitter: f(n - 2),
            max_jitter: f(n - 1),
        });
    }
    rows
}

/// The captures with RTP: the samples and the shared captures (when present).
fn captures() -> Vec<PathBuf> {
    let mut v = common::captures_in(&common::samples());
    if let Some(shared) = common::shared_captures() {
        v.extend(common::captures_in(&shared));
    } else {
        eprintln!("../shared/captures is absent: the samples only");
    }
    v
}

/// Jitter is compared within 0.01 ms and 1%. Streams that carry payload types without a clock
/// rate (telephone-events, unknown dynamic types) are left out of the jitter comparison:
/// Wireshark 4.0 measures the audio packet after such a packet against the arrival of that
/// packet (its jitter jumps there), later versions and sipscope against the last audio
/// packet's. tshark runs with its RTP heuristics on, so that it decodes every stream whatever
/// SDP it saw (without them it misses packets of streams that a re-INVITE set up again).
fn close(ours: f64, theirs: f64) -> bool {
    (ours - theirs).abs() <= 0.01 + theirs.abs() * 0.01
}

#[test]
fn every_stream_tshark_reports_is_found_with_the_same_figures() {
    if !common::require("tshark") {
        return;
    }
    let mut compared = 0;
    for path in captures() {
        // tshark decodes 27 packets of one RTP stream here as T.38, because the re-INVITE to
        // fax set UDPTL up on the same ports; their headers are RTP, which sipscope counts.
        if path.ends_with("ndpi/FAX-Call-t38-CA-TDM-SIP-FB-1.pcap") {
            continue;
        }
        let theirs = tshark_streams(&path);
        if theirs.is_empty() {
            continue;
        }
        let ours = streams(&path);
        let name = path.display();
        // tshark starts a new row for the same SSRC when a re-INVITE sets the stream up
        // again; sipscope keeps one stream per SSRC and addresses. Split rows are compared
        // by their packets only.
        let split = |t: &TsharkStream| {
            theirs
                .iter()
                .filter(|u| u.src == t.src && u.dst == t.dst && u.ssrc == t.ssrc)
                .count()
                > 1
        };
        for t in &theirs {
            let Some(s) = ours
                .iter()
                .find(|s| s.src == t.src && s.dst == t.dst && s.ssrc == t.ssrc)
            else {
                // tshark's heuristics take a lone packet as RTP; without SDP naming its
                // address sipscope needs four in sequence (`media` module docs).
                assert!(t.packets < 4, "{name}: tshark's stream {t:?} not found");
                continue;
            };
            if split(t) {
                let total: u64 = theirs
                    .iter()
                    .filter(|u| u.src == t.src && u.dst == t.dst && u.ssrc == t.ssrc)
                    .map(|u| u.packets)
                    .sum();
                assert_eq!(s.packets, total, "{name}: packets of {t:?}");
                continue;
            }
            assert_eq!(s.packets, t.packets, "{name}: packets of {t:?}");
            assert_eq!(s.lost, t.lost, "{name}: lost of {t:?}");
            assert!(
                (s.max_delta_ms - t.max_delta).abs() <= 0.01,
                "{name}: max delta {} of {t:?}",
                s.max_delta_ms
            );
            if !t.payload.contains("event") && !t.payload.contains("RTPType") {
                assert!(
                    close(s.jitter_max_ms, t.max_jitter) && close(s.jitter_mean_ms, t.mean_jitter),
                    "{name}: jitter {}/{} of {t:?}",
                    s.jitter_mean_ms,
                    s.jitter_max_ms
                );
            }
            compared += 1;
        }
    }
    assert!(compared >= 16, "only {compared} streams compared");
}

/// Every RTCP report block tshark decodes (fraction lost, cumulative lost, jitter) is among
/// those sipscope tied to a stream.
#[test]
fn every_rtcp_report_block_tshark_decodes_is_found() {
    if !common::require("tshark") {
        return;
    }
    let mut compared = 0;
    for path in captures() {
        let rows = common::tshark_fields(
            &path,
            &["-Y", "rtcp.ssrc.fraction"],
            &["rtcp.ssrc.fraction", "rtcp.ssrc.cum_nr", "rtcp.ssrc.jitter"],
        );
        if rows.is_empty() {
            continue;
        }
        let mut theirs: BTreeMap<(u32, i64, u64), usize> = BTreeMap::new();
        for r in &rows {
            for ((fraction, cumulative), jitter) in r[0].iter().zip(&r[1]).zip(&r[2]) {
                let key = (
                    fraction.parse().unwrap(),
                    cumulative.parse().unwrap(),
                    jitter.parse().unwrap(),
                );
                *theirs.entry(key).or_default() += 1;
            }
        }
        let mut ours: BTreeMap<(u32, i64, u64), usize> = BTreeMap::new();
        for s in streams(&path) {
            let clock = if s.clock_rate == 0 {
                8000
            } else {
                s.clock_rate
            };
            for r in s.rtcp.iter().filter(|r| r.kind == "rr") {
                let key = (
                    (r.fraction_lost.unwrap() * 256.0).round() as u32,
                    i64::from(r.cumulative_lost.unwrap()),
                    (r.jitter_ms.unwrap() * f64::from(clock) / 1000.0).round() as u64,
                );
                *ours.entry(key).or_default() += 1;
            }
        }
        for (key, n) in &theirs {
            assert!(
                ours.get(key).copied().unwrap_or(0) >= *n,
                "{}: report block {key:?} ×{n} (ours: {ours:?})",
                path.display()
            );
            compared += n;
        }
    }
    assert!(compared >= 40, "only {compared} report blocks compared");
}

/// Every RFC 4733 event tshark decodes (one per SSRC and timestamp) is a DTMF event of the
/// stream with that SSRC, with the same key.
#[test]
fn every_telephone_event_tshark_decodes_is_found() {
    if !common::require("tshark") {
        return;
    }
    let mut compared = 0;
    for path in captures() {
        let rows = common::tshark_fields(
            &path,
            &["-Y", "rtpevent"],
            &[
                "rtp.ssrc",
                "rtp.timestamp",
                "rtpevent.event_id",
                "rtp.p_type",
            ],
        );
        let mut theirs: BTreeMap<(u32, u32), u32> = BTreeMap::new();
        for r in &rows {
            // Payload type 100 is Cisco's NSE (fax and modem tones), which tshark decodes as
            // events by default; it is not RFC 4733 and sipscope does not read it.
            if r[3][0] == "100" {
                continue;
            }
            let ssrc = u32::from_str_radix(r[0][0].trim_start_matches("0x"), 16).unwrap();
            theirs.insert((ssrc, r[1][0].parse().unwrap()), r[2][0].parse().unwrap());
        }
        if theirs.is_empty() {
            continue;
        }
        let ours = streams(&path);
        for ((ssrc, _), event) in &theirs {
            let key = match event {
                0..=9 => event.to_string(),
                10 => "*".into(),
                11 => "#".into(),
                12..=15 => char::from(b'A' + (*event - 12) as u8).to_string(),
                e => format!("event {e}"),
            };
            let found = ours
                .iter()
                .filter(|s| s.ssrc == *ssrc)
                .flat_map(|s| s.dtmf.iter())
                .filter(|d| d.digit == key)
                .count();
            assert!(found > 0, "{}: event {key} of {ssrc:#x}", path.display());
        }
        // As many events per SSRC as tshark decodes.
        let per_ssrc = |ssrc: u32| theirs.keys().filter(|(s, _)| *s == ssrc).count();
        for s in ours.iter().filter(|s| per_ssrc(s.ssrc) > 0) {
            assert_eq!(s.dtmf.len(), per_ssrc(s.ssrc), "{}", path.display());
        }
        compared += theirs.len();
    }
    assert!(compared >= 10, "only {compared} events compared");
}

/// The media anomaly kinds of each call of a sample, sorted.
fn media_kinds(name: &str) -> Vec<Vec<&'static str>> {
    let (engine, _) = common::analyse(&common::samples().join(name));
    engine
        .calls()
        .iter()
        .map(|c| {
            let d = sipscope::diagnose::diagnose(c, engine.now(), &Default::default());
            let mut k: Vec<&str> = d
                .anomalies
                .iter()
                .filter(|a| a.kind.is_media())
                .map(|a| a.kind.as_str())
                .collect();
            k.sort_unstable();
            k.dedup();
            k
        })
        .collect()
}

#[test]
fn each_media_sample_shows_its_anomaly_and_the_clean_ones_none() {
    let none: Vec<&str> = Vec::new();
    assert_eq!(media_kinds("media-two-way.pcap"), vec![none.clone()]);
    assert_eq!(media_kinds("media-dtmf.pcap"), vec![none.clone()]);
    // SRTP: its headers are RTP's, measured alike; clean.
    assert_eq!(
        media_kinds("media-srtp.pcap"),
        vec![none.clone(), none.clone()]
    );
    // On hold for the last 12 s: no RTP, and no media_timeout.
    assert_eq!(media_kinds("media-hold.pcap"), vec![none.clone()]);
    assert_eq!(media_kinds("media-one-way.pcap"), [["one_way_media"]]);
    assert_eq!(
        media_kinds("media-loss.pcap"),
        [["high_jitter", "packet_loss"]]
    );
    assert_eq!(media_kinds("media-timeout.pcap"), [["media_timeout"]]);
    assert_eq!(media_kinds("media-after-bye.pcap"), [["rtp_after_bye"]]);
    assert_eq!(
        media_kinds("media-none.pcap"),
        [none.clone(), vec!["no_media"]]
    );
    assert_eq!(media_kinds("media-nat.pcap"), [["media_address_mismatch"]]);
    assert_eq!(
        media_kinds("media-codec-mismatch.pcap"),
        [["codec_mismatch"]]
    );
    // Every other sample (signalling only, filtered to the SIP ports) has no media anomaly.
    for path in common::captures_in(&common::samples()) {
        let name = path
            .strip_prefix(common::samples())
            .unwrap()
            .to_str()
            .unwrap();
        if !name.starts_with("media-") {
            assert!(
                media_kinds(name).iter().all(Vec::is_empty),
                "{name}: {:?}",
                media_kinds(name)
            );
        }
    }
}

/// The verdict joins the two halves: "answered after …, but one-way audio: …".
#[test]
fn the_verdict_says_why_the_audio_failed() {
    let (engine, _) = common::analyse(&common::samples().join("media-one-way.pcap"));
    let calls = engine.calls();
    let d = sipscope::diagnose::diagnose(calls[0], engine.now(), &Default::default());
    assert!(
        d.verdict.summary.starts_with("Call answered after 0.")
            && d.verdict.summary.contains(
                ", but one-way audio: no RTP from the callee (its SDP advertises 127.0.0.1:6100) \
                 reached the caller"
            ),
        "{}",
        d.verdict.summary
    );
    let (engine, _) = common::analyse(&common::samples().join("media-dtmf.pcap"));
    let digits: String = engine.calls()[0]
        .media
        .iter()
        .flat_map(|s| s.dtmf.iter().map(|d| d.digit.to_string()))
        .collect();
    assert_eq!(digits, "123");
}

/// With `--no-media` the same capture has no streams and no media anomalies.
#[test]
fn no_media_turns_the_analysis_off() {
    let mut config = sipscope::engine::EngineConfig::default();
    config.media = false;
    let (engine, _) = common::analyse_with(&common::samples().join("media-one-way.pcap"), config);
    let calls = engine.calls();
    assert!(calls[0].media.is_empty());
    let d = sipscope::diagnose::diagnose(calls[0], engine.now(), &Default::default());
    assert!(d.anomalies.iter().all(|a| !a.kind.is_media()));
    assert!(engine.media_counters().is_none());
}

/// On a generated capture with known truth, every media fault is found as its anomaly kind on
/// exactly the calls that have it, and the clean calls (some with DTMF) have no media anomaly.
#[test]
fn generated_media_faults_are_found_and_clean_calls_stay_clean() {
    let (_dir, path) = common::synth_capture(|c| {
        c.calls = 400;
        c.seed = 7;
        c.max_hold_secs = 30.0;
        c.calls_per_second = 20.0;
        c.rtp = true;
        c.media_fault_share = 0.5;
    });
    let mut cfg = sipscope::synth::SynthConfig::default();
    cfg.calls = 400;
    cfg.seed = 7;
    cfg.max_hold_secs = 30.0;
    cfg.calls_per_second = 20.0;
    cfg.rtp = true;
    cfg.media_fault_share = 0.5;
    let truth = sipscope::synth::write_pcap(&cfg, &mut std::io::sink())
        .unwrap()
        .media;
    let (engine, _) = common::analyse(&path);
    let mut found: BTreeMap<&str, usize> = BTreeMap::new();
    let mut clean = 0;
    let mut dtmf = 0;
    for c in engine.calls() {
        dtmf += c.media.iter().map(|s| s.dtmf.len()).sum::<usize>();
        if c.media_capture == sipscope::media::MediaCapture::Off {
            continue;
        }
        let d = sipscope::diagnose::diagnose(c, engine.now(), &Default::default());
        let mut kinds: Vec<&str> = d
            .anomalies
            .iter()
            .filter(|a| a.kind.is_media())
            .map(|a| a.kind.as_str())
            .collect();
        kinds.sort_unstable();
        kinds.dedup();
        assert!(kinds.len() <= 1, "{}: {kinds:?}", c.call_id);
        match kinds.first() {
            Some(k) => *found.entry(k).or_default() += 1,
            None if d.summary.outcome == sipscope::flow::Outcome::Answered => clean += 1,
            None => {}
        }
    }
    let expect = BTreeMap::from([
        ("one_way_media", truth.one_way_media),
        ("no_media", truth.no_media),
        ("media_address_mismatch", truth.media_address_mismatch),
        ("packet_loss", truth.packet_loss),
        ("high_jitter", truth.high_jitter),
        ("rtp_after_bye", truth.rtp_after_bye),
        ("media_timeout", truth.media_timeout),
    ]);
    assert!(expect.values().all(|n| *n > 3), "{truth:?}");
    let expect: BTreeMap<&str, usize> = expect.into_iter().filter(|(_, n)| *n > 0).collect();
    assert_eq!(found, expect, "{truth:?}");
    assert_eq!(clean, truth.clean);
    assert_eq!(dtmf, truth.dtmf);
    assert!(truth.dtmf > 0);
    // Every RTP packet written was counted, and no flow became a stream without its call.
    let m = engine.media_counters().unwrap();
    assert_eq!(m.rtp_packets, truth.rtp_packets);
    assert_eq!(m.untied_streams, 0);
    assert_eq!(m.unmatched_packets, 0);
}

/// Random UDP payloads, a third of them with an RTP version field, between many address
/// pairs, never become a stream; neither does RTP that changes SSRC every packet.
#[test]
fn random_udp_never_becomes_rtp() {
    let mut rng = sipscope::synth::Rng::new(11);
    let mut frames = Vec::new();
    for i in 0..30_000u64 {
        let len = 12 + rng.below(200) as usize;
        let mut payload: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
        if i % 3 == 0 {
            payload[0] = 0x80 | (payload[0] & 0x3f);
        }
        let src = format!(
            "10.9.{}.{}:{}",
            rng.below(4),
            rng.below(4) + 1,
            1024 + rng.below(8)
        );
        let dst = format!("10.8.0.{}:{}", rng.below(4) + 1, 2000 + rng.below(8));
        frames.push(common::udp_frame(i + 1, i as i64, &src, &dst, &payload));
    }
    let mut engine = sipscope::engine::Engine::new(Default::default());
    for f in &frames {
        engine.feed(&f.as_frame());
    }
    engine.finish();
    assert!(
        engine.untied_media().is_empty(),
        "{:?}",
        engine.untied_media().first()
    );
    // Every datagram read as RTP was left unmatched in the end.
    let m = engine.media_counters().unwrap();
    assert!(m.rtp_packets > 1_000, "{m:?}");
    assert_eq!(m.unmatched_packets, m.rtp_packets);
}

/// Lying RTP and RTCP inside a call's media: CSRC lists, extensions and padding longer than the
/// packet are not RTP (counted as not SIP), an RTCP compound whose second packet lies keeps its
/// first report and counts the damage, and sequence and timestamp jumps are loss, not a crash.
#[test]
fn lying_rtp_and_rtcp_are_counted_and_never_cost_the_stream() {
    let sdp = "v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n\
               m=audio 4000 RTP/AVP 0\r\n";
    let invite = format!(
        "INVITE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n\
         From: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: lies\r\nCSeq: 1 INVITE\r\n\
         Content-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
        sdp.len()
    );
    let rtp = |seq: u16, ts: u32, first: u8| -> Vec<u8> {
        let mut v = vec![first, 0];
        v.extend_from_slice(&seq.to_be_bytes());
        v.extend_from_slice(&ts.to_be_bytes());
        v.extend_from_slice(&7u32.to_be_bytes());
        v.extend_from_slice(&[0xff; 160]);
        v
    };
    let mut frames = vec![common::udp_frame(
        1,
        0,
        "10.0.0.1:5060",
        "10.0.0.2:5060",
        invite.as_bytes(),
    )];
    let mut n = 1;
    let mut push = |ms: i64, src: &str, dst: &str, p: &[u8]| {
        n += 1;
        frames.push(common::udp_frame(n, ms, src, dst, p));
    };
    for i in 0..50u16 {
        push(
            100 + i64::from(i) * 20,
            "10.0.0.1:6000",
            "10.0.0.2:4000",
            &rtp(i, u32::from(i) * 160, 0x80),
        );
    }
    // 15 CSRCs that are not there; an extension past the end; padding longer than the payload.
    push(
        1_200,
        "10.0.0.1:6000",
        "10.0.0.2:4000",
        &rtp(50, 8_000, 0x8f)[..20],
    );
    push(
        1_220,
        "10.0.0.1:6000",
        "10.0.0.2:4000",
        &[0x90, 0, 0, 51, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0xff, 0xff],
    );
    push(1_240, "10.0.0.1:6000", "10.0.0.2:4000", &{
        let mut p = rtp(52, 8_320, 0xa0);
        *p.last_mut().unwrap() = 0xff;
        p
    });
    // A sequence jump of 30,000 and a timestamp jump: loss, counted.
    push(
        1_260,
        "10.0.0.1:6000",
        "10.0.0.2:4000",
        &rtp(30_050, 900_000, 0x80),
    );
    // An RR with one block about SSRC 7, then an SDES whose length runs past the datagram.
    let mut rr = vec![0x81, 201, 0, 7, 0, 0, 0, 9];
    for w in [7u32, 0x0100_0002, 30_050, 80, 0, 0] {
        rr.extend_from_slice(&w.to_be_bytes());
    }
    rr.extend_from_slice(&[0x81, 202, 0, 50, 0, 0, 0, 9]);
    push(1_300, "10.0.0.2:4001", "10.0.0.1:6001", &rr);
    let mut engine = sipscope::engine::Engine::new(Default::default());
    for f in &frames {
        engine.feed(&f.as_frame());
    }
    engine.finish();
    let calls = engine.calls();
    let s = &calls[0].media[0];
    assert_eq!(s.packets, 51);
    assert_eq!(s.lost, 30_051 - 51);
    assert_eq!(s.rtcp.len(), 1);
    assert_eq!(s.rtcp[0].cumulative_lost, Some(2));
    let m = engine.media_counters().unwrap();
    assert_eq!(m.rtcp_damaged, 1);
    let src = engine.source_stats(0, "lies", Default::default());
    assert_eq!(src.skipped.get(sipscope::net::SkipReason::NotSip), 3);
}

/// `diagnose --format markdown`: one self-contained report per call, with the verdict, the
/// diagnosis in a text block, the ladder in a Mermaid block and the media table.
#[test]
fn a_markdown_report_holds_the_verdict_the_ladder_and_the_media() {
    let out = assert_cmd::Command::cargo_bin("sipscope")
        .unwrap()
        .args(["diagnose", "--format", "markdown"])
        .arg(common::samples().join("media-loss.pcap"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(md.starts_with("## Call `1-"), "{md}");
    assert!(md.contains("**Verdict:** Call answered after"));
    assert!(md.contains("```text\n") && md.contains("[warning] packet_loss:"));
    assert!(md.contains("```mermaid\nsequenceDiagram\n"));
    assert!(md.contains("| callee_to_caller | 127.0.0.1:6100 → 127.0.0.1:6000 | 0xDEE0EE8F | PCMA | 217 | 19 (8.1%) |"));
    assert_eq!(md.matches("```").count() % 2, 0, "every fence closed");
}

/// SRTP keyed by SDES is told from RTP in the JSON: each stream's `srtp` names the keying
/// and suite its SDP gave, the SDP summary lists the `a=crypto` suites, and no key is written.
#[test]
fn srtp_streams_say_how_they_are_keyed_and_never_the_key() {
    let sample = common::samples().join("media-srtp.pcap");
    let out = assert_cmd::Command::cargo_bin("sipscope")
        .unwrap()
        .args(["export", "--format", "json", sample.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("inline:") && !text.contains("AAECAwQFBgcICQoLDA0ODxAR"));
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let calls = doc["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 2);
    for (call, suite) in calls
        .iter()
        .zip(["AES_CM_128_HMAC_SHA1_80", "AES_CM_128_HMAC_SHA1_32"])
    {
        let streams = call["media"].as_array().unwrap();
        assert_eq!(streams.len(), 2);
        for s in streams {
            assert_eq!(
                s["srtp"],
                serde_json::json!({"keying": "sdes", "suite": suite})
            );
        }
        let sdp = call["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find_map(|m| m.get("sdp").filter(|s| !s.is_null()))
            .unwrap();
        assert_eq!(sdp["media"][0]["protocol"], "RTP/SAVP");
        assert_eq!(sdp["media"][0]["crypto"], serde_json::json!([suite]));
    }
    // Plain RTP has no srtp.
    let plain = common::samples().join("media-two-way.pcap");
    let out = assert_cmd::Command::cargo_bin("sipscope")
        .unwrap()
        .args(["export", "--format", "json", plain.to_str().unwrap()])
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        doc["calls"][0]["media"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["srtp"].is_null())
    );
}
