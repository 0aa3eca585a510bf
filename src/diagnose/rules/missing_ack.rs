//! `missing_ack`: an INVITE's final response that was never acknowledged.
//!
//! - A 2xx opens a dialog; the caller must ACK it (RFC 3261 §13.2.2.4). The ACK for a 2xx is
//!   its own transaction with a new branch (§17.1.1.3), so it is matched on the dialog (tags)
//!   and CSeq number, anywhere in the call (it may bypass proxies that did not
//!   record-route). Until it arrives the callee retransmits the 2xx (§13.3.1.4), which is
//!   the evidence when the capture ends before 64·T1.
//! - A non-2xx final is acknowledged hop by hop on its own branch (§17.1.1.3); the server
//!   retransmits it until Timer H (§17.2.1).

use crate::WireMap;
use crate::diagnose::{Anomaly, AnomalyKind, Ctx, Severity, describe, hop};
use crate::flow::SipMessage;

const REF_2XX: &str = "RFC 3261 §13.2.2.4, §13.3.1.4, §17.1.1.3";
const REF_NON_2XX: &str = "RFC 3261 §17.1.1.3, §17.2.1 (Timers G and H)";

fn is_2xx_to_invite(m: &SipMessage) -> bool {
    m.status().is_some_and(|s| (200..300).contains(&s)) && m.cseq_method() == Some("INVITE")
}

/// The dialog (From and To tags) and CSeq number a 2xx and its ACK share.
fn dialog_and_cseq(m: &SipMessage) -> Option<(&str, &str, u32)> {
    Some((
        m.from_tag.as_deref()?,
        m.to_tag.as_deref()?,
        m.cseq.as_ref()?.0,
    ))
}

pub fn check(cx: &Ctx<'_>, out: &mut Vec<Anomaly>) {
    let call = cx.call;
    // 2xx: one finding per dialog and CSeq, whatever the number of hops it crossed. One pass
    // groups the 2xx and the ACKs by (From tag, To tag, CSeq number), so that a call with
    // many dialogs stays linear.
    type Key<'m> = (&'m str, &'m str, u32);
    let mut order: Vec<Key<'_>> = Vec::new();
    let mut oks_by: WireMap<Key<'_>, Vec<&SipMessage>> = WireMap::default();
    let mut acks_by: WireMap<Key<'_>, Vec<&SipMessage>> = WireMap::default();
    for m in &call.messages {
        let Some(k) = dialog_and_cseq(m) else {
            continue;
        };
        if is_2xx_to_invite(m) {
            oks_by.entry(k).or_insert_with(|| {
                order.push(k);
                Vec::new()
            });
            oks_by.entry(k).or_default().push(m);
        } else if m.method() == Some("ACK") {
            acks_by.entry(k).or_default().push(m);
        }
    }
    let byes: Vec<&SipMessage> = call
        .messages
        .iter()
        .filter(|m| m.method() == Some("BYE"))
        .collect();
    for k in order {
        let (_, _, seq) = k;
        let Some(oks) = oks_by.get(&k) else {
            continue;
        };
        let Some(ok) = oks.first() else {
            continue;
        };
        let first = ok.time;
        let deadline = first.saturating_add(cx.config.timeout()).0;
        let ack = acks_by
            .get(&k)
            .and_then(|acks| acks.iter().find(|m| m.time >= first));
        if ack.is_some_and(|a| a.time.0 <= deadline) {
            continue;
        }
        let resent = oks.iter().filter(|m| m.retransmission).count();
        if !(cx.waited(first) || resent > 0 || ack.is_some()) {
            continue; // the capture ends too soon after the 2xx to say
        }
        let mut summary = format!(
            "{} to INVITE (CSeq {seq}) was never acknowledged: no ACK seen at this capture \
             point within {} s of the first 2xx ({})",
            ok.label(),
            cx.config.timeout().as_secs_f64(),
            cx.at(first)
        );
        if resent > 0 {
            summary.push_str(&format!("; the 2xx was retransmitted {resent} times"));
        }
        if let Some(a) = ack {
            summary.push_str(&format!("; an ACK came late, at {}", cx.at(a.time)));
        }
        // Messages are in capture order: the first BYE after the 2xx by binary search.
        let bye = byes.get(byes.partition_point(|m| m.time <= first)).copied();
        if let Some(b) = bye {
            summary.push_str(&format!("; then {} at {}", describe(b), cx.at(b.time)));
        }
        let mut messages: Vec<usize> = oks.iter().map(|m| m.index).collect();
        messages.extend(bye.map(|b| b.index));
        out.push(Anomaly {
            kind: AnomalyKind::MissingAck,
            severity: Severity::Error,
            summary,
            messages,
            reference: REF_2XX,
            streams: Vec::new(),
        });
    }

    // Non-2xx: per hop, on the INVITE's own branch.
    for t in call.transactions.iter().filter(|t| t.is_invite()) {
        let Some((code, at)) = t.final_response else {
            continue;
        };
        if code < 300 || t.ack.is_some() || !t.request_seen {
            continue;
        }
        let finals: Vec<&SipMessage> = cx
            .messages_of(t)
            .filter(|m| m.status().is_some_and(|s| s >= 300))
            .collect();
        let resent = finals.iter().filter(|m| m.retransmission).count();
        if !(cx.waited(at) || resent > 0) {
            continue;
        }
        let Some(first) = finals.first() else {
            continue;
        };
        let mut summary = format!(
            "{} on {} (INVITE CSeq {}) was never acknowledged on its branch at this capture point",
            first.label(),
            hop(t.server, t.client),
            t.cseq
        );
        if resent > 0 {
            summary.push_str(&format!("; retransmitted {resent} times"));
        }
        out.push(Anomaly {
            kind: AnomalyKind::MissingAck,
            severity: Severity::Warning,
            summary,
            messages: finals.iter().map(|m| m.index).collect(),
            reference: REF_NON_2XX,
            streams: Vec::new(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::diagnose::{DiagnoseConfig, diagnose};
    use crate::synth::script::Script;

    fn answered(ack: bool, resend_ok: bool) -> Script {
        let inv = M::default();
        let ok = M {
            start: "SIP/2.0 200 OK",
            to_tag: Some("b1"),
            ..M::default()
        };
        let mut s = Script::new();
        s.udp(0, CALLER, CALLEE, &inv.text());
        s.udp(100, CALLEE, CALLER, &ok.text());
        if resend_ok {
            s.udp(600, CALLEE, CALLER, &ok.text());
            s.udp(1600, CALLEE, CALLER, &ok.text());
        }
        if ack {
            let a = M {
                start: "ACK sip:bob@10.0.0.3 SIP/2.0",
                via: ("10.0.0.1:5060", "z9hG4bK-ack"),
                to_tag: Some("b1"),
                cseq: "1 ACK",
                ..M::default()
            };
            s.udp(1700, CALLER, CALLEE, &a.text());
        }
        s
    }

    #[test]
    fn a_2xx_retransmitted_without_ack_is_missing_its_ack() {
        let (calls, now) = run(&answered(false, true));
        let d = diagnose(&calls[0], now, &DiagnoseConfig::default());
        assert_eq!(kinds(&d.anomalies)[0], "missing_ack");
        assert_eq!(d.anomalies[0].messages, vec![1, 2, 3]);
        assert!(d.anomalies[0].summary.contains("retransmitted 2 times"));
    }

    #[test]
    fn an_acknowledged_2xx_is_fine_and_a_quiet_end_is_no_evidence() {
        for script in [answered(true, true), answered(false, false)] {
            let (calls, now) = run(&script);
            let d = diagnose(&calls[0], now, &DiagnoseConfig::default());
            assert!(!kinds(&d.anomalies).contains(&"missing_ack"));
        }
    }
}
