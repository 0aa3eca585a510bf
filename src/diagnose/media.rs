//! What the media rules read of a call: each party's SDP as the call went (its audio
//! address, formats and direction, and where its signalling came from), when the call was
//! answered and when it ended, and whether it was ever put on hold. Built once per answered
//! call (`Ctx::media`).

use super::Ctx;
use crate::flow::{Outcome, SipMessage};
use crate::media::{Direction, Party, Stream};
use crate::time::Timestamp;
use std::net::{IpAddr, SocketAddr};

/// One SDP of one party, as the media rules read it.
#[derive(Debug, Clone)]
pub struct PartySdp {
    pub party: Party,
    /// The message that carried it.
    pub index: usize,
    /// The first RTP audio line's address and port (`None`: no audio, port 0, or hold by
    /// `c=0.0.0.0`).
    pub audio: Option<SocketAddr>,
    /// Its payload types.
    pub formats: Vec<u8>,
    /// The payload types of every RTP media line (audio, video).
    pub all_formats: Vec<u8>,
    /// `sendrecv`, `sendonly`, `recvonly` or `inactive` (`inactive` too for `c=0.0.0.0`).
    pub direction: &'static str,
    /// Where the message came from.
    pub signalled_from: SocketAddr,
}

/// The media side of an answered call.
#[derive(Debug, Clone)]
pub struct MediaView<'a> {
    pub sdps: Vec<PartySdp>,
    pub answered_at: Timestamp,
    /// The BYE's time, else the capture time reached.
    pub ended_at: Timestamp,
    pub bye: Option<&'a SipMessage>,
    /// An SDP of either party was not `sendrecv` (hold, or an announcement), or offered media
    /// that is not RTP (T.38 fax over UDPTL): the absence rules stay silent, since RTP may
    /// then rightly stop one way or both.
    pub hold: bool,
}

/// Below this much time between the answer and the end, missing media proves nothing (a call
/// hung up at once).
pub const MIN_WINDOW: f64 = 2.0;

impl<'a> MediaView<'a> {
    /// The view of an answered INVITE call; `None` for other calls, or with media analysis off.
    pub fn of(cx: &Ctx<'a>) -> Option<MediaView<'a>> {
        if cx.call.media_capture == crate::media::MediaCapture::Off
            || cx.summary.outcome != Outcome::Answered
        {
            return None;
        }
        let orig = cx.summary.originating.and_then(|t| cx.tx(t))?;
        if !orig.is_invite() {
            return None;
        }
        let answered_at = cx.final_of(orig)?.time;
        let messages = &cx.call.messages;
        let initiator = messages.first().and_then(|f| f.from_tag.as_deref());
        let mut sdps = Vec::new();
        let mut non_rtp = false;
        for m in messages.iter().filter(|m| !m.retransmission) {
            let Some(sdp) = m.sdp() else { continue };
            let party = crate::media::party_of(m.is_request(), m.from_tag.as_deref(), initiator);
            non_rtp |= sdp
                .media
                .iter()
                .any(|x| x.port != 0 && !x.protocol.to_ascii_uppercase().contains("RTP"));
            let Some(audio) = sdp.media.iter().find(|x| x.kind == "audio") else {
                continue;
            };
            let ip = audio
                .connection
                .as_ref()
                .or(sdp.connection.as_ref())
                .and_then(|c| c.parse::<IpAddr>().ok());
            let held = ip.is_some_and(|ip| ip.is_unspecified());

            sdps.push(PartySdp {
                party,
                index: m.index,
                audio: ip
                    .filter(|ip| !ip.is_unspecified() && audio.port != 0)
                    .map(|ip| SocketAddr::new(ip, audio.port)),
                formats: audio
                    .formats
                    .iter()
                    .filter_map(|f| f.parse().ok())
                    .collect(),
                all_formats: sdp
                    .media
                    .iter()
                    .filter(|x| x.protocol.to_ascii_uppercase().contains("RTP"))
                    .flat_map(|x| x.formats.iter().filter_map(|f| f.parse().ok()))
                    .collect(),
                direction: if held { "inactive" } else { audio.direction },
                signalled_from: m.src,
            });
            if sdps.len() >= crate::diagnose::MAX_CANDIDATES {
                break;
            }
        }
        let bye = messages
            .iter()
            .find(|m| m.is_request() && m.method() == Some("BYE") && m.time >= answered_at);
        let hold = non_rtp || sdps.iter().any(|s| s.direction != "sendrecv");
        Some(MediaView {
            sdps,
            answered_at,
            ended_at: bye.map_or(cx.now, |b| b.time),
            bye,
            hold,
        })
    }

    /// The party's latest SDP.
    pub fn latest(&self, party: Party) -> Option<&PartySdp> {
        self.sdps.iter().rev().find(|s| s.party == party)
    }

    /// Both parties advertised an RTP audio address: media is expected.
    pub fn negotiated(&self) -> bool {
        [Party::Caller, Party::Callee]
            .iter()
            .all(|p| self.latest(*p).is_some_and(|s| s.audio.is_some()))
    }

    /// Seconds between the answer and the end.
    pub fn window(&self) -> f64 {
        self.ended_at.seconds_since(self.answered_at)
    }

    /// What ended the window, for summaries.
    pub fn end_label(&self) -> &'static str {
        if self.bye.is_some() {
            "the BYE"
        } else {
            "the end of the capture"
        }
    }

    /// Evidence: each party's latest SDP, then the BYE.
    pub fn evidence(&self) -> Vec<usize> {
        let mut v: Vec<usize> = [Party::Caller, Party::Callee]
            .iter()
            .filter_map(|p| self.latest(*p).map(|s| s.index))
            .collect();
        v.sort_unstable();
        v.extend(self.bye.map(|b| b.index));
        v
    }
}

pub fn party_name(p: Party) -> &'static str {
    match p {
        Party::Caller => "caller",
        Party::Callee => "callee",
    }
}

/// The party that sends and the one that receives in a direction.
pub fn ends(d: Direction) -> Option<(Party, Party)> {
    match d {
        Direction::CallerToCallee => Some((Party::Caller, Party::Callee)),
        Direction::CalleeToCaller => Some((Party::Callee, Party::Caller)),
        Direction::Unknown => None,
    }
}

/// A stream for summaries: `RTP 10.0.0.1:4000 → 10.0.0.2:4002 (PCMA)`.
pub fn describe(s: &Stream) -> String {
    format!(
        "RTP {} → {}{}",
        s.src,
        s.dst,
        s.codec
            .as_ref()
            .map(|c| format!(" ({})", crate::sanitize::terminal(c)))
            .unwrap_or_default()
    )
}
