//! `session_timer_expired` (RFC 4028): a 2xx with `Session-Expires: N` obliges a refresh (a
//! re-INVITE or UPDATE answered 2xx) within N seconds. Without one the session expires: the
//! side that is not the refresher sends BYE about N − min(32, N/3) seconds after the last
//! refresh (§10), and users see calls that drop at a fixed interval. Flagged when a BYE
//! follows in that window with no refresh, or when the capture runs past N without a
//! refresh. A 422 Session Interval Too Small is flagged as information.

use crate::diagnose::{Anomaly, AnomalyKind, Ctx, Severity, describe};
use crate::flow::SipMessage;

fn refresh_2xx(m: &SipMessage) -> bool {
    m.status().is_some_and(|s| (200..300).contains(&s))
        && matches!(m.cseq_method(), Some("INVITE") | Some("UPDATE"))
        && !m.retransmission
}

pub fn check(cx: &Ctx<'_>, out: &mut Vec<Anomaly>) {
    let call = cx.call;
    for d in &call.dialogs {
        let msgs: Vec<&SipMessage> = d.messages.iter().filter_map(|&i| cx.msg(i)).collect();
        let refreshes: Vec<&SipMessage> = msgs.iter().copied().filter(|m| refresh_2xx(m)).collect();
        // The last refresh that set an interval, and whether the next one came in time.
        for (i, r) in refreshes.iter().enumerate() {
            let Some((n, refresher)) = r.rare().and_then(|e| e.session_expires.clone()) else {
                continue;
            };
            let n_ns = i64::from(n) * 1_000_000_000;
            let deadline = r.time.0.saturating_add(n_ns);
            let next_in_time = refreshes
                .get(i + 1)
                .is_some_and(|next| next.time.0 <= deadline);
            if next_in_time || refreshes.get(i + 1).is_some() {
                continue;
            }
            let margin = i64::from(n.min(96) / 3).min(32) * 1_000_000_000;
            let bye = msgs
                .iter()
                .find(|m| m.method() == Some("BYE") && m.time > r.time);
            let expired_bye = bye.filter(|b| b.time.0 >= deadline - margin - 2_000_000_000);
            let ran_past = bye.is_none() && cx.now.0 > deadline;
            if expired_bye.is_none() && !ran_past {
                continue;
            }
            let who = refresher
                .as_deref()
                .map(|w| format!(" (refresher: {w})"))
                .unwrap_or_default();
            let mut messages = vec![r.index];
            let tail = match expired_bye {
                Some(b) => {
                    messages.push(b.index);
                    format!(
                        "; {} at {}, {:.1} s later: the session expired",
                        describe(b),
                        cx.at(b.time),
                        b.time.seconds_since(r.time)
                    )
                }
                None => "; the capture ran past the deadline".to_string(),
            };
            out.push(Anomaly {
                kind: AnomalyKind::SessionTimerExpired,
                severity: Severity::Error,
                summary: format!(
                    "{} at {} set Session-Expires: {n}{who} and no refresh followed within \
                     {n} s{tail}",
                    r.label(),
                    cx.at(r.time)
                ),
                messages,
                reference: "RFC 4028 §6, §10",
                streams: Vec::new(),
            });
        }
    }
    for m in call
        .messages
        .iter()
        .filter(|m| m.status() == Some(422) && !m.retransmission)
    {
        let min_se = m
            .rare()
            .and_then(|e| e.min_se)
            .map(|v| format!(" (Min-SE: {v})"))
            .unwrap_or_default();
        out.push(Anomaly {
            kind: AnomalyKind::SessionTimerExpired,
            severity: Severity::Info,
            summary: format!(
                "{} at {}{min_se}: the session interval asked for was too small",
                describe(m),
                cx.at(m.time)
            ),
            messages: vec![m.index],
            reference: "RFC 4028 §6",
            streams: Vec::new(),
        });
    }
}
