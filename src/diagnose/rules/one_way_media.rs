//! `one_way_media`: an answered call whose RTP flowed one way only (RFC 3264 §5, §6): which
//! direction is missing, and the likely cause when the capture shows it: the silent party's
//! SDP names a private address while its signalling came from a public one (a NAT the SDP does
//! not reflect), or the RTP that did flow went to an address the SDP did not name. An absence,
//! with the same conditions as `no_media`: RTP in the capture, no hold, a call long enough, and
//! no RTP both ways between the same two hosts (media that does not follow the SDP's
//! addresses, such as a media server's, is not one-way for its listener).

use crate::diagnose::media::{MIN_WINDOW, ends, party_name};
use crate::diagnose::rules::private_address::{is_private, is_public};
use crate::diagnose::{Anomaly, AnomalyKind, Ctx, Severity, thousands};
use crate::media::{Direction, MediaCapture};

pub fn check(cx: &Ctx<'_>, out: &mut Vec<Anomaly>) {
    let Some(v) = &cx.media else { return };
    if cx.call.media_capture != MediaCapture::Rtp
        || v.hold
        || !v.negotiated()
        || v.window() < MIN_WINDOW
    {
        return;
    }
    let packets = |d: Direction| -> u64 {
        cx.call
            .media
            .iter()
            .filter(|s| s.direction == d)
            .map(|s| s.packets)
            .sum()
    };
    let (fwd, back) = (
        packets(Direction::CallerToCallee),
        packets(Direction::CalleeToCaller),
    );
    let missing = match (fwd, back) {
        (0, b) if b > 0 => Direction::CallerToCallee,
        (f, 0) if f > 0 => Direction::CalleeToCaller,
        _ => return,
    };
    // RTP both ways between two hosts is two-way audio, whatever the SDP said of who is
    // where (a media server or relay the signalling does not name): no claim then.
    let media = &cx.call.media;
    let both_ways = media.iter().enumerate().any(|(i, a)| {
        a.packets > 0
            && media.iter().enumerate().any(|(j, b)| {
                i != j
                    && b.packets > 0
                    && b.src.ip() == a.dst.ip()
                    && b.dst.ip() == a.src.ip()
                    // On one host (loopback) the addresses alone say nothing: the ports must
                    // pair too.
                    && (a.src.ip() != a.dst.ip() || (b.src == a.dst && b.dst == a.src))
            })
    });
    if both_ways {
        return;
    }
    let Some((sender, receiver)) = ends(missing) else {
        return;
    };
    let flowing: Vec<usize> = (0..cx.call.media.len())
        .filter(|&i| cx.call.media.get(i).is_some_and(|s| s.direction != missing))
        .collect();
    let sdp = v.latest(sender);
    let (s, r) = (party_name(sender), party_name(receiver));
    let private_behind_nat = sdp.and_then(|sdp| {
        let a = sdp.audio?;
        (is_private(a.ip()) && is_public(sdp.signalled_from.ip()))
            .then_some((a, sdp.signalled_from))
    });
    let rewritten = cx
        .call
        .media
        .iter()
        .find(|st| st.direction != missing && st.tie.by_port());
    let cause = if let Some((a, from)) = private_behind_nat {
        format!(
            "the {s}'s SDP advertises {a} (private) while its signalling came from {}, and no \
             RTP reached the {r}",
            from.ip()
        )
    } else if let Some(st) = rewritten {
        format!(
            "the {r}'s RTP goes to {} though the {s}'s SDP advertises {}, and no RTP came back \
             from the {s}",
            st.dst,
            st.advertised.map_or_else(|| "?".into(), |a| a.to_string())
        )
    } else {
        format!(
            "no RTP from the {s}{} reached the {r}, while {} packets flowed the other way",
            sdp.and_then(|x| x.audio)
                .map(|a| format!(" (its SDP advertises {a})"))
                .unwrap_or_default(),
            thousands(fwd.max(back))
        )
    };
    out.push(Anomaly {
        kind: AnomalyKind::OneWayMedia,
        severity: Severity::Error,
        summary: format!("one-way audio: {cause}"),
        messages: v.evidence(),
        reference: "RFC 3264 §5, §6; RFC 3550 §5",
        streams: flowing,
    });
}
