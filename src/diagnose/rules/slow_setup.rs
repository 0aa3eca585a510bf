//! `slow_setup`: post-dial delay (INVITE → first 18x, RFC 6076 §4.1 session request delay)
//! or setup time (INVITE → 2xx) above the configured thresholds. Both are measured from the
//! originator's first INVITE of the call (an authentication round counts: the caller waited
//! through it), and the evidence starts with that INVITE.

use crate::diagnose::{Anomaly, AnomalyKind, Ctx, Severity, secs};

pub fn check(cx: &Ctx<'_>, out: &mut Vec<Anomaly>) {
    let s = cx.summary;
    let Some(orig) = s.originating.and_then(|t| cx.tx(t)) else {
        return;
    };
    // The request the figures are measured from (`Call::summary`): the first the originator
    // sent with this method.
    let first_request = cx
        .call
        .transactions
        .iter()
        .find(|t| t.method == orig.method && t.client == orig.client)
        .and_then(|t| cx.request_of(t))
        .or(cx.request_of(orig));
    let request = first_request.map(|r| r.index);
    let from = first_request
        .map(|r| format!("{} at {}", r.label(), cx.at(r.time)))
        .unwrap_or_else(|| "the INVITE".to_string());
    let first_of =
        |pred: &dyn Fn(u16) -> bool| cx.messages_of(orig).find(|m| m.status().is_some_and(pred));
    if let Some(pdd) = s.post_dial_delay.filter(|d| *d > cx.config.pdd_threshold) {
        out.push(Anomaly {
            kind: AnomalyKind::SlowSetup,
            severity: Severity::Warning,
            summary: {
                let to = first_of(&|c| (180..200).contains(&c));
                format!(
                    "post-dial delay {} s (from the {from} to the first {}) is over the {} s \
                     threshold",
                    secs(pdd),
                    to.map(|m| format!("{} at {}", m.label(), cx.at(m.time)))
                        .unwrap_or_else(|| "18x".to_string()),
                    cx.config.pdd_threshold
                )
            },
            messages: request
                .into_iter()
                .chain(first_of(&|c| (180..200).contains(&c)).map(|m| m.index))
                .collect(),
            reference: "RFC 6076 §4.1",
            streams: Vec::new(),
        });
    }
    if let Some(setup) = s.setup_time.filter(|d| *d > cx.config.setup_threshold) {
        out.push(Anomaly {
            kind: AnomalyKind::SlowSetup,
            severity: Severity::Warning,
            summary: {
                let to = first_of(&|c| (200..300).contains(&c));
                format!(
                    "setup time {} s (from the {from} to the {}) is over the {} s threshold",
                    secs(setup),
                    to.map(|m| format!("{} at {}", m.label(), cx.at(m.time)))
                        .unwrap_or_else(|| "2xx".to_string()),
                    cx.config.setup_threshold
                )
            },
            messages: request
                .into_iter()
                .chain(first_of(&|c| (200..300).contains(&c)).map(|m| m.index))
                .collect(),
            reference: "RFC 6076 §4.2",
            streams: Vec::new(),
        });
    }
}
