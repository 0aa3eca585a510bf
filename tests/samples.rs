//! The recorded samples through the library: outcomes, final statuses, transactions per hop,
//! retransmission marking and dialogs, as a user of sngrep or Wireshark would read them.

use crate::common;

use sipscope::flow::{Call, DialogState, Outcome};

fn calls(name: &str) -> (Vec<Call>, sipscope::capture::Timestamp) {
    let (engine, _) = common::analyse(&common::samples().join(name));
    let now = engine.now();
    (engine.into_calls(), now)
}

#[test]
fn answered_udp_through_the_proxy() {
    let (calls, now) = calls("answered-udp.pcap");
    assert_eq!(calls.len(), 2);
    for c in &calls {
        let s = c.summary(now);
        assert_eq!(s.outcome, Outcome::Answered);
        assert_eq!(s.final_status, Some(200));
        assert!(s.setup_time.unwrap() > 0.2 && s.setup_time.unwrap() < 1.0);
        assert!(s.duration.unwrap() > 0.9, "BYE about 1 s after the answer");
        assert_eq!(c.messages().len(), 14);
        // INVITE, ACK (2xx: its own transaction), BYE on each of the two hops.
        let methods: Vec<&str> = c.transactions().iter().map(|t| t.method.as_str()).collect();
        assert_eq!(methods.iter().filter(|m| **m == "INVITE").count(), 2);
        assert_eq!(methods.iter().filter(|m| **m == "ACK").count(), 2);
        assert_eq!(methods.iter().filter(|m| **m == "BYE").count(), 2);
        assert!(c.messages().iter().all(|m| !m.retransmission));
        // One dialog, seen on both hops (the tags are end to end), terminated by the BYE.
        assert_eq!(c.dialogs().len(), 1);
        assert_eq!(c.dialogs()[0].state, DialogState::Terminated);
        let acks: Vec<_> = c
            .transactions()
            .iter()
            .filter(|t| t.method == "ACK")
            .collect();
        assert!(
            acks.iter().all(|t| t.acknowledges.is_some()),
            "2xx ACKs tied to their INVITE"
        );
        assert!(c.is_over(now));
    }
}

#[test]
fn answered_tcp_caller_mixes_transports() {
    let (calls, now) = calls("answered-tcp.pcap");
    assert_eq!(calls.len(), 2);
    for c in &calls {
        assert_eq!(c.summary(now).outcome, Outcome::Answered);
        assert_eq!(c.messages().len(), 14);
        let tcp = c
            .messages()
            .iter()
            .filter(|m| m.transport == sipscope::net::Transport::Tcp)
            .count();
        let udp = c
            .messages()
            .iter()
            .filter(|m| m.transport == sipscope::net::Transport::Udp)
            .count();
        assert_eq!(
            (tcp, udp),
            (7, 7),
            "caller leg over TCP, callee leg over UDP"
        );
    }
}

#[test]
fn answered_ipv6_direct() {
    let (calls, now) = calls("answered-ipv6-direct.pcap");
    assert_eq!(calls.len(), 1);
    let c = &calls[0];
    assert_eq!(c.summary(now).outcome, Outcome::Answered);
    assert!(c.messages().iter().all(|m| m.src.is_ipv6()));
    assert_eq!(c.messages()[0].src.to_string(), "[::1]:5061");
}

#[test]
fn busy_callee() {
    let (calls, now) = calls("busy-486.pcap");
    let c = &calls[0];
    let s = c.summary(now);
    assert_eq!(s.outcome, Outcome::Busy);
    assert_eq!(s.final_status, Some(486));
    assert_eq!(s.final_reason.as_deref(), Some("Busy Here"));
    // The ACK for a non-2xx belongs to the INVITE transaction (same branch, §17.1.1.3).
    let invites: Vec<_> = c
        .transactions()
        .iter()
        .filter(|t| t.method == "INVITE")
        .collect();
    assert_eq!(invites.len(), 2);
    assert!(invites.iter().all(|t| t.ack.is_some()));
    assert!(!c.transactions().iter().any(|t| t.method == "ACK"));
    let reason = c
        .messages()
        .iter()
        .find_map(|m| m.reason_header().map(str::to_string))
        .unwrap();
    assert!(reason.contains("cause=17"));
    // The early dialog created by the 180 ended with the 486.
    assert!(
        c.dialogs()
            .iter()
            .all(|d| d.state == DialogState::Terminated)
    );
}

#[test]
fn caller_cancels_while_ringing() {
    let (calls, now) = calls("cancel-ringing.pcap");
    let c = &calls[0];
    let s = c.summary(now);
    assert_eq!(s.outcome, Outcome::Cancelled);
    assert_eq!(s.final_status, Some(487));
    let cancels: Vec<_> = c
        .transactions()
        .iter()
        .filter(|t| t.method == "CANCEL")
        .collect();
    assert_eq!(cancels.len(), 2, "one CANCEL per hop");
    for t in cancels {
        assert_eq!(t.final_status(), Some(200));
        let invite = t.cancels.expect("CANCEL matched to its INVITE");
        assert_eq!(c.transactions()[invite].final_status(), Some(487));
        assert!(&c.transactions()[invite].cancelled_by.contains(&t.id));
    }
    assert!(c.messages().iter().all(|m| m.issues().is_empty()));
}

#[test]
fn proxy_turns_503_into_500() {
    let (calls, now) = calls("reject-503.pcap");
    let c = &calls[0];
    let s = c.summary(now);
    // The caller received 500: that is the call's status (RFC 3261 §16.7 step 6).
    assert_eq!(s.outcome, Outcome::ServerError);
    assert_eq!(s.final_status, Some(500));
    let finals: Vec<u16> = c
        .transactions()
        .iter()
        .filter_map(|t| t.final_status())
        .collect();
    assert!(finals.contains(&503) && finals.contains(&500));
}

#[test]
fn register_challenged_then_accepted() {
    let (calls, now) = calls("register-401.pcap");
    let c = &calls[0];
    assert_eq!(c.first_method(), "REGISTER");
    let s = c.summary(now);
    // The retry with credentials decides the outcome, not the first challenge.
    assert_eq!(s.outcome, Outcome::Completed);
    assert_eq!(s.final_status, Some(200));
    let regs: Vec<_> = c
        .transactions()
        .iter()
        .filter(|t| t.method == "REGISTER")
        .collect();
    assert_eq!(regs.len(), 4, "two attempts on two hops");
    let with_credentials = c.messages().iter().filter(|m| m.has_credentials).count();
    assert_eq!(with_credentials, 2);
    assert!(c.dialogs().is_empty(), "REGISTER creates no dialog");
}
