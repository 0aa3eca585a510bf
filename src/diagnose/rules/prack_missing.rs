//! `prack_missing` (RFC 3262): a reliable provisional response (`Require: 100rel` with an
//! RSeq) must be acknowledged by a PRACK whose RAck names its RSeq, CSeq number and method
//! (§7.2). Until then the callee retransmits it (§3), and after 64·T1 it should reject the
//! INVITE with a 5xx. Also flags 420 Bad Extension and 421 Extension Required (§4, §5).

use crate::diagnose::{Anomaly, AnomalyKind, Budget, Ctx, Seen, Severity, describe};

pub fn check(cx: &Ctx<'_>, out: &mut Vec<Anomaly>) {
    let call = cx.call;
    let mut seen: Seen<(u32, u32)> = Seen::default();
    // Each candidate searches the call (its copies, its PRACK, a final response after it).
    let mut budget = Budget::new(AnomalyKind::PrackMissing, "RFC 3262 §3, §4, §7.2");
    for m in call.messages.iter() {
        let Some(rseq) = m.rare().and_then(|e| e.rseq) else {
            continue;
        };
        let Some((seq, method)) = &m.cseq else {
            continue;
        };
        if m.status().is_none_or(|s| s >= 200) || !seen.insert((rseq, *seq)) || !budget.take() {
            continue;
        }
        let copies: Vec<usize> = call
            .messages
            .iter()
            .filter(|x| {
                x.rare().and_then(|e| e.rseq) == Some(rseq)
                    && x.cseq.as_ref().is_some_and(|(n, _)| n == seq)
                    && x.status().is_some()
            })
            .map(|x| x.index)
            .collect();
        let prack = call.messages.iter().any(|x| {
            x.method() == Some("PRACK")
                && x.rare()
                    .and_then(|e| e.rack.as_ref())
                    .is_some_and(|(r, c, meth)| *r == rseq && c == seq && meth == method)
        });
        if prack {
            continue;
        }
        let resent = copies.len() > 1;
        let final_after = call.messages.iter().any(|x| {
            x.status().is_some_and(|s| s >= 200)
                && x.cseq
                    .as_ref()
                    .is_some_and(|(n, meth)| n == seq && meth == method)
                && x.time > m.time
        });
        if !(resent || final_after || cx.waited(m.time)) {
            continue;
        }
        out.push(Anomaly {
            kind: AnomalyKind::PrackMissing,
            severity: Severity::Error,
            summary: format!(
                "reliable {} (RSeq {rseq}) at {} was never acknowledged with PRACK at this \
                 capture point{}",
                describe(m),
                cx.at(m.time),
                if resent {
                    format!("; sent {} times", copies.len())
                } else {
                    String::new()
                }
            ),
            messages: copies,
            reference: "RFC 3262 §3, §4, §7.2",
            streams: Vec::new(),
        });
    }
    budget.finish(out);
    for m in call
        .messages
        .iter()
        .filter(|m| matches!(m.status(), Some(420) | Some(421)) && !m.retransmission)
    {
        out.push(Anomaly {
            kind: AnomalyKind::PrackMissing,
            severity: Severity::Warning,
            summary: format!(
                "{} at {}: the two sides disagree on required extensions (100rel?)",
                describe(m),
                cx.at(m.time)
            ),
            messages: vec![m.index],
            reference: "RFC 3262 §4, §5; RFC 3261 §8.2.2.3",
            streams: Vec::new(),
        });
    }
}
