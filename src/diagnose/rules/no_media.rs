//! `no_media`: an answered call whose offer and answer both set up audio, and no RTP either
//! way in the capture while the dialog lasted (RFC 3264 §5, §6; RFC 3550 §5). An absence: only
//! claimed when the capture carries RTP to or from a host the call's SDP names (so the
//! capture point sees this call's media path: a capture filtered to signalling, or taken where
//! another leg's media passes, says nothing), when no other call advertised the same
//! endpoints (a B2BUA's other leg may hold the streams), when neither party put the call on
//! hold, and when the call lasted long enough ([`MIN_WINDOW`]) for media to flow.

use crate::diagnose::media::MIN_WINDOW;
use crate::diagnose::{Anomaly, AnomalyKind, Ctx, Severity};
use crate::media::{MediaCapture, Party};

pub fn check(cx: &Ctx<'_>, out: &mut Vec<Anomaly>) {
    let Some(v) = &cx.media else { return };
    if cx.call.media_capture != MediaCapture::Rtp
        || v.hold
        || !v.negotiated()
        || v.window() < MIN_WINDOW
        || cx.call.media.iter().any(|s| s.packets > 0)
    {
        return;
    }
    let addr = |p: Party| {
        v.latest(p)
            .and_then(|s| s.audio)
            .map_or_else(|| "?".to_string(), |a| a.to_string())
    };
    out.push(Anomaly {
        kind: AnomalyKind::NoMedia,
        severity: Severity::Error,
        summary: format!(
            "no audio: no RTP either way in the {:.1} s between the answer and {}; the \
             caller's SDP advertises {} and the callee's {} (the capture holds other RTP of these hosts)",
            v.window(),
            v.end_label(),
            addr(Party::Caller),
            addr(Party::Callee),
        ),
        messages: v.evidence(),
        reference: "RFC 3264 §5, §6; RFC 3550 §5",
        streams: Vec::new(),
    });
}
