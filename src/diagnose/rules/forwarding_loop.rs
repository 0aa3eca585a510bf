//! `forwarding_loop`: a request that came back around.
//!
//! Evidence, any of: a 482 Loop Detected (RFC 3261 §16.3 item 4, or merged requests,
//! §8.2.2.2); or the same request (From tag, CSeq) arriving again at the same endpoint with a
//! longer Via stack or a lower Max-Forwards, which makes a cycle in the request's hop graph.
//! A request that comes back with a different Request-URI is a spiral (§16.3 item 4: legal,
//! e.g. a proxy routing through an application server) and is not flagged.

use crate::diagnose::{Anomaly, AnomalyKind, Ctx, Severity, describe, hops};
use crate::flow::SipMessage;

pub fn check(cx: &Ctx<'_>, out: &mut Vec<Anomaly>) {
    let call = cx.call;
    let mut seen_482: Vec<u32> = Vec::new();
    for m in call
        .messages
        .iter()
        .filter(|m| m.status() == Some(482) && !m.retransmission)
    {
        // One finding per request, not per hop the 482 was relayed over.
        let seq = m.cseq.as_ref().map_or(0, |(n, _)| *n);
        if seen_482.contains(&seq) {
            continue;
        }
        seen_482.push(seq);
        let mut messages: Vec<usize> = m
            .transaction
            .and_then(|t| cx.tx(t))
            .and_then(|t| cx.request_of(t))
            .map(|r| r.index)
            .into_iter()
            .collect();
        messages.push(m.index);
        out.push(Anomaly {
            kind: AnomalyKind::ForwardingLoop,
            severity: Severity::Error,
            summary: format!(
                "{} at {}: a server saw this request come back (a loop, or a forked request \
                 merged at the callee)",
                describe(m),
                cx.at(m.time)
            ),
            messages,
            reference: "RFC 3261 §16.3 item 4, §8.2.2.2",
        });
    }

    // The same out-of-dialog request followed across hops.
    let mut groups: Vec<Vec<&SipMessage>> = Vec::new();
    for m in call.messages.iter().filter(|m| {
        m.to_tag.is_none()
            && !m.retransmission
            && m.method().is_some_and(|x| x != "ACK" && x != "CANCEL")
    }) {
        let same = |f: &&SipMessage| {
            f.from_tag == m.from_tag && f.cseq == m.cseq && f.method() == m.method()
        };
        match groups.iter_mut().find(|g| g.first().is_some_and(same)) {
            Some(g) => g.push(m),
            None => groups.push(vec![m]),
        }
    }
    for g in groups
        .iter()
        .filter(|g| g.len() > 2 || g.iter().any(|m| m.src == m.dst))
    {
        // Arrivals again at an endpoint, each deeper than the one before.
        let again: Vec<(&SipMessage, &SipMessage)> = g
            .iter()
            .enumerate()
            .filter_map(|(i, later)| {
                let earlier = g.get(..i)?.iter().find(|e| e.dst == later.dst)?;
                let deeper = later.via_count > earlier.via_count
                    || later.max_forwards < earlier.max_forwards;
                deeper.then_some((*earlier, *later))
            })
            .collect();
        if again.is_empty() || !hops::has_cycle(g.iter().copied()) {
            continue;
        }
        let is_spiral = again
            .iter()
            .all(|(e, l)| e.request_uri() != l.request_uri());
        if is_spiral {
            continue;
        }
        let (Some(first), Some(last)) = (g.first(), g.last()) else {
            continue;
        };
        let (Some((_, looped)), Some(max_via)) =
            (again.first(), g.iter().map(|m| m.via_count).max())
        else {
            continue;
        };
        let mf = |m: &SipMessage| m.max_forwards.map_or("?".into(), |v| v.to_string());
        out.push(Anomaly {
            kind: AnomalyKind::ForwardingLoop,
            severity: Severity::Error,
            summary: format!(
                "{} (CSeq {}) looped: it reached {} again at {} with the same Request-URI; \
                 seen {} times, Via stack {} → {}, Max-Forwards {} → {}",
                first.method().unwrap_or("?"),
                first.cseq.as_ref().map_or(0, |(n, _)| *n),
                looped.dst,
                cx.at(looped.time),
                g.len(),
                first.via_count,
                max_via,
                mf(first),
                mf(last)
            ),
            messages: g.iter().map(|m| m.index).collect(),
            reference: "RFC 3261 §16.3 item 4, §16.6",
        });
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use crate::diagnose::{DiagnoseConfig, diagnose};
    use crate::synth::script::Script;

    fn looping(uri_changes: bool) -> Vec<&'static str> {
        let mut s = Script::new();
        s.udp(0, CALLER, PROXY, &M::default().text());
        let starts = [
            "INVITE sip:bob@example.com SIP/2.0",
            "INVITE sip:bob@as.example.com SIP/2.0",
            "INVITE sip:bob@example.net SIP/2.0",
            "INVITE sip:bob@example.org SIP/2.0",
        ];
        for hop in 1..4 {
            let branch = format!("z9hG4bK-p{hop}");
            let m = M {
                start: if uri_changes { starts[hop] } else { starts[0] },
                via: ("10.0.0.2:5060", &branch),
                vias: hop + 1,
                max_forwards: 70 - hop as u32,
                ..M::default()
            };
            s.udp(hop as i64, PROXY, PROXY, &m.text());
        }
        let (calls, now) = run(&s);
        kinds(&diagnose(&calls[0], now, &DiagnoseConfig::default()).anomalies)
    }

    #[test]
    fn a_request_forwarded_back_to_the_same_proxy_is_a_loop() {
        assert!(looping(false).contains(&"forwarding_loop"));
    }

    #[test]
    fn a_spiral_with_a_new_request_uri_is_not_a_loop() {
        assert!(!looping(true).contains(&"forwarding_loop"));
    }
}
