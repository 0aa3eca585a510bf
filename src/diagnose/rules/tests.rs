//! Rule tests from scripted exchanges, for the kinds that the samples do not record.

use super::testkit::*;
use crate::diagnose::{DiagnoseConfig, diagnose};
use crate::synth::script::{Script, sdp};

fn kinds_of(s: &Script) -> Vec<&'static str> {
    let (calls, now) = run(s);
    kinds(&diagnose(&calls[0], now, &DiagnoseConfig::default()).anomalies)
}

/// INVITE, 200 OK and ACK between caller and callee.
fn answered(s: &mut Script, ok_extra: &[(&str, &str)]) {
    s.udp(0, CALLER, CALLEE, &M::default().text());
    let ok = M {
        start: "SIP/2.0 200 OK",
        to_tag: Some("b1"),
        extra: ok_extra,
        ..M::default()
    };
    s.udp(100, CALLEE, CALLER, &ok.text());
    let ack = M {
        start: "ACK sip:bob@10.0.0.3 SIP/2.0",
        via: ("10.0.0.1:5060", "z9hG4bK-ack"),
        to_tag: Some("b1"),
        cseq: "1 ACK",
        ..M::default()
    };
    s.udp(150, CALLER, CALLEE, &ack.text());
}

fn in_dialog<'a>(start: &'a str, branch: &'a str, cseq: &'a str) -> M<'a> {
    M {
        start,
        via: ("10.0.0.1:5060", branch),
        to_tag: Some("b1"),
        cseq,
        ..M::default()
    }
}

#[test]
fn a_491_is_glare() {
    let mut s = Script::new();
    answered(&mut s, &[]);
    s.udp(
        5000,
        CALLER,
        CALLEE,
        &in_dialog("INVITE sip:bob@10.0.0.3 SIP/2.0", "z9hG4bK-re", "2 INVITE").text(),
    );
    let pending = M {
        start: "SIP/2.0 491 Request Pending",
        ..in_dialog("", "z9hG4bK-re", "2 INVITE")
    };
    s.udp(5010, CALLEE, CALLER, &pending.text());
    assert!(kinds_of(&s).contains(&"glare"));
}

#[test]
fn a_481_after_the_dialog_ended_says_so() {
    let mut s = Script::new();
    answered(&mut s, &[]);
    s.udp(
        1000,
        CALLER,
        CALLEE,
        &in_dialog("BYE sip:bob@10.0.0.3 SIP/2.0", "z9hG4bK-bye", "2 BYE").text(),
    );
    let ok = M {
        start: "SIP/2.0 200 OK",
        ..in_dialog("", "z9hG4bK-bye", "2 BYE")
    };
    s.udp(1010, CALLEE, CALLER, &ok.text());
    s.udp(
        2000,
        CALLER,
        CALLEE,
        &in_dialog("BYE sip:bob@10.0.0.3 SIP/2.0", "z9hG4bK-bye2", "3 BYE").text(),
    );
    let gone = M {
        start: "SIP/2.0 481 Call/Transaction Does Not Exist",
        ..in_dialog("", "z9hG4bK-bye2", "3 BYE")
    };
    s.udp(2010, CALLEE, CALLER, &gone.text());
    let (calls, now) = run(&s);
    let d = diagnose(&calls[0], now, &DiagnoseConfig::default());
    let a = d
        .anomalies
        .iter()
        .find(|a| a.kind.as_str() == "transaction_does_not_exist")
        .expect("flagged");
    assert!(
        a.summary.contains("the dialog had already ended"),
        "{}",
        a.summary
    );
    assert_eq!(a.messages, vec![3, 5, 6]);
}

#[test]
fn private_sdp_from_a_public_address() {
    let body = sdp("10.0.0.5", 4000, &[0]);
    let inv = M {
        body: &body,
        ..M::default()
    };
    let mut s = Script::new();
    s.udp(0, "203.0.113.5:5060", "198.51.100.7:5060", &inv.text());
    assert!(kinds_of(&s).contains(&"private_address"));
    // The same from a private source is what a LAN looks like: nothing to say.
    let mut lan = Script::new();
    lan.udp(0, CALLER, CALLEE, &inv.text());
    assert!(!kinds_of(&lan).contains(&"private_address"));
}

#[test]
fn a_session_timer_without_refresh_expires() {
    let mut s = Script::new();
    answered(&mut s, &[("Session-Expires", "90;refresher=uac")]);
    // No refresh; the callee ends the call at N - min(32, N/3) = 60 s.
    s.udp(
        60_100,
        CALLEE,
        CALLER,
        &M {
            start: "BYE sip:alice@10.0.0.1 SIP/2.0",
            via: ("10.0.0.3:5060", "z9hG4bK-bye"),
            from_tag: "b1",
            to_tag: Some("a1"),
            cseq: "1 BYE",
            ..M::default()
        }
        .text(),
    );
    assert!(kinds_of(&s).contains(&"session_timer_expired"));
}

#[test]
fn three_challenges_without_success_are_an_auth_loop() {
    let mut s = Script::new();
    for i in 0..3 {
        let branch = format!("z9hG4bK-r{i}");
        let cseq = format!("{} REGISTER", i + 1);
        let creds: &[(&str, &str)] = if i > 0 {
            &[("Authorization", "Digest username=\"alice\"")]
        } else {
            &[]
        };
        let reg = M {
            start: "REGISTER sip:example.com SIP/2.0",
            via: ("10.0.0.1:5060", &branch),
            cseq: &cseq,
            extra: creds,
            ..M::default()
        };
        s.udp(i * 100, CALLER, PROXY, &reg.text());
        let challenge = M {
            start: "SIP/2.0 401 Unauthorized",
            to_tag: Some("r"),
            ..reg
        };
        s.udp(i * 100 + 10, PROXY, CALLER, &challenge.text());
    }
    assert!(kinds_of(&s).contains(&"auth_loop"));
}

#[test]
fn an_unacknowledged_reliable_provisional_is_prack_missing() {
    let mut s = Script::new();
    s.udp(0, CALLER, CALLEE, &M::default().text());
    let reliable = M {
        start: "SIP/2.0 183 Session Progress",
        to_tag: Some("b1"),
        extra: &[("Require", "100rel"), ("RSeq", "1")],
        ..M::default()
    };
    s.udp(100, CALLEE, CALLER, &reliable.text());
    s.udp(600, CALLEE, CALLER, &reliable.text());
    assert!(kinds_of(&s).contains(&"prack_missing"));
}

#[test]
fn a_2xx_after_cancel_is_a_race() {
    let mut s = Script::new();
    s.udp(0, CALLER, CALLEE, &M::default().text());
    let ringing = M {
        start: "SIP/2.0 180 Ringing",
        to_tag: Some("b1"),
        ..M::default()
    };
    s.udp(50, CALLEE, CALLER, &ringing.text());
    let cancel = M {
        start: "CANCEL sip:bob@example.com SIP/2.0",
        cseq: "1 CANCEL",
        ..M::default()
    };
    s.udp(1000, CALLER, CALLEE, &cancel.text());
    let ok = M {
        start: "SIP/2.0 200 OK",
        to_tag: Some("b1"),
        ..M::default()
    };
    s.udp(1001, CALLEE, CALLER, &ok.text());
    assert!(kinds_of(&s).contains(&"cancel_race"));
}
