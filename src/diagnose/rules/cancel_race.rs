//! `cancel_race`: a CANCEL that did not go as RFC 3261 §9 expects (CANCEL → 200, and 487 to
//! the INVITE):
//! - a CANCEL sent before any provisional response (§9.1: it should not be);
//! - a 2xx to the INVITE after the CANCEL (the race was lost: the call is up, and the caller
//!   must ACK it and then BYE it);
//! - a CANCEL accepted while the INVITE got a final response other than 487 (or none).

use crate::diagnose::{Anomaly, AnomalyKind, Ctx, Severity, describe, hop};

pub fn check(cx: &Ctx<'_>, out: &mut Vec<Anomaly>) {
    let mut early: Vec<usize> = Vec::new();
    let mut answered: Vec<usize> = Vec::new();
    let mut no_487: Vec<usize> = Vec::new();
    let (mut early_hop, mut answered_hop, mut no_487_text) = (None, None, None);
    for inv in cx.call.transactions.iter().filter(|t| t.is_invite()) {
        let Some(cancel_tx) = inv.cancelled_by.first().and_then(|&c| cx.tx(c)) else {
            continue;
        };
        let Some(cancel) = cx.request_of(cancel_tx) else {
            continue;
        };
        let provisional_before = cx
            .messages_of(inv)
            .any(|m| m.status().is_some_and(|s| s < 200) && m.time <= cancel.time);
        if !provisional_before && inv.request_seen {
            early.extend(cx.request_of(inv).map(|r| r.index));
            early.push(cancel.index);
            early_hop.get_or_insert(hop(inv.client, inv.server));
        }
        let inv_final = cx.final_of(inv);
        match inv_final {
            Some(f)
                if f.status().is_some_and(|s| (200..300).contains(&s)) && f.time > cancel.time =>
            {
                answered.extend([cancel.index, f.index]);
                answered_hop.get_or_insert(hop(inv.client, inv.server));
            }
            Some(f) if f.status() == Some(487) => {}
            Some(f) if f.status().is_some_and(|s| (200..300).contains(&s)) => {}
            Some(f)
                if cancel_tx
                    .final_status()
                    .is_some_and(|s| (200..300).contains(&s)) =>
            {
                no_487.extend([cancel.index, f.index]);
                no_487_text.get_or_insert(format!(
                    "CANCEL on {} was accepted but the INVITE was answered {}",
                    hop(inv.client, inv.server),
                    f.label()
                ));
            }
            None if cancel_tx
                .final_status()
                .is_some_and(|s| (200..300).contains(&s))
                && cx.waited(cancel.time) =>
            {
                no_487.push(cancel.index);
                no_487_text.get_or_insert(format!(
                    "CANCEL on {} was accepted but the INVITE never got its 487",
                    hop(inv.client, inv.server)
                ));
            }
            _ => {}
        }
    }
    let mut push = |mut messages: Vec<usize>, severity, summary: String| {
        messages.sort_unstable();
        messages.dedup();
        out.push(Anomaly {
            kind: AnomalyKind::CancelRace,
            severity,
            summary,
            messages,
            reference: "RFC 3261 §9.1, §9.2, §15",
            streams: Vec::new(),
        });
    };
    if let Some(h) = answered_hop {
        let ok = answered.get(1).and_then(|&i| cx.msg(i));
        push(
            answered,
            Severity::Warning,
            format!(
                "the INVITE on {h} was answered {} after the CANCEL: the call is up and must be \
                 ACKed and then ended with BYE",
                ok.map(describe).unwrap_or_default()
            ),
        );
    }
    if let Some(text) = no_487_text {
        push(no_487, Severity::Warning, text);
    }
    if let Some(h) = early_hop {
        push(
            early,
            Severity::Info,
            format!("CANCEL on {h} was sent before any provisional response"),
        );
    }
}
