//! `transaction_does_not_exist`: a 481 Call/Transaction Does Not Exist, with the earlier
//! event that explains it when the capture has one: the dialog had already ended (a BYE), the
//! dialog was never seen, or a CANCEL came after the INVITE's final response or matched no
//! INVITE (RFC 3261 §12.2.2, §9.2).

use crate::diagnose::{Anomaly, AnomalyKind, Budget, Ctx, Seen, Severity, describe};

const REFERENCE: &str = "RFC 3261 §12.2.2, §9.2";

pub fn check(cx: &Ctx<'_>, out: &mut Vec<Anomaly>) {
    let call = cx.call;
    let mut seen: Seen<usize> = Seen::default();
    // Each candidate searches the call for the BYE or dialog that explains it.
    let mut budget = Budget::new(AnomalyKind::TransactionDoesNotExist, REFERENCE);
    for m in call
        .messages
        .iter()
        .filter(|m| m.status() == Some(481) && !m.retransmission)
    {
        let t = m.transaction.and_then(|t| cx.tx(t as usize));
        // One finding per request, not per hop it was relayed over.
        let key = m.cseq.as_ref().map_or(usize::MAX, |(n, _)| *n as usize);
        if !seen.insert(key) || !budget.take() {
            continue;
        }
        let request = cx.request_for(m);
        let mut messages = cx.with_request(m);
        let method = m.cseq_method().unwrap_or("?");
        let sent = request.map_or(m.time, |r| r.time);
        let explanation = if method == "CANCEL" {
            match t.and_then(|t| t.cancels).and_then(|i| cx.tx(i)) {
                Some(inv) => match (inv.final_response, cx.final_of(inv)) {
                    (Some((code, at)), Some(f)) if at <= sent => {
                        messages.push(f.index);
                        format!(
                            "the CANCEL came after the INVITE's final response ({code} at {})",
                            cx.at(at)
                        )
                    }
                    _ => "the server had no matching INVITE transaction".to_string(),
                },
                None => {
                    "no INVITE with the CANCEL's branch was seen at this capture point".to_string()
                }
            }
        } else {
            let tags = (m.from_tag.as_deref(), m.to_tag.as_deref());
            let in_dialog = |x: &crate::flow::SipMessage| {
                let t = (x.from_tag.as_deref(), x.to_tag.as_deref());
                t == tags || (t.1, t.0) == tags
            };
            let bye = call.messages.iter().find(|x| {
                x.method() == Some("BYE") && x.time < sent && in_dialog(x) && !x.retransmission
            });
            let dialog_seen = call.messages.iter().any(|x| {
                x.time < sent && in_dialog(x) && x.status().is_some_and(|s| s > 100 && s < 300)
            });
            match bye {
                Some(b) => {
                    messages.push(b.index);
                    format!(
                        "the dialog had already ended: {} at {}",
                        describe(b),
                        cx.at(b.time)
                    )
                }
                None if tags.1.is_none() => "the request had no To tag".to_string(),
                None if !dialog_seen => {
                    "the dialog was never set up at this capture point (tags unknown to the \
                     server: a restart, a lost 2xx, or tags changed on the way)"
                        .to_string()
                }
                None => "the server no longer knew a dialog the capture saw set up".to_string(),
            }
        };
        messages.sort_unstable();
        out.push(Anomaly {
            kind: AnomalyKind::TransactionDoesNotExist,
            severity: Severity::Warning,
            summary: format!(
                "{} to {method} at {}: {explanation}",
                describe(m),
                cx.at(m.time)
            ),
            messages,
            reference: REFERENCE,
            streams: Vec::new(),
        });
    }
    budget.finish(out);
}
