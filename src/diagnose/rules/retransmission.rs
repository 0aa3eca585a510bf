//! `retransmission`: requests or responses sent again on a hop.
//!
//! Over UDP, SIP retransmits on Timers A, E and G (RFC 3261 §17.1.1.2, §17.1.2.2, §17.2.1),
//! doubling from T1: a few copies are normal loss recovery, many mean a peer that does not
//! answer or does not hear. Over a reliable transport SIP never retransmits, so any copy there
//! points at a broken stack or connection and is worse. TCP segment retransmissions are not
//! SIP messages and are not counted (the reassembly removes them).

use crate::diagnose::{Anomaly, AnomalyKind, Ctx, Severity, hop, secs};
use crate::flow::SipMessage;
use crate::flow::message::Kind;
use std::net::SocketAddr;

/// Findings listed one by one; beyond this (a loop, a storm) the rest are summed up in one.
const MAX_LISTED: usize = 4;

pub fn check(cx: &Ctx<'_>, out: &mut Vec<Anomaly>) {
    let mut found: Vec<(usize, Anomaly)> = Vec::new();
    each(cx, &mut found);
    // The worst first (most copies), then in order of appearance.
    found.sort_by_key(|(copies, a)| (std::cmp::Reverse(*copies), a.messages.first().copied()));
    let rest = found.split_off(found.len().min(MAX_LISTED));
    out.extend(found.into_iter().map(|(_, a)| a));
    if !rest.is_empty() {
        let copies: usize = rest.iter().map(|(c, _)| c).sum();
        let reliable = rest.iter().any(|(_, a)| a.severity == Severity::Warning);
        let mut messages: Vec<usize> = rest.iter().flat_map(|(_, a)| a.messages.clone()).collect();
        messages.sort_unstable();
        out.push(Anomaly {
            kind: AnomalyKind::Retransmission,
            severity: if reliable {
                Severity::Warning
            } else {
                Severity::Info
            },
            summary: format!(
                "{} more messages retransmitted on other hops ({copies} copies)",
                rest.len()
            ),
            messages,
            reference: "RFC 3261 §17.1.1.2, §17.1.2.2, §17.2.1",
            streams: Vec::new(),
        });
    }
}

fn each(cx: &Ctx<'_>, out: &mut Vec<(usize, Anomaly)>) {
    for t in cx
        .call
        .transactions
        .iter()
        .filter(|t| t.retransmissions > 0)
    {
        // Group the transaction's messages by direction and label: each group with copies is
        // one finding ("INVITE sent 4 times", "200 OK sent 7 times").
        // Indexed: a hostile transaction can hold 100,000 different messages.
        let mut groups: Vec<Vec<&SipMessage>> = Vec::new();
        let mut index: crate::WireMap<(SocketAddr, SocketAddr, &Kind), usize> =
            crate::WireMap::default();
        for m in cx.messages_of(t) {
            match index.get(&(m.src, m.dst, &m.kind)) {
                Some(&g) => {
                    if let Some(g) = groups.get_mut(g) {
                        g.push(m);
                    }
                }
                None => {
                    index.insert((m.src, m.dst, &m.kind), groups.len());
                    groups.push(vec![m]);
                }
            }
        }
        for g in groups.iter().filter(|g| g.iter().any(|m| m.retransmission)) {
            let Some(first) = g.first() else {
                continue;
            };
            let copies = g.iter().filter(|m| m.retransmission).count();
            let intervals: Vec<String> = g
                .windows(2)
                .filter_map(|w| match w {
                    [a, b] => Some(secs(b.time.seconds_since(a.time))),
                    _ => None,
                })
                .collect();
            let reliable = first.transport.is_reliable();
            let mut summary = format!(
                "{} retransmitted {copies} time{} on {} (intervals {} s)",
                first.label(),
                if copies == 1 { "" } else { "s" },
                hop(first.src, first.dst),
                intervals.join(", ")
            );
            if reliable {
                summary.push_str(&format!(
                    "; over {}, where SIP never retransmits: a broken stack or connection",
                    first.transport.as_str()
                ));
            }
            out.push((
                copies,
                Anomaly {
                    kind: AnomalyKind::Retransmission,
                    severity: if reliable || copies >= 3 {
                        Severity::Warning
                    } else {
                        Severity::Info
                    },
                    summary,
                    messages: g.iter().map(|m| m.index).collect(),
                    reference: "RFC 3261 §17.1.1.2, §17.1.2.2, §17.2.1",
                    streams: Vec::new(),
                },
            ));
        }
    }
}
