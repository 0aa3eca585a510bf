//! `packet_loss`: a stream lost at least `--loss-threshold` percent of its packets (default
//! 1%) and at least three, counted as RFC 3550 A.3 counts them (expected from the extended
//! sequence numbers, minus received). Comfort noise and silence suppression keep sequence
//! numbers contiguous, so they are not loss.

use crate::diagnose::media::describe;
use crate::diagnose::{Anomaly, AnomalyKind, Ctx, Severity, thousands};

/// Fewer lost packets than this are never reported, whatever the share.
const MIN_LOST: i64 = 3;

pub fn check(cx: &Ctx<'_>, out: &mut Vec<Anomaly>) {
    for (i, s) in cx
        .call
        .media
        .iter()
        .enumerate()
        .take(crate::diagnose::MAX_CANDIDATES)
    {
        let pct = s.loss_percent();
        if s.lost < MIN_LOST || pct < cx.config.loss_threshold || s.events_only() {
            continue;
        }
        out.push(Anomaly {
            kind: AnomalyKind::PacketLoss,
            severity: Severity::Warning,
            summary: format!(
                "{} lost {} of {} packets ({pct:.1}%){}",
                describe(s),
                thousands(s.lost as u64),
                thousands(s.expected),
                s.mos
                    .map(|m| format!(", estimated MOS {m:.2}"))
                    .unwrap_or_default()
            ),
            messages: Vec::new(),
            reference: "RFC 3550 §6.4.1, A.3",
            streams: vec![i],
        });
    }
}
