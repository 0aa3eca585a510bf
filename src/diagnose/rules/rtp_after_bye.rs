//! `rtp_after_bye`: RTP still sent more than a second after the call's BYE (RFC 3261 §15.1.1:
//! the session ends with the BYE; RFC 3264 §8 for media that outlives its session). The second
//! of grace lets packets already in flight arrive; at least five packets beyond it are needed.

use crate::diagnose::media::describe;
use crate::diagnose::{Anomaly, AnomalyKind, Ctx, Severity, thousands};

const MIN_PACKETS: u64 = 5;

pub fn check(cx: &Ctx<'_>, out: &mut Vec<Anomaly>) {
    let bye = cx
        .call
        .messages
        .iter()
        .find(|m| m.is_request() && m.method() == Some("BYE"));
    for (i, s) in cx
        .call
        .media
        .iter()
        .enumerate()
        .take(crate::diagnose::MAX_CANDIDATES)
    {
        if s.after_bye < MIN_PACKETS {
            continue;
        }
        out.push(Anomaly {
            kind: AnomalyKind::RtpAfterBye,
            severity: Severity::Warning,
            summary: format!(
                "{} sent {} packets more than 1 s after the BYE{}, the last at {}",
                describe(s),
                thousands(s.after_bye),
                bye.map(|b| format!(" at {}", cx.at(b.time)))
                    .unwrap_or_default(),
                cx.at(s.end)
            ),
            messages: bye.map(|b| b.index).into_iter().collect(),
            reference: "RFC 3261 §15.1.1; RFC 3264 §8",
            streams: vec![i],
        });
    }
}
