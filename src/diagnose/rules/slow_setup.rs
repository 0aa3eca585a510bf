//! `slow_setup`: post-dial delay (INVITE → first 18x, RFC 6076 §4.1 session request delay)
//! or setup time (INVITE → 2xx) above the configured thresholds.

use crate::diagnose::{Anomaly, AnomalyKind, Ctx, Severity, secs};

pub fn check(cx: &Ctx<'_>, out: &mut Vec<Anomaly>) {
    let s = cx.summary;
    let Some(orig) = s.originating.and_then(|t| cx.tx(t)) else {
        return;
    };
    let request = cx.request_of(orig).map(|r| r.index);
    let first_of = |pred: &dyn Fn(u16) -> bool| {
        cx.messages_of(orig)
            .find(|m| m.status().is_some_and(pred))
            .map(|m| m.index)
    };
    if let Some(pdd) = s.post_dial_delay.filter(|d| *d > cx.config.pdd_threshold) {
        out.push(Anomaly {
            kind: AnomalyKind::SlowSetup,
            severity: Severity::Warning,
            summary: format!(
                "post-dial delay {} s (INVITE to first 18x) is over the {} s threshold",
                secs(pdd),
                cx.config.pdd_threshold
            ),
            messages: request
                .into_iter()
                .chain(first_of(&|c| (180..200).contains(&c)))
                .collect(),
            reference: "RFC 6076 §4.1",
        });
    }
    if let Some(setup) = s.setup_time.filter(|d| *d > cx.config.setup_threshold) {
        out.push(Anomaly {
            kind: AnomalyKind::SlowSetup,
            severity: Severity::Warning,
            summary: format!(
                "setup time {} s (INVITE to 2xx) is over the {} s threshold",
                secs(setup),
                cx.config.setup_threshold
            ),
            messages: request
                .into_iter()
                .chain(first_of(&|c| (200..300).contains(&c)))
                .collect(),
            reference: "RFC 6076 §4.2",
        });
    }
}
