//! `glare`: a 491 Request Pending. Both sides sent a re-INVITE (or UPDATE) at about the same
//! time; each must wait a randomized time before trying again (RFC 3261 §14.1).

use crate::diagnose::{Anomaly, AnomalyKind, Budget, Ctx, Seen, Severity, describe};

const REFERENCE: &str = "RFC 3261 §14.1";

pub fn check(cx: &Ctx<'_>, out: &mut Vec<Anomaly>) {
    let mut seen: Seen<u32> = Seen::default();
    let mut budget = Budget::new(AnomalyKind::Glare, REFERENCE);
    for m in cx.call.messages.iter().filter(|m| m.status() == Some(491)) {
        let seq = m.cseq.as_ref().map_or(0, |(n, _)| *n);
        if !seen.insert(seq) || !budget.take() {
            continue;
        }
        let messages = cx.with_request(m);
        out.push(Anomaly {
            kind: AnomalyKind::Glare,
            severity: Severity::Warning,
            summary: format!(
                "{} to {} (CSeq {seq}) at {}: both sides tried to change the session at once",
                describe(m),
                m.cseq_method().unwrap_or("?"),
                cx.at(m.time)
            ),
            messages,
            reference: REFERENCE,
            streams: Vec::new(),
        });
    }
    budget.finish(out);
}
