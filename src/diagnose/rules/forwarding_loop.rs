//! `forwarding_loop`: a request that came back around.
//!
//! Evidence, any of: a 482 Loop Detected (RFC 3261 §16.3 item 4, or merged requests,
//! §8.2.2.2); or the same request (From tag, CSeq) arriving again at the same endpoint with a
//! longer Via stack or a lower Max-Forwards, which makes a cycle in the request's hop graph.
//! A request that comes back with a different Request-URI is a spiral (§16.3 item 4: legal,
//! e.g. a proxy routing through an application server) and is not flagged.

use crate::WireMap;
use crate::diagnose::{Anomaly, AnomalyKind, Ctx, Severity, describe, hops};
use crate::flow::SipMessage;
use compact_str::CompactString;

/// Copies of one request followed across hops. A loop shows within Max-Forwards (70) hops;
/// the bound keeps a hostile call from making the pairwise search below quadratic in size.
const MAX_FOLLOWED: usize = 256;

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
        let messages = cx.with_request(m);
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
            streams: Vec::new(),
        });
    }

    // The same out-of-dialog request followed across hops.
    // Keyed by From tag, CSeq (number and method) and method, in order of first sight.
    type Key<'m> = (
        Option<&'m str>,
        Option<&'m (u32, CompactString)>,
        Option<&'m str>,
    );
    let mut index: WireMap<Key<'_>, usize> = WireMap::default();
    let mut groups: Vec<Vec<&SipMessage>> = Vec::new();
    for m in call.messages.iter().filter(|m| {
        m.to_tag.is_none()
            && !m.retransmission
            && m.method().is_some_and(|x| x != "ACK" && x != "CANCEL")
    }) {
        let key = (m.from_tag.as_deref(), m.cseq.as_ref(), m.method());
        let next = groups.len();
        let i = *index.entry(key).or_insert(next);
        match groups.get_mut(i) {
            Some(g) if g.len() < MAX_FOLLOWED => g.push(m),
            Some(_) => {}
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
            streams: Vec::new(),
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
