//! The RTP and RTCP parsers on arbitrary datagrams, and the media tracker fed what they read:
//! headers with lying CSRC counts, extensions and padding, RTCP compounds with lying lengths.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sipscope::media::{MediaConfig, Offer, Packet, Party, Tracker};
use sipscope::rtp::{Compound, Kind, RtpHeader, TelephoneEvent, classify};
use sipscope::time::Timestamp;

fuzz_target!(|data: &[u8]| {
    let mut tracker = Tracker::new(MediaConfig::default());
    if let Some(offer) = Offer::parse(
        b"v=0\r\nc=IN IP4 10.0.0.2\r\nm=audio 4000 RTP/AVP 0 101\r\na=rtpmap:101 telephone-event/8000\r\n",
    ) {
        tracker.advertise(1, Party::Callee, &offer);
    }
    // Each 2-byte length-prefixed chunk is one datagram.
    let mut rest = data;
    let mut t = 0;
    while let [a, b, tail @ ..] = rest {
        let n = (usize::from(*a) << 8 | usize::from(*b)).min(tail.len());
        let (datagram, next) = tail.split_at(n);
        rest = next;
        t += 20;
        let _ = Compound::new(datagram).count();
        if let Ok(h) = RtpHeader::parse(datagram) {
            let _ = TelephoneEvent::parse(&h).map(|e| e.digit());
        }
        match classify(datagram) {
            Some(Kind::Rtp(rtp)) => tracker.rtp(&Packet {
                source: 0,
                frame: t,
                time: Timestamp::from_millis(t as i64),
                src: "10.0.0.1:6000".parse().unwrap(),
                dst: "10.0.0.2:4000".parse().unwrap(),
                rtp,
            }),
            Some(Kind::Rtcp) => tracker.rtcp(
                Timestamp::from_millis(t as i64),
                "10.0.0.1:6001".parse().unwrap(),
                "10.0.0.2:4001".parse().unwrap(),
                datagram,
            ),
            None => {}
        }
    }
    let _ = tracker.detach(1);
    let _ = tracker.finish_untied();
});
