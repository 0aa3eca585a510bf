//! Diagnosis on the recorded samples: each anomaly sample shows its anomaly with the right
//! evidence, clean calls stay clean (precision, also on hundreds of overlapping synthetic
//! calls), and `sipscope diagnose` output is snapshot-tested per sample.

use crate::common;

use sipscope::diagnose::{DiagnoseConfig, Diagnosis, diagnose};
use sipscope::flow::Call;

fn diagnosed(name: &str) -> Vec<(Call, Diagnosis)> {
    let (engine, _) = common::analyse(&common::samples().join(name));
    let now = engine.now();
    engine
        .into_calls()
        .into_iter()
        .map(|c| {
            let d = diagnose(&c, now, &DiagnoseConfig::default());
            (c, d)
        })
        .collect()
}

/// The first anomaly of a kind.
fn anomaly<'a>(d: &'a Diagnosis, kind: &str) -> &'a sipscope::diagnose::Anomaly {
    d.anomalies
        .iter()
        .find(|a| a.kind.as_str() == kind)
        .unwrap_or_else(|| panic!("no {kind} in {:#?}", d.anomalies))
}

/// The labels of an anomaly's evidence messages.
fn evidence(call: &Call, d: &Diagnosis, kind: &str) -> Vec<String> {
    anomaly(d, kind)
        .messages
        .iter()
        .map(|&i| call.messages()[i].label())
        .collect()
}

#[test]
fn missing_ack_shows_the_retransmitted_2xx() {
    let calls = diagnosed("missing-ack.pcap");
    let (call, d) = &calls[0];
    let ev = evidence(call, d, "missing_ack");
    assert!(
        ev.len() >= 4,
        "first 2xx and its retransmissions on both hops: {ev:?}"
    );
    assert!(ev.iter().all(|l| l == "200 OK"));
    assert!(
        d.verdict.failed,
        "an answered call with a missing ACK is a problem"
    );
}

#[test]
fn proxy_408_names_the_silent_hop() {
    let calls = diagnosed("proxy-408.pcap");
    let (call, d) = &calls[0];
    let ev = evidence(call, d, "no_final_response");
    assert!(ev.len() >= 3 && ev.iter().all(|l| l == "INVITE"), "{ev:?}");
    let hop = d.verdict.failing_hop.as_ref().expect("failing hop");
    assert_eq!(hop.to.to_string(), "127.0.0.1:5071");
    assert!(
        d.verdict.summary.contains("408 Request Timeout"),
        "{}",
        d.verdict.summary
    );
    assert!(
        d.anomalies
            .iter()
            .any(|a| a.kind.as_str() == "retransmission")
    );
}

#[test]
fn loops_482_and_483() {
    let calls = diagnosed("loop-482.pcap");
    let (call, d) = &calls[0];
    assert_eq!(
        evidence(call, d, "forwarding_loop"),
        ["INVITE", "482 Loop Detected"]
    );
    let calls = diagnosed("loop-483.pcap");
    let (call, d) = &calls[0];
    let ev = evidence(call, d, "forwarding_loop");
    assert!(ev.len() >= 10 && ev.iter().all(|l| l == "INVITE"), "{ev:?}");
    // The request forwarded with Max-Forwards 0, and the 483s relayed back.
    let ev = evidence(call, d, "too_many_hops");
    assert!(ev.iter().any(|l| l == "483 Too Many Hops"), "{ev:?}");
    assert!(
        ev.iter().all(|l| l == "483 Too Many Hops" || l == "INVITE"),
        "{ev:?}"
    );
}

#[test]
fn sdp_488_registration_403_and_slow_setup() {
    let calls = diagnosed("sdp-488.pcap");
    let (call, d) = &calls[0];
    assert_eq!(
        evidence(call, d, "sdp_mismatch"),
        ["INVITE", "488 Not Acceptable Here"]
    );
    let calls = diagnosed("register-403.pcap");
    let (call, d) = &calls[0];
    assert_eq!(
        evidence(call, d, "registration_failed"),
        ["REGISTER", "403 Forbidden"]
    );
    let calls = diagnosed("slow-setup.pcap");
    let (call, d) = &calls[0];
    assert_eq!(evidence(call, d, "slow_setup"), ["INVITE", "180 Ringing"]);
}

/// The CSeq method of each evidence message, to tell a 200 to CANCEL from a 200 to INVITE.
fn evidence_cseq(call: &Call, d: &Diagnosis, kind: &str) -> Vec<String> {
    anomaly(d, kind)
        .messages
        .iter()
        .map(|&i| {
            let m = &call.messages()[i];
            format!("{} ({})", m.label(), m.cseq_method().unwrap_or("?"))
        })
        .collect()
}

#[test]
fn a_second_bye_gets_481_explained_by_the_first() {
    let calls = diagnosed("dialog-481.pcap");
    let (call, d) = &calls[0];
    let a = anomaly(d, "transaction_does_not_exist");
    assert!(
        a.summary.contains("dialog had already ended"),
        "{}",
        a.summary
    );
    // The first BYE that ended the dialog, then the second BYE and its 481.
    assert_eq!(
        evidence(call, d, "transaction_does_not_exist"),
        ["BYE", "BYE", "481 Call/Transaction Does Not Exist"]
    );
    let first_bye = &call.messages()[a.messages[0]];
    let second_bye = &call.messages()[a.messages[1]];
    assert!(first_bye.cseq.as_ref().unwrap().0 < second_bye.cseq.as_ref().unwrap().0);
}

#[test]
fn a_wrong_password_is_an_auth_loop() {
    let calls = diagnosed("auth-loop.pcap");
    let (call, d) = &calls[0];
    let a = anomaly(d, "auth_loop");
    assert!(a.summary.contains("challenged 3 times"), "{}", a.summary);
    assert!(
        a.summary.contains("2 retries carried credentials"),
        "{}",
        a.summary
    );
    assert_eq!(
        evidence(call, d, "auth_loop"),
        ["REGISTER", "401 Unauthorized"].repeat(3)
    );
}

#[test]
fn a_2xx_after_cancel_is_a_cancel_race() {
    let calls = diagnosed("cancel-race.pcap");
    let (call, d) = &calls[0];
    let ev = evidence_cseq(call, d, "cancel_race");
    assert_eq!(
        ev.first().map(String::as_str),
        Some("CANCEL (CANCEL)"),
        "{ev:?}"
    );
    assert!(ev.contains(&"200 OK (INVITE)".to_string()), "{ev:?}");
    // The call is up and ended normally: no timer alarms.
    let kinds: Vec<&str> = d.anomalies.iter().map(|a| a.kind.as_str()).collect();
    assert_eq!(kinds, ["cancel_race"]);
}

#[test]
fn crossing_re_invites_are_glare() {
    let calls = diagnosed("glare-491.pcap");
    let (call, d) = &calls[0];
    let glare: Vec<_> = d
        .anomalies
        .iter()
        .filter(|a| a.kind.as_str() == "glare")
        .collect();
    assert_eq!(glare.len(), 2, "one 491 each way: {glare:#?}");
    for a in glare {
        let labels: Vec<String> = a
            .messages
            .iter()
            .map(|&i| call.messages()[i].label())
            .collect();
        assert_eq!(labels, ["INVITE", "491 Request Pending"]);
        // The two re-INVITEs travel in opposite directions.
        let invite = &call.messages()[a.messages[0]];
        let answer = &call.messages()[a.messages[1]];
        assert_eq!((invite.src, invite.dst), (answer.dst, answer.src));
    }
    assert!(
        !d.verdict.failed,
        "the retry succeeded: {}",
        d.verdict.summary
    );
}

#[test]
fn a_reliable_183_never_pracked() {
    let calls = diagnosed("prack-missing.pcap");
    let (call, d) = &calls[0];
    let ev = evidence(call, d, "prack_missing");
    assert!(
        ev.len() >= 10 && ev.iter().all(|l| l == "183 Session Progress"),
        "the reliable 183 and its retransmissions on both hops: {ev:?}"
    );
    assert_eq!(d.verdict.status, Some(500));
    let cause = d.verdict.cause.as_ref().expect("cause");
    assert!(
        cause
            .warning
            .as_deref()
            .is_some_and(|w| w.contains("no PRACK")),
        "{cause:?}"
    );
}

#[test]
fn an_unrefreshed_session_timer_ends_in_bye() {
    let calls = diagnosed("session-timer.pcap");
    let (call, d) = &calls[0];
    assert_eq!(
        evidence(call, d, "session_timer_expired"),
        ["200 OK", "BYE"]
    );
    let a = &d.anomalies[0];
    assert!(a.summary.contains("Session-Expires: 90"), "{}", a.summary);
}

#[test]
fn a_phone_behind_nat_leaks_its_private_address() {
    let calls = diagnosed("private-address.pcap");
    let (_, d) = &calls[0];
    let found: Vec<&str> = d
        .anomalies
        .iter()
        .filter(|a| a.kind.as_str() == "private_address")
        .map(|a| a.summary.as_str())
        .collect();
    for what in [
        "SDP connection address 192.168.1.20",
        "Contact 192.168.1.20",
        "top Via 192.168.1.20",
    ] {
        assert!(found.iter().any(|s| s.contains(what)), "{what}: {found:#?}");
    }
}

#[test]
fn a_wrong_content_length_is_malformed_and_the_call_survives() {
    let calls = diagnosed("bad-content-length.pcap");
    let (call, d) = &calls[0];
    let a = anomaly(d, "malformed");
    assert!(
        a.summary.contains("Content-Length says 120"),
        "{}",
        a.summary
    );
    // Both hops of the INVITE carry the wrong length; the call itself is still read whole.
    assert_eq!(evidence(call, d, "malformed"), ["INVITE", "INVITE"]);
    assert_eq!(call.messages().len(), 14);
}

#[test]
fn failed_calls_name_the_hop_where_the_failure_started() {
    let calls = diagnosed("busy-486.pcap");
    let v = &calls[0].1.verdict;
    assert_eq!(
        v.summary,
        "Call failed: 127.0.0.1:5070 answered 486 Busy Here; the proxy 127.0.0.1:5060 relayed \
         it to the caller"
    );
    assert_eq!(
        v.failing_hop.as_ref().unwrap().to.to_string(),
        "127.0.0.1:5070"
    );
    let cause = v.cause.as_ref().expect("Reason header");
    assert!(cause.reason.as_deref().unwrap().contains("cause=17"));
    let calls = diagnosed("reject-503.pcap");
    let v = &calls[0].1.verdict;
    assert!(
        v.summary.contains("answered 503") && v.summary.contains("sent 500"),
        "{}",
        v.summary
    );
}

const NEVER_ON_CLEAN_CALLS: [&str; 5] = [
    "missing_ack",
    "no_final_response",
    "forwarding_loop",
    "too_many_hops",
    "auth_failed",
];

#[test]
fn answered_calls_raise_no_false_alarms() {
    for name in [
        "answered-udp.pcap",
        "answered-tcp.pcap",
        "answered-ipv6-direct.pcap",
    ] {
        for (_, d) in diagnosed(name) {
            assert!(d.is_clean(), "{name}: {:#?}", d.anomalies);
            assert!(d.anomalies.is_empty(), "{name}: {:#?}", d.anomalies);
        }
    }
    // Hundreds of overlapping calls, UDP, TCP and fragments, with SIP retransmissions.
    let (_dir, path) = common::synth_capture(|c| {
        c.calls = 400;
        c.calls_per_second = 40.0;
    });
    let (engine, _) = common::analyse(&path);
    let now = engine.now();
    let mut answered = 0;
    for c in engine.calls() {
        if c.summary(now).outcome != sipscope::flow::Outcome::Answered {
            continue;
        }
        answered += 1;
        let d = diagnose(c, now, &DiagnoseConfig::default());
        for a in &d.anomalies {
            assert!(
                !NEVER_ON_CLEAN_CALLS.contains(&a.kind.as_str()),
                "{}: {a:#?}",
                c.call_id
            );
        }
    }
    assert!(answered > 200, "{answered} answered calls");
}

/// Regression (rewritten Vias): the notifier's 200 OK names the SUBSCRIBE's sent-by without
/// its port, with rport and received; the phone's 200 OK to the NOTIFY upper-cases the host.
/// Each answer joins its request's transaction, so nothing is reported.
#[test]
fn answers_with_a_rewritten_via_join_their_requests() {
    let calls = diagnosed("via-rewritten.pcap");
    assert_eq!(calls.len(), 1);
    let (call, d) = &calls[0];
    let txs: Vec<(&str, bool, usize, Option<u16>)> = call
        .transactions()
        .iter()
        .map(|t| {
            (
                t.method.as_str(),
                t.request_seen,
                t.messages.len(),
                t.final_status(),
            )
        })
        .collect();
    assert_eq!(
        txs,
        [
            ("SUBSCRIBE", true, 2, Some(200)),
            ("NOTIFY", true, 2, Some(200))
        ]
    );
    assert!(d.anomalies.is_empty(), "{:#?}", d.anomalies);
}

/// Regression (authentication failures): one challenge answered with credentials, challenged
/// again with the same nonce and no stale=true, then abandoned: `auth_failed`, not a silent
/// "failed 401"; with two challenges it is no `auth_loop`. A clean digest registration
/// (register-401) raises neither.
#[test]
fn refused_credentials_are_an_authentication_failure() {
    let calls = diagnosed("register-wrong-password.pcap");
    let (call, d) = &calls[0];
    let a = anomaly(d, "auth_failed");
    assert_eq!(a.severity, sipscope::diagnose::Severity::Error);
    assert!(
        a.summary.contains("realm \"sipscope.test\"") && a.summary.contains("repeats the nonce"),
        "{}",
        a.summary
    );
    assert_eq!(
        evidence(call, d, "auth_failed"),
        ["REGISTER", "401 Unauthorized"]
    );
    assert!(d.anomalies.iter().all(|a| a.kind.as_str() != "auth_loop"));
    assert!(
        d.verdict.summary.contains("auth_failed"),
        "{}",
        d.verdict.summary
    );
    for (_, d) in diagnosed("register-401.pcap") {
        assert!(d.anomalies.is_empty(), "{:#?}", d.anomalies);
    }
}

/// Regression (a registration binding is no dialog target): the registrar's 200 OK lists
/// back the phone's private Contact, recorded with `received`: no `private_address` for the
/// Contact (the private top Via of the REGISTER is still an info note).
#[test]
fn a_registered_private_contact_is_no_dialog_target() {
    let calls = diagnosed("register-behind-nat.pcap");
    let (_, d) = &calls[0];
    let notes: Vec<&str> = d.anomalies.iter().map(|a| a.summary.as_str()).collect();
    assert_eq!(notes.len(), 1, "{notes:#?}");
    assert!(notes[0].starts_with("top Via 192.168.1.20"), "{notes:#?}");
    assert!(d.is_clean());
}

/// Regression (verdicts honest about the capture): the ACK of a TCP call was not captured;
/// the BYE after it shows the hole. `missing_ack` is a warning that says bytes of the
/// connection were lost, and so does the verdict.
#[test]
fn a_lost_segment_makes_absence_a_warning_that_says_so() {
    let calls = diagnosed("tcp-ack-not-captured.pcap");
    let (call, d) = &calls[0];
    assert!(call.lost_bytes > 200, "{}", call.lost_bytes);
    let a = anomaly(d, "missing_ack");
    assert_eq!(a.severity, sipscope::diagnose::Severity::Warning);
    assert!(a.summary.contains("were not captured"), "{}", a.summary);
    assert!(
        d.verdict
            .summary
            .contains("bytes of this call's TCP traffic were not captured"),
        "{}",
        d.verdict.summary
    );
    // The same call without the loss would be an error: the clean TCP sample has no loss.
    for (c, _) in diagnosed("answered-tcp.pcap") {
        assert_eq!(c.lost_bytes, 0);
    }
}

/// Regression (one answer whatever the mode): a capture that starts inside a confirmed dialog
/// (the PRACK, the 200s and the ACK seen, the BYE 40 s later) is one call, in the streaming
/// commands as in the JSON export.
#[test]
fn a_dialog_joined_mid_way_lasts_until_its_bye() {
    let calls = diagnosed("mid-dialog.pcap");
    assert_eq!(calls.len(), 1);
    let (call, _) = &calls[0];
    let labels: Vec<String> = call.messages().iter().map(|m| m.label()).collect();
    assert_eq!(labels.first().map(String::as_str), Some("PRACK"));
    assert!(labels.iter().any(|l| l == "BYE"), "{labels:?}");
    let out = assert_cmd::Command::cargo_bin("sipscope")
        .unwrap()
        .args(["calls", "--format", "csv"])
        .arg(common::samples().join("mid-dialog.pcap"))
        .output()
        .unwrap();
    let rows = String::from_utf8(out.stdout).unwrap().lines().count();
    assert_eq!(rows, 2, "a header and one call");
}

#[test]
fn diagnose_output_per_sample() {
    for path in common::captures_in(&common::samples()) {
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        let out = assert_cmd::Command::cargo_bin("sipscope")
            .unwrap()
            .args(["diagnose", "--all"])
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}");
        insta::assert_snapshot!(name, String::from_utf8_lossy(&out.stdout));
    }
}

#[test]
fn a_hostile_call_with_thousands_of_endpoints_and_dialogs_is_diagnosed() {
    // One Call-ID, 6,000 answered INVITEs from distinct ports with distinct To tags, none
    // acknowledged: every rule that groups messages sees thousands of groups. It must end
    // (the groupings are indexed, not searched pairwise) and report each missing ACK.
    use sipscope::synth::script::{Script, sip};
    let mut s = Script::new();
    let n = 6_000;
    for i in 0..n {
        let caller = format!("10.1.{}.{}:{}", i / 250, i % 250 + 1, 5060 + i % 1000);
        let via = format!("SIP/2.0/UDP {caller};branch=z9hG4bK-h{i}");
        let from = format!("<sip:a@x>;tag=f{i}");
        let to = format!("<sip:b@x>;tag=t{i}");
        let text = |start: &str, to: &str| {
            let headers = [
                ("Via", via.as_str()),
                ("From", from.as_str()),
                ("To", to),
                ("Call-ID", "hostile"),
                ("CSeq", "1 INVITE"),
            ];
            sip(start, &headers, "")
        };
        s.udp(
            i as i64,
            &caller,
            "10.0.0.9:5060",
            &text("INVITE sip:b@x SIP/2.0", "<sip:b@x>"),
        );
        s.udp(
            i as i64,
            "10.0.0.9:5060",
            &caller,
            &text("SIP/2.0 200 OK", &to),
        );
    }
    // Past 64·T1 for every 2xx.
    s.udp(
        n as i64 + 40_000,
        "10.0.0.9:5060",
        "10.0.0.8:5060",
        "OPTIONS sip:x SIP/2.0\r\n\r\n",
    );
    let mut engine = sipscope::engine::Engine::new(Default::default());
    for f in s.frames() {
        engine.feed(&f.as_frame());
    }
    engine.finish();
    let now = engine.now();
    let call = engine
        .calls()
        .into_iter()
        .find(|c| &*c.call_id == "hostile")
        .expect("the call");
    let d = diagnose(call, now, &DiagnoseConfig::default());
    let missing = d
        .anomalies
        .iter()
        .filter(|a| a.kind.as_str() == "missing_ack")
        .count();
    assert_eq!(missing, n);
    assert!(d.hops.endpoints.len() > n);
}
