//! `too_many_hops`: a 483 response, or a request forwarded with Max-Forwards 0.
//!
//! A proxy that receives a request with Max-Forwards 0 must answer 483 (RFC 3261 §16.3 item
//! 3); OPTIONS with Max-Forwards 0 is a legitimate probe of the next hop (§11) and is not
//! flagged. Most often the sign of a forwarding loop (see `forwarding_loop`).

use crate::diagnose::{Anomaly, AnomalyKind, Ctx, Severity, describe};

pub fn check(cx: &Ctx<'_>, out: &mut Vec<Anomaly>) {
    let evidence: Vec<_> = cx
        .call
        .messages
        .iter()
        .filter(|m| !m.retransmission)
        .filter(|m| {
            m.status() == Some(483)
                || (m.max_forwards == Some(0)
                    && m.method()
                        .is_some_and(|meth| meth != "OPTIONS" && meth != "ACK"))
        })
        .collect();
    let Some(first) = evidence.first() else {
        return;
    };
    let summary = match first.status() {
        Some(_) => format!(
            "{} at {}: the request ran out of Max-Forwards",
            describe(first),
            cx.at(first.time)
        ),
        None => format!(
            "{} forwarded with Max-Forwards 0 at {}",
            describe(first),
            cx.at(first.time)
        ),
    };
    out.push(Anomaly {
        kind: AnomalyKind::TooManyHops,
        severity: Severity::Error,
        summary,
        messages: evidence.iter().map(|m| m.index).collect(),
        reference: "RFC 3261 §16.3 item 3, §16.6 step 3, §20.22",
        streams: Vec::new(),
    });
}
