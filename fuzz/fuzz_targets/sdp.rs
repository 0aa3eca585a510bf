//! The SDP summary on arbitrary bodies.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sipscope::sip::sdp::SdpSummary;

fuzz_target!(|data: &[u8]| {
    let _ = SdpSummary::parse(data);
});
