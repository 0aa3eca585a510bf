//! `high_jitter`: a stream's mean interarrival jitter (RFC 3550 A.8, in milliseconds) is at
//! least `--jitter-threshold` (default 30 ms, the level at which common de-jitter buffers start
//! to discard packets).

use crate::diagnose::media::describe;
use crate::diagnose::{Anomaly, AnomalyKind, Ctx, Severity};

pub fn check(cx: &Ctx<'_>, out: &mut Vec<Anomaly>) {
    for (i, s) in cx
        .call
        .media
        .iter()
        .enumerate()
        .take(crate::diagnose::MAX_CANDIDATES)
    {
        if s.clock_rate == 0 || s.jitter_mean_ms < cx.config.jitter_threshold || s.events_only() {
            continue;
        }
        out.push(Anomaly {
            kind: AnomalyKind::HighJitter,
            severity: Severity::Warning,
            summary: format!(
                "{} arrived with {:.1} ms mean jitter (max {:.1} ms, largest gap {:.0} ms)",
                describe(s),
                s.jitter_mean_ms,
                s.jitter_max_ms,
                s.max_delta_ms
            ),
            messages: Vec::new(),
            reference: "RFC 3550 §6.4.1, A.8",
            streams: vec![i],
        });
    }
}
