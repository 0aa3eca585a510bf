//! `codec_mismatch`: a stream carries a payload type that its receiver never listed in any SDP
//! of the call (RFC 3264 §5.1, §6.1: each side lists what it is willing to receive, and the
//! sender uses only those). Every SDP counts, since a re-INVITE may change the codec while
//! the stream goes on; comfort noise (payload type 13) is left out: it is widely sent without
//! being negotiated and does no harm.

use crate::diagnose::media::{describe, ends, party_name};
use crate::diagnose::{Anomaly, AnomalyKind, Ctx, Severity};

pub fn check(cx: &Ctx<'_>, out: &mut Vec<Anomaly>) {
    let Some(v) = &cx.media else { return };
    for (i, s) in cx
        .call
        .media
        .iter()
        .enumerate()
        .take(crate::diagnose::MAX_CANDIDATES)
    {
        let Some((_, receiver)) = ends(s.direction) else {
            continue;
        };
        let Some(sdp) = v.latest(receiver) else {
            continue;
        };
        let mut listed: Vec<u8> = v
            .sdps
            .iter()
            .filter(|x| x.party == receiver)
            .flat_map(|x| x.all_formats.iter().copied())
            .collect();
        listed.sort_unstable();
        listed.dedup();
        let foreign: Vec<u8> = s
            .payload_types
            .iter()
            .copied()
            .filter(|pt| *pt != 13 && !listed.contains(pt))
            .collect();
        if foreign.is_empty() || listed.is_empty() {
            continue;
        }
        let list = |v: &[u8]| v.iter().map(u8::to_string).collect::<Vec<_>>().join(" ");
        out.push(Anomaly {
            kind: AnomalyKind::CodecMismatch,
            severity: Severity::Warning,
            summary: format!(
                "{} carries payload type {} that no SDP of the {} lists (they list {})",
                describe(s),
                list(&foreign),
                party_name(receiver),
                list(&listed)
            ),
            messages: vec![sdp.index],
            reference: "RFC 3264 §5.1, §6.1",
            streams: vec![i],
        });
    }
}
