//! `sdp_mismatch`: the two sides could not agree on media.
//!
//! - A 488 Not Acceptable Here, 606 Not Acceptable or 415 Unsupported Media Type to a request
//!   that carried an offer (RFC 3261 §21.4.26, §21.6.4, §21.4.13), with the Warning header's
//!   explanation (§20.43: 304 media type, 305 format, 306 attribute not available).
//! - An offer and an answer (RFC 3264 §6) whose media line counts differ, or where an
//!   accepted stream (port not 0) has no payload type in common with the offer.

use crate::diagnose::{Anomaly, AnomalyKind, Budget, Ctx, Seen, Severity, describe};
use crate::flow::SipMessage;
use crate::sip::sdp::SdpSummary;

pub fn check(cx: &Ctx<'_>, out: &mut Vec<Anomaly>) {
    let call = cx.call;
    let mut rejected_seen: Seen<u32> = Seen::default();
    // Each candidate looks for its request, offer and answer in its transactions.
    let mut budget = Budget::new(
        AnomalyKind::SdpMismatch,
        "RFC 3261 §20.43, §21.4.26, §21.6.4; RFC 3264 §6",
    );
    for m in call
        .messages
        .iter()
        .filter(|m| matches!(m.status(), Some(488) | Some(606) | Some(415)) && !m.retransmission)
    {
        let seq = m.cseq.as_ref().map_or(0, |(n, _)| *n);
        if rejected_seen.contains(&seq) || !budget.take() {
            continue;
        }
        let request = cx.request_for(m);
        let offer = request.and_then(SipMessage::sdp);
        if request.is_some() && offer.is_none() {
            continue; // no offer in the request: not a media disagreement
        }
        rejected_seen.insert(seq);
        let messages = cx.with_request(m);
        let offered = offer
            .map(|s| format!("; offered {}", formats(&s)))
            .unwrap_or_default();
        let warning = m
            .warning()
            .map(|w| format!("; Warning: {w}"))
            .unwrap_or_default();
        out.push(Anomaly {
            kind: AnomalyKind::SdpMismatch,
            severity: Severity::Error,
            summary: format!(
                "{} to the offer at {}{offered}{warning}",
                describe(m),
                cx.at(m.time)
            ),
            messages,
            reference: "RFC 3261 §20.43, §21.4.26, §21.6.4; RFC 3264 §6",
            streams: Vec::new(),
        });
    }

    // Offer/answer pairs, per INVITE (first hop where both are seen).
    let mut pairs_seen: Seen<u32> = Seen::default();
    for t in call.transactions.iter().filter(|t| t.is_invite()) {
        if pairs_seen.contains(&t.cseq) || !budget.take() {
            continue;
        }
        let Some(request) = cx.request_of(t) else {
            continue;
        };
        // Each body is summarised once: a summary is a parse of the whole body.
        let with_sdp = |m: &SipMessage| m.sdp().map(|s| (m.index, s));
        let answer_in = |t| {
            cx.messages_of(t)
                .filter(|m| m.status().is_some_and(|s| s > 100 && s < 300))
                .find_map(with_sdp)
        };
        let (offer, answer) = match with_sdp(request) {
            Some(offer) => (Some(offer), answer_in(t)),
            None => {
                // Late offer: the 2xx offers, the ACK answers.
                let offer = cx
                    .messages_of(t)
                    .filter(|m| m.status().is_some_and(|s| (200..300).contains(&s)))
                    .find_map(with_sdp);
                let ack = call
                    .transactions
                    .iter()
                    .filter(|a| a.acknowledges == Some(t.id))
                    .flat_map(|a| cx.messages_of(a))
                    .find_map(with_sdp);
                (offer, ack)
            }
        };
        let (Some((o, os)), Some((a, asdp))) = (offer, answer) else {
            continue;
        };
        let (Some(om), Some(am)) = (cx.msg(o), cx.msg(a)) else {
            continue;
        };
        pairs_seen.insert(t.cseq);
        let problem = if os.media.len() != asdp.media.len() {
            Some(format!(
                "the answer has {} media lines, the offer {}",
                asdp.media.len(),
                os.media.len()
            ))
        } else {
            os.media
                .iter()
                .zip(&asdp.media)
                .find(|(o, a)| a.port != 0 && !a.formats.iter().any(|f| o.formats.contains(f)))
                .map(|(o, a)| {
                    format!(
                        "{} accepted with {} but offered {}: no payload type in common",
                        o.kind,
                        a.formats.join(" "),
                        o.formats.join(" ")
                    )
                })
        };
        if let Some(problem) = problem {
            out.push(Anomaly {
                kind: AnomalyKind::SdpMismatch,
                severity: Severity::Error,
                summary: format!(
                    "offer in {} and answer in {} disagree: {problem}",
                    om.label(),
                    am.label()
                ),
                messages: vec![o, a],
                reference: "RFC 3264 §6",
                streams: Vec::new(),
            });
        }
    }
    budget.finish(out);
}

fn formats(s: &SdpSummary) -> String {
    s.media
        .iter()
        .map(|m| {
            if m.rtpmap.is_empty() {
                format!("{} {}", m.kind, m.formats.join(" "))
            } else {
                format!("{} {}", m.kind, m.rtpmap.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::diagnose::{DiagnoseConfig, diagnose};
    use crate::synth::script::{Script, sdp};

    #[test]
    fn an_answer_without_a_common_codec_is_a_mismatch() {
        let offer = sdp("10.0.0.1", 4000, &[0, 8]);
        let answer = sdp("10.0.0.3", 5000, &[18]);
        let inv = M {
            body: &offer,
            ..M::default()
        };
        let ok = M {
            start: "SIP/2.0 200 OK",
            to_tag: Some("b1"),
            body: &answer,
            ..M::default()
        };
        let mut s = Script::new();
        s.udp(0, CALLER, CALLEE, &inv.text());
        s.udp(50, CALLEE, CALLER, &ok.text());
        let (calls, now) = run(&s);
        let d = diagnose(&calls[0], now, &DiagnoseConfig::default());
        let a = d
            .anomalies
            .iter()
            .find(|a| a.kind.as_str() == "sdp_mismatch")
            .expect("flagged");
        assert!(
            a.summary.contains("no payload type in common"),
            "{}",
            a.summary
        );
        assert_eq!(a.messages, vec![0, 1]);
    }
}
