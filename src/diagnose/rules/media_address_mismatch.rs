//! `media_address_mismatch`: RTP that goes to, or comes from, an address other than the one the
//! SDP advertised (RFC 3264 §5: media goes to the `c=` address and `m=` port; RFC 4961,
//! symmetric RTP): a stream tied to its call only by the advertised port (a NAT rewrote the
//! address), or a stream from a public address whose sender's SDP named a private one. A
//! different source port alone is not reported: RFC 3550 lets a sender use any port.

use crate::diagnose::media::{describe, ends, party_name};
use crate::diagnose::rules::private_address::{is_private, is_public};
use crate::diagnose::{Anomaly, AnomalyKind, Ctx, Severity};
use crate::media::Tie;

pub fn check(cx: &Ctx<'_>, out: &mut Vec<Anomaly>) {
    for (i, s) in cx
        .call
        .media
        .iter()
        .enumerate()
        .take(crate::diagnose::MAX_CANDIDATES)
    {
        let ends = ends(s.direction);
        let summary = match (s.tie, s.advertised) {
            (Tie::DestinationPort, Some(adv)) => Some(format!(
                "{} goes to {} though the {}'s SDP advertises {adv}",
                describe(s),
                s.dst,
                ends.map_or("receiver", |(_, r)| party_name(r))
            )),
            (Tie::SourcePort, Some(adv)) => Some(format!(
                "{} comes from {} though the {}'s SDP advertises {adv}",
                describe(s),
                s.src,
                ends.map_or("sender", |(snd, _)| party_name(snd))
            )),
            _ => {
                // The sender's SDP names a private address; its RTP comes from a public one.
                let sdp = cx
                    .media
                    .as_ref()
                    .zip(ends)
                    .and_then(|(v, (snd, _))| v.latest(snd).map(|x| (x, snd)));
                sdp.and_then(|(x, snd)| {
                    let a = x.audio?;
                    (is_private(a.ip()) && is_public(s.src.ip()) && a.ip() != s.src.ip()).then(
                        || {
                            format!(
                                "the {}'s SDP advertises {a} (private) but its RTP comes from {}",
                                party_name(snd),
                                s.src
                            )
                        },
                    )
                })
            }
        };
        if let Some(summary) = summary {
            out.push(Anomaly {
                kind: AnomalyKind::MediaAddressMismatch,
                severity: Severity::Warning,
                summary,
                messages: cx.media.as_ref().map(|v| v.evidence()).unwrap_or_default(),
                reference: "RFC 3264 §5; RFC 4961",
                streams: vec![i],
            });
        }
    }
}
