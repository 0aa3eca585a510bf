//! `media_timeout`: RTP in one direction stopped at least `--media-timeout` seconds (default
//! 10) before the dialog ended (its BYE, or the end of the capture), while neither party had
//! put the call on hold: what a media-timeout hang-up or dead audio looks like (RFC 3550
//! §6.3.5). Names the BYE that followed and its Reason (RFC 3326).

use crate::diagnose::media::{ends, party_name};
use crate::diagnose::{Anomaly, AnomalyKind, Ctx, Severity};
use crate::media::Direction;

pub fn check(cx: &Ctx<'_>, out: &mut Vec<Anomaly>) {
    let Some(v) = &cx.media else { return };
    if v.hold {
        return;
    }
    for d in [Direction::CallerToCallee, Direction::CalleeToCaller] {
        let streams: Vec<usize> = (0..cx.call.media.len())
            .filter(|&i| {
                cx.call
                    .media
                    .get(i)
                    .is_some_and(|s| s.direction == d && s.packets > 0)
            })
            .collect();
        let Some(last) = streams
            .iter()
            .filter_map(|&i| cx.call.media.get(i))
            .map(|s| s.end)
            .max()
        else {
            continue;
        };
        let silent = v.ended_at.seconds_since(last);
        if silent < cx.config.media_timeout {
            continue;
        }
        let Some((sender, receiver)) = ends(d) else {
            continue;
        };
        let reason = v
            .bye
            .and_then(|b| b.reason_header())
            .map(|r| format!(" (Reason: {})", crate::sanitize::terminal(r)))
            .unwrap_or_default();
        out.push(Anomaly {
            kind: AnomalyKind::MediaTimeout,
            severity: Severity::Error,
            summary: format!(
                "RTP from the {} to the {} stopped at {}, {silent:.1} s before {}{reason}, \
                 while the dialog went on",
                party_name(sender),
                party_name(receiver),
                cx.at(last),
                v.end_label()
            ),
            messages: v.bye.map(|b| b.index).into_iter().collect(),
            reference: "RFC 3550 §6.3.5; RFC 3326",
            streams,
        });
    }
}
