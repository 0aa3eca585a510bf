//! Media: RTP and RTCP streams, measured as RFC 3550 defines them and as Wireshark's RTP
//! stream analysis reports them, and tied to the calls whose SDP set them up.
//!
//! Owns the stream records ([`Stream`]: counts, loss, jitter, gaps, DTMF events, RTCP
//! reports, the E-model estimate) and the table that finds a packet's stream ([`Tracker`]):
//! the media endpoints every SDP offer and answer advertised, the streams in flight, the
//! flows on probation that may yet prove to be RTP without any SDP, and their limits. Reads
//! packets as [`crate::net::MediaDatagram`]s (headers only: no payload is kept) and SDP as
//! [`crate::sip::sdp::SdpSummary`]; knows nothing of calls beyond the number the engine gives
//! each, and nothing of what counts as an anomaly (that is `diagnose`).
//!
//! Per packet the work is one hash lookup and a few counter updates; nothing is allocated
//! and nothing is kept per packet.

pub mod codec;
pub mod emodel;
mod stream;
mod tracker;

pub use stream::{Bucket, Direction, Dtmf, MAX_BUCKETS, RtcpReport, Stream, Tie, Timeline};
pub use tracker::{
    Detached, Keying, MediaConfig, MediaCounters, Offer, OfferLine, Packet, Party, Srtp, Tracker,
};

/// What the capture held of media when a call's streams were set: an absence of streams
/// means something only when the capture carried RTP at all (a capture filtered to port 5060
/// holds none, and then no call "has no media").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MediaCapture {
    /// Media analysis was off (`--no-media`, or a call built outside the engine).
    #[default]
    Off,
    /// No RTP anywhere in the capture up to then.
    NoRtp,
    /// The capture carried RTP, but none to or from any host the call's SDP names: the
    /// capture point does not see this call's media path.
    RtpElsewhere,
    /// The capture carried RTP to or from a host the call's SDP names.
    Rtp,
    /// The capture carried RTP, and another call advertised one of this call's media
    /// endpoints while both were open (two legs of a B2BUA): its streams may have been tied
    /// to the other call, so their absence here proves nothing.
    Shared,
}

/// Which party sent a message's SDP: a request from the call's initiator (by its From tag,
/// `initiator_tag` being the From tag of the call's first message) or a response to the
/// other party's request is the caller's; the rest are the callee's.
pub fn party_of(is_request: bool, from_tag: Option<&str>, initiator_tag: Option<&str>) -> Party {
    match (is_request, from_tag == initiator_tag) {
        (true, true) | (false, false) => Party::Caller,
        (true, false) | (false, true) => Party::Callee,
    }
}
